//! Short-syntax parsers shared by the merge and normalize phases: port specs
//! (`127.0.0.1:8000-8001:80-81/udp`), volume specs (`./src:/app:ro`), `KEY=VALUE` lists, extra
//! hosts (`host:ip`) and shell-like word splitting of string commands.

use std::net::IpAddr;

use serde_yaml::{Mapping, Value};

use super::service::{BindOptions, Mount, MountType, Port, PortRange, Protocol, VolumeOptions};

/// Parses a short port spec into one long-form entry per container port.
pub(crate) fn parse_port(spec: &str) -> Result<Vec<Port>, String> {
    let (addr, protocol) = match spec.rsplit_once('/') {
        Some((a, p)) => (a, parse_protocol(p)?),
        None => (spec, Protocol::Tcp),
    };
    let (host_ip, rest) = split_host_ip(addr)?;
    let (published, target) = match rest.rsplit_once(':') {
        Some((p, t)) => (Some(p), t),
        None => (None, rest),
    };
    let target: PortRange = target
        .parse()
        .map_err(|e| format!("invalid port spec {spec:?}: container port: {e}"))?;
    let published: Option<PortRange> = match published {
        None | Some("") => None,
        Some(p) => Some(
            p.parse()
                .map_err(|e| format!("invalid port spec {spec:?}: host port: {e}"))?,
        ),
    };
    let count = u32::from(target.end - target.start) + 1;
    let entry = |target: u16, published: Option<PortRange>| Port {
        target,
        published,
        host_ip,
        protocol,
    };
    match published {
        None => Ok((target.start..=target.end)
            .map(|t| entry(t, None))
            .collect()),
        Some(p) if count == 1 => Ok(vec![entry(target.start, Some(p))]),
        Some(p) if u32::from(p.end - p.start) + 1 == count => Ok((0..count as u16)
            .map(|i| entry(target.start + i, Some(PortRange::single(p.start + i))))
            .collect()),
        Some(_) => Err(format!(
            "invalid port spec {spec:?}: the host and container port ranges must have the same size"
        )),
    }
}

/// `tcp` or `udp`.
pub(crate) fn parse_protocol(p: &str) -> Result<Protocol, String> {
    match p {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        "sctp" => Err("protocol `sctp` is not supported yet; use tcp or udp".into()),
        _ => Err(format!("expected protocol \"tcp\" or \"udp\", found {p:?}")),
    }
}

/// Splits a leading host address (`1.2.3.4:` or `[::1]:`) from a port spec.
fn split_host_ip(addr: &str) -> Result<(Option<IpAddr>, &str), String> {
    let bad_ip =
        |ip: &str| format!("invalid port spec {addr:?}: host address {ip:?} is not an IP address");
    if let Some(rest) = addr.strip_prefix('[') {
        let (ip, after) = rest
            .split_once("]:")
            .ok_or_else(|| format!("invalid port spec {addr:?}: expected `[IPv6]:PORT`"))?;
        let ip: IpAddr = ip.parse().map_err(|_| bad_ip(ip))?;
        return Ok((Some(ip), after));
    }
    match addr.matches(':').count() {
        0 | 1 => Ok((None, addr)),
        2 => {
            let (ip, rest) = addr.split_once(':').unwrap_or(("", addr));
            if ip.is_empty() {
                return Ok((None, rest));
            }
            let ip: IpAddr = ip.parse().map_err(|_| bad_ip(ip))?;
            Ok((Some(ip), rest))
        }
        _ => Err(format!(
            "invalid port spec {addr:?}: write IPv6 host addresses in brackets, as in [::1]:8080:80"
        )),
    }
}

/// The identity of a port entry for merging: address, host port, container port, protocol.
pub(crate) fn port_key(port: &Port) -> String {
    format!(
        "{}:{}:{}/{}",
        port.host_ip.map(|i| i.to_string()).unwrap_or_default(),
        port.published.map(|p| p.to_string()).unwrap_or_default(),
        port.target,
        port.protocol.as_str()
    )
}

