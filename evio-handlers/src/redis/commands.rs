//! The commands: looking them up without allocation, running them against the store,
//! and their replies in Redis 7's words.

use std::collections::HashMap;
use std::sync::Arc;

use evio_proto::Conn;

use super::RedisStats;
use super::client::{Client, decimal, prefixed, reply, reply_bulk, reply_value};
use super::glob::glob_match;

/// What serving one request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Its reply is written: go on with the next request.
    Next,
    /// Its reply did not all fit and the rest is kept: serve nothing more until it is
    /// out.
    Stop,
    /// Close the connection once its reply is out (`QUIT`, a protocol error).
    Close,
    /// Shut the server down (`SHUTDOWN`).
    Shutdown,
    /// Nothing more can be served until more input arrives or the output drains.
    Wait,
    /// The request was a `POST` or `Host:` command: an HTTP request sent to this
    /// server (cross-protocol scripting). Nothing is answered for it, and the
    /// connection is aborted with what is still owed to it, as Redis does.
    Refuse,
}

impl Step {
    fn written(all: bool) -> Step {
        if all { Step::Next } else { Step::Stop }
    }
}

/// A request's arguments: spans of a byte buffer (the input itself, or a buffer the
/// arguments were decoded or gathered into).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Args<'a> {
    base: &'a [u8],
    spans: &'a [(usize, usize)],
}

impl<'a> Args<'a> {
    pub(crate) fn new(base: &'a [u8], spans: &'a [(usize, usize)]) -> Self {
        Args { base, spans }
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    fn get(&self, i: usize) -> &'a [u8] {
        let (at, len) = self.spans[i];
        &self.base[at..at + len]
    }
}

/// What an entry of the store counts towards [`RedisConfig::maxmemory`] besides its
/// key's and its value's bytes: the map's bucket (a boxed key and a shared value, 24
/// bytes, and a control byte; with the table's spare room, 29 to 57 bytes an entry),
/// the value's shared box (its counts and the `Vec`, 40 bytes, 48 from the
/// allocator), and the allocator's header and rounding on the key's and the value's
/// blocks (up to 29 bytes each: glibc's smallest block is 32 bytes). Measured here (glibc, the release example), the RSS
/// an entry adds beyond its key and value was 145 bytes for 1M entries of 16-byte
/// keys and 3-byte values, 128 for 100-byte values, 106 for 200k entries of
/// 1,000-byte values.
///
/// [`RedisConfig::maxmemory`]: super::RedisConfig::maxmemory
pub const ENTRY_OVERHEAD: usize = 128;

/// The key space: byte-string keys to byte-string values, and what they count
/// towards the memory limit.
///
/// Values are shared (`Arc`) so that a reply still streaming out a large value keeps
/// it while the key is overwritten or deleted; a value nobody else holds is overwritten
/// in place, so a `SET` of a value no larger than the old one (nor much smaller)
/// allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct Db {
    // foldhash: a fast hasher, seeded per map (std's SipHash costs more than the rest
    // of a GET), keyed by `&[u8]` lookups without building a key.
    map: HashMap<Box<[u8]>, Arc<Vec<u8>>, foldhash::fast::RandomState>,
    /// The sum over the entries of key length + value length + [`ENTRY_OVERHEAD`],
    /// kept as entries come and go.
    used: usize,
    /// Writes are refused while `used` is above this (0: no limit).
    maxmemory: usize,
}

