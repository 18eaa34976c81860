//! Registry credentials and authentication challenges.
//!
//! Credentials live in `auth.json` under the store root, in Docker's `config.json` shape
//! (`{"auths": {"HOST": {"auth": BASE64(user:password)}}}`), written atomically with mode
//! 0600. `WWW-Authenticate` challenges are parsed into basic or bearer (token) flows.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::layer::{Layout, TempPath};
use super::ImageError;

/// A user name and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Base64 of `user:password` for a basic `Authorization` header.
    pub(super) fn basic(&self) -> String {
        super::registry::basic(&self.username, &self.password)
    }
}

/// What a registry's `WWW-Authenticate` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    Other(String),
}

/// Parses `Bearer realm="https://auth.docker.io/token",service="registry.docker.io"` and
/// `Basic realm="..."`.
pub(super) fn parse_challenge(header: &str) -> Challenge {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Challenge::Basic,
        "bearer" => match params.get("realm") {
            Some(realm) => Challenge::Bearer {
                realm: realm.clone(),
                service: params.get("service").cloned(),
                scope: params.get("scope").cloned(),
            },
            None => Challenge::Other(header.to_string()),
        },
        _ => Challenge::Other(scheme.to_string()),
    }
}

/// `key="value",key2=value2` (values may be quoted, with commas inside quotes).
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    out
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthEntry {
    auth: String,
}

fn auth_path(layout: &Layout) -> std::path::PathBuf {
    layout.root.join("auth.json")
}

fn read_file(path: &Path) -> Result<AuthFile, ImageError> {
    match fs::read(path) {
        Ok(d) => serde_json::from_slice(&d).map_err(|source| ImageError::Json {
            what: path.display().to_string(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AuthFile::default()),
        Err(e) => Err(ImageError::io("read credentials", path)(e)),
    }
}

fn write_file(layout: &Layout, file: &AuthFile) -> Result<(), ImageError> {
    let path = auth_path(layout);
    let data = serde_json::to_vec_pretty(file).map_err(|source| ImageError::Json {
        what: "credentials".to_string(),
        source,
    })?;
    let tmp = TempPath::new(layout.tmp_path(".auth"));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp.path())
        .map_err(ImageError::io("create", tmp.path()))?;
    f.write_all(&data)
        .and_then(|()| f.sync_all())
        .map_err(ImageError::io("write", tmp.path()))?;
    fs::rename(tmp.path(), &path).map_err(ImageError::io("write credentials", &path))?;
    tmp.keep();
    Ok(())
}

/// The stored credentials for `registry`, if any.
pub(super) fn load(layout: &Layout, registry: &str) -> Result<Option<Credentials>, ImageError> {
    let file = read_file(&auth_path(layout))?;
    let Some(entry) = file.auths.get(registry) else {
        return Ok(None);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(entry.auth.trim())
        .ok()
        .and_then(|d| String::from_utf8(d).ok());
    let Some((user, pass)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return Err(ImageError::Invalid {
            what: format!("stored credentials for {registry}"),
            reason: "not base64 of user:password".to_string(),
        });
    };
    Ok(Some(Credentials {
        username: user.to_string(),
        password: pass.to_string(),
    }))
}

/// Stores (or with `None` removes) the credentials for `registry`; returns whether an entry
/// was there before.
pub(super) fn store(
    layout: &Layout,
    registry: &str,
    creds: Option<&Credentials>,
) -> Result<bool, ImageError> {
    let mut file = read_file(&auth_path(layout))?;
    let had = match creds {
        Some(c) => file
            .auths
            .insert(registry.to_string(), AuthEntry { auth: c.basic() })
            .is_some(),
        None => file.auths.remove(registry).is_some(),
    };
    write_file(layout, &file)?;
    Ok(had)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".to_string(),
                service: Some("registry.docker.io".to_string()),
                scope: Some("repository:library/busybox:pull".to_string()),
            }
        );
        assert_eq!(
            parse_challenge(r#"Bearer realm=http://127.0.0.1:1/t, scope="repository:a:pull,push""#),
            Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".to_string(),
                service: None,
                scope: Some("repository:a:pull,push".to_string()),
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Challenge::Basic
        );
        assert!(matches!(parse_challenge("Negotiate"), Challenge::Other(_)));
    }

    #[test]
    fn credentials_round_trip_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let layout = Layout {
            root: d.path().to_path_buf(),
        };
        fs::create_dir_all(layout.tmp()).unwrap();
        let c = Credentials {
            username: "u".into(),
            password: "p:w".into(),
        };
        assert!(!store(&layout, "localhost:5000", Some(&c)).unwrap());
        assert_eq!(load(&layout, "localhost:5000").unwrap(), Some(c));
        assert_eq!(load(&layout, "other").unwrap(), None);
        let mode = fs::metadata(d.path().join("auth.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(store(&layout, "localhost:5000", None).unwrap());
        assert_eq!(load(&layout, "localhost:5000").unwrap(), None);
        assert!(!format!(
            "{:?}",
            Credentials {
                username: "u".into(),
                password: "secret".into()
            }
        )
        .contains("secret"));
    }
}
