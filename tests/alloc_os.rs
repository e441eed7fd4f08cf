//! Zero allocation on real sockets: once warmed up, the event loop of an echo server
//! under load (reads, writes, wakes from another thread, ticks, connections accepted
//! and closed) makes no heap allocation, under every backend.
//!
//! The workspace's counting global allocator (evio-test-support) keeps a per-thread
//! count. The handler runs on the loop's thread, so it reads that thread's count and
//! publishes it: the difference between two published values is everything the loop
//! thread allocated in between (driver, engine and handler alike).

mod os_common;

use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use evio::{Action, Conn, ConnId, Events};
use evio_handlers::echo::Echo;
use evio_test_support::{CountingAllocator, allocations};
use os_common::*;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const CLIENTS: usize = 8;

/// Echo, publishing the loop thread's allocation count after every call; `alloc!`
/// allocates on purpose (the control).
struct Probe {
    seen: Arc<AtomicU64>,
    ids: Arc<[AtomicU64; CLIENTS]>,
    next: Arc<AtomicUsize>,
}

impl Probe {
    fn publish(&self) {
        self.seen.store(allocations(), Ordering::SeqCst);
    }
}

impl Events for Probe {
    type Context = ();
    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        if let Some(slot) = self.ids.get(i) {
            slot.store(conn.id().to_u64(), Ordering::SeqCst);
        }
        self.publish();
        Action::None
    }
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        if input == b"alloc!" {
            black_box(Vec::<u8>::with_capacity(black_box(64)));
        }
        let action = Echo.data(conn, input);
        self.publish();
        action
    }
    fn woken(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
        self.publish();
        Action::None
    }
}

/// `rounds` round trips of random sizes on each of the persistent clients, in parallel.
fn load(clients: Vec<Client>, rounds: usize, seed: u64) -> Vec<Client> {
    let threads: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            std::thread::spawn(move || {
                let mut rng = Rng::new(seed + i as u64);
                let mut buf = vec![0u8; 8192];
                for _ in 0..rounds {
                    let n = 1 + rng.below(buf.len() as u64) as usize;
                    rng.fill(&mut buf[..n]);
                    assert_eq!(c.round_trip(&buf[..n]), &buf[..n]);
                }
                c
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn churn(addr: &Bound, n: usize) {
    for i in 0..n {
        let mut c = connect(addr);
        assert_eq!(
            c.round_trip(&(i as u32).to_le_bytes()),
            (i as u32).to_le_bytes()
        );
    }
}

#[test]
fn steady_state_echo_under_load_allocates_nothing_default() {
    steady_state_echo_under_load_allocates_nothing(evio::ServerBuilder::new());
}

#[test]
fn steady_state_echo_under_load_allocates_nothing_batched() {
    // A turn's sends in one io_uring submit (on epoll), or one send(2) each.
    steady_state_echo_under_load_allocates_nothing(evio::ServerBuilder::new().batch_sends(true));
}

#[test]
fn steady_state_echo_under_load_allocates_nothing_poll() {
    steady_state_echo_under_load_allocates_nothing(
        evio::ServerBuilder::new().backend(evio::Backend::Poll),
    );
}

fn steady_state_echo_under_load_allocates_nothing(builder: evio::ServerBuilder) {
    let seen = Arc::new(AtomicU64::new(0));
    let ids: Arc<[AtomicU64; CLIENTS]> = Arc::new(std::array::from_fn(|_| AtomicU64::new(0)));
    let next = Arc::new(AtomicUsize::new(0));
    let (s, i, n) = (seen.clone(), ids.clone(), next.clone());
    let server = start(
        builder.max_connections(64),
        &["tcp4://127.0.0.1:0"],
        move || Probe {
            seen: s,
            ids: i,
            next: n,
        },
    );
    let addr = server.addr(0).clone();

    // A persistent connection to measure with, opened first.
    let mut meter = connect(&addr);
    let mark = |meter: &mut Client| {
        assert_eq!(meter.round_trip(b"mark"), b"mark");
        seen.load(Ordering::SeqCst)
    };

    // Persistent clients, opened before the measurement.
    let clients: Vec<Client> = (1..CLIENTS).map(|_| connect(&addr)).collect();
    // Warm-up: every path once (buffers, first connections, first wake).
    let clients = load(clients, 200, 1);
    churn(&addr, 20);
    let meter_id = ConnId::from_u64(ids[0].load(Ordering::SeqCst));
    assert!(server.waker.wake(meter_id));
    let before = mark(&mut meter);

    // Steady state: load, wakes from another thread, ticks (every 5 ms), churn.
    let waker = server.waker.clone();
    let wakes = std::thread::spawn(move || {
        for _ in 0..2000 {
            waker.wake(meter_id);
            std::thread::yield_now();
        }
    });
    let clients = load(clients, 1000, 100);
    churn(&addr, 200);
    wakes.join().unwrap();
    let after = mark(&mut meter);
    assert_eq!(
        after - before,
        0,
        "the loop thread allocated {} times in the steady state",
        after - before
    );

    // Control on the loop's own thread: an allocation in the handler is seen.
    meter.write_all(b"alloc!").unwrap();
    assert_eq!(meter.read_n(6), b"alloc!");
    assert!(
        mark(&mut meter) > after,
        "the loop thread's counter sees an allocation"
    );
    drop(meter);
    drop(clients);
    server.stop().unwrap();
}
