//! A Redis proxy in the manner of twemproxy: many clients in front, a few Redis
//! servers behind, every key on one of them.
//!
//! - **Sharding.** A key's backend is chosen by a ketama continuum over FNV-1a 64
//!   ([`hash`] documents the scheme, hash tags included). A command whose first
//!   argument is its only key (GET, SET, INCR, HSET, LPUSH, ZADD, … ) is forwarded
//!   whole, byte for byte, to that key's backend.
//! - **Local and split commands.** PING, ECHO and QUIT are answered here. MGET, DEL and
//!   EXISTS with several keys are split: one sub-request per backend involved, with
//!   that backend's keys in order; the replies are merged in the client's order (MGET:
//!   one array in key order; DEL, EXISTS: the sum). Any other command (another
//!   multi-key command, or one with no key: CONFIG, FLUSHDB, KEYS, SELECT, …) is
//!   refused with an error naming it.
//! - **Order.** Every client gets its replies in its own request order, pipelining
//!   kept, however the backends interleave: each client keeps a FIFO of its outstanding
//!   requests ("jobs"), each backend connection a FIFO of whose request each pending
//!   reply answers. A reply for the oldest job goes straight to the client's output; a
//!   reply that overtook an older one waits in its job.
//! - **Multiplexing.** All clients share [`ProxyConfig::connections_per_backend`]
//!   connections to each backend (default 1); a client always uses the same one.
//! - **Failures.** A backend that cannot be reached, closes, or sends no reply within
//!   [`ProxyConfig::reply_timeout`] has its pending requests answered with
//!   `-ERR backend HOST:PORT <why>`, and so are new requests for its keys while it is
//!   down; the other backends' keys keep working. It is reconnected with back-off
//!   ([`ProxyConfig::backoff_min`] doubling to [`ProxyConfig::backoff_max`]).
//! - **Bounded memory.** A client has at most [`ProxyConfig::max_inflight`]
//!   outstanding requests (4 once its replies are large, so a pipeline of GETs of a
//!   big value cannot make the proxy hold many of them). Requests beyond that bound
//!   stay unread in the engine's input buffer ([`Conn::hold`]): once it is full the
//!   engine stops reading the client, so TCP slows it down, and the proxy gives the
//!   input back ([`Loop::resume`]) once the client's outstanding requests are down to
//!   half the bound (once per half a window, not once per reply). While a reply of its
//!   waits for room in its output (a client that does not read), no more of its
//!   requests is forwarded, and the engine stops reading it the same way. A client's
//!   memory is thus its engine buffers plus a fixed queue of jobs; only a single
//!   request larger than half the input buffer is gathered apart (in a buffer of the
//!   client's, as long as that request).
//! - **No allocation per request** once warmed up: the jobs of a client are allocated
//!   when the client's record is first made and reused by the clients after it; a
//!   reply that cannot go straight to its client waits in a buffer taken from a pool
//!   ([`ProxyConfig::reply_buffers`] made up front, more kept once made, each keeping
//!   its capacity up to 64 KiB); the FIFOs are reserved up front. Requests beyond the
//!   in-flight bound are held by the engine, not copied (tests/redis_proxy_alloc.rs
//!   counts the loop thread's allocations).
//! - **Malformed input** gets Redis's `-ERR Protocol error: …` reply (after the
//!   replies to the requests before it) and the connection is closed. No bytes make
//!   it panic.
//!
//! The engine resolves no names: give [`ProxyConfig`] socket addresses (the example
//! resolves `HOST:PORT` with `std::net::ToSocketAddrs` before serving).

mod commands;
pub mod hash;
mod reply;

use core::time::Duration;
use std::collections::VecDeque;
use std::net::SocketAddr;

use evio_proto::{
    Action, CloseError, Conn, ConnId, ConnInfo, ConnectAddr, Events, Flow, Instant, Loop, Tick,
};

use crate::redis::resp::{self, Parsed};
use commands::{Route, keys_are_all_arguments, route};
use hash::Continuum;
use reply::{Framer, integer, value_len};

/// The default [`ProxyConfig::max_inflight`].
pub const DEFAULT_MAX_INFLIGHT: usize = 128;

/// The default [`ProxyConfig::reply_buffers`] (512 KiB of them).
pub const DEFAULT_REPLY_BUFFERS: usize = 1024;

/// A reply at least this long makes its client "large": at most [`LARGE_INFLIGHT`] of
/// its requests are outstanding until a smaller reply comes.
pub const LARGE_REPLY: usize = 16 << 10;

/// Outstanding requests of a client whose last reply was large.
pub const LARGE_INFLIGHT: usize = 4;

/// Reply buffers larger than this are given back once used (so one huge reply does
/// not pin its memory to a job forever).
const KEEP_CAPACITY: usize = 64 << 10;

/// The longest argument a request may have (Redis's `proto-max-bulk-len`).
const MAX_BULK: usize = 512 << 20;

/// The most a request's arguments may add up to (Redis's `client-query-buffer-limit`).
const MAX_REQUEST: usize = 1 << 30;

/// Pending replies a backend connection's FIFO holds before it has to grow.
const FIFO_RESERVE: usize = 4096;

/// How the proxy is set up.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// The backends, in the order that names them in the continuum (see [`hash`]).
    pub backends: Vec<SocketAddr>,
    /// Connections to each backend, shared by all clients (a client always uses the
    /// same one, chosen by its record's index).
    pub connections_per_backend: usize,
    /// How long a connect to a backend may take.
    pub connect_timeout: Duration,
    /// How long a backend with requests pending may go without sending a reply
    /// before its connection is dropped and its pending requests get errors.
    pub reply_timeout: Duration,
    /// The first delay before reconnecting to a backend that failed.
    pub backoff_min: Duration,
    /// The longest delay between reconnects (the delay doubles up to it).
    pub backoff_max: Duration,
    /// The most outstanding requests of one client.
    pub max_inflight: usize,
    /// The most clients at once; one more is answered
    /// `-ERR max number of clients reached` and closed.
    pub max_clients: usize,
    /// Reply buffers made up front, for the replies that cannot go straight to their
    /// client (one that overtook an older request's, a part of a split request, a reply
    /// made here). More are made when more replies wait at once, and kept (up to
    /// 4096), so that a load that has run once runs again without allocating; each is
    /// 512 bytes until a reply needs more.
    pub reply_buffers: usize,
}

