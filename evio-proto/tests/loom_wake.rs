//! loom model of the wake path: every interleaving of waking threads against the loop.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p evio-proto --release --test loom_wake`
//! (`.ci/run` does, with its own target directory). Without `--cfg loom` this file is
//! empty.

#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use evio_proto::{ConnId, Notify, WakeState, WakeTarget, WakeWord};

struct CountNotify(Arc<AtomicUsize>);

impl Notify for CountNotify {
    fn notify(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

type State = WakeState<Box<[WakeWord]>, CountNotify>;

fn state(slots: usize) -> (Arc<State>, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let state = State::allocate(slots, CountNotify(count.clone())).expect("wake state");
    (Arc::new(state), count)
}

fn id(slot: u64, generation: u64) -> ConnId {
    ConnId::from_u64(generation << 32 | slot)
}

fn drain_count(state: &State, slot: usize) -> usize {
    let mut n = 0;
    state.drain(&mut |s| {
        assert_eq!(s, slot, "a wake for a slot nobody woke");
        n += 1;
    });
    n
}

/// Two threads wake the same connection while the loop drains once.
/// - no lost wake: a wake the loop's drain missed was followed by a notification;
/// - coalescing: never more deliveries, nor notifications, than successful wakes;
/// - every successful wake is delivered by the loop's drain or the next one.
#[test]
fn concurrent_wakes_are_never_lost_and_coalesce() {
    loom::model(|| {
        let (state, notified) = state(2);
        let conn = id(1, 5);
        state.open(conn);
        let wakers: Vec<_> = (0..2)
            .map(|_| {
                let state = state.clone();
                thread::spawn(move || state.wake(conn))
            })
            .collect();
        let before = notified.load(Ordering::SeqCst);
        let first = drain_count(&state, 1);
        let successes = wakers
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|&ok| ok)
            .count();
        let after = notified.load(Ordering::SeqCst);
        let second = drain_count(&state, 1);
        assert_eq!(successes, 2, "an open connection accepts wakes");
        if second > 0 {
            assert!(
                after > before,
                "a wake was left pending without a notification"
            );
        }
        assert!(first + second >= 1, "wakes were lost");
        assert!(first + second <= successes);
        assert!(after <= successes);
        assert_eq!(drain_count(&state, 1), 0, "nothing left behind");
    });
}

/// A wake for a connection races the loop closing it and opening the next connection
/// in the same slot: the new connection never receives the old one's wake.
#[test]
fn a_wake_never_reaches_the_next_connection_in_the_slot() {
    loom::model(|| {
        let (state, _) = state(1);
        let old = id(0, 1);
        let new = id(0, 2);
        state.open(old);
        let racer = {
            let state = state.clone();
            thread::spawn(move || state.wake(old))
        };
        state.close(old);
        state.open(new);
        let delivered = drain_count(&state, 0);
        let accepted = racer.join().unwrap();
        let delivered = delivered + drain_count(&state, 0);
        assert_eq!(
            delivered, 0,
            "old wake (accepted: {accepted}) delivered to the new connection"
        );
        assert!(!state.wake(old), "a stale id is refused");
    });
}

/// A wake for the new connection and a stale wake for the old one, both racing the
/// loop's reopen: the new one arrives exactly once if it was accepted.
#[test]
fn fresh_and_stale_wakes_race_a_reopen() {
    loom::model(|| {
        let (state, _) = state(1);
        let old = id(0, 1);
        let new = id(0, 2);
        state.open(old);
        let stale = {
            let state = state.clone();
            thread::spawn(move || state.wake(old))
        };
        let fresh = {
            let state = state.clone();
            thread::spawn(move || state.wake(new))
        };
        state.close(old);
        state.open(new);
        let mut delivered = drain_count(&state, 0);
        let _ = stale.join().unwrap();
        let fresh_ok = fresh.join().unwrap();
        delivered += drain_count(&state, 0);
        assert!(delivered <= 1);
        if fresh_ok {
            assert_eq!(delivered, 1, "an accepted wake was lost");
        }
    });
}

/// After shutdown every wake is refused and nothing is delivered.
#[test]
fn wakes_after_shutdown_are_refused() {
    loom::model(|| {
        let (state, _) = state(1);
        let conn = id(0, 3);
        state.open(conn);
        let racer = {
            let state = state.clone();
            thread::spawn(move || state.wake(conn))
        };
        state.shut_down();
        let _ = racer.join().unwrap();
        assert!(!state.wake(conn));
        assert_eq!(drain_count(&state, 0), 0, "a wake delivered after shutdown");
    });
}

/// A server wake races the loop's drain: it is seen by this drain or the next, once,
/// and if this drain missed it, a notification followed.
#[test]
fn a_server_wake_racing_a_drain_is_never_lost() {
    loom::model(|| {
        let (state, notified) = state(1);
        let conn = id(0, 1);
        state.open(conn);
        let server = {
            let state = state.clone();
            thread::spawn(move || state.wake_server())
        };
        let other = {
            let state = state.clone();
            thread::spawn(move || state.wake(conn))
        };
        let before = notified.load(Ordering::SeqCst);
        let first = state.drain(&mut |_| {});
        assert!(server.join().unwrap(), "accepted before a shutdown");
        let _ = other.join().unwrap();
        let after = notified.load(Ordering::SeqCst);
        let second = state.drain(&mut |_| {});
        assert!(
            first ^ second,
            "seen exactly once (first {first}, second {second})"
        );
        if second {
            assert!(after > before, "missed by the drain, and never notified");
        }
        assert!(!state.drain(&mut |_| {}));
        state.shut_down();
        assert!(!state.wake_server(), "refused after a shutdown");
    });
}
