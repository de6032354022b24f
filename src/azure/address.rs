//! Which network addresses a client may connect to: the check that keeps a tenant's share source from
//! making workers connect into the operator's network (loopback, private, link-local, unique-local,
//! cloud metadata).
//!
//! The policy is decided once, where a source is registered (`jobs::settings`), stored with the source,
//! and enforced by [`super::FileServiceClient`] on every address a connection goes to: literal IP hosts
//! before the request, names through the HTTP client's DNS resolver (so a name that resolves to a
//! refused address after registration, DNS rebinding included, is still refused).

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// Where a client may connect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressPolicy {
    /// Any address: sources the operator registered, or hosts the operator allowed explicitly.
    #[default]
    Any,
    /// Only globally routable unicast addresses ([`is_public`]): sources a tenant registered on
    /// Azure's public endpoints.
    PublicOnly,
}

impl AddressPolicy {
    /// Whether a connection to `ip` is allowed.
    pub fn allows(self, ip: IpAddr) -> bool {
        match self {
            AddressPolicy::Any => true,
            AddressPolicy::PublicOnly => is_public(ip),
        }
    }
}

/// A connection the policy refused: the host and the address it is or resolved to. Nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRefused {
    pub host: String,
    pub address: IpAddr,
}

impl std::fmt::Display for AddressRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "host {} is at {}, which the address policy refuses (public addresses only)", self.host, self.address)
    }
}

impl std::error::Error for AddressRefused {}

/// The DNS resolver of a client whose policy is not `Any`: resolves with the system resolver, keeps only
/// the addresses the policy allows, and fails with [`AddressRefused`] when none is left. It runs for every
/// new connection, so a name that resolves elsewhere later (DNS rebinding) is checked again.
#[derive(Debug, Clone, Copy)]
pub struct PolicyResolver {
    pub policy: AddressPolicy,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_string();
        Box::pin(async move {
            // Port 0: the connector sets the URL's port on every address returned.
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                resolved.into_iter().partition(|a| policy.allows(a.ip()));
            match (allowed.is_empty(), refused.first()) {
                (true, Some(r)) => Err(Box::new(AddressRefused { host, address: r.ip() }) as _),
                _ => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

/// A globally routable unicast address: not unspecified, loopback, private (RFC 1918), carrier-grade NAT
/// (100.64/10), link-local (169.254/16 — the cloud metadata service — and fe80::/10), unique-local
/// (fc00::/7), multicast, broadcast, documentation or benchmarking ranges, nor an IPv4 address wrapped
/// in IPv6 (mapped or NAT64) that is any of those.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let o = v6.octets();
                return is_public(IpAddr::V4(std::net::Ipv4Addr::new(o[12], o[13], o[14], o[15])));
            }
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || s[..6] == [0, 0, 0, 0, 0, 0])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_only_refuses_every_internal_range() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
        ] {
            assert!(!AddressPolicy::PublicOnly.allows(a.parse().unwrap()), "{a}");
            assert!(AddressPolicy::Any.allows(a.parse().unwrap()), "{a}");
        }
        for a in ["20.60.1.1", "52.239.1.1", "2603:1000::1"] {
            assert!(AddressPolicy::PublicOnly.allows(a.parse().unwrap()), "{a}");
        }
    }
}
