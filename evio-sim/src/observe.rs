//! A transparent wrapper that records what a handler is asked and what it does.

use core::cell::RefCell;
use core::ops::Range;
use std::rc::Rc;

use evio_proto::{
    Action, CloseError, Conn, ConnId, ConnInfo, ConnState, Decoded, Detached, Duration, Events,
    Flow, Instant, Loop, PostKind, Refusal, Server, Tick, Transport, TransportError,
};

use crate::SimStream;

/// One handler callback, as [`Observed`] saw it.
///
/// `wrote` is how many bytes the handler appended to the connection's output during the
/// call (the change in [`Conn::pending`]); `input` indexes the observer's byte arena.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// `serving` ran.
    Serving {
        /// What it returned.
        flow: Flow,
    },
    /// `opened` ran.
    Opened {
        /// The connection.
        id: ConnId,
        /// Its listener and addresses, as the handler saw them.
        info: ConnInfo,
        /// The engine's time the handler saw (what `conn.now()` returned to it).
        now: Instant,
        /// Bytes written.
        wrote: usize,
        /// What it returned (after any injected action).
        action: Action,
    },
    /// `data` ran.
    Data {
        /// The connection.
        id: ConnId,
        /// Where the input is in the arena.
        input: Range<usize>,
        /// The engine's time the handler saw (what `conn.now()` returned to it).
        now: Instant,
        /// Bytes of it the handler consumed (what it passed to `consume`, or all).
        consumed: usize,
        /// Bytes written.
        wrote: usize,
        /// What it returned (after any injected action).
        action: Action,
    },
    /// `woken` ran.
    Woken {
        /// The connection.
        id: ConnId,
        /// The engine's time the handler saw (what `conn.now()` returned to it).
        now: Instant,
        /// Bytes written.
        wrote: usize,
        /// What it returned (after any injected action).
        action: Action,
    },
    /// `timeout` ran.
    Timeout {
        /// The connection.
        id: ConnId,
        /// The time it was given.
        now: Instant,
        /// Bytes written.
        wrote: usize,
        /// What it returned (after any injected action).
        action: Action,
    },
    /// `input_ended` ran: the peer ended its stream.
    InputEnded {
        /// The connection.
        id: ConnId,
        /// Bytes written.
        wrote: usize,
        /// What it returned (`None`: the connection stays open, half-closed).
        action: Action,
    },
    /// `drained` ran.
    Drained {
        /// The connection.
        id: ConnId,
        /// Bytes written.
        wrote: usize,
        /// What it returned (after any injected action).
        action: Action,
    },
    /// `server_woken` ran.
    ServerWoken {
        /// What it returned.
        flow: Flow,
    },
    /// `loop_message` ran (a server of several loops): a message from another loop.
    LoopMessage {
        /// The loop it came from.
        from: usize,
        /// What it returned.
        flow: Flow,
    },
    /// `post_refused` ran (a server of several loops): a post of this loop was refused.
    PostRefused {
        /// What it returned.
        flow: Flow,
    },
    /// `closed` ran.
    Closed {
        /// The connection.
        id: ConnId,
        /// It was an outbound connection (opened by `Loop::connect`, connected or not).
        outbound: bool,
        /// The error it was given.
        error: Option<CloseError>,
        /// What it returned.
        flow: Flow,
    },
    /// `detached` ran.
    Detached {
        /// The connection.
        id: ConnId,
        /// Whether the socket was taken (by the handler, or by the simulator's injection).
        taken: bool,
        /// What it returned.
        flow: Flow,
    },
    /// `prewrite` ran.
    Prewrite {
        /// The connection.
        id: ConnId,
        /// Bytes about to be attempted.
        attempted: usize,
    },
    /// `postwrite` ran.
    Postwrite {
        /// The connection.
        id: ConnId,
        /// Bytes written.
        written: usize,
        /// Bytes still pending.
        remaining: usize,
    },
    /// A callback for another connection (or for the server) wrote to this one
    /// through [`Loop`].
    WroteTo {
        /// The connection written to.
        id: ConnId,
        /// Bytes written.
        bytes: usize,
    },
    /// A callback for another connection (or for the server) found this one no longer
    /// open: a handler closed, detached or aborted it through [`Loop`], or the engine
    /// began to close it (an end of stream, an error) since the last look.
    NoLongerOpen {
        /// The connection.
        id: ConnId,
    },
    /// A callback for another connection (or for the server) aborted this one through
    /// [`Loop::abort`], open or already closing.
    AbortedThroughLoop {
        /// The connection.
        id: ConnId,
    },
    /// A connection's timeout changed (seen after a callback): when it fires, if set.
    TimeoutSet {
        /// The connection.
        id: ConnId,
        /// Its deadline.
        at: Option<Instant>,
    },
    /// `tick` ran.
    Tick {
        /// The time it was given.
        now: Instant,
        /// What it returned.
        tick: Tick,
    },
    /// The handler's transport decoded a transformed connection's bytes.
    Decoded {
        /// The connection.
        id: ConnId,
        /// Where the plaintext decoded is in the arena.
        plain: Range<usize>,
        /// Bytes of an incomplete record it kept.
        kept: usize,
        /// The peer's closing message came: its stream ended.
        ended: bool,
    },
    /// The handler's transport failed a transformed connection.
    TransportFailed {
        /// The connection.
        id: ConnId,
        /// How.
        error: TransportError,
    },
}

