//! The `no_std` proof: builds the `nostd-check` crate (a `#![no_std]` library with its
//! own panic handler that links evio-proto's engine) with `panic = "abort"`. The build
//! fails if anything in evio-proto's dependency graph links `std` (duplicate
//! `panic_impl` lang item) or needs an allocator ("no global memory allocator found").

use std::path::Path;
use std::process::Command;

#[test]
fn evio_proto_links_without_std_or_alloc() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    // Its own target directory: the abort profile would otherwise rebuild the shared
    // cache back and forth with the test builds.
    let target = workspace.join("target").join("nostd-check");
    let output = Command::new(env!("CARGO"))
        .current_dir(workspace)
        .args([
            "build",
            "--quiet",
            "-p",
            "nostd-check",
            "--profile",
            "nostd",
        ])
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "evio-proto does not build as no_std without alloc:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lib = target.join("nostd").join("libnostd_check.a");
    assert!(lib.exists(), "no static library at {}", lib.display());
}
