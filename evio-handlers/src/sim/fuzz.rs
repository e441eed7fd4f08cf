//! The checks behind the fuzz targets in the workspace's `fuzz/` directory: each target
//! is one call to a function here, so that the ordinary test suite replays the
//! committed seeds and whatever the fuzzers found through the very same code.
//!
//! Every function reads its input as a [`FuzzCase`] (a seed, a configuration with its
//! fault plan, and a script whose `Send` events carry the clients' bytes, cut at
//! arbitrary points), runs it under the simulator with every invariant checked against
//! the handler's exact model, and then compares what the model and the handler hold at
//! the end. A hang shows as the simulator's liveness violation; a panic of the engine,
//! the handler or a model is not caught (a fuzzer reports it where it happened).
//!
//! | target | function | handler |
//! |---|---|---|
//! | `engine_script` | [`engine_script`] | echo or chat ([`ScriptHandler`], the first byte) |
//! | `redis_handler` | [`redis_streams`] | redis ([`redis_pair`]) |
//! | `http_handler` | [`http_streams`] | http ([`http_pair`]) |
//! | `redis_parse` | [`redis_requests_split`] | the redis request parser alone |
//! | `tls_script` | [`tls_script`] | echo or http behind TLS (the first byte) |
//!
//! Each handler's buffers are raised to what it needs (its `*_constraints`) after the
//! case is read, as the swarm does; the rest of the configuration is the input's.

use std::collections::BTreeMap;

use evio_sim::{EchoModel, FuzzCase};

use super::{
    chat_constraints, chat_pair, echo_tls_constraints, echo_tls_pair, http_constraints, http_pair,
    http_tls_constraints, http_tls_pair, redis_constraints, redis_pair,
};
use crate::echo::Echo;
use crate::redis::resp::{self, Parsed};

/// The handler an [`engine_script`] input runs its script against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScriptHandler {
    /// [`Echo`] with [`EchoModel`]: the engine's own contract, on random bytes.
    Echo,
    /// [`Chat`](crate::chat::Chat) with its model ([`chat_pair`]): writes to other
    /// connections, aborts of slow consumers, idle timeouts.
    Chat,
}

impl ScriptHandler {
    /// The handler an input's first byte picks: even for echo, odd for chat.
    pub fn from_byte(b: u8) -> ScriptHandler {
        if b.is_multiple_of(2) {
            ScriptHandler::Echo
        } else {
            ScriptHandler::Chat
        }
    }

    /// The [`engine_script`] input that runs `case` against this handler.
    pub fn input(self, case: &FuzzCase) -> Vec<u8> {
        let mut out = vec![self as u8];
        out.extend(case.to_bytes());
        out
    }
}

/// The `engine_script` target: the first byte picks the handler ([`ScriptHandler`]),
/// the rest is a [`FuzzCase`] run against it with every invariant of the simulator
/// checked; for chat, the room must also have no member left but those detached.
///
/// # Errors
///
/// The simulator's failure report (the broken invariant, the configuration and the
/// script), or what disagreed at the end.
pub fn engine_script(data: &[u8]) -> Result<(), String> {
    let (&first, rest) = data.split_first().unwrap_or((&0, &[]));
    let handler = ScriptHandler::from_byte(first);
    let mut case = FuzzCase::from_bytes(rest);
    let fail = |e: String| format!("engine_script, {handler:?} handler: {e}");
    match handler {
        ScriptHandler::Echo => {
            case.run(Echo, EchoModel).map_err(|f| fail(f.to_string()))?;
        }
        ScriptHandler::Chat => {
            chat_constraints().apply(&mut case.config, case.script.len());
            let (chat, model) = chat_pair();
            let sim = case.run(chat, model).map_err(|f| fail(f.to_string()))?;
            // `closed` takes a member out; only a connection whose socket was taken on
            // detach never gets one.
            let members = sim.handler().members().count() as u64;
            let detached = sim.engine().stats().detached;
            if members != detached {
                return Err(fail(format!(
                    "{members} members left in the room after every connection ended \
                     ({detached} detached)"
                )));
            }
        }
    }
    Ok(())
}

/// The `proxy_script` target: `data` is a [`FuzzCase`] run against the tcp proxy
/// ([`tcp_proxy_pair`](super::tcp_proxy_pair)) in front of the simulator's echo
/// backends, checked by its [`RelayModel`](evio_sim::RelayModel): every client gets
/// back exactly what it sent, in order, its end of stream passed on, whatever the
/// clients send and whatever the connects to the backends do (refused, never answered,
/// slow, reset).
///
/// # Errors
///
/// The simulator's failure report.
pub fn proxy_script(data: &[u8]) -> Result<(), String> {
    let mut case = FuzzCase::from_bytes(data);
    super::tcp_proxy_constraints().apply(&mut case.config, case.script.len());
    let (proxy, model) = super::tcp_proxy_pair();
    case.run(proxy, model)
        .map(|_| ())
        .map_err(|f| format!("proxy_script: {f}"))
}

