//! A warmed-up engine performs no allocation over thousands of cycles of accept, read,
//! data, write, wake, server wake, tick, timeout, writes to other connections, drained
//! output, lingering close and close.
//!
//! The workspace's counting global allocator (`evio-test-support`, with its control
//! test) counts per thread, so other test threads cannot pollute the count. The driver
//! here is itself allocation-free: fixed arrays, no logging.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use evio_proto::{
    Action, Addr, Config, Conn, ConnId, Events, Flow, HeapEngine, Instant, ListenAddr, ListenerId,
    Loop, Notify, Output, Readiness, Slot, Tick, Waker,
};
use evio_test_support::{CountingAllocator, allocations};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Echoes data and copies it to the next connection, answers a wake with "w", ticks
/// every millisecond writing "t" to everyone, times connections out after 2 ms (each
/// timeout writes "!"), counts server wakes, and closes on "q" (lingering when input
/// follows it).
#[derive(Default)]
struct Busy {
    ids: [Option<ConnId>; 8],
    ticks: u64,
    timeouts: u64,
    server_wakes: u64,
    drains: u64,
}

impl Events for Busy {
    type Context = u64;

    fn opened(&mut self, conn: &mut Conn<'_, u64>) -> Action {
        self.ids[conn.id().slot()] = Some(conn.id());
        conn.set_timeout(Some(Duration::from_millis(2)));
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, u64>, input: &[u8]) -> Action {
        *conn.context() += input.len() as u64;
        conn.set_timeout(Some(Duration::from_millis(2)));
        if let Some(q) = input.iter().position(|&b| b == b'q') {
            conn.consume(q + 1);
            return Action::Close;
        }
        let n = conn.write_some(input);
        conn.consume(n);
        let next = self.ids[(conn.id().slot() + 1) % CONNS];
        if let Some(next) = next {
            let _ = conn.others().write_some(next, b"c");
        }
        Action::None
    }

    fn woken(&mut self, conn: &mut Conn<'_, u64>) -> Action {
        let _ = conn.write(b"w");
        Action::None
    }

    fn timeout(&mut self, conn: &mut Conn<'_, u64>) -> Action {
        self.timeouts += 1;
        let _ = conn.write(b"!");
        Action::None
    }

    fn drained(&mut self, _: &mut Conn<'_, u64>) -> Action {
        self.drains += 1;
        Action::None
    }

    fn server_woken(&mut self, _: &mut Loop<'_, u64>) -> Flow {
        self.server_wakes += 1;
        Flow::Continue
    }

    fn tick(&mut self, others: &mut Loop<'_, u64>) -> Tick {
        self.ticks += 1;
        for id in self.ids.iter().flatten() {
            let _ = others.write(*id, b"t");
        }
        Tick::after(Duration::from_millis(1))
    }
}

