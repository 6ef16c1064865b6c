//! Listen addresses as operators write them: `127.0.0.1:50051`, `[::1]:50051`, a host name
//! (`localhost:50051`, resolved once at start-up) or an empty host (`:50051`) for every
//! interface, as most servers accept.

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};

/// Parses `HOST:PORT` into the one address to bind.
///
/// A name that resolves to several addresses binds the first IPv4 one (else the first): one
/// listener, and clients resolving `localhost` try 127.0.0.1 too. An empty host is every IPv4
/// interface (`0.0.0.0`); write `[::]:PORT` for IPv6 as well.
pub fn parse_listen_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!(
            "{text:?} is not HOST:PORT (e.g. 127.0.0.1:50051, localhost:50051, or :50051 for \
             every interface)"
        ));
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{text:?}: the port {port:?} is not a number from 0 to 65535"))?;
    if host.is_empty() {
        return Ok(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)));
    }
    if host.contains(['[', ']']) || host.parse::<std::net::IpAddr>().is_ok() {
        // An IP literal that SocketAddr refused: an IPv6 address without brackets, say.
        return Err(format!(
            "{text:?} is not HOST:PORT (write an IPv6 address in brackets: [::1]:50051)"
        ));
    }
    let resolved: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|error| format!("cannot resolve the host {host:?} of {text:?}: {error}"))?
        .collect();
    resolved
        .iter()
        .find(|address| address.is_ipv4())
        .or_else(|| resolved.first())
        .copied()
        .ok_or_else(|| format!("the host {host:?} of {text:?} has no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses_parse_as_they_are() {
        assert_eq!(
            parse_listen_address("127.0.0.1:50051"),
            Ok("127.0.0.1:50051".parse().unwrap())
        );
        assert_eq!(
            parse_listen_address("[::1]:9464"),
            Ok("[::1]:9464".parse().unwrap())
        );
    }

    #[test]
    fn an_empty_host_is_every_interface() {
        assert_eq!(
            parse_listen_address(":50051"),
            Ok("0.0.0.0:50051".parse().unwrap())
        );
    }

    #[test]
    fn localhost_resolves_to_a_loopback_address() {
        let address = parse_listen_address("localhost:50051").unwrap();
        assert!(address.ip().is_loopback(), "{address}");
        assert_eq!(address.port(), 50051);
    }

    #[test]
    fn a_missing_or_bad_port_says_what_is_expected() {
        let error = parse_listen_address("localhost").unwrap_err();
        assert!(error.contains("HOST:PORT"), "{error}");
        let error = parse_listen_address("localhost:http").unwrap_err();
        assert!(error.contains("port"), "{error}");
        let error = parse_listen_address("::1:50051").unwrap_err();
        assert!(error.contains("brackets"), "{error}");
    }
}
