//! What the workspace's tests share: [`CountingAllocator`], the global allocator of the
//! zero-allocation tests, and [`allocations`], the count it keeps for each thread.
//!
//! A dev-dependency only (evio-proto's, evio-handlers' and the facade's tests), so
//! nothing here reaches the engine's `no_std` build. A global allocator must be
//! declared in the binary that uses it, so each test file installs it itself; it counts
//! per thread, so the other tests of the same binary, running on their own threads, do
//! not change what a test measures:
//!
//! ```
//! use evio_test_support::{CountingAllocator, allocations};
//!
//! #[global_allocator]
//! static GLOBAL: CountingAllocator = CountingAllocator;
//!
//! fn main() {
//!     let before = allocations();
//!     let squares: Vec<u64> = (0..100).map(|i| i * i).collect();
//!     assert_eq!(allocations() - before, 1);
//!     let before = allocations();
//!     let sum: u64 = squares.iter().sum(); // reading allocates nothing
//!     assert_eq!((sum, allocations() - before), (328_350, 0));
//! }
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

/// A global allocator that hands every call to the [`System`] allocator unchanged and
/// counts, for the calling thread, the allocations (`alloc`, `alloc_zeroed` and
/// `realloc`; not `dealloc`). Read the count with [`allocations`].
#[derive(Clone, Copy, Debug, Default)]
pub struct CountingAllocator;

thread_local! {
    // `const` and a `Cell<u64>`: no lazy initialisation and no destructor, so counting
    // never allocates (which would recurse into the allocator).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Set by the first allocation through [`CountingAllocator`]: it is the global one.
static INSTALLED: AtomicBool = AtomicBool::new(false);

fn count() {
    if !INSTALLED.load(Ordering::Relaxed) {
        INSTALLED.store(true, Ordering::Relaxed);
    }
    // While a thread is being torn down its counter may be gone: not counted then.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

/// The allocations made on the calling thread so far, through [`CountingAllocator`].
///
/// # Panics
///
/// If `CountingAllocator` is not the binary's global allocator: the count would stay
/// zero, and a test that allocations do not grow would pass whatever its code does.
pub fn allocations() -> u64 {
    if !INSTALLED.load(Ordering::Relaxed) {
        // Nothing went through it yet: one allocation tells whether it is installed.
        drop(std::hint::black_box(Box::new(0u8)));
        assert!(
            INSTALLED.load(Ordering::Relaxed),
            "CountingAllocator is not this binary's global allocator: declare \
             `#[global_allocator] static GLOBAL: CountingAllocator = CountingAllocator;`"
        );
    }
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: every method hands its call, arguments unchanged, to the system allocator,
// which upholds `GlobalAlloc`'s contract; counting touches only a thread-local cell and
// an atomic flag, and neither allocates nor unwinds.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's guarantees for `layout` are passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`;
        // the caller's guarantees are passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[cfg(test)]
mod tests {
    /// This unit-test binary has the default global allocator.
    #[test]
    #[should_panic(expected = "not this binary's global allocator")]
    fn counting_without_the_allocator_installed_fails() {
        super::allocations();
    }
}
