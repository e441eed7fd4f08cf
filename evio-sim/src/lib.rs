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
//! # Replaying a failure
//!
//! Each [`Failure`] prints its seed and a one-line replay command, for the test suite
//! (`EVIO_SIM_SEED=<seed> cargo test -p evio-sim --test swarm replay`) and for the CLI
//! (`cargo run -p evio-sim --release -- --seed <seed> --trace`). [`shrink`] reduces a
//! failing script to a minimal one that still fails the same way.
//!
//! # What is checked
//!
//! After every step: each `data` call's input is the latest bytes read, in order,
//! starting no earlier than the previous call's input (how much a handler consumed is
//! not visible to the simulator, so unconsumed input dropped or handed back twice is
//! the [`Model`]'s to catch, through what the client receives); the engine transmits
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
//! per readiness report. At the end: every client's work done within a bound
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
//! schedule is checked under every handler, echo included. The loop itself alternates
//! between draining after every input and evio-os's shape (a whole poller batch, then
//! wakes, then the time, then one drain), and the delivery order is shuffled.
//!
//! # The CLI
//!
//! ```text
//! cargo run -p evio-sim --release -- --seeds 0..10000 --steps 10000   # a swarm
//! cargo run -p evio-sim --release -- --seed 42 --steps 10000 --trace --shrink
//! ```
//!
//! # Fuzzing
//!
//! With the `arbitrary` feature, [`ScriptedEvent`] derives `arbitrary::Arbitrary`, so a
//! fuzz target can build `(seed, Vec<ScriptedEvent>)` and call [`run`].

#![warn(missing_docs)]

mod config;
mod driver;
mod error;
mod fault;
mod injector;
mod liveness;
mod model;
mod network;
mod observe;
mod oracle;
mod rng;
mod rule;
mod script;
mod sim;
mod tick;
mod trace;

use core::fmt;
use core::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The `arbitrary` crate the script types implement `Arbitrary` from (with the
/// `arbitrary` feature), re-exported so fuzz targets use the same version.
#[cfg(feature = "arbitrary")]
pub use arbitrary;
pub use config::{Outcome, SimConfig};
pub use error::{Failure, Violation};
pub use evio_proto::Events;
pub use fault::{FaultCounts, FaultKind, FaultRates};
pub use model::{EchoConn, EchoModel, Model, ModelError};
pub use network::SimStream;
pub use observe::{Injection, Observation, Observed, Recording};
pub use rng::{Rng, TraceHash};
pub use rule::Rule;
pub use script::{
    Profile, ScriptedEvent, format_script, resolve_clients, smaller_scripts, without_client,
};
pub use sim::{Sim, SimEngine};

/// Runs `script` against a fresh simulation of `handler` with the configuration and
/// faults of `seed`, then the liveness phase and the final checks.
///
/// A panic in the engine or the handler is caught and reported as
/// [`Violation::Panic`].
///
/// # Errors
///
/// A [`Failure`] naming the seed, the step and the broken invariant.
pub fn run<H: Events, M: Model>(
    handler: H,
    model: M,
    seed: u64,
    config: SimConfig,
    script: &[ScriptedEvent],
) -> Result<Outcome, Failure> {
    let mut at_step = 0;
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut sim = Sim::with_config(handler, model, seed, config)?;
        for event in script {
            sim.step(event)?;
            at_step += 1;
        }
        sim.finish()
    }));
    let result = match result {
        Ok(r) => r,
        Err(panic) => Err(Violation::Panic(panic_message(&*panic))),
    };
    result.map_err(|violation| Failure {
        seed,
        steps: script.len(),
        at_step,
        violation,
        test: test_name(),
        seed_script: false,
    })
}

/// The name of the running test, from the test harness's thread name.
fn test_name() -> Option<String> {
    let thread = std::thread::current();
    let name = thread.name()?;
    (name != "main").then(|| name.to_string())
}

