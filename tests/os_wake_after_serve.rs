//! A waker outlives the loop it wakes: after `serve` has unwound from a panicking
//! handler, a wake is refused, and must not raise SIGPIPE (its default action, restored
//! here, would kill this process) by writing to a notifier pipe nobody reads any more.

mod os_common;

use std::io::Write;
use std::sync::mpsc;

use evio::{Action, Conn, ConnId, Events, Flow, Server, Waker};
use evio_handlers::echo::Echo;
use os_common::*;

struct PanicOnRequest(mpsc::Sender<(Option<Waker>, Option<ConnId>)>);

impl Events for PanicOnRequest {
    type Context = ();
    fn serving(&mut self, server: Server<'_>) -> Flow {
        let _ = self.0.send((server.waker().cloned(), None));
        Flow::Continue
    }
    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let _ = self.0.send((None, Some(conn.id())));
        Action::None
    }
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        if input == b"panic" {
            panic!("a handler panic (this test expects it)");
        }
        Echo.data(conn, input)
    }
}

#[test]
fn a_wake_after_serve_unwound_is_refused_and_raises_no_sigpipe() {
    // SAFETY: restoring a signal's default action, before any server runs here.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let dir = TempDir::new("wake-after");
    let unix = format!("unix://{}", dir.sock("w.sock"));
    let (tx, rx) = mpsc::channel();
    let server = std::thread::spawn(move || {
        let _ = evio::serve(PanicOnRequest(tx), &[unix]);
    });
    let (waker, _) = rx.recv_timeout(LIMIT).expect("serving");
    let waker = waker.expect("a waker");
    let path = Bound::Unix(dir.path().join("w.sock"));
    let mut a = connect(&path);
    assert_eq!(a.round_trip(b"hi"), b"hi");
    let (_, id) = rx.recv_timeout(LIMIT).expect("opened");
    let id = id.expect("an id");
    let mut b = connect(&path);
    b.write_all(b"panic").unwrap();
    assert!(server.join().is_err(), "the panic reaches serve's caller");
    // The loop is gone: the wake is refused (as after a shutdown), and nothing it
    // does may raise SIGPIPE.
    assert!(!waker.wake(id), "a wake after serve ended is refused");
    drop((a, b));
}
