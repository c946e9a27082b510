//! Constant folding as PostgreSQL 15's planner does it (`eval_const_expressions`), in the
//! same order, so that an error in a constant part (`1/0`) is reported when PostgreSQL would
//! fail the whole query and not where PostgreSQL would skip it (`false AND 1/0 = 1`).
//!
//! Only immutable operations are folded, as in PostgreSQL. Stable ones (those that depend on
//! session settings, such as `timestamptz` conversions, date/time text conversions and
//! `concat`) stay in the tree and are evaluated per row, so an error in them fails rows, not
//! the clause.
//!
//! NOTE: when PostgreSQL plans a WHERE clause it may also evaluate stable constant parts to
//! estimate selectivity, and an error there fails the whole query. Evaluating per row here
//! gives the same rows whenever PostgreSQL's query succeeds.

use std::sync::Arc;

use crate::eval::{self, Row};
use crate::expr::{Expr, ExprKind, Function};
use crate::types::Type;
use crate::value::Value;
use crate::FilterError;

/// Folds constant sub-expressions of `expr`.
pub(crate) fn fold(expr: Expr) -> Result<Expr, FilterError> {
    let Expr { kind, ty, collation, location } = expr;
    let rebuild = |kind: ExprKind| Expr { kind, ty: ty.clone(), collation: collation.clone(), location };
    let folded = match kind {
        ExprKind::Column(_) | ExprKind::Const(_) => rebuild(kind),
        // A literal whose type nothing fixed is text, as PostgreSQL resolves it at the end.
        ExprKind::Unresolved { text, .. } => Expr::constant(Some(Value::Text(text)), Type::Text, location),
        ExprKind::And(args) => return fold_junction(args, true, location),
        ExprKind::Or(args) => return fold_junction(args, false, location),
        ExprKind::Coalesce(args) => return fold_coalesce(args, ty, collation, location),
        ExprKind::Cast { input, explicit, modifier } => {
            let input = fold(*input)?;
            if input.is_null_const() {
                return Ok(Expr::constant(None, ty, location));
            }
            rebuild(ExprKind::Cast { input: Box::new(input), explicit, modifier })
        }
        ExprKind::Not(arg) => rebuild(ExprKind::Not(Box::new(fold(*arg)?))),
        ExprKind::Operator { name, declared, args } => {
            let args = fold_all(args)?;
            let strict = !(name == "||" && declared.iter().any(Type::is_array));
            if strict && args.iter().any(Expr::is_null_const) {
                return Ok(Expr::constant(None, ty, location));
            }
            let (declared, args) = normalize_integer_constant(name, declared, args);
            rebuild(ExprKind::Operator { name, declared, args })
        }
        ExprKind::Function { function, args } => {
            let args = fold_all(args)?;
            if function != Function::Concat && args.iter().any(Expr::is_null_const) {
                return Ok(Expr::constant(None, ty, location));
            }
            rebuild(ExprKind::Function { function, args })
        }
        ExprKind::NullTest { arg, negated } => rebuild(ExprKind::NullTest { arg: Box::new(fold(*arg)?), negated }),
        ExprKind::BoolTest { arg, test } => rebuild(ExprKind::BoolTest { arg: Box::new(fold(*arg)?), test }),
        ExprKind::Distinct { left, right, declared, negated } => {
            rebuild(ExprKind::Distinct { left: Box::new(fold(*left)?), right: Box::new(fold(*right)?), declared, negated })
        }
        ExprKind::ScalarArray { name, declared, left, array, all } => {
            rebuild(ExprKind::ScalarArray { name, declared, left: Box::new(fold(*left)?), array: Box::new(fold(*array)?), all })
        }
        ExprKind::In { left, items, negated } => {
            let left = fold(*left)?;
            let mut folded_items = Vec::with_capacity(items.len());
            for (declared, item) in items {
                folded_items.push((declared, fold(item)?));
            }
            rebuild(ExprKind::In { left: Box::new(left), items: folded_items, negated })
        }
        ExprKind::Like { arg, pattern, escape, case_insensitive, negated, bpchar } => {
            let arg = fold(*arg)?;
            let pattern = fold(*pattern)?;
            let escape = match escape {
                Some(escape) => Some(Box::new(fold(*escape)?)),
                None => None,
            };
            if arg.is_null_const() || pattern.is_null_const() || escape.as_ref().is_some_and(|escape| escape.is_null_const()) {
                return Ok(Expr::constant(None, ty, location));
            }
            rebuild(ExprKind::Like { arg: Box::new(arg), pattern: Box::new(pattern), escape, case_insensitive, negated, bpchar })
        }
        ExprKind::ArrayConstructor(items) => rebuild(ExprKind::ArrayConstructor(fold_all(items)?)),
        ExprKind::MinMax { greatest, args } => rebuild(ExprKind::MinMax { greatest, args: fold_all(args)? }),
    };
    evaluate_if_constant(folded)
}

