//! What a TLS connection allocates per request on the loop thread, after its handshake:
//! the http handler wrapped in `evio_tls::Tls`, keep-alive requests from rustls clients
//! on real sockets. evio's own code (driver, engine, transport seam, evio-tls's
//! buffers, the handler) allocates nothing per request; rustls 0.23 allocates a vector
//! per record it decrypts (its unbuffered API hands out each record's plaintext in a
//! new one) and one per record it encrypts. This test counts both, so a change on
//! either side shows: exactly rustls's two per request (one record each way), and, as a
//! control, one more when the handler allocates.
//!
//! The count is the loop thread's (evio-test-support's counting allocator); its own
//! test binary, so no other test's threads run in it.

mod os_common;

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use evio::{Action, Conn, Events};
use evio_handlers::http::{Http, HttpConfig, HttpConn};
use evio_test_support::{CountingAllocator, allocations};
use os_common::*;
use rustls::pki_types::ServerName;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// The http handler, publishing the loop thread's allocation count after each `data`;
/// a request for `/alloc!` allocates on purpose (the control).
struct Probe {
    http: Http,
    seen: Arc<AtomicU64>,
}

impl Events for Probe {
    type Context = HttpConn;
    evio::delegate_events!(self.http, except data);
    fn data(&mut self, conn: &mut Conn<'_, HttpConn>, input: &[u8]) -> Action {
        if input.starts_with(b"GET /alloc! ") {
            black_box(Vec::<u8>::with_capacity(black_box(64)));
        }
        let action = self.http.data(conn, input);
        self.seen.store(allocations(), Ordering::SeqCst);
        action
    }
}

type TlsClient = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn client(addr: &Bound, config: &Arc<rustls::ClientConfig>) -> TlsClient {
    let Bound::Tcp(addr) = addr else {
        panic!("a TCP listener")
    };
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(LIMIT)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// Sends `GET path` and reads its whole response.
fn get(c: &mut TlsClient, path: &str) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    c.write_all(request.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0; 512];
    while !got.ends_with(b"Hello World!\r\n") {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed");
        got.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn a_request_over_tls_allocates_only_what_rustls_does_per_record() {
    if !have_client("openssl", "openssl") {
        return;
    }
    let dir = TempDir::new("tls-alloc");
    let (ca, cert, key) = test_ca_and_leaf(&dir);
    let tls = evio_tls::TlsConfig::from_pem_files(cert.as_ref(), key.as_ref()).unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    let config = HttpConfig {
        keepalive_requests: None,
        ..HttpConfig::default()
    };
    let server = start(
        evio::ServerBuilder::new()
            .max_connections(16)
            .input_capacity(evio_tls::MIN_INPUT_CAPACITY),
        &["tcp4://127.0.0.1:0"],
        move || {
            evio_tls::Tls::new(
                Probe {
                    http: Http::new(config),
                    seen: s,
                },
                tls,
            )
        },
    );
    let client_config = tls_client_config(&ca);
    let addr = server.addr(0).clone();
    let mut clients: Vec<TlsClient> = (0..4).map(|_| client(&addr, &client_config)).collect();
    // Warm-up: handshakes, session tickets, buffers at their size (the control's
    // longer request included: its first costs one allocation more, once).
    for _ in 0..50 {
        for c in &mut clients {
            get(c, "/");
            get(c, "/alloc!");
        }
    }
    const REQUESTS: u64 = 400;
    let count = |clients: &mut Vec<TlsClient>, path: &str| {
        get(&mut clients[0], "/");
        let before = seen.load(Ordering::SeqCst);
        for i in 0..REQUESTS {
            get(&mut clients[(i % 4) as usize], path);
        }
        get(&mut clients[0], "/");
        seen.load(Ordering::SeqCst) - before
    };
    // Between the two marks: the first mark's response, the requests, the last mark's
    // request: REQUESTS + 1 records each way.
    let plain = count(&mut clients, "/");
    assert_eq!(
        plain,
        2 * (REQUESTS + 1),
        "rustls's two per request (one record decrypted, one encrypted), nothing else"
    );
    let control = count(&mut clients, "/alloc!");
    assert_eq!(
        control,
        plain + REQUESTS,
        "the control's allocation is counted"
    );
    server.stop().unwrap();
}
