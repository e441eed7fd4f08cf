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
//! through. See [`Events`] for when each method runs. A handler that wraps another
//! writes the methods it passes on unchanged with [`delegate_events!`].
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
//! Inputs are `handle_*` calls; outputs come from [`Engine::poll_output`], one at a
//! time. Time has one entry point, [`Engine::handle_time`]: no other call takes or
//! moves the time, and every handler call between two `handle_time` calls happens at
//! the time the first one gave. The rules, which are all a driver needs:
//!
//! 1. **Start.** Bind the listeners, call [`Engine::handle_time`] with the start time,
//!    then [`Engine::handle_start`] with the listeners' bound addresses in the order the
//!    user gave them (the first is [`ListenerId`] 0). It calls `serving` and the first
//!    `tick`.
//! 2. **After every input, drain.** Call [`Engine::poll_output`] until it returns `None`,
//!    and perform each [`Output`] before the next engine call. Seven of them carry an
//!    operation that borrows the engine until the driver completes it by value, so a
//!    report of the wrong kind, a second report, or a report for something not asked
//!    for does not compile:
//!    - [`Output::Accept`]: accept one connection on [`Accept::listener`], then
//!      [`Accept::done`] with its addresses (register the socket under the returned
//!      [`ConnId`] with read interest; on `Err(Refused)` close it at once),
//!      [`Accept::would_block`] or [`Accept::failed`].
//!    - [`Output::Read`]: one `read` into [`Read::buf`], then [`Read::done`] with what
//!      `read(2)` returned (0 is the end of the stream: the one way to report it),
//!      [`Read::would_block`] or [`Read::failed`].
//!    - [`Output::Transmit`]: one `send` of [`Transmit::bytes`] (with MSG_NOSIGNAL), then
//!      [`Transmit::done`] with the count taken, [`Transmit::would_block`] or
//!      [`Transmit::failed`].
//!    - [`Output::TransmitBatch`] (only with [`Config::batch_sends`]): a `Transmit` for
//!      each of its entries, made together (evio-os: one io_uring submit on Linux),
//!      each reported as a transmit is ([`TransmitBatch::done`],
//!      [`TransmitBatch::would_block`], [`TransmitBatch::failed`]).
//!    - [`Output::Detach`]: take the socket out of the poller, make it blocking, wrap it
//!      and hand it over with [`Detach::done`], or report [`Detach::failed`].
//!    - [`Output::Connect`]: open a non-blocking socket for [`Connect::addr`] and
//!      `connect(2)` it; on EINPROGRESS (or success) register it under [`Connect::id`]
//!      with [`Interest::WRITE`] and report [`Connect::started`], otherwise
//!      [`Connect::failed`] (no socket kept).
//!    - [`Output::FinishConnect`]: once that socket was reported writable or hung up,
//!      read its pending error (`SO_ERROR`): [`FinishConnect::done`] with its local
//!      address, [`FinishConnect::failed`], or [`FinishConnect::in_progress`].
//!
//!    An operation dropped without a report counts as "would block" (a detach or a
//!    connect as failed, a finish-connect as still in progress). The other outputs
//!    need no report:
//!    - `Configure { id, options }`: set TCP_NODELAY / keepalive (TCP only).
//!    - `SetInterest { id, interest }`: make the poller's [`Interest`] exactly this
//!      (level-triggered semantics).
//!    - `Close { id }`: deregister and close the socket (`closed` runs at the next
//!      engine call, so the socket is gone by then).
//!    - `Abort { id }`: set `SO_LINGER` to zero, then close as for `Close` (a reset).
//!    - `ShutdownWrite { id }`: `shutdown(SHUT_WR)`; the socket stays open and watched.
//!    - `PauseAccept` / `ResumeAccept { listener }`: stop / start watching a listener.
//!    - `Shutdown`: close listeners, remove unix socket files you created, return.
//!      Nothing follows it.
//! 3. **Readiness.** Report what the poller says: [`Engine::handle_listener_ready`] for a
//!    listener, [`Engine::handle_conn_ready`] for a connection (decode the token with
//!    [`ConnId::from_u64`]). Report hang-ups and errors as `hangup`.
//! 4. **Wakes.** When the notifier given to the [`WakeState`] fires, call
//!    [`Engine::handle_wakes`].
//! 5. **Time.** Wait no longer than [`Engine::poll_timeout`]; after every wait call
//!    [`Engine::handle_time`] (it fires what is due).
//! 6. **Stopping from outside.** To stop the server other than by its handler (it is
//!    one of several loops and another stopped; the embedding wants it stopped), call
//!    [`Engine::handle_shutdown`] and go on draining outputs until `Shutdown`.
//! 7. **Naps.** Before each wait, ask [`Engine::poll_nap`]: when it gives a nap, sleep
//!    that long on a timer (not in the poller: a socket turning ready must not wake
//!    the loop), never past the timeout, then wait with a zero timeout. It is always
//!    `None` unless [`Config::coalesce`] is set.
//!
//! The order of outputs, which a driver may rely on but need not: listener pause and
//! resume first; then output waiting in the loop's scratch buffer; then connections in
//! the order they became ready, each giving in turn its socket options, its pending
//! output, its close or detach (only once its output is flushed), a read, and a change
//! of poller interest; then accepts, at most [`Config::accept_batch`] per readiness
//! report. One exception: a connection the poller reported readable is read before
//! anything is sent to it (its scratch output included), so that a send, which a peer
//! that sent and closed answers with a reset, cannot cost what that peer sent; and a
//! connection whose send failed reads once more, delivering what it finds to its
//! handler, before it closes with the send's error. A connection whose socket fails
//! while its input waits (for another connection's room, or held) sends nothing more
//! and asks for no readiness, but its handler still gets that input (and `drained`
//! for output that backed up, now dropped) before it closes with the error, within
//! [`Config::send_timeout`]. During shutdown: the triggering connection's output, one `Close` per open
//! connection, then `Shutdown`.
//!
//! Poller interest is level-triggered: a connection is registered for reading when it
//! opens; the engine asks for write interest only while a short write left output
//! pending, and drops read interest while it must not read (output blocked, input
//! buffer full, closing). So a request and its reply cost one `read` and one `send`,
//! with no `read` that only returns EAGAIN.
//!
//! A report cannot outlive its output or be given twice:
//!
//! ```compile_fail,E0382
//! # use evio_proto::{Config, Engine, Events, Output, Slot};
//! # struct Quiet;
//! # impl Events for Quiet { type Context = (); }
//! # let config = Config { max_connections: 1, input_capacity: 8, output_capacity: 8, ..Config::new() };
//! # let mut engine = Engine::new(Quiet, config, [Slot::new()], [0u8; 32], None).unwrap();
//! if let Some(Output::Read(read)) = engine.poll_output() {
//!     read.done(4);
//!     read.done(4); // error[E0382]: use of moved value: `read`
//! }
//! ```
//!
//! and no other engine call fits between an output and its report:
//!
//! ```compile_fail,E0499
//! # use evio_proto::{Config, Engine, Events, Output, Slot};
//! # struct Quiet;
//! # impl Events for Quiet { type Context = (); }
//! # let config = Config { max_connections: 1, input_capacity: 8, output_capacity: 8, ..Config::new() };
//! # let mut engine = Engine::new(Quiet, config, [Slot::new()], [0u8; 32], None).unwrap();
//! if let Some(Output::Transmit(transmit)) = engine.poll_output() {
//!     engine.handle_wakes(); // error[E0499]: cannot borrow `engine` as mutable more than once
//!     transmit.done(1);
//! }
//! ```
//!
//! ## The real driver's loop, in outline
//!
//! ```text
//! engine.handle_time(now()); engine.handle_start(&bound)
//! loop {
//!     while let Some(out) = engine.poll_output() {   // drain: perform each output
//!         match out {
//!             Output::Read(mut read) => match sys_read(fd(read.id()), read.buf()) {
//!                 Ok(n) => read.done(n),
//!                 Err(EAGAIN) => read.would_block(),
//!                 Err(e) => read.failed(io_error(e)),
//!             },
//!             …                                      // Accept, Transmit, Detach alike
//!         }
//!     }
//!     let mut timeout = engine.poll_timeout().map(|t| t - now())
//!     if let Some(nap) = engine.poll_nap() {         // wake coalescing, if configured
//!         sleep(min(nap, timeout)); timeout = Some(0)
//!     }
//!     let events = epoll.wait(timeout)
//!     engine.handle_time(now())
//!     for ev in events {
//!         match token(ev) {
//!             Listener(id) => engine.handle_listener_ready(id),
//!             Conn(bits)   => engine.handle_conn_ready(ConnId::from_u64(bits), readiness(ev)),
//!             Waker        => { eventfd.drain(); engine.handle_wakes() }
//!         }
//!     }
//! }
//! ```
//!
//! ## The simulator's loop, in outline
//!
//! ```text
//! engine.handle_start(&bound)                        // virtual time starts at zero
//! loop {
//!     while let Some(out) = engine.poll_output() {   // the same outputs, performed on
//!         perform(out, &mut network)                 // virtual sockets through the
//!     }                                              // fault injector
//!     match script.next() {                          // one scripted or random event
//!         ClientConnects(l) => engine.handle_listener_ready(l),
//!         ClientSends(c, b) => { peer(c).push(b); engine.handle_conn_ready(c, readable) }
//!         ClientReads(c, n) => { peer(c).pop(n);  engine.handle_conn_ready(c, writable) }
//!         Wake(c)           => { waker.wake(c); engine.handle_wakes() }
//!         Advance           => engine.handle_time(engine.poll_timeout()),
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
mod batch;
mod buffers;
mod coalesce;
mod config;
mod conn;
mod connect;
mod delegate;
mod engine;
mod error;
mod events;
#[cfg(feature = "alloc")]
mod heap;
mod id;
mod listeners;
mod lists;
mod output;
mod pool;
mod post;
mod relay;
mod shutdown;
mod slot;
mod stats;
mod sync;
mod ticker;
mod time;
mod timers;
mod transport;
mod wake;

