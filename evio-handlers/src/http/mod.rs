//! An HTTP/1.1 server that answers every request with one fixed response (`Hello
//! World!\r\n`, or 1 KiB of `a`): the handler behind `examples/http-server.rs`, the
//! simulator's `--handler http`, and the benchmark against nginx.
//!
//! What it does with each request, parsed by [`httparse`] straight from the engine's
//! input buffer (no copy, no allocation):
//!
//! | request | response |
//! |---|---|
//! | any method but `HEAD` and `CONNECT` (an unknown one too: the resource is fixed) | `200 OK` with the body |
//! | `HEAD` | `200 OK`, the same head, no body |
//! | `HTTP/1.1` with `Connection: close` | the response with `Connection: close`, then the connection closes |
//! | `HTTP/1.0` without `Connection: keep-alive` | the same: a 1.0 connection closes after each response |
//! | `HTTP/1.0` with `Connection: keep-alive` | the response with `Connection: keep-alive`; the connection stays open |
//! | the [`HttpConfig::keepalive_requests`]th request on one connection | its response says `Connection: close`, and the connection closes |
//! | a body, by `Content-Length` or `Transfer-Encoding: chunked` | read as it arrives and discarded (never held whole: it streams through the input buffer), then the response; a chunked body's extensions and trailer fields are skipped |
//! | a body over [`HttpConfig::max_body`] | `413 Content Too Large` as soon as the `Content-Length`, or the chunk size that passes the limit, says so, before the body is read |
//! | `Expect: 100-continue` (HTTP/1.1, with a body) | `HTTP/1.1 100 Continue` once the head is accepted, the response after the body |
//! | a transfer coding other than `chunked` (`gzip, chunked`, `identity`) | `501 Not Implemented` |
//! | `Transfer-Encoding` in HTTP/1.0, twice, or with `Content-Length` (request smuggling) | `400 Bad Request` |
//! | a malformed chunked body (size not hex or over 64 bits, a missing line end, an extension over [`MAX_CHUNK_EXT`] bytes) | `400 Bad Request`; trailer fields over `max_head` bytes: 431 |
//! | a version other than 1.x (`HTTP/2.0`, `HTTP/3.0`) | `505 HTTP Version Not Supported`; `HTTP/1.2` to `1.999` are served as `HTTP/1.1` |
//! | `CONNECT`, a `*` target (`OPTIONS *` too, as nginx), a target neither `/path` nor `scheme://...` | `400 Bad Request` |
//! | a head longer than [`HttpConfig::max_head`], or than the input buffer, or with more than [`MAX_HEADERS`] fields | `431 Request Header Fields Too Large` |
//! | malformed (httparse refuses it; a bad or conflicting `Content-Length`; `HTTP/1.1` without exactly one `Host`) | `400 Bad Request` |
//! | a head not whole [`HttpConfig::head_timeout`] after it began, or a body that brings no byte for [`HttpConfig::body_timeout`] | `408 Request Timeout` |
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
//! the engine stops reading until the output drains, and then hands them back. A
//! body is consumed as it arrives, all but the byte that completes it, which waits
//! with its response.
//!
//! The `Date` header is formatted once per second of wall-clock time, not per request:
//! the handler keeps every response ready with the current date in it and patches the
//! date in place when the second changes. Which second it is comes from a
//! [`WallClock`] (the system's clock by default; the simulator gives one that follows
//! its virtual clock, so runs stay deterministic).
//!
//! # Time bounds
//!
//! No connection is held for ever, whatever its client does or fails to do. One
//! timeout per connection, nginx's defaults:
//!
//! | the connection | bound | then |
//! |---|---|---|
//! | new, the first request's head not whole | [`HttpConfig::head_timeout`] from the accept (nginx's `client_header_timeout`, 60 s there) | closed without a word if nothing came (as nginx), `408` if part of a head did |
//! | between requests (keep-alive) | [`HttpConfig::keepalive_timeout`], 75 s, from the last response | closed without a word |
//! | a later request's head not whole | `head_timeout` from its first byte | `408` |
//! | a body under way | [`HttpConfig::body_timeout`], 60 s, between two reads that bring some of it (nginx's `client_body_timeout`) | `408` |
//! | the client does not take its responses (output waiting, or a response that does not fit) | [`HttpConfig::send_timeout`], 60 s, without the output shrinking | reset (an abortive close: a polite close would wait for that output) |
//!
//! While output waits for its client (written, not yet taken by the socket), a send
//! check runs beside the connection's own deadline: it begins when the output is
//! written, and one that ends with no byte taken since the socket was first tried
//! resets the connection (one that finds progress begins another). A client that takes
//! nothing is reset `send_timeout` after its last response was written, as nginx resets
//! it; one that stops taking is reset within two `send_timeout`s of the last byte it
//! took (nginx: one, counted from the last write that made progress). The measure comes
//! from [`Events::postwrite`]: a wrapper around the handler must pass that on too (one
//! that does not makes the check count what the socket took at once as progress). Meanwhile the connection's own deadline waits for
//! the output: an idle close or a 408 comes once the client has taken what it was sent.
//! The close after a closing response (`Connection: close`, an error, a 408) waits for
//! that response to be sent under the same check, so a client that does not read cannot
//! hold its slot with it.
//!
//! When a new connection takes the last free slot, the connections idle longest (new
//! ones that sent nothing yet, keep-alive ones between requests, with all their output
//! sent; the order kept to within a second, in O(1) per request) are closed to make
//! room: one in eight of them, at least 1 and at most 32, as nginx does when its
//! connections run out. Idle clients can then not lock new ones out, however many they
//! are.
//!
//! # Buffers
//!
//! The connection's input buffer must hold the longest request head the server
//! accepts ([`HttpConfig::max_head`]: 8 KiB at the defaults; a smaller buffer lowers
//! that limit, and longer heads get 431). Bodies need no room of their own: they
//! stream through the buffer whatever their length, so a larger buffer only makes
//! fewer, larger reads of a large body or of many pipelined requests (the example
//! uses 16 KiB). The output buffer must hold the longest response
//! ([`Http::longest_response`]: about 1.2 KiB with [`Body::Aaaa`]); with an output
//! buffer too small for a response the connection is closed unanswered.
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