impl ProxyConfig {
    /// The defaults for `backends`: one connection each, a 1 s connect timeout, a 2 s
    /// reply timeout, back-off from 100 ms doubling to 5 s, [`DEFAULT_MAX_INFLIGHT`]
    /// requests in flight per client, 10,000 clients, [`DEFAULT_REPLY_BUFFERS`] reply
    /// buffers.
    pub fn new(backends: Vec<SocketAddr>) -> Self {
        ProxyConfig {
            backends,
            connections_per_backend: 1,
            connect_timeout: Duration::from_secs(1),
            reply_timeout: Duration::from_secs(2),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            max_inflight: DEFAULT_MAX_INFLIGHT,
            max_clients: 10_000,
            reply_buffers: DEFAULT_REPLY_BUFFERS,
        }
    }
}

/// What a connection of the proxy is: the per-connection context.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Role {
    /// Not yet known (an accepted connection before `opened`).
    #[default]
    Unknown,
    /// A client, by the index of its record.
    Client(u32),
    /// A connection to a backend, by its index among all backend connections.
    Link(u32),
}

/// What the proxy has done, for tests and monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Requests read from clients.
    pub requests: u64,
    /// Requests (or parts of split ones) sent to backends.
    pub forwarded: u64,
    /// Requests refused (unsupported command, wrong arity).
    pub refused: u64,
    /// Requests (or parts) answered with a backend's failure.
    pub backend_errors: u64,
    /// Connects to backends started.
    pub connects: u64,
    /// Backend connections that opened.
    pub links_opened: u64,
    /// Clients closed for a protocol error.
    pub protocol_errors: u64,
}

/// How a job's reply is made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Kind {
    /// One reply, passed on as it is (also a reply made here).
    #[default]
    Single,
    /// MGET split over backends: the parts' values merged in key order.
    Mget,
    /// DEL or EXISTS split over backends: the parts' integers added.
    Sum,
}

/// One outstanding request of a client.
#[derive(Debug, Default)]
struct Job {
    kind: Kind,
    /// The reply is whole (in `reply`).
    done: bool,
    /// Close the client once this reply is written (QUIT, a protocol error).
    close_after: bool,
    /// Parts not answered yet (split jobs).
    left: u16,
    /// The running sum (`Kind::Sum`).
    sum: i64,
    /// A part failed: `reply` holds the error.
    failed: bool,
    /// Bytes of `reply` already written to the client.
    flushed: usize,
    reply: Vec<u8>,
    /// `Kind::Mget`: each key's backend, in the request's order.
    keys: Vec<u16>,
    /// `Kind::Mget`: each backend's reply (indexed by backend).
    parts: Vec<Vec<u8>>,
}

/// Clears `v`, giving its memory back if it grew past [`KEEP_CAPACITY`].
fn clear_buffer(v: &mut Vec<u8>) {
    if v.capacity() > KEEP_CAPACITY {
        *v = Vec::new();
    } else {
        v.clear();
    }
}

/// Most buffers kept in a [`Pool`] (more are freed).
const POOL_MAX: usize = 4096;

/// Bytes of a buffer the [`Pool`] makes.
const POOL_BUFFER: usize = 512;

/// The buffers of jobs that have none in use, for the next job that needs one: most
/// requests need none (a reply that can go straight to its client), so a client's
/// jobs hold buffers only while they use them, and once warmed up the pool has enough
/// of them, grown to the sizes the replies need.
#[derive(Debug)]
struct Pool {
    bytes: Vec<Vec<u8>>,
    keys: Vec<Vec<u16>>,
}

impl Pool {
    /// A pool with `n` byte buffers, and half as many for split requests' keys.
    fn new(n: usize) -> Self {
        let n = n.min(POOL_MAX);
        let buffer = |_| Vec::with_capacity(POOL_BUFFER);
        let keys = |_| Vec::with_capacity(POOL_BUFFER / 2);
        let mut pool = Pool {
            bytes: Vec::with_capacity(POOL_MAX),
            keys: Vec::with_capacity(POOL_MAX),
        };
        pool.bytes.extend((0..n).map(buffer));
        pool.keys.extend((0..n / 2).map(keys));
        pool
    }

    /// Gives `v` a pooled buffer if it has none (a new one of [`POOL_BUFFER`] bytes if
    /// the pool is empty: room for most replies, so a buffer seldom grows).
    fn fill<T>(v: &mut Vec<T>, pool: &mut Vec<Vec<T>>) {
        if v.capacity() == 0 {
            *v = pool
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(POOL_BUFFER / core::mem::size_of::<T>()));
        }
    }

    /// Takes `v`'s buffer back (empty), unless it grew past [`KEEP_CAPACITY`] bytes.
    fn give<T>(v: &mut Vec<T>, pool: &mut Vec<Vec<T>>) {
        let cap = v.capacity();
        if cap == 0 {
            return;
        }
        if cap * core::mem::size_of::<T>() > KEEP_CAPACITY || pool.len() >= POOL_MAX {
            *v = Vec::new();
        } else {
            v.clear();
            pool.push(core::mem::take(v));
        }
    }
}

impl Job {
    /// Makes the job unused, its buffers back in `pool`.
    fn reset(&mut self, pool: &mut Pool) {
        // Only an MGET uses its keys and parts: the others' reset touches nothing
        // outside the job (the hot path of every request).
        if self.kind == Kind::Mget {
            Pool::give(&mut self.keys, &mut pool.keys);
            for part in &mut self.parts {
                Pool::give(part, &mut pool.bytes);
            }
        }
        self.kind = Kind::Single;
        self.done = false;
        self.close_after = false;
        self.left = 0;
        self.sum = 0;
        self.failed = false;
        self.flushed = 0;
        Pool::give(&mut self.reply, &mut pool.bytes);
    }
}

/// A client's record (reused by later clients once it leaves).
#[derive(Debug)]
struct Client {
    owner: Option<ConnId>,
    /// Sequence numbers of the oldest outstanding job and of the next one; job `s`
    /// lives in `jobs[s % jobs.len()]`.
    head: u32,
    tail: u32,
    jobs: Box<[Job]>,
    /// A request too large for the engine's input buffer, being gathered (and, once
    /// whole, the requests that came with its last bytes): forwarded before any more
    /// input is taken.
    backlog: Vec<u8>,
    /// The backlog stopped at a limit (in flight, a backend's room), not for want of
    /// bytes.
    blocked: bool,
    /// The engine holds input of the client's ([`Conn::hold`]) that waits for
    /// [`Loop::resume`].
    held: bool,
    /// The engine has input of the client's that the proxy has not looked at yet
    /// (held, or waiting for a backend's room): the client is not idle.
    input_waits: bool,
    /// The held input waits for a backend connection's queued requests
    /// ([`Link::outq`]) to be written: it is resumed by [`RedisProxy::run_waiting`],
    /// not by replies.
    link_wait: bool,
    /// A finished reply waits for room in the client's output.
    stuck: bool,
    /// The client ended its stream: close once everything is answered.
    ended: bool,
    /// The client is being closed: nothing more is read from it.
    closing: bool,
    /// Its last reply was at least [`LARGE_REPLY`] long.
    large: bool,
    /// It is in [`RedisProxy::waiting`].
    queued: bool,
}