struct NoopNotify(AtomicUsize);
impl Notify for NoopNotify {
    fn notify(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

const CONNS: usize = 8;

/// Per-connection state of the allocation-free driver.
#[derive(Clone, Copy)]
struct Client {
    inbound: [u8; 64],
    inbound_len: usize,
    eof: bool,
    received: usize,
    open: bool,
    /// The server shut its sending side (a lingering close).
    write_shut: bool,
    /// Bytes the socket takes before a write would block.
    window: usize,
}

const NEW_CLIENT: Client = Client {
    inbound: [0; 64],
    inbound_len: 0,
    eof: false,
    received: 0,
    open: false,
    write_shut: false,
    window: usize::MAX,
};

type E = HeapEngine<Busy>;

fn drain(engine: &mut E, clients: &mut [Client; CONNS], backlog: &mut usize) {
    while let Some(out) = engine.poll_output() {
        match out {
            Output::Accept(accept) => {
                if *backlog == 0 {
                    accept.would_block();
                    continue;
                }
                *backlog -= 1;
                let peer = Addr::Ip(SocketAddr::from(([127, 0, 0, 1], 9)));
                let id = accept.done(peer, peer).expect("pool has room");
                clients[id.slot()] = Client {
                    open: true,
                    ..NEW_CLIENT
                };
            }
            Output::Read(mut read) => {
                let c = &mut clients[read.id().slot()];
                if c.inbound_len == 0 {
                    if c.eof {
                        read.done(0);
                    } else {
                        read.would_block();
                    }
                    continue;
                }
                let buf = read.buf();
                let n = c.inbound_len.min(buf.len());
                buf[..n].copy_from_slice(&c.inbound[..n]);
                c.inbound.copy_within(n..c.inbound_len, 0);
                c.inbound_len -= n;
                read.done(n);
            }
            Output::Transmit(transmit) => {
                let c = &mut clients[transmit.id().slot()];
                let n = transmit.len().min(c.window);
                c.window -= n;
                c.received += n;
                transmit.done(n);
            }
            Output::Close { id } => clients[id.slot()].open = false,
            Output::ShutdownWrite { id } => clients[id.slot()].write_shut = true,
            Output::Configure { .. } | Output::SetInterest { .. } => {}
            other => panic!("unexpected output {other:?}"),
        }
    }
}

fn send(engine: &mut E, clients: &mut [Client; CONNS], id: ConnId, bytes: &[u8]) {
    let c = &mut clients[id.slot()];
    c.inbound[c.inbound_len..c.inbound_len + bytes.len()].copy_from_slice(bytes);
    c.inbound_len += bytes.len();
    engine.handle_conn_ready(id, Readiness::READABLE).unwrap();
}

fn writable(engine: &mut E, clients: &mut [Client; CONNS], id: ConnId) {
    clients[id.slot()].window = usize::MAX;
    engine.handle_conn_ready(id, Readiness::WRITABLE).unwrap();
}

/// One cycle: accept `CONNS` connections; echo on each (a copy to the next one); the
/// first one's writes back up and drain; wake each and the server; tick; time out;
/// close each, half of them lingering.
fn cycle(engine: &mut E, clients: &mut [Client; CONNS], waker: &Waker, now: &mut Instant) {
    let mut backlog = CONNS;
    engine
        .handle_listener_ready(ListenerId::new(0).unwrap())
        .unwrap();
    drain(engine, clients, &mut backlog);
    assert_eq!(engine.open_connections(), CONNS);
    let ids = engine.handler().ids;
    let first = ids[0].unwrap();
    clients[first.slot()].window = 5;
    for id in ids.iter().flatten().copied() {
        send(engine, clients, id, b"hello, world");
        drain(engine, clients, &mut backlog);
        assert!(waker.wake(id));
    }
    writable(engine, clients, first);
    drain(engine, clients, &mut backlog);
    assert!(waker.wake_server());
    engine.handle_wakes();
    drain(engine, clients, &mut backlog);
    *now = *now + Duration::from_millis(1);
    engine.handle_time(*now);
    drain(engine, clients, &mut backlog);
    *now = *now + Duration::from_millis(2);
    engine.handle_time(*now);
    drain(engine, clients, &mut backlog);
    for (k, id) in ids.iter().flatten().copied().enumerate() {
        // Half close with input after the "q": the close lingers until the end of the
        // stream.
        send(engine, clients, id, if k % 2 == 0 { b"q" } else { b"qx" });
        if k % 2 == 1 {
            drain(engine, clients, &mut backlog);
            assert!(clients[id.slot()].write_shut, "lingering");
        }
        clients[id.slot()].eof = true;
        engine.handle_conn_ready(id, Readiness::READABLE).unwrap();
        drain(engine, clients, &mut backlog);
    }
    assert_eq!(engine.open_connections(), 0);
    for c in clients.iter() {
        assert!(!c.open);
        // 12 echoed, one copy from the previous connection, a wake reply, two ticks,
        // one timeout.
        assert_eq!(c.received, 12 + 1 + 1 + 2 + 1, "every byte written arrived");
    }
}

#[test]
fn a_warm_engine_never_allocates() {
    let config = Config {
        max_connections: CONNS,
        input_capacity: 256,
        output_capacity: 256,
        ..Config::new()
    };
    let mut engine = E::allocate(Busy::default(), config, NoopNotify(AtomicUsize::new(0))).unwrap();
    let waker = engine.waker().expect("a waker").clone();
    let mut now = Instant::ZERO;
    let bound = [ListenAddr::Ip(SocketAddr::from(([127, 0, 0, 1], 7)))];
    engine.handle_time(now);
    engine.handle_start(&bound).unwrap();
    let mut clients = [NEW_CLIENT; CONNS];

    // Warm-up.
    cycle(&mut engine, &mut clients, &waker, &mut now);
    let before = allocations();
    let cycles = 1000;
    for _ in 0..cycles {
        cycle(&mut engine, &mut clients, &waker, &mut now);
    }
    let allocated = allocations() - before;
    let stats = *engine.stats();
    assert_eq!(
        allocated, 0,
        "the engine allocated {allocated} times in steady state"
    );
    let busy = engine.handler();
    assert_eq!(busy.timeouts, (cycles + 1) * CONNS as u64);
    assert_eq!(busy.server_wakes, cycles + 1);
    assert_eq!(busy.drains, cycles + 1);
    assert_eq!(stats.accepted, (cycles + 1) * CONNS as u64);
    assert_eq!(stats.closed, (cycles + 1) * CONNS as u64);
    assert_eq!(stats.wakes, (cycles + 1) * CONNS as u64);
    assert!(stats.ticks > cycles);
}

/// The fixed memory of one connection: its slot's metadata (here with a `u64` context)
/// plus its two buffers. Printed for the record (`--nocapture`); asserted only against
/// a generous bound so that a layout change that doubles it is noticed.
#[test]
fn slot_memory_is_small_and_known() {
    let meta = std::mem::size_of::<Slot<u64>>();
    let config = Config::new();
    let buffers = config.input_capacity + config.output_capacity;
    println!(
        "slot metadata {meta} B; buffers {buffers} B reserved per slot (touched only for carry-over)"
    );
    assert!(meta <= 224, "slot metadata grew to {meta} bytes");
}
