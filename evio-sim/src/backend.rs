//! Scripted backends: what answers the engine's outbound connections when it is not the
//! default echo server.
//!
//! By default every simulated backend echoes what it reads (what
//! [`RelayModel`](crate::RelayModel) presumes). A [`Model`](crate::Model) that judges a
//! handler in front of another kind of server names it with
//! [`Model::backends`](crate::Model::backends): a [`Backends`] value, one per run,
//! that serves every outbound connection by the address it was made to. Each
//! connection keeps the bytes not yet served (a request cut across reads); the server
//! at an address keeps its state across connections (a key-value store outlives a
//! reconnect). Each address answers after a delay of its own, drawn from the seed when
//! the engine first connects to it ([`Backends::delay`]), so two backends answer at
//! different speeds; an answer waits in the backend until its time comes, and the
//! clock can jump to it as to a connect's answer.
//!
//! [`RespServer`] is a ready-made one: a tiny in-memory Redis (PING, GET, SET, DEL,
//! EXISTS, MGET, with Redis's reply formats).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use evio_proto::{Addr, Duration};

use crate::Rng;

/// The servers behind a handler's outbound connections, named by
/// [`Model::backends`](crate::Model::backends).
pub trait Backends {
    /// Serves `input` (what the engine sent on a connection to `peer`, after what was
    /// not served before): appends the answer to `out` and returns how many bytes of
    /// `input` it served; the rest (an incomplete request) comes back with the next
    /// bytes. A server that cannot make sense of its input may serve it all and
    /// answer with an error, as Redis does.
    fn serve(&mut self, peer: &Addr, input: &[u8], out: &mut Vec<u8>) -> usize;

    /// How long the server at `peer` takes to answer, drawn from `rng` (the seed's)
    /// the first time the engine connects to it. The default: at once.
    fn delay(&mut self, peer: &Addr, rng: &mut Rng) -> Duration {
        let _ = (peer, rng);
        Duration::ZERO
    }
}

/// A tiny in-memory Redis behind every address: one store per address, answering
/// PING, GET, SET (no options), DEL, EXISTS and MGET in RESP multibulk form with
/// Redis's reply formats (`+PONG`, bulk strings, `$-1` for a missing key, `+OK`,
/// integers, arrays), `-ERR wrong number of arguments for '…' command` and
/// `-ERR unknown command '…'`; anything that is not a multibulk request is a protocol
/// error, answered and the rest of the input dropped. Each address answers after a
/// delay drawn from the seed: none, 1, 5 or 30 ms.
#[derive(Clone, Debug, Default)]
pub struct RespServer {
    stores: BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>,
    /// Requests served, by all addresses.
    pub served: u64,
}

impl RespServer {
    /// The store of the server at `peer`.
    pub fn store(&self, peer: &SocketAddr) -> Option<&BTreeMap<Vec<u8>, Vec<u8>>> {
        self.stores.get(&peer.to_string())
    }
}

/// Bytes that are not a RESP multibulk request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotARequest;

/// A whole multibulk request: its arguments and its length in bytes.
pub type Request<'a> = (Vec<&'a [u8]>, usize);

/// One multibulk request at the front of `input`: its arguments and its length;
/// `Ok(None)` when it is not whole yet, `Err` when it is not a request.
///
/// # Errors
///
/// [`NotARequest`] when `input` does not start with a multibulk request.
pub fn parse_multibulk(input: &[u8]) -> Result<Option<Request<'_>>, NotARequest> {
    fn line(input: &[u8], at: usize) -> Option<(&[u8], usize)> {
        let rest = input.get(at..)?;
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        Some((&rest[..end], at + end + 2))
    }
    fn number(bytes: &[u8]) -> Result<i64, NotARequest> {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(NotARequest)
    }
    if input.is_empty() {
        return Ok(None);
    }
    if input[0] != b'*' {
        return Err(NotARequest);
    }
    let Some((head, mut at)) = line(input, 1) else {
        return Ok(None);
    };
    let n = number(head)?;
    if !(1..=1024).contains(&n) {
        return Err(NotARequest);
    }
    let mut args = Vec::with_capacity(n as usize);
    for _ in 0..n {
        if at >= input.len() {
            return Ok(None);
        }
        if input[at] != b'$' {
            return Err(NotARequest);
        }
        let Some((len, next)) = line(input, at + 1) else {
            return Ok(None);
        };
        let len = number(len)?;
        if !(0..=1 << 20).contains(&len) {
            return Err(NotARequest);
        }
        let len = len as usize;
        if input.len() < next + len + 2 {
            return Ok(None);
        }
        if &input[next + len..next + len + 2] != b"\r\n" {
            return Err(NotARequest);
        }
        args.push(&input[next..next + len]);
        at = next + len + 2;
    }
    Ok(Some((args, at)))
}