impl Client {
    fn new(max_inflight: usize, backends: usize) -> Self {
        Client {
            owner: None,
            head: 0,
            tail: 0,
            jobs: (0..max_inflight)
                .map(|_| Job {
                    parts: (0..backends).map(|_| Vec::new()).collect(),
                    ..Job::default()
                })
                .collect(),
            backlog: Vec::new(),
            blocked: false,
            held: false,
            input_waits: false,
            link_wait: false,
            stuck: false,
            ended: false,
            closing: false,
            large: false,
            queued: false,
        }
    }

    fn outstanding(&self) -> usize {
        self.tail.wrapping_sub(self.head) as usize
    }

    fn job(&mut self, seq: u32) -> &mut Job {
        let n = self.jobs.len();
        &mut self.jobs[seq as usize % n]
    }

    fn idle(&self) -> bool {
        self.outstanding() == 0 && self.backlog.is_empty() && !self.input_waits
    }

    /// A client that ended its stream will never finish a request gathered in its
    /// backlog: it is dropped, as Redis drops a partial request at the end of a stream
    /// (a backlog blocked on a limit holds whole requests, and is kept).
    fn drop_incomplete_if_ended(&mut self) {
        if self.ended && !self.blocked && !self.input_waits && !self.backlog.is_empty() {
            clear_buffer(&mut self.backlog);
        }
    }

    /// Forgets everything of the client that left.
    fn reset(&mut self, pool: &mut Pool) {
        self.owner = None;
        for job in self.jobs.iter_mut() {
            job.reset(pool);
        }
        self.head = 0;
        self.tail = 0;
        clear_buffer(&mut self.backlog);
        self.blocked = false;
        self.held = false;
        self.input_waits = false;
        self.link_wait = false;
        self.stuck = false;
        self.ended = false;
        self.closing = false;
        self.large = false;
        self.queued = false;
    }

    /// Writes the finished replies at the front, in order, through `write` (which
    /// takes what fits and says how much); whether a reply asked for the close.
    fn flush(&mut self, pool: &mut Pool, mut write: impl FnMut(&[u8]) -> usize) -> bool {
        self.stuck = false;
        while self.head != self.tail {
            let head = self.head;
            let job = self.job(head);
            if !job.done {
                break;
            }
            let n = write(&job.reply[job.flushed..]);
            job.flushed += n;
            if job.flushed < job.reply.len() {
                self.stuck = true;
                return false;
            }
            let close = job.close_after;
            job.reset(pool);
            self.head = head.wrapping_add(1);
            if close {
                self.closing = true;
                return true;
            }
        }
        false
    }
}

/// Whose request a pending reply of a backend connection answers.
#[derive(Clone, Copy, Debug)]
struct Entry {
    client: u32,
    owner: ConnId,
    seq: u32,
}

/// One connection to a backend.
#[derive(Debug)]
struct Link {
    backend: u16,
    id: Option<ConnId>,
    /// It has connected (`opened` ran).
    up: bool,
    fifo: VecDeque<Entry>,
    framer: Framer,
    /// The reply being framed, when it spans reads.
    carry: Vec<u8>,
    /// Requests the engine's output buffer had no room for, in order.
    outq: Vec<u8>,
    retry_at: Instant,
    backoff: Duration,
    /// Why the proxy dropped it (a timeout, a malformed reply), for the close that
    /// follows.
    reason: Option<String>,
    /// The error reply for requests while it is down.
    error: Vec<u8>,
}

/// Why a request stopped the processing of a client's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// All of it was processed.
    End,
    /// A request is not whole yet.
    Incomplete,
    /// The client may have no more outstanding requests now (or its output is full).
    Hold,
    /// A backend connection's output is full: wait for it to drain.
    Link(ConnId),
    /// A protocol error: the client is closed after its replies so far.
    Close,
}

/// The proxy handler (see the [module docs](self)).
#[derive(Debug)]
pub struct RedisProxy {
    config: ProxyConfig,
    names: Vec<String>,
    ring: Continuum,
    links: Vec<Link>,
    clients: Vec<Client>,
    free: Vec<u32>,
    /// Clients whose backlog waits for room on a backend connection.
    waiting: Vec<u32>,
    spans: Vec<(usize, usize)>,
    decoded: Vec<u8>,
    encoded: Vec<u8>,
    counts: Vec<u32>,
    cursors: Vec<usize>,
    /// Scratch for a split request's keys' backends.
    keys: Vec<u16>,
    pool: Pool,
    stats: ProxyStats,
}

impl RedisProxy {
    /// A proxy for `config.backends`.
    ///
    /// # Panics
    ///
    /// If there is no backend, or `connections_per_backend` or `max_inflight` is 0.
    pub fn new(config: ProxyConfig) -> Self {
        assert!(
            config.connections_per_backend > 0,
            "at least one connection"
        );
        assert!(config.max_inflight > 0, "at least one request in flight");
        let names: Vec<String> = config.backends.iter().map(|a| a.to_string()).collect();
        let ring = Continuum::new(&names);
        let mut links = Vec::new();
        for (b, name) in names.iter().enumerate() {
            for _ in 0..config.connections_per_backend {
                links.push(Link {
                    backend: b as u16,
                    id: None,
                    up: false,
                    fifo: VecDeque::with_capacity(FIFO_RESERVE),
                    framer: Framer::default(),
                    carry: Vec::new(),
                    outq: Vec::new(),
                    retry_at: Instant::ZERO,
                    backoff: config.backoff_min,
                    reason: None,
                    error: format!("-ERR backend {name} not connected yet\r\n").into_bytes(),
                });
            }
        }
        let backends = names.len();
        RedisProxy {
            names,
            ring,
            links,
            clients: Vec::new(),
            free: Vec::new(),
            waiting: Vec::with_capacity(1024),
            spans: Vec::with_capacity(1024),
            decoded: Vec::with_capacity(1024),
            encoded: Vec::with_capacity(4096),
            counts: vec![0; backends],
            cursors: vec![0; backends],
            keys: Vec::with_capacity(1024),
            pool: Pool::new(config.reply_buffers),
            stats: ProxyStats::default(),
            config,
        }
    }

