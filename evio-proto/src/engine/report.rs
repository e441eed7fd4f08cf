//! What the driver reports about the engine's own requests, through the operations of
//! `output.rs` (each method here is called by exactly one operation's report).

use core::ops::Range;

use crate::batch::SendBatch;
use crate::buffers::{Buffers, InputSource};
use crate::engine::life::{Event, Life, Why};
use crate::engine::{ByteStorage, Engine, Phase, SlotStorage};
use crate::relay;
use crate::slot::Flags;
use crate::{
    AcceptError, Addr, CloseError, ConnId, ConnInfo, Detached, Events, Flow, IoError, IoErrorKind,
    ListenerId, Refused,
};

impl<H, S, B> Engine<H, S, B>
where
    H: Events,
    S: SlotStorage<H::Context>,
    B: ByteStorage,
{
    /// An accepted connection: open it and call `opened`.
    pub(crate) fn accepted(
        &mut self,
        listener: ListenerId,
        local: Addr,
        peer: Addr,
    ) -> Result<ConnId, Refused> {
        if self.phase != Phase::Running {
            self.stats.refused_shutting_down += 1;
            return Err(Refused::ShuttingDown);
        }
        self.listeners.accepted(listener.index());
        let Some(index) = self.pool.free.pop(self.slots.as_mut()) else {
            self.stats.refused_pool_full += 1;
            return Err(Refused::PoolFull);
        };
        let options = self.config.options;
        let info = ConnInfo {
            id: ConnId::new(ConnId::slot_word(index, self.loops_byte()), 0),
            listener,
            local,
            peer,
            outbound: false,
        };
        let id = self.slot_mut(index).open(info, options);
        self.pool.open += 1;
        self.stats.accepted += 1;
        if let Some(w) = &self.waker {
            w.target().open(id);
        }
        if self.start_transform(index) {
            // Its handler hears of it once its handshake is over.
            return Ok(id);
        }
        let action = self.call_handler(index, |h, conn| h.opened(conn));
        self.apply_action(index, action);
        self.enqueue(index);
        Ok(id)
    }

    /// Accepting would block: the backlog is empty.
    /// An accepted connection went to another loop.
    pub(crate) fn accepted_elsewhere(&mut self, listener: ListenerId) {
        self.listeners.accepted(listener.index());
        self.stats.handed_off += 1;
    }

    pub(crate) fn accept_blocked(&mut self, listener: ListenerId) {
        self.listeners.blocked(listener.index());
    }

    /// Accepting failed: back off unless the connection merely went away.
    pub(crate) fn accept_failed(&mut self, listener: ListenerId, error: AcceptError) {
        self.stats.accept_errors += 1;
        if self.listeners.failed(listener.index(), error, self.now) {
            self.stats.accept_pauses += 1;
        }
    }

    /// `n` bytes (0: end of stream) were read into the buffer of slot `index`'s read,
    /// which lent `len` bytes (of the scratch buffer, or of its own input buffer).
    pub(crate) fn read_done(&mut self, index: u32, scratch: bool, len: usize, n: usize) {
        if n == 0 {
            self.end_of_stream(index);
            return;
        }
        self.stats.reads += 1;
        self.stats.bytes_read += n as u64;
        let slot = self.slot_mut(index);
        // A read that filled the buffer probably left more behind: read again without
        // waiting for the poller. Otherwise wait for the next report.
        if n < len {
            slot.flags.remove(Flags::READABLE | Flags::HUP);
        }
        if slot.state == Life::Lingering {
            // Read only to let the peer finish: discarded.
            self.enqueue(index);
            return;
        }
        let source = if scratch {
            InputSource::Scratch(n)
        } else {
            // (A transformed connection's reads always go to its own buffer.)
            if slot.flags.contains(Flags::TRANSFORMED) {
                self.transformed_read(index, n);
                return;
            }
            Buffers::<B>::read_into_own(&mut slot.bufs, n);
            InputSource::Own
        };
        self.deliver_input(index, source);
        self.enqueue(index);
    }

    /// Slot `index`'s read found nothing.
    pub(crate) fn read_blocked(&mut self, index: u32) {
        self.slot_mut(index)
            .flags
            .remove(Flags::READABLE | Flags::HUP);
    }

    /// Slot `index`'s transmit of `len` bytes wrote `n`.
    pub(crate) fn transmit_done(&mut self, index: u32, len: usize, n: usize) {
        self.stats.writes += 1;
        self.stats.bytes_written += n as u64;
        self.complete_transmit(index, len, n);
    }

    /// Slot `index`'s transmit of `len` bytes would block.
    pub(crate) fn transmit_blocked(&mut self, index: u32, len: usize) {
        self.complete_transmit(index, len, 0);
    }

    /// The batch being performed (`Output::TransmitBatch`).
    pub(crate) fn batch(&self) -> &SendBatch {
        &self.batch
    }

    /// The connection of batch entry `k`.
    pub(crate) fn batch_id(&self, k: usize) -> ConnId {
        self.slot(self.batch.entry(k).0).info.id
    }

    /// The bytes batch entry `k` lends: the first of its pending bytes, as many as
    /// when the batch was made. (A report of another entry may have added output
    /// after them, or moved them out of the scratch buffer, but never sent or dropped
    /// them: only the entry's own report does.)
    pub(crate) fn batch_bytes(&self, k: usize) -> &[u8] {
        let (index, len) = self.batch.entry(k);
        let range = self.buffers.pending_range(index, &self.slot(index).bufs);
        let len = len.min(range.len());
        self.buffers.bytes(range.start..range.start + len)
    }

    /// Batch entry `k` wrote `n` of the bytes it lent (0: it would block): accounted
    /// for as a transmit's report is, but without running a handler. Returns whether
    /// its output drained with someone waiting for that: [`Engine::batch_drained`] is
    /// then due once every entry is reported, so that no handler writes to a
    /// connection between its send and its report.
    pub(crate) fn batch_sent(&mut self, k: usize, n: usize) -> bool {
        let (index, len) = self.batch.entry(k);
        debug_assert!(n <= len, "wrote {n} of {len}");
        let n = n.min(len);
        if n > 0 {
            self.stats.writes += 1;
            self.stats.bytes_written += n as u64;
        }
        let drained = self.account_transmit(index, len, n);
        self.send_settled(index, n, len - n);
        drained
    }

    /// Batch entry `k`'s output drained during the batch: the waiters, `drained` and
    /// the stalled input, as after a transmit, if it is still drained (a handler of an
    /// entry before it may have written to it since: then its next send's report
    /// does this) and the server is not shutting down.
    pub(crate) fn batch_drained(&mut self, k: usize) {
        let (index, _) = self.batch.entry(k);
        let slot = self.slot(index);
        let drained = self.phase == Phase::Running
            && self.buffers.pending(index, &slot.bufs) == 0
            && !slot.flags.contains(Flags::WRITE_BLOCKED)
            && slot
                .flags
                .intersects(Flags::BACKED_UP | Flags::STALLED | Flags::WAITED_ON);
        if drained {
            self.output_drained(index);
            self.enqueue(index);
        }
    }

    /// Batch entry `k`'s write failed.
    pub(crate) fn batch_failed(&mut self, k: usize, error: IoError) {
        let (index, len) = self.batch.entry(k);
        self.io_failed(index, error, Some(len));
    }

    /// Slot `index`'s read, or its transmit of `transmit` bytes, failed: nothing more can
    /// be sent, so the connection closes and `closed` gets the error: at once after a
    /// read, and after a transmit once it has read what the peer sent before (see
    /// `Engine::fail`).
    pub(crate) fn io_failed(&mut self, index: u32, error: IoError, transmit: Option<usize>) {
        let event = match transmit {
            Some(len) => {
                let slot = self.slot(index);
                let id = slot.info.id;
                // (A transformed connection's send is of its transport's bytes, not
                // the handler's plaintext: no `postwrite`.)
                if !slot.flags.contains(Flags::TRANSFORMED) {
                    self.handler.postwrite(id, 0, len);
                }
                Event::SendFailed
            }
            None => Event::ReadFailed,
        };
        self.stats.io_errors += 1;
        self.fail(index, CloseError::Io(error), event);
    }

    /// Slot `index` was detached: call `detached`, or `closed` if the handler did not
    /// take the socket (or there was none to take).
    pub(crate) fn detach_done(&mut self, index: u32, mut socket: Detached<'_>) {
        if !socket.holds_socket() {
            self.detach_failed(index);
            return;
        }
        let slot = self.slot_mut(index);
        let info = slot.info;
        let mut context = slot.context.take().unwrap_or_default();
        let bufs = slot.bufs;
        let unread = self.buffers.input_range(index, &bufs, InputSource::Own);
        let mut taken = false;
        let mut flow = self.with_loop(unread, |h, lp, unread| {
            let flow = h.detached(&info, &mut context, socket.with_input(unread), lp);
            taken = !socket.holds_socket();
            flow
        });
        if taken {
            self.stats.detached += 1;
            drop(context);
        } else {
            self.stats.closed += 1;
            let closed = self.with_loop(0..0, |h, lp, _| h.closed(&info, context, None, lp));
            if closed == Flow::Shutdown {
                flow = Flow::Shutdown;
            }
        }
        self.free_slot(index);
        if flow == Flow::Shutdown {
            self.begin_shutdown(None);
        }
    }

    /// Slot `index` could not be detached (the driver failed to take its socket out of
    /// the poller or to make it blocking): the connection ends as a close with an I/O
    /// error.
    pub(crate) fn detach_failed(&mut self, index: u32) {
        let slot = self.slot_mut(index);
        let info = slot.info;
        let context = slot.context.take().unwrap_or_default();
        self.stats.closed += 1;
        self.stats.io_errors += 1;
        let error = CloseError::Io(IoError::new(IoErrorKind::Other));
        self.free_slot(index);
        self.call_server(|h, lp| h.closed(&info, context, Some(error), lp));
    }

    /// The bytes of `range` of the byte storage (an operation's buffer).
    pub(crate) fn bytes(&self, range: Range<usize>) -> &[u8] {
        self.buffers.bytes(range)
    }

    /// The bytes of `range` of the byte storage, to write into (a read's buffer).
    pub(crate) fn bytes_mut(&mut self, range: Range<usize>) -> &mut [u8] {
        self.buffers.bytes_mut(range)
    }

    /// A write of slot `index`'s `len` pending bytes took `n`: `postwrite`, then what
    /// it means for the connection (blocked output, stalled input that may resume).
    fn complete_transmit(&mut self, index: u32, len: usize, n: usize) {
        if self.account_transmit(index, len, n) {
            self.output_drained(index);
        }
        self.send_settled(index, n, len - n);
    }

    /// The part of `complete_transmit` that runs no handler: `postwrite`, the bytes
    /// gone from the buffer, send progress and blocked output. Returns whether
    /// `output_drained` is due.
    #[inline(always)]
    fn account_transmit(&mut self, index: u32, len: usize, n: usize) -> bool {
        let id = self.slot(index).info.id;
        let remaining = len - n;
        self.handler.postwrite(id, n, remaining);
        let Self { slots, buffers, .. } = self;
        let slot = &mut slots.as_mut()[index as usize];
        if buffers.sent(index, &mut slot.bufs, len, n) {
            self.stats.output_spills += 1;
        }
        self.send_accounted(index, n, remaining)
    }

    /// A send of slot `index` took `n` bytes and left `remaining`: send progress,
    /// blocked output, or drained output (waiters, `drained`, stalled input).
    #[inline(always)]
    pub(crate) fn after_send(&mut self, index: u32, n: usize, remaining: usize) {
        if self.send_accounted(index, n, remaining) {
            self.output_drained(index);
        }
        self.send_settled(index, n, remaining);
    }

    /// The first part of `after_send`, which runs no handler: send progress and
    /// blocked output. Returns whether the output drained and someone waits for that
    /// (`output_drained` is due).
    #[inline(always)]
    fn send_accounted(&mut self, index: u32, n: usize, remaining: usize) -> bool {
        let shutting_down = self.phase == Phase::ShuttingDown;
        let slot = self.slot_mut(index);
        if n > 0 && slot.state.is_leaving() {
            self.send_progress(index);
        }
        let slot = self.slot_mut(index);
        if remaining > 0 {
            slot.flags.insert(Flags::WRITE_BLOCKED | Flags::BACKED_UP);
            false
        } else {
            slot.flags.remove(Flags::WRITE_BLOCKED);
            slot.flags
                .intersects(Flags::BACKED_UP | Flags::STALLED | Flags::WAITED_ON)
                && !shutting_down
        }
    }

    /// The last part of `after_send`: a shutdown's flush moves on, and the connection
    /// comes back for its next output.
    #[inline(always)]
    fn send_settled(&mut self, index: u32, n: usize, remaining: usize) {
        if self.phase == Phase::ShuttingDown && (remaining > 0 || n == 0) {
            // A shutdown writes the trigger's output as far as the socket takes it
            // without blocking, then moves on.
            self.shutdown.flushed(index);
        }
        self.enqueue(index);
    }

    /// Slot `index`'s output has drained: the connections whose input waited for it
    /// have theirs delivered again at their next turn.
    #[cold]
    #[inline(never)]
    pub(super) fn release_waiters(&mut self, index: u32) {
        let Self {
            slots, attention, ..
        } = self;
        relay::release(slots.as_mut(), index, |slots, waiter| {
            attention.push_back(slots, waiter);
        });
    }

    /// Leaving slot `index` made send progress: its bound (`Config::send_timeout`)
    /// starts again.
    #[cold]
    #[inline(never)]
    pub(super) fn send_progress(&mut self, index: u32) {
        let bound = self.send_bound();
        let Self { slots, timers, .. } = self;
        timers.set(slots.as_mut(), index, bound);
    }

    /// Every byte of slot `index`'s output is sent and its output had backed up, or
    /// input (its own, or another connection's) waits for the room: the connections
    /// waiting for it are released, then `drained`, then the stalled input.
    #[inline(never)]
    fn output_drained(&mut self, index: u32) {
        if self.slot(index).flags.contains(Flags::WAITED_ON) {
            self.release_waiters(index);
        }
        let slot = self.slot_mut(index);
        // A peer that ended its stream still reads: a producer finishes its answer
        // before the close (which waits for the output it writes).
        let peer_ended = matches!(
            slot.state,
            Life::Leaving {
                why: Why::PeerEnded { .. },
                ..
            }
        );
        if (slot.state == Life::Open || peer_ended) && slot.flags.contains(Flags::BACKED_UP) {
            slot.flags.remove(Flags::BACKED_UP);
            self.stats.drains += 1;
            let action = self.call_handler(index, |h, conn| h.drained(conn));
            self.apply_action(index, action);
        }
        let slot = self.slot_mut(index);
        let draining = matches!(
            slot.state,
            Life::Leaving {
                why: Why::PeerEnded { drain: true },
                ..
            }
        );
        if slot.flags.contains(Flags::STALLED) && (slot.state == Life::Open || draining) {
            slot.flags.remove(Flags::STALLED);
            self.deliver_input(index, InputSource::Own);
        }
    }
}
