//! Calling the handler: the `Conn` and `Loop` it works through, and what the engine
//! does with the input it did not consume.

use core::ops::Range;

use crate::buffers::{BufState, InputSource, OutputTarget};
use crate::conn::NO_CURRENT;
use crate::engine::life::{Event, Life};
use crate::engine::{ByteStorage, Engine, Phase, SlotStorage};
use crate::relay;
use crate::slot;
use crate::slot::Flags;
use crate::{Action, CloseError, Conn, Events, Flow, Loop};

/// What a `data` call did besides its action.
struct DataEffects {
    /// What it said it consumed (`None`: all of it).
    consumed: Option<usize>,
    /// A write did not fit the output buffer.
    hit_full: bool,
    /// The connection its unconsumed input is to wait for (`NO_CURRENT`: none).
    wait_on: u32,
}

impl<H, S, B> Engine<H, S, B>
where
    H: Events,
    S: SlotStorage<H::Context>,
    B: ByteStorage,
{
    /// Calls a handler method that takes no input (`opened`, `woken`, `timeout`,
    /// `drained`) with a `Conn` for slot `index`.
    pub(super) fn call_handler<R>(
        &mut self,
        index: u32,
        f: impl FnOnce(&mut H, &mut Conn<'_, H::Context>) -> R,
    ) -> R {
        self.with_conn(index, None, |h, conn, _| f(h, conn)).0
    }

    /// Calls a server-level handler method (`tick`, `closed`, `server_woken`) with the
    /// `Loop`, and carries out the `Flow` it returns.
    pub(super) fn call_server(
        &mut self,
        f: impl FnOnce(&mut H, &mut Loop<'_, H::Context>) -> Flow,
    ) {
        if self.with_loop(0..0, |h, lp, _| f(h, lp)) == Flow::Shutdown {
            self.begin_shutdown(None);
        }
    }

    /// Calls `f` with the `Loop` (no connection is current) and the bytes of `input`
    /// (a detached connection's unread input).
    pub(super) fn with_loop<R>(
        &mut self,
        input: Range<usize>,
        f: impl FnOnce(&mut H, &mut Loop<'_, H::Context>, &[u8]) -> R,
    ) -> R {
        let running = self.phase == Phase::Running;
        let Self {
            slots,
            buffers,
            handler,
            attention,
            timers,
            waker,
            loops,
            now,
            config,
            pool,
            ..
        } = self;
        let (inputs, out) = buffers.halves();
        let mut lp = Loop {
            now: *now,
            config,
            pool,
            wait_on: NO_CURRENT,
            slots: slots.as_mut(),
            out,
            attention,
            timers,
            waker: waker.as_ref(),
            loops: loops.as_ref(),
            current: NO_CURRENT,
            current_target: OutputTarget::Own,
            current_bufs: BufState::EMPTY,
            running,
        };
        f(handler, &mut lp, &inputs[input])
    }

    /// Calls `f` with a `Conn` for slot `index` and the input of `source`. Its output
    /// goes to the scratch buffer when the connection has nothing pending in its own
    /// buffer (a whole reply then costs no copy).
    fn with_conn<R>(
        &mut self,
        index: u32,
        source: Option<InputSource>,
        f: impl FnOnce(&mut H, &mut Conn<'_, H::Context>, &[u8]) -> R,
    ) -> (R, DataEffects) {
        let running = self.phase == Phase::Running;
        let Self {
            slots,
            buffers,
            handler,
            stats,
            attention,
            timers,
            waker,
            loops,
            now,
            config,
            pool,
            ..
        } = self;
        let slots = slots.as_mut();
        let target = buffers.output_target(index, &slots[index as usize].bufs);
        if target == OutputTarget::Scratch
            && let Some(owner) = buffers.scratch_owner()
            && owner != index
        {
            buffers.spill(&mut slots[owner as usize].bufs);
            stats.output_spills += 1;
        }
        let slot = &mut slots[index as usize];
        let input = match source {
            Some(InputSource::Own) if slot.flags.contains(Flags::TRANSFORMED) => {
                // Its plaintext: the incomplete record after it is not the handler's.
                let all = buffers.input_range(index, &slot.bufs, InputSource::Own);
                let kept = handler.transport().map_or(0, |t| t.kept(slot.info.id));
                all.start..all.end - kept
            }
            Some(source) => buffers.input_range(index, &slot.bufs, source),
            None => 0..0,
        };
        let mut context = slot.context.take().unwrap_or_default();
        let bufs = slot.bufs;
        let (inputs, out) = buffers.halves();
        let mut conn = Conn {
            lp: Loop {
                now: *now,
                config,
                pool,
                wait_on: NO_CURRENT,
                slots,
                out,
                attention,
                timers,
                waker: waker.as_ref(),
                loops: loops.as_ref(),
                current: index,
                current_target: target,
                current_bufs: bufs,
                running,
            },
            context: &mut context,
            consumed: None,
            hit_full: false,
        };
        let result = f(handler, &mut conn, &inputs[input]);
        let effects = DataEffects {
            consumed: conn.consumed,
            hit_full: conn.hit_full,
            wait_on: conn.lp.wait_on,
        };
        let bufs = conn.lp.current_bufs;
        let Self { slots, buffers, .. } = self;
        let slot = &mut slots.as_mut()[index as usize];
        slot.bufs = bufs;
        slot.context = Some(context);
        if effects.hit_full {
            if slot.state == Life::Failing {
                // Its output can never be sent: dropped, there is room again, and
                // `drained` says so (a handler may wait for it before it takes input).
                buffers.release(index, &mut slot.bufs);
            }
            slot.flags.insert(Flags::BACKED_UP);
        }
        (result, effects)
    }

    /// Hands input to `data`, keeps what it did not consume, and decides about
    /// backpressure and frames too large for the buffer.
    pub(super) fn deliver_input(&mut self, index: u32, source: InputSource) {
        // (`kept`: a transformed connection's incomplete record, after its plaintext.)
        let (total, kept) = match source {
            InputSource::Scratch(n) => (n, 0),
            InputSource::Own => {
                let slot = self.slot(index);
                let all = slot.bufs.in_len as usize;
                if slot.flags.contains(Flags::TRANSFORMED) {
                    let plain = self.transformed_input_len(index);
                    (plain, all - plain)
                } else {
                    (all, 0)
                }
            }
        };
        let (action, effects) =
            self.with_conn(index, Some(source), |h, conn, input| h.data(conn, input));
        let consumed = effects.consumed.unwrap_or(total).min(total);
        let left = total - consumed;
        let Self { slots, buffers, .. } = self;
        let slot = &mut slots.as_mut()[index as usize];
        if buffers.keep_input(index, &mut slot.bufs, source, consumed, total + kept) {
            self.stats.input_carries += 1;
        }
        let cap = self.config.input_capacity;
        // Input left because output was full waits for the output to drain; with
        // nothing pending to drain, the handler's write can never fit.
        let stalled = left > 0 && effects.hit_full && self.pending_len(index) > 0;
        let slot = self.slot_mut(index);
        slot.flags.set(Flags::STALLED, stalled);
        let rare = effects.wait_on != NO_CURRENT
            || slot.flags.intersects(Flags::WAITING | Flags::ENDED_OWED);
        let waiting = rare && self.relay_wait(index, effects.wait_on, left > 0 && !stalled);
        let too_large = left + kept == cap && !stalled && !waiting;
        self.apply_action(index, action);
        if rare && !waiting {
            self.end_if_owed(index);
        }
        if too_large {
            self.stats.frame_too_large += 1;
            self.slot_mut(index)
                .error
                .get_or_insert(CloseError::FrameTooLarge { capacity: cap });
            // The peer is still sending the frame: the close lingers over the unread
            // input (so what the handler wrote reaches the peer before a reset could),
            // unless the handler is already closing or detaching it.
            let bound = self.send_bound();
            let Self { slots, timers, .. } = self;
            let _ = slot::request(slots.as_mut(), timers, index, Event::Close, cap, bound);
        }
    }

    /// After a `data` call of slot `index` that named `on` to wait for (`NO_CURRENT`:
    /// none): whether its input now waits for `on`'s drain. It waits if `left` (input
    /// is left, not stalled behind its own output) and `on` is still there with output
    /// pending; otherwise any earlier wait ends.
    #[cold]
    #[inline(never)]
    fn relay_wait(&mut self, index: u32, on: u32, left: bool) -> bool {
        if on == relay::HELD {
            let slots = self.slots.as_mut();
            if left {
                relay::hold(slots, index);
                slots[index as usize].flags.insert(Flags::WAITING);
            } else {
                relay::unwait(slots, index);
                slots[index as usize].flags.remove(Flags::WAITING);
            }
            return left;
        }
        let target_pending = on != NO_CURRENT
            && matches!(self.slot(on).state, Life::Open | Life::Connecting)
            && self.pending_len(on) > 0;
        let slots = self.slots.as_mut();
        if left && target_pending {
            relay::wait(slots, index, on);
            slots[index as usize].flags.insert(Flags::WAITING);
            self.stats.relay_waits += 1;
            true
        } else {
            relay::unwait(slots, index);
            slots[index as usize].flags.remove(Flags::WAITING);
            false
        }
    }

    /// The end of slot `index`'s stream was read (or its socket failed:
    /// `Life::Failing`) while its input waited for another connection, and that input
    /// has now been delivered: its handler hears of the end (or it closes with the
    /// error).
    #[cold]
    #[inline(never)]
    pub(super) fn end_if_owed(&mut self, index: u32) {
        let slot = self.slot_mut(index);
        if slot.flags.contains(Flags::ENDED_OWED) && !slot.flags.contains(Flags::WAITING) {
            slot.flags.remove(Flags::ENDED_OWED);
            if slot.state == Life::Failing {
                // Its socket failed while the input waited: now it closes with the error.
                slot.go(Event::Delivered, Default::default());
                self.enqueue(index);
            } else {
                self.end_of_stream(index);
            }
        }
    }

    /// A read found the end of the stream: an open connection's handler is asked
    /// (`input_ended`); unless it keeps the connection open, it closes once its output
    /// is flushed (and once the handler had the input stalled before the end), or, if
    /// it lingered, at once.
    pub(super) fn end_of_stream(&mut self, index: u32) {
        let in_cap = self.config.input_capacity;
        let slot = self.slot_mut(index);
        slot.flags.insert(Flags::EOF);
        slot.flags.remove(Flags::READABLE | Flags::HUP);
        // (A hang-up report, kqueue's EV_EOF on a half-close, makes the engine read
        // even while input is stalled: that input arrived before the end of stream, and
        // is drained before the close.)
        if slot.state == Life::Open && slot.flags.contains(Flags::WAITING) {
            // Input read before the end still waits for another connection: the
            // handler hears of the end once it has had that input (a relay passes
            // the end on after it, not before).
            slot.flags.insert(Flags::ENDED_OWED);
            self.enqueue(index);
            return;
        }
        if slot.state == Life::Open {
            // Its handler decides: close as the peer did (the default), or stay open
            // half-closed.
            match self.call_handler(index, |h, conn| h.input_ended(conn)) {
                Action::Close => {}
                // Kept open with its sending side shut already: both directions are
                // over, and it closes once its output is sent (bounded as any close).
                Action::None if self.slot(index).flags.contains(Flags::SHUT_WR) => {}
                action => {
                    self.apply_action(index, action);
                    self.enqueue(index);
                    return;
                }
            }
        }
        let bound = self.send_bound();
        let Self { slots, timers, .. } = self;
        let slots = slots.as_mut();
        let slot = &mut slots[index as usize];
        let before = slot.state;
        let next = slot.go(Event::PeerEnded, slot.facts(in_cap));
        if before == Life::Open && next.is_leaving() {
            timers.set(slots, index, bound);
        }
        self.enqueue(index);
    }
}
