//! The echo example stops on SIGINT as the chat example does on SIGTERM (tests/chat.rs):
//! every connection closed, the unix socket file removed, exit status 0.

mod os_common;

use std::io::{BufRead, BufReader, Write};

use os_common::*;

#[test]
fn the_echo_example_stops_on_sigint_with_status_zero_and_removes_its_socket_file() {
    let example = example_binary("echo-server");
    let dir = TempDir::new("echo-signal");
    let sock = dir.sock("echo.sock");
    // On IPv6 when the machine has it (the example brackets the host).
    let (host, shown) = if ipv6_available() {
        ("::1", "[::1]")
    } else {
        ("127.0.0.1", "127.0.0.1")
    };
    let mut child = KillOnDrop(
        std::process::Command::new(&example)
            .args(["--host", host, "--port", "0", "--unixsocket", &sock])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(
        first.starts_with(&format!("echo server listening on tcp://{shown}:")),
        "{first}"
    );
    let mut second = String::new();
    out.read_line(&mut second).unwrap();
    assert!(std::path::Path::new(&sock).exists(), "{second}");
    // A client on the unix socket is answered, then closed by the stop.
    let mut c = connect(&Bound::Unix(sock.clone().into()));
    c.write_all(b"ping").unwrap();
    assert_eq!(c.read_n(4), b"ping");
    stop_example_with_signal(&mut child, libc::SIGINT, &sock, &mut c);
}

/// A SIGTERM sent the moment the unix socket file appears (a service manager that
/// restarts quickly), before the server may have reached `serving`: the signal is
/// caught from before the first bind, so every run stops cleanly, with status 0 and
/// no socket file left.
#[test]
fn a_sigterm_right_after_the_socket_file_appears_stops_the_echo_example_cleanly() {
    use std::process::{Command, Stdio};
    use std::time::Instant;

    const RUNS: usize = 20;
    let example = example_binary("echo-server");
    let dir = TempDir::new("echo-early-signal");
    for run in 0..RUNS {
        let sock = dir.sock(&format!("echo{run}.sock"));
        let mut child = KillOnDrop(
            Command::new(&example)
                .args(["--host", "127.0.0.1", "--port", "0", "--unixsocket", &sock])
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let start = Instant::now();
        while !std::path::Path::new(&sock).exists() {
            assert!(start.elapsed() < LIMIT, "run {run}: no socket file");
            if let Some(status) = child.try_wait().unwrap() {
                panic!("run {run}: the example exited before binding: {status}");
            }
            std::thread::yield_now();
        }
        // SAFETY: kill(2) on our own child's pid, with a valid signal number.
        assert_eq!(
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
            0
        );
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("run {run}: still running {LIMIT:?} after SIGTERM");
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        assert!(status.success(), "run {run}: exit status {status}");
        assert!(
            !std::path::Path::new(&sock).exists(),
            "run {run}: socket file left behind"
        );
    }
}
