//! Who holds a slot: the free list, the count of slots in use, and the paths of unix
//! connects not yet handed to the driver. One value, so that a callback's [`Loop`]
//! reaches all three through one reference.
//!
//! [`Loop`]: crate::Loop

use crate::connect::UnixPaths;
use crate::lists::FreeList;

/// The engine's slots as a pool.
pub(crate) struct Pool {
    /// Slots no connection holds.
    pub(crate) free: FreeList,
    /// Slots in use (connections open, connecting or closing, not yet ended).
    pub(crate) open: usize,
    /// The paths of unix connects not yet handed to the driver.
    pub(crate) unix_paths: UnixPaths,
}
