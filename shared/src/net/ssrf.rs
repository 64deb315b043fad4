//! The SSRF guard. A partner controls `base_url`, so without this guard they could make us
//! call our own metadata service (169.254.169.254), loopback services or a private network.
//!
//! Three layers: a static check of the URL (scheme, literal IPs, `localhost`), a DNS check at
//! registration, and a resolver plugged into the HTTP client that refuses a host when any of
//! its addresses is refused. reqwest connects only to the addresses our resolver returns, so
//! there is no window between the check and the connect (no DNS rebinding).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Host;

use crate::domain::BaseUrl;

/// How long registration waits for DNS before accepting a name it could not resolve.
const REGISTRATION_DNS_TIMEOUT: Duration = Duration::from_secs(3);

/// Why an endpoint is refused. The text completes "base_url: ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointRefused {
    #[error("must use https")]
    NotHttps,
    #[error("must not point at localhost")]
    Localhost,
    #[error("must not point at a loopback, private, link-local or reserved address")]
    RefusedAddress,
}

/// Which partner endpoints Seyaha may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointPolicy {
    /// `SEYAHA_ALLOW_PRIVATE_ENDPOINTS` (development only): lifts both the address ranges and
    /// the https-only rule, so a supplier on loopback over plain http can be used.
    pub allow_private_and_http: bool,
}

impl EndpointPolicy {
    pub fn strict() -> Self {
        Self {
            allow_private_and_http: false,
        }
    }

    /// Checks that need no DNS: scheme, `localhost`, literal IP addresses. Runs before every
    /// outbound call and on every redirect, because reqwest skips the resolver for literal IPs.
    pub fn check_url(&self, url: &BaseUrl) -> Result<(), EndpointRefused> {
        if self.allow_private_and_http {
            return Ok(());
        }
        if !url.is_https() {
            return Err(EndpointRefused::NotHttps);
        }
        check_host(url.host())
    }

    /// The registration and PATCH check: the static checks, then refuse a name whose every
    /// address is refused. A name that does not resolve (yet) is accepted; every call checks again.
    pub async fn check_registration(&self, url: &BaseUrl) -> Result<(), EndpointRefused> {
        self.check_url(url)?;
        if self.allow_private_and_http {
            return Ok(());
        }
        let Host::Domain(name) = url.host() else {
            return Ok(());
        };
        let lookup = tokio::net::lookup_host((name, url.port()));
        match tokio::time::timeout(REGISTRATION_DNS_TIMEOUT, lookup).await {
            Ok(Ok(addrs)) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                if !addrs.is_empty() && addrs.iter().all(|a| is_refused_ip(a.ip())) {
                    Err(EndpointRefused::RefusedAddress)
                } else {
                    Ok(())
                }
            }
            Ok(Err(_)) | Err(_) => Ok(()),
        }
    }

    /// The resolver to install in the outbound HTTP client.
    pub fn resolver(&self) -> GuardedResolver {
        GuardedResolver {
            allow_private: self.allow_private_and_http,
        }
    }
}

fn check_host(host: Host<&str>) -> Result<(), EndpointRefused> {
    match host {
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                Err(EndpointRefused::Localhost)
            } else {
                Ok(())
            }
        }
        Host::Ipv4(ip) if is_refused_ip(IpAddr::V4(ip)) => Err(EndpointRefused::RefusedAddress),
        Host::Ipv6(ip) if is_refused_ip(IpAddr::V6(ip)) => Err(EndpointRefused::RefusedAddress),
        Host::Ipv4(_) | Host::Ipv6(_) => Ok(()),
    }
}

/// The error our resolver returns; found again in reqwest's error chain to tell the partner
/// the call was refused rather than that their host was down.
#[derive(Debug, thiserror::Error)]
#[error("the host resolves to a refused address")]
pub struct AddressRefused;

/// A reqwest DNS resolver that refuses hosts with any loopback, private or reserved address.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if !allow_private && addrs.iter().any(|addr| is_refused_ip(addr.ip())) {
                return Err(Box::new(AddressRefused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// True for every address a partner endpoint must not have: loopback, private, link-local,
/// unique-local, CGNAT, multicast, unspecified, reserved, documentation and benchmarking ranges,
/// including IPv4 addresses embedded in IPv6 (mapped, compatible, translated, NAT64, 6to4) and
/// the rest of the IETF-reserved ::/8.
pub fn is_refused_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_refused_v4(v4),
        IpAddr::V6(v6) => is_refused_v6(v6),
    }
}

fn is_refused_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network", including 0.0.0.0
        || ip.is_loopback() // 127/8
        || ip.is_private() // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local() // 169.254/16, cloud metadata
        || (a == 100 && (b & 0xc0) == 64) // 100.64/10 CGNAT
        || (a == 192 && b == 0 && c == 0) // 192.0.0/24 IETF protocol assignments
        || ip.is_documentation() // 192.0.2/24, 198.51.100/24, 203.0.113/24
        || (a == 198 && (b & 0xfe) == 18) // 198.18/15 benchmarking
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || ip.is_multicast() // 224/4
        || a >= 240 // 240/4 reserved, 255.255.255.255 broadcast
}

