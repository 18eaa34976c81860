//! Image references parsed and normalised the way Docker does it.
//!
//! `busybox` is `docker.io/library/busybox:latest`, `host:5000/a/b:tag` names a registry with a
//! port, and `name@sha256:HEX` pins a manifest digest. The first path component is a registry
//! domain when it contains a `.` or a `:` or is `localhost`; otherwise the reference lives on
//! Docker Hub and one-component names get the `library/` prefix.

use std::fmt;

/// Docker Hub's canonical domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The tag a reference without tag or digest gets.
pub const DEFAULT_TAG: &str = "latest";
const LEGACY_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference format {input:?}: {reason}")]
pub struct ReferenceError {
    /// The string as the user gave it.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parses `input` and fills in Docker's defaults (domain, `library/`, tag `latest` when
    /// neither tag nor digest is given).
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let fail = |reason: &str| ReferenceError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input.is_empty() {
            return Err(fail("empty reference"));
        }
        if input.len() == 64 && input.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(fail(
                "cannot specify 64-byte hexadecimal strings as a repository name",
            ));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => {
                validate_digest(d).map_err(|r| fail(&r))?;
                (r, Some(d.to_string()))
            }
            None => (input, None),
        };
        // A tag is after the last ':' that is not followed by a '/' (a port is).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(t) = tag {
            validate_tag(t).map_err(|r| fail(&r))?;
        }
        if name.len() > MAX_NAME_LEN {
            return Err(fail("repository name must not be more than 255 characters"));
        }
        let (domain, path) = split_domain(name);
        validate_domain(&domain).map_err(|r| fail(&r))?;
        validate_path(&path).map_err(|r| fail(&r))?;
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// The registry domain, `docker.io` for Docker Hub.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if any (`latest` is filled in when neither tag nor digest was given).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The manifest digest, if the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// `domain/path`, the repository without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// The same repository pinned to `digest`, without tag.
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }

    /// The short form Docker prints: `busybox:latest` for `docker.io/library/busybox:latest`.
    pub fn familiar(&self) -> String {
        let mut name = if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_PREFIX)
                .filter(|p| !p.contains('/'))
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.name()
        };
        if let Some(t) = &self.tag {
            name.push(':');
            name.push_str(t);
        }
        if let Some(d) = &self.digest {
            name.push('@');
            name.push_str(d);
        }
        name
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

fn split_domain(name: &str) -> (String, String) {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    let domain = if domain == LEGACY_DOMAIN {
        DEFAULT_DOMAIN.to_string()
    } else {
        domain
    };
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        format!("{OFFICIAL_PREFIX}{path}")
    } else {
        path
    };
    (domain, path)
}

fn validate_domain(domain: &str) -> Result<(), String> {
    let (host, port) = match domain.strip_prefix('[') {
        Some(v6) => {
            let (inner, after) = v6.split_once(']').ok_or("unterminated IPv6 address")?;
            if inner.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("invalid IPv6 address in domain {domain:?}"));
            }
            match after {
                "" => return Ok(()),
                _ => (None, after.strip_prefix(':').or(Some(after))),
            }
        }
        None => match domain.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(domain), None),
        },
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("invalid port {p:?} in domain {domain:?}"));
        }
    }
    let Some(host) = host else { return Ok(()) };
    let ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!("invalid domain {domain:?}"))
    }
}

/// Path components: lowercase alphanumerics separated by `.`, `_`, `__` or runs of `-`.
fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("repository name is empty".to_string());
    }
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("repository name must be lowercase".to_string());
    }
    for comp in path.split('/') {
        if !valid_component(comp) {
            return Err(format!("invalid repository name component {comp:?}"));
        }
    }
    Ok(())
}

fn valid_component(comp: &str) -> bool {
    let b = comp.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator: '.', '_', '__' or one or more '-'.
        let sep_len = match b[i] {
            b'.' => 1,
            b'_' if b.get(i + 1) == Some(&b'_') => 2,
            b'_' => 1,
            b'-' => b[i..].iter().take_while(|&&c| c == b'-').count(),
            _ => return false,
        };
        i += sep_len;
        if i >= b.len() || !alnum(b[i]) {
            return false;
        }
    }
    true
}

fn validate_tag(tag: &str) -> Result<(), String> {
    let b = tag.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let ok = !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && word(b[0])
        && b.iter().all(|&c| word(c) || c == b'.' || c == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!("invalid tag {tag:?}"))
    }
}

/// Validates `algorithm:hex`; only sha256 (64 lowercase hex digits) and sha512 are accepted.
pub fn validate_digest(digest: &str) -> Result<(), String> {
    let (algo, hex) = digest
        .split_once(':')
        .ok_or_else(|| format!("invalid digest {digest:?}: missing algorithm"))?;
    let len = match algo {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(format!("unsupported digest algorithm {algo:?}")),
    };
    if hex.len() != len
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!("invalid digest {digest:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("library/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(
            full("index.docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("user/app:v1"), "docker.io/user/app:v1");
        assert_eq!(full("host:5000/a/b:tag"), "host:5000/a/b:tag");
        assert_eq!(full("localhost/app"), "localhost/app:latest");
        assert_eq!(full("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(full("quay.io/org/img"), "quay.io/org/img:latest");
        assert_eq!(
            full(&format!("busybox@{D}")),
            format!("docker.io/library/busybox@{D}")
        );
        assert_eq!(
            full(&format!("a:t@{D}")),
            format!("docker.io/library/a:t@{D}")
        );
        assert_eq!(full("[::1]:5000/x"), "[::1]:5000/x:latest");
    }

    #[test]
    fn familiar_form_strips_defaults() {
        let f = |s: &str| Reference::parse(s).unwrap().familiar();
        assert_eq!(f("docker.io/library/busybox"), "busybox:latest");
        assert_eq!(f("docker.io/user/app:v1"), "user/app:v1");
        assert_eq!(f("host:5000/a/b:tag"), "host:5000/a/b:tag");
        assert_eq!(f(&format!("busybox@{D}")), format!("busybox@{D}"));
    }

    #[test]
    fn parts_are_exposed() {
        let r = Reference::parse("host:5000/a/b:tag").unwrap();
        assert_eq!(r.domain(), "host:5000");
        assert_eq!(r.path(), "a/b");
        assert_eq!(r.tag(), Some("tag"));
        assert_eq!(r.digest(), None);
        assert_eq!(r.with_tag("v2").to_string(), "host:5000/a/b:v2");
        assert_eq!(r.with_digest(D).to_string(), format!("host:5000/a/b@{D}"));
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-tag",
            "a//b",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "busybox@sha256:abc",
            "busybox@md5:0123",
            "host:port/x",
            "a b",
            &"a".repeat(256),
            &"0123456789abcdef".repeat(4),
        ] {
            let e = Reference::parse(bad).unwrap_err();
            assert_eq!(e.input, bad);
            assert!(e.to_string().starts_with("invalid reference format"), "{e}");
        }
    }

    #[test]
    fn accepts_separators() {
        for ok in [
            "a.b",
            "a_b",
            "a__b",
            "a-b",
            "a---b",
            "a/b.c/d_e",
            "x:Tag_1.2-3",
        ] {
            Reference::parse(ok).unwrap();
        }
    }
}
