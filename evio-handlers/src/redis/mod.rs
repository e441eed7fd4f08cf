//! A Redis-compatible key-value server: RESP multibulk and inline requests, pipelined,
//! with Redis 7's replies and error texts.
//!
//! Commands (names in any case): `PING [message]`, `ECHO message`, `SET key value`,
//! `GET key`, `DEL key [key …]`, `EXISTS key [key …]`, `FLUSHDB [ASYNC|SYNC]`,
//! `DBSIZE`, `CONFIG GET parameter [parameter …]`, `QUIT` and `SHUTDOWN [NOSAVE|SAVE]
//! [NOW] [FORCE] [ABORT]`. Every reply, error replies included, is byte for byte what
//! Redis 7.0 sends for the same request, except where the [`Redis`] docs list a
//! difference.

mod client;
mod commands;
mod glob;
pub(crate) mod resp;

use core::time::Duration;
use std::sync::{Arc, Mutex, PoisonError};

use evio_proto::{Action, Conn, Events};

pub use client::Client;
use client::{Fed, reply};
pub use commands::ENTRY_OVERHEAD;
use commands::{Args, Db, Step, execute};
#[cfg(feature = "sim")]
pub(crate) use glob::glob_match;
use resp::Parsed;
pub use resp::{ARG_OVERHEAD, ProtocolError};

/// A multibulk request not yet whole at the front of the input is gathered apart (see
/// [`Client`]) once this much of it has arrived, even with room left in the input
/// buffer.
pub const SPILL_AT: usize = 1024;

/// Whether the partial request filling `input` is large enough to gather apart.
fn is_large(input: &[u8]) -> bool {
    input.len() >= SPILL_AT
}

/// The default [`Limits::max_bulk_len`]: 512 MiB, Redis's `proto-max-bulk-len`.
pub const DEFAULT_MAX_BULK_LEN: usize = 512 << 20;

/// The default [`Limits::max_request_len`]: 1 GiB, Redis's `client-query-buffer-limit`.
pub const DEFAULT_MAX_REQUEST_LEN: usize = 1 << 30;

/// How large a request may be. A request larger than the connection's input buffer is
/// gathered in memory of the connection's own as it arrives; these limits bound that
/// memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// The longest argument (`$N` with N above it is `-ERR Protocol error: invalid bulk
    /// length`, and a close).
    pub max_bulk_len: usize,
    /// The most a multibulk request's arguments may add up to, each counted as its
    /// length plus [`ARG_OVERHEAD`]. A request that passes it closes the connection
    /// without a reply, as Redis closes a client whose query buffer passes
    /// `client-query-buffer-limit`.
    pub max_request_len: usize,
}

impl Default for Limits {
    /// Redis's defaults: [`DEFAULT_MAX_BULK_LEN`], [`DEFAULT_MAX_REQUEST_LEN`].
    fn default() -> Self {
        Limits {
            max_bulk_len: DEFAULT_MAX_BULK_LEN,
            max_request_len: DEFAULT_MAX_REQUEST_LEN,
        }
    }
}

/// How a [`Redis`] server behaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RedisConfig {
    /// Close a client that sent nothing for this long (Redis's `timeout`; `None`, the
    /// default: never). A client still being sent a reply is not idle.
    pub idle_timeout: Option<Duration>,
    /// How large a request may be.
    pub limits: Limits,
    /// The most the store may hold, in bytes, before writes are refused (Redis's
    /// `maxmemory`, with its `noeviction` policy; 0, the default: no limit). What the
    /// store holds is counted per entry as its key's length + its value's length +
    /// [`ENTRY_OVERHEAD`]. As Redis does, a `SET` is refused with
    /// `-OOM command not allowed when used memory > 'maxmemory'.` when the store holds
    /// more than this *before* it runs, so the last write accepted can take the store
    /// past the limit by its own size (at most [`Limits::max_request_len`]). Reads,
    /// `DEL` and `FLUSHDB` always run; `FLUSHDB` brings the count back to 0.
    ///
    /// Unlike Redis's, the count leaves out the connections' buffers (fixed by the
    /// server's pool, and by [`Limits`] for large requests) and the allocator's own
    /// spare memory; a value overwritten in place keeps an allocation of up to twice
    /// its length (or 64 bytes), counted at its length.
    pub maxmemory: usize,
}