impl Db {
    /// An empty store whose writes are refused while it holds more than `maxmemory`
    /// (0: no limit).
    pub(crate) fn new(maxmemory: usize) -> Self {
        Db {
            maxmemory,
            ..Db::default()
        }
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&Arc<Vec<u8>>> {
        self.map.get(key)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.map.keys().map(|k| &**k)
    }

    /// What the entries count towards the limit (see [`ENTRY_OVERHEAD`]).
    pub(crate) fn used(&self) -> usize {
        self.used
    }

    /// The limit (0: none).
    pub(crate) fn maxmemory(&self) -> usize {
        self.maxmemory
    }

    /// Whether writes are refused: the store holds more than the limit. As Redis, the
    /// check comes before a write, so one write can take the store past the limit by
    /// its own size; the next is refused.
    fn over_limit(&self) -> bool {
        self.maxmemory != 0 && self.used > self.maxmemory
    }

    pub(crate) fn set(&mut self, key: &[u8], value: &[u8]) {
        match self.map.get_mut(key) {
            Some(old) => {
                self.used = self.used - old.len() + value.len();
                match Arc::get_mut(old) {
                    // Reuse the old value's allocation unless it would hold more than
                    // twice what is counted for it (and a little for tiny values):
                    // the limit counts lengths, and should not be off by much.
                    Some(bytes) if bytes.capacity() <= 2 * value.len().max(32) => {
                        bytes.clear();
                        bytes.extend_from_slice(value);
                    }
                    _ => *old = Arc::new(value.to_vec()),
                }
            }
            None => {
                self.used += key.len() + value.len() + ENTRY_OVERHEAD;
                self.map.insert(key.into(), Arc::new(value.to_vec()));
            }
        }
    }

    fn remove(&mut self, key: &[u8]) -> bool {
        let Some((key, value)) = self.map.remove_entry(key) else {
            return false;
        };
        self.used -= key.len() + value.len() + ENTRY_OVERHEAD;
        // Give the table back as it empties (as Redis shrinks its dict): at a quarter
        // full, to half, so that each shrink is paid for by the removals before it.
        let capacity = self.map.capacity();
        if capacity > 64 && self.map.len() < capacity / 4 {
            self.map.shrink_to(self.map.len() * 2);
        }
        true
    }

    /// Empties the store and gives its memory back: a new map, so the old table is
    /// freed with the entries (`clear` would keep it at its largest).
    fn flush(&mut self) {
        self.map = HashMap::default();
        self.used = 0;
    }
}

/// The commands served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    Ping,
    Echo,
    Set,
    Get,
    Del,
    Exists,
    FlushDb,
    DbSize,
    Config,
    Quit,
    Shutdown,
}

/// A lowercase name of up to 8 bytes as a little-endian word.
const fn word(name: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let mut i = 0;
    while i < name.len() {
        w[i] = name[i];
        i += 1;
    }
    u64::from_le_bytes(w)
}

const PING: u64 = word(b"ping");
const ECHO: u64 = word(b"echo");
const SET: u64 = word(b"set");
const GET: u64 = word(b"get");
const DEL: u64 = word(b"del");
const EXISTS: u64 = word(b"exists");
const FLUSHDB: u64 = word(b"flushdb");
const DBSIZE: u64 = word(b"dbsize");
const CONFIG: u64 = word(b"config");
const QUIT: u64 = word(b"quit");
const SHUTDOWN: u64 = word(b"shutdown");

/// The command named `name`, case-insensitively, in a couple of instructions: every
/// name is letters only and at most 8 bytes, and a byte ORed with 0x20 equals a
/// lowercase letter exactly when it is that letter in either case.
#[inline]
fn lookup(name: &[u8]) -> Option<Command> {
    let len = name.len();
    if len == 0 || len > 8 {
        return None;
    }
    let mut w = [0u8; 8];
    w[..len].copy_from_slice(name);
    let lower = u64::from_le_bytes(w) | (0x2020_2020_2020_2020 >> (64 - 8 * len));
    Some(match (len, lower) {
        (3, GET) => Command::Get,
        (3, SET) => Command::Set,
        (4, PING) => Command::Ping,
        (4, ECHO) => Command::Echo,
        (3, DEL) => Command::Del,
        (6, EXISTS) => Command::Exists,
        (7, FLUSHDB) => Command::FlushDb,
        (6, DBSIZE) => Command::DbSize,
        (6, CONFIG) => Command::Config,
        (4, QUIT) => Command::Quit,
        (8, SHUTDOWN) => Command::Shutdown,
        _ => return None,
    })
}

/// `a` equals the lowercase `lower`, ignoring ASCII case (C's `strcasecmp`).
fn eq_ci(a: &[u8], lower: &[u8]) -> bool {
    a.len() == lower.len()
        && a.iter()
            .zip(lower)
            .all(|(x, y)| x.to_ascii_lowercase() == *y)
}

