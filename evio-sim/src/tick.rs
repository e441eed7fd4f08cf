//! The tick oracle: the ticker's contract (evio-proto's `Events::tick`, DESIGN.md §5),
//! checked from what the simulator observes (when each tick ran, the delay it returned,
//! and the deadline the engine advertised through `Engine::poll_timeout`) without
//! computing the engine's schedule itself.
//!
//! The contract bounds each next deadline from the one before; the engine's own
//! deadline must fall within those bounds, and a tick must not fire before it:
//!
//! - the first tick fires right after `serving`, at the start time;
//! - a delay shorter than `Config::min_tick` (zero included) counts as `min_tick`: the
//!   *period*;
//! - on time (the previous deadline plus the period is still ahead), the next deadline
//!   is exactly the previous deadline plus the period: no drift;
//! - behind by more than a period, one tick fires and the next deadline is after now and
//!   at most a period ahead: no burst of missed ticks;
//! - a tick never fires before its deadline, and only once for it (a second tick needs
//!   a new deadline advertised in between); none fires after the ticker stopped;
//! - a tick due by the contract is among the engine's deadlines (or a real driver would
//!   sleep through it), and has fired once the loop ran at or past it.
//!
//! `Engine::poll_timeout` is the earliest of the tick's deadline and the listeners'
//! back-offs, so the oracle takes it as the tick's own deadline only when no back-off
//! can be pending; otherwise it is only a bound. When the previous deadline was never
//! seen exactly, the bounds on the next one are the union over every deadline the
//! previous could have had.

use evio_proto::{Duration, Instant, Tick};

use crate::{Rule, Violation};

/// What the contract and the engine's advertisements say of the next tick.
#[derive(Clone, Copy, Debug)]
struct NextTick {
    /// The earliest deadline the contract allows, inclusive.
    earliest: Instant,
    /// The latest deadline the contract allows, inclusive: the tick is due by then.
    latest: Instant,
    /// The loop was on time for every deadline the tick could have been for, so the
    /// bounds come from the no-drift rule rather than the no-burst one.
    on_time: bool,
    /// When the tick that set them ran.
    ran_at: Instant,
    /// The deadline that tick was for, as far as it was known (inclusive bounds).
    scheduled: (Instant, Instant),
    /// The delay that tick returned.
    delay: Duration,
    /// The delay raised to `min_tick`.
    period: Duration,
    /// The deadline the engine advertised, seen when no other deadline could hide it.
    advertised: Option<Instant>,
    /// The engine has advertised a deadline since the tick that set these bounds.
    advertised_since: bool,
}

impl NextTick {
    /// The rule a deadline at `at` outside the bounds breaks: when the delay was
    /// shorter than `min_tick` and `at` fits the schedule of the delay as returned, the
    /// delay was not raised; otherwise the schedule drifted (on time) or burst (behind).
    fn rule(&self, at: Instant, min_tick: Duration) -> Rule {
        let (lo, hi) = self.scheduled;
        let unraised = Bounds::after(lo, hi, self.ran_at, self.delay);
        if self.delay < min_tick && unraised.earliest <= at && at <= unraised.latest {
            Rule::TickMinDelay
        } else if self.on_time {
            Rule::TickNoDrift
        } else {
            Rule::TickNoBurst
        }
    }

    /// How the bounds were derived, for messages.
    fn basis(&self) -> String {
        let (lo, hi) = self.scheduled;
        let scheduled = if lo == hi {
            format!("{lo}")
        } else {
            format!("between {lo} and {hi}")
        };
        format!(
            "the tick at {} for the deadline {scheduled} returned {:?} (period {:?})",
            self.ran_at, self.delay, self.period
        )
    }

    /// The bounds, for messages.
    fn window(&self) -> String {
        if self.earliest == self.latest {
            format!("at {}", self.earliest)
        } else {
            format!("between {} and {}", self.earliest, self.latest)
        }
    }
}

/// The contract's bounds on a next deadline.
#[derive(Clone, Copy, Debug)]
struct Bounds {
    earliest: Instant,
    latest: Instant,
    on_time: bool,
}

impl Bounds {
    /// The bounds on the deadline after a tick that ran at `now` for a deadline between
    /// `lo` and `hi`, with `period` to the next: the deadline plus the period when that
    /// is still ahead for every deadline the tick could have been for (no drift),
    /// otherwise after now and at most a period ahead (no burst; this also covers the
    /// on-time deadlines of the range, all of which are in it).
    fn after(lo: Instant, hi: Instant, now: Instant, period: Duration) -> Self {
        if lo + period > now {
            return Bounds {
                earliest: lo + period,
                latest: hi + period,
                on_time: true,
            };
        }
        // A zero period, which only a zero `min_tick` allows, makes "after now" now
        // itself.
        let after_now = if period.is_zero() {
            now
        } else {
            now + Duration::from_nanos(1)
        };
        Bounds {
            earliest: after_now,
            latest: now + period,
            on_time: false,
        }
    }
}