/// Whether a volume source is a host path (bind mount) rather than a volume name.
pub(crate) fn is_host_path(source: &str) -> bool {
    source.starts_with('/') || source.starts_with('.') || source.starts_with('~')
}

/// Parses a short volume spec `[SOURCE:]TARGET[:MODE]`; a host-path source stays as written
/// (the caller makes it absolute).
pub(crate) fn parse_volume(spec: &str) -> Result<Mount, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [s, t] => (Some(*s), *t, None),
        [s, t, m] => (Some(*s), *t, Some(*m)),
        _ => {
            return Err(format!(
                "invalid volume spec {spec:?}: expected [SOURCE:]TARGET[:MODE]"
            ))
        }
    };
    if source == Some("") {
        return Err(format!("invalid volume spec {spec:?}: the source is empty"));
    }
    if !target.starts_with('/') {
        return Err(format!(
            "invalid volume spec {spec:?}: the container path {target:?} must be absolute"
        ));
    }
    let kind = match source {
        Some(s) if is_host_path(s) => MountType::Bind,
        _ => MountType::Volume,
    };
    let mut mount = Mount {
        kind,
        source: source.map(str::to_string),
        target: target.to_string(),
        read_only: false,
        bind: (kind == MountType::Bind).then_some(BindOptions {
            create_host_path: true,
        }),
        volume: None,
        tmpfs: None,
    };
    for opt in mode.into_iter().flat_map(|m| m.split(',')) {
        match opt {
            "ro" => mount.read_only = true,
            "rw" => mount.read_only = false,
            "nocopy" if kind == MountType::Volume => {
                mount.volume = Some(VolumeOptions { nocopy: true })
            }
            "z" | "Z" | "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate"
            | "cached" | "delegated" | "consistent" => {
                return Err(format!(
                    "volume option `{opt}` in {spec:?} is not supported yet; use ro or rw"
                ))
            }
            _ => {
                return Err(format!(
                "invalid volume spec {spec:?}: unknown option {opt:?} (expected ro, rw or nocopy)"
            ))
            }
        }
    }
    Ok(mount)
}

/// A `KEY=VALUE` list as a mapping; `KEY` alone maps to `missing` (null for environment and
/// build args, the empty string for labels). `None` when an item is not a scalar.
pub(crate) fn kv_list_to_map(items: &[Value], missing: &Value) -> Option<Mapping> {
    let mut map = Mapping::new();
    for item in items {
        let text = super::read::scalar_text(item)?;
        match text.split_once('=') {
            Some((k, v)) => map.insert(Value::String(k.into()), Value::String(v.into())),
            None => map.insert(Value::String(text), missing.clone()),
        };
    }
    Some(map)
}

/// An extra-hosts list (`host:ip`, `host=ip`) as a mapping of host to address list.
pub(crate) fn hosts_list_to_map(items: &[Value]) -> Option<Mapping> {
    let mut map = Mapping::new();
    for item in items {
        let text = item.as_str()?;
        let (host, ip) = text.split_once('=').or_else(|| text.split_once(':'))?;
        let key = Value::String(host.to_string());
        let ip = Value::String(ip.trim_start_matches('[').trim_end_matches(']').to_string());
        match map.get_mut(&key) {
            Some(Value::Sequence(ips)) => ips.push(ip),
            _ => {
                map.insert(key, Value::Sequence(vec![ip]));
            }
        }
    }
    Some(map)
}