    /// What the proxy has done so far.
    pub fn stats(&self) -> ProxyStats {
        self.stats
    }

    /// The backend (an index into [`ProxyConfig::backends`]) that holds `key`.
    pub fn backend_of(&self, key: &[u8]) -> usize {
        self.ring.backend(key)
    }

    /// How many backend connections are open now.
    pub fn links_up(&self) -> usize {
        self.links.iter().filter(|l| l.up).count()
    }

    /// The backend connection client `ci` uses for backend `b`.
    fn link_of(&self, b: usize, ci: u32) -> usize {
        let per = self.config.connections_per_backend;
        b * per + ci as usize % per
    }

    /// The most outstanding requests client `ci` may have now.
    fn limit(&self, ci: u32) -> usize {
        if self.clients[ci as usize].large {
            LARGE_INFLIGHT.min(self.config.max_inflight)
        } else {
            self.config.max_inflight
        }
    }

    /// Adds a job to client `ci`; its sequence number.
    fn push_job(&mut self, ci: u32, kind: Kind) -> u32 {
        let c = &mut self.clients[ci as usize];
        let seq = c.tail;
        c.tail = seq.wrapping_add(1);
        let job = c.job(seq);
        job.reset(&mut self.pool);
        job.kind = kind;
        seq
    }

    /// Adds a job answered here with `reply`.
    fn local(&mut self, ci: u32, reply: &[u8]) -> &mut Job {
        let seq = self.push_job(ci, Kind::Single);
        let job = self.clients[ci as usize].job(seq);
        Pool::fill(&mut job.reply, &mut self.pool.bytes);
        job.reply.extend_from_slice(reply);
        job.done = true;
        job
    }

    /// Adds a job answered here with a bulk string.
    fn local_bulk(&mut self, ci: u32, bytes: &[u8]) {
        let job = self.local(ci, b"$");
        push_number(&mut job.reply, bytes.len());
        job.reply.extend_from_slice(b"\r\n");
        job.reply.extend_from_slice(bytes);
        job.reply.extend_from_slice(b"\r\n");
    }

    /// Adds a job answered with an error about command `name`: `before`, the name
    /// (printable bytes only), `after`.
    fn local_error(&mut self, ci: u32, before: &[u8], name: &[u8], after: &[u8], lower: bool) {
        self.stats.refused += 1;
        let job = self.local(ci, before);
        for &b in name.iter().take(64) {
            let b = if lower { b.to_ascii_lowercase() } else { b };
            job.reply.push(if b.is_ascii_graphic() && b != b'\'' {
                b
            } else {
                b'?'
            });
        }
        job.reply.extend_from_slice(after);
    }

    /// Appends `bytes` to backend connection `li`'s output, the part that does not
    /// fit to its overflow queue (so a request is never cut by another).
    fn write_link(&mut self, lp: &mut Loop<'_, Role>, li: usize, bytes: &[u8]) {
        let link = &mut self.links[li];
        let Some(id) = link.id else { return };
        if link.outq.is_empty() {
            let n = lp.write_some(id, bytes).unwrap_or(bytes.len());
            link.outq.extend_from_slice(&bytes[n..]);
        } else {
            link.outq.extend_from_slice(bytes);
        }
    }

    /// Records that backend connection `li` owes job `seq` of client `ci` a reply.
    fn expect(&mut self, lp: &mut Loop<'_, Role>, li: usize, ci: u32, seq: u32) {
        let owner = self.clients[ci as usize].owner;
        let link = &mut self.links[li];
        let (Some(owner), Some(id)) = (owner, link.id) else {
            return;
        };
        if link.fifo.is_empty() && link.up {
            let _ = lp.set_timeout(id, Some(self.config.reply_timeout));
        }
        link.fifo.push_back(Entry {
            client: ci,
            owner,
            seq,
        });
        self.stats.forwarded += 1;
    }

    /// Processes the requests in `buf` for client `ci`: how many bytes were used, and
    /// why it stopped.
    fn process(&mut self, lp: &mut Loop<'_, Role>, ci: u32, buf: &[u8]) -> (usize, Stop) {
        let mut used = 0;
        let mut spans = core::mem::take(&mut self.spans);
        let mut decoded = core::mem::take(&mut self.decoded);
        let stop = loop {
            if used == buf.len() {
                break Stop::End;
            }
            let c = &self.clients[ci as usize];
            if c.closing {
                used = buf.len();
                break Stop::Close;
            }
            if c.stuck || c.outstanding() >= self.limit(ci) {
                break Stop::Hold;
            }
            let mut is_decoded = false;
            let inline = buf[used] != b'*';
            let parsed = if inline {
                resp::inline(buf, used, &mut decoded, &mut spans, &mut is_decoded)
            } else {
                resp::multibulk(buf, used, MAX_BULK, MAX_REQUEST, &mut spans)
            };
            match parsed {
                Parsed::Incomplete => break Stop::Incomplete,
                Parsed::Empty { end } => used = end,
                Parsed::Error { error, .. } => {
                    let mut text = b"-ERR ".to_vec();
                    error.write_text(&mut text);
                    text.extend_from_slice(b"\r\n");
                    self.local(ci, &text).close_after = true;
                    self.stats.protocol_errors += 1;
                    self.clients[ci as usize].closing = true;
                    used = buf.len();
                    break Stop::Close;
                }
                Parsed::TooLarge { .. } => {
                    self.local(ci, b"-ERR Protocol error: request too large\r\n")
                        .close_after = true;
                    self.stats.protocol_errors += 1;
                    self.clients[ci as usize].closing = true;
                    used = buf.len();
                    break Stop::Close;
                }
                Parsed::Request { end } => {
                    let src = if is_decoded { &decoded[..] } else { buf };
                    let raw = (!inline).then(|| &buf[used..end]);
                    match self.dispatch(lp, ci, raw, src, &spans) {
                        Ok(()) => used = end,
                        Err(link) => break Stop::Link(link),
                    }
                }
            }
        };
        self.spans = spans;
        self.decoded = decoded;
        (used, stop)
    }

