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
    let mut child = std::process::Command::new(&example)
        .args(["--host", host, "--port", "0", "--unixsocket", &sock])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
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
