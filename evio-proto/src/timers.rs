//! Per-connection deadlines (a handler's timeout, the end of a lingering close): at
//! most one per slot, in a binary min-heap whose array is spread over the slots
//! themselves, so it takes no memory beyond the slot table and is never scanned.
//!
//! Costs: setting a deadline O(log n); moving a deadline later O(1) (the common
//! idle timeout, pushed back on every request: the heap keeps the old key, and the
//! entry is filed again under its real deadline only when the old key comes due);
//! cancelling O(log n); the next deadline O(1); taking an expired one O(log n).

use crate::Instant;

const NONE: u32 = u32::MAX;
const NEVER: u64 = u64::MAX;

/// A slot's part of the heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerLink {
    /// The slot's deadline in nanoseconds (`NEVER`: none).
    deadline: u64,
    /// The key it is filed under, at most `deadline` (moving a deadline later leaves
    /// the key where it was).
    key: u64,
    /// Its position in the heap (`NONE`: not in it).
    pos: u32,
    /// The slot at heap position *this slot's index* (the heap's array, spread over
    /// the slots).
    item: u32,
}

impl TimerLink {
    /// No deadline.
    pub(crate) const NONE: TimerLink = TimerLink {
        deadline: NEVER,
        key: NEVER,
        pos: NONE,
        item: NONE,
    };
}

/// Something with a [`TimerLink`]: a slot.
pub(crate) trait Timed {
    /// Its link.
    fn timer(&self) -> &TimerLink;
    /// Its link, to change.
    fn timer_mut(&mut self) -> &mut TimerLink;
}

/// The heap of deadlines.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    len: u32,
}

impl Timers {
    /// Slot `i`'s deadline, if it has one.
    pub(crate) fn deadline<T: Timed>(nodes: &[T], i: u32) -> Option<Instant> {
        let d = nodes[i as usize].timer().deadline;
        (d != NEVER).then_some(Instant::from_nanos(d))
    }

    /// Sets slot `i`'s deadline (`None` cancels it).
    pub(crate) fn set<T: Timed>(&mut self, nodes: &mut [T], i: u32, deadline: Option<Instant>) {
        let Some(at) = deadline else {
            self.remove(nodes, i);
            return;
        };
        // The largest instant stands for "never": a deadline that far is none.
        let at = at.as_nanos().min(NEVER - 1);
        let link = nodes[i as usize].timer_mut();
        link.deadline = at;
        if link.pos == NONE {
            link.key = at;
            let pos = self.len;
            self.len += 1;
            self.place(nodes, pos, i);
            self.sift_up(nodes, pos);
        } else if at < link.key {
            link.key = at;
            let pos = link.pos;
            self.sift_up(nodes, pos);
        }
    }

    /// Takes slot `i`'s deadline away, wherever it is in the heap.
    pub(crate) fn remove<T: Timed>(&mut self, nodes: &mut [T], i: u32) {
        let link = nodes[i as usize].timer_mut();
        link.deadline = NEVER;
        let pos = link.pos;
        if pos == NONE {
            return;
        }
        link.pos = NONE;
        link.key = NEVER;
        self.len -= 1;
        let last = self.len;
        if pos != last {
            let moved = self.item(nodes, last);
            self.place(nodes, pos, moved);
            self.sift_down(nodes, pos);
            self.sift_up(nodes, pos);
        }
    }

    /// When the earliest deadline is due (possibly earlier: a deadline moved later is
    /// found out when its old key comes due, and filed again).
    pub(crate) fn next<T: Timed>(&self, nodes: &[T]) -> Option<Instant> {
        (self.len > 0).then(|| Instant::from_nanos(self.key_at(nodes, 0)))
    }

    /// Takes a slot whose deadline has come at `now`, if there is one; its deadline is
    /// then gone (each deadline is taken once).
    pub(crate) fn pop_due<T: Timed>(&mut self, nodes: &mut [T], now: Instant) -> Option<u32> {
        let now = now.as_nanos();
        while self.len > 0 {
            let top = self.item(nodes, 0);
            let link = nodes[top as usize].timer_mut();
            if link.key > now {
                return None;
            }
            if link.deadline > now {
                // Moved later since it was filed: file it under the real deadline.
                link.key = link.deadline;
                self.sift_down(nodes, 0);
                continue;
            }
            self.remove(nodes, top);
            return Some(top);
        }
        None
    }

    fn item<T: Timed>(&self, nodes: &[T], pos: u32) -> u32 {
        nodes[pos as usize].timer().item
    }

    fn key_at<T: Timed>(&self, nodes: &[T], pos: u32) -> u64 {
        nodes[self.item(nodes, pos) as usize].timer().key
    }

    /// Puts slot `i` at heap position `pos`.
    fn place<T: Timed>(&self, nodes: &mut [T], pos: u32, i: u32) {
        nodes[pos as usize].timer_mut().item = i;
        nodes[i as usize].timer_mut().pos = pos;
    }