    /// Handles one request of client `ci`, its arguments at `spans` of `src` (`raw`:
    /// its bytes, if it came as multibulk and can be forwarded as it is).
    ///
    /// # Errors
    ///
    /// The backend connection whose output is too full to take it; nothing was done.
    fn dispatch(
        &mut self,
        lp: &mut Loop<'_, Role>,
        ci: u32,
        raw: Option<&[u8]>,
        src: &[u8],
        spans: &[(usize, usize)],
    ) -> Result<(), ConnId> {
        let arg = |k: usize| &src[spans[k].0..spans[k].0 + spans[k].1];
        let name = arg(0);
        let argc = spans.len();
        self.stats.requests += 1;
        let wrong_arity = |p: &mut Self| {
            p.local_error(
                ci,
                b"-ERR wrong number of arguments for '",
                name,
                b"' command\r\n",
                true,
            )
        };
        match route(name) {
            Route::Ping if argc == 1 => {
                self.local(ci, b"+PONG\r\n");
            }
            Route::Ping if argc == 2 => self.local_bulk(ci, arg(1)),
            Route::Echo if argc == 2 => self.local_bulk(ci, arg(1)),
            Route::Ping | Route::Echo => wrong_arity(self),
            Route::Quit => self.local(ci, b"+OK\r\n").close_after = true,
            Route::Refused => self.local_error(
                ci,
                b"-ERR redis-proxy does not support '",
                name,
                b"': only commands whose first argument is their one key, \
                  MGET, DEL, EXISTS, PING, ECHO and QUIT\r\n",
                false,
            ),
            _ if argc < 2 => wrong_arity(self),
            Route::Key if argc > 2 && keys_are_all_arguments(name) => self.local_error(
                ci,
                b"-ERR redis-proxy does not support '",
                name,
                b"' with several keys\r\n",
                false,
            ),
            Route::Key | Route::Mget | Route::Sum if argc == 2 || route(name) == Route::Key => {
                let li = self.link_of(self.ring.backend(arg(1)), ci);
                let link = &self.links[li];
                let Some(id) = link.id else {
                    let error = core::mem::take(&mut self.links[li].error);
                    self.local(ci, &error);
                    self.links[li].error = error;
                    self.stats.backend_errors += 1;
                    return Ok(());
                };
                if !link.outq.is_empty() {
                    return Err(id);
                }
                let seq = self.push_job(ci, Kind::Single);
                match raw {
                    Some(raw) => self.write_link(lp, li, raw),
                    None => {
                        let mut encoded = core::mem::take(&mut self.encoded);
                        encoded.clear();
                        encode(&mut encoded, name, (1..argc).map(arg));
                        self.write_link(lp, li, &encoded);
                        self.encoded = encoded;
                    }
                }
                self.expect(lp, li, ci, seq);
            }
            Route::Mget | Route::Sum => {
                return self.split(lp, ci, name, src, spans);
            }
            Route::Key => unreachable!("handled above"),
        }
        Ok(())
    }

