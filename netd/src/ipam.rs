//! IP address management: picking subnets from the pool, validating user-given subnets and
//! gateways, and allocating container addresses inside a subnet.
//!
//! Pure functions over the set of prefixes already in use (this root's networks, the host's
//! routes and addresses, which include the bridges of every other berth root and of Docker or
//! Podman); the caller gathers that set under the host-wide lock so two engines never pick the
//! same subnet.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;

/// Smallest subnet netd manages: network, gateway, one container, broadcast.
const MAX_PREFIX: u8 = 30;

/// Errors of subnet and address allocation.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("address pool {pool} has no free /{prefix} subnet left")]
    PoolExhausted { pool: Ipv4Network, prefix: u8 },
    #[error("subnet {subnet} overlaps {other} ({owner})")]
    Overlap {
        subnet: Ipv4Network,
        other: Ipv4Network,
        owner: String,
    },
    #[error("subnet {subnet} is not a network address (did you mean {}/{}?)", subnet.network(), subnet.prefix())]
    NotNetworkAddress { subnet: Ipv4Network },
    #[error("subnet {subnet} is too small: netd needs at most a /{MAX_PREFIX}")]
    TooSmall { subnet: Ipv4Network },
    #[error("gateway {gateway} is not a host address of subnet {subnet}")]
    GatewayOutside {
        gateway: Ipv4Addr,
        subnet: Ipv4Network,
    },
    #[error("address {ip} is not a host address of subnet {subnet}")]
    AddressOutside { ip: Ipv4Addr, subnet: Ipv4Network },
    #[error("address {ip} is the gateway of subnet {subnet}")]
    AddressIsGateway { ip: Ipv4Addr, subnet: Ipv4Network },
    #[error("address {ip} is already in use on subnet {subnet}")]
    AddressInUse { ip: Ipv4Addr, subnet: Ipv4Network },
    #[error("subnet {subnet} has no free address left")]
    SubnetFull { subnet: Ipv4Network },
}

/// A prefix already in use and who uses it (for error messages).
#[derive(Debug, Clone)]
pub(crate) struct Taken {
    pub net: Ipv4Network,
    pub owner: String,
}

/// The first `/prefix` subnet of `pool` that overlaps nothing in `taken`.
pub(crate) fn pick_subnet(
    pool: Ipv4Network,
    prefix: u8,
    taken: &[Taken],
) -> Result<Ipv4Network, IpamError> {
    let exhausted = IpamError::PoolExhausted { pool, prefix };
    if prefix < pool.prefix() || prefix > MAX_PREFIX {
        return Err(exhausted);
    }
    let step = 1u64 << (32 - prefix);
    let start = u64::from(u32::from(pool.network()));
    let end = start + u64::from(pool.size());
    let mut base = start;
    while base < end {
        let addr = Ipv4Addr::from(
            u32::try_from(base).map_err(|_| IpamError::PoolExhausted { pool, prefix })?,
        );
        let candidate = Ipv4Network::new_checked(addr, prefix)
            .ok_or(IpamError::PoolExhausted { pool, prefix })?;
        if !taken.iter().any(|t| t.net.overlaps(candidate)) {
            return Ok(candidate);
        }
        base += step;
    }
    Err(exhausted)
}

/// Checks a user-given subnet: a network address, small enough, overlapping nothing.
pub(crate) fn check_subnet(subnet: Ipv4Network, taken: &[Taken]) -> Result<(), IpamError> {
    if subnet.ip() != subnet.network() {
        return Err(IpamError::NotNetworkAddress { subnet });
    }
    if subnet.prefix() > MAX_PREFIX {
        return Err(IpamError::TooSmall { subnet });
    }
    match taken.iter().find(|t| t.net.overlaps(subnet)) {
        Some(t) => Err(IpamError::Overlap {
            subnet,
            other: t.net,
            owner: t.owner.clone(),
        }),
        None => Ok(()),
    }
}

/// True when `ip` is a usable host address of `subnet` (neither network nor broadcast).
fn is_host_address(subnet: Ipv4Network, ip: Ipv4Addr) -> bool {
    subnet.contains(ip) && ip != subnet.network() && ip != subnet.broadcast()
}

