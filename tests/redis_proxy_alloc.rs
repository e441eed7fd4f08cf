//! Zero allocation per request in the redis proxy's steady state, on real sockets with
//! two real `redis-server` backends: once warmed up, the loop thread makes no heap
//! allocation while the proxy forwards thousands of GET and SET, splits MGET and DEL
//! over both backends and merges their replies, answers PING, one request at a time
//! and pipelined (batches of 32, and of 300: more than the in-flight bound, so input
//! is held and resumed), from several clients at once, under the default backend and poll(2).
//!
//! The workspace's counting global allocator (evio-test-support) keeps a per-thread
//! count; the proxy runs on the loop's thread, reads that thread's count after its
//! callbacks and publishes it, so the difference between two published values is
//! everything the loop thread allocated in between (driver, engine and handler alike).
//! Its own test binary, so no other test's threads run in it. Skipped when
//! `redis-server` is missing (set EVIO_REQUIRE_CLIENTS=1 to make that a failure).

mod os_common;

use std::hint::black_box;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use evio::{Action, CloseError, Conn, ConnInfo, Events, Flow, Loop, Tick};
use evio_handlers::redis_proxy::{ProxyConfig, RedisProxy, Role};
use evio_test_support::{CountingAllocator, allocations};
use os_common::{Bound, KillOnDrop, RespClient, free_port, have_client, resp_command, start};

/// Clients at once.
const CLIENTS: usize = 6;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// The proxy, publishing the loop thread's allocation count after its callbacks; a
/// `PING alloc!` allocates on purpose (the control).
struct Probe {
    proxy: RedisProxy,
    seen: Arc<AtomicU64>,
}

impl Probe {
    fn publish(&self) {
        self.seen.store(allocations(), Ordering::SeqCst);
    }
}

impl Events for Probe {
    type Context = Role;
    evio::delegate_events!(self.proxy, except data, drained, input_ended, timeout, closed, tick);
    fn data(&mut self, conn: &mut Conn<'_, Role>, input: &[u8]) -> Action {
        if memchr_alloc(input) {
            black_box(Vec::<u8>::with_capacity(black_box(64)));
        }
        let action = self.proxy.data(conn, input);
        self.publish();
        action
    }
    fn drained(&mut self, conn: &mut Conn<'_, Role>) -> Action {
        let action = self.proxy.drained(conn);
        self.publish();
        action
    }
    fn input_ended(&mut self, conn: &mut Conn<'_, Role>) -> Action {
        let action = self.proxy.input_ended(conn);
        self.publish();
        action
    }
    fn timeout(&mut self, conn: &mut Conn<'_, Role>) -> Action {
        let action = self.proxy.timeout(conn);
        self.publish();
        action
    }
    fn closed(
        &mut self,
        info: &ConnInfo,
        role: Role,
        error: Option<CloseError>,
        others: &mut Loop<'_, Role>,
    ) -> Flow {
        let flow = self.proxy.closed(info, role, error, others);
        self.publish();
        flow
    }
    fn tick(&mut self, others: &mut Loop<'_, Role>) -> Tick {
        let tick = self.proxy.tick(others);
        self.publish();
        tick
    }
}

/// Whether `input` holds the control request `PING alloc!`.
fn memchr_alloc(input: &[u8]) -> bool {
    input.windows(6).any(|w| w == b"alloc!")
}

fn start_redis(port: u16) -> KillOnDrop {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server does not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    KillOnDrop(child)
}

fn cmd(out: &mut Vec<u8>, args: &[&[u8]]) {
    resp_command(out, args);
}

type Client = RespClient;

/// A mixed batch of `n` requests for client `c`: SET, GET, MGET of 4 keys and DEL of 3
/// (over both backends), PING. Each reply's first byte, in order.
fn batch(c: usize, n: usize) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut want) = (Vec::new(), Vec::new());
    for i in 0..n {
        let k = |j: usize| format!("a{c}:{}", (i + j) % 17);
        match i % 5 {
            0 => {
                cmd(&mut out, &[b"SET", k(0).as_bytes(), b"some value"]);
                want.push(b'+');
            }
            1 => {
                cmd(&mut out, &[b"GET", k(0).as_bytes()]);
                want.push(b'$');
            }
            2 => {
                let keys = [k(0), k(3), k(5), k(11)];
                let mut args: Vec<&[u8]> = vec![b"MGET"];
                args.extend(keys.iter().map(|k| k.as_bytes()));
                cmd(&mut out, &args);
                want.push(b'*');
            }
            3 => {
                let keys = [k(1), k(7), k(13)];
                let mut args: Vec<&[u8]> = vec![b"DEL"];
                args.extend(keys.iter().map(|k| k.as_bytes()));
                cmd(&mut out, &args);
                want.push(b':');
            }
            _ => {
                cmd(&mut out, &[b"PING"]);
                want.push(b'+');
            }
        }
    }
    (out, want)
}

