//! Which cgroup hierarchies the host has, read from `/proc/self/mountinfo`.
//!
//! A host is one of three kinds:
//! - pure v1: one `cgroup` mount per controller (or per group of co-mounted controllers);
//! - pure v2: one `cgroup2` mount and no v1 hierarchy holding a controller;
//! - hybrid: v1 hierarchies hold the controllers and a `cgroup2` mount (usually
//!   `/sys/fs/cgroup/unified`) holds none; berth still joins it so the container's cgroup
//!   namespace is clean and so `cgroup.kill` is available.
//!
//! Named v1 hierarchies without a controller (`name=systemd`) are ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::CgroupError;

/// The v1 controllers berth puts a container into. `cpuset` is left out on purpose: a new
/// cpuset cgroup starts with empty `cpuset.cpus`/`cpuset.mems`, so no process could join it
/// until both were copied from the parent.
pub(crate) const V1_CONTROLLERS: [&str; 6] =
    ["memory", "cpu", "cpuacct", "pids", "freezer", "devices"];

/// Every v1 controller name the kernel knows, used to tell controllers from other mount options.
const KNOWN_V1: [&str; 14] = [
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// Where the host's cgroup hierarchies are mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Only v1 hierarchies: controller name to the mount point of its hierarchy.
    V1 {
        controllers: BTreeMap<String, PathBuf>,
    },
    /// Only the unified hierarchy, mounted at `root`.
    V2 { root: PathBuf },
    /// v1 hierarchies hold the controllers; the unified hierarchy at `unified` holds none.
    Hybrid {
        controllers: BTreeMap<String, PathBuf>,
        unified: PathBuf,
    },
}

impl Layout {
    /// Reads `/proc/self/mountinfo` and returns the host's layout.
    pub fn detect() -> Result<Layout, CgroupError> {
        let path = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_mountinfo(&text)
    }

