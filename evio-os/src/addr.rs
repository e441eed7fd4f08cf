//! Listen addresses: `tcp://host:port`, `tcp4://`, `tcp6://`, `unix://path`, bare
//! `host:port`, a `-net` scheme suffix, and `?reuseport=true`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use crate::error::AddrError;

/// Which addresses a TCP listener accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    /// `tcp`: whatever the host resolves to first.
    Any,
    /// `tcp4`.
    V4,
    /// `tcp6` (bound IPv6-only).
    V6,
}

/// Where to listen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A TCP address, resolved.
    Tcp { addr: SocketAddr, family: Family },
    /// A unix socket path.
    Unix(PathBuf),
}

/// One parsed address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Spec {
    pub target: Target,
    pub reuseport: bool,
}

/// Parses (and for host names resolves) one address.
pub(crate) fn parse(text: &str) -> Result<Spec, AddrError> {
    if text.is_empty() {
        return Err(AddrError::Empty);
    }
    let (scheme, rest) = match text.split_once("://") {
        Some((s, r)) => (s, r),
        None => ("tcp", text),
    };
    // `-net` selects the backend (`is_net_scheme`), not what to listen on.
    let scheme = scheme.strip_suffix("-net").unwrap_or(scheme);
    let (body, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let mut reuseport = false;
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, "true"));
        if key != "reuseport" {
            return Err(AddrError::UnknownOption);
        }
        reuseport = match value {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => return Err(AddrError::BadOption),
        };
    }
    let target = match scheme {
        "tcp" => tcp(body, Family::Any)?,
        "tcp4" => tcp(body, Family::V4)?,
        "tcp6" => tcp(body, Family::V6)?,
        "unix" => {
            if body.is_empty() {
                return Err(AddrError::EmptyPath);
            }
            if reuseport {
                return Err(AddrError::BadOption);
            }
            Target::Unix(PathBuf::from(body))
        }
        _ => return Err(AddrError::UnknownScheme),
    };
    Ok(Spec { target, reuseport })
}

/// Whether `text`'s scheme ends in `-net` (without parsing the rest).
pub(crate) fn is_net_scheme(text: &str) -> bool {
    text.split_once("://")
        .is_some_and(|(scheme, _)| scheme.ends_with("-net"))
}

fn tcp(body: &str, family: Family) -> Result<Target, AddrError> {
    let (host, port) = body.rsplit_once(':').ok_or(AddrError::MissingPort)?;
    if port.is_empty() {
        return Err(AddrError::MissingPort);
    }
    let port: u16 = port.parse().map_err(|_| AddrError::BadPort)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let fits = |ip: &IpAddr| match family {
        Family::Any => true,
        Family::V4 => ip.is_ipv4(),
        Family::V6 => ip.is_ipv6(),
    };
    let addr = if host.is_empty() {
        // An empty host means every interface of the scheme's family.
        let ip = match family {
            Family::V6 => IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED),
            _ => IpAddr::from(Ipv4Addr::UNSPECIFIED),
        };
        SocketAddr::new(ip, port)
    } else if let Ok(ip) = host.parse::<IpAddr>() {
        if !fits(&ip) {
            return Err(AddrError::WrongFamily);
        }
        SocketAddr::new(ip, port)
    } else {
        if host.contains(':') || host.contains('/') {
            return Err(AddrError::BadHost);
        }
        (host, port)
            .to_socket_addrs()
            .map_err(|_| AddrError::BadHost)?
            .find(|a| fits(&a.ip()))
            .ok_or(AddrError::BadHost)?
    };
    Ok(Target::Tcp { addr, family })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_addr(text: &str) -> (SocketAddr, Family) {
        match parse(text).unwrap().target {
            Target::Tcp { addr, family } => (addr, family),
            Target::Unix(_) => panic!("not tcp"),
        }
    }

    #[test]
    fn schemes() {
        assert_eq!(
            tcp_addr("127.0.0.1:5000"),
            ("127.0.0.1:5000".parse().unwrap(), Family::Any)
        );
        assert_eq!(
            tcp_addr("tcp4://127.0.0.1:0"),
            ("127.0.0.1:0".parse().unwrap(), Family::V4)
        );
        assert_eq!(
            tcp_addr("tcp6://[::1]:7"),
            ("[::1]:7".parse().unwrap(), Family::V6)
        );
        assert_eq!(tcp_addr("tcp://:80").0, "0.0.0.0:80".parse().unwrap());
        assert_eq!(tcp_addr("tcp6://:80").0, "[::]:80".parse().unwrap());
        let s = parse("unix:///tmp/x.sock").unwrap();
        assert_eq!(s.target, Target::Unix("/tmp/x.sock".into()));
        assert!(!is_net_scheme("unix:///tmp/x.sock") && !is_net_scheme("1.2.3.4:5"));
        let s = parse("tcp-net://127.0.0.1:1?reuseport=true").unwrap();
        assert!(s.reuseport);
        assert!(is_net_scheme("tcp-net://127.0.0.1:1?reuseport=true"));
        assert_eq!(
            parse("unix-net://x").unwrap().target,
            Target::Unix("x".into())
        );
        assert!(is_net_scheme("unix-net://x"));
    }

    #[test]
    fn errors() {
        assert_eq!(parse(""), Err(AddrError::Empty));
        assert_eq!(parse("udp://1.2.3.4:5"), Err(AddrError::UnknownScheme));
        assert_eq!(parse("tcp://1.2.3.4"), Err(AddrError::MissingPort));
        assert_eq!(parse("tcp://1.2.3.4:"), Err(AddrError::MissingPort));
        assert_eq!(parse("tcp://1.2.3.4:99999"), Err(AddrError::BadPort));
        assert_eq!(parse("tcp4://[::1]:5"), Err(AddrError::WrongFamily));
        assert_eq!(parse("tcp6://127.0.0.1:5"), Err(AddrError::WrongFamily));
        assert_eq!(parse("unix://"), Err(AddrError::EmptyPath));
        assert_eq!(parse("tcp://1.2.3.4:5?x=1"), Err(AddrError::UnknownOption));
        assert_eq!(
            parse("tcp://1.2.3.4:5?reuseport=maybe"),
            Err(AddrError::BadOption)
        );
        assert_eq!(parse("unix:///x?reuseport=true"), Err(AddrError::BadOption));
        assert_eq!(parse("tcp://no host here:5"), Err(AddrError::BadHost));
    }
}
