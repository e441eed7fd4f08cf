//! Calling the handler: the `Conn` it writes through, and what the engine does with
//! the input it did not consume.

use crate::buffers::{InputSource, OutputTarget};
use crate::engine::{ByteStorage, Engine, SlotStorage};
use crate::slot::{Flags, SlotState};
use crate::{CloseError, Conn, Events};

/// What a `data` call did besides its action.
struct DataEffects {
    /// What it said it consumed (`None`: all of it).
    consumed: Option<usize>,
    /// A write did not fit the output buffer.
    hit_full: bool,
}

impl<H, S, B> Engine<H, S, B>
where
    H: Events,
    S: SlotStorage<H::Context>,
    B: ByteStorage,
{
    /// Calls a handler method that takes no input (`opened`, `woken`) with a `Conn` for
    /// slot `index`.
    pub(super) fn call_handler<R>(
        &mut self,
        index: u32,
        f: impl FnOnce(&mut H, &mut Conn<'_, H::Context>) -> R,
    ) -> R {
        self.with_conn(index, None, |h, conn, _| f(h, conn)).0
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
        let Self {
            slots,
            buffers,
            handler,
            stats,
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
            Some(source) => buffers.input_range(index, &slot.bufs, source),
            None => 0..0,
        };
        let (input, out) = buffers.handler_view(index, &slot.bufs, input, target);
        let mut context = slot.context.take().unwrap_or_default();
        let mut conn = Conn {
            info: &slot.info,
            context: &mut context,
            options: &mut slot.options,
            out,
            consumed: None,
            hit_full: false,
            options_changed: false,
        };
        let result = f(handler, &mut conn, input);
        let Conn {
            out,
            consumed,
            hit_full,
            options_changed,
            ..
        } = conn;
        let parts = out.into_parts();
        slot.context = Some(context);
        if options_changed {
            slot.flags.insert(Flags::CONFIGURE);
        }
        buffers.end_handler_output(index, &mut slot.bufs, target, parts);
        (result, DataEffects { consumed, hit_full })
    }

    /// Hands input to `data`, keeps what it did not consume, and decides about
    /// backpressure and frames too large for the buffer.
    pub(super) fn deliver_input(&mut self, index: u32, source: InputSource) {
        let total = match source {
            InputSource::Scratch(n) => n,
            InputSource::Own => self.slot(index).bufs.in_len as usize,
        };
        let (action, effects) =
            self.with_conn(index, Some(source), |h, conn, input| h.data(conn, input));
        let consumed = effects.consumed.unwrap_or(total).min(total);
        let left = total - consumed;
        let Self { slots, buffers, .. } = self;
        let slot = &mut slots.as_mut()[index as usize];
        if buffers.keep_input(index, &mut slot.bufs, source, consumed, total) {
            self.stats.input_carries += 1;
        }
        let pending = self.pending_len(index);
        let cap = self.config.input_capacity;
        // Input left because output was full waits for the output to drain; with
        // nothing pending to drain, the handler's write can never fit.
        let stalled = left > 0 && effects.hit_full && pending > 0;
        self.slot_mut(index).flags.set(Flags::STALLED, stalled);
        let too_large = left == cap && !stalled;
        self.apply_action(index, action);
        if too_large {
            self.stats.frame_too_large += 1;
            self.close_with(index, Some(CloseError::FrameTooLarge { capacity: cap }));
        }
    }

    /// A read found the end of the stream: the connection closes once its output is
    /// flushed (and once the handler had the input stalled before the end).
    pub(super) fn end_of_stream(&mut self, index: u32) {
        let slot = self.slot_mut(index);
        slot.flags.insert(Flags::EOF);
        slot.flags.remove(Flags::READABLE | Flags::HUP);
        // A hang-up report (kqueue's EV_EOF on a half-close) makes the engine read even
        // while input is stalled; that input arrived before the end of stream.
        if slot.state == SlotState::Open && slot.flags.contains(Flags::STALLED) {
            slot.flags.insert(Flags::EOF_DRAIN);
        }
        self.close_with(index, None);
        self.enqueue(index);
    }
}
