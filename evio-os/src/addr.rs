//! Listen addresses as [`serve`](crate::serve) takes them: `tcp://host:port`,
//! `tcp4://`, `tcp6://`, `unix://path`, bare `host:port`, a `-net` scheme suffix, and
//! `?reuseport=true` ([`Address`]).
//!
//! Parsing is pure: it reads the text and nothing else. Host names are resolved when
//! the server starts; so an address can be checked (a command-line flag, say) without a
//! lookup, and a fuzzer can parse millions of them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::AddrError;

/// Which addresses a TCP listener accepts: the scheme it was given with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// `tcp`: whatever the host is or resolves to first, IPv4 or IPv6.
    Any,
    /// `tcp4`: IPv4 only.
    V4,
    /// `tcp6`: IPv6 only (the socket is bound `IPV6_V6ONLY`).
    V6,
}

impl Family {
    /// The scheme's name, without the `-net` suffix.
    fn scheme(self) -> &'static str {
        match self {
            Family::Any => "tcp",
            Family::V4 => "tcp4",
            Family::V6 => "tcp6",
        }
    }

    /// Whether `ip` belongs to this family.
    fn fits(self, ip: &IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }
}

/// The host of a TCP address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// No host (`tcp://:80`): every interface of the family, `0.0.0.0` (or `[::]` for
    /// `tcp6`).
    Unspecified,
    /// An IP address (IPv6 in brackets in the text, or bare).
    Ip(IpAddr),
    /// A host name: ASCII letters, digits, `-`, `_` and `.`, at most 253 bytes. It is
    /// resolved when the server starts (a blocking lookup).
    Name(String),
}

/// What an [`Address`] listens on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A TCP port on a host.
    Tcp {
        /// The scheme's family.
        family: Family,
        /// The host.
        host: Host,
        /// The port (0: a free port, chosen when binding).
        port: u16,
    },
    /// A unix-domain socket at this path (relative to the working directory unless it
    /// starts with `/`).
    Unix(PathBuf),
}

/// One listen address, as [`serve`](crate::serve) takes it, parsed but not resolved.
///
/// [`Address::parse`] (or [`str::parse`]) reads the forms in [`serve`'s
/// table](crate::serve#addresses); [`Display`](fmt::Display) writes an address back
/// in a canonical form (`tcp://` for a bare `host:port`, IPv6 in brackets, options
/// only when set) that parses to the same address. An address that does not parse is
/// an [`AddrError`] saying what is wrong. Nothing is looked up: a host name is
/// resolved (and an address of the wrong family for its scheme refused) when the
/// server starts.
///
/// ```
/// use evio_os::AddrError;
/// use evio_os::addr::{Address, Family, Host, Target};
///
/// let a: Address = "tcp6-net://[::1]:8080?reuseport=1".parse()?;
/// assert_eq!(
///     a.target(),
///     &Target::Tcp { family: Family::V6, host: Host::Ip("::1".parse().unwrap()), port: 8080 }
/// );
/// assert!(a.reuseport() && a.portable());
/// assert_eq!(a.to_string(), "tcp6-net://[::1]:8080?reuseport=true");
/// assert_eq!(a.to_string().parse::<Address>()?, a);
///
/// assert_eq!(Address::parse("localhost:6379")?.to_string(), "tcp://localhost:6379");
/// assert_eq!(Address::parse("unix:///tmp/x.sock")?.to_string(), "unix:///tmp/x.sock");
/// assert_eq!(Address::parse("tcp4://[::1]:80"), Err(AddrError::WrongFamily));
/// assert_eq!(Address::parse("udp://1.2.3.4:5"), Err(AddrError::UnknownScheme));
/// # Ok::<(), AddrError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    target: Target,
    reuseport: bool,
    portable: bool,
}

impl Address {
    /// Parses one address (see [`Address`]); nothing is resolved.
    ///
    /// # Errors
    ///
    /// The [`AddrError`] that says what is wrong with `text`.
    pub fn parse(text: &str) -> Result<Address, AddrError> {
        if text.is_empty() {
            return Err(AddrError::Empty);
        }
        let (scheme, rest) = text.split_once("://").unwrap_or(("tcp", text));
        // `-net` selects the backend, not what to listen on.
        let (scheme, portable) = match scheme.strip_suffix("-net") {
            Some(s) => (s, true),
            None => (scheme, false),
        };
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
        Ok(Address {
            target,
            reuseport,
            portable,
        })
    }