/// What a [`Redis`] server has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RedisStats {
    /// Requests served (commands run, unknown and refused ones included).
    pub requests: u64,
    /// Requests larger than the input buffer, gathered as they arrived.
    pub spilled: u64,
    /// Replies that did not fit the output buffer, sent on as it drained.
    pub replies_held: u64,
    /// Connections closed for a protocol error (each after its `-ERR Protocol error`).
    pub protocol_errors: u64,
    /// Connections closed for a request over [`Limits::max_request_len`].
    pub too_large: u64,
    /// Connections closed for being idle.
    pub timeouts: u64,
    /// Writes refused because the store held more than [`RedisConfig::maxmemory`].
    pub oom_refusals: u64,
    /// Connections aborted for a `POST` or `Host:` command: an HTTP request sent to
    /// the server, which Redis takes for a cross-protocol attack. A server that logs
    /// Redis's warning for it watches this count (the example does).
    pub security_refusals: u64,
}

/// A Redis-compatible server: one key space shared by every connection.
///
/// # Requests and replies
///
/// - Requests are RESP multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) or inline
///   (`GET k\r\n`), pipelined: every whole request in a `data` call's input is served
///   in that call, and a request split across reads at any byte waits for its end.
/// - A protocol error (a bad `*N` or `$N`, an argument not starting with `$`, quotes
///   that do not close) is answered with Redis's `-ERR Protocol error: …`, and the
///   connection is closed once that reply is out; input after the bad request is not
///   served (the engine reads and drops it while the close lingers, so that the reply
///   is not destroyed by a reset). Other connections go on.
/// - A multibulk request larger than the input buffer (or, arriving in pieces, larger
///   than [`SPILL_AT`]) is gathered as it arrives, in the connection's own memory, up
///   to [`Limits`]; it is served once whole. An inline request or a header line that
///   does not fit the input buffer is Redis's "too big" protocol error (Redis's limit
///   for these is 64 KiB; here it is the input buffer).
/// - A request named `POST` or `Host:` (in any case, inline or multibulk) is the start
///   of an HTTP request: a web page making a browser talk to the server (cross-protocol
///   scripting). As Redis 7 does, nothing is answered for it and nothing after it is
///   served; the connection is aborted at once (a reset), and what was still owed to
///   it is dropped, replies to the requests before it in the same read included (they
///   did run: Redis runs them too, and drops their replies with the client). Replies
///   already sent stay sent. [`RedisStats::security_refusals`] counts these
///   connections, so that a server can log Redis's warning (the example prints it).
/// - A reply that does not fit the output buffer is written as far as it fits and the
///   rest is sent as the output drains (from the stored value itself for `GET`: a 1 GiB
///   value costs no copy), before any later request is served. Nothing is lost, and
///   while a reply is owed the engine stops reading the connection (backpressure).
///
/// # Performance
///
/// A pipelined batch is answered in one `data` call; `PING`, `ECHO`, `GET` and a `SET`
/// that overwrites a value at least as large (and at most twice as large, or 64 bytes)
/// allocate nothing; commands are matched without allocation and keys are looked up
/// as `&[u8]` with a fast hasher.
///
/// # Differences from Redis 7.0
///
/// - `SET` takes no options (`NX`, `EX`, …): they are a syntax error.
/// - `CONFIG GET` knows three parameters, `save` (`""`), `appendonly` (`no`) and
///   `maxmemory`; any other `CONFIG` subcommand is unknown. Several parameters come in
///   that order.
/// - `maxmemory` counts what the store holds, not all the process's memory (see
///   [`RedisConfig::maxmemory`]); there is no eviction (Redis's default policy,
///   `noeviction`).
/// - A NUL byte in a header or inline line is an ordinary byte (Redis's C string scan
///   stops there and waits for more input).
/// - `SHUTDOWN` stops the server without saving anything (there is nothing to save).
///
/// One handler serves one loop. The loops of a server of several share one key space
/// through [`SharedStore`] ([`Redis::sharing`]): the simplest correct scheme, one lock
/// around the whole key space, taken for each request, so every command is atomic
/// (multi-key ones too) and every loop sees every write at once; loops contend for it
/// under load, so a second loop adds connection handling, not store throughput.
#[derive(Debug, Default)]
pub struct Redis {
    db: Store,
    config: RedisConfig,
    /// Reused for every request (so a request allocates nothing): the arguments' spans,
    /// an inline request's decoded arguments, and error replies being formatted.
    spans: Vec<(usize, usize)>,
    inline: Vec<u8>,
    scratch: Vec<u8>,
    stats: RedisStats,
}

