//! Phase 1: read a compose file and parse its YAML.
//!
//! serde_yaml gives the value (with `!reset`/`!override` tags kept and `<<` merge keys applied)
//! and positions for syntax errors. Semantic errors found by later phases only know a key path,
//! so a second, position-keeping parse of the same text (yaml-rust2's event parser) records where
//! each key path starts; [`Locator`] maps a path back to `file:line:col` at the end of the load.

use std::collections::HashMap;
use std::path::Path;

use serde_yaml::{Mapping, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::error::{Diagnostic, Location};

/// A parsed compose file.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    /// The path as shown in messages.
    pub display: String,
    /// The text, for the position-keeping parse.
    text: String,
    /// Start of every key path, scanned on first use (only loads with diagnostics need it).
    positions: std::cell::OnceCell<Positions>,
}

impl SourceFile {
    /// The positions of the file's key paths.
    pub fn positions(&self) -> &Positions {
        self.positions.get_or_init(|| Positions::scan(&self.text))
    }
}

/// The path shown in messages: relative to `cwd` when below it, else absolute.
pub(crate) fn display_path(path: &Path, cwd: &Path) -> String {
    match path.strip_prefix(cwd) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => path.display().to_string(),
    }
}

/// Parses `text` (the content of `path`) into a [`SourceFile`].
pub(crate) fn parse(
    _path: &Path,
    display: String,
    text: &str,
) -> Result<(SourceFile, Mapping), Diagnostic> {
    let located = |line: usize, column: usize, message: String| Diagnostic {
        location: Some(Location {
            file: display.clone(),
            line,
            column,
        }),
        path: String::new(),
        message,
        file: None,
    };
    let mut value: Value = match serde_yaml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let message = format!("invalid YAML: {}", strip_location(&e.to_string()));
            return Err(match e.location() {
                Some(l) => located(l.line(), l.column(), message),
                None => Diagnostic {
                    file: Some(display.clone()),
                    ..Diagnostic::at("", message)
                },
            });
        }
    };
    if let Err(e) = value.apply_merge() {
        return Err(Diagnostic {
            file: Some(display.clone()),
            ..Diagnostic::at("", format!("invalid YAML merge key `<<`: {e}"))
        });
    }
    let Value::Mapping(doc) = value else {
        let found = if value.is_null() {
            "an empty document".to_string()
        } else {
            super::read::describe(&value)
        };
        return Err(Diagnostic {
            file: Some(display.clone()),
            ..Diagnostic::at(
                "",
                format!("expected a mapping with a `services` key at the top, found {found}"),
            )
        });
    };
    let file = SourceFile {
        display,
        text: text.to_string(),
        positions: std::cell::OnceCell::new(),
    };
    Ok((file, doc))
}