fn bulk(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(v) => {
            out.extend_from_slice(format!("${}\r\n", v.len()).as_bytes());
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        None => out.extend_from_slice(b"$-1\r\n"),
    }
}

impl Backends for RespServer {
    fn serve(&mut self, peer: &Addr, input: &[u8], out: &mut Vec<u8>) -> usize {
        let store = self.stores.entry(peer.to_string()).or_default();
        let mut served = 0;
        loop {
            let (args, len) = match parse_multibulk(&input[served..]) {
                Ok(Some(request)) => request,
                Ok(None) => return served,
                Err(NotARequest) => {
                    out.extend_from_slice(b"-ERR Protocol error: expected '*'\r\n");
                    return input.len();
                }
            };
            served += len;
            self.served += 1;
            let name = args[0].to_ascii_lowercase();
            let arity_ok = match name.as_slice() {
                b"ping" => args.len() <= 2,
                b"get" => args.len() == 2,
                b"set" => args.len() == 3,
                b"del" | b"exists" | b"mget" => args.len() >= 2,
                _ => {
                    out.extend_from_slice(b"-ERR unknown command '");
                    out.extend_from_slice(args[0]);
                    out.extend_from_slice(b"'\r\n");
                    continue;
                }
            };
            if !arity_ok {
                out.extend_from_slice(b"-ERR wrong number of arguments for '");
                out.extend_from_slice(&name);
                out.extend_from_slice(b"' command\r\n");
                continue;
            }
            match name.as_slice() {
                b"ping" if args.len() == 2 => bulk(out, Some(args[1])),
                b"ping" => out.extend_from_slice(b"+PONG\r\n"),
                b"get" => bulk(out, store.get(args[1]).map(Vec::as_slice)),
                b"set" => {
                    store.insert(args[1].to_vec(), args[2].to_vec());
                    out.extend_from_slice(b"+OK\r\n");
                }
                b"del" => {
                    let n = args[1..]
                        .iter()
                        .filter(|k| store.remove(**k).is_some())
                        .count();
                    out.extend_from_slice(format!(":{n}\r\n").as_bytes());
                }
                b"exists" => {
                    let n = args[1..].iter().filter(|k| store.contains_key(**k)).count();
                    out.extend_from_slice(format!(":{n}\r\n").as_bytes());
                }
                _ => {
                    out.extend_from_slice(format!("*{}\r\n", args.len() - 1).as_bytes());
                    for k in &args[1..] {
                        bulk(out, store.get(*k).map(Vec::as_slice));
                    }
                }
            }
        }
    }

    fn delay(&mut self, _peer: &Addr, rng: &mut Rng) -> Duration {
        Duration::from_millis([0, 1, 5, 30][rng.below(4) as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resp_server_answers_as_redis_does() {
        let mut s = RespServer::default();
        let peer = Addr::Ip("127.0.0.1:1".parse().unwrap());
        let mut out = Vec::new();
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$2\r\nxy\r\n*2\r\n$3\r\nget\r\n$1\r\na\r\n\
                      *3\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\nb\r\n*3\r\n$6\r\nEXISTS\r\n$1\r\na\r\n\
                      $1\r\na\r\n*2\r\n$3\r\nDEL\r\n$1\r\na\r\n*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET";
        let served = s.serve(&peer, input, &mut out);
        assert_eq!(&input[served..], b"*2\r\n$3\r\nGET");
        assert_eq!(
            out,
            b"+OK\r\n$2\r\nxy\r\n*2\r\n$2\r\nxy\r\n$-1\r\n:2\r\n:1\r\n+PONG\r\n".to_vec()
        );
        out.clear();
        let other = Addr::Ip("127.0.0.1:2".parse().unwrap());
        s.serve(&other, b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n", &mut out);
        assert_eq!(out, b"$-1\r\n".to_vec(), "one store per address");
    }
}
