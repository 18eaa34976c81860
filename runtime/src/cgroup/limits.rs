//! Resource limits (memory, CPU quota, pids) written into v1 or v2 control files, controller
//! delegation on v2, and the statistics read back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::files::{self, keyed, read_opt};
use super::{CgroupError, Resources, Stats};

/// CFS period berth uses for CPU quotas, in microseconds (100 ms, as Docker).
pub(crate) const CPU_PERIOD_US: u64 = 100_000;
/// The smallest quota the kernel accepts, in microseconds.
const MIN_QUOTA_US: u64 = 1_000;
/// v1 reports "no limit" as the largest page-aligned counter; anything at or above this is
/// unlimited whatever the page size.
const V1_UNLIMITED: u64 = (i64::MAX as u64) & !0xffff;

/// The v2 controllers berth wants for every container (statistics need them even without a
/// limit).
pub(crate) const V2_CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// The CPU quota in microseconds per [`CPU_PERIOD_US`] for `cpus`.
pub(crate) fn cpu_quota(cpus: f64) -> Result<u64, CgroupError> {
    let invalid = |reason| CgroupError::InvalidLimit {
        resource: "cpu",
        value: cpus.to_string(),
        reason,
    };
    if !cpus.is_finite() || cpus <= 0.0 {
        return Err(invalid("must be a positive number of cpus"));
    }
    let quota = (cpus * CPU_PERIOD_US as f64).round();
    if quota > u32::MAX as f64 {
        return Err(invalid("too large"));
    }
    let quota = quota as u64;
    if quota < MIN_QUOTA_US {
        return Err(invalid("must be at least 0.01 cpus"));
    }
    Ok(quota)
}

/// Checks every requested limit before anything is created.
pub(crate) fn validate(res: &Resources) -> Result<(), CgroupError> {
    if res.memory == Some(0) {
        return Err(CgroupError::InvalidLimit {
            resource: "memory",
            value: "0".into(),
            reason: "must be positive",
        });
    }
    if let Some(cpus) = res.cpus {
        cpu_quota(cpus)?;
    }
    Ok(())
}

/// The `pids.max` value: a non-positive limit means unlimited (Docker's convention).
fn pids_value(pids: i64) -> String {
    if pids <= 0 {
        "max".to_string()
    } else {
        pids.to_string()
    }
}

/// The controllers the requested limits need.
pub(crate) fn required(res: &Resources) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    if res.memory.is_some() {
        out.push(("memory", "memory"));
    }
    if res.cpus.is_some() {
        out.push(("cpu", "cpu"));
    }
    if res.pids.is_some() {
        out.push(("pids", "pids"));
    }
    out
}

/// Writes the limits into the v1 hierarchies (`dirs` maps controller to this cgroup's dir).
pub(crate) fn apply_v1(
    dirs: &BTreeMap<String, PathBuf>,
    res: &Resources,
) -> Result<(), CgroupError> {
    if let (Some(mem), Some(dir)) = (res.memory, dirs.get("memory")) {
        files::write(&dir.join("memory.limit_in_bytes"), &mem.to_string())?;
        // With swap accounting, memory+swap gets the same limit so swap cannot dodge it.
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            files::write(&memsw, &mem.to_string())?;
        }
    }
    if let (Some(cpus), Some(dir)) = (res.cpus, dirs.get("cpu")) {
        files::write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
        files::write(&dir.join("cpu.cfs_quota_us"), &cpu_quota(cpus)?.to_string())?;
    }
    if let (Some(pids), Some(dir)) = (res.pids, dirs.get("pids")) {
        files::write(&dir.join("pids.max"), &pids_value(pids))?;
    }
    Ok(())
}

/// Writes the limits into the cgroup2 directory `dir`.
pub(crate) fn apply_v2(dir: &Path, res: &Resources) -> Result<(), CgroupError> {
    if let Some(mem) = res.memory {
        files::write(&dir.join("memory.max"), &mem.to_string())?;
        let swap = dir.join("memory.swap.max");
        if swap.exists() {
            files::write(&swap, "0")?;
        }
    }
    if let Some(cpus) = res.cpus {
        let value = format!("{} {CPU_PERIOD_US}", cpu_quota(cpus)?);
        files::write(&dir.join("cpu.max"), &value)?;
    }
    if let Some(pids) = res.pids {
        files::write(&dir.join("pids.max"), &pids_value(pids))?;
    }
    Ok(())
}

