//! Reference models: what a handler should send, given what its clients sent.

use core::fmt;
use std::collections::VecDeque;

use evio_proto::{Action, CloseError, ConnId, ConnInfo, Instant, PostKind};

/// A reference model of a handler, per connection: it says which output the client may
/// receive given the input the server read, and whether the client is still owed any.
///
/// The simulator calls it as things happen: [`Model::opened`], [`Model::input`] when
/// the server's socket hands bytes to the engine (before the handler sees them),
/// [`Model::consumed`] with the bytes each `data` call consumed, [`Model::woken`] and
/// [`Model::timeout`] when the handler's `woken` and `timeout` run,
/// [`Model::timeout_set`] when its timeout changes, [`Model::closing`] when it stops
/// being open,
/// [`Model::ended`] when `closed` or `detached` ends the connection, and
/// [`Model::output`] when the client reads bytes. [`Model::owed`] decides the end of
/// the liveness phase and the final check for connections that ended cleanly.
///
/// `opened`, `consumed`, `woken`, `timeout`, `timeout_set`, `closing` and `ended` run in
/// the order the handler saw them,
/// across all connections: a model of state shared between connections (a key-value
/// store, a chat room) applies each request in `consumed` exactly when the handler
/// applied it, and is exact. `input` runs when bytes are read, which for a
/// connection held back by backpressure can be long before its handler sees them.
///
/// `opened`, `consumed`, `woken` and `timeout` are also given `now`, the engine's time when the
/// handler's callback ran: what [`Conn::now`](evio_proto::Conn::now) returned to it.
/// That is how a model of a reply that depends on time (a key with a time to live, a
/// rate limit) stays exact: it decides with the very instant the handler decided
/// with, not the simulator's clock (the engine knows only the times the driver
/// reports to it, so its time can lag that clock).
///
/// The state of one connection is [`Model::Conn`]; state shared between connections
/// lives in the model itself. A model that sends to other connections (a broadcast)
/// keeps their expectations in the model too, keyed by something it puts in each
/// connection's `Conn` in `opened`.
pub trait Model {
    /// The model's state for one connection.
    type Conn: Default;

    /// The handler's `opened` ran for this connection (first, before any other call
    /// for it), with the listener and addresses the handler saw.
    ///
    /// `now` is the engine's time when the handler's callback ran: what `conn.now()`
    /// returned to it.
    fn opened(&mut self, conn: &mut Self::Conn, info: &ConnInfo, now: Instant) {
        let _ = (conn, info, now);
    }

    /// The server read `bytes` from the client (appended to what it read before).
    fn input(&mut self, conn: &mut Self::Conn, bytes: &[u8]);

    /// The handler's `data` ran and consumed `bytes` (the front of its input; the rest
    /// comes back in the next `data` call). Runs in the order the handler saw it,
    /// across connections.
    ///
    /// `now` is the engine's time when the handler's callback ran: what `conn.now()`
    /// returned to it.
    fn consumed(&mut self, conn: &mut Self::Conn, bytes: &[u8], now: Instant) {
        let _ = (conn, bytes, now);
    }

    /// The connection stopped being open: its handler returned `Close`, `Detach` or
    /// `Abort` (from `input_ended` too, once its peer ended its stream: `Close` is the
    /// default there), a callback closed it through `Loop`, or its socket failed. From here on nothing written to it reaches the
    /// client from other connections' callbacks, though what was written before may
    /// still be sent (and after the end of its stream, its own handler may still answer
    /// input read before it, and go on producing from `drained`). Runs once, in the
    /// order of the handler's callbacks.
    fn closing(&mut self, conn: &mut Self::Conn) {
        let _ = conn;
    }

    /// The connection ended: the handler's `closed` ran, or `detached` took its socket.
    /// Nothing more runs for it but [`Model::output`] for bytes still on their way.
    fn ended(&mut self, conn: &mut Self::Conn) {
        let _ = conn;
    }

    /// The server read the end of the connection's stream (the client, or a backend,
    /// ended it), before [`Model::closing`]. Runs when the driver reports it, like
    /// [`Model::input`].
    fn input_ended(&mut self, conn: &mut Self::Conn) {
        let _ = conn;
    }

    /// The handler's `closed` ran with `error` (after [`Model::ended`]), for an
    /// `outbound` connection or an accepted one. An outbound connection whose connect
    /// failed gets this call only: `opened` never ran for it, and `error` says why
    /// (`CloseError::Connect`, `CloseError::ConnectTimeout`, or none when a handler
    /// abandoned it). A relay's model learns here that a backend failed.
    fn closed(&mut self, conn: &mut Self::Conn, outbound: bool, error: Option<CloseError>) {
        let _ = (conn, outbound, error);
    }

    /// The handler's `woken` ran for this connection.
    ///
    /// `now` is the engine's time when the handler's callback ran: what `conn.now()`
    /// returned to it.
    fn woken(&mut self, conn: &mut Self::Conn, now: Instant) {
        let _ = (conn, now);
    }

