//! Typed reading of YAML values with error collection: the toolkit of the normalize phase.
//!
//! Each reader takes the key path and the value, returns `Some(typed)` or records an error that
//! says what was expected and what was found (`expected an integer, found "three"`) and returns
//! `None`, so one pass reports every problem. Scalars that interpolation turned into strings are
//! accepted where the target type is a number or a boolean (`"3"`, `"true"`), as Compose does.

use serde_yaml::{Mapping, Value};

use super::error::{did_you_mean, Diagnostics};
use super::parse::join_key;

/// How a value is described in "found ..." messages.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Sequence(_) => "a sequence".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

/// A mapping key as text (keys are normally strings; numbers and booleans print as written).
pub(crate) fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        other => describe(other),
    }
}

/// A scalar as text, for keys whose values Compose stringifies (environment, labels, args).
pub(crate) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// What a mapping may contain: implemented keys and spec keys berth does not implement yet.
pub(crate) struct KeySet {
    /// Keys berth implements.
    pub known: &'static [&'static str],
    /// Keys of the Compose spec that berth rejects with "not supported yet".
    pub unsupported: &'static [&'static str],
}

/// Collects errors while reading values.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    /// Errors found so far.
    pub errors: Diagnostics,
}

impl Reader {
    /// Records an error.
    pub fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(path, message);
    }

    fn expected<T>(&mut self, path: &str, what: &str, v: &Value) -> Option<T> {
        self.error(path, format!("expected {what}, found {}", describe(v)));
        None
    }

    /// A mapping.
    pub fn map<'v>(&mut self, path: &str, v: &'v Value) -> Option<&'v Mapping> {
        match v {
            Value::Mapping(m) => Some(m),
            _ => self.expected(path, "a mapping", v),
        }
    }

    /// A sequence.
    pub fn seq<'v>(&mut self, path: &str, v: &'v Value) -> Option<&'v [Value]> {
        match v {
            Value::Sequence(s) => Some(s),
            _ => self.expected(path, "a sequence", v),
        }
    }

    /// The entries of a mapping with the keys checked against `keys`: unknown keys get a
    /// "did you mean" suggestion, unimplemented spec keys a "not supported yet" error; `x-*`
    /// keys are returned with the known ones. Yields `(key, path, value)`.
    pub fn fields<'v>(
        &mut self,
        path: &str,
        map: &'v Mapping,
        keys: &KeySet,
    ) -> Vec<(&'v str, String, &'v Value)> {
        let mut out = Vec::with_capacity(map.len());
        for (k, v) in map {
            let Value::String(key) = k else {
                self.error(
                    path,
                    format!("expected a string key, found {}", describe(k)),
                );
                continue;
            };
            let p = join_key(path, key);
            if keys.known.contains(&key.as_str()) || key.starts_with("x-") {
                out.push((key.as_str(), p, v));
            } else if keys.unsupported.contains(&key.as_str()) {
                self.error(
                    &p,
                    format!(
                        "`{key}` is not supported yet (berth does not implement it); remove it"
                    ),
                );
            } else {
                let hint = did_you_mean(key, keys.known.iter().copied());
                self.error(&p, format!("unknown key `{key}`{hint}"));
            }
        }
        out
    }

    /// A string (numbers are accepted and printed as written).
    pub fn string(&mut self, path: &str, v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => self.expected(path, "a string", v),
        }
    }

    /// A scalar as text (strings, numbers, booleans).
    pub fn scalar(&mut self, path: &str, v: &Value) -> Option<String> {
        match scalar_text(v) {
            Some(s) => Some(s),
            None => self.expected(path, "a string, number or boolean", v),
        }
    }

    /// A boolean (`true`/`false`, or `"true"`, `"yes"`, `"on"`, ... after interpolation).
    pub fn bool(&mut self, path: &str, v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "y" | "on" => Some(true),
                "false" | "no" | "n" | "off" => Some(false),
                _ => self.expected(path, "a boolean", v),
            },
            _ => self.expected(path, "a boolean", v),
        }
    }

    /// A non-negative integer.
    pub fn uint(&mut self, path: &str, v: &Value) -> Option<u64> {
        let parsed = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        if parsed.is_some() {
            return parsed;
        }
        let negative = match v {
            Value::Number(n) => n.as_i64().is_some_and(|n| n < 0),
            Value::String(s) => s.trim().parse::<i64>().is_ok_and(|n| n < 0),
            _ => false,
        };
        let what = if negative {
            "a non-negative integer"
        } else {
            "an integer"
        };
        self.expected(path, what, v)
    }

    /// A non-negative integer that fits `u32`.
    pub fn uint32(&mut self, path: &str, v: &Value) -> Option<u32> {
        let n = self.uint(path, v)?;
        match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => self.expected(path, "an integer below 4294967296", v),
        }
    }

    /// A signed integer.
    pub fn int(&mut self, path: &str, v: &Value) -> Option<i64> {
        let parsed = match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        parsed.or_else(|| self.expected(path, "an integer", v))
    }

    /// A number.
    pub fn float(&mut self, path: &str, v: &Value) -> Option<f64> {
        let parsed = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match parsed {
            Some(f) if f.is_finite() => Some(f),
            _ => self.expected(path, "a number", v),
        }
    }

    /// A duration in Go syntax (`1m30s`).
    pub fn duration(&mut self, path: &str, v: &Value) -> Option<std::time::Duration> {
        let Value::String(s) = v else {
            return self.expected(path, "a duration like \"1m30s\" or \"500ms\"", v);
        };
        super::units::parse_duration(s)
            .map_err(|e| self.error(path, e))
            .ok()
    }

    /// A byte size (`64m`, `1.5g`, or a number of bytes).
    pub fn bytes(&mut self, path: &str, v: &Value) -> Option<u64> {
        match v {
            Value::Number(n) => match n.as_u64() {
                Some(b) => Some(b),
                None => self.expected(path, "a byte size like \"64m\" or \"1.5g\"", v),
            },
            Value::String(s) => super::units::parse_bytes(s)
                .map_err(|e| self.error(path, e))
                .ok(),
            _ => self.expected(path, "a byte size like \"64m\" or \"1.5g\"", v),
        }
    }

    /// A string or a sequence of strings (`dns`, `env_file`).
    pub fn string_or_list(&mut self, path: &str, v: &Value) -> Option<Vec<String>> {
        match v {
            Value::String(s) => Some(vec![s.clone()]),
            Value::Sequence(items) => Some(self.strings(path, items)),
            _ => self.expected(path, "a string or a sequence of strings", v),
        }
    }

    /// A sequence of strings.
    pub fn string_list(&mut self, path: &str, v: &Value) -> Option<Vec<String>> {
        let items = self.seq(path, v)?;
        Some(self.strings(path, items))
    }

    fn strings(&mut self, path: &str, items: &[Value]) -> Vec<String> {
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.string(&super::parse::join_index(path, i), item))
            .collect()
    }

    /// Octal permission bits: `0440`, `"0o440"` or `440` read as octal digits.
    pub fn mode(&mut self, path: &str, v: &Value) -> Option<u32> {
        let text = match v {
            Value::Number(n) if n.is_u64() => n.to_string(),
            Value::String(s) => s.trim_start_matches("0o").to_string(),
            _ => return self.expected(path, "octal permission bits like 0440", v),
        };
        match u32::from_str_radix(&text, 8) {
            Ok(m) if m <= 0o7777 => Some(m),
            _ => self.expected(path, "octal permission bits like 0440", v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn type_errors_say_what_was_found() {
        let mut r = Reader::default();
        assert_eq!(r.uint("a.replicas", &yaml("three")), None);
        assert_eq!(r.bool("a.init", &yaml("[1]")), None);
        assert_eq!(r.map("a", &yaml("~")), None);
        assert_eq!(
            r.errors.to_string(),
            "a.replicas: expected an integer, found \"three\"\n\
             a.init: expected a boolean, found a sequence\n\
             a: expected a mapping, found null"
        );
    }

    #[test]
    fn interpolated_strings_convert_to_numbers_and_booleans() {
        let mut r = Reader::default();
        assert_eq!(r.uint("p", &yaml("'3'")), Some(3));
        assert_eq!(r.int("p", &yaml("'-1'")), Some(-1));
        assert_eq!(r.bool("p", &yaml("'yes'")), Some(true));
        assert_eq!(r.bool("p", &yaml("'FALSE'")), Some(false));
        assert_eq!(r.float("p", &yaml("'0.5'")), Some(0.5));
        assert_eq!(r.string("p", &yaml("1.0")), Some("1.0".into()));
        assert!(r.errors.is_empty(), "{}", r.errors);
    }

    #[test]
    fn fields_flag_unknown_and_unsupported_keys() {
        let keys = KeySet {
            known: &["environment", "image"],
            unsupported: &["logging"],
        };
        let mut r = Reader::default();
        let m = yaml("image: x\nenviroment: {}\nlogging: {}\nx-extra: 1\n");
        let got = r.fields("services.web", m.as_mapping().unwrap(), &keys);
        let names: Vec<&str> = got.iter().map(|f| f.0).collect();
        assert_eq!(names, ["image", "x-extra"]);
        assert_eq!(
            r.errors.to_string(),
            "services.web.enviroment: unknown key `enviroment` (did you mean `environment`?)\n\
             services.web.logging: `logging` is not supported yet (berth does not implement it); \
             remove it"
        );
    }

    #[test]
    fn modes_are_octal() {
        let mut r = Reader::default();
        assert_eq!(r.mode("m", &yaml("0440")), Some(0o440));
        assert_eq!(r.mode("m", &yaml("'0o755'")), Some(0o755));
        assert_eq!(r.mode("m", &yaml("1777")), Some(0o1777));
        assert_eq!(r.mode("m", &yaml("999")), None);
    }
}