mod body;
mod date;
mod idle;
mod request;
mod responses;

use core::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use evio_proto::{Action, CloseError, Conn, ConnId, ConnInfo, Events, Flow, Instant, Loop};

pub use body::MAX_CHUNK_EXT;
use body::{Incoming, Step};
pub use date::{DATE_LEN, imf_fixdate, parse_imf_fixdate};
use idle::IdleList;
use request::{Head, read_head};
use responses::{CONTINUE, Reply, Responses};

/// The timeout that closes a connection after its closing response: the shortest
/// there is, so that it fires at the loop's next turn, once the engine has tried to
/// write that response (the engine fires every deadline that has come when it is told
/// the time, a zero one set in `timeout` included, before it writes anything).
pub const CLOSE_DELAY: Duration = Duration::from_nanos(1);

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

/// What the handler accepts and sends, and how long it waits: nginx's defaults, but
/// for the head timeout (10 s here, 60 s in nginx). A timeout of `None` is no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HttpConfig {
    /// The body of every `200 OK`.
    pub body: Body,
    /// Longest request head (request line and header fields, up to and including the
    /// blank line), in bytes; a longer one gets 431. Also the most bytes of trailer
    /// fields a chunked body may have. Default 8 KiB, nginx's
    /// `large_client_header_buffers` line length.
    pub max_head: usize,
    /// Largest request body, in bytes: a larger `Content-Length` gets 413 as soon as
    /// the head is read, and a chunked body gets it at the chunk size that takes it
    /// over. Bodies are not held, so this bounds time, not memory. Default 1 MiB,
    /// nginx's `client_max_body_size`.
    pub max_body: u64,
    /// Longest time for a request head, from its first byte (for a connection's first
    /// request, from the accept): a request still partial then gets 408 and the
    /// connection closes, one that has not begun is closed without a word. More bytes
    /// of the same head do not extend it (a client trickling bytes, slowloris, cannot
    /// hold a connection for ever). Default 10 s.
    pub head_timeout: Option<Duration>,
    /// Longest wait for more of a body under way, from the last read that brought
    /// some (nginx's `client_body_timeout`); then 408, and the connection closes.
    /// Default 60 s.
    pub body_timeout: Option<Duration>,
    /// How long a connection may wait for its next request after a response (nginx's
    /// `keepalive_timeout`); then it is closed without a word. Default 75 s.
    pub keepalive_timeout: Option<Duration>,
    /// How long output may wait for a client that does not read without any of it
    /// being taken (nginx's `send_timeout`); then the connection is reset. Default
    /// 60 s.
    pub send_timeout: Option<Duration>,
    /// Most requests one connection may carry: the response to the last says
    /// `Connection: close` (nginx's `keepalive_requests`). Default 1000.
    pub keepalive_requests: Option<u64>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body: Body::Hello,
            max_head: 8 * 1024,
            max_body: 1024 * 1024,
            head_timeout: Some(Duration::from_secs(10)),
            body_timeout: Some(Duration::from_secs(60)),
            keepalive_timeout: Some(Duration::from_secs(75)),
            send_timeout: Some(Duration::from_secs(60)),
            keepalive_requests: Some(1000),
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

