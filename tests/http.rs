//! The http handler against real clients on loopback, under the default backend and
//! the portable poll(2) one (`-net` schemes, the example's `--stdlib`): curl for GET,
//! keep-alive, HTTP/1.0, `Connection: close`, bodies and oversized heads; wrk for a
//! short load, plain and pipelined; raw sockets for pipelining, requests split at every
//! byte, malformed requests, bodies and the head timeout. The example binary itself for
//! `--help` and a clean stop on SIGTERM.
//!
//! curl and wrk come from the Debian packages `curl` and `wrk`: a test whose client is
//! missing is reported as skipped, naming the package, unless `EVIO_REQUIRE_CLIENTS` is
//! set (as CI sets it), which makes it fail.

mod os_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use evio_handlers::http::{Body, Http, HttpConfig, parse_imf_fixdate};
use os_common::*;

/// The default backend, or poll(2) through a `-net` scheme.
#[derive(Clone, Copy, Debug)]
enum Backend {
    Default,
    Poll,
}

impl Backend {
    fn tcp(self) -> &'static str {
        match self {
            Backend::Default => "tcp4://127.0.0.1:0",
            Backend::Poll => "tcp4-net://127.0.0.1:0",
        }
    }
}

/// The handler on a loopback port with the example's buffer sizes.
fn serve(backend: Backend, config: HttpConfig) -> (Running, String) {
    serve_with(backend, config, 16 * 1024, 256)
}

/// The handler on a loopback port with an input buffer of `input` bytes and a pool of
/// `connections`.
fn serve_with(
    backend: Backend,
    config: HttpConfig,
    input: usize,
    connections: usize,
) -> (Running, String) {
    let server = start(
        evio::ServerBuilder::new()
            .max_connections(connections)
            .input_capacity(input)
            .output_capacity(64 * 1024),
        &[backend.tcp()],
        move || Http::new(config),
    );
    let url = match server.addr(0) {
        Bound::Tcp(a) => format!("http://{a}/"),
        Bound::Unix(_) => unreachable!("a tcp listener"),
    };
    (server, url)
}

/// Runs a client tool (each test checks it is there first: [`have_client`]).
fn tool(name: &str, package: &str, args: &[&str]) -> Output {
    Command::new(name)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {name} ({e}): install it with `apt-get install -y {package}`")
        })
}

