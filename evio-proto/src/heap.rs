//! Engines and wake state on the heap, for drivers that have an allocator (the
//! `alloc` feature): one constructor instead of every driver building its own storage.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::{BuildError, Config, Engine, Events, Notify, Slot, WakeState, WakeWord, Waker};

/// An engine whose slots and buffers are on the heap, as [`Engine::allocate`] builds it.
pub type HeapEngine<H> = Engine<H, Vec<Slot<<H as Events>::Context>>, Vec<u8>>;

impl<N: Notify> WakeState<Box<[WakeWord]>, N> {
    /// Wake state for `slots` connections with its words on the heap.
    ///
    /// # Errors
    ///
    /// [`BuildError::OutOfMemory`] if the words cannot be allocated.
    pub fn allocate(slots: usize, notify: N) -> Result<Self, BuildError> {
        let count = Self::words_needed(slots);
        let mut words = Vec::new();
        words
            .try_reserve_exact(count)
            .map_err(|_| BuildError::OutOfMemory)?;
        words.extend((0..count).map(|_| WakeWord::new()));
        Ok(WakeState::new(slots, words.into_boxed_slice(), notify))
    }
}

impl<H: Events> HeapEngine<H> {
    /// Builds an engine over heap storage, with a [`Waker`] ([`Engine::waker`]) that
    /// notifies through `notify`: `max_connections` slots, and [`Config::bytes_needed`]
    /// bytes of buffers allocated zeroed (the system maps such pages lazily, so buffers
    /// no connection uses cost no resident memory).
    ///
    /// The engine refuses every wake once it is dropped, however its loop ended.
    ///
    /// # Errors
    ///
    /// [`BuildError`] for an invalid configuration (checked before anything is
    /// allocated), and [`BuildError::OutOfMemory`] if the slot table or the wake state
    /// cannot be allocated. (The buffers' address space is reserved with `vec![0; n]`,
    /// which aborts the process rather than fail: a fallible zeroed allocation is not
    /// in stable Rust without `unsafe`.)
    pub fn allocate<N: Notify + 'static>(
        handler: H,
        config: Config,
        notify: N,
    ) -> Result<Self, BuildError> {
        config.validate()?;
        let state = WakeState::allocate(config.max_connections, notify)?;
        Self::build(handler, config, Some(Waker::from_arc(Arc::new(state))))
    }

    /// Like [`Engine::allocate`], without a waker (nothing can wake a connection).
    ///
    /// # Errors
    ///
    /// As [`Engine::allocate`].
    pub fn allocate_without_waker(handler: H, config: Config) -> Result<Self, BuildError> {
        Self::build(handler, config, None)
    }

    fn build(handler: H, config: Config, waker: Option<Waker>) -> Result<Self, BuildError> {
        let bytes = config.validate()?;
        let n = config.max_connections;
        let mut slots = Vec::new();
        slots
            .try_reserve_exact(n)
            .map_err(|_| BuildError::OutOfMemory)?;
        slots.extend((0..n).map(|_| Slot::new()));
        Engine::new(handler, config, slots, alloc::vec![0u8; bytes], waker)
    }
}