/// Counts of what the handler answered and closed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HttpStats {
    /// Requests answered with 200.
    pub ok: u64,
    /// Requests answered with an error (400, 413, 431, 501, 505), each closing its
    /// connection.
    pub errors: u64,
    /// Requests cut off by the head or body timeout (408 sent).
    pub timeouts: u64,
    /// Connections closed idle: nothing sent within the head timeout of the accept,
    /// or no new request within the keep-alive timeout.
    pub idle: u64,
    /// Connections reset because their client took none of its output for the send
    /// timeout.
    pub send_timeouts: u64,
    /// Idle connections closed to make room for new ones (the pool was full).
    pub reclaimed: u64,
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
    /// Connections waiting for a request, least recently active first.
    idle: IdleList,
    /// [`HttpConfig::keepalive_requests`], `u64::MAX` for no limit (one comparison per
    /// request).
    most_requests: u64,
    /// Each send check's measure of progress: the output the socket left pending.
    unsent: Unsent,
    /// What has been answered so far.
    pub stats: HttpStats,
}

/// [`Http`]'s state for one connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HttpConn {
    /// Where the connection is between requests; with the output, it says what its
    /// timeout means.
    phase: Phase,
    /// Requests answered on this connection.
    requests: u64,
    /// The phase's own deadline (head, body, keep-alive, close), if it has one.
    due: Option<Instant>,
    /// A send check under way: the output pending when it began, and when it ends. A
    /// check that ends with no less output pending than the socket first left of it
    /// ([`Unsent`]; this when no write was tried) resets the connection.
    check: Option<(usize, Instant)>,
}

/// Where a connection is, as far as its requests go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
enum Phase {
    /// Opened, no request begun yet: the head timeout runs from the accept.
    #[default]
    New,
    /// Between requests (keep-alive).
    Idle,
    /// Part of a head has arrived.
    Head,
    /// The head was read; its body is arriving, to be answered with `reply`.
    Body { reply: Reply, incoming: Incoming },
    /// A closing response is written: the connection closes once it is sent.
    Closing,
}

/// What became of a response.
enum Wrote {
    /// Written.
    Yes,
    /// No room now: the request waits for the output to drain.
    Later,
    /// It can never fit (an output buffer smaller than the response, nothing pending).
    Never,
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
            idle: IdleList::default(),
            most_requests: config.keepalive_requests.unwrap_or(u64::MAX),
            unsent: Unsent::default(),
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

    /// Writes `bytes` whole, or says why not.
    #[inline]
    fn write(conn: &mut Conn<'_, HttpConn>, bytes: &[u8]) -> Wrote {
        match conn.write(bytes) {
            Ok(()) => Wrote::Yes,
            Err(_) if conn.pending() > 0 => Wrote::Later,
            Err(_) => Wrote::Never,
        }
    }

    /// Writes the 200 for a whole request (saying `Connection: close` if it is the
    /// last the connection may carry); returns whether it was written and whether the
    /// connection closes after it.
    #[inline]
    fn answer(
        &mut self,
        conn: &mut Conn<'_, HttpConn>,
        requests: &mut u64,
        reply: Reply,
    ) -> (Wrote, bool) {
        let count = *requests + 1;
        let reply = if count >= self.most_requests {
            reply.closing()
        } else {
            reply
        };
        let wrote = Http::write(conn, self.responses.get(reply));
        if let Wrote::Yes = wrote {
            *requests = count;
            self.stats.ok += 1;
        }
        (wrote, reply.closes())
    }

