//! A client that resets the connection while the server is writing to it: no SIGPIPE
//! (its default action, restored here, would kill this process), the connection is
//! closed with an I/O error, and the server keeps serving.

mod os_common;

use std::io::{Read, Write};
use std::sync::mpsc::{self, Sender};

use evio::{Action, CloseError, Conn, ConnInfo, Events, Flow, Loop};
use os_common::*;

/// `g` starts an endless stream of output; anything else is echoed.
struct Flood {
    closed: Sender<Option<CloseError>>,
}

impl Events for Flood {
    type Context = bool;
    fn data(&mut self, conn: &mut Conn<'_, bool>, input: &[u8]) -> Action {
        if input.first() == Some(&b'g') || *conn.context() {
            *conn.context() = true;
            let chunk = [b'x'; 4096];
            while conn.write_some(&chunk) == chunk.len() {}
            // Keep the request unconsumed: `data` runs again whenever output drains.
            conn.consume(0);
            return Action::None;
        }
        let n = conn.write_some(input);
        conn.consume(n);
        Action::None
    }
    fn closed(
        &mut self,
        _: &ConnInfo,
        _: bool,
        error: Option<CloseError>,
        _: &mut Loop<'_, bool>,
    ) -> Flow {
        let _ = self.closed.send(error);
        Flow::Continue
    }
}

#[test]
fn a_client_reset_mid_write_neither_kills_nor_stops_the_server() {
    // SAFETY: setting a signal's disposition to its default is async-signal-safe and
    // touches no Rust state; it only makes a stray SIGPIPE fatal, which is the point.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let dir = TempDir::new("reset");
    let unix = format!("unix://{}", dir.sock("r.sock"));
    let (tx, closed) = mpsc::channel();
    let server = start(
        evio::ServerBuilder::new()
            .max_connections(8)
            .output_capacity(64 * 1024),
        &["tcp4://127.0.0.1:0", &unix],
        move || Flood { closed: tx },
    );
    for round in 0..3 {
        for addr in server.addrs.clone() {
            let mut c = connect(&addr);
            c.write_all(b"g").unwrap();
            let mut buf = [0u8; 10_000];
            c.read_exact(&mut buf).unwrap();
            // Closing with unread data makes the kernel send a reset (TCP) or makes
            // the server's next write fail with EPIPE (unix).
            drop(c);
            let error = closed.recv_timeout(LIMIT).expect("closed after the reset");
            assert!(
                matches!(error, Some(CloseError::Io(_))),
                "round {round} {addr:?}: closed with {error:?}"
            );
            // The server keeps serving.
            let mut ok = connect(&addr);
            assert_eq!(ok.round_trip(b"alive"), b"alive");
            drop(ok);
            assert_eq!(closed.recv_timeout(LIMIT).unwrap(), None);
        }
    }
    server.stop().unwrap();
}