/// Gives an integer constant compared with an integer expression of another width that
/// width when the value fits. The comparison means the same, and the canonical text and the
/// equality index then do not depend on how the constant was written (`5` or `$1` against
/// an int8 column).
fn normalize_integer_constant(name: &'static str, declared: Vec<Type>, mut args: Vec<Expr>) -> (Vec<Type>, Vec<Expr>) {
    let is_comparison = matches!(name, "=" | "<>" | "<" | "<=" | ">" | ">=");
    if !is_comparison || args.len() != 2 || declared[0] == declared[1] || !declared[0].is_integer() || !declared[1].is_integer() {
        return (declared, args);
    }
    let constant_index = match (&args[0].kind, &args[1].kind) {
        (ExprKind::Const(Some(Value::Int(_))), other) if !matches!(other, ExprKind::Const(_)) => 0,
        (other, ExprKind::Const(Some(Value::Int(_)))) if !matches!(other, ExprKind::Const(_)) => 1,
        _ => return (declared, args),
    };
    let target = declared[1 - constant_index].clone();
    let ExprKind::Const(Some(Value::Int(value))) = args[constant_index].kind else { return (declared, args) };
    let Some((min, max)) = target.integer_range() else { return (declared, args) };
    if value < min || value > max {
        return (declared, args);
    }
    args[constant_index].ty = target.clone();
    (vec![target.clone(), target], args)
}

fn fold_all(args: Vec<Expr>) -> Result<Vec<Expr>, FilterError> {
    args.into_iter().map(fold).collect()
}

/// Replaces a node whose inputs are all constants with its value.
fn evaluate_if_constant(expr: Expr) -> Result<Expr, FilterError> {
    if expr.is_const() || !children_constant(&expr) || is_stable(&expr) {
        return Ok(expr);
    }
    let value = eval::evaluate(&expr, &mut Row::empty()).map_err(|message| FilterError { message, location: expr.location })?;
    Ok(Expr::constant(value, expr.ty, expr.location))
}

/// True when the node itself (not its inputs) calls a function PostgreSQL 15 marks stable
/// (`pg_proc.provolatile = 's'`), which the planner does not fold.
fn is_stable(expr: &Expr) -> bool {
    match &expr.kind {
        ExprKind::Cast { input, .. } => cast_is_stable(&input.ty, &expr.ty),
        ExprKind::Operator { name, declared, .. } => operator_is_stable(name, declared),
        ExprKind::ScalarArray { name, declared, .. } => operator_is_stable(name, declared),
        ExprKind::Distinct { declared, .. } => operator_is_stable("=", declared),
        ExprKind::In { items, .. } => items.iter().any(|(declared, _)| operator_is_stable("=", declared)),
        ExprKind::Function { function, .. } => *function == Function::Concat,
        _ => false,
    }
}

/// Casts between date/time types that involve the session time zone, and text conversions
/// whose input or output function is stable (dates, times, intervals, enums, arrays).
fn cast_is_stable(from: &Type, to: &Type) -> bool {
    let is_string = |ty: &Type| matches!(ty, Type::Text | Type::Varchar | Type::Bpchar);
    match (from, to) {
        _ if from == to => false,
        (Type::Array(from_element), Type::Array(to_element)) => cast_is_stable(from_element, to_element),
        (Type::Date | Type::Timestamp, Type::Timestamptz) | (Type::Timestamptz, Type::Date | Type::Time | Type::Timestamp) => true,
        _ if is_string(from) && is_string(to) => false,
        _ if is_string(to) => matches!(from, Type::Date | Type::Timestamp | Type::Timestamptz | Type::Interval | Type::Enum(_) | Type::Array(_)),
        _ if is_string(from) => {
            matches!(to, Type::Date | Type::Time | Type::Timestamp | Type::Timestamptz | Type::Interval | Type::Enum(_) | Type::Array(_))
        }
        _ => false,
    }
}

/// Operators whose function is stable: `timestamptz ± interval`, comparisons of date or
/// timestamp with timestamptz, and `||` between text and a non-text value.
fn operator_is_stable(name: &str, declared: &[Type]) -> bool {
    let has = |ty: &Type| declared.contains(ty);
    match name {
        "+" | "-" => has(&Type::Timestamptz) && has(&Type::Interval),
        "||" => has(&Type::Text) && declared.iter().any(|ty| *ty != Type::Text && !ty.is_array()),
        "=" | "<>" | "<" | "<=" | ">" | ">=" => (has(&Type::Date) || has(&Type::Timestamp)) && has(&Type::Timestamptz),
        _ => false,
    }
}

