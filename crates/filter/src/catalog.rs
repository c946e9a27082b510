//! The operators, functions and casts of PostgreSQL 15's catalog (`pg_operator`, `pg_proc`,
//! `pg_cast`) restricted to the supported types, and PostgreSQL's algorithm for choosing
//! among candidates (`oper_select_candidate`, `func_select_candidate`, `select_common_type`).
//! The operator list was read from a PostgreSQL 15.18 catalog.

use std::sync::OnceLock;

use crate::types::{Category, Type};

/// A declared argument or result type in an operator or function signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Signature {
    Exact(Type),
    AnyArray,
    AnyEnum,
    AnyNonArray,
    AnyCompatible,
    AnyCompatibleArray,
}

impl Signature {
    fn category(&self) -> Category {
        match self {
            Signature::Exact(ty) => ty.category(),
            _ => Category::Pseudo,
        }
    }

    fn is_preferred(&self) -> bool {
        matches!(self, Signature::Exact(ty) if ty.is_preferred())
    }

    fn is_polymorphic(&self) -> bool {
        !matches!(self, Signature::Exact(_))
    }
}

/// One `pg_operator` or `pg_proc` row: a name, argument types and a result type.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    pub name: &'static str,
    pub arguments: Vec<Signature>,
    pub result: Signature,
}

/// An operator or function chosen for actual argument types, with its polymorphic types
/// replaced by real ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub name: &'static str,
    /// The type each argument must be coerced to.
    pub arguments: Vec<Type>,
    pub result: Type,
}

/// The minimum cast context a conversion needs (`pg_cast.castcontext`, plus the automatic
/// I/O conversions to and from string types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum CastContext {
    Implicit,
    Assignment,
    Explicit,
}

/// Returns the context needed to convert `from` to `to`, or `None` when no conversion
/// exists.
pub(crate) fn cast_context(from: &Type, to: &Type) -> Option<CastContext> {
    use Type::*;
    if from == to || *from == Unknown {
        return Some(CastContext::Implicit);
    }
    if matches!(from, Unsupported(_)) || matches!(to, Unsupported(_) | Unknown) {
        return None;
    }
    let implicit = Some(CastContext::Implicit);
    let assignment = Some(CastContext::Assignment);
    let explicit = Some(CastContext::Explicit);
    let string = |ty: &Type| matches!(ty, Text | Varchar | Bpchar);
    match (from, to) {
        (Int2, Int4 | Int8 | Float4 | Float8 | Numeric) => implicit,
        (Int4, Int8 | Float4 | Float8 | Numeric) => implicit,
        (Int8, Float4 | Float8 | Numeric) => implicit,
        (Float4, Float8) => implicit,
        (Numeric, Float4 | Float8) => implicit,
        (Int4, Int2) | (Int8, Int2 | Int4) => assignment,
        (Float4 | Float8, Int2 | Int4 | Int8 | Numeric) | (Float8, Float4) => assignment,
        (Numeric, Int2 | Int4 | Int8) => assignment,
        (Int4, Bool) | (Bool, Int4) => explicit,
        (Text | Varchar | Bpchar, Text | Varchar | Bpchar) => implicit,
        (Date, Timestamp | Timestamptz) | (Timestamp, Timestamptz) | (Time, Interval) => implicit,
        (Timestamp, Date | Time) | (Timestamptz, Date | Time | Timestamp) | (Interval, Time) => assignment,
        (Array(from_element), Array(to_element)) => cast_context(from_element, to_element),
        // Automatic I/O conversions: to a string type by assignment, from one explicitly.
        (_, to) if string(to) => assignment,
        (from, _) if string(from) => explicit,
        _ => None,
    }
}

fn can_coerce_implicitly(from: &Type, to: &Type) -> bool {
    cast_context(from, to) == Some(CastContext::Implicit)
}

/// Operator rows for the supported types.
fn operators() -> &'static [Candidate] {
    static OPERATORS: OnceLock<Vec<Candidate>> = OnceLock::new();
    OPERATORS.get_or_init(build_operators)
}

