//! The connections waiting for a request (new ones, and keep-alive ones between
//! requests), least recently active first: when the pool runs out of slots, the first
//! ones are closed to make room for new connections, as nginx closes its "reusable"
//! connections when it runs out.
//!
//! An intrusive doubly linked list over an array indexed by slot: adding, moving to the
//! back, removing and taking the oldest are O(1), and nothing is ever scanned. A
//! connection that stays idle from one request to the next (the common case: a
//! keep-alive client) moves to the back at most once per [`GRAIN`]: the order is the
//! order in which connections were last active, to within that grain, and a request
//! costs one comparison instead of six writes. The array grows to the highest slot seen
//! (amortized doubling, so it stops allocating once every slot has been used); nothing
//! else is allocated.

use core::time::Duration;

use evio_proto::{ConnId, Instant};

/// How stale a connection's place in the list may be: one active within this time of
/// another may be taken for the less recently active of the two.
pub(crate) const GRAIN: Duration = Duration::from_secs(1);

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Link {
    /// The connection in this slot while it is in the list.
    id: Option<ConnId>,
    /// When it took its place in the list.
    since: Instant,
    prev: u32,
    next: u32,
}

const UNLINKED: Link = Link {
    id: None,
    since: Instant::ZERO,
    prev: NIL,
    next: NIL,
};

/// The idle connections, least recently active first.
#[derive(Clone, Debug)]
pub(crate) struct IdleList {
    links: Vec<Link>,
    /// The least recently active.
    head: u32,
    /// The most recently active.
    tail: u32,
    len: usize,
}

impl Default for IdleList {
    fn default() -> Self {
        IdleList {
            links: Vec::new(),
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }
}

impl IdleList {
    /// How many connections are in the list.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// `id` is idle at `now`: it goes to the back, behind every connection idle longer
    /// (if it was in the list already, only if it took its place there a [`GRAIN`] ago
    /// or more).
    #[inline(always)]
    pub(crate) fn push_back(&mut self, id: ConnId, now: Instant) {
        let slot = id.slot();
        if let Some(link) = self.links.get(slot)
            && link.id == Some(id)
            && now < link.since + GRAIN
        {
            return;
        }
        self.move_to_back(id, now);
    }

    #[inline(never)]
    fn move_to_back(&mut self, id: ConnId, now: Instant) {
        let slot = id.slot();
        if slot >= self.links.len() {
            self.links.resize(slot + 1, UNLINKED);
        }
        // Slots number at most 2^31 (the engine's limit), so they fit a u32.
        let i = slot as u32;
        if self.links[slot].id.is_some() {
            self.unlink(i);
        }
        self.links[slot] = Link {
            id: Some(id),
            since: now,
            prev: self.tail,
            next: NIL,
        };
        match self.tail {
            NIL => self.head = i,
            tail => self.links[tail as usize].next = i,
        }
        self.tail = i;
        self.len += 1;
    }

    /// `id` is busy or gone: out of the list, if it is in it.
    #[inline]
    pub(crate) fn remove(&mut self, id: ConnId) {
        let slot = id.slot();
        if self.links.get(slot).is_some_and(|l| l.id == Some(id)) {
            self.unlink(slot as u32);
        }
    }

    /// Takes out the connection idle the longest.
    pub(crate) fn pop_front(&mut self) -> Option<ConnId> {
        if self.head == NIL {
            return None;
        }
        let head = self.head;
        let id = self.links[head as usize].id;
        self.unlink(head);
        id
    }

    /// Takes slot `i` (which is in the list) out.
    fn unlink(&mut self, i: u32) {
        let Link { prev, next, .. } = self.links[i as usize];
        match prev {
            NIL => self.head = next,
            p => self.links[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.links[n as usize].prev = prev,
        }
        self.links[i as usize] = UNLINKED;
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(list: &IdleList) -> Vec<usize> {
        let mut out = Vec::new();
        let mut i = list.head;
        while i != NIL {
            out.push(i as usize);
            i = list.links[i as usize].next;
        }
        out
    }

    fn id(slot: u64, generation: u64) -> ConnId {
        ConnId::from_u64(generation << 32 | slot)
    }

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn oldest_first_and_every_operation_keeps_the_links() {
        let mut l = IdleList::default();
        for s in [3, 0, 7, 5] {
            l.push_back(id(s, 1), at(0));
        }
        assert_eq!(slots(&l), [3, 0, 7, 5]);
        // Active again within the grain: it keeps its place.
        l.push_back(id(0, 1), at(999));
        assert_eq!(slots(&l), [3, 0, 7, 5]);
        // A grain later: to the back.
        l.push_back(id(0, 1), at(1000));
        assert_eq!(slots(&l), [3, 7, 5, 0]);
        // Busy, then idle again: to the back at once.
        l.remove(id(7, 1));
        l.push_back(id(7, 1), at(1001));
        assert_eq!(slots(&l), [3, 5, 0, 7]);
        l.remove(id(7, 1));
        l.remove(id(9, 1)); // never in it
        l.remove(id(5, 2)); // another connection in slot 5: not this one
        assert_eq!(slots(&l), [3, 5, 0]);
        // A new connection in slot 3: it takes the place of the one that was there.
        l.push_back(id(3, 2), at(1002));
        assert_eq!(slots(&l), [5, 0, 3]);
        assert_eq!(l.pop_front(), Some(id(5, 1)));
        assert_eq!(l.pop_front(), Some(id(0, 1)));
        assert_eq!(l.len(), 1);
        l.remove(id(3, 2));
        assert_eq!(
            (l.pop_front(), l.len(), l.head, l.tail),
            (None, 0, NIL, NIL)
        );
    }
}
