//! TLS on the connections a handler opens (`Loop::connect`): an in-process server
//! whose handler connects to the echo example speaking TLS (a test CA and a leaf for
//! `localhost`, made with openssl), sends lines and gets them back through the
//! handshake, the records and the close; a server whose certificate the client does
//! not trust ends the connect with a transport error in `closed`, never `opened`.
//! And TLS on one listener of a server only (`TlsConfig::on_listeners`).

mod os_common;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use evio::{Action, CloseError, Conn, ConnInfo, ConnectAddr, Events, Flow, Loop, Server};
use os_common::*;
use rustls::pki_types::ServerName;

/// What the connecting handler saw.
#[derive(Default, Debug)]
struct Seen {
    opened: usize,
    echoed: Vec<u8>,
    closed: Option<Option<CloseError>>,
}

/// Connects to `to` when serving, writes `message` once open, and closes once it has
/// it back.
struct Connector {
    to: std::net::SocketAddr,
    message: Vec<u8>,
    seen: Arc<Mutex<Seen>>,
}

impl Events for Connector {
    type Context = ();

    fn serving(&mut self, mut server: Server<'_>) -> Flow {
        server
            .connect(ConnectAddr::Ip(self.to), Duration::from_secs(5))
            .expect("a connect starts");
        Flow::Continue
    }

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        assert!(conn.info().outbound);
        self.seen.lock().unwrap().opened += 1;
        conn.write(&self.message).unwrap();
        Action::None
    }

    fn data(&mut self, _conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let mut seen = self.seen.lock().unwrap();
        seen.echoed.extend_from_slice(input);
        if seen.echoed.len() >= self.message.len() {
            return Action::Close;
        }
        Action::None
    }

    fn closed(&mut self, _: &ConnInfo, _: (), e: Option<CloseError>, _: &mut Loop<'_, ()>) -> Flow {
        self.seen.lock().unwrap().closed = Some(e);
        Flow::Continue
    }
}

