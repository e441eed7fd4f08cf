//! The http handler's reference model and workload.

use std::collections::VecDeque;
use std::time::Duration;

use evio_proto::Instant;
use evio_sim::{Constraints, Model, ModelError, Rng};

use crate::http::{Body, DATE_LEN, Http, HttpConfig, MAX_HEADERS, parse_imf_fixdate};

/// The configuration the swarm and the simulator's command line run the handler with:
/// small limits, so that requests over them are common in [`http_requests`], and a
/// head timeout of 50 ms of virtual time. The input buffer must hold `max_head +
/// max_body` bytes ([`HttpModel`] assumes it does) and the output buffer
/// [`Http::longest_response`].
pub const SIM_CONFIG: HttpConfig = HttpConfig {
    body: Body::Hello,
    max_head: 200,
    max_body: 100,
    head_timeout: Some(Duration::from_millis(50)),
};

/// A wall clock that follows the simulator's virtual clock, from 0.9 s before 14 Nov
/// 2023 22:13:20 UTC: deterministic (a seed replays byte for byte), and the `Date`
/// changes second 0.1 s into a run, so the handler's once-a-second refresh is
/// exercised.
pub fn virtual_clock(now: Instant) -> Duration {
    Duration::from_millis(1_699_999_999_100) + Duration::from_nanos(now.as_nanos())
}

/// The handler as the swarm runs it ([`SIM_CONFIG`], [`virtual_clock`]), with its
/// model.
pub fn http_pair() -> (Http, HttpModel) {
    (
        Http::with_clock(SIM_CONFIG, virtual_clock),
        HttpModel::new(SIM_CONFIG),
    )
}

/// The buffers the http handler is simulated with: an input buffer that holds the
/// longest request [`SIM_CONFIG`] accepts (the model assumes it), an output buffer
/// that holds one response at least (so pipelined responses often wait for room).
pub fn http_constraints() -> Constraints {
    Constraints {
        min_input_capacity: SIM_CONFIG.max_head + SIM_CONFIG.max_body,
        min_output_capacity: http_pair().0.longest_response(),
        ..Constraints::none()
    }
}

/// The reference model of [`Http`]: exactly which bytes each client receives.
///
/// The handler's answers depend on nothing but the bytes a client sent (no state is
/// shared between connections), so the model reads each client's stream as the server
/// reads it ([`Model::input`]) and predicts, in order, one response per request:
///
/// - `200 OK` with the body (no body for `HEAD`), with `Connection: close` when the
///   request asks to close (HTTP/1.1 `Connection: close`, HTTP/1.0 without
///   `keep-alive`) and `Connection: keep-alive` for an HTTP/1.0 keep-alive request;
///   after a closing response, nothing more;
/// - the error responses, each closing: 400 for a malformed request, 411 for a
///   transfer coding, 413 for a body over `max_body`, 431 for a head over `max_head`
///   or more than [`MAX_HEADERS`] fields;
/// - one `408 Request Timeout`, then nothing, allowed only where every whole request
///   has been answered and a partial one waits (the model does not see time: it
///   accepts the 408 where the handler may send it).
///
/// The `Date` value is not predicted byte for byte: any well-formed IMF-fixdate
/// (weekday matching the date) is accepted where it belongs, and on one connection the
/// dates never go back. The syntax of a request head is httparse's (the model calls it
/// with the handler's [`MAX_HEADERS`]); what the fields mean, the limits, the choice of
/// response and its bytes are the model's own.
///
/// [`Model::consumed`] checks the handler's side: it consumes whole answered requests
/// only, never a refused one or part of one. The model assumes an input buffer of at
/// least `max_head + max_body` bytes (so the buffer's size never decides an answer).
#[derive(Debug)]
pub struct HttpModel {
    config: HttpConfig,
}

impl HttpModel {
    /// The model of a handler configured with `config`.
    pub fn new(config: HttpConfig) -> Self {
        HttpModel { config }
    }
}

