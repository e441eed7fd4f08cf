//! The redis handler's reference model and workload.
//!
//! The model is written apart from the handler on purpose (its own parser, its own
//! command table, a `BTreeMap` store, replies built as plain byte strings), from Redis
//! 7.0's rules: the handler is checked against a second reading of the same rules, not
//! against itself. Only `CONFIG GET`'s glob matcher is shared.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use evio_proto::Instant;
use evio_sim::{Constraints, Model, ModelError, Rng};

use crate::redis::{ARG_OVERHEAD, ENTRY_OVERHEAD, Limits, Redis, RedisConfig};

/// The redis handler as the swarm, the simulator's command line and the fuzz targets
/// run it (a 40 ms idle timeout on the virtual clock, [`sim_limits`],
/// [`SIM_MAXMEMORY`]), with its model.
pub fn redis_pair() -> (Redis, RedisModel) {
    let config = RedisConfig {
        idle_timeout: Some(Duration::from_millis(40)),
        limits: sim_limits(),
        maxmemory: SIM_MAXMEMORY,
    };
    let model = RedisModel::new(sim_limits()).maxmemory(SIM_MAXMEMORY);
    (Redis::new(config), model)
}

/// The memory limit the swarm runs the redis handler with: each entry counts
/// [`ENTRY_OVERHEAD`] besides its bytes, so four small entries, or one value of a few
/// hundred bytes, take the store over it, and `SET`s are then refused until `DEL` or
/// `FLUSHDB` make room (about a fifth of them, in the swarm).
pub const SIM_MAXMEMORY: usize = 600;

/// The buffers the redis handler is simulated with: an input buffer of at least 16
/// bytes, so header lines fit (a request's arguments gather across reads, and inline
/// requests are often too big); any output buffer, down to one byte (a reply then goes
/// out in pieces as the output drains).
pub fn redis_constraints() -> Constraints {
    Constraints {
        min_input_capacity: 16,
        ..Constraints::none()
    }
}

/// The reference model of [`Redis`](crate::redis::Redis): a store of its own to which
/// each request is applied when the handler consumed its last byte, in the order the
/// handler consumed them across all connections ([`Model::consumed`]), so every reply
/// (errors included) is known exactly, and in order.
///
/// What the handler's consumption tells the model, besides whole requests:
///
/// - Consumed bytes that end inside a multibulk argument's payload are a request larger
///   than the input buffer, still arriving: it is applied once its last byte is
///   consumed.
/// - Consumed bytes that end inside a line (an inline request, a `*N` or `$N` line)
///   are that line being too big for the input buffer (the handler never consumes part
///   of a line otherwise): the client is owed Redis's "too big" protocol error.
/// - After `QUIT`, a protocol error or a request over the limit, the client is owed
///   nothing more (the connection closes; anything consumed after is not served).
/// - After `SHUTDOWN`, nothing more is served to anyone.
/// - After `POST` or `Host:`, the connection is aborted: nothing more is served to it,
///   and the replies to the requests consumed in the same `data` call are never sent
///   (those requests did run).
#[derive(Debug)]
pub struct RedisModel {
    store: BTreeMap<Vec<u8>, Vec<u8>>,
    limits: Limits,
    maxmemory: usize,
    shut_down: bool,
    /// Requests applied (each answered, in order).
    pub applied: u64,
    /// Protocol errors owed (each followed by a close).
    pub protocol_errors: u64,
}

/// [`RedisModel`]'s state for one connection.
#[derive(Debug, Default)]
pub struct RedisClient {
    /// Consumed bytes of a request not yet whole.
    partial: Vec<u8>,
    /// Nothing more is served to this client.
    done: bool,
    /// Bytes the client is owed, in order.
    owed: VecDeque<u8>,
    received: u64,
}

impl RedisModel {
    /// A model of a [`Redis`](crate::redis::Redis) configured with `limits`, empty.
    pub fn new(limits: Limits) -> Self {
        RedisModel {
            store: BTreeMap::new(),
            limits,
            maxmemory: 0,
            shut_down: false,
            applied: 0,
            protocol_errors: 0,
        }
    }

    /// The model of a server configured with
    /// [`RedisConfig::maxmemory`](crate::redis::RedisConfig::maxmemory) `maxmemory`.
    pub fn maxmemory(mut self, maxmemory: usize) -> Self {
        self.maxmemory = maxmemory;
        self
    }

    /// The model's store (key to value).
    pub fn store(&self) -> &BTreeMap<Vec<u8>, Vec<u8>> {
        &self.store
    }