    /// Splits MGET, DEL or EXISTS with several keys over their backends.
    fn split(
        &mut self,
        lp: &mut Loop<'_, Role>,
        ci: u32,
        name: &[u8],
        src: &[u8],
        spans: &[(usize, usize)],
    ) -> Result<(), ConnId> {
        let arg = |k: usize| &src[spans[k].0..spans[k].0 + spans[k].1];
        let mget = route(name) == Route::Mget;
        let mut counts = core::mem::take(&mut self.counts);
        counts.fill(0);
        let mut keys = core::mem::take(&mut self.keys);
        keys.clear();
        for k in 1..spans.len() {
            let b = self.ring.backend(arg(k));
            counts[b] += 1;
            keys.push(b as u16);
        }
        // All or nothing: every backend involved must be up and have room.
        let mut refusal = None;
        for (b, &n) in counts.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let link = &self.links[self.link_of(b, ci)];
            match link.id {
                None => {
                    refusal = Some(Err(self.link_of(b, ci)));
                    break;
                }
                Some(id) if !link.outq.is_empty() => {
                    refusal = Some(Ok(id));
                    break;
                }
                Some(_) => {}
            }
        }
        let result = match refusal {
            Some(Ok(id)) => Err(id),
            Some(Err(li)) => {
                let error = core::mem::take(&mut self.links[li].error);
                self.local(ci, &error);
                self.links[li].error = error;
                self.stats.backend_errors += 1;
                Ok(())
            }
            None => {
                let seq = self.push_job(ci, if mget { Kind::Mget } else { Kind::Sum });
                let parts = counts.iter().filter(|&&n| n > 0).count();
                let mut encoded = core::mem::take(&mut self.encoded);
                for (b, &n) in counts.iter().enumerate() {
                    if n == 0 {
                        continue;
                    }
                    encoded.clear();
                    let mine = (1..spans.len())
                        .filter(|&k| keys[k - 1] as usize == b)
                        .map(arg);
                    encode(&mut encoded, name, mine);
                    let li = self.link_of(b, ci);
                    self.write_link(lp, li, &encoded);
                    self.expect(lp, li, ci, seq);
                }
                self.encoded = encoded;
                let backends = self.names.len();
                let job = self.clients[ci as usize].job(seq);
                job.left = parts as u16;
                if mget {
                    // The keys' backends go with the job.
                    Pool::fill(&mut job.keys, &mut self.pool.keys);
                    job.keys.extend_from_slice(&keys);
                    if job.parts.len() < backends {
                        job.parts.resize_with(backends, Vec::new);
                    }
                }
                Ok(())
            }
        };
        keys.clear();
        self.keys = keys;
        self.counts = counts;
        result
    }

    /// A reply (or a failure, as an error reply) for the request `entry` sent to
    /// backend `backend`.
    fn deliver(&mut self, lp: &mut Loop<'_, Role>, entry: Entry, backend: usize, reply: &[u8]) {
        let ci = entry.client;
        let Some(c) = self.clients.get_mut(ci as usize) else {
            return;
        };
        if c.owner != Some(entry.owner) || c.closing {
            return;
        }
        let head = c.head;
        let stuck = c.stuck;
        let owner = entry.owner;
        let job = c.job(entry.seq);
        let pool = &mut self.pool;
        match job.kind {
            Kind::Single => {
                let large = reply.len() >= LARGE_REPLY;
                if entry.seq == head
                    && !stuck
                    && lp.room(owner).is_ok_and(|room| room >= reply.len())
                {
                    // The common case: the oldest job's reply, and room for it.
                    let _ = lp.write(owner, reply);
                    job.reset(pool);
                    c.head = head.wrapping_add(1);
                } else {
                    Pool::fill(&mut job.reply, &mut pool.bytes);
                    job.reply.extend_from_slice(reply);
                    job.done = true;
                }
                c.large = large;
            }
            Kind::Sum => {
                Pool::fill(&mut job.reply, &mut pool.bytes);
                job.left -= 1;
                if !job.failed {
                    match integer(reply) {
                        Some(n) => job.sum = job.sum.saturating_add(n),
                        None => fail(job, reply),
                    }
                }
                if job.left == 0 {
                    if !job.failed {
                        job.reply.push(b':');
                        push_signed(&mut job.reply, job.sum);
                        job.reply.extend_from_slice(b"\r\n");
                    }
                    job.done = true;
                }
            }
            Kind::Mget => {
                Pool::fill(&mut job.reply, &mut pool.bytes);
                job.left -= 1;
                if !job.failed {
                    if reply.first() == Some(&b'*') {
                        Pool::fill(&mut job.parts[backend], &mut pool.bytes);
                        job.parts[backend].extend_from_slice(reply);
                    } else {
                        fail(job, reply);
                    }
                }
                if job.left == 0 {
                    if !job.failed {
                        merge(job, &mut self.cursors);
                    }
                    job.done = true;
                }
            }
        }
        self.after_reply(lp, ci);
    }

    /// Client `ci` may have finished replies at the front, room for requests of its
    /// backlog, and room for the input the engine holds: writes the one, forwards the
    /// other, resumes the third (from another connection's callback).
    fn after_reply(&mut self, lp: &mut Loop<'_, Role>, ci: u32) {
        let Some(owner) = self.clients[ci as usize].owner else {
            return;
        };
        for _ in 0..2 {
            let c = &mut self.clients[ci as usize];
            if c.flush(&mut self.pool, |bytes| {
                lp.write_some(owner, bytes).unwrap_or(bytes.len())
            }) {
                let _ = lp.close(owner);
                return;
            }
            if c.stuck || c.backlog.is_empty() {
                break;
            }
            self.run_backlog(lp, ci);
        }
        self.resume(lp, ci);
        let c = &mut self.clients[ci as usize];
        c.drop_incomplete_if_ended();
        if c.ended && c.idle() {
            let _ = lp.close(owner);
        }
    }

    /// Gives client `ci` the input the engine holds for it back, if its outstanding
    /// requests are down to half its bound and nothing else stops it: a pipelining
    /// client is resumed once per half a window, not once per reply.
    fn resume(&mut self, lp: &mut Loop<'_, Role>, ci: u32) {
        let limit = self.limit(ci);
        let c = &mut self.clients[ci as usize];
        if c.held && !c.stuck && !c.blocked && !c.link_wait && c.outstanding() * 2 <= limit {
            c.held = false;
            if let Some(owner) = c.owner {
                let _ = lp.resume(owner);
            }
        }
    }

    /// Forwards what it can of client `ci`'s backlog; why it stopped.
    fn run_backlog(&mut self, lp: &mut Loop<'_, Role>, ci: u32) -> Stop {
        let c = &mut self.clients[ci as usize];
        if c.backlog.is_empty() {
            c.blocked = false;
            return Stop::End;
        }
        if c.stuck {
            return Stop::Hold;
        }
        let mut backlog = core::mem::take(&mut c.backlog);
        let (used, stop) = self.process(lp, ci, &backlog);
        backlog.drain(..used);
        let c = &mut self.clients[ci as usize];
        if backlog.is_empty() {
            // Its memory is kept only up to the usual bound.
            clear_buffer(&mut backlog);
        }
        c.backlog = backlog;
        c.blocked = !c.backlog.is_empty() && matches!(stop, Stop::Hold | Stop::Link(_));
        if let Stop::Link(_) = stop
            && !c.queued
        {
            c.queued = true;
            self.waiting.push(ci);
        }
        stop
    }

    /// Clients whose backlog or held input waited for a backend connection's queue to
    /// be written: try again (each is resumed when nothing else holds it).
    fn run_waiting(&mut self, lp: &mut Loop<'_, Role>) {
        let mut waiting = core::mem::take(&mut self.waiting);
        for &ci in &waiting {
            let c = &mut self.clients[ci as usize];
            c.queued = false;
            c.link_wait = false;
        }
        for &ci in &waiting {
            if self.clients[ci as usize].owner.is_some() {
                self.run_backlog(lp, ci);
                self.after_reply(lp, ci);
            }
        }
        waiting.clear();
        if self.waiting.is_empty() {
            self.waiting = waiting;
        } else {
            self.waiting.append(&mut waiting);
        }
    }

    /// Writes client `ci`'s finished replies from its own callback (so a reply that
    /// does not fit marks its output full, and the engine stops reading it).
    fn flush_own(&mut self, conn: &mut Conn<'_, Role>, ci: u32) -> bool {
        self.clients[ci as usize].flush(&mut self.pool, |bytes| conn.write_some(bytes))
    }

    /// Leaves the input of this `data` call from `used` on to the engine, to wait as
    /// `stop` says: for the client's in-flight bound (held until [`Self::resume`]), or
    /// for a backend connection's room.
    fn leave(&mut self, conn: &mut Conn<'_, Role>, ci: u32, used: usize, stop: Stop) {
        conn.consume(used);
        let c = &mut self.clients[ci as usize];
        match stop {
            // A full output: the failed write makes the engine call again once it
            // drained.
            // (Input left behind a full output still comes, after the end of stream
            // if the client ended it.)
            Stop::Hold if c.stuck => c.input_waits = true,
            Stop::Hold => {
                conn.hold();
                c.held = true;
                c.input_waits = true;
            }
            // The backend connection's own queue (not the engine's output) is what
            // is full, so the engine has nothing to wait for: the input is held, and
            // resumed once that queue is written out (or the backend is gone).
            Stop::Link(_) => {
                conn.hold();
                c.held = true;
                c.link_wait = true;
                c.input_waits = true;
                if !c.queued {
                    c.queued = true;
                    self.waiting.push(ci);
                }
            }
            _ => {}
        }
    }

    fn client_data(&mut self, conn: &mut Conn<'_, Role>, ci: u32, input: &[u8]) -> Action {
        let c = &mut self.clients[ci as usize];
        c.held = false;
        c.input_waits = false;
        c.link_wait = false;
        if c.closing {
            return Action::None; // what a closing client sends is dropped
        }
        // Replies first: a client whose output is full gets nothing more forwarded,
        // and its input waits (the failed write makes the engine call again once
        // the output drained).
        if self.flush_own(conn, ci) {
            return Action::Close;
        }
        let c = &mut self.clients[ci as usize];
        if c.stuck {
            // This input comes again once the output drained, even after an end of
            // stream (see `Events::input_ended`): the client is not done.
            c.input_waits = !input.is_empty();
            conn.consume(0);
            return Action::None;
        }
        let mut input = input;
        if !self.clients[ci as usize].backlog.is_empty() {
            // A large request is being gathered, or what came with it waits.
            match self.run_backlog(conn.others(), ci) {
                Stop::Close => return self.after_own(conn, ci),
                Stop::Incomplete => {
                    let c = &mut self.clients[ci as usize];
                    c.backlog.extend_from_slice(input);
                    input = &[];
                    self.run_backlog(conn.others(), ci);
                }
                stop if !self.clients[ci as usize].backlog.is_empty() => {
                    self.leave(conn, ci, 0, stop);
                    return self.after_own(conn, ci);
                }
                _ => {}
            }
        }
        if !input.is_empty() {
            let (used, stop) = self.process(conn.others(), ci, input);
            let rest = &input[used..];
            match stop {
                Stop::End | Stop::Close => {}
                Stop::Incomplete if rest.len() < conn.input_capacity() / 2 => conn.consume(used),
                // A request too large for the input buffer is gathered apart.
                Stop::Incomplete => {
                    self.clients[ci as usize].backlog.extend_from_slice(rest);
                }
                stop => self.leave(conn, ci, used, stop),
            }
        }
        self.after_own(conn, ci)
    }

    /// The end of a client's own callback: its finished replies written, and the
    /// close if it asked for one or ended its stream with everything answered.
    fn after_own(&mut self, conn: &mut Conn<'_, Role>, ci: u32) -> Action {
        if self.flush_own(conn, ci) {
            return Action::Close;
        }
        let c = &mut self.clients[ci as usize];
        c.drop_incomplete_if_ended();
        if c.ended && c.idle() {
            return Action::Close;
        }
        Action::None
    }

    fn link_data(&mut self, conn: &mut Conn<'_, Role>, li: usize, input: &[u8]) -> Action {
        let backend = usize::from(self.links[li].backend);
        let mut pos = 0;
        while pos < input.len() {
            let start = pos;
            let link = &mut self.links[li];
            let Ok((n, whole)) = link.framer.feed(&input[pos..]) else {
                return self.link_broken(li, "sent a malformed reply");
            };
            pos += n;
            if !whole {
                link.carry.extend_from_slice(&input[start..pos]);
                continue;
            }
            let Some(entry) = link.fifo.pop_front() else {
                return self.link_broken(li, "sent a reply nobody asked for");
            };
            if link.carry.is_empty() {
                self.deliver(conn.others(), entry, backend, &input[start..pos]);
            } else {
                let mut carry = core::mem::take(&mut link.carry);
                carry.extend_from_slice(&input[start..pos]);
                self.deliver(conn.others(), entry, backend, &carry);
                clear_buffer(&mut carry);
                self.links[li].carry = carry;
            }
        }
        // Replies came: the backend is alive; its clock restarts for what is left.
        let pending = !self.links[li].fifo.is_empty();
        conn.set_timeout(pending.then_some(self.config.reply_timeout));
        Action::None
    }

    /// Backend connection `li` cannot be trusted: it is dropped (its requests get
    /// errors from `closed`).
    fn link_broken(&mut self, li: usize, why: &str) -> Action {
        self.links[li].reason = Some(why.to_owned());
        Action::Abort
    }

    /// Starts the connect of backend connection `li`.
    fn connect(&mut self, lp: &mut Loop<'_, Role>, li: usize) {
        let addr = self.config.backends[usize::from(self.links[li].backend)];
        self.stats.connects += 1;
        match lp.connect(
            ConnectAddr::Ip(addr),
            self.config.connect_timeout,
            Role::Link(li as u32),
        ) {
            Ok(id) => self.links[li].id = Some(id),
            Err(e) => {
                let why = format!("unreachable: {e}");
                self.link_down(lp.now(), li, &why, false);
            }
        }
    }

    /// Backend connection `li` is down for `why`: remembers the error for new
    /// requests and when to try again.
    fn link_down(&mut self, now: Instant, li: usize, why: &str, was_up: bool) {
        let name = &self.names[usize::from(self.links[li].backend)];
        let link = &mut self.links[li];
        link.error = format!("-ERR backend {name} {why}\r\n").into_bytes();
        link.id = None;
        link.up = false;
        link.framer = Framer::default();
        clear_buffer(&mut link.carry);
        clear_buffer(&mut link.outq);
        link.reason = None;
        // A connection that was up is retried soon; one that keeps failing, less
        // and less often.
        if was_up {
            link.backoff = self.config.backoff_min;
        }
        link.retry_at = now.saturating_add(link.backoff);
        link.backoff = (link.backoff * 2).min(self.config.backoff_max);
    }
}

