//! The evio driver over real sockets: one thread, non-blocking sockets, and a poller:
//! epoll (Linux, Android), kqueue (macOS, the BSDs) or poll(2) (every unix), through
//! rustix.
//!
//! [`serve`] binds the addresses, builds an [`evio_proto::Engine`] with fixed
//! capacities, and runs the event loop on the calling thread until a handler returns
//! [`Action::Shutdown`] or something fatal happens. Every decision (when to read, to
//! write, to close, backpressure, back-off, ticks) is the engine's; this crate only
//! performs what the engine asks and reports what happened, so the simulator in
//! `evio-sim` tests the same behaviour.
//!
//! [`ServerBuilder::serve_loops`] runs several such loops, one engine per thread, for a
//! server that uses more than one core: connections spread over them by the kernel
//! (`SO_REUSEPORT`) or by load ([`Balance`]), and a handler reaches another loop's
//! connections through that loop's inbox ([`ServerBuilder::inbox`]).
//!
//! # Addresses
//!
//! `tcp://host:port`, `tcp4://`, `tcp6://`, `unix://path` or a bare `host:port`, with
//! `?reuseport=true` and a `-net` scheme suffix for the portable backend: the table is
//! on [`serve`](serve#addresses).
//!
//! # Backends
//!
//! One loop (`driver.rs`) runs every backend: one thread, level-triggered readiness,
//! non-blocking sockets, no thread per connection, and no allocation per event, read or
//! write in the steady state. The backends differ only in how the loop waits
//! ([`Backend`]):
//!
//! - **epoll** (Linux, Android; the default there): O(ready sockets) per wait, wakes
//!   through an eventfd. With [`ServerBuilder::batch_sends`], a turn's sends go in one
//!   io_uring submit (64-bit targets the `io-uring` crate has bindings for; one
//!   `send(2)` each where the kernel refuses a ring, and on every other backend).
//! - **kqueue** (64-bit macOS, FreeBSD, NetBSD, OpenBSD, DragonFly; the default there):
//!   wakes through an `EVFILT_USER` event, or a pipe on NetBSD and OpenBSD. Written
//!   against rustix's kqueue API but not compiled by this project's CI (no such target
//!   is installed on its machines).
//! - **poll(2)** (every unix): O(watched sockets) per wait, so it suits hundreds of
//!   connections rather than tens of thousands; wakes through a pipe. It serves any
//!   unix without epoll or kqueue, 32-bit kqueue targets (a kqueue event's pointer-sized
//!   udata cannot carry the loop's 64-bit tokens), `-net` addresses,
//!   [`ServerBuilder::backend`]`(`[`Backend::Poll`]`)`, and every server in a build with
//!   `--cfg evio_force_poll` (so CI runs the whole suite on it on Linux).
//!
//! `--cfg evio_force_pipe` makes epoll wake through a pipe as well, for the same reason.
//!
//! # Example
//!
//! ```no_run
//! use evio_os::{Action, Conn, Events};
//!
//! struct Echo;
//! impl Events for Echo {
//!     type Context = ();
//!     fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
//!         let n = conn.write_some(input);
//!         conn.consume(n);
//!         Action::None
//!     }
//! }
//!
//! evio_os::ServerBuilder::new()
//!     .max_connections(10_000)
//!     .serve(Echo, &["tcp://127.0.0.1:5000", "unix:///tmp/echo.sock"])?;
//! # Ok::<(), evio_os::Error>(())
//! ```

pub use evio_proto::{
    Action, Addr, CloseError, Config, Conn, ConnId, ConnInfo, ConnState, Detached, Events, Flow,
    Instant, ListenAddr, Loop, NotOpen, Options, OutputFull, PostKind, Refusal, Server, Tick,
    Waker, WriteError, delegate_events,
};

pub mod addr;
mod builder;
mod driver;
mod error;
#[cfg(feature = "fuzz")]
pub mod fuzz;
mod group;
mod handoff;
mod inbox;
mod limits;
mod sys;

pub use addr::Address;
pub use builder::{Backend, Balance, ServerBuilder};
pub use error::{AddrError, Error};
pub use limits::{DEFAULT_BUFFER_SPACE, DEFAULT_MAX_CONNECTIONS_CAP, RESERVED_DESCRIPTORS};