/// Runs a `Connector` wrapped in TLS (trusting `ca`) against `port` until `closed`.
fn connect_through_tls(ca: &str, port: u16, message: Vec<u8>) -> Seen {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    let tls = evio_tls::TlsConfig::client(
        tls_client_config(ca),
        ServerName::try_from("localhost").unwrap(),
    );
    let server = start(
        evio::ServerBuilder::new()
            .max_connections(8)
            .input_capacity(evio_tls::MIN_INPUT_CAPACITY),
        &["tcp4://127.0.0.1:0"],
        move || {
            evio_tls::Tls::new(
                Connector {
                    to: ([127, 0, 0, 1], port).into(),
                    message,
                    seen: s,
                },
                tls,
            )
        },
    );
    let started = std::time::Instant::now();
    while seen.lock().unwrap().closed.is_none() {
        assert!(
            started.elapsed() < LIMIT,
            "no close: {:?}",
            seen.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    server.stop().unwrap();
    Arc::try_unwrap(seen).unwrap().into_inner().unwrap()
}

/// Starts the echo example with TLS on a free port.
fn echo_with_tls(cert: &str, key: &str) -> (KillOnDrop, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = KillOnDrop(
        Command::new(example_binary("echo-server"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--tls-cert", cert, "--tls-key", key])
            .stdout(Stdio::piped())
            .spawn()
            .expect("the example starts"),
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.contains("TLS)"), "{line:?}");
    (child, port)
}

#[test]
fn a_connection_the_handler_opens_speaks_tls_to_the_echo_example() {
    if !have_client("openssl", "openssl") {
        return;
    }
    let dir = TempDir::new("tls-client");
    let (ca, cert, key) = test_ca_and_leaf(&dir);
    let (_echo, port) = echo_with_tls(&cert, &key);
    // 40 KB: several records each way.
    let message: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    let seen = connect_through_tls(&ca, port, message.clone());
    assert_eq!(seen.opened, 1, "opened once, after the handshake");
    assert!(seen.echoed == message, "the echo came back whole");
    assert_eq!(seen.closed, Some(None), "closed by its handler, no error");
}

#[test]
fn a_server_the_client_does_not_trust_fails_the_connect_in_closed() {
    if !have_client("openssl", "openssl") {
        return;
    }
    let dir = TempDir::new("tls-client-untrusted");
    let (_ca, cert, key) = test_ca_and_leaf(&dir);
    // Another CA, which did not sign the echo server's certificate.
    let other = TempDir::new("tls-client-other");
    let (other_ca, _, _) = test_ca_and_leaf(&other);
    let (_echo, port) = echo_with_tls(&cert, &key);
    let seen = connect_through_tls(&other_ca, port, b"never\n".to_vec());
    assert_eq!(seen.opened, 0, "never opened");
    assert!(
        matches!(seen.closed, Some(Some(CloseError::Transport(_)))),
        "{:?}",
        seen.closed
    );
}

/// Sends `request` over `stream`; the first line of its response.
fn status_line<S: std::io::Read + std::io::Write>(stream: &mut S, request: &[u8]) -> String {
    stream.write_all(request).unwrap();
    let mut got = Vec::new();
    let mut buf = [0; 256];
    while !got.windows(2).any(|p| p == b"\r\n") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed before a response");
        got.extend_from_slice(&buf[..n]);
    }
    let end = got.windows(2).position(|p| p == b"\r\n").unwrap();
    String::from_utf8_lossy(&got[..end]).into_owned()
}

/// `on_listeners`: TLS on the first listener, plain http on the second, one server.
#[test]
fn tls_on_one_listener_and_plain_on_the_other() {
    if !have_client("openssl", "openssl") {
        return;
    }
    let dir = TempDir::new("tls-listeners");
    let (ca, cert, key) = test_ca_and_leaf(&dir);
    let tls = evio_tls::TlsConfig::from_pem_files(cert.as_ref(), key.as_ref())
        .unwrap()
        .on_listeners(&[evio::ListenerId::new(0).unwrap()]);
    let server = start(
        evio::ServerBuilder::new()
            .max_connections(8)
            .input_capacity(evio_tls::MIN_INPUT_CAPACITY),
        &["tcp4://127.0.0.1:0", "tcp4://127.0.0.1:0"],
        move || {
            evio_tls::Tls::new(
                evio_handlers::http::Http::new(evio_handlers::http::HttpConfig::default()),
                tls,
            )
        },
    );
    let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let (Bound::Tcp(secure), Bound::Tcp(plain)) = (server.addr(0).clone(), server.addr(1).clone())
    else {
        panic!("two TCP listeners")
    };
    let conn = rustls::ClientConnection::new(
        tls_client_config(&ca),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let tcp = std::net::TcpStream::connect(secure).unwrap();
    tcp.set_read_timeout(Some(LIMIT)).unwrap();
    let mut over_tls = rustls::StreamOwned::new(conn, tcp);
    assert_eq!(status_line(&mut over_tls, request), "HTTP/1.1 200 OK");
    let mut tcp = std::net::TcpStream::connect(plain).unwrap();
    tcp.set_read_timeout(Some(LIMIT)).unwrap();
    assert_eq!(status_line(&mut tcp, request), "HTTP/1.1 200 OK");
    server.stop().unwrap();
}

/// A client's `close_notify` ends its stream at the server: the echo example closes in
/// answer with its own `close_notify` (so the client's read ends cleanly, which rustls
/// reports only after one), then the end of the TCP stream.
#[test]
fn close_notify_is_answered_with_close_notify() {
    if !have_client("openssl", "openssl") {
        return;
    }
    let dir = TempDir::new("tls-close-notify");
    let (ca, cert, key) = test_ca_and_leaf(&dir);
    let (_echo, port) = echo_with_tls(&cert, &key);
    let conn = rustls::ClientConnection::new(
        tls_client_config(&ca),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(LIMIT)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    std::io::Write::write_all(&mut tls, b"ping\n").unwrap();
    let mut got = [0; 5];
    std::io::Read::read_exact(&mut tls, &mut got).unwrap();
    assert_eq!(&got, b"ping\n");
    tls.conn.send_close_notify();
    std::io::Write::flush(&mut tls).unwrap();
    let mut rest = Vec::new();
    // Ok: a clean end (an end without close_notify is an UnexpectedEof error).
    std::io::Read::read_to_end(&mut tls, &mut rest).expect("a clean close");
    assert!(rest.is_empty());
}
