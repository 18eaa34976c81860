//! Netlink (rtnetlink over tokio) operations netd needs on the host and inside container
//! network namespaces: bridges, veth pairs created with their peer directly in the target
//! namespace, addresses, routes, and dumps of the host's links, routes and addresses.
//!
//! A connection inside a container namespace is opened on a short-lived thread that joins the
//! namespace just long enough to create the socket (see `sys::in_netns`); the socket
//! then works from any thread.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use futures::TryStreamExt;
use ipnetwork::Ipv4Network;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{
    AfSpecInet6, AfSpecUnspec, BridgePortState, In6AddrGenMode, InfoBridgePort, InfoData, InfoKind,
    InfoPortData, InfoVeth, LinkAttribute, LinkInfo, LinkMessage, State as LinkState,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteHeader};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

use crate::ipam::Taken;
use crate::sys::{self, SysError};

/// Errors of netlink operations; each names the step and the interface or address.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("open netlink socket")]
    Connect(#[source] io::Error),
    #[error("open netlink socket inside {netns}")]
    ConnectNetns {
        netns: String,
        #[source]
        source: SysError,
    },
    #[error("open netlink socket inside {netns}")]
    ConnectNetnsSocket {
        netns: String,
        #[source]
        source: io::Error,
    },
    #[error("{step} {target}")]
    Request {
        step: &'static str,
        target: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("link {name} not found after {step}")]
    Missing { step: &'static str, name: String },
}

impl NetlinkError {
    fn request(
        step: &'static str,
        target: impl Into<String>,
    ) -> impl FnOnce(rtnetlink::Error) -> Self {
        let target = target.into();
        move |source| NetlinkError::Request {
            step,
            target,
            source,
        }
    }
}

impl NetlinkError {
    /// True when the kernel refused the request with `code` (a positive errno).
    pub(crate) fn is_errno(&self, code: i32) -> bool {
        matches!(self, NetlinkError::Request { source, .. } if errno(source) == Some(code))
    }
}

/// The positive errno of a netlink error reply, if it is one.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| -c.get()),
        _ => None,
    }
}

/// True when a new link has its real qdisc and is operationally up: until the kernel
/// activates it, a link that is up still sends through the `noop` qdisc, which drops
/// everything.
pub(crate) fn transmitting(msg: &LinkMessage) -> bool {
    let qdisc = msg
        .attributes
        .iter()
        .any(|a| matches!(a, LinkAttribute::Qdisc(q) if q != "noop"));
    qdisc && oper_up(msg)
}

/// True when the link is operationally up: for a bridge, its carrier is on (it has a
/// forwarding port) and the kernel has re-activated its queues, so the host's own packets
/// (ARP replies, DNS answers) leave it.
pub(crate) fn oper_up(msg: &LinkMessage) -> bool {
    msg.attributes
        .iter()
        .any(|a| matches!(a, LinkAttribute::OperState(LinkState::Up)))
}

/// True when the link is a bridge port in forwarding state.
pub(crate) fn port_forwarding(msg: &LinkMessage) -> bool {
    msg.attributes.iter().any(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().any(|i| match i {
            LinkInfo::PortData(InfoPortData::BridgePort(port)) => port
                .iter()
                .any(|p| matches!(p, InfoBridgePort::State(BridgePortState::Forwarding))),
            _ => false,
        }),
        _ => false,
    })
}

/// One link as dumped.
#[derive(Debug, Clone)]
pub(crate) struct LinkSummary {
    pub index: u32,
    pub name: String,
    pub master: Option<u32>,
    pub alias: Option<String>,
    pub is_bridge: bool,
}

fn summarize(msg: &LinkMessage) -> LinkSummary {
    let mut s = LinkSummary {
        index: msg.header.index,
        name: String::new(),
        master: None,
        alias: None,
        is_bridge: false,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => s.name = n.clone(),
            LinkAttribute::Controller(m) => s.master = Some(*m),
            LinkAttribute::IfAlias(a) => s.alias = Some(a.clone()),
            LinkAttribute::LinkInfo(infos) => {
                s.is_bridge = infos
                    .iter()
                    .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Bridge)));
            }
            _ => {}
        }
    }
    s
}

/// A netlink connection bound to one network namespace.
pub(crate) struct Nl {
    handle: Handle,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Nl {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Nl {
    /// A connection in the caller's network namespace.
    pub(crate) fn connect() -> Result<Nl, NetlinkError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Connect)?;
        let task = tokio::spawn(conn);
        Ok(Nl { handle, task })
    }