/// An action the simulator asks [`Observed`] to substitute for the handler's own
/// [`Action::None`], standing for a handler that decides to close, detach or shut down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injection {
    /// Return `Close` from the next call for this connection that leaves output pending.
    Close(ConnId),
    /// Return `Detach` from the next call for this connection; the simulator's
    /// `detached` then takes the socket if `take` and the handler did not.
    Detach {
        /// The connection.
        id: ConnId,
        /// Take the socket when the handler does not.
        take: bool,
    },
    /// Return `Shutdown` from the next `data` call that leaves output pending.
    Shutdown,
}

/// What an [`Observed`] handler recorded, shared with whoever watches it: the
/// simulator reads it while an engine operation is still outstanding (when the engine,
/// and the handler in it, cannot be reached).
#[derive(Debug, Default)]
pub struct Recording {
    log: Vec<Observation>,
    arena: Vec<u8>,
    fired: Vec<Injection>,
}

impl Recording {
    /// Takes the observations recorded since the last call, with the arena their input
    /// ranges point into, and the injections that fired. The caller hands the vectors
    /// back with [`Recording::recycle`] so recording does not allocate in steady state.
    pub fn take(&mut self) -> (Vec<Observation>, Vec<u8>, Vec<Injection>) {
        (
            core::mem::take(&mut self.log),
            core::mem::take(&mut self.arena),
            core::mem::take(&mut self.fired),
        )
    }

    /// Returns emptied vectors from [`Recording::take`] for reuse.
    pub fn recycle(
        &mut self,
        mut log: Vec<Observation>,
        mut arena: Vec<u8>,
        mut fired: Vec<Injection>,
    ) {
        log.clear();
        arena.clear();
        fired.clear();
        if self.log.is_empty() {
            self.log = log;
        }
        if self.arena.is_empty() {
            self.arena = arena;
        }
        if self.fired.is_empty() {
            self.fired = fired;
        }
    }
}

/// What [`Observed`] last saw of a connection the handler can reach through [`Loop`]:
/// a handler's writes to, closes of and timeouts for other connections are found by
/// comparing with it after each callback.
#[derive(Clone, Copy, Debug)]
struct Seen {
    id: ConnId,
    /// Output pending, as of the last callback or `postwrite`.
    pending: usize,
    open: bool,
    timeout: Option<Instant>,
    /// Being reset, as of the last look.
    aborting: bool,
}

/// Wraps a handler: forwards every callback unchanged and records it.
///
/// The simulator runs the production handler inside this wrapper; it only watches,
/// except where the simulator arms an [`Injection`] (a handler returning `Close`,
/// `Detach` or `Shutdown` on its own is something any handler may do, so this tests the
/// engine's side of it, not a different handler).
#[derive(Debug)]
pub struct Observed<H> {
    inner: H,
    rec: Rc<RefCell<Recording>>,
    injections: Vec<Injection>,
    take_on_detach: Vec<ConnId>,
    ticker: Option<Duration>,
    /// The handler's `tick` returned no delay and `ticker` took over.
    inner_stopped: bool,
    /// Every connection opened and not yet ended, in the order they opened.
    seen: Vec<Seen>,
    /// What the handler's transport kept of each transformed connection's bytes at
    /// its last decode (its `kept` takes `&self`, and the inner transport is reached
    /// only mutably).
    kept: Vec<(ConnId, usize)>,
    /// The handler's transport's smallest input buffer, as of the last look.
    min_input: usize,
}

