//! The ticker's schedule: when the handler's `tick` fires next.

use core::time::Duration;

use crate::Instant;

/// When the tick after one that was due at `scheduled` (and ran at `now`) is due, given
/// the handler's `delay`: `scheduled + delay`, so the schedule does not drift with how
/// late each tick ran; `delay` is raised to `min_tick`, so a zero delay never spins;
/// and if the loop fell so far behind that this is already past, `now + delay`, so
/// the missed ticks are skipped instead of fired in a burst that would starve I/O.
pub(crate) fn next_tick(
    scheduled: Instant,
    now: Instant,
    delay: Duration,
    min_tick: Duration,
) -> Instant {
    let delay = delay.max(min_tick);
    let next = scheduled + delay;
    if next <= now { now + delay } else { next }
}

/// The ticker: the next tick's due time, if it runs.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Ticker {
    next: Option<Instant>,
}

impl Ticker {
    /// When the next tick is due.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.next
    }

    /// If a tick is due at `now`, takes it and returns the time it was due.
    pub(crate) fn take_due(&mut self, now: Instant) -> Option<Instant> {
        let due = self.next.filter(|&t| t <= now)?;
        self.next = None;
        Some(due)
    }

    /// Stops the ticker (the server is shutting down).
    pub(crate) fn stop(&mut self) {
        self.next = None;
    }

    /// After the tick due at `scheduled` ran at `now` and asked for `delay` (`None`
    /// stops the ticker).
    pub(crate) fn schedule(
        &mut self,
        scheduled: Instant,
        now: Instant,
        delay: Option<Duration>,
        min_tick: Duration,
    ) {
        self.next = delay.map(|d| next_tick(scheduled, now, d, min_tick));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn the_next_tick_is_due_a_delay_after_the_last_was_due_not_after_it_ran() {
        assert_eq!(next_tick(at(10), at(10), 10 * MS, MS), at(20));
        assert_eq!(next_tick(at(10), at(17), 10 * MS, MS), at(20), "no drift");
        assert_eq!(next_tick(at(10), at(19), 10 * MS, MS), at(20));
    }

    #[test]
    fn a_loop_that_fell_a_period_behind_skips_the_missed_ticks() {
        assert_eq!(
            next_tick(at(10), at(20), 10 * MS, MS),
            at(30),
            "exactly a period"
        );
        assert_eq!(next_tick(at(10), at(95), 10 * MS, MS), at(105), "no burst");
    }

    #[test]
    fn a_delay_below_the_minimum_is_raised_to_it() {
        assert_eq!(next_tick(at(10), at(10), Duration::ZERO, MS), at(11));
        assert_eq!(next_tick(at(10), at(10), 1 * MS / 2, MS), at(11));
        assert_eq!(next_tick(at(10), at(10), Duration::ZERO, 5 * MS), at(15));
    }

    #[test]
    fn a_tick_is_taken_once_and_only_when_due() {
        let mut t = Ticker::default();
        assert_eq!(t.take_due(at(100)), None, "not running");
        t.schedule(at(0), at(0), Some(10 * MS), MS);
        assert_eq!(t.deadline(), Some(at(10)));
        assert_eq!(t.take_due(at(9)), None, "early");
        assert_eq!(t.take_due(at(12)), Some(at(10)));
        assert_eq!(t.take_due(at(12)), None, "once");
        t.schedule(at(10), at(12), None, MS);
        assert_eq!(t.deadline(), None, "stopped");
    }
}
