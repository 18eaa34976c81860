//! Published ports on the command line: parsing `-p/--publish` and `berth container port`,
//! printed as Docker prints them.

use std::net::Ipv4Addr;

use anyhow::{bail, Context};
use hyper::Method;
use netd::{PortSpec, Proto, PublishedPort};

use crate::api::ContainerInfo;
use crate::client::enc;
use crate::client::Client;

/// Parses one `-p [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`, where both ports may be ranges
/// (`8000-8002:80-82`; the lengths must match). No host port: an ephemeral one per port.
pub fn parse_publish(s: &str) -> anyhow::Result<Vec<PortSpec>> {
    let bad = |why: &str| {
        anyhow::anyhow!(
            "invalid --publish {s:?}: {why} (expected [HOST_IP:][HOST_PORT:]PORT[/tcp|udp])"
        )
    };
    let (ports, proto) = match s.rsplit_once('/') {
        Some((p, proto)) => (p, proto.parse::<Proto>().map_err(|e| bad(&e))?),
        None => (s, Proto::Tcp),
    };
    let parts: Vec<&str> = ports.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => (None, "", *c),
        [h, c] => (None, *h, *c),
        [ip, h, c] => (Some(*ip), *h, *c),
        _ => {
            return Err(bad(
                "too many colons (IPv6 host addresses are not supported)",
            ))
        }
    };
    let host_ip = match ip {
        None | Some("") => Ipv4Addr::UNSPECIFIED,
        Some(ip) => ip
            .parse()
            .map_err(|_| bad(&format!("{ip:?} is not an IPv4 address")))?,
    };
    let (c_lo, c_hi) = range(container).map_err(|e| bad(&e))?;
    let count = c_hi - c_lo + 1;
    let host_ports: Vec<Option<u16>> = if host.is_empty() {
        vec![None; count as usize]
    } else {
        let (h_lo, h_hi) = range(host).map_err(|e| bad(&e))?;
        if h_hi - h_lo + 1 != count {
            return Err(bad("the host and container port ranges differ in length"));
        }
        (h_lo..=h_hi).map(Some).collect()
    };
    Ok((c_lo..=c_hi)
        .zip(host_ports)
        .map(|(container_port, host_port)| PortSpec {
            host_ip,
            host_port,
            container_port,
            proto,
        })
        .collect())
}

/// `N` or `N-M`, ports 1 to 65535.
fn range(s: &str) -> Result<(u16, u16), String> {
    let port = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{p:?} is not a port (1-65535)")),
    };
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(s)?, port(s)?),
    };
    if lo > hi {
        return Err(format!("the range {s:?} runs backwards"));
    }
    Ok((lo, hi))
}

/// `berth container port CONTAINER [PORT[/PROTO]]`: every published port as
/// `80/tcp -> 0.0.0.0:8080`, or only the host addresses of one container port.
pub async fn run(client: &Client, container: &str, filter: Option<&str>) -> anyhow::Result<u8> {
    let info: ContainerInfo = client
        .call(
            Method::GET,
            &format!("/containers/{}/json", enc(container)),
            None::<&()>,
        )
        .await?;
    let mut ports: Vec<PublishedPort> = info.network.map(|n| n.published).unwrap_or_default();
    ports.sort_by_key(|p| (p.container_port, p.proto, p.host_ip, p.host_port));
    let Some(filter) = filter else {
        for p in &ports {
            println!(
                "{}/{} -> {}:{}",
                p.container_port, p.proto, p.host_ip, p.host_port
            );
        }
        return Ok(0);
    };
    let (port, proto) = match filter.split_once('/') {
        Some((p, proto)) => (p, proto.parse::<Proto>().map_err(anyhow::Error::msg)?),
        None => (filter, Proto::Tcp),
    };
    let port: u16 = port
        .parse()
        .with_context(|| format!("invalid port {filter:?}: expected PORT[/tcp|udp]"))?;
    let matching: Vec<&PublishedPort> = ports
        .iter()
        .filter(|p| p.container_port == port && p.proto == proto)
        .collect();
    if matching.is_empty() {
        bail!("no public port '{port}/{proto}' published for {container}");
    }
    for p in matching {
        println!("{}:{}", p.host_ip, p.host_port);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ip: [u8; 4], host: Option<u16>, port: u16, proto: Proto) -> PortSpec {
        PortSpec {
            host_ip: Ipv4Addr::from(ip),
            host_port: host,
            container_port: port,
            proto,
        }
    }

    #[test]
    fn publish_forms() {
        assert_eq!(
            parse_publish("80").unwrap(),
            vec![spec([0; 4], None, 80, Proto::Tcp)]
        );
        assert_eq!(
            parse_publish("8080:80/udp").unwrap(),
            vec![spec([0; 4], Some(8080), 80, Proto::Udp)]
        );
        assert_eq!(
            parse_publish("127.0.0.1:8080:80").unwrap(),
            vec![spec([127, 0, 0, 1], Some(8080), 80, Proto::Tcp)]
        );
        assert_eq!(
            parse_publish("127.0.0.1::80").unwrap(),
            vec![spec([127, 0, 0, 1], None, 80, Proto::Tcp)]
        );
        assert_eq!(
            parse_publish("8000-8001:80-81/tcp").unwrap(),
            vec![
                spec([0; 4], Some(8000), 80, Proto::Tcp),
                spec([0; 4], Some(8001), 81, Proto::Tcp)
            ]
        );
        assert_eq!(parse_publish("90-92").unwrap().len(), 3);
    }

    #[test]
    fn publish_errors_say_why() {
        for (bad, why) in [
            ("0", "not a port"),
            ("8000-8002:80", "differ in length"),
            ("80/sctp", "unknown protocol"),
            ("a:1:2:3", "too many colons"),
            ("x.y:80:80", "not an IPv4 address"),
            ("82-80", "backwards"),
        ] {
            let e = parse_publish(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
