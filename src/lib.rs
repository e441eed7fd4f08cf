//! evio: event-driven networking that is fast, small, and low on memory.
//!
//! The facade over the sans-IO engine ([`proto`], `no_std` and allocation-free) and its
//! real-socket driver (`evio-os`). Handlers implement [`Events`]; [`serve`] (or
//! [`ServerBuilder::serve`]) runs them on real sockets until one returns
//! [`Action::Shutdown`].
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
// Inlined so that its pages are part of these docs: links from the items above into
// the engine (and `proto` itself) resolve without evio-proto's own docs.
#[doc(inline)]
pub use evio_proto as proto;
pub use evio_proto::{
    Action, Addr, CloseError, Config, Conn, ConnId, ConnInfo, Detached, Events, Flow, Instant,
    ListenAddr, Loop, NotOpen, Options, OutputFull, Server, Tick, Waker, WriteError,
};
// Not used to write a handler, but met through the items above: `Error::Config` carries
// a `BuildError`, `Error::TooManyListeners` is about `MAX_LISTENERS`, `CloseError::Io`
// carries an `IoError`, and `ConnInfo::listener` is a `ListenerId`.
pub use evio_proto::{BuildError, IoError, IoErrorKind, ListenerId, MAX_LISTENERS};
