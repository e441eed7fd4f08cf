//! The evio driver over real sockets: epoll (Linux, Android) or kqueue (macOS, the
//! BSDs) through rustix, and a portable fallback on threads and `std::net`.
//!
//! [`serve`] binds the addresses, builds an [`evio_proto::Engine`] with fixed
//! capacities, and runs the event loop on the calling thread until a handler returns
//! [`Action::Shutdown`] or something fatal happens. Every decision (when to read, to
//! write, to close, backpressure, back-off, ticks) is the engine's; this crate only
//! performs what the engine asks and reports what happened, so the simulator in
//! `evio-sim` tests the same behaviour.
//!
//! # Addresses
//!
//! | form | meaning |
//! |---|---|
//! | `tcp://host:port`, `host:port` | TCP; an empty host means `0.0.0.0` |
//! | `tcp4://host:port` / `tcp6://host:port` | TCP, IPv4 only / IPv6 only (`tcp6://:port` is `[::]`) |
//! | `unix://path` | a unix-domain socket (`unix:///tmp/x.sock` is `/tmp/x.sock`) |
//! | `…?reuseport=true` | `SO_REUSEPORT` (TCP only) |
//! | `tcp-net://…`, `unix-net://…` | the same, served by the std fallback driver |
//!
//! A port of 0 binds a free port; `serving` reports the real one. A stale unix socket
//! file is removed before binding (only if it is a socket and no server accepts on it,
//! which a probing connect tells; a live one is [`Error::Bind`] "address in use"); the
//! file is removed when the server stops. If any address uses a `-net` scheme, the
//! whole server runs on the std fallback, as in Go's evio.
//!
//! # Drivers
//!
//! - **Poller** (default on Linux, Android, and 64-bit macOS and BSDs): one thread,
//!   level-triggered epoll or kqueue, non-blocking sockets, a fixed array of poll
//!   events, and no allocation per event, read or write. Wakes arrive through an
//!   eventfd (Linux), an `EVFILT_USER` event (macOS, FreeBSD, DragonFly) or a pipe
//!   (elsewhere, and with `--cfg evio_force_pipe`).
//! - **Std fallback** (other targets, 32-bit kqueue targets (their events cannot carry
//!   the poller's 64-bit tokens), `-net` schemes, [`ServerBuilder::std_fallback`],
//!   or `--cfg evio_force_std`): the engine still runs on the calling thread; each
//!   listener has an accepting thread and each connection a reading and a writing
//!   thread that block in the kernel and hand results to the loop. See
//!   [`ServerBuilder::std_detach_check`] for its one periodic wake-up.
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

use std::sync::Arc;
use std::time::Duration;

pub use evio_proto::{
    Action, Addr, CloseError, Config, Conn, ConnId, ConnInfo, Detached, Events, Instant,
    ListenAddr, Options, OutputFull, Server, Tick, Waker,
};

mod addr;
#[cfg(evio_poller)]
mod driver;
mod error;
mod report;
mod std_driver;
mod sys;

pub use error::{AddrError, Error};

use evio_proto::{Engine, Notify, Slot, WakeState, WakeTarget, WakeWord};

/// The socket of a detached connection, as evio-os hands it to
/// [`Events::detached`]: take it with `socket.take::<DetachedSocket>()`.
///
/// It is out of the poller and in blocking mode; all output written before the
/// `Detach` has been handed to the kernel.
#[derive(Debug)]
pub enum DetachedSocket {
    /// A TCP connection.
    Tcp(std::net::TcpStream),
    /// A unix-domain connection.
    Unix(std::os::unix::net::UnixStream),
}

/// Options and capacities for [`serve`]; [`ServerBuilder::serve`] runs the server.
///
/// The defaults are [`Config::new`]'s: 1024 connections, 16 KiB of input and 64 KiB
/// of output buffer per connection (reserved with zeroed memory, so only the pages a
/// connection actually uses for carry-over become resident), TCP_NODELAY on, no
/// keepalive, a 1 ms minimum tick, 64 accepts per readiness report, accept back-off
/// from 10 ms to 1 s. Plus a listen backlog of 1024 and 256 poll events per wait.
#[derive(Clone, Debug)]
pub struct ServerBuilder {
    config: Config,
    backlog: i32,
    poll_events: usize,
    std_fallback: bool,
    std_detach_check: Duration,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder::new()
    }
}