    /// A connection inside the network namespace `netns` (opened from `label`).
    pub(crate) async fn connect_in(netns: &File, label: &str) -> Result<Nl, NetlinkError> {
        let rt = tokio::runtime::Handle::current();
        let opened = sys::in_netns(netns, move || {
            let _guard = rt.enter();
            rtnetlink::new_connection().map(|(conn, handle, _)| (conn, handle))
        })
        .await
        .map_err(|source| NetlinkError::ConnectNetns {
            netns: label.to_string(),
            source,
        })?;
        let (conn, handle) = opened.map_err(|source| NetlinkError::ConnectNetnsSocket {
            netns: label.to_string(),
            source,
        })?;
        let task = tokio::spawn(conn);
        Ok(Nl { handle, task })
    }

    /// The index of the link called `name`, `None` if there is none.
    pub(crate) async fn link_index(&self, name: &str) -> Result<Option<u32>, NetlinkError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(msg)) => Ok(Some(msg.header.index)),
            Ok(None) => Ok(None),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(NetlinkError::request("look up link", name)(e)),
        }
    }

    async fn require_index(&self, name: &str, step: &'static str) -> Result<u32, NetlinkError> {
        self.link_index(name)
            .await?
            .ok_or_else(|| NetlinkError::Missing {
                step,
                name: name.to_string(),
            })
    }

    /// Every link of the namespace.
    pub(crate) async fn links(&self) -> Result<Vec<LinkSummary>, NetlinkError> {
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(NetlinkError::request("dump links", "of the namespace"))?;
        Ok(msgs.iter().map(summarize).collect())
    }

    /// Creates a bridge that is up, with a fixed MAC (a bridge otherwise takes the lowest MAC
    /// of its ports, which changes as containers come and go) and the given alias.
    pub(crate) async fn create_bridge(
        &self,
        name: &str,
        mac: [u8; 6],
        alias: &str,
    ) -> Result<u32, NetlinkError> {
        let msg = LinkBridge::new(name).address(mac.to_vec()).build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(NetlinkError::request("create bridge", name))?;
        let configured = async {
            let index = self.require_index(name, "create bridge").await?;
            let msg = LinkUnspec::new_with_index(index).alias(alias).build();
            self.handle
                .link()
                .set(msg)
                .execute()
                .await
                .map_err(NetlinkError::request("set alias of bridge", name))?;
            Ok(index)
        }
        .await;
        if configured.is_err() {
            // The bridge is ours and useless without its alias; the first error is the one
            // worth reporting.
            let _ = self.delete_link(name).await;
        }
        configured
    }

    /// Brings a link up.
    pub(crate) async fn set_up(&self, index: u32, name: &str) -> Result<(), NetlinkError> {
        let msg = LinkUnspec::new_with_index(index).up().build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(NetlinkError::request("bring up link", name))
    }

    /// Stops a link that is still down from ever getting IPv6 addresses (address generation
    /// mode "none"): no link-local address, so no duplicate address detection, router
    /// solicitations or multicast reports. A kernel without IPv6 has nothing to stop.
    pub(crate) async fn no_ipv6_addresses(
        &self,
        index: u32,
        name: &str,
    ) -> Result<(), NetlinkError> {
        let spec = AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)]);
        let msg = LinkUnspec::new_with_index(index)
            .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![spec]))
            .build();
        match self.handle.link().set(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EAFNOSUPPORT) => Ok(()),
            Err(e) => Err(NetlinkError::request("turn off ipv6 addresses of", name)(e)),
        }
    }

    /// Waits until link `name` carries traffic: `ready` holds for it (see
    /// [`port_forwarding`], [`transmitting`]). A veth's carrier, the qdisc that lets it send
    /// and the bridge port state all change in the kernel's link-watch work, asynchronously;
    /// under load that takes a while, and packets sent meanwhile are dropped (a lost first ARP
    /// request costs a second). Returns false if `deadline` passed first.
    pub(crate) async fn wait_link(
        &self,
        name: &str,
        ready: fn(&LinkMessage) -> bool,
        deadline: std::time::Duration,
    ) -> Result<bool, NetlinkError> {
        let start = tokio::time::Instant::now();
        loop {
            let mut links = self
                .handle
                .link()
                .get()
                .match_name(name.to_string())
                .execute();
            let msg = links
                .try_next()
                .await
                .map_err(NetlinkError::request("read state of link", name))?;
            if msg.as_ref().is_some_and(ready) {
                return Ok(true);
            }
            if start.elapsed() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    /// Adds `ip/prefix` to a link; an address already there is fine.
    pub(crate) async fn add_address(
        &self,
        index: u32,
        name: &str,
        ip: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), NetlinkError> {
        match self
            .handle
            .address()
            .add(index, IpAddr::V4(ip), prefix)
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(NetlinkError::request(
                "add address",
                format!("{ip}/{prefix} to {name}"),
            )(e)),
        }
    }

    /// Deletes a link by name; a link that is already gone is fine.
    pub(crate) async fn delete_link(&self, name: &str) -> Result<(), NetlinkError> {
        let msg = LinkUnspec::new_with_name(name).build();
        match self.handle.link().del_with_message(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(libc::ENODEV) | Some(libc::ENOENT)) => Ok(()),
            Err(e) => Err(NetlinkError::request("delete link", name)(e)),
        }
    }

    /// Creates a veth pair: `host` up on the bridge `bridge_index`, its peer created directly
    /// inside the namespace `netns` as `peer` with the MAC `mac` (creating it there rather than
    /// moving it afterwards is an order of magnitude faster).
    pub(crate) async fn add_veth(
        &self,
        host: &str,
        bridge_index: u32,
        peer: &str,
        mac: [u8; 6],
        netns: &File,
    ) -> Result<(), NetlinkError> {
        let peer_msg = LinkUnspec::new_with_name(peer)
            .address(mac.to_vec())
            .setns_by_fd(netns.as_raw_fd())
            .build();
        let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(host.to_string())
            .controller(bridge_index)
            .up()
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)))
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(NetlinkError::request(
                "create veth pair",
                format!("{host} (peer {peer})"),
            ))
    }

    /// Retires the veth `name` (see [`Reaper`]): sets it down, which cuts the container off
    /// at once (a bridge port that is down forwards nothing), and moves it to
    /// [`RETIRED_GROUP`]. Returns false when the link is already gone.
    pub(crate) async fn retire_veth(&self, name: &str) -> Result<bool, NetlinkError> {
        let msg = LinkUnspec::new_with_name(name)
            .down()
            .link_group(RETIRED_GROUP)
            .build();
        match self.handle.link().set(msg).execute().await {
            Ok(()) => Ok(true),
            Err(e) if matches!(errno(&e), Some(libc::ENODEV) | Some(libc::ENOENT)) => Ok(false),
            Err(e) => Err(NetlinkError::request("retire veth", name)(e)),
        }
    }

    /// Adds the default route via `gateway` out of link `index`.
    pub(crate) async fn add_default_route(
        &self,
        index: u32,
        name: &str,
        gateway: Ipv4Addr,
    ) -> Result<(), NetlinkError> {
        let msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .output_interface(index)
            .build();
        self.handle
            .route()
            .add(msg)
            .execute()
            .await
            .map_err(NetlinkError::request(
                "add default route",
                format!("via {gateway} dev {name}"),
            ))
    }

    /// Every IPv4 prefix in use in this namespace: main-table routes (but the default route)
    /// and the networks of local addresses, each with a description of its owner.
    pub(crate) async fn used_prefixes(&self) -> Result<Vec<Taken>, NetlinkError> {
        let links = self.links().await?;
        let ifname = |index: u32| {
            links
                .iter()
                .find(|l| l.index == index)
                .map_or_else(|| format!("ifindex {index}"), |l| l.name.clone())
        };
        let mut taken = Vec::new();
        let routes: Vec<_> = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(NetlinkError::request("dump routes", "of the host"))?;
        for route in routes {
            let prefix = route.header.destination_prefix_length;
            if route_table(&route.header, &route.attributes)
                != u32::from(RouteHeader::RT_TABLE_MAIN)
                || prefix == 0
            {
                continue;
            }
            let mut dest = None;
            let mut oif = None;
            for attr in &route.attributes {
                match attr {
                    RouteAttribute::Destination(RouteAddress::Inet(ip)) => dest = Some(*ip),
                    RouteAttribute::Oif(i) => oif = Some(*i),
                    _ => {}
                }
            }
            if let Some(net) = dest.and_then(|ip| Ipv4Network::new_checked(ip, prefix)) {
                let dev = oif.map_or_else(|| "no device".to_string(), ifname);
                taken.push(Taken {
                    net,
                    owner: format!("host route on {dev}"),
                });
            }
        }
        let addrs: Vec<_> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(NetlinkError::request("dump addresses", "of the host"))?;
        for addr in addrs {
            for attr in &addr.attributes {
                if let AddressAttribute::Local(IpAddr::V4(ip)) = attr {
                    if ip.is_loopback() {
                        continue;
                    }
                    if let Some(net) = Ipv4Network::new_checked(*ip, addr.header.prefix_len) {
                        taken.push(Taken {
                            net,
                            owner: format!("host address {ip} on {}", ifname(addr.header.index)),
                        });
                    }
                }
            }
        }
        Ok(taken)
    }
}

