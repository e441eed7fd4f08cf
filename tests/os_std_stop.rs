//! When the std fallback stops, its accepting threads end even if no connection can
//! reach their listener any more (here: its socket file was removed by someone else).
//!
//! Its own test binary: it looks at this process's threads.

mod os_common;

use std::time::{Duration, Instant};

use evio_handlers::echo::Echo;
use os_common::*;

fn accept_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|n| n.trim() == "evio-accept")
        })
        .count()
}

#[test]
fn accepting_threads_end_when_their_socket_file_is_gone() {
    if !std::path::Path::new("/proc/self/task").exists() {
        return;
    }
    let dir = TempDir::new("std-stop");
    let path = dir.path().join("s.sock");
    let server = start(
        evio::ServerBuilder::new().std_fallback(true),
        &[&format!("unix://{}", path.display())],
        || Echo,
    );
    // (A new thread names itself once it runs.)
    eventually("the accepting thread runs", || accept_threads() == 1);
    std::fs::remove_file(&path).unwrap();
    server.stop().unwrap();
    eventually("the accepting thread ended", || accept_threads() == 0);
}

/// Waits (at most `LIMIT`) for `f` to hold.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < LIMIT, "{what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