    /// What the store holds towards the memory limit, counted afresh: each entry's
    /// key and value bytes and [`ENTRY_OVERHEAD`].
    pub fn used_memory(&self) -> usize {
        self.store
            .iter()
            .map(|(k, v)| k.len() + v.len() + ENTRY_OVERHEAD)
            .sum()
    }

    /// Whether a `SHUTDOWN` was applied.
    pub fn shut_down(&self) -> bool {
        self.shut_down
    }
}

impl Default for RedisModel {
    /// A model of a server with the default [`Limits`].
    fn default() -> Self {
        RedisModel::new(Limits::default())
    }
}

/// What the front of a client's consumed bytes holds.
enum Front {
    /// Nothing.
    Nothing,
    /// A whole request (its arguments) of `len` bytes.
    Request(Vec<Vec<u8>>, usize),
    /// A request with no arguments, of `len` bytes.
    Empty(usize),
    /// A protocol error (Redis's text, after `-ERR `) seen at `len` bytes.
    Error(Vec<u8>, usize),
    /// A request whose arguments pass the limit.
    TooLarge,
    /// A request whose payload has not all arrived.
    InPayload,
    /// A line not ended: too big (Redis's text for it).
    InLine(&'static str),
}

/// Redis's `string2ll`, read from its rules: optional `-`, no `+`, no leading zero
/// (`0` alone is a number, `-0` is not), no spaces, at most 20 characters, an `i64`.
fn number(s: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(s).ok()?;
    if s.is_empty() || s.len() > 20 || s.starts_with('+') {
        return None;
    }
    if s == "0" {
        return Some(0);
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || digits.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

/// The line at `buf[at..]`: its content (up to its first `\r`) and where it ends (one
/// byte after that `\r`); `None` if not all there.
fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let r = at + buf[at..].iter().position(|&b| b == b'\r')?;
    (r + 1 < buf.len()).then(|| (&buf[at..r], r + 2))
}

fn error(text: &str, len: usize) -> Front {
    Front::Error(format!("Protocol error: {text}").into_bytes(), len)
}

impl RedisModel {
    fn front(&self, buf: &[u8]) -> Front {
        match buf.first() {
            None => Front::Nothing,
            Some(b'*') => self.multibulk(buf),
            Some(_) => inline(buf),
        }
    }

    fn multibulk(&self, buf: &[u8]) -> Front {
        let Some((head, mut at)) = line(buf, 0) else {
            return Front::InLine("too big mbulk count string");
        };
        let count = match number(&head[1..]) {
            Some(n) if n <= i64::from(i32::MAX) => n,
            _ => return error("invalid multibulk length", at),
        };
        if count <= 0 {
            return Front::Empty(at);
        }
        let mut args = Vec::new();
        let mut accounted: u64 = 0;
        for _ in 0..count {
            if at == buf.len() {
                return Front::InPayload; // between arguments
            }
            let Some((head, next)) = line(buf, at) else {
                return Front::InLine("too big bulk count string");
            };
            if buf[at] != b'$' {
                let text = match buf[at] {
                    0 => "Protocol error: expected '$', got '"
                        .to_string()
                        .into_bytes(),
                    b'\r' | b'\n' => b"Protocol error: expected '$', got ' '".to_vec(),
                    b => [&b"Protocol error: expected '$', got '"[..], &[b], b"'"].concat(),
                };
                return Front::Error(text, next);
            }
            let len = match number(&head[1..]) {
                Some(n) if n >= 0 && n as u64 <= self.limits.max_bulk_len as u64 => n as usize,
                _ => return error("invalid bulk length", next),
            };
            accounted += (len + ARG_OVERHEAD) as u64;
            if accounted > self.limits.max_request_len as u64 {
                return Front::TooLarge;
            }
            if buf.len() < next + len + 2 {
                return Front::InPayload;
            }
            args.push(buf[next..next + len].to_vec());
            at = next + len + 2;
        }
        Front::Request(args, at)
    }
}

fn inline(buf: &[u8]) -> Front {
    let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
        return Front::InLine("too big inline request");
    };
    let mut text = &buf[..newline];
    if text.ends_with(b"\r") {
        text = &text[..text.len() - 1];
    }
    match split_words(text) {
        Some(args) if args.is_empty() => Front::Empty(newline + 1),
        Some(args) => Front::Request(args, newline + 1),
        None => error("unbalanced quotes in request", newline + 1),
    }
}

/// Redis's `sdssplitargs`, read from its rules: words separated by blanks; a word may
/// hold double-quoted parts (`\xHH`, `\n`, `\r`, `\t`, `\b`, `\a` and `\` + any byte)
/// and single-quoted parts (`\'`); a closing quote must be followed by a blank or the
/// end; the text ends at its first NUL. `None`: quotes that do not close.
fn split_words(text: &[u8]) -> Option<Vec<Vec<u8>>> {
    let text = text.split(|&b| b == 0).next().unwrap_or_default();
    let blank = |b: u8| b" \t\n\r\x0b\x0c".contains(&b);
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < text.len() && blank(text[i]) {
            i += 1;
        }
        if i == text.len() {
            return Some(words);
        }
        let mut word = Vec::new();
        while let Some(&b) = text.get(i) {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => {
                    i += 1;
                    break;
                }
                b'"' | b'\'' => {
                    let quote = b;
                    i += 1;
                    loop {
                        let c = *text.get(i)?; // the end inside quotes: unbalanced
                        let hex = |j: usize| text.get(j).and_then(|&h| (h as char).to_digit(16));
                        if c == quote {
                            if text.get(i + 1).is_some_and(|&n| !blank(n)) {
                                return None;
                            }
                            i += 1;
                            break;
                        } else if quote == b'"' && c == b'\\' && text.get(i + 1) == Some(&b'x') {
                            if let (Some(h), Some(l)) = (hex(i + 2), hex(i + 3)) {
                                word.push((h * 16 + l) as u8);
                                i += 4;
                            } else {
                                word.push(b'x');
                                i += 2;
                            }
                        } else if quote == b'"' && c == b'\\' && i + 1 < text.len() {
                            word.push(match text[i + 1] {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'b' => 8,
                                b'a' => 7,
                                other => other,
                            });
                            i += 2;
                        } else if quote == b'\'' && c == b'\\' && text.get(i + 1) == Some(&b'\'') {
                            word.push(b'\'');
                            i += 2;
                        } else {
                            word.push(c);
                            i += 1;
                        }
                    }
                    // A closing quote ends the word (what follows it is a blank).
                    if text.get(i).is_none_or(|&n| blank(n)) {
                        break;
                    }
                }
                other => {
                    word.push(other);
                    i += 1;
                }
            }
        }
        words.push(word);
    }
}

