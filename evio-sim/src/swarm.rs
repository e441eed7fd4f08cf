//! The swarm: many seeds on several threads, their results combined in seed order.

use core::fmt;
use core::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::{
    Constraints, Events, Failure, FaultCounts, LoopsOutcome, LoopsSim, Model, Origin, Outcome,
    PostCounts, Replay, ScriptedEvent, SimConfig, TraceHash, Violation, Workload, panic_message,
    replay_made, run_made, test_name,
};

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
    /// Handshakes completed in all (transformed connections: TLS).
    pub handshakes: u64,
    /// Batches of sends the engine handed over in all (runs whose seed turned
    /// `Config::batch_sends` on).
    pub send_batches: u64,
    /// Naps the engine asked for in all (runs whose seed turned `Config::coalesce`
    /// on).
    pub naps: u64,
    /// How often each fault kind fired, summed over all seeds.
    pub faults: FaultCounts,
    /// What the post offices between loops did, summed over all seeds (all zero but
    /// for [`Swarm::run_loops`]).
    pub posts: PostCounts,
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
            "seeds run: {}  steps: {}  connections: {} ({} detached, {} handshakes)  bytes written: {}  send batches: {}  naps: {}  failures: {}",
            self.seeds,
            self.steps,
            self.connections,
            self.detached,
            self.handshakes,
            self.bytes_written,
            self.send_batches,
            self.naps,
            self.failures.len()
        )?;
        writeln!(f, "faults fired:")?;
        writeln!(f, "{}", self.faults)?;
        let p = &self.posts;
        if *p != PostCounts::default() {
            writeln!(
                f,
                "posts between loops: {} accepted, {} delivered, {} refused on arrival \
                 ({} handed back), {} refused at once (inbox full), {} refused at once \
                 (fault: inbox full)",
                p.accepted,
                p.delivered,
                p.refused_there,
                p.refusals_returned,
                p.inbox_full,
                p.inbox_full_faults
            )?;
        }
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
///
/// The same as `Swarm::new(make).seeds(seeds).steps(steps).threads(threads).run()`;
/// a [`Swarm`] also takes constraints on the configuration, a workload and a progress
/// hook.
pub fn swarm<H, M, F>(seeds: Range<u64>, steps: usize, threads: usize, make: F) -> SwarmReport
where
    H: Events,
    M: Model,
    F: Fn() -> (H, M) + Sync,
{
    Swarm::new(make)
        .seeds(seeds)
        .steps(steps)
        .threads(threads)
        .run()
}

/// Makes a fresh workload for each seed, so that no seed's script depends on another's.
type MakeWorkload = Arc<dyn Fn() -> Box<dyn Workload> + Send + Sync>;

/// A progress hook, called as each seed finishes.
type ProgressHook = Arc<dyn Fn(&Progress) + Send + Sync>;

/// A swarm of seeds to run, built step by step: which seeds, how many steps, how many
/// threads, [`Constraints`] on each seed's configuration, a [`Workload`] for what the
/// clients send, and a progress hook.
///
/// ```
/// use evio_handlers::echo::Echo;
/// use evio_sim::{Constraints, EchoModel, FaultSet, Rng, Swarm};
///
/// let report = Swarm::new(|| (Echo, EchoModel))
///     .seeds(0..40)
///     .steps(300)
///     .threads(2)
///     .constraints(Constraints {
///         min_output_capacity: 16,
///         faults: FaultSet::NONE,
///         ..Constraints::none()
///     })
///     .workload(|_client: u16, _rng: &mut Rng| b"hello\n".to_vec())
///     .run();
/// assert!(report.failures.is_empty(), "{report}");
/// assert_eq!(report.seeds, 40);
/// ```
///
/// As [`swarm`], the report does not depend on the number of threads, and with
/// `EVIO_SIM_SEED` set [`Swarm::run`] runs only that seed (with `EVIO_SIM_STEPS`
/// steps if set), printing its trace and shrunk script on failure: with the same
/// constraints and workload, since the replay goes through the same call. A failure's
/// [`replay_line`](Failure::replay_line) is that command.
pub struct Swarm<F> {
    make: F,
    seeds: Range<u64>,
    steps: usize,
    threads: usize,
    constraints: Constraints,
    workload: Option<MakeWorkload>,
    progress: Option<ProgressHook>,
    half_close: bool,
}