fn build_operators() -> Vec<Candidate> {
    use Signature::*;
    use Type::*;
    let exact = |ty: &Type| Exact(ty.clone());
    let mut list = Vec::new();
    let mut binary = |name: &'static str, left: Signature, right: Signature, result: Signature| {
        list.push(Candidate { name, arguments: vec![left, right], result });
    };
    let integers = [Int2, Int4, Int8];
    let comparison_pairs: Vec<(Type, Type)> = {
        let mut pairs = Vec::new();
        for left in &integers {
            for right in &integers {
                pairs.push((left.clone(), right.clone()));
            }
        }
        for (left, right) in [(Float4, Float4), (Float4, Float8), (Float8, Float4), (Float8, Float8)] {
            pairs.push((left, right));
        }
        for ty in [Bool, Text, Bpchar, Date, Time, Timestamp, Timestamptz, Interval, Numeric, Uuid] {
            pairs.push((ty.clone(), ty));
        }
        for (left, right) in [
            (Date, Timestamp),
            (Date, Timestamptz),
            (Timestamp, Date),
            (Timestamp, Timestamptz),
            (Timestamptz, Date),
            (Timestamptz, Timestamp),
        ] {
            pairs.push((left, right));
        }
        pairs
    };
    for name in ["=", "<>", "<", "<=", ">", ">="] {
        for (left, right) in &comparison_pairs {
            binary(name, exact(left), exact(right), Exact(Bool));
        }
        binary(name, AnyArray, AnyArray, Exact(Bool));
        binary(name, AnyEnum, AnyEnum, Exact(Bool));
    }

    // Integer arithmetic: mixed widths compute in the wider type.
    let wider = |left: &Type, right: &Type| if *left == Int8 || *right == Int8 { Int8 } else if *left == Int4 || *right == Int4 { Int4 } else { Int2 };
    for name in ["+", "-", "*", "/"] {
        for left in &integers {
            for right in &integers {
                binary(name, exact(left), exact(right), Exact(wider(left, right)));
            }
        }
        binary(name, Exact(Float4), Exact(Float4), Exact(Float4));
        binary(name, Exact(Float4), Exact(Float8), Exact(Float8));
        binary(name, Exact(Float8), Exact(Float4), Exact(Float8));
        binary(name, Exact(Float8), Exact(Float8), Exact(Float8));
        binary(name, Exact(Numeric), Exact(Numeric), Exact(Numeric));
    }
    for ty in [Int2, Int4, Int8, Numeric] {
        binary("%", exact(&ty), exact(&ty), exact(&ty));
    }

    // Date and time arithmetic.
    binary("+", Exact(Int4), Exact(Date), Exact(Date));
    binary("+", Exact(Date), Exact(Int4), Exact(Date));
    binary("+", Exact(Date), Exact(Time), Exact(Timestamp));
    binary("+", Exact(Date), Exact(Interval), Exact(Timestamp));
    binary("+", Exact(Time), Exact(Date), Exact(Timestamp));
    binary("+", Exact(Time), Exact(Interval), Exact(Time));
    binary("+", Exact(Timestamp), Exact(Interval), Exact(Timestamp));
    binary("+", Exact(Timestamptz), Exact(Interval), Exact(Timestamptz));
    binary("+", Exact(Interval), Exact(Date), Exact(Timestamp));
    binary("+", Exact(Interval), Exact(Time), Exact(Time));
    binary("+", Exact(Interval), Exact(Timestamp), Exact(Timestamp));
    binary("+", Exact(Interval), Exact(Timestamptz), Exact(Timestamptz));
    binary("+", Exact(Interval), Exact(Interval), Exact(Interval));
    binary("-", Exact(Date), Exact(Int4), Exact(Date));
    binary("-", Exact(Date), Exact(Date), Exact(Int4));
    binary("-", Exact(Date), Exact(Interval), Exact(Timestamp));
    binary("-", Exact(Time), Exact(Time), Exact(Interval));
    binary("-", Exact(Time), Exact(Interval), Exact(Time));
    binary("-", Exact(Timestamp), Exact(Timestamp), Exact(Interval));
    binary("-", Exact(Timestamp), Exact(Interval), Exact(Timestamp));
    binary("-", Exact(Timestamptz), Exact(Timestamptz), Exact(Interval));
    binary("-", Exact(Timestamptz), Exact(Interval), Exact(Timestamptz));
    binary("-", Exact(Interval), Exact(Interval), Exact(Interval));
    binary("*", Exact(Float8), Exact(Interval), Exact(Interval));
    binary("*", Exact(Interval), Exact(Float8), Exact(Interval));
    binary("/", Exact(Interval), Exact(Float8), Exact(Interval));

    binary("||", Exact(Text), Exact(Text), Exact(Text));
    binary("||", Exact(Text), AnyNonArray, Exact(Text));
    binary("||", AnyNonArray, Exact(Text), Exact(Text));
    binary("||", AnyCompatible, AnyCompatibleArray, AnyCompatibleArray);
    binary("||", AnyCompatibleArray, AnyCompatible, AnyCompatibleArray);
    binary("||", AnyCompatibleArray, AnyCompatibleArray, AnyCompatibleArray);
    for name in ["@>", "<@", "&&"] {
        binary(name, AnyArray, AnyArray, Exact(Bool));
    }
    for name in ["~~", "~~*"] {
        binary(name, Exact(Text), Exact(Text), Exact(Bool));
        binary(name, Exact(Bpchar), Exact(Text), Exact(Bool));
    }

    // Prefix operators.
    for ty in [Int2, Int4, Int8, Float4, Float8, Numeric, Interval] {
        list.push(Candidate { name: "-", arguments: vec![exact(&ty)], result: exact(&ty) });
    }
    for ty in [Int2, Int4, Int8, Float4, Float8, Numeric] {
        list.push(Candidate { name: "+", arguments: vec![exact(&ty)], result: exact(&ty) });
    }
    list
}

