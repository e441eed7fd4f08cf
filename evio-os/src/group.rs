//! Several loops of one server: what they share to stop together.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use evio_proto::Waker;

/// What the loops of one server share: whether it is stopping, and how to wake each
/// loop to tell it.
///
/// A loop that stops (its handler asked for a shutdown, or its poller failed) stops
/// them all: it sets the flag and wakes every other loop, whose driver then asks its
/// engine to shut down ([`evio_proto::Engine::handle_shutdown`]).
#[derive(Debug, Default)]
pub(crate) struct Group {
    stopping: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Group {
    /// Adds a loop's waker; whether the server is already stopping (then that loop
    /// stops at once: a stop that came before it joined woke everyone but it).
    pub(crate) fn join(&self, waker: Option<&Waker>) -> bool {
        let mut wakers = self.wakers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = waker {
            wakers.push(w.clone());
        }
        // Read under the lock `stop` takes to wake: a stop is either seen here or
        // wakes this loop.
        self.stopping.load(Ordering::Acquire)
    }

    /// The server stops: every loop that joined is woken to stop too.
    pub(crate) fn stop(&self) {
        let wakers = self.wakers.lock().unwrap_or_else(PoisonError::into_inner);
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        for w in wakers.iter() {
            w.wake_server();
        }
    }

    /// Whether a loop has stopped the server.
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }
}
