//! Phase 2: interpolate variables in values (never in keys).
//!
//! Syntax, as Compose has it: `$VAR`, `${VAR}`, `${VAR:-default}` (unset or empty),
//! `${VAR-default}` (unset), `${VAR:?message}` / `${VAR?message}` (error when unset or empty /
//! unset), `${VAR:+alt}` / `${VAR+alt}` (alt when set and non-empty / set), nesting in the
//! default, message and alternative (`${A:-${B:-x}}`), and `$$` for a literal `$`. An unset
//! variable without a default becomes the empty string and a warning. Values are looked up in the
//! process environment first, then in `.env` (or `--env-file`), which the caller merged into one map.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;

use super::error::Diagnostics;
use super::parse::{join_index, join_key};

/// Why a template could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplateError {
    /// The text is not a valid template.
    Invalid(String),
    /// `${VAR:?message}` with VAR unset.
    Required { var: String, message: String },
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateError::Invalid(m) => f.write_str(m),
            TemplateError::Required { var, message } if message.is_empty() => {
                write!(f, "required variable {var} is missing a value")
            }
            TemplateError::Required { var, message } => {
                write!(f, "required variable {var} is missing a value: {message}")
            }
        }
    }
}

/// Expands one template; names of unset variables used without a default go to `unset`.
pub(crate) fn substitute(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, TemplateError> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let Some(off) = text[i..].find('$') else {
            out.push_str(&text[i..]);
            break;
        };
        out.push_str(&text[i..i + off]);
        i += off;
        match bytes.get(i + 1) {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => {
                let end = closing_brace(text, i + 2)?;
                out.push_str(&braced(&text[i + 2..end], lookup, unset)?);
                i = end + 1;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                let len = name_len(&text[i + 1..]);
                let name = &text[i + 1..i + 1 + len];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => unset.push(name.to_string()),
                }
                i += 1 + len;
            }
            _ => {
                return Err(TemplateError::Invalid(format!(
                    "invalid interpolation in {text:?}: `$` must be followed by a variable \
                     name or `{{`; write `$$` for a literal `$`"
                )))
            }
        }
    }
    Ok(out)
}

fn name_len(s: &str) -> usize {
    s.bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count()
}

/// Index of the `}` closing a `${` whose content starts at `start`.
fn closing_brace(text: &str, start: usize) -> Result<usize, TemplateError> {
    let bytes = text.as_bytes();
    let mut depth = 1;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err(TemplateError::Invalid(format!(
        "invalid interpolation in {text:?}: `${{` is never closed with `}}`"
    )))
}