impl<H> Observed<H> {
    /// Wraps `inner`.
    pub fn new(inner: H) -> Self {
        Observed {
            inner,
            rec: Rc::default(),
            injections: Vec::new(),
            take_on_detach: Vec::new(),
            ticker: None,
            inner_stopped: false,
            seen: Vec::new(),
            kept: Vec::new(),
            min_input: 0,
        }
    }

    /// A ticker that takes over once the handler's `tick` returns no delay: the engine
    /// gets `every` instead, and the ticks that follow are answered here, without
    /// calling the handler's `tick` again. `None` (the default) leaves the handler's
    /// schedule alone.
    pub fn set_ticker(&mut self, every: Option<Duration>) {
        self.ticker = every;
    }

    /// The wrapped handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }

    /// The wrapped handler, mutably.
    pub fn inner_mut(&mut self) -> &mut H {
        &mut self.inner
    }

    /// Arms an injection (at most one per connection and one shutdown at a time).
    pub fn arm(&mut self, injection: Injection) {
        let clash = self.injections.iter().any(|i| match (i, &injection) {
            (Injection::Shutdown, Injection::Shutdown) => true,
            (Injection::Close(a), Injection::Close(b))
            | (Injection::Close(a), Injection::Detach { id: b, .. })
            | (Injection::Detach { id: a, .. }, Injection::Close(b))
            | (Injection::Detach { id: a, .. }, Injection::Detach { id: b, .. }) => a == b,
            _ => false,
        });
        if !clash {
            self.injections.push(injection);
        }
    }

    /// Drops every armed injection (the liveness phase runs without faults).
    pub fn disarm(&mut self) {
        self.injections.clear();
    }

    /// What this wrapper records, shared: read it with [`Recording::take`].
    pub fn recording(&self) -> Rc<RefCell<Recording>> {
        self.rec.clone()
    }

    fn push(&self, o: Observation) {
        self.rec.borrow_mut().log.push(o);
    }

    fn inject(&mut self, id: ConnId, action: Action, pending: usize, in_data: bool) -> Action {
        if action != Action::None {
            return action;
        }
        let pos = self.injections.iter().position(|i| match *i {
            Injection::Close(c) => c == id && pending > 0,
            Injection::Detach { id: c, .. } => c == id,
            Injection::Shutdown => in_data && pending > 0,
        });
        let Some(pos) = pos else {
            return action;
        };
        let injection = self.injections.remove(pos);
        self.rec.borrow_mut().fired.push(injection);
        if let Injection::Detach { id, take: true } = injection {
            self.take_on_detach.push(id);
        }
        match injection {
            Injection::Close(_) => Action::Close,
            Injection::Detach { .. } => Action::Detach,
            Injection::Shutdown => Action::Shutdown,
        }
    }

    /// After a callback for `conn` that returned `action`: records what changed for
    /// it and, through [`Loop`], for every other connection.
    fn after_conn<C>(&mut self, conn: &mut Conn<'_, C>, action: Action) {
        let id = conn.id();
        let (pending, timeout) = (conn.pending(), conn.timeout_at());
        let open = matches!(action, Action::None | Action::Shutdown);
        let at = match self.seen.iter().position(|s| s.id == id) {
            Some(at) => at,
            None => {
                self.seen.push(Seen {
                    id,
                    pending,
                    open,
                    timeout: None,
                    aborting: false,
                });
                self.seen.len() - 1
            }
        };
        // A handler may abort its own connection through its `Loop` (a room that
        // cuts off the member whose callback runs).
        let aborting = conn.others().state(id) == Some(ConnState::Aborting);
        let s = &mut self.seen[at];
        s.pending = pending;
        s.open = open;
        let newly_aborting = aborting && !s.aborting;
        s.aborting = aborting;
        if s.timeout != timeout {
            s.timeout = timeout;
            self.push(Observation::TimeoutSet { id, at: timeout });
        }
        if newly_aborting {
            self.push(Observation::AbortedThroughLoop { id });
        }
        self.look(conn.others(), Some(id));
    }