impl Redis {
    /// Serves the requests in `input` (the body of `data`).
    fn requests(&mut self, conn: &mut Conn<'_, Client>, input: &[u8]) -> Action {
        if let Some(idle) = self.config.idle_timeout {
            conn.set_timeout(Some(idle));
        }
        // A header or inline line that starts at the front of a full buffer and has
        // not ended there never will.
        let full = input.len() >= conn.input_capacity();
        let (mut pos, mut step) = (0, Step::Next);
        if conn.context().busy() {
            (pos, step) = self.resume(conn, input, full);
        }
        while step == Step::Next && pos < input.len() {
            let multibulk = input[pos] == b'*';
            let mut decoded = false;
            let parsed = if multibulk {
                let limits = &self.config.limits;
                resp::multibulk(
                    input,
                    pos,
                    limits.max_bulk_len,
                    limits.max_request_len,
                    &mut self.spans,
                )
            } else {
                resp::inline(input, pos, &mut self.inline, &mut self.spans, &mut decoded)
            };
            match parsed {
                Parsed::Request { end } => {
                    self.stats.requests += 1;
                    let base = if decoded { &self.inline } else { input };
                    let args = Args::new(base, &self.spans);
                    step = self
                        .db
                        .write(|db| execute(db, args, conn, &mut self.scratch, &mut self.stats));
                    pos = end;
                }
                Parsed::Empty { end } => pos = end,
                // A multibulk request not all there is gathered as it arrives once it
                // fills the buffer, or before that once it is large: parsing it from
                // its start again on every read would cost time quadratic in its size.
                Parsed::Incomplete if pos == 0 && multibulk && (full || is_large(input)) => {
                    self.stats.spilled += 1;
                    (pos, step) = self.spill(conn, input, full);
                }
                Parsed::Incomplete if pos == 0 && full => {
                    // All but the last byte is consumed: the close then lingers over
                    // unconsumed input (the rest of the line is still coming), and
                    // what was consumed says, to a model, that the line was too big.
                    step = self.protocol_error(conn, ProtocolError::TooBigInline);
                    pos = input.len() - 1;
                }
                Parsed::Incomplete => step = Step::Wait,
                Parsed::Error { error, end } => {
                    step = self.protocol_error(conn, error);
                    pos = end;
                }
                Parsed::TooLarge { end } => {
                    self.stats.too_large += 1;
                    step = Step::Close;
                    pos = end;
                }
            }
        }
        match step {
            Step::Next | Step::Wait => {
                conn.consume(pos);
                Action::None
            }
            Step::Stop => {
                self.stats.replies_held += 1;
                conn.consume(pos);
                Action::None
            }
            Step::Shutdown => {
                conn.consume(pos);
                Action::Shutdown
            }
            Step::Refuse => {
                // Aborted, not closed: what was owed to this connection, replies to
                // the requests before this one in the same read included, goes with
                // it (Redis frees the client with its reply buffer), and an attacker
                // holds no slot while a close lingers. The request is consumed, so
                // a model knows where it ended.
                self.stats.security_refusals += 1;
                conn.consume(pos);
                Action::Abort
            }
            Step::Close if conn.context().owes_output() => {
                // The close waits for the reply (see `drained`); what follows the
                // request is not served.
                self.stats.replies_held += 1;
                conn.context().slow_mut().close_after = true;
                conn.consume(pos);
                Action::None
            }
            Step::Close => {
                // Input left unconsumed makes the close linger, so the reply survives
                // whatever the peer still sends; but nothing consumed from a full
                // buffer would read as a frame too large, so then one byte is.
                conn.consume(if pos == 0 && full { 1 } else { pos });
                Action::Close
            }
        }
    }