/// Function rows for the supported functions that have ordinary signatures. `coalesce`,
/// `greatest`, `least` and `concat` are resolved by their own rules.
fn functions() -> &'static [Candidate] {
    static FUNCTIONS: OnceLock<Vec<Candidate>> = OnceLock::new();
    FUNCTIONS.get_or_init(|| {
        use Signature::Exact;
        use Type::*;
        let function = |name: &'static str, arguments: Vec<Type>, result: Type| Candidate {
            name,
            arguments: arguments.into_iter().map(Exact).collect(),
            result: Exact(result),
        };
        let mut list = vec![
            function("lower", vec![Text], Text),
            function("upper", vec![Text], Text),
            function("length", vec![Text], Int4),
            function("length", vec![Bpchar], Int4),
            function("btrim", vec![Text], Text),
            function("btrim", vec![Text, Text], Text),
            function("ltrim", vec![Text], Text),
            function("ltrim", vec![Text, Text], Text),
            function("rtrim", vec![Text], Text),
            function("rtrim", vec![Text, Text], Text),
            function("like_escape", vec![Text, Text], Text),
        ];
        for ty in [Int2, Int4, Int8, Float4, Float8, Numeric] {
            list.push(function("abs", vec![ty.clone()], ty));
        }
        list
    })
}

/// True when some function of this name is in the supported catalog.
pub(crate) fn is_known_function(name: &str) -> bool {
    functions().iter().any(|candidate| candidate.name == name)
}

/// Chooses the operator `name` for the argument types (one for a prefix operator, two for a
/// binary one) as `oper()` does.
pub(crate) fn resolve_operator(name: &str, arguments: &[Type]) -> Result<Resolved, String> {
    let candidates: Vec<&Candidate> = operators().iter().filter(|c| c.name == name && c.arguments.len() == arguments.len()).collect();
    let not_found = || match arguments {
        [right] => format!("operator does not exist: {name} {right}"),
        [left, right] => format!("operator does not exist: {left} {name} {right}"),
        _ => format!("operator does not exist: {name}"),
    };
    if candidates.is_empty() {
        return Err(not_found());
    }
    // `binary_oper_exact`: an unknown side is assumed to have the other side's type.
    let mut exact_types = arguments.to_vec();
    if let [left, right] = exact_types.as_mut_slice() {
        if *left == Type::Unknown && *right != Type::Unknown {
            *left = right.clone();
        } else if *right == Type::Unknown && *left != Type::Unknown {
            *right = left.clone();
        }
    }
    if let Some(found) = candidates.iter().find(|c| c.arguments.iter().zip(&exact_types).all(|(s, t)| *s == Signature::Exact(t.clone()))) {
        return finish(found, arguments).ok_or_else(not_found);
    }
    let chosen = select_candidate(&candidates, arguments).map_err(|ambiguous| {
        if ambiguous {
            match arguments {
                [right] => format!("operator is not unique: {name} {right}"),
                [left, right] => format!("operator is not unique: {left} {name} {right}"),
                _ => format!("operator is not unique: {name}"),
            }
        } else {
            not_found()
        }
    })?;
    finish(chosen, arguments).ok_or_else(not_found)
}