/// One byte a client expects: this byte, or a byte of a `Date` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Byte(u8),
    Date,
}

/// [`HttpModel`]'s state for one connection.
#[derive(Debug, Default)]
pub struct HttpClient {
    /// Bytes read by the server after the last whole request: the next request so far.
    partial: Vec<u8>,
    /// Stream offsets where the requests answered with 200 end, not yet consumed.
    ends: VecDeque<u64>,
    /// Bytes of the stream read whole into requests (where `partial` starts).
    parsed: u64,
    /// Bytes the handler consumed.
    consumed: u64,
    /// What the client is still owed, in order.
    expected: VecDeque<Expect>,
    /// The `Date` value being received.
    date: Vec<u8>,
    /// The latest `Date` received, in seconds.
    last_date: u64,
    /// A closing response is predicted: nothing comes after it.
    finished: bool,
    /// Bytes received so far.
    received: u64,
}

/// What the model makes of the front of a stream.
enum Read {
    Partial,
    /// A request of this many bytes, answered 200 (`closes`: with `Connection: close`).
    Ok {
        len: usize,
        head_only: bool,
        connection: Option<&'static str>,
        closes: bool,
    },
    /// A refusal with this status (code and reason).
    Refused(&'static str),
}

impl HttpModel {
    fn read(&self, buf: &[u8]) -> Read {
        let max_head = self.config.max_head;
        let window = &buf[..buf.len().min(max_head)];
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let head = match request.parse(window) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if buf.len() >= max_head => {
                return Read::Refused("431 Request Header Fields Too Large");
            }
            Ok(httparse::Status::Partial) => return Read::Partial,
            Err(httparse::Error::TooManyHeaders) => {
                return Read::Refused("431 Request Header Fields Too Large");
            }
            Err(_) => return Read::Refused("400 Bad Request"),
        };
        let fields: Vec<(String, String)> = request
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).to_ascii_lowercase(),
                )
            })
            .collect();
        let values = |name: &str| -> Vec<&str> {
            fields
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let version = request.version;
        let hosts = values("host").len();
        if hosts > 1 || (version == Some(1) && hosts == 0) {
            return Read::Refused("400 Bad Request");
        }
        let lengths = values("content-length");
        // Each value plain digits (no sign, no list; at most 18), all the same number.
        let mut parsed = Vec::new();
        for value in &lengths {
            if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Read::Refused("400 Bad Request");
            }
            parsed.push(value.parse::<u64>().expect("digits"));
        }
        if parsed.windows(2).any(|w| w[0] != w[1]) {
            return Read::Refused("400 Bad Request");
        }
        let length = parsed.first().copied().unwrap_or(0);
        if !values("transfer-encoding").is_empty() {
            return Read::Refused("411 Length Required");
        }
        if length > self.config.max_body as u64 {
            return Read::Refused("413 Content Too Large");
        }
        let len = head + length as usize;
        if buf.len() < len {
            return Read::Partial;
        }
        let tokens: Vec<&str> = values("connection")
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(|t| t.trim_matches(|c: char| c.is_ascii_whitespace()))
            .collect();
        let close = tokens.contains(&"close");
        let keep_alive = tokens.contains(&"keep-alive");
        let (closes, connection) = match version {
            Some(1) if close => (true, Some("close")),
            Some(1) => (false, None),
            _ if close || !keep_alive => (true, Some("close")),
            _ => (false, Some("keep-alive")),
        };
        Read::Ok {
            len,
            head_only: request.method == Some("HEAD"),
            connection,
            closes,
        }
    }

    /// The bytes of a response, with `Date` bytes where the date goes.
    fn response(
        &self,
        status: &str,
        body: &[u8],
        head_only: bool,
        connection: Option<&str>,
    ) -> Vec<Expect> {
        let mut out: Vec<Expect> = format!("HTTP/1.1 {status}\r\nServer: evio\r\nDate: ")
            .bytes()
            .map(Expect::Byte)
            .collect();
        out.extend([Expect::Date; DATE_LEN]);
        let mut rest = format!(
            "\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n",
            body.len()
        )
        .into_bytes();
        if let Some(c) = connection {
            rest.extend_from_slice(format!("Connection: {c}\r\n").as_bytes());
        }
        rest.extend_from_slice(b"\r\n");
        if !head_only {
            rest.extend_from_slice(body);
        }
        out.extend(rest.into_iter().map(Expect::Byte));
        out
    }

    fn error(&self, status: &str) -> Vec<Expect> {
        // The body is the reason phrase on a line.
        let body = format!("{}\r\n", &status[4..]);
        self.response(status, body.as_bytes(), false, Some("close"))
    }

    fn body(&self) -> &'static [u8] {
        match self.config.body {
            Body::Hello => b"Hello World!\r\n",
            Body::Aaaa => &[b'a'; 1024],
        }
    }
}

