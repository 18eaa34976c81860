//! Service discovery: one embedded DNS server per network, listening on the network's gateway
//! address only (UDP and TCP port 53).
//!
//! It answers A (and PTR) queries for container names, short ids, network aliases and service
//! names from the registry, authoritatively and with TTL 0 so a replica that stops or turns
//! unhealthy disappears from answers at once; other names are forwarded to the host's resolvers
//! (internal networks forward nothing). Messages are parsed and built with hickory-proto; the
//! forwarder relays the client's message and the upstream's answer unchanged.

pub(crate) mod registry;
mod server;

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};

pub use server::DnsError;
pub(crate) use server::DnsServer;

use registry::{Lookup, Registry};

/// Answers carry TTL 0: records change the moment a replica starts, stops or turns unhealthy.
const TTL: u32 = 0;

/// Largest UDP payload we advertise and send when the client supports EDNS.
const EDNS_PAYLOAD: u16 = 1232;

/// Classic DNS UDP payload limit without EDNS.
const PLAIN_PAYLOAD: usize = 512;

/// What to do with one incoming message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Not ours: relay the original message to the upstream resolvers.
    Forward,
    /// Not a query (or unparseable): ignore.
    Drop,
}

/// How one network's server answers.
#[derive(Debug, Clone)]
pub(crate) struct Responder {
    pub network_id: String,
    pub internal: bool,
    /// The host's search domains (lowercase): containers get them in their resolv.conf, so a
    /// lookup of `web` may arrive as `web.corp.example` first; it is answered as `web`.
    pub search: Arc<Vec<String>>,
}

impl Responder {
    /// Answers one message that arrived from `src`; `udp` limits the size of the reply.
    pub(crate) fn answer(
        &self,
        registry: &Registry,
        bytes: &[u8],
        src: SocketAddr,
        udp: bool,
    ) -> Answer {
        let Ok(req) = Message::from_vec(bytes) else {
            return Answer::Drop;
        };
        if req.metadata.message_type != MessageType::Query {
            return Answer::Drop;
        }
        let src_ip = match src {
            SocketAddr::V4(a) => *a.ip(),
            SocketAddr::V6(a) => a.ip().to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
        };
        if req.metadata.op_code != OpCode::Query || req.queries.len() != 1 {
            return self.reply(&req, ResponseCode::NotImp, Vec::new(), udp);
        }
        let query = &req.queries[0];
        let qname = registry::normalize(&query.name().to_ascii());
        if query.query_type() == RecordType::PTR {
            if let Some(ip) = ptr_address(&qname) {
                if let Some(name) = registry.reverse(&self.network_id, src_ip, ip) {
                    let target =
                        Name::from_ascii(format!("{name}.")).unwrap_or_else(|_| Name::root());
                    let record =
                        Record::from_rdata(query.name().clone(), TTL, RData::PTR(PTR(target)));
                    return self.reply(&req, ResponseCode::NoError, vec![record], udp);
                }
            }
            return self.not_ours(&req, udp);
        }
        let rotate = matches!(query.query_type(), RecordType::A | RecordType::ANY);
        match self.lookup(registry, src_ip, &qname, rotate) {
            Lookup::Found(ips) => {
                let records = match query.query_type() {
                    RecordType::A | RecordType::ANY => ips
                        .into_iter()
                        .map(|ip| Record::from_rdata(query.name().clone(), TTL, RData::A(A(ip))))
                        .collect(),
                    // The name exists but has no record of this type (AAAA, MX...): NODATA, so
                    // clients do not wait for an upstream that knows nothing about it.
                    _ => Vec::new(),
                };
                self.reply(&req, ResponseCode::NoError, records, udp)
            }
            Lookup::Disabled => self.reply(&req, ResponseCode::NXDomain, Vec::new(), udp),
            Lookup::Unknown => self.not_ours(&req, udp),
        }
    }

    /// Looks the name up as asked, then without each search domain.
    fn lookup(&self, registry: &Registry, src: Ipv4Addr, qname: &str, rotate: bool) -> Lookup {
        let found = registry.lookup(&self.network_id, src, qname, rotate);
        if found != Lookup::Unknown {
            return found;
        }
        for domain in self.search.iter() {
            let short = qname
                .strip_suffix(domain.as_str())
                .and_then(|rest| rest.strip_suffix('.'));
            if let Some(short) = short.filter(|s| !s.is_empty()) {
                let found = registry.lookup(&self.network_id, src, short, rotate);
                if found != Lookup::Unknown {
                    return found;
                }
            }
        }
        Lookup::Unknown
    }

    fn not_ours(&self, req: &Message, udp: bool) -> Answer {
        if self.internal {
            self.reply(req, ResponseCode::Refused, Vec::new(), udp)
        } else {
            Answer::Forward
        }
    }

    fn reply(&self, req: &Message, code: ResponseCode, answers: Vec<Record>, udp: bool) -> Answer {
        let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
        resp.metadata.response_code = code;
        resp.metadata.authoritative = code != ResponseCode::Refused && code != ResponseCode::NotImp;
        resp.metadata.recursion_desired = req.metadata.recursion_desired;
        resp.metadata.recursion_available = !self.internal;
        resp.add_queries(req.queries.iter().cloned());
        resp.add_answers(answers);
        let limit = match &req.edns {
            Some(edns) => {
                let mut ours = Edns::new();
                ours.set_max_payload(EDNS_PAYLOAD);
                resp.set_edns(ours);
                usize::from(edns.max_payload().clamp(PLAIN_PAYLOAD as u16, EDNS_PAYLOAD))
            }
            None => PLAIN_PAYLOAD,
        };
        match resp.to_vec() {
            Ok(bytes) if !udp || bytes.len() <= limit => Answer::Reply(bytes),
            Ok(_) => resp.truncate().to_vec().map_or(Answer::Drop, Answer::Reply),
            Err(_) => Answer::Drop,
        }
    }
}

