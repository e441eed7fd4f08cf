//! The oracle: the per-connection shadow state the simulator keeps beside the engine,
//! and every check of the engine's outputs and of the handler's callbacks against the
//! network, the contract and the [`Model`].
//!
//! The oracle decides nothing about the run; it watches. The driver tells it what it
//! performed and reported, the observed handler tells it what ran, and each check says
//! which [`Rule`] (or which [`Violation`] variant) broke. The ticker's rules are in
//! [`crate::tick`].

use evio_proto::{
    Action, Addr, CloseError, Config, ConnId, ConnInfo, Flow, Instant, IoError, ListenerId,
    Readiness,
};

use crate::network::{Network, listen_addr, peer_addr};
use crate::observe::{Injection, Observation};
use crate::tick::TickOracle;
use crate::{Model, Rule, Violation};

/// What the oracle knows of one client's connection beyond its socket.
#[derive(Debug, Default)]
pub(crate) struct Shadow<C> {
    /// Bytes the server read; those the handler has not consumed yet start at
    /// `delivered[handler_pos]`, and `delivered_base` bytes were trimmed from the front.
    delivered: Vec<u8>,
    delivered_base: u64,
    handler_pos: usize,
    /// `opened` ran.
    pub opened: bool,
    /// `closed` ran, or `detached` took the socket.
    pub ended: bool,
    /// `detached` took the socket.
    pub detached: bool,
    /// The driver reported an I/O error.
    pub io_failed: bool,
    /// The driver reported the end of the stream.
    pub eof_reported: bool,
    /// The I/O error the driver reported first.
    io_error: Option<IoError>,
    /// Bytes the last `data` call was given.
    last_input: usize,
    /// `closed` reported an error (an I/O error or a frame too large).
    pub errored: bool,
    /// The handler returned `Close` or `Detach` for this connection.
    pub leaving: bool,
    /// An injected action (close or detach) fired for this connection.
    pub injected: bool,
    /// Bytes the handler wrote in all.
    pub queued: u64,
    /// Bytes the socket took in all.
    pub transmitted: u64,
    /// The last write was short or would block.
    last_write_short: bool,
    /// The last write was short or would block and no writable (or hang-up) readiness
    /// was reported since: the engine must not read (backpressure).
    write_blocked: bool,
    /// A hang-up was reported and no read has found the socket empty since: the
    /// engine may read to learn whether the peer ended or failed, blocked or not.
    hup_unread: bool,
    /// Bytes the last `prewrite` announced.
    attempted: usize,
    /// `Transmit` outputs, `prewrite` and `postwrite` calls: one of each per write.
    transmits: u64,
    prewrites: u64,
    postwrites: u64,
    /// The simulator made a wake for this connection that `woken` has not answered.
    wake_owed: bool,
    /// A callback for another connection (or the server) found it no longer open: a
    /// handler may have closed, detached or aborted it through `Loop`.
    pub cross_ended: bool,
    /// Its own handler returned `Abort`.
    abort_asked: bool,
    /// The engine aborted it: its pending output was discarded.
    pub aborted: bool,
    /// The engine shut its sending side for a lingering close.
    pub lingering: bool,
    /// Its timeout as last seen (when it fires), and the clock when it was set.
    timeout: Option<(Instant, Instant)>,
    /// The engine may hold a deadline for it (a timeout was set, or it lingers).
    deadline_possible: bool,
    /// The model was told it is no longer open.
    closing_told: bool,
    /// The model's state for the connection.
    pub model: C,
}

impl<C> Shadow<C> {
    /// Bytes the handler wrote that the socket has not taken.
    pub fn unsent(&self) -> u64 {
        self.queued - self.transmitted.min(self.queued)
    }

    /// Bytes the server read in all.
    pub fn delivered(&self) -> u64 {
        self.delivered_base + self.delivered.len() as u64
    }

    /// The handler wrote `wrote` bytes in a callback.
    fn wrote(&mut self, wrote: usize) {
        self.queued += wrote as u64;
        if wrote > 0 {
            self.last_write_short = false;
        }
    }
}