    /// Compares every connection but `current` with what the loop says of it now.
    fn look<C>(&mut self, lp: &Loop<'_, C>, current: Option<ConnId>) {
        let mut rec = self.rec.borrow_mut();
        for s in self.seen.iter_mut().filter(|s| Some(s.id) != current) {
            if let Some(pending) = lp.pending(s.id) {
                if pending > s.pending {
                    rec.log.push(Observation::WroteTo {
                        id: s.id,
                        bytes: pending - s.pending,
                    });
                }
                s.pending = pending;
            }
            if s.open && !lp.is_open(s.id) {
                s.open = false;
                rec.log.push(Observation::NoLongerOpen { id: s.id });
            }
            let aborting = lp.state(s.id) == Some(ConnState::Aborting);
            if aborting && !s.aborting {
                rec.log.push(Observation::AbortedThroughLoop { id: s.id });
            }
            s.aborting = aborting;
            let timeout = lp.timeout_at(s.id);
            if s.open && s.timeout != timeout {
                s.timeout = timeout;
                rec.log.push(Observation::TimeoutSet {
                    id: s.id,
                    at: timeout,
                });
            }
        }
    }

    /// A post from another loop landed on `id` outside any callback
    /// (`Engine::handle_post`): what [`Observed::look`] would have seen of it, from
    /// the connection's output `pending` after it and whether it is `open` and
    /// `aborting`.
    pub(crate) fn post_landed(&mut self, id: ConnId, pending: usize, open: bool, aborting: bool) {
        let mut rec = self.rec.borrow_mut();
        let Some(s) = self.seen.iter_mut().find(|s| s.id == id) else {
            return;
        };
        if pending > s.pending {
            rec.log.push(Observation::WroteTo {
                id,
                bytes: pending - s.pending,
            });
        }
        s.pending = pending;
        if s.open && !open {
            s.open = false;
            rec.log.push(Observation::NoLongerOpen { id });
        }
        if aborting && !s.aborting {
            rec.log.push(Observation::AbortedThroughLoop { id });
        }
        s.aborting = aborting;
    }

    /// `id` ended (`closed`, or `detached` took its socket): forget it.
    fn forget(&mut self, id: ConnId) {
        self.seen.retain(|s| s.id != id);
    }
}

impl<H: Events> Observed<H> {
    /// The handler's transport: the engine asks this wrapper's only after its
    /// `transport` said there is one.
    fn inner_transport(&mut self) -> &mut dyn Transport {
        self.inner
            .transport()
            .expect("the engine uses a transport only when the handler has one")
    }

    fn transport_failed(&self, id: ConnId, error: TransportError) {
        self.push(Observation::TransportFailed { id, error });
    }
}

/// The handler's transport, watched: what it decodes (the plaintext a transformed
/// connection's handler is given) and how it fails are recorded.
impl<H: Events> Transport for Observed<H> {
    fn start(&mut self, info: &ConnInfo) -> Result<bool, TransportError> {
        let started = self.inner_transport().start(info);
        if let Err(error) = started {
            self.transport_failed(info.id, error);
        }
        started
    }

    fn decode(&mut self, id: ConnId, bytes: &mut [u8]) -> Result<Decoded, TransportError> {
        let decoded = match self.inner_transport().decode(id, bytes) {
            Ok(decoded) => decoded,
            Err(error) => {
                self.transport_failed(id, error);
                return Err(error);
            }
        };
        match self.kept.iter_mut().find(|(k, _)| *k == id) {
            Some(entry) => entry.1 = decoded.kept,
            None => self.kept.push((id, decoded.kept)),
        }
        let mut rec = self.rec.borrow_mut();
        let start = rec.arena.len();
        rec.arena.extend_from_slice(&bytes[..decoded.plain]);
        rec.log.push(Observation::Decoded {
            id,
            plain: start..start + decoded.plain,
            kept: decoded.kept,
            ended: decoded.ended,
        });
        Ok(decoded)
    }

