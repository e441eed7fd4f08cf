//! The errors `serve` returns.

use std::fmt;
use std::io;

use evio_proto::BuildError;

/// What is wrong with an address given to `serve`.
///
/// It does not hold the address: the [`Error::Address`] that carries it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddrError {
    /// The address is empty.
    Empty,
    /// The scheme is not one of `tcp`, `tcp4`, `tcp6`, `unix` (optionally with `-net`).
    UnknownScheme,
    /// A TCP address without `:port`.
    MissingPort,
    /// The port is not a number from 0 to 65535.
    BadPort,
    /// The host is neither an IP address nor a name that resolves (for `tcp4`/`tcp6`:
    /// to an address of that family).
    BadHost,
    /// `tcp4` with an IPv6 host, or `tcp6` with an IPv4 host.
    WrongFamily,
    /// `unix://` without a path.
    EmptyPath,
    /// A `?key=value` option other than `reuseport`.
    UnknownOption,
    /// An option value other than `true` or `false`, or an option that does not apply
    /// to this kind of address (`reuseport` on a unix socket).
    BadOption,
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrError::Empty => "empty address",
            AddrError::UnknownScheme => {
                "unknown scheme (expected tcp, tcp4, tcp6 or unix, optionally with -net)"
            }
            AddrError::MissingPort => "missing :port",
            AddrError::BadPort => "invalid port",
            AddrError::BadHost => "host is not an IP address or a name that resolves",
            AddrError::WrongFamily => "host does not match the scheme's address family",
            AddrError::EmptyPath => "unix socket path is empty",
            AddrError::UnknownOption => "unknown option (only reuseport is known)",
            AddrError::BadOption => "invalid option value or option not valid here",
        })
    }
}

impl std::error::Error for AddrError {}

/// Why [`serve`](crate::serve) failed. Setup errors name the address they concern.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// No address was given.
    NoAddresses,
    /// An address could not be parsed.
    Address {
        /// The address as given.
        addr: String,
        /// What is wrong with it.
        error: AddrError,
    },
    /// Creating, binding or listening on the socket for an address failed.
    Bind {
        /// The address as given.
        addr: String,
        /// The OS error.
        error: io::Error,
    },
    /// A unix socket path exists and is not a socket, so it was left alone.
    NotASocket {
        /// The address as given.
        addr: String,
    },
    /// More addresses than one loop serves.
    TooManyListeners {
        /// Addresses given.
        given: usize,
        /// The most supported ([`MAX_LISTENERS`](evio_proto::MAX_LISTENERS)).
        max: usize,
    },
    /// The capacities in the configuration are invalid.
    Config(BuildError),
    /// The backend asked for does not exist on this target.
    BackendUnavailable(crate::Backend),
    /// Creating the poller or its notifier failed, or the connection tables could not
    /// be allocated.
    Setup {
        /// What was being created.
        what: &'static str,
        /// The OS error.
        error: io::Error,
    },
    /// Waiting for events failed: the loop cannot go on.
    Poll(io::Error),
    /// [`ServerBuilder::loops`](crate::ServerBuilder::loops) asks for several loops,
    /// which need a handler each: serve them with
    /// [`ServerBuilder::serve_loops`](crate::ServerBuilder::serve_loops).
    LoopsNeedAFactory {
        /// The loops asked for.
        loops: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoAddresses => f.write_str("no address to listen on"),
            Error::Address { addr, error } => write!(f, "address {addr:?}: {error}"),
            Error::Bind { addr, error } => write!(f, "cannot listen on {addr:?}: {error}"),
            Error::NotASocket { addr } => write!(
                f,
                "cannot listen on {addr:?}: the path exists and is not a socket"
            ),
            Error::TooManyListeners { given, max } => {
                write!(f, "{given} addresses given, at most {max} supported")
            }
            Error::Config(e) => write!(f, "invalid configuration: {e}"),
            Error::BackendUnavailable(b) => write!(f, "the {b} backend is not available here"),
            Error::Setup { what, error } => write!(f, "cannot create {what}: {error}"),
            Error::Poll(e) => write!(f, "waiting for events failed: {e}"),
            Error::LoopsNeedAFactory { loops } => write!(
                f,
                "{loops} loops need a handler each: serve them with serve_loops"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Address { error, .. } => Some(error),
            Error::Bind { error, .. } | Error::Setup { error, .. } | Error::Poll(error) => {
                Some(error)
            }
            Error::Config(e) => Some(e),
            _ => None,
        }
    }
}
