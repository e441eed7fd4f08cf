//! How each request head is read and answered, without a connection: `read_head` over
//! bytes (bodies are in `body.rs`; the handler's `data` runs against real sockets in
//! `tests/http*.rs` and in the simulator's swarm in `tests/sim_http.rs`).

use super::*;

const CAPACITY: usize = 16 * 1024;

/// What `read_head` says about the front of `buf` under the default limits:
/// `Some((len, reply, body))` for a request, `Some((0, reply, None))` for a refusal,
/// `None` for a partial head.
fn read_with(
    config: &HttpConfig,
    buf: &[u8],
    capacity: usize,
) -> Option<(usize, Reply, Option<Incoming>)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match read_head(
        buf,
        &mut headers,
        config.max_head.min(capacity),
        config.max_body,
    ) {
        Head::Partial => None,
        Head::Request {
            len, reply, body, ..
        } => Some((len, reply, body)),
        Head::Refused(reply) => Some((0, reply, None)),
    }
}

fn read(buf: &[u8]) -> Option<(usize, Reply)> {
    read_with(&HttpConfig::default(), buf, CAPACITY).map(|(n, r, _)| (n, r))
}

#[test]
fn versions_methods_and_connection_choose_the_response() {
    let cases: &[(&[u8], Reply)] = &[
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", Reply::Ok),
        (b"POST /a?b HTTP/1.1\r\nHost: x\r\n\r\n", Reply::Ok),
        (b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", Reply::Ok),
        (b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", Reply::HeadOk),
        (b"GET http://x/y HTTP/1.1\r\nHost: x\r\n\r\n", Reply::Ok),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Reply::OkClose,
        ),
        (
            b"GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\nHost: x\r\n\r\n",
            Reply::OkClose,
        ),
        (
            b"HEAD / HTTP/1.1\r\nHost: x\r\nconnection:close\r\n\r\n",
            Reply::HeadOkClose,
        ),
        (b"GET / HTTP/1.0\r\n\r\n", Reply::OkClose),
        (
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            Reply::OkKeepAlive,
        ),
        (
            b"GET / HTTP/1.0\r\nConnection: Keep-Alive, close\r\n\r\n",
            Reply::OkClose,
        ),
        (
            b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            Reply::HeadOkKeepAlive,
        ),
        (b"HEAD / HTTP/1.0\r\n\r\n", Reply::HeadOkClose),
        // A method is case-sensitive: `head` is not HEAD.
        (b"head / HTTP/1.1\r\nHost: x\r\n\r\n", Reply::Ok),
        // Bare line feeds are accepted, as httparse does.
        (b"GET / HTTP/1.1\nHost: x\n\n", Reply::Ok),
        // A later HTTP/1.x is served as HTTP/1.1 (and needs its Host).
        (b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", Reply::Ok),
        (
            b"HEAD / HTTP/1.9\nHost: x\nConnection: close\n\n",
            Reply::HeadOkClose,
        ),
    ];
    for &(request, expected) in cases {
        assert_eq!(
            read(request),
            Some((request.len(), expected)),
            "{}",
            String::from_utf8_lossy(request)
        );
    }
}

#[test]
fn refusals() {
    let cases: &[(&[u8], Reply)] = &[
        (b"GET / HTTP/1.1\r\n\r\n", Reply::BadRequest), // no Host
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Reply::BadRequest), // two
        (b"GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n", Reply::BadRequest), // in 1.0 too
        (b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", Reply::BadRequest), // two spaces
        (b"GET / HTTP/1.1\r\nHost x\r\n\r\n", Reply::BadRequest), // no colon
        (b"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n", Reply::BadRequest), // not a token
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", Reply::BadRequest), // TLS hello
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", Reply::BadRequest),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1,1\r\n\r\n", Reply::BadRequest),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n", Reply::BadRequest),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
            Reply::BadRequest,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            Reply::BadRequest,
        ),
        // Versions: 505 for another major version, 400 for a malformed one.
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", Reply::VersionNotSupported),
        (b"GET / HTTP/3.0\r\n\r\n", Reply::VersionNotSupported),
        (b"GET / HTTP/9.0\r\n", Reply::VersionNotSupported),
        (b"GET / HTTP/10.0\r\n", Reply::BadRequest), // one digit each side
        (b"GET / HTTP/1.10\r\nHost: x\r\n\r\n", Reply::BadRequest),
        (b"GET / HTTP/0.9\r\n", Reply::BadRequest),
        (b"GET / http/1.1\r\n", Reply::BadRequest),
        (b"GET / HTTP/1.\r\n", Reply::BadRequest),
        (b"GET / HTTP/1.2\r\n\r\n", Reply::BadRequest), // as 1.1: no Host
        (b"GET / HTTP/1.2\r\nHost x\r\n\r\n", Reply::BadRequest),
        // Targets and CONNECT, as nginx answers them.
        (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", Reply::BadRequest),
        (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", Reply::BadRequest),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Reply::BadRequest),
        (b"CONNECT host:443 HTTP/1.1\r\nHost: x\r\n\r\n", Reply::BadRequest),
        (b"CONNECT / HTTP/1.1\r\nHost: x\r\n\r\n", Reply::BadRequest),
        (b"GET host:443 HTTP/1.1\r\nHost: x\r\n\r\n", Reply::BadRequest),
        (b"GET http:/x HTTP/1.1\r\nHost: x\r\n\r\n", Reply::BadRequest),
        // Transfer codings.
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            Reply::NotImplemented,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n",
            Reply::NotImplemented,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            Reply::NotImplemented,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            Reply::BadRequest,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            Reply::BadRequest,
        ),
        (
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            Reply::BadRequest,
        ),
        // Over the body limit: 413 at once, before the body arrives.
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n",
            Reply::ContentTooLarge,
        ),
    ];
    for &(request, expected) in cases {
        assert_eq!(
            read(request),
            Some((0, expected)),
            "{}",
            String::from_utf8_lossy(request)
        );
    }
}