/// The ticker's contract for one run.
#[derive(Clone, Debug)]
pub(crate) struct TickOracle {
    min_tick: Duration,
    /// The first tick has fired.
    started: bool,
    /// The next tick; `None` before the first and after the ticker stopped.
    next: Option<NextTick>,
}

impl TickOracle {
    /// The contract for an engine whose shortest tick delay is `min_tick`.
    pub fn new(min_tick: Duration) -> Self {
        TickOracle {
            min_tick,
            started: false,
            next: None,
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
        // The deadline this tick was for, as far as it is known.
        let (lo, hi) = match self.next.take() {
            None if self.started => {
                return Err(violation(
                    Rule::TickAfterStop,
                    format!("tick at {now} after a tick returned no delay"),
                ));
            }
            // The first tick: right after `serving`, at the start.
            None => (now, now),
            Some(next) => {
                if !next.advertised_since {
                    return Err(violation(
                        Rule::TickTwice,
                        format!(
                            "a second tick at {now} after {}, with no new deadline advertised \
                             in between",
                            next.basis()
                        ),
                    ));
                }
                if let Some(advertised) = next.advertised
                    && now < advertised
                {
                    return Err(violation(
                        Rule::TickEarly,
                        format!(
                            "tick at {now}, before the deadline {advertised} the engine \
                             advertised for it"
                        ),
                    ));
                }
                if now < next.earliest {
                    return Err(violation(
                        Rule::TickEarly,
                        format!(
                            "tick at {now}, before {}, the earliest deadline the contract \
                             allows after {}",
                            next.earliest,
                            next.basis()
                        ),
                    ));
                }
                match next.advertised {
                    Some(at) => (at, at),
                    None => (next.earliest, next.latest.min(now)),
                }
            }
        };
        self.started = true;
        let Some(delay) = tick.delay else {
            return Ok(()); // the ticker stopped
        };
        let period = delay.max(self.min_tick);
        let Bounds {
            earliest,
            latest,
            on_time,
        } = Bounds::after(lo, hi, now, period);
        self.next = Some(NextTick {
            earliest,
            latest,
            on_time,
            ran_at: now,
            scheduled: (lo, hi),
            delay,
            period,
            advertised: None,
            advertised_since: false,
        });
        Ok(())
    }

    /// The engine's earliest deadline is `deadline` (`Engine::poll_timeout`); `exact`
    /// when no listener back-off can be pending, so that it is the tick's own.
    pub fn advertised(&mut self, deadline: Option<Instant>, exact: bool) -> Result<(), Violation> {
        let min_tick = self.min_tick;
        let (Some(next), Some(at)) = (&mut self.next, deadline) else {
            // No deadline while a tick is pending: `check_due` names it.
            return Ok(());
        };
        next.advertised_since = true;
        if !exact {
            return Ok(());
        }
        if let Some(before) = next.advertised {
            if at != before {
                return Err(violation(
                    next.rule(at, min_tick),
                    format!(
                        "the engine moved the next tick's deadline from {before} to {at} \
                         without a tick"
                    ),
                ));
            }
            return Ok(());
        }
        if at < next.earliest || at > next.latest {
            return Err(violation(
                next.rule(at, min_tick),
                format!(
                    "the engine's next tick deadline is {at}, but after {} the contract puts \
                     it {}",
                    next.basis(),
                    next.window()
                ),
            ));
        }
        next.advertised = Some(at);
        next.earliest = at;
        next.latest = at;
        Ok(())
    }

    /// At the end of a step whose loop ran at `clock`, the engine's earliest deadline
    /// being `deadline`: a tick due by the contract is among the engine's deadlines, and
    /// has fired once the loop ran at or past it.
    pub fn check_due(&self, deadline: Option<Instant>, clock: Instant) -> Result<(), Violation> {
        let Some(next) = &self.next else {
            return Ok(());
        };
        let due = next.latest;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::from_nanos(n * 1_000_000)
    }

    fn every(n: u64) -> Tick {
        Tick::after(Duration::from_millis(n))
    }

    /// A ticker started at 0 with period `n` ms, its first deadline advertised.
    fn started(n: u64) -> TickOracle {
        let mut t = TickOracle::new(Duration::from_millis(1));
        t.fired(ms(0), ms(0), every(n)).unwrap();
        t.advertised(Some(ms(n)), true).unwrap();
        t
    }

    fn rule(r: Result<(), Violation>) -> Option<Rule> {
        r.err().and_then(|v| v.rule())
    }

    #[test]
    fn on_time_the_next_deadline_is_the_previous_plus_the_delay() {
        let mut t = started(7);
        // The loop ran late, but within a period: the next deadline stays on the grid.
        t.fired(ms(12), ms(12), every(7)).unwrap();
        assert_eq!(rule(t.clone().advertised(Some(ms(14)), true)), None);
        // Scheduled from when the tick ran instead: drift.
        assert_eq!(
            rule(t.advertised(Some(ms(19)), true)),
            Some(Rule::TickNoDrift)
        );
    }

    #[test]
    fn behind_by_more_than_a_period_the_next_deadline_is_within_a_period_of_now() {
        let mut t = started(7);
        t.fired(ms(30), ms(30), every(7)).unwrap();
        for ok in [ms(30) + Duration::from_nanos(1), ms(35), ms(37)] {
            assert_eq!(rule(t.clone().advertised(Some(ok), true)), None, "{ok}");
        }
        // The missed deadlines (14, 21, 28) would fire in a burst.
        assert_eq!(
            rule(t.clone().advertised(Some(ms(14)), true)),
            Some(Rule::TickNoBurst)
        );
        assert_eq!(
            rule(t.advertised(Some(ms(38)), true)),
            Some(Rule::TickNoBurst)
        );
    }

    #[test]
    fn a_short_delay_is_raised_to_min_tick() {
        let mut t = TickOracle::new(Duration::from_millis(1));
        t.fired(ms(0), ms(0), every(0)).unwrap();
        assert_eq!(
            rule(t.clone().advertised(Some(ms(0)), true)),
            Some(Rule::TickMinDelay)
        );
        assert_eq!(rule(t.advertised(Some(ms(1)), true)), None);
    }

    #[test]
    fn after_a_short_delay_a_burst_is_told_from_an_unraised_delay() {
        let mut t = TickOracle::new(Duration::from_millis(1));
        t.fired(ms(0), ms(0), every(0)).unwrap();
        t.advertised(Some(ms(1)), true).unwrap();
        t.fired(ms(5), ms(5), every(0)).unwrap();
        // Raised, but the missed deadlines kept: a burst.
        assert_eq!(
            rule(t.clone().advertised(Some(ms(2)), true)),
            Some(Rule::TickNoBurst)
        );
        // Skipped, but not raised: the next tick would fire at once, again and again.
        assert_eq!(
            rule(t.clone().advertised(Some(ms(5)), true)),
            Some(Rule::TickMinDelay)
        );
        assert_eq!(rule(t.advertised(Some(ms(6)), true)), None);
    }

    #[test]
    fn a_tick_before_its_advertised_deadline_is_early() {
        let mut t = started(7);
        assert_eq!(rule(t.fired(ms(6), ms(6), every(7))), Some(Rule::TickEarly));
    }

    #[test]
    fn two_ticks_without_a_new_deadline_are_one_too_many() {
        let mut t = started(7);
        t.fired(ms(30), ms(30), every(7)).unwrap();
        assert_eq!(
            rule(t.fired(ms(30), ms(30), every(7))),
            Some(Rule::TickTwice)
        );
    }

    #[test]
    fn no_tick_after_the_ticker_stopped() {
        let mut t = started(7);
        t.fired(ms(7), ms(7), Tick::stop()).unwrap();
        t.check_due(None, ms(100)).unwrap();
        assert_eq!(
            rule(t.fired(ms(8), ms(8), every(7))),
            Some(Rule::TickAfterStop)
        );
    }

    #[test]
    fn a_due_tick_is_among_the_deadlines_and_fires() {
        let t = started(7);
        t.check_due(Some(ms(7)), ms(6)).unwrap();
        // A back-off earlier than the tick hides it, legitimately.
        t.check_due(Some(ms(3)), ms(2)).unwrap();
        assert_eq!(rule(t.check_due(None, ms(6))), Some(Rule::TickScheduled));
        assert_eq!(
            rule(t.check_due(Some(ms(8)), ms(6))),
            Some(Rule::TickScheduled)
        );
        assert_eq!(rule(t.check_due(Some(ms(7)), ms(7))), Some(Rule::TickFired));
    }

    #[test]
    fn an_inexact_deadline_bounds_the_next_by_every_deadline_it_could_have_had() {
        let mut t = TickOracle::new(Duration::from_millis(1));
        t.fired(ms(0), ms(0), every(7)).unwrap();
        // A back-off may hide the tick's deadline: nothing learnt but that one exists.
        t.advertised(Some(ms(3)), false).unwrap();
        t.fired(ms(7), ms(7), every(7)).unwrap();
        assert_eq!(rule(t.clone().advertised(Some(ms(14)), true)), None);
        assert_eq!(
            rule(t.advertised(Some(ms(15)), true)),
            Some(Rule::TickNoDrift)
        );
    }
}
