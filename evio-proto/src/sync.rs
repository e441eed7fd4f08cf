//! The atomics the wake path uses: `core`'s normally, loom's under `--cfg loom` so the
//! loom model checks the very code that ships.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
