//! evio: event-driven networking that is fast, small, and low on memory.
//!
//! The facade over the sans-IO engine ([`proto`], `no_std` and allocation-free) and its
//! real-socket driver (`evio-os`). Handlers implement [`Events`]; [`serve`] (or
//! [`ServerBuilder::serve`]) runs them on real sockets until one returns
//! [`Action::Shutdown`].
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

pub use evio_os::{
    AddrError, Backend, DEFAULT_MAX_CONNECTIONS_CAP, DetachedSocket, Error, RESERVED_DESCRIPTORS,
    ServerBuilder, serve,
};
pub use evio_proto as proto;
pub use evio_proto::{
    Action, Addr, CloseError, Config, Conn, ConnId, ConnInfo, Detached, Events, Flow, Instant,
    ListenAddr, Loop, NotOpen, Options, OutputFull, Server, Tick, Waker, WriteError,
};

/// The deterministic simulator (the `evio-sim` crate), with the `sim` feature: test your
/// own handler against the production engine under scripted clients, faults and a
/// virtual clock, with a model of what it should send.
///
/// Add it for tests only:
///
/// ```toml
/// [dev-dependencies]
/// evio = { version = "0.1", features = ["sim"] }
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