/// The table of a route: the attribute when present (tables above 255), else the header.
fn route_table(header: &RouteHeader, attrs: &[RouteAttribute]) -> u32 {
    attrs
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(header.table))
}

/// The link group of retired veths, shared by every berth root: its members are only ever
/// veths that are about to be deleted ("bert").
pub(crate) const RETIRED_GROUP: u32 = 0x6265_7274;

/// How long retired veths wait so their deletion can be batched.
const REAP_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

/// Work for the [`Reaper`] thread.
enum Job {
    Retired,
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Deletes retired veths in batches, on a dedicated thread with its own netlink socket.
///
/// Deleting a network device costs ~10-20 ms here, most of it waiting for RCU grace periods,
/// partly under the RTNL lock; deleting many devices in one request costs about the same as
/// one. So detach only *retires* a veth (one cheap request, [`Nl::retire_veth`]: it goes down,
/// which cuts the container off at once, and joins [`RETIRED_GROUP`]),
/// and this thread deletes the whole group at most [`REAP_DELAY`] later in one request, off the
/// runtime and off the main netlink socket.
pub(crate) struct Reaper {
    tx: tokio::sync::mpsc::UnboundedSender<Job>,
}

impl Reaper {
    /// Starts the thread (in the caller's network namespace).
    pub(crate) async fn start() -> Result<Reaper, NetlinkError> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<io::Result<()>>();
        std::thread::Builder::new()
            .name("netd-reaper".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let handle = match rtnetlink::new_connection() {
                        Ok((conn, handle, _)) => {
                            tokio::spawn(conn);
                            handle
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    reap(handle, rx).await;
                });
            })
            .map_err(NetlinkError::Connect)?;
        match ready_rx.await {
            Ok(Ok(())) => Ok(Reaper { tx }),
            Ok(Err(e)) => Err(NetlinkError::Connect(e)),
            Err(_) => Err(NetlinkError::Connect(io::Error::other(
                "reaper thread died",
            ))),
        }
    }

    /// Tells the reaper a veth was retired.
    pub(crate) fn retired(&self) {
        // The thread only stops when the Reaper is dropped.
        let _ = self.tx.send(Job::Retired);
    }

    /// Deletes every retired veth now and waits for it.
    pub(crate) async fn flush(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.tx.send(Job::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

/// The reaper loop: deletes the retired group [`REAP_DELAY`] after the first retirement, or at
/// once on a flush.
async fn reap(handle: Handle, mut rx: tokio::sync::mpsc::UnboundedReceiver<Job>) {
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let job = match deadline {
            Some(at) => tokio::select! {
                job = rx.recv() => job,
                _ = tokio::time::sleep_until(at) => {
                    delete_retired(&handle).await;
                    deadline = None;
                    continue;
                }
            },
            None => rx.recv().await,
        };
        match job {
            Some(Job::Retired) => {
                deadline.get_or_insert_with(|| tokio::time::Instant::now() + REAP_DELAY);
            }
            Some(Job::Flush(done)) => {
                delete_retired(&handle).await;
                deadline = None;
                let _ = done.send(());
            }
            None => {
                delete_retired(&handle).await;
                return;
            }
        }
    }
}

/// Deletes every link of [`RETIRED_GROUP`] in one request.
async fn delete_retired(handle: &Handle) {
    let msg = LinkMessageBuilder::<LinkUnspec>::new()
        .link_group(RETIRED_GROUP)
        .build();
    match handle.link().del_with_message(msg).execute().await {
        Ok(()) => {}
        Err(e) if matches!(errno(&e), Some(libc::ENODEV) | Some(libc::ENOENT)) => {}
        // Nobody waits for this result; reconcile sweeps whatever stays behind.
        Err(e) => tracing::warn!(group = RETIRED_GROUP, error = %e, "delete retired veths failed"),
    }
}
