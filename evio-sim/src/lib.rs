//! The deterministic simulator for evio handlers.
//!
//! `evio-sim` runs the production engine ([`evio_proto::Engine`]) and an unchanged
//! handler (any `impl Events` that runs under `evio::serve`) in a simulated world:
//! virtual listeners and connections, each with byte queues in both directions and a
//! socket send/receive window; a virtual poller that reports readiness in a seeded
//! order; a virtual clock that jumps to the engine's next deadline; and a wake source
//! standing for "another thread". The simulator is a *driver*: it follows the same
//! driver protocol as `evio-os` and decides nothing itself.
//!
//! Every choice of a run (its configuration, its script of [`ScriptedEvent`]s, the
//! delivery order, every I/O result and every fault) comes from one `u64` seed, so a
//! failing run replays exactly from its seed. Fault rates are drawn from the seed as
//! well: some runs are clean, some heavy.
//!
//! After every step the simulator checks invariants against a reference [`Model`] of
//! the handler (the client receives exactly what the handler wrote, in order; one
//! `closed` per `opened` unless detached; nothing after `closed`; close and detach only
//! after the output flushed; `prewrite`/`postwrite` agree with the bytes sent), and at
//! the end it stops the faults, runs a bounded liveness phase until every client's
//! work is done, and checks that nothing leaked.
//!
//! # Testing your own handler
//!
//! Write a [`Model`] of what your handler sends, then run a swarm of seeds:
//!
//! ```
//! use evio_proto::{Action, Conn, Events};
//! use evio_sim::{Model, ModelError, swarm};
//!
//! /// The handler under test: echoes every byte in upper case.
//! struct Shout;
//!
//! impl Events for Shout {
//!     type Context = ();
//!     fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
//!         let mut n = 0;
//!         for &b in input {
//!             if conn.write(&[b.to_ascii_uppercase()]).is_err() {
//!                 break; // output full: the engine hands the rest back later
//!             }
//!             n += 1;
//!         }
//!         conn.consume(n);
//!         Action::None
//!     }
//! }
//!
//! /// Its model: the client receives its own bytes, upper-cased, in order.
//! struct ShoutModel;
//!
//! impl Model for ShoutModel {
//!     type Conn = std::collections::VecDeque<u8>;
//!     fn input(&mut self, owed: &mut Self::Conn, bytes: &[u8]) {
//!         owed.extend(bytes.iter().map(u8::to_ascii_uppercase));
//!     }
//!     fn output(&mut self, owed: &mut Self::Conn, bytes: &[u8]) -> Result<(), ModelError> {
//!         for &b in bytes {
//!             if owed.pop_front() != Some(b) {
//!                 return Err(ModelError { offset: 0, detail: format!("unexpected {b:#04x}") });
//!             }
//!         }
//!         Ok(())
//!     }
//!     fn owed(&self, owed: &Self::Conn) -> usize {
//!         owed.len()
//!     }
//! }
//!
//! // 50 seeds of 300 steps each, on one thread. A failure names its seed and prints
//! // the command that replays it.
//! let report = swarm(0..50, 300, 1, || (Shout, ShoutModel));
//! assert!(report.failures.is_empty(), "{report}");
//! assert_eq!(report.seeds, 50);
//! ```
//!
//! For a handler that needs more than random bytes and the smallest buffers, a
//! [`Swarm`] takes [`Constraints`] on each seed's configuration (minimum buffer sizes
//! and connection count, which faults may fire; [`SimConfig::fault_free`] for none)
//! and a [`Workload`] for what the clients send; the worked example below uses both.
//!
//! A single run, step by step, with [`Sim`]:
//!
//! ```
//! use evio_handlers::echo::Echo;
//! use evio_sim::{EchoModel, ScriptedEvent, Sim};
//!
//! let mut sim = Sim::new(Echo, EchoModel, 7).unwrap();
//! sim.step(&ScriptedEvent::Connect { listener: 0 }).unwrap();
//! sim.step(&ScriptedEvent::Send { client: 0, bytes: b"hello".to_vec() }).unwrap();
//! let outcome = sim.finish().unwrap(); // liveness: the client gets its echo, then closes
//! assert_eq!(sim.received(0), Some(5));
//! assert_eq!(outcome.stats.accepted, 1);
//! ```
//!
//! # Worked example: a key-value server
//!
//! A small key-value server, tested as a user tests their own: one map shared by
//! every connection (`SET k v` answers `+OK`, `GET k` the value or `$-1`, `DEL k` `:1`
//! or `:0`, anything else `-ERR`), keys with a time to live (`SET k v PX ms`: the key
//! expires `ms` milliseconds after the handler applied it, by
//! [`Conn::now`](evio_proto::Conn::now), and an expired key is absent), and connections
//! idle for 200 ms closed through
//! [`Conn::set_timeout`](evio_proto::Conn::set_timeout) and [`Events::timeout`]. Three
//! pieces: the handler, an exact model, and a workload.
//!
//! The handler applies a request and consumes its line together, or neither: input
//! left unconsumed is handed back in the next `data` call, so a request applied
//! while its reply did not fit would be applied twice.
//!
//! The model keeps its own map and applies each request in [`Model::consumed`], which
//! runs when the handler consumed it, in the order the handler did across all
//! connections, and is given `now`, the engine's time the handler saw. So it knows
//! every reply exactly, even when one connection, held back by backpressure, answers
//! after another connection's `SET` (a model that applied requests in
//! [`Model::input`], when the bytes were read, would not), and even for a key that
//! expires between two requests.
//!
//! The workload sends valid requests on a few keys (so connections meet on them),
//! some with a time to live short enough to expire during a run, mixed with garbage;
//! the simulator cuts each client's stream at random points.
//!
//! ```
//! use std::collections::{HashMap, VecDeque};
//! use std::time::Duration;
//!
//! use evio_proto::{Action, Conn, Events, Instant};
//! use evio_sim::{Constraints, Model, ModelError, Rng, Swarm, Workload};
//!
//! const IDLE: Duration = Duration::from_millis(200);
//!
//! /// A value, and when it expires (if it does): expired once `now >= expires`.
//! type Entry = (Vec<u8>, Option<Instant>);
//!
//! /// The value of `key` at `now`, unless it is unset or expired.
//! fn live<'a>(map: &'a HashMap<Vec<u8>, Entry>, key: &[u8], now: Instant) -> Option<&'a [u8]> {
//!     match map.get(key)? {
//!         (_, Some(expires)) if now >= *expires => None,
//!         (v, _) => Some(v),
//!     }
//! }
//!
//! /// A time to live: a positive integer of milliseconds.
//! fn millis(word: &[u8]) -> Option<u64> {
//!     let ms: u64 = std::str::from_utf8(word).ok()?.parse().ok()?;
//!     (ms > 0).then_some(ms)
//! }
//!
//! // ----- the handler -----
//!
//! #[derive(Default)]
//! struct Kv {
//!     map: HashMap<Vec<u8>, Entry>, // shared by every connection
//! }
//!
//! enum Request<'a> {
//!     Set(&'a [u8], &'a [u8], Option<u64>), // and its time to live, in ms
//!     Get(&'a [u8]),
//!     Del(&'a [u8]),
//!     Bad,
//! }
//!
//! fn parse(line: &[u8]) -> Request<'_> {
//!     let mut words = line.split(|&b| b == b' ');
//!     let mut next = || words.next();
//!     match (next(), next(), next(), next(), next(), next()) {
//!         (Some(b"SET"), Some(k), Some(v), None, ..) if !k.is_empty() && !v.is_empty() => {
//!             Request::Set(k, v, None)
//!         }
//!         (Some(b"SET"), Some(k), Some(v), Some(b"PX"), Some(ms), None)
//!             if !k.is_empty() && !v.is_empty() =>
//!         {
//!             millis(ms).map_or(Request::Bad, |ms| Request::Set(k, v, Some(ms)))
//!         }
//!         (Some(b"GET"), Some(k), None, ..) if !k.is_empty() => Request::Get(k),
//!         (Some(b"DEL"), Some(k), None, ..) if !k.is_empty() => Request::Del(k),
//!         _ => Request::Bad,
//!     }
//! }
//!
//! impl Kv {
//!     /// The reply to `request` at `now` against the map as it is (nothing applied).
//!     fn reply(&self, request: &Request<'_>, now: Instant) -> Vec<u8> {
//!         match request {
//!             Request::Set(..) => b"+OK\n".to_vec(),
//!             Request::Get(k) => match live(&self.map, k, now) {
//!                 Some(v) => [b"$", v, b"\n"].concat(),
//!                 None => b"$-1\n".to_vec(),
//!             },
//!             Request::Del(k) if live(&self.map, k, now).is_some() => b":1\n".to_vec(),
//!             Request::Del(_) => b":0\n".to_vec(),
//!             Request::Bad => b"-ERR unknown command\n".to_vec(),
//!         }
//!     }
//!
//!     fn apply(&mut self, request: &Request<'_>, now: Instant) {
//!         match *request {
//!             Request::Set(k, v, ttl) => {
//!                 // No time to live (a plain `SET`) clears any expiry the key had.
//!                 let expires = ttl.map(|ms| now + Duration::from_millis(ms));
//!                 self.map.insert(k.to_vec(), (v.to_vec(), expires));
//!             }
//!             Request::Del(k) => drop(self.map.remove(k)),
//!             Request::Get(_) | Request::Bad => {}
//!         }
//!     }
//! }
//!
//! impl Events for Kv {
//!     type Context = ();
//!
//!     fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
//!         conn.set_timeout(Some(IDLE));
//!         Action::None
//!     }
//!
//!     fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
//!         let now = conn.now(); // the engine's time: what the model is given
//!         let mut used = 0;
//!         while let Some(len) = input[used..].iter().position(|&b| b == b'\n') {
//!             let request = parse(&input[used..used + len]);
//!             if conn.write(&self.reply(&request, now)).is_err() {
//!                 break; // output full: the line waits, unapplied, until it drains
//!             }
//!             self.apply(&request, now); // applied and consumed together
//!             used += len + 1;
//!         }
//!         if !input.contains(&b'\n')
//!             && input.len() >= conn.input_capacity()
//!             && conn.write(b"-ERR line too long\n").is_ok()
//!         {
//!             conn.consume(input.len()); // a line that can never fit: answer, hang up
//!             return Action::Close;
//!         }
//!         conn.consume(used);
//!         if used > 0 {
//!             conn.set_timeout(Some(IDLE)); // idle counts from the last request
//!         }
//!         Action::None
//!     }
//!
//!     fn timeout(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
//!         Action::Close
//!     }
//! }
//!
//! // ----- the model: its own map, applied as and when the handler consumed -----
//!
//! #[derive(Default)]
//! struct KvModel {
//!     map: HashMap<Vec<u8>, Entry>,
//! }
//!
//! impl KvModel {
//!     /// Applies `line` at `now`, the engine's time when the handler applied it.
//!     fn execute(&mut self, line: &[u8], now: Instant) -> Vec<u8> {
//!         let words: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
//!         match words.as_slice() {
//!             [b"SET", k, v, ttl @ ..] if !k.is_empty() && !v.is_empty() => {
//!                 let expires = match ttl {
//!                     [] => None, // a plain `SET` clears any expiry the key had
//!                     [b"PX", ms] => match millis(ms) {
//!                         Some(ms) => Some(now + Duration::from_millis(ms)),
//!                         None => return b"-ERR unknown command\n".to_vec(),
//!                     },
//!                     _ => return b"-ERR unknown command\n".to_vec(),
//!                 };
//!                 self.map.insert(k.to_vec(), (v.to_vec(), expires));
//!                 b"+OK\n".to_vec()
//!             }
//!             [b"GET", k] if !k.is_empty() => match live(&self.map, k, now) {
//!                 Some(v) => [b"$", v, b"\n"].concat(),
//!                 None => b"$-1\n".to_vec(), // unset, or expired
//!             },
//!             [b"DEL", k] if !k.is_empty() => {
//!                 let found = live(&self.map, k, now).is_some(); // expired: absent
//!                 self.map.remove(*k);
//!                 if found { b":1\n" } else { b":0\n" }.to_vec()
//!             }
//!             _ => b"-ERR unknown command\n".to_vec(),
//!         }
//!     }
//! }
//!
//! impl Model for KvModel {
//!     type Conn = VecDeque<u8>; // the bytes this client is owed, in order
//!
//!     fn input(&mut self, _: &mut Self::Conn, _: &[u8]) {} // read is not applied yet
//!
//!     fn consumed(&mut self, owed: &mut Self::Conn, bytes: &[u8], now: Instant) {
//!         for line in bytes.split_inclusive(|&b| b == b'\n') {
//!             match line.strip_suffix(b"\n") {
//!                 Some(line) => owed.extend(self.execute(line, now)),
//!                 None => owed.extend(b"-ERR line too long\n"), // consumed without newline
//!             }
//!         }
//!     }
//!
//!     fn output(&mut self, owed: &mut Self::Conn, bytes: &[u8]) -> Result<(), ModelError> {
//!         for &b in bytes {
//!             if owed.pop_front() != Some(b) {
//!                 let detail = format!("unexpected `{}`", b.escape_ascii());
//!                 return Err(ModelError { offset: 0, detail });
//!             }
//!         }
//!         Ok(())
//!     }
//!
//!     fn owed(&self, owed: &Self::Conn) -> usize {
//!         owed.len()
//!     }
//!
//!     fn handler_wakes(&self) -> bool {
//!         false // every wake is the simulator's: check each reaches its connection
//!     }
//! }
//!
//! // ----- the workload: requests on four keys, some expiring, and garbage -----
//!
//! #[derive(Clone)]
//! struct KvWorkload;
//!
//! impl Workload for KvWorkload {
//!     fn message(&mut self, _client: u16, rng: &mut Rng) -> Vec<u8> {
//!         let key = (b'a' + rng.below(4) as u8) as char;
//!         let value = rng.below(1000);
//!         match rng.below(20) {
//!             0..=4 => format!("SET {key} v{value}\n").into_bytes(),
//!             // The clock moves in steps of up to 50 ms, and to deadlines: many expire.
//!             5..=7 => format!("SET {key} v{value} PX {}\n", rng.range(1, 300)).into_bytes(),
//!             8..=13 => format!("GET {key}\n").into_bytes(),
//!             14..=16 => format!("DEL {key}\n").into_bytes(),
//!             17 => b"SET a\n".to_vec(),
//!             _ => (0..rng.range(1, 20)).map(|_| rng.next_u64() as u8).collect(),
//!         }
//!     }
//! }
//!
//! // ----- the swarm: faults on, buffers that hold a request and a reply -----
//!
//! let report = Swarm::new(|| (Kv::default(), KvModel::default()))
//!     .seeds(0..200)
//!     .steps(1000)
//!     .threads(2)
//!     .constraints(Constraints {
//!         min_input_capacity: 32,
//!         min_output_capacity: 32,
//!         min_connections: 8,
//!         ..Constraints::none()
//!     })
//!     .workload(KvWorkload)
//!     .run();
//! assert!(report.failures.is_empty(), "{report}");
//! assert!(report.bytes_written > 10_000, "{report}");
//! ```
//!
//! `evio-sim/tests/kv_worked_example.rs` runs the same example across 2,000 seeds of
//! 5,000 steps with every fault kind firing and thousands of expired keys found, and
//! two mutants of the handler, which the same swarm catches: one applies a request
//! before it knows the reply fits, the other never expires a key:
//!
//! ```text
//! cargo test -p evio-sim --release --test kv_worked_example -- --nocapture
//! ```
//!
//! # Replaying a failure
//!
//! Every [`Failure`] says how to run it again, whichever entry point made it
//! ([`Origin`]):
//!
//! - a seed's run ([`swarm`], a [`Swarm`], [`run_seed`]) prints a one-line command:
//!   under `cargo test`, the failing test again with `EVIO_SIM_SEED=<seed>` (and
//!   `EVIO_SIM_STEPS`) set, which makes the swarm run only that seed, through the same
//!   constraints and workload, and print the end of its trace and its shrunk script;
//!   outside a test, the same program with those variables; the CLI prints its own line
//!   (`cargo run -p evio-sim-cli --release -- --seed <seed> --trace --shrink`);
//! - an explicit script ([`run`], or a [`Sim`] stepped by hand, whose
//!   [`Sim::failure`] turns a [`Violation`] into a [`Failure`]) cannot be made again
//!   from its seed: the failure keeps the configuration and the script
//!   ([`Failure::config`], [`Failure::script`]) and prints the script as Rust
//!   ([`script_source`]) when it is short.
//!
//! [`replay`] (or [`Swarm::replay`]) runs a seed's script again with its readable trace
//! recorded, and [`shrink`] reduces a failing script to a minimal one that still fails
//! the same way.
//!
//! # What is checked
//!
//! After every step: each `data` call's input is exactly the input the handler left
//! unconsumed, then the bytes read since, in order (and [`Model::consumed`] is told
//! what each call consumed); the engine transmits
//! as many bytes as the handler wrote (counted through
//! [`Conn::pending`](evio_proto::Conn::pending) around every callback; their content is
//! the [`Model`]'s to check), with one `prewrite` and one `postwrite` per write that
//! agree with it; the client's bytes satisfy the [`Model`]; one `opened` and at most
//! one `closed` per connection, `closed` only after the socket is closed, with the
//! very I/O error the driver reported, `FrameTooLarge` only after the handler was
//! given a full input buffer, and no error otherwise; nothing after
//! `closed`/`detached`, and no `data`/`woken` after the handler returned
//! `Close`/`Detach`; `Close` and `Detach` only once the output is flushed (during a
//! shutdown, only the triggering connection's, as far as the socket takes it); no
//! read while output is blocked (backpressure) unless a hang-up report asks for one;
//! wakes for closed ids refused, and (when the [`Model`] says the handler makes no
//! wakes of its own) every `woken` answering a wake made for that very connection,
//! and every wake the simulator made for a connection surely still open reaching
//! `woken` when the loop next handles wakes;
//! addresses in `opened` as the driver reported them; ticks given the driver's time,
//! never before the deadline the engine advertised, once per deadline and none after
//! the ticker stopped, each next deadline the previous one plus the delay when the
//! loop is on time (no drift) and within one period of now when it fell behind (no
//! burst), a delay under `min_tick` raised to it, and a tick due by the contract always
//! among the engine's deadlines and fired once the loop ran past it; no accept retried
//! right after EMFILE, none on a paused listener, and at most `accept_batch` accepts
//! per readiness report; a nap the engine asks for (with `Config::coalesce`) never
//! ending after its next deadline. At the end: every client's work done within a bound
//! (liveness), every clean connection complete, pool and counters back to their start,
//! no socket left.
//!
//! Each violation of the contract or of output accounting names its [`Rule`].
//!
//! # Inside
//!
//! The simulator keeps its roles apart, one module each: the virtual network (sockets,
//! windows, listeners, the clock, level-triggered readiness); the fault injector, a
//! wrapper around the network that decides every fault around its honest results; the
//! oracle, which keeps the per-connection shadow state and checks every output and
//! callback (the ticker's contract in a module of its own); liveness and the final
//! checks; and the step loop, [`Sim`], that ties them to the engine.
//!
//! # Faults
//!
//! [`FaultKind`] lists them: short reads and writes, EAGAIN after readiness, spurious
//! readiness, end of stream with the last data (and kqueue's early EV_EOF), resets
//! mid-stream, EPIPE, EMFILE and ECONNABORTED on accept, a full pool, wakes racing the
//! loop, deadlines between events, readiness queued for a closed or detached
//! connection, shutdown, close and detach with output pending. Each run draws its rates
//! from its seed; [`FaultCounts`] show what actually fired. Most seeds also keep a
//! ticker running after the handler's own stops ([`SimConfig::ticker`]), so the tick
//! schedule is checked under every handler, echo included. Half the seeds turn wake
//! coalescing on (`Config::coalesce`, 30 µs or 3 ms): the loop then naps when the
//! engine asks, and the virtual clock moves on by each nap. The loop itself alternates
//! between draining after every input and evio-os's shape (a whole poller batch, then
//! wakes, then the time, then one drain), and the delivery order is shuffled.
//!
//! # Several loops
//!
//! [`LoopsSim`] runs a server of several loops in one world: an engine per loop, each
//! in a [`Sim`] of its own (its clients, its oracle, its model, every check above),
//! joined by a simulated post office ([`SimPostOffice`]) whose inboxes are bounded,
//! refuse with `InboxFull` past a capacity drawn from the seed and as a fault, and hand
//! every post over (and every refusal back) after a seeded delay, at fixed points of
//! the world's steps. Each client is accepted by the loop the seed picks (as
//! `SO_REUSEPORT`'s hash would), and one loop stopping stops all. Between loops it
//! checks that every accepted post is delivered exactly once or refused exactly once,
//! that each refusal reaches the sending loop's handler exactly once, and that a
//! delivered write lands whole, in post order per pair of loops ([`Violation::Loops`]).
//! [`Swarm::run_loops`] runs seeds this way; [`Model::posted`] tells a model what its
//! loop posted, so that one model of state shared across loops (the chat room's, in
//! `evio-handlers`) stays exact.
//!
//! # The CLI
//!
//! The `evio-sim` binary, in the workspace's `evio-sim-cli` package (so that this
//! library does not depend on the example handlers), runs the swarm against the echo
//! handler:
//!
//! ```text
//! cargo run -p evio-sim-cli --release -- --seeds 0..10000 --steps 10000   # a swarm
//! cargo run -p evio-sim-cli --release -- --seed 42 --steps 10000 --trace --shrink
//! cargo run -p evio-sim-cli --release -- --min-output 16 --faults short-read,wake-race
//! cargo run -p evio-sim-cli --release -- --handler chat --loops 2  # a room on 2 loops
//! cargo run -p evio-sim-cli --release -- --help
//! ```
//!
//! `--min-input`, `--min-output`, `--min-connections` and `--faults` are the
//! [`Constraints`]; a failure's CLI replay line carries them. On a terminal a progress
//! bar shows on stderr while the swarm runs (through [`Swarm::progress`]); piped or in
//! CI the output stays plain.
//!
//! # Fuzzing
//!
//! [`FuzzCase`] reads any bytes as a whole run (a seed, a configuration with its fault
//! plan, and a script), and writes a case back as the bytes that read as it, so seed
//! inputs can be written from readable scripts; [`FuzzCase::run`] runs it with every
//! check and returns the simulation for a look at the handler and the model at the
//! end. The workspace's `fuzz/` targets drive the example handlers this way; the
//! [`seeds`] module keeps their committed inputs (written from readable scripts) and
//! lists them for the tests that replay them.
//!
//! With the `arbitrary` feature, [`ScriptedEvent`] derives `arbitrary::Arbitrary`, so a
//! fuzz target of one's own can build `(seed, Vec<ScriptedEvent>)` and call [`run`].