/// Redis's reply to a command called with the wrong number of arguments.
macro_rules! arity {
    ($name:literal) => {
        concat!(
            "-ERR wrong number of arguments for '",
            $name,
            "' command\r\n"
        )
        .as_bytes()
    };
}

const OK: &[u8] = b"+OK\r\n";
const SYNTAX: &[u8] = b"-ERR syntax error\r\n";
/// Redis's reply to a write while the store is over its memory limit.
const OOM: &[u8] = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n";

/// The configuration parameters `CONFIG GET` knows: the two that redis-benchmark asks
/// for (this server keeps nothing on disk: `""` and `no`), and `maxmemory`.
const PARAMETERS: [&[u8]; 3] = [b"save", b"appendonly", b"maxmemory"];

/// Serves one request (`args` is not empty).
#[inline]
pub(crate) fn execute(
    db: &mut Db,
    args: Args<'_>,
    conn: &mut Conn<'_, Client>,
    scratch: &mut Vec<u8>,
    stats: &mut RedisStats,
) -> Step {
    let Some(command) = lookup(args.get(0)) else {
        // Checked only here, for names that are no command: the common path pays
        // nothing for it.
        if is_http(args.get(0)) {
            return Step::Refuse;
        }
        return unknown_command(args, conn, scratch);
    };
    let argc = args.len();
    let mut digits = [0u8; 24];
    let all = match command {
        Command::Get if argc == 2 => match db.get(args.get(1)) {
            Some(value) => reply_value(conn, value),
            None => reply(conn, b"$-1\r\n"),
        },
        Command::Get => reply(conn, arity!("get")),
        // Checked after the arity, before the options, as Redis refuses a command
        // flagged `denyoom`.
        Command::Set if argc >= 3 && db.over_limit() => {
            stats.oom_refusals += 1;
            reply(conn, OOM)
        }
        Command::Set if argc == 3 => {
            db.set(args.get(1), args.get(2));
            reply(conn, OK)
        }
        // Options (NX, XX, EX, …) are not supported.
        Command::Set if argc > 3 => reply(conn, SYNTAX),
        Command::Set => reply(conn, arity!("set")),
        Command::Ping if argc == 1 => reply(conn, b"+PONG\r\n"),
        Command::Ping if argc == 2 => reply_bulk(conn, args.get(1)),
        Command::Ping => reply(conn, arity!("ping")),
        Command::Echo if argc == 2 => reply_bulk(conn, args.get(1)),
        Command::Echo => reply(conn, arity!("echo")),
        Command::Del if argc >= 2 => {
            let removed = (1..argc).filter(|&i| db.remove(args.get(i))).count();
            reply(conn, prefixed(&mut digits, b':', removed as u64))
        }
        Command::Del => reply(conn, arity!("del")),
        Command::Exists if argc >= 2 => {
            let found = (1..argc).filter(|&i| db.get(args.get(i)).is_some()).count();
            reply(conn, prefixed(&mut digits, b':', found as u64))
        }
        Command::Exists => reply(conn, arity!("exists")),
        Command::DbSize if argc == 1 => reply(conn, prefixed(&mut digits, b':', db.len() as u64)),
        Command::DbSize => reply(conn, arity!("dbsize")),
        Command::FlushDb
            if argc == 1
                || (argc == 2 && (eq_ci(args.get(1), b"sync") || eq_ci(args.get(1), b"async"))) =>
        {
            db.flush();
            reply(conn, OK)
        }
        Command::FlushDb => reply(conn, SYNTAX),
        Command::Config => return config(args, conn, scratch, db.maxmemory()),
        Command::Quit => {
            reply(conn, OK);
            return Step::Close;
        }
        Command::Shutdown => return shutdown(args, conn),
    };
    Step::written(all)
}

/// Whether a command's name is `POST` or `Host:` (in any case): the start of an HTTP
/// request, which Redis takes for an attack (`processCommand` in its `server.c`).
fn is_http(name: &[u8]) -> bool {
    eq_ci(name, b"post") || eq_ci(name, b"host:")
}

