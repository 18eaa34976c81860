//! A YAML emitter for manifests that every reader parses back to the same values.
//!
//! kubectl reads YAML 1.1, where plain `yes`, `off`, `0x1F`, `1_000` or `2001-12-14` are not
//! strings; serde_yaml writes YAML 1.2 and leaves them plain, so an environment value `yes`
//! would reach the API server as a boolean. This emitter writes a string plain only when it is
//! plainly a string under both versions, multi-line strings as literal blocks, and everything
//! else double-quoted (JSON escaping is valid YAML). Block style, two-space indentation,
//! sequences in mappings at the key's indentation (the Kubernetes documentation's style).

use serde_json::Value;

/// Words YAML 1.1 resolves to booleans or null, compared in lowercase.
const RESERVED: &[&str] = &[
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~",
];
/// Characters a plain string may hold besides ASCII alphanumerics.
const PLAIN_EXTRA: &str = " _./-=+()$%:@^";

/// Renders a value as one YAML document.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => mapping(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => sequence(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other, 0).0);
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn mapping(out: &mut String, map: &serde_json::Map<String, Value>, indent: usize) {
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            pad(out, indent);
        }
        out.push_str(&string(k, indent).0);
        out.push(':');
        match v {
            Value::Object(m) if !m.is_empty() => {
                out.push('\n');
                pad(out, indent + 2);
                mapping(out, m, indent + 2);
            }
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                pad(out, indent);
                sequence(out, a, indent);
            }
            other => {
                let (text, block) = scalar(other, indent + 2);
                out.push(' ');
                out.push_str(&text);
                if !block {
                    out.push('\n');
                }
            }
        }
    }
}

fn sequence(out: &mut String, items: &[Value], indent: usize) {
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            pad(out, indent);
        }
        out.push_str("- ");
        match v {
            Value::Object(m) if !m.is_empty() => mapping(out, m, indent + 2),
            Value::Array(a) if !a.is_empty() => {
                sequence(out, a, indent + 2);
            }
            other => {
                let (text, block) = scalar(other, indent + 2);
                out.push_str(&text);
                if !block {
                    out.push('\n');
                }
            }
        }
    }
}

/// A scalar (or empty collection) and whether it is a literal block (which ends its line).
fn scalar(v: &Value, indent: usize) -> (String, bool) {
    match v {
        Value::Null => ("null".into(), false),
        Value::Bool(b) => (b.to_string(), false),
        Value::Number(n) => (n.to_string(), false),
        Value::String(s) => string(s, indent),
        Value::Array(_) => ("[]".into(), false),
        Value::Object(_) => ("{}".into(), false),
    }
}

fn string(s: &str, indent: usize) -> (String, bool) {
    if is_plain(s) {
        (s.to_string(), false)
    } else if let Some(block) = literal_block(s, indent) {
        (block, true)
    } else {
        (Value::String(s.to_string()).to_string(), false)
    }
}

/// Whether `s` reads back as this string under YAML 1.1 and 1.2 when written plain.
fn is_plain(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let chars_ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || PLAIN_EXTRA.contains(c));
    let start_ok = match first {
        // Options like `-c` and `--listen`, not `-1` or `- x`.
        '-' => s
            .trim_start_matches('-')
            .starts_with(|c: char| c.is_ascii_alphabetic()),
        // Numbers, dates, times, hex, octal and binary all start with a digit: plain only
        // with a letter none of them uses.
        '0'..='9' => {
            !s.contains(['_', ':'])
                && s.chars().any(|c| {
                    c.is_ascii_alphabetic() && !c.is_ascii_hexdigit() && !"xXoO".contains(c)
                })
        }
        c => c.is_ascii_alphabetic() || "/_$".contains(c),
    };
    chars_ok
        && start_ok
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str())
}

/// `s` as a literal block scalar (`|`, `|-` or `|+` by its trailing newlines), if it has more
/// than one line and nothing a block cannot carry.
fn literal_block(s: &str, indent: usize) -> Option<String> {
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    let printable = s.chars().all(|c| c == '\n' || !c.is_control());
    let trailing_space = body.split('\n').any(|l| l.ends_with([' ', '\t']));
    if !body.contains('\n') || !printable || trailing_space || body.starts_with([' ', '\n']) {
        return None;
    }
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let mut out = format!("|{chomp}\n");
    for line in body.split('\n') {
        if !line.is_empty() {
            out.extend(std::iter::repeat_n(' ', indent));
            out.push_str(line);
        }
        out.push('\n');
    }
    out.extend(std::iter::repeat_n('\n', trailing.saturating_sub(1)));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(v: &Value) -> String {
        let text = to_string(v);
        let back: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(&back, v, "{text}");
        text
    }

    #[test]
    fn yaml_1_1_look_alikes_are_quoted() {
        for s in [
            "yes",
            "No",
            "ON",
            "off",
            "y",
            "true",
            "null",
            "~",
            "1_000",
            "0x1F",
            "0o17",
            "0b11",
            "1e3",
            "2001-12-14",
            "1:30",
            "10.0.0.53",
            "-1",
            "",
            " lead",
            "trail ",
            "a: b",
            "#x",
            "x #y",
            "*ref",
            "&a",
            "!tag",
            "[a]",
            "{a}",
            "'q'",
            "\"q\"",
            "=",
            "<<",
        ] {
            let text = round_trip(&json!({ "v": s }));
            assert!(text.starts_with("v: \""), "{s:?} must be quoted: {text}");
        }
    }

    #[test]
    fn plain_strings_stay_plain() {
        for s in [
            "nginx:1.27",
            "-c",
            "--for=condition=Available",
            "1Gi",
            "1500m",
            "/bin/sh",
            "berth.dev/project",
            "$(HOME)",
            "echo hi",
            "http://db:5432/x",
            "TCP",
        ] {
            let text = round_trip(&json!({ "v": s }));
            assert_eq!(text, format!("v: {s}\n"));
        }
    }

    #[test]
    fn multi_line_strings_are_literal_blocks() {
        for s in [
            "a\nb",
            "a\nb\n",
            "a\nb\n\n",
            "a\n\n  b\n",
            "x: 1\n---\n# c\n",
        ] {
            let text = round_trip(&json!({ "data": { "k": s }, "list": [s] }));
            assert!(text.contains("k: |"), "{text}");
        }
        round_trip(&json!({ "k": " indented\nfirst line" }));
        round_trip(&json!({ "k": "tab\there\nx" }));
        round_trip(&json!({ "k": "a\n   \nb", "l": "a \nb" }));
    }

    #[test]
    fn nesting_follows_the_kubernetes_style() {
        let v = json!({
            "kind": "Pod",
            "spec": {
                "containers": [{ "name": "a", "args": ["-c", "x"], "env": [] }],
                "empty": {},
                "n": 3,
                "count": 1,
                "b": false,
                "z": null
            }
        });
        let text = round_trip(&v);
        assert_eq!(
            text,
            "kind: Pod\nspec:\n  b: false\n  containers:\n  - args:\n    - -c\n    - x\n    \
             env: []\n    name: a\n  count: 1\n  empty: {}\n  \"n\": 3\n  z: null\n"
        );
        round_trip(&json!([[1, 2], [[3]], {"a": [[]]}]));
    }
}