/// Marks `job` failed with `reply` (a backend's error) or, if it is not an error, an
/// error saying the reply was not what the command returns.
fn fail(job: &mut Job, reply: &[u8]) {
    job.failed = true;
    job.reply.clear();
    if reply.first() == Some(&b'-') {
        job.reply.extend_from_slice(reply);
    } else {
        job.reply
            .extend_from_slice(b"-ERR redis-proxy: a backend sent an unexpected reply\r\n");
    }
}

/// Makes MGET's reply from its parts: the values in the keys' order.
fn merge(job: &mut Job, cursors: &mut [usize]) {
    // Each part is `*n\r\n` then its values: start after the header line.
    for (cursor, part) in cursors.iter_mut().zip(&job.parts) {
        *cursor = memchr::memchr(b'\n', part).map_or(0, |i| i + 1);
    }
    job.reply.clear();
    job.reply.push(b'*');
    push_number(&mut job.reply, job.keys.len());
    job.reply.extend_from_slice(b"\r\n");
    for &b in &job.keys {
        let b = usize::from(b);
        let part = &job.parts[b];
        match part.get(cursors[b]..).and_then(value_len) {
            Some(n) => {
                job.reply
                    .extend_from_slice(&part[cursors[b]..cursors[b] + n]);
                cursors[b] += n;
            }
            None => {
                job.reply.clear();
                job.reply.extend_from_slice(
                    b"-ERR redis-proxy: a backend's MGET reply had too few values\r\n",
                );
                return;
            }
        }
    }
}