    /// The connection closes once what it has written is sent: at the loop's next turn
    /// if the socket took it all ([`CLOSE_DELAY`]), or when it drains, under the send
    /// timeout. A `Close` returned right away would wait for a client that does not
    /// read for ever: the engine bounds no flush before a close.
    fn close_when_sent(&mut self, conn: &mut Conn<'_, HttpConn>) -> Action {
        let id = conn.id();
        self.idle.remove(id);
        let due = conn.now() + CLOSE_DELAY;
        let ctx = conn.context();
        ctx.phase = Phase::Closing;
        ctx.due = Some(due);
        ctx.check = None;
        conn.set_timeout(Some(CLOSE_DELAY));
        Action::None
    }

    /// Arms the connection's one timeout: the phase's own deadline `due`, or, while
    /// output waits for the client, the end of a send check begun now if that comes
    /// first. (A callback that leaves output pending has just written it: the engine
    /// reads a connection only while its socket takes all it is given.)
    ///
    /// `lazily`, a timeout already set for later than now and no later than that is
    /// left as it is (the keep-alive connection's case, request after request: its
    /// deadline only ever moves later): it fires early, and [`Events::timeout`] sets it
    /// again for what is left. One call per send timeout instead of a timer update per
    /// request. A stall is armed exactly, so that its deadline (`now + send_timeout`)
    /// tells it from a closing response's (`now + CLOSE_DELAY`) to the simulator's
    /// model, which does not see what a call wrote.
    #[inline]
    fn arm(&mut self, conn: &mut Conn<'_, HttpConn>, due: Option<Instant>, lazily: bool) {
        let (now, pending) = (conn.now(), conn.pending());
        let check = match self.config.send_timeout {
            Some(send) if pending > 0 => {
                // What the socket leaves of it is the measure, once it has been tried.
                self.unsent.begin(conn.id());
                Some((pending, now + send))
            }
            _ => None,
        };
        let ctx = conn.context();
        ctx.due = due;
        ctx.check = check;
        let at = earliest(due, check.map(|(_, at)| at));
        if lazily
            && let (Some(set), Some(at)) = (conn.timeout_at(), at)
            && now < set
            && set <= at
        {
            return;
        }
        set_deadline(conn, at);
    }

    /// Closes idle connections to make room when `others` has no free slot left: the
    /// ones idle longest, one in eight of them (at least 1, at most 32), as nginx's
    /// `ngx_drain_connections` does. Only connections with all their output sent are
    /// closed (one that still has some is not idle: the send timeout watches it).
    fn make_room(&mut self, others: &mut Loop<'_, HttpConn>) {
        if others.free_slots() > 0 {
            return;
        }
        let want = (self.idle.len() / 8).clamp(1, 32);
        let mut closed = 0;
        while closed < want
            && let Some(id) = self.idle.pop_front()
        {
            if others.pending(id) == Some(0) && others.close(id).is_ok() {
                closed += 1;
                self.stats.reclaimed += 1;
            }
        }
    }
}

impl Events for Http {
    type Context = HttpConn;