/// Redis's `-ERR unknown command '…', with args beginning with: '…' '…' `: the name and
/// the arguments, each cut at a NUL (Redis formats them as C strings) and to 128 bytes
/// in all, with `\r` and `\n` made spaces so that the reply stays one line.
#[cold]
fn unknown_command(args: Args<'_>, conn: &mut Conn<'_, Client>, out: &mut Vec<u8>) -> Step {
    out.clear();
    out.extend_from_slice(b"-ERR unknown command '");
    push_c_string(out, args.get(0), 128);
    out.extend_from_slice(b"', with args beginning with: ");
    let listed = out.len();
    for i in 1..args.len() {
        let used = out.len() - listed;
        if used >= 128 {
            break;
        }
        out.push(b'\'');
        push_c_string(out, args.get(i), 128 - used);
        out.extend_from_slice(b"' ");
    }
    error_line_end(out);
    Step::written(reply(conn, out))
}

/// Appends `s` up to its first NUL, at most `max` bytes of it (`%.*s`).
fn push_c_string(out: &mut Vec<u8>, s: &[u8], max: usize) {
    let s = &s[..memchr::memchr(0, s).unwrap_or(s.len())];
    out.extend_from_slice(&s[..s.len().min(max)]);
}

/// Makes `\r` and `\n` in an error line spaces (after its `-`), then ends the line.
fn error_line_end(out: &mut Vec<u8>) {
    for b in &mut out[1..] {
        if matches!(*b, b'\r' | b'\n') {
            *b = b' ';
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// `CONFIG GET pattern …` (the parameters in [`PARAMETERS`]); any other subcommand is
/// unknown.
fn config(
    args: Args<'_>,
    conn: &mut Conn<'_, Client>,
    out: &mut Vec<u8>,
    maxmemory: usize,
) -> Step {
    let argc = args.len();
    if argc < 2 {
        return Step::written(reply(conn, arity!("config")));
    }
    if !eq_ci(args.get(1), b"get") {
        out.clear();
        out.extend_from_slice(b"-ERR unknown subcommand '");
        push_c_string(out, args.get(1), 128);
        out.extend_from_slice(b"'. Try CONFIG HELP.");
        error_line_end(out);
        return Step::written(reply(conn, out));
    }
    if argc < 3 {
        return Step::written(reply(conn, arity!("config|get")));
    }
    // Each parameter once, under the name it was first asked by (as Redis does for a
    // name asked exactly; a pattern lists the parameter's own name).
    let mut matched: [Option<&[u8]>; PARAMETERS.len()] = [None; PARAMETERS.len()];
    for i in 2..argc {
        let pattern = args.get(i);
        // Redis looks for glob characters, and matches, in the pattern as a C string:
        // up to its first NUL.
        let glob = &pattern[..memchr::memchr(0, pattern).unwrap_or(pattern.len())];
        let is_glob = glob.iter().any(|b| matches!(b, b'*' | b'?' | b'['));
        for (slot, name) in matched.iter_mut().zip(PARAMETERS) {
            if slot.is_some() {
                continue;
            }
            if is_glob && glob_match(glob, name) {
                *slot = Some(name);
            } else if !is_glob && eq_ci(pattern, name) {
                *slot = Some(pattern);
            }
        }
    }
    let mut digits = [0u8; 24];
    let values: [&[u8]; PARAMETERS.len()] = [b"", b"no", decimal(&mut digits, maxmemory as u64)];
    let mut head = [0u8; 24];
    let count = matched.iter().flatten().count();
    let mut all = reply(conn, prefixed(&mut head, b'*', 2 * count as u64));
    for (name, value) in matched.iter().zip(values) {
        if let Some(name) = name {
            all &= reply_bulk(conn, name);
            all &= reply_bulk(conn, value);
        }
    }
    Step::written(all)
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`: Redis's checks of the flags; with
/// no persistence and no shutdown in progress, a valid call just stops the server.
fn shutdown(args: Args<'_>, conn: &mut Conn<'_, Client>) -> Step {
    let (mut save, mut nosave, mut abort, mut other) = (false, false, false, false);
    for i in 1..args.len() {
        let flag = args.get(i);
        if eq_ci(flag, b"nosave") {
            nosave = true;
        } else if eq_ci(flag, b"save") {
            save = true;
        } else if eq_ci(flag, b"now") || eq_ci(flag, b"force") {
            other = true;
        } else if eq_ci(flag, b"abort") {
            abort = true;
        } else {
            return Step::written(reply(conn, SYNTAX));
        }
    }
    if (abort && (save || nosave || other)) || (save && nosave) {
        return Step::written(reply(conn, SYNTAX));
    }
    if abort {
        return Step::written(reply(conn, b"-ERR No shutdown in progress.\r\n"));
    }
    Step::Shutdown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_in_any_case_and_only_exactly() {
        assert_eq!(lookup(b"GET"), Some(Command::Get));
        assert_eq!(lookup(b"gEt"), Some(Command::Get));
        assert_eq!(lookup(b"ShutDown"), Some(Command::Shutdown));
        assert_eq!(lookup(b"flushdb"), Some(Command::FlushDb));
        for name in [
            &b""[..],
            b"GE",
            b"GETX",
            b"G\x05T",
            b"gEt\0",
            b"SHUTDOWNS",
            b"PING ",
            b"\x47\x45\x54\x00",
        ] {
            assert_eq!(lookup(name), None, "{name:?}");
        }
    }

    /// What the entries of `db` count, summed afresh.
    fn recount(db: &Db) -> usize {
        db.map
            .iter()
            .map(|(k, v)| k.len() + v.len() + ENTRY_OVERHEAD)
            .sum()
    }

    #[test]
    fn the_memory_count_follows_every_change() {
        let mut db = Db::new(0);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut held = Vec::new();
        for i in 0..50_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = format!("k{}", x % 700).into_bytes();
            let value = vec![b'v'; (x >> 20) as usize % 600];
            match (x >> 40) % 8 {
                _ if i % 9_000 == 8_999 => db.flush(),
                0..=3 => db.set(&key, &value),
                4 | 5 => {
                    db.remove(&key);
                }
                // A reply still streaming a value holds it: the store must replace it,
                // not write over it.
                6 => held.extend(db.get(&key).cloned()),
                _ => held.clear(),
            }
            assert_eq!(db.used(), recount(&db), "after step {i}");
            for value in db.map.values() {
                assert!(value.capacity() <= 2 * value.len().max(32));
            }
        }
        // Emptied key by key, the table is given back as it goes.
        let keys: Vec<Box<[u8]>> = db.map.keys().cloned().collect();
        for key in &keys {
            db.remove(key);
        }
        assert_eq!((db.used(), db.len()), (0, 0));
        assert!(db.map.capacity() <= 64, "{}", db.map.capacity());
    }

    #[test]
    fn writes_are_refused_only_once_over_the_limit() {
        let mut db = Db::new(2 * ENTRY_OVERHEAD + 10);
        db.set(b"a", b"1234");
        assert!(!db.over_limit());
        db.set(b"b", b"1234");
        // At the limit exactly is not over it (Redis: used <= maxmemory is fine).
        assert_eq!(db.used(), db.maxmemory());
        assert!(!db.over_limit());
        db.set(b"b", b"12345");
        assert!(db.over_limit());
        db.remove(b"a");
        assert!(!db.over_limit());
        db.set(b"a", &[b'x'; 10_000]);
        assert!(db.over_limit());
        db.flush();
        assert_eq!(db.used(), 0);
        assert!(!db.over_limit());
        assert!(!Db::new(0).over_limit());
    }

    #[test]
    fn http_request_starts_are_told_apart() {
        for name in [&b"POST"[..], b"post", b"pOsT", b"Host:", b"HOST:", b"host:"] {
            assert!(is_http(name), "{name:?}");
        }
        for name in [
            &b"POSTS"[..],
            b"Host",
            b"host: ",
            b"GET",
            b"PUT",
            b"po st",
            b"",
        ] {
            assert!(!is_http(name), "{name:?}");
        }
    }
}