/// The address of a `d.c.b.a.in-addr.arpa` name.
fn ptr_address(name: &str) -> Option<Ipv4Addr> {
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let mut octets: Vec<&str> = rest.split('.').collect();
    if octets.len() != 4 {
        return None;
    }
    octets.reverse();
    Ipv4Addr::from_str(&octets.join(".")).ok()
}

/// A SERVFAIL for a message the forwarder could not get answered.
pub(crate) fn servfail(bytes: &[u8]) -> Option<Vec<u8>> {
    let req = Message::from_vec(bytes).ok()?;
    let mut resp = Message::error_msg(
        req.metadata.id,
        req.metadata.op_code,
        ResponseCode::ServFail,
    );
    resp.metadata.recursion_desired = req.metadata.recursion_desired;
    resp.add_queries(req.queries.iter().cloned());
    resp.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use registry::Entry;

    fn query(name: &str, ty: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), ty));
        m.to_vec().unwrap()
    }

    fn setup(internal: bool) -> (Registry, Responder) {
        let r = Registry::default();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        r.replace_all(
            (1..=3)
                .map(|i| Entry {
                    container_id: format!("c{i}"),
                    network_id: "n".into(),
                    ip: Ipv4Addr::new(10, 89, 0, 10 + i),
                    names: names(&[&format!("web-{i}"), "web"]),
                    enabled: true,
                    upstreams: Vec::new(),
                })
                .collect(),
        );
        (
            r,
            Responder {
                network_id: "n".into(),
                internal,
                search: Arc::new(vec!["corp.example".into()]),
            },
        )
    }

    const SRC: &str = "10.89.0.11:40000";

    fn reply(a: Answer) -> Message {
        match a {
            Answer::Reply(b) => Message::from_vec(&b).unwrap(),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn answers_service_names_with_every_replica() {
        let (r, resp) = setup(false);
        let m = reply(resp.answer(
            &r,
            &query("WEB.", RecordType::A),
            SRC.parse().unwrap(),
            true,
        ));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.authoritative);
        assert_eq!(m.answers.len(), 3);
        assert!(m.answers.iter().all(|a| a.ttl == 0));
        // AAAA for a known name: NODATA.
        let m = reply(resp.answer(
            &r,
            &query("web.", RecordType::AAAA),
            SRC.parse().unwrap(),
            true,
        ));
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
    }

    #[test]
    fn names_with_a_host_search_domain_are_ours_too() {
        let (r, resp) = setup(false);
        let src = SRC.parse().unwrap();
        let m = reply(resp.answer(&r, &query("web.corp.example.", RecordType::A), src, true));
        assert_eq!(m.answers.len(), 3);
        assert_eq!(m.answers[0].name.to_ascii(), "web.corp.example.");
        assert_eq!(
            resp.answer(&r, &query("corp.example.", RecordType::A), src, true),
            Answer::Forward
        );
        assert_eq!(
            resp.answer(&r, &query("web.other.example.", RecordType::A), src, true),
            Answer::Forward
        );
    }

    #[test]
    fn disabled_names_are_nxdomain_and_unknown_names_forwarded() {
        let (r, resp) = setup(false);
        r.set_enabled("c2", false);
        let m = reply(resp.answer(
            &r,
            &query("web-2.", RecordType::A),
            SRC.parse().unwrap(),
            true,
        ));
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(
            resp.answer(
                &r,
                &query("example.com.", RecordType::A),
                SRC.parse().unwrap(),
                true
            ),
            Answer::Forward
        );
        let (r, internal) = setup(true);
        let m = reply(internal.answer(
            &r,
            &query("example.com.", RecordType::A),
            SRC.parse().unwrap(),
            true,
        ));
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    }

    #[test]
    fn reverse_and_garbage() {
        let (r, resp) = setup(false);
        let m = reply(resp.answer(
            &r,
            &query("12.0.89.10.in-addr.arpa.", RecordType::PTR),
            SRC.parse().unwrap(),
            true,
        ));
        assert_eq!(m.answers.len(), 1);
        assert_eq!(
            ptr_address("1.2.3.4.in-addr.arpa"),
            Some(Ipv4Addr::new(4, 3, 2, 1))
        );
        assert_eq!(ptr_address("2.3.4.in-addr.arpa"), None);
        assert_eq!(
            resp.answer(&r, b"\x01\x02", SRC.parse().unwrap(), true),
            Answer::Drop
        );
        let fail = Message::from_vec(&servfail(&query("x.", RecordType::A)).unwrap()).unwrap();
        assert_eq!(fail.metadata.response_code, ResponseCode::ServFail);
    }

    #[test]
    fn large_udp_answers_are_truncated() {
        let r = Registry::default();
        r.replace_all(
            (1..=60)
                .map(|i| Entry {
                    container_id: format!("c{i}"),
                    network_id: "n".into(),
                    ip: Ipv4Addr::new(10, 89, 0, i),
                    names: vec!["big".into()],
                    enabled: true,
                    upstreams: Vec::new(),
                })
                .collect(),
        );
        let resp = Responder {
            network_id: "n".into(),
            internal: false,
            search: Arc::default(),
        };
        let q = query("big.", RecordType::A);
        let m = reply(resp.answer(&r, &q, SRC.parse().unwrap(), true));
        assert!(m.metadata.truncation);
        assert!(m.answers.is_empty());
        let m = reply(resp.answer(&r, &q, SRC.parse().unwrap(), false));
        assert_eq!(m.answers.len(), 60);
    }
}