/// Evaluates the inside of `${...}`.
fn braced(
    inner: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, TemplateError> {
    let len = name_len(inner);
    let starts_ok = inner
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    if len == 0 || !starts_ok {
        return Err(TemplateError::Invalid(format!(
            "invalid interpolation \"${{{inner}}}\": expected a variable name"
        )));
    }
    let name = &inner[..len];
    let rest = &inner[len..];
    let value = lookup(name);
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let (op, arg) = [":-", ":?", ":+", "-", "?", "+"]
        .iter()
        .find_map(|op| rest.strip_prefix(op).map(|arg| (*op, arg)))
        .unwrap_or((rest, ""));
    let mut expand = |arg: &str| substitute(arg, lookup, unset);
    match op {
        "" => match value {
            Some(v) => Ok(v),
            None => {
                unset.push(name.to_string());
                Ok(String::new())
            }
        },
        ":-" if non_empty => Ok(value.unwrap_or_default()),
        ":-" => expand(arg),
        "-" => match value {
            Some(v) => Ok(v),
            None => expand(arg),
        },
        ":?" if non_empty => Ok(value.unwrap_or_default()),
        "?" if value.is_some() => Ok(value.unwrap_or_default()),
        ":?" | "?" => Err(TemplateError::Required {
            var: name.to_string(),
            message: expand(arg)?,
        }),
        ":+" if non_empty => expand(arg),
        "+" if value.is_some() => expand(arg),
        ":+" | "+" => Ok(String::new()),
        _ => Err(TemplateError::Invalid(format!(
            "invalid interpolation \"${{{inner}}}\": expected `}}`, `:-`, `-`, `:?`, `?`, `:+` \
             or `+` after the variable name"
        ))),
    }
}

/// One step of a key path, kept borrowed until a message needs the path.
enum Seg<'v> {
    Key(&'v Value),
    Index(usize),
}

fn path_of(prefix: &str, segs: &[Seg<'_>]) -> String {
    let mut path = prefix.to_string();
    for seg in segs {
        path = match seg {
            Seg::Key(k) => join_key(&path, &super::read::key_text(k)),
            Seg::Index(i) => join_index(&path, *i),
        };
    }
    path
}

/// Where interpolation reports.
struct Sink<'a> {
    prefix: &'a str,
    env: &'a BTreeMap<String, String>,
    errors: &'a mut Diagnostics,
    warned: &'a mut BTreeSet<String>,
    warnings: &'a mut Diagnostics,
}

/// Interpolates every string value under `value` (keys are left alone), reporting errors at
/// their key path and each unset variable once, at its first use.
pub(crate) fn interpolate_tree(
    value: &mut Value,
    path: &str,
    env: &BTreeMap<String, String>,
    errors: &mut Diagnostics,
    warned: &mut BTreeSet<String>,
    warnings: &mut Diagnostics,
) {
    let mut sink = Sink {
        prefix: path,
        env,
        errors,
        warned,
        warnings,
    };
    walk(value, &mut Vec::new(), &mut sink);
}

fn walk<'v>(value: &'v mut Value, segs: &mut Vec<Seg<'v>>, sink: &mut Sink<'_>) {
    match value {
        Value::String(s) if s.contains('$') => {
            let lookup = |k: &str| sink.env.get(k).cloned();
            let mut unset = Vec::new();
            match substitute(s, &lookup, &mut unset) {
                Ok(v) => *s = v,
                Err(e) => sink.errors.push(path_of(sink.prefix, segs), e.to_string()),
            }
            for var in unset {
                if sink.warned.insert(var.clone()) {
                    sink.warnings.push(
                        path_of(sink.prefix, segs),
                        format!("variable {var:?} is not set, using an empty string"),
                    );
                }
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                segs.push(Seg::Index(i));
                walk(item, segs, sink);
                segs.pop();
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                segs.push(Seg::Key(k));
                walk(v, segs, sink);
                segs.pop();
            }
        }
        Value::Tagged(t) => walk(&mut t.value, segs, sink),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<(String, Vec<String>), TemplateError> {
        let env: BTreeMap<&str, &str> =
            [("A", "a"), ("EMPTY", ""), ("N", "3"), ("B", "${A}")].into();
        let lookup = |k: &str| env.get(k).map(|v| v.to_string());
        let mut unset = Vec::new();
        substitute(text, &lookup, &mut unset).map(|s| (s, unset))
    }

    fn ok(text: &str) -> String {
        let (s, unset) = run(text).unwrap();
        assert!(unset.is_empty(), "{text}: unset {unset:?}");
        s
    }

    #[test]
    fn plain_and_braced_variables() {
        assert_eq!(ok("x$A-y"), "xa-y");
        assert_eq!(ok("${A}${N}"), "a3");
        assert_eq!(ok("no vars"), "no vars");
        assert_eq!(ok("$A.$N"), "a.3");
        assert_eq!(ok("${B}"), "${A}", "values are not expanded again");
    }

    #[test]
    fn defaults_distinguish_unset_and_empty() {
        assert_eq!(ok("${EMPTY:-d}"), "d");
        assert_eq!(ok("${EMPTY-d}"), "");
        assert_eq!(ok("${NOPE-d}"), "d");
        assert_eq!(ok("${NOPE:-d}"), "d");
        assert_eq!(ok("${A:-d}"), "a");
        assert_eq!(ok("${NOPE:-}"), "");
    }

    #[test]
    fn alternatives() {
        assert_eq!(ok("${A:+alt}"), "alt");
        assert_eq!(ok("${EMPTY:+alt}"), "");
        assert_eq!(ok("${EMPTY+alt}"), "alt");
        assert_eq!(ok("${NOPE+alt}"), "");
    }

    #[test]
    fn nesting_and_escapes() {
        assert_eq!(ok("${NOPE:-${A}}"), "a");
        assert_eq!(ok("${NOPE:-${NOPE2:-deep}}"), "deep");
        assert_eq!(ok("$$A"), "$A");
        assert_eq!(ok("$$(cat /run/secrets/x)"), "$(cat /run/secrets/x)");
        assert_eq!(ok("${NOPE:-$$literal}"), "$literal");
        assert_eq!(ok("${NOPE:-{braces}}"), "{braces}");
    }

    #[test]
    fn required_variables_report_their_message() {
        assert_eq!(ok("${A:?need A}"), "a");
        let err = run("${NOPE:?set NOPE in .env}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "required variable NOPE is missing a value: set NOPE in .env"
        );
        assert!(run("${EMPTY:?x}").is_err());
        assert_eq!(ok("${EMPTY?x}"), "");
        assert_eq!(
            run("${NOPE?}").unwrap_err().to_string(),
            "required variable NOPE is missing a value"
        );
    }

    #[test]
    fn unset_variables_are_reported() {
        let (s, unset) = run("a${NOPE}b$ALSO_NOPE").unwrap();
        assert_eq!(s, "ab");
        assert_eq!(unset, ["NOPE", "ALSO_NOPE"]);
    }

    #[test]
    fn invalid_templates_are_errors() {
        for bad in ["$", "a $1", "${", "${A", "${}", "${1A}", "${A B}", "${A:x}"] {
            let err = run(bad).unwrap_err();
            assert!(matches!(err, TemplateError::Invalid(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn trees_interpolate_values_not_keys() {
        let mut v: Value = serde_yaml::from_str(
            "services:\n  $A:\n    image: ${A}:${NOPE}\n    x: [$NOPE, \"${N:?}\"]\n",
        )
        .unwrap();
        let env: BTreeMap<String, String> = [("A".to_string(), "a".to_string())].into();
        let (mut errs, mut warns, mut warned) = Default::default();
        interpolate_tree(&mut v, "", &env, &mut errs, &mut warned, &mut warns);
        let svc = &v["services"]["$A"];
        assert_eq!(svc["image"].as_str(), Some("a:"));
        assert_eq!(warns.0.len(), 1, "warned once per variable");
        assert_eq!(warns.0[0].path, "services.$A.image");
        assert_eq!(errs.0.len(), 1);
        assert_eq!(errs.0[0].path, "services.$A.x[1]");
    }
}
