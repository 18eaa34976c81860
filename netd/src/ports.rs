//! Host port reservations for published ports.
//!
//! Each published port is held by a socket bound to `host_ip:host_port` (TCP sockets are bound
//! but never listen, so they accept nothing; DNAT takes the traffic before it could reach them).
//! Binding first makes a port that is already taken a clear error before any link or rule is
//! created, keeps other programs from taking the port later, and lets the kernel pick ephemeral
//! ports.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};

use crate::types::Proto;

/// Errors of reserving a host port.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("host port {addr}/{proto} is already in use")]
    InUse {
        addr: SocketAddrV4,
        proto: Proto,
        #[source]
        source: io::Error,
    },
    #[error("reserve host port {addr}/{proto}")]
    Reserve {
        addr: SocketAddrV4,
        proto: Proto,
        #[source]
        source: io::Error,
    },
}

/// A held host port; dropping it releases the port.
#[derive(Debug)]
pub(crate) struct Reservation {
    _socket: Socket,
    pub port: u16,
}

/// Binds `host_ip:port` (`port` 0: an ephemeral port).
pub(crate) fn reserve(
    host_ip: Ipv4Addr,
    port: u16,
    proto: Proto,
) -> Result<Reservation, PortError> {
    let addr = SocketAddrV4::new(host_ip, port);
    let err = |source: io::Error| {
        if source.kind() == io::ErrorKind::AddrInUse {
            PortError::InUse {
                addr,
                proto,
                source,
            }
        } else {
            PortError::Reserve {
                addr,
                proto,
                source,
            }
        }
    };
    let (ty, protocol) = match proto {
        Proto::Tcp => (Type::STREAM, Protocol::TCP),
        Proto::Udp => (Type::DGRAM, Protocol::UDP),
    };
    let socket = Socket::new(Domain::IPV4, ty.cloexec(), Some(protocol)).map_err(err)?;
    socket.bind(&SocketAddr::V4(addr).into()).map_err(err)?;
    let bound = socket
        .local_addr()
        .map_err(err)?
        .as_socket_ipv4()
        .map(|a| a.port())
        .ok_or_else(|| err(io::Error::other("bound address is not IPv4")))?;
    Ok(Reservation {
        _socket: socket,
        port: bound,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserves_and_detects_conflicts() {
        let r = reserve(Ipv4Addr::LOCALHOST, 0, Proto::Tcp).unwrap();
        assert_ne!(r.port, 0);
        // The same port again: in use, with a message naming it.
        let err = reserve(Ipv4Addr::LOCALHOST, r.port, Proto::Tcp).unwrap_err();
        assert!(matches!(err, PortError::InUse { .. }));
        assert!(err
            .to_string()
            .contains(&format!("127.0.0.1:{}/tcp", r.port)));
        // A listener of another program cannot take it either.
        assert!(std::net::TcpListener::bind(("127.0.0.1", r.port)).is_err());
        // UDP is a separate space.
        let u = reserve(Ipv4Addr::LOCALHOST, r.port, Proto::Udp);
        if let Ok(u) = u {
            assert_eq!(u.port, r.port);
        }
        let port = r.port;
        drop(r);
        let again = reserve(Ipv4Addr::LOCALHOST, port, Proto::Tcp).unwrap();
        assert_eq!(again.port, port);
    }

    #[test]
    fn a_port_held_by_a_listener_is_refused() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(matches!(
            reserve(Ipv4Addr::UNSPECIFIED, port, Proto::Tcp),
            Err(PortError::InUse { .. })
        ));
    }
}
