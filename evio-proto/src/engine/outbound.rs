//! What the driver reports about outbound connections: the connect started or failed
//! at once (`Output::Connect`), and how it ended (`Output::FinishConnect`).

use crate::engine::life::{Event, Life};
use crate::engine::{ByteStorage, Engine, SlotStorage};
use crate::slot::Flags;
use crate::{Addr, CloseError, ConnectAddr, Events, IoError};

impl<H, S, B> Engine<H, S, B>
where
    H: Events,
    S: SlotStorage<H::Context>,
    B: ByteStorage,
{
    /// Where slot `index` connects to.
    pub(crate) fn connect_addr(&self, index: u32) -> ConnectAddr<'_> {
        match self.slot(index).info.peer {
            Addr::Ip(addr) => ConnectAddr::Ip(addr),
            Addr::Unix => ConnectAddr::Unix(self.pool.unix_paths.get(index).unwrap_or_default()),
        }
    }

    /// Slot `index`'s socket exists and is connecting: the driver watches it for
    /// writability.
    pub(crate) fn connect_started(&mut self, index: u32) {
        self.pool.unix_paths.remove(index);
        self.slot_mut(index)
            .flags
            .insert(Flags::REG_WRITE | Flags::WRITE_BLOCKED);
    }

    /// Slot `index`'s connect failed before a socket was kept: `closed` runs now.
    pub(crate) fn connect_failed_at_once(&mut self, index: u32, error: IoError) {
        self.pool.unix_paths.remove(index);
        self.stats.connect_failures += 1;
        let slot = self.slot_mut(index);
        slot.error = Some(CloseError::Connect(error));
        slot.go(Event::ConnectFailed, Default::default());
        slot.go(Event::Flushed, Default::default());
        self.finish_close(index);
    }

    /// Slot `index` connected, from `local`: it opens, and `opened` runs.
    pub(crate) fn connect_done(&mut self, index: u32, local: Addr) {
        self.stats.connected += 1;
        let Self { slots, timers, .. } = self;
        // The connect's deadline is over; `opened` may set the handler's own.
        timers.set(slots.as_mut(), index, None);
        let slot = self.slot_mut(index);
        slot.info.local = local;
        slot.go(Event::Connected, Default::default());
        slot.flags.remove(Flags::WRITE_BLOCKED);
        let id = slot.info.id;
        if let Some(w) = &self.waker {
            w.target().open(id);
        }
        if self.start_transform(index) {
            // `opened` once its handshake is over.
            return;
        }
        let action = self.call_handler(index, |h, conn| h.opened(conn));
        self.apply_action(index, action);
        self.enqueue(index);
    }

    /// Slot `index`'s connect failed: its socket is closed (`Output::Close`), then
    /// `closed` runs with the error.
    pub(crate) fn connect_check_failed(&mut self, index: u32, error: IoError) {
        self.stats.connect_failures += 1;
        let slot = self.slot_mut(index);
        slot.error = Some(CloseError::Connect(error));
        slot.go(Event::ConnectFailed, Default::default());
        self.enqueue(index);
    }

    /// Slot `index`'s connect has no outcome yet: wait for the next report.
    pub(crate) fn connect_in_progress(&mut self, index: u32) {
        self.slot_mut(index).flags.insert(Flags::WRITE_BLOCKED);
    }

    /// Slot `index` did not connect within its timeout.
    pub(super) fn connect_timed_out(&mut self, index: u32) {
        self.stats.connect_timeouts += 1;
        self.stats.connect_failures += 1;
        let slot = self.slot_mut(index);
        debug_assert_eq!(slot.state, Life::Connecting);
        slot.error = Some(CloseError::ConnectTimeout);
        slot.go(Event::ConnectFailed, Default::default());
        self.enqueue(index);
    }
}