/// Chooses the function `name` for the argument types as `func_get_detail` does.
pub(crate) fn resolve_function(name: &str, arguments: &[Type]) -> Result<Resolved, String> {
    let candidates: Vec<&Candidate> = functions().iter().filter(|c| c.name == name && c.arguments.len() == arguments.len()).collect();
    let listed: Vec<String> = arguments.iter().map(Type::to_string).collect();
    let not_found = || format!("function {name}({}) does not exist", listed.join(", "));
    if let Some(found) = candidates.iter().find(|c| c.arguments.iter().zip(arguments).all(|(s, t)| *s == Signature::Exact(t.clone()))) {
        return finish(found, arguments).ok_or_else(not_found);
    }
    let chosen = select_candidate(&candidates, arguments).map_err(|ambiguous| {
        if ambiguous {
            format!("function {name}({}) is not unique", listed.join(", "))
        } else {
            not_found()
        }
    })?;
    finish(chosen, arguments).ok_or_else(not_found)
}

/// Replaces polymorphic types with actual ones (`enforce_generic_type_consistency`).
fn finish(candidate: &Candidate, arguments: &[Type]) -> Option<Resolved> {
    let (element, compatible) = polymorphic_types(&candidate.arguments, arguments)?;
    let concrete = |signature: &Signature| -> Option<Type> {
        Some(match signature {
            Signature::Exact(ty) => ty.clone(),
            Signature::AnyArray => Type::Array(Box::new(element.clone()?)),
            Signature::AnyEnum | Signature::AnyNonArray => element.clone()?,
            Signature::AnyCompatible => compatible.clone()?,
            Signature::AnyCompatibleArray => Type::Array(Box::new(compatible.clone()?)),
        })
    };
    let arguments = candidate.arguments.iter().map(concrete).collect::<Option<Vec<_>>>()?;
    let result = concrete(&candidate.result)?;
    Some(Resolved { name: candidate.name, arguments, result })
}

/// Returns the element type bound to `anyarray`/`anyenum`/`anynonarray` and the common type
/// bound to the `anycompatible` family, or `None` (the outer option) when the arguments do
/// not fit.
#[allow(clippy::type_complexity)]
fn polymorphic_types(signatures: &[Signature], arguments: &[Type]) -> Option<(Option<Type>, Option<Type>)> {
    let mut element: Option<Type> = None;
    let mut compatible_inputs: Vec<Type> = Vec::new();
    let mut has_compatible = false;
    for (signature, actual) in signatures.iter().zip(arguments) {
        let bound = match (signature, actual) {
            (Signature::Exact(_), _) => continue,
            (Signature::AnyCompatible | Signature::AnyCompatibleArray, _) => {
                has_compatible = true;
                if *actual == Type::Unknown {
                    continue;
                }
                if *signature == Signature::AnyCompatibleArray {
                    compatible_inputs.push(actual.element()?.clone());
                } else {
                    compatible_inputs.push(actual.clone());
                }
                continue;
            }
            (_, Type::Unknown) => continue,
            (Signature::AnyArray, actual) => actual.element()?.clone(),
            (Signature::AnyEnum, actual @ Type::Enum(_)) => actual.clone(),
            (Signature::AnyNonArray, actual) if !actual.is_array() => actual.clone(),
            _ => return None,
        };
        match &element {
            Some(existing) if *existing != bound => return None,
            _ => element = Some(bound),
        }
    }
    if element.is_none() && signatures.iter().any(|s| matches!(s, Signature::AnyArray | Signature::AnyEnum | Signature::AnyNonArray)) {
        // Every polymorphic input is an unknown literal: PostgreSQL cannot pick a type.
        return None;
    }
    let compatible = if has_compatible {
        if compatible_inputs.is_empty() {
            return None;
        }
        let common = select_common_type(&compatible_inputs, "").ok()?;
        if compatible_inputs.iter().any(|input| !can_coerce_implicitly(input, &common)) {
            return None;
        }
        Some(common)
    } else {
        None
    };
    Some((element, compatible))
}

fn can_coerce_to_signature(actual: &Type, signature: &Signature) -> bool {
    if *actual == Type::Unknown {
        return true;
    }
    match signature {
        Signature::Exact(ty) => can_coerce_implicitly(actual, ty),
        Signature::AnyArray | Signature::AnyCompatibleArray => actual.is_array(),
        Signature::AnyEnum => matches!(actual, Type::Enum(_)),
        Signature::AnyNonArray => !actual.is_array() && !matches!(actual, Type::Unsupported(_)),
        Signature::AnyCompatible => !matches!(actual, Type::Unsupported(_)),
    }
}