/// serde_yaml appends " at line L column C" to its messages; the location is shown in front.
fn strip_location(message: &str) -> &str {
    match message.find(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

/// Key path to the 1-based (line, column) where the key (or sequence item) starts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Positions {
    map: HashMap<String, (usize, usize)>,
}

impl Positions {
    /// Scans `text` with the event parser; a text it cannot parse yields no positions.
    pub fn scan(text: &str) -> Self {
        let mut recorder = Recorder::default();
        let mut parser = Parser::new_from_str(text);
        // Positions are best effort: serde_yaml already accepted the document.
        let _ = parser.load(&mut recorder, false);
        Self { map: recorder.map }
    }

    /// The position of a key path.
    pub fn get(&self, path: &str) -> Option<(usize, usize)> {
        self.map.get(path).copied()
    }
}

/// `parent.key` (or `key` at the top).
pub(crate) fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[index]`.
pub(crate) fn join_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// The path one level up (`a.b[2]` -> `a.b`, `a.b` -> `a`), `None` at the top.
pub(crate) fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    if path.ends_with(']') {
        return path.rfind('[').map(|i| &path[..i]);
    }
    Some(path.rfind('.').map_or("", |i| &path[..i]))
}

enum Frame {
    Map {
        path: String,
        key: Option<(String, Marker)>,
        /// A sequence item whose position is that of its first key.
        item: Option<String>,
    },
    Seq {
        path: String,
        index: usize,
    },
    /// A mapping or sequence used as a key: its content has no path.
    Key {
        depth: usize,
    },
}

#[derive(Default)]
struct Recorder {
    stack: Vec<Frame>,
    map: HashMap<String, (usize, usize)>,
}

impl Recorder {
    /// The path of the next value in the current container and where it starts, advancing the
    /// container; `None` when the event is a mapping key (recorded) or has no path.
    fn next_value(&mut self, event_key: Option<String>, mark: Marker) -> Option<String> {
        let here = (mark.line(), mark.col() + 1);
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Map { path, key, item }) => match key.take() {
                None => {
                    if let Some(item) = item.take() {
                        self.map.entry(item).or_insert(here);
                    }
                    *key = Some((event_key.unwrap_or_else(|| "?".into()), mark));
                    None
                }
                Some((k, kmark)) => {
                    let p = join_key(path, &k);
                    self.map
                        .entry(p.clone())
                        .or_insert((kmark.line(), kmark.col() + 1));
                    Some(p)
                }
            },
            Some(Frame::Seq { path, index }) => {
                let p = join_index(path, *index);
                *index += 1;
                self.map.entry(p.clone()).or_insert(here);
                Some(p)
            }
            Some(Frame::Key { .. }) => None,
        }
    }

    fn in_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Key { .. }))
            || matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }
}

impl MarkedEventReceiver for Recorder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, ..) => {
                if let Some(Frame::Key { .. }) = self.stack.last() {
                    return;
                }
                let seq_path = match self.stack.last() {
                    Some(Frame::Seq { path, .. }) => Some(path.clone()),
                    _ => None,
                };
                self.next_value(Some(text.clone()), mark);
                // A name in a list (`depends_on: [db]`) is also found as `depends_on.db`.
                if let Some(seq) = seq_path {
                    self.map
                        .entry(join_key(&seq, &text))
                        .or_insert((mark.line(), mark.col() + 1));
                }
            }
            Event::Alias(_) => {
                if let Some(Frame::Key { .. }) = self.stack.last() {
                    return;
                }
                self.next_value(Some("*".into()), mark);
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_seq = matches!(ev, Event::SequenceStart(..));
                if self.in_key() {
                    let depth = match self.stack.last() {
                        Some(Frame::Key { depth }) => depth + 1,
                        _ => 0,
                    };
                    self.stack.push(Frame::Key { depth });
                    return;
                }
                let in_seq = matches!(self.stack.last(), Some(Frame::Seq { .. }));
                let path = self.next_value(None, mark).unwrap_or_default();
                self.stack.push(if is_seq {
                    Frame::Seq { path, index: 0 }
                } else {
                    let item = in_seq.then(|| path.clone());
                    if let Some(p) = &item {
                        self.map.remove(p);
                    }
                    Frame::Map {
                        path,
                        key: None,
                        item,
                    }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some(Frame::Key { depth }) = self.stack.pop() {
                    if depth == 0 {
                        // The complex key is complete: the parent mapping now expects its value.
                        self.next_value(Some("?".into()), mark);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Maps key paths of the merged model back to positions in the files they came from.
#[derive(Debug, Default)]
pub(crate) struct Locator {
    files: Vec<SourceFile>,
    /// For a service built with `extends`: (file index, path of the base service) in order.
    origins: HashMap<String, Vec<(usize, String)>>,
}

impl Locator {
    /// Registers a parsed file; returns its index.
    pub fn add(&mut self, file: SourceFile) -> usize {
        self.files.push(file);
        self.files.len() - 1
    }

    /// Records that `service` inherits from the service at `base_path` in file `file`.
    pub fn add_origin(&mut self, service: &str, file: usize, base_path: String) {
        self.origins
            .entry(service.to_string())
            .or_default()
            .push((file, base_path));
    }

    /// Fills in the location of a diagnostic found in one particular file.
    pub fn locate_in(&self, index: usize, diag: &mut Diagnostic) {
        let file = &self.files[index];
        let mut current = Some(diag.path.as_str());
        while let Some(p) = current {
            if let Some((line, column)) = file.positions().get(p) {
                diag.location = Some(self.loc(file, line, column));
                return;
            }
            current = parent_path(p).filter(|p| !p.is_empty());
        }
        diag.file = Some(file.display.clone());
    }

    /// Fills in the location of a diagnostic from its key path.
    pub fn locate(&self, diag: &mut Diagnostic) {
        if diag.location.is_some() {
            return;
        }
        if let Some(loc) = self.find(&diag.path) {
            diag.location = Some(loc);
        }
    }

    fn find(&self, path: &str) -> Option<Location> {
        let mut current = Some(path);
        while let Some(p) = current {
            if p.is_empty() {
                return None;
            }
            for file in self.files.iter().rev() {
                if let Some((line, column)) = file.positions().get(p) {
                    return Some(self.loc(file, line, column));
                }
            }
            if let Some(loc) = self.find_in_origins(p) {
                return Some(loc);
            }
            current = parent_path(p);
        }
        None
    }

    fn find_in_origins(&self, path: &str) -> Option<Location> {
        let rest = path.strip_prefix("services.")?;
        for (service, origins) in &self.origins {
            let Some(tail) = rest.strip_prefix(service.as_str()) else {
                continue;
            };
            if !(tail.is_empty() || tail.starts_with('.') || tail.starts_with('[')) {
                continue;
            }
            for (file, base) in origins.iter().rev() {
                let f = &self.files[*file];
                if let Some((line, column)) = f.positions().get(&format!("{base}{tail}")) {
                    return Some(self.loc(f, line, column));
                }
            }
        }
        None
    }

    fn loc(&self, file: &SourceFile, line: usize, column: usize) -> Location {
        Location {
            file: file.display.clone(),
            line,
            column,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "services:\n  web:\n    image: nginx\n    ports:\n      - \"80:80\"\n      - target: 443\n    deploy:\n      replicas: three\n";

    #[test]
    fn positions_point_at_keys_and_items() {
        let p = Positions::scan(TEXT);
        assert_eq!(p.get("services"), Some((1, 1)));
        assert_eq!(p.get("services.web"), Some((2, 3)));
        assert_eq!(p.get("services.web.image"), Some((3, 5)));
        assert_eq!(p.get("services.web.ports[0]"), Some((5, 9)));
        assert_eq!(p.get("services.web.ports[1].target"), Some((6, 9)));
        assert_eq!(p.get("services.web.deploy.replicas"), Some((8, 7)));
    }

    #[test]
    fn flow_and_complex_keys_do_not_confuse_paths() {
        let p = Positions::scan("a: {b: [1, {c: 2}]}\n? [x, y]\n: 3\nd: 4\n");
        assert_eq!(p.get("a.b[1].c"), Some((1, 13)));
        assert_eq!(p.get("d"), Some((4, 1)));
    }

    #[test]
    fn syntax_errors_have_a_location() {
        let err = parse(
            Path::new("/p/c.yaml"),
            "c.yaml".into(),
            "services:\n  web: [\n",
        )
        .unwrap_err();
        let loc = err.location.clone().unwrap();
        assert_eq!(loc.file, "c.yaml");
        assert!(err.to_string().starts_with("c.yaml:"), "{err}");
        assert!(err.message.starts_with("invalid YAML: "), "{err}");
    }

    #[test]
    fn a_non_mapping_document_is_rejected() {
        let err = parse(Path::new("/p/c.yaml"), "c.yaml".into(), "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.yaml: expected a mapping with a `services` key at the top, found an empty document"
        );
    }

    #[test]
    fn locator_falls_back_to_the_parent_and_to_extends_origins() {
        let mut loc = Locator::default();
        let (f, _) = parse(Path::new("/p/c.yaml"), "c.yaml".into(), TEXT).unwrap();
        let i = loc.add(f);
        let mut d = Diagnostic::at("services.web.deploy.replicas", "x");
        loc.locate(&mut d);
        assert_eq!(d.to_string(), "c.yaml:8:7: services.web.deploy.replicas: x");
        let mut d = Diagnostic::at("services.web.ports[7]", "x");
        loc.locate(&mut d);
        assert_eq!(d.location.unwrap().line, 4);
        loc.add_origin("api", i, "services.web".into());
        let mut d = Diagnostic::at("services.api.image", "x");
        loc.locate(&mut d);
        assert_eq!(d.location.unwrap().line, 3);
    }

    #[test]
    fn parent_paths() {
        assert_eq!(parent_path("a.b[2]"), Some("a.b"));
        assert_eq!(parent_path("a.b"), Some("a"));
        assert_eq!(parent_path("a"), Some(""));
        assert_eq!(parent_path(""), None);
    }
}