/// What the oracle knows of one listener.
#[derive(Debug, Default)]
struct ListenerShadow {
    /// An EMFILE was reported: the engine must pause this listener before it accepts
    /// on it again.
    must_pause: bool,
    /// `Accept` outputs since the last readiness report or `ResumeAccept`: at most
    /// `accept_batch`, so a flood of connections cannot starve the others.
    accepts: u32,
}

/// The oracle of one run.
#[derive(Debug)]
pub(crate) struct Oracle<M: Model> {
    model: M,
    conns: Vec<Shadow<M::Conn>>,
    /// The client whose connection holds each engine slot, from its accept until its
    /// `closed` or `detached`.
    by_slot: Vec<Option<usize>>,
    listeners: Vec<ListenerShadow>,
    engine: Config,
    /// A handler returned `Shutdown`.
    pub shutting_down: bool,
    /// The connection whose handler returned `Shutdown` first (`None`: the server's).
    trigger: Option<usize>,
    /// A server wake was accepted that `server_woken` has not answered.
    server_wake_owed: bool,
    /// The ticker's contract.
    pub tick: TickOracle,
}

impl<M: Model> Oracle<M> {
    /// An oracle for an engine built with `engine` and `listeners` listeners, checking
    /// clients' output with `model`.
    pub fn new(model: M, engine: Config, listeners: usize) -> Self {
        Oracle {
            model,
            conns: Vec::new(),
            by_slot: vec![None; engine.max_connections],
            listeners: (0..listeners).map(|_| ListenerShadow::default()).collect(),
            tick: TickOracle::new(engine.min_tick),
            engine,
            shutting_down: false,
            trigger: None,
            server_wake_owed: false,
        }
    }

    /// The shadow of client `ci`'s connection.
    pub fn conn(&self, ci: usize) -> &Shadow<M::Conn> {
        &self.conns[ci]
    }

    /// Every client's shadow, in client order.
    pub fn conns(&self) -> &[Shadow<M::Conn>] {
        &self.conns
    }

    /// Bytes the model says client `ci` is still owed.
    pub fn owed(&self, ci: usize) -> usize {
        self.model.owed(&self.conns[ci].model)
    }

    /// A new client connected.
    pub fn connected(&mut self) {
        self.conns.push(Shadow::default());
    }

    /// The client whose connection `id` is, while it has not ended.
    pub fn client_of(&self, net: &Network, id: ConnId) -> Option<usize> {
        let ci = (*self.by_slot.get(id.slot())?)?;
        (net.sockets[ci].id == Some(id)).then_some(ci)
    }

    /// The model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// A deadline other than the tick's may be among the engine's: a listener's
    /// back-off (an EMFILE was reported on it, or it is paused), or a connection's
    /// timeout or lingering close.
    pub fn other_deadline_possible(&self, net: &Network) -> bool {
        self.listeners.iter().any(|l| l.must_pause)
            || net.listeners.iter().any(|l| !l.watched)
            || self.conns.iter().any(|c| c.deadline_possible && !c.ended)
    }

    /// The connection is open as far as anything the oracle saw can tell: nothing has
    /// started its close or detach.
    fn surely_open(&self, c: &Shadow<M::Conn>, server_closed: bool) -> bool {
        c.opened
            && !c.ended
            && !server_closed
            && !c.leaving
            && !c.cross_ended
            && !c.lingering
            && !c.aborted
            && !c.eof_reported
            && !c.io_failed
            // A full input buffer may have been a frame too large.
            && c.last_input < self.engine.input_capacity
    }

    // ----- the client's side ---------------------------------------------------------

    /// Client `ci` received `bytes`: the model must allow them.
    pub fn received(&mut self, ci: usize, bytes: &[u8]) -> Result<(), Violation> {
        let c = &mut self.conns[ci];
        self.model
            .output(&mut c.model, bytes)
            .map_err(|error| Violation::Model { client: ci, error })
    }