pub use addr::{Addr, ConnInfo, ListenAddr};
pub use batch::MAX_BATCH;
pub use config::Config;
pub use conn::{Conn, ConnState, Loop, NotOpen, WriteError};
pub use connect::{ConnectAddr, ConnectError, MAX_PENDING_UNIX_CONNECTS, MAX_UNIX_PATH};
pub use engine::{ByteStorage, Engine, MAX_LISTENERS, SlotStorage};
pub use error::{
    AcceptError, BuildError, CloseError, DriverError, IoError, IoErrorKind, OutputFull, Refused,
    TooManyListeners,
};
pub use events::{Action, Detached, Events, Flow, Options, Server, Tick};
#[cfg(feature = "alloc")]
pub use heap::HeapEngine;
pub use id::{ConnId, ListenerId, MAX_LOOPS, MAX_SLOTS};
pub use output::{
    Accept, Connect, Detach, FinishConnect, Interest, Output, Read, Readiness, Transmit,
    TransmitBatch,
};
pub use post::{Loops, PostKind, PostOffice, Refusal};
pub use slot::Slot;
pub use stats::Stats;
pub use time::Instant;
pub use transport::{Decoded, Transport, TransportError};
pub use wake::{Notify, WakeState, WakeTarget, WakeWord, Waker};

pub use core::time::Duration;
