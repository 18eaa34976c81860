//! Phase 5, services: every key of a service definition read into its canonical long form.
//!
//! String commands are split like a shell does, `KEY=VALUE` lists become maps, `environment`
//! entries without a value are looked up in the project environment and `env_file`s are read into
//! the environment (the service's own `environment` wins), restart and limits written the short
//! way (`mem_limit`, `cpus`, `pids_limit`, `scale`) land in `deploy`, host paths become absolute.
//! Mounts, ports, networks and dependencies are read in [`super::normalize_refs`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_yaml::Value;

use super::keys::{
    BUILD_KEYS, CAPABILITIES, DEPLOY_KEYS, ENV_FILE_KEYS, HEALTHCHECK_KEYS, LIMITS_KEYS,
    RESOURCES_KEYS, RESTART_POLICY_KEYS, SERVICE_KEYS, SIGNALS, ULIMIT_KEYS,
};
use super::parse::join_index;
use super::service::{
    Build, Deploy, DeployRestartPolicy, EnvFile, Healthcheck, Limits, RestartPolicy, Service,
    Ulimit,
};
use super::shorthand::{hosts_list_to_map, kv_list_to_map, shell_split};
use super::source::absolute;
use super::Norm;

/// Values set the short way that must agree with their `deploy` counterpart.
#[derive(Default)]
struct Shorthands {
    scale: Option<(String, u32)>,
    mem_limit: Option<(String, u64)>,
    cpus: Option<(String, f64)>,
    pids_limit: Option<(String, i64)>,
    restart_set: bool,
}

