//! The slot lists, linked through the slots themselves (no allocation): the free list
//! of unused slots, the attention queue of connections with something to do, and the
//! queue of sends held back until the turn's reads are done
//! ([`Config::batch_sends`](crate::Config::batch_sends)).
//!
//! A slot is in at most one of the first two at a time: a free slot is never queued
//! for attention. The held sends run through a link of their own, so a slot can wait
//! there and be queued for attention too.

use core::marker::PhantomData;
use core::num::NonZeroU32;

/// A slot index, stored plus one so that `Option<SlotIndex>` takes four bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotIndex(NonZeroU32);

impl SlotIndex {
    /// The index `i` (below `u32::MAX`: engines have at most 2^31 slots).
    #[inline]
    pub(crate) fn new(i: u32) -> Self {
        SlotIndex(NonZeroU32::new(i.wrapping_add(1)).unwrap_or(NonZeroU32::MAX))
    }

    /// The index.
    #[inline]
    pub(crate) fn get(self) -> u32 {
        self.0.get() - 1
    }
}

/// A slot's place in a list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Link {
    next: Option<SlotIndex>,
    /// In the attention queue (so pushing it again does nothing).
    queued: bool,
}

impl Link {
    /// In no list.
    pub(crate) const NONE: Link = Link {
        next: None,
        queued: false,
    };
}

/// Something with a [`Link`]: a slot.
pub(crate) trait Linked {
    /// Its link.
    fn link(&self) -> &Link;
    /// Its link, to change.
    fn link_mut(&mut self) -> &mut Link;
}

/// Which of a node's links a [`Queue`] runs through.
pub(crate) trait Lane<T> {
    /// The node's link in this lane.
    fn link(node: &T) -> &Link;
    /// The same, to change.
    fn link_mut(node: &mut T) -> &mut Link;
}

/// The main link ([`Linked`]): the free list's and the attention queue's.
#[derive(Debug)]
pub(crate) struct Main;

impl<T: Linked> Lane<T> for Main {
    #[inline(always)]
    fn link(node: &T) -> &Link {
        node.link()
    }

    #[inline(always)]
    fn link_mut(node: &mut T) -> &mut Link {
        node.link_mut()
    }
}

/// The unused slots, taken and returned at the front (a stack: the slot freed last is
/// reused first, while its metadata is still in cache).
#[derive(Debug)]
pub(crate) struct FreeList {
    head: Option<SlotIndex>,
}

impl FreeList {
    /// A free list holding every one of `nodes`, in index order.
    #[inline]
    pub(crate) fn all<T: Linked>(nodes: &mut [T]) -> Self {
        let count = nodes.len();
        for (i, node) in nodes.iter_mut().enumerate() {
            *node.link_mut() = Link {
                next: (i + 1 < count).then(|| SlotIndex::new((i + 1) as u32)),
                queued: false,
            };
        }
        FreeList {
            head: (count > 0).then(|| SlotIndex::new(0)),
        }
    }

    /// Takes a free slot; `None` when every slot is in use.
    #[inline]
    pub(crate) fn pop<T: Linked>(&mut self, nodes: &mut [T]) -> Option<u32> {
        let i = self.head?.get();
        let link = nodes[i as usize].link_mut();
        self.head = link.next.take();
        Some(i)
    }

    /// Returns slot `i`, which must not be in any list.
    #[inline]
    pub(crate) fn push<T: Linked>(&mut self, nodes: &mut [T], i: u32) {
        *nodes[i as usize].link_mut() = Link {
            next: self.head,
            queued: false,
        };
        self.head = Some(SlotIndex::new(i));
    }
}

/// Slots in the order they were queued (first in, first out), each at most once,
/// linked through their `L` link.
#[derive(Debug)]
pub(crate) struct Queue<L = Main> {
    head: Option<SlotIndex>,
    tail: Option<SlotIndex>,
    lane: PhantomData<L>,
}

impl<L> Queue<L> {
    /// An empty queue.
    #[inline]
    pub(crate) const fn new() -> Self {
        Queue {
            head: None,
            tail: None,
            lane: PhantomData,
        }
    }

    /// Whether nothing is queued.
    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Queues slot `i` at the back, unless it is queued already.
    #[inline]
    pub(crate) fn push_back<T>(&mut self, nodes: &mut [T], i: u32)
    where
        L: Lane<T>,
    {
        let link = L::link_mut(&mut nodes[i as usize]);
        if link.queued {
            return;
        }
        *link = Link {
            next: None,
            queued: true,
        };
        let at = SlotIndex::new(i);
        match self.tail {
            Some(tail) => L::link_mut(&mut nodes[tail.get() as usize]).next = Some(at),
            None => self.head = Some(at),
        }
        self.tail = Some(at);
    }

    /// Takes the slot at the front.
    #[inline]
    pub(crate) fn pop_front<T>(&mut self, nodes: &mut [T]) -> Option<u32>
    where
        L: Lane<T>,
    {
        let i = self.head?.get();
        let link = L::link_mut(&mut nodes[i as usize]);
        self.head = link.next;
        if self.head.is_none() {
            self.tail = None;
        }
        *link = Link::NONE;
        Some(i)
    }