/// curl with a bound on its time; `--max-time` keeps a hang from blocking the test.
fn curl(args: &[&str]) -> String {
    let mut all = vec!["-s", "--max-time", "20"];
    all.extend_from_slice(args);
    let out = tool("curl", "curl", &all);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const HELLO: &str = "Hello World!\r\n";

/// Checks a response head's `Date` is a well-formed IMF-fixdate near the wall clock
/// (within a minute: the date must be today's, not formatted right to the second).
fn check_date(head: &str) {
    let date = head
        .lines()
        .find_map(|l| l.strip_prefix("Date: "))
        .unwrap_or_else(|| panic!("no Date in {head}"));
    let secs = parse_imf_fixdate(date.trim_end().as_bytes())
        .unwrap_or_else(|| panic!("not an IMF-fixdate: {date:?}"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(secs.abs_diff(now) < 60, "Date {date} is not now");
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod default_backend {
            $(#[test] fn $name() { super::$name(super::Backend::Default) })*
        }
        mod poll_backend {
            $(#[test] fn $name() { super::$name(super::Backend::Poll) })*
        }
    };
}

both_backends!(
    curl_get_head_and_date,
    curl_keeps_the_connection_alive,
    curl_http10_closes_unless_keep_alive,
    curl_connection_close,
    curl_bodies_and_refusals,
    curl_sees_431_for_a_huge_header,
    wrk_runs_without_errors,
    pipelined_requests_are_answered_in_order,
    requests_split_at_every_byte,
    a_malformed_request_gets_400_and_others_are_unaffected,
    a_body_is_waited_for_and_not_taken_as_a_request,
    a_request_trickling_in_gets_408,
    a_silent_connection_is_closed_without_a_word,
    an_idle_keep_alive_connection_is_closed,
    a_client_that_does_not_read_is_reset,
    a_close_waits_for_no_client_that_does_not_read,
    keepalive_requests_caps_a_connection,
    idle_connections_make_room_for_new_ones,
    a_50000_byte_body_streams_through_the_buffer,
    chunked_bodies_split_at_every_byte,
    a_stalled_body_gets_408,
    refusals_over_raw_sockets,
    expect_100_continue_is_answered_before_the_body,
    curl_streams_large_and_chunked_bodies,
);

fn curl_get_head_and_date(backend: Backend) {
    if !have_client("curl", "curl") {
        return;
    }
    let (server, url) = serve(backend, HttpConfig::default());
    let out = curl(&["-i", &url]);
    let (head, body) = out.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(head.contains("\r\nServer: evio\r\n"), "{out}");
    assert!(head.contains("\r\nContent-Type: text/plain\r\n"), "{out}");
    assert!(head.contains("\r\nContent-Length: 14"), "{out}");
    assert!(!head.contains("Connection:"), "{out}");
    check_date(head);
    assert_eq!(body, HELLO);
    // HEAD: the same head, no body.
    let out = curl(&["-I", &url]);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.ends_with("Content-Length: 14\r\n\r\n"), "{out}");
    server.stop().unwrap();
}

fn curl_keeps_the_connection_alive(backend: Backend) {
    if !have_client("curl", "curl") {
        return;
    }
    let (server, url) = serve(backend, HttpConfig::default());
    // Two URLs in one invocation: the second reuses the first's connection.
    let out = curl(&["-w", "[%{num_connects}]", &url, &format!("{url}second")]);
    assert_eq!(out, format!("{HELLO}[1]{HELLO}[0]"));
    server.stop().unwrap();
}

fn curl_http10_closes_unless_keep_alive(backend: Backend) {
    if !have_client("curl", "curl") {
        return;
    }
    let (server, url) = serve(backend, HttpConfig::default());
    let out = curl(&["-0", "-i", "-w", "[%{num_connects}]", &url, &url]);
    assert_eq!(out.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{out}");
    assert_eq!(out.matches("\r\nConnection: close\r\n").count(), 2, "{out}");
    assert!(
        out.contains("[1]") && !out.contains("[0]"),
        "two connections: {out}"
    );
    // Asking to keep it: told so, and the connection is reused.
    let out = curl(&[
        "-0",
        "-i",
        "-H",
        "Connection: keep-alive",
        "-w",
        "[%{num_connects}]",
        &url,
        &url,
    ]);
    assert_eq!(
        out.matches("\r\nConnection: keep-alive\r\n").count(),
        2,
        "{out}"
    );
    assert!(out.contains("[1]") && out.contains("[0]"), "{out}");
    server.stop().unwrap();
}

fn curl_connection_close(backend: Backend) {
    if !have_client("curl", "curl") {
        return;
    }
    let (server, url) = serve(backend, HttpConfig::default());
    let out = curl(&[
        "-i",
        "-H",
        "Connection: close",
        "-w",
        "[%{num_connects}]",
        &url,
        &url,
    ]);
    assert_eq!(out.matches("\r\nConnection: close\r\n").count(), 2, "{out}");
    assert_eq!(
        out.matches("[1]").count(),
        2,
        "a new connection each time: {out}"
    );
    server.stop().unwrap();
}

fn curl_bodies_and_refusals(backend: Backend) {
    if !have_client("curl", "curl") {
        return;
    }
    let (server, url) = serve(backend, HttpConfig::default());
    let out = curl(&["-w", "[%{http_code}]", "-d", "name=value", &url]);
    assert_eq!(out, format!("{HELLO}[200]"));
    // Larger than the old 8 KiB limit: streamed through the buffer now.
    let big = "x".repeat(9000);
    let out = curl(&["-w", "[%{http_code}]", "-d", &big, &url]);
    assert_eq!(out, format!("{HELLO}[200]"));
    let out = curl(&[
        "-w",
        "[%{http_code}]",
        "-H",
        "Transfer-Encoding: chunked",
        "-d",
        "abc",
        &url,
    ]);
    assert_eq!(out, format!("{HELLO}[200]"));
    // Over the 1 MiB limit (curl sends no body before the answer to its Expect).
    let out = curl(&[
        "-w",
        "[%{http_code}]",
        "-H",
        "Content-Length: 2000000",
        "-d",
        "x",
        &url,
    ]);
    assert_eq!(out, "Content Too Large\r\n[413]");
    let out = curl(&[
        "-w",
        "[%{http_code}]",
        "-H",
        "Transfer-Encoding: gzip, chunked",
        "-d",
        "abc",
        &url,
    ]);
    assert_eq!(out, "Not Implemented\r\n[501]");
    server.stop().unwrap();
}

fn curl_sees_431_for_a_huge_header(backend: Backend) {
    if !have_client("curl", "curl") {
        return;
    }
    let (server, url) = serve(backend, HttpConfig::default());
    // Larger than the whole input buffer (16 KiB): the reply goes out before the
    // close, and the close lingers so it is not lost to a reset.
    let header = format!("X-Huge: {}", "h".repeat(100_000));
    let out = curl(&["-w", "[%{http_code}]", "-H", &header, &url]);
    assert_eq!(out, "Request Header Fields Too Large\r\n[431]");
    // Over max_head (8 KiB) but within the buffer.
    let header = format!("X-Big: {}", "h".repeat(9000));
    let out = curl(&["-w", "[%{http_code}]", "-H", &header, &url]);
    assert_eq!(out, "Request Header Fields Too Large\r\n[431]");
    // The server carries on.
    assert_eq!(curl(&[&url]), HELLO);
    server.stop().unwrap();
}

/// wrk's summary: requests, and its whole output (where it reports socket errors and
/// non-2xx responses, on lines it prints only when there are any).
fn wrk(args: &[&str]) -> (u64, String) {
    let out = tool("wrk", "wrk", args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in: {text}"));
    (requests, text)
}

fn wrk_runs_without_errors(backend: Backend) {
    if !have_client("wrk", "wrk") {
        return;
    }
    let (server, url) = serve(backend, HttpConfig::default());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/http-pipeline.lua");
    for extra in [&[][..], &["-s", script][..]] {
        let mut args = vec!["-t1", "-c10", "-d1s", "--timeout", "5s"];
        args.extend_from_slice(extra);
        args.push(&url);
        let (requests, text) = wrk(&args);
        assert!(requests > 0, "{text}");
        assert!(!text.contains("Socket errors"), "{text}");
        assert!(!text.contains("Non-2xx"), "{text}");
    }
    server.stop().unwrap();
}

fn connect_to(server: &Running) -> Client {
    let c = connect(server.addr(0));
    if let Client::Tcp(s) = &c {
        s.set_nodelay(true).unwrap();
    }
    c
}

/// Reads one response; `head_only` for a response to HEAD (no body).
fn read_one(reader: &mut impl BufRead, head_only: bool) -> String {
    let mut head = String::new();
    loop {
        let n = reader.read_line(&mut head).expect("read a response");
        assert!(n > 0, "the connection closed inside a response: {head:?}");
        if head.ends_with("\r\n\r\n") {
            break;
        }
    }
    if head_only {
        return head;
    }
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.parse().ok())
        .expect("a Content-Length");
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    head + &String::from_utf8(body).unwrap()
}

/// A response with its `Date` line left out, lines joined by `\n`.
fn without_date(response: &str) -> String {
    response
        .lines()
        .filter(|l| !l.starts_with("Date: "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn pipelined_requests_are_answered_in_order(backend: Backend) {
    // 3001 requests on one connection: no cap on them.
    let config = HttpConfig {
        keepalive_requests: None,
        ..HttpConfig::default()
    };
    let (server, _) = serve(backend, config);
    let mut c = connect_to(&server);
    // 300 requests in one write, a mix whose responses differ: a response out of
    // order shows. More than the output buffer holds: answering waits for room.
    let kinds: [&[u8]; 4] = [
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
        b"HEAD /b HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"POST /d HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    ];
    let order: Vec<usize> = (0..3000).map(|i| (i * 7 + i / 5) % 4).collect();
    let mut all = Vec::new();
    for &k in &order {
        all.extend_from_slice(kinds[k]);
    }
    all.extend_from_slice(b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut writer = c.try_clone();
    let w = std::thread::spawn(move || writer.write_all(&all).unwrap());
    let mut reader = BufReader::new(&mut c);
    let head = "HTTP/1.1 200 OK\nServer: evio\nContent-Type: text/plain\nContent-Length: 14";
    for (i, &k) in order.iter().enumerate() {
        let r = read_one(&mut reader, k == 1);
        let expected = match k {
            0 | 3 => format!("{head}\n\nHello World!"),
            1 => format!("{head}\n"),
            _ => format!("{head}\nConnection: keep-alive\n\nHello World!"),
        };
        assert_eq!(without_date(&r), expected, "response {i}");
    }
    let last = read_one(&mut reader, false);
    assert!(last.contains("Connection: close\r\n"), "{last}");
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing after the closing response");
    w.join().unwrap();
    server.stop().unwrap();
}

fn requests_split_at_every_byte(backend: Backend) {
    let (server, _) = serve(backend, HttpConfig::default());
    let mut c = connect_to(&server);
    let requests = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\
        POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody\
        HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    // One byte per write (no delay: the handler sees whatever each read brings).
    for &b in requests.iter() {
        c.write_all(&[b]).unwrap();
    }
    let mut reader = BufReader::new(&mut c);
    let a = read_one(&mut reader, false);
    let b = read_one(&mut reader, false);
    let h = read_one(&mut reader, true);
    assert!(
        a.starts_with("HTTP/1.1 200 OK") && a.ends_with(HELLO),
        "{a}"
    );
    assert!(
        b.starts_with("HTTP/1.1 200 OK") && b.ends_with(HELLO),
        "{b}"
    );
    assert!(h.ends_with("Connection: close\r\n\r\n"), "{h}");
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    server.stop().unwrap();
}

fn a_malformed_request_gets_400_and_others_are_unaffected(backend: Backend) {
    let (server, _) = serve(backend, HttpConfig::default());
    let mut good = connect_to(&server);
    good.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut good_reader = BufReader::new(good.try_clone());
    assert!(read_one(&mut good_reader, false).ends_with(HELLO));
    for garbage in [
        &b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n", // no Host
    ] {
        let mut bad = connect_to(&server);
        // A valid request first: answered; then the garbage: 400, then the close.
        bad.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        bad.write_all(garbage).unwrap();
        let got = String::from_utf8_lossy(&bad.read_to_end_lossy()).into_owned();
        let split = got.find(HELLO).expect("the first answer") + HELLO.len();
        let (first, second) = got.split_at(split);
        assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
        assert!(second.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{got}");
        assert!(second.contains("\r\nConnection: close\r\n"), "{got}");
        assert!(second.ends_with("\r\n\r\nBad Request\r\n"), "{got}");
    }
    // The well-behaved client carries on, on the same connection.
    good.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(read_one(&mut good_reader, false).ends_with(HELLO));
    // And a new client is served.
    let mut late = connect_to(&server);
    late.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert!(String::from_utf8_lossy(&late.read_to_end_lossy()).ends_with(HELLO));
    server.stop().unwrap();
}

fn a_body_is_waited_for_and_not_taken_as_a_request(backend: Backend) {
    let (server, _) = serve(backend, HttpConfig::default());
    let mut c = connect_to(&server);
    // The body looks like a request: it must be skipped as a body.
    let body = b"GET /not-a-request HTTP/1.1\r\nHost: x\r\n\r\n";
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(&body[..10]).unwrap();
    // The body's end, then one more request that closes.
    c.write_all(&body[10..]).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let got = String::from_utf8_lossy(&c.read_to_end_lossy()).into_owned();
    assert_eq!(got.matches("HTTP/1.1 200 OK").count(), 2, "{got}");
    assert!(
        got.ends_with(&format!("Connection: close\r\n\r\n{HELLO}")),
        "{got}"
    );
    server.stop().unwrap();
}

fn a_request_trickling_in_gets_408(backend: Backend) {
    let config = HttpConfig {
        head_timeout: Some(Duration::from_millis(300)),
        ..HttpConfig::default()
    };
    let (server, _) = serve(backend, config);
    let mut c = connect_to(&server);
    // A whole request is answered and starts no clock...
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut reader = BufReader::new(c.try_clone());
    assert!(read_one(&mut reader, false).ends_with(HELLO));
    // ...a partial one does: it never completes, and the server gives up on it.
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    let rest = String::from_utf8(rest).unwrap();
    assert!(
        rest.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{rest}"
    );
    assert!(
        rest.ends_with("Connection: close\r\n\r\nRequest Timeout\r\n"),
        "{rest}"
    );
    server.stop().unwrap();
}

/// A configuration with every timeout short, so a test waits for none of them long;
/// `None` where a test must not be cut off by one it does not test.
fn quick(head: u64, body: u64, keepalive: u64, send: u64) -> HttpConfig {
    let ms = |n: u64| (n > 0).then(|| Duration::from_millis(n));
    HttpConfig {
        head_timeout: ms(head),
        body_timeout: ms(body),
        keepalive_timeout: ms(keepalive),
        send_timeout: ms(send),
        ..HttpConfig::default()
    }
}

/// nginx closes a connection that sends nothing within `client_header_timeout`
/// without a word: so does the handler, after `head_timeout` from the accept.
fn a_silent_connection_is_closed_without_a_word(backend: Backend) {
    let (server, _) = serve(backend, quick(200, 0, 0, 0));
    let mut c = connect_to(&server);
    assert_eq!(c.read_to_end_lossy(), b"", "closed, nothing said");
    // The first request's head counts from the accept, not from its first byte.
    let mut c = connect_to(&server);
    std::thread::sleep(Duration::from_millis(100));
    c.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let got = String::from_utf8(c.read_to_end_lossy()).unwrap();
    assert!(got.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{got}");
    server.stop().unwrap();
}

fn an_idle_keep_alive_connection_is_closed(backend: Backend) {
    let (server, _) = serve(backend, quick(0, 0, 200, 0));
    let mut c = connect_to(&server);
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let got = String::from_utf8(c.read_to_end_lossy()).unwrap();
    assert!(got.ends_with(HELLO), "one response, then the close: {got}");
    assert_eq!(got.matches("HTTP/1.1").count(), 1, "{got}");
    server.stop().unwrap();
}

/// A client that pipelines without ever reading fills the socket and the output
/// buffer; the send timeout then resets it (and the server serves others meanwhile).
fn a_client_that_does_not_read_is_reset(backend: Backend) {
    let config = HttpConfig {
        keepalive_requests: None,
        ..quick(0, 0, 0, 200)
    };
    let (server, _) = serve(backend, config);
    let c = connect_to(&server);
    let mut writer = c.try_clone();
    let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000);
    // Writes until the reset (or until `LIMIT` passes, which fails the test).
    let w = std::thread::spawn(move || {
        loop {
            if let Err(e) = writer.write_all(&request) {
                return e.kind();
            }
        }
    });
    let kind = w.join().unwrap();
    assert!(
        matches!(
            kind,
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "{kind:?}"
    );
    let mut other = connect_to(&server);
    other
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert!(String::from_utf8_lossy(&other.read_to_end_lossy()).ends_with(HELLO));
    drop(c);
    server.stop().unwrap();
}

/// A closing response (here the last a connection may carry) to a client that does
/// not read: the close does not wait for it for ever (the send timeout resets it), so
/// the only slot of the pool is free again for a new client.
fn a_close_waits_for_no_client_that_does_not_read(backend: Backend) {
    let config = HttpConfig {
        keepalive_requests: Some(50_000),
        ..quick(0, 0, 0, 200)
    };
    let (server, _) = serve_with(backend, config, 16 * 1024, 1);
    let c = connect_to(&server);
    // 50,000 responses (6.5 MB) fill the socket and the output buffer; the last says
    // `Connection: close`. The writer stops when the server stops reading for good.
    let mut writer = c.try_clone();
    let w = std::thread::spawn(move || {
        let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000);
        for _ in 0..60 {
            if writer.write_all(&request).is_err() {
                break;
            }
        }
    });
    // A new client is served once the slot is free.
    let start = std::time::Instant::now();
    loop {
        assert!(start.elapsed() < LIMIT, "the slot is still held");
        std::thread::sleep(Duration::from_millis(50));
        let Ok(mut probe) = try_connect(server.addr(0)) else {
            continue;
        };
        let get = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        if probe.write_all(get).is_ok()
            && String::from_utf8_lossy(&probe.read_to_end_lossy()).ends_with(HELLO)
        {
            break;
        }
    }
    drop(c);
    w.join().unwrap();
    server.stop().unwrap();
}

fn keepalive_requests_caps_a_connection(backend: Backend) {
    let config = HttpConfig {
        keepalive_requests: Some(3),
        ..HttpConfig::default()
    };
    let (server, _) = serve(backend, config);
    let mut c = connect_to(&server);
    c.write_all(&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(5))
        .unwrap();
    let got = String::from_utf8(c.read_to_end_lossy()).unwrap();
    assert_eq!(got.matches("HTTP/1.1 200 OK").count(), 3, "{got}");
    assert_eq!(got.matches("Connection: close").count(), 1, "{got}");
    assert!(
        got.ends_with(&format!("Connection: close\r\n\r\n{HELLO}")),
        "{got}"
    );
    server.stop().unwrap();
}

/// A pool of four: when the fourth connection takes the last slot, the connection idle
/// longest is closed to make room, and so on; newcomers are served, the others carry
/// on. (Without this, as many idle clients as the pool holds lock everyone out.)
fn idle_connections_make_room_for_new_ones(backend: Backend) {
    let (server, _) = serve_with(backend, HttpConfig::default(), 16 * 1024, 4);
    let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut idle: Vec<(Client, BufReader<Client>)> = Vec::new();
    for _ in 0..3 {
        let mut c = connect_to(&server);
        c.write_all(get).unwrap();
        let mut r = BufReader::new(c.try_clone());
        assert!(read_one(&mut r, false).ends_with(HELLO));
        idle.push((c, r));
    }
    // The fourth takes the last slot: the first (idle longest) is closed.
    let mut d = connect_to(&server);
    d.write_all(get).unwrap();
    let mut dr = BufReader::new(d.try_clone());
    assert!(read_one(&mut dr, false).ends_with(HELLO));
    let mut rest = Vec::new();
    idle[0].1.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "the oldest idle connection is closed");
    // A fifth is served too (the second idle connection makes room for it).
    let mut e = connect_to(&server);
    e.write_all(get).unwrap();
    let mut er = BufReader::new(e.try_clone());
    assert!(read_one(&mut er, false).ends_with(HELLO));
    // The most recent ones carry on, on their connections.
    for (c, r) in [(&mut d, &mut dr), (&mut e, &mut er)] {
        c.write_all(get).unwrap();
        assert!(read_one(r, false).ends_with(HELLO));
    }
    server.stop().unwrap();
}

/// A 50,000-byte body, in pieces, through an input buffer of 1 KiB (and one of the
/// example's 16 KiB): never held whole, answered once it has all arrived.
fn a_50000_byte_body_streams_through_the_buffer(backend: Backend) {
    let config = HttpConfig {
        max_head: 1000,
        ..HttpConfig::default()
    };
    for input in [1024, 16 * 1024] {
        let (server, _) = serve_with(backend, config, input, 16);
        let mut c = connect_to(&server);
        c.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n")
            .unwrap();
        let mut rng = Rng::new(input as u64);
        let mut body = vec![0u8; 50_000];
        rng.fill(&mut body);
        let mut at = 0;
        while at < body.len() {
            let n = (1 + rng.below(4000) as usize).min(body.len() - at);
            c.write_all(&body[at..at + n]).unwrap();
            at += n;
        }
        // The body bytes are not taken for requests: the next request is answered.
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let got = String::from_utf8(c.read_to_end_lossy()).unwrap();
        assert_eq!(got.matches("HTTP/1.1 200 OK").count(), 2, "{got}");
        assert!(got.ends_with(HELLO), "{got}");
        server.stop().unwrap();
    }
}

/// A chunked body with an extension and a trailer, written one byte at a time, then a
/// request: both answered.
fn chunked_bodies_split_at_every_byte(backend: Backend) {
    let (server, _) = serve(backend, HttpConfig::default());
    let mut c = connect_to(&server);
    let requests = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
        5;name=value\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: t\r\n\r\n\
        GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    for &b in requests.iter() {
        c.write_all(&[b]).unwrap();
    }
    let got = String::from_utf8(c.read_to_end_lossy()).unwrap();
    assert_eq!(got.matches("HTTP/1.1 200 OK").count(), 2, "{got}");
    assert!(got.ends_with(HELLO), "{got}");
    server.stop().unwrap();
}

fn a_stalled_body_gets_408(backend: Backend) {
    let (server, _) = serve(backend, quick(0, 200, 0, 0));
    let mut c = connect_to(&server);
    c.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    let got = String::from_utf8(c.read_to_end_lossy()).unwrap();
    assert!(got.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{got}");
    server.stop().unwrap();
}

/// Every refusal nginx 1.22 answers alike, over a raw socket each: the status, and the
/// close after it.
fn refusals_over_raw_sockets(backend: Backend) {
    let (server, _) = serve(backend, HttpConfig::default());
    let cases: &[(&[u8], &str)] = &[
        // Over 1 MiB: 413 before the body is sent.
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n",
            "413 Content Too Large",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n",
            "413 Content Too Large",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "501 Not Implemented",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo\r\n\r\n",
            "501 Not Implemented",
        ),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", "505 HTTP Version Not Supported"),
        (b"GET / HTTP/3.0\r\n\r\n", "505 HTTP Version Not Supported"),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            "400 Bad Request",
        ),
        (
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "400 Bad Request",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "400 Bad Request",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX",
            "400 Bad Request",
        ),
        (
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            "400 Bad Request",
        ),
        (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", "400 Bad Request"),
        (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "400 Bad Request"),
        (b"GET / HTTP/0.9\r\n\r\n", "400 Bad Request"),
    ];
    for &(request, status) in cases {
        let mut c = connect_to(&server);
        c.write_all(request).unwrap();
        let got = String::from_utf8(c.read_to_end_lossy()).unwrap();
        assert!(
            got.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{}: {got}",
            request.escape_ascii()
        );
        assert!(got.contains("\r\nConnection: close\r\n"), "{got}");
    }
    // HTTP/1.2 is served as HTTP/1.1.
    let mut c = connect_to(&server);
    c.write_all(b"GET / HTTP/1.2\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let got = String::from_utf8(c.read_to_end_lossy()).unwrap();
    assert!(
        got.starts_with("HTTP/1.1 200 OK\r\n") && got.ends_with(HELLO),
        "{got}"
    );
    server.stop().unwrap();
}

/// `100 Continue` comes after the head, before any of the body is sent; the response
/// after the body. None for HTTP/1.0, and none where the body is refused.
fn expect_100_continue_is_answered_before_the_body(backend: Backend) {
    let (server, _) = serve(backend, HttpConfig::default());
    let mut c = connect_to(&server);
    c.write_all(b"PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        .unwrap();
    let continue_ = b"HTTP/1.1 100 Continue\r\n\r\n";
    assert_eq!(c.read_n(continue_.len()), continue_);
    c.write_all(b"hello").unwrap();
    let mut r = BufReader::new(c.try_clone());
    assert!(read_one(&mut r, false).ends_with(HELLO));
    // Too large: 413, no 100.
    let mut c = connect_to(&server);
    c.write_all(
        b"PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 9999999\r\n\r\n",
    )
    .unwrap();
    let got = String::from_utf8(c.read_to_end_lossy()).unwrap();
    assert!(got.starts_with("HTTP/1.1 413 "), "{got}");
    server.stop().unwrap();
}

/// curl's own uploads of a 50,000-byte file: a POST body, a chunked one, and a PUT
/// (`-T`), for which curl asks for `100 Continue` first and gets it (without it, curl
/// waits a second before it sends the body).
fn curl_streams_large_and_chunked_bodies(backend: Backend) {
    if !have_client("curl", "curl") {
        return;
    }
    let (server, url) = serve(backend, HttpConfig::default());
    let dir = TempDir::new("http-body");
    let file = dir.path().join("body");
    let mut body = vec![0u8; 50_000];
    Rng::new(50).fill(&mut body);
    std::fs::write(&file, &body).unwrap();
    let file = file.display().to_string();
    let at_file = format!("@{file}");
    for args in [
        &["--data-binary", &at_file][..],
        &[
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &at_file,
        ],
        &["-T", &file],
    ] {
        let mut all = vec!["-w", "[%{http_code}]"];
        all.extend_from_slice(args);
        all.push(&url);
        assert_eq!(curl(&all), format!("{HELLO}[200]"), "{args:?}");
    }
    let verbose = tool(
        "curl",
        "curl",
        &[
            "-s",
            "-v",
            "-o",
            "/dev/null",
            "--max-time",
            "20",
            "-T",
            &file,
            &url,
        ],
    );
    let err = String::from_utf8_lossy(&verbose.stderr);
    assert!(err.contains("> Expect: 100-continue"), "{err}");
    assert!(err.contains("< HTTP/1.1 100 Continue"), "{err}");
    server.stop().unwrap();
}

#[test]
fn the_example_has_help_for_every_flag() {
    let out = Command::new(example_binary("http-server"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--host",
        "--port",
        "--unixsocket",
        "--stdlib",
        "--aaaa",
        "--max-connections",
        "--max-head",
        "--max-body",
        "--input",
        "--header-timeout",
        "--request-timeout",
        "--body-timeout",
        "--keepalive-timeout",
        "--send-timeout",
        "--keepalive-requests",
        "--output",
        "--coalesce-us",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn the_example_serves_and_stops_on_sigterm_default() {
    the_example_serves_and_stops_on_sigterm(&[]);
}

#[test]
fn the_example_serves_and_stops_on_sigterm_stdlib() {
    the_example_serves_and_stops_on_sigterm(&["--stdlib"]);
}

/// The example on tcp and a unix socket: `--aaaa` answers on both, and SIGTERM stops
/// it with status 0, its socket file removed.
fn the_example_serves_and_stops_on_sigterm(extra: &[&str]) {
    let dir = TempDir::new("http");
    let sock = dir.sock("http.sock");
    let mut child = KillOnDrop(
        Command::new(example_binary("http-server"))
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--unixsocket",
                &sock,
                "--aaaa",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let prefix = "http server listening on tcp://127.0.0.1:";
    assert!(first.starts_with(prefix), "{first}");
    let port = first[prefix.len()..].split(' ').next().unwrap().to_owned();
    let mut second = String::new();
    out.read_line(&mut second).unwrap();
    assert!(
        second.starts_with("http server listening on unix://"),
        "{second}"
    );
    if extra.contains(&"--stdlib") {
        assert!(first.trim_end().ends_with("(poll)"), "{first}");
    }
    // Raw requests (no curl needed): one over each listener.
    let aaaa = "a".repeat(1024);
    let tcp = Bound::Tcp(format!("127.0.0.1:{port}").parse().unwrap());
    for at in [tcp, Bound::Unix(sock.clone().into())] {
        let mut c = connect(&at);
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let response = String::from_utf8(c.read_to_end_lossy()).unwrap();
        assert!(
            response.starts_with("HTTP/1.1 200 OK\r\n"),
            "{at:?}: {response}"
        );
        assert!(
            response.ends_with(&format!("\r\n\r\n{aaaa}")),
            "{at:?}: {response}"
        );
    }
    // A client is connected when the signal comes: it is closed, not left hanging.
    let mut c = connect(&Bound::Tcp(format!("127.0.0.1:{port}").parse().unwrap()));
    c.write_all(b"GET / HT").unwrap();
    stop_example_with_signal(&mut child, libc::SIGTERM, &sock, &mut c);
}

#[test]
fn aaaa_and_unknown_methods() {
    if !have_client("curl", "curl") {
        return;
    }
    let config = HttpConfig {
        body: Body::Aaaa,
        ..HttpConfig::default()
    };
    let (server, url) = serve(Backend::Default, config);
    assert_eq!(curl(&["-X", "BREW", &url]), "a".repeat(1024));
    server.stop().unwrap();
}
