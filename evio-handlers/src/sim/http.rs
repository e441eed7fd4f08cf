//! The http handler's reference model and workload.

use std::collections::VecDeque;
use std::time::Duration;

use evio_proto::{Action, ConnInfo, Instant};
use evio_sim::{Constraints, Model, ModelError, Rng};

use crate::http::{
    Body, CLOSE_DELAY, DATE_LEN, Http, HttpConfig, MAX_CHUNK_EXT, MAX_HEADERS, parse_imf_fixdate,
};

/// The configuration the swarm and the simulator's command line run the handler with:
/// small limits, so that requests over them are common in [`http_requests`] (bodies up
/// to 1000 bytes, several times the smallest input buffer, so they stream through it),
/// every timeout a few tens of milliseconds of virtual time, and at most 6 requests per
/// connection. The input buffer must hold `max_head` bytes ([`HttpModel`] assumes it
/// does) and the output buffer [`Http::longest_response`].
pub const SIM_CONFIG: HttpConfig = HttpConfig {
    body: Body::Hello,
    max_head: 200,
    max_body: 1000,
    head_timeout: Some(Duration::from_millis(50)),
    body_timeout: Some(Duration::from_millis(40)),
    keepalive_timeout: Some(Duration::from_millis(120)),
    send_timeout: Some(Duration::from_millis(30)),
    keepalive_requests: Some(6),
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
/// longest head [`SIM_CONFIG`] accepts (the model assumes it; bodies stream through
/// it), an output buffer that holds one response at least (so pipelined responses
/// often wait for room).
pub fn http_constraints() -> Constraints {
    Constraints {
        min_input_capacity: SIM_CONFIG.max_head,
        min_output_capacity: http_pair().0.longest_response(),
        ..Constraints::none()
    }
}

/// The reference model of [`Http`]: exactly which bytes each client receives, what
/// the handler consumes, and when its timeouts are set and what it does when they
/// come.
///
/// The handler's answers depend on nothing but the bytes a client sent (no state is
/// shared between connections), so the model reads each client's stream as the server
/// reads it ([`Model::input`]) and predicts, in order:
///
/// - `200 OK` with the body (no body for `HEAD`), with `Connection: close` when the
///   request asks to close (HTTP/1.1 `Connection: close`, HTTP/1.0 without
///   `keep-alive`) or is the connection's `keepalive_requests`th, and `Connection:
///   keep-alive` for an HTTP/1.0 keep-alive request; after a closing response, nothing
///   more;
/// - `HTTP/1.1 100 Continue` as soon as the head of an HTTP/1.1 request with a body
///   and `Expect: 100-continue` is whole and accepted;
/// - the error responses, each closing: 400, 413, 431, 501 and 505 for what the
///   handler's documentation says, decided at the very byte the handler decides them
///   (a chunked body's error in the middle of it);
/// - a `408 Request Timeout` where the handler's timeout came while a head or a body
///   was partial, then nothing.
///
/// The `Date` value is not predicted byte for byte: any well-formed IMF-fixdate
/// (weekday matching the date) is accepted where it belongs, and on one connection the
/// dates never go back. The syntax of an HTTP/1.0 or 1.1 request head is httparse's
/// (the model calls it with the handler's [`MAX_HEADERS`]); the request lines of other
/// versions, what the fields mean, the chunked coding, the limits, the choice of
/// response and its bytes are the model's own.
///
/// [`Model::consumed`] checks the handler's side: it consumes whole answered requests,
/// and of a request under way its whole head and then any part of its body (all of
/// what arrived, while the body is not whole: a body is never held), never the byte
/// that completes a request it has not answered, part of a head, or a refused request.
///
/// The timeouts are checked exactly, on the handler's own clock (the `now` of each
/// callback): after every callback the model knows the one deadline the handler must
/// have set ([`Model::timeout_set`] reports it): the head timeout from the accept or
/// from a later head's first byte, the body timeout from the last read of a body, the
/// keep-alive timeout from the last response, the send timeout while a response waits
/// for room, and [`CLOSE_DELAY`] after a closing response. Where only the output buffer's
/// room decides (an error response that may or may not have fitted; a send check that
/// may or may not have found output waiting), it accepts either choice and learns which
/// from the deadline set. When a timeout comes ([`Model::timeout`]) the handler must
/// close an idle connection, answer 408 to a partial request (then close once it is
/// sent), finish a close, or, with output waiting, check the client's progress: reset
/// only at a check that follows another.
///
/// The model assumes an input buffer of at least `max_head` bytes (so the buffer's size
/// never decides an answer) and a send timeout that is not zero (it tells the send check
/// from a closing response by the deadline).
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

/// One request of a client's stream, from its first byte read.
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    /// Stream offset of its first byte.
    start: u64,
    /// Where its head ends, once the head is whole and accepted.
    head_end: Option<u64>,
    /// Where it ends, once it is whole and answered 200.
    end: Option<u64>,
    /// The head asks for `100 Continue`.
    expect: bool,
    /// The request has a body.
    has_body: bool,
    /// It is refused, at the byte with this offset.
    refused_at: Option<u64>,
}

/// Where the handler is with a connection, as the model follows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// Opened, no request begun.
    #[default]
    New,
    /// Between requests.
    Idle,
    /// Part of a head has arrived.
    Head,
    /// A body is arriving.
    Body,
    /// A response waits for room in the output.
    Stalled,
    /// A closing response is written.
    Closing,
    /// No longer open: nothing more to follow.
    Gone,
}

