//! Runs N echo request/reply cycles through the engine with an in-memory driver, for
//! an exact "instructions per request" figure of the engine alone:
//!
//! ```text
//! cargo build -p evio-proto --release --example echo_requests
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/echo_requests 100000     # and again with 0
//! ```
//!
//! (total(100000) − total(0)) / 100000 is the engine's cost of one request: a readiness
//! report, a read of 64 bytes, the handler's `data`, a write, and the bookkeeping
//! around them. Each request goes to one of 64 open connections in turn.

use std::net::SocketAddr;

use evio_proto::{
    Action, Addr, Config, Conn, Events, HeapEngine, Instant, ListenAddr, ListenerId, Output,
    Readiness,
};

struct Echo;

impl Events for Echo {
    type Context = ();
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let n = conn.write_some(input);
        conn.consume(n);
        Action::None
    }
}

const CONNS: usize = 64;

fn main() {
    let requests: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let config = Config {
        max_connections: CONNS,
        ..Config::new()
    };
    let mut engine = HeapEngine::allocate_without_waker(Echo, config).expect("engine");
    let addr = SocketAddr::from(([127, 0, 0, 1], 1));
    engine.handle_time(Instant::ZERO);
    engine.handle_start(&[ListenAddr::Ip(addr)]).expect("start");
    let first = ListenerId::new(0).expect("a listener");
    engine.handle_listener_ready(first).expect("listener");
    let mut ids = Vec::new();
    let mut backlog = CONNS;
    while let Some(out) = engine.poll_output() {
        match out {
            Output::Accept(accept) if backlog > 0 => {
                backlog -= 1;
                ids.push(accept.done(Addr::Ip(addr), Addr::Ip(addr)).expect("accept"));
            }
            Output::Accept(accept) => accept.would_block(),
            _ => {}
        }
    }
    let request = [b'x'; 64];
    let mut echoed = 0u64;
    for i in 0..requests {
        let id = ids[(i % CONNS as u64) as usize];
        engine
            .handle_conn_ready(id, Readiness::READABLE)
            .expect("ready");
        while let Some(out) = engine.poll_output() {
            match out {
                Output::Read(mut read) => {
                    read.buf()[..request.len()].copy_from_slice(&request);
                    read.done(request.len());
                }
                Output::Transmit(transmit) => {
                    let n = transmit.len();
                    echoed += n as u64;
                    transmit.done(n);
                }
                _ => {}
            }
        }
    }
    assert_eq!(echoed, requests * request.len() as u64);
    println!("{requests} requests echoed through {CONNS} connections");
}
