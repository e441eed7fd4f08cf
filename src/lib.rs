//! evio: event-driven networking that is fast, small, and low on memory.
//!
//! One thread runs an event loop over non-blocking sockets and calls a handler when
//! something happens: a connection opened, bytes arrived, backed-up output drained, a
//! timeout or the ticker fired, another thread woke the loop. The handler writes its
//! replies into fixed-size buffers that the engine owns, and says what should happen
//! next. All memory is reserved when the server starts and does not grow with traffic.
//!
//! With the `sim` feature (for `[dev-dependencies]`), `evio::sim` re-exports the
//! deterministic simulator, `evio-sim`, to test a handler against the production engine
//! under scripted clients, faults and a virtual clock.
//!
//! ```no_run
//! use evio::{Action, Conn, Events};
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
//! evio::serve(Echo, &["tcp://127.0.0.1:5000"])?;
//! # Ok::<(), evio::Error>(())
//! ```
//!
//! # Where things are
//!
//! **The handler.** Implement [`Events`]; every method has a default.
//!
//! - Methods about one connection (`opened`, `data`, `woken`, `timeout`, `drained`)
//!   get a [`Conn`]: the connection's [`ConnId`] and addresses ([`ConnInfo`]), its
//!   state ([`Events::Context`]), its output ([`Conn::write`], [`Conn::write_some`]),
//!   how much input was used ([`Conn::consume`]; read [`Events::data`] on why it
//!   matters), its timeout ([`Conn::set_timeout`]) and the time ([`Conn::now`]). They
//!   return an [`Action`]: carry on, close, abort, detach, or shut the server down.
//! - Methods about the server (`serving`, `tick`, `closed`, `detached`,
//!   `server_woken`) get a [`Server`] or a [`Loop`] and return a [`Flow`] (`tick`: a
//!   [`Tick`]). A [`Loop`], which a connection's methods reach through
//!   [`Conn::others`], writes to, closes, aborts, detaches or times out any open
//!   connection by id.
//! - A detached connection's socket is handed to [`Events::detached`] in a
//!   [`Detached`], to take as a [`DetachedSocket`].
//!
//! **Serving.** [`serve`] runs a handler on the calling thread until it returns
//! [`Action::Shutdown`] or [`Flow::Shutdown`]; [`ServerBuilder`] sets capacities,
//! socket options and the [`Backend`] first. Addresses are `tcp://host:port`,
//! `tcp4://`, `tcp6://`, `unix://path` or a bare `host:port`, with options such as
//! `?reuseport=true` and a `-net` suffix for the portable backend: see the
//! [address table](serve#addresses). `serve` fails with an [`Error`] that names the
//! address it concerns.
//!
//! **Other threads.** A [`Waker`] ([`Server::waker`], [`Loop::waker`]) is
//! `Send + Sync + Clone`: [`Waker::wake`] makes the loop call [`Events::woken`] for a
//! connection, and [`Waker::wake_server`] makes it call [`Events::server_woken`],
//! which can shut the server down (a stop on SIGINT, say).
//!
//! **Testing.** The deterministic simulator (the `evio-sim` crate; `evio::sim` with the
//! `sim` feature) runs the same handler value over virtual sockets, with a virtual
//! clock and injected faults, and replays any failure from its seed.
//!
//! **The engine.** [`proto`] is the sans-IO engine where every decision is made
//! (`no_std`, no allocation, no system calls, no clock), for drivers of your own.
//!
//! The examples on items re-exported here name the crate that defines them
//! (`evio_proto::Conn`, `evio_os::serve`): they are the same items as `evio::Conn` and
//! `evio::serve`.

pub use evio_os::{
    AddrError, Address, Backend, Balance, DEFAULT_BUFFER_SPACE, DEFAULT_MAX_CONNECTIONS_CAP,
    DetachedSocket, Error, RESERVED_DESCRIPTORS, ServerBuilder, serve,
};
// Inlined so that its pages are part of these docs: links from the items above into
// the engine (and `proto` itself) resolve without evio-proto's own docs.
#[doc(inline)]
pub use evio_proto as proto;
pub use evio_proto::{
    Action, Addr, CloseError, Config, Conn, ConnId, ConnInfo, ConnState, ConnectAddr, ConnectError,
    Detached, Events, Flow, Instant, ListenAddr, Loop, NotOpen, Options, OutputFull, PostKind,
    Refusal, Server, Tick, Waker, WriteError, delegate_events,
};
// Not used to write a handler, but met through the items above: `Error::Config` carries
// a `BuildError`, `Error::TooManyListeners` is about `MAX_LISTENERS`, `CloseError::Io`
// carries an `IoError`, and `ConnInfo::listener` is a `ListenerId`.
pub use evio_proto::{BuildError, IoError, IoErrorKind, ListenerId, MAX_LISTENERS};

/// The deterministic simulator (the `evio-sim` crate), with the `sim` feature: test your
/// own handler against the production engine under scripted clients, faults and a
/// virtual clock, with a model of what it should send.
///
/// Add it for tests only (the package is `evio-rs`, its library `evio`; until it is
/// published, by path to a checkout of its repository, or by `git`), and optimise test
/// builds, since the simulator is compiled in your crate, generic over your handler
/// (a swarm of 2,000 seeds took 26 s unoptimised, 3 s with this):
///
/// ```toml
/// [dev-dependencies]
/// evio-rs = { path = "../evio", features = ["sim"] }
///
/// [profile.test]
/// opt-level = 2
/// ```
///
/// Then, in a test, run a swarm of seeds; a failure prints the command that replays it:
///
/// ```
/// use evio::sim::{Constraints, EchoModel, Rng, Swarm};
/// use evio::{Action, Conn, Events};
///
/// struct Echo;
/// impl Events for Echo {
///     type Context = ();
///     fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
///         let n = conn.write_some(input);
///         conn.consume(n);
///         Action::None
///     }
/// }
///
/// let report = Swarm::new(|| (Echo, EchoModel))
///     .seeds(0..50)
///     .steps(500)
///     .constraints(Constraints { min_output_capacity: 16, ..Constraints::none() })
///     .workload(|_client: u16, _rng: &mut Rng| b"ping\n".to_vec())
///     .run();
/// assert!(report.failures.is_empty(), "{report}");
/// ```
///
/// The simulator's own docs (this module) have the whole API and a worked example: a
/// key-value server with shared state and idle timeouts, and its exact model.
#[cfg(feature = "sim")]
#[doc(inline)]
pub use evio_sim as sim;
