//! The sockets of one network's DNS server: a UDP loop that answers local names inline (the
//! fast path) and hands forwarded queries to their own tasks, and a TCP listener with one task
//! per connection. Stopping cancels every task and waits for them.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::registry::Registry;
use super::{servfail, Answer, Responder};

/// How long one upstream gets to answer a forwarded query.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a TCP client may stay idle.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Errors of starting a DNS server.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("bind dns server to {addr}/{proto}")]
    Bind {
        addr: SocketAddr,
        proto: &'static str,
        #[source]
        source: io::Error,
    },
}

/// What every task of one server shares.
struct Ctx {
    registry: Arc<Registry>,
    responder: Responder,
    upstreams: Arc<Vec<SocketAddr>>,
}

impl Ctx {
    /// Where a query from `src` that netd does not own goes: the querying container's own
    /// resolvers when it has some, the server's otherwise.
    fn upstreams_for(&self, src: SocketAddr) -> Arc<Vec<SocketAddr>> {
        let SocketAddr::V4(v4) = src else {
            return self.upstreams.clone();
        };
        match self
            .registry
            .upstreams(&self.responder.network_id, *v4.ip())
        {
            Some(own) => Arc::new(own),
            None => self.upstreams.clone(),
        }
    }
}

/// A running server; [`DnsServer::stop`] ends it.
pub(crate) struct DnsServer {
    addr: SocketAddr,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

impl DnsServer {
    /// Binds `gateway:port` (UDP and TCP) and starts serving.
    pub(crate) fn start(
        registry: Arc<Registry>,
        responder: Responder,
        upstreams: Arc<Vec<SocketAddr>>,
        gateway: Ipv4Addr,
        port: u16,
    ) -> Result<DnsServer, DnsError> {
        let addr = SocketAddr::from((gateway, port));
        let bind_err = |proto| {
            move |source| DnsError::Bind {
                addr,
                proto,
                source,
            }
        };
        let std_udp = std::net::UdpSocket::bind(addr).map_err(bind_err("udp"))?;
        std_udp.set_nonblocking(true).map_err(bind_err("udp"))?;
        let udp = UdpSocket::from_std(std_udp).map_err(bind_err("udp"))?;
        let tcp = TcpSocket::new_v4().map_err(bind_err("tcp"))?;
        tcp.set_reuseaddr(true).map_err(bind_err("tcp"))?;
        tcp.bind(addr).map_err(bind_err("tcp"))?;
        let listener = tcp.listen(64).map_err(bind_err("tcp"))?;

        let ctx = Arc::new(Ctx {
            registry,
            responder,
            upstreams,
        });
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        tasks.spawn(serve_udp(Arc::new(udp), ctx.clone(), cancel.clone()));
        tasks.spawn(serve_tcp(listener, ctx, cancel.clone()));
        debug!(%addr, "dns server started");
        Ok(DnsServer {
            addr,
            cancel,
            tasks,
        })
    }

    /// Stops serving and waits until every socket is closed.
    pub(crate) async fn stop(mut self) {
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
        debug!(addr = %self.addr, "dns server stopped");
    }
}

async fn serve_udp(socket: Arc<UdpSocket>, ctx: Arc<Ctx>, cancel: CancellationToken) {
    let mut buf = vec![0u8; 4096];
    let mut forwards = JoinSet::new();
    loop {
        let (n, src) = tokio::select! {
            _ = cancel.cancelled() => break,
            Some(_) = forwards.join_next(), if !forwards.is_empty() => continue,
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    debug!(error = %e, "dns udp receive failed");
                    continue;
                }
            },
        };
        let msg = &buf[..n];
        match ctx.responder.answer(&ctx.registry, msg, src, true) {
            Answer::Reply(bytes) => {
                if let Err(e) = socket.send_to(&bytes, src).await {
                    debug!(error = %e, %src, "dns udp reply failed");
                }
            }
            Answer::Forward => {
                let (socket, ctx, msg) = (socket.clone(), ctx.clone(), msg.to_vec());
                forwards.spawn(async move {
                    if let Some(bytes) = forward(&ctx.upstreams_for(src), &msg)
                        .await
                        .or_else(|| servfail(&msg))
                    {
                        let _ = socket.send_to(&bytes, src).await;
                    }
                });
            }
            Answer::Drop => {}
        }
    }
    forwards.shutdown().await;
}

async fn serve_tcp(listener: TcpListener, ctx: Arc<Ctx>, cancel: CancellationToken) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            r = listener.accept() => match r {
                Ok((stream, src)) => {
                    conns.spawn(serve_tcp_conn(stream, src, ctx.clone()));
                }
                Err(e) => warn!(error = %e, "dns tcp accept failed"),
            },
        }
    }
    conns.shutdown().await;
}

async fn serve_tcp_conn(mut stream: TcpStream, src: SocketAddr, ctx: Arc<Ctx>) {
    loop {
        let len = match tokio::time::timeout(TCP_IDLE, stream.read_u16()).await {
            Ok(Ok(len)) => usize::from(len),
            _ => return,
        };
        let mut msg = vec![0u8; len];
        if stream.read_exact(&mut msg).await.is_err() {
            return;
        }
        let bytes = match ctx.responder.answer(&ctx.registry, &msg, src, false) {
            Answer::Reply(b) => b,
            Answer::Forward => match forward(&ctx.upstreams_for(src), &msg)
                .await
                .or_else(|| servfail(&msg))
            {
                Some(b) => b,
                None => return,
            },
            Answer::Drop => return,
        };
        let Ok(len) = u16::try_from(bytes.len()) else {
            return;
        };
        if stream.write_u16(len).await.is_err() || stream.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

/// Relays `msg` to each upstream in turn (over UDP) until one answers it.
async fn forward(upstreams: &[SocketAddr], msg: &[u8]) -> Option<Vec<u8>> {
    if msg.len() < 2 {
        return None;
    }
    for up in upstreams {
        let bind: SocketAddr = if up.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let attempt = async {
            let sock = UdpSocket::bind(bind).await.ok()?;
            sock.connect(up).await.ok()?;
            sock.send(msg).await.ok()?;
            let mut buf = vec![0u8; 4096];
            loop {
                let n = sock.recv(&mut buf).await.ok()?;
                // Only the answer to this message (same id) counts.
                if n >= 2 && buf[..2] == msg[..2] {
                    buf.truncate(n);
                    return Some(buf);
                }
            }
        };
        match tokio::time::timeout(UPSTREAM_TIMEOUT, attempt).await {
            Ok(Some(answer)) => return Some(answer),
            _ => debug!(upstream = %up, "dns upstream gave no answer"),
        }
    }
    None
}