/// What applying a request comes to.
enum Applied {
    /// A reply; the connection goes on.
    Reply(Vec<u8>),
    /// A reply, then the connection closes.
    Last(Vec<u8>),
    /// The server shuts down.
    Shutdown,
    /// A `POST` or `Host:` command: the connection is aborted, unanswered.
    Refused,
}

fn bulk(b: &[u8]) -> Vec<u8> {
    [format!("${}\r\n", b.len()).as_bytes(), b, b"\r\n"].concat()
}

fn int(n: usize) -> Vec<u8> {
    format!(":{n}\r\n").into_bytes()
}

fn err(text: &str) -> Vec<u8> {
    format!("-ERR {text}\r\n").into_bytes()
}

fn arity(name: &str) -> Vec<u8> {
    err(&format!("wrong number of arguments for '{name}' command"))
}

/// `s` as C's `%.*s` prints it: up to its first NUL, at most `max` bytes.
fn c_str(s: &[u8], max: usize) -> &[u8] {
    let s = s.split(|&b| b == 0).next().unwrap_or_default();
    &s[..s.len().min(max)]
}

/// An error line with `\r` and `\n` turned into spaces, as Redis sends it.
fn error_line(text: Vec<u8>) -> Vec<u8> {
    let text: Vec<u8> = text
        .into_iter()
        .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b })
        .collect();
    [&b"-ERR "[..], &text, b"\r\n"].concat()
}

