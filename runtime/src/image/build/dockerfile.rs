//! The Dockerfile parser: parser directives (`# escape=`, `# syntax=`), comments, line
//! continuations, case-insensitive keywords, flags (`--from=stage`) and the shell and exec
//! (JSON) forms, as Docker reads them. Arguments stay raw: variables are substituted while
//! building, when the values are known ([`super::words`]).
//!
//! Errors name the file and line: `Dockerfile:7: COPY: requires at least two arguments`.

use std::fmt;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    /// The escape character (`\` unless `# escape=` says otherwise).
    pub escape: char,
    /// The `# syntax=` directive, if any (recorded; berth has one builtin frontend).
    pub syntax: Option<String>,
    pub instructions: Vec<Instruction>,
}

/// The instructions berth knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    From,
    Run,
    Cmd,
    Entrypoint,
    Copy,
    Add,
    Env,
    Arg,
    Workdir,
    User,
    Label,
    Expose,
    Volume,
    StopSignal,
    Healthcheck,
    Shell,
    Maintainer,
    Onbuild,
}

impl Keyword {
    fn parse(s: &str) -> Option<Keyword> {
        Some(match s.to_ascii_uppercase().as_str() {
            "FROM" => Keyword::From,
            "RUN" => Keyword::Run,
            "CMD" => Keyword::Cmd,
            "ENTRYPOINT" => Keyword::Entrypoint,
            "COPY" => Keyword::Copy,
            "ADD" => Keyword::Add,
            "ENV" => Keyword::Env,
            "ARG" => Keyword::Arg,
            "WORKDIR" => Keyword::Workdir,
            "USER" => Keyword::User,
            "LABEL" => Keyword::Label,
            "EXPOSE" => Keyword::Expose,
            "VOLUME" => Keyword::Volume,
            "STOPSIGNAL" => Keyword::StopSignal,
            "HEALTHCHECK" => Keyword::Healthcheck,
            "SHELL" => Keyword::Shell,
            "MAINTAINER" => Keyword::Maintainer,
            "ONBUILD" => Keyword::Onbuild,
            _ => return None,
        })
    }

    /// The keyword as Docker spells it.
    pub fn name(self) -> &'static str {
        match self {
            Keyword::From => "FROM",
            Keyword::Run => "RUN",
            Keyword::Cmd => "CMD",
            Keyword::Entrypoint => "ENTRYPOINT",
            Keyword::Copy => "COPY",
            Keyword::Add => "ADD",
            Keyword::Env => "ENV",
            Keyword::Arg => "ARG",
            Keyword::Workdir => "WORKDIR",
            Keyword::User => "USER",
            Keyword::Label => "LABEL",
            Keyword::Expose => "EXPOSE",
            Keyword::Volume => "VOLUME",
            Keyword::StopSignal => "STOPSIGNAL",
            Keyword::Healthcheck => "HEALTHCHECK",
            Keyword::Shell => "SHELL",
            Keyword::Maintainer => "MAINTAINER",
            Keyword::Onbuild => "ONBUILD",
        }
    }

    /// The flags the instruction accepts.
    fn flags(self) -> &'static [&'static str] {
        match self {
            Keyword::From => &["platform"],
            Keyword::Copy => &["from", "chown", "chmod", "link"],
            Keyword::Add => &["chown", "chmod", "link"],
            Keyword::Healthcheck => &[
                "interval",
                "timeout",
                "start-period",
                "start-interval",
                "retries",
            ],
            _ => &[],
        }
    }
}

impl fmt::Display for Keyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One instruction, its continuation lines joined.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// The line the instruction starts on (1-based).
    pub line: usize,
    pub keyword: Keyword,
    /// `--name=value` flags before the arguments (`--name` alone has an empty value).
    pub flags: Vec<(String, String)>,
    /// The arguments after the flags, raw.
    pub rest: String,
    /// The arguments as a JSON string array when given in exec form.
    pub json: Option<Vec<String>>,
}

