//! The SSRF guard: webhooks go only to public addresses (plus the ranges an operator allows),
//! checked when a watch is written and again at connect time against every resolved address,
//! so a DNS answer that changes after the check (rebinding) does not pass.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// How long a create-time DNS check may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Parses `CALLSD_WEBHOOK_ALLOWED_CIDRS`: comma-separated CIDRs (or single addresses).
pub fn parse_allowed_cidrs(text: &str) -> Result<AllowedCidrs, String> {
    let mut ranges = Vec::new();
    for part in text
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        let range = match part.parse::<IpNet>() {
            Ok(range) => range,
            Err(_) => part
                .parse::<IpAddr>()
                .map(IpNet::from)
                .map_err(|_| format!("{part:?} is not a CIDR like 127.0.0.0/8"))?,
        };
        ranges.push(range);
    }
    Ok(AllowedCidrs(ranges))
}

/// Ranges webhooks may reach even though they are not public.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedCidrs(pub Vec<IpNet>);

/// Decides which addresses webhooks may reach.
#[derive(Debug, Clone, Default)]
pub struct AddressGuard {
    allowed: Arc<AllowedCidrs>,
}

impl AddressGuard {
    pub fn new(allowed: AllowedCidrs) -> Self {
        AddressGuard {
            allowed: Arc::new(allowed),
        }
    }

    /// True when a webhook may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let canonical = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        if self
            .allowed
            .0
            .iter()
            .any(|range| range.contains(&canonical))
        {
            return true;
        }
        if canonical != ip {
            return false; // IPv4-mapped IPv6 is refused unless its IPv4 address is allowed
        }
        match ip {
            IpAddr::V4(v4) => is_public_v4(v4),
            IpAddr::V6(v6) => is_public_v6(v6),
        }
    }

    /// Checks a URL the way a watch is checked when it is written: http or https, no
    /// credentials in it, and a host that is (or resolves only to) permitted addresses.
    pub async fn check_url(&self, address: &str) -> Result<url::Url, String> {
        let url = self.check_url_syntax(address)?;
        let host = url.host_str().unwrap_or_default().to_owned();
        if self.literal_ip(&url).is_none() {
            let port = url.port_or_known_default().unwrap_or(443);
            let lookup = tokio::net::lookup_host((host.as_str(), port));
            // A name that does not resolve now may later; the connect-time check still applies.
            if let Ok(Ok(addresses)) = tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                for address in addresses {
                    if !self.permits(address.ip()) {
                        return Err(format!(
                            "{host} resolves to {}, which webhooks may not reach",
                            address.ip()
                        ));
                    }
                }
            }
        }
        Ok(url)
    }

    /// The checks that need no DNS: scheme, credentials, and an IP-literal host.
    pub fn check_url_syntax(&self, address: &str) -> Result<url::Url, String> {
        let url = url::Url::parse(address).map_err(|error| format!("is not a URL: {error}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an http or https URL".to_owned());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials; use basic_auth".to_owned());
        }
        if url.host().is_none() {
            return Err("must name a host".to_owned());
        }
        if let Some(ip) = self.literal_ip(&url) {
            if !self.permits(ip) {
                return Err(format!("{ip} is an address webhooks may not reach"));
            }
        }
        Ok(url)
    }

    /// The host of `url` when it is an IP address (the URL parser already turned forms like
    /// `2130706433` or `0x7f.1` into one). Such hosts never reach the resolver.
    pub fn literal_ip(&self, url: &url::Url) -> Option<IpAddr> {
        match url.host()? {
            url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
            url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
            url::Host::Domain(_) => None,
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, cloud metadata included
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b))) // benchmarking
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7 (fd00:ec2::254 included)
        || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (segments[0] & 0xffc0) == 0xfec0 // site-local, deprecated
        || (segments[0] == 0x64 && segments[1] == 0xff9b) // NAT64 embeds IPv4
        || segments[0] == 0x2002 // 6to4 embeds IPv4
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || (segments[..6] == [0, 0, 0, 0, 0, 0])) // IPv4-compatible, deprecated
}

/// A DNS resolver for the webhook HTTP client that keeps only permitted addresses, so the
/// connection can only be made to an address the guard accepted.
pub struct GuardedResolver {
    pub guard: AddressGuard,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let permitted: Vec<SocketAddr> = resolved
                .filter(|address| guard.permits(address.ip()))
                .collect();
            if permitted.is_empty() {
                let refused = std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{host} resolves only to addresses webhooks may not reach"),
                );
                return Err(Box::new(refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(guard: &AddressGuard, address: &str) -> bool {
        !guard.permits(address.parse().unwrap())
    }

    #[test]
    fn only_public_addresses_are_permitted_by_default() {
        let guard = AddressGuard::default();
        for address in [
            "0.0.0.0",
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "fd00:ec2::254",
            "fe80::1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
        ] {
            assert!(refused(&guard, address), "{address}");
        }
        for address in ["8.8.8.8", "100.128.0.1", "2606:4700::1111"] {
            assert!(!refused(&guard, address), "{address}");
        }
    }

    #[test]
    fn allowed_ranges_pass_and_mapped_addresses_follow_their_ipv4_form() {
        let guard = AddressGuard::new(parse_allowed_cidrs("127.0.0.0/8, 10.0.0.5").unwrap());
        assert!(!refused(&guard, "127.0.0.1"));
        assert!(!refused(&guard, "::ffff:127.0.0.1"));
        assert!(!refused(&guard, "10.0.0.5"));
        assert!(refused(&guard, "10.0.0.6"));
        assert!(refused(&guard, "::1"));
    }

    #[test]
    fn url_checks_see_through_numeric_hosts() {
        let guard = AddressGuard::default();
        for address in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://169.254.169.254/latest/meta-data",
            "file:///etc/passwd",
            "http://user:secret@example.com/",
        ] {
            assert!(guard.check_url_syntax(address).is_err(), "{address}");
        }
        assert!(guard.check_url_syntax("https://example.com/hook").is_ok());
    }
}