impl RedisModel {
    fn apply(&mut self, args: &[Vec<u8>]) -> Applied {
        self.applied += 1;
        let name = args[0].to_ascii_lowercase();
        if name == b"post" || name == b"host:" {
            return Applied::Refused;
        }
        let n = args.len();
        let flag = |i: usize| args[i].to_ascii_lowercase();
        let reply = match (name.as_slice(), n) {
            (b"ping", 1) => b"+PONG\r\n".to_vec(),
            (b"ping", 2) => bulk(&args[1]),
            (b"ping", _) => arity("ping"),
            (b"echo", 2) => bulk(&args[1]),
            (b"echo", _) => arity("echo"),
            // Redis refuses a write while over the limit, after checking the arity.
            (b"set", 3..) if self.maxmemory != 0 && self.used_memory() > self.maxmemory => {
                b"-OOM command not allowed when used memory > 'maxmemory'.\r\n".to_vec()
            }
            (b"set", 3) => {
                self.store.insert(args[1].clone(), args[2].clone());
                b"+OK\r\n".to_vec()
            }
            (b"set", 0..=2) => arity("set"),
            (b"set", _) => err("syntax error"),
            (b"get", 2) => match self.store.get(&args[1]) {
                Some(v) => bulk(v),
                None => b"$-1\r\n".to_vec(),
            },
            (b"get", _) => arity("get"),
            (b"del", 2..) => int(args[1..]
                .iter()
                .filter(|k| self.store.remove(*k).is_some())
                .count()),
            (b"del", _) => arity("del"),
            (b"exists", 2..) => int(args[1..]
                .iter()
                .filter(|k| self.store.contains_key(*k))
                .count()),
            (b"exists", _) => arity("exists"),
            (b"dbsize", 1) => int(self.store.len()),
            (b"dbsize", _) => arity("dbsize"),
            (b"flushdb", 1) => {
                self.store.clear();
                b"+OK\r\n".to_vec()
            }
            (b"flushdb", 2) if flag(1) == b"sync" || flag(1) == b"async" => {
                self.store.clear();
                b"+OK\r\n".to_vec()
            }
            (b"flushdb", _) => err("syntax error"),
            (b"config", 1) => arity("config"),
            (b"config", _) if flag(1) != b"get" => error_line(
                [
                    &b"unknown subcommand '"[..],
                    c_str(&args[1], 128),
                    b"'. Try CONFIG HELP.",
                ]
                .concat(),
            ),
            (b"config", 2) => arity("config|get"),
            (b"config", _) => config_get(&args[2..], self.maxmemory),
            (b"quit", _) => return Applied::Last(b"+OK\r\n".to_vec()),
            (b"shutdown", _) => {
                let flags: Vec<Vec<u8>> = (1..n).map(flag).collect();
                let known = [&b"nosave"[..], b"save", b"now", b"force", b"abort"];
                let has = |f: &[u8]| flags.iter().any(|g| g == f);
                if flags.iter().any(|f| !known.contains(&f.as_slice()))
                    || (has(b"abort") && flags.iter().any(|f| f != b"abort"))
                    || (has(b"save") && has(b"nosave"))
                {
                    err("syntax error")
                } else if has(b"abort") {
                    err("No shutdown in progress.")
                } else {
                    return Applied::Shutdown;
                }
            }
            _ => {
                let mut listed: Vec<u8> = Vec::new();
                for arg in &args[1..] {
                    if listed.len() >= 128 {
                        break;
                    }
                    let room = 128 - listed.len();
                    listed.extend([&b"'"[..], c_str(arg, room), b"' "].concat());
                }
                error_line(
                    [
                        &b"unknown command '"[..],
                        c_str(&args[0], 128),
                        b"', with args beginning with: ",
                        &listed,
                    ]
                    .concat(),
                )
            }
        };
        Applied::Reply(reply)
    }
}

/// `CONFIG GET`'s reply: `save`, `appendonly` and `maxmemory`, each once, under the
/// name it was first asked by (or its own, when asked by a pattern).
fn config_get(patterns: &[Vec<u8>], maxmemory: usize) -> Vec<u8> {
    let maxmemory = maxmemory.to_string();
    let parameters: [(&[u8], &[u8]); 3] = [
        (b"save", b""),
        (b"appendonly", b"no"),
        (b"maxmemory", maxmemory.as_bytes()),
    ];
    let mut named: [Option<Vec<u8>>; 3] = [None, None, None];
    for pattern in patterns {
        // Redis reads a pattern as a C string: up to its first NUL.
        let c_pattern = c_str(pattern, usize::MAX);
        let glob = c_pattern.iter().any(|b| b"*?[".contains(b));
        for (slot, (name, _)) in named.iter_mut().zip(parameters) {
            if slot.is_none() {
                if glob && crate::redis::glob_match(c_pattern, name) {
                    *slot = Some(name.to_vec());
                } else if !glob && pattern.eq_ignore_ascii_case(name) {
                    *slot = Some(pattern.clone());
                }
            }
        }
    }
    let mut out = format!("*{}\r\n", 2 * named.iter().flatten().count()).into_bytes();
    for (name, (_, value)) in named.iter().zip(parameters) {
        if let Some(name) = name {
            out.extend(bulk(name));
            out.extend(bulk(value));
        }
    }
    out
}

impl Model for RedisModel {
    type Conn = RedisClient;

    /// Bytes read are not requests yet: only what the handler consumed is.
    fn input(&mut self, _: &mut RedisClient, _: &[u8]) {}

