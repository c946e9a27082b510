//! Renders the checked tree as SQL that PostgreSQL evaluates the same way: identifiers
//! quoted, constants as quoted literals with a cast, every operation parenthesised, and
//! implicit conversions left for PostgreSQL to add again.

use crate::expr::{Expr, ExprKind};
use crate::types::{quote_identifier, quote_literal, Type};
use crate::value;
use crate::ColumnSpec;

/// Renders `expr` into `out`.
pub(crate) fn render(expr: &Expr, columns: &[ColumnSpec], out: &mut String) {
    let list = |items: &[Expr], separator: &str, out: &mut String| {
        for (index, item) in items.iter().enumerate() {
            if index > 0 {
                out.push_str(separator);
            }
            render(item, columns, out);
        }
    };
    match &expr.kind {
        ExprKind::Column(index) => out.push_str(&quote_identifier(&columns[*index].name)),
        ExprKind::Const(value) => render_constant(&expr.ty, value.as_ref(), out),
        ExprKind::Unresolved { text, .. } => {
            out.push_str(&quote_literal(text));
            out.push_str("::text");
        }
        ExprKind::Cast { input, explicit, modifier } => {
            if !explicit {
                render(input, columns, out);
                return;
            }
            out.push_str("CAST(");
            render(input, columns, out);
            out.push_str(" AS ");
            out.push_str(&expr.ty.cast_name());
            if let Some(modifier) = modifier {
                out.push_str(&modifier.sql());
            }
            out.push(')');
        }
        ExprKind::Not(arg) => {
            out.push_str("(NOT ");
            render(arg, columns, out);
            out.push(')');
        }
        ExprKind::And(args) | ExprKind::Or(args) => {
            let separator = if matches!(expr.kind, ExprKind::And(_)) { " AND " } else { " OR " };
            out.push('(');
            list(args, separator, out);
            out.push(')');
        }
        ExprKind::Operator { name, args, .. } => {
            out.push('(');
            if let [arg] = args.as_slice() {
                out.push_str(name);
                out.push(' ');
                render(arg, columns, out);
            } else {
                render(&args[0], columns, out);
                out.push(' ');
                out.push_str(name);
                out.push(' ');
                render(&args[1], columns, out);
            }
            out.push(')');
        }
        ExprKind::Function { function, args } => {
            out.push_str(function.sql_name());
            out.push('(');
            list(args, ", ", out);
            out.push(')');
        }
        ExprKind::NullTest { arg, negated } => {
            out.push('(');
            render(arg, columns, out);
            out.push_str(if *negated { " IS NOT NULL)" } else { " IS NULL)" });
        }
        ExprKind::BoolTest { arg, test } => {
            out.push('(');
            render(arg, columns, out);
            out.push(' ');
            out.push_str(test.sql());
            out.push(')');
        }
        ExprKind::Distinct { left, right, negated, .. } => {
            out.push('(');
            render(left, columns, out);
            out.push_str(if *negated { " IS NOT DISTINCT FROM " } else { " IS DISTINCT FROM " });
            render(right, columns, out);
            out.push(')');
        }
        ExprKind::ScalarArray { name, left, array, all, .. } => {
            out.push('(');
            render(left, columns, out);
            out.push(' ');
            out.push_str(name);
            out.push_str(if *all { " ALL (" } else { " ANY (" });
            render(array, columns, out);
            out.push_str("))");
        }
        ExprKind::In { left, items, negated } => {
            out.push('(');
            render(left, columns, out);
            out.push_str(if *negated { " NOT IN (" } else { " IN (" });
            for (index, (_, item)) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                render(item, columns, out);
            }
            out.push_str("))");
        }
        ExprKind::Like { arg, pattern, escape, case_insensitive, negated, .. } => {
            out.push('(');
            render(arg, columns, out);
            out.push_str(match (negated, case_insensitive) {
                (false, false) => " LIKE ",
                (false, true) => " ILIKE ",
                (true, false) => " NOT LIKE ",
                (true, true) => " NOT ILIKE ",
            });
            render(pattern, columns, out);
            if let Some(escape) = escape {
                out.push_str(" ESCAPE ");
                render(escape, columns, out);
            }
            out.push(')');
        }
        ExprKind::ArrayConstructor(items) => {
            out.push_str("ARRAY[");
            list(items, ", ", out);
            out.push(']');
        }
        ExprKind::Coalesce(args) => {
            out.push_str("COALESCE(");
            list(args, ", ", out);
            out.push(')');
        }
        ExprKind::MinMax { greatest, args } => {
            out.push_str(if *greatest { "GREATEST(" } else { "LEAST(" });
            list(args, ", ", out);
            out.push(')');
        }
    }
}

/// Renders a constant as `'text'::type`. Enum constants stay untyped literals, which
/// PostgreSQL resolves to the enum type from the other operand. That avoids naming the enum
/// type, whose schema is not known here.
fn render_constant(ty: &Type, value: Option<&value::Value>, out: &mut String) {
    let untyped = contains_enum(ty) || *ty == Type::Unknown;
    match value {
        None => out.push_str("NULL"),
        Some(value) => out.push_str(&quote_literal(&value::format_value(ty, value))),
    }
    if !untyped {
        out.push_str("::");
        out.push_str(&ty.cast_name());
    }
}

fn contains_enum(ty: &Type) -> bool {
    match ty {
        Type::Enum(_) => true,
        Type::Array(element) => contains_enum(element),
        _ => false,
    }
}