    /// A server with an empty key space of its own.
    pub fn new(config: RedisConfig) -> Self {
        Redis {
            db: Store::Own(Db::new(config.maxmemory)),
            config,
            ..Redis::default()
        }
    }

    /// A server (one loop's handler) over `store`, shared with the other loops' (the
    /// store's own `maxmemory` applies, not `config`'s).
    pub fn sharing(config: RedisConfig, store: &SharedStore) -> Self {
        Redis {
            db: Store::Shared(store.0.clone()),
            config,
            ..Redis::default()
        }
    }

    /// How it was configured.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// The value of `key`, if set (a copy: the store may be shared).
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.db.read(|db| db.get(key).map(|v| v.to_vec()))
    }

    /// Keys set (`DBSIZE`).
    pub fn dbsize(&self) -> usize {
        self.db.read(Db::len)
    }

    /// What the store holds, as counted towards [`RedisConfig::maxmemory`]: for each
    /// key, its length + its value's length + [`ENTRY_OVERHEAD`].
    pub fn used_memory(&self) -> usize {
        self.db.read(Db::used)
    }

    /// Every key set, in no particular order (copies).
    pub fn keys(&self) -> Vec<Vec<u8>> {
        self.db.read(|db| db.keys().map(<[u8]>::to_vec).collect())
    }

    /// What it has done so far.
    pub fn stats(&self) -> &RedisStats {
        &self.stats
    }

    /// Writes the `-ERR Protocol error: …` line; the connection closes after it.
    #[cold]
    fn protocol_error(&mut self, conn: &mut Conn<'_, Client>, error: ProtocolError) -> Step {
        self.stats.protocol_errors += 1;
        self.scratch.clear();
        self.scratch.extend_from_slice(b"-ERR ");
        error.write_text(&mut self.scratch);
        self.scratch.extend_from_slice(b"\r\n");
        reply(conn, &self.scratch);
        Step::Close
    }

    /// Feeds `input` to a large request arriving; serves it once whole. Returns how
    /// much input was used and what came of it.
    #[cold]
    fn spill(&mut self, conn: &mut Conn<'_, Client>, input: &[u8], full: bool) -> (usize, Step) {
        let Limits {
            max_bulk_len,
            max_request_len,
        } = self.config.limits;
        // Out of the connection's state for the call, so that the arguments can be read
        // while the connection is written to.
        let mut spill = core::mem::take(&mut conn.context().slow_mut().spill);
        let fed = spill.feed(input, full, max_bulk_len, max_request_len);
        let result = match fed {
            Fed::NeedMore { end } => (end, Step::Wait),
            Fed::Done { end } => {
                self.stats.requests += 1;
                let args = Args::new(&spill.bytes, &spill.spans);
                (
                    end,
                    self.db
                        .write(|db| execute(db, args, conn, &mut self.scratch, &mut self.stats)),
                )
            }
            Fed::Empty { end } => (end, Step::Next),
            Fed::Error { error, end } => (end, self.protocol_error(conn, error)),
            Fed::TooLarge { end } => {
                self.stats.too_large += 1;
                (end, Step::Close)
            }
        };
        let arriving = matches!(fed, Fed::NeedMore { .. });
        if !arriving {
            spill.reset();
        }
        let slow = conn.context().slow_mut();
        slow.spill = spill;
        slow.spilling = arriving;
        result
    }

    /// Before any new request: the reply still owed, a close waiting for it, a large
    /// request still arriving.
    #[cold]
    fn resume(&mut self, conn: &mut Conn<'_, Client>, input: &[u8], full: bool) -> (usize, Step) {
        if !client::flush(conn) {
            // The write that did not fit tells the engine the output is full: it holds
            // the input (whole or not) until the output drains, then calls again.
            return (0, Step::Wait);
        }
        let slow = conn.context().slow_mut();
        if slow.close_after {
            return (0, Step::Close);
        }
        if slow.spilling {
            return self.spill(conn, input, full);
        }
        (0, Step::Next)
    }
}

