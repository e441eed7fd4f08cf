//! The checks of the engine's outputs as the driver performs them (accept, read,
//! transmit, close, abort, shut-write), and what the driver reports back.

use evio_proto::{ConnId, Instant, IoError, Readiness, TransportError};

use super::Oracle;
use crate::network::Network;
use crate::{Model, Rule, Violation};

impl<M: Model> Oracle<M> {
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
        let c = &mut self.conns[ci];
        c.transformed = net.sockets[ci].transformed();
        if c.transformed {
            c.handshake_from = Some(net.clock);
        }
        Ok(())
    }

    /// The handler's transport decoded `plain` for connection `id`, keeping `kept`
    /// bytes of a record, and its peer's stream `ended`: the plaintext is what the
    /// server read, as a plain connection's bytes are.
    pub fn decoded(
        &mut self,
        net: &Network,
        id: ConnId,
        plain: &[u8],
        kept: usize,
        ended: bool,
    ) -> Result<(), Violation> {
        let ci = self.transformed_conn(net, id, "decode")?;
        let c = &mut self.conns[ci];
        // Exactly the next plaintext the client sent, in order.
        let n = plain.len();
        if c.client_plain.len() < n || !c.client_plain.iter().take(n).eq(plain) {
            return Err(Violation::Input {
                client: ci,
                detail: format!(
                    "its transport decoded {n} bytes that are not the next ones its client \
                     sent ({} sent and not decoded yet)",
                    c.client_plain.len()
                ),
            });
        }
        c.client_plain.drain(..n);
        c.kept = kept;
        if c.lingering {
            // Read only to let the peer finish, and discarded: no handler sees it.
            return Ok(());
        }
        c.delivered.extend_from_slice(plain);
        if !c.opened {
            // Told to the model once the handshake is over (`Oracle::opened_late`).
            c.ended_early |= ended;
            return Ok(());
        }
        self.model.input(&mut c.model, plain);
        if ended {
            self.eof_reported(ci, net.clock);
        }
        Ok(())
    }

    /// A transformed connection opened once its handshake was over: the model hears
    /// what was decoded with the handshake, and of an end of stream that came with it.
    pub(super) fn opened_late(&mut self, ci: usize, clock: Instant) {
        let c = &mut self.conns[ci];
        let early = &c.delivered[c.handler_pos..];
        if !early.is_empty() {
            self.model.input(&mut c.model, early);
        }
        if core::mem::take(&mut c.ended_early) {
            self.eof_reported(ci, clock);
        }
    }

    /// Client `ci`, a transformed connection's, sent `plain` through its transport.
    pub fn client_sent(&mut self, ci: usize, plain: &[u8]) {
        self.conns[ci].client_plain.extend(plain);
    }

    /// The handler's transport failed connection `id` with `error`: the engine ends
    /// it at once, as after a failed read.
    pub fn transport_failed(
        &mut self,
        net: &Network,
        id: ConnId,
        error: TransportError,
    ) -> Result<(), Violation> {
        let ci = self.transformed_conn(net, id, "a transport failure")?;
        let c = &mut self.conns[ci];
        c.transport_error.get_or_insert(error);
        if !c.lingering {
            c.io_failed = true;
        }
        self.closing(ci);
        Ok(())
    }

    /// The client whose transformed connection `id` is, for `what` its transport did.
    fn transformed_conn(
        &self,
        net: &Network,
        id: ConnId,
        what: &'static str,
    ) -> Result<usize, Violation> {
        match self.client_of(net, id) {
            Some(ci) if self.conns[ci].transformed && !self.conns[ci].ended => Ok(ci),
            Some(_) => Err(Violation::contract(
                Some(id),
                Rule::TransformedOnly,
                format!("{what} for a connection its transport did not take"),
            )),
            None => Err(Violation::CallbackOutsideLife { id, callback: what }),
        }
    }

    /// The engine closes (or with `abort`, resets) client `ci`'s connection `id`
    /// before its handshake was over: no callback ever ran for it, and none will. A
    /// close is for a handshake that failed (its transport refused the peer's bytes,
    /// or the peer ended or reset its stream), a reset for one that took longer than
    /// `Config::handshake_timeout`; a shutdown ends every handshake.
    pub fn handshake_abandoned(
        &mut self,
        ci: usize,
        id: ConnId,
        abort: bool,
        clock: Instant,
    ) -> Result<(), Violation> {
        let timeout = self.engine.handshake_timeout;
        let c = &mut self.conns[ci];
        let late = c.handshake_from.is_some_and(|from| clock >= from + timeout);
        let failed = c.transport_error.is_some() || c.io_failed || c.eof_reported;
        if !self.shutting_down && if abort { !late } else { !failed } {
            return Err(Violation::contract(
                Some(id),
                Rule::HandshakeEnd,
                format!(
                    "{} at {clock} during its handshake, which started at {:?} (the \
                     handshake timeout is {timeout:?}; transport error {:?}, I/O error \
                     {:?}, end of stream {})",
                    if abort { "reset" } else { "closed" },
                    c.handshake_from,
                    c.transport_error,
                    c.io_error,
                    c.eof_reported
                ),
            ));
        }
        c.ended = true;
        c.aborted |= abort;
        self.by_slot[id.slot()] = None;
        Ok(())
    }

    /// The engine asked to connect `id`: its slot must be free (no live connection
    /// holds it).
    pub fn check_connect(&self, net: &Network, id: ConnId) -> Result<(), Violation> {
        if let Some(other) = self.by_slot[id.slot()]
            && !self.conns[other].ended
        {
            return Err(Violation::contract(
                net.sockets[other].id,
                Rule::ConnectAsked,
                format!("its slot went to a connect {id} before `closed` or `detached` ran for it"),
            ));
        }
        Ok(())
    }

    /// The driver made backend socket `ci` for the connect of `id`.
    pub fn connect_started(&mut self, ci: usize, id: ConnId) {
        self.relaying = true;
        self.by_slot[id.slot()] = Some(ci);
        self.conns[ci].outbound = true;
    }

    /// The driver is about to report that backend `ci`'s connect failed with `e`.
    pub fn connect_failed(&mut self, ci: usize, e: IoError) {
        self.conns[ci].connect_error = Some(e);
    }

    /// The driver is about to report that backend `ci`'s connect is done.
    pub fn connect_done(&mut self, ci: usize) {
        self.conns[ci].connect_done = true;
    }

    /// The engine asked how backend `ci`'s connect `id` ended: it must be under way.
    pub fn check_finish_connect(&self, ci: usize, id: ConnId) -> Result<(), Violation> {
        let c = &self.conns[ci];
        if !c.outbound || c.connect_done || c.connect_error.is_some() {
            return Err(Violation::contract(
                Some(id),
                Rule::ConnectAsked,
                format!(
                    "FinishConnect, but the connection is {}",
                    if !c.outbound {
                        "not outbound"
                    } else if c.connect_done {
                        "connected already"
                    } else {
                        "failed already"
                    }
                ),
            ));
        }
        Ok(())
    }

    /// The engine asked for `what` (a read or a transmit) on client `ci`'s connection
    /// `id`: an outbound connection's connect must be done.
    pub fn check_connected(
        &self,
        ci: usize,
        id: ConnId,
        what: &'static str,
    ) -> Result<(), Violation> {
        let c = &self.conns[ci];
        if c.outbound && !c.connect_done {
            return Err(Violation::contract(
                Some(id),
                Rule::ConnectBeforeSend,
                format!("{what} before the driver reported the connect done"),
            ));
        }
        Ok(())
    }

    /// The poller reported `readiness` for client `ci`.
    pub fn readiness_reported(&mut self, ci: usize, readiness: Readiness) {
        let c = &mut self.conns[ci];
        if readiness.writable || readiness.hangup {
            c.write_blocked = false;
        }
        c.hup_unread |= readiness.hangup;
        c.read_reported |= readiness.readable || readiness.hangup;
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
        c.read_reported = false;
        c.read_owed = false;
        Ok(core::mem::take(&mut c.hup_unread))
    }

    /// The driver is about to report that a read on client `ci` returned `bytes` into
    /// a buffer of `capacity`, after a hang-up was unanswered if `hangup`: a read that
    /// fills the buffer may leave more behind, anything else answers the hang-up.
    pub fn read_data(&mut self, ci: usize, bytes: &[u8], capacity: usize, hangup: bool) {
        let c = &mut self.conns[ci];
        c.hup_unread = hangup && bytes.len() == capacity;
        if c.lingering || c.transformed {
            // (A transformed connection's bytes are records: what they hold is known
            // when its transport decodes them, `Oracle::decoded`.)
            // Read only to let the peer finish, and discarded: no handler sees it.
            return;
        }
        c.delivered.extend_from_slice(bytes);
        self.model.input(&mut c.model, bytes);
    }

    /// The driver is about to report the end of client `ci`'s stream.
    pub fn eof_reported(&mut self, ci: usize, _clock: Instant) {
        let c = &mut self.conns[ci];
        if c.opened && !c.eof_reported {
            self.model.input_ended(&mut c.model);
        }
        // (An open connection whose peer ended leaves once its answer is sent: when its
        // handler's `input_ended` says so, which may come later, once input that waited
        // for another connection is delivered. Until then it is open: others may still
        // write to it.)
        let open = c.opened
            && !c.leaving
            && !c.cross_ended
            && !c.aborted
            && !c.io_failed
            && !c.lingering
            && !c.ended;
        self.conns[ci].eof_reported = true;
        if !open {
            self.closing(ci);
        }
    }

    /// The driver is about to report that a send on client `ci` failed (before
    /// [`Oracle::io_failed`]): if its connection was open and could read, one read is
    /// owed before the close.
    pub fn send_failed(&mut self, ci: usize) {
        let input_capacity = self.engine.input_capacity;
        let c = &mut self.conns[ci];
        c.read_owed = c.open_for_input() && c.buffered() < input_capacity && !self.shutting_down;
    }

    /// The engine closed client `ci`'s connection at `clock` because its handler
    /// consumed nothing of a full input buffer: it leaves (bounded, lingering over the
    /// unconsumed frame) unless it was leaving already.
    pub fn frame_too_large(&mut self, ci: usize, clock: Instant) {
        let bounded = self.engine.send_timeout.is_some();
        let c = &mut self.conns[ci];
        if c.leaving || c.cross_ended || c.io_failed || c.eof_reported {
            return;
        }
        c.leaving_since.get_or_insert(clock);
        c.deadline_possible |= bounded;
        c.must_linger = true;
    }

    /// The engine closes client `ci`'s connection `id` (not an abort): a close asked
    /// for over unconsumed input lingered first.
    pub fn check_linger(&self, ci: usize, id: ConnId) -> Result<(), Violation> {
        let c = &self.conns[ci];
        // (A connection whose handler shut its sending side before lingers without a
        // second shutdown.)
        if c.must_linger
            && !c.lingering
            && !c.write_shut
            && !c.io_failed
            && !c.eof_reported
            && !c.aborted
            && !self.shutting_down
        {
            return Err(Violation::contract(
                Some(id),
                Rule::LingerOverUnconsumed,
                format!(
                    "client c{ci}: closed without lingering, though its close was asked for \
                     over unconsumed input"
                ),
            ));
        }
        Ok(())
    }

    /// At the end of a step whose loop ran at `clock`: no leaving connection with
    /// output to send has outlived its send bound (it is aborted when the bound
    /// passes, as the loop turns).
    pub fn check_send_bounds(&self, net: &Network, clock: Instant) -> Result<(), Violation> {
        let Some(bound) = self.engine.send_timeout else {
            return Ok(());
        };
        if self.shutting_down {
            return Ok(());
        }
        for (c, s) in self.conns.iter().zip(&net.sockets) {
            let Some(since) = c.leaving_since else {
                continue;
            };
            let stuck = !c.ended
                && !s.server_closed
                && !c.aborted
                && !c.lingering
                && !c.io_failed
                && c.unsent() > 0;
            if stuck && clock >= since + bound {
                return Err(Violation::contract(
                    s.id,
                    Rule::SendBound,
                    format!(
                        "leaving with {} bytes unsent since {since} (no send progress), still \
                         not aborted at {clock}: the bound is {bound:?}",
                        c.unsent()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The engine closes client `ci`'s connection `id`: a read owed after a failed send
    /// came first, unless a handler ended the connection meanwhile or the server is
    /// shutting down (which closes every connection without more input).
    pub fn check_read_after_failed_send(&self, ci: usize, id: ConnId) -> Result<(), Violation> {
        let c = &self.conns[ci];
        if c.read_owed && !c.leaving && !c.cross_ended && !c.abort_asked && !self.shutting_down {
            return Err(Violation::contract(
                Some(id),
                Rule::ReadAfterFailedSend,
                format!("client c{ci}: closed after a failed send without reading once more"),
            ));
        }
        Ok(())
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
        // Input that waited when its socket failed is still delivered, for at most
        // `Config::send_timeout` (the engine's `Life::Failing`): a deadline it may hold.
        c.deadline_possible |= self.engine.send_timeout.is_some();
        self.closing(ci);
    }

    /// The engine asked to transmit `len` bytes on client `ci`'s connection: exactly
    /// the output pending.
    pub fn check_transmit(&mut self, ci: usize, len: usize) -> Result<(), Violation> {
        let input_capacity = self.engine.input_capacity;
        let c = &mut self.conns[ci];
        // (A shutdown flushes the trigger's output as it stands: no more input.) A
        // connection waiting for another's drain (a relay) is no exception: it is read
        // while its input buffer has room.
        if c.read_reported
            && c.open_for_input()
            && !c.write_blocked
            && c.buffered() < input_capacity
            && !self.shutting_down
        {
            return Err(Violation::contract(
                None,
                Rule::ReadBeforeSend,
                format!(
                    "client c{ci}: transmit of {len} bytes before reading what the poller \
                     reported readable"
                ),
            ));
        }
        if c.lingering || c.write_shut {
            return Err(Violation::contract(
                None,
                Rule::LingerQuiet,
                format!("client c{ci}: transmit of {len} bytes after its sending side was shut"),
            ));
        }
        if c.transformed {
            // Records: `prewrite` and `postwrite` count the plaintext encoded into
            // them, when it is encoded (`Oracle::check_postwrite`).
            if len == 0 {
                return Err(Violation::accounting(
                    ci,
                    Rule::TransmitPending,
                    "transmit of 0 bytes".into(),
                ));
            }
            return Ok(());
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
    pub fn transmitted(&mut self, ci: usize, n: usize, len: usize, clock: Instant) {
        let c = &mut self.conns[ci];
        if n > 0 && c.leaving_since.is_some() {
            // Send progress: the bound starts again.
            c.leaving_since = Some(clock);
        }
        if !c.transformed {
            c.transmitted += n as u64;
        }
        c.last_write_short = n < len;
        c.write_blocked = n < len;
    }

    /// The engine closes or detaches (`what`) client `ci`'s connection `id`: its output
    /// must have been flushed (during a shutdown, only the trigger's, only as far as
    /// the socket took it without blocking, and only what it held when its flush ended:
    /// the shutdown's first close. The engine flushes the trigger, then closes every
    /// connection; what another connection's `closed` writes to the trigger after that,
    /// a proxy's error replies for a backend link closed by the shutdown, is not owed).
    pub fn check_flushed(
        &mut self,
        ci: usize,
        id: ConnId,
        what: &'static str,
    ) -> Result<(), Violation> {
        if self.shutting_down
            && self.trigger_flushed.is_none()
            && let Some(t) = self.trigger
        {
            let c = &self.conns[t];
            self.trigger_flushed = Some((c.queued, c.last_write_short));
        }
        let c = &self.conns[ci];
        let mut unsent = c.unsent();
        if unsent == 0 || c.io_failed || c.aborted {
            return Ok(());
        }
        if self.shutting_down {
            let (owed, short) = self
                .trigger_flushed
                .unwrap_or((c.queued, c.last_write_short));
            if self.trigger != Some(ci) || short {
                return Ok(());
            }
            unsent = owed.min(c.queued).saturating_sub(c.transmitted);
            if unsent == 0 {
                return Ok(());
            }
        }
        Err(Violation::CloseBeforeFlush { id, what, unsent })
    }

    /// The engine aborts client `ci`'s connection `id`: a handler must have asked (its
    /// own returned `Abort`, or one for another connection may have, through `Loop`).
    pub fn aborting(&mut self, ci: usize, id: ConnId, clock: Instant) -> Result<(), Violation> {
        let bound = self.engine.send_timeout;
        let c = &mut self.conns[ci];
        c.bound_passed = matches!(
            (c.leaving_since, bound),
            (Some(since), Some(bound)) if clock >= since + bound
        );
        // A connect under way is abandoned with a reset when a handler closes it.
        let connecting = c.outbound && !c.connect_done;
        if !c.abort_asked && !c.cross_ended && !c.bound_passed && !connecting {
            return Err(Violation::contract(
                Some(id),
                Rule::AbortAsked,
                format!(
                    "aborted at {clock}, but no handler asked for it (leaving since {:?}, send \
                     bound {bound:?})",
                    c.leaving_since
                ),
            ));
        }
        c.aborted = true;
        Ok(())
    }

    /// The engine shuts the sending side of client `ci`'s connection `id`: its output
    /// must be flushed first, and it happens once. On a connection that is open (its
    /// stream not ended, or kept open half-closed by `input_ended`), a handler asked
    /// for it (`Loop::shutdown_write`, a relay passing on an end of stream): the
    /// connection stays open for reading. Otherwise it begins a lingering close.
    pub fn shutting_write(&mut self, ci: usize, id: ConnId) -> Result<(), Violation> {
        self.check_flushed(ci, id, "shut-write")?;
        let c = &mut self.conns[ci];
        if c.lingering {
            return Err(Violation::contract(
                Some(id),
                Rule::LingerQuiet,
                "its sending side was shut twice".into(),
            ));
        }
        // (Whatever starts a close, the handler's or the engine's own, such as a frame
        // too large, starts the send bound's clock: one that has not started is open.)
        let open = c.opened
            && !c.ended
            && !c.leaving
            && !c.cross_ended
            && !c.aborted
            && !c.io_failed
            && !c.must_linger
            && c.leaving_since.is_none()
            && (!c.eof_reported || c.half_open);
        if open && !c.write_shut {
            c.write_shut = true;
        } else {
            // (A close shuts the sending side as its lingering close begins; the engine
            // does not shut a side twice.)
            c.lingering = true;
            c.deadline_possible = true;
        }
        Ok(())
    }
}