fn fits(candidate: &Candidate, arguments: &[Type]) -> bool {
    candidate.arguments.iter().zip(arguments).all(|(signature, actual)| can_coerce_to_signature(actual, signature))
        && (!candidate.arguments.iter().any(Signature::is_polymorphic) || polymorphic_types(&candidate.arguments, arguments).is_some())
}

/// `func_match_argtypes` followed by `func_select_candidate`. `Err(true)` means several
/// candidates remain (ambiguous), `Err(false)` that none fits.
fn select_candidate<'a>(candidates: &[&'a Candidate], arguments: &[Type]) -> Result<&'a Candidate, bool> {
    let mut remaining: Vec<&Candidate> = candidates.iter().copied().filter(|c| fits(c, arguments)).collect();
    match remaining.len() {
        0 => return Err(false),
        1 => return Ok(remaining[0]),
        _ => {}
    }
    let unknown = |index: usize| arguments[index] == Type::Unknown;

    // Keep the candidates with the most exact matches on known argument types.
    let exact_matches = |candidate: &Candidate| {
        (0..arguments.len()).filter(|&i| !unknown(i) && candidate.arguments[i] == Signature::Exact(arguments[i].clone())).count()
    };
    remaining = keep_best(remaining, exact_matches);
    if remaining.len() == 1 {
        return Ok(remaining[0]);
    }

    // Then those with exact matches or preferred types where a conversion is needed.
    let preferred_matches = |candidate: &Candidate| {
        (0..arguments.len())
            .filter(|&i| {
                !unknown(i)
                    && (candidate.arguments[i] == Signature::Exact(arguments[i].clone())
                        || (candidate.arguments[i].is_preferred() && candidate.arguments[i].category() == arguments[i].category()))
            })
            .count()
    };
    remaining = keep_best(remaining, preferred_matches);
    if remaining.len() == 1 {
        return Ok(remaining[0]);
    }

    // Resolve unknown arguments by category: the string category wins, otherwise all
    // candidates must agree; within the category a preferred type wins.
    if (0..arguments.len()).any(unknown) {
        let mut resolved = true;
        let mut slots: Vec<Option<(Category, bool)>> = vec![None; arguments.len()];
        for (index, slot) in slots.iter_mut().enumerate() {
            if !unknown(index) {
                continue;
            }
            let mut conflict = false;
            for candidate in &remaining {
                let signature = &candidate.arguments[index];
                let (category, preferred) = (signature.category(), signature.is_preferred());
                match slot {
                    None => *slot = Some((category, preferred)),
                    Some((slot_category, slot_preferred)) if *slot_category == category => *slot_preferred |= preferred,
                    Some(_) if category == Category::String => *slot = Some((category, preferred)),
                    Some(_) => conflict = true,
                }
            }
            if conflict && slot.is_some_and(|(category, _)| category != Category::String) {
                resolved = false;
                break;
            }
        }
        if resolved {
            let in_category: Vec<&Candidate> = remaining
                .iter()
                .copied()
                .filter(|candidate| {
                    slots.iter().enumerate().all(|(index, slot)| match slot {
                        None => true,
                        Some((category, has_preferred)) => {
                            let signature = &candidate.arguments[index];
                            signature.category() == *category && (!has_preferred || signature.is_preferred())
                        }
                    })
                })
                .collect();
            if !in_category.is_empty() {
                remaining = in_category;
            }
            if remaining.len() == 1 {
                return Ok(remaining[0]);
            }
        }

        // Last resort: if all known arguments have the same type, assume the unknown ones
        // have it too.
        let known: Vec<&Type> = arguments.iter().filter(|ty| **ty != Type::Unknown).collect();
        if let Some(first) = known.first() {
            if known.iter().all(|ty| ty == first) {
                let assumed: Vec<Type> = arguments.iter().map(|_| (*first).clone()).collect();
                let matching: Vec<&Candidate> = remaining.iter().copied().filter(|c| fits(c, &assumed)).collect();
                if matching.len() == 1 {
                    return Ok(matching[0]);
                }
            }
        }
    }
    Err(true)
}

fn keep_best(candidates: Vec<&Candidate>, score: impl Fn(&Candidate) -> usize) -> Vec<&Candidate> {
    let best = candidates.iter().map(|c| score(c)).max().unwrap_or(0);
    candidates.into_iter().filter(|c| score(c) == best).collect()
}