    /// A wake for client `ci`'s connection `id` was made; `accepted` is what the waker
    /// said. A wake for a connection whose socket is closed must be refused.
    pub fn wake_made(
        &mut self,
        net: &Network,
        ci: usize,
        id: ConnId,
        accepted: bool,
    ) -> Result<(), Violation> {
        if accepted && net.sockets[ci].server_closed {
            return Err(Violation::WakeAccepted(id));
        }
        self.conns[ci].wake_owed |= accepted;
        Ok(())
    }

    /// "Another thread" woke client `ci`'s connection, racing the loop.
    pub fn wake_raced(&mut self, ci: usize, accepted: bool) {
        self.conns[ci].wake_owed |= accepted;
    }

    /// Right after the loop handled wakes: every wake the simulator made for a
    /// connection that is surely still open (nothing the simulator saw can have started
    /// its close or detach) reached `woken`.
    pub fn check_wakes_delivered(&self, net: &Network) -> Result<(), Violation> {
        if self.shutting_down {
            return Ok(());
        }
        if self.server_wake_owed {
            return Err(Violation::contract(
                None,
                Rule::ServerWake,
                "an accepted server wake did not reach `server_woken` when the loop handled \
                 wakes"
                    .into(),
            ));
        }
        for (c, s) in self.conns.iter().zip(&net.sockets) {
            if c.wake_owed && self.surely_open(c, s.server_closed) {
                return Err(Violation::contract(
                    s.id,
                    Rule::WakeDelivered,
                    "a wake accepted for this open connection did not reach `woken` when the \
                     loop handled wakes"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// A server wake was made; `accepted` is what the waker said.
    pub fn server_wake_made(&mut self, accepted: bool) {
        self.server_wake_owed |= accepted;
    }

    /// At the end of a step whose loop ran at `clock`, the engine's earliest deadline
    /// being `deadline`: every open connection's timeout is among the engine's
    /// deadlines, and one that was due when the loop ran has fired.
    pub fn check_timeouts_due(
        &self,
        net: &Network,
        deadline: Option<Instant>,
        clock: Instant,
    ) -> Result<(), Violation> {
        for (c, s) in self.conns.iter().zip(&net.sockets) {
            let Some((at, set)) = c.timeout else {
                continue;
            };
            if !self.surely_open(c, s.server_closed) {
                continue;
            }
            // One set during this round for now fires at the next turn of the loop.
            if at <= clock && set < clock {
                return Err(Violation::contract(
                    s.id,
                    Rule::TimeoutFired,
                    format!("its timeout for {at} has not fired, and the loop ran at {clock}"),
                ));
            }
            if deadline.is_none_or(|d| d > at) {
                return Err(Violation::contract(
                    s.id,
                    Rule::TimeoutScheduled,
                    format!(
                        "its timeout is for {at}, but the engine's next deadline is {deadline:?}"
                    ),
                ));
            }
        }
        Ok(())
    }

    // ----- the engine's outputs --------------------------------------------------------

    /// The engine asked for `output` on connection `id`: the driver must still have
    /// its socket.
    pub fn live_output(
        &self,
        net: &Network,
        id: ConnId,
        output: &'static str,
    ) -> Result<usize, Violation> {
        match self.client_of(net, id) {
            Some(ci) if net.sockets[ci].registered() => Ok(ci),
            _ => Err(Violation::OutputForDeadConnection { id, output }),
        }
    }

    /// The poller reported `listener` readable: a new batch of accepts may follow.
    pub fn listener_reported(&mut self, listener: usize) {
        self.listeners[listener].accepts = 0;
    }

    /// The engine asked to accept on `listener`.
    pub fn check_accept(&mut self, net: &Network, listener: usize) -> Result<(), Violation> {
        let batch = self.engine.accept_batch;
        let l = &mut self.listeners[listener];
        l.accepts += 1;
        if l.accepts > batch {
            return Err(Violation::contract(
                None,
                Rule::AcceptBatch,
                format!(
                    "{} accepts on listener {listener} for one readiness report (accept_batch \
                     is {batch})",
                    l.accepts
                ),
            ));
        }
        if l.must_pause {
            return Err(Violation::contract(
                None,
                Rule::AcceptBackoff,
                format!(
                    "accept on listener {listener} again right after EMFILE, without a back-off"
                ),
            ));
        }
        if !net.listeners[listener].watched {
            return Err(Violation::contract(
                None,
                Rule::AcceptWhilePaused,
                format!("accept on listener {listener} while it is paused"),
            ));
        }
        Ok(())
    }

    /// The driver is about to report an accept failure on `listener` that the engine
    /// must answer with a back-off.
    pub fn accept_exhausted(&mut self, listener: usize) {
        self.listeners[listener].must_pause = true;
    }

    /// The engine paused `listener`.
    pub fn paused(&mut self, listener: usize) {
        self.listeners[listener].must_pause = false;
    }

    /// The engine resumed `listener`: a new batch of accepts may follow.
    pub fn resumed(&mut self, listener: usize) {
        self.listeners[listener].accepts = 0;
    }

    /// The engine accepted client `ci` as `id`: the slot must be free.
    pub fn accepted(&mut self, net: &Network, ci: usize, id: ConnId) -> Result<(), Violation> {
        if let Some(other) = self.by_slot[id.slot()]
            && !self.conns[other].ended
        {
            return Err(Violation::contract(
                net.sockets[other].id,
                Rule::SlotReuse,
                format!(
                    "its slot went to a new connection {id} before `closed` or `detached` ran for it"
                ),
            ));
        }
        self.by_slot[id.slot()] = Some(ci);
        Ok(())
    }

    /// The poller reported `readiness` for client `ci`.
    pub fn readiness_reported(&mut self, ci: usize, readiness: Readiness) {
        let c = &mut self.conns[ci];
        if readiness.writable || readiness.hangup {
            c.write_blocked = false;
        }
        c.hup_unread |= readiness.hangup;
    }

    /// The engine asked to read client `ci`'s connection `id`: not while its output is
    /// blocked, unless a hang-up asks for it. Returns whether a hang-up was unanswered
    /// (the read answers it, unless it fills the buffer; see [`Oracle::read_data`]).
    pub fn check_read(&mut self, ci: usize, id: ConnId) -> Result<bool, Violation> {
        let c = &mut self.conns[ci];
        if c.write_blocked && c.queued > c.transmitted && !c.hup_unread {
            return Err(Violation::contract(
                Some(id),
                Rule::Backpressure,
                format!(
                    "read while {} bytes of output are blocked (no writable or hang-up report \
                     since the last short write): backpressure ignored",
                    c.queued - c.transmitted
                ),
            ));
        }
        Ok(core::mem::take(&mut c.hup_unread))
    }

    /// The driver is about to report that a read on client `ci` returned `bytes` into
    /// a buffer of `capacity`, after a hang-up was unanswered if `hangup`: a read that
    /// fills the buffer may leave more behind, anything else answers the hang-up.
    pub fn read_data(&mut self, ci: usize, bytes: &[u8], capacity: usize, hangup: bool) {
        let c = &mut self.conns[ci];
        c.hup_unread = hangup && bytes.len() == capacity;
        if c.lingering {
            // Read only to let the peer finish, and discarded: no handler sees it.
            return;
        }
        c.delivered.extend_from_slice(bytes);
        self.model.input(&mut c.model, bytes);
    }

    /// The driver is about to report the end of client `ci`'s stream.
    pub fn eof_reported(&mut self, ci: usize) {
        self.conns[ci].eof_reported = true;
        self.closing(ci);
    }

    /// Client `ci`'s connection is no longer open (see [`Model::closing`]).
    fn closing(&mut self, ci: usize) {
        let c = &mut self.conns[ci];
        if c.opened && !c.closing_told {
            c.closing_told = true;
            self.model.closing(&mut c.model);
        }
    }

    /// The driver is about to report I/O error `e` for client `ci`.
    pub fn io_failed(&mut self, ci: usize, e: IoError) {
        let c = &mut self.conns[ci];
        if c.lingering {
            // A peer that resets a lingering close has read what it could: `closed`
            // keeps the reason the close had.
            return;
        }
        c.io_failed = true;
        c.io_error.get_or_insert(e);
        self.closing(ci);
    }

    /// The engine asked to transmit `len` bytes on client `ci`'s connection: exactly
    /// the output pending.
    pub fn check_transmit(&mut self, ci: usize, len: usize) -> Result<(), Violation> {
        let c = &mut self.conns[ci];
        if c.lingering {
            return Err(Violation::contract(
                None,
                Rule::LingerQuiet,
                format!("client c{ci}: transmit of {len} bytes after its sending side was shut"),
            ));
        }
        c.transmits += 1;
        if c.transmits != c.prewrites {
            return Err(Violation::accounting(
                ci,
                Rule::PrewritePerTransmit,
                format!("transmit #{} after {} prewrites", c.transmits, c.prewrites),
            ));
        }
        let pending = c.queued.wrapping_sub(c.transmitted);
        if len == 0 || len as u64 != pending {
            return Err(Violation::accounting(
                ci,
                Rule::TransmitPending,
                format!(
                    "transmit of {len} bytes, but the handler wrote {} of which {} were sent",
                    c.queued, c.transmitted
                ),
            ));
        }
        Ok(())
    }

    /// The driver is about to report that client `ci`'s socket took `n` of `len` bytes
    /// (0: it would block); short or blocked, the output stays blocked until the
    /// poller says writable.
    pub fn transmitted(&mut self, ci: usize, n: usize, len: usize) {
        let c = &mut self.conns[ci];
        c.transmitted += n as u64;
        c.last_write_short = n < len;
        c.write_blocked = n < len;
    }

    /// The engine closes or detaches (`what`) client `ci`'s connection `id`: its output
    /// must have been flushed (during a shutdown, only the trigger's, and only as far as
    /// the socket took it without blocking).
    pub fn check_flushed(
        &self,
        ci: usize,
        id: ConnId,
        what: &'static str,
    ) -> Result<(), Violation> {
        let c = &self.conns[ci];
        let unsent = c.unsent();
        if unsent == 0 || c.io_failed || c.aborted {
            return Ok(());
        }
        if self.shutting_down && (self.trigger != Some(ci) || c.last_write_short) {
            return Ok(());
        }
        Err(Violation::CloseBeforeFlush { id, what, unsent })
    }

    /// The engine aborts client `ci`'s connection `id`: a handler must have asked (its
    /// own returned `Abort`, or one for another connection may have, through `Loop`).
    pub fn aborting(&mut self, ci: usize, id: ConnId) -> Result<(), Violation> {
        let c = &mut self.conns[ci];
        if !c.abort_asked && !c.cross_ended {
            return Err(Violation::contract(
                Some(id),
                Rule::AbortAsked,
                "aborted, but no handler asked for it".into(),
            ));
        }
        c.aborted = true;
        Ok(())
    }

    /// The engine shuts the sending side of client `ci`'s connection `id` to begin a
    /// lingering close: its output must be flushed first.
    pub fn shutting_write(&mut self, ci: usize, id: ConnId) -> Result<(), Violation> {
        self.check_flushed(ci, id, "shut-write")?;
        let c = &mut self.conns[ci];
        c.lingering = true;
        c.deadline_possible = true;
        Ok(())
    }

    // ----- the handler's callbacks -----------------------------------------------------

    /// An injected action fired; only a connection whose injection fired ends other than
    /// its handler and client would have it (one merely armed stays a clean connection).
    pub fn injection_fired(&mut self, net: &Network, injection: Injection) {
        let (Injection::Close(id) | Injection::Detach { id, .. }) = injection else {
            return;
        };
        if let Some(ci) = self.client_of(net, id) {
            self.conns[ci].injected = true;
        }
    }

    /// Checks one handler callback against the network, the contract and the model;
    /// `arena` holds the `data` inputs.
    pub fn check(&mut self, net: &Network, o: &Observation, arena: &[u8]) -> Result<(), Violation> {
        let live =
            |oracle: &Self, id: ConnId, callback: &'static str| match oracle.client_of(net, id) {
                Some(ci) if oracle.conns[ci].opened && !oracle.conns[ci].ended => Ok(ci),
                _ => Err(Violation::CallbackOutsideLife { id, callback }),
            };
        match *o {
            Observation::Serving { flow } => self.note_flow(flow),
            Observation::Opened {
                id,
                info,
                wrote,
                action,
            } => {
                let Some(ci) = self.client_of(net, id) else {
                    return Err(Violation::CallbackOutsideLife {
                        id,
                        callback: "opened",
                    });
                };
                let c = &mut self.conns[ci];
                if c.opened {
                    return Err(Violation::OpenedTwice(id));
                }
                let listener = net.sockets[ci].listener;
                let expected = ConnInfo {
                    id,
                    listener: ListenerId::new(listener).expect("a simulated listener"),
                    local: Addr::Ip(listen_addr(listener)),
                    peer: Addr::Ip(peer_addr(ci)),
                };
                if info != expected {
                    return Err(Violation::contract(
                        Some(id),
                        Rule::OpenedAddresses,
                        format!("opened with {info:?}, the driver reported {expected:?}"),
                    ));
                }
                c.opened = true;
                self.model.opened(&mut c.model, &info);
                c.wrote(wrote);
                self.note_action(Some(ci), action);
            }
            Observation::Data {
                id,
                ref input,
                consumed,
                wrote,
                action,
            } => {
                let ci = live(self, id, "data")?;
                let c = &mut self.conns[ci];
                if c.leaving {
                    return Err(Violation::AfterLeaving {
                        id,
                        callback: "data",
                    });
                }
                if c.lingering {
                    return Err(Violation::contract(
                        Some(id),
                        Rule::LingerQuiet,
                        "`data` while its close lingers".into(),
                    ));
                }
                let input = &arena[input.clone()];
                // Exactly the input not consumed before, then what was read since.
                let held = &c.delivered[c.handler_pos..];
                if held != input {
                    return Err(Violation::Input {
                        client: ci,
                        detail: format!(
                            "got {} bytes, expected the {} bytes read and not consumed",
                            input.len(),
                            held.len()
                        ),
                    });
                }
                self.model.consumed(&mut c.model, &input[..consumed]);
                c.handler_pos += consumed;
                c.last_input = input.len();
                if c.handler_pos > 4096 {
                    // Keep memory bounded on long runs: consumed bytes are never looked at again.
                    c.delivered.drain(..c.handler_pos);
                    c.delivered_base += c.handler_pos as u64;
                    c.handler_pos = 0;
                }
                c.wrote(wrote);
                self.note_action(Some(ci), action);
            }
            Observation::Woken { id, wrote, action } => {
                let ci = live(self, id, "woken")?;
                let c = &mut self.conns[ci];
                if c.leaving {
                    return Err(Violation::AfterLeaving {
                        id,
                        callback: "woken",
                    });
                }
                if !c.wake_owed && !self.model.handler_wakes() {
                    return Err(Violation::contract(
                        Some(id),
                        Rule::WokenForItsWake,
                        "woken with no wake made for this connection since its last woken (a \
                         wake for an earlier connection in its slot?)"
                            .into(),
                    ));
                }
                c.wake_owed = false;
                self.model.woken(&mut c.model);
                c.wrote(wrote);
                self.note_action(Some(ci), action);
            }
            Observation::Timeout {
                id,
                now,
                wrote,
                action,
            } => {
                let ci = live(self, id, "timeout")?;
                let c = &mut self.conns[ci];
                if c.leaving {
                    return Err(Violation::AfterLeaving {
                        id,
                        callback: "timeout",
                    });
                }
                match c.timeout.take() {
                    None => {
                        return Err(Violation::contract(
                            Some(id),
                            Rule::TimeoutOnce,
                            format!("`timeout` at {now} with no timeout set"),
                        ));
                    }
                    Some((at, _)) if now < at => {
                        return Err(Violation::contract(
                            Some(id),
                            Rule::TimeoutEarly,
                            format!("`timeout` at {now}, before its deadline {at}"),
                        ));
                    }
                    Some(_) => {}
                }
                c.wrote(wrote);
                self.note_action(Some(ci), action);
            }
            Observation::Drained { id, wrote, action } => {
                let ci = live(self, id, "drained")?;
                let c = &mut self.conns[ci];
                if c.leaving {
                    return Err(Violation::AfterLeaving {
                        id,
                        callback: "drained",
                    });
                }
                if c.unsent() != 0 {
                    return Err(Violation::contract(
                        Some(id),
                        Rule::DrainedEmpty,
                        format!("`drained` with {} bytes still unsent", c.unsent()),
                    ));
                }
                c.wrote(wrote);
                self.note_action(Some(ci), action);
            }
            Observation::ServerWoken { flow } => {
                if !self.server_wake_owed {
                    return Err(Violation::contract(
                        None,
                        Rule::ServerWake,
                        "`server_woken` with no server wake made since the last".into(),
                    ));
                }
                self.server_wake_owed = false;
                self.note_flow(flow);
            }
            Observation::WroteTo { id, bytes } => {
                let ci = live(self, id, "a write through `Loop`")?;
                let c = &mut self.conns[ci];
                if c.leaving || c.cross_ended || c.lingering || c.aborted {
                    return Err(Violation::AfterLeaving {
                        id,
                        callback: "a write through `Loop`",
                    });
                }
                c.wrote(bytes);
            }
            Observation::NoLongerOpen { id } => {
                let ci = live(self, id, "the end of its open state")?;
                self.conns[ci].cross_ended = true;
                self.closing(ci);
            }
            Observation::TimeoutSet { id, at } => {
                let ci = live(self, id, "a timeout setting")?;
                let c = &mut self.conns[ci];
                c.timeout = at.map(|at| (at, net.clock));
                c.deadline_possible |= at.is_some();
            }
            Observation::Closed { id, error, flow } => {
                let ci = self.check_closed(net, id, error)?;
                let c = &mut self.conns[ci];
                self.model.ended(&mut c.model);
                self.note_flow(flow);
            }
            Observation::Detached { id, taken, flow } => {
                let ci = live(self, id, "detached")?;
                let c = &mut self.conns[ci];
                if !net.sockets[ci].server_closed {
                    return Err(Violation::CallbackOutsideLife {
                        id,
                        callback: "detached",
                    });
                }
                if c.postwrites != c.prewrites {
                    return Err(Violation::accounting(
                        ci,
                        Rule::WritesPaired,
                        format!(
                            "detached after {} prewrites but {} postwrites",
                            c.prewrites, c.postwrites
                        ),
                    ));
                }
                if taken {
                    c.ended = true;
                    c.detached = true;
                    self.by_slot[id.slot()] = None;
                    self.model.ended(&mut c.model);
                }
                self.note_flow(flow);
            }
            Observation::Prewrite { id, attempted } => {
                let ci = live(self, id, "prewrite")?;
                let c = &mut self.conns[ci];
                c.attempted = attempted;
                c.prewrites += 1;
                // The prewrite comes before its transmit is performed.
                if c.prewrites != c.postwrites + 1 || c.prewrites != c.transmits + 1 {
                    return Err(Violation::accounting(
                        ci,
                        Rule::PrewritePerTransmit,
                        format!(
                            "prewrite #{} after {} postwrites, for {} transmits",
                            c.prewrites, c.postwrites, c.transmits
                        ),
                    ));
                }
                if attempted as u64 != c.unsent() || attempted == 0 {
                    return Err(Violation::accounting(
                        ci,
                        Rule::PrewriteAmount,
                        format!(
                            "prewrite({attempted}) but the handler wrote {} of which {} were sent",
                            c.queued, c.transmitted
                        ),
                    ));
                }
            }
            Observation::Postwrite {
                id,
                written,
                remaining,
            } => {
                let ci = live(self, id, "postwrite")?;
                let c = &mut self.conns[ci];
                c.postwrites += 1;
                if c.postwrites != c.prewrites || c.postwrites != c.transmits {
                    return Err(Violation::accounting(
                        ci,
                        Rule::PostwritePerTransmit,
                        format!(
                            "postwrite #{} after {} prewrites, for {} transmits",
                            c.postwrites, c.prewrites, c.transmits
                        ),
                    ));
                }
                if remaining as u64 != c.queued.wrapping_sub(c.transmitted)
                    || written.checked_add(remaining) != Some(c.attempted)
                {
                    return Err(Violation::accounting(
                        ci,
                        Rule::PostwriteAmount,
                        format!(
                            "postwrite({written}, {remaining}) after prewrite({}), but the \
                             handler wrote {} of which {} were sent",
                            c.attempted, c.queued, c.transmitted
                        ),
                    ));
                }
            }
            Observation::Tick { now, tick } => {
                self.tick.fired(now, net.clock, tick)?;
                self.note_flow(tick.flow);
            }
        }
        Ok(())
    }

    /// `closed` ran for `id` with `error`: once, after the socket closed, after every
    /// write's callbacks, with the error the driver reported.
    fn check_closed(
        &mut self,
        net: &Network,
        id: ConnId,
        error: Option<CloseError>,
    ) -> Result<usize, Violation> {
        let Some(ci) = self.client_of(net, id) else {
            // The slot no longer maps to a connection that ended: name a second `closed`
            // (or one after `detached` took the socket) as such.
            let ended = net
                .sockets
                .iter()
                .zip(&self.conns)
                .any(|(s, c)| s.id == Some(id) && c.ended);
            return Err(if ended {
                Violation::ClosedTwice(id)
            } else {
                Violation::CallbackOutsideLife {
                    id,
                    callback: "closed",
                }
            });
        };
        let c = &mut self.conns[ci];
        if !c.opened {
            return Err(Violation::CallbackOutsideLife {
                id,
                callback: "closed",
            });
        }
        if c.ended {
            return Err(Violation::ClosedTwice(id));
        }
        if !net.sockets[ci].server_closed {
            return Err(Violation::ClosedBeforeSocket(id));
        }
        if c.postwrites != c.prewrites {
            return Err(Violation::accounting(
                ci,
                Rule::WritesPaired,
                format!(
                    "closed after {} prewrites but {} postwrites",
                    c.prewrites, c.postwrites
                ),
            ));
        }
        // The I/O error the driver reported reaches `closed`; a frame too large only
        // after the handler was given a full input buffer; nothing else is an error.
        let cap = self.engine.input_capacity;
        let fits = match error {
            Some(CloseError::Io(e)) => c.io_error == Some(e),
            Some(CloseError::FrameTooLarge { capacity }) => {
                c.io_error.is_none() && capacity == cap && c.last_input == cap
            }
            None => c.io_error.is_none(),
        };
        if !fits {
            return Err(Violation::contract(
                Some(id),
                Rule::ClosedError,
                format!(
                    "closed with {error:?}, but the driver reported {:?} and the last data call \
                     was given {} bytes of an input buffer of {cap}",
                    c.io_error, c.last_input
                ),
            ));
        }
        c.ended = true;
        c.errored = error.is_some();
        self.by_slot[id.slot()] = None;
        Ok(ci)
    }

    /// A server-level callback returned `flow`.
    fn note_flow(&mut self, flow: Flow) {
        if flow == Flow::Shutdown && !self.shutting_down {
            self.shutting_down = true;
            self.trigger = None;
        }
    }

    /// A callback for client `ci` (`None`: not a connection's own callback) returned
    /// `action`.
    fn note_action(&mut self, ci: Option<usize>, action: Action) {
        if let (Some(ci), Action::Close | Action::Detach | Action::Abort) = (ci, action) {
            self.conns[ci].leaving = true;
            self.conns[ci].abort_asked |= action == Action::Abort;
            self.closing(ci);
        }
        if action == Action::Shutdown && !self.shutting_down {
            self.shutting_down = true;
            self.trigger = ci;
        }
    }
}
