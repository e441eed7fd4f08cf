//! Choosing the next output, in the documented order, and lending it the buffers it
//! points into.

use crate::buffers::InputSource;
use crate::engine::life::{Event, Life, Then, Why};
use crate::engine::{ByteStorage, Engine, Phase, SlotStorage};
use crate::listeners::Command;
use crate::output::{Accept, Connect, Detach, FinishConnect, Read, Transmit, TransmitBatch};
use crate::shutdown::Step;
use crate::slot::{Flags, Slot};
use crate::{Events, Interest, ListenerId, Output};

/// What a connection's rarely set flags ask for before its usual outputs.
enum Extra {
    /// This output first.
    Output(Next),
    /// Its input was delivered again: its next output is decided afresh.
    Resumed,
    /// Its input still waits for another connection: the usual outputs, no read.
    StillWaiting,
}

/// What `poll_output` decided, before borrowing the buffers it points into.
pub(super) enum Next {
    Accept(ListenerId),
    Read(u32),
    Transmit(u32),
    /// The entries of `Engine::batch`.
    TransmitBatch,
    Configure(u32),
    Interest(u32, Interest),
    Close(u32),
    Abort(u32),
    ShutdownWrite(u32),
    Detach(u32),
    Connect(u32),
    FinishConnect(u32),
    Pause(ListenerId),
    Resume(ListenerId),
    Shutdown,
}

