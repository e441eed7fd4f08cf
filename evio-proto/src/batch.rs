//! The sends of one turn, handed to the driver together
//! ([`Config::batch_sends`](crate::Config::batch_sends)): which connections, and how
//! many of their bytes each entry lent.

/// The most entries one [`Output::TransmitBatch`](crate::Output::TransmitBatch) holds;
/// more held sends go in the next one.
pub const MAX_BATCH: usize = 64;

/// The entries of the batch being performed (fixed room: no allocation).
#[derive(Debug)]
pub(crate) struct SendBatch {
    /// Each entry's slot.
    slots: [u32; MAX_BATCH],
    /// How many pending bytes each entry lent: its report is of those.
    lens: [u32; MAX_BATCH],
    len: usize,
}

impl SendBatch {
    /// An empty batch.
    pub(crate) const fn new() -> Self {
        SendBatch {
            slots: [0; MAX_BATCH],
            lens: [0; MAX_BATCH],
            len: 0,
        }
    }

    /// Whether it has room for another entry.
    #[inline]
    pub(crate) fn has_room(&self) -> bool {
        self.len < MAX_BATCH
    }

    /// Adds slot `slot`, lending `len` of its pending bytes (there must be room).
    #[inline]
    pub(crate) fn push(&mut self, slot: u32, len: usize) {
        self.slots[self.len] = slot;
        self.lens[self.len] = len as u32;
        self.len += 1;
    }

    /// Forgets every entry.
    #[inline]
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// The number of entries.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Entry `k`: its slot and the bytes it lent.
    ///
    /// # Panics
    ///
    /// If `k` is not below [`SendBatch::len`].
    #[inline]
    pub(crate) fn entry(&self, k: usize) -> (u32, usize) {
        assert!(k < self.len, "batch entry {k} of {}", self.len);
        (self.slots[k], self.lens[k] as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_their_slot_and_length_in_order_until_cleared() {
        let mut b = SendBatch::new();
        for k in 0..MAX_BATCH {
            assert!(b.has_room());
            b.push(k as u32 * 3, k + 1);
        }
        assert!(!b.has_room());
        assert_eq!(b.len(), MAX_BATCH);
        assert_eq!(b.entry(5), (15, 6));
        b.clear();
        assert_eq!(b.len(), 0);
        assert!(b.has_room());
    }

    #[test]
    #[should_panic(expected = "batch entry 1 of 1")]
    fn an_entry_past_the_end_panics() {
        let mut b = SendBatch::new();
        b.push(7, 1);
        let _ = b.entry(1);
    }
}