/// A deadline the handler may have set after a callback, and what it means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Choice {
    /// The deadline set: the earlier of `due` and `check`.
    at: Option<Instant>,
    phase: Phase,
    /// The phase's own deadline.
    due: Option<Instant>,
    /// The end of a send check under way.
    check: Option<Instant>,
}

impl Choice {
    /// The handler's choice at `now` of `due` and `check` in `phase` (a deadline set in
    /// the past is set for now).
    fn new(now: Instant, phase: Phase, due: Option<Instant>, check: Option<Instant>) -> Choice {
        let at = earliest(due, check).map(|at| at.max(now));
        Choice {
            at,
            phase,
            due,
            check,
        }
    }

    /// The same choice made lazily, as the handler's `arm` makes it: a deadline already
    /// set for later than `now` and no later than this one is left as it is (it fires
    /// early, and the handler sets the rest then).
    fn lazily(self, set: Option<Instant>, now: Instant) -> Choice {
        match (set, self.at) {
            (Some(set), Some(at)) if now < set && set <= at => Choice {
                at: Some(set),
                ..self
            },
            _ => self,
        }
    }
}

/// [`HttpModel`]'s state for one connection.
#[derive(Debug, Default)]
pub struct HttpClient {
    /// Bytes read by the server from the start of the request under way.
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    base: u64,
    /// The request under way, once its head is whole and accepted.
    head: Option<Accepted>,
    /// The requests read and not wholly consumed by the handler, in order.
    spans: VecDeque<Span>,
    /// Requests answered 200.
    answered: u64,
    /// A closing response or a refusal is predicted: nothing after it is read.
    finished: bool,
    /// Where the request answered with a closing 200 ends.
    closing_end: Option<u64>,
    /// Bytes read by the server.
    delivered: u64,
    /// Bytes the handler consumed.
    consumed: u64,
    /// Where the handler is, its own deadline there, and the end of the send check
    /// under way.
    phase: Phase,
    due: Option<Instant>,
    check: Option<Instant>,
    /// The deadlines the last callback may have set, not yet settled.
    choices: Vec<Choice>,
    /// The deadline last reported.
    armed: Option<Instant>,
    /// What the client is still owed, in order.
    expected: VecDeque<Expect>,
    /// The `Date` value being received.
    date: Vec<u8>,
    /// The latest `Date` received, in seconds.
    last_date: u64,
    /// Bytes received so far.
    received: u64,
}

/// A head whole and accepted.
#[derive(Clone, Copy, Debug)]
struct Accepted {
    len: usize,
    head_only: bool,
    /// `Connection: close` or `keep-alive` in the response (without the cap).
    connection: Option<&'static str>,
    closes: bool,
    body: Framing,
    expect: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// A whole head, as parsed: its length, request line, and fields (names and values
/// lowercased).
struct HeadParts<'b> {
    len: usize,
    method: &'b [u8],
    target: &'b [u8],
    /// HTTP/1.1 or a later 1.x.
    http11: bool,
    fields: Vec<(String, String)>,
}

/// What the model makes of the front of a stream: a head, or a body.
enum Read<T> {
    Partial,
    Whole(T),
    /// Refused with this status, decided by the byte at this offset (from the start of
    /// what was read).
    Refused(&'static str, usize),
}

const BAD: &str = "400 Bad Request";
const TOO_LARGE: &str = "413 Content Too Large";
const FIELDS_TOO_LARGE: &str = "431 Request Header Fields Too Large";

impl HttpModel {
    /// The head at the front of `buf`.
    fn read_head(&self, buf: &[u8]) -> Read<Accepted> {
        let max_head = self.config.max_head;
        let window = &buf[..buf.len().min(max_head)];
        let full = buf.len() >= max_head;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let HeadParts {
            len,
            method,
            target,
            http11,
            fields,
        } = match request.parse(window) {
            Ok(httparse::Status::Complete(len)) => HeadParts {
                len,
                method: request.method.unwrap_or_default().as_bytes(),
                target: request.path.unwrap_or_default().as_bytes(),
                http11: request.version == Some(1),
                fields: lowercase(request.headers),
            },
            Ok(httparse::Status::Partial) if full => {
                return Read::Refused(FIELDS_TOO_LARGE, 0);
            }
            Ok(httparse::Status::Partial) => return Read::Partial,
            Err(httparse::Error::TooManyHeaders) => {
                return Read::Refused(FIELDS_TOO_LARGE, 0);
            }
            Err(httparse::Error::Version) => match self.other_version(window, full) {
                Read::Whole(h) => h,
                Read::Partial => return Read::Partial,
                Read::Refused(status, at) => return Read::Refused(status, at),
            },
            Err(_) => return Read::Refused(BAD, 0),
        };
        if let Some(status) = refused_line(method, target) {
            return Read::Refused(status, 0);
        }
        let values = |name: &str| -> Vec<&str> {
            fields
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let trimmed = |name: &str| -> Vec<&str> {
            values(name)
                .into_iter()
                .map(|v| v.trim_matches(|c: char| c.is_ascii_whitespace()))
                .collect()
        };
        let hosts = values("host").len();
        if hosts > 1 || (http11 && hosts == 0) {
            return Read::Refused(BAD, 0);
        }
        let lengths = values("content-length");
        // Each value plain digits (no sign, no list; at most 18), all the same number.
        let mut parsed = Vec::new();
        for value in &lengths {
            if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Read::Refused(BAD, 0);
            }
            parsed.push(value.parse::<u64>().expect("digits"));
        }
        if parsed.windows(2).any(|w| w[0] != w[1]) {
            return Read::Refused(BAD, 0);
        }
        let codings = trimmed("transfer-encoding");
        let body = if codings.is_empty() {
            match parsed.first() {
                Some(&n) if n > self.config.max_body => return Read::Refused(TOO_LARGE, 0),
                Some(&n) if n > 0 => Framing::Length(n),
                _ => Framing::None,
            }
        } else if !http11 || codings.len() > 1 || !parsed.is_empty() {
            return Read::Refused(BAD, 0);
        } else if codings[0] != "chunked" {
            return Read::Refused("501 Not Implemented", 0);
        } else {
            Framing::Chunked
        };
        let tokens: Vec<&str> = values("connection")
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(|t| t.trim_matches(|c: char| c.is_ascii_whitespace()))
            .collect();
        let close = tokens.contains(&"close");
        let keep_alive = tokens.contains(&"keep-alive");
        let (closes, connection) = match http11 {
            true if close => (true, Some("close")),
            true => (false, None),
            false if close || !keep_alive => (true, Some("close")),
            false => (false, Some("keep-alive")),
        };
        let expect = http11 && body != Framing::None && trimmed("expect").contains(&"100-continue");
        Read::Whole(Accepted {
            len,
            head_only: method == b"HEAD",
            connection,
            closes,
            body,
            expect,
        })
    }

