//! Wake coalescing under load: whether the loop naps before its next wait.
//!
//! A loop that blocks in its poller is woken by the first socket that turns ready, and
//! whoever makes it ready pays for the wake-up: on loopback, the client's own `send`
//! (an interrupt to the loop's CPU, which costs several microseconds under
//! virtualisation). Under load that is paid about once per batch, by the clients.
//!
//! With [`Config::coalesce`](crate::Config::coalesce) set, the engine asks the driver
//! to nap (sleep on a timer, not watching the sockets, then poll without blocking)
//! when the last wait found connections ready *and* the senders are many: the
//! connections it found were fewer than a quarter of those active in the last
//! millisecond. What arrives during the nap is then taken in one batch, and nobody
//! pays to wake the loop. The rule keeps naps away from the case they would hurt: a
//! few clients each waiting on its reply, which a nap would only delay. A nap that
//! finds nothing ends the napping, and the loop blocks again.
//!
//! A nap lasts as long as a quarter of the active connections take to turn ready at
//! the last millisecond's rate of reports, and no longer than the configured nap: so
//! whatever the load, a nap holds back at most about a quarter of the senders.

use core::time::Duration;

use crate::Instant;

/// The span over which connections count as active.
const WINDOW: Duration = Duration::from_millis(1);

/// The next wait naps only if the last one found at most `1 / SHARE` of the
/// connections active in the last window.
const SHARE: u32 = 4;

/// The state behind the nap rule (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Coalescer {
    /// The nap; `None`: coalescing is off and nothing is counted.
    nap: Option<Duration>,
    /// The current window's number. It starts at 1, so a fresh slot's stamp (0) never
    /// matches it.
    window: u32,
    /// When the current window began.
    window_start: Instant,
    /// Connections reported ready in the current window, each counted once.
    active: u32,
    /// The same for the window before it (0 if that window saw no wait end).
    active_before: u32,
    /// Readiness reports in the current window.
    reports: u32,
    /// The same for the window before it.
    reports_before: u32,
    /// Readiness reports since the last wait ended.
    ready: u32,
}

impl Coalescer {
    /// A coalescer that naps `nap` when the rule holds (`None`: never).
    pub(crate) const fn new(nap: Option<Duration>) -> Self {
        Coalescer {
            nap,
            window: 1,
            window_start: Instant::ZERO,
            active: 0,
            active_before: 0,
            reports: 0,
            reports_before: 0,
            ready: 0,
        }
    }

    /// A wait ended at `now`: the reports that follow are what it found.
    pub(crate) fn wait_ended(&mut self, now: Instant) {
        if self.nap.is_none() {
            return;
        }
        self.ready = 0;
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= WINDOW {
            // After a quiet spell of a whole window or more, nothing was active in the
            // window just before `now`.
            let recent = elapsed < 2 * WINDOW;
            self.active_before = if recent { self.active } else { 0 };
            self.reports_before = if recent { self.reports } else { 0 };
            self.active = 0;
            self.reports = 0;
            self.window = self.window.wrapping_add(1).max(1);
            self.window_start = now;
        }
    }

    /// The wait found the connection whose slot holds `stamp` ready.
    #[inline]
    pub(crate) fn conn_ready(&mut self, stamp: &mut u32) {
        if self.nap.is_none() {
            return;
        }
        self.ready = self.ready.saturating_add(1);
        self.reports = self.reports.saturating_add(1);
        if *stamp != self.window {
            *stamp = self.window;
            self.active = self.active.saturating_add(1);
        }
    }