/// The `redis_handler` target: `data` is a [`FuzzCase`] whose clients' streams go to
/// the redis handler ([`redis_pair`]), checked byte for byte against
/// [`RedisModel`](super::RedisModel); at the end the handler's store must equal the
/// model's (the memory it counts too), and it must have served exactly the requests
/// the model applied.
///
/// # Errors
///
/// The simulator's failure report, or what disagreed at the end.
pub fn redis_streams(data: &[u8]) -> Result<(), String> {
    let mut case = FuzzCase::from_bytes(data);
    redis_constraints().apply(&mut case.config, case.script.len());
    let (redis, model) = redis_pair();
    let fail = |e: String| format!("redis_handler: {e}");
    let sim = case.run(redis, model).map_err(|f| fail(f.to_string()))?;
    let (redis, model) = (sim.handler(), sim.model());
    let store: BTreeMap<Vec<u8>, Vec<u8>> = redis
        .keys()
        .into_iter()
        .map(|k| {
            let v = redis.get(&k).unwrap_or_default();
            (k, v)
        })
        .collect();
    if &store != model.store() {
        return Err(fail(format!(
            "the handler's store {:?} is not the model's {:?}",
            escaped(&store),
            escaped(model.store())
        )));
    }
    if redis.used_memory() != model.used_memory() {
        return Err(fail(format!(
            "the handler counts {} bytes held, the model {}",
            redis.used_memory(),
            model.used_memory()
        )));
    }
    if redis.stats().requests != model.applied {
        return Err(fail(format!(
            "the handler served {} requests, the model applied {}",
            redis.stats().requests,
            model.applied
        )));
    }
    Ok(())
}

/// The `http_handler` target: `data` is a [`FuzzCase`] whose clients' streams go to
/// the http handler ([`http_pair`]), checked byte for byte against
/// [`HttpModel`](super::HttpModel) (one response per request, in order, `100
/// Continue` before a body that asks for it; an error response then a close; bodies
/// consumed as they arrive), and every deadline it sets and what it does when one comes
/// (an idle close, a 408 while a request is partial, a reset of a client that does not
/// read) checked on the virtual clock.
///
/// # Errors
///
/// The simulator's failure report.
pub fn http_streams(data: &[u8]) -> Result<(), String> {
    let mut case = FuzzCase::from_bytes(data);
    http_constraints().apply(&mut case.config, case.script.len());
    let (http, model) = http_pair();
    case.run(http, model)
        .map(drop)
        .map_err(|f| format!("http_handler: {f}"))
}

/// The `tls_script` target: the first byte picks the handler (even: echo, odd: http),
/// the rest is a [`FuzzCase`] run against it behind TLS ([`echo_tls_pair`],
/// [`http_tls_pair`]): its clients speak TLS 1.3 through rustls on the simulated
/// provider, the windows and faults cut records and handshake messages anywhere, and
/// the same models check the plaintext; the decoded plaintext must be exactly what
/// each client sent, and each handshake that fails must end without a callback.
///
/// # Errors
///
/// The simulator's failure report.
pub fn tls_script(data: &[u8]) -> Result<(), String> {
    let (&first, rest) = data.split_first().unwrap_or((&0, &[]));
    let mut case = FuzzCase::from_bytes(rest);
    let steps = case.script.len();
    let result = if first.is_multiple_of(2) {
        echo_tls_constraints().apply(&mut case.config, steps);
        let (handler, model) = echo_tls_pair();
        case.run(handler, model).map(drop)
    } else {
        http_tls_constraints().apply(&mut case.config, steps);
        let (handler, model) = http_tls_pair();
        case.run(handler, model).map(drop)
    };
    result.map_err(|f| format!("tls_script: {f}"))
}