    /// A head whose version httparse refused: the request line read by hand, then (for
    /// a later HTTP/1.x) the fields by httparse, and the request taken as HTTP/1.1.
    fn other_version<'b>(&self, window: &'b [u8], full: bool) -> Read<HeadParts<'b>> {
        let Some(line_len) = window.iter().position(|&b| b == b'\n') else {
            return if full {
                Read::Refused(FIELDS_TOO_LARGE, 0)
            } else {
                Read::Partial
            };
        };
        let mut line = &window[..line_len];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let [method, target, version] = parts[..] else {
            return Read::Refused(BAD, 0);
        };
        let tchar = |b: u8| b.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".as_bytes().contains(&b);
        if method.is_empty()
            || !method.iter().all(|&b| tchar(b))
            || target.is_empty()
            || !target.iter().all(|&b| (0x21..0x7f).contains(&b))
        {
            return Read::Refused(BAD, 0);
        }
        if let Some(status) = refused_line(method, target) {
            return Read::Refused(status, 0);
        }
        let v = String::from_utf8_lossy(version);
        let digits: Vec<char> = v.strip_prefix("HTTP/").unwrap_or("").chars().collect();
        let major = match digits[..] {
            [major @ '1'..='9', '.', '0'..='9'] => major,
            _ => return Read::Refused(BAD, 0),
        };
        if major != '1' {
            return Read::Refused("505 HTTP Version Not Supported", 0);
        }
        let rest = &window[line_len + 1..];
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match httparse::parse_headers(rest, &mut headers) {
            Ok(httparse::Status::Complete((n, fields))) => Read::Whole(HeadParts {
                len: line_len + 1 + n,
                method,
                target,
                http11: true,
                fields: lowercase(fields),
            }),
            Ok(httparse::Status::Partial) if full => Read::Refused(FIELDS_TOO_LARGE, 0),
            Ok(httparse::Status::Partial) => Read::Partial,
            Err(httparse::Error::TooManyHeaders) => Read::Refused(FIELDS_TOO_LARGE, 0),
            Err(_) => Read::Refused(BAD, 0),
        }
    }

    /// The body at the front of `buf`: its length once whole.
    fn read_body(&self, buf: &[u8], framing: Framing) -> Read<usize> {
        match framing {
            Framing::None => Read::Whole(0),
            Framing::Length(n) if buf.len() as u64 >= n => Read::Whole(n as usize),
            Framing::Length(_) => Read::Partial,
            Framing::Chunked => self.read_chunked(buf),
        }
    }

    /// A chunked body (RFC 9112 §7.1), read line by line from the start each time.
    fn read_chunked(&self, b: &[u8]) -> Read<usize> {
        let (max_body, max_trailer) = (u128::from(self.config.max_body), self.config.max_head);
        let mut pos = 0;
        let mut total: u128 = 0;
        // A line end at `at`: CRLF or LF; where the next line starts.
        let line_end = |at: usize| -> Read<usize> {
            match b.get(at) {
                None => Read::Partial,
                Some(b'\n') => Read::Whole(at + 1),
                Some(b'\r') => match b.get(at + 1) {
                    None => Read::Partial,
                    Some(b'\n') => Read::Whole(at + 2),
                    Some(_) => Read::Refused(BAD, at + 1),
                },
                Some(_) => Read::Refused(BAD, at),
            }
        };
        loop {
            // The size: hex digits, no more than 64 bits' worth.
            let digits = b[pos..]
                .iter()
                .take_while(|c| c.is_ascii_hexdigit())
                .count();
            let mut size: u128 = 0;
            for (k, &c) in b[pos..pos + digits].iter().enumerate() {
                size = size * 16 + u128::from(char::from(c).to_digit(16).expect("hex"));
                if size > u128::from(u64::MAX) {
                    return Read::Refused(BAD, pos + k);
                }
            }
            let after = pos + digits;
            let Some(&c) = b.get(after) else {
                return Read::Partial;
            };
            if digits == 0 {
                return Read::Refused(BAD, pos);
            }
            if total + size > max_body {
                return Read::Refused(TOO_LARGE, after);
            }
            // An extension, then the line end.
            let end = match c {
                b'\r' | b'\n' => after,
                b';' | b' ' | b'\t' => {
                    let ext = b[after..]
                        .iter()
                        .take_while(|&&c| c != b'\r' && c != b'\n')
                        .count();
                    if ext > MAX_CHUNK_EXT {
                        return Read::Refused(BAD, after + MAX_CHUNK_EXT);
                    }
                    after + ext
                }
                _ => return Read::Refused(BAD, after),
            };
            let next = match line_end(end) {
                Read::Whole(next) => next,
                other => return other,
            };
            if size == 0 {
                return self.read_trailer(b, next, max_trailer);
            }
            total += size;
            let data_end = next as u128 + size;
            if (b.len() as u128) < data_end {
                return Read::Partial;
            }
            pos = match line_end(data_end as usize) {
                Read::Whole(next) => next,
                other => return other,
            };
        }
    }

    /// The trailer section from `at` to the empty line that ends the body.
    fn read_trailer(&self, b: &[u8], mut at: usize, max: usize) -> Read<usize> {
        let mut count = 0;
        loop {
            match b.get(at) {
                None => return Read::Partial,
                Some(b'\n') => return Read::Whole(at + 1),
                Some(b'\r') => {
                    return match b.get(at + 1) {
                        None => Read::Partial,
                        Some(b'\n') => Read::Whole(at + 2),
                        Some(_) => Read::Refused(BAD, at + 1),
                    };
                }
                Some(_) => {}
            }
            let line = match b[at..].iter().position(|&c| c == b'\n') {
                Some(lf) => lf + 1,
                None => b.len() - at,
            };
            if count + line > max {
                return Read::Refused(FIELDS_TOO_LARGE, at + (max - count));
            }
            if !b[at..at + line].ends_with(b"\n") {
                return Read::Partial;
            }
            count += line;
            at += line;
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

    /// `now` plus a timeout, if there is one.
    fn after(now: Instant, timeout: Option<Duration>) -> Option<Instant> {
        timeout.map(|d| now + d)
    }
}

/// The earlier of two deadlines (`None`: none).
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Fields with their names lowercased, values as text (lowercased too: every value the
/// model looks at is case-insensitive).
fn lowercase(fields: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).to_ascii_lowercase(),
            )
        })
        .collect()
}