    fn opened(&mut self, conn: &mut Conn<'_, HttpConn>) -> Action {
        self.make_room(conn.others());
        // A new connection is idle too (nginx counts it reusable): the first to go if
        // it sends nothing while others need its slot.
        self.idle.push_back(conn.id(), conn.now());
        let due = self.config.head_timeout.map(|d| conn.now() + d);
        self.arm(conn, due, false);
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, HttpConn>, input: &[u8]) -> Action {
        // What the loop below changes (the rest of the context is the timer's, set at the
        // end): copied out, as `conn` is borrowed by every write.
        let HttpConn {
            mut phase,
            mut requests,
            due: began_due,
            ..
        } = *conn.context();
        if phase == Phase::Closing {
            // The last response is written: nothing more is read (left unconsumed, so
            // the close lingers).
            conn.consume(0);
            return if conn.pending() == 0 {
                Action::Close
            } else {
                Action::None
            };
        }
        self.refresh_date(conn.now());
        let max_head = self.config.max_head.min(conn.input_capacity());
        let (max_body, max_trailer) = (self.config.max_body, self.config.max_head);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let began = phase;
        let mut used = 0;
        let mut answered = false;
        // What ends this call: a response that waits for room, one after which the
        // connection closes, or one that can never be written.
        let mut stalled = false;
        let mut closing = false;
        let mut never = false;
        loop {
            let wrote = if let Phase::Body {
                reply,
                mut incoming,
            } = phase
            {
                match incoming.feed(&input[used..], max_body, max_trailer) {
                    (n, Step::More) => {
                        used += n;
                        phase = Phase::Body { reply, incoming };
                        break;
                    }
                    (n, Step::Done) => {
                        // Its last byte is consumed only with its response written.
                        let (wrote, closes) = self.answer(conn, &mut requests, reply);
                        if let Wrote::Yes = wrote {
                            used += n;
                            answered = true;
                            phase = Phase::Idle;
                            closing = closes;
                        }
                        wrote
                    }
                    (_, Step::Refused(reply)) => self.refuse(conn, reply, &mut closing),
                }
            } else {
                if used == input.len() {
                    break;
                }
                match read_head(&input[used..], &mut headers, max_head, max_body) {
                    Head::Partial => {
                        phase = Phase::Head;
                        break;
                    }
                    Head::Refused(reply) => self.refuse(conn, reply, &mut closing),
                    Head::Request {
                        len,
                        reply,
                        body: None,
                        ..
                    } => {
                        let (wrote, closes) = self.answer(conn, &mut requests, reply);
                        if let Wrote::Yes = wrote {
                            used += len;
                            answered = true;
                            phase = Phase::Idle;
                            closing = closes;
                        }
                        wrote
                    }
                    Head::Request {
                        len,
                        reply,
                        body: Some(incoming),
                        expect_continue,
                    } => {
                        let wrote = if expect_continue {
                            Http::write(conn, CONTINUE)
                        } else {
                            Wrote::Yes
                        };
                        if let Wrote::Yes = wrote {
                            used += len;
                            phase = Phase::Body { reply, incoming };
                        }
                        wrote
                    }
                }
            };
            match wrote {
                Wrote::Yes if closing => break,
                Wrote::Yes => {}
                Wrote::Later => {
                    stalled = true;
                    break;
                }
                Wrote::Never => {
                    never = true;
                    break;
                }
            }
        }
        conn.consume(used);
        let ctx = conn.context();
        ctx.phase = phase;
        ctx.requests = requests;
        let id = conn.id();
        if never {
            // An output buffer too small for any response: nothing can be said.
            self.idle.remove(id);
            return Action::Close;
        }
        if closing {
            return self.close_when_sent(conn);
        }
        let now = conn.now();
        let after = |timeout: Option<Duration>| timeout.map(|d| now + d);
        let due = if stalled {
            // A response waits for room: the engine stops reading until the output
            // drains (then hands the request back to `data`), and the client must take
            // some of it within the send timeout.
            self.idle.remove(id);
            None
        } else {
            match phase {
                Phase::Idle => {
                    self.idle.push_back(id, now);
                    after(self.config.keepalive_timeout)
                }
                Phase::Head => {
                    self.idle.remove(id);
                    // A head's time runs from its first byte (a connection's first
                    // head's from the accept): more bytes of it do not extend it.
                    if answered || !matches!(began, Phase::New | Phase::Head) {
                        after(self.config.head_timeout)
                    } else {
                        began_due
                    }
                }
                Phase::Body { .. } => {
                    self.idle.remove(id);
                    after(self.config.body_timeout)
                }
                // Input always moves a new connection on, and a closing one returned
                // above.
                Phase::New | Phase::Closing => began_due,
            }
        };
        self.arm(conn, due, !stalled);
        Action::None
    }

