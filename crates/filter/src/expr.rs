//! The checked expression tree: every node has its SQL type, and every operator and
//! function is the catalog entry PostgreSQL would choose, with implicit conversions as
//! explicit `Cast` nodes.

use std::sync::Arc;

use crate::types::Type;
use crate::value::Value;

/// A typed expression node.
#[derive(Clone, Debug)]
pub(crate) struct Expr {
    pub kind: ExprKind,
    pub ty: Type,
    /// Collation name inherited from a column; `None` is the database default.
    pub collation: Option<Arc<str>>,
    /// Byte offset of the node in the clause text, when known.
    pub location: Option<usize>,
}

/// The kinds of nodes. Operators and functions keep the argument types their catalog entry
/// declares; the arguments have already been converted to them.
#[derive(Clone, Debug)]
pub(crate) enum ExprKind {
    /// A column, by index into the column list.
    Column(usize),
    /// A constant; `None` is NULL.
    Const(Option<Value>),
    /// A `$n` parameter (or string literal) whose type the context has not fixed yet. Its
    /// type is `Unknown` and the text is the value.
    Unresolved { text: Arc<str>, parameter: Option<usize> },
    /// A conversion to the node's type. `explicit` casts come from the clause text; the others
    /// are PostgreSQL's implicit conversions and are not rendered.
    Cast { input: Box<Expr>, explicit: bool, modifier: Option<TypeModifier> },
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    /// A prefix (one argument) or binary operator.
    Operator { name: &'static str, declared: Vec<Type>, args: Vec<Expr> },
    Function { function: Function, args: Vec<Expr> },
    NullTest { arg: Box<Expr>, negated: bool },
    BoolTest { arg: Box<Expr>, test: BoolTest },
    /// `IS [NOT] DISTINCT FROM`, using the `=` operator of the declared types.
    Distinct { left: Box<Expr>, right: Box<Expr>, declared: Vec<Type>, negated: bool },
    /// `left op ANY (array)` or `left op ALL (array)`; `declared` is the operator's left type
    /// and element type.
    ScalarArray { name: &'static str, declared: Vec<Type>, left: Box<Expr>, array: Box<Expr>, all: bool },
    /// `left [NOT] IN (items)`: each item with the declared types of its `=` operator.
    In { left: Box<Expr>, items: Vec<(Vec<Type>, Expr)>, negated: bool },
    /// `[NOT] LIKE` / `ILIKE`; `bpchar` marks `character` input, matched with its padding.
    Like { arg: Box<Expr>, pattern: Box<Expr>, escape: Option<Box<Expr>>, case_insensitive: bool, negated: bool, bpchar: bool },
    /// `ARRAY[...]`, elements already converted to the element type.
    ArrayConstructor(Vec<Expr>),
    Coalesce(Vec<Expr>),
    /// `GREATEST` (true) or `LEAST` (false).
    MinMax { greatest: bool, args: Vec<Expr> },
}

/// Functions with ordinary argument lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Function {
    Lower,
    Upper,
    Length,
    Abs,
    Btrim,
    Ltrim,
    Rtrim,
    Concat,
}

impl Function {
    pub(crate) fn sql_name(self) -> &'static str {
        match self {
            Function::Lower => "lower",
            Function::Upper => "upper",
            Function::Length => "length",
            Function::Abs => "abs",
            Function::Btrim => "btrim",
            Function::Ltrim => "ltrim",
            Function::Rtrim => "rtrim",
            Function::Concat => "concat",
        }
    }
}

/// `IS [NOT] TRUE / FALSE / UNKNOWN`, named as the SQL reads.
#[allow(clippy::enum_variant_names)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BoolTest {
    IsTrue,
    IsNotTrue,
    IsFalse,
    IsNotFalse,
    IsUnknown,
    IsNotUnknown,
}

impl BoolTest {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            BoolTest::IsTrue => "IS TRUE",
            BoolTest::IsNotTrue => "IS NOT TRUE",
            BoolTest::IsFalse => "IS FALSE",
            BoolTest::IsNotFalse => "IS NOT FALSE",
            BoolTest::IsUnknown => "IS UNKNOWN",
            BoolTest::IsNotUnknown => "IS NOT UNKNOWN",
        }
    }
}

/// A type modifier applied by a cast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TypeModifier {
    /// `varchar(n)`: longer values are cut to n characters.
    Varchar(u32),
    /// `char(n)`: values are cut or padded with spaces to n characters.
    Bpchar(u32),
    /// `numeric(precision, scale)`.
    Numeric(u32, u32),
}

impl TypeModifier {
    pub(crate) fn sql(self) -> String {
        match self {
            TypeModifier::Varchar(length) | TypeModifier::Bpchar(length) => format!("({length})"),
            TypeModifier::Numeric(precision, scale) => format!("({precision},{scale})"),
        }
    }
}

impl Expr {
    pub(crate) fn new(kind: ExprKind, ty: Type, location: Option<usize>) -> Expr {
        Expr { kind, ty, collation: None, location }
    }

    pub(crate) fn constant(value: Option<Value>, ty: Type, location: Option<usize>) -> Expr {
        Expr::new(ExprKind::Const(value), ty, location)
    }

    pub(crate) fn is_const(&self) -> bool {
        matches!(self.kind, ExprKind::Const(_))
    }

    pub(crate) fn is_null_const(&self) -> bool {
        matches!(self.kind, ExprKind::Const(None))
    }

    /// True when the expression reads no column.
    pub(crate) fn is_row_independent(&self) -> bool {
        let mut independent = true;
        self.visit(&mut |node| {
            if matches!(node.kind, ExprKind::Column(_)) {
                independent = false;
            }
        });
        independent
    }

    /// Calls `visitor` on this node and every node below it.
    pub(crate) fn visit(&self, visitor: &mut dyn FnMut(&Expr)) {
        visitor(self);
        match &self.kind {
            ExprKind::Column(_) | ExprKind::Const(_) | ExprKind::Unresolved { .. } => {}
            ExprKind::Cast { input, .. } => input.visit(visitor),
            ExprKind::Not(arg) | ExprKind::NullTest { arg, .. } | ExprKind::BoolTest { arg, .. } => arg.visit(visitor),
            ExprKind::And(args)
            | ExprKind::Or(args)
            | ExprKind::Operator { args, .. }
            | ExprKind::Function { args, .. }
            | ExprKind::ArrayConstructor(args)
            | ExprKind::Coalesce(args)
            | ExprKind::MinMax { args, .. } => args.iter().for_each(|arg| arg.visit(visitor)),
            ExprKind::Distinct { left, right, .. } => {
                left.visit(visitor);
                right.visit(visitor);
            }
            ExprKind::ScalarArray { left, array, .. } => {
                left.visit(visitor);
                array.visit(visitor);
            }
            ExprKind::In { left, items, .. } => {
                left.visit(visitor);
                items.iter().for_each(|(_, item)| item.visit(visitor));
            }
            ExprKind::Like { arg, pattern, escape, .. } => {
                arg.visit(visitor);
                pattern.visit(visitor);
                if let Some(escape) = escape {
                    escape.visit(visitor);
                }
            }
        }
    }
}
