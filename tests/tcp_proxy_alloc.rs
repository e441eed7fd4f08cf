//! Zero allocation per byte relayed: once warmed up, the loop thread of the tcp proxy
//! makes no heap allocation while it relays megabytes both ways between clients and
//! their backend connections, nor while clients come and go (each with a new connect to
//! the backend), under every backend.
//!
//! As in tests/http_alloc.rs: the workspace's counting allocator keeps a per-thread
//! count; the handler, on the loop's thread, publishes that thread's count after every
//! call, so the difference between two published values is everything the loop thread
//! allocated in between (driver, engine and handler alike). Its own test binary, so no
//! other test's threads run in it.

mod os_common;

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use evio::{Action, CloseError, Conn, ConnInfo, Events, Flow, Loop};
use evio_handlers::tcp_proxy::{Backend, Side, TcpProxy, TcpProxyConfig};
use evio_test_support::{CountingAllocator, allocations};
use os_common::*;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// The proxy, publishing the loop thread's allocation count after every call; input
/// that starts with `ALLOC!` allocates on purpose (the control).
struct Probe {
    proxy: TcpProxy,
    seen: Arc<AtomicU64>,
}

impl Events for Probe {
    type Context = Side;
    evio::delegate_events!(self.proxy, except data, opened, closed, drained);
    fn data(&mut self, conn: &mut Conn<'_, Side>, input: &[u8]) -> Action {
        if input.starts_with(b"ALLOC!") {
            black_box(Vec::<u8>::with_capacity(black_box(64)));
        }
        let action = self.proxy.data(conn, input);
        self.seen.store(allocations(), Ordering::SeqCst);
        action
    }
    fn opened(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        let action = self.proxy.opened(conn);
        self.seen.store(allocations(), Ordering::SeqCst);
        action
    }
    fn drained(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        let action = self.proxy.drained(conn);
        self.seen.store(allocations(), Ordering::SeqCst);
        action
    }
    fn closed(
        &mut self,
        info: &ConnInfo,
        side: Side,
        error: Option<CloseError>,
        others: &mut Loop<'_, Side>,
    ) -> Flow {
        let flow = self.proxy.closed(info, side, error, others);
        self.seen.store(allocations(), Ordering::SeqCst);
        flow
    }
}

/// An echo backend on threads (their allocations are not the loop's).
fn echo_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let at = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    at
}

/// Each client sends `rounds` messages of varied sizes (up to 200 KB, beyond the
/// proxy's buffers, so backpressure and waits are exercised) and reads each back.
fn relay(clients: &mut [TcpStream], rounds: usize) {
    std::thread::scope(|scope| {
        for (i, c) in clients.iter_mut().enumerate() {
            scope.spawn(move || {
                let mut rng = Rng::new(i as u64 + 1);
                for _ in 0..rounds {
                    let n = 1 + rng.below(200_000) as usize;
                    let mut msg = vec![0u8; n];
                    rng.fill(&mut msg);
                    msg[0] = b'.'; // never the control's marker
                    let mut w = c.try_clone().unwrap();
                    let sent = msg.clone();
                    let t = std::thread::spawn(move || w.write_all(&sent).unwrap());
                    let mut got = vec![0u8; n];
                    c.read_exact(&mut got).unwrap();
                    t.join().unwrap();
                    assert!(got == msg, "client {i}: the bytes differ");
                }
            });
        }
    });
}

/// `n` clients that connect, relay one message and leave.
fn churn(at: SocketAddr, n: usize) {
    for _ in 0..n {
        let mut c = TcpStream::connect(at).unwrap();
        c.set_read_timeout(Some(LIMIT)).unwrap();
        c.write_all(b"hello").unwrap();
        let mut got = [0u8; 5];
        c.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
    }
}

#[test]
fn relaying_allocates_nothing_default() {
    relaying_allocates_nothing("tcp4://127.0.0.1:0");
}

#[test]
fn relaying_allocates_nothing_poll() {
    relaying_allocates_nothing("tcp4-net://127.0.0.1:0");
}

fn relaying_allocates_nothing(addr: &str) {
    let backend = echo_backend();
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    let server = start(
        // A turn's sends batched, as the example runs (through io_uring on epoll).
        evio::ServerBuilder::new()
            .max_connections(64)
            .batch_sends(true),
        &[addr],
        move || Probe {
            proxy: TcpProxy::new(TcpProxyConfig {
                backend: Backend::Tcp(backend),
                connect_timeout: std::time::Duration::from_secs(5),
                idle_timeout: None,
            }),
            seen: s,
        },
    );
    let Bound::Tcp(at) = server.addr(0).clone() else {
        panic!("a TCP listener")
    };
    let connect = || {
        let c = TcpStream::connect(at).unwrap();
        c.set_read_timeout(Some(LIMIT)).unwrap();
        c
    };
    // A meter: one round trip, after which the published count is current.
    let mut meter = connect();
    let mark = |meter: &mut TcpStream| {
        meter.write_all(b"mark").unwrap();
        let mut got = [0u8; 4];
        meter.read_exact(&mut got).unwrap();
        seen.load(Ordering::SeqCst)
    };
    let mut clients: Vec<TcpStream> = (0..4).map(|_| connect()).collect();
    // Warm-up: every path once.
    relay(&mut clients, 5);
    churn(at, 10);
    let before = mark(&mut meter);

    relay(&mut clients, 40);
    churn(at, 100);
    let after = mark(&mut meter);
    assert_eq!(
        after - before,
        0,
        "the loop thread allocated {} times relaying about 16 MB each way and 100 new clients",
        after - before
    );

    // The control: the count does see an allocation on the loop thread.
    meter.write_all(b"ALLOC!").unwrap();
    let mut got = [0u8; 6];
    meter.read_exact(&mut got).unwrap();
    let control = mark(&mut meter);
    assert!(
        control > after,
        "the counter missed the control's allocation"
    );
    drop((clients, meter));
    server.stop().unwrap();
}