impl Model for HttpModel {
    type Conn = HttpClient;

    fn input(&mut self, conn: &mut HttpClient, bytes: &[u8]) {
        if conn.finished {
            return; // the handler closes after its last response: the rest is unread
        }
        conn.partial.extend_from_slice(bytes);
        while !conn.finished && !conn.partial.is_empty() {
            match self.read(&conn.partial) {
                Read::Partial => break,
                Read::Refused(status) => {
                    conn.expected.extend(self.error(status));
                    conn.finished = true;
                }
                Read::Ok {
                    len,
                    head_only,
                    connection,
                    closes,
                } => {
                    let response = self.response("200 OK", self.body(), head_only, connection);
                    conn.expected.extend(response);
                    conn.partial.drain(..len);
                    conn.parsed += len as u64;
                    conn.ends.push_back(conn.parsed);
                    conn.finished = closes;
                }
            }
        }
    }

    fn consumed(&mut self, conn: &mut HttpClient, bytes: &[u8], _: Instant) {
        if bytes.is_empty() {
            return;
        }
        conn.consumed += bytes.len() as u64;
        // Whole requests, each answered with 200 (a refused request is never consumed).
        let mut end = None;
        while conn.ends.front().is_some_and(|&e| e <= conn.consumed) {
            end = conn.ends.pop_front();
        }
        assert_eq!(
            end,
            Some(conn.consumed),
            "the handler consumed up to byte {} of its input, which is not the end of a \
             request it answered",
            conn.consumed
        );
    }

    fn output(&mut self, conn: &mut HttpClient, bytes: &[u8]) -> Result<(), ModelError> {
        for &b in bytes {
            if conn.expected.is_empty() && !conn.finished && !conn.partial.is_empty() {
                // Every whole request is answered and a partial one waits: the head
                // timeout may have fired.
                conn.expected.extend(self.error("408 Request Timeout"));
                conn.finished = true;
            }
            let fail = |detail: String| ModelError {
                offset: conn.received,
                detail,
            };
            match conn.expected.pop_front() {
                Some(Expect::Byte(e)) if e == b => {}
                Some(Expect::Byte(e)) => {
                    return Err(fail(format!(
                        "got {:?}, expected {:?}",
                        b as char, e as char
                    )));
                }
                Some(Expect::Date) => {
                    conn.date.push(b);
                    if conn.date.len() == DATE_LEN {
                        let Some(secs) = parse_imf_fixdate(&conn.date) else {
                            return Err(fail(format!(
                                "not an IMF-fixdate: {:?}",
                                String::from_utf8_lossy(&conn.date)
                            )));
                        };
                        if secs < conn.last_date {
                            return Err(fail(format!(
                                "the date went back: {:?}",
                                String::from_utf8_lossy(&conn.date)
                            )));
                        }
                        conn.last_date = secs;
                        conn.date.clear();
                    }
                }
                None => {
                    return Err(fail(format!(
                        "got {:?} where no response is owed",
                        b as char
                    )));
                }
            }
            conn.received += 1;
        }
        Ok(())
    }

    fn owed(&self, conn: &HttpClient) -> usize {
        conn.expected.len()
    }