/// Runs the seed's own script like [`run_seed`], recording a readable trace of every
/// event, engine output and handler callback, returned with the result.
pub fn trace_seed<H: Events, M: Model>(
    seed: u64,
    steps: usize,
    make: impl FnOnce() -> (H, M),
) -> (Result<Outcome, Failure>, Vec<String>) {
    let config = SimConfig::from_seed(seed);
    let script = config.script(seed, steps);
    let (handler, model) = make();
    let mut at_step = 0;
    let mut trace = Vec::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut sim = Sim::with_config(handler, model, seed, config)?;
        sim.set_tracing(true);
        let mut result = Ok(());
        for event in &script {
            result = sim.step(event);
            if result.is_err() {
                break;
            }
            at_step += 1;
        }
        let result = result.and_then(|()| sim.finish());
        trace = sim.trace().to_vec();
        result
    }));
    let result = match result {
        Ok(r) => r,
        Err(panic) => Err(Violation::Panic(panic_message(&*panic))),
    };
    let result = result.map_err(|violation| Failure {
        seed,
        steps,
        at_step,
        violation,
        test: test_name(),
        seed_script: true,
    });
    (result, trace)
}

/// Runs the seed's own script of `steps` events (see [`SimConfig::script`]) with a
/// handler and model from `make`.
///
/// # Errors
///
/// As [`run`].
pub fn run_seed<H: Events, M: Model>(
    seed: u64,
    steps: usize,
    make: impl FnOnce() -> (H, M),
) -> Result<Outcome, Failure> {
    let config = SimConfig::from_seed(seed);
    let script = config.script(seed, steps);
    let (handler, model) = make();
    run(handler, model, seed, config, &script).map_err(|f| Failure {
        seed_script: true,
        ..f
    })
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

/// What a swarm of seeds did.
#[derive(Clone, Debug, Default)]
pub struct SwarmReport {
    /// Seeds run.
    pub seeds: u64,
    /// Steps run in all, liveness phases included.
    pub steps: u64,
    /// Connections the engine accepted in all.
    pub connections: u64,
    /// Connections detached (socket taken by the handler) in all.
    pub detached: u64,
    /// Connections closed because a frame did not fit the input buffer, in all.
    pub frames_too_large: u64,
    /// Bytes the engine wrote in all.
    pub bytes_written: u64,
    /// How often each fault kind fired, summed over all seeds.
    pub faults: FaultCounts,
    /// The failed seeds, in seed order.
    pub failures: Vec<Failure>,
    /// The hashes of all passing runs' traces combined in seed order: equal for two
    /// swarms exactly when every run did the same.
    pub combined_hash: u64,
    /// Wall-clock time taken (for the summary only; nothing depends on it).
    pub elapsed: Duration,
}

impl fmt::Display for SwarmReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seeds run: {}  steps: {}  connections: {} ({} detached)  bytes written: {}  failures: {}",
            self.seeds,
            self.steps,
            self.connections,
            self.detached,
            self.bytes_written,
            self.failures.len()
        )?;
        writeln!(f, "faults fired:")?;
        writeln!(f, "{}", self.faults)?;
        for failure in &self.failures {
            writeln!(f, "FAILED {failure}")?;
        }
        write!(
            f,
            "combined trace hash: {:016x}  time: {:.2?}",
            self.combined_hash, self.elapsed
        )
    }
}

