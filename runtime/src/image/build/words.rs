//! Docker's shell-word lexer for Dockerfile arguments: quotes, the escape character and
//! variable substitution (`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:+alt}`, `${VAR+alt}`, `${VAR:?message}`), applied to the arguments of ADD, COPY, ENV,
//! EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR and ARG, as Docker does.
//!
//! Single quotes keep everything literal; inside double quotes the escape character only
//! escapes `"`, `$` and itself; outside quotes it makes the next character literal. An unset
//! variable expands to nothing.

/// Variable lookup for substitution.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Errors of word processing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordError {
    #[error("unterminated quote in {0:?}")]
    Quote(String),
    #[error("bad substitution in {0:?}")]
    Substitution(String),
    #[error("{name}: {message}")]
    Required { name: String, message: String },
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    env: Lookup<'a>,
    src: &'a str,
}

/// Processes one word: quotes removed, escapes resolved, variables substituted; whitespace is
/// kept as it is.
pub fn process_word(s: &str, escape: char, env: Lookup<'_>) -> Result<String, WordError> {
    let mut lx = Lexer::new(s, escape, env);
    let words = lx.run(false)?;
    Ok(words.into_iter().next().unwrap_or_default())
}

/// Processes a line into words split at unquoted whitespace (quotes removed, variables
/// substituted; `""` gives an empty word).
pub fn process_words(s: &str, escape: char, env: Lookup<'_>) -> Result<Vec<String>, WordError> {
    Lexer::new(s, escape, env).run(true)
}

