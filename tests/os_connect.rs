//! Outbound connections on real sockets, under every backend this machine has (epoll
//! and poll(2) here; kqueue is type-checked for macOS and FreeBSD in CI): TCP over
//! IPv4 and IPv6 and unix sockets connect and open with their real addresses, and a
//! connect that cannot succeed ends in one `closed` with a typed error.

mod os_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixListener;
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use evio::{
    Action, Addr, CloseError, Conn, ConnInfo, ConnectAddr, Events, Flow, IoErrorKind, Loop, Tick,
};
use os_common::*;

const ADDRS: [&str; 2] = ["tcp4://127.0.0.1:0", "tcp4-net://127.0.0.1:0"];

/// What became of a connect.
#[derive(Debug, PartialEq)]
enum Outcome {
    Opened(ConnInfo),
    /// The peer's answer to the greeting.
    Answer(Vec<u8>),
    Closed(Option<CloseError>),
}

/// Connects to `to` from its first tick, writes `hello` at once (before the connect is
/// answered), and reports what happens.
struct Dialer {
    to: Target,
    tx: Sender<Outcome>,
}

enum Target {
    Ip(SocketAddr),
    Unix(String),
}

impl Events for Dialer {
    type Context = ();
    fn tick(&mut self, others: &mut Loop<'_, ()>) -> Tick {
        let to = match &self.to {
            Target::Ip(a) => ConnectAddr::Ip(*a),
            Target::Unix(p) => ConnectAddr::Unix(p),
        };
        let id = others
            .connect(to, Duration::from_secs(10), ())
            .expect("a slot is free");
        others.write(id, b"hello").expect("room while connecting");
        Tick::stop()
    }
    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let _ = self.tx.send(Outcome::Opened(*conn.info()));
        Action::None
    }
    fn data(&mut self, _: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let _ = self.tx.send(Outcome::Answer(input.to_vec()));
        Action::None
    }
    fn closed(&mut self, _: &ConnInfo, _: (), e: Option<CloseError>, _: &mut Loop<'_, ()>) -> Flow {
        let _ = self.tx.send(Outcome::Closed(e));
        Flow::Continue
    }
}

fn dial(addr: &str, to: Target) -> (Running, mpsc::Receiver<Outcome>) {
    let (tx, rx) = mpsc::channel();
    let server = start(
        evio::ServerBuilder::new().max_connections(8),
        &[addr],
        move || Dialer { to, tx },
    );
    (server, rx)
}

/// Accepts one connection, reads `hello` and answers `world`.
fn answer_once(listener: TcpListener) -> std::thread::JoinHandle<SocketAddr> {
    std::thread::spawn(move || {
        let (mut s, peer) = listener.accept().unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        s.write_all(b"world").unwrap();
        peer
    })
}

fn expect_open_and_answer(rx: &mpsc::Receiver<Outcome>) -> ConnInfo {
    let Outcome::Opened(info) = rx.recv_timeout(LIMIT).unwrap() else {
        panic!("opened first")
    };
    assert!(info.outbound);
    assert_eq!(
        rx.recv_timeout(LIMIT).unwrap(),
        Outcome::Answer(b"world".to_vec())
    );
    info
}

#[test]
fn a_tcp_connect_opens_with_its_real_addresses_and_sends_what_was_written_before() {
    for addr in ADDRS {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let to = listener.local_addr().unwrap();
        let peer = answer_once(listener);
        let (server, rx) = dial(addr, Target::Ip(to));
        let info = expect_open_and_answer(&rx);
        assert_eq!(info.peer, Addr::Ip(to), "{addr}");
        // The local address is the one the backend saw (a real port, not 0).
        assert_eq!(info.local, Addr::Ip(peer.join().unwrap()), "{addr}");
        server.stop().unwrap();
        assert_eq!(rx.recv_timeout(LIMIT).unwrap(), Outcome::Closed(None));
    }
}

#[test]
fn an_ipv6_connect_opens() {
    if !ipv6_available() {
        eprintln!("no IPv6 loopback here: nothing to test");
        return;
    }
    for addr in ADDRS {
        let listener = TcpListener::bind("[::1]:0").unwrap();
        let to = listener.local_addr().unwrap();
        let _peer = answer_once(listener);
        let (server, rx) = dial(addr, Target::Ip(to));
        let info = expect_open_and_answer(&rx);
        assert!(matches!(info.local, Addr::Ip(SocketAddr::V6(_))), "{addr}");
        server.stop().unwrap();
    }
}

#[test]
fn a_unix_connect_opens() {
    let dir = TempDir::new("connect-unix");
    for (i, addr) in ADDRS.iter().enumerate() {
        let path = dir.sock(&format!("b{i}.sock"));
        let listener = UnixListener::bind(&path).unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(b"world").unwrap();
        });
        let (server, rx) = dial(addr, Target::Unix(path));
        let info = expect_open_and_answer(&rx);
        assert_eq!((info.local, info.peer), (Addr::Unix, Addr::Unix));
        t.join().unwrap();
        server.stop().unwrap();
    }
}

#[test]
fn a_refused_connect_ends_in_one_closed_with_a_typed_error_and_no_opened() {
    let dir = TempDir::new("connect-refused");
    for addr in ADDRS {
        // A port nothing listens on any more.
        let to = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let (server, rx) = dial(addr, Target::Ip(to));
        match rx.recv_timeout(LIMIT).unwrap() {
            Outcome::Closed(Some(CloseError::Connect(e))) => {
                assert_eq!(e.kind, IoErrorKind::ConnectionRefused, "{addr}: {e}")
            }
            other => panic!("{addr}: {other:?}"),
        }
        // A unix path with no socket.
        server.stop().unwrap();
        let (server, rx) = dial(addr, Target::Unix(dir.sock("none.sock")));
        match rx.recv_timeout(LIMIT).unwrap() {
            Outcome::Closed(Some(CloseError::Connect(e))) => {
                assert_eq!(e.kind, IoErrorKind::ConnectionRefused, "{addr}: {e}")
            }
            other => panic!("{addr}: {other:?}"),
        }
        server.stop().unwrap();
        assert!(
            rx.recv_timeout(Duration::from_millis(100)).is_err(),
            "nothing after the one closed"
        );
    }
}