    fn kept(&self, id: ConnId) -> usize {
        self.kept
            .iter()
            .find(|(k, _)| *k == id)
            .map_or(0, |&(_, kept)| kept)
    }

    fn encode(&mut self, id: ConnId, plain: &[u8]) -> Result<usize, TransportError> {
        let taken = self.inner_transport().encode(id, plain);
        if let Err(error) = taken {
            self.transport_failed(id, error);
        }
        taken
    }

    fn outgoing(&mut self, id: ConnId) -> &[u8] {
        self.inner_transport().outgoing(id)
    }

    fn sent(&mut self, id: ConnId, n: usize) {
        self.inner_transport().sent(id, n);
    }

    fn established(&mut self, id: ConnId) -> bool {
        self.inner_transport().established(id)
    }

    fn close(&mut self, id: ConnId) {
        self.inner_transport().close(id);
    }

    fn end(&mut self, id: ConnId) {
        self.inner_transport().end(id);
        self.kept.retain(|(k, _)| *k != id);
    }

    fn min_input(&self) -> usize {
        self.min_input
    }
}

impl<H: Events> Events for Observed<H> {
    type Context = H::Context;

    fn transport(&mut self) -> Option<&mut dyn Transport> {
        self.min_input = self.inner.transport()?.min_input();
        Some(self)
    }

    fn serving(&mut self, server: Server<'_>) -> Flow {
        let flow = self.inner.serving(server);
        self.push(Observation::Serving { flow });
        flow
    }

    fn opened(&mut self, conn: &mut Conn<'_, Self::Context>) -> Action {
        // An outbound connection's output so far was written while it connected
        // (through `Loop`, unseen here): none of it can have been sent yet, so all of
        // it counts as written now.
        let before = if conn.info().outbound {
            0
        } else {
            conn.pending()
        };
        let action = self.inner.opened(conn);
        let wrote = conn.pending().wrapping_sub(before);
        let action = self.inject(conn.id(), action, conn.pending(), false);
        self.push(Observation::Opened {
            id: conn.id(),
            info: *conn.info(),
            now: conn.now(),
            wrote,
            action,
        });
        self.after_conn(conn, action);
        action
    }

    fn data(&mut self, conn: &mut Conn<'_, Self::Context>, input: &[u8]) -> Action {
        let start = {
            let mut rec = self.rec.borrow_mut();
            rec.arena.extend_from_slice(input);
            rec.arena.len() - input.len()
        };
        let before = conn.pending();
        let action = self.inner.data(conn, input);
        let wrote = conn.pending().wrapping_sub(before);
        let action = self.inject(conn.id(), action, conn.pending(), true);
        let consumed = conn.consumed().unwrap_or(input.len()).min(input.len());
        self.push(Observation::Data {
            id: conn.id(),
            input: start..start + input.len(),
            now: conn.now(),
            consumed,
            wrote,
            action,
        });
        self.after_conn(conn, action);
        action
    }

    fn woken(&mut self, conn: &mut Conn<'_, Self::Context>) -> Action {
        let before = conn.pending();
        let action = self.inner.woken(conn);
        let wrote = conn.pending().wrapping_sub(before);
        let action = self.inject(conn.id(), action, conn.pending(), false);
        self.push(Observation::Woken {
            id: conn.id(),
            now: conn.now(),
            wrote,
            action,
        });
        self.after_conn(conn, action);
        action
    }

    fn timeout(&mut self, conn: &mut Conn<'_, Self::Context>) -> Action {
        // The engine takes the deadline off before the call: one that is set again
        // (even to the same instant) is a new setting.
        if let Some(s) = self.seen.iter_mut().find(|s| s.id == conn.id()) {
            s.timeout = None;
        }
        let before = conn.pending();
        let action = self.inner.timeout(conn);
        let wrote = conn.pending().wrapping_sub(before);
        let action = self.inject(conn.id(), action, conn.pending(), false);
        self.push(Observation::Timeout {
            id: conn.id(),
            now: conn.now(),
            wrote,
            action,
        });
        self.after_conn(conn, action);
        action
    }

