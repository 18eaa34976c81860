//! `.env` and `env_file` parsing, as Compose reads them.
//!
//! One `KEY=VALUE` per line (an `export ` prefix is allowed); blank lines and lines starting with
//! `#` are skipped. Unquoted values end at the end of the line, lose surrounding blanks and an
//! inline comment (` #...`). Single-quoted values are literal and may span lines; double-quoted
//! values may span lines and understand `\n`, `\t`, `\\`, `\"` and `\$`. Unquoted and
//! double-quoted values are interpolated (`${VAR:-x}`), looking in the process environment first
//! and then in the variables defined earlier in the same file.

use std::collections::BTreeMap;

use super::interpolate::substitute;

/// A parse error at a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DotenvError {
    pub line: usize,
    pub message: String,
}

/// Parses an env file; `env` is the process environment used for interpolation.
pub(crate) fn parse(
    text: &str,
    env: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, DotenvError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut defined: BTreeMap<String, String> = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let err = |message: String| DotenvError {
            line: line_no,
            message,
        };
        let line = lines[i].trim_start();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, rest)) = line.split_once('=') else {
            return Err(err(format!("expected KEY=VALUE, found {line:?}")));
        };
        let key = key.trim_end();
        let valid_key = key
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
        if !valid_key {
            return Err(err(format!(
                "invalid variable name {key:?}: use letters, digits and underscores"
            )));
        }
        let rest = rest.trim_start();
        let (raw, expand) = match rest.chars().next() {
            Some(q @ ('\'' | '"')) => {
                let (value, consumed) = quoted(&lines, i - 1, rest, q)
                    .ok_or_else(|| err(format!("value of {key} has no closing {q}")))?;
                i += consumed;
                (value, q == '"')
            }
            _ => (unquoted(rest), true),
        };
        let value = if expand {
            let lookup = |k: &str| env.get(k).or_else(|| defined.get(k)).cloned();
            let mut unset = Vec::new();
            substitute(&raw, &lookup, &mut unset).map_err(|e| err(format!("{key}: {e}")))?
        } else {
            raw
        };
        defined.insert(key.to_string(), value.clone());
        out.retain(|(k, _)| k != key);
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// An unquoted value without its inline comment and surrounding blanks.
fn unquoted(rest: &str) -> String {
    let mut end = rest.len();
    let bytes = rest.as_bytes();
    for (idx, b) in bytes.iter().enumerate() {
        if *b == b'#' && (idx == 0 || bytes[idx - 1] == b' ' || bytes[idx - 1] == b'\t') {
            end = idx;
            break;
        }
    }
    rest[..end].trim().to_string()
}

/// A quoted value starting at `first` (the rest of line `start`), possibly spanning lines;
/// returns the value and how many extra lines it consumed.
fn quoted(lines: &[&str], start: usize, first: &str, q: char) -> Option<(String, usize)> {
    let mut text = first[1..].to_string();
    let mut consumed = 0;
    loop {
        if let Some(end) = closing_quote(&text, q) {
            let body = &text[..end];
            let value = if q == '"' {
                unescape(body)
            } else {
                body.to_string()
            };
            return Some((value, consumed));
        }
        consumed += 1;
        let next = lines.get(start + consumed)?;
        text.push('\n');
        text.push_str(next);
    }
}

fn closing_quote(text: &str, q: char) -> Option<usize> {
    let mut escaped = false;
    for (idx, c) in text.char_indices() {
        if q == '"' && c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        if c == q && !escaped {
            return Some(idx);
        }
        escaped = false;
    }
    None
}

fn unescape(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            // `\$` stays escaped for the interpolation that follows.
            Some('$') => out.push_str("$$"),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Vec<(String, String)> {
        let env: BTreeMap<String, String> = [("HOME".to_string(), "/root".to_string())].into();
        parse(text, &env).unwrap()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn plain_values_comments_and_blanks() {
        let got = parse_ok(
            "# comment\n\nA=1\nexport B = two words \nC=url.com # free examples\nD=a#b\nE=\n",
        );
        assert_eq!(
            got,
            pairs(&[
                ("A", "1"),
                ("B", "two words"),
                ("C", "url.com"),
                ("D", "a#b"),
                ("E", "")
            ])
        );
    }

    #[test]
    fn quoted_values() {
        let got =
            parse_ok("S='lit $HOME # x'\nD=\"a\\nb \\\"q\\\" $HOME\"\nM=\"line1\nline2\"\nN=1");
        assert_eq!(
            got,
            pairs(&[
                ("S", "lit $HOME # x"),
                ("D", "a\nb \"q\" /root"),
                ("M", "line1\nline2"),
                ("N", "1")
            ])
        );
    }

    #[test]
    fn values_interpolate_environment_then_earlier_lines() {
        let got = parse_ok("A=x\nB=${A}-${HOME}\nC=${NOPE:-d}\nD=\\$A\nE=\"\\$A\"");
        assert_eq!(
            got,
            pairs(&[
                ("A", "x"),
                ("B", "x-/root"),
                ("C", "d"),
                ("D", "\\x"),
                ("E", "$A")
            ])
        );
    }

    #[test]
    fn errors_name_the_line() {
        let env = BTreeMap::new();
        let e = parse("A=1\nnot a pair\n", &env).unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.message, "expected KEY=VALUE, found \"not a pair\"");
        assert_eq!(parse("1A=x", &env).unwrap_err().line, 1);
        assert!(parse("A=\"open", &env)
            .unwrap_err()
            .message
            .contains("no closing"));
    }
}