impl Events for Redis {
    type Context = Client;

    fn opened(&mut self, conn: &mut Conn<'_, Client>) -> Action {
        if let Some(idle) = self.config.idle_timeout {
            conn.set_timeout(Some(idle));
        }
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, Client>, input: &[u8]) -> Action {
        let action = self.requests(conn, input);
        if conn.context().owes_output() {
            // A request is activity: the idle time of a client being sent a reply runs
            // from what the engine holds now (see `timeout`).
            let pending = conn.pending();
            conn.context().slow_mut().pending_seen = pending;
        }
        action
    }

    fn drained(&mut self, conn: &mut Conn<'_, Client>) -> Action {
        if !conn.context().busy() {
            return Action::None;
        }
        // Output going out is activity: an idle client is one that neither sends nor
        // is sent anything (as Redis counts it).
        if let Some(idle) = self.config.idle_timeout {
            conn.set_timeout(Some(idle));
        }
        let flushed = client::flush(conn);
        let pending = conn.pending();
        let slow = conn.context().slow_mut();
        slow.pending_seen = pending;
        if flushed && slow.close_after {
            return Action::Close;
        }
        Action::None
    }

    fn timeout(&mut self, conn: &mut Conn<'_, Client>) -> Action {
        if conn.context().owes_output() {
            let pending = conn.pending();
            let slow = conn.context().slow_mut();
            if pending < slow.pending_seen {
                // Still being sent a reply, and the client took some of it since its
                // last activity: not idle (Redis counts a write as interaction).
                slow.pending_seen = pending;
                conn.set_timeout(self.config.idle_timeout);
                return Action::None;
            }
            // A client that takes none of its reply for the idle time is freed, its
            // output discarded, as Redis frees it: a close would wait for output it
            // never reads.
            self.stats.timeouts += 1;
            return Action::Abort;
        }
        self.stats.timeouts += 1;
        Action::Close
    }
}

/// The key space of the loops of one server: each loop's [`Redis`] serves it
/// ([`Redis::sharing`]).
#[derive(Clone, Debug)]
pub struct SharedStore(Arc<Mutex<Db>>);

impl SharedStore {
    /// An empty key space whose writes are refused while it holds more than
    /// `maxmemory` (0: no limit; see [`RedisConfig::maxmemory`]).
    pub fn new(maxmemory: usize) -> Self {
        SharedStore(Arc::new(Mutex::new(Db::new(maxmemory))))
    }
}

/// A handler's key space: its own, or one shared by the loops of a server.
#[derive(Debug)]
enum Store {
    Own(Db),
    Shared(Arc<Mutex<Db>>),
}

impl Default for Store {
    fn default() -> Self {
        Store::Own(Db::default())
    }
}

impl Store {
    /// Runs `f` on the key space (holding the lock, if shared).
    #[inline]
    fn write<R>(&mut self, f: impl FnOnce(&mut Db) -> R) -> R {
        match self {
            Store::Own(db) => f(db),
            Store::Shared(db) => f(&mut db.lock().unwrap_or_else(PoisonError::into_inner)),
        }
    }

    fn read<R>(&self, f: impl FnOnce(&Db) -> R) -> R {
        match self {
            Store::Own(db) => f(db),
            Store::Shared(db) => f(&db.lock().unwrap_or_else(PoisonError::into_inner)),
        }
    }
}
