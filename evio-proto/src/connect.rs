//! Outbound connections: where a handler connects to ([`ConnectAddr`]), why a connect
//! is refused at once ([`ConnectError`]), and the unix paths the engine holds until
//! the driver has been asked to connect.
//!
//! A handler asks with [`Loop::connect`](crate::Loop::connect); the engine takes a
//! slot, answers with the new connection's id, and at its next output asks the driver
//! for a non-blocking connect ([`Output::Connect`](crate::Output::Connect)), then, once
//! the socket turns writable, for its outcome
//! ([`Output::FinishConnect`](crate::Output::FinishConnect)). Success calls `opened`;
//! failure or the timeout calls `closed` with the error, and never `opened`.

use core::fmt;
use core::net::SocketAddr;

/// The longest unix socket path a connect takes, in bytes (Linux's `sun_path`; on
/// macOS and the BSDs the OS takes 104, and the driver reports a longer one as an
/// error of the connect).
pub const MAX_UNIX_PATH: usize = 108;

/// Unix connects a handler can start before the engine's next output: the engine holds
/// their paths (at most [`MAX_UNIX_PATH`] bytes each) in fixed storage until it has
/// asked the driver for them, which it does as soon as the callback returns.
pub const MAX_PENDING_UNIX_CONNECTS: usize = 4;

/// Where to connect: a TCP address (IPv4 or IPv6), or a unix socket path.
///
/// The engine resolves no names: resolve a host name before `serve` (as
/// `std::net::ToSocketAddrs` does, blocking), or on a thread of your own that hands the
/// addresses to the loop through a wake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectAddr<'a> {
    /// A TCP address.
    Ip(SocketAddr),
    /// A unix socket at this path (at most [`MAX_UNIX_PATH`] bytes).
    Unix(&'a str),
}

impl From<SocketAddr> for ConnectAddr<'_> {
    fn from(addr: SocketAddr) -> Self {
        ConnectAddr::Ip(addr)
    }
}

impl fmt::Display for ConnectAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectAddr::Ip(a) => write!(f, "tcp://{a}"),
            ConnectAddr::Unix(p) => write!(f, "unix://{p}"),
        }
    }
}

/// Why [`Loop::connect`](crate::Loop::connect) refused to start a connection. Nothing
/// was started, and no callback follows for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectError {
    /// Every connection slot is in use (accepted and outbound connections share the
    /// pool of [`Config::max_connections`](crate::Config::max_connections)).
    PoolFull,
    /// The server is shutting down.
    ShuttingDown,
    /// The unix socket path is longer than [`MAX_UNIX_PATH`] bytes.
    PathTooLong {
        /// The path's length in bytes.
        len: usize,
    },
    /// [`MAX_PENDING_UNIX_CONNECTS`] unix connects were started in this callback
    /// already; more can start from the next one.
    TooManyPending,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::PoolFull => f.write_str("no connection slot is free"),
            ConnectError::ShuttingDown => f.write_str("the server is shutting down"),
            ConnectError::PathTooLong { len } => write!(
                f,
                "unix socket path of {len} bytes (at most {MAX_UNIX_PATH})"
            ),
            ConnectError::TooManyPending => write!(
                f,
                "{MAX_PENDING_UNIX_CONNECTS} unix connects already wait for the driver"
            ),
        }
    }
}

impl core::error::Error for ConnectError {}

/// One unix connect's path, until the driver is asked for it.
#[derive(Clone, Copy)]
struct PendingPath {
    slot: u32,
    len: u8,
    bytes: [u8; MAX_UNIX_PATH],
}

/// The paths of the unix connects not yet handed to the driver, in fixed storage.
#[derive(Clone, Copy)]
pub(crate) struct UnixPaths {
    entries: [PendingPath; MAX_PENDING_UNIX_CONNECTS],
    len: usize,
}

impl Default for UnixPaths {
    fn default() -> Self {
        UnixPaths {
            entries: [PendingPath {
                slot: 0,
                len: 0,
                bytes: [0; MAX_UNIX_PATH],
            }; MAX_PENDING_UNIX_CONNECTS],
            len: 0,
        }
    }
}

impl UnixPaths {
    /// Whether `path` can be held: it is short enough and there is room.
    ///
    /// # Errors
    ///
    /// [`ConnectError::PathTooLong`] or [`ConnectError::TooManyPending`].
    pub(crate) fn check(&self, path: &str) -> Result<(), ConnectError> {
        if path.len() > MAX_UNIX_PATH {
            return Err(ConnectError::PathTooLong { len: path.len() });
        }
        if self.len == MAX_PENDING_UNIX_CONNECTS {
            return Err(ConnectError::TooManyPending);
        }
        Ok(())
    }

    /// Holds `path` for slot `slot` (after a successful [`UnixPaths::check`]).
    pub(crate) fn push(&mut self, slot: u32, path: &str) {
        debug_assert!(self.check(path).is_ok());
        if self.check(path).is_err() {
            return;
        }
        let entry = &mut self.entries[self.len];
        entry.slot = slot;
        entry.len = path.len() as u8;
        entry.bytes[..path.len()].copy_from_slice(path.as_bytes());
        self.len += 1;
    }

    /// The path held for `slot`, if any.
    pub(crate) fn get(&self, slot: u32) -> Option<&str> {
        let entry = self.entries[..self.len].iter().find(|e| e.slot == slot)?;
        // Copied from a `&str` whole, so always valid.
        core::str::from_utf8(&entry.bytes[..entry.len as usize]).ok()
    }

    /// Forgets the path held for `slot`, if any.
    pub(crate) fn remove(&mut self, slot: u32) {
        if let Some(at) = self.entries[..self.len].iter().position(|e| e.slot == slot) {
            self.entries.swap(at, self.len - 1);
            self.len -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    #[test]
    fn paths_are_held_by_slot_until_removed() {
        let mut paths = UnixPaths::default();
        paths.push(3, "/tmp/a.sock");
        paths.push(7, "/run/b.sock");
        assert_eq!(paths.get(3), Some("/tmp/a.sock"));
        assert_eq!(paths.get(7), Some("/run/b.sock"));
        assert_eq!(paths.get(4), None);
        paths.remove(3);
        assert_eq!(paths.get(3), None);
        assert_eq!(paths.get(7), Some("/run/b.sock"));
    }

    #[test]
    fn too_long_a_path_or_too_many_are_refused() {
        let mut paths = UnixPaths::default();
        let long = "x".repeat(MAX_UNIX_PATH + 1);
        assert_eq!(
            paths.check(&long),
            Err(ConnectError::PathTooLong {
                len: MAX_UNIX_PATH + 1
            })
        );
        let longest = "y".repeat(MAX_UNIX_PATH);
        for slot in 0..MAX_PENDING_UNIX_CONNECTS as u32 {
            assert_eq!(paths.check(&longest), Ok(()));
            paths.push(slot, &longest);
        }
        assert_eq!(paths.check("/a"), Err(ConnectError::TooManyPending));
        assert_eq!(paths.get(2).map(str::len), Some(MAX_UNIX_PATH));
        paths.remove(2);
        assert_eq!(paths.check("/a"), Ok(()));
    }
}