impl Norm<'_> {
    /// Reads one service definition.
    pub(crate) fn service(&mut self, path: &str, v: &Value) -> Service {
        let mut s = Service::default();
        let Some(map) = self.r.map(path, v) else {
            return s;
        };
        let mut short = Shorthands::default();
        let mut env_files: Vec<EnvFile> = Vec::new();
        for (key, p, v) in self.r.fields(path, map, &SERVICE_KEYS) {
            let p = p.as_str();
            match key {
                "build" => s.build = self.build(p, v),
                "cap_add" => s.cap_add = self.capabilities(p, v),
                "cap_drop" => s.cap_drop = self.capabilities(p, v),
                "command" => s.command = self.command(p, v),
                "configs" => s.configs = self.file_refs(p, v, "/"),
                "container_name" => s.container_name = self.container_name(p, v),
                "cpus" => short.cpus = self.positive_cpus(p, v).map(|c| (p.to_string(), c)),
                "depends_on" => s.depends_on = self.depends_on(p, v),
                "deploy" => s.deploy = self.deploy(p, v),
                "dns" => s.dns = self.dns(p, v),
                "dns_opt" => s.dns_opt = self.resolver_words(p, v),
                "dns_search" => s.dns_search = self.resolver_words(p, v),
                "entrypoint" => s.entrypoint = self.command(p, v),
                "env_file" => env_files = self.env_files(p, v),
                "environment" => s.environment = self.environment(p, v),
                "expose" => s.expose = self.expose(p, v),
                "extra_hosts" => s.extra_hosts = self.extra_hosts(p, v),
                "healthcheck" => s.healthcheck = self.healthcheck(p, v),
                "hostname" => s.hostname = self.hostname(p, v),
                "image" => s.image = self.non_empty(p, v),
                "init" => s.init = self.r.bool(p, v),
                "labels" => s.labels = self.string_map(p, v, ""),
                "mem_limit" => short.mem_limit = self.r.bytes(p, v).map(|b| (p.to_string(), b)),
                "network_mode" => s.network_mode = self.network_mode(p, v),
                "networks" => s.networks = self.service_networks(p, v),
                "pids_limit" => short.pids_limit = self.r.int(p, v).map(|n| (p.to_string(), n)),
                "platform" => s.platform = self.non_empty(p, v),
                "ports" => s.ports = self.ports(p, v),
                "profiles" => s.profiles = self.profiles(p, v),
                "read_only" => s.read_only = self.r.bool(p, v).unwrap_or(false),
                "restart" => {
                    short.restart_set = true;
                    s.restart = self.restart(p, v);
                }
                "runtime" => s.runtime = self.non_empty(p, v),
                "scale" => short.scale = self.r.uint32(p, v).map(|n| (p.to_string(), n)),
                "secrets" => s.secrets = self.file_refs(p, v, "/run/secrets/"),
                "stdin_open" => s.stdin_open = self.r.bool(p, v).unwrap_or(false),
                "stop_grace_period" => s.stop_grace_period = self.r.duration(p, v),
                "stop_signal" => s.stop_signal = self.signal(p, v),
                "sysctls" => s.sysctls = self.string_map(p, v, ""),
                "tmpfs" => s.tmpfs = self.tmpfs(p, v),
                "tty" => s.tty = self.r.bool(p, v).unwrap_or(false),
                "ulimits" => s.ulimits = self.ulimits(p, v),
                "user" => s.user = self.r.string(p, v),
                "volumes" => s.volumes = self.mounts(p, v),
                "working_dir" => s.working_dir = self.absolute_container_path(p, v),
                _ => {
                    s.extensions.insert(key.to_string(), v.clone());
                }
            }
        }
        self.apply_env_files(&mut s, env_files, path);
        self.apply_shorthands(&mut s, short);
        s
    }

    fn non_empty(&mut self, path: &str, v: &Value) -> Option<String> {
        let s = self.r.string(path, v)?;
        if s.is_empty() {
            self.r.error(path, "expected a non-empty string");
            return None;
        }
        Some(s)
    }

    fn build(&mut self, path: &str, v: &Value) -> Option<Build> {
        let mut b = Build {
            context: ".".into(),
            ..Build::default()
        };
        match v {
            Value::String(ctx) => b.context = ctx.clone(),
            Value::Mapping(m) => {
                for (key, p, v) in self.r.fields(path, m, &BUILD_KEYS) {
                    match key {
                        "context" => b.context = self.non_empty(&p, v).unwrap_or_default(),
                        "dockerfile" => b.dockerfile = self.non_empty(&p, v),
                        "args" => b.args = self.env_map(&p, v),
                        "target" => b.target = self.non_empty(&p, v),
                        _ => {}
                    }
                }
            }
            other => {
                self.r.error(
                    path,
                    format!(
                        "expected a build context path or a mapping with `context`, found {}",
                        super::read::describe(other)
                    ),
                );
                return None;
            }
        }
        if !super::paths::is_remote_context(&b.context) {
            b.context = self.host_path(path, &b.context).unwrap_or_default();
        }
        Some(b)
    }

    /// A host path made absolute: `~` from HOME, relative paths against the project directory.
    pub(crate) fn host_path(&mut self, path: &str, raw: &str) -> Option<String> {
        if raw == "~" || raw.starts_with("~/") {
            let Some(home) = self.env.get("HOME") else {
                self.r
                    .error(path, format!("cannot expand {raw:?}: HOME is not set"));
                return None;
            };
            return Some(format!("{home}{}", &raw[1..]));
        }
        Some(
            absolute(self.project_dir, std::path::Path::new(raw))
                .display()
                .to_string(),
        )
    }

    fn capabilities(&mut self, path: &str, v: &Value) -> Vec<String> {
        let names = self.r.string_list(path, v).unwrap_or_default();
        let mut out = Vec::new();
        for (i, name) in names.into_iter().enumerate() {
            let upper = name.to_ascii_uppercase();
            let bare = upper.strip_prefix("CAP_").unwrap_or(&upper).to_string();
            if bare == "ALL" || CAPABILITIES.contains(&bare.as_str()) {
                out.push(bare);
            } else {
                let hint = super::error::did_you_mean(&bare, CAPABILITIES);
                self.r.error(
                    &join_index(path, i),
                    format!("unknown capability {name:?}{hint}"),
                );
            }
        }
        out
    }

    fn command(&mut self, path: &str, v: &Value) -> Option<Vec<String>> {
        match v {
            Value::Null => None,
            Value::String(s) => shell_split(s).map_err(|e| self.r.error(path, e)).ok(),
            Value::Sequence(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| self.r.scalar(&join_index(path, i), item))
                    .collect(),
            ),
            other => {
                self.r.error(
                    path,
                    format!(
                        "expected a string or a sequence of strings, found {}",
                        super::read::describe(other)
                    ),
                );
                None
            }
        }
    }

    fn container_name(&mut self, path: &str, v: &Value) -> Option<String> {
        let name = self.r.string(path, v)?;
        let ok = name.len() >= 2
            && name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
        if !ok {
            self.r.error(
                path,
                format!(
                    "invalid container name {name:?}: use letters, digits, `_`, `.` and `-`, \
                     starting with a letter or digit"
                ),
            );
            return None;
        }
        Some(name)
    }

    fn hostname(&mut self, path: &str, v: &Value) -> Option<String> {
        let name = self.r.string(path, v)?;
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if name.len() > 253 || !name.split('.').all(label_ok) {
            self.r.error(
                path,
                format!("invalid host name {name:?}: use dot-separated labels of letters, digits and `-`"),
            );
            return None;
        }
        Some(name)
    }

    fn positive_cpus(&mut self, path: &str, v: &Value) -> Option<f64> {
        let c = self.r.float(path, v)?;
        if c <= 0.0 {
            self.r.error(
                path,
                format!("expected a positive number of CPUs, found {c}"),
            );
            return None;
        }
        Some(c)
    }

    fn deploy(&mut self, path: &str, v: &Value) -> Deploy {
        let mut d = Deploy::default();
        let Some(map) = self.r.map(path, v) else {
            return d;
        };
        for (key, p, v) in self.r.fields(path, map, &DEPLOY_KEYS) {
            match key {
                "replicas" => d.replicas = self.r.uint32(&p, v).unwrap_or(1),
                "resources" => {
                    let Some(m) = self.r.map(&p, v) else { continue };
                    for (key, p, v) in self.r.fields(&p, m, &RESOURCES_KEYS) {
                        if key == "limits" {
                            d.resources.limits = self.limits(&p, v);
                        }
                    }
                }
                "restart_policy" => d.restart_policy = self.deploy_restart(&p, v),
                _ => {}
            }
        }
        d
    }

    fn limits(&mut self, path: &str, v: &Value) -> Limits {
        let mut l = Limits::default();
        let Some(m) = self.r.map(path, v) else {
            return l;
        };
        for (key, p, v) in self.r.fields(path, m, &LIMITS_KEYS) {
            match key {
                "cpus" => l.cpus = self.positive_cpus(&p, v),
                "memory" => l.memory = self.r.bytes(&p, v),
                "pids" => l.pids = self.r.int(&p, v),
                _ => {}
            }
        }
        l
    }

    fn deploy_restart(&mut self, path: &str, v: &Value) -> Option<DeployRestartPolicy> {
        let m = self.r.map(path, v)?;
        let mut rp = DeployRestartPolicy::default();
        for (key, p, v) in self.r.fields(path, m, &RESTART_POLICY_KEYS) {
            match key {
                "condition" => {
                    rp.condition = self.r.string(&p, v);
                    if let Some(c) = &rp.condition {
                        if !["none", "on-failure", "any"].contains(&c.as_str()) {
                            self.r.error(
                                &p,
                                format!(
                                    "expected \"none\", \"on-failure\" or \"any\", found {c:?}"
                                ),
                            );
                        }
                    }
                }
                "delay" => rp.delay = self.r.duration(&p, v),
                "max_attempts" => rp.max_attempts = self.r.uint(&p, v),
                "window" => rp.window = self.r.duration(&p, v),
                _ => {}
            }
        }
        Some(rp)
    }

    fn dns(&mut self, path: &str, v: &Value) -> Vec<IpAddr> {
        let list = self.r.string_or_list(path, v).unwrap_or_default();
        let mut out = Vec::new();
        for (i, s) in list.iter().enumerate() {
            match s.parse() {
                Ok(ip) => out.push(ip),
                Err(_) => self.r.error(
                    &join_index(path, i),
                    format!("expected an IP address, found {s:?}"),
                ),
            }
        }
        out
    }

    /// `dns_search` / `dns_opt`: a string or a list of single words (they become one
    /// resolv.conf line, so blanks would split them).
    fn resolver_words(&mut self, path: &str, v: &Value) -> Vec<String> {
        let list = self.r.string_or_list(path, v).unwrap_or_default();
        for (i, s) in list.iter().enumerate() {
            if s.is_empty() || s.contains(char::is_whitespace) {
                self.r.error(
                    &join_index(path, i),
                    format!("expected a single word without blanks, found {s:?}"),
                );
            }
        }
        list
    }

    fn env_files(&mut self, path: &str, v: &Value) -> Vec<EnvFile> {
        let items: Vec<(String, &Value)> = match v {
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| (join_index(path, i), item))
                .collect(),
            other => vec![(path.to_string(), other)],
        };
        let mut out = Vec::new();
        for (p, item) in items {
            let (file, required) = match item {
                Value::Mapping(m) => {
                    let mut file = None;
                    let mut required = true;
                    for (key, kp, v) in self.r.fields(&p, m, &ENV_FILE_KEYS) {
                        match key {
                            "path" => file = self.r.string(&kp, v),
                            "required" => required = self.r.bool(&kp, v).unwrap_or(true),
                            _ => {}
                        }
                    }
                    if file.is_none() {
                        self.r.error(&p, "missing `path`");
                    }
                    (file, required)
                }
                other => (self.r.string(&p, other), true),
            };
            let Some(file) = file.and_then(|f| self.host_path(&p, &f)) else {
                continue;
            };
            out.push(EnvFile {
                path: file.into(),
                required,
            });
        }
        out
    }

    /// Reads the env files into the environment; the service's own `environment` wins.
    fn apply_env_files(&mut self, s: &mut Service, files: Vec<EnvFile>, path: &str) {
        let mut from_files: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (i, f) in files.iter().enumerate() {
            let p = join_index(&super::parse::join_key(path, "env_file"), i);
            if !f.required && !self.fs.is_file(&f.path) {
                continue;
            }
            let text = match self.fs.read(&f.path) {
                Ok(t) => t,
                Err(e) => {
                    self.r.error(
                        &p,
                        format!("cannot read env file {}: {e}", f.path.display()),
                    );
                    continue;
                }
            };
            match super::dotenv::parse(&text, self.env) {
                Ok(pairs) => from_files.extend(pairs.into_iter().map(|(k, v)| (k, Some(v)))),
                Err(e) => self.r.error(
                    &p,
                    format!("{}:{}: {}", f.path.display(), e.line, e.message),
                ),
            }
        }
        for (k, v) in std::mem::take(&mut s.environment) {
            from_files.insert(k, v);
        }
        s.environment = from_files;
        s.env_file = files;
    }

    /// `environment` (or build args): map or `KEY=VALUE` list; a key without a value takes the
    /// project environment's value, or stays unset.
    fn environment(&mut self, path: &str, v: &Value) -> BTreeMap<String, Option<String>> {
        let mut out = self.env_map(path, v);
        for (k, val) in out.iter_mut() {
            if val.is_none() {
                *val = self.env.get(k).cloned();
            }
        }
        out
    }

    fn env_map(&mut self, path: &str, v: &Value) -> BTreeMap<String, Option<String>> {
        let converted;
        let map = match v {
            Value::Sequence(items) => match kv_list_to_map(items, &Value::Null) {
                Some(m) => {
                    converted = m;
                    &converted
                }
                None => {
                    self.r
                        .error(path, "expected a sequence of KEY=VALUE strings");
                    return BTreeMap::new();
                }
            },
            other => match self.r.map(path, other) {
                Some(m) => m,
                None => return BTreeMap::new(),
            },
        };
        let mut out = BTreeMap::new();
        for (k, val) in map {
            let key = super::read::key_text(k);
            let p = super::parse::join_key(path, &key);
            if key.is_empty() {
                self.r.error(&p, "empty variable name");
                continue;
            }
            let value = match val {
                Value::Null => None,
                other => self.r.scalar(&p, other),
            };
            out.insert(key, value);
        }
        out
    }

    /// A map or `KEY=VALUE` list of strings (labels, sysctls); `missing` for keys without value.
    pub(crate) fn string_map(
        &mut self,
        path: &str,
        v: &Value,
        missing: &str,
    ) -> BTreeMap<String, String> {
        self.env_map(path, v)
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_else(|| missing.to_string())))
            .collect()
    }

    fn expose(&mut self, path: &str, v: &Value) -> Vec<String> {
        let Some(items) = self.r.seq(path, v) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = join_index(path, i);
            let Some(text) = self.r.string(&p, item) else {
                continue;
            };
            let (ports, proto) = match text.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (text.as_str(), None),
            };
            let checked = ports.parse::<super::service::PortRange>().and_then(|_| {
                proto.map_or(Ok(()), |p| super::shorthand::parse_protocol(p).map(|_| ()))
            });
            match checked {
                Ok(()) => out.push(text),
                Err(e) => self
                    .r
                    .error(&p, format!("invalid exposed port {text:?}: {e}")),
            }
        }
        out
    }

    fn extra_hosts(&mut self, path: &str, v: &Value) -> BTreeMap<String, Vec<String>> {
        let converted;
        let map = match v {
            Value::Sequence(items) => match hosts_list_to_map(items) {
                Some(m) => {
                    converted = m;
                    &converted
                }
                None => {
                    self.r
                        .error(path, "expected a sequence of \"HOST:IP\" strings");
                    return BTreeMap::new();
                }
            },
            other => match self.r.map(path, other) {
                Some(m) => m,
                None => return BTreeMap::new(),
            },
        };
        let mut out = BTreeMap::new();
        for (k, val) in map {
            let host = super::read::key_text(k);
            let p = super::parse::join_key(path, &host);
            let ips = self.r.string_or_list(&p, val).unwrap_or_default();
            for ip in &ips {
                if ip != "host-gateway" && ip.parse::<IpAddr>().is_err() {
                    self.r.error(
                        &p,
                        format!("expected an IP address or \"host-gateway\", found {ip:?}"),
                    );
                }
            }
            out.insert(host, ips);
        }
        out
    }

    fn healthcheck(&mut self, path: &str, v: &Value) -> Option<Healthcheck> {
        let m = self.r.map(path, v)?;
        let mut h = Healthcheck::default();
        for (key, p, v) in self.r.fields(path, m, &HEALTHCHECK_KEYS) {
            match key {
                "test" => h.test = self.health_test(&p, v),
                "interval" => h.interval = self.r.duration(&p, v),
                "timeout" => h.timeout = self.r.duration(&p, v),
                "retries" => h.retries = self.r.uint(&p, v),
                "start_period" => h.start_period = self.r.duration(&p, v),
                "start_interval" => h.start_interval = self.r.duration(&p, v),
                "disable" => h.disable = self.r.bool(&p, v).unwrap_or(false),
                _ => {}
            }
        }
        if h.disable && !h.test.is_empty() && h.test[0] != "NONE" {
            self.r.error(
                path,
                "`disable: true` cannot be combined with `test`; remove one of them \
                 (use `test: !reset` to drop an inherited test)",
            );
        }
        Some(h)
    }

    fn health_test(&mut self, path: &str, v: &Value) -> Vec<String> {
        match v {
            Value::String(s) => vec!["CMD-SHELL".into(), s.clone()],
            Value::Sequence(_) => {
                let items = self.r.string_list(path, v).unwrap_or_default();
                match items.first().map(String::as_str) {
                    Some("NONE") => {}
                    Some("CMD" | "CMD-SHELL") if items.len() >= 2 => {}
                    Some("CMD" | "CMD-SHELL") => self
                        .r
                        .error(path, format!("{} needs a command after it", items[0])),
                    _ => self.r.error(
                        path,
                        "the first item must be \"NONE\", \"CMD\" or \"CMD-SHELL\" \
                         (or write the test as a string)",
                    ),
                }
                items
            }
            other => {
                self.r.error(
                    path,
                    format!(
                        "expected a string or a sequence, found {}",
                        super::read::describe(other)
                    ),
                );
                Vec::new()
            }
        }
    }

    fn profiles(&mut self, path: &str, v: &Value) -> Vec<String> {
        let names = self.r.string_list(path, v).unwrap_or_default();
        for (i, n) in names.iter().enumerate() {
            if !super::normalize::valid_resource_name(n) {
                self.r.error(
                    &join_index(path, i),
                    format!("invalid profile name {n:?}: use letters, digits, `_`, `.` and `-`"),
                );
            }
        }
        names
    }

    fn restart(&mut self, path: &str, v: &Value) -> RestartPolicy {
        let Some(text) = self.r.string(path, v) else {
            return RestartPolicy::No;
        };
        text.parse().unwrap_or_else(|e: String| {
            self.r.error(path, e);
            RestartPolicy::No
        })
    }

    fn signal(&mut self, path: &str, v: &Value) -> Option<String> {
        let text = self.r.string(path, v)?;
        if text.parse::<u8>().is_ok_and(|n| (1..=64).contains(&n)) {
            return Some(text);
        }
        let upper = text.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        let realtime = bare
            .strip_prefix("RTMIN+")
            .or_else(|| bare.strip_prefix("RTMAX-"))
            .is_some_and(|n| n.parse::<u8>().is_ok_and(|n| n <= 30));
        if SIGNALS.contains(&bare) || realtime || bare == "RTMIN" || bare == "RTMAX" {
            return Some(format!("SIG{bare}"));
        }
        let hint = super::error::did_you_mean(bare, SIGNALS);
        self.r.error(path, format!("unknown signal {text:?}{hint}"));
        None
    }

    fn tmpfs(&mut self, path: &str, v: &Value) -> Vec<String> {
        let list = self.r.string_or_list(path, v).unwrap_or_default();
        for (i, t) in list.iter().enumerate() {
            if !t.starts_with('/') {
                self.r.error(
                    &join_index(path, i),
                    format!("the tmpfs path {t:?} must be absolute"),
                );
            }
        }
        list
    }

    fn ulimits(&mut self, path: &str, v: &Value) -> BTreeMap<String, Ulimit> {
        let mut out = BTreeMap::new();
        let Some(m) = self.r.map(path, v) else {
            return out;
        };
        for (k, val) in m {
            let name = super::read::key_text(k);
            let p = super::parse::join_key(path, &name);
            let limit = match val {
                Value::Mapping(lm) => {
                    let (mut soft, mut hard) = (None, None);
                    for (key, kp, v) in self.r.fields(&p, lm, &ULIMIT_KEYS) {
                        match key {
                            "soft" => soft = self.r.int(&kp, v),
                            "hard" => hard = self.r.int(&kp, v),
                            _ => {}
                        }
                    }
                    match (soft, hard) {
                        (Some(soft), Some(hard)) => Some(Ulimit { soft, hard }),
                        _ => {
                            self.r.error(&p, "expected both `soft` and `hard`");
                            None
                        }
                    }
                }
                other => self.r.int(&p, other).map(|n| Ulimit { soft: n, hard: n }),
            };
            if let Some(l) = limit {
                if l.soft > l.hard {
                    self.r.error(
                        &p,
                        format!("soft limit {} is above hard limit {}", l.soft, l.hard),
                    );
                }
                out.insert(name, l);
            }
        }
        out
    }

    pub(crate) fn absolute_container_path(&mut self, path: &str, v: &Value) -> Option<String> {
        let p = self.r.string(path, v)?;
        if !p.starts_with('/') {
            self.r
                .error(path, format!("the container path {p:?} must be absolute"));
            return None;
        }
        Some(p)
    }

    /// Moves `scale`, `mem_limit`, `cpus`, `pids_limit` into `deploy` (they must agree with
    /// it) and derives `restart` from `deploy.restart_policy` when `restart` is not set.
    fn apply_shorthands(&mut self, s: &mut Service, short: Shorthands) {
        if let Some((p, n)) = short.scale {
            if s.deploy.replicas != 1 && s.deploy.replicas != n {
                self.r.error(
                    &p,
                    format!(
                        "`scale` ({n}) and `deploy.replicas` ({}) disagree; keep one of them",
                        s.deploy.replicas
                    ),
                );
            }
            s.deploy.replicas = n;
        }
        let limits = &mut s.deploy.resources.limits;
        let mut conflict = |p: &str, key: &str, what: String| {
            self.r.error(
                p,
                format!(
                    "`{key}` and `deploy.resources.limits` disagree ({what}); keep one of them"
                ),
            )
        };
        if let Some((p, b)) = short.mem_limit {
            match limits.memory {
                Some(m) if m != b => conflict(&p, "mem_limit", format!("{b} and {m} bytes")),
                _ => limits.memory = Some(b),
            }
        }
        if let Some((p, c)) = short.cpus {
            match limits.cpus {
                Some(x) if x != c => conflict(&p, "cpus", format!("{c} and {x}")),
                _ => limits.cpus = Some(c),
            }
        }
        if let Some((p, n)) = short.pids_limit {
            match limits.pids {
                Some(x) if x != n => conflict(&p, "pids_limit", format!("{n} and {x}")),
                _ => limits.pids = Some(n),
            }
        }
        if !short.restart_set {
            if let Some(rp) = &s.deploy.restart_policy {
                s.restart = match rp.condition.as_deref() {
                    Some("none") => RestartPolicy::No,
                    Some("on-failure") => RestartPolicy::OnFailure {
                        max_retries: rp.max_attempts.and_then(|n| u32::try_from(n).ok()),
                    },
                    _ => RestartPolicy::Always,
                };
            }
        }
    }
}
