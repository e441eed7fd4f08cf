//! The redis proxy (`evio_handlers::redis_proxy::RedisProxy`) as the simulator runs it,
//! in front of two simulated Redis servers ([`evio_sim::RespServer`], each answering
//! after a delay of its own drawn from the seed), with an exact model and a workload.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use evio_sim::{Backends, Constraints, Model, ModelError, RespServer, Rng, parse_multibulk};

use crate::redis_proxy::{ProxyConfig, RedisProxy};

/// The two backends' addresses.
pub const REDIS_PROXY_BACKENDS: [&str; 2] = ["127.0.0.1:7101", "127.0.0.1:7102"];

/// The redis proxy as the swarm runs it (short connect and reply timeouts and back-off
/// on the virtual clock), with its model.
pub fn redis_proxy_pair() -> (RedisProxy, RedisProxyModel) {
    let backends: Vec<SocketAddr> = REDIS_PROXY_BACKENDS
        .iter()
        .map(|a| a.parse().expect("an address"))
        .collect();
    let config = ProxyConfig {
        connect_timeout: Duration::from_millis(100),
        reply_timeout: Duration::from_millis(500),
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(200),
        ..ProxyConfig::new(backends)
    };
    (RedisProxy::new(config), RedisProxyModel::default())
}

/// The buffers the redis proxy is simulated with: room for its two backend
/// connections besides the clients.
pub fn redis_proxy_constraints() -> Constraints {
    Constraints {
        min_connections: 8,
        min_input_capacity: 64,
        min_output_capacity: 16,
        ..Constraints::none()
    }
}

/// The workload: each client pipelines GET, SET, DEL, EXISTS, MGET and PING over a
/// small key space of its own (six keys, spread over both backends by the proxy's
/// hash), whole RESP requests that the script cuts at random byte boundaries.
pub fn redis_proxy_requests(client: u16, rng: &mut Rng) -> Vec<u8> {
    let key = |rng: &mut Rng| format!("c{client}:k{}", rng.below(6)).into_bytes();
    let mut args: Vec<Vec<u8>> = Vec::new();
    match rng.below(20) {
        0..=5 => {
            args.push(b"GET".to_vec());
            args.push(key(rng));
        }
        6..=11 => {
            args.push(b"SET".to_vec());
            args.push(key(rng));
            let len = rng.below(12) as usize;
            args.push((0..len).map(|_| b'a' + rng.below(26) as u8).collect());
        }
        12..=13 => args.push(b"DEL".to_vec()),
        14..=15 => args.push(b"EXISTS".to_vec()),
        16..=18 => args.push(b"MGET".to_vec()),
        _ => args.push(b"PING".to_vec()),
    }
    if args.len() == 1 && args[0] != b"PING" {
        for _ in 0..rng.range(1, 4) {
            args.push(key(rng));
        }
    }
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in &args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Bytes as text, for a failure's message.
fn text(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// One request as the model reads it.
#[derive(Clone, PartialEq, Eq)]
enum Request {
    Ping,
    Get(Vec<u8>),
    Set(Vec<u8>, Vec<u8>),
    Del(Vec<Vec<u8>>),
    Exists(Vec<Vec<u8>>),
    Mget(Vec<Vec<u8>>),
    /// Anything else: the workload sends none.
    Other(Vec<u8>),
}

/// One reply as the client reads it.
#[derive(Clone, PartialEq, Eq)]
enum Reply {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Option<Vec<u8>>>),
}

fn keys(keys: &[Vec<u8>]) -> String {
    keys.iter().map(|k| text(k)).collect::<Vec<_>>().join(" ")
}

fn value(v: &Option<Vec<u8>>) -> String {
    v.as_ref()
        .map_or("nil".into(), |v| format!("\"{}\"", text(v)))
}

fn show_values(vs: &[Option<Vec<u8>>]) -> String {
    let vs: Vec<String> = vs.iter().map(value).collect();
    format!("[{}]", vs.join(", "))
}

impl core::fmt::Debug for Request {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Request::Ping => write!(f, "PING"),
            Request::Get(k) => write!(f, "GET {}", text(k)),
            Request::Set(k, v) => write!(f, "SET {} \"{}\"", text(k), text(v)),
            Request::Del(k) => write!(f, "DEL {}", keys(k)),
            Request::Exists(k) => write!(f, "EXISTS {}", keys(k)),
            Request::Mget(k) => write!(f, "MGET {}", keys(k)),
            Request::Other(name) => write!(f, "{}", text(name)),
        }
    }
}

impl core::fmt::Debug for Reply {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Reply::Simple(s) => write!(f, "+{}", text(s)),
            Reply::Error(e) => write!(f, "-{}", text(e)),
            Reply::Int(n) => write!(f, ":{n}"),
            Reply::Bulk(v) => write!(f, "{}", value(v)),
            Reply::Array(vs) => write!(f, "{}", show_values(vs)),
        }
    }
}

