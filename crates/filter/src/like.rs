//! `LIKE` matching with PostgreSQL 15's semantics: `_` matches one character, `%` any run
//! (newlines included), a backslash escapes the next pattern character, and a pattern ending
//! in an escape is an error only when matching reaches it.

/// Maximum nesting of `%` retries before the pattern is rejected as too complex, where
/// PostgreSQL would report exceeding its stack depth limit.
const MAX_RECURSION: usize = 1000;

const TRAILING_ESCAPE: &str = "LIKE pattern must not end with escape character";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Matched,
    NotMatched,
    /// The text ran out: trying later start positions cannot succeed either.
    Abort,
}

/// Rewrites a pattern with a custom escape character into one that uses backslash, as
/// `like_escape` does. An empty escape turns escaping off.
pub(crate) fn apply_escape(pattern: &str, escape: &str) -> Result<String, String> {
    let mut escape_chars = escape.chars();
    let Some(escape_char) = escape_chars.next() else {
        return Ok(pattern.replace('\\', "\\\\"));
    };
    if escape_chars.next().is_some() {
        return Err("invalid escape string: the escape string must be empty or one character".to_owned());
    }
    if escape_char == '\\' {
        return Ok(pattern.to_owned());
    }
    let mut result = String::with_capacity(pattern.len());
    let mut after_escape = false;
    for c in pattern.chars() {
        if c == escape_char && !after_escape {
            result.push('\\');
            after_escape = true;
        } else if c == '\\' {
            result.push('\\');
            if !after_escape {
                result.push('\\');
            }
            after_escape = false;
        } else {
            result.push(c);
            after_escape = false;
        }
    }
    Ok(result)
}

/// Matches `text` against a backslash-escaped pattern.
pub(crate) fn like_match(text: &str, pattern: &str) -> Result<bool, String> {
    let text: Vec<char> = text.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    Ok(match_from(&text, &pattern, 0)? == Outcome::Matched)
}

fn match_from(text: &[char], pattern: &[char], depth: usize) -> Result<Outcome, String> {
    if depth > MAX_RECURSION {
        return Err("LIKE pattern is too complex to evaluate".to_owned());
    }
    if pattern == ['%'] {
        return Ok(Outcome::Matched);
    }
    let (mut t, mut p) = (0, 0);
    while t < text.len() && p < pattern.len() {
        match pattern[p] {
            '\\' => {
                p += 1;
                let Some(&literal) = pattern.get(p) else {
                    return Err(TRAILING_ESCAPE.to_owned());
                };
                if literal != text[t] {
                    return Ok(Outcome::NotMatched);
                }
            }
            '%' => {
                p += 1;
                // A run of % and _ matches any text at least as long as the number of _.
                while p < pattern.len() {
                    match pattern[p] {
                        '%' => p += 1,
                        '_' => {
                            if t >= text.len() {
                                return Ok(Outcome::Abort);
                            }
                            t += 1;
                            p += 1;
                        }
                        _ => break,
                    }
                }
                if p >= pattern.len() {
                    return Ok(Outcome::Matched);
                }
                let first = if pattern[p] == '\\' {
                    *pattern.get(p + 1).ok_or_else(|| TRAILING_ESCAPE.to_owned())?
                } else {
                    pattern[p]
                };
                while t < text.len() {
                    if text[t] == first {
                        let outcome = match_from(&text[t..], &pattern[p..], depth + 1)?;
                        if outcome != Outcome::NotMatched {
                            return Ok(outcome);
                        }
                    }
                    t += 1;
                }
                return Ok(Outcome::Abort);
            }
            '_' => {}
            literal => {
                if literal != text[t] {
                    return Ok(Outcome::NotMatched);
                }
            }
        }
        t += 1;
        p += 1;
    }
    if t < text.len() {
        return Ok(Outcome::NotMatched);
    }
    while p < pattern.len() && pattern[p] == '%' {
        p += 1;
    }
    Ok(if p >= pattern.len() { Outcome::Matched } else { Outcome::Abort })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn like(text: &str, pattern: &str) -> bool {
        like_match(text, pattern).unwrap()
    }

    #[test]
    fn wildcards() {
        assert!(like("abc", "a%"));
        assert!(like("abc", "_b_"));
        assert!(!like("abc", "_b"));
        assert!(like("a\nb", "a%b"));
        assert!(like("a\nb", "a_b"));
        assert!(like("", "%"));
        assert!(!like("", "_"));
        assert!(like("50%", "50\\%"));
        assert!(!like("500", "50\\%"));
        assert!(like("ÄÖ", "_Ö"));
    }

    #[test]
    fn trailing_escape_fails_only_when_reached() {
        // Outcomes checked against PostgreSQL 15.
        assert!(!like("abc", "x\\"));
        assert!(!like("x", "x\\"));
        assert!(like_match("xy", "x\\").is_err());
        assert!(!like("xa", "%a\\"));
        assert!(like_match("ab", "%\\").is_err());
    }

    #[test]
    fn custom_escape_rewrites_pattern() {
        assert_eq!(apply_escape("a!%b\\", "!").unwrap(), "a\\%b\\\\");
        assert_eq!(apply_escape("a\\b", "").unwrap(), "a\\\\b");
        assert!(apply_escape("a", "ab").is_err());
    }
}
