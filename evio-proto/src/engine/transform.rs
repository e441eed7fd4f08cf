//! Transformed connections (TLS): the handshake before `opened`, decoding after a
//! read, encoding before a send, the closing message before the close. Everything
//! here runs only for a slot with `Flags::TRANSFORMED`, which a plain server never
//! sets: its cost there is one flag test on the read, delivery and send paths.

use crate::CloseError;
use crate::Transport;
use crate::buffers::InputSource;
use crate::engine::life::{Event, Life};
use crate::engine::next::Next;
use crate::engine::{ByteStorage, Engine, SlotStorage};
use crate::slot::Flags;
use crate::{Events, Interest, TransportError};

impl<H, S, B> Engine<H, S, B>
where
    H: Events,
    S: SlotStorage<H::Context>,
    B: ByteStorage,
{
    /// The handler's transport. Only called for transformed slots, which exist only
    /// when the handler has one.
    fn transport(handler: &mut H) -> &mut dyn Transport {
        handler
            .transport()
            .expect("a transformed connection's handler has a transport")
    }

    /// Slot `index` just opened (accepted, or connected): whether its transport takes
    /// it. If so it handshakes first (its handler hears of it once it is established,
    /// `true`); if the transport cannot start its session, it closes at once.
    #[cold]
    #[inline(never)]
    pub(super) fn start_transform(&mut self, index: u32) -> bool {
        let info = self.slot(index).info;
        let Some(transport) = self.handler.transport() else {
            return false;
        };
        match transport.start(&info) {
            Ok(false) => false,
            Ok(true) => {
                let deadline = self.now + self.config.handshake_timeout;
                let Self { slots, timers, .. } = self;
                let slots = slots.as_mut();
                let slot = &mut slots[index as usize];
                slot.flags.insert(Flags::TRANSFORMED);
                if !info.outbound {
                    // (An outbound connection's handler knows its id from the connect:
                    // it hears of a failed handshake in `closed`.)
                    slot.flags.insert(Flags::UNANNOUNCED);
                }
                slot.go(Event::Handshake, Default::default());
                timers.set(slots, index, Some(deadline));
                // (A client's session has its hello to send already.)
                self.sync_outgoing(index);
                self.enqueue(index);
                true
            }
            Err(e) => {
                self.stats.handshake_failures += 1;
                if !info.outbound {
                    self.slot_mut(index).flags.insert(Flags::UNANNOUNCED);
                }
                self.fail(index, CloseError::Transport(e), Event::ReadFailed);
                true
            }
        }
    }

    /// Slot `index` handshakes: a read it was reported ready for, then the transport's
    /// bytes to send, then poller interest (reads, and writability while a send is
    /// short).
    #[cold]
    #[inline(never)]
    pub(super) fn handshake_output(&mut self, index: u32) -> Option<Next> {
        let in_cap = self.config.input_capacity as u32;
        let slot = self.slot_mut(index);
        let can_read = slot.bufs.in_len < in_cap;
        if slot.flags.contains(Flags::READABLE) && can_read {
            slot.flags.remove(Flags::READABLE);
            return Some(Next::Read(index));
        }
        let write_blocked = slot.flags.contains(Flags::WRITE_BLOCKED);
        let id = slot.info.id;
        let sending = !Self::transport(&mut self.handler).outgoing(id).is_empty();
        if sending && !write_blocked {
            return Some(Next::Transmit(index));
        }
        let want_write = sending && write_blocked;
        let flags = &mut self.slot_mut(index).flags;
        if can_read != flags.contains(Flags::REG_READ)
            || want_write != flags.contains(Flags::REG_WRITE)
        {
            flags.set(Flags::REG_READ, can_read);
            flags.set(Flags::REG_WRITE, want_write);
            return Some(Next::Interest(index, Interest::new(can_read, want_write)));
        }
        None
    }

    /// A read of `n` bytes into transformed slot `index`'s own input buffer (after its
    /// plaintext and the record kept): decoded in place. A handshake that is over opens
    /// the connection to its handler; plaintext goes to it.
    #[cold]
    #[inline(never)]
    pub(super) fn transformed_read(&mut self, index: u32, n: usize) {
        let Self {
            handler,
            slots,
            buffers,
            ..
        } = self;
        let slot = &mut slots.as_mut()[index as usize];
        let id = slot.info.id;
        let transport = Self::transport(handler);
        let kept = transport.kept(id);
        let total = slot.bufs.in_len as usize;
        let plain_before = total - kept;
        let own = buffers.own_input(index);
        let undecoded = own.start + plain_before..own.start + total + n;
        let decoded = transport.decode(id, buffers.bytes_mut(undecoded));
        let decoded = match decoded {
            Ok(d) => d,
            Err(e) => {
                self.transform_failed(index, e);
                return;
            }
        };
        self.slot_mut(index).bufs.in_len = (plain_before + decoded.plain + decoded.kept) as u32;
        self.sync_outgoing(index);
        if self.slot(index).state == Life::Handshaking && !self.establish(index) {
            return;
        }
        if decoded.plain > 0 {
            self.deliver_input(index, InputSource::Own);
        }
        if decoded.ended && !self.slot(index).flags.contains(Flags::EOF) {
            // The peer's closing message: the end of its stream, after its plaintext.
            self.end_of_stream(index);
        }
        self.enqueue(index);
    }

    /// Transformed slot `index`'s transport failed: it closes at once, with the error.
    #[cold]
    pub(super) fn transform_failed(&mut self, index: u32, error: TransportError) {
        if self.slot(index).state == Life::Handshaking {
            self.stats.handshake_failures += 1;
        }
        self.stats.transport_errors += 1;
        self.fail(index, CloseError::Transport(error), Event::ReadFailed);
    }

    /// Handshaking slot `index` after a decode: if its transport is established, it
    /// opens and `opened` runs (`true` if it is still open afterwards for more of the
    /// read's handling); otherwise it goes on handshaking (`false`).
    fn establish(&mut self, index: u32) -> bool {
        let id = self.slot(index).info.id;
        if !Self::transport(&mut self.handler).established(id) {
            self.enqueue(index);
            return false;
        }
        self.stats.handshakes += 1;
        let Self { slots, timers, .. } = self;
        let slots = slots.as_mut();
        // The handshake's deadline is over; `opened` may set the handler's own.
        timers.set(slots, index, None);
        let slot = &mut slots[index as usize];
        slot.flags.remove(Flags::UNANNOUNCED);
        slot.go(Event::Established, Default::default());
        let action = self.call_handler(index, |h, conn| h.opened(conn));
        self.apply_action(index, action);
        // A handler that closed (or detached, which closes a transformed connection)
        // in `opened` is given no input.
        self.slot(index).state == Life::Open
    }

    /// The plaintext bytes in transformed slot `index`'s input buffer (the rest is an
    /// incomplete record).
    #[cold]
    #[inline(never)]
    pub(super) fn transformed_input_len(&mut self, index: u32) -> usize {
        let Self { handler, slots, .. } = self;
        let slot = &slots.as_ref()[index as usize];
        slot.bufs.in_len as usize - Self::transport(handler).kept(slot.info.id)
    }

    /// A send for transformed slot `index`: the transport's bytes waiting, or else
    /// its handler's plaintext encoded first (`prewrite` and `postwrite` count the
    /// plaintext taken). `None` if there is nothing it can send.
    #[cold]
    #[inline(never)]
    pub(super) fn transformed_transmit(&mut self, index: u32) -> Option<Next> {
        let Self {
            handler,
            slots,
            buffers,
            stats,
            ..
        } = self;
        let slot = &mut slots.as_mut()[index as usize];
        let id = slot.info.id;
        let transport = Self::transport(handler);
        if transport.outgoing(id).is_empty() {
            let plain = buffers.pending(index, &slot.bufs);
            if plain == 0 || slot.state == Life::Handshaking {
                return None;
            }
            let range = buffers.pending_range(index, &slot.bufs);
            match transport.encode(id, buffers.bytes(range)) {
                Ok(taken) => {
                    handler.prewrite(id, plain);
                    if buffers.sent(index, &mut slot.bufs, plain, taken) {
                        stats.output_spills += 1;
                    }
                    handler.postwrite(id, taken, plain - taken);
                }
                Err(e) => {
                    self.transform_failed(index, e);
                    return None;
                }
            }
            if !self.sync_outgoing(index) {
                return None;
            }
        }
        Some(Next::Transmit(index))
    }

    /// The socket took `n` (0: it would block) of the `len` transport bytes of slot
    /// `index`'s send.
    #[cold]
    #[inline(never)]
    pub(crate) fn transformed_sent(&mut self, index: u32, len: usize, n: usize) {
        if n > 0 {
            self.stats.writes += 1;
            self.stats.bytes_written += n as u64;
        }
        let id = self.slot(index).info.id;
        Self::transport(&mut self.handler).sent(id, n);
        self.sync_outgoing(index);
        let short = len - n;
        let unencoded = self.pending_len(index);
        if short > 0 || unencoded == 0 {
            // Blocked by a short send, or all of it sent (drained).
            self.after_send(index, n, short);
        } else {
            // The records went; more plaintext is to be encoded at its next turn.
            if n > 0 && self.slot(index).state.is_leaving() {
                self.send_progress(index);
            }
            self.enqueue(index);
        }
    }

    /// Transformed slot `index` leaves and all its output is sent: its transport's
    /// closing message first (once), then the close. `None` once it is sent.
    #[cold]
    #[inline(never)]
    pub(super) fn close_notify(&mut self, index: u32) -> Option<Next> {
        let slot = self.slot_mut(index);
        if slot.flags.contains(Flags::CLOSE_SENT) {
            return None;
        }
        slot.flags.insert(Flags::CLOSE_SENT);
        let id = slot.info.id;
        Self::transport(&mut self.handler).close(id);
        if !self.sync_outgoing(index) {
            return None;
        }
        Some(Next::Transmit(index))
    }

    /// Marks whether transformed slot `index`'s transport has bytes to send
    /// (`Flags::OUTGOING`, which the engine's count of pending output includes).
    fn sync_outgoing(&mut self, index: u32) -> bool {
        let id = self.slot(index).info.id;
        let has = !Self::transport(&mut self.handler).outgoing(id).is_empty();
        self.slot_mut(index).flags.set(Flags::OUTGOING, has);
        has
    }

    /// The transport's bytes waiting to be sent for transformed slot `index`.
    #[cold]
    #[inline(never)]
    pub(crate) fn transport_outgoing(&mut self, index: u32) -> &[u8] {
        let id = self.slot(index).info.id;
        Self::transport(&mut self.handler).outgoing(id)
    }

    /// Transformed slot `index` has gone: its transport forgets it.
    #[cold]
    #[inline(never)]
    pub(super) fn end_transform(&mut self, index: u32) {
        let id = self.slot(index).info.id;
        Self::transport(&mut self.handler).end(id);
    }
}