impl ServerBuilder {
    /// The defaults (see the type's documentation).
    pub fn new() -> Self {
        ServerBuilder {
            config: Config::new(),
            backlog: 1024,
            poll_events: 256,
            std_fallback: false,
            std_detach_check: Duration::from_millis(250),
        }
    }

    /// Replaces the whole engine configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The engine configuration as it stands.
    pub fn engine_config(&self) -> &Config {
        &self.config
    }

    /// Most connections open at once; one more is accepted and closed at once.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.config.max_connections = n;
        self
    }

    /// Bytes of input buffer per connection: the largest frame a handler can wait for.
    pub fn input_capacity(mut self, bytes: usize) -> Self {
        self.config.input_capacity = bytes;
        self
    }

    /// Bytes of output buffer per connection: the most output pending per connection.
    pub fn output_capacity(mut self, bytes: usize) -> Self {
        self.config.output_capacity = bytes;
        self
    }

    /// TCP_NODELAY for new connections (on by default).
    pub fn nodelay(mut self, on: bool) -> Self {
        self.config.options.nodelay = on;
        self
    }

    /// TCP keepalive idle time (and probe interval) for new connections; `None` (the
    /// default) leaves keepalive off.
    pub fn keepalive(mut self, idle: Option<Duration>) -> Self {
        self.config.options.keepalive = idle;
        self
    }

    /// The shortest delay between ticks (a zero delay is raised to it).
    pub fn min_tick(mut self, d: Duration) -> Self {
        self.config.min_tick = d;
        self
    }

    /// Most connections accepted per listener readiness report.
    pub fn accept_batch(mut self, n: u32) -> Self {
        self.config.accept_batch = n;
        self
    }

    /// The listen backlog (the kernel may cap it).
    pub fn backlog(mut self, n: i32) -> Self {
        self.backlog = n;
        self
    }

    /// Size of the fixed poll event array (events handled per wait).
    pub fn poll_events(mut self, n: usize) -> Self {
        self.poll_events = n.max(1);
        self
    }

    /// Serve with the std fallback driver even where a poller exists.
    pub fn std_fallback(mut self, on: bool) -> Self {
        self.std_fallback = on;
        self
    }

    /// How often a std-fallback reading thread that found nothing to read wakes up to
    /// see whether its connection was detached (default 250 ms).
    ///
    /// `std` cannot interrupt a blocking read, and a detached socket must not be
    /// handed over while another thread still reads it; this bounds how long a detach
    /// waits. It costs one wake-up per idle connection per period; the poller drivers
    /// have no such cost.
    pub fn std_detach_check(mut self, d: Duration) -> Self {
        self.std_detach_check = d.max(Duration::from_millis(1));
        self
    }

    /// Listens on `addrs` and runs `handler` on the calling thread until a handler
    /// returns [`Action::Shutdown`]; then every connection is closed, the listeners are
    /// closed, unix socket files this server created are removed, and it returns
    /// `Ok(())`.
    ///
    /// # Errors
    ///
    /// [`Error::NoAddresses`], [`Error::Address`] (naming the address),
    /// [`Error::Bind`] / [`Error::NotASocket`] (naming the address),
    /// [`Error::TooManyListeners`], [`Error::Config`] for invalid capacities,
    /// [`Error::Setup`] if the poller, notifier or a thread cannot be created, and
    /// [`Error::Poll`] if waiting for events fails.
    pub fn serve<H: Events, A: AsRef<str>>(&self, handler: H, addrs: &[A]) -> Result<(), Error> {
        if addrs.is_empty() {
            return Err(Error::NoAddresses);
        }
        if addrs.len() > evio_proto::MAX_LISTENERS {
            return Err(Error::TooManyListeners {
                given: addrs.len(),
                max: evio_proto::MAX_LISTENERS,
            });
        }
        // Before anything is bound or reserved.
        self.config.validate().map_err(Error::Config)?;
        let mut specs = Vec::with_capacity(addrs.len());
        for a in addrs {
            let spec = addr::parse(a.as_ref()).map_err(|error| Error::Address {
                addr: a.as_ref().to_owned(),
                error,
            })?;
            specs.push(spec);
        }
        let use_std = cfg!(evio_force_std)
            || !HAS_POLLER
            || self.std_fallback
            || specs.iter().any(|s| s.std_net);
        let listeners = sys::net::bind_all(addrs, &specs, self.backlog, !use_std)?;
        if use_std {
            return std_driver::run(handler, listeners, self);
        }
        #[cfg(evio_poller)]
        return driver::run(handler, listeners, self);
        #[allow(unreachable_code)]
        std_driver::run(handler, listeners, self)
    }
}

