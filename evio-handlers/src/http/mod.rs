//! An HTTP/1.1 server that answers every request with one fixed response (`Hello
//! World!\r\n`, or 1 KiB of `a`): the handler behind `examples/http-server.rs`, the
//! simulator's `--handler http`, and the benchmark against nginx.
//!
//! What it does with each request, parsed by [`httparse`] straight from the engine's
//! input buffer (no copy, no allocation):
//!
//! | request | response |
//! |---|---|
//! | any method but `HEAD` (an unknown one too: the resource is fixed) | `200 OK` with the body |
//! | `HEAD` | `200 OK`, the same head, no body |
//! | `HTTP/1.1` with `Connection: close` | the response with `Connection: close`, then the connection closes |
//! | `HTTP/1.0` without `Connection: keep-alive` | the same: a 1.0 connection closes after each response |
//! | `HTTP/1.0` with `Connection: keep-alive` | the response with `Connection: keep-alive`; the connection stays open |
//! | a `Content-Length` body | read whole (and discarded) before the response; larger than [`HttpConfig::max_body`], or than what the input buffer holds after the head: `413 Content Too Large` |
//! | `Transfer-Encoding` (chunked bodies) | refused with `411 Length Required`: this server frames bodies by `Content-Length` only |
//! | a head longer than [`HttpConfig::max_head`], or than the input buffer, or with more than [`MAX_HEADERS`] fields | `431 Request Header Fields Too Large` |
//! | malformed (httparse refuses it; a bad or conflicting `Content-Length`; `HTTP/1.1` without exactly one `Host`) | `400 Bad Request` |
//! | not whole within [`HttpConfig::head_timeout`] of its first byte | `408 Request Timeout` |
//!
//! Every error response says `Connection: close`, and the connection closes after it:
//! after a malformed request the handler cannot know where the next one starts. The
//! bytes of the refused request are left unconsumed, so the engine closes lingering
//! (write side shut, input discarded for a bounded time) and the client reads the
//! error before the connection goes, even while it is still sending.
//!
//! Pipelined requests are answered in order, as many as arrived, in one `data` call.
//! A request is consumed only once its response is written: when the output buffer
//! cannot take a response, the request and those after it stay in the input buffer,
//! the engine stops reading until the output drains, and then hands them back.
//!
//! The `Date` header is formatted once per second of wall-clock time, not per request:
//! the handler keeps every response ready with the current date in it and patches the
//! date in place when the second changes. Which second it is comes from a
//! [`WallClock`] (the system's clock by default; the simulator gives one that follows
//! its virtual clock, so runs stay deterministic).
//!
//! Not done: `Expect: 100-continue` gets no interim `100 Continue` (curl, which asks
//! for it before a body over 1 KiB, waits about a second and then sends the body
//! anyway); a connection with no request under way has no idle timeout (it holds its
//! slot until the client closes it; a full pool refuses new connections).
//!
//! # Buffers
//!
//! The connection's input buffer must hold the longest request the server accepts
//! (`max_head + max_body`: 16 KiB at the defaults), and its output buffer the longest
//! response ([`Http::longest_response`]: about 1.2 KiB with [`Body::Aaaa`]). A smaller
//! input buffer lowers the limits (requests that do not fit get 431 or 413); with an
//! output buffer too small for a response the connection is closed unanswered.
//!
//! ```
//! use evio_handlers::http::{Body, Http, HttpConfig};
//!
//! let http = Http::new(HttpConfig {
//!     body: Body::Aaaa,
//!     ..HttpConfig::default()
//! });
//! // A connection's output buffer must hold the longest response.
//! assert!(http.longest_response() > 1024);
//! // Then serve it, as examples/http-server.rs does:
//! // evio::ServerBuilder::new().input_capacity(16 * 1024).serve(http, &["tcp://127.0.0.1:8080"])
//! ```

mod date;
mod responses;

use core::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use evio_proto::{Action, Conn, Events, Instant};
use httparse::{Header, Status};

pub use date::{DATE_LEN, imf_fixdate, parse_imf_fixdate};
use responses::{Reply, Responses};

/// Most header fields a request may have; one more gets 431. They are parsed into an
/// array of this many on the stack (1 KiB), once per `data` call.
pub const MAX_HEADERS: usize = 32;

/// The response body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Body {
    /// `Hello World!\r\n` (14 bytes).
    #[default]
    Hello,
    /// 1 KiB of `a` (the example's `--aaaa`).
    Aaaa,
}

static AAAA: [u8; 1024] = [b'a'; 1024];

impl Body {
    /// The body's bytes.
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Body::Hello => b"Hello World!\r\n",
            Body::Aaaa => &AAAA,
        }
    }
}

