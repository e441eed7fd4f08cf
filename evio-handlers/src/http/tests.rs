//! How each request is read and answered, without a connection: `next_request` over
//! bytes (the handler's `data` runs against real sockets in `tests/http*.rs` and in the
//! simulator's swarm in `tests/sim_http.rs`).

use super::*;

const CAPACITY: usize = 16 * 1024;

fn http() -> Http {
    Http::new(HttpConfig::default())
}

/// What `next_request` says about the front of `buf`: `Some((len, reply))` for a
/// request, `Some((0, reply))` for a refusal, `None` for a partial request.
fn read(http: &Http, buf: &[u8]) -> Option<(usize, Reply)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match http.next_request(buf, &mut headers, CAPACITY) {
        Next::Partial => None,
        Next::Request { len, reply } => Some((len, reply)),
        Next::Refused(reply) => Some((0, reply)),
    }
}

#[test]
fn versions_methods_and_connection_choose_the_response() {
    let cases: &[(&[u8], Reply)] = &[
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", Reply::Ok),
        (b"POST /a?b HTTP/1.1\r\nHost: x\r\n\r\n", Reply::Ok),
        (b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", Reply::Ok),
        (b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", Reply::HeadOk),
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
    ];
    for &(request, expected) in cases {
        assert_eq!(
            read(&http(), request),
            Some((request.len(), expected)),
            "{}",
            String::from_utf8_lossy(request)
        );
    }
}

#[test]
fn malformed_requests_get_400() {
    let cases: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\n\r\n",                                  // no Host
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",            // two
        b"GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n",            // two, in 1.0 too
        b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",                       // not HTTP/1.x
        b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",                      // two spaces
        b"GET / HTTP/1.1\r\nHost x\r\n\r\n",                        // no colon
        b"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n",                    // not a token
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",            // TLS hello
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", // signed
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1,1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    ];
    for &request in cases {
        assert_eq!(
            read(&http(), request),
            Some((0, Reply::BadRequest)),
            "{}",
            String::from_utf8_lossy(request)
        );
    }
}

#[test]
fn bodies_are_waited_for_limited_and_chunked_ones_refused() {
    let h = http();
    let req = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    assert_eq!(read(&h, req), Some((req.len(), Reply::Ok)));
    assert_eq!(
        read(&h, &req[..req.len() - 1]),
        None,
        "the body is waited for"
    );
    // Equal duplicate lengths are allowed.
    let dup = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi";
    assert_eq!(read(&h, dup), Some((dup.len(), Reply::Ok)));
    // The next request starts right after the body.
    let two = [&req[..], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"].concat();
    assert_eq!(read(&h, &two), Some((req.len(), Reply::Ok)));
    // Over the limit: 413 at once, before the body arrives.
    let big = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8193\r\n\r\n";
    assert_eq!(read(&h, big), Some((0, Reply::ContentTooLarge)));
    let at_limit = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8192\r\n\r\n";
    assert_eq!(read(&h, at_limit), None);
    // A body that would not fit the input buffer after its head: 413 too.
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let fits = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 60\r\n\r\n";
    assert!(matches!(
        h.next_request(fits, &mut headers, 100),
        Next::Refused(Reply::ContentTooLarge)
    ));
    // Chunked (or any transfer coding): 411.
    let chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(read(&h, chunked), Some((0, Reply::LengthRequired)));
}

#[test]
fn heads_over_the_limit_get_431_however_they_arrive() {
    let config = HttpConfig {
        max_head: 64,
        ..HttpConfig::default()
    };
    let h = Http::new(config);
    let pad = |n: usize| {
        let mut r = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
        r.resize(r.len() + n, b'p');
        r.extend_from_slice(b"\r\n\r\n");
        r
    };
    let at_limit = pad(64 - pad(0).len());
    assert_eq!(at_limit.len(), 64);
    assert_eq!(read(&h, &at_limit), Some((64, Reply::Ok)));
    let over = pad(65 - pad(0).len());
    assert_eq!(read(&h, &over), Some((0, Reply::HeaderFieldsTooLarge)));
    for cut in 0..over.len() {
        let expected = if cut < 64 {
            None
        } else {
            Some((0, Reply::HeaderFieldsTooLarge))
        };
        assert_eq!(read(&h, &over[..cut]), expected, "cut at {cut}");
    }
    // A full input buffer without a whole head, whatever the limit.
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    assert!(matches!(
        http().next_request(&over[..40], &mut headers, 40),
        Next::Refused(Reply::HeaderFieldsTooLarge)
    ));
    // More fields than the array holds.
    let mut many = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..MAX_HEADERS {
        many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(read(&http(), &many), Some((0, Reply::HeaderFieldsTooLarge)));
}

/// Any cut of a valid request is partial, so a request split across reads at any byte
/// gets the answer it gets whole.
#[test]
fn every_prefix_of_a_valid_request_is_partial() {
    let h = http();
    for request in [
        &b"GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\
           Connection: keep-alive\r\n\r\n"[..],
        b"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
        b"HEAD / HTTP/1.1\nHost: x\n\n",
    ] {
        let whole = read(&h, request).expect("whole");
        assert_eq!(whole.0, request.len());
        for cut in 0..request.len() {
            assert_eq!(read(&h, &request[..cut]), None, "cut at {cut}");
        }
    }
}

/// A stream of arbitrary bytes never panics the reader, and every answer stays within
/// the bytes it was given.
#[test]
fn arbitrary_bytes_never_panic() {
    let h = http();
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"GET HEAD/ HTTP/1.01\r\n:Host:Content-Length:Connection,close keep-alive0123456789\x00\xff";
    for _ in 0..20_000 {
        let len = (next() % 120) as usize;
        let buf: Vec<u8> = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        if let Some((n, _)) = read(&h, &buf) {
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
