//! The fuzz targets' committed inputs, on disk in the workspace's `fuzz/` directory:
//! `fuzz/seeds/<target>/<name>` (hand-made, written from readable scripts by the tests
//! that hold those scripts) and `fuzz/artifacts/<target>/*` (what a fuzzer found).
//!
//! The seeds are binary, so they are never edited by hand: a test builds each one from
//! its script and calls [`keep_seed`], which checks that the committed file holds
//! exactly those bytes, or writes it when [`WRITE_SEEDS_VAR`] is set. A script that
//! changes without its seed (or the input format changing under it) fails the test.

use std::fmt;
use std::path::{Path, PathBuf};

/// The environment variable that makes [`keep_seed`] write the seeds instead of
/// checking them: `EVIO_WRITE_SEEDS=1 cargo test --workspace --all-features seed`.
pub const WRITE_SEEDS_VAR: &str = "EVIO_WRITE_SEEDS";

/// The workspace's `fuzz/` directory (this crate's parent's `fuzz/`).
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Why a committed seed does not match its script.
#[derive(Debug)]
pub enum SeedError {
    /// The file is missing or unreadable.
    Missing {
        /// The seed's path.
        path: PathBuf,
        /// The error reading it.
        error: std::io::Error,
    },
    /// The file holds other bytes than the script makes.
    Stale {
        /// The seed's path.
        path: PathBuf,
    },
    /// Writing it (with [`WRITE_SEEDS_VAR`] set) failed.
    Write {
        /// The seed's path.
        path: PathBuf,
        /// The error writing it.
        error: std::io::Error,
    },
}

impl fmt::Display for SeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hint = "write the seeds again with EVIO_WRITE_SEEDS=1 and commit them";
        match self {
            SeedError::Missing { path, error } => {
                write!(
                    f,
                    "seed {} cannot be read ({error}): {hint}",
                    path.display()
                )
            }
            SeedError::Stale { path } => write!(
                f,
                "seed {} is not what its script makes: {hint}",
                path.display()
            ),
            SeedError::Write { path, error } => {
                write!(f, "seed {} cannot be written: {error}", path.display())
            }
        }
    }
}

impl core::error::Error for SeedError {}

/// Checks that `fuzz/seeds/<target>/<name>` holds exactly `input`; with
/// [`WRITE_SEEDS_VAR`] set (to anything but `0`), writes it instead.
///
/// # Errors
///
/// The seed is missing, holds other bytes, or cannot be written.
pub fn keep_seed(target: &str, name: &str, input: &[u8]) -> Result<(), SeedError> {
    let path = fuzz_dir().join("seeds").join(target).join(name);
    if std::env::var_os(WRITE_SEEDS_VAR).is_some_and(|v| v != "0") {
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, input));
        return written.map_err(|error| SeedError::Write { path, error });
    }
    match std::fs::read(&path) {
        Ok(committed) if committed == input => Ok(()),
        Ok(_) => Err(SeedError::Stale { path }),
        Err(error) => Err(SeedError::Missing { path, error }),
    }
}

/// Every committed input of `target`: the files under `fuzz/seeds/<target>/` and
/// `fuzz/artifacts/<target>/` (a directory that does not exist has none), sorted by
/// path, each with its bytes.
///
/// # Errors
///
/// A directory or file that exists but cannot be read.
pub fn committed_inputs(target: &str) -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut inputs = Vec::new();
    for kind in ["seeds", "artifacts"] {
        let dir = fuzz_dir().join(kind).join(target);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_file() {
                let bytes = std::fs::read(&path)?;
                inputs.push((path, bytes));
            }
        }
    }
    inputs.sort();
    Ok(inputs)
}
