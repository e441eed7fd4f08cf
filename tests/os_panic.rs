//! A handler that panics unwinds out of `serve`; on the way out the driver releases
//! what it holds: the listening port can be bound again and open connections end.

mod os_common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::mpsc;

use evio::{Action, Conn, Events, Flow, ListenAddr, Server};
use evio_handlers::echo::Echo;
use os_common::*;

struct Panicker(mpsc::Sender<SocketAddr>);

impl Events for Panicker {
    type Context = ();
    fn serving(&mut self, server: Server<'_>) -> Flow {
        if let [ListenAddr::Ip(a)] = server.addrs() {
            self.0.send(*a).unwrap();
        }
        Flow::Continue
    }
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        if input == b"panic" {
            panic!("a handler panic (this test expects it)");
        }
        Echo.data(conn, input)
    }
}

fn a_panic_releases_the_port_and_the_connections(builder: evio::ServerBuilder) {
    let (tx, rx) = mpsc::channel();
    let server = std::thread::spawn(move || {
        let _ = builder.serve(Panicker(tx), &["tcp4://127.0.0.1:0"]);
    });
    let addr = rx.recv_timeout(LIMIT).expect("serving");
    let mut other = connect(&Bound::Tcp(addr));
    assert_eq!(other.round_trip(b"hi"), b"hi");
    let mut c = connect(&Bound::Tcp(addr));
    c.write_all(b"panic").unwrap();
    assert!(server.join().is_err(), "the panic reaches serve's caller");
    // The other connection ends (read_to_end_lossy fails the test if it hangs) ...
    other.read_to_end_lossy();
    // ... and nothing listens on the port any more.
    std::net::TcpListener::bind(addr).expect("the port was released");
}

#[test]
fn a_panic_releases_the_port_and_the_connections_default() {
    a_panic_releases_the_port_and_the_connections(evio::ServerBuilder::new());
}

#[test]
fn a_panic_releases_the_port_and_the_connections_poll() {
    a_panic_releases_the_port_and_the_connections(
        evio::ServerBuilder::new().backend(evio::Backend::Poll),
    );
}