/// What the handler accepts and sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HttpConfig {
    /// The body of every `200 OK`.
    pub body: Body,
    /// Longest request head (request line and header fields, up to and including the
    /// blank line), in bytes; a longer one gets 431. Default 8 KiB, nginx's
    /// `large_client_header_buffers` line length.
    pub max_head: usize,
    /// Largest `Content-Length` accepted; a larger one gets 413 as soon as the head is
    /// read, without waiting for the body. Default 8 KiB.
    pub max_body: usize,
    /// Longest time from a request's first byte to its last: a request still partial
    /// then gets 408 and the connection closes (a client trickling bytes, slowloris,
    /// cannot hold a connection for ever). More bytes of the same request do not
    /// extend it; a connection with no request under way has no deadline. `None`: no
    /// limit. Default 10 s.
    pub head_timeout: Option<Duration>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body: Body::Hello,
            max_head: 8 * 1024,
            max_body: 8 * 1024,
            head_timeout: Some(Duration::from_secs(10)),
        }
    }
}

/// Wall-clock time for the `Date` header: the time since the Unix epoch at the loop's
/// instant `now`. Called at most once per second.
pub type WallClock = fn(now: Instant) -> Duration;

/// The system's wall clock ([`SystemTime::now`]); a clock set before 1970 reads as
/// 1970.
pub fn system_clock(_now: Instant) -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Counts of what the handler answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HttpStats {
    /// Requests answered with 200.
    pub ok: u64,
    /// Requests answered with an error (400, 411, 413, 431), each closing its
    /// connection.
    pub errors: u64,
    /// Connections closed by the head timeout (408 sent if the output had room).
    pub timeouts: u64,
}

/// The HTTP handler: see the [module documentation](self).
#[derive(Debug)]
pub struct Http {
    config: HttpConfig,
    clock: WallClock,
    responses: Responses,
    /// The second of wall-clock time the responses' `Date` shows.
    date_secs: u64,
    /// When the wall clock reaches its next second, by the loop's clock: the date is
    /// looked at again only from then on.
    next_date: Instant,
    /// What has been answered so far.
    pub stats: HttpStats,
}

/// [`Http`]'s state for one connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HttpConn {
    /// A partial request is waiting for the rest of it, under the head timeout.
    receiving: bool,
}

/// What the front of the input holds.
enum Next {
    /// Not a whole request yet.
    Partial,
    /// A whole request of `len` bytes, to be answered with `reply`.
    Request { len: usize, reply: Reply },
    /// A request refused with `reply` (which closes).
    Refused(Reply),
}

impl Http {
    /// A handler dating its responses by the system's clock.
    pub fn new(config: HttpConfig) -> Self {
        Http::with_clock(config, system_clock)
    }