/// Splits a line at unquoted whitespace without processing quotes or variables (for `KEY=VALUE`
/// lists, whose values are processed one by one afterwards).
pub fn split_raw(s: &str, escape: char) -> Result<Vec<String>, WordError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    let mut in_word = false;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == escape && q == '"' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                in_word = true;
                cur.push(c);
                if c == escape {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == '"' || c == '\'' {
                    quote = Some(c);
                }
            }
        }
    }
    if quote.is_some() {
        return Err(WordError::Quote(s.to_string()));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

impl<'a> Lexer<'a> {
    fn new(s: &'a str, escape: char, env: Lookup<'a>) -> Self {
        Lexer {
            chars: s.chars().collect(),
            pos: 0,
            escape,
            env,
            src: s,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += 1;
        c
    }

    /// Lexes to the end; with `split`, unquoted whitespace separates words.
    fn run(&mut self, split: bool) -> Result<Vec<String>, WordError> {
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut in_word = false;
        while let Some(c) = self.next() {
            if split && c.is_whitespace() {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
                continue;
            }
            in_word = true;
            match c {
                '\'' => self.single_quoted(&mut cur)?,
                '"' => self.double_quoted(&mut cur)?,
                '$' => {
                    let value = self.dollar()?;
                    if split {
                        // Unquoted expansions are split into words, as a shell does.
                        let mut parts = value.split_whitespace().peekable();
                        let starts_ws = value.starts_with(char::is_whitespace);
                        if starts_ws && !cur.is_empty() {
                            words.push(std::mem::take(&mut cur));
                        }
                        while let Some(p) = parts.next() {
                            cur.push_str(p);
                            if parts.peek().is_some() {
                                words.push(std::mem::take(&mut cur));
                            }
                        }
                        if value.ends_with(char::is_whitespace) && !cur.is_empty() {
                            words.push(std::mem::take(&mut cur));
                        }
                        in_word = !cur.is_empty();
                    } else {
                        cur.push_str(&value);
                    }
                }
                c if c == self.escape => match self.next() {
                    Some(n) => cur.push(n),
                    None => cur.push(c),
                },
                c => cur.push(c),
            }
        }
        if in_word || (!split && words.is_empty()) {
            words.push(cur);
        }
        Ok(words)
    }

    fn single_quoted(&mut self, out: &mut String) -> Result<(), WordError> {
        loop {
            match self.next() {
                Some('\'') => return Ok(()),
                Some(c) => out.push(c),
                None => return Err(WordError::Quote(self.src.to_string())),
            }
        }
    }

    fn double_quoted(&mut self, out: &mut String) -> Result<(), WordError> {
        loop {
            match self.next() {
                Some('"') => return Ok(()),
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(c) if c == self.escape => match self.peek() {
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        self.pos += 1;
                        out.push(n);
                    }
                    _ => out.push(c),
                },
                Some(c) => out.push(c),
                None => return Err(WordError::Quote(self.src.to_string())),
            }
        }
    }

    /// After a `$`: a variable reference, or a literal `$`.
    fn dollar(&mut self) -> Result<String, WordError> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                self.braced()
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                let name = self.name();
                Ok((self.env)(&name).unwrap_or_default())
            }
            _ => Ok("$".to_string()),
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    /// `${...}` after the brace.
    fn braced(&mut self) -> Result<String, WordError> {
        let bad = || WordError::Substitution(self.src.to_string());
        let name = self.name();
        if name.is_empty() {
            return Err(bad());
        }
        let value = (self.env)(&name);
        let c = self.next().ok_or_else(bad)?;
        if c == '}' {
            return Ok(value.unwrap_or_default());
        }
        let (colon, op) = if c == ':' {
            (true, self.next().ok_or_else(bad)?)
        } else {
            (false, c)
        };
        let word = self.until_brace()?;
        let set = match &value {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        match op {
            '-' => Ok(if set { value.unwrap_or_default() } else { word }),
            '+' => Ok(if set { word } else { String::new() }),
            '?' if set => Ok(value.unwrap_or_default()),
            '?' => Err(WordError::Required {
                name,
                message: if word.is_empty() {
                    "is not allowed to be unset".to_string()
                } else {
                    word
                },
            }),
            _ => Err(bad()),
        }
    }

    /// The word of `${NAME:-word}` up to its closing brace, itself processed.
    fn until_brace(&mut self) -> Result<String, WordError> {
        let mut out = String::new();
        loop {
            match self.next() {
                Some('}') => return Ok(out),
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some('\'') => self.single_quoted(&mut out)?,
                Some('"') => self.double_quoted(&mut out)?,
                Some(c) if c == self.escape => {
                    if let Some(n) = self.next() {
                        out.push(n);
                    }
                }
                Some(c) => out.push(c),
                None => return Err(WordError::Substitution(self.src.to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("alpha".into()),
            "EMPTY" => Some(String::new()),
            "SP" => Some("one two".into()),
            _ => None,
        }
    }

    fn w(s: &str) -> String {
        process_word(s, '\\', &env).unwrap()
    }

    #[test]
    fn substitutes_like_docker() {
        assert_eq!(w("$A"), "alpha");
        assert_eq!(w("${A}x"), "alphax");
        assert_eq!(w("${NOPE:-dflt}"), "dflt");
        assert_eq!(w("${EMPTY:-dflt}"), "dflt");
        assert_eq!(w("${EMPTY-dflt}"), "");
        assert_eq!(w("${A:+set}"), "set");
        assert_eq!(w("${NOPE:+set}"), "");
        assert_eq!(w("${NOPE:-$A/x}"), "alpha/x");
        assert_eq!(w("'$A'"), "$A");
        assert_eq!(w("\"$A b\""), "alpha b");
        assert_eq!(w("\\$A"), "$A");
        assert_eq!(w("\"a\\\"b\\n\""), "a\"b\\n");
        assert_eq!(w("a$"), "a$");
        assert_eq!(w("$NOPE"), "");
        let err = process_word("${NOPE:?must be set}", '\\', &env).unwrap_err();
        assert_eq!(err.to_string(), "NOPE: must be set");
        assert!(process_word("${A", '\\', &env).is_err());
        assert!(process_word("\"open", '\\', &env).is_err());
    }

    #[test]
    fn splits_words() {
        let ws = |s: &str| process_words(s, '\\', &env).unwrap();
        assert_eq!(ws("a  'b c' \"\" d\\ e"), vec!["a", "b c", "", "d e"]);
        assert_eq!(ws("$SP x"), vec!["one", "two", "x"]);
        assert_eq!(ws("\"$SP\""), vec!["one two"]);
        assert_eq!(ws("`a b` c"), vec!["`a", "b`", "c"]);
        assert_eq!(ws("C:\\x",), vec!["C:x"]);
        assert_eq!(
            process_words("C:\\x `", '`', &env).unwrap(),
            vec!["C:\\x", "`"]
        );
    }

    #[test]
    fn raw_split_keeps_quotes() {
        assert_eq!(
            split_raw("A=\"x y\" B='z w' C=\\ q", '\\').unwrap(),
            vec!["A=\"x y\"", "B='z w'", "C=\\ q"]
        );
        assert!(split_raw("A=\"x", '\\').is_err());
    }
}