impl<F> fmt::Debug for Swarm<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Swarm")
            .field("seeds", &self.seeds)
            .field("steps", &self.steps)
            .field("threads", &self.threads)
            .field("constraints", &self.constraints)
            .field("workload", &self.workload.is_some())
            .field("progress", &self.progress.is_some())
            .finish_non_exhaustive()
    }
}

/// One seed of a [`Swarm`] finished: what its progress hook is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The seed that finished.
    pub seed: u64,
    /// Whether it passed.
    pub passed: bool,
    /// Seeds finished so far, this one included (threads finish out of order, so a
    /// hook may see a smaller count after a larger one).
    pub done: u64,
    /// Seeds failed so far.
    pub failures: u64,
    /// Seeds the swarm runs in all.
    pub total: u64,
}

impl<F> Swarm<F> {
    /// A swarm over handlers and models from `make` (a fresh pair per seed): seeds
    /// `0..1000`, 1,000 steps each, on every core, unconstrained, random payloads.
    pub fn new(make: F) -> Self {
        Swarm {
            make,
            seeds: 0..1000,
            steps: 1000,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            constraints: Constraints::none(),
            workload: None,
            progress: None,
            half_close: true,
        }
    }

    /// Without clients that half-close (end their stream and keep reading): a
    /// relay's swarm without that traffic. The seeds' other draws stay as they were.
    #[must_use]
    pub fn without_half_close(mut self) -> Self {
        self.half_close = false;
        self
    }

    /// Runs these seeds.
    #[must_use]
    pub fn seeds(mut self, seeds: Range<u64>) -> Self {
        self.seeds = seeds;
        self
    }

    /// Scripts of this many events per seed.
    #[must_use]
    pub fn steps(mut self, steps: usize) -> Self {
        self.steps = steps;
        self
    }

    /// On this many threads (at least one).
    #[must_use]
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// With these constraints on every seed's configuration.
    #[must_use]
    pub fn constraints(mut self, constraints: Constraints) -> Self {
        self.constraints = constraints;
        self
    }