    /// The handler's `timeout` ran for this connection at `now` (the engine's time, what
    /// `conn.now()` returned to it), wrote `wrote` bytes of output and returned
    /// `action`. The action is the one the engine carried out: where the simulator
    /// injects a close (a handler that decides to close, standing in for its `None`),
    /// `action` is that `Close`, though the handler carried on. Runs in the order of the
    /// handler's callbacks, like [`Model::consumed`].
    ///
    /// With [`Model::timeout_set`] this lets a model check a handler's deadlines
    /// exactly: when each one was set, and what the handler did when it came.
    fn timeout(&mut self, conn: &mut Self::Conn, now: Instant, wrote: usize, action: Action) {
        let _ = (conn, now, wrote, action);
    }

    /// The connection's timeout (set with `Conn::set_timeout` or `Loop::set_timeout`)
    /// changed: it now fires at `at` (`None`: no timeout is set).
    ///
    /// Reported after the handler callback that changed it, once that callback's own
    /// model call ([`Model::opened`], [`Model::consumed`], [`Model::woken`],
    /// [`Model::timeout`]) has run, and only when it changed: a callback that leaves the
    /// deadline where it was reports nothing. When a timeout fires the engine takes it
    /// off, so one set again in `timeout`, even to the same instant, is reported.
    fn timeout_set(&mut self, conn: &mut Self::Conn, at: Option<Instant>) {
        let _ = (conn, at);
    }

    /// The client received `bytes` (after everything it received before).
    ///
    /// # Errors
    ///
    /// A [`ModelError`] saying why the handler could not have sent these bytes.
    fn output(&mut self, conn: &mut Self::Conn, bytes: &[u8]) -> Result<(), ModelError>;

    /// Bytes the client is still owed for the input so far (0 when all of it was
    /// answered). A clean connection must end with nothing owed.
    fn owed(&self, conn: &Self::Conn) -> usize;

    /// A server of several loops ([`LoopsSim`](crate::LoopsSim)): the handler of loop
    /// `from` posted `kind` (with `bytes`) for `to` (a connection of another loop, or
    /// for a message only its loop), and the post office took it (`accepted`) or
    /// refused it at once (its inbox full). Reported before the callback that posted
    /// it is (before its [`Model::consumed`], say), in the order posted. The default
    /// ignores it.
    fn posted(&mut self, from: usize, to: ConnId, kind: PostKind, bytes: &[u8], accepted: bool) {
        let _ = (from, to, kind, bytes, accepted);
    }

    /// Whether the handler may call [`Waker::wake`](evio_proto::Waker::wake) itself
    /// (from a callback, or a thread of its own). When it never does, every wake is the
    /// simulator's, and the simulator checks that each `woken` answers a wake it made
    /// for that very connection: a wake for a closed connection reaching the next one
    /// in the same slot is caught. The default, `true`, leaves that check off.
    fn handler_wakes(&self) -> bool {
        true
    }

    /// What answers the handler's outbound connections, asked once when a run starts:
    /// `None` (the default) for the simulator's echo servers, or scripted backends
    /// (see [`Backends`](crate::Backends)), such as a [`RespServer`](crate::RespServer)
    /// for a model of a Redis proxy. The model presumes the servers it names.
    fn backends(&mut self) -> Option<Box<dyn crate::Backends>> {
        None
    }

    /// The other ends of transformed connections (TLS), asked once when a run
    /// starts: `None` (the default) for plain clients, or what makes a
    /// [`ClientTransport`](crate::ClientTransport) for each client that connects
    /// (see [`Transformed`](crate::Transformed)). The model then sees plaintext.
    fn client_transports(&mut self) -> Option<Box<dyn crate::ClientTransports>> {
        None
    }
}

/// A model's objection to what a client received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelError {
    /// Offset in the client's received stream where things went wrong.
    pub offset: u64,
    /// What was wrong.
    pub detail: String,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at received byte {}: {}", self.offset, self.detail)
    }
}

impl std::error::Error for ModelError {}

/// The model of an echo handler (such as `evio_handlers::echo::Echo`, the example
/// servers' echo): the client receives exactly what it sent, in order.
#[derive(Clone, Copy, Debug, Default)]
pub struct EchoModel;

/// [`EchoModel`]'s state for one connection.
#[derive(Clone, Debug, Default)]
pub struct EchoConn {
    expected: VecDeque<u8>,
    received: u64,
}

impl Model for EchoModel {
    type Conn = EchoConn;

    fn input(&mut self, conn: &mut EchoConn, bytes: &[u8]) {
        conn.expected.extend(bytes);
    }

    fn output(&mut self, conn: &mut EchoConn, bytes: &[u8]) -> Result<(), ModelError> {
        for &b in bytes {
            match conn.expected.pop_front() {
                Some(e) if e == b => conn.received += 1,
                Some(e) => {
                    return Err(ModelError {
                        offset: conn.received,
                        detail: format!("expected byte {e:#04x}, got {b:#04x}"),
                    });
                }
                None => {
                    return Err(ModelError {
                        offset: conn.received,
                        detail: format!("got byte {b:#04x}, more than the client sent"),
                    });
                }
            }
        }
        Ok(())
    }