impl Instruction {
    /// A flag's value.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The instruction as written (keyword upper case), for progress lines and the cache key.
    pub fn text(&self) -> String {
        let mut s = self.keyword.name().to_string();
        for (k, v) in &self.flags {
            s.push_str(&format!(" --{k}"));
            if !v.is_empty() {
                s.push_str(&format!("={v}"));
            }
        }
        if !self.rest.is_empty() {
            s.push(' ');
            s.push_str(&self.rest);
        }
        s
    }
}

/// An error at a line of the Dockerfile; also used for errors while building a step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {}{message}", instruction.map(|k| format!("{k}: ")).unwrap_or_default())]
pub struct LineError {
    pub file: String,
    pub line: usize,
    pub instruction: Option<Keyword>,
    pub message: String,
}

/// Parses Dockerfile text; `file` names it in errors (`Dockerfile`).
pub fn parse(text: &str, file: &str) -> Result<Dockerfile, LineError> {
    let mut escape = '\\';
    let mut syntax = None;
    let mut lines = text.lines().enumerate().peekable();
    // Parser directives: only at the very top, before any comment, blank line or instruction.
    let mut seen = Vec::new();
    while let Some((_, line)) = lines.peek() {
        let Some((key, value)) = directive(line) else {
            break;
        };
        if seen.contains(&key) {
            break;
        }
        match key.as_str() {
            "escape" => {
                escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(LineError {
                            file: file.to_string(),
                            line: lines.peek().map_or(1, |(n, _)| n + 1),
                            instruction: None,
                            message: format!("invalid escape token {value:?}: must be ` or \\"),
                        })
                    }
                }
            }
            "syntax" => syntax = Some(value),
            _ => {}
        }
        seen.push(key);
        lines.next();
    }
    let mut instructions = Vec::new();
    while let Some((n, line)) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let start = n + 1;
        let mut joined = String::new();
        let mut cur = trimmed.to_string();
        loop {
            match continued(&cur, escape) {
                Some(head) => {
                    joined.push_str(head);
                    // Comment and blank lines inside a continuation are dropped.
                    let next = loop {
                        match lines.next() {
                            Some((_, l)) if l.trim().is_empty() => continue,
                            Some((_, l)) if l.trim_start().starts_with('#') => continue,
                            other => break other,
                        }
                    };
                    match next {
                        Some((_, l)) => cur = l.to_string(),
                        None => break,
                    }
                }
                None => {
                    joined.push_str(&cur);
                    break;
                }
            }
        }
        instructions.push(instruction(&joined, start, file, escape)?);
    }
    Ok(Dockerfile {
        escape,
        syntax,
        instructions,
    })
}

/// `# key=value` at the top of the file.
fn directive(line: &str) -> Option<(String, String)> {
    let body = line.trim_start().strip_prefix('#')?;
    let (key, value) = body.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((key.to_ascii_lowercase(), value.trim().to_string()))
}

/// The line without its trailing escape character when it continues on the next line.
fn continued(line: &str, escape: char) -> Option<&str> {
    line.trim_end_matches([' ', '\t']).strip_suffix(escape)
}