/// 400 for `CONNECT` and any target but `/...` and `scheme://...`.
fn refused_line(method: &[u8], target: &[u8]) -> Option<&'static str> {
    if method == b"CONNECT" {
        return Some(BAD);
    }
    if target.starts_with(b"/") {
        return None;
    }
    let text = String::from_utf8_lossy(target);
    let absolute = text.split_once("://").is_some_and(|(scheme, _)| {
        let mut chars = scheme.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    (!absolute).then_some(BAD)
}

impl HttpClient {
    /// The choice the handler made after the last callback, now that its deadline is
    /// known: the model follows it from here.
    fn settle(&mut self) {
        if self.choices.is_empty() {
            return;
        }
        let choices = std::mem::take(&mut self.choices);
        // Choices are listed most telling first: where two set the same deadline, the
        // first (with a send check) allows what both would.
        let Some(choice) = choices.iter().find(|c| c.at == self.armed) else {
            panic!(
                "the handler's timeout fires at {:?}, but after its last callback (in phase \
                 {:?}) the model expects {:?}",
                self.armed, self.phase, choices
            );
        };
        self.phase = choice.phase;
        self.due = choice.due;
        self.check = choice.check;
    }
}

impl Model for HttpModel {
    type Conn = HttpClient;

    fn opened(&mut self, conn: &mut HttpClient, _: &ConnInfo, now: Instant) {
        let due = HttpModel::after(now, self.config.head_timeout);
        conn.choices = vec![Choice::new(now, Phase::New, due, None)];
    }

    fn input(&mut self, conn: &mut HttpClient, bytes: &[u8]) {
        conn.delivered += bytes.len() as u64;
        if conn.finished {
            return; // the handler reads nothing after its last response
        }
        conn.buf.extend_from_slice(bytes);
        while !conn.finished && !conn.buf.is_empty() {
            if conn.spans.back().is_none_or(|s| s.start < conn.base) {
                conn.spans.push_back(Span {
                    start: conn.base,
                    ..Span::default()
                });
            }
            let span = conn.spans.back_mut().expect("a span");
            let head = match conn.head {
                Some(head) => head,
                None => match self.read_head(&conn.buf) {
                    Read::Partial => break,
                    Read::Refused(status, at) => {
                        span.refused_at = Some(conn.base + at as u64);
                        conn.expected.extend(self.error(status));
                        conn.finished = true;
                        break;
                    }
                    Read::Whole(head) => {
                        span.head_end = Some(conn.base + head.len as u64);
                        span.expect = head.expect;
                        span.has_body = head.body != Framing::None;
                        if head.expect {
                            conn.expected.extend(
                                b"HTTP/1.1 100 Continue\r\n\r\n"
                                    .iter()
                                    .map(|&b| Expect::Byte(b)),
                            );
                        }
                        conn.head = Some(head);
                        head
                    }
                },
            };
            match self.read_body(&conn.buf[head.len..], head.body) {
                Read::Partial => break,
                Read::Refused(status, at) => {
                    span.refused_at = Some(conn.base + (head.len + at) as u64);
                    conn.expected.extend(self.error(status));
                    conn.finished = true;
                }
                Read::Whole(body) => {
                    let len = head.len + body;
                    let end = conn.base + len as u64;
                    span.end = Some(end);
                    conn.answered += 1;
                    let last = self
                        .config
                        .keepalive_requests
                        .is_some_and(|most| conn.answered >= most);
                    let (closes, connection) = if last {
                        (true, Some("close"))
                    } else {
                        (head.closes, head.connection)
                    };
                    let response = self.response("200 OK", self.body(), head.head_only, connection);
                    conn.expected.extend(response);
                    conn.buf.drain(..len);
                    conn.base = end;
                    conn.head = None;
                    if closes {
                        conn.finished = true;
                        conn.closing_end = Some(end);
                    }
                }
            }
        }
    }

    fn consumed(&mut self, conn: &mut HttpClient, bytes: &[u8], now: Instant) {
        conn.settle();
        let before = conn.consumed;
        conn.consumed += bytes.len() as u64;
        let c = conn.consumed;
        if conn.phase == Phase::Gone {
            // No longer open (its peer ended, or a handler closed it): what its handler
            // still does with input read before is its own affair.
            return;
        }
        if conn.phase == Phase::Closing {
            // The last response is written: nothing more is consumed, no deadline moves.
            assert!(
                bytes.is_empty(),
                "consumed input after its closing response"
            );
            return;
        }
        // The handler wrote in this call if it answered a request, or sent `100
        // Continue` for a head it consumed.
        let wrote = conn.spans.iter().any(|s| {
            let crossed = |at: Option<u64>| at.is_some_and(|at| before < at && at <= c);
            crossed(s.end) || (s.expect && crossed(s.head_end))
        });
        // Requests wholly consumed: each must have been answered.
        let mut answered = false;
        while let Some(end) = conn.spans.front().and_then(|s| s.end)
            && end <= c
        {
            answered |= end > before;
            conn.spans.pop_front();
        }
        enum At {
            Is(Phase),
            ClosingOrStalled,
        }
        let at = match conn.spans.front().copied() {
            None if conn.closing_end == Some(c) => At::Is(Phase::Closing),
            None => {
                assert_eq!(c, conn.delivered, "consumed input the model never read");
                At::Is(Phase::Idle)
            }
            Some(s) if c == s.start => match (s.head_end, s.refused_at) {
                // Refused by its head, which is not consumed: the error went out, or
                // waits for room.
                (None, Some(_)) => At::ClosingOrStalled,
                (None, None) => At::Is(Phase::Head),
                // Accepted, not consumed: its response or its `100 Continue` waits.
                (Some(_), _) if s.expect || !s.has_body => At::Is(Phase::Stalled),
                (Some(_), _) => panic!(
                    "the head of the request at byte {} is whole and its body follows, but \
                     the handler did not consume it",
                    s.start
                ),
            },
            Some(s) => {
                let head_end = s.head_end.filter(|&h| h <= c).unwrap_or_else(|| {
                    panic!(
                        "the handler consumed up to byte {c} of its input, inside the head \
                         of the request at byte {}",
                        s.start
                    )
                });
                match (s.refused_at, s.end) {
                    (Some(refused), _) => {
                        assert!(
                            c <= refused,
                            "the handler consumed up to byte {c}, past byte {refused} that \
                             refuses the request at byte {}",
                            s.start
                        );
                        At::ClosingOrStalled
                    }
                    // The body is whole but its last byte is not consumed: the response
                    // waits for room.
                    (None, Some(_)) => At::Is(Phase::Stalled),
                    (None, None) => {
                        assert_eq!(
                            c, conn.delivered,
                            "the handler left body bytes unconsumed (the body of the \
                             request at byte {}, from byte {head_end} on, is not whole): a \
                             body must stream through the buffer",
                            s.start
                        );
                        At::Is(Phase::Body)
                    }
                }
            }
        };
        if conn.phase == Phase::Gone {
            // No longer open (its peer ended, say): what it consumes is still checked,
            // its deadlines no longer mean anything.
            return;
        }
        let config = &self.config;
        let after = |timeout| HttpModel::after(now, timeout);
        let set = conn.armed;
        let closing = Choice::new(now, Phase::Closing, Some(now + CLOSE_DELAY), None);
        // Set as it is, never lazily (the handler tells a stall from a closing response
        // by the deadline: `now + send_timeout` against `now + CLOSE_DELAY`).
        let stalled = Choice::new(now, Phase::Stalled, None, after(config.send_timeout));
        // A phase's own deadline, with a send check for what the call wrote (and, when
        // it wrote nothing, perhaps one for output left from before, rarely: a call
        // made while the socket was blocked, to read a hang-up).
        let waiting = |phase, due| {
            let mut choices =
                vec![Choice::new(now, phase, due, after(config.send_timeout)).lazily(set, now)];
            if !wrote {
                choices.push(Choice::new(now, phase, due, None).lazily(set, now));
            }
            choices
        };
        conn.choices = match at {
            At::Is(Phase::Head) if !answered && matches!(conn.phase, Phase::New | Phase::Head) => {
                // A head's time runs from its first byte (the first's from the accept).
                waiting(Phase::Head, conn.due)
            }
            At::Is(Phase::Head) => waiting(Phase::Head, after(config.head_timeout)),
            At::Is(Phase::Idle) => waiting(Phase::Idle, after(config.keepalive_timeout)),
            At::Is(Phase::Body) => waiting(Phase::Body, after(config.body_timeout)),
            At::Is(Phase::Stalled) => vec![stalled],
            At::Is(_) => vec![closing],
            At::ClosingOrStalled => vec![closing, stalled],
        };
    }

    fn timeout(&mut self, conn: &mut HttpClient, now: Instant, wrote: usize, action: Action) {
        conn.settle();
        // The engine takes a deadline off as it fires: what the handler sets now is
        // reported, and nothing else is set.
        let fired = conn.armed.take();
        if conn.phase == Phase::Gone {
            return;
        }
        assert!(
            fired.is_some_and(|at| at <= now),
            "`timeout` at {now}, but the deadline set is {fired:?}"
        );
        let (phase, due, check) = (conn.phase, conn.due, conn.check);
        // The handler writes only the 408, and only when the phase's deadline has come
        // on a partial request (with all earlier output sent).
        let timed_out = wrote > 0;
        if timed_out {
            assert!(
                matches!(phase, Phase::Head | Phase::Body) && due.is_some_and(|d| d <= now),
                "the handler wrote {wrote} bytes at {now} in phase {phase:?} (deadline \
                 {due:?}): a timeout writes only a 408, once a partial request's time is up"
            );
            conn.expected.extend(self.error("408 Request Timeout"));
            conn.finished = true;
        }
        match action {
            Action::Abort => {
                assert!(
                    !timed_out && check.is_some_and(|at| at <= now),
                    "the handler reset the connection at {now} in phase {phase:?}, but no send \
                     check ended then (the check under way ends at {check:?}): a client is \
                     reset only when a check finds it took nothing"
                );
                conn.phase = Phase::Gone;
            }
            // An idle close or the end of a closing one, or the simulator's injected
            // action where the handler carried on.
            Action::Close | Action::Detach | Action::Shutdown => conn.phase = Phase::Gone,
            Action::None if timed_out => {
                conn.choices = vec![Choice::new(
                    now,
                    Phase::Closing,
                    Some(now + CLOSE_DELAY),
                    None,
                )];
            }
            Action::None => {
                let mut choices = Vec::new();
                // Output waiting: a send check ends, or begins, or the phase's deadline
                // came first and waits for it.
                if let Some(send) = self.config.send_timeout {
                    let next = match check {
                        Some(at) if at > now => at,
                        _ => now + send,
                    };
                    // A deadline passed is no longer set: it waits for the output.
                    let ahead = due.filter(|&d| d > now);
                    choices.push(Choice {
                        at: Some(ahead.map_or(next, |d| d.min(next))),
                        ..Choice::new(now, phase, due, Some(next))
                    });
                }
                // The output all taken, and the timeout came before the phase's own
                // deadline (a send check's, or one left from before, set lazily): that
                // is still to come (`None`: the phase has none).
                if due.is_none_or(|d| d > now) && phase != Phase::Stalled {
                    choices.push(Choice::new(now, phase, due, None));
                }
                conn.choices = choices;
            }
        }
    }

    fn timeout_set(&mut self, conn: &mut HttpClient, at: Option<Instant>) {
        conn.armed = at;
        if conn.phase == Phase::Gone {
            return;
        }
        assert!(
            !conn.choices.is_empty(),
            "the handler set its timeout to {at:?} where the model expects no change (phase \
             {:?}, deadline {:?}, send check until {:?})",
            conn.phase,
            conn.due,
            conn.check
        );
        conn.settle();
    }

    fn closing(&mut self, conn: &mut HttpClient) {
        conn.phase = Phase::Gone;
        conn.choices.clear();
    }

    fn output(&mut self, conn: &mut HttpClient, bytes: &[u8]) -> Result<(), ModelError> {
        for &b in bytes {
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

/// HTTP traffic: mostly valid requests (GET, HEAD, POST and PUT with bodies by
/// `Content-Length` or chunked, some asking for `100 Continue`, other methods;
/// HTTP/1.1, 1.0 and 1.2, keep-alive and `Connection: close`; CRLF or bare LF line
/// ends; extra header fields of varying length; origin- and absolute-form targets),
/// some over [`SIM_CONFIG`]'s limits (long heads, bodies and trailers, long chunk
/// extensions), some refused (no `Host`, a bad `Content-Length`, transfer codings
/// other than `chunked` or with a length, malformed chunks, `HTTP/2.0`, `*` and
/// `CONNECT`), and now and then garbage. The simulator cuts each client's stream at
/// random points, so requests arrive split at any byte and pipelined several to a
/// read, and bodies longer than the input buffer stream through it.
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
    let method: &[u8] = match rng.below(13) {
        0..=5 => b"GET",
        6 | 7 => b"HEAD",
        8 | 9 => b"POST",
        10 => b"PUT",
        11 => b"OPTIONS",
        _ if rng.below(4) == 0 => b"CONNECT",
        _ => b"POST",
    };
    let path: &[u8] = match rng.below(40) {
        0 => b"*",
        1 => b"host:443",
        2 => b"http://example.com/a",
        3..=12 => b"/",
        13..=22 => b"/index.html",
        23..=31 => b"/a/b?c=d&e=f",
        _ => b"/plaintext",
    };
    let version: &[u8] = match rng.below(60) {
        0 => b"HTTP/2.0",
        1 | 2 => b"HTTP/1.2",
        3..=12 => b"HTTP/1.0",
        _ => b"HTTP/1.1",
    };
    let http10 = version == b"HTTP/1.0";
    let mut r = Vec::new();
    r.extend_from_slice(method);
    r.push(b' ');
    r.extend_from_slice(path);
    r.push(b' ');
    r.extend_from_slice(version);
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
        if rng.below(4) == 0 {
            field(&mut r, b"Expect", b"100-continue");
        }
        match rng.below(40) {
            0 => field(&mut r, b"Content-Length", b"12, 12"),
            1 => field(&mut r, b"Content-Length", b"1001"), // over `max_body` (1000)
            2 => {
                field(&mut r, b"Content-Length", b"3");
                field(&mut r, b"Content-Length", b"4");
            }
            3 => field(&mut r, b"Transfer-Encoding", b"gzip, chunked"), // 501
            4 => {
                // Request smuggling: 400.
                field(&mut r, b"Transfer-Encoding", b"chunked");
                field(&mut r, b"Content-Length", b"5");
            }
            5..=14 => {
                field(&mut r, b"Transfer-Encoding", b"chunked");
                body = chunked_body(rng, eol);
            }
            _ => {
                // Mostly short; now and then longer than the input buffer.
                let len = if rng.below(8) == 0 {
                    rng.range(200, 1000)
                } else {
                    rng.range(0, 80)
                } as usize;
                body = (0..len).map(|_| rng.next_u64() as u8).collect();
                field(&mut r, b"Content-Length", len.to_string().as_bytes());
            }
        }
    }
    r.extend_from_slice(eol);
    r.extend_from_slice(&body);
    r
}

/// A chunked body: a few chunks of random bytes, sometimes with extensions and
/// trailer fields; now and then over the limits (the whole body, an extension, the
/// trailer) or malformed.
fn chunked_body(rng: &mut Rng, eol: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    let mut total = 0u64;
    for _ in 0..rng.below(5) {
        let size = if rng.below(10) == 0 {
            rng.range(100, 400)
        } else {
            rng.range(1, 40)
        };
        total += size;
        match rng.below(6) {
            0 => b.extend_from_slice(format!("{size:X}").as_bytes()),
            1 => b.extend_from_slice(format!("00{size:x}").as_bytes()),
            _ => b.extend_from_slice(format!("{size:x}").as_bytes()),
        }
        match rng.below(30) {
            0 => b.extend_from_slice(b";name=value"),
            1 => b.extend_from_slice(b" ;x"),
            2 => {
                b.push(b';');
                b.extend(std::iter::repeat_n(b'e', rng.range(1000, 1100) as usize));
            }
            _ => {}
        }
        b.extend_from_slice(eol);
        b.extend((0..size).map(|_| rng.next_u64() as u8));
        match rng.below(60) {
            0 => b.extend_from_slice(b"XX"), // no line end after the data: 400
            _ => b.extend_from_slice(eol),
        }
    }
    match rng.below(40) {
        0 => b.extend_from_slice(b"zz"),                // not hex: 400
        1 => b.extend_from_slice(b"fffffffffffffffff"), // over 64 bits: 400
        _ => {}
    }
    let _ = total; // the chunks may add up past `max_body`: 413 at the one that does
    b.extend_from_slice(b"0");
    b.extend_from_slice(eol);
    if rng.below(6) == 0 {
        b.extend_from_slice(b"X-Trailer: ");
        let len = if rng.below(8) == 0 {
            rng.range(150, 250)
        } else {
            rng.range(0, 20)
        };
        b.extend(std::iter::repeat_n(b't', len as usize));
        b.extend_from_slice(eol);
    }
    b.extend_from_slice(eol);
    b
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

    fn client(model: &mut HttpModel, input: &[u8]) -> HttpClient {
        let mut conn = HttpClient::default();
        model.input(&mut conn, input);
        conn
    }

    fn statuses(conn: &HttpClient) -> Vec<String> {
        expect_bytes(&conn.expected)
            .split("HTTP/1.1 ")
            .skip(1)
            .map(|r| r[..3].to_owned())
            .collect()
    }

    #[test]
    fn the_model_predicts_pipelined_responses_and_stops_after_a_close() {
        let mut model = HttpModel::new(SIM_CONFIG);
        let conn = client(
            &mut model,
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
    fn the_model_reads_bodies_continues_and_refusals() {
        let mut model = HttpModel::new(SIM_CONFIG);
        let h = "Host: x\r\n";
        let cases: &[(String, &[&str])] = &[
            (
                format!("POST / HTTP/1.1\r\n{h}Content-Length: 3\r\n\r\nabc"),
                &["200"],
            ),
            (
                format!("POST / HTTP/1.1\r\n{h}Expect: 100-continue\r\nContent-Length: 3\r\n\r\n"),
                &["100"],
            ),
            (
                format!(
                    "POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n3;x\r\nabc\n0\r\nT: 1\r\n\r\n"
                ),
                &["200"],
            ),
            (
                format!(
                    "POST / HTTP/1.1\r\n{h}Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX"
                ),
                &["100", "400"],
            ),
            (
                format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n3E9\r\n"),
                &["413"],
            ),
            (
                format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: foo\r\n\r\n"),
                &["501"],
            ),
            (format!("GET / HTTP/2.0\r\n{h}\r\n"), &["505"]),
            (format!("GET / HTTP/1.2\r\n{h}\r\n"), &["200"]),
            (format!("GET * HTTP/1.1\r\n{h}\r\n"), &["400"]),
            (format!("CONNECT / HTTP/1.1\r\n{h}\r\n"), &["400"]),
        ];
        for (request, expected) in cases {
            let conn = client(&mut model, request.as_bytes());
            assert_eq!(&statuses(&conn), expected, "{request}");
        }
        // The sixth request says `Connection: close`, and nothing follows it.
        let conn = client(
            &mut model,
            "GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(7).as_bytes(),
        );
        assert_eq!(statuses(&conn).len(), 6);
        assert!(
            expect_bytes(&conn.expected).ends_with("Connection: close\r\n\r\nHello World!\r\n")
        );
    }

    #[test]
    fn the_model_accepts_a_date_but_not_a_wrong_one() {
        let mut model = HttpModel::new(SIM_CONFIG);
        let ok = b"HTTP/1.1 200 OK\r\nServer: evio\r\nDate: Tue, 14 Nov 2023 22:13:20 GMT\r\n";
        let mut conn = client(&mut model, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        // Byte by byte, as a short read delivers it.
        for b in ok {
            model.output(&mut conn, &[*b]).unwrap();
        }
        let mut conn = client(&mut model, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let bad = b"HTTP/1.1 200 OK\r\nServer: evio\r\nDate: Wed, 14 Nov 2023 22:13:20 GMT\r\n";
        assert!(model.output(&mut conn, bad).is_err());
    }

    /// The 408 comes only where the handler's timeout came on a partial request (and
    /// set the timeout of a close), and nowhere else.
    #[test]
    fn a_408_is_allowed_only_after_a_timeout_on_a_partial_request() {
        let mut model = HttpModel::new(SIM_CONFIG);
        let timeout = b"HTTP/1.1 408 Request Timeout\r\n";
        let t0 = Instant::ZERO;
        let info = ConnInfo {
            id: evio_proto::ConnId::from_u64(0),
            listener: evio_proto::ListenerId::new(0).unwrap(),
            local: evio_proto::Addr::Ip("127.0.0.1:1".parse().unwrap()),
            peer: evio_proto::Addr::Ip("127.0.0.1:2".parse().unwrap()),
            outbound: false,
        };
        let mut partial = HttpClient::default();
        model.opened(&mut partial, &info, t0);
        let head = t0 + Duration::from_millis(50);
        model.timeout_set(&mut partial, Some(head));
        model.input(&mut partial, b"GET / HT");
        model.consumed(&mut partial, b"", t0);
        // Not before the timeout.
        let mut early = HttpClient::default();
        model.input(&mut early, b"GET / HT");
        assert!(model.output(&mut early, timeout).is_err());
        model.timeout(&mut partial, head, timeout.len(), Action::None);
        model.timeout_set(&mut partial, Some(head + CLOSE_DELAY));
        model.output(&mut partial, timeout).unwrap();
        assert!(partial.finished);
    }

    #[test]
    #[should_panic(expected = "inside the head")]
    fn consuming_part_of_a_request_is_caught() {
        let mut model = HttpModel::new(SIM_CONFIG);
        let mut conn = client(&mut model, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        model.consumed(&mut conn, b"GET / ", Instant::ZERO);
    }

    #[test]
    #[should_panic(expected = "must stream through the buffer")]
    fn holding_a_body_is_caught() {
        let mut model = HttpModel::new(SIM_CONFIG);
        let head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n";
        let mut conn = client(&mut model, &[&head[..], &[b'b'; 100]].concat());
        model.consumed(&mut conn, head, Instant::ZERO);
    }

    #[test]
    #[should_panic(expected = "the model expects")]
    fn a_wrong_deadline_is_caught() {
        let mut model = HttpModel::new(SIM_CONFIG);
        let mut conn = client(&mut model, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        model.consumed(&mut conn, req, Instant::ZERO);
        // The keep-alive timeout is 120 ms, not 50.
        model.timeout_set(&mut conn, Some(Instant::ZERO + Duration::from_millis(50)));
    }

    #[test]
    fn the_workload_makes_mostly_valid_requests() {
        let model = HttpModel::new(SIM_CONFIG);
        let mut rng = Rng::new(3);
        let (mut ok, mut refused, mut chunked, mut long) = (0, 0, 0, 0);
        for _ in 0..4000 {
            let m = http_requests(0, &mut rng);
            let whole = match model.read_head(&m) {
                Read::Whole(head) => {
                    chunked += usize::from(head.body == Framing::Chunked);
                    match model.read_body(&m[head.len..], head.body) {
                        Read::Whole(body) => Some(head.len + body),
                        Read::Refused(..) => None,
                        Read::Partial => panic!("partial body: {}", m.escape_ascii()),
                    }
                }
                Read::Refused(..) => None,
                Read::Partial => panic!("partial: {}", m.escape_ascii()),
            };
            match whole {
                Some(len) => {
                    assert_eq!(len, m.len(), "{}", m.escape_ascii());
                    ok += 1;
                    long += usize::from(len > 512);
                }
                None => refused += 1,
            }
        }
        assert!(
            ok > 3000 && refused > 150 && chunked > 100 && long > 20,
            "{ok} ok, {refused} refused, {chunked} chunked, {long} longer than a buffer"
        );
    }
}