#![warn(missing_docs)]

mod backend;
mod case;
mod config;
mod constraint;
mod driver;
mod error;
mod fault;
mod injector;
mod liveness;
mod loops;
mod model;
mod network;
mod observe;
mod oracle;
mod rng;
mod rule;
mod script;
pub mod seeds;
mod shrink;
mod sim;
mod swarm;
mod tick;
mod trace;
mod transport;
mod workload;

use std::panic::{AssertUnwindSafe, catch_unwind};

/// The `arbitrary` crate the script types implement `Arbitrary` from (with the
/// `arbitrary` feature), re-exported so fuzz targets use the same version.
#[cfg(feature = "arbitrary")]
pub use arbitrary;
pub use backend::{Backends, NotARequest, RespServer, parse_multibulk};
pub use case::FuzzCase;
pub use config::{Outcome, SimConfig};
pub use constraint::Constraints;
pub use error::{Failure, Origin, Violation};
pub use evio_proto::Events;
pub use fault::{FaultCounts, FaultKind, FaultRates, FaultSet, ParseFaultError};
pub use loops::{LoopsOutcome, LoopsSim, PostCounts, SimPostOffice};
pub use model::{EchoConn, EchoModel, Model, ModelError, RelayConn, RelayModel};
pub use network::SimStream;
pub use observe::{Injection, Observation, Observed, Recording};
pub use rng::{Rng, TraceHash};
pub use rule::Rule;
pub use script::{
    Profile, ScriptedEvent, format_script, resolve_clients, script_source, smaller_scripts,
    without_client,
};
pub use shrink::{Shrunk, shrink};
pub use sim::{Sim, SimEngine};
pub use swarm::{Progress, Swarm, SwarmReport, swarm};
pub use transport::{ClientTransport, ClientTransports, Transformed};
pub use workload::Workload;

