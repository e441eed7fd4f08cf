//! The scripted events a simulation is made of, and the random scripts a seed makes.

use core::fmt;
use std::collections::VecDeque;

use crate::workload::EMPTY_MESSAGES_LIMIT;
use crate::{Rng, Workload};

/// One thing that happens in the simulated world, outside the server.
///
/// Client numbers count connections in the order their `Connect` events came (taken
/// modulo the number of clients so far), so every sequence of events is a valid script:
/// a script can be shrunk, fuzzed or edited by hand without becoming meaningless. An
/// event that names no client yet (no `Connect` before it) does nothing.
///
/// After each event the simulator runs one round of its virtual poller (readiness,
/// wakes, due timers), so `Poll` is "let the loop run once with nothing new".
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ScriptedEvent {
    /// A new client connects to listener `listener` (modulo the listener count); it
    /// waits in that listener's backlog until the engine accepts it.
    Connect {
        /// Listener index.
        listener: u8,
    },
    /// The client sends `bytes`; they enter the server's receive window as far as it
    /// has room, the rest waits in the client's send queue.
    Send {
        /// Client number.
        client: u16,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The client reads at most `window` bytes of what the server sent.
    Read {
        /// Client number.
        client: u16,
        /// Most bytes read.
        window: u16,
    },
    /// The client shuts down its sending side (FIN after its queued bytes) and keeps
    /// reading.
    HalfClose {
        /// Client number.
        client: u16,
    },
    /// The client closes its socket: the server reads end of stream after the data in
    /// flight, and writing to it fails with EPIPE.
    Close {
        /// Client number.
        client: u16,
    },
    /// The connection is reset (RST): data in flight is lost, the server's next read or
    /// write fails with ECONNRESET.
    Reset {
        /// Client number.
        client: u16,
    },
    /// Another thread calls `Waker::wake` for this client's connection (a stale id if
    /// it has none yet).
    Wake {
        /// Client number.
        client: u16,
    },
    /// Another thread calls `Waker::wake_server` (a signal handler asking the server
    /// to stop, say): `server_woken` must run once for it.
    WakeServer,
    /// Time passes: `millis` milliseconds, or with 0 the clock jumps to the engine's
    /// next deadline.
    Advance {
        /// Milliseconds; 0 jumps to the next deadline.
        millis: u16,
    },
    /// Nothing new happens; the loop runs once.
    Poll,
}

impl fmt::Display for ScriptedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScriptedEvent::Connect { listener } => write!(f, "connect l{listener}"),
            ScriptedEvent::Send { client, bytes } => {
                write!(f, "send c{client} {}B \"", bytes.len())?;
                for &b in bytes.iter().take(24) {
                    write!(f, "{}", core::ascii::escape_default(b))?;
                }
                if bytes.len() > 24 {
                    f.write_str("…")?;
                }
                f.write_str("\"")
            }
            ScriptedEvent::Read { client, window } => write!(f, "read c{client} window {window}"),
            ScriptedEvent::HalfClose { client } => write!(f, "half-close c{client}"),
            ScriptedEvent::Close { client } => write!(f, "close c{client}"),
            ScriptedEvent::Reset { client } => write!(f, "reset c{client}"),
            ScriptedEvent::Wake { client } => write!(f, "wake c{client}"),
            ScriptedEvent::WakeServer => f.write_str("wake server"),
            ScriptedEvent::Advance { millis: 0 } => f.write_str("advance to deadline"),
            ScriptedEvent::Advance { millis } => write!(f, "advance {millis}ms"),
            ScriptedEvent::Poll => f.write_str("poll"),
        }
    }
}

/// Writes a script one event per line, numbered, for failure reports.
pub fn format_script(script: &[ScriptedEvent]) -> String {
    let mut s = String::new();
    for (i, ev) in script.iter().enumerate() {
        s.push_str(&format!("  {i:>4}: {ev}\n"));
    }
    s
}

