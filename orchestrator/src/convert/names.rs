//! Kubernetes naming and value rules: object names from compose keys (RFC 1123 and RFC 1035
//! labels), annotation keys, resource quantities, and escaping of the `$(VAR)` expansion the
//! kubelet applies to commands, arguments and environment values.

/// Longest DNS label.
const MAX_LABEL: usize = 63;

/// A compose key as an RFC 1123 label (most object names): lowercase alphanumerics and `-`, at
/// most 63 characters, starting and ending with an alphanumeric.
pub fn label_name(key: &str) -> String {
    let mapped: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let trimmed: String = mapped.trim_matches('-').chars().take(MAX_LABEL).collect();
    let trimmed = trimmed.trim_end_matches('-');
    if trimmed.is_empty() {
        "x".to_string()
    } else {
        trimmed.to_string()
    }
}

/// A compose key as an RFC 1035 label (Service names): an RFC 1123 label that starts with a
/// letter (`s-` is put in front of a leading digit).
pub fn service_name(key: &str) -> String {
    let label = label_name(key);
    if label.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return label;
    }
    let prefixed: String = format!("s-{label}").chars().take(MAX_LABEL).collect();
    prefixed.trim_end_matches('-').to_string()
}

/// Whether `s` is an RFC 1123 label.
pub fn is_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_LABEL && label_name(s) == s
}

/// Whether `s` is an RFC 1123 subdomain (names of ConfigMaps, Secrets and claims): labels
/// joined by dots, at most 253 characters.
pub fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// Whether `key` is a valid label or annotation key: an optional DNS subdomain prefix and `/`,
/// then a name of at most 63 alphanumerics, `-`, `_` and `.`, starting and ending with an
/// alphanumeric.
pub fn is_qualified_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= MAX_LABEL
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| is_label(l) && l == l.to_lowercase())
    });
    name_ok && prefix_ok
}

/// Whether `s` is a resource quantity the API server accepts (`1Gi`, `500M`, `0.5`, `100m`).
pub fn is_quantity(s: &str) -> bool {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let digits_end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(digits_end);
    let number_ok = !number.is_empty()
        && number != "."
        && number.matches('.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit());
    let suffix_ok = matches!(
        suffix,
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "m" | "k" | "M" | "G" | "T" | "P" | "E"
    ) || suffix
        .strip_prefix(['e', 'E'])
        .map(|e| e.strip_prefix(['+', '-']).unwrap_or(e))
        .is_some_and(|e| !e.is_empty() && e.chars().all(|c| c.is_ascii_digit()));
    number_ok && suffix_ok
}

/// Escapes `s` so that the kubelet's `$(VAR)` expansion gives back `s`: a `$` followed by `$`
/// or `(` is doubled (the kubelet turns `$$` into `$`).
pub fn escape_expansion(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '$' && matches!(chars.peek(), Some('$' | '(')) {
            out.push('$');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_rfc1123_labels() {
        assert_eq!(label_name("My_Web.app"), "my-web-app");
        assert_eq!(label_name("_db_"), "db");
        assert_eq!(label_name("___"), "x");
        assert_eq!(label_name(&"a".repeat(70)).len(), 63);
        assert!(is_label("web-1"));
        assert!(!is_label("web_1"));
        assert!(is_subdomain("company.conf"));
        assert!(!is_subdomain("vault_token"));
    }

    #[test]
    fn service_names_start_with_a_letter() {
        assert_eq!(service_name("3proxy"), "s-3proxy");
        assert_eq!(service_name("db"), "db");
        assert_eq!(service_name(&"9".repeat(70)).len(), 63);
    }

    #[test]
    fn qualified_keys_follow_the_label_key_rules() {
        assert!(is_qualified_key("tier"));
        assert!(is_qualified_key("com.example.description"));
        assert!(is_qualified_key("traefik.io/router_1.rule"));
        assert!(!is_qualified_key("Traefik.IO/x"));
        assert!(!is_qualified_key("-x"));
        assert!(!is_qualified_key(&"a".repeat(64)));
        assert!(!is_qualified_key("a/b/c"));
    }

    #[test]
    fn quantities_are_checked() {
        for ok in ["1Gi", "500M", "0.5", "100m", "1e3", "+2Ki", ".5Gi"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "1GB", "Gi", "1.2.3", "five", "1 Gi", "."] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }

    #[test]
    fn expansion_is_escaped_only_where_needed() {
        assert_eq!(escape_expansion("echo $HOME"), "echo $HOME");
        assert_eq!(escape_expansion("$(hostname)"), "$$(hostname)");
        assert_eq!(escape_expansion("a$$b"), "a$$$b");
        assert_eq!(escape_expansion("cost: 5$"), "cost: 5$");
    }
}