    fn handler_wakes(&self) -> bool {
        false
    }
}

/// HTTP traffic: mostly valid requests (GET, HEAD, POST and PUT with bodies, other
/// methods; HTTP/1.1 and HTTP/1.0, keep-alive and `Connection: close`; CRLF or bare LF
/// line ends; extra header fields of varying length), some over [`SIM_CONFIG`]'s
/// limits, some refused (chunked, no `Host`, bad `Content-Length`), and now and then
/// garbage. The simulator cuts each client's stream at random points, so requests
/// arrive split at any byte and pipelined several to a read.
pub fn http_requests(_client: u16, rng: &mut Rng) -> Vec<u8> {
    let roll = rng.below(200);
    if roll < 3 {
        // Garbage: random bytes, a malformed request line or field.
        return match rng.below(3) {
            0 => (0..rng.range(1, 40))
                .map(|_| rng.next_u64() as u8)
                .collect(),
            1 => b"GET /\r\nHost: x\r\n\r\n".to_vec(),
            _ => b"GET / HTTP/1.1\r\nHost x\r\n\r\n".to_vec(),
        };
    }
    let eol: &[u8] = if rng.below(20) == 0 { b"\n" } else { b"\r\n" };
    let method: &[u8] = match rng.below(12) {
        0..=5 => b"GET",
        6 | 7 => b"HEAD",
        8 | 9 => b"POST",
        10 => b"PUT",
        _ => b"OPTIONS",
    };
    let path: &[u8] = match rng.below(4) {
        0 => b"/",
        1 => b"/index.html",
        2 => b"/a/b?c=d&e=f",
        _ => b"/plaintext",
    };
    let http10 = rng.below(6) == 0;
    let mut r = Vec::new();
    r.extend_from_slice(method);
    r.push(b' ');
    r.extend_from_slice(path);
    r.extend_from_slice(if http10 { b" HTTP/1.0" } else { b" HTTP/1.1" });
    r.extend_from_slice(eol);
    let field = |r: &mut Vec<u8>, name: &[u8], value: &[u8]| {
        r.extend_from_slice(name);
        r.extend_from_slice(b": ");
        r.extend_from_slice(value);
        r.extend_from_slice(eol);
    };
    // HTTP/1.1 needs one Host (a few requests leave it out or send two: 400).
    match (http10, rng.below(100)) {
        (false, 0) => {}
        (false, 1) => {
            field(&mut r, b"Host", b"a");
            field(&mut r, b"host", b"b");
        }
        (false, _) => field(&mut r, b"Host", b"127.0.0.1:8080"),
        (true, n) if n < 50 => field(&mut r, b"Host", b"localhost"),
        (true, _) => {}
    }
    for _ in 0..rng.below(3) {
        match rng.below(4) {
            0 => field(&mut r, b"User-Agent", b"evio-sim/1"),
            1 => field(&mut r, b"Accept", b"*/*"),
            2 => field(&mut r, b"accept-encoding", b"gzip, deflate"),
            _ => {
                // Now and then long enough to pass `max_head` (200).
                let len = if rng.below(12) == 0 {
                    rng.range(100, 300)
                } else {
                    rng.range(0, 40)
                };
                field(&mut r, b"X-Pad", &vec![b'p'; len as usize]);
            }
        }
    }
    match rng.below(40) {
        0 => field(&mut r, b"Connection", b"close"),
        1 => field(&mut r, b"Connection", b"Upgrade, Close"),
        2..=5 if http10 => field(&mut r, b"Connection", b"close"),
        _ if http10 => field(&mut r, b"Connection", b"Keep-Alive"),
        6 => field(&mut r, b"Connection", b"keep-alive"),
        _ => {}
    }
    let mut body = Vec::new();
    if method == b"POST" || method == b"PUT" {
        match rng.below(30) {
            0 => field(&mut r, b"Transfer-Encoding", b"chunked"),
            1 => field(&mut r, b"Content-Length", b"12, 12"),
            2 => field(&mut r, b"Content-Length", b"150"), // over `max_body` (100)
            3 => {
                field(&mut r, b"Content-Length", b"3");
                field(&mut r, b"Content-Length", b"4");
            }
            _ => {
                let len = rng.range(0, 80) as usize;
                body = (0..len).map(|_| rng.next_u64() as u8).collect();
                field(&mut r, b"Content-Length", len.to_string().as_bytes());
            }
        }
    }
    r.extend_from_slice(eol);
    r.extend_from_slice(&body);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect_bytes(expected: &VecDeque<Expect>) -> String {
        expected
            .iter()
            .map(|e| match e {
                Expect::Byte(b) => *b as char,
                Expect::Date => '#',
            })
            .collect()
    }

    #[test]
    fn the_model_predicts_pipelined_responses_and_stops_after_a_close() {
        let mut model = HttpModel::new(SIM_CONFIG);
        let mut conn = HttpClient::default();
        model.input(
            &mut conn,
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HT",
        );
        let date = "#".repeat(DATE_LEN);
        let head = format!(
            "HTTP/1.1 200 OK\r\nServer: evio\r\nDate: {date}\r\nContent-Type: text/plain\r\n\
             Content-Length: 14\r\n"
        );
        assert_eq!(
            expect_bytes(&conn.expected),
            format!(
                "{head}\r\nHello World!\r\n{head}Connection: keep-alive\r\n\r\n\
                 {head}Connection: close\r\n\r\nHello World!\r\n"
            )
        );
        assert!(conn.finished);
    }

    #[test]
    fn the_model_accepts_a_date_but_not_a_wrong_one() {
        let mut model = HttpModel::new(SIM_CONFIG);
        let ok = b"HTTP/1.1 200 OK\r\nServer: evio\r\nDate: Tue, 14 Nov 2023 22:13:20 GMT\r\n";
        let mut conn = HttpClient::default();
        model.input(&mut conn, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        // Byte by byte, as a short read delivers it.
        for b in ok {
            model.output(&mut conn, &[*b]).unwrap();
        }
        let mut conn = HttpClient::default();
        model.input(&mut conn, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let bad = b"HTTP/1.1 200 OK\r\nServer: evio\r\nDate: Wed, 14 Nov 2023 22:13:20 GMT\r\n";
        assert!(model.output(&mut conn, bad).is_err());
    }

    #[test]
    fn a_408_is_allowed_only_while_a_request_is_partial() {
        let mut model = HttpModel::new(SIM_CONFIG);
        let timeout = b"HTTP/1.1 408 Request Timeout\r\n";
        let mut idle = HttpClient::default();
        assert!(model.output(&mut idle, timeout).is_err());
        let mut partial = HttpClient::default();
        model.input(&mut partial, b"GET / HT");
        model.output(&mut partial, timeout).unwrap();
        assert!(partial.finished);
    }

    #[test]
    #[should_panic(expected = "not the end of a request it answered")]
    fn consuming_part_of_a_request_is_caught() {
        let mut model = HttpModel::new(SIM_CONFIG);
        let mut conn = HttpClient::default();
        model.input(&mut conn, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        model.consumed(&mut conn, b"GET / ", Instant::ZERO);
    }

    #[test]
    fn the_workload_makes_mostly_valid_requests() {
        let model = HttpModel::new(SIM_CONFIG);
        let mut rng = Rng::new(3);
        let (mut ok, mut refused) = (0, 0);
        for _ in 0..2000 {
            let m = http_requests(0, &mut rng);
            match model.read(&m) {
                Read::Ok { len, .. } => {
                    assert_eq!(len, m.len(), "{}", String::from_utf8_lossy(&m));
                    ok += 1;
                }
                Read::Refused(_) => refused += 1,
                Read::Partial => panic!("partial: {}", String::from_utf8_lossy(&m)),
            }
        }
        assert!(ok > 1700 && refused > 40, "{ok} ok, {refused} refused");
    }
}