    fn sift_up<T: Timed>(&self, nodes: &mut [T], mut pos: u32) {
        let i = self.item(nodes, pos);
        let key = nodes[i as usize].timer().key;
        while pos > 0 {
            let parent = (pos - 1) / 2;
            let p = self.item(nodes, parent);
            if nodes[p as usize].timer().key <= key {
                break;
            }
            self.place(nodes, pos, p);
            pos = parent;
        }
        self.place(nodes, pos, i);
    }

    fn sift_down<T: Timed>(&self, nodes: &mut [T], mut pos: u32) {
        let i = self.item(nodes, pos);
        let key = nodes[i as usize].timer().key;
        loop {
            let left = 2 * pos + 1;
            if left >= self.len {
                break;
            }
            let right = left + 1;
            let child = if right < self.len && self.key_at(nodes, right) < self.key_at(nodes, left)
            {
                right
            } else {
                left
            };
            if self.key_at(nodes, child) >= key {
                break;
            }
            let c = self.item(nodes, child);
            self.place(nodes, pos, c);
            pos = child;
        }
        self.place(nodes, pos, i);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    #[derive(Clone, Copy)]
    struct Node(TimerLink);

    impl Timed for Node {
        fn timer(&self) -> &TimerLink {
            &self.0
        }
        fn timer_mut(&mut self) -> &mut TimerLink {
            &mut self.0
        }
    }

    fn nodes(n: usize) -> Vec<Node> {
        (0..n).map(|_| Node(TimerLink::NONE)).collect()
    }

    fn at(t: u64) -> Instant {
        Instant::from_nanos(t)
    }

    /// Every slot due at `now`, in the order taken.
    fn due(t: &mut Timers, n: &mut [Node], now: u64) -> Vec<u32> {
        core::iter::from_fn(|| t.pop_due(n, at(now))).collect()
    }

    #[test]
    fn deadlines_come_due_in_order_never_early_and_once() {
        let mut n = nodes(6);
        let mut t = Timers::default();
        for (i, d) in [(0, 50), (1, 10), (2, 40), (3, 20), (4, 30), (5, 60)] {
            t.set(&mut n, i, Some(at(d)));
        }
        assert_eq!(t.next(&n), Some(at(10)));
        assert_eq!(due(&mut t, &mut n, 9), [], "never early");
        assert_eq!(due(&mut t, &mut n, 35), [1, 3, 4]);
        assert_eq!(due(&mut t, &mut n, 35), [], "once");
        assert_eq!(t.next(&n), Some(at(40)));
        assert_eq!(due(&mut t, &mut n, 100), [2, 0, 5]);
        assert_eq!(t.next(&n), None);
        assert_eq!(Timers::deadline(&n, 2), None, "taken");
    }

    #[test]
    fn a_deadline_moved_later_fires_at_the_new_time() {
        let mut n = nodes(2);
        let mut t = Timers::default();
        t.set(&mut n, 0, Some(at(10)));
        t.set(&mut n, 1, Some(at(20)));
        t.set(&mut n, 0, Some(at(30)));
        assert_eq!(Timers::deadline(&n, 0), Some(at(30)));
        // The old key comes first and is refiled, not fired.
        assert_eq!(due(&mut t, &mut n, 15), []);
        assert_eq!(due(&mut t, &mut n, 25), [1]);
        assert_eq!(t.next(&n), Some(at(30)));
        assert_eq!(due(&mut t, &mut n, 30), [0]);
    }

    #[test]
    fn a_deadline_moved_earlier_or_cancelled_takes_effect_at_once() {
        let mut n = nodes(4);
        let mut t = Timers::default();
        for i in 0..4 {
            t.set(&mut n, i, Some(at(100 + u64::from(i))));
        }
        t.set(&mut n, 3, Some(at(5)));
        assert_eq!(t.next(&n), Some(at(5)));
        t.set(&mut n, 1, None);
        t.remove(&mut n, 1);
        t.set(&mut n, 3, None);
        assert_eq!(t.next(&n), Some(at(100)));
        assert_eq!(due(&mut t, &mut n, 1000), [0, 2]);
    }

    #[test]
    fn removing_from_anywhere_keeps_the_heap_ordered() {
        // A small deterministic shuffle of deadlines and removals, checked against a
        // sort of what should remain.
        let mut n = nodes(32);
        let mut t = Timers::default();
        let mut expect: Vec<(u64, u32)> = Vec::new();
        let mut x: u64 = 12345;
        for i in 0..32u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let d = (x >> 33) % 1000;
            t.set(&mut n, i, Some(at(d)));
            expect.push((d, i));
        }
        for i in (0..32u32).step_by(3) {
            t.remove(&mut n, i);
            expect.retain(|&(_, j)| j != i);
        }
        expect.sort();
        let got: Vec<u32> = due(&mut t, &mut n, u64::MAX - 1);
        let deadline_of = |i: u32| expect.iter().find(|&&(_, j)| j == i).map(|&(d, _)| d);
        let got_deadlines: Vec<Option<u64>> = got.iter().map(|&i| deadline_of(i)).collect();
        let want: Vec<Option<u64>> = expect.iter().map(|&(d, _)| Some(d)).collect();
        assert_eq!(got_deadlines, want, "every remaining deadline, in order");
    }
}