/// Controllers listed in a `cgroup.controllers` or `cgroup.subtree_control` file.
fn controller_list(path: &Path) -> Result<Vec<String>, CgroupError> {
    Ok(files::read(path)?
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

/// Enables the controllers berth wants in `parent`'s `cgroup.subtree_control`, so the child
/// about to be created gets them. Controllers the limits need (`required`) must succeed; the
/// others (for statistics only) are best effort.
pub(crate) fn delegate_v2(parent: &Path, required: &[&str]) -> Result<(), CgroupError> {
    let available = controller_list(&parent.join("cgroup.controllers"))?;
    let control = parent.join("cgroup.subtree_control");
    let enabled = controller_list(&control)?;
    let missing = |c: &&str| available.iter().any(|a| a == c) && !enabled.iter().any(|e| e == c);
    let needed: Vec<&str> = V2_CONTROLLERS
        .iter()
        .copied()
        .filter(|c| required.contains(c))
        .filter(missing)
        .collect();
    if !needed.is_empty() {
        let value: Vec<String> = needed.iter().map(|c| format!("+{c}")).collect();
        files::write(&control, &value.join(" "))?;
    }
    for c in V2_CONTROLLERS
        .iter()
        .copied()
        .filter(|c| !required.contains(c))
        .filter(missing)
    {
        if let Err(error) = files::write(&control, &format!("+{c}")) {
            tracing::warn!(%error, controller = c, "cannot enable cgroup v2 controller for statistics");
        }
    }
    Ok(())
}

/// Fails unless every controller in `required` is enabled in the new cgroup2 directory `dir`.
pub(crate) fn check_v2(dir: &Path, rel: &str, res: &Resources) -> Result<(), CgroupError> {
    let have = controller_list(&dir.join("cgroup.controllers"))?;
    for (resource, controller) in required(res) {
        if !have.iter().any(|c| c == controller) {
            return Err(CgroupError::MissingController {
                resource,
                controller,
                rel: rel.to_string(),
            });
        }
    }
    Ok(())
}

/// Reads an optional number, mapping v1's "unlimited" value and v2's `max` to `None`.
fn read_limit(path: &Path) -> Result<Option<u64>, CgroupError> {
    match read_opt(path)? {
        None => Ok(None),
        Some(t) if t.trim() == "max" => Ok(None),
        Some(t) => {
            let v = files::parse_u64(path, &t)?;
            Ok((v < V1_UNLIMITED).then_some(v))
        }
    }
}

/// Reads an optional single-number file.
fn read_num(path: &Path) -> Result<Option<u64>, CgroupError> {
    read_opt(path)?
        .map(|t| files::parse_u64(path, &t))
        .transpose()
}

/// Fills the CPU fields from a `cpu.stat` file (`usec` names on v2, `throttled_time` in ns on v1).
fn cpu_stat(path: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
    let Some(text) = read_opt(path)? else {
        return Ok(());
    };
    let m = keyed(&text);
    if let Some(us) = m.get("usage_usec") {
        stats.cpu_usage_ns.get_or_insert(us * 1000);
    }
    stats.cpu_periods = m.get("nr_periods").copied();
    stats.cpu_throttled_periods = m.get("nr_throttled").copied();
    stats.cpu_throttled_ns = m
        .get("throttled_time")
        .copied()
        .or_else(|| m.get("throttled_usec").map(|us| us * 1000));
    Ok(())
}

/// Statistics from v1 hierarchies (plus the unified dir's `cpu.stat` when there is no cpuacct).
pub(crate) fn stats_v1(
    dirs: &BTreeMap<String, PathBuf>,
    unified: Option<&Path>,
) -> Result<Stats, CgroupError> {
    let mut s = Stats::default();
    if let Some(d) = dirs.get("memory") {
        s.memory_usage_bytes = read_num(&d.join("memory.usage_in_bytes"))?;
        s.memory_limit_bytes = read_limit(&d.join("memory.limit_in_bytes"))?;
    }
    if let Some(d) = dirs.get("cpuacct") {
        s.cpu_usage_ns = read_num(&d.join("cpuacct.usage"))?;
    }
    if let Some(d) = dirs.get("cpu") {
        cpu_stat(&d.join("cpu.stat"), &mut s)?;
    }
    if let (None, Some(u)) = (s.cpu_usage_ns, unified) {
        let periods = (s.cpu_periods, s.cpu_throttled_periods, s.cpu_throttled_ns);
        cpu_stat(&u.join("cpu.stat"), &mut s)?;
        (s.cpu_periods, s.cpu_throttled_periods, s.cpu_throttled_ns) = periods;
    }
    if let Some(d) = dirs.get("pids") {
        s.pids_current = read_num(&d.join("pids.current"))?;
        s.pids_max = read_limit(&d.join("pids.max"))?;
    }
    Ok(s)
}

/// Statistics from a cgroup2 directory with controllers.
pub(crate) fn stats_v2(dir: &Path) -> Result<Stats, CgroupError> {
    let mut s = Stats {
        memory_usage_bytes: read_num(&dir.join("memory.current"))?,
        memory_limit_bytes: read_limit(&dir.join("memory.max"))?,
        pids_current: read_num(&dir.join("pids.current"))?,
        pids_max: read_limit(&dir.join("pids.max"))?,
        ..Stats::default()
    };
    cpu_stat(&dir.join("cpu.stat"), &mut s)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn quotas() {
        assert_eq!(cpu_quota(0.5).unwrap(), 50_000);
        assert_eq!(cpu_quota(2.0).unwrap(), 200_000);
        assert_eq!(cpu_quota(0.01).unwrap(), 1_000);
        assert!(cpu_quota(0.001).is_err());
        assert!(cpu_quota(0.0).is_err());
        assert!(cpu_quota(-1.0).is_err());
        assert!(cpu_quota(f64::NAN).is_err());
        assert!(cpu_quota(1e12).is_err());
        assert!(validate(&Resources {
            memory: Some(0),
            ..Resources::default()
        })
        .is_err());
        assert_eq!(pids_value(0), "max");
        assert_eq!(pids_value(-1), "max");
        assert_eq!(pids_value(7), "7");
    }

    #[test]
    fn v1_stats_from_files() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        fs::write(d.join("memory.usage_in_bytes"), "12288\n").unwrap();
        fs::write(d.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        fs::write(d.join("cpuacct.usage"), "5000\n").unwrap();
        fs::write(
            d.join("cpu.stat"),
            "nr_periods 10\nnr_throttled 4\nthrottled_time 777\nnr_bursts 0\n",
        )
        .unwrap();
        fs::write(d.join("pids.current"), "3\n").unwrap();
        fs::write(d.join("pids.max"), "max\n").unwrap();
        let dirs: BTreeMap<String, PathBuf> = ["memory", "cpu", "cpuacct", "pids"]
            .iter()
            .map(|c| (c.to_string(), d.to_path_buf()))
            .collect();
        let s = stats_v1(&dirs, None).unwrap();
        assert_eq!(s.memory_usage_bytes, Some(12288));
        assert_eq!(s.memory_limit_bytes, None);
        assert_eq!(s.cpu_usage_ns, Some(5000));
        assert_eq!(s.cpu_periods, Some(10));
        assert_eq!(s.cpu_throttled_periods, Some(4));
        assert_eq!(s.cpu_throttled_ns, Some(777));
        assert_eq!(s.pids_current, Some(3));
        assert_eq!(s.pids_max, None);
    }

    #[test]
    fn v2_stats_from_files() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        fs::write(d.join("memory.current"), "4096\n").unwrap();
        fs::write(d.join("memory.max"), "16777216\n").unwrap();
        fs::write(
            d.join("cpu.stat"),
            "usage_usec 250\nuser_usec 200\nsystem_usec 50\nnr_periods 8\nnr_throttled 2\nthrottled_usec 30\n",
        )
        .unwrap();
        fs::write(d.join("pids.current"), "1\n").unwrap();
        fs::write(d.join("pids.max"), "64\n").unwrap();
        let s = stats_v2(d).unwrap();
        assert_eq!(s.memory_usage_bytes, Some(4096));
        assert_eq!(s.memory_limit_bytes, Some(16 << 20));
        assert_eq!(s.cpu_usage_ns, Some(250_000));
        assert_eq!(s.cpu_periods, Some(8));
        assert_eq!(s.cpu_throttled_periods, Some(2));
        assert_eq!(s.cpu_throttled_ns, Some(30_000));
        assert_eq!(s.pids_current, Some(1));
        assert_eq!(s.pids_max, Some(64));
    }

    #[test]
    fn delegate_enables_missing_controllers() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        fs::write(d.join("cgroup.controllers"), "cpuset cpu io memory pids\n").unwrap();
        fs::write(d.join("cgroup.subtree_control"), "cpu\n").unwrap();
        delegate_v2(d, &["memory", "pids"]).unwrap();
        assert_eq!(
            fs::read_to_string(d.join("cgroup.subtree_control")).unwrap(),
            "+memory +pids"
        );
        fs::write(d.join("cgroup.controllers"), "io\n").unwrap();
        fs::write(d.join("cgroup.subtree_control"), "").unwrap();
        delegate_v2(d, &["memory"]).unwrap();
        assert_eq!(
            fs::read_to_string(d.join("cgroup.subtree_control")).unwrap(),
            ""
        );
        let res = Resources {
            memory: Some(1 << 20),
            ..Resources::default()
        };
        fs::write(d.join("cgroup.controllers"), "cpu pids\n").unwrap();
        assert!(matches!(
            check_v2(d, "x", &res),
            Err(CgroupError::MissingController {
                controller: "memory",
                ..
            })
        ));
    }
}