    fn consumed(&mut self, conn: &mut RedisClient, bytes: &[u8], _: Instant) {
        if conn.done || self.shut_down {
            return;
        }
        conn.partial.extend_from_slice(bytes);
        // Replies owed from here on are to requests the handler read in this call.
        let read_now = conn.owed.len();
        loop {
            let (len, owed) = match self.front(&conn.partial) {
                Front::Nothing | Front::InPayload => return,
                Front::Empty(len) => (len, None),
                Front::Request(args, len) => match self.apply(&args) {
                    Applied::Reply(reply) => (len, Some(reply)),
                    Applied::Last(reply) => {
                        conn.done = true;
                        (len, Some(reply))
                    }
                    Applied::Shutdown => {
                        self.shut_down = true;
                        conn.done = true;
                        (len, None)
                    }
                    Applied::Refused => {
                        // The connection is aborted: the replies to the requests read
                        // with this one never leave (the requests did run); replies
                        // from earlier reads may have, in part (a prefix of them, which
                        // is all `output` checks on a connection that was reset).
                        conn.done = true;
                        conn.owed.truncate(read_now);
                        (len, None)
                    }
                },
                Front::Error(text, len) => {
                    self.protocol_errors += 1;
                    conn.done = true;
                    (len, Some([&b"-ERR "[..], &text, b"\r\n"].concat()))
                }
                Front::InLine(text) => {
                    self.protocol_errors += 1;
                    conn.done = true;
                    (
                        conn.partial.len(),
                        Some(err(&format!("Protocol error: {text}"))),
                    )
                }
                Front::TooLarge => {
                    conn.done = true;
                    (conn.partial.len(), None)
                }
            };
            conn.partial.drain(..len);
            if let Some(owed) = owed {
                conn.owed.extend(owed);
            }
            if conn.done {
                conn.partial.clear();
                return;
            }
        }
    }

