//! The swarm: many seeds on several threads, their results combined in seed order.

use core::fmt;
use core::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::{Events, Failure, FaultCounts, Model, Outcome, TraceHash, replay, run_seed, test_name};

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
    let replay = replay(seed, steps, make);
    let mut report = SwarmReport {
        seeds: 1,
        ..SwarmReport::default()
    };
    match &replay.result {
        Ok(outcome) => {
            eprintln!(
                "EVIO_SIM_SEED={seed}: passed, trace hash {:016x}",
                outcome.trace_hash
            );
            report.steps = outcome.steps;
            report.connections = outcome.stats.accepted;
            report.bytes_written = outcome.stats.bytes_written;
            report.faults = outcome.faults.clone();
            let mut hash = TraceHash::default();
            hash.word(outcome.trace_hash);
            report.combined_hash = hash.value();
        }
        Err(failure) => {
            eprintln!("EVIO_SIM_SEED={seed}: trace (last 80 lines):");
            for line in replay.trace_tail(80) {
                eprintln!("{line}");
            }
            if let Some(shrunk) = replay.shrink(5000, make) {
                eprintln!("{shrunk}");
            }
            report.steps = failure.at_step as u64;
            report.failures.push(failure.clone());
        }
    }
    report.elapsed = start.elapsed();
    report
}