/// The gateway: the given one if it is a host address of the subnet, else the first host.
pub(crate) fn gateway(subnet: Ipv4Network, given: Option<Ipv4Addr>) -> Result<Ipv4Addr, IpamError> {
    let gateway = match given {
        Some(g) => g,
        None => Ipv4Addr::from(u32::from(subnet.network()).saturating_add(1)),
    };
    if is_host_address(subnet, gateway) {
        Ok(gateway)
    } else {
        Err(IpamError::GatewayOutside { gateway, subnet })
    }
}

/// One subnet's address space as seen by the allocator.
pub(crate) struct Pool<'a> {
    pub subnet: Ipv4Network,
    pub gateway: Ipv4Addr,
    pub leased: &'a HashSet<Ipv4Addr>,
}

impl Pool<'_> {
    /// Checks that a requested static address can be leased.
    pub(crate) fn check_static(&self, ip: Ipv4Addr) -> Result<(), IpamError> {
        let subnet = self.subnet;
        if !is_host_address(subnet, ip) {
            return Err(IpamError::AddressOutside { ip, subnet });
        }
        if ip == self.gateway {
            return Err(IpamError::AddressIsGateway { ip, subnet });
        }
        if self.leased.contains(&ip) {
            return Err(IpamError::AddressInUse { ip, subnet });
        }
        Ok(())
    }

    /// The next free address at or after `cursor` (wrapping around), so a just-released
    /// address is not handed out again at once (stale ARP and DNS caches elsewhere).
    pub(crate) fn next_free(&self, cursor: Ipv4Addr) -> Result<Ipv4Addr, IpamError> {
        let subnet = self.subnet;
        let first = u32::from(subnet.network()).saturating_add(1);
        let last = u32::from(subnet.broadcast()).saturating_sub(1);
        if first > last {
            return Err(IpamError::SubnetFull { subnet });
        }
        let count = last - first + 1;
        let start = u32::from(cursor).clamp(first, last);
        for i in 0..count {
            let offset = (start - first + i) % count;
            let ip = Ipv4Addr::from(first + offset);
            if ip != self.gateway && !self.leased.contains(&ip) {
                return Ok(ip);
            }
        }
        Err(IpamError::SubnetFull { subnet })
    }
}

