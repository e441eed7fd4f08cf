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
    /// allocated), and [`BuildError::OutOfMemory`] if the buffers' address space, the
    /// slot table or the wake state cannot be had (the buffers are asked for first).
    pub fn allocate<N: Notify + 'static>(
        handler: H,
        config: Config,
        notify: N,
    ) -> Result<Self, BuildError> {
        probe_buffers(config.validate()?)?;
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
        probe_buffers(bytes)?;
        let n = config.max_connections;
        let mut slots = Vec::new();
        slots
            .try_reserve_exact(n)
            .map_err(|_| BuildError::OutOfMemory)?;
        slots.extend((0..n).map(|_| Slot::new()));
        Engine::new(handler, config, slots, alloc::vec![0u8; bytes], waker)
    }
}

/// Checks that `bytes` of buffers can be had, before anything else is allocated.
///
/// The buffers are allocated with `vec![0; bytes]`, whose pages the system maps lazily
/// (untouched buffers cost no resident memory), but which aborts the process when the
/// address space is not there (a 32-bit process asked for a pool sized for 64 bits).
/// `try_reserve_exact` asks for the same space and fails instead; it is given back at
/// once and taken zeroed right after. (A fallible zeroed allocation is not in stable
/// Rust without `unsafe`; only another thread taking the space in between could still
/// make the second request abort.)
fn probe_buffers(bytes: usize) -> Result<(), BuildError> {
    let mut probe: Vec<u8> = Vec::new();
    probe
        .try_reserve_exact(bytes)
        .map_err(|_| BuildError::OutOfMemory)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Quiet;
    impl Events for Quiet {
        type Context = ();
    }

    #[derive(Debug)]
    struct NoNotify;
    impl Notify for NoNotify {
        fn notify(&self) {}
    }

    /// Buffers no address space can hold (256 TiB for 65,536 connections on 64-bit
    /// targets, past the 47 bits of user addresses Linux hands out by default, and
    /// past Apple's and the BSDs' too) are an error, not an aborted process. On 32-bit
    /// targets, 2 GiB at once may or may not be had: either way, no abort.
    #[test]
    fn buffers_beyond_the_address_space_are_an_error_not_an_abort() {
        let mut config = Config::new();
        if cfg!(target_pointer_width = "64") {
            config.max_connections = 1 << 16;
            config.input_capacity = 1 << 31;
            config.output_capacity = 1 << 31;
        } else {
            config.max_connections = 1;
            config.input_capacity = 1 << 29;
            config.output_capacity = (1 << 29) - 1;
        }
        let bytes = config.validate().expect("within isize::MAX");
        assert!(bytes > (1 << 30));
        if cfg!(target_pointer_width = "64") {
            let refused = |r: Result<HeapEngine<Quiet>, BuildError>| {
                matches!(r, Err(BuildError::OutOfMemory))
            };
            assert!(refused(Engine::allocate_without_waker(Quiet, config)));
            assert!(refused(Engine::allocate(Quiet, config, NoNotify)));
        } else {
            let r: Result<HeapEngine<Quiet>, BuildError> =
                Engine::allocate_without_waker(Quiet, config);
            assert!(matches!(r, Ok(_) | Err(BuildError::OutOfMemory)));
        }
        // Where it fits, it is an engine like any other.
        let mut small = Config::new();
        small.max_connections = 4;
        assert!(Engine::allocate(Quiet, small, NoNotify).is_ok());
    }
}