    fn owed(&self, conn: &EchoConn) -> usize {
        conn.expected.len()
    }

    fn handler_wakes(&self) -> bool {
        false
    }
}

/// The model of a relay (an L4 proxy) in front of the simulator's echo backends: every
/// client receives exactly the bytes it sent, in order, as from an echo server, except
/// that a client whose backend failed may be closed without the rest.
///
/// The simulator's backends echo what they read, so for a relay that forwards each
/// side's bytes to the other, in order and without loss, a client's stream comes back
/// to it whole: a byte dropped, duplicated or reordered in either direction shows as a
/// wrong byte at the client ([`Model::output`]). Connections the relay opened (its
/// backends) are checked end to end through their clients and owe nothing themselves.
///
/// What excuses a client closed with bytes still owed: its own end of stream (unless
/// [`RelayModel::half_close`], whose relay passes the end on and must deliver the
/// rest), or a backend that failed: a connect refused, never answered or reset, a
/// backend connection closed with an error, or a backend that ended its stream. The
/// simulator cannot see which client a backend served (that is in the relay's own
/// state), so failures are counted, not paired: each one excuses one client closed
/// afterwards with bytes owed. A relay that closes clients for no reason is caught
/// when no backend failure is there to excuse it; a relay that never closes the client
/// of a failed backend leaves it waiting, and the liveness phase catches it.
///
/// ```
/// use evio_sim::{Model, RelayModel};
///
/// let mut model = RelayModel::default();
/// let mut client = Default::default();
/// model.input(&mut client, b"ping");
/// model.output(&mut client, b"pi").unwrap();
/// assert_eq!(model.owed(&client), 2);
/// assert!(model.output(&mut client, b"x").is_err()); // not what it sent
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct RelayModel {
    /// The relay passes a client's end of stream on to its backend and keeps the
    /// client open for the rest of the answer (`Loop::shutdown_write`): a client's own
    /// end of stream excuses nothing.
    pub half_close: bool,
    /// Backend failures not yet used to excuse a client.
    excuses: usize,
    /// Backend failures seen in all.
    failures: usize,
}

impl RelayModel {
    /// A model for a relay that passes ends of stream on (see
    /// [`RelayModel::half_close`]).
    pub fn half_closing() -> Self {
        RelayModel {
            half_close: true,
            ..RelayModel::default()
        }
    }

    /// Backend failures seen so far (connects that failed, backends closed with an
    /// error or that ended their stream).
    pub fn failures(&self) -> usize {
        self.failures
    }

    fn failed(&mut self) {
        self.excuses += 1;
        self.failures += 1;
    }
}

/// [`RelayModel`]'s state for one connection.
#[derive(Clone, Debug, Default)]
pub struct RelayConn {
    /// A connection the relay opened (a backend's).
    pub outbound: bool,
    echo: EchoConn,
    /// The client ended its stream.
    input_ended: bool,
    /// Closed with bytes owed, excused by a backend failure.
    excused: bool,
}

impl Model for RelayModel {
    type Conn = RelayConn;

    fn opened(&mut self, conn: &mut RelayConn, info: &ConnInfo, _now: Instant) {
        conn.outbound = info.outbound;
    }

    fn input(&mut self, conn: &mut RelayConn, bytes: &[u8]) {
        if !conn.outbound {
            EchoModel.input(&mut conn.echo, bytes);
        }
    }

    fn output(&mut self, conn: &mut RelayConn, bytes: &[u8]) -> Result<(), ModelError> {
        if conn.outbound {
            return Ok(()); // judged at its client, once echoed
        }
        EchoModel.output(&mut conn.echo, bytes)
    }

    fn input_ended(&mut self, conn: &mut RelayConn) {
        if conn.outbound {
            self.failed();
        } else {
            conn.input_ended = true;
        }
    }

    fn closing(&mut self, conn: &mut RelayConn) {
        let owed = EchoModel.owed(&conn.echo);
        let own_end = conn.input_ended && !self.half_close;
        if !conn.outbound && owed > 0 && !own_end && self.excuses > 0 {
            self.excuses -= 1;
            conn.excused = true;
        }
    }

    fn closed(&mut self, conn: &mut RelayConn, outbound: bool, error: Option<CloseError>) {
        if outbound && error.is_some() {
            self.failed();
        }
        // A client that stopped being open before its backend failed (its own end of
        // stream, passed on) is excused when it closes.
        if !outbound && !conn.excused && EchoModel.owed(&conn.echo) > 0 && self.excuses > 0 {
            self.excuses -= 1;
            conn.excused = true;
        }
    }

    fn owed(&self, conn: &RelayConn) -> usize {
        let own_end = conn.input_ended && !self.half_close;
        if conn.outbound || conn.excused || own_end {
            0
        } else {
            EchoModel.owed(&conn.echo)
        }
    }

    fn handler_wakes(&self) -> bool {
        false
    }
}