#[test]
fn bodies_are_framed_by_length_or_chunks() {
    let config = HttpConfig::default();
    let head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n";
    let req = [&head[..], b"hello"].concat();
    assert_eq!(
        read_with(&config, &req, CAPACITY),
        Some((head.len(), Reply::Ok, Some(Incoming::Length(5))))
    );
    // The body need not have arrived, nor fit the buffer: the head is the request.
    assert_eq!(
        read_with(&config, head, head.len()),
        Some((head.len(), Reply::Ok, Some(Incoming::Length(5))))
    );
    let at_limit = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n";
    assert_eq!(
        read_with(&config, at_limit, 100).map(|r| r.2),
        Some(Some(Incoming::Length(1 << 20)))
    );
    // No body: none, zero length, or a GET.
    let zero = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(read_with(&config, zero, CAPACITY).map(|r| r.2), Some(None));
    // Equal duplicate lengths are allowed.
    let dup = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n";
    assert_eq!(
        read_with(&config, dup, CAPACITY).map(|r| r.2),
        Some(Some(Incoming::Length(2)))
    );
    // Chunked, any case, on any method.
    for chunked in [
        &b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  Chunked \r\n\r\n",
    ] {
        assert_eq!(
            read_with(&config, chunked, CAPACITY).map(|r| r.2),
            Some(Some(Incoming::chunked()))
        );
    }
}

#[test]
fn continue_is_expected_only_of_an_http11_request_with_a_body() {
    let expects = |request: &[u8]| {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match read_head(request, &mut headers, 8192, 1 << 20) {
            Head::Request {
                expect_continue, ..
            } => expect_continue,
            other => panic!("{other:?}"),
        }
    };
    assert!(expects(
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
    ));
    assert!(expects(
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect:  100-Continue \r\nTransfer-Encoding: chunked\r\n\r\n"
    ));
    assert!(!expects(
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"
    ));
    assert!(!expects(
        b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n"
    ));
    assert!(!expects(
        b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
    ));
    assert!(!expects(
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: foo\r\nContent-Length: 5\r\n\r\n"
    ));
}