/// True when every direct input of the node is a constant. Inputs were folded first, so a
/// non-constant input contains a column or a stable operation.
fn children_constant(expr: &Expr) -> bool {
    let all_const = |items: &[Expr]| items.iter().all(Expr::is_const);
    match &expr.kind {
        ExprKind::Column(_) | ExprKind::Const(_) | ExprKind::Unresolved { .. } => false,
        ExprKind::Cast { input, .. } => input.is_const(),
        ExprKind::Not(arg) | ExprKind::NullTest { arg, .. } | ExprKind::BoolTest { arg, .. } => arg.is_const(),
        ExprKind::And(args)
        | ExprKind::Or(args)
        | ExprKind::Operator { args, .. }
        | ExprKind::Function { args, .. }
        | ExprKind::ArrayConstructor(args)
        | ExprKind::Coalesce(args)
        | ExprKind::MinMax { args, .. } => all_const(args),
        ExprKind::Distinct { left, right, .. } => left.is_const() && right.is_const(),
        ExprKind::ScalarArray { left, array, .. } => left.is_const() && array.is_const(),
        ExprKind::In { left, items, .. } => left.is_const() && items.iter().all(|(_, item)| item.is_const()),
        ExprKind::Like { arg, pattern, escape, .. } => {
            arg.is_const() && pattern.is_const() && escape.as_ref().is_none_or(|escape| escape.is_const())
        }
    }
}

/// Simplifies AND (`is_and`) or OR as `simplify_and_arguments` and `simplify_or_arguments`
/// do. Nested junctions are flattened and arguments are folded in order. The first constant
/// FALSE (TRUE for OR) ends the whole junction without folding the rest. Other constants
/// are dropped, and a NULL constant is kept once at the end.
fn fold_junction(args: Vec<Expr>, is_and: bool, location: Option<usize>) -> Result<Expr, FilterError> {
    let mut pending: std::collections::VecDeque<Expr> = args.into();
    let mut remaining = Vec::new();
    let mut saw_null = false;
    while let Some(arg) = pending.pop_front() {
        let nested = match arg.kind {
            ExprKind::And(inner) if is_and => Some(inner),
            ExprKind::Or(inner) if !is_and => Some(inner),
            kind => {
                let arg = Expr { kind, ..arg };
                let folded = fold(arg)?;
                match &folded.kind {
                    ExprKind::Const(None) => saw_null = true,
                    ExprKind::Const(Some(Value::Bool(flag))) => {
                        if *flag != is_and {
                            return Ok(Expr::constant(Some(Value::Bool(*flag)), Type::Bool, location));
                        }
                    }
                    // A nested junction that folded into the same kind is flattened too.
                    ExprKind::And(_) if is_and => {
                        let ExprKind::And(inner) = folded.kind else { unreachable!("matched above") };
                        remaining.extend(inner);
                    }
                    ExprKind::Or(_) if !is_and => {
                        let ExprKind::Or(inner) = folded.kind else { unreachable!("matched above") };
                        remaining.extend(inner);
                    }
                    _ => remaining.push(folded),
                }
                None
            }
        };
        if let Some(inner) = nested {
            for item in inner.into_iter().rev() {
                pending.push_front(item);
            }
        }
    }
    if remaining.is_empty() {
        return Ok(Expr::constant(if saw_null { None } else { Some(Value::Bool(is_and)) }, Type::Bool, location));
    }
    if saw_null {
        remaining.push(Expr::constant(None, Type::Bool, location));
    }
    if remaining.len() == 1 {
        return Ok(remaining.pop().expect("one argument"));
    }
    let kind = if is_and { ExprKind::And(remaining) } else { ExprKind::Or(remaining) };
    Ok(Expr::new(kind, Type::Bool, location))
}

/// Simplifies COALESCE: NULL constants are dropped and the first non-NULL constant ends the
/// list.
fn fold_coalesce(args: Vec<Expr>, ty: Type, collation: Option<Arc<str>>, location: Option<usize>) -> Result<Expr, FilterError> {
    let mut remaining = Vec::new();
    for arg in args {
        let folded = fold(arg)?;
        if folded.is_null_const() {
            continue;
        }
        let is_constant = folded.is_const();
        remaining.push(folded);
        if is_constant {
            break;
        }
    }
    match remaining.len() {
        0 => Ok(Expr::constant(None, ty, location)),
        1 => Ok(remaining.pop().expect("one argument")),
        _ => Ok(Expr { kind: ExprKind::Coalesce(remaining), ty, collation, location }),
    }
}