/// Runs `script` against a fresh simulation of `handler` with the configuration and
/// faults of `seed`, then the liveness phase and the final checks.
///
/// A panic in the engine or the handler is caught and reported as
/// [`Violation::Panic`].
///
/// # Errors
///
/// A [`Failure`] naming the seed, the step and the broken invariant. The seed alone
/// does not make an explicit script, so the failure keeps `config` and `script`
/// ([`Origin::Script`]) and its report says how to run them again.
pub fn run<H: Events, M: Model>(
    handler: H,
    model: M,
    seed: u64,
    config: SimConfig,
    script: &[ScriptedEvent],
) -> Result<Outcome, Failure> {
    let run = execute(handler, model, seed, config.clone(), script, false);
    run.result.map_err(|(at_step, violation)| Failure {
        seed,
        steps: script.len(),
        at_step,
        violation,
        test: test_name(),
        origin: Box::new(Origin::Script {
            config: Box::new(config),
            script: script.to_vec(),
        }),
    })
}

/// Runs the seed's own script of `steps` events (see [`SimConfig::script`]) with a
/// handler and model from `make`.
///
/// # Errors
///
/// As [`run`]; the failure's replay line replays the seed ([`Origin::Seed`]).
pub fn run_seed<H: Events, M: Model>(
    seed: u64,
    steps: usize,
    make: impl FnOnce() -> (H, M),
) -> Result<Outcome, Failure> {
    let config = SimConfig::from_seed(seed);
    let script = config.script(seed, steps);
    run_made(seed, config, &script, Origin::seed(), make)
}