const HAS_POLLER: bool = cfg!(evio_poller);

/// Listens on `addrs` with the default [`ServerBuilder`] and runs `handler` until a
/// handler returns [`Action::Shutdown`] (see [`ServerBuilder::serve`]).
///
/// # Errors
///
/// As [`ServerBuilder::serve`]: every setup error names the address it concerns.
pub fn serve<H: Events, A: AsRef<str>>(handler: H, addrs: &[A]) -> Result<(), Error> {
    ServerBuilder::new().serve(handler, addrs)
}

/// The engine type both drivers run.
pub(crate) type OsEngine<H> = Engine<H, Vec<Slot<<H as Events>::Context>>, Vec<u8>>;

/// Refuses every wake once dropped: a driver holds it for as long as its loop runs, so
/// wakes are refused however `serve` ends (a shutdown also does this in the engine; an
/// error or a panicking handler does not).
pub(crate) struct WakesEnd(Arc<dyn WakeTarget>);

impl Drop for WakesEnd {
    fn drop(&mut self) {
        self.0.shut_down();
    }
}

/// Builds the engine over zeroed storage, with a waker that notifies through `notify`.
pub(crate) fn build_engine<H: Events, N: Notify + 'static>(
    handler: H,
    config: Config,
    notify: N,
) -> Result<(OsEngine<H>, WakesEnd), Error> {
    let n = config.max_connections;
    let out_of_memory = |_| Error::Setup {
        what: "the connection tables",
        error: std::io::ErrorKind::OutOfMemory.into(),
    };
    let word_count = WakeState::<Box<[WakeWord]>, N>::words_needed(n);
    let mut words = Vec::new();
    words.try_reserve_exact(word_count).map_err(out_of_memory)?;
    words.extend((0..word_count).map(|_| WakeWord::new()));
    let state: Arc<dyn WakeTarget> = Arc::new(WakeState::new(n, words.into_boxed_slice(), notify));
    let waker = Waker::from_arc(state.clone());
    let mut slots: Vec<Slot<H::Context>> = Vec::new();
    slots.try_reserve_exact(n).map_err(out_of_memory)?;
    slots.extend((0..n).map(|_| Slot::new()));
    // Zeroed allocation: the OS maps these pages lazily, so buffers no connection
    // touches cost no resident memory. Never written here.
    let bytes = vec![0u8; config.bytes_needed()];
    let engine = Engine::new(handler, config, slots, bytes, Some(waker)).map_err(Error::Config)?;
    Ok((engine, WakesEnd(state)))
}

/// The listeners' bound addresses, in order, as `serving` reports them.
pub(crate) fn listen_addrs(listeners: &[sys::net::Listener]) -> Vec<ListenAddr<'_>> {
    listeners
        .iter()
        .map(|l| match &l.kind {
            sys::net::ListenerKind::Tcp(a) => ListenAddr::Ip(*a),
            sys::net::ListenerKind::Unix(f) => ListenAddr::Unix(&f.path),
        })
        .collect()
}