    /// Takes every slot out of the queue.
    #[inline]
    pub(crate) fn clear<T>(&mut self, nodes: &mut [T])
    where
        L: Lane<T>,
    {
        while self.pop_front(nodes).is_some() {}
    }

    /// Takes slot `i` out of the queue wherever it is; nothing if it is not queued.
    /// O(queue length): it is needed only when a queued slot is freed, which is rare.
    #[inline]
    pub(crate) fn remove<T>(&mut self, nodes: &mut [T], i: u32)
    where
        L: Lane<T>,
    {
        if !L::link(&nodes[i as usize]).queued {
            return;
        }
        let mut prev: Option<SlotIndex> = None;
        let mut cur = self.head;
        while let Some(c) = cur
            && c.get() != i
        {
            prev = cur;
            cur = L::link(&nodes[c.get() as usize]).next;
        }
        let next = L::link(&nodes[i as usize]).next;
        match prev {
            None => self.head = next,
            Some(p) => L::link_mut(&mut nodes[p.get() as usize]).next = next,
        }
        if self.tail == Some(SlotIndex::new(i)) {
            self.tail = prev;
        }
        *L::link_mut(&mut nodes[i as usize]) = Link::NONE;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    #[derive(Default)]
    struct Node(Link);

    impl Linked for Node {
        fn link(&self) -> &Link {
            &self.0
        }
        fn link_mut(&mut self) -> &mut Link {
            &mut self.0
        }
    }

    fn nodes(n: usize) -> Vec<Node> {
        (0..n).map(|_| Node::default()).collect()
    }

    fn drain(q: &mut Queue, nodes: &mut [Node]) -> Vec<u32> {
        core::iter::from_fn(|| q.pop_front(nodes)).collect()
    }

    #[test]
    fn an_index_survives_the_plus_one_and_an_option_of_it_is_four_bytes() {
        for i in [0, 1, 7, (1 << 31) - 1] {
            assert_eq!(SlotIndex::new(i).get(), i);
        }
        assert_eq!(core::mem::size_of::<Option<SlotIndex>>(), 4);
    }

    #[test]
    fn the_free_list_hands_out_every_slot_once_then_none() {
        let mut n = nodes(3);
        let mut free = FreeList::all(&mut n);
        assert_eq!(free.pop(&mut n), Some(0));
        assert_eq!(free.pop(&mut n), Some(1));
        assert_eq!(free.pop(&mut n), Some(2));
        assert_eq!(free.pop(&mut n), None, "every slot in use");
        // The slot returned last is reused first.
        free.push(&mut n, 1);
        free.push(&mut n, 2);
        assert_eq!(free.pop(&mut n), Some(2));
        assert_eq!(free.pop(&mut n), Some(1));
        assert_eq!(free.pop(&mut n), None);
        let mut none = nodes(0);
        assert_eq!(FreeList::all(&mut none).pop(&mut none), None, "no slots");
    }

    #[test]
    fn the_queue_is_first_in_first_out_and_holds_a_slot_once() {
        let mut n = nodes(5);
        let mut q: Queue = Queue::new();
        for i in [3, 1, 4, 1, 3] {
            q.push_back(&mut n, i);
        }
        assert_eq!(drain(&mut q, &mut n), [3, 1, 4]);
        assert_eq!(q.pop_front(&mut n), None);
        // Popped slots can be queued again, and the queue works after running dry.
        q.push_back(&mut n, 1);
        q.push_back(&mut n, 0);
        assert_eq!(drain(&mut q, &mut n), [1, 0]);
    }

    #[test]
    fn removing_from_the_front_middle_back_or_outside_keeps_the_rest_in_order() {
        for (remove, rest) in [
            (0, &[1, 2, 3][..]),
            (2, &[0, 1, 3][..]),
            (3, &[0, 1, 2][..]),
            (4, &[0, 1, 2, 3][..]),
        ] {
            let mut n = nodes(5);
            let mut q: Queue = Queue::new();
            for i in 0..4 {
                q.push_back(&mut n, i);
            }
            q.remove(&mut n, remove);
            assert!(!n[remove as usize].link().queued);
            // The back is still right: a push goes after the last one left.
            q.push_back(&mut n, 4);
            let mut expect = rest.to_vec();
            expect.push(4);
            assert_eq!(drain(&mut q, &mut n), expect, "removing {remove}");
        }
    }

    #[test]
    fn clearing_empties_the_queue_and_unmarks_every_slot() {
        let mut n = nodes(3);
        let mut q: Queue = Queue::new();
        q.push_back(&mut n, 2);
        q.push_back(&mut n, 0);
        q.clear(&mut n);
        assert_eq!(q.pop_front(&mut n), None);
        assert!(n.iter().all(|node| *node.link() == Link::NONE));
    }
}