/// Writes a script as Rust source (`vec![ScriptedEvent::Connect { listener: 0 }, …]`,
/// payloads as byte strings), exact where [`format_script`] abbreviates: paste it into
/// a regression test and run it with [`run`](crate::run).
///
/// ```
/// use evio_sim::{ScriptedEvent, script_source};
///
/// let script = [
///     ScriptedEvent::Connect { listener: 0 },
///     ScriptedEvent::Send { client: 0, bytes: b"GET a\n\xff".to_vec() },
/// ];
/// assert_eq!(
///     script_source(&script),
///     "vec![\n    ScriptedEvent::Connect { listener: 0 },\n    \
///      ScriptedEvent::Send { client: 0, bytes: b\"GET a\\n\\xff\".to_vec() },\n]"
/// );
/// ```
pub fn script_source(script: &[ScriptedEvent]) -> String {
    use core::fmt::Write as _;
    let mut s = String::from("vec![\n");
    for ev in script {
        s.push_str("    ScriptedEvent::");
        // Writing to a String cannot fail.
        let _ = match ev {
            ScriptedEvent::Connect { listener } => write!(s, "Connect {{ listener: {listener} }}"),
            ScriptedEvent::Send { client, bytes } => {
                let _ = write!(s, "Send {{ client: {client}, bytes: b\"");
                for &b in bytes {
                    let _ = write!(s, "{}", core::ascii::escape_default(b));
                }
                write!(s, "\".to_vec() }}")
            }
            ScriptedEvent::Read { client, window } => {
                write!(s, "Read {{ client: {client}, window: {window} }}")
            }
            ScriptedEvent::HalfClose { client } => write!(s, "HalfClose {{ client: {client} }}"),
            ScriptedEvent::Close { client } => write!(s, "Close {{ client: {client} }}"),
            ScriptedEvent::Reset { client } => write!(s, "Reset {{ client: {client} }}"),
            ScriptedEvent::Wake { client } => write!(s, "Wake {{ client: {client} }}"),
            ScriptedEvent::WakeServer => write!(s, "WakeServer"),
            ScriptedEvent::Advance { millis } => write!(s, "Advance {{ millis: {millis} }}"),
            ScriptedEvent::Poll => write!(s, "Poll"),
        };
        s.push_str(",\n");
    }
    s.push(']');
    s
}

/// The mix of events a seed's script is drawn from: each run has its own, so some runs
/// are read-starved, some connection floods, some quiet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Relative weights of connect, send, read, half-close, close, reset, wake,
    /// advance, poll and server wake.
    pub weights: [u32; 10],
    /// Longest `Send` payload.
    pub max_send: usize,
    /// Largest read window.
    pub max_window: u16,
    /// Most clients a script connects per 1,000 events.
    pub max_clients: usize,
    /// Listeners to connect to.
    pub listeners: u8,
}

impl Profile {
    /// A profile drawn from `rng`.
    pub fn random(rng: &mut Rng, listeners: u8) -> Self {
        let pick =
            |rng: &mut Rng, choices: &[u32]| choices[rng.below(choices.len() as u64) as usize];
        let weights = [
            pick(rng, &[2, 5, 20]),   // connect
            pick(rng, &[20, 40, 60]), // send
            pick(rng, &[10, 30, 60]), // read
            pick(rng, &[0, 1, 3]),    // half-close
            pick(rng, &[0, 1, 3]),    // close
            pick(rng, &[0, 1, 3]),    // reset
            pick(rng, &[0, 5, 15]),   // wake
            pick(rng, &[1, 3, 10]),   // advance
            pick(rng, &[5, 10]),      // poll
            pick(rng, &[0, 1, 3]),    // server wake
        ];
        Profile {
            weights,
            max_send: pick(rng, &[1, 8, 64, 300]) as usize,
            max_window: pick(rng, &[1, 16, 256, 4096]) as u16,
            max_clients: pick(rng, &[1, 4, 12, 40]) as usize,
            listeners,
        }
    }