    /// What it listens on.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Whether `?reuseport=true` was given (`SO_REUSEPORT`; TCP only).
    pub fn reuseport(&self) -> bool {
        self.reuseport
    }

    /// Whether the scheme has the `-net` suffix, which selects the portable poll(2)
    /// backend ([`Backend::Poll`](crate::Backend::Poll)) for the whole server.
    pub fn portable(&self) -> bool {
        self.portable
    }
}

impl FromStr for Address {
    type Err = AddrError;

    /// [`Address::parse`].
    fn from_str(text: &str) -> Result<Address, AddrError> {
        Address::parse(text)
    }
}

/// The canonical form: `scheme[-net]://host:port[?reuseport=true]` or
/// `unix[-net]://path`, which parses back to the same address.
impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let net = if self.portable { "-net" } else { "" };
        match &self.target {
            Target::Tcp { family, host, port } => {
                write!(f, "{}{net}://", family.scheme())?;
                match host {
                    Host::Unspecified => {}
                    Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}")?,
                    Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
                    Host::Name(name) => f.write_str(name)?,
                }
                write!(f, ":{port}")?;
            }
            // A parsed path came from a `&str`, so it is valid UTF-8 and prints as it
            // was given.
            Target::Unix(path) => write!(f, "unix{net}://{}", path.display())?,
        }
        if self.reuseport {
            f.write_str("?reuseport=true")?;
        }
        Ok(())
    }
}

/// Whether `text`'s scheme ends in `-net` (without parsing the rest).
pub(crate) fn is_net_scheme(text: &str) -> bool {
    text.split_once("://")
        .is_some_and(|(scheme, _)| scheme.ends_with("-net"))
}

/// Whether `host` can be a host name: not empty, at most 253 bytes, ASCII letters,
/// digits, `-`, `_` and `.` (what a resolver takes; anything else can only fail to
/// resolve, and is refused without asking).
fn is_host_name(host: &str) -> bool {
    (1..=253).contains(&host.len())
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn tcp(body: &str, family: Family) -> Result<Target, AddrError> {
    let (host, port) = body.rsplit_once(':').ok_or(AddrError::MissingPort)?;
    if port.is_empty() {
        return Err(AddrError::MissingPort);
    }
    // Digits only: `u16::from_str` would also take a sign.
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddrError::BadPort);
    }
    let port: u16 = port.parse().map_err(|_| AddrError::BadPort)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host = if host.is_empty() {
        Host::Unspecified
    } else if let Ok(ip) = host.parse::<IpAddr>() {
        if !family.fits(&ip) {
            return Err(AddrError::WrongFamily);
        }
        Host::Ip(ip)
    } else if is_host_name(host) {
        Host::Name(host.to_owned())
    } else {
        return Err(AddrError::BadHost);
    };
    Ok(Target::Tcp { family, host, port })
}

/// An [`Address`] made ready to bind: its host looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Spec {
    pub target: Resolved,
    pub reuseport: bool,
}

/// Where a [`Spec`] binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// A TCP address.
    Tcp { addr: SocketAddr, family: Family },
    /// A unix socket path.
    Unix(PathBuf),
}

/// Resolves `address` for binding: a host name is looked up (blocking) and the first
/// address of the scheme's family taken.
pub(crate) fn resolve(address: &Address) -> Result<Spec, AddrError> {
    let target = match &address.target {
        Target::Unix(path) => Resolved::Unix(path.clone()),
        Target::Tcp { family, host, port } => resolve_tcp(*family, host, *port)?,
    };
    Ok(Spec {
        target,
        reuseport: address.reuseport,
    })
}