/// Runs a script that `origin` says how to make again, with a handler and model from
/// `make`: a failure gets that origin rather than a copy of the script.
pub(crate) fn run_made<H: Events, M: Model>(
    seed: u64,
    config: SimConfig,
    script: &[ScriptedEvent],
    origin: Origin,
    make: impl FnOnce() -> (H, M),
) -> Result<Outcome, Failure> {
    let (handler, model) = make();
    let run = execute(handler, model, seed, config, script, false);
    run.result.map_err(|(at_step, violation)| Failure {
        seed,
        steps: script.len(),
        at_step,
        violation,
        test: test_name(),
        origin: Box::new(origin),
    })
}

/// Runs the seed's own script like [`run_seed`], recording a readable trace of every
/// event, engine output and handler callback, returned with the result.
pub fn trace_seed<H: Events, M: Model>(
    seed: u64,
    steps: usize,
    make: impl FnOnce() -> (H, M),
) -> (Result<Outcome, Failure>, Vec<String>) {
    let replay = replay(seed, steps, make);
    (replay.result, replay.trace)
}

/// Runs the seed's own script of `steps` events (as [`run_seed`]) with its readable
/// trace recorded, keeping everything a replay prints: the configuration and script,
/// the result, the trace, the trace hash and the fault counts (of a failing run too).
pub fn replay<H: Events, M: Model>(
    seed: u64,
    steps: usize,
    make: impl FnOnce() -> (H, M),
) -> Replay {
    let config = SimConfig::from_seed(seed);
    let script = config.script(seed, steps);
    replay_made(seed, config, script, Origin::seed(), make)
}