impl<H, S, B> Engine<H, S, B>
where
    H: Events,
    S: SlotStorage<H::Context>,
    B: ByteStorage,
{
    /// Picks the next output without borrowing the buffers: listener commands; output
    /// waiting in the scratch buffer (so the next handler call finds it free and
    /// nothing is copied); connections in the order they came to need attention;
    /// accepts.
    pub(super) fn next_output(&mut self) -> Option<Next> {
        match self.phase {
            Phase::Created | Phase::Done => return None,
            Phase::ShuttingDown => return Some(self.next_shutdown_output()),
            Phase::Running => {}
        }
        if let Some((i, command)) = self.listeners.next_command() {
            let listener = ListenerId::at(i);
            return Some(match command {
                Command::Pause => Next::Pause(listener),
                Command::Resume => Next::Resume(listener),
            });
        }
        if let Some(owner) = self.buffers.scratch_owner()
            && self.slot(owner).state.sends()
            && !self.slot(owner).flags.contains(Flags::WRITE_BLOCKED)
        {
            // What its peer sent is read before anything is sent to it (see
            // `read_first`): its output moves to its own buffer, where the handler's
            // answer to that input joins it.
            if let Some(read) = self.read_first(owner) {
                self.spill_scratch(owner);
                return Some(read);
            }
            // (A held send's scratch output stays where it is: a handler that needs
            // the buffer before the batch goes spills it then, `Engine::call_handler`.)
            if let Some(next) = self.hold_or_transmit(owner) {
                return Some(next);
            }
        }
        loop {
            while let Some(index) = self.attention.pop_front(self.slots.as_mut()) {
                if let Some(next) = self.slot_output(index) {
                    if !matches!(next, Next::Close(_) | Next::Abort(_) | Next::Detach(_)) {
                        // It may have more to do: it comes back after the others.
                        self.enqueue(index);
                    }
                    return Some(next);
                }
            }
            if self.held_sends.is_empty() {
                break;
            }
            // The turn's reads are done: the sends held for them go now, together.
            if let Some(next) = self.held_sends_output() {
                return Some(next);
            }
        }
        self.listeners
            .next_accept()
            .map(|i| Next::Accept(ListenerId::at(i)))
    }

    /// The next output for one connection, in order: an abort, or the close of a
    /// failed socket; options; a read it was reported ready for (see `read_first`);
    /// output; the close (lingering or not) or detach it is leaving for, once its
    /// output is sent; input; poller interest.
    fn slot_output(&mut self, index: u32) -> Option<Next> {
        let in_cap = self.config.input_capacity as u32;
        let slot = self.slot_mut(index);
        let state = slot.state;
        // (Open first: it is by far the commonest.)
        if state != Life::Open {
            if slot.flags.contains(Flags::CONNECT_PENDING) && state != Life::Connecting {
                // Abandoned before the driver was asked: there is no socket to close.
                self.abandon(index);
                return None;
            }
            match state {
                Life::Free | Life::Closed | Life::DetachWait => return None,
                Life::Connecting => return self.connecting_output(index),
                Life::Aborting => return Some(self.emit_abort(index)),
                Life::SendFailed => return Some(self.after_send_failed(index)),
                Life::Failing => return self.failing_output(index),
                Life::Handshaking => return self.handshake_output(index),
                Life::Leaving {
                    why: Why::Failed, ..
                } => return Some(self.emit_failed_close(index)),
                Life::Open | Life::Leaving { .. } | Life::Lingering => {}
            }
        }
        let slot = self.slot_mut(index);
        if slot.flags.intersects(Flags::CONFIGURE | Flags::WAITING) {
            match self.options_or_resume(index) {
                Extra::Output(next) => return Some(next),
                // Its handler had its input again: its next output is decided at its
                // next turn.
                Extra::Resumed => {
                    self.enqueue(index);
                    return None;
                }
                Extra::StillWaiting => {}
            }
        }
        // (A transformed connection's transport bytes count as one byte to send.)
        let pending = self.pending_len(index) + self.slot(index).flags.outgoing();
        let slot = self.slot_mut(index);
        let write_blocked = slot.flags.contains(Flags::WRITE_BLOCKED);
        let shut_write = slot.flags.contains(Flags::SHUT_WR);
        if let Some(read) = self.read_first(index) {
            return Some(read);
        }
        if pending > 0
            && !write_blocked
            && let Some(next) = self.hold_or_transmit(index)
        {
            return Some(next);
        }
        if pending == 0 {
            if let Life::Leaving { then, .. } = state {
                if self.slot(index).flags.contains(Flags::TRANSFORMED)
                    && let Some(next) = self.close_notify(index)
                {
                    // Its closing message goes before the close (or the linger).
                    return Some(next);
                }
                return match then {
                    Then::Close => Some(self.emit_close(index, Event::Flushed)),
                    Then::Linger => self.begin_linger(index),
                    Then::Detach => Some(self.emit_detach(index)),
                };
            }
            if shut_write && let Some(next) = self.shut_write(index) {
                return Some(next);
            }
        }
        let slot = self.slot_mut(index);
        let can_read = slot.bufs.in_len < in_cap && !slot.flags.contains(Flags::EOF);
        let want_read = match state {
            // (Input waiting for another connection's drain is still added to while
            // the buffer has room: what the peer sent is read before anything is sent
            // to it, and the buffer bounds it.)
            Life::Open => can_read && !write_blocked,
            // A lingering close reads (and discards) until the peer ends its stream.
            Life::Lingering => can_read,
            _ => false,
        };
        // A hang-up makes an open connection read even while its output is blocked, to
        // learn whether the peer ended or failed. A connection the handler is closing
        // or detaching reads nothing more: its handler is done with input.
        let hup_read = slot.flags.contains(Flags::HUP) && state == Life::Open;
        if slot.flags.contains(Flags::READABLE) && can_read && (want_read || hup_read) {
            slot.flags.remove(Flags::READABLE);
            return Some(Next::Read(index));
        }
        let want_write = write_blocked && pending > 0;
        let flags = &mut slot.flags;
        if want_read != flags.contains(Flags::REG_READ)
            || want_write != flags.contains(Flags::REG_WRITE)
        {
            flags.set(Flags::REG_READ, want_read);
            flags.set(Flags::REG_WRITE, want_write);
            return Some(Next::Interest(index, Interest::new(want_read, want_write)));
        }
        None
    }

    /// Slot `index`'s send, due now: held for the turn's batch (`None`), or its
    /// transmit.
    #[inline(always)]
    fn hold_or_transmit(&mut self, index: u32) -> Option<Next> {
        if !self.holds_send(index) {
            return self.begin_transmit(index);
        }
        let Self {
            slots, held_sends, ..
        } = self;
        held_sends.push_back(slots.as_mut(), index);
        None
    }

    /// Whether slot `index`'s send, due now, waits for the turn's reads and goes with
    /// the others ([`Config::batch_sends`](crate::Config::batch_sends)). A
    /// transformed connection's sends are its transport's, and go alone.
    #[inline(always)]
    fn holds_send(&self, index: u32) -> bool {
        self.config.batch_sends && {
            let slot = self.slot(index);
            slot.state.sends() && !slot.flags.contains(Flags::TRANSFORMED)
        }
    }

    /// The held sends, once the turn's reads are done: up to
    /// [`MAX_BATCH`](crate::MAX_BATCH) of them as one `TransmitBatch` (a single one as
    /// a plain `Transmit`). A held connection that can no longer send as it could when
    /// it was held (it was stopped, closed, blocked or reported readable meanwhile)
    /// goes back to attention, where its next output is decided afresh: `None` when
    /// none was left to send.
    #[inline(never)]
    fn held_sends_output(&mut self) -> Option<Next> {
        self.batch.clear();
        while self.batch.has_room() {
            let Some(index) = self.held_sends.pop_front(self.slots.as_mut()) else {
                break;
            };
            let slot = self.slot(index);
            let len = self.buffers.pending(index, &slot.bufs);
            let sendable = self.holds_send(index)
                && len > 0
                && !slot.flags.contains(Flags::WRITE_BLOCKED)
                && !self.reads_first(index);
            if !sendable {
                self.enqueue(index);
                continue;
            }
            self.handler.prewrite(slot.info.id, len);
            self.batch.push(index, len);
        }
        match self.batch.len() {
            0 => None,
            1 => Some(Next::Transmit(self.batch.entry(0).0)),
            _ => {
                self.stats.send_batches += 1;
                Some(Next::TransmitBatch)
            }
        }
    }

    /// Moves the scratch output of `owner` (its holder) to its own buffer.
    fn spill_scratch(&mut self, owner: u32) {
        let Self {
            slots,
            buffers,
            stats,
            ..
        } = self;
        buffers.spill(&mut slots.as_mut()[owner as usize].bufs);
        stats.output_spills += 1;
    }

    /// Whether slot `index` must read before it sends: see [`Engine::read_first`].
    #[inline(always)]
    fn reads_first(&self, index: u32) -> bool {
        may_read_first(self.slot(index), self.config.input_capacity as u32)
    }

    /// A read of slot `index` if it must come before anything is sent to it: the
    /// poller reported it readable and it may read now.
    ///
    /// Sending first could lose what the peer sent: a peer that sent and closed answers
    /// the send with a reset, the next send fails, and the connection would close with
    /// the bytes unread. (Whatever the order, a failed send reads once more before the
    /// close: `after_send_failed`.)
    #[inline]
    fn read_first(&mut self, index: u32) -> Option<Next> {
        let in_cap = self.config.input_capacity as u32;
        let slot = self.slot_mut(index);
        if !may_read_first(slot, in_cap) {
            return None;
        }
        slot.flags.remove(Flags::READABLE);
        Some(Next::Read(index))
    }

    /// Slot `index`'s options to apply; or, once the connection its input waited for
    /// has drained or gone (or its handler resumed it), that input delivered again; or
    /// that it still waits.
    #[cold]
    #[inline(never)]
    fn options_or_resume(&mut self, index: u32) -> Extra {
        let slot = self.slot_mut(index);
        if slot.flags.contains(Flags::CONFIGURE) {
            slot.flags.remove(Flags::CONFIGURE);
            return Extra::Output(Next::Configure(index));
        }
        if slot.wait.on().is_some() {
            return Extra::StillWaiting;
        }
        slot.flags.remove(Flags::WAITING);
        // (A connection its handler is closing gets no more input.)
        let state = slot.state;
        if state == Life::Failing {
            // What it wrote while it waited cannot be sent: the handler gets its room.
            let Self { slots, buffers, .. } = self;
            buffers.release(index, &mut slots.as_mut()[index as usize].bufs);
        }
        let has_input = if self.slot(index).flags.contains(Flags::TRANSFORMED) {
            self.transformed_input_len(index) > 0
        } else {
            self.slot(index).bufs.in_len > 0
        };
        if has_input && matches!(state, Life::Open | Life::Failing) {
            self.deliver_input(index, InputSource::Own);
        } else if matches!(state, Life::Open | Life::Failing) {
            self.end_if_owed(index);
        }
        Extra::Resumed
    }

    /// Slot `index`'s handler shut its sending side and all it wrote before is sent:
    /// the shutdown, once. (Once its peer has ended its stream too, it closes as a
    /// leaving connection: `Loop::shutdown_write` and `end_of_stream` see to that.)
    #[cold]
    #[inline(never)]
    fn shut_write(&mut self, index: u32) -> Option<Next> {
        let flags = &mut self.slot_mut(index).flags;
        if flags.contains(Flags::WR_SHUT) {
            return None;
        }
        flags.insert(Flags::WR_SHUT);
        Some(Next::ShutdownWrite(index))
    }

    /// The next output of an outbound connection that has not connected: the connect
    /// itself, then, once the poller reports its socket writable (or hung up), the
    /// question how it ended.
    fn connecting_output(&mut self, index: u32) -> Option<Next> {
        let flags = &mut self.slot_mut(index).flags;
        if flags.contains(Flags::CONNECT_PENDING) {
            flags.remove(Flags::CONNECT_PENDING);
            return Some(Next::Connect(index));
        }
        (!flags.contains(Flags::WRITE_BLOCKED)).then_some(Next::FinishConnect(index))
    }

    /// Ends slot `index`, abandoned (closed, aborted, timed out or shut down) before the
    /// driver was asked to connect it: there is no socket, so `closed` runs now.
    pub(super) fn abandon(&mut self, index: u32) {
        self.pool.unix_paths.remove(index);
        let slot = self.slot_mut(index);
        slot.flags.remove(Flags::CONNECT_PENDING);
        let event = match slot.state {
            Life::Aborting => Event::AbortEmitted,
            Life::Connecting => Event::ShutdownClose,
            _ => Event::Flushed,
        };
        slot.go(event, Default::default());
        self.finish_close(index);
    }

    /// Slot `index` can no longer send (`Life::SendFailed`): its one read of what the
    /// peer sent before, if it has room and its stream has not ended (the read's
    /// emission clears `READABLE`, so there is one), then the close with the send's
    /// error. Output written meanwhile is dropped.
    fn after_send_failed(&mut self, index: u32) -> Next {
        if self.take_last_read(index) {
            return Next::Read(index);
        }
        self.emit_failed_close(index)
    }

    /// Failed slot `index` may read once more, for what its peer sent before it
    /// failed: if it was reported readable, its peer's stream has not ended and its
    /// input buffer has room. Takes the readiness for that read (`true`).
    fn take_last_read(&mut self, index: u32) -> bool {
        let in_cap = self.config.input_capacity as u32;
        let slot = self.slot_mut(index);
        let read = slot.flags.contains(Flags::READABLE)
            && !slot.flags.contains(Flags::EOF)
            && slot.bufs.in_len < in_cap;
        if read {
            slot.flags.remove(Flags::READABLE);
        }
        read
    }

    /// Slot `index`'s socket failed while its input waited (`Life::Failing`): one more
    /// read after a failed send; the `drained` owed for output that backed up (it was
    /// dropped: there is room); the input again once it no longer waits; no interest
    /// in the poller (what would it report?); nothing sent.
    #[cold]
    #[inline(never)]
    fn failing_output(&mut self, index: u32) -> Option<Next> {
        if self.take_last_read(index) {
            // Once, first (what the peer sent before it failed): whatever it finds,
            // nothing more is read.
            self.slot_mut(index).flags.insert(Flags::EOF);
            return Some(Next::Read(index));
        }
        let slot = self.slot_mut(index);
        if slot.flags.contains(Flags::BACKED_UP) {
            slot.flags.remove(Flags::BACKED_UP);
            self.stats.drains += 1;
            let action = self.call_handler(index, |h, conn| h.drained(conn));
            self.apply_action(index, action);
            self.enqueue(index);
            return None;
        }
        if slot.flags.intersects(Flags::CONFIGURE | Flags::WAITING) {
            match self.options_or_resume(index) {
                Extra::Output(next) => return Some(next),
                Extra::Resumed => {
                    self.enqueue(index);
                    return None;
                }
                Extra::StillWaiting => {}
            }
        }
        let flags = &mut self.slot_mut(index).flags;
        if flags.intersects(Flags::REG_READ | Flags::REG_WRITE) {
            flags.remove(Flags::REG_READ | Flags::REG_WRITE);
            return Some(Next::Interest(index, Interest::new(false, false)));
        }
        None
    }

    /// Slot `index`'s socket failed: its output (written since, if any) is dropped
    /// and it closes now.
    fn emit_failed_close(&mut self, index: u32) -> Next {
        let Self { slots, buffers, .. } = self;
        let slot = &mut slots.as_mut()[index as usize];
        buffers.release(index, &mut slot.bufs);
        slot.bufs.in_len = 0;
        slot.flags.remove(Flags::STALLED);
        self.emit_close(index, Event::Flushed)
    }

    /// A send of slot `index`'s pending output (`None`: a transformed connection
    /// with nothing its transport can send yet).
    #[inline]
    fn begin_transmit(&mut self, index: u32) -> Option<Next> {
        let slot = self.slot(index);
        if slot.flags.contains(Flags::TRANSFORMED) {
            return self.transformed_transmit(index);
        }
        // (A plain connection: its output is all in its buffers.)
        let len = self.buffers.pending(index, &slot.bufs);
        self.handler.prewrite(slot.info.id, len);
        Some(Next::Transmit(index))
    }

    /// Closes slot `index` (`event`: its output is flushed, or a shutdown closes it).
    fn emit_close(&mut self, index: u32, event: Event) -> Next {
        let in_cap = self.config.input_capacity;
        let Self { slots, buffers, .. } = self;
        let slot = &mut slots.as_mut()[index as usize];
        buffers.release(index, &mut slot.bufs);
        slot.go(event, slot.facts(in_cap));
        if let Some(w) = &self.waker {
            w.target().close(slot.info.id);
        }
        self.finalize = Some(index);
        Next::Close(index)
    }

    fn emit_abort(&mut self, index: u32) -> Next {
        let Self { slots, buffers, .. } = self;
        let slot = &mut slots.as_mut()[index as usize];
        buffers.release(index, &mut slot.bufs);
        slot.bufs.in_len = 0;
        slot.go(Event::AbortEmitted, Default::default());
        if let Some(w) = &self.waker {
            w.target().close(slot.info.id);
        }
        self.finalize = Some(index);
        Next::Abort(index)
    }

    /// The output is flushed and the peer may still be sending: shut the sending side,
    /// then read and discard until it closes too, for at most `Config::linger`.
    /// (`None`: the handler had shut the sending side already; the linger starts
    /// without a second shutdown.)
    fn begin_linger(&mut self, index: u32) -> Option<Next> {
        let deadline = self.now + self.config.linger;
        let slot = self.slot_mut(index);
        slot.flags.remove(Flags::STALLED);
        slot.go(Event::Flushed, Default::default());
        slot.bufs.in_len = 0;
        let shut = slot.flags.contains(Flags::WR_SHUT);
        slot.flags.insert(Flags::WR_SHUT);
        let id = slot.info.id;
        if let Some(w) = &self.waker {
            w.target().close(id);
        }
        self.timers.set(self.slots.as_mut(), index, Some(deadline));
        if shut {
            self.enqueue(index);
            return None;
        }
        Some(Next::ShutdownWrite(index))
    }

    fn emit_detach(&mut self, index: u32) -> Next {
        let slot = self.slot_mut(index);
        slot.go(Event::Flushed, Default::default());
        let id = slot.info.id;
        if let Some(w) = &self.waker {
            w.target().close(id);
        }
        Next::Detach(index)
    }

    /// During a shutdown: the trigger's output, then a close for every open
    /// connection, then `Shutdown`.
    fn next_shutdown_output(&mut self) -> Next {
        let slots = self.slots.as_ref();
        let buffers = &self.buffers;
        let step = self.shutdown.next(
            slots.len(),
            |i| slots[i as usize].state.is_live(),
            |i| {
                let slot = &slots[i as usize];
                slot.state.sends() && buffers.pending(i, &slot.bufs) > 0
            },
        );
        match step {
            Step::Flush(i) => match self.begin_transmit(i) {
                Some(next) => next,
                None => {
                    // A transformed trigger whose transport can send nothing now.
                    self.shutdown.flushed(i);
                    self.next_shutdown_output()
                }
            },
            // A connection being reset stays reset: a shutdown does not turn a decided
            // abort into a plain close.
            Step::Close(i) if self.slot(i).flags.contains(Flags::CONNECT_PENDING) => {
                // A connect not started yet has no socket to close.
                self.abandon(i);
                self.next_shutdown_output()
            }
            Step::Close(i) if self.slot(i).state == Life::Aborting => self.emit_abort(i),
            Step::Close(i) => self.emit_close(i, Event::ShutdownClose),
            Step::Done => {
                self.phase = Phase::Done;
                Next::Shutdown
            }
        }
    }

    /// The output for `next`, lending it the buffers it points into.
    pub(super) fn materialize(&mut self, next: Next) -> Output<'_, H, S, B> {
        match next {
            Next::Accept(listener) => Output::Accept(Accept::new(self, listener)),
            Next::Pause(listener) => Output::PauseAccept { listener },
            Next::Resume(listener) => Output::ResumeAccept { listener },
            Next::Shutdown => Output::Shutdown,
            Next::Configure(i) => {
                let slot = self.slot(i);
                Output::Configure {
                    id: slot.info.id,
                    options: slot.options,
                }
            }
            Next::Interest(i, interest) => Output::SetInterest {
                id: self.slot(i).info.id,
                interest,
            },
            Next::Close(i) => Output::Close {
                id: self.slot(i).info.id,
            },
            Next::Abort(i) => Output::Abort {
                id: self.slot(i).info.id,
            },
            Next::ShutdownWrite(i) => Output::ShutdownWrite {
                id: self.slot(i).info.id,
            },
            Next::Detach(i) => {
                let id = self.slot(i).info.id;
                Output::Detach(Detach::new(self, id, i))
            }
            Next::Connect(i) => {
                let id = self.slot(i).info.id;
                Output::Connect(Connect::new(self, id, i))
            }
            Next::FinishConnect(i) => {
                let id = self.slot(i).info.id;
                Output::FinishConnect(FinishConnect::new(self, id, i))
            }
            Next::Read(i) => {
                let slot = self.slot(i);
                let id = slot.info.id;
                let (scratch, range) =
                    if slot.flags.contains(Flags::TRANSFORMED) && slot.state != Life::Lingering {
                        // After its plaintext and the record it keeps, always: decoded in
                        // place.
                        (false, self.buffers.own_read_target(i, &slot.bufs))
                    } else {
                        self.buffers.read_target(i, &slot.bufs)
                    };
                Output::Read(Read::new(self, id, i, scratch, range))
            }
            Next::TransmitBatch => Output::TransmitBatch(TransmitBatch::new(self)),
            Next::Transmit(i) => {
                let slot = self.slot(i);
                let id = slot.info.id;
                if slot.flags.contains(Flags::TRANSFORMED) {
                    let len = self.transport_outgoing(i).len();
                    return Output::Transmit(Transmit::new(self, id, i, 0..len, true));
                }
                let range = self.buffers.pending_range(i, &slot.bufs);
                Output::Transmit(Transmit::new(self, id, i, range, false))
            }
        }
    }
}

/// Whether `slot` must read before it sends: the poller reported it readable and it may
/// read now (its input buffer, of `in_cap` bytes, has room).
#[inline(always)]
fn may_read_first<C>(slot: &Slot<C>, in_cap: u32) -> bool {
    // READABLE first: right after a read (the common case) it is clear.
    slot.flags.contains(Flags::READABLE)
        && slot.state == Life::Open
        && !slot.flags.intersects(Flags::EOF | Flags::WRITE_BLOCKED)
        && slot.bufs.in_len < in_cap
}
