//! The faults the simulator injects, their rates (drawn from the seed) and counters.

use core::fmt;
use core::ops::{AddAssign, Index};

use crate::Rng;

/// One kind of fault or hard case the simulator produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// A read returned fewer bytes than were waiting.
    ShortRead,
    /// A write took fewer bytes than it was given although the window had room.
    ShortWrite,
    /// A read found EAGAIN although the poller had just said readable.
    ReadAgain,
    /// A write found EAGAIN although the poller had just said writable.
    WriteAgain,
    /// The poller reported a connection readable with nothing to read.
    SpuriousReadiness,
    /// The end of stream arrived right behind the last data, in the same readiness.
    EofWithLastData,
    /// A connection was reset while data was in flight.
    ResetMidStream,
    /// A write failed with EPIPE because the peer had closed.
    BrokenPipe,
    /// `accept` failed with EMFILE.
    AcceptExhausted,
    /// `accept` failed with ECONNABORTED.
    AcceptAborted,
    /// A connection arrived while every slot was in use.
    PoolFull,
    /// Another thread woke a connection between an output and its report, or a wake's
    /// notification reached the loop a poller round late.
    WakeRace,
    /// A deadline (tick or listener back-off) fell due between two events, or the
    /// loop's timer woke just short of it.
    TickBetweenEvents,
    /// Readiness was still queued for a connection the engine had detached or closed.
    DetachWithReadinessQueued,
    /// The handler asked for a shutdown while it had output pending.
    ShutdownWithOutputPending,
    /// The handler asked to close (or detach) while it had output pending.
    CloseWithOutputPending,
}

impl FaultKind {
    /// Every kind, in a fixed order.
    pub const ALL: [FaultKind; 16] = [
        FaultKind::ShortRead,
        FaultKind::ShortWrite,
        FaultKind::ReadAgain,
        FaultKind::WriteAgain,
        FaultKind::SpuriousReadiness,
        FaultKind::EofWithLastData,
        FaultKind::ResetMidStream,
        FaultKind::BrokenPipe,
        FaultKind::AcceptExhausted,
        FaultKind::AcceptAborted,
        FaultKind::PoolFull,
        FaultKind::WakeRace,
        FaultKind::TickBetweenEvents,
        FaultKind::DetachWithReadinessQueued,
        FaultKind::ShutdownWithOutputPending,
        FaultKind::CloseWithOutputPending,
    ];

    /// A short stable name (for summaries).
    pub const fn name(self) -> &'static str {
        match self {
            FaultKind::ShortRead => "short-read",
            FaultKind::ShortWrite => "short-write",
            FaultKind::ReadAgain => "eagain-after-readable",
            FaultKind::WriteAgain => "eagain-after-writable",
            FaultKind::SpuriousReadiness => "spurious-readiness",
            FaultKind::EofWithLastData => "eof-with-last-data",
            FaultKind::ResetMidStream => "reset-mid-stream",
            FaultKind::BrokenPipe => "epipe",
            FaultKind::AcceptExhausted => "accept-emfile",
            FaultKind::AcceptAborted => "accept-econnaborted",
            FaultKind::PoolFull => "pool-full",
            FaultKind::WakeRace => "wake-race",
            FaultKind::TickBetweenEvents => "deadline-between-events",
            FaultKind::DetachWithReadinessQueued => "readiness-after-detach-or-close",
            FaultKind::ShutdownWithOutputPending => "shutdown-with-output-pending",
            FaultKind::CloseWithOutputPending => "close-with-output-pending",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How often each injected fault happens, in chances per million at each opportunity.
///
/// Kinds that come from the script rather than from the driver (resets, EPIPE after a
/// client's close, a full pool) are not driven by their rate here (it is drawn, and
/// unused): the script's event mix decides them. The rate of
/// [`FaultKind::DetachWithReadinessQueued`] is how often a connection's handler is
/// made to return `Detach`, which is what leaves readiness queued for it; the rate of
/// [`FaultKind::EofWithLastData`] is how often a received FIN is also reported as a
/// hang-up (kqueue's EV_EOF).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRates {
    rates: [u32; 16],
}

impl FaultRates {
    /// No faults at all.
    pub const fn none() -> Self {
        FaultRates { rates: [0; 16] }
    }

    /// Rates drawn from `rng`: about one run in five is clean, the rest mix light and
    /// heavy rates per kind.
    pub fn random(rng: &mut Rng) -> Self {
        let mut rates = [0u32; 16];
        if rng.below(5) == 0 {
            return FaultRates { rates };
        }
        for r in &mut rates {
            *r = [0, 2_000, 20_000, 100_000, 300_000][rng.below(5) as usize];
        }
        // A shutdown ends the run's interesting part, so keep it rare.
        rates[FaultKind::ShutdownWithOutputPending.index()] /= 50;
        rates[FaultKind::CloseWithOutputPending.index()] /= 4;
        rates[FaultKind::DetachWithReadinessQueued.index()] /= 4;
        FaultRates { rates }
    }

    /// The rate of `kind`, per million.
    pub fn get(&self, kind: FaultKind) -> u32 {
        self.rates[kind.index()]
    }

    /// Sets the rate of `kind`, per million.
    pub fn set(&mut self, kind: FaultKind, per_million: u32) {
        self.rates[kind.index()] = per_million;
    }
}

/// How many times each fault kind actually fired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    counts: [u64; 16],
}

impl FaultCounts {
    /// Counts one firing of `kind`.
    pub fn record(&mut self, kind: FaultKind) {
        self.counts[kind.index()] += 1;
    }

    /// `(kind, count)` for every kind, in [`FaultKind::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (FaultKind, u64)> + '_ {
        FaultKind::ALL.iter().map(|&k| (k, self.counts[k.index()]))
    }

    /// The kinds that never fired.
    pub fn missing(&self) -> Vec<FaultKind> {
        self.iter()
            .filter(|&(_, n)| n == 0)
            .map(|(k, _)| k)
            .collect()
    }
}

impl Index<FaultKind> for FaultCounts {
    type Output = u64;
    fn index(&self, kind: FaultKind) -> &u64 {
        &self.counts[kind.index()]
    }
}

impl AddAssign<&FaultCounts> for FaultCounts {
    fn add_assign(&mut self, other: &FaultCounts) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
    }
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (kind, n)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "  {:<34} {n}", kind.name())?;
        }
        Ok(())
    }
}