/// Runs every seed in `seeds` with a script of `steps` events, on `threads` threads
/// (at least one), with a fresh handler and model from `make` for each seed.
///
/// The report does not depend on the number of threads: results are combined in seed
/// order. With the environment variable `EVIO_SIM_SEED` set, it runs that one seed
/// instead (with `EVIO_SIM_STEPS` steps if set), which is how the replay line of a
/// [`Failure`] works: on failure it prints the end of the trace and the shrunk script
/// to stderr.
pub fn swarm<H, M, F>(seeds: Range<u64>, steps: usize, threads: usize, make: F) -> SwarmReport
where
    H: Events,
    M: Model,
    F: Fn() -> (H, M) + Sync,
{
    let start = std::time::Instant::now();
    let test = test_name();
    if let Some(seed) = std::env::var("EVIO_SIM_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        return replay_seed(seed, steps, &make, start);
    }
    let next = AtomicU64::new(seeds.start);
    let results: Mutex<Vec<(u64, Result<Outcome, Failure>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                let mut local = Vec::new();
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        break;
                    }
                    let result = run_seed(seed, steps, &make).map_err(|mut f| {
                        f.test.clone_from(&test);
                        f
                    });
                    local.push((seed, result));
                }
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(local);
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(seed, _)| *seed);
    let mut report = SwarmReport::default();
    let mut hash = TraceHash::default();
    for (_, result) in results {
        report.seeds += 1;
        match result {
            Ok(outcome) => {
                report.steps += outcome.steps;
                report.connections += outcome.stats.accepted;
                report.detached += outcome.stats.detached;
                report.frames_too_large += outcome.stats.frame_too_large;
                report.bytes_written += outcome.stats.bytes_written;
                report.faults += &outcome.faults;
                hash.word(outcome.trace_hash);
            }
            Err(failure) => {
                report.steps += failure.at_step as u64;
                report.failures.push(failure);
            }
        }
    }
    report.combined_hash = hash.value();
    report.elapsed = start.elapsed();
    report
}

/// A failing script after [`shrink`]: the smallest found, with the configuration it
/// fails under and its failure.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The shrunk script (client numbers resolved: client `k` is the `k`-th `Connect`).
    pub script: Vec<ScriptedEvent>,
    /// The configuration it fails under: the seed's own, with its fault rates set to
    /// zero when the failure does not need faults.
    pub config: SimConfig,
    /// How it fails.
    pub failure: Failure,
    /// Runs the shrinker made.
    pub runs: usize,
}

impl fmt::Display for Shrunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let faults = if self.config.rates == FaultRates::none() {
            "faults off"
        } else {
            "the seed's fault rates"
        };
        write!(
            f,
            "shrunk in {} runs to {} events (seed {}, {faults}), failing at step {}: {}\n{}",
            self.runs,
            self.script.len(),
            self.failure.seed,
            self.failure.at_step,
            self.failure.violation,
            format_script(&self.script)
        )
    }
}

