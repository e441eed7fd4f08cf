//! The redis handler serves `GET`, `PING` (inline and multibulk), `ECHO` and a `SET`
//! that overwrites a value no smaller than the new one without a single allocation,
//! engine included: pipelines cut across reads at arbitrary bytes, through the
//! production engine and an allocation-free in-memory driver.
//!
//! The workspace's counting global allocator (`evio-test-support`, with its control
//! test) counts per thread, so other test threads cannot pollute the count.

use std::net::SocketAddr;

use evio_handlers::redis::{Redis, RedisConfig};
use evio_proto::{
    Addr, Config, ConnId, HeapEngine, Instant, ListenAddr, ListenerId, Output, Readiness,
};
use evio_test_support::{CountingAllocator, allocations};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// The requests of one round, each `REPEAT` times in a row, as redis-benchmark sends
/// them (its key and its 3-byte value), and their replies.
const REQUESTS: [(&[u8], &[u8]); 7] = [
    (
        b"*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nxxx\r\n",
        b"+OK\r\n",
    ),
    (
        b"*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n",
        b"$3\r\nxxx\r\n",
    ),
    (b"PING\r\n", b"+PONG\r\n"),
    (b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n"),
    (b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n", b"$5\r\nhello\r\n"),
    // Overwrites with a smaller value, then an equal one again: the value's own
    // buffer is reused both times.
    (
        b"*3\r\n$3\r\nset\r\n$16\r\nkey:__rand_int__\r\n$2\r\nyy\r\n",
        b"+OK\r\n",
    ),
    (b"GET key:__rand_int__\r\n", b"$2\r\nyy\r\n"),
];
const REPEAT: usize = 40;

/// One client of the in-memory driver: what it has to send, and what it has received.
struct Client {
    id: ConnId,
    sent: usize,
    received: usize,
}

/// Reads of at most this many bytes, so requests are cut at arbitrary bytes.
const READ: usize = 1000;

type E = HeapEngine<Redis>;

/// Runs the engine's outputs until it has none: reads give the client's next bytes,
/// writes are checked against the replies expected (without allocating).
fn drain(engine: &mut E, clients: &mut [Client], requests: &[u8], replies: &[u8]) {
    while let Some(out) = engine.poll_output() {
        match out {
            Output::Read(mut read) => {
                let c = clients.iter_mut().find(|c| c.id == read.id()).unwrap();
                let left = &requests[c.sent..];
                if left.is_empty() {
                    read.would_block();
                    continue;
                }
                let buf = read.buf();
                let n = left.len().min(buf.len()).min(READ);
                buf[..n].copy_from_slice(&left[..n]);
                c.sent += n;
                read.done(n);
            }
            Output::Transmit(mut transmit) => {
                let c = clients.iter_mut().find(|c| c.id == transmit.id()).unwrap();
                let n = transmit.len();
                assert!(
                    transmit.bytes() == &replies[c.received..c.received + n],
                    "a reply differs at byte {}",
                    c.received
                );
                c.received += n;
                transmit.done(n);
            }
            Output::Configure { .. } | Output::SetInterest { .. } => {}
            other => panic!("unexpected output {other:?}"),
        }
    }
}

/// One round on every client: its whole pipeline in, every reply out.
fn round(engine: &mut E, clients: &mut [Client], requests: &[u8], replies: &[u8]) {
    for c in clients.iter_mut() {
        c.sent = 0;
        c.received = 0;
    }
    while clients.iter().any(|c| c.received < replies.len()) {
        for i in 0..clients.len() {
            let id = clients[i].id;
            engine.handle_conn_ready(id, Readiness::READ_WRITE).unwrap();
            drain(engine, clients, requests, replies);
        }
    }
    assert!(clients.iter().all(|c| c.sent == requests.len()));
}

#[test]
fn get_ping_echo_and_set_overwrites_never_allocate() {
    let config = Config {
        max_connections: 4,
        input_capacity: 16 * 1024,
        output_capacity: 16 * 1024,
        ..Config::new()
    };
    let mut engine = E::allocate_without_waker(Redis::new(RedisConfig::default()), config).unwrap();
    let bound = [ListenAddr::Ip(SocketAddr::from(([127, 0, 0, 1], 6379)))];
    engine.handle_time(Instant::ZERO);
    engine.handle_start(&bound).unwrap();
    engine
        .handle_listener_ready(ListenerId::new(0).unwrap())
        .unwrap();
    let mut clients = Vec::new();
    while let Some(out) = engine.poll_output() {
        match out {
            Output::Accept(accept) if clients.len() < 2 => {
                let peer = Addr::Ip(SocketAddr::from(([127, 0, 0, 1], 40000)));
                let id = accept.done(peer, peer).expect("a free slot");
                clients.push(Client {
                    id,
                    sent: 0,
                    received: 0,
                });
            }
            Output::Accept(accept) => accept.would_block(),
            _ => {}
        }
    }
    assert_eq!(clients.len(), 2);
    let mut requests = Vec::new();
    let mut replies = Vec::new();
    for (request, reply) in REQUESTS {
        for _ in 0..REPEAT {
            requests.extend_from_slice(request);
            replies.extend_from_slice(reply);
        }
    }

    // Warm-up: the key is created, the handler's reusable buffers grow to size.
    round(&mut engine, &mut clients, &requests, &replies);
    let before = allocations();
    let rounds = 200;
    for _ in 0..rounds {
        round(&mut engine, &mut clients, &requests, &replies);
    }
    let allocated = allocations() - before;
    let served = engine.handler().stats().requests;
    assert_eq!(
        allocated,
        0,
        "{allocated} allocations in {rounds} rounds of {} requests",
        REQUESTS.len() * REPEAT * clients.len()
    );
    assert_eq!(
        served,
        (rounds + 1) * (REQUESTS.len() * REPEAT * clients.len()) as u64
    );
    assert_eq!(
        engine.handler().get(b"key:__rand_int__"),
        Some(b"yy".to_vec())
    );
}