    /// With clients sending `workload`'s messages instead of random bytes: each seed
    /// starts from a fresh clone of it.
    #[must_use]
    pub fn workload<W: Workload + Clone + Send + Sync + 'static>(mut self, workload: W) -> Self {
        self.workload = Some(Arc::new(move || Box::new(workload.clone())));
        self
    }

    /// Calls `hook` as each seed finishes (from the worker threads), for a progress
    /// bar or a log line.
    #[must_use]
    pub fn progress(mut self, hook: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(hook));
        self
    }

    /// The configuration `seed` runs with: its own, constrained.
    pub fn config(&self, seed: u64) -> SimConfig {
        let mut config = SimConfig::constrained(seed, self.steps, &self.constraints);
        if !self.half_close {
            const HALF_CLOSE: usize = 3; // in `Profile::weights`
            config.profile.weights[HALF_CLOSE] = 0;
        }
        config
    }

    /// The script `seed` runs under `config` (its [`Swarm::config`]): the seed's own,
    /// with the workload's payloads if there is one.
    pub fn script(&self, seed: u64, config: &SimConfig) -> Vec<ScriptedEvent> {
        match &self.workload {
            Some(make) => config.script_with(seed, self.steps, &mut *make()),
            None => config.script(seed, self.steps),
        }
    }

    /// How a failure of this swarm is made again.
    fn origin(&self) -> Origin {
        Origin::Seed {
            constraints: self.constraints.clone(),
            workload: self.workload.is_some(),
        }
    }

    /// Runs one seed as the swarm does.
    ///
    /// # Errors
    ///
    /// A [`Failure`] whose replay line replays it through the same swarm call.
    pub fn run_seed<H, M>(&self, seed: u64) -> Result<Outcome, Failure>
    where
        H: Events,
        M: Model,
        F: Fn() -> (H, M),
    {
        let config = self.config(seed);
        let script = self.script(seed, &config);
        run_made(seed, config, &script, self.origin(), &self.make)
    }

    /// Runs one seed as the swarm does, with its readable trace recorded (see
    /// [`replay`](crate::replay)), for a failure to be looked at or shrunk.
    pub fn replay<H, M>(&self, seed: u64) -> Replay
    where
        H: Events,
        M: Model,
        F: Fn() -> (H, M),
    {
        let config = self.config(seed);
        let script = self.script(seed, &config);
        replay_made(seed, config, script, self.origin(), &self.make)
    }

    /// Runs every seed (or, with `EVIO_SIM_SEED` set, only that one, with its trace
    /// and shrunk script printed on failure) and combines the results in seed order.
    pub fn run<H, M>(&self) -> SwarmReport
    where
        H: Events,
        M: Model,
        F: Fn() -> (H, M) + Sync,
    {
        let start = std::time::Instant::now();
        if let Some((seed, one)) = self.replay_from_env() {
            return one.replay_seed(seed, start);
        }
        let results = self.sweep(self.seeds.clone(), |seed| self.run_seed(seed));
        let mut report = SwarmReport::default();
        let mut hash = TraceHash::default();
        for (_, result) in results {
            match result {
                Ok(outcome) => {
                    report.count(&outcome);
                    hash.word(outcome.trace_hash);
                }
                Err(failure) => report.fail(failure),
            }
            report.seeds += 1;
        }
        report.combined_hash = hash.value();
        report.elapsed = start.elapsed();
        report
    }

    /// With `EVIO_SIM_SEED` set, that seed and a swarm of it alone (of
    /// `EVIO_SIM_STEPS` steps if set), for a replay.
    fn replay_from_env(&self) -> Option<(u64, Swarm<&F>)> {
        let seed = std::env::var("EVIO_SIM_SEED").ok()?.parse::<u64>().ok()?;
        let steps = std::env::var("EVIO_SIM_STEPS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(self.steps);
        let one = Swarm {
            make: &self.make,
            seeds: seed..seed + 1,
            steps,
            threads: 1,
            constraints: self.constraints.clone(),
            workload: self.workload.clone(),
            progress: None,
            half_close: self.half_close,
        };
        Some((seed, one))
    }

    /// Runs `run` for every seed of `seeds` on the swarm's threads, reporting progress,
    /// and gives the results in seed order (failures named after the calling test).
    fn sweep<R: Send>(
        &self,
        seeds: Range<u64>,
        run: impl Fn(u64) -> Result<R, Failure> + Sync,
    ) -> Vec<(u64, Result<R, Failure>)>
    where
        F: Sync,
    {
        let test = test_name();
        let next = AtomicU64::new(seeds.start);
        let (done, failed) = (AtomicU64::new(0), AtomicU64::new(0));
        let total = seeds.end.saturating_sub(seeds.start);
        let results: Mutex<Vec<(u64, Result<R, Failure>)>> = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..self.threads.max(1) {
                scope.spawn(|| {
                    let mut local = Vec::new();
                    loop {
                        let seed = next.fetch_add(1, Ordering::Relaxed);
                        if seed >= seeds.end {
                            break;
                        }
                        let result = run(seed).map_err(|mut f| {
                            f.test.clone_from(&test);
                            f
                        });
                        let failures = failed
                            .fetch_add(u64::from(result.is_err()), Ordering::Relaxed)
                            + u64::from(result.is_err());
                        let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if let Some(hook) = &self.progress {
                            hook(&Progress {
                                seed,
                                passed: result.is_ok(),
                                done: finished,
                                failures,
                                total,
                            });
                        }
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
        results
    }
}

impl SwarmReport {
    /// Adds what one run (one seed, or one loop of a seed) did.
    fn count(&mut self, outcome: &Outcome) {
        self.steps += outcome.steps;
        self.connections += outcome.stats.accepted;
        self.detached += outcome.stats.detached;
        self.naps += outcome.naps;
        self.frames_too_large += outcome.stats.frame_too_large;
        self.bytes_written += outcome.stats.bytes_written;
        self.handshakes += outcome.stats.handshakes;
        self.send_batches += outcome.stats.send_batches;
        self.faults += &outcome.faults;
    }

    /// Adds a failed seed.
    fn fail(&mut self, failure: Failure) {
        self.steps += failure.at_step as u64;
        self.failures.push(failure);
    }
}

impl<F> Swarm<&F> {
    /// A swarm of one seed, from `EVIO_SIM_SEED`: on failure it prints the end of the
    /// trace and the shrunk script to stderr.
    fn replay_seed<H, M>(&self, seed: u64, start: std::time::Instant) -> SwarmReport
    where
        H: Events,
        M: Model,
        F: Fn() -> (H, M),
    {
        let replay = self.replay(seed);
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
                report.send_batches = outcome.stats.send_batches;
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
                if let Some(shrunk) = replay.shrink(5000, self.make) {
                    eprintln!("{shrunk}");
                }
                report.steps = failure.at_step as u64;
                report.failures.push(failure.clone());
            }
        }
        report.elapsed = start.elapsed();
        report
    }
}

impl<F> Swarm<F> {
    /// Runs one seed as [`Swarm::run_loops`] does: its configuration and script on a
    /// server of `loops` loops ([`LoopsSim`](crate::LoopsSim)), the handlers and models
    /// from `make(loops)`, one pair per loop.
    ///
    /// # Errors
    ///
    /// A [`Failure`] whose replay line replays it through the same swarm call (a
    /// panic in the engine, a handler or a model is caught and reported as
    /// [`Violation::Panic`](crate::Violation::Panic)).
    pub fn run_seed_loops<H, M>(&self, seed: u64, loops: usize) -> Result<LoopsOutcome, Failure>
    where
        H: Events,
        M: Model,
        F: Fn(usize) -> Vec<(H, M)>,
    {
        self.execute_loops(seed, loops, false).0
    }

    /// [`Swarm::run_seed_loops`], with each loop's readable trace when `tracing`.
    fn execute_loops<H, M>(
        &self,
        seed: u64,
        loops: usize,
        tracing: bool,
    ) -> (Result<LoopsOutcome, Failure>, Vec<Vec<String>>)
    where
        H: Events,
        M: Model,
        F: Fn(usize) -> Vec<(H, M)>,
    {
        let config = self.config(seed);
        let script = self.script(seed, &config);
        let mut at_step = 0;
        let mut traces = Vec::new();
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut sim = LoopsSim::with_config((self.make)(loops), seed, config)?;
            sim.set_tracing(tracing);
            let mut run = Ok(());
            for event in &script {
                run = sim.step(event);
                if run.is_err() {
                    break;
                }
                at_step += 1;
            }
            let result = run.and_then(|()| sim.finish());
            traces = sim.loops().iter().map(|l| l.trace().to_vec()).collect();
            result
        }))
        .unwrap_or_else(|panic| Err(Violation::Panic(panic_message(&*panic))));
        let result = result.map_err(|violation| Failure {
            seed,
            steps: script.len(),
            at_step,
            violation,
            test: test_name(),
            origin: Box::new(self.origin()),
        });
        (result, traces)
    }

    /// Runs every seed (or, with `EVIO_SIM_SEED` set, only that one, printing the end of
    /// each loop's trace to stderr on failure) on a server of `loops` loops, with a fresh handler and model per loop from `make(loops)`
    /// (models of state shared between loops share it through a handle of their own),
    /// and combines the results in seed order. Each loop's outcome counts in the
    /// report as a run of its own would, but for `seeds`.
    pub fn run_loops<H, M>(&self, loops: usize) -> SwarmReport
    where
        H: Events,
        M: Model,
        F: Fn(usize) -> Vec<(H, M)> + Sync,
    {
        let start = std::time::Instant::now();
        let seeds = match self.replay_from_env() {
            Some((seed, one)) => {
                // A replay: on failure, the end of each loop's trace.
                if let (Err(failure), traces) = one.execute_loops(seed, loops, true) {
                    eprintln!("EVIO_SIM_SEED={seed}: {failure}");
                    for (l, trace) in traces.iter().enumerate() {
                        eprintln!("loop {l}: trace (last 40 lines):");
                        for line in &trace[trace.len().saturating_sub(40)..] {
                            eprintln!("{line}");
                        }
                    }
                }
                seed..seed + 1
            }
            None => self.seeds.clone(),
        };
        let results = self.sweep(seeds, |seed| self.run_seed_loops(seed, loops));
        let mut report = SwarmReport::default();
        let mut hash = TraceHash::default();
        for (_, result) in results {
            match result {
                Ok(outcome) => {
                    for o in &outcome.loops {
                        report.count(o);
                    }
                    report.posts += outcome.posts;
                    hash.word(outcome.trace_hash);
                }
                Err(failure) => report.fail(failure),
            }
            report.seeds += 1;
        }
        report.combined_hash = hash.value();
        report.elapsed = start.elapsed();
        report
    }
}
