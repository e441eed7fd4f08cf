//! The wake path: a handle other threads use to wake a connection's handler.
//!
//! State shared between the loop and any number of waking threads, without a lock and
//! without allocation:
//!
//! - one 32-bit word per slot holding the slot's generation (30 bits), an *open* bit and
//!   a *pending* bit. [`Waker::wake`] sets *pending* with a compare-and-swap that also
//!   checks the generation and the open bit, so a wake for a closed or reused slot is
//!   refused atomically, and a wake for an already pending slot coalesces;
//! - a summary bitmap, one bit per 32 slots, so the loop finds pending slots without
//!   scanning every word;
//! - a *notified* flag so that many wakes before the loop runs cost one notification;
//! - a *server* flag for a wake of the server itself ([`Waker::wake_server`]), which
//!   needs no connection (a stop from a signal handler's thread).
//!
//! The driver supplies the [`Notify`] implementation (an eventfd, a kqueue user event, a
//! pipe, the simulator's queue). Because the pending bit lives in the word that holds the
//! generation, and closing a slot clears it, nothing of an old connection's wake can
//! reach the next connection in the same slot, and no queue can overflow.

use core::fmt;

use crate::ConnId;
use crate::id::{GEN_BITS, GEN_MASK};
use crate::sync::{AtomicBool, AtomicU32, Ordering};

const OPEN: u32 = 1 << GEN_BITS;
const PENDING: u32 = 1 << (GEN_BITS + 1);

/// Wakes the event loop's thread. Implemented by the driver.
pub trait Notify: Send + Sync {
    /// Makes the loop return from its wait (soon) and call
    /// [`Engine::handle_wakes`](crate::Engine::handle_wakes). Called at most once per
    /// batch of wakes; it must not block and must not call back into the engine.
    fn notify(&self);
}

/// One atomic word of wake state. Storage for [`WakeState`] is a slice of these, of
/// length [`WakeState::words_needed`].
pub struct WakeWord(AtomicU32);

impl WakeWord {
    /// A fresh word.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        WakeWord(AtomicU32::new(0))
    }

    /// A fresh word.
    #[cfg(loom)]
    pub fn new() -> Self {
        WakeWord(AtomicU32::new(0))
    }
}

impl Default for WakeWord {
    fn default() -> Self {
        WakeWord::new()
    }
}

impl fmt::Debug for WakeWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WakeWord")
    }
}

/// The shared wake state for an engine of `slots` connections.
///
/// `S` is the word storage (a `Box<[WakeWord]>`, a `&'static [WakeWord]`, an array), `N`
/// the driver's notifier. Build it, share it through a [`Waker`], and give the engine a
/// clone of that waker.
pub struct WakeState<S, N> {
    words: S,
    slots: usize,
    notified: AtomicBool,
    server: AtomicBool,
    shut_down: AtomicBool,
    notify: N,
}

impl<S, N> fmt::Debug for WakeState<S, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WakeState")
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

impl<S: AsRef<[WakeWord]>, N: Notify> WakeState<S, N> {
    /// Notifies the loop unless a notification is pending already. AcqRel pairs with
    /// the drain's swap: a drain that clears `notified` after this swap sees what the
    /// waker set before it; otherwise this notifies.
    fn notify_once(&self) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            self.notify.notify();
        }
    }

    /// Words of storage needed for `slots` connections: one per slot and one summary
    /// word per 32 slots.
    pub const fn words_needed(slots: usize) -> usize {
        slots + slots.div_ceil(32)
    }

    /// Wake state for `slots` connections over `words` (at least
    /// [`WakeState::words_needed`] words, all fresh), notifying through `notify`.
    ///
    /// # Panics
    ///
    /// If `words` is shorter than `words_needed(slots)`; this is a construction-time
    /// programming error, never a runtime condition.
    pub fn new(slots: usize, words: S, notify: N) -> Self {
        assert!(
            words.as_ref().len() >= Self::words_needed(slots),
            "wake storage too small"
        );
        WakeState {
            words,
            slots,
            notified: AtomicBool::new(false),
            server: AtomicBool::new(false),
            shut_down: AtomicBool::new(false),
            notify,
        }
    }

    fn slot_word(&self, slot: usize) -> &AtomicU32 {
        &self.words.as_ref()[slot].0
    }

    fn summary_word(&self, group: usize) -> &AtomicU32 {
        &self.words.as_ref()[self.slots + group].0
    }
}