    /// A handler dating its responses by `clock`.
    pub fn with_clock(config: HttpConfig, clock: WallClock) -> Self {
        Http {
            config,
            clock,
            // Dated by the first call (`next_date` has passed by then whatever the
            // loop's clock says): the clock is read while serving, not before.
            responses: Responses::new(config.body, &imf_fixdate(0)),
            date_secs: u64::MAX,
            next_date: Instant::ZERO,
            stats: HttpStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// The longest response this handler can send, in bytes: the least output buffer
    /// it needs.
    pub fn longest_response(&self) -> usize {
        self.responses.longest()
    }

    /// Brings the responses' `Date` up to the wall clock's second, if the loop's clock
    /// says that second may have changed. One comparison per call otherwise.
    #[inline]
    fn refresh_date(&mut self, now: Instant) {
        if now < self.next_date {
            return;
        }
        let wall = (self.clock)(now);
        let secs = wall.as_secs();
        if secs != self.date_secs {
            self.date_secs = secs;
            self.responses.set_date(&imf_fixdate(secs));
        }
        // The wall clock's next second starts this much later.
        let rest = Duration::from_secs(1) - Duration::from_nanos(u64::from(wall.subsec_nanos()));
        self.next_date = now + rest;
    }

    /// Reads the request at the front of `buf` (which starts where a request starts).
    /// Depends on the bytes alone, and on how many have arrived only through whether
    /// there are more than `max_head` (or enough to fill the buffer), so a request
    /// gets the same answer however its bytes were split across reads.
    fn next_request<'b>(&self, buf: &'b [u8], headers: &mut [Header<'b>], capacity: usize) -> Next {
        let max_head = self.config.max_head.min(capacity);
        let window = &buf[..buf.len().min(max_head)];
        let mut request = httparse::Request::new(headers);
        let head = match request.parse(window) {
            Ok(Status::Complete(n)) => n,
            Ok(Status::Partial) if buf.len() >= max_head => {
                // The head does not end within the limit (or the buffer is full of it).
                return Next::Refused(Reply::HeaderFieldsTooLarge);
            }
            Ok(Status::Partial) => return Next::Partial,
            Err(httparse::Error::TooManyHeaders) => {
                return Next::Refused(Reply::HeaderFieldsTooLarge);
            }
            Err(_) => return Next::Refused(Reply::BadRequest),
        };
        let mut content_length: Option<u64> = None;
        let (mut hosts, mut close, mut keep_alive, mut chunked) = (0, false, false, false);
        for header in request.headers.iter() {
            let name = header.name.as_bytes();
            // Dispatch on length first: most fields are none of these.
            match name.len() {
                4 if name.eq_ignore_ascii_case(b"host") => hosts += 1,
                10 if name.eq_ignore_ascii_case(b"connection") => {
                    for token in header.value.split(|&b| b == b',') {
                        let token = token.trim_ascii();
                        close |= token.eq_ignore_ascii_case(b"close");
                        keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                    }
                }
                14 if name.eq_ignore_ascii_case(b"content-length") => {
                    let Some(n) = parse_length(header.value) else {
                        return Next::Refused(Reply::BadRequest);
                    };
                    // Several fields are allowed only if they agree (RFC 9112 §6.3).
                    if content_length.is_some_and(|m| m != n) {
                        return Next::Refused(Reply::BadRequest);
                    }
                    content_length = Some(n);
                }
                17 if name.eq_ignore_ascii_case(b"transfer-encoding") => chunked = true,
                _ => {}
            }
        }
        let http11 = request.version == Some(1);
        if hosts > 1 || (http11 && hosts == 0) {
            return Next::Refused(Reply::BadRequest);
        }
        if chunked {
            return Next::Refused(Reply::LengthRequired);
        }
        let body = content_length.unwrap_or(0);
        let room = (capacity - head) as u64;
        if body > self.config.max_body as u64 || body > room {
            return Next::Refused(Reply::ContentTooLarge);
        }
        // `body <= room`, so this fits a usize.
        let len = head + body as usize;
        if buf.len() < len {
            return Next::Partial;
        }
        let closes = close || (!http11 && !keep_alive);
        let reply = match (request.method == Some("HEAD"), closes, http11) {
            (false, true, _) => Reply::OkClose,
            (false, false, true) => Reply::Ok,
            (false, false, false) => Reply::OkKeepAlive,
            (true, true, _) => Reply::HeadOkClose,
            (true, false, true) => Reply::HeadOk,
            (true, false, false) => Reply::HeadOkKeepAlive,
        };
        Next::Request { len, reply }
    }
}

/// A `Content-Length` value: decimal digits only (no sign, no list), at most 18 of
/// them so it cannot overflow.
fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 18 {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

impl Events for Http {
    type Context = HttpConn;

    fn data(&mut self, conn: &mut Conn<'_, HttpConn>, input: &[u8]) -> Action {
        self.refresh_date(conn.now());
        let capacity = conn.input_capacity();
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut used = 0;
        let mut action = Action::None;
        // Whether a response did not fit: the requests left wait for the output.
        let mut stalled = false;
        while used < input.len() {
            let (len, reply) = match self.next_request(&input[used..], &mut headers, capacity) {
                Next::Partial => break,
                Next::Request { len, reply } => (len, reply),
                // The refused request stays unconsumed: the close lingers.
                Next::Refused(reply) => (0, reply),
            };
            if conn.write(self.responses.get(reply)).is_err() {
                if conn.pending() == 0 {
                    // An output buffer too small for any response: nothing can be said.
                    action = Action::Close;
                } else {
                    stalled = true;
                }
                break;
            }
            used += len;
            if reply.closes() {
                if len == 0 {
                    self.stats.errors += 1;
                } else {
                    self.stats.ok += 1;
                }
                action = Action::Close;
                break;
            }
            self.stats.ok += 1;
        }
        conn.consume(used);
        if action != Action::None {
            return action;
        }
        // The head timeout runs while a partial request waits for more bytes, from its
        // first byte: armed when one starts (after a whole request, anew), disarmed when
        // none is under way. A request waiting for output room is not late.
        let answered = used > 0;
        let receiving = used < input.len() && !stalled;
        let was_receiving = conn.context().receiving;
        if receiving && (answered || !was_receiving) {
            conn.set_timeout(self.config.head_timeout);
        } else if !receiving && was_receiving {
            conn.set_timeout(None);
        }
        conn.context().receiving = receiving;
        Action::None
    }

    fn timeout(&mut self, conn: &mut Conn<'_, HttpConn>) -> Action {
        self.stats.timeouts += 1;
        self.refresh_date(conn.now());
        // Without room for it the 408 is left out: the client is not reading anyway.
        let _ = conn.write(self.responses.get(Reply::RequestTimeout));
        Action::Close
    }
}

#[cfg(test)]
mod tests;
