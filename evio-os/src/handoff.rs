//! Spreading accepted connections over the loops of a server by load: the accepting
//! loop hands each socket to the less loaded of two candidate loops through that
//! loop's bounded ring, and wakes it only if it sleeps.
//!
//! Used where the kernel does not spread a port's connections itself (unix sockets,
//! systems without a balancing `SO_REUSEPORT`), and everywhere with
//! [`Balance::Handoff`](crate::Balance::Handoff). The candidates rotate, so that
//! every loop is compared often; a candidate's load is its open connections (as it
//! last published them) plus the sockets waiting in its ring. A full ring means the
//! accepting loop keeps the connection itself. (HAProxy's listener does the same
//! with two rotating threads; Go evio's loops declining to accept, which spins a
//! level-triggered poller, is what this avoids.)

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use evio_proto::{Addr, ListenerId, Waker};

/// A socket accepted by one loop for another to adopt.
#[derive(Debug)]
pub(crate) struct Adopted {
    pub fd: OwnedFd,
    pub listener: ListenerId,
    pub local: Addr,
    pub peer: Addr,
    pub unix: bool,
}

/// One loop's side of the hand-off.
#[derive(Debug, Default)]
struct Place {
    ring: Mutex<VecDeque<Adopted>>,
    /// The ring's length, readable without the lock.
    queued: AtomicUsize,
    /// Open connections, as the loop last published them.
    load: AtomicUsize,
    /// The loop is (about to be) asleep in its poller: a hand-off must wake it.
    sleeping: AtomicBool,
    waker: OnceLock<Waker>,
}

/// The hand-off rings of every loop of a server.
#[derive(Debug)]
pub(crate) struct Handoff {
    places: Vec<Place>,
    /// Most sockets waiting in one loop's ring.
    capacity: usize,
}

impl Handoff {
    /// Rings for `loops` loops, each holding at most `capacity` sockets.
    pub(crate) fn new(loops: usize, capacity: usize) -> Self {
        Handoff {
            places: (0..loops)
                .map(|_| Place {
                    ring: Mutex::new(VecDeque::with_capacity(capacity.max(1))),
                    ..Place::default()
                })
                .collect(),
            capacity: capacity.max(1),
        }
    }

    /// Loop `index` is up: a hand-off to it wakes it through `waker`.
    pub(crate) fn open(&self, index: usize, waker: Option<&Waker>) {
        if let (Some(place), Some(w)) = (self.places.get(index), waker) {
            let _ = place.waker.set(w.clone());
        }
    }

    /// Loop `index` has `open` connections.
    pub(crate) fn publish_load(&self, index: usize, open: usize) {
        if let Some(place) = self.places.get(index) {
            place.load.store(open, Ordering::Relaxed);
        }
    }

    fn load(&self, index: usize) -> usize {
        let place = &self.places[index];
        place.load.load(Ordering::Relaxed) + place.queued.load(Ordering::Relaxed)
    }

    /// Where a connection loop `me` accepted goes: the less loaded of the next two
    /// candidates (`next` rotates them).
    pub(crate) fn choose(&self, me: usize, next: &mut usize) -> usize {
        let n = self.places.len();
        if n < 2 {
            return me;
        }
        let a = *next % n;
        let b = (a + 1) % n;
        *next = next.wrapping_add(1);
        if self.load(b) < self.load(a) { b } else { a }
    }

    /// Queues `socket` for loop `to`, waking it if it sleeps; gives it back if that
    /// loop's ring is full.
    pub(crate) fn offer(&self, to: usize, socket: Adopted) -> Result<(), Adopted> {
        let place = &self.places[to];
        {
            let mut ring = place.ring.lock().unwrap_or_else(PoisonError::into_inner);
            if ring.len() >= self.capacity {
                return Err(socket);
            }
            ring.push_back(socket);
            place.queued.store(ring.len(), Ordering::SeqCst);
        }
        // Read after the push (both sequentially consistent): a loop that set
        // `sleeping` before its last look at the ring either saw this socket or is
        // woken here.
        if place.sleeping.load(Ordering::SeqCst)
            && let Some(w) = place.waker.get()
        {
            w.notify_driver();
        }
        Ok(())
    }

    /// Takes every socket waiting for loop `index`, through `spare` (an empty ring
    /// the loop keeps, swapped for its full one, so that nothing is allocated and `f`
    /// runs outside the lock).
    pub(crate) fn take(
        &self,
        index: usize,
        spare: &mut VecDeque<Adopted>,
        mut f: impl FnMut(Adopted),
    ) {
        let Some(place) = self.places.get(index) else {
            return;
        };
        if place.queued.load(Ordering::SeqCst) == 0 {
            return;
        }
        {
            let mut ring = place.ring.lock().unwrap_or_else(PoisonError::into_inner);
            place.queued.store(0, Ordering::SeqCst);
            std::mem::swap(&mut *ring, spare);
        }
        for socket in spare.drain(..) {
            f(socket);
        }
    }

    /// An empty ring as large as a loop's.
    pub(crate) fn spare(&self) -> VecDeque<Adopted> {
        VecDeque::with_capacity(self.capacity)
    }

    /// Loop `index` is about to wait in its poller: whether it may sleep (nothing is
    /// queued for it). Call [`Handoff::awake`] after the wait.
    pub(crate) fn may_sleep(&self, index: usize) -> bool {
        let Some(place) = self.places.get(index) else {
            return true;
        };
        place.sleeping.store(true, Ordering::SeqCst);
        if place.queued.load(Ordering::SeqCst) > 0 {
            place.sleeping.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Loop `index` is back from its poller.
    pub(crate) fn awake(&self, index: usize) {
        if let Some(place) = self.places.get(index) {
            place.sleeping.store(false, Ordering::Relaxed);
        }
    }
}