    fn output(&mut self, conn: &mut RedisClient, bytes: &[u8]) -> Result<(), ModelError> {
        for &b in bytes {
            match conn.owed.pop_front() {
                Some(e) if e == b => conn.received += 1,
                expected => {
                    let upcoming: Vec<u8> = conn.owed.iter().take(40).copied().collect();
                    return Err(ModelError {
                        offset: conn.received,
                        detail: format!(
                            "got `{}`, expected {} (then `{}`)",
                            b.escape_ascii(),
                            match expected {
                                Some(e) => format!("`{}`", e.escape_ascii()),
                                None => "nothing more".into(),
                            },
                            upcoming.escape_ascii()
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    fn owed(&self, conn: &RedisClient) -> usize {
        conn.owed.len()
    }

    fn handler_wakes(&self) -> bool {
        false
    }
}

/// Redis traffic: requests over a key space of four keys (so connections meet on
/// them), multibulk mostly and inline now and then, values from empty to larger than
/// the simulator's buffers and [`sim_limits`], command names in any case; mixed with
/// wrong arities, unknown commands, protocol errors of every kind, oversized lines,
/// `QUIT`, HTTP requests (`POST`, `Host:`), random bytes and, rarely, `SHUTDOWN`.
pub fn redis_requests(_client: u16, rng: &mut Rng) -> Vec<u8> {
    let key = |rng: &mut Rng| -> Vec<u8> {
        match rng.below(20) {
            0 => Vec::new(),
            1 => b"k 0\r\n\"'".to_vec(),
            _ => format!("k{}", rng.below(4)).into_bytes(),
        }
    };
    let bytes = |rng: &mut Rng, len: usize| -> Vec<u8> {
        if rng.below(4) == 0 {
            (0..len).map(|_| rng.next_u64() as u8).collect()
        } else {
            (0..len).map(|_| b'a' + rng.below(26) as u8).collect()
        }
    };
    let value = |rng: &mut Rng| -> Vec<u8> {
        let len = match rng.below(1000) {
            0..=699 => rng.range(0, 8),
            700..=969 => rng.range(9, 100),
            970..=994 => rng.range(100, 1000),
            _ => rng.range(1000, 2900),
        } as usize;
        bytes(rng, len)
    };
    let name = |rng: &mut Rng, name: &str| -> Vec<u8> {
        name.bytes()
            .map(|b| {
                if rng.below(3) == 0 {
                    b.to_ascii_lowercase()
                } else {
                    b
                }
            })
            .collect()
    };
    let args: Vec<Vec<u8>> = match rng.below(1000) {
        0..=269 => vec![name(rng, "SET"), key(rng), value(rng)],
        270..=539 => vec![name(rng, "GET"), key(rng)],
        540..=599 => {
            let mut a = vec![name(rng, "DEL")];
            a.extend((0..rng.range(1, 3)).map(|_| key(rng)));
            a
        }
        600..=649 => {
            let mut a = vec![name(rng, "EXISTS")];
            a.extend((0..rng.range(1, 3)).map(|_| key(rng)));
            a
        }
        650..=699 => vec![name(rng, "PING")],
        700..=729 => vec![name(rng, "PING"), value(rng)],
        730..=779 => vec![name(rng, "ECHO"), value(rng)],
        780..=799 => vec![name(rng, "DBSIZE")],
        800..=804 => vec![name(rng, "FLUSHDB")],
        805..=807 => vec![name(rng, "FLUSHDB"), name(rng, "ASYNC")],
        808..=809 => vec![name(rng, "FLUSHDB"), b"now".to_vec()],
        810..=829 => {
            let params = [
                &b"save"[..],
                b"appendonly",
                b"*",
                b"SAVE",
                b"a*",
                b"nope",
                b"[sx]ave",
                b"MAXMEMORY",
                b"m*y",
                // What took the old recursive matcher seconds (30 stars and a byte).
                b"******************************x",
                // A C string to Redis: the pattern ends at the NUL.
                b"sa*\0x",
            ];
            let mut a = vec![name(rng, "CONFIG"), name(rng, "GET")];
            a.extend(
                (0..rng.range(0, 2))
                    .map(|_| params[rng.below(params.len() as u64) as usize].to_vec()),
            );
            a
        }
        830..=834 => vec![name(rng, "CONFIG"), value(rng)],
        835..=889 => {
            let len = rng.range(0, 10) as usize;
            let mut a = vec![bytes(rng, len)];
            a.extend((0..rng.range(0, 3)).map(|_| value(rng)));
            a
        }
        // Arguments around the 128 bytes an unknown command's error lists.
        890..=899 => {
            let first = rng.range(118, 131) as usize;
            vec![bytes(rng, 3), bytes(rng, first), value(rng), value(rng)]
        }
        900..=959 => match rng.below(4) {
            0 => vec![name(rng, "GET")],
            1 => vec![name(rng, "SET"), key(rng)],
            2 => vec![name(rng, "SET"), key(rng), value(rng), b"NX".to_vec()],
            _ => vec![name(rng, "ECHO")],
        },
        960..=964 => vec![name(rng, "SHUTDOWN"), b"frob".to_vec()],
        965..=969 => vec![name(rng, "SHUTDOWN"), name(rng, "ABORT")],
        970 if rng.below(20) == 0 => vec![name(rng, "SHUTDOWN"), name(rng, "NOSAVE")],
        971..=973 => vec![name(rng, "QUIT")],
        // A value over the request limit (within the bulk limit): only its header
        // needs to arrive.
        974..=976 => {
            // `SET k0 v` counts 53 + len(v) towards the limit: lengths right around it
            // half of the time.
            let len = if rng.below(2) == 0 {
                rng.range(1344, 1351)
            } else {
                rng.range(1351, 2048)
            } as usize;
            let mut out = format!("*3\r\n$3\r\nSET\r\n$2\r\nk0\r\n${len}\r\n").into_bytes();
            out.extend(bytes(rng, len));
            out.extend(b"\r\n");
            return out;
        }
        977..=989 => return protocol_trouble(rng),
        990..=993 => return http_request(rng),
        _ => {
            return (0..rng.range(1, 12))
                .map(|_| rng.next_u64() as u8)
                .collect();
        }
    };
    encode(rng, &args)
}

/// One request in RESP: multibulk mostly, inline (quoted where it must be) now and then.
fn encode(rng: &mut Rng, args: &[Vec<u8>]) -> Vec<u8> {
    if rng.below(4) != 0 || args[0].is_empty() {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend(format!("${}\r\n", a.len()).as_bytes());
            out.extend(a);
            out.extend(b"\r\n");
        }
        return out;
    }
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        let plain = !a.is_empty()
            && a.iter()
                .all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\'');
        if plain {
            out.extend(a);
        } else {
            out.push(b'"');
            for &b in a {
                out.extend(format!("\\x{b:02x}").as_bytes());
            }
            out.push(b'"');
        }
    }
    out.extend(if rng.below(4) == 0 {
        &b"\n"[..]
    } else {
        b"\r\n"
    });
    out
}

/// An HTTP request, or a `POST` or `Host:` command in RESP: what a web page makes a
/// browser send (cross-protocol scripting). The connection is aborted at its `POST`
/// or `Host:`; a `SET` after it must not run.
fn http_request(rng: &mut Rng) -> Vec<u8> {
    match rng.below(4) {
        0 => b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\n\r\nSET k0 pwned\r\n".to_vec(),
        // `GET / HTTP/1.1` is a GET with too many arguments: answered (unless read
        // with the `Host:` line after it, which drops its reply).
        1 => b"GET / HTTP/1.1\r\nhOsT: x\r\n\r\n".to_vec(),
        2 => {
            let name = if rng.below(2) == 0 { "POST" } else { "HOST:" };
            let args = [name_in_any_case(rng, name), b"/".to_vec()];
            encode(rng, &args)
        }
        _ => encode(rng, &[b"Host:".to_vec(), b"k1".to_vec(), b"SET".to_vec()]),
    }
}

/// `name` with each letter in either case.
fn name_in_any_case(rng: &mut Rng, name: &str) -> Vec<u8> {
    name.bytes()
        .map(|b| {
            if rng.below(2) == 0 {
                b.to_ascii_lowercase()
            } else {
                b
            }
        })
        .collect()
}

/// Requests Redis refuses: protocol errors of each kind, empty requests, lines too long
/// for a 512-byte input buffer.
fn protocol_trouble(rng: &mut Rng) -> Vec<u8> {
    match rng.below(16) {
        0 => b"*abc\r\n".to_vec(),
        1 => b"*1\r\n:1\r\n".to_vec(),
        2 => b"*1\r\n$x\r\n".to_vec(),
        3 => b"*1\r\n$-5\r\n".to_vec(),
        4 => b"*2147483648\r\n".to_vec(),
        5 => format!("*1\r\n${}\r\n", sim_limits().max_bulk_len + 1).into_bytes(),
        6 => b"ECHO \"unterminated\r\n".to_vec(),
        7 => b"ECHO 'a'b\r\n".to_vec(),
        8 => b"*1\r\n\r\n".to_vec(),
        9 => b"*01\r\n".to_vec(),
        10 => b"*0\r\n*-1\r\n\r\n \t\r\n".to_vec(),
        11 => {
            let mut line = b"ECHO ".to_vec();
            line.extend(std::iter::repeat_n(b'a', rng.range(500, 700) as usize));
            line.extend(b"\r\n");
            line
        }
        12 => {
            let mut line = b"*".to_vec();
            line.extend(std::iter::repeat_n(b'9', rng.range(500, 700) as usize));
            line.extend(b"\r\n");
            line
        }
        13 => {
            let mut line = b"*1\r\n$".to_vec();
            line.extend(std::iter::repeat_n(b'1', rng.range(500, 700) as usize));
            line.extend(b"\r\n");
            line
        }
        14 => b"*1\r\n\x00\r\n".to_vec(),
        _ => b"ECHO \"a\\\"\r\n".to_vec(),
    }
}

/// The limits the swarm runs [`Redis`](crate::redis::Redis) and [`RedisModel`] with,
/// small enough that [`redis_requests`] crosses both: arguments of up to 2,048 bytes,
/// and 1,400 bytes of arguments per request (overhead included), so a `SET` of a value
/// up to about 1,340 bytes is served, one of a larger value up to 2,048 bytes closes
/// its connection for the request limit, and a larger one is an invalid bulk length.
pub fn sim_limits() -> Limits {
    Limits {
        max_bulk_len: 2048,
        max_request_len: 1400,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Option<Vec<String>> {
        split_words(s.as_bytes()).map(|w| {
            w.iter()
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect()
        })
    }

    #[test]
    fn the_model_splits_words_as_redis_does() {
        assert_eq!(words("  a  b\tc ").unwrap(), ["a", "b", "c"]);
        assert_eq!(words(r#"a "b c" 'd e'"#).unwrap(), ["a", "b c", "d e"]);
        assert_eq!(words(r#""a\x41\n\q""#).unwrap(), ["aA\nq"]);
        assert_eq!(words(r#""a\x4""#).unwrap(), ["ax4"]);
        assert_eq!(words(r"'a\'b'").unwrap(), ["a'b"]);
        assert_eq!(words(r#"a"b c"d"#), None);
        assert_eq!(words(r#"a"b c" d"#).unwrap(), ["ab c", "d"]);
        assert_eq!(words("'x'y"), None);
        assert_eq!(words(r#""a\""#), None);
        assert_eq!(words("\"a\"\x0b").unwrap(), ["a"]);
        assert_eq!(words("\x0bx y\x0bz").unwrap(), ["x", "y\x0bz"]);
        assert_eq!(words("a\0b c").unwrap(), ["a"]);
        assert_eq!(words("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn the_model_answers_as_redis_does() {
        let mut m = RedisModel::default();
        let mut c = RedisClient::default();
        m.consumed(
            &mut c,
            b"SET a 1\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\nfoo x\r\nPING\r\n*1\r\n:1\r\nPING\r\n",
            Instant::ZERO,
        );
        let owed: Vec<u8> = c.owed.iter().copied().collect();
        assert_eq!(
            owed,
            b"+OK\r\n$1\r\n1\r\n-ERR unknown command 'foo', with args beginning with: 'x' \r\n\
              +PONG\r\n-ERR Protocol error: expected '$', got ':'\r\n"
        );
        assert!(c.done);
        // Consumed bytes ending inside a line: that line was too big.
        let mut c = RedisClient::default();
        m.consumed(&mut c, b"PING\r\nECHO aaaa", Instant::ZERO);
        let owed: Vec<u8> = c.owed.iter().copied().collect();
        assert_eq!(
            owed,
            b"+PONG\r\n-ERR Protocol error: too big inline request\r\n"
        );
        // Ending inside a payload: the request is still arriving.
        let mut c = RedisClient::default();
        m.consumed(
            &mut c,
            b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$5\r\nhel",
            Instant::ZERO,
        );
        assert!(c.owed.is_empty() && !c.done);
        m.consumed(&mut c, b"lo\r\n", Instant::ZERO);
        assert_eq!(c.owed.iter().copied().collect::<Vec<u8>>(), b"+OK\r\n");
        assert_eq!(
            m.store().get(&b"b"[..]).map(Vec::as_slice),
            Some(&b"hello"[..])
        );
    }

    #[test]
    fn the_model_refuses_writes_over_maxmemory_as_redis_does() {
        let mut m = RedisModel::default().maxmemory(2 * ENTRY_OVERHEAD + 2);
        let mut c = RedisClient::default();
        m.consumed(
            &mut c,
            b"SET a 1\r\nSET b 12\r\nSET c 1\r\nSET c\r\nGET a\r\nCONFIG GET maxm*\r\n\
              DEL b\r\nSET c 1\r\nFLUSHDB\r\nSET d 1\r\n",
            Instant::ZERO,
        );
        let owed: Vec<u8> = c.owed.iter().copied().collect();
        assert_eq!(
            owed.escape_ascii().to_string(),
            b"+OK\r\n+OK\r\n-OOM command not allowed when used memory > 'maxmemory'.\r\n\
             -ERR wrong number of arguments for 'set' command\r\n$1\r\n1\r\n\
             *2\r\n$9\r\nmaxmemory\r\n$3\r\n258\r\n:1\r\n+OK\r\n+OK\r\n+OK\r\n"
                .escape_ascii()
                .to_string()
        );
        assert_eq!(m.used_memory(), 2 + ENTRY_OVERHEAD);
    }

    #[test]
    fn the_model_refuses_http_as_redis_does() {
        let mut m = RedisModel::default();
        // Read in one go: the requests before `POST` run, unanswered; nothing after.
        let mut c = RedisClient::default();
        m.consumed(
            &mut c,
            b"PING\r\nSET a 1\r\nPOST / HTTP/1.1\r\nSET a 2\r\n",
            Instant::ZERO,
        );
        assert!(c.done && c.owed.is_empty());
        assert_eq!(m.store().get(&b"a"[..]).map(Vec::as_slice), Some(&b"1"[..]));
        // A reply to an earlier read is still owed (it may have left already).
        let mut c = RedisClient::default();
        m.consumed(&mut c, b"PING\r\n", Instant::ZERO);
        m.consumed(
            &mut c,
            b"*2\r\n$5\r\nhOsT:\r\n$1\r\nx\r\nDEL a\r\n",
            Instant::ZERO,
        );
        assert!(c.done);
        assert_eq!(c.owed.iter().copied().collect::<Vec<u8>>(), b"+PONG\r\n");
        assert_eq!(m.store().len(), 1);
        // Only the exact names.
        let mut c = RedisClient::default();
        m.consumed(&mut c, b"POSTS\r\nHost x\r\n", Instant::ZERO);
        assert!(!c.done);
        assert!(
            c.owed
                .iter()
                .copied()
                .collect::<Vec<u8>>()
                .starts_with(b"-ERR unknown command 'POSTS'")
        );
    }
}