    /// A script of `steps` events drawn from `rng`, with random payloads.
    ///
    /// `max_clients` new clients may connect per 1,000 events, so long scripts keep
    /// opening connections as old ones end, and events go mostly to the most recent
    /// clients (the ones likely still open) rather than uniformly to every client that
    /// ever connected.
    pub fn script(&self, rng: &mut Rng, steps: usize) -> Vec<ScriptedEvent> {
        self.generate(rng, steps, |rng, _client| {
            let len = rng.range(1, self.max_send as u64) as usize;
            Some((0..len).map(|_| rng.next_u64() as u8).collect())
        })
    }

    /// A script of `steps` events drawn from `rng` like [`Profile::script`]'s, with
    /// each client's payloads cut from its stream of `workload` messages (see
    /// [`Workload`]) instead of random bytes.
    ///
    /// Each `Send` takes a length drawn as for a random payload (1 to `max_send`
    /// bytes) from the front of its client's stream, asking the workload for more
    /// messages while the stream is shorter; a `Send` for a client whose workload has
    /// nothing more to say becomes a `Poll`. The event mix is the profile's; the draws
    /// the workload makes from `rng` change which events follow.
    pub fn script_with<W: Workload + ?Sized>(
        &self,
        rng: &mut Rng,
        steps: usize,
        workload: &mut W,
    ) -> Vec<ScriptedEvent> {
        // One stream per client: what the workload said that was not sent yet.
        let mut streams: Vec<VecDeque<u8>> = Vec::new();
        self.generate(rng, steps, |rng, client| {
            let want = rng.range(1, self.max_send as u64) as usize;
            let c = usize::from(client);
            if streams.len() <= c {
                streams.resize_with(c + 1, VecDeque::new);
            }
            let stream = &mut streams[c];
            let mut empty = 0;
            while stream.len() < want && empty < EMPTY_MESSAGES_LIMIT {
                let message = workload.message(client, rng);
                if message.is_empty() {
                    empty += 1;
                }
                stream.extend(message);
            }
            let n = want.min(stream.len());
            (n > 0).then(|| stream.drain(..n).collect())
        })
    }

    /// The one generator behind [`Profile::script`] and [`Profile::script_with`]:
    /// `payload` makes each `Send`'s bytes for a client (`None`: the event becomes a
    /// `Poll`). The draws are in a fixed order, so a seed's random script stays the
    /// same whatever is added here.
    fn generate(
        &self,
        rng: &mut Rng,
        steps: usize,
        mut payload: impl FnMut(&mut Rng, u16) -> Option<Vec<u8>>,
    ) -> Vec<ScriptedEvent> {
        let mut out = Vec::with_capacity(steps);
        let mut clients = 0usize;
        for i in 0..steps {
            let cap = self.max_clients * (1 + i / 1000);
            let kind = if clients == 0 {
                0
            } else {
                rng.weighted(&self.weights)
            };
            let recent = clients.min(self.max_clients.clamp(2, 8));
            let client = if rng.below(8) == 0 {
                rng.below(clients.max(1) as u64)
            } else {
                (clients.max(1) - 1 - rng.below(recent.max(1) as u64) as usize) as u64
            } as u16;
            let ev = match kind {
                0 if clients < cap => {
                    clients += 1;
                    ScriptedEvent::Connect {
                        listener: rng.below(u64::from(self.listeners)) as u8,
                    }
                }
                0 => ScriptedEvent::Poll,
                1 => match payload(rng, client) {
                    Some(bytes) => ScriptedEvent::Send { client, bytes },
                    None => ScriptedEvent::Poll,
                },
                2 => ScriptedEvent::Read {
                    client,
                    window: rng.range(1, u64::from(self.max_window)) as u16,
                },
                3 => ScriptedEvent::HalfClose { client },
                4 => ScriptedEvent::Close { client },
                5 => ScriptedEvent::Reset { client },
                6 => ScriptedEvent::Wake { client },
                7 => ScriptedEvent::Advance {
                    millis: [0, 0, 1, 5, 50][rng.below(5) as usize],
                },
                9 => ScriptedEvent::WakeServer,
                _ => ScriptedEvent::Poll,
            };
            out.push(ev);
        }
        out
    }
}

