//! Echo integrity against real sockets: many concurrent clients sending megabytes in
//! random-sized writes get every byte back in order, over tcp4, tcp6, unix, and several
//! listeners on one loop.

mod os_common;

use std::io::{Read, Write};

use evio::{Action, Conn, Events};
use evio_handlers::echo::Echo;
use os_common::*;

fn builder() -> evio::ServerBuilder {
    evio::ServerBuilder::new().max_connections(64)
}

fn many_clients(addr: &Bound, clients: usize, bytes: usize) {
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || echo_stream(connect(&addr), i as u64 + 1, bytes, 64 * 1024))
        })
        .collect();
    for t in threads {
        t.join().expect("client failed");
    }
}

#[test]
fn echo_tcp4_many_clients_megabytes() {
    let server = start(builder(), &["tcp4://127.0.0.1:0"], || Echo);
    many_clients(server.addr(0), 16, 2 << 20);
    server.stop().expect("serve returns Ok");
}

#[test]
fn echo_tcp6() {
    if !ipv6_available() {
        eprintln!("skipped: ::1 is not available on this machine");
        return;
    }
    let server = start(builder(), &["tcp6://[::1]:0"], || Echo);
    assert!(matches!(server.addr(0), Bound::Tcp(a) if a.is_ipv6()));
    many_clients(server.addr(0), 4, 1 << 20);
    server.stop().unwrap();
}

#[test]
fn echo_unix() {
    let dir = TempDir::new("echo");
    let path = dir.sock("echo.sock");
    let server = start(builder(), &[&format!("unix://{path}")], || Echo);
    assert_eq!(server.addr(0), &Bound::Unix(path.clone().into()));
    many_clients(server.addr(0), 8, 1 << 20);
    server.stop().unwrap();
    assert!(
        !std::path::Path::new(&path).exists(),
        "the socket file is removed when the server stops"
    );
}

/// Greets each connection with its listener index and its own local address, then
/// echoes.
struct Greeter;

impl Events for Greeter {
    type Context = ();
    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let line = format!("{} {}\n", conn.info().listener.index(), conn.info().local);
        conn.write(line.as_bytes()).unwrap();
        Action::None
    }
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        Echo.data(conn, input)
    }
}

fn read_line(c: &mut Client) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        c.read_exact(&mut b).expect("greeting");
        if b[0] == b'\n' {
            return String::from_utf8(line).unwrap();
        }
        line.push(b[0]);
    }
}

#[test]
fn several_listeners_report_their_index_and_local_address() {
    let dir = TempDir::new("multi");
    let unix = format!("unix://{}", dir.sock("m.sock"));
    let mut addrs = vec!["tcp4://127.0.0.1:0", "127.0.0.1:0", unix.as_str()];
    let v6 = ipv6_available();
    if v6 {
        addrs.push("tcp6://[::1]:0");
    }
    let server = start(builder(), &addrs, || Greeter);
    assert_eq!(server.addrs.len(), addrs.len());
    let mut clients = Vec::new();
    for (i, addr) in server.addrs.iter().enumerate() {
        for _ in 0..2 {
            let mut c = connect(addr);
            let greeting = read_line(&mut c);
            let (index, local) = greeting.split_once(' ').unwrap();
            assert_eq!(index, i.to_string(), "listener index of {addr:?}");
            match (addr, &c) {
                (Bound::Tcp(_), Client::Tcp(s)) => {
                    assert_eq!(
                        local,
                        s.peer_addr().unwrap().to_string(),
                        "getsockname of the connection"
                    )
                }
                _ => assert_eq!(local, "unix"),
            }
            clients.push(c);
        }
    }
    // Every connection on every listener echoes, interleaved.
    for round in 0..50u32 {
        for c in &mut clients {
            let msg = format!("round {round}");
            assert_eq!(c.round_trip(msg.as_bytes()), msg.as_bytes());
        }
    }
    drop(clients);
    server.stop().unwrap();
}

#[test]
fn wildcard_listener_reports_the_address_actually_used() {
    let server = start(builder(), &["tcp://0.0.0.0:0"], || Greeter);
    let Bound::Tcp(a) = server.addr(0).clone() else {
        unreachable!()
    };
    let mut c = connect(&Bound::Tcp(([127, 0, 0, 1], a.port()).into()));
    let greeting = read_line(&mut c);
    assert_eq!(greeting, format!("0 127.0.0.1:{}", a.port()));
    c.write_all(b"x").unwrap();
    assert_eq!(c.read_n(1), b"x");
    drop(c);
    server.stop().unwrap();
}