/// The address after `ip`, used as the next cursor.
pub(crate) fn after(ip: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(ip).wrapping_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Network {
        s.parse().unwrap()
    }

    fn taken(list: &[&str]) -> Vec<Taken> {
        list.iter()
            .map(|s| Taken {
                net: net(s),
                owner: "test".into(),
            })
            .collect()
    }

    #[test]
    fn picks_first_free_subnet() {
        let pool = net("10.89.0.0/16");
        assert_eq!(pick_subnet(pool, 24, &[]).unwrap(), net("10.89.0.0/24"));
        let t = taken(&["10.89.0.0/24", "10.89.1.128/25", "192.168.0.0/16"]);
        assert_eq!(pick_subnet(pool, 24, &t).unwrap(), net("10.89.2.0/24"));
        // A host route covering the whole pool exhausts it.
        let t = taken(&["10.0.0.0/8"]);
        assert!(matches!(
            pick_subnet(pool, 24, &t),
            Err(IpamError::PoolExhausted { .. })
        ));
        // Sizes other than /24.
        assert_eq!(
            pick_subnet(pool, 20, &taken(&["10.89.0.0/24"])).unwrap(),
            net("10.89.16.0/20")
        );
        assert!(pick_subnet(pool, 8, &[]).is_err());
        assert!(pick_subnet(pool, 31, &[]).is_err());
    }

    #[test]
    fn pool_at_end_of_address_space() {
        let pool = net("255.255.255.0/24");
        assert_eq!(pick_subnet(pool, 26, &[]).unwrap(), net("255.255.255.0/26"));
        let t = taken(&["255.255.255.0/25", "255.255.255.128/26"]);
        assert_eq!(
            pick_subnet(pool, 26, &t).unwrap(),
            net("255.255.255.192/26")
        );
        let t = taken(&["255.255.255.0/24"]);
        assert!(pick_subnet(pool, 26, &t).is_err());
    }

    #[test]
    fn checks_given_subnet() {
        let t = taken(&["10.89.0.0/24"]);
        check_subnet(net("10.90.0.0/24"), &t).unwrap();
        let err = check_subnet(net("10.89.0.0/16"), &t).unwrap_err();
        assert!(err.to_string().contains("overlaps 10.89.0.0/24"), "{err}");
        assert!(matches!(
            check_subnet(net("10.90.0.5/24"), &t),
            Err(IpamError::NotNetworkAddress { .. })
        ));
        assert!(matches!(
            check_subnet(net("10.90.0.0/31"), &t),
            Err(IpamError::TooSmall { .. })
        ));
    }

    #[test]
    fn gateways() {
        let s = net("10.89.4.0/24");
        assert_eq!(gateway(s, None).unwrap(), Ipv4Addr::new(10, 89, 4, 1));
        assert_eq!(
            gateway(s, Some(Ipv4Addr::new(10, 89, 4, 254))).unwrap(),
            Ipv4Addr::new(10, 89, 4, 254)
        );
        assert!(gateway(s, Some(Ipv4Addr::new(10, 89, 4, 255))).is_err());
        assert!(gateway(s, Some(Ipv4Addr::new(10, 89, 4, 0))).is_err());
        assert!(gateway(s, Some(Ipv4Addr::new(10, 89, 5, 1))).is_err());
    }

    #[test]
    fn allocates_addresses() {
        let subnet = net("10.89.0.0/29");
        let gw = Ipv4Addr::new(10, 89, 0, 1);
        let mut leased = HashSet::new();
        let mut cursor = subnet.network();
        let mut got = Vec::new();
        loop {
            let pool = Pool {
                subnet,
                gateway: gw,
                leased: &leased,
            };
            match pool.next_free(cursor) {
                Ok(ip) => {
                    leased.insert(ip);
                    cursor = after(ip);
                    got.push(ip.octets()[3]);
                }
                Err(e) => {
                    assert!(matches!(e, IpamError::SubnetFull { .. }));
                    break;
                }
            }
        }
        assert_eq!(got, vec![2, 3, 4, 5, 6]);
        // Released addresses come back only after the cursor wrapped.
        leased.remove(&Ipv4Addr::new(10, 89, 0, 3));
        leased.remove(&Ipv4Addr::new(10, 89, 0, 5));
        let pool = Pool {
            subnet,
            gateway: gw,
            leased: &leased,
        };
        assert_eq!(
            pool.next_free(Ipv4Addr::new(10, 89, 0, 4)).unwrap(),
            Ipv4Addr::new(10, 89, 0, 5)
        );
        assert_eq!(
            pool.next_free(Ipv4Addr::new(10, 89, 0, 7)).unwrap(),
            Ipv4Addr::new(10, 89, 0, 3)
        );
    }

    #[test]
    fn static_addresses() {
        let subnet = net("10.89.0.0/24");
        let gw = Ipv4Addr::new(10, 89, 0, 1);
        let leased: HashSet<_> = [Ipv4Addr::new(10, 89, 0, 9)].into();
        let pool = Pool {
            subnet,
            gateway: gw,
            leased: &leased,
        };
        pool.check_static(Ipv4Addr::new(10, 89, 0, 10)).unwrap();
        assert!(matches!(
            pool.check_static(Ipv4Addr::new(10, 89, 0, 9)),
            Err(IpamError::AddressInUse { .. })
        ));
        assert!(matches!(
            pool.check_static(gw),
            Err(IpamError::AddressIsGateway { .. })
        ));
        assert!(matches!(
            pool.check_static(Ipv4Addr::new(10, 89, 0, 255)),
            Err(IpamError::AddressOutside { .. })
        ));
        assert!(matches!(
            pool.check_static(Ipv4Addr::new(10, 90, 0, 2)),
            Err(IpamError::AddressOutside { .. })
        ));
    }
}
