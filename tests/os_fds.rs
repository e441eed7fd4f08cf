//! A closed connection's socket is closed at once, and a stopped server leaves no
//! descriptor behind, under every backend.
//!
//! Its own test binary: it counts this process's open descriptors, so nothing else may
//! open any meanwhile (the backends run one after the other).

mod os_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use evio::{Action, CloseError, Conn, ConnInfo, Events, Flow, Loop};
use evio_handlers::echo::Echo;
use os_common::*;

struct CountingEcho(Arc<AtomicUsize>);

impl Events for CountingEcho {
    type Context = ();
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        Echo.data(conn, input)
    }
    fn closed(&mut self, _: &ConnInfo, _: (), _: Option<CloseError>, _: &mut Loop<'_, ()>) -> Flow {
        self.0.fetch_add(1, Ordering::SeqCst);
        Flow::Continue
    }
}

/// Waits (at most `LIMIT`) for `f` to hold.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < LIMIT, "{what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn sockets_of_closed_connections_are_released(builder: evio::ServerBuilder) {
    let at_start = open_fds();
    let closed = Arc::new(AtomicUsize::new(0));
    let c = closed.clone();
    let server = start(builder, &["tcp4://127.0.0.1:0"], move || CountingEcho(c));
    let serving = open_fds();
    const N: usize = 8;
    let mut clients: Vec<Client> = (0..N).map(|_| connect(server.addr(0))).collect();
    for c in &mut clients {
        assert_eq!(c.round_trip(b"hi"), b"hi");
    }
    // Every client ends its stream; the server closes each connection.
    for c in &mut clients {
        c.shutdown_write();
        assert_eq!(c.read_to_end_lossy(), b"");
    }
    drop(clients);
    eventually("every connection closed", || {
        closed.load(Ordering::SeqCst) == N
    });
    // No connection closes after these: their sockets must be gone already.
    assert_eq!(
        open_fds(),
        serving,
        "the closed connections' sockets are released"
    );
    server.stop().unwrap();
    // The listener, the poller and the notifier go with the server (the serving
    // thread's own end is the last thing to go).
    eventually("the server released every descriptor", || {
        open_fds() <= at_start
    });
}

#[test]
fn sockets_are_released_under_every_backend() {
    sockets_of_closed_connections_are_released(evio::ServerBuilder::new());
    sockets_of_closed_connections_are_released(
        evio::ServerBuilder::new().backend(evio::Backend::Poll),
    );
}
