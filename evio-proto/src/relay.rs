//! Relaying with backpressure: a connection whose input waits for another
//! connection's output to drain.
//!
//! A relay forwards what A sends to B. When B's output is full, A's handler leaves the
//! input it could not forward unconsumed, and A *waits for* B: the engine does not
//! count the input as a frame too large, stops reading A once A's input buffer is full
//! (so A's peer is slowed by TCP's own flow control), and calls A's `data` again with
//! it once B's output has drained, or once B has gone. Memory stays within the two connections' buffers however fast one
//! side is and however slow the other.
//!
//! Each slot waits for at most one other; the waiters of a slot form a doubly linked
//! list through the slots (no allocation, O(1) to join or leave).

use crate::slot::{Flags, NO_SLOT as NONE, Slot, WaitLink};

/// In `WaitLink::on`: held by its handler ([`Conn::hold`](crate::Conn::hold)) until
/// [`Loop::resume`](crate::Loop::resume), in no slot's list.
pub(crate) const HELD: u32 = u32::MAX - 1;

/// Slot `waiter` waits for slot `on` (leaving any other slot's list first).
pub(crate) fn wait<C>(slots: &mut [Slot<C>], waiter: u32, on: u32) {
    debug_assert_ne!(waiter, on, "a slot cannot wait for itself");
    debug_assert!(on != HELD && on != NONE);
    if slots[waiter as usize].wait.on == on {
        return;
    }
    unwait(slots, waiter);
    let head = slots[on as usize].wait.head;
    if head != NONE {
        slots[head as usize].wait.prev = waiter;
    }
    let link = &mut slots[waiter as usize].wait;
    link.on = on;
    link.prev = NONE;
    link.next = head;
    slots[on as usize].wait.head = waiter;
    // (So that the drain of `on` finds its waiters without a look at the list.)
    slots[on as usize].flags.insert(Flags::WAITED_ON);
}

/// Slot `waiter`'s input is held until its handler resumes it (leaving any list).
pub(crate) fn hold<C>(slots: &mut [Slot<C>], waiter: u32) {
    unwait(slots, waiter);
    slots[waiter as usize].wait.on = HELD;
}

/// Slot `waiter` stops waiting (nothing if it was not).
pub(crate) fn unwait<C>(slots: &mut [Slot<C>], waiter: u32) {
    let WaitLink { on, prev, next, .. } = slots[waiter as usize].wait;
    if on == NONE {
        return;
    }
    if on == HELD {
        slots[waiter as usize].wait.on = NONE;
        return;
    }
    if prev == NONE {
        slots[on as usize].wait.head = next;
        if next == NONE {
            slots[on as usize].flags.remove(Flags::WAITED_ON);
        }
    } else {
        slots[prev as usize].wait.next = next;
    }
    if next != NONE {
        slots[next as usize].wait.prev = prev;
    }
    let link = &mut slots[waiter as usize].wait;
    link.on = NONE;
    link.prev = NONE;
    link.next = NONE;
}

/// Ends every wait for slot `on` (it drained, or is gone), calling `resume` with each
/// waiter. A waiter keeps `Flags::WAITING` with no slot to wait for: its input is
/// delivered again at its next turn, where it may wait again (for a drain to come).
/// `resume` must not make a slot wait for `on` (the engine only queues the waiter).
pub(crate) fn release<C>(
    slots: &mut [Slot<C>],
    on: u32,
    mut resume: impl FnMut(&mut [Slot<C>], u32),
) {
    while let Some(waiter) =
        (slots[on as usize].wait.head != NONE).then(|| slots[on as usize].wait.head)
    {
        unwait(slots, waiter);
        debug_assert!(slots[waiter as usize].flags.contains(Flags::WAITING));
        resume(slots, waiter);
    }
}

/// Slot `index` is freed: it waits for nobody, and its waiters are released.
pub(crate) fn forget<C>(
    slots: &mut [Slot<C>],
    index: u32,
    resume: impl FnMut(&mut [Slot<C>], u32),
) {
    unwait(slots, index);
    release(slots, index, resume);
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    fn slots(n: usize) -> Vec<Slot<()>> {
        (0..n).map(|_| Slot::new()).collect()
    }

    fn waiters(slots: &[Slot<()>], on: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut at = slots[on as usize].wait.head;
        while at != NONE {
            assert_eq!(slots[at as usize].wait.on, on);
            out.push(at);
            at = slots[at as usize].wait.next;
        }
        out
    }

    #[test]
    fn waiters_join_and_leave_in_any_order() {
        let mut s = slots(5);
        wait(&mut s, 1, 0);
        wait(&mut s, 2, 0);
        wait(&mut s, 3, 0);
        assert_eq!(waiters(&s, 0), [3, 2, 1]);
        unwait(&mut s, 2);
        assert_eq!(waiters(&s, 0), [3, 1]);
        unwait(&mut s, 3);
        assert_eq!(waiters(&s, 0), [1]);
        unwait(&mut s, 3); // twice: nothing
        // Moving to another slot leaves the first list.
        wait(&mut s, 1, 4);
        assert_eq!(waiters(&s, 0), Vec::<u32>::new());
        assert_eq!(waiters(&s, 4), [1]);
        assert!(!s[0].wait.has_waiters() && s[4].wait.has_waiters());
        assert!(!s[0].flags.contains(Flags::WAITED_ON) && s[4].flags.contains(Flags::WAITED_ON));
        assert_eq!(s[1].wait.on(), Some(4));
    }

    #[test]
    fn a_release_resumes_each_waiter_once_and_empties_the_list() {
        let mut s = slots(4);
        for w in 1..4 {
            s[w as usize].flags.insert(Flags::WAITING);
            wait(&mut s, w, 0);
        }
        let mut resumed = Vec::new();
        release(&mut s, 0, |slots, w| {
            resumed.push(w);
            assert_eq!(slots[w as usize].wait.on(), None);
        });
        resumed.sort();
        assert_eq!(resumed, [1, 2, 3]);
        assert!(!s[0].wait.has_waiters());
    }

    #[test]
    fn a_held_slot_is_in_no_list_and_unwaits_cleanly() {
        let mut s = slots(3);
        wait(&mut s, 1, 0);
        hold(&mut s, 1);
        assert_eq!(waiters(&s, 0), Vec::<u32>::new(), "holding left the list");
        assert_eq!(s[1].wait.on(), Some(HELD));
        wait(&mut s, 2, 0);
        unwait(&mut s, 1);
        assert_eq!(s[1].wait, WaitLink::NONE);
        assert_eq!(waiters(&s, 0), [2], "another slot's wait untouched");
    }

    #[test]
    fn a_freed_slot_leaves_its_list_and_releases_its_own_waiters() {
        let mut s = slots(3);
        s[2].flags.insert(Flags::WAITING);
        wait(&mut s, 1, 0);
        wait(&mut s, 2, 1);
        let mut resumed = Vec::new();
        forget(&mut s, 1, |_, w| resumed.push(w));
        assert_eq!(resumed, [2]);
        assert_eq!(waiters(&s, 0), Vec::<u32>::new());
        assert_eq!(s[1].wait, WaitLink::NONE);
    }
}