/// [`replay`] of a configuration and script that `origin` says how to make again.
pub(crate) fn replay_made<H: Events, M: Model>(
    seed: u64,
    config: SimConfig,
    script: Vec<ScriptedEvent>,
    origin: Origin,
    make: impl FnOnce() -> (H, M),
) -> Replay {
    let (handler, model) = make();
    let run = execute(handler, model, seed, config.clone(), &script, true);
    Replay {
        seed,
        result: run.result.map_err(|(at_step, violation)| Failure {
            seed,
            steps: script.len(),
            at_step,
            violation,
            test: test_name(),
            origin: Box::new(origin),
        }),
        config,
        script,
        trace: run.trace,
        trace_hash: run.trace_hash,
        faults: run.faults,
    }
}

/// One seed's own script, run again with its readable trace recorded (see [`replay`]).
#[derive(Clone, Debug)]
pub struct Replay {
    /// The seed.
    pub seed: u64,
    /// The seed's configuration.
    pub config: SimConfig,
    /// The seed's script.
    pub script: Vec<ScriptedEvent>,
    /// How the run ended.
    pub result: Result<Outcome, Failure>,
    /// The readable trace: every event, engine output and handler callback, up to the
    /// failure (a panic included).
    pub trace: Vec<String>,
    /// The trace hash, of a failing run too.
    pub trace_hash: u64,
    /// How often each fault fired, in a failing run too.
    pub faults: FaultCounts,
}