    /// Parses the text of a mountinfo file.
    pub fn from_mountinfo(text: &str) -> Result<Layout, CgroupError> {
        let mut controllers: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut unified: Option<PathBuf> = None;
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let mount = parse_line(line).ok_or_else(|| CgroupError::Mountinfo {
                line: n + 1,
                text: line.to_string(),
            })?;
            match mount.fstype {
                "cgroup2" if prefer(unified.as_deref(), &mount.point) => {
                    unified = Some(mount.point);
                }
                "cgroup" => {
                    for opt in mount.super_options.split(',') {
                        if !KNOWN_V1.contains(&opt) {
                            continue;
                        }
                        if prefer(controllers.get(opt).map(PathBuf::as_path), &mount.point) {
                            controllers.insert(opt.to_string(), mount.point.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        match (controllers.is_empty(), unified) {
            (true, Some(root)) => Ok(Layout::V2 { root }),
            (false, Some(unified)) => Ok(Layout::Hybrid {
                controllers,
                unified,
            }),
            (false, None) => Ok(Layout::V1 { controllers }),
            (true, None) => Err(CgroupError::NoHierarchies),
        }
    }

    /// Builds a layout from explicit directories (tests use tempdirs): `v1` maps controller
    /// names to hierarchy roots, `unified` is the cgroup2 root. Both given makes a hybrid.
    pub fn rooted_at(v1: &[(&str, &Path)], unified: Option<&Path>) -> Result<Layout, CgroupError> {
        let controllers: BTreeMap<String, PathBuf> = v1
            .iter()
            .map(|(name, dir)| (name.to_string(), dir.to_path_buf()))
            .collect();
        match (controllers.is_empty(), unified) {
            (true, Some(root)) => Ok(Layout::V2 {
                root: root.to_path_buf(),
            }),
            (false, Some(unified)) => Ok(Layout::Hybrid {
                controllers,
                unified: unified.to_path_buf(),
            }),
            (false, None) => Ok(Layout::V1 { controllers }),
            (true, None) => Err(CgroupError::NoHierarchies),
        }
    }

    /// The v1 hierarchies (controller to mount point); empty on pure v2.
    pub fn v1_controllers(&self) -> Option<&BTreeMap<String, PathBuf>> {
        match self {
            Layout::V1 { controllers } | Layout::Hybrid { controllers, .. } => Some(controllers),
            Layout::V2 { .. } => None,
        }
    }

    /// The unified (cgroup2) mount point, on pure v2 and hybrid hosts.
    pub fn unified(&self) -> Option<&Path> {
        match self {
            Layout::V2 { root } => Some(root),
            Layout::Hybrid { unified, .. } => Some(unified),
            Layout::V1 { .. } => None,
        }
    }

    /// Whether resource controllers live in the unified hierarchy (pure v2).
    pub fn is_v2(&self) -> bool {
        matches!(self, Layout::V2 { .. })
    }
}

/// One parsed mountinfo line: only the fields berth needs.
struct Mount<'a> {
    point: PathBuf,
    fstype: &'a str,
    super_options: &'a str,
}

/// Parses `id parent maj:min root mountpoint opts [optional...] - fstype source superopts`.
fn parse_line(line: &str) -> Option<Mount<'_>> {
    let (left, right) = line.split_once(" - ")?;
    let point = left.split(' ').nth(4)?;
    let mut right = right.split(' ');
    let fstype = right.next()?;
    let _source = right.next()?;
    let super_options = right.next().unwrap_or("");
    Some(Mount {
        point: PathBuf::from(unescape(point)),
        fstype,
        super_options,
    })
}

/// Decodes the octal escapes (`\040` for a space) the kernel uses in mountinfo paths.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match octal {
            Some(v) => {
                out.push(v);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `candidate` should replace `current` for the same hierarchy: the first mount wins,
/// except that a mount under `/sys/fs/cgroup` beats a bind mount elsewhere.
fn prefer(current: Option<&Path>, candidate: &Path) -> bool {
    match current {
        None => true,
        Some(cur) => !cur.starts_with("/sys/fs/cgroup") && candidate.starts_with("/sys/fs/cgroup"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
24 1 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const V1_COMOUNTED: &str = "\
25 19 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
29 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
31 25 0:29 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,pids
32 25 0:30 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,freezer
33 25 0:31 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,net_cls,net_prio
";

    const V2: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
26 24 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn hybrid_host() {
        let layout = Layout::from_mountinfo(HYBRID).unwrap();
        let Layout::Hybrid {
            controllers,
            unified,
        } = &layout
        else {
            panic!("expected hybrid, got {layout:?}");
        };
        assert_eq!(unified, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(controllers["memory"], Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(controllers["cpuacct"], Path::new("/sys/fs/cgroup/cpuacct"));
        assert_eq!(controllers["pids"], Path::new("/sys/fs/cgroup/pids"));
        assert!(!controllers.contains_key("name=systemd"));
        assert!(!controllers.contains_key("systemd"));
        assert_eq!(controllers.len(), 8);
        assert!(!layout.is_v2());
    }

    #[test]
    fn v1_only_with_comounted_controllers() {
        let layout = Layout::from_mountinfo(V1_COMOUNTED).unwrap();
        let Layout::V1 { controllers } = &layout else {
            panic!("expected v1, got {layout:?}");
        };
        assert_eq!(controllers["cpu"], Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(
            controllers["cpuacct"],
            Path::new("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(
            controllers["net_prio"],
            Path::new("/sys/fs/cgroup/net_cls,net_prio")
        );
        assert!(!controllers.contains_key("devices"));
        assert_eq!(layout.unified(), None);
    }

    #[test]
    fn v2_only() {
        let layout = Layout::from_mountinfo(V2).unwrap();
        assert_eq!(
            layout,
            Layout::V2 {
                root: PathBuf::from("/sys/fs/cgroup")
            }
        );
        assert!(layout.is_v2());
        assert!(layout.v1_controllers().is_none());
    }

    #[test]
    fn optional_fields_escapes_and_bind_mounts() {
        let text = "\
50 1 0:40 / /tmp/my\\040dir rw - cgroup2 cgroup2 rw
51 1 0:41 / /sys/fs/cgroup rw shared:1 master:2 - cgroup2 cgroup2 rw
52 1 0:42 / /mnt/mem rw - cgroup cgroup rw,memory
53 1 0:42 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
        let layout = Layout::from_mountinfo(text).unwrap();
        assert_eq!(layout.unified(), Some(Path::new("/sys/fs/cgroup")));
        assert_eq!(
            layout.v1_controllers().unwrap()["memory"],
            Path::new("/sys/fs/cgroup/memory")
        );
        assert_eq!(unescape("/tmp/my\\040dir"), "/tmp/my dir");
        assert_eq!(unescape("/a\\"), "/a\\");
    }

    #[test]
    fn no_cgroups_and_garbage() {
        assert!(matches!(
            Layout::from_mountinfo("22 1 0:21 / /proc rw - proc proc rw\n"),
            Err(CgroupError::NoHierarchies)
        ));
        assert!(matches!(
            Layout::from_mountinfo("garbage line\n"),
            Err(CgroupError::Mountinfo { line: 1, .. })
        ));
    }

    #[test]
    fn detects_this_host() {
        let layout = Layout::detect().unwrap();
        assert!(layout.v1_controllers().is_some() || layout.unified().is_some());
    }

    #[test]
    fn rooted_at_builds_each_kind() {
        let a = Path::new("/a");
        let b = Path::new("/b");
        assert!(matches!(
            Layout::rooted_at(&[("memory", a)], None).unwrap(),
            Layout::V1 { .. }
        ));
        assert!(matches!(
            Layout::rooted_at(&[], Some(b)).unwrap(),
            Layout::V2 { .. }
        ));
        assert!(matches!(
            Layout::rooted_at(&[("memory", a)], Some(b)).unwrap(),
            Layout::Hybrid { .. }
        ));
        assert!(Layout::rooted_at(&[], None).is_err());
    }
}
