//! Addresses of listeners and connections, without allocation.

use core::fmt;
use core::net::SocketAddr;

use crate::{ConnId, ListenerId};

/// The address of one end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Addr {
    /// A TCP end point (IPv4 or IPv6).
    Ip(SocketAddr),
    /// A unix-domain socket. Peers of a unix listener are usually unnamed; the local
    /// path is the listener's, found in [`Server::addrs`](crate::Server::addrs) by the
    /// connection's listener index (no allocation to copy a path per connection).
    Unix,
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Ip(a) => write!(f, "{a}"),
            Addr::Unix => f.write_str("unix"),
        }
    }
}

/// The address a listener is bound to, as [`Events::serving`](crate::Events::serving)
/// reports it: for TCP the real port when port 0 was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListenAddr<'a> {
    /// A TCP listener.
    Ip(SocketAddr),
    /// A unix-domain listener bound to this path.
    Unix(&'a str),
}

impl fmt::Display for ListenAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Ip(a) => write!(f, "tcp://{a}"),
            ListenAddr::Unix(p) => write!(f, "unix://{p}"),
        }
    }
}

/// What is known about a connection from the moment it opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnInfo {
    /// The connection's id.
    pub id: ConnId,
    /// The listener that accepted it (its index is the address's place in the order
    /// given); listener 0 for an outbound connection, which no listener
    /// accepted (see `outbound`).
    pub listener: ListenerId,
    /// The connection's own local address (from `getsockname` on the connection, not
    /// the listener's, so a wildcard listener reports the address actually used).
    pub local: Addr,
    /// The peer's address: for an outbound connection, the address it connected to.
    pub peer: Addr,
    /// The handler opened it with [`Loop::connect`](crate::Loop::connect); it was not
    /// accepted.
    pub outbound: bool,
}
