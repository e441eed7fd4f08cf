//! What a run is made of besides its script (its configuration, drawn from the seed),
//! and what a run that passed did.

use evio_proto::{Config, Duration, Stats};

use crate::{Constraints, FaultCounts, FaultRates, Profile, Rng, ScriptedEvent, Workload};

/// Everything about a run that its seed decides, besides the script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// The engine's configuration (small capacities, so partial frames, full buffers
    /// and a full pool happen often).
    pub engine: Config,
    /// Number of listeners (1 to 3).
    pub listeners: u8,
    /// Bytes the server's receive buffer holds per connection (the client's sends wait
    /// beyond that).
    pub recv_window: usize,
    /// Bytes the server's send buffer holds per connection until the client reads.
    pub send_window: usize,
    /// Fault rates.
    pub rates: FaultRates,
    /// The event mix of the seed's script.
    pub profile: Profile,
    /// A ticker that outlives the handler's own: once the handler's `tick` returns no
    /// delay (as echo's does at once), the engine is told this delay instead, and the
    /// simulator answers the ticks that follow without calling the handler's `tick`
    /// again. So the tick schedule is exercised under every handler, and no handler
    /// sees a tick after stopping its ticker. `None`: the handler's schedule only.
    pub ticker: Option<Duration>,
}

impl SimConfig {
    /// The configuration the run with `seed` uses.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = Rng::derive(seed, 1);
        let pick =
            |rng: &mut Rng, choices: &[usize]| choices[rng.below(choices.len() as u64) as usize];
        let engine = Config {
            // 40 and 70 slots span two and three words of the waker's summary bitmap.
            max_connections: pick(&mut rng, &[1, 2, 3, 8, 8, 40, 70]),
            input_capacity: pick(&mut rng, &[1, 5, 16, 64, 512]),
            output_capacity: pick(&mut rng, &[1, 5, 16, 64, 512]),
            accept_batch: pick(&mut rng, &[1, 2, 64]) as u32,
            ..Config::new()
        };
        let listeners = rng.range(1, 3) as u8;
        let recv_window = pick(&mut rng, &[1, 7, 64, 4096]);
        let send_window = pick(&mut rng, &[1, 7, 64, 4096]);
        let rates = FaultRates::random(&mut rng);
        let profile = Profile::random(&mut rng, listeners);
        // Drawn last, so the draws before it stay as they were. A zero delay is raised
        // to the engine's `min_tick`.
        let ticker = [None, None, Some(0), Some(1), Some(7), Some(50)][rng.below(6) as usize]
            .map(Duration::from_millis);
        // After the ticker, for the same reason. Naps of 30 µs fall inside the
        // millisecond most scripted events share; naps of 3 ms outlast a tick's delay
        // and timeouts (the nap stops at the engine's deadline).
        let coalesce =
            [None, None, Some(30), Some(3_000)][rng.below(4) as usize].map(Duration::from_micros);
        // After the coalescing, for the same reason: a bound on a leaving connection's
        // send progress short enough that peers who stop reading meet it in a run, and
        // the default, and none.
        let send_timeout = [None, Some(20), Some(300), Some(5_000), Some(60_000)]
            [rng.below(5) as usize]
            .map(Duration::from_millis);
        let engine = Config {
            coalesce,
            send_timeout,
            ..engine
        };
        // The outbound connects' rates, after everything else for the same reason.
        let mut rates = rates;
        rates.draw_outbound(&mut rng);
        // Last, for the same reason: a turn's sends held until its reads are done and
        // handed over as one batch, in half the runs.
        let engine = Config {
            batch_sends: rng.below(2) == 0,
            ..engine
        };
        SimConfig {
            engine,
            listeners,
            recv_window,
            send_window,
            rates,
            profile,
            ticker,
        }
    }

    /// The configuration of `seed` with `constraints` applied, for a script of
    /// `steps` events (see [`Constraints::apply`]): every draw of the seed stays as it
    /// was, raised or cut only where a constraint says.
    pub fn constrained(seed: u64, steps: usize, constraints: &Constraints) -> Self {
        let mut config = Self::from_seed(seed);
        constraints.apply(&mut config, steps);
        config
    }

    /// The configuration of `seed` for a script of `steps` events with no fault
    /// injected: every rate zero (the driver's I/O results are honest and the
    /// handler's returns are its own), no client resets or closes outright, and a slot
    /// for every client the script connects (see [`Constraints::fault_free`]).
    ///
    /// For a first run of a new handler, or to tell a model's mistake from a fault's
    /// effect: `Sim::with_config(handler, model, seed, SimConfig::fault_free(seed,
    /// steps))`, or a [`Swarm`](crate::Swarm) with
    /// `.constraints(Constraints::fault_free())`.
    ///
    /// ```
    /// use evio_handlers::echo::Echo;
    /// use evio_sim::{EchoModel, FaultKind, FaultRates, SimConfig, run};
    ///
    /// let config = SimConfig::fault_free(3, 500);
    /// assert_eq!(config.rates, FaultRates::none());
    /// let script = config.script(3, 500);
    /// let outcome = run(Echo, EchoModel, 3, config, &script).unwrap();
    /// // Nothing injected; only a hard case that arises by itself may count (a client
    /// // half-closing right behind its last bytes).
    /// for (kind, n) in outcome.faults.iter() {
    ///     assert!(n == 0 || kind == FaultKind::EofWithLastData, "{kind} fired {n} times");
    /// }
    /// ```
    pub fn fault_free(seed: u64, steps: usize) -> Self {
        Self::constrained(seed, steps, &Constraints::fault_free())
    }

    /// The script of `steps` events the run with `seed` uses, with random payloads.
    pub fn script(&self, seed: u64, steps: usize) -> Vec<ScriptedEvent> {
        self.profile.script(&mut Rng::derive(seed, 2), steps)
    }

    /// The script of `steps` events the run with `seed` uses when its clients send
    /// `workload`'s messages (see [`Profile::script_with`]).
    pub fn script_with<W: Workload + ?Sized>(
        &self,
        seed: u64,
        steps: usize,
        workload: &mut W,
    ) -> Vec<ScriptedEvent> {
        self.profile
            .script_with(&mut Rng::derive(seed, 2), steps, workload)
    }
}

/// What a run that passed did, for summaries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Steps run, liveness phase included.
    pub steps: u64,
    /// The hash of the whole trace (events, outputs, handler callbacks): equal for two
    /// runs exactly when they did the same things in the same order.
    pub trace_hash: u64,
    /// How often each fault fired.
    pub faults: FaultCounts,
    /// The engine's counters at the end.
    pub stats: Stats,
    /// Clients that connected.
    pub clients: usize,
    /// Naps the engine asked for before a wait (with `Config::coalesce` set).
    pub naps: u64,
}