/// `rounds` of, on every client in parallel: 10 requests one at a time, a pipeline of
/// 32, and every fourth round a pipeline of 300 (beyond the in-flight bound of 128).
fn load(clients: Vec<Client>, rounds: usize) -> Vec<Client> {
    let threads: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(c, mut client)| {
            std::thread::spawn(move || {
                let (one, one_want) = batch(c, 10);
                let (p32, p32_want) = batch(c, 32);
                let (p300, p300_want) = batch(c, 300);
                let mut at = 0;
                let mut single = Vec::new();
                for r in 0..rounds {
                    // One at a time: each request's bytes, then its reply.
                    for (i, &first) in one_want.iter().enumerate() {
                        let end = next_request(&one, at);
                        single.clear();
                        single.extend_from_slice(&one[at..end]);
                        at = if end == one.len() { 0 } else { end };
                        client.send(&single);
                        let got = client.reply();
                        assert_eq!(got[0], first, "request {i}: {got:?}");
                    }
                    let (bytes, want) = if r % 4 == 3 {
                        (&p300, &p300_want)
                    } else {
                        (&p32, &p32_want)
                    };
                    client.send(bytes);
                    for (i, &first) in want.iter().enumerate() {
                        let got = client.reply();
                        assert_eq!(got[0], first, "pipelined {i}: {got:?}");
                    }
                }
                client
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Where the request that starts at `at` of the multibulk stream `bytes` ends.
fn next_request(bytes: &[u8], at: usize) -> usize {
    let line_end = |p: usize| p + bytes[p..].iter().position(|&b| b == b'\n').unwrap() + 1;
    let number = |p: usize, e: usize| -> usize {
        std::str::from_utf8(&bytes[p + 1..e - 2])
            .unwrap()
            .parse()
            .unwrap()
    };
    let mut p = line_end(at);
    for _ in 0..number(at, p) {
        let e = line_end(p);
        p = e + number(p, e) + 2;
    }
    p
}

#[test]
fn forwarding_requests_allocates_nothing_default() {
    forwarding_requests_allocates_nothing("tcp4://127.0.0.1:0");
}

#[test]
fn forwarding_requests_allocates_nothing_poll() {
    forwarding_requests_allocates_nothing("tcp4-net://127.0.0.1:0");
}

fn forwarding_requests_allocates_nothing(listen: &str) {
    if !have_client("redis-server", "redis-server") {
        return;
    }
    let ports = [free_port(), free_port()];
    let _redis = [start_redis(ports[0]), start_redis(ports[1])];
    let backends: Vec<SocketAddr> = ports
        .iter()
        .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
        .collect();
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    let server = start(
        // Wake coalescing and batched sends on, as the example runs.
        evio::ServerBuilder::new()
            .max_connections(64)
            .coalesce(Some(Duration::from_micros(100)))
            .batch_sends(true),
        &[listen],
        move || {
            let mut config = ProxyConfig::new(backends);
            // As many reply buffers as CLIENTS' jobs can use at once (a reply, and an
            // MGET's two parts): how many wait at a time depends on how the backends'
            // replies interleave, which the warm-up cannot be sure to have seen.
            config.reply_buffers = CLIENTS * config.max_inflight * 3;
            Probe {
                proxy: RedisProxy::new(config),
                seen: s,
            }
        },
    );
    let Bound::Tcp(addr) = server.addr(0).clone() else {
        panic!("a TCP address")
    };
    let mut meter = Client::connect(addr);
    // Both backends connected: a key on each answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut probe = Vec::new();
        cmd(&mut probe, &[b"MGET", b"x", b"y", b"z", b"w", b"v", b"u"]);
        meter.send(&probe);
        if meter.reply()[0] == b'*' {
            break;
        }
        assert!(Instant::now() < deadline, "the backends do not connect");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut ping = Vec::new();
    cmd(&mut ping, &[b"PING"]);
    let mark = |meter: &mut Client| {
        meter.send(&ping);
        assert_eq!(meter.reply(), b"+PONG\r\n");
        seen.load(Ordering::SeqCst)
    };
    let clients: Vec<Client> = (0..CLIENTS).map(|_| Client::connect(addr)).collect();
    // Warm-up: every path, and every job of every client, used.
    let clients = load(clients, 40);
    let before = mark(&mut meter);

    let rounds = 200;
    let clients = load(clients, rounds);
    let after = mark(&mut meter);
    let requests = CLIENTS * rounds * (10 + (3 * 32 + 300) / 4);
    assert_eq!(
        after - before,
        0,
        "the loop thread allocated {} times forwarding {requests} requests",
        after - before,
    );

    // Control on the loop's own thread: an allocation in the handler is seen.
    let mut control = Vec::new();
    cmd(&mut control, &[b"PING", b"alloc!"]);
    meter.send(&control);
    meter.reply();
    assert!(
        seen.load(Ordering::SeqCst) > after,
        "the loop thread's counter sees an allocation"
    );
    drop((meter, clients));
    server.stop().unwrap();
}
