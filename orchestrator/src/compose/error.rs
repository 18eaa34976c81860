//! Load errors and warnings.
//!
//! Every [`Diagnostic`] names the file, line and column where it has one, the key path inside the
//! model (`services.web.deploy.replicas`) and what was expected:
//! `compose.yaml:14:7: services.web.deploy.replicas: expected an integer, found "three"`.
//! Phases collect diagnostics in a [`Diagnostics`] list so that one load reports every problem it
//! found, not only the first; positions are filled in at the end from the files' position maps.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A position in a compose file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file as shown to the user (relative to the working directory when below it).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One error or warning about the compose model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where in which file, when known.
    pub location: Option<Location>,
    /// The key path in the model (`services.web.ports[0]`); empty for whole-file problems.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
    /// The file that holds the problem when there is no exact position.
    pub file: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at a key path whose position is looked up later.
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            location: None,
            path: path.into(),
            message: message.into(),
            file: None,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        } else if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// A list of diagnostics collected by one phase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Records an error at a key path.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Diagnostic::at(path, message));
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One line per diagnostic, after an "N errors:" line when there are several.
    pub fn summary(&self) -> String {
        match self.0.len() {
            0 | 1 => self.to_string(),
            n => format!("{n} errors:\n{self}"),
        }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Why loading a project failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No `-f`, no `COMPOSE_FILE` and no default file in the directory or its parents.
    #[error(
        "no compose file found in {} or its parents (looked for compose.yaml, compose.yml, \
         docker-compose.yml, docker-compose.yaml): create one or pass -f FILE",
        dir.display()
    )]
    NotFound {
        /// The directory the search started in.
        dir: PathBuf,
    },
    /// A file the load needs could not be read.
    #[error("read {what} {}", path.display())]
    Read {
        /// What the file is (compose file, env file).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The project name given with -p, COMPOSE_PROJECT_NAME or `name:` is not valid.
    #[error(
        "invalid project name {name:?}: use only lowercase letters, digits, dashes and \
         underscores, starting with a letter or digit"
    )]
    ProjectName {
        /// The rejected name.
        name: String,
    },
    /// The model has errors; every one found is listed.
    #[error("{}", .0.summary())]
    Invalid(Diagnostics),
}

impl LoadError {
    /// The diagnostics of an [`LoadError::Invalid`] error (empty for the other kinds).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            LoadError::Invalid(d) => &d.0,
            _ => &[],
        }
    }
}

/// Edit distance between two words (optimal string alignment: insertions, deletions,
/// substitutions and transpositions of neighbours), for "did you mean" suggestions.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The candidate closest to `word`, when it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (distance(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)))
        .map(|(_, c)| c)
}

/// `" (did you mean `x`?)"` when a close candidate exists, else an empty string.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match closest(word, candidates) {
        Some(c) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_pick_the_closest_key() {
        let keys = ["environment", "entrypoint", "env_file", "expose"];
        assert_eq!(closest("enviroment", keys), Some("environment"));
        assert_eq!(closest("envfile", keys), Some("env_file"));
        assert_eq!(closest("ENTRYPOINT", keys), Some("entrypoint"));
        assert_eq!(closest("volumes", keys), None);
        assert_eq!(did_you_mean("expos", keys), " (did you mean `expose`?)");
        assert_eq!(did_you_mean("zzzzzz", keys), "");
    }

    #[test]
    fn diagnostics_render_location_path_and_message() {
        let mut d = Diagnostic::at("services.web.deploy.replicas", "expected an integer");
        assert_eq!(
            d.to_string(),
            "services.web.deploy.replicas: expected an integer"
        );
        d.location = Some(Location {
            file: "compose.yaml".into(),
            line: 14,
            column: 7,
        });
        assert_eq!(
            d.to_string(),
            "compose.yaml:14:7: services.web.deploy.replicas: expected an integer"
        );
        let all = Diagnostics(vec![d.clone(), Diagnostic::at("", "second")]);
        assert_eq!(
            all.to_string(),
            "compose.yaml:14:7: services.web.deploy.replicas: expected an integer\nsecond"
        );
    }
}
