//! A handler that consumes only complete lines leaves a partial line in its input
//! buffer; when reads keep filling that buffer, the connection must go on being read
//! until every line has arrived, under every backend.
//!
//! (The threaded std fallback that poll(2) replaced stopped reading such a connection
//! for good: 1,980 of 4,194,304 bytes arrived here.)

mod os_common;

use std::io::{Read, Write};

use evio::{Action, Conn, Events};
use os_common::*;

/// Echoes complete lines only: a line's bytes are consumed once the whole line,
/// newline included, has been written back (or as much of it as the output took: the
/// rest of that line stays unconsumed and is offered again).
struct LineEcho;

impl Events for LineEcho {
    type Context = ();
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let Some(last) = input.iter().rposition(|&b| b == b'\n') else {
            conn.consume(0);
            return Action::None;
        };
        let n = conn.write_some(&input[..=last]);
        conn.consume(n);
        Action::None
    }
}

/// `total` bytes of newline-terminated lines of 1 to `max_line` bytes (newline
/// included), from a seeded generator.
fn lines(seed: u64, total: usize, max_line: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(total);
    while out.len() < total {
        let len = 1 + rng.below(max_line as u64) as usize;
        let len = len.min(total - out.len());
        for _ in 1..len {
            out.push(b'a' + rng.below(26) as u8);
        }
        out.push(b'\n');
    }
    out
}

/// Sends several MiB of lines in one write while a second thread reads the echo, and
/// checks every byte came back in order.
fn every_line_arrives(builder: evio::ServerBuilder, addr: &str) {
    // A small input buffer: nearly every read fills it and ends inside a line.
    let server = start(
        builder.input_capacity(1024).max_connections(8),
        &[addr],
        || LineEcho,
    );
    for (seed, max_line) in [(1u64, 300usize), (2, 1024)] {
        let payload = lines(seed, 4 << 20, max_line);
        let client = connect(server.addr(0));
        let mut reader = client.try_clone();
        let mut writer = client;
        let expected = payload.clone();
        let w = std::thread::spawn(move || {
            writer.write_all(&payload).expect("client write");
            writer
        });
        let mut got = vec![0u8; expected.len()];
        let mut at = 0;
        while at < got.len() {
            match reader.read(&mut got[at..]) {
                Ok(0) => panic!("server closed after {at} of {} bytes", expected.len()),
                Ok(n) => at += n,
                Err(e) => panic!("after {at} of {} bytes: {e}", expected.len()),
            }
        }
        assert!(got == expected, "the echoed lines differ");
        let writer = w.join().expect("writer thread");
        writer.shutdown_write();
        assert_eq!(reader.read_to_end_lossy().len(), 0);
    }
    server.stop().unwrap();
}

#[test]
fn every_line_arrives_default_backend() {
    every_line_arrives(evio::ServerBuilder::new(), "tcp4://127.0.0.1:0");
}

#[test]
fn every_line_arrives_poll_backend() {
    every_line_arrives(
        evio::ServerBuilder::new().backend(evio::Backend::Poll),
        "tcp4://127.0.0.1:0",
    );
}

#[test]
fn every_line_arrives_net_scheme_unix() {
    let dir = TempDir::new("lines");
    let path = dir.sock("l.sock");
    every_line_arrives(evio::ServerBuilder::new(), &format!("unix-net://{path}"));
}