/// The model of [`RedisProxy`] in front of [`RespServer`]s: every client's replies
/// are what a single Redis holding all keys would answer, in the client's request
/// order (each client's keys are its own, see [`redis_proxy_requests`]).
///
/// Requests are read from what the proxy consumed; replies are parsed as the client
/// reads them and checked against its requests in order. A reply is exact unless a
/// backend failed: a request forwarded to a backend may instead be answered
/// `-ERR backend …` (not connected yet, refused, reset, timed out), and then a write
/// of it may or may not have been applied, so each key keeps the set of values it may
/// hold (one, unless such a failure left it open). A read narrows the set to what it
/// returned.
#[derive(Debug, Default)]
pub struct RedisProxyModel {
    /// Replies checked in all.
    pub replies: u64,
    /// Of those, backend errors.
    pub backend_errors: u64,
}

/// [`RedisProxyModel`]'s state for one client.
#[derive(Debug, Default)]
pub struct RedisProxyClient {
    outbound: bool,
    /// Consumed bytes not yet a whole request.
    unparsed: Vec<u8>,
    /// Requests not yet answered, oldest first.
    requests: VecDeque<Request>,
    /// Received bytes not yet a whole reply.
    rx: Vec<u8>,
    /// Bytes received before `rx`.
    offset: u64,
    /// The values each key may hold (a key missing here holds none for sure).
    store: BTreeMap<Vec<u8>, Vec<Option<Vec<u8>>>>,
    /// A request the model could not read: nothing after it is judged.
    lost: bool,
}

impl RedisProxyClient {
    fn possible(&self, key: &[u8]) -> Vec<Option<Vec<u8>>> {
        self.store.get(key).cloned().unwrap_or_else(|| vec![None])
    }

    fn set(&mut self, key: &[u8], values: Vec<Option<Vec<u8>>>) {
        if values == [None] {
            self.store.remove(key);
        } else {
            self.store.insert(key.to_vec(), values);
        }
    }

    fn maybe(&mut self, key: &[u8], value: Option<Vec<u8>>) {
        let mut values = self.possible(key);
        if !values.contains(&value) {
            values.push(value);
        }
        self.set(key, values);
    }

    /// Checks `reply` against `request` and applies it.
    fn check(&mut self, request: &Request, reply: &Reply) -> Result<bool, String> {
        if let Reply::Error(e) = reply
            && e.starts_with(b"ERR backend ")
            && !matches!(request, Request::Ping | Request::Other(_))
        {
            // The request may or may not have been applied.
            match request {
                Request::Set(k, v) => self.maybe(k, Some(v.clone())),
                Request::Del(keys) => {
                    for k in keys {
                        self.maybe(k, None);
                    }
                }
                _ => {}
            }
            return Ok(true);
        }
        let mismatch = || format!("{request:?}: got {reply:?}");
        match (request, reply) {
            (Request::Ping, Reply::Simple(s)) if s == b"PONG" => {}
            (Request::Get(k), Reply::Bulk(v)) => {
                let possible = self.possible(k);
                if !possible.contains(v) {
                    return Err(format!(
                        "{}, expected one of {}",
                        mismatch(),
                        show_values(&possible)
                    ));
                }
                self.set(k, vec![v.clone()]);
            }
            (Request::Set(k, v), Reply::Simple(s)) if s == b"OK" => {
                self.set(k, vec![Some(v.clone())]);
            }
            (Request::Del(keys), Reply::Int(n)) => {
                let mut distinct: Vec<&Vec<u8>> = keys.iter().collect();
                distinct.sort();
                distinct.dedup();
                let (min, max) = self.range(distinct.iter().copied());
                if !(min..=max).contains(n) {
                    return Err(format!("{}, expected {min}..={max}", mismatch()));
                }
                for k in distinct {
                    self.set(k, vec![None]);
                }
            }
            (Request::Exists(keys), Reply::Int(n)) => {
                let (min, max) = self.range(keys.iter());
                if !(min..=max).contains(n) {
                    return Err(format!("{}, expected {min}..={max}", mismatch()));
                }
            }
            (Request::Mget(keys), Reply::Array(values)) if values.len() == keys.len() => {
                for (k, v) in keys.iter().zip(values) {
                    let possible = self.possible(k);
                    if !possible.contains(v) {
                        return Err(format!(
                            "{}: key {} expected one of {}",
                            mismatch(),
                            text(k),
                            show_values(&possible)
                        ));
                    }
                    self.set(k, vec![v.clone()]);
                }
            }
            _ => return Err(mismatch()),
        }
        Ok(false)
    }

    /// How many of `keys` hold a value: at least, at most.
    fn range<'k>(&self, keys: impl Iterator<Item = &'k Vec<u8>>) -> (i64, i64) {
        let (mut min, mut max) = (0, 0);
        for k in keys {
            let possible = self.possible(k);
            if possible.iter().all(Option::is_some) {
                min += 1;
            }
            if possible.iter().any(Option::is_some) {
                max += 1;
            }
        }
        (min, max)
    }
}

