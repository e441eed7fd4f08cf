//! The sans-IO engine of evio: every decision of an event loop, with no I/O of its own.
//!
//! `evio-proto` is `#![no_std]`, `#![forbid(unsafe_code)]`, uses no allocator, makes no
//! system call and reads no clock. It owns the connection pools (fixed at construction,
//! in storage the caller provides) and decides when to accept, read, write, close,
//! detach, pause a listener, tick and shut down. A *driver* performs what it asks and
//! reports what happened: `evio-os` over epoll, kqueue or poll(2), `evio-sim` over
//! simulated sockets and a virtual clock. Because both drive this same code, the
//! simulator tests the real behaviour.
//!
//! # The handler
//!
//! A user implements [`Events`] (every method optional) and gets a [`Conn`] to write
//! through. See [`Events`] for when each method runs.
//!
//! # Building an engine
//!
//! ```
//! use evio_proto::{Config, Engine, Events, Slot};
//!
//! struct Echo;
//! impl Events for Echo {
//!     type Context = ();
//!     fn data(&mut self, conn: &mut evio_proto::Conn<'_, ()>, input: &[u8]) -> evio_proto::Action {
//!         let n = conn.write_some(input);
//!         conn.consume(n);
//!         evio_proto::Action::None
//!     }
//! }
//!
//! let config = Config { max_connections: 4, input_capacity: 64, output_capacity: 64, ..Config::new() };
//! let slots: [Slot<()>; 4] = core::array::from_fn(|_| Slot::new());
//! let bytes = [0u8; 5 * 128]; // config.bytes_needed()
//! let engine = Engine::new(Echo, config, slots, bytes, None).unwrap();
//! assert_eq!(engine.free_slots(), 4);
//! ```
//!
//! Storage is anything that derefs to a slice: arrays as above, a `Vec` (std drivers
//! reserve the byte storage with `vec![0; n]`, which the OS maps lazily, so untouched
//! buffers cost no resident memory), or `&'static mut` arrays in firmware.
//!
//! # The driver protocol
//!
//! Inputs are `handle_*` calls, each given the time where it matters. Outputs come from
//! [`Engine::poll_output`], one at a time. The rules, which are all a driver needs:
//!
//! 1. **Start.** Bind the listeners, then call [`Engine::handle_start`] with their bound
//!    addresses in the order the user gave them. It calls `serving` and the first `tick`.
//! 2. **After every input, drain.** Call [`Engine::poll_output`] until it returns `None`,
//!    and perform each [`Output`] *before the next engine call*:
//!    - `Accept { listener }`: accept one connection. Report exactly one of
//!      [`Engine::handle_accepted`] (then register the socket under the returned
//!      [`ConnId`] with **read** interest; on `Err(Refused)` close it at once),
//!      [`Engine::handle_accept_blocked`] (EAGAIN) or [`Engine::handle_accept_error`].
//!    - `Read { id, buf }`: one `read` into `buf`. Report [`Engine::handle_read`] (n > 0),
//!      [`Engine::handle_eof`] (0), [`Engine::handle_read_blocked`] (EAGAIN) or
//!      [`Engine::handle_io_error`].
//!    - `Transmit { id, bytes }`: one `send` (with MSG_NOSIGNAL). Report
//!      [`Engine::handle_written`] (n, possibly short), [`Engine::handle_write_blocked`]
//!      (EAGAIN) or [`Engine::handle_io_error`].
//!    - `Configure { id, options }`: set TCP_NODELAY / keepalive (TCP only); no report.
//!    - `SetInterest { id, read, write }`: make the poller's interest exactly this
//!      (level-triggered semantics); no report.
//!    - `Close { id }`: deregister and close the socket; no report (`closed` runs at the
//!      next engine call, so the socket is gone by then).
//!    - `Detach { id }`: deregister, set blocking, wrap the socket and call
//!      [`Engine::handle_detached`] with it.
//!    - `PauseAccept` / `ResumeAccept { listener }`: stop / start watching a listener.
//!    - `Shutdown`: close listeners, remove unix socket files you created, return.
//!      Nothing follows it.
//!
//!    An `Accept`, `Read` or `Transmit` left without its report counts as EAGAIN.
//! 3. **Readiness.** Report what the poller says: [`Engine::handle_listener_ready`] for a
//!    listener, [`Engine::handle_conn_ready`] for a connection (decode the token with
//!    [`ConnId::from_u64`]; an `Err(StaleConn)` for readiness collected before a close is
//!    normal and ignored). Report hang-ups and errors as `hangup`.
//! 4. **Wakes.** When the notifier given to the [`WakeState`] fires, call
//!    [`Engine::handle_wakes`].
//! 5. **Time.** Wait no longer than [`Engine::poll_timeout`]; when it has passed, call
//!    [`Engine::handle_timeout`].
//!
//! The order of outputs, which a driver may rely on but need not: listener pause and
//! resume first; then output waiting in the loop's scratch buffer; then connections in
//! the order they became ready, each giving in turn its socket options, its pending
//! output, its close or detach (only once its output is flushed), a read, and a change
//! of poller interest; then accepts, at most [`Config::accept_batch`] per readiness
//! report. During shutdown: the triggering connection's output, one `Close` per open
//! connection, then `Shutdown`.
//!
//! Poller interest is level-triggered: a connection is registered for reading when it
//! opens; the engine asks for write interest only while a short write left output
//! pending, and drops read interest while it must not read (output blocked, input
//! buffer full, closing). So a request and its reply cost one `read` and one `send`,
//! with no `read` that only returns EAGAIN.
//!
//! ## The real driver's loop, in outline
//!
//! ```text
//! engine.handle_start(&bound, now())
//! loop {
//!     drain(&mut engine)                    // poll_output until None, performing each
//!     let timeout = engine.poll_timeout().map(|t| t - now())
//!     for ev in epoll.wait(&mut events, timeout) {
//!         match token(ev) {
//!             Listener(i) => engine.handle_listener_ready(i),
//!             Waker      => { eventfd.drain(); engine.handle_wakes(now()) }
//!             Conn(bits) => engine.handle_conn_ready(ConnId::from_u64(bits), readiness(ev)),
//!         }
//!     }
//!     engine.handle_timeout(now())
//!     if engine.is_shut_down() { break }
//! }
//! ```
//!
//! ## The simulator's loop, in outline
//!
//! ```text
//! engine.handle_start(&bound, clock)
//! loop {
//!     drain(&mut engine)                    // same outputs, performed on virtual sockets
//!     match script.next() {                 // one scripted or random event
//!         ClientConnects(l) => engine.handle_listener_ready(l),
//!         ClientSends(c, b) => { peer(c).push(b); engine.handle_conn_ready(c, readable) }
//!         ClientReads(c, n) => { peer(c).pop(n);  engine.handle_conn_ready(c, writable) }
//!         Wake(c)           => { waker.wake(c); engine.handle_wakes(clock) }
//!         Advance           => { clock = engine.poll_timeout(); engine.handle_timeout(clock) }
//!     }
//!     check_invariants()
//! }
//! ```
//!
//! Neither loop decides anything: when to read, how much, when to write, when to close,
//! what a full pool does, backpressure and back-off all come from the engine.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

mod addr;
mod config;
mod conn;
mod engine;
mod error;
mod events;
mod id;
mod stats;
mod sync;
mod time;
mod wake;

pub use addr::{Addr, ConnInfo, ListenAddr};
pub use config::Config;
pub use conn::Conn;
pub use engine::{Engine, MAX_LISTENERS, Output, Readiness, Slot};
pub use error::{
    AcceptError, BuildError, CloseError, DriverError, IoError, IoErrorKind, OutputFull, Refused,
    TooManyListeners,
};
pub use events::{Action, Detached, Events, Options, Server, Tick};
pub use id::ConnId;
pub use stats::Stats;
pub use time::Instant;
pub use wake::{Notify, WakeState, WakeTarget, WakeWord, Waker};

pub use core::time::Duration;