/// The operations the engine and wakers need from a shared wake state. Implemented only
/// by [`WakeState`]; the trait exists so that a [`Waker`] can hide the storage and
/// notifier types.
pub trait WakeTarget: Send + Sync + sealed::Sealed {
    /// Number of slots.
    fn slots(&self) -> usize;
    /// See [`Waker::wake`].
    fn wake(&self, id: ConnId) -> bool;
    /// The engine opened `id`: wakes for it are accepted from now on.
    fn open(&self, id: ConnId);
    /// The engine closed `id`: wakes for it are refused from now on, and a wake still
    /// pending for it is dropped.
    fn close(&self, id: ConnId);
    /// See [`Waker::wake_server`].
    fn wake_server(&self) -> bool;
    /// See [`Waker::notify_driver`].
    fn notify_driver(&self) -> bool;
    /// Calls `f` with each slot that has a pending wake, clearing it, and returns
    /// whether the server itself was woken (clearing that too). The engine calls this
    /// from `handle_wakes`.
    fn drain(&self, f: &mut dyn FnMut(usize)) -> bool;
    /// Refuses every wake from now on.
    fn shut_down(&self);
}

mod sealed {
    pub trait Sealed {}
    impl<S, N> Sealed for super::WakeState<S, N> {}
}

impl<S, N> WakeTarget for WakeState<S, N>
where
    S: AsRef<[WakeWord]> + Send + Sync,
    N: Notify,
{
    fn slots(&self) -> usize {
        self.slots
    }

    fn wake(&self, id: ConnId) -> bool {
        let slot = id.slot();
        if slot >= self.slots || self.shut_down.load(Ordering::Acquire) {
            return false;
        }
        let word = self.slot_word(slot);
        let mut current = word.load(Ordering::Acquire);
        loop {
            if current & GEN_MASK != id.generation() || current & OPEN == 0 {
                return false;
            }
            if current & PENDING != 0 {
                return true;
            }
            match word.compare_exchange_weak(
                current,
                current | PENDING,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        // Release: a drain that sees this summary bit also sees the pending bit.
        self.summary_word(slot / 32)
            .fetch_or(1 << (slot % 32), Ordering::AcqRel);
        self.notify_once();
        true
    }

    fn wake_server(&self) -> bool {
        if self.shut_down.load(Ordering::Acquire) {
            return false;
        }
        // A drain that takes this flag after clearing `notified` sees it (`swap` for
        // the same reason as in `open`).
        self.server.swap(true, Ordering::AcqRel);
        self.notify_once();
        true
    }

    fn notify_driver(&self) -> bool {
        if self.shut_down.load(Ordering::Acquire) {
            return false;
        }
        self.notify_once();
        true
    }

    // `swap` rather than `store`: it costs the same on the loop's side (once per open or
    // close), and loom mis-orders a plain store racing a waker's compare-and-swap
    // (tokio-rs/loom#254), reporting histories no hardware can produce.
    fn open(&self, id: ConnId) {
        self.slot_word(id.slot())
            .swap(id.generation() | OPEN, Ordering::AcqRel);
    }

    fn close(&self, id: ConnId) {
        self.slot_word(id.slot())
            .swap(id.generation(), Ordering::AcqRel);
    }

    fn drain(&self, f: &mut dyn FnMut(usize)) -> bool {
        self.notified.swap(false, Ordering::AcqRel);
        for group in 0..self.slots.div_ceil(32) {
            let mut bits = self.summary_word(group).swap(0, Ordering::AcqRel);
            while bits != 0 {
                let bit = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let slot = group * 32 + bit;
                if slot >= self.slots {
                    continue;
                }
                let old = self.slot_word(slot).fetch_and(!PENDING, Ordering::AcqRel);
                if old & PENDING != 0 && old & OPEN != 0 {
                    f(slot);
                }
            }
        }
        self.server.swap(false, Ordering::AcqRel) && !self.shut_down.load(Ordering::Acquire)
    }

    fn shut_down(&self) {
        self.shut_down.store(true, Ordering::Release);
        for slot in 0..self.slots {
            self.slot_word(slot).fetch_and(GEN_MASK, Ordering::AcqRel);
        }
    }
}

#[derive(Clone)]
enum WakerRef {
    Static(&'static dyn WakeTarget),
    #[cfg(feature = "alloc")]
    Shared(alloc::sync::Arc<dyn WakeTarget>),
}

/// A handle that wakes a connection's handler from any thread.
///
/// `Send + Sync + Clone`; cloning it does not allocate. [`Waker::wake`] makes the loop
/// call [`Events::woken`](crate::Events::woken) for that connection soon. Several wakes
/// before the loop runs coalesce into one call; a wake never touches the connection's
/// pending output (the handler writes more, in order, from `woken`).
#[derive(Clone)]
pub struct Waker {
    target: WakerRef,
    /// The loop whose connections it wakes (a wake of another loop's id is refused:
    /// the same slot and generation there are a different connection).
    loop_index: u8,
}

impl fmt::Debug for Waker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waker")
            .field("slots", &self.target().slots())
            .finish()
    }
}

impl Waker {
    /// A waker over state that lives for the whole program (a `static`, or leaked once).
    pub fn from_static(state: &'static dyn WakeTarget) -> Self {
        Waker {
            target: WakerRef::Static(state),
            loop_index: 0,
        }
    }

    /// A waker over reference-counted state (std drivers).
    #[cfg(feature = "alloc")]
    pub fn from_arc(state: alloc::sync::Arc<dyn WakeTarget>) -> Self {
        Waker {
            target: WakerRef::Shared(state),
            loop_index: 0,
        }
    }

    pub(crate) fn target(&self) -> &dyn WakeTarget {
        match &self.target {
            WakerRef::Static(t) => *t,
            #[cfg(feature = "alloc")]
            WakerRef::Shared(t) => &**t,
        }
    }

    /// Asks the loop to call `woken` for connection `id`.
    ///
    /// Returns `true` if the wake was recorded (or coalesced with one already pending),
    /// `false` if `id` is unknown, closed, stale (its slot was reused), another loop's
    /// (a server of several loops: wake it with that loop's waker), or the server has
    /// shut down. Never blocks; safe from any thread, including from inside a
    /// handler on the loop's own thread.
    pub fn wake(&self, id: ConnId) -> bool {
        id.loop_index() == usize::from(self.loop_index) && self.target().wake(id)
    }

    /// Wakes the loop's driver without waking any handler, for mail of the driver's
    /// own: a server of several loops posts to a loop's inbox, then notifies its driver
    /// this way ([`PostOffice`](crate::PostOffice)). A driver that has been notified
    /// calls [`Engine::handle_wakes`](crate::Engine::handle_wakes) as for any wake,
    /// then looks at its mail. Returns `false` once the server has shut down.
    pub fn notify_driver(&self) -> bool {
        self.target().notify_driver()
    }

    /// Makes it the waker of loop `index` (the engine's, when it joins its loops).
    pub(crate) fn set_loop(&mut self, index: u8) {
        self.loop_index = index;
    }

    /// Asks the loop to call [`Events::server_woken`](crate::Events::server_woken),
    /// which may shut the server down: the way to stop a server from another thread
    /// (a signal handler's, say), with or without connections open.
    ///
    /// Returns `false` once the server has shut down. Several wakes before the loop
    /// runs coalesce into one call, so what a wake means goes through shared state (a
    /// flag, a queue) that `server_woken` reads. Never blocks; safe from any thread.
    ///
    /// ```
    /// # mod signal_hook {
    /// #     // A stand-in with the part of signal-hook 0.4's API used below.
    /// #     pub mod consts {
    /// #         pub const SIGINT: i32 = 2;
    /// #         pub const SIGTERM: i32 = 15;
    /// #     }
    /// #     pub mod iterator {
    /// #         pub struct Signals;
    /// #         impl Signals {
    /// #             pub fn new(_: [i32; 2]) -> std::io::Result<Signals> {
    /// #                 Ok(Signals)
    /// #             }
    /// #             pub fn forever(&mut self) -> impl Iterator<Item = i32> {
    /// #                 std::iter::empty()
    /// #             }
    /// #         }
    /// #     }
    /// # }
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// use evio_proto::{Events, Flow, Loop, Server};
    /// use signal_hook::consts::{SIGINT, SIGTERM}; // signal-hook = "0.4"
    /// use signal_hook::iterator::Signals;
    ///
    /// /// Stops the server cleanly on SIGINT or SIGTERM: pending output flushed as far as
    /// /// the sockets take it, every connection closed, and `serve` returning `Ok(())`.
    /// #[derive(Default)]
    /// struct Stoppable {
    ///     stop: Arc<AtomicBool>,
    /// }
    ///
    /// impl Events for Stoppable {
    ///     type Context = ();
    ///     fn serving(&mut self, server: Server<'_>) -> Flow {
    ///         let Some(waker) = server.waker().cloned() else {
    ///             return Flow::Continue;
    ///         };
    ///         let Ok(mut signals) = Signals::new([SIGINT, SIGTERM]) else {
    ///             return Flow::Continue; // signals cannot be watched: serve on regardless
    ///         };
    ///         let stop = Arc::clone(&self.stop);
    ///         std::thread::spawn(move || {
    ///             if signals.forever().next().is_some() {
    ///                 stop.store(true, Ordering::SeqCst);
    ///                 waker.wake_server(); // `server_woken` runs on the loop's thread
    ///             }
    ///         });
    ///         Flow::Continue
    ///     }
    ///     fn server_woken(&mut self, _: &mut Loop<'_, ()>) -> Flow {
    ///         if self.stop.load(Ordering::SeqCst) {
    ///             Flow::Shutdown
    ///         } else {
    ///             Flow::Continue
    ///         }
    ///     }
    /// }
    /// ```
    pub fn wake_server(&self) -> bool {
        self.target().wake_server()
    }
}