    fn timeout(&mut self, conn: &mut Conn<'_, HttpConn>) -> Action {
        let ctx = *conn.context();
        // A check under way goes on while the client has not taken the output: behind
        // TLS, responses are taken into records at once, so what still waits is what
        // the transport has not sent (`unsent`), not `pending`.
        let pending = if ctx.check.is_some() {
            conn.unsent()
        } else {
            conn.pending()
        };
        let now = conn.now();
        if pending > 0
            && let Some(send) = self.config.send_timeout
        {
            // Output waits: the client is not reading, or not fast enough. Nothing is
            // written while it waits (the engine does not read a blocked connection),
            // so less pending is progress.
            let id = conn.id();
            let check = match ctx.check {
                Some((before, at)) if at <= now => {
                    // Progress since the socket was first tried after the check began
                    // (what it took at once is no sign the client reads).
                    if pending >= self.unsent.get(id).unwrap_or(before) {
                        self.stats.send_timeouts += 1;
                        self.idle.remove(id);
                        return Action::Abort;
                    }
                    self.unsent.set(id, pending);
                    (pending, now + send)
                }
                // The phase's deadline came first: what it would do waits for the
                // output, under the check.
                Some(check) => check,
                None => {
                    self.unsent.set(id, pending);
                    (pending, now + send)
                }
            };
            conn.context().check = Some(check);
            set_deadline(conn, earliest(ctx.due.filter(|&d| d > now), Some(check.1)));
            return Action::None;
        }
        conn.context().check = None;
        match ctx.due {
            Some(due) if due <= now => {}
            // A send check came first and found the output sent: the phase's own
            // deadline is still to come.
            due => {
                set_deadline(conn, due);
                return Action::None;
            }
        }
        match ctx.phase {
            Phase::New | Phase::Idle => {
                self.stats.idle += 1;
                self.idle.remove(conn.id());
                Action::Close
            }
            Phase::Head | Phase::Body { .. } => {
                self.stats.timeouts += 1;
                self.refresh_date(now);
                // Without room for it the 408 is left out: the client is not reading
                // anyway (only without a send timeout can output wait here).
                let _ = conn.write(self.responses.get(Reply::RequestTimeout));
                self.close_when_sent(conn)
            }
            Phase::Closing => Action::Close,
        }
    }

    fn drained(&mut self, conn: &mut Conn<'_, HttpConn>) -> Action {
        // The closing response is sent. (A request that waited for room comes back in
        // `data`, which the engine calls next.)
        if conn.context().phase == Phase::Closing {
            return Action::Close;
        }
        Action::None
    }

    fn closed(
        &mut self,
        info: &ConnInfo,
        _: HttpConn,
        _: Option<CloseError>,
        _: &mut Loop<'_, HttpConn>,
    ) -> Flow {
        self.idle.remove(info.id);
        Flow::Continue
    }

    fn postwrite(&mut self, id: ConnId, _written: usize, remaining: usize) {
        if remaining > 0 {
            self.unsent.tried(id, remaining);
        }
    }
}

/// What the socket left of each connection's output the first time it was tried after
/// a send check began, by slot: the measure of a check's progress. Counting from the
/// output pending when the check began would take what the socket took at once, right
/// after the response was written, for a sign that the client reads, and give a client
/// that reads nothing a second send timeout. One word per slot, grown to the highest
/// slot seen.
#[derive(Clone, Debug, Default)]
struct Unsent {
    /// Per slot: [`Unsent::UNTRIED`] until a write leaves output after the check began.
    left: Vec<usize>,
}

impl Unsent {
    const UNTRIED: usize = usize::MAX;

    /// A send check begins for `id`, its output not yet tried.
    fn begin(&mut self, id: ConnId) {
        self.set(id, Unsent::UNTRIED);
    }

    /// The measure of `id`'s check is `left`.
    fn set(&mut self, id: ConnId, left: usize) {
        let slot = id.slot();
        if slot >= self.left.len() {
            self.left.resize(slot + 1, Unsent::UNTRIED);
        }
        self.left[slot] = left;
    }

    /// A write to `id` left `left` bytes pending: the measure, if it has none yet.
    #[inline]
    fn tried(&mut self, id: ConnId, left: usize) {
        if let Some(l) = self.left.get_mut(id.slot())
            && *l == Unsent::UNTRIED
        {
            *l = left;
        }
    }

    /// `id`'s measure, if a write set one.
    fn get(&self, id: ConnId) -> Option<usize> {
        self.left
            .get(id.slot())
            .copied()
            .filter(|&l| l != Unsent::UNTRIED)
    }
}

/// The earlier of two deadlines (`None`: none).
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Sets the connection's timeout to fire at `at` (`None`: no timeout).
fn set_deadline(conn: &mut Conn<'_, HttpConn>, at: Option<Instant>) {
    let now = conn.now();
    conn.set_timeout(at.map(|at| at.saturating_duration_since(now)));
}

impl Http {
    /// Writes the error response `reply` for a refused request (left unconsumed, so
    /// the close lingers); `closing` is set once it is written.
    fn refuse(&mut self, conn: &mut Conn<'_, HttpConn>, reply: Reply, closing: &mut bool) -> Wrote {
        let wrote = Http::write(conn, self.responses.get(reply));
        if let Wrote::Yes = wrote {
            self.stats.errors += 1;
            *closing = true;
        }
        wrote
    }
}

#[cfg(test)]
mod tests;