fn instruction(
    joined: &str,
    line: usize,
    file: &str,
    escape: char,
) -> Result<Instruction, LineError> {
    let err = |instruction, message: String| LineError {
        file: file.to_string(),
        line,
        instruction,
        message,
    };
    let (word, rest) = joined
        .split_once(|c: char| c.is_whitespace())
        .unwrap_or((joined, ""));
    let keyword = Keyword::parse(word).ok_or_else(|| {
        err(
            None,
            format!("unknown instruction: {}", word.to_uppercase()),
        )
    })?;
    let kerr = |m: String| err(Some(keyword), m);
    let mut rest = rest.trim();
    let mut flags = Vec::new();
    if !matches!(keyword, Keyword::Run | Keyword::Cmd | Keyword::Entrypoint) {
        while let Some(f) = rest.strip_prefix("--") {
            let (word, tail) = f.split_once(|c: char| c.is_whitespace()).unwrap_or((f, ""));
            let (name, value) = word.split_once('=').unwrap_or((word, ""));
            if !keyword.flags().contains(&name) {
                return Err(kerr(format!("unknown flag: --{name}")));
            }
            flags.push((name.to_string(), value.to_string()));
            rest = tail.trim_start();
        }
    } else if rest.starts_with("--") && keyword == Keyword::Run {
        let flag = rest.split_whitespace().next().unwrap_or(rest);
        return Err(kerr(format!("unsupported flag: {flag}")));
    }
    let json = rest
        .starts_with('[')
        .then(|| serde_json::from_str::<Vec<String>>(rest).ok())
        .flatten();
    let ins = Instruction {
        line,
        keyword,
        flags,
        rest: rest.to_string(),
        json,
    };
    validate(&ins, escape).map_err(kerr)?;
    Ok(ins)
}