fn parse_request(args: &[&[u8]]) -> Request {
    let name = args[0].to_ascii_uppercase();
    let keys = || args[1..].iter().map(|k| k.to_vec()).collect();
    match (name.as_slice(), args.len()) {
        (b"PING", 1) => Request::Ping,
        (b"GET", 2) => Request::Get(args[1].to_vec()),
        (b"SET", 3) => Request::Set(args[1].to_vec(), args[2].to_vec()),
        (b"DEL", 2..) => Request::Del(keys()),
        (b"EXISTS", 2..) => Request::Exists(keys()),
        (b"MGET", 2..) => Request::Mget(keys()),
        _ => Request::Other(name),
    }
}

/// One reply at the front of `input` and its length; `Ok(None)` when not whole.
fn parse_reply(input: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    fn line(input: &[u8], at: usize) -> Option<(&[u8], usize)> {
        let rest = input.get(at..)?;
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        Some((&rest[..end], at + end + 2))
    }
    fn number(b: &[u8]) -> Result<i64, String> {
        std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not a number: {:?}", String::from_utf8_lossy(b)))
    }
    /// A bulk string (`None`: nil) and where it ends.
    type Bulk = (Option<Vec<u8>>, usize);
    fn bulk(input: &[u8], at: usize) -> Result<Option<Bulk>, String> {
        if at >= input.len() {
            return Ok(None);
        }
        if input[at] != b'$' {
            return Err(format!("expected a bulk string at {at}"));
        }
        let Some((len, next)) = line(input, at + 1) else {
            return Ok(None);
        };
        let len = number(len)?;
        if len < 0 {
            return Ok(Some((None, next)));
        }
        let len = len as usize;
        if input.len() < next + len + 2 {
            return Ok(None);
        }
        Ok(Some((
            Some(input[next..next + len].to_vec()),
            next + len + 2,
        )))
    }
    let Some(&first) = input.first() else {
        return Ok(None);
    };
    match first {
        b'+' | b'-' | b':' => {
            let Some((text, end)) = line(input, 1) else {
                return Ok(None);
            };
            let reply = match first {
                b'+' => Reply::Simple(text.to_vec()),
                b'-' => Reply::Error(text.to_vec()),
                _ => Reply::Int(number(text)?),
            };
            Ok(Some((reply, end)))
        }
        b'$' => Ok(bulk(input, 0)?.map(|(v, end)| (Reply::Bulk(v), end))),
        b'*' => {
            let Some((n, mut at)) = line(input, 1) else {
                return Ok(None);
            };
            let n = number(n)?;
            let mut values = Vec::new();
            for _ in 0..n.max(0) {
                let Some((v, next)) = bulk(input, at)? else {
                    return Ok(None);
                };
                values.push(v);
                at = next;
            }
            Ok(Some((Reply::Array(values), at)))
        }
        other => Err(format!("not a reply: byte {other:#04x}")),
    }
}

impl Model for RedisProxyModel {
    type Conn = RedisProxyClient;

    fn opened(
        &mut self,
        conn: &mut RedisProxyClient,
        info: &evio_proto::ConnInfo,
        _: evio_proto::Instant,
    ) {
        conn.outbound = info.outbound;
    }

    fn input(&mut self, _conn: &mut RedisProxyClient, _bytes: &[u8]) {}

    fn consumed(&mut self, conn: &mut RedisProxyClient, bytes: &[u8], _now: evio_proto::Instant) {
        if conn.outbound || conn.lost {
            return;
        }
        conn.unparsed.extend_from_slice(bytes);
        loop {
            match parse_multibulk(&conn.unparsed) {
                Ok(Some((args, len))) => {
                    let request = parse_request(&args);
                    conn.requests.push_back(request);
                    conn.unparsed.drain(..len);
                }
                Ok(None) => return,
                Err(_) => {
                    conn.lost = true;
                    return;
                }
            }
        }
    }

    fn output(&mut self, conn: &mut RedisProxyClient, bytes: &[u8]) -> Result<(), ModelError> {
        if conn.outbound {
            return Ok(());
        }
        conn.rx.extend_from_slice(bytes);
        loop {
            let (reply, len) = match parse_reply(&conn.rx) {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(()),
                Err(detail) => {
                    return Err(ModelError {
                        offset: conn.offset,
                        detail,
                    });
                }
            };
            let Some(request) = conn.requests.pop_front() else {
                return Err(ModelError {
                    offset: conn.offset,
                    detail: format!("a reply with no request outstanding: {reply:?}"),
                });
            };
            match conn.check(&request, &reply) {
                Ok(error) => {
                    self.replies += 1;
                    self.backend_errors += u64::from(error);
                }
                Err(detail) => {
                    return Err(ModelError {
                        offset: conn.offset,
                        detail,
                    });
                }
            }
            conn.offset += len as u64;
            conn.rx.drain(..len);
        }
    }

    fn owed(&self, conn: &RedisProxyClient) -> usize {
        if conn.outbound || conn.lost {
            0
        } else {
            conn.requests.len()
        }
    }

    fn handler_wakes(&self) -> bool {
        false
    }

    fn backends(&mut self) -> Option<Box<dyn Backends>> {
        Some(Box::new(RespServer::default()))
    }
}
