//! The handler API on real sockets, under every backend: an abortive close resets the
//! peer, a frame too large is answered and the answer survives (a lingering close),
//! and an idle timeout closes a connection.

mod os_common;

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use evio::{Action, Conn, Events};
use os_common::*;

/// "abort" makes it write a lot and reset; a full input buffer is answered with
/// "-ERR too large\r\n" and nothing consumed; otherwise it answers "+OK\r\n" per line.
struct Api;

impl Events for Api {
    type Context = ();
    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        conn.set_timeout(Some(Duration::from_millis(300)));
        Action::None
    }
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        conn.set_timeout(Some(Duration::from_millis(300)));
        if input.starts_with(b"abort") {
            while conn.write_some(&[b'x'; 1024]) > 0 {}
            return Action::Abort;
        }
        if input.len() == conn.input_capacity() {
            let _ = conn.write(b"-ERR too large\r\n");
            conn.consume(0);
            return Action::None;
        }
        let lines = input.iter().filter(|&&b| b == b'\n').count();
        let end = input.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        for _ in 0..lines {
            let _ = conn.write(b"+OK\r\n");
        }
        conn.consume(end);
        Action::None
    }
    fn timeout(&mut self, _: &mut Conn<'_, ()>) -> Action {
        Action::Close
    }
}

fn builders() -> [evio::ServerBuilder; 2] {
    [
        evio::ServerBuilder::new(),
        evio::ServerBuilder::new().backend(evio::Backend::Poll),
    ]
}

#[test]
fn an_abortive_close_resets_the_peer() {
    for builder in builders() {
        let server = start(builder, &["tcp4://127.0.0.1:0"], || Api);
        let mut c = connect(server.addr(0));
        c.write_all(b"abort\n").unwrap();
        // Whatever arrives before it, the stream ends in a reset, not an end of stream.
        let mut buf = [0u8; 65536];
        let end = loop {
            match c.read(&mut buf) {
                Ok(0) => break None,
                Ok(_) => {}
                Err(e) => break Some(e.kind()),
            }
        };
        assert_eq!(end, Some(ErrorKind::ConnectionReset));
        server.stop().unwrap();
    }
}

#[test]
fn a_frame_too_large_is_answered_and_the_answer_survives_the_close() {
    for builder in builders() {
        let server = start(
            builder.input_capacity(1024).linger(Duration::from_secs(5)),
            &["tcp4://127.0.0.1:0"],
            || Api,
        );
        let c = connect(server.addr(0));
        let mut writer = c.try_clone();
        // The client goes on sending a huge frame while it reads: without a lingering
        // close, the close over its unread bytes would reset the connection and could
        // destroy the answer before it is read.
        let sender = std::thread::spawn(move || {
            let chunk = [b'a'; 16 * 1024];
            let mut sent = 0;
            while sent < 4 << 20 {
                match writer.write(&chunk) {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
            writer.shutdown_write();
        });
        let mut reader = c;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let end = loop {
            match reader.read(&mut buf) {
                Ok(0) => break None,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break Some(e.kind()),
            }
        };
        assert_eq!(got, b"-ERR too large\r\n");
        // The server waited for the client's end of stream: a clean close, no reset.
        assert_eq!(end, None, "the stream ended in an error");
        sender.join().unwrap();
        server.stop().unwrap();
    }
}

#[test]
fn an_idle_connection_times_out_and_a_busy_one_does_not() {
    for builder in builders() {
        let server = start(builder, &["tcp4://127.0.0.1:0"], || Api);
        let mut idle = connect(server.addr(0));
        let mut busy = connect(server.addr(0));
        let started = Instant::now();
        // The busy one talks every 100 ms, well within its 300 ms timeout.
        while started.elapsed() < Duration::from_millis(900) {
            assert_eq!(busy.round_trip_text(b"ping\n", 5), b"+OK\r\n");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(idle.read_to_end_lossy(), b"", "closed for being idle");
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "never early"
        );
        assert_eq!(busy.round_trip_text(b"still?\n", 5), b"+OK\r\n");
        server.stop().unwrap();
    }
}

trait RoundTrip {
    fn round_trip_text(&mut self, msg: &[u8], reply: usize) -> Vec<u8>;
}

impl RoundTrip for Client {
    fn round_trip_text(&mut self, msg: &[u8], reply: usize) -> Vec<u8> {
        self.write_all(msg).unwrap();
        self.read_n(reply)
    }
}