/// Checks what can be checked before building.
fn validate(ins: &Instruction, escape: char) -> Result<(), String> {
    let rest = ins.rest.as_str();
    let words = || super::words::split_raw(rest, escape).map_err(|e| e.to_string());
    match ins.keyword {
        Keyword::From => {
            let w = words()?;
            match w.len() {
                1 => {}
                3 if w[1].eq_ignore_ascii_case("as") => {
                    let name = &w[2];
                    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
                    if !ok {
                        return Err(format!("invalid stage name {name:?}"));
                    }
                }
                0 => return Err("requires an image name".to_string()),
                _ => return Err("expects an image and an optional AS name".to_string()),
            }
        }
        Keyword::Copy | Keyword::Add => {
            let n = match &ins.json {
                Some(j) => j.len(),
                None => words()?.len(),
            };
            if n < 2 {
                return Err(
                    "requires at least two arguments, but only one was provided. Destination could not be determined"
                        .to_string(),
                );
            }
        }
        Keyword::Shell => match &ins.json {
            Some(j) if !j.is_empty() => {}
            _ => return Err("requires the arguments to be in JSON form".to_string()),
        },
        Keyword::Env | Keyword::Label => {
            let w = words()?;
            if w.is_empty() {
                return Err("requires at least one argument".to_string());
            }
            if ins.keyword == Keyword::Label && w.iter().any(|p| !p.contains('=')) {
                return Err(format!("requires KEY=VALUE pairs: {rest}"));
            }
        }
        Keyword::Arg => {
            if words()?.is_empty() {
                return Err("requires at least one argument".to_string());
            }
        }
        Keyword::Healthcheck => {
            let first = rest.split_whitespace().next().unwrap_or("");
            if !first.eq_ignore_ascii_case("NONE") && !first.eq_ignore_ascii_case("CMD") {
                return Err("expects NONE or CMD followed by a command".to_string());
            }
        }
        Keyword::Run | Keyword::Workdir | Keyword::User | Keyword::StopSignal => {
            if rest.is_empty() || ins.json.as_ref().is_some_and(Vec::is_empty) {
                return Err("requires at least one argument".to_string());
            }
        }
        Keyword::Cmd
        | Keyword::Entrypoint
        | Keyword::Expose
        | Keyword::Volume
        | Keyword::Maintainer
        | Keyword::Onbuild => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Dockerfile {
        parse(s, "Dockerfile").unwrap()
    }

    fn perr(s: &str) -> String {
        parse(s, "Dockerfile").unwrap_err().to_string()
    }

    #[test]
    fn continuations_comments_and_case() {
        let d = p("# a comment\n\nfrom busybox AS base\nrun echo a \\\n  # inner comment\n\n  && echo b\ncopy --from=base /a /b\n");
        assert_eq!(d.instructions.len(), 3);
        assert_eq!(d.instructions[0].keyword, Keyword::From);
        assert_eq!(d.instructions[0].line, 3);
        let run = &d.instructions[1];
        assert_eq!(run.keyword, Keyword::Run);
        assert_eq!(run.line, 4);
        assert_eq!(run.rest, "echo a   && echo b");
        let copy = &d.instructions[2];
        assert_eq!(copy.line, 8);
        assert_eq!(copy.flag("from"), Some("base"));
        assert_eq!(copy.rest, "/a /b");
        assert_eq!(copy.text(), "COPY --from=base /a /b");
    }

    #[test]
    fn directives_only_at_the_top() {
        let d = p("# syntax=docker/dockerfile:1\n# escape=`\nFROM x\nRUN a `\n b\n");
        assert_eq!(d.escape, '`');
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(d.instructions[1].rest, "a  b");
        // After a comment, `# escape=` is just a comment.
        let d = p("# hello\n# escape=`\nFROM x\nRUN a \\\n b\n");
        assert_eq!(d.escape, '\\');
        assert_eq!(d.instructions[1].rest, "a  b");
        assert!(perr("# escape=x\nFROM a").starts_with("Dockerfile:1: invalid escape"));
    }

    #[test]
    fn exec_and_shell_forms() {
        let d = p("FROM x\nCMD [\"sh\", \"-c\", \"echo hi\"]\nENTRYPOINT echo [x\nSHELL [\"/bin/bash\",\"-c\"]\nRUN [\"a\"]\n");
        assert_eq!(
            d.instructions[1].json,
            Some(vec!["sh".into(), "-c".into(), "echo hi".into()])
        );
        assert_eq!(d.instructions[2].json, None);
        assert_eq!(d.instructions[3].json.as_ref().map(Vec::len), Some(2));
        assert_eq!(d.instructions[4].json, Some(vec!["a".into()]));
        // Not valid JSON: shell form.
        let d = p("FROM x\nRUN [ -f /x ] && echo y\n");
        assert_eq!(d.instructions[1].json, None);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            perr("FROM x\n\n\n\n\n\nCOPY onlyone\n"),
            "Dockerfile:7: COPY: requires at least two arguments, but only one was provided. Destination could not be determined"
        );
        assert_eq!(
            perr("FROM x\nFROB y\n"),
            "Dockerfile:2: unknown instruction: FROB"
        );
        assert_eq!(
            perr("FROM x\nCOPY --bogus=1 a b\n"),
            "Dockerfile:2: COPY: unknown flag: --bogus"
        );
        assert_eq!(
            perr("FROM x\nSHELL /bin/sh\n"),
            "Dockerfile:2: SHELL: requires the arguments to be in JSON form"
        );
        assert!(perr("FROM x AS 1bad\n").contains("invalid stage name"));
        assert!(perr("FROM x\nLABEL a\n").starts_with("Dockerfile:2: LABEL"));
        assert!(perr("FROM x\nRUN --mount=type=cache x\n").contains("unsupported flag"));
        assert!(perr("FROM x\nHEALTHCHECK --interval=1s foo\n").contains("NONE or CMD"));
        // A multi-line instruction reports its first line.
        assert!(perr("FROM x\nCOPY \\\n a\n").starts_with("Dockerfile:2: COPY"));
    }

    #[test]
    fn arg_before_from_and_flags() {
        let d = p("ARG V=1\nFROM base:${V} AS b\nHEALTHCHECK --interval=5s --retries=3 CMD true\n");
        assert_eq!(d.instructions[0].keyword, Keyword::Arg);
        assert_eq!(d.instructions[1].rest, "base:${V} AS b");
        let hc = &d.instructions[2];
        assert_eq!(hc.flag("interval"), Some("5s"));
        assert_eq!(hc.flag("retries"), Some("3"));
        assert_eq!(hc.rest, "CMD true");
    }
}