    fn input_ended(&mut self, conn: &mut Conn<'_, Self::Context>) -> Action {
        let before = conn.pending();
        let action = self.inner.input_ended(conn);
        let wrote = conn.pending().wrapping_sub(before);
        self.push(Observation::InputEnded {
            id: conn.id(),
            wrote,
            action,
        });
        self.after_conn(conn, action);
        action
    }

    fn drained(&mut self, conn: &mut Conn<'_, Self::Context>) -> Action {
        let before = conn.pending();
        let action = self.inner.drained(conn);
        let wrote = conn.pending().wrapping_sub(before);
        let action = self.inject(conn.id(), action, conn.pending(), false);
        self.push(Observation::Drained {
            id: conn.id(),
            wrote,
            action,
        });
        self.after_conn(conn, action);
        action
    }

    fn server_woken(&mut self, others: &mut Loop<'_, Self::Context>) -> Flow {
        let flow = self.inner.server_woken(others);
        self.push(Observation::ServerWoken { flow });
        self.look(others, None);
        flow
    }

    fn loop_message(
        &mut self,
        others: &mut Loop<'_, Self::Context>,
        from: usize,
        bytes: &[u8],
    ) -> Flow {
        let flow = self.inner.loop_message(others, from, bytes);
        self.push(Observation::LoopMessage { from, flow });
        self.look(others, None);
        flow
    }

    fn post_refused(
        &mut self,
        others: &mut Loop<'_, Self::Context>,
        to: ConnId,
        kind: PostKind,
        len: usize,
        why: Refusal,
    ) -> Flow {
        let flow = self.inner.post_refused(others, to, kind, len, why);
        self.push(Observation::PostRefused { flow });
        self.look(others, None);
        flow
    }

    fn closed(
        &mut self,
        info: &ConnInfo,
        context: Self::Context,
        error: Option<CloseError>,
        others: &mut Loop<'_, Self::Context>,
    ) -> Flow {
        let flow = self.inner.closed(info, context, error, others);
        self.push(Observation::Closed {
            id: info.id,
            outbound: info.outbound,
            error,
            flow,
        });
        self.forget(info.id);
        self.look(others, None);
        flow
    }

    fn detached(
        &mut self,
        info: &ConnInfo,
        context: &mut Self::Context,
        mut socket: Detached<'_>,
        others: &mut Loop<'_, Self::Context>,
    ) -> Flow {
        let flow = self
            .inner
            .detached(info, context, socket.reborrow(), others);
        let take = match self.take_on_detach.iter().position(|&id| id == info.id) {
            Some(pos) => {
                self.take_on_detach.swap_remove(pos);
                true
            }
            None => false,
        };
        if take && socket.holds_socket() {
            // The simulator's stand-in for a handler that keeps the socket.
            let _ = socket.take::<SimStream>();
        }
        let taken = !socket.holds_socket();
        self.push(Observation::Detached {
            id: info.id,
            taken,
            flow,
        });
        if taken {
            self.forget(info.id);
        }
        self.look(others, None);
        flow
    }

    fn prewrite(&mut self, id: ConnId, attempted: usize) {
        self.inner.prewrite(id, attempted);
        self.push(Observation::Prewrite { id, attempted });
    }

    fn postwrite(&mut self, id: ConnId, written: usize, remaining: usize) {
        self.inner.postwrite(id, written, remaining);
        if let Some(s) = self.seen.iter_mut().find(|s| s.id == id) {
            s.pending = remaining;
        }
        self.push(Observation::Postwrite {
            id,
            written,
            remaining,
        });
    }

    fn tick(&mut self, others: &mut Loop<'_, Self::Context>) -> Tick {
        let now = others.now();
        let tick = if self.inner_stopped {
            Tick {
                delay: self.ticker,
                flow: Flow::Continue,
            }
        } else {
            let tick = self.inner.tick(others);
            if tick.delay.is_none() && self.ticker.is_some() {
                self.inner_stopped = true;
                Tick {
                    delay: self.ticker,
                    flow: tick.flow,
                }
            } else {
                tick
            }
        };
        self.push(Observation::Tick { now, tick });
        self.look(others, None);
        tick
    }
}
