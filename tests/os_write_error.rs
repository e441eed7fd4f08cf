//! A send that fails while the peer is still connected (a unix peer that shut down its
//! reading side makes every send fail with EPIPE) closes the connection with that
//! error at once, under every backend.

mod os_common;

use std::io::Write;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;

use evio::{Action, CloseError, ConnInfo, Events, Flow, Loop, proto::IoErrorKind};
use evio_handlers::echo::Echo;
use os_common::*;

struct EchoReportingClose(mpsc::Sender<Option<CloseError>>);

impl Events for EchoReportingClose {
    type Context = ();
    fn data(&mut self, conn: &mut evio::Conn<'_, ()>, input: &[u8]) -> Action {
        Echo.data(conn, input)
    }
    fn closed(
        &mut self,
        _: &ConnInfo,
        _: (),
        error: Option<CloseError>,
        _: &mut Loop<'_, ()>,
    ) -> Flow {
        let _ = self.0.send(error);
        Flow::Continue
    }
}

fn a_failed_send_closes_with_its_error(builder: evio::ServerBuilder) {
    let dir = TempDir::new("write-error");
    let path = dir.sock("w.sock");
    let (tx, rx) = mpsc::channel();
    let server = start(builder, &[&format!("unix://{path}")], move || {
        EchoReportingClose(tx)
    });
    let mut c = UnixStream::connect(&path).unwrap();
    c.shutdown(Shutdown::Read).unwrap();
    // The echo of this cannot be sent; the client keeps its writing side open.
    c.write_all(b"unsendable").unwrap();
    let error = rx.recv_timeout(LIMIT).expect("the connection is closed");
    assert!(
        matches!(error, Some(CloseError::Io(e)) if e.kind == IoErrorKind::BrokenPipe),
        "{error:?}"
    );
    drop(c);
    server.stop().unwrap();
}

#[test]
fn a_failed_send_closes_with_its_error_default() {
    a_failed_send_closes_with_its_error(evio::ServerBuilder::new());
}

#[test]
fn a_failed_send_closes_with_its_error_poll() {
    a_failed_send_closes_with_its_error(evio::ServerBuilder::new().backend(evio::Backend::Poll));
}
