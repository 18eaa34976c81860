//! The merged view of a stack of unpacked layers, read the way overlayfs would show it
//! (whiteouts hide, opaque directories and non-directories hide what is below), without
//! mounting anything: the source of `COPY --from`, of the metadata of existing parent
//! directories and of `/etc/passwd` for `--chown=name`.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::super::unpack::{read_xattr, OPAQUE_XATTR};

/// Layers of an image, bottom first (as an image lists them).
#[derive(Debug, Clone, Default)]
pub struct LayerView {
    layers: Vec<PathBuf>,
}

fn whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn opaque(p: &Path) -> bool {
    matches!(read_xattr(p, OPAQUE_XATTR), Ok(Some(v)) if v == b"y")
}

impl LayerView {
    pub fn new(layers: Vec<PathBuf>) -> LayerView {
        LayerView { layers }
    }

    /// The host path of `rel` (clean, relative) in the top-most layer that has it, or `None`
    /// when the merged view has no such entry. `""` is the root.
    pub fn lookup(&self, rel: &str) -> io::Result<Option<PathBuf>> {
        let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
        for root in self.layers.iter().rev() {
            if comps.is_empty() {
                return Ok(Some(root.clone()));
            }
            let mut p = root.clone();
            let mut hides_below = false;
            for (i, c) in comps.iter().enumerate() {
                p.push(c);
                let m = match fs::symlink_metadata(&p) {
                    Ok(m) => m,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) => return Err(e),
                };
                if whiteout(&m) {
                    return Ok(None);
                }
                if i + 1 == comps.len() {
                    return Ok(Some(p));
                }
                if !m.is_dir() {
                    return Ok(None);
                }
                hides_below |= opaque(&p);
            }
            if hides_below {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// The names in directory `rel` of the merged view, sorted.
    pub fn list(&self, rel: &str) -> io::Result<Vec<String>> {
        let mut seen = BTreeSet::new();
        let mut hidden = BTreeSet::new();
        for root in self.layers.iter().rev() {
            let dir = root.join(rel);
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => break,
                Err(e) => return Err(e),
            };
            for e in entries {
                let e = e?;
                let name = e.file_name().to_string_lossy().into_owned();
                if hidden.contains(&name) || seen.contains(&name) {
                    continue;
                }
                if whiteout(&e.metadata()?) {
                    hidden.insert(name);
                } else {
                    seen.insert(name);
                }
            }
            if opaque(&dir) {
                break;
            }
        }
        // A name may be shown by an upper layer yet hidden as a whole by a directory above
        // it; lookup settles that.
        let mut out = Vec::new();
        for name in seen {
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if self.lookup(&child)?.is_some() {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// The text of a file in the view, `None` when absent.
    pub fn read_to_string(&self, rel: &str) -> Option<String> {
        let p = self.lookup(rel).ok()??;
        let m = fs::symlink_metadata(&p).ok()?;
        if !m.is_file() {
            return None;
        }
        fs::read_to_string(p).ok()
    }

    /// Resolves `user[:group]` (names or numbers) with the view's `/etc/passwd` and
    /// `/etc/group`; a user without a group gets the user's primary group (or the same
    /// number, for a numeric user).
    pub fn owner(&self, spec: &str) -> Result<(u32, u32), String> {
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let passwd = self.read_to_string("etc/passwd").unwrap_or_default();
        let find = |db: &str, name: &str, field: usize| -> Option<Vec<String>> {
            db.lines()
                .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
                .find(|f| f.first().map(String::as_str) == Some(name) && f.len() > field)
        };
        let (uid, primary) = match user.parse::<u32>() {
            Ok(n) => (n, n),
            Err(_) => {
                let f = find(&passwd, user, 3)
                    .ok_or_else(|| format!("unknown user {user:?} in /etc/passwd"))?;
                let uid = f[2].parse().map_err(|_| format!("bad uid of {user}"))?;
                let gid = f[3].parse().map_err(|_| format!("bad gid of {user}"))?;
                (uid, gid)
            }
        };
        let gid = match group {
            None => primary,
            Some(g) => match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => {
                    let groups = self.read_to_string("etc/group").unwrap_or_default();
                    let f = find(&groups, g, 2)
                        .ok_or_else(|| format!("unknown group {g:?} in /etc/group"))?;
                    f[2].parse().map_err(|_| format!("bad gid of group {g}"))?
                }
            },
        };
        Ok((uid, gid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_layers_win_and_owner_lookup() {
        let d = tempfile::tempdir().unwrap();
        let (lo, hi) = (d.path().join("lo"), d.path().join("hi"));
        fs::create_dir_all(lo.join("etc")).unwrap();
        fs::create_dir_all(hi.join("etc")).unwrap();
        fs::write(
            lo.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/:/bin/sh\n",
        )
        .unwrap();
        fs::write(lo.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        fs::write(lo.join("etc/a"), "lo").unwrap();
        fs::write(hi.join("etc/a"), "hi").unwrap();
        fs::write(lo.join("etc/b"), "b").unwrap();
        let v = LayerView::new(vec![lo, hi]);
        assert_eq!(v.read_to_string("etc/a").as_deref(), Some("hi"));
        assert_eq!(v.list("etc").unwrap(), vec!["a", "b", "group", "passwd"]);
        assert_eq!(v.owner("app").unwrap(), (1000, 1001));
        assert_eq!(v.owner("app:staff").unwrap(), (1000, 50));
        assert_eq!(v.owner("7:8").unwrap(), (7, 8));
        assert_eq!(v.owner("9").unwrap(), (9, 9));
        assert!(v.owner("nobody").is_err());
        assert!(v.lookup("etc/none").unwrap().is_none());
        assert!(v.lookup("etc/a/x").unwrap().is_none());
    }
}