/// Appends `n` in decimal.
fn push_number(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends `n` in decimal, with its sign.
fn push_signed(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    push_number(out, n.unsigned_abs() as usize);
}

/// Appends the multibulk request `name args…`.
fn encode<'a>(out: &mut Vec<u8>, name: &'a [u8], args: impl Iterator<Item = &'a [u8]> + Clone) {
    out.push(b'*');
    push_number(out, 1 + args.clone().count());
    out.extend_from_slice(b"\r\n");
    for arg in core::iter::once(name).chain(args) {
        out.push(b'$');
        push_number(out, arg.len());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

impl Events for RedisProxy {
    type Context = Role;

    fn opened(&mut self, conn: &mut Conn<'_, Role>) -> Action {
        if let Role::Link(li) = *conn.context() {
            let li = li as usize;
            let link = &mut self.links[li];
            if link.id == Some(conn.id()) {
                link.up = true;
                self.stats.links_opened += 1;
                if !link.fifo.is_empty() {
                    conn.set_timeout(Some(self.config.reply_timeout));
                }
            }
            return Action::None;
        }
        let ci = match self.free.pop() {
            Some(ci) => ci,
            None if self.clients.len() < self.config.max_clients => {
                self.clients
                    .push(Client::new(self.config.max_inflight, self.names.len()));
                (self.clients.len() - 1) as u32
            }
            None => {
                let _ = conn.write(b"-ERR max number of clients reached\r\n");
                return Action::Close;
            }
        };
        self.clients[ci as usize].owner = Some(conn.id());
        *conn.context() = Role::Client(ci);
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, Role>, input: &[u8]) -> Action {
        match *conn.context() {
            Role::Client(ci) => self.client_data(conn, ci, input),
            Role::Link(li) => self.link_data(conn, li as usize, input),
            Role::Unknown => Action::Close,
        }
    }

    fn drained(&mut self, conn: &mut Conn<'_, Role>) -> Action {
        match *conn.context() {
            Role::Client(ci) => {
                if self.flush_own(conn, ci) {
                    return Action::Close;
                }
                self.run_backlog(conn.others(), ci);
                if self.flush_own(conn, ci) {
                    return Action::Close;
                }
                self.resume(conn.others(), ci);
                self.after_own(conn, ci)
            }
            Role::Link(li) => {
                let link = &mut self.links[li as usize];
                if !link.outq.is_empty() {
                    let n = conn.write_some(&link.outq);
                    link.outq.drain(..n);
                }
                if link.outq.is_empty() {
                    self.run_waiting(conn.others());
                }
                Action::None
            }
            Role::Unknown => Action::None,
        }
    }

    fn input_ended(&mut self, conn: &mut Conn<'_, Role>) -> Action {
        match *conn.context() {
            // A client that shut its sending side still reads: it gets the replies to
            // what it sent, then the close.
            Role::Client(ci) => {
                let c = &mut self.clients[ci as usize];
                c.ended = true;
                c.drop_incomplete_if_ended();
                if c.idle() {
                    Action::Close
                } else {
                    Action::None
                }
            }
            _ => Action::Close,
        }
    }

    fn timeout(&mut self, conn: &mut Conn<'_, Role>) -> Action {
        match *conn.context() {
            Role::Link(li) => {
                let ms = self.config.reply_timeout.as_millis();
                self.link_broken(li as usize, &format!("timed out: no reply in {ms} ms"))
            }
            _ => Action::None,
        }
    }

    fn closed(
        &mut self,
        info: &ConnInfo,
        role: Role,
        error: Option<CloseError>,
        lp: &mut Loop<'_, Role>,
    ) -> Flow {
        match role {
            Role::Client(ci) => {
                let c = &mut self.clients[ci as usize];
                if c.owner == Some(info.id) {
                    c.reset(&mut self.pool);
                    self.free.push(ci);
                }
            }
            Role::Link(li) => {
                let li = li as usize;
                let link = &self.links[li];
                if link.id != Some(info.id) {
                    return Flow::Continue;
                }
                let was_up = link.up;
                // Why, in words for the error replies: a reason set before the close
                // (a timeout, a malformed reply) stands.
                let why = match (self.links[li].reason.take(), error) {
                    (Some(reason), _) => reason,
                    (None, Some(CloseError::Connect(e))) => format!("unreachable: {e}"),
                    (None, Some(CloseError::ConnectTimeout)) => format!(
                        "unreachable: connect timed out after {} ms",
                        self.config.connect_timeout.as_millis()
                    ),
                    (None, Some(e)) => format!("connection lost: {e}"),
                    (None, None) if was_up => "connection closed by the backend".to_owned(),
                    (None, None) => "unreachable".to_owned(),
                };
                let mut fifo = core::mem::take(&mut self.links[li].fifo);
                self.link_down(lp.now(), li, &why, was_up);
                let error = self.links[li].error.clone();
                let backend = usize::from(self.links[li].backend);
                for entry in fifo.drain(..) {
                    self.stats.backend_errors += 1;
                    self.deliver(lp, entry, backend, &error);
                }
                self.links[li].fifo = fifo;
                // Clients that waited for its room: their requests now get errors.
                self.run_waiting(lp);
            }
            Role::Unknown => {}
        }
        Flow::Continue
    }

    fn tick(&mut self, lp: &mut Loop<'_, Role>) -> Tick {
        let now = lp.now();
        let mut next = now.saturating_add(Duration::from_secs(1));
        for li in 0..self.links.len() {
            if self.links[li].id.is_some() {
                continue;
            }
            if self.links[li].retry_at <= now {
                self.connect(lp, li);
            }
            if self.links[li].id.is_none() {
                next = next.min(self.links[li].retry_at);
            }
        }
        let delay = next.saturating_duration_since(now);
        Tick::after(delay.max(Duration::from_millis(10)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_encoded_as_multibulk() {
        let mut out = Vec::new();
        encode(&mut out, b"MGET", [&b"a"[..], b"bc"].into_iter());
        assert_eq!(out, b"*3\r\n$4\r\nMGET\r\n$1\r\na\r\n$2\r\nbc\r\n");
    }

    #[test]
    fn mget_parts_merge_in_key_order() {
        let mut job = Job {
            kind: Kind::Mget,
            keys: vec![1, 0, 1, 0],
            parts: vec![
                b"*2\r\n$2\r\nk1\r\n$-1\r\n".to_vec(),
                b"*2\r\n$2\r\nk0\r\n$2\r\nk2\r\n".to_vec(),
            ],
            ..Job::default()
        };
        merge(&mut job, &mut [0, 0]);
        assert_eq!(
            job.reply,
            b"*4\r\n$2\r\nk0\r\n$2\r\nk1\r\n$2\r\nk2\r\n$-1\r\n"
        );
        job.parts[0] = b"*0\r\n".to_vec();
        merge(&mut job, &mut [0, 0]);
        assert!(job.reply.starts_with(b"-ERR"), "a short part is an error");
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        let mut out = Vec::new();
        push_number(&mut out, 0);
        out.push(b' ');
        push_signed(&mut out, -1234);
        out.push(b' ');
        push_number(&mut out, usize::MAX);
        assert_eq!(out, format!("0 -1234 {}", usize::MAX).as_bytes());
    }
}