#[test]
fn heads_over_the_limit_get_431_however_they_arrive() {
    let config = HttpConfig {
        max_head: 64,
        ..HttpConfig::default()
    };
    let read = |buf: &[u8]| read_with(&config, buf, CAPACITY).map(|(n, r, _)| (n, r));
    let pad = |n: usize| {
        let mut r = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
        r.resize(r.len() + n, b'p');
        r.extend_from_slice(b"\r\n\r\n");
        r
    };
    let at_limit = pad(64 - pad(0).len());
    assert_eq!(at_limit.len(), 64);
    assert_eq!(read(&at_limit), Some((64, Reply::Ok)));
    let over = pad(65 - pad(0).len());
    assert_eq!(read(&over), Some((0, Reply::HeaderFieldsTooLarge)));
    for cut in 0..over.len() {
        let expected = if cut < 64 {
            None
        } else {
            Some((0, Reply::HeaderFieldsTooLarge))
        };
        assert_eq!(read(&over[..cut]), expected, "cut at {cut}");
    }
    // The same through the path for later versions.
    let over12 = String::from_utf8(over.clone())
        .unwrap()
        .replace("1.1", "1.2");
    assert_eq!(
        read(over12.as_bytes()),
        Some((0, Reply::HeaderFieldsTooLarge))
    );
    // A full input buffer without a whole head, whatever the limit.
    assert_eq!(
        read_with(&HttpConfig::default(), &over[..40], 40).map(|(n, r, _)| (n, r)),
        Some((0, Reply::HeaderFieldsTooLarge))
    );
    // More fields than the array holds.
    let mut many = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..MAX_HEADERS {
        many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(
        read_with(&HttpConfig::default(), &many, CAPACITY).map(|(n, r, _)| (n, r)),
        Some((0, Reply::HeaderFieldsTooLarge))
    );
}

/// Any cut of a valid head is partial, and a refused one is refused from the byte that
/// decides it on: a request split across reads at any byte gets the answer it gets
/// whole.
#[test]
fn every_prefix_of_a_head_is_partial_or_answered_alike() {
    for request in [
        &b"GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\
           Connection: keep-alive\r\n\r\n"[..],
        b"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\n",
        b"HEAD / HTTP/1.1\nHost: x\n\n",
        b"GET / HTTP/1.2\r\nHost: x\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let whole = read(request).expect("whole");
        for cut in 0..request.len() {
            let got = read(&request[..cut]);
            assert!(
                got.is_none() || (whole.0 == 0 && got == Some(whole)),
                "cut at {cut} of {}: {got:?}, whole {whole:?}",
                request.escape_ascii()
            );
        }
    }
}

/// A stream of arbitrary bytes never panics the reader, and every answer stays within
/// the bytes it was given.
#[test]
fn arbitrary_bytes_never_panic() {
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"GET HEAD/ HTTP/1.01239\r\n:Host:Content-Length:Transfer-Encoding:chunked:Connection,close keep-alive0123456789*\x00\xff";
    for _ in 0..20_000 {
        let len = (next() % 120) as usize;
        let buf: Vec<u8> = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        if let Some((n, _)) = read(&buf) {
            assert!(n <= buf.len());
        }
    }
}

#[test]
fn the_date_follows_the_wall_clock_and_is_read_once_per_second() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    // Wall time = 1_700_000_000.25 s + the loop's time.
    fn clock(now: Instant) -> Duration {
        CALLS.fetch_add(1, Ordering::SeqCst);
        Duration::from_millis(1_700_000_000_250) + Duration::from_nanos(now.as_nanos())
    }
    let mut h = Http::with_clock(HttpConfig::default(), clock);
    let date = |h: &Http| {
        let ok = h.responses.get(Reply::Ok);
        parse_imf_fixdate(&ok[37..37 + DATE_LEN]).expect("a date")
    };
    h.refresh_date(Instant::ZERO);
    assert_eq!(date(&h), 1_700_000_000);
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    // Within the same wall second the clock is not read again.
    for ms in (0..750).step_by(10) {
        h.refresh_date(Instant::from_nanos(ms * 1_000_000));
    }
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(date(&h), 1_700_000_000);
    // At .75 s of loop time the wall clock turns a second.
    h.refresh_date(Instant::from_nanos(750_000_000));
    assert_eq!(date(&h), 1_700_000_001);
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);
    h.refresh_date(Instant::from_nanos(7_750_000_000));
    assert_eq!(date(&h), 1_700_000_008);
}