fn resolve_tcp(family: Family, host: &Host, port: u16) -> Result<Resolved, AddrError> {
    let addr = match host {
        // An empty host means every interface of the scheme's family.
        Host::Unspecified => match family {
            Family::V6 => SocketAddr::new(IpAddr::from(Ipv6Addr::UNSPECIFIED), port),
            _ => SocketAddr::new(IpAddr::from(Ipv4Addr::UNSPECIFIED), port),
        },
        Host::Ip(ip) => SocketAddr::new(*ip, port),
        Host::Name(name) => (name.as_str(), port)
            .to_socket_addrs()
            .map_err(|_| AddrError::BadHost)?
            .find(|a| family.fits(&a.ip()))
            .ok_or(AddrError::BadHost)?,
    };
    Ok(Resolved::Tcp { addr, family })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Address, AddrError> {
        Address::parse(text)
    }

    fn tcp_addr(text: &str) -> (SocketAddr, Family) {
        match resolve(&parse(text).unwrap()).unwrap().target {
            Resolved::Tcp { addr, family } => (addr, family),
            Resolved::Unix(_) => panic!("not tcp"),
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
        assert_eq!(tcp_addr("tcp4://localhost:80").0.ip(), Ipv4Addr::LOCALHOST);
        let s = parse("unix:///tmp/x.sock").unwrap();
        assert_eq!(s.target, Target::Unix("/tmp/x.sock".into()));
        assert_eq!(
            resolve(&s).unwrap().target,
            Resolved::Unix("/tmp/x.sock".into())
        );
        assert!(!is_net_scheme("unix:///tmp/x.sock") && !is_net_scheme("1.2.3.4:5"));
        let s = parse("tcp-net://127.0.0.1:1?reuseport=true").unwrap();
        assert!(s.reuseport && s.portable);
        assert!(is_net_scheme("tcp-net://127.0.0.1:1?reuseport=true"));
        let s = parse("unix-net://x").unwrap();
        assert_eq!(s.target, Target::Unix("x".into()));
        assert!(s.portable);
        assert!(is_net_scheme("unix-net://x"));
    }

    #[test]
    fn errors() {
        assert_eq!(parse(""), Err(AddrError::Empty));
        assert_eq!(parse("udp://1.2.3.4:5"), Err(AddrError::UnknownScheme));
        assert_eq!(parse("tcp://1.2.3.4"), Err(AddrError::MissingPort));
        assert_eq!(parse("tcp://1.2.3.4:"), Err(AddrError::MissingPort));
        assert_eq!(parse("tcp://1.2.3.4:99999"), Err(AddrError::BadPort));
        assert_eq!(parse("tcp://1.2.3.4:+80"), Err(AddrError::BadPort));
        assert_eq!(parse("tcp4://[::1]:5"), Err(AddrError::WrongFamily));
        assert_eq!(parse("tcp6://127.0.0.1:5"), Err(AddrError::WrongFamily));
        assert_eq!(parse("unix://"), Err(AddrError::EmptyPath));
        assert_eq!(parse("tcp://1.2.3.4:5?x=1"), Err(AddrError::UnknownOption));
        assert_eq!(
            parse("tcp://1.2.3.4:5?reuseport=maybe"),
            Err(AddrError::BadOption)
        );
        assert_eq!(parse("unix:///x?reuseport=true"), Err(AddrError::BadOption));
        // Refused without a lookup: no name has spaces, `/` or `:`.
        assert_eq!(parse("tcp://no host here:5"), Err(AddrError::BadHost));
        assert_eq!(parse("tcp://a/b:5"), Err(AddrError::BadHost));
        assert_eq!(parse("tcp://a:b:5"), Err(AddrError::BadHost));
        assert_eq!(
            parse(&format!("{}:5", "a".repeat(254))),
            Err(AddrError::BadHost)
        );
        // A name that parses but does not resolve is refused when the server starts.
        let unknown = parse("tcp://no-such-host.invalid:5").unwrap();
        assert_eq!(resolve(&unknown), Err(AddrError::BadHost));
    }

    #[test]
    fn addresses_print_in_canonical_form_and_parse_back() {
        for (text, printed) in [
            ("127.0.0.1:80", "tcp://127.0.0.1:80"),
            ("tcp://:0", "tcp://:0"),
            ("tcp6://[::1]:7?reuseport", "tcp6://[::1]:7?reuseport=true"),
            ("tcp://::1:7", "tcp://[::1]:7"),
            ("tcp://[1.2.3.4]:0080", "tcp://1.2.3.4:80"),
            (
                "tcp4-net://h.example:1?&reuseport=no&",
                "tcp4-net://h.example:1",
            ),
            ("unix-net://a://b", "unix-net://a://b"),
            ("unix://x?", "unix://x"),
        ] {
            let a = parse(text).unwrap();
            assert_eq!(a.to_string(), printed, "{text}");
            assert_eq!(parse(printed).unwrap(), a, "{text}");
        }
    }
}