impl Replay {
    /// The last `lines` lines of the trace (all of it when shorter).
    pub fn trace_tail(&self, lines: usize) -> &[String] {
        &self.trace[self.trace.len().saturating_sub(lines)..]
    }

    /// Shrinks the script if the run failed (see [`shrink`]), making at most `budget`
    /// runs with handlers and models from `make`; `None` if it passed.
    pub fn shrink<H, M, F>(&self, budget: usize, make: F) -> Option<Shrunk>
    where
        H: Events,
        M: Model,
        F: Fn() -> (H, M),
    {
        self.result.as_ref().err()?;
        shrink(self.seed, &self.config, &self.script, budget, make)
    }
}

/// What one run left behind, failed or not.
struct Execution {
    /// The outcome, or the step at which the run failed and how.
    result: Result<Outcome, (usize, Violation)>,
    /// The readable trace, when it was recorded.
    trace: Vec<String>,
    trace_hash: u64,
    faults: FaultCounts,
}

/// The one loop over a script: builds the simulation, steps through `script`, runs
/// the liveness phase and the final checks, catching a panic of the engine or the
/// handler; records the readable trace when `tracing`.
fn execute<H: Events, M: Model>(
    handler: H,
    model: M,
    seed: u64,
    config: SimConfig,
    script: &[ScriptedEvent],
    tracing: bool,
) -> Execution {
    let mut at_step = 0;
    let mut sim: Option<Sim<H, M>> = None;
    let result = catch_unwind(AssertUnwindSafe(|| {
        let sim = sim.insert(Sim::with_config(handler, model, seed, config)?);
        sim.set_tracing(tracing);
        for event in script {
            sim.run_event(event)?;
            at_step += 1;
        }
        sim.finish()
    }))
    .unwrap_or_else(|panic| Err(Violation::Panic(panic_message(&*panic))));
    let (trace, trace_hash, faults) = match &mut sim {
        Some(sim) => (
            sim.w.trace.take_lines(),
            sim.trace_hash(),
            sim.faults().clone(),
        ),
        None => (
            Vec::new(),
            TraceHash::default().value(),
            FaultCounts::default(),
        ),
    };
    // After a panic the engine may be in any state: a panic while dropping it must not
    // escape either.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(sim)));
    Execution {
        result: result.map_err(|violation| (at_step, violation)),
        trace,
        trace_hash,
        faults,
    }
}

/// The name of the running test, from the test harness's thread name.
fn test_name() -> Option<String> {
    let thread = std::thread::current();
    let name = thread.name()?;
    (name != "main").then(|| name.to_string())
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
