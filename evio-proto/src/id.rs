//! Connection identifiers: a slot index and a generation.

use core::fmt;

/// Number of generation bits kept: the wake path packs a generation, an "open" bit and a
/// "wake pending" bit into one 32-bit atomic word per slot.
pub(crate) const GEN_BITS: u32 = 30;
pub(crate) const GEN_MASK: u32 = (1 << GEN_BITS) - 1;

/// Bits of a slot word that hold the slot index; the bits above hold the loop's number
/// (see [`ConnId::loop_index`]).
pub(crate) const SLOT_BITS: u32 = 24;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;

/// Most slots one engine (one loop) can have: 2^24.
pub const MAX_SLOTS: usize = 1 << SLOT_BITS;

/// Most loops one server can have (a connection id has 8 bits for its loop).
pub const MAX_LOOPS: usize = 1 << (32 - SLOT_BITS);

/// Identifies one connection for its whole life.
///
/// It carries the index of the pool slot the connection occupies and that slot's
/// generation, which changes every time the slot is reused. An id kept after its
/// connection closed is therefore *stale*: the engine and the [`Waker`](crate::Waker)
/// refuse it instead of delivering anything to the next connection in the same slot.
/// Generations wrap after 2^30 reuses of one slot.
///
/// A server of several loops (each an engine on a thread of its own) numbers them, and an
/// id names its loop too ([`ConnId::loop_index`]): an id of another loop is never one of
/// this loop's connections.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId {
    slot: u32,
    generation: u32,
}

impl ConnId {
    /// The id of slot word `slot` (its index, and its loop's number above
    /// [`SLOT_BITS`]) at `generation`.
    pub(crate) const fn new(slot: u32, generation: u32) -> Self {
        ConnId {
            slot,
            generation: generation & GEN_MASK,
        }
    }

    /// The slot word of slot `index` of loop `loop_index`.
    pub(crate) const fn slot_word(index: u32, loop_index: u8) -> u32 {
        ((loop_index as u32) << SLOT_BITS) | (index & SLOT_MASK)
    }

    /// The address of loop `loop_index` itself, for a message to its handler: no
    /// connection's (its slot index is past any engine's).
    pub(crate) const fn of_loop(loop_index: u8) -> Self {
        ConnId::new(ConnId::slot_word(SLOT_MASK, loop_index), 0)
    }

    /// This id's slot word (index and loop), for an id of the same slot.
    pub(crate) const fn word(self) -> u32 {
        self.slot
    }

    /// Index of the pool slot. Drivers use it to index their own per-connection table
    /// (the socket of each slot); it is below the engine's `max_connections`.
    pub const fn slot(self) -> usize {
        (self.slot & SLOT_MASK) as usize
    }

    /// The number of the loop the connection lives on: 0 for a server of one loop; for
    /// a server of several, the loop that accepted or opened it (`0..loops`).
    pub const fn loop_index(self) -> usize {
        (self.slot >> SLOT_BITS) as usize
    }

    /// The slot's generation when this connection was opened.
    pub const fn generation(self) -> u32 {
        self.generation
    }

    /// Packs the id into a `u64` (generation in the high half), for poller tokens.
    pub const fn to_u64(self) -> u64 {
        ((self.generation as u64) << 32) | self.slot as u64
    }

    /// Unpacks an id made by [`ConnId::to_u64`]. Any `u64` gives some id; one that the
    /// engine never issued is refused as stale wherever it is used.
    pub const fn from_u64(bits: u64) -> Self {
        ConnId::new(bits as u32, (bits >> 32) as u32)
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.loop_index() {
            0 => write!(f, "ConnId({}.{})", self.slot(), self.generation),
            l => write!(f, "ConnId({}.{}@{l})", self.slot(), self.generation),
        }
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.loop_index() {
            0 => write!(f, "#{}.{}", self.slot(), self.generation),
            l => write!(f, "#{}.{}@{l}", self.slot(), self.generation),
        }
    }
}

/// Identifies one listener: its index in the order the addresses were given.
///
/// That is the order of the addresses given to `serve`, or to
/// [`Engine::handle_start`](crate::Engine::handle_start) by a driver; the first is 0.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListenerId(u8);

impl ListenerId {
    /// The first listener.
    pub(crate) const FIRST: ListenerId = ListenerId(0);

    /// The listener at `index`, which the caller knows is below `MAX_LISTENERS` (the
    /// engine's own listener table).
    pub(crate) const fn at(index: usize) -> Self {
        debug_assert!(index < crate::MAX_LISTENERS);
        ListenerId(index as u8)
    }

    /// The listener at `index`; `None` past [`MAX_LISTENERS`](crate::MAX_LISTENERS).
    pub const fn new(index: usize) -> Option<Self> {
        if index < crate::MAX_LISTENERS {
            Some(ListenerId(index as u8))
        } else {
            None
        }
    }

    /// The index, in the order the addresses were given.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for ListenerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ListenerId({})", self.0)
    }
}

impl fmt::Display for ListenerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "listener {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_survives_a_poller_token_and_its_generation_wraps() {
        let id = ConnId::new(7, 3);
        assert_eq!(ConnId::from_u64(id.to_u64()), id);
        assert_eq!((id.slot(), id.generation()), (7, 3));
        assert_eq!(
            ConnId::new(1, GEN_MASK + 2).generation(),
            1,
            "wraps at 2^30"
        );
    }

    #[test]
    fn an_id_names_its_loop_and_its_slot_apart() {
        let id = ConnId::new(ConnId::slot_word(5, 3), 9);
        assert_eq!((id.slot(), id.loop_index(), id.generation()), (5, 3, 9));
        assert_eq!(ConnId::from_u64(id.to_u64()), id);
        assert_ne!(
            id,
            ConnId::new(ConnId::slot_word(5, 0), 9),
            "another loop's"
        );
        let last = ConnId::new(ConnId::slot_word(MAX_SLOTS as u32 - 1, 255), 1);
        assert_eq!(
            (last.slot(), last.loop_index()),
            (MAX_SLOTS - 1, MAX_LOOPS - 1)
        );
        assert!(
            last.to_u64() >> 63 == 0,
            "below the drivers' listener tokens"
        );
    }

    #[test]
    fn listener_ids_exist_only_below_the_limit() {
        assert_eq!(ListenerId::new(0), Some(ListenerId::FIRST));
        assert_eq!(ListenerId::new(15).map(ListenerId::index), Some(15));
        assert_eq!(ListenerId::new(crate::MAX_LISTENERS), None);
        assert_eq!(ListenerId::at(3), ListenerId::new(3).unwrap());
    }
}