fn is_refused_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_refused_v4(v4);
    }
    let s = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast() // ff00::/8
        || s[..6] == [0; 6] // ::/96 IPv4-compatible (deprecated)
        // ::ffff:0:0:0/96 IPv4-translated (SIIT): a translator on the path turns it into the
        // embedded IPv4 address, so `::ffff:0:127.0.0.1` can reach loopback. Refused whole, as
        // is the rest of ::/8 (reserved by the IETF, never a partner's public address); only
        // IPv4-mapped addresses (handled above) are judged by their IPv4 address.
        || s[0] & 0xff00 == 0
        || (s[0] & 0xfe00) == 0xfc00 // fc00::/7 unique local
        || (s[0] & 0xffc0) == 0xfe80 // fe80::/10 link-local
        || (s[0] & 0xffc0) == 0xfec0 // fec0::/10 site-local (deprecated)
        || (s[0] == 0x2001 && s[1] < 0x0200) // 2001::/23 IETF protocol assignments (Teredo, ORCHID, ...)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // 2001:db8::/32 documentation
        || (s[0] & 0xfff0) == 0x3ff0 // 3fff::/20 documentation
        || (s[0] == 0x0100 && s[1..4] == [0; 3]) // 100::/64 discard-only
        || (s[0] == 0x0064 && s[1] == 0xff9b) // 64:ff9b::/96 and 64:ff9b:1::/48 NAT64
        || (s[0] == 0x2002 && is_refused_v4(embedded_v4(s[1], s[2]))) // 6to4 of a refused address
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) -> bool {
        is_refused_ip(s.parse().unwrap())
    }

    #[test]
    fn refuses_internal_and_reserved_ranges() {
        for ip in [
            "127.0.0.1",
            "127.9.9.9",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "192.0.2.10",
            "198.51.100.1",
            "203.0.113.5",
            "198.18.0.1",
            "192.0.0.8",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2001::1",
            "::127.0.0.1",
            "fec0::1",
            "3fff::1",
            "100::1",
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn refuses_ipv4_translated_addresses_whatever_they_embed() {
        // ::ffff:0:0:0/96 (SIIT): the review's `https://[::ffff:0:127.0.0.1]`.
        for ip in [
            "::ffff:0:127.0.0.1",
            "::ffff:0:7f00:1",
            "::ffff:0:10.0.0.1",
            "::ffff:0:169.254.169.254",
            "::ffff:0:8.8.8.8",
            "::ffff:0:0:0",
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
        // The rest of the IETF-reserved ::/8 too.
        for ip in ["::1:0:0:1", "0:0:0:1::", "ff::1"] {
            assert!(refused(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn allows_public_addresses() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "11.0.0.1",
            "2606:4700::1111",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
            "2002:808:808::1",
        ] {
            assert!(!refused(ip), "{ip} must be allowed");
        }
    }

    fn url(s: &str) -> BaseUrl {
        BaseUrl::parse(s).unwrap()
    }

    #[test]
    fn static_check_refuses_http_localhost_and_literal_private_ips() {
        let strict = EndpointPolicy::strict();
        assert_eq!(
            strict.check_url(&url("http://octo.example.com")),
            Err(EndpointRefused::NotHttps)
        );
        assert_eq!(
            strict.check_url(&url("https://localhost:8443")),
            Err(EndpointRefused::Localhost)
        );
        assert_eq!(
            strict.check_url(&url("https://api.LOCALHOST.")),
            Err(EndpointRefused::Localhost)
        );
        assert_eq!(
            strict.check_url(&url("https://127.0.0.1")),
            Err(EndpointRefused::RefusedAddress)
        );
        assert_eq!(
            strict.check_url(&url("https://[::1]")),
            Err(EndpointRefused::RefusedAddress)
        );
        assert_eq!(
            strict.check_url(&url("https://[::ffff:0:127.0.0.1]")),
            Err(EndpointRefused::RefusedAddress)
        );
        assert_eq!(
            strict.check_url(&url("https://169.254.169.254/latest")),
            Err(EndpointRefused::RefusedAddress)
        );
        assert_eq!(strict.check_url(&url("https://octo.example.com")), Ok(()));
        assert_eq!(strict.check_url(&url("https://93.184.216.34")), Ok(()));
        let dev = EndpointPolicy {
            allow_private_and_http: true,
        };
        assert_eq!(dev.check_url(&url("http://127.0.0.1:9000")), Ok(()));
    }

    #[tokio::test]
    async fn registration_accepts_names_that_do_not_resolve() {
        // `.invalid` never resolves (RFC 2606); the guard checks again on every call.
        let strict = EndpointPolicy::strict();
        assert_eq!(
            strict
                .check_registration(&url("https://octo.partner.invalid"))
                .await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn resolver_refuses_names_with_private_addresses() {
        let resolver = EndpointPolicy::strict().resolver();
        let result = resolver.resolve("localhost".parse().unwrap()).await;
        let err = result.err().expect("localhost must be refused");
        assert!(err.downcast_ref::<AddressRefused>().is_some());
        let open = EndpointPolicy {
            allow_private_and_http: true,
        }
        .resolver();
        assert!(open.resolve("localhost".parse().unwrap()).await.is_ok());
    }
}