/// The `redis_parse` target: the redis handler's request parser alone, much faster
/// than a whole simulated run, on `data` as a connection's input, under the limits
/// the simulator uses ([`sim_limits`](super::sim_limits)).
///
/// The property is the one a request split across reads relies on: the parse of a
/// request depends on its own bytes only. For every request in `data` (until one that
/// is incomplete, an error or too large), and for every cut `k` of the input (every
/// byte for requests up to 256 bytes, 256 cuts spread over longer ones), parsing
/// `data[..k]` gives exactly what parsing `data` gave (the same outcome, end and
/// arguments) once `k` reaches the request's end, and "incomplete" before it. Every
/// end lies past the request's start and within the input.
///
/// # Errors
///
/// The first cut that disagrees, or an end out of bounds.
pub fn redis_requests_split(data: &[u8]) -> Result<(), String> {
    let limits = super::sim_limits();
    let mut pos = 0;
    while pos < data.len() {
        let whole = parse_request(data, pos, &limits);
        let end = match whole.0 {
            Parsed::Request { end } | Parsed::Empty { end } => Some(end),
            Parsed::Error { end, .. } | Parsed::TooLarge { end } => Some(end),
            Parsed::Incomplete => None,
        };
        if let Some(end) = end
            && (end <= pos || end > data.len())
        {
            return Err(format!(
                "redis_parse: the request at {pos} ends at {end}, outside {pos}..={}: {:?}",
                data.len(),
                whole.0
            ));
        }
        let last = end.unwrap_or(data.len());
        let len = last - pos;
        let step = len.div_ceil(256).max(1);
        for k in (pos..=last).step_by(step).chain([last]) {
            let cut = parse_request(&data[..k], pos, &limits);
            let expected = if end.is_some_and(|e| k >= e) {
                &whole
            } else {
                &(Parsed::Incomplete, Vec::new())
            };
            if &cut != expected {
                return Err(format!(
                    "redis_parse: the request at {pos} parses as {:?} {:?} from the whole \
                     input, but as {:?} {:?} from its first {k} bytes",
                    whole.0,
                    escaped_args(&whole.1),
                    cut.0,
                    escaped_args(&cut.1),
                ));
            }
        }
        match whole.0 {
            Parsed::Request { end } | Parsed::Empty { end } => pos = end,
            // The connection closes after an error; an incomplete request waits.
            _ => break,
        }
    }
    Ok(())
}

/// Parses the request at `input[pos]` as the handler does (multibulk if it starts with
/// `*`, else inline), with its arguments if it is whole (the spans mean nothing
/// otherwise).
fn parse_request(
    input: &[u8],
    pos: usize,
    limits: &crate::redis::Limits,
) -> (Parsed, Vec<Vec<u8>>) {
    let mut spans = Vec::new();
    let (mut out, mut decoded) = (Vec::new(), false);
    let parsed = if input.get(pos) == Some(&b'*') {
        resp::multibulk(
            input,
            pos,
            limits.max_bulk_len,
            limits.max_request_len,
            &mut spans,
        )
    } else {
        resp::inline(input, pos, &mut out, &mut spans, &mut decoded)
    };
    if !matches!(parsed, Parsed::Request { .. }) {
        return (parsed, Vec::new());
    }
    let from = if decoded { &out[..] } else { input };
    let args = spans.iter().map(|&(at, len)| from[at..at + len].to_vec());
    (parsed, args.collect())
}

/// Arguments printed as escaped text, for a report.
fn escaped_args(args: &[Vec<u8>]) -> Vec<String> {
    args.iter().map(|a| a.escape_ascii().to_string()).collect()
}

/// A store with its keys and values printed as escaped text, for a report.
fn escaped(store: &BTreeMap<Vec<u8>, Vec<u8>>) -> Vec<(String, String)> {
    store
        .iter()
        .map(|(k, v)| (k.escape_ascii().to_string(), v.escape_ascii().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use evio_sim::ScriptedEvent;

    use super::*;

    fn case(script: Vec<ScriptedEvent>) -> FuzzCase {
        let mut case = FuzzCase::from_bytes(&[]);
        case.config.engine.input_capacity = 512;
        case.config.engine.output_capacity = 512;
        case.config.recv_window = 64;
        case.config.send_window = 64;
        case.script = script;
        case
    }

    #[test]
    fn a_handler_byte_picks_echo_or_chat() {
        assert_eq!(ScriptHandler::from_byte(0), ScriptHandler::Echo);
        assert_eq!(ScriptHandler::from_byte(3), ScriptHandler::Chat);
        let c = case(vec![ScriptedEvent::Connect { listener: 0 }]);
        assert_eq!(ScriptHandler::Chat.input(&c)[0], 1);
        assert_eq!(ScriptHandler::Chat.input(&c)[1..], c.to_bytes());
    }

    #[test]
    fn the_targets_pass_valid_traffic() {
        use ScriptedEvent::{Connect, Send};
        let send = |client, bytes: &[u8]| Send {
            client,
            bytes: bytes.to_vec(),
        };
        let chat = case(vec![
            Connect { listener: 0 },
            Connect { listener: 0 },
            send(0, b"hi\n"),
        ]);
        engine_script(&ScriptHandler::Chat.input(&chat)).unwrap();
        engine_script(&ScriptHandler::Echo.input(&chat)).unwrap();
        let redis = case(vec![
            Connect { listener: 0 },
            send(0, b"SET k v\r\n*2\r\n$3\r\nGET"),
            send(0, b"\r\n$1\r\nk\r\n"),
        ]);
        redis_streams(&redis.to_bytes()).unwrap();
        let http = case(vec![
            Connect { listener: 0 },
            send(
                0,
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.0\r\n\r\n",
            ),
        ]);
        http_streams(&http.to_bytes()).unwrap();
        // Any bytes at all are a case.
        for data in [&b""[..], b"\x01", &[0xff; 300]] {
            redis_requests_split(data).unwrap();
            engine_script(data).unwrap();
            redis_streams(data).unwrap();
            http_streams(data).unwrap();
        }
    }
}