/// A swarm of one seed, from `EVIO_SIM_SEED` (steps from `EVIO_SIM_STEPS` if set): on
/// failure it prints the end of the trace and the shrunk script to stderr.
fn replay_seed<H, M, F>(seed: u64, steps: usize, make: &F, start: std::time::Instant) -> SwarmReport
where
    H: Events,
    M: Model,
    F: Fn() -> (H, M),
{
    let steps = std::env::var("EVIO_SIM_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(steps);
    let (result, trace) = trace_seed(seed, steps, make);
    let mut report = SwarmReport {
        seeds: 1,
        ..SwarmReport::default()
    };
    match result {
        Ok(outcome) => {
            eprintln!(
                "EVIO_SIM_SEED={seed}: passed, trace hash {:016x}",
                outcome.trace_hash
            );
            report.steps = outcome.steps;
            report.connections = outcome.stats.accepted;
            report.bytes_written = outcome.stats.bytes_written;
            report.faults = outcome.faults;
            let mut hash = TraceHash::default();
            hash.word(outcome.trace_hash);
            report.combined_hash = hash.value();
        }
        Err(failure) => {
            eprintln!("EVIO_SIM_SEED={seed}: trace (last 80 lines):");
            for line in &trace[trace.len().saturating_sub(80)..] {
                eprintln!("{line}");
            }
            let config = SimConfig::from_seed(seed);
            let script = config.script(seed, steps);
            if let Some(shrunk) = shrink(seed, &config, &script, 5000, make) {
                eprintln!("{shrunk}");
            }
            report.steps = failure.at_step as u64;
            report.failures.push(failure);
        }
    }
    report.elapsed = start.elapsed();
    report
}

/// What makes two failures "the same kind" for [`shrink`]: the variant, and for the
/// variants that stand for many rules (`Contract`, `Accounting`) the [`Rule`].
/// Otherwise a script failing one contract rule could shrink to one failing another.
fn failure_kind(v: &Violation) -> (core::mem::Discriminant<Violation>, Option<Rule>) {
    (core::mem::discriminant(v), v.rule())
}

/// Shrinks a failing script: tries it without faults, cuts what follows the failure,
/// removes whole clients, then chunks of events (halves down to single events), then
/// shortens payloads and read windows, repeating while anything helps. A change is kept
/// only if the run still fails with the same kind of violation (for a contract or
/// accounting violation, the same rule). Makes at most `budget`
/// runs.
///
/// Returns `None` if `script` does not fail under `config` in the first place.
pub fn shrink<H, M, F>(
    seed: u64,
    config: &SimConfig,
    script: &[ScriptedEvent],
    budget: usize,
    make: F,
) -> Option<Shrunk>
where
    H: Events,
    M: Model,
    F: Fn() -> (H, M),
{
    let fails = |c: &SimConfig, s: &[ScriptedEvent]| {
        let (h, m) = make();
        run(h, m, seed, c.clone(), s).err()
    };
    let first = fails(config, script)?;
    let kind = failure_kind(&first.violation);
    let mut best = Shrunk {
        script: resolve_clients(script),
        config: config.clone(),
        failure: first,
        runs: 1,
    };
    let try_candidate =
        |best: &mut Shrunk, config: Option<SimConfig>, script: Vec<ScriptedEvent>| -> bool {
            if best.runs >= budget {
                return false;
            }
            best.runs += 1;
            let config = config.unwrap_or_else(|| best.config.clone());
            match fails(&config, &script) {
                Some(f) if failure_kind(&f.violation) == kind => {
                    best.script = script;
                    best.config = config;
                    best.failure = f;
                    true
                }
                _ => false,
            }
        };
    let quiet = SimConfig {
        rates: FaultRates::none(),
        ..config.clone()
    };
    let script = best.script.clone();
    try_candidate(&mut best, Some(quiet), script);
    loop {
        let before = best.script.len();
        let cut = (best.failure.at_step + 1).min(best.script.len());
        if cut < best.script.len() {
            let candidate = best.script[..cut].to_vec();
            try_candidate(&mut best, None, candidate);
        }
        let clients = best
            .script
            .iter()
            .filter(|e| matches!(e, ScriptedEvent::Connect { .. }))
            .count() as u16;
        for k in (0..clients).rev() {
            let candidate = without_client(&best.script, k);
            try_candidate(&mut best, None, candidate);
        }
        let mut chunk = best.script.len() / 2;
        while chunk >= 1 {
            let mut i = 0;
            while i < best.script.len() {
                let end = (i + chunk).min(best.script.len());
                let mut candidate = best.script[..i].to_vec();
                candidate.extend_from_slice(&best.script[end..]);
                if !try_candidate(&mut best, None, candidate) {
                    i += chunk;
                }
            }
            chunk /= 2;
        }
        for i in 0..best.script.len() {
            loop {
                let smaller = match &best.script[i] {
                    ScriptedEvent::Send { client, bytes } if bytes.len() > 1 => {
                        ScriptedEvent::Send {
                            client: *client,
                            bytes: bytes[..bytes.len() / 2].to_vec(),
                        }
                    }
                    ScriptedEvent::Read { client, window } if *window > 1 => ScriptedEvent::Read {
                        client: *client,
                        window: window / 2,
                    },
                    _ => break,
                };
                let mut candidate = best.script.clone();
                candidate[i] = smaller;
                if !try_candidate(&mut best, None, candidate) {
                    break;
                }
            }
        }
        if best.script.len() >= before || best.runs >= budget {
            break;
        }
    }
    // Removing a `Connect` can leave client numbers that only the modulo resolves:
    // print them resolved (the same script, read more easily).
    best.script = resolve_clients(&best.script);
    Some(best)
}
