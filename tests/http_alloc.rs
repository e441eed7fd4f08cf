//! Zero allocation per request on real sockets: once warmed up, the loop thread of the
//! http handler makes no heap allocation while it answers thousands of keep-alive and
//! pipelined requests, bodies, HTTP/1.0 and `Connection: close` requests on new
//! connections, malformed and oversized requests, with the `Date` re-formatted on
//! every call, under every backend.
//!
//! The workspace's counting global allocator (evio-test-support) keeps a per-thread
//! count; the handler runs on the loop's thread, reads that thread's count and
//! publishes it, so the difference between two published values is everything the loop
//! thread allocated in between (driver, engine and handler alike). Its own test binary,
//! so no other test's threads run in it.

mod os_common;

use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use evio::{Action, CloseError, Conn, ConnInfo, Events, Flow, Instant, Loop};
use evio_handlers::http::{Http, HttpConfig, HttpConn};
use evio_test_support::{CountingAllocator, allocations};
use os_common::*;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// A wall clock whose second changes every microsecond of loop time, just before the
/// loop looks: every call re-formats the date (the path that runs once a second in
/// production runs all the time here).
fn racing_clock(now: Instant) -> Duration {
    Duration::new(1_700_000_000 + now.as_nanos() / 1000, 999_999_000)
}

/// The http handler, publishing the loop thread's allocation count after every call;
/// a request for `/alloc!` allocates on purpose (the control).
struct Probe {
    http: Http,
    seen: Arc<AtomicU64>,
}

impl Events for Probe {
    type Context = HttpConn;
    evio::delegate_events!(self.http, except data, timeout, opened, drained, closed);
    fn data(&mut self, conn: &mut Conn<'_, HttpConn>, input: &[u8]) -> Action {
        if input.starts_with(b"GET /alloc! ") {
            black_box(Vec::<u8>::with_capacity(black_box(64)));
        }
        let action = self.http.data(conn, input);
        self.seen.store(allocations(), Ordering::SeqCst);
        action
    }
    fn timeout(&mut self, conn: &mut Conn<'_, HttpConn>) -> Action {
        let action = self.http.timeout(conn);
        self.seen.store(allocations(), Ordering::SeqCst);
        action
    }
    fn opened(&mut self, conn: &mut Conn<'_, HttpConn>) -> Action {
        let action = self.http.opened(conn);
        self.seen.store(allocations(), Ordering::SeqCst);
        action
    }
    fn drained(&mut self, conn: &mut Conn<'_, HttpConn>) -> Action {
        let action = self.http.drained(conn);
        self.seen.store(allocations(), Ordering::SeqCst);
        action
    }
    fn closed(
        &mut self,
        info: &ConnInfo,
        context: HttpConn,
        error: Option<CloseError>,
        others: &mut Loop<'_, HttpConn>,
    ) -> Flow {
        let flow = self.http.closed(info, context, error, others);
        self.seen.store(allocations(), Ordering::SeqCst);
        flow
    }
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
const RESPONSE_LEN: usize = 130;
/// `HTTP/1.1 100 Continue\r\n\r\n`.
const CONTINUE_LEN: usize = 25;

/// `rounds` of: one request, then a pipelined batch of 16 (with bodies among them:
/// `Content-Length`, chunked, and one after `100 Continue`), on
/// each persistent client, in parallel.
fn load(clients: Vec<Client>, rounds: usize) -> Vec<Client> {
    let mut batch = Vec::new();
    for i in 0..16 {
        match i {
            3 => batch.extend_from_slice(
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                  5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n",
            ),
            7 => batch
                .extend_from_slice(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"),
            11 => batch.extend_from_slice(
                b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
            ),
            _ => batch.extend_from_slice(GET),
        }
    }
    let batch = Arc::new(batch);
    let threads: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            let batch = batch.clone();
            std::thread::spawn(move || {
                for _ in 0..rounds {
                    let one = c.round_trip_len(GET, RESPONSE_LEN);
                    assert!(one.ends_with(b"Hello World!\r\n"));
                    let many = c.round_trip_len(&batch, 16 * RESPONSE_LEN + CONTINUE_LEN);
                    assert!(many.ends_with(b"Hello World!\r\n"));
                }
                c
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Connections that each end: HTTP/1.0, `Connection: close`, malformed, oversized.
fn churn(addr: &Bound, n: usize) {
    let requests: [&[u8]; 4] = [
        b"GET / HTTP/1.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
    ];
    for i in 0..n {
        let mut c = connect(addr);
        c.write_all(requests[i % requests.len()]).unwrap();
        let got = c.read_to_end_lossy();
        assert!(
            got.starts_with(b"HTTP/1.1 "),
            "{:?}",
            String::from_utf8_lossy(&got)
        );
    }
}

trait RoundTrip {
    fn round_trip_len(&mut self, msg: &[u8], len: usize) -> Vec<u8>;
}

impl RoundTrip for Client {
    /// Writes `msg` and reads exactly `len` bytes back.
    fn round_trip_len(&mut self, msg: &[u8], len: usize) -> Vec<u8> {
        self.write_all(msg).expect("write");
        let mut buf = vec![0; len];
        self.read_exact(&mut buf).expect("read the responses");
        buf
    }
}

#[test]
fn answering_requests_allocates_nothing_default() {
    answering_requests_allocates_nothing("tcp4://127.0.0.1:0");
}

#[test]
fn answering_requests_allocates_nothing_poll() {
    answering_requests_allocates_nothing("tcp4-net://127.0.0.1:0");
}

fn answering_requests_allocates_nothing(addr: &str) {
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    // The persistent clients carry thousands of requests each: no cap on them.
    let config = HttpConfig {
        keepalive_requests: None,
        ..HttpConfig::default()
    };
    let server = start(
        // Wake coalescing on, as the example runs: its naps must not allocate either.
        evio::ServerBuilder::new()
            .max_connections(64)
            .input_capacity(16 * 1024)
            .coalesce(Some(Duration::from_micros(100))),
        &[addr],
        move || Probe {
            http: Http::with_clock(config, racing_clock),
            seen: s,
        },
    );
    let addr = server.addr(0).clone();
    let mut meter = connect(&addr);
    let mark = |meter: &mut Client| {
        let r = meter.round_trip_len(GET, RESPONSE_LEN);
        assert!(r.starts_with(b"HTTP/1.1 200 OK\r\n"));
        seen.load(Ordering::SeqCst)
    };
    let clients: Vec<Client> = (0..6).map(|_| connect(&addr)).collect();
    // Warm-up: every path once.
    let clients = load(clients, 50);
    churn(&addr, 20);
    let before = mark(&mut meter);

    let clients = load(clients, 500);
    churn(&addr, 200);
    let after = mark(&mut meter);
    assert_eq!(
        after - before,
        0,
        "the loop thread allocated {} times answering {} requests",
        after - before,
        6 * 500 * 17 + 200
    );

    // Control on the loop's own thread: an allocation in the handler is seen.
    meter
        .write_all(b"GET /alloc! HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = vec![0; RESPONSE_LEN];
    meter.read_exact(&mut buf).unwrap();
    assert!(
        seen.load(Ordering::SeqCst) > after,
        "the loop thread's counter sees an allocation"
    );
    drop((meter, clients));
    server.stop().unwrap();
}