/// The socket of a detached connection, as evio-os hands it to
/// [`Events::detached`].
///
/// Take it with `socket.take::<DetachedSocket>()`; a socket not taken is closed, and
/// `closed` runs for its connection. It is out of the poller and in blocking mode; all output written before the
/// `Detach` has been handed to the kernel.
#[derive(Debug)]
pub enum DetachedSocket {
    /// A TCP connection.
    Tcp(std::net::TcpStream),
    /// A unix-domain connection.
    Unix(std::os::unix::net::UnixStream),
}

/// Listens on `addrs` with the default [`ServerBuilder`] and runs `handler` on the
/// calling thread until a handler returns [`Action::Shutdown`] (or [`Flow::Shutdown`]).
///
/// Shorthand for `ServerBuilder::new().serve(handler, addrs)`; see
/// [`ServerBuilder::serve`] for what a shutdown does, and [`ServerBuilder`] for the
/// defaults and what they reserve.
///
/// # Addresses
///
/// Each address is one listener; all of them are served by the same loop, and the
/// first is listener 0 ([`ConnInfo::listener`] says which one accepted a connection).
///
/// | form | meaning |
/// |---|---|
/// | `tcp://host:port`, `host:port` | TCP, on whatever address `host` resolves to first; an empty host means `0.0.0.0` |
/// | `tcp4://host:port` | TCP, IPv4 only |
/// | `tcp6://host:port` | TCP, IPv6 only (the socket is bound `IPV6_V6ONLY`); `tcp6://:port` is `[::]` |
/// | `tcp://[::1]:port` | an IPv6 literal, in brackets |
/// | `unix://path` | a unix-domain socket; `unix:///tmp/x.sock` is `/tmp/x.sock`, `unix://x.sock` is relative |
/// | `…?reuseport=true` | `SO_REUSEPORT`: several sockets may listen on the port, as the system allows (TCP only) |
/// | `tcp-net://…`, `tcp4-net://…`, `tcp6-net://…`, `unix-net://…` | the same, served with the portable poll(2) backend |
///
/// - A port of 0 binds a free port; [`Events::serving`] reports the real one in
///   [`Server::addrs`], in the order given.
/// - A host name is resolved when `serve` starts (a blocking lookup), and the
///   first address of the scheme's family is bound.
/// - Options follow a `?` and are joined with `&`; `reuseport` is the only one, and
///   takes `true`/`false` (also `1`/`0`, `yes`/`no`; a bare `?reuseport` is `true`).
///   A `?` always starts the options, so a unix path cannot contain one.
/// - A stale unix socket file is removed before binding, only if it is a socket and
///   no server accepts on it (a probing connect tells); a live one is
///   [`Error::Bind`] "address in use", and any other file is left alone
///   ([`Error::NotASocket`]). The file is removed when the server stops.
/// - The `-net` suffix comes from Go's evio, where it meant "Go's standard `net`
///   package instead of epoll/kqueue": the portable path. Here it selects the
///   poll(2) backend ([`Backend::Poll`]), for the whole server if any address has it.
///   The loop, the engine and the behaviour are the same; only the way it waits
///   differs.
///
/// An address that does not parse is [`Error::Address`], which names it and says what
/// is wrong ([`AddrError`]), before anything is bound. [`Address`] parses and prints
/// these forms without serving (to check a command-line flag early, say).
///
/// # Errors
///
/// As [`ServerBuilder::serve`]: every setup error names the address it concerns.
///
/// # Example
///
/// ```no_run
/// use evio_os::{Action, Conn, Events};
///
/// struct Echo;
/// impl Events for Echo {
///     type Context = ();
///     fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
///         let n = conn.write_some(input);
///         conn.consume(n); // what did not fit comes back in the next call
///         Action::None
///     }
/// }
///
/// // Every IPv4 interface on port 5000, IPv6 loopback on a free port, and a unix socket.
/// evio_os::serve(Echo, &["tcp4://:5000", "tcp6://[::1]:0", "unix:///tmp/echo.sock"])?;
/// # Ok::<(), evio_os::Error>(())
/// ```
pub fn serve<H: Events, A: AsRef<str>>(handler: H, addrs: &[A]) -> Result<(), Error> {
    ServerBuilder::new().serve(handler, addrs)
}
