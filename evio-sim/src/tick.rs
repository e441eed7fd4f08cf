//! The tick oracle: the ticker's schedule, checked against the engine's deadlines.

use evio_proto::{Duration, Instant, Tick};

use crate::{Rule, Violation};

/// The ticker's schedule for one run.
#[derive(Clone, Debug)]
pub(crate) struct TickOracle {
    min_tick: Duration,
    /// When the next tick is due, by the handler's last returned delay.
    due: Option<Instant>,
}

impl TickOracle {
    /// The schedule for an engine whose shortest tick delay is `min_tick`.
    pub fn new(min_tick: Duration) -> Self {
        TickOracle {
            min_tick,
            due: None,
        }
    }

    /// A tick ran at `now` (the driver's time being `clock`) and returned `tick`.
    pub fn fired(&mut self, now: Instant, clock: Instant, tick: Tick) -> Result<(), Violation> {
        if now != clock {
            return Err(violation(
                Rule::TickTime,
                format!("tick given {now}, but the driver's time is {clock}"),
            ));
        }
        if let Some(due) = self.due
            && now < due
        {
            return Err(violation(
                Rule::TickEarly,
                format!("tick at {now}, due at {due}"),
            ));
        }
        // The engine's schedule: from the time it was due (no drift), at least
        // `min_tick` apart, skipping ticks missed by more than a period.
        let scheduled = self.due.unwrap_or(now);
        self.due = tick.delay.map(|d| {
            let d = d.max(self.min_tick);
            let next = scheduled + d;
            if next <= now { now + d } else { next }
        });
        Ok(())
    }

    /// At the end of a step whose loop ran at `clock`, the engine's earliest deadline
    /// being `deadline`: a tick the handler asked for must be among the engine's
    /// deadlines, or a real driver would sleep through it; and once the loop has run at
    /// or past it, it must have fired.
    pub fn check_due(&self, deadline: Option<Instant>, clock: Instant) -> Result<(), Violation> {
        let Some(due) = self.due else {
            return Ok(());
        };
        if deadline.is_none_or(|t| t > due) {
            return Err(violation(
                Rule::TickScheduled,
                format!("tick due at {due} but the engine's deadline is {deadline:?}"),
            ));
        }
        if due <= clock {
            return Err(violation(
                Rule::TickFired,
                format!("tick due at {due} has not fired; the loop ran at {clock}"),
            ));
        }
        Ok(())
    }
}

/// A breach of the ticker's contract (a rule about the server, not a connection).
fn violation(rule: Rule, detail: String) -> Violation {
    Violation::contract(None, rule, detail)
}
