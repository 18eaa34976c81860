//! `.dockerignore` and path patterns.
//!
//! A pattern is matched segment by segment with Go's `filepath.Match` rules (`*`, `?`,
//! `[a-z]`, `[^x]`, `\` escapes), plus `**` matching any number of segments. In a
//! `.dockerignore`, a pattern excludes a path when it matches the path or one of its parent
//! directories, `!pattern` re-includes, and the last matching line wins, as Docker does.

/// A compiled path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    segments: Vec<String>,
}

impl Pattern {
    /// Compiles `p` (a `/`-separated relative path; a leading `/` and `./` are dropped, `.`
    /// and empty segments removed).
    pub fn new(p: &str) -> Pattern {
        Pattern {
            segments: clean(p).split('/').map(str::to_string).collect(),
        }
    }

    /// Whether the pattern matches the whole relative path `path`.
    pub fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = if path.is_empty() {
            Vec::new()
        } else {
            path.split('/').collect()
        };
        match_segments(&self.segments, &parts)
    }

    /// Whether the pattern matches `path` or one of its parent directories.
    pub fn matches_or_parent(&self, path: &str) -> bool {
        let mut p = path;
        loop {
            if self.matches(p) {
                return true;
            }
            match p.rsplit_once('/') {
                Some((parent, _)) => p = parent,
                None => return false,
            }
        }
    }

    /// Whether the pattern has wildcards.
    pub fn has_wildcards(s: &str) -> bool {
        s.contains(['*', '?', '['])
    }
}

/// `p` as a clean relative path: no leading `/`, no `.` or empty segments, `..` resolved
/// lexically (never above the top).
pub fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

fn match_segments(pat: &[String], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_segments(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((seg, tail)) => {
                glob(first.as_bytes(), seg.as_bytes()) && match_segments(rest, tail)
            }
            None => false,
        },
    }
}

/// Whether one path segment `name` matches the pattern segment `pattern`.
pub fn glob_segment(pattern: &str, name: &str) -> bool {
    glob(pattern.as_bytes(), name.as_bytes())
}

/// Go's `filepath.Match` for one segment.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some((b'?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
        Some((b'[', rest)) => match s.split_first() {
            Some((&c, tail)) => match class(rest, c) {
                Some((true, after)) => glob(after, tail),
                _ => false,
            },
            None => false,
        },
        Some((b'\\', rest)) if !rest.is_empty() => {
            s.first() == rest.first() && glob(&rest[1..], &s[1..])
        }
        Some((&c, rest)) => s.first() == Some(&c) && glob(rest, &s[1..]),
    }
}

/// Matches `c` against the class after `[`; returns whether it matched and the pattern after
/// `]`, or `None` for a malformed class.
fn class(p: &[u8], c: u8) -> Option<(bool, &[u8])> {
    let (negate, mut p) = match p.first() {
        Some(b'^') | Some(b'!') => (true, &p[1..]),
        _ => (false, p),
    };
    let mut matched = false;
    let mut first = true;
    loop {
        let (&lo, rest) = p.split_first()?;
        if lo == b']' && !first {
            return Some((matched != negate, rest));
        }
        first = false;
        let (lo, rest) = if lo == b'\\' {
            let (&e, r) = rest.split_first()?;
            (e, r)
        } else {
            (lo, rest)
        };
        p = rest;
        if p.first() == Some(&b'-') && p.get(1).is_some_and(|&h| h != b']') {
            let hi = p[1];
            p = &p[2..];
            matched |= lo <= c && c <= hi;
        } else {
            matched |= lo == c;
        }
    }
}

/// The rules of a `.dockerignore` file.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    rules: Vec<(Pattern, bool)>,
}

impl Ignore {
    /// Parses `.dockerignore` text.
    pub fn parse(text: &str) -> Ignore {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pat) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let pattern = Pattern::new(pat);
            if pattern.segments.iter().all(String::is_empty) {
                continue;
            }
            rules.push((pattern, exception));
        }
        Ignore { rules }
    }

    /// Whether some rule re-includes paths (`!pattern`), so an excluded directory may still
    /// hold included entries.
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|(_, exception)| *exception)
    }

    /// Whether the relative path is excluded from the context.
    pub fn excluded(&self, path: &str) -> bool {
        let mut out = false;
        for (pattern, exception) in &self.rules {
            if pattern.matches_or_parent(path) {
                out = !exception;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_go() {
        let m = |p: &str, s: &str| Pattern::new(p).matches(s);
        assert!(m("*.rs", "main.rs"));
        assert!(!m("*.rs", "src/main.rs"));
        assert!(m("src/*.rs", "src/main.rs"));
        assert!(m("**/*.rs", "a/b/c.rs"));
        assert!(m("**/*.rs", "c.rs"));
        assert!(m("a/**", "a/b/c"));
        assert!(m("f?o", "foo"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[^a-c]x", "bx"));
        assert!(m("[!a-c]x", "dx"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("/./a/../b", "b"));
        assert_eq!(clean("../../x/./y/"), "x/y");
    }

    #[test]
    fn dockerignore_rules() {
        let ig = Ignore::parse(
            "# comment\nnode_modules\n*.log\n!keep.log\ntarget/\nsecret/**\n!secret/public\n",
        );
        assert!(ig.excluded("node_modules"));
        assert!(ig.excluded("node_modules/x/y.js"));
        assert!(ig.excluded("a.log"));
        assert!(!ig.excluded("keep.log"));
        assert!(!ig.excluded("sub/a.log"));
        assert!(ig.excluded("target/debug/x"));
        assert!(ig.excluded("secret/key"));
        assert!(!ig.excluded("secret/public"));
        assert!(!ig.excluded("src/main.rs"));
        assert!(!Ignore::parse("").excluded("x"));
        assert!(ig.has_exceptions() && !Ignore::parse("a\nb/**").has_exceptions());
    }
}
