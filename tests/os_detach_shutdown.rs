//! A shutdown that follows a detach within one turn of the loop: every connection
//! still ends in exactly one `detached` or `closed`, under every backend.

mod os_common;

use evio::{
    Action, CloseError, Conn, ConnId, ConnInfo, Detached, DetachedSocket, Events, Flow, Loop,
    Server,
};
use evio_handlers::echo::Echo;
use os_common::*;

/// Echoes; on `detach` it wakes every other connection and detaches this one; a woken
/// connection shuts the server down. So the shutdown follows the detach within one turn
/// of the loop.
struct DetachThenShutdown {
    waker: Option<evio::Waker>,
    open: Vec<ConnId>,
    log: Log,
}

impl Events for DetachThenShutdown {
    type Context = ();

    fn serving(&mut self, server: Server<'_>) -> Flow {
        self.waker = server.waker().cloned();
        Flow::Continue
    }
    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.open.push(conn.id());
        self.log.push(format!("opened {:?}", conn.id()));
        Action::None
    }
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        if input == b"detach" {
            let waker = self.waker.as_ref().expect("a waker");
            for &id in self.open.iter().filter(|&&id| id != conn.id()) {
                assert!(waker.wake(id));
            }
            return Action::Detach;
        }
        Echo.data(conn, input)
    }
    fn woken(&mut self, _: &mut Conn<'_, ()>) -> Action {
        Action::Shutdown
    }
    fn detached(
        &mut self,
        info: &ConnInfo,
        _: &mut (),
        mut socket: Detached<'_>,
        _: &mut Loop<'_, ()>,
    ) -> Flow {
        let s = socket.take::<DetachedSocket>();
        self.log.push(format!("ended {:?}", info.id));
        drop(s);
        Flow::Continue
    }
    fn closed(
        &mut self,
        info: &ConnInfo,
        _: (),
        _: Option<CloseError>,
        _: &mut Loop<'_, ()>,
    ) -> Flow {
        self.log.push(format!("ended {:?}", info.id));
        Flow::Continue
    }
}

fn detach_then_shutdown(builder: evio::ServerBuilder) {
    let log = Log::default();
    let l = log.clone();
    let server = start(builder, &["tcp4://127.0.0.1:0"], move || {
        DetachThenShutdown {
            waker: None,
            open: Vec::new(),
            log: l,
        }
    });
    let mut a = connect(server.addr(0));
    let mut b = connect(server.addr(0));
    assert_eq!(a.round_trip(b"hi"), b"hi");
    assert_eq!(b.round_trip(b"hi"), b"hi");
    std::io::Write::write_all(&mut a, b"detach").unwrap();
    // The server shuts itself down; `serve` returns.
    server.wait().unwrap();
    let log = log.snapshot();
    let opened: Vec<&str> = log
        .iter()
        .filter_map(|e| e.strip_prefix("opened "))
        .collect();
    assert_eq!(opened.len(), 2, "{log:?}");
    for id in opened {
        let ends = log.iter().filter(|e| **e == format!("ended {id}")).count();
        assert_eq!(ends, 1, "connection {id}: {log:?}");
    }
    drop((a, b));
}

#[test]
fn a_detach_then_a_shutdown_ends_every_connection_once_default() {
    detach_then_shutdown(evio::ServerBuilder::new());
}

#[test]
fn a_detach_then_a_shutdown_ends_every_connection_once_poll() {
    detach_then_shutdown(evio::ServerBuilder::new().backend(evio::Backend::Poll));
}