    /// How long to nap before the next wait, if the rule holds: long enough for a
    /// `1 / SHARE` share of the active connections to turn ready at the last window's
    /// rate, and no longer than the configured nap.
    pub(crate) fn nap(&self) -> Option<Duration> {
        let longest = self.nap?;
        let many = self.ready > 0 && self.ready.saturating_mul(SHARE) < self.active_before;
        if !many {
            return None;
        }
        // `reports_before >= active_before > 0` here: every active connection was
        // reported at least once.
        let window = WINDOW.as_nanos() as u64;
        let share = u64::from(self.active_before) * window
            / (u64::from(SHARE) * u64::from(self.reports_before.max(1)));
        Some(longest.min(Duration::from_nanos(share)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAP: Duration = Duration::from_micros(30);

    fn at_micros(us: u64) -> Instant {
        Instant::from_nanos(us * 1_000)
    }

    /// One wait ending at `us` that finds the connections `conns` (indices into
    /// `stamps`) ready.
    fn wait(c: &mut Coalescer, stamps: &mut [u32], us: u64, conns: &[usize]) {
        c.wait_ended(at_micros(us));
        for &i in conns {
            c.conn_ready(&mut stamps[i]);
        }
    }

    /// Fifty connections, each active once in the first millisecond, make a later wait
    /// that finds a few of them nap.
    fn busy_with_fifty() -> (Coalescer, [u32; 50]) {
        let mut c = Coalescer::new(Some(NAP));
        let mut stamps = [0u32; 50];
        for i in 0..50 {
            wait(&mut c, &mut stamps, 10 + 10 * i as u64, &[i]);
        }
        (c, stamps)
    }

    #[test]
    fn off_never_naps_and_counts_nothing() {
        let mut c = Coalescer::new(None);
        let mut stamps = [0u32; 50];
        for i in 0..50 {
            wait(&mut c, &mut stamps, 10 + 10 * i as u64, &[i]);
        }
        wait(&mut c, &mut stamps, 1_100, &[0]);
        assert_eq!(c.nap(), None);
        assert_eq!(
            stamps, [0; 50],
            "no slot is stamped while coalescing is off"
        );
    }

    #[test]
    fn many_senders_and_a_few_ready_nap() {
        let (mut c, mut stamps) = busy_with_fifty();
        // The first window closes at 1.1 ms with 50 active.
        wait(&mut c, &mut stamps, 1_100, &[3, 4, 5]);
        assert_eq!(c.nap(), Some(NAP));
        // Under a quarter of fifty naps; a quarter or more does not.
        let twelve: [usize; 12] = core::array::from_fn(|i| i);
        wait(&mut c, &mut stamps, 1_200, &twelve);
        assert_eq!(c.nap(), Some(NAP));
        let thirteen: [usize; 13] = core::array::from_fn(|i| i);
        wait(&mut c, &mut stamps, 1_300, &thirteen);
        assert_eq!(c.nap(), None);
    }

    #[test]
    fn the_nap_lasts_as_long_as_a_quarter_of_the_senders_take() {
        // Fifty connections reported 100 times in the first window: one report every
        // 10 µs, so a quarter of them (12.5) take 125 µs to turn ready.
        let mut c = Coalescer::new(Some(Duration::from_millis(1)));
        let mut stamps = [0u32; 50];
        for i in 0..50 {
            wait(&mut c, &mut stamps, 10 * i as u64, &[i, (i + 1) % 50]);
        }
        wait(&mut c, &mut stamps, 1_000, &[0]);
        assert_eq!((c.active_before, c.reports_before), (50, 100));
        assert_eq!(c.nap(), Some(Duration::from_micros(125)));
        // A shorter configured nap caps it.
        c.nap = Some(NAP);
        assert_eq!(c.nap(), Some(NAP));
    }

    #[test]
    fn a_wait_that_found_nothing_ends_the_napping() {
        let (mut c, mut stamps) = busy_with_fifty();
        wait(&mut c, &mut stamps, 1_100, &[1]);
        assert_eq!(c.nap(), Some(NAP));
        wait(&mut c, &mut stamps, 1_130, &[]);
        assert_eq!(c.nap(), None);
    }

    #[test]
    fn few_senders_never_nap() {
        // Four clients, each waiting on its reply: the waits find one, two or all of
        // them, and one of four is already a quarter.
        let mut c = Coalescer::new(Some(NAP));
        let mut stamps = [0u32; 4];
        let mut naps = 0;
        for round in 0..200u64 {
            wait(&mut c, &mut stamps, 30 * round, &[0]);
            naps += usize::from(c.nap().is_some());
            wait(&mut c, &mut stamps, 30 * round + 10, &[1, 2]);
            naps += usize::from(c.nap().is_some());
            wait(&mut c, &mut stamps, 30 * round + 20, &[3]);
            naps += usize::from(c.nap().is_some());
        }
        assert_eq!(c.active_before, 4, "the windows saw all four");
        assert_eq!(naps, 0);
        // One client alone, however fast.
        let mut c = Coalescer::new(Some(NAP));
        let mut stamp = [0u32; 1];
        for round in 0..500u64 {
            wait(&mut c, &mut stamp, 5 * round, &[0]);
            assert_eq!(c.nap(), None);
        }
    }

    #[test]
    fn connections_count_once_per_window() {
        let mut c = Coalescer::new(Some(NAP));
        let mut stamps = [0u32; 2];
        // Two connections reported a hundred times in the first window count as two.
        for i in 0..100u64 {
            wait(&mut c, &mut stamps, 5 * i, &[0, 1]);
        }
        wait(&mut c, &mut stamps, 1_000, &[0]);
        assert_eq!(c.active_before, 2);
        assert_eq!(c.nap(), None, "one of two is more than a quarter");
    }

    #[test]
    fn a_quiet_spell_forgets_the_busy_window() {
        let (mut c, mut stamps) = busy_with_fifty();
        // The next wait ends 5 ms later: the last millisecond saw nobody.
        wait(&mut c, &mut stamps, 5_500, &[7]);
        assert_eq!(c.active_before, 0);
        assert_eq!(c.nap(), None);
    }

    #[test]
    fn the_window_number_skips_zero_when_it_wraps() {
        let mut c = Coalescer::new(Some(NAP));
        c.window = u32::MAX;
        c.wait_ended(at_micros(2_000));
        assert_eq!(
            c.window, 1,
            "a fresh slot's stamp of 0 must never match a window"
        );
    }
}