/// `select_common_type`: the type that a list of expressions (an IN list, ARRAY[...],
/// COALESCE arguments) is converted to. `context` names the construct in the error.
pub(crate) fn select_common_type(types: &[Type], context: &str) -> Result<Type, String> {
    let Some(first) = types.first() else {
        return Ok(Type::Text);
    };
    if *first != Type::Unknown && types.iter().all(|ty| ty == first) {
        return Ok(first.clone());
    }
    let mut chosen = first.clone();
    for next in &types[1..] {
        if *next == Type::Unknown || *next == chosen {
            continue;
        }
        if chosen == Type::Unknown {
            chosen = next.clone();
        } else if next.category() != chosen.category() {
            return Err(format!("{context} types {chosen} and {next} cannot be matched"));
        } else if !chosen.is_preferred() && can_coerce_implicitly(&chosen, next) && !can_coerce_implicitly(next, &chosen) {
            chosen = next.clone();
        }
    }
    if chosen == Type::Unknown {
        chosen = Type::Text;
    }
    Ok(chosen)
}

/// True when an implicit conversion exists, as `can_coerce_type` checks for common types.
pub(crate) fn can_coerce(from: &Type, to: &Type) -> bool {
    can_coerce_implicitly(from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(name: &str, left: Type, right: Type) -> (Vec<Type>, Type) {
        let resolved = resolve_operator(name, &[left, right]).unwrap();
        (resolved.arguments, resolved.result)
    }

    #[test]
    fn mixed_numeric_comparisons() {
        assert_eq!(resolve("=", Type::Int4, Type::Float4).0, vec![Type::Float8, Type::Float4]);
        assert_eq!(resolve("=", Type::Numeric, Type::Float8).0, vec![Type::Float8, Type::Float8]);
        assert_eq!(resolve("=", Type::Int4, Type::Numeric).0, vec![Type::Numeric, Type::Numeric]);
        assert_eq!(resolve("=", Type::Int8, Type::Int4).0, vec![Type::Int8, Type::Int4]);
        assert_eq!(resolve("=", Type::Int8, Type::Unknown).0, vec![Type::Int8, Type::Int8]);
    }

    #[test]
    fn string_resolution() {
        assert_eq!(resolve("=", Type::Unknown, Type::Unknown).0, vec![Type::Text, Type::Text]);
        assert_eq!(resolve("=", Type::Bpchar, Type::Varchar).0, vec![Type::Bpchar, Type::Bpchar]);
        assert_eq!(resolve("=", Type::Bpchar, Type::Text).0, vec![Type::Text, Type::Text]);
        assert_eq!(resolve("||", Type::Unknown, Type::Unknown).0, vec![Type::Text, Type::Text]);
        assert_eq!(resolve("||", Type::Text, Type::Int4).0, vec![Type::Text, Type::Int4]);
        assert_eq!(resolve_function("length", &[Type::Unknown]).unwrap().arguments, vec![Type::Text]);
        assert_eq!(resolve_function("length", &[Type::Varchar]).unwrap().arguments, vec![Type::Text]);
        assert_eq!(resolve_function("length", &[Type::Bpchar]).unwrap().arguments, vec![Type::Bpchar]);
    }

    #[test]
    fn array_operators() {
        let int_array = Type::Array(Box::new(Type::Int4));
        let bigint_array = Type::Array(Box::new(Type::Int8));
        assert_eq!(resolve("||", int_array.clone(), Type::Unknown).1, int_array);
        assert_eq!(resolve("||", int_array.clone(), Type::Int4).0, vec![int_array.clone(), Type::Int4]);
        assert_eq!(resolve("||", int_array.clone(), Type::Int8).1, bigint_array);
        assert!(resolve_operator("@>", &[bigint_array, int_array.clone()]).is_err());
        assert_eq!(resolve("=", int_array.clone(), Type::Unknown).0, vec![int_array.clone(), int_array]);
    }

    #[test]
    fn prefix_minus_on_unknown_is_ambiguous() {
        assert!(resolve_operator("-", &[Type::Unknown]).unwrap_err().contains("not unique"));
    }

    #[test]
    fn common_types() {
        assert_eq!(select_common_type(&[Type::Int8, Type::Int4, Type::Int4], "IN"), Ok(Type::Int8));
        assert_eq!(select_common_type(&[Type::Int4, Type::Numeric], "IN"), Ok(Type::Numeric));
        assert_eq!(select_common_type(&[Type::Unknown, Type::Unknown], "IN"), Ok(Type::Text));
        assert!(select_common_type(&[Type::Int4, Type::Text], "IN").is_err());
    }
}
