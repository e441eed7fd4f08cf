//! The shrinker: reduces a failing script to a small one that fails the same way.

use core::fmt;

use crate::{
    Events, Failure, FaultRates, Model, Rule, ScriptedEvent, SimConfig, Violation, format_script,
    resolve_clients, run, without_client,
};

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