/// Rewrites client numbers to the client they resolve to (`client % clients so far`),
/// so that removing one client's events leaves the others' meaning intact.
pub fn resolve_clients(script: &[ScriptedEvent]) -> Vec<ScriptedEvent> {
    let mut clients: u16 = 0;
    script
        .iter()
        .filter_map(|ev| {
            let mut ev = ev.clone();
            if let ScriptedEvent::Connect { .. } = ev {
                clients = clients.saturating_add(1);
                return Some(ev);
            }
            if let Some(c) = client_of(&mut ev) {
                if clients == 0 {
                    return None; // names no client: does nothing
                }
                *c %= clients;
            }
            Some(ev)
        })
        .collect()
}

fn client_of(ev: &mut ScriptedEvent) -> Option<&mut u16> {
    match ev {
        ScriptedEvent::Send { client, .. }
        | ScriptedEvent::Read { client, .. }
        | ScriptedEvent::HalfClose { client }
        | ScriptedEvent::Close { client }
        | ScriptedEvent::Reset { client }
        | ScriptedEvent::Wake { client } => Some(client),
        ScriptedEvent::Connect { .. }
        | ScriptedEvent::WakeServer
        | ScriptedEvent::Advance { .. }
        | ScriptedEvent::Poll => None,
    }
}

/// `script` (with clients resolved by [`resolve_clients`]) without client `k`: its `Connect` and its events go, later
/// clients move down by one.
pub fn without_client(script: &[ScriptedEvent], k: u16) -> Vec<ScriptedEvent> {
    let mut seen: usize = 0;
    let mut out = Vec::with_capacity(script.len());
    for ev in script {
        let mut ev = ev.clone();
        if let ScriptedEvent::Connect { .. } = ev {
            seen += 1;
            if seen - 1 == usize::from(k) {
                continue;
            }
        } else if let Some(c) = client_of(&mut ev) {
            match (*c).cmp(&k) {
                core::cmp::Ordering::Equal => continue,
                core::cmp::Ordering::Greater => *c -= 1,
                core::cmp::Ordering::Less => {}
            }
        }
        out.push(ev);
    }
    out
}

/// Scripts a step smaller than `script`, most promising first, for a shrinker to try in
/// turn (quickcheck's, or [`crate::shrink`]): without one whole client, without a
/// chunk of events (halves down to single events), with one payload or read window
/// halved. Clients are resolved first (see [`resolve_clients`]). Lazy: a shrinker that
/// stops at the first failing candidate builds only the ones it tries.
pub fn smaller_scripts(
    script: &[ScriptedEvent],
) -> impl Iterator<Item = Vec<ScriptedEvent>> + use<> {
    let base = std::rc::Rc::new(resolve_clients(script));
    let n = base.len();
    let clients = base
        .iter()
        .filter(|e| matches!(e, ScriptedEvent::Connect { .. }))
        .count() as u16;
    let without = {
        let base = base.clone();
        (0..clients).rev().map(move |k| without_client(&base, k))
    };
    let chunks = {
        let base = base.clone();
        core::iter::successors(Some(n / 2), |&c| (c > 1).then_some(c / 2))
            .filter(|&c| c >= 1)
            .flat_map(move |chunk| {
                let base = base.clone();
                (0..n).step_by(chunk).map(move |i| {
                    let mut v = base[..i].to_vec();
                    v.extend_from_slice(&base[(i + chunk).min(n)..]);
                    v
                })
            })
    };
    let halves = (0..n).filter_map(move |i| {
        let smaller = match &base[i] {
            ScriptedEvent::Send { client, bytes } if bytes.len() > 1 => ScriptedEvent::Send {
                client: *client,
                bytes: bytes[..bytes.len() / 2].to_vec(),
            },
            ScriptedEvent::Read { client, window } if *window > 1 => ScriptedEvent::Read {
                client: *client,
                window: window / 2,
            },
            _ => return None,
        };
        let mut v = base.to_vec();
        v[i] = smaller;
        Some(v)
    });
    without.chain(chunks).chain(halves)
}