/// Splits a command string into words like a POSIX shell (quotes and backslashes, no
/// expansion).
pub(crate) fn shell_split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unterminated single quote in {text:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("unterminated double quote in {text:?}")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("unterminated double quote in {text:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err(format!("trailing backslash in {text:?}")),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(spec: &str) -> Vec<String> {
        parse_port(spec).unwrap().iter().map(port_key).collect()
    }

    #[test]
    fn port_specs_expand_to_long_form() {
        assert_eq!(ports("80"), [":80:80/tcp".replace(":80:80", "::80")]);
        assert_eq!(ports("8080:80"), [":8080:80/tcp"]);
        assert_eq!(ports("53:53/udp"), [":53:53/udp"]);
        assert_eq!(ports("127.0.0.1:8001:8001"), ["127.0.0.1:8001:8001/tcp"]);
        assert_eq!(ports("127.0.0.1::5000"), ["127.0.0.1::5000/tcp"]);
        assert_eq!(ports("[::1]:6001:6001"), ["::1:6001:6001/tcp"]);
        assert_eq!(ports("3000-3001"), ["::3000/tcp", "::3001/tcp"]);
        assert_eq!(
            ports("9090-9091:8080-8081"),
            [":9090:8080/tcp", ":9091:8081/tcp"]
        );
        assert_eq!(ports("8000-8010:80"), [":8000-8010:80/tcp"]);
    }

    #[test]
    fn bad_port_specs_explain_themselves() {
        let err = |s: &str| parse_port(s).unwrap_err();
        assert_eq!(
            err("70000:80"),
            "invalid port spec \"70000:80\": host port: port 70000 is out of range 1-65535"
        );
        assert!(err("80:http").contains("expected a port number"));
        assert!(err("80/sctp").contains("not supported yet"));
        assert!(err("1:2:3:4").contains("brackets"));
        assert!(err("x.y:80:80").contains("not an IP address"));
        assert!(err("80-81:90-92").contains("same size"));
    }

    #[test]
    fn volume_specs() {
        let m = parse_volume("./src:/app:ro").unwrap();
        assert_eq!(m.kind, MountType::Bind);
        assert_eq!(m.source.as_deref(), Some("./src"));
        assert!(m.read_only);
        assert!(m.bind.unwrap().create_host_path);
        let m = parse_volume("data:/var/lib/x").unwrap();
        assert_eq!(m.kind, MountType::Volume);
        assert_eq!(m.source.as_deref(), Some("data"));
        let m = parse_volume("/node_modules").unwrap();
        assert_eq!((m.kind, m.source), (MountType::Volume, None));
        assert!(
            parse_volume("data:/x:nocopy")
                .unwrap()
                .volume
                .unwrap()
                .nocopy
        );
        assert!(parse_volume("data:rel")
            .unwrap_err()
            .contains("must be absolute"));
        assert!(parse_volume("./a:/b:z")
            .unwrap_err()
            .contains("not supported yet"));
        assert!(parse_volume("./a:/b:bogus")
            .unwrap_err()
            .contains("unknown option"));
        assert!(parse_volume("a:b:c:d").is_err());
    }

    #[test]
    fn key_value_lists() {
        let items: Vec<Value> = serde_yaml::from_str("[A=1, B, C=x=y]").unwrap();
        let m = kv_list_to_map(&items, &Value::Null).unwrap();
        assert_eq!(m.get("A").unwrap().as_str(), Some("1"));
        assert!(m.get("B").unwrap().is_null());
        assert_eq!(m.get("C").unwrap().as_str(), Some("x=y"));
        let hosts: Vec<Value> =
            serde_yaml::from_str("['db:10.0.0.2', 'db=10.0.0.3', 'v6:::1', 'b:[::2]']").unwrap();
        let m = hosts_list_to_map(&hosts).unwrap();
        assert_eq!(m.get("db").unwrap().as_sequence().unwrap().len(), 2);
        assert_eq!(m.get("v6").unwrap()[0].as_str(), Some("::1"));
        assert_eq!(m.get("b").unwrap()[0].as_str(), Some("::2"));
    }

    #[test]
    fn shell_words() {
        assert_eq!(
            shell_split(r#"bash -c "echo \"hi\" $X" 'a b' c\ d"#).unwrap(),
            ["bash", "-c", "echo \"hi\" $X", "a b", "c d"]
        );
        assert_eq!(shell_split("  ").unwrap(), Vec::<String>::new());
        assert_eq!(shell_split("''").unwrap(), [""]);
        assert!(shell_split("'open").is_err());
        assert!(shell_split("\"open").is_err());
    }
}
