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
    /// An outbound connect was refused (ECONNREFUSED): at once, or after a delay.
    ConnectRefused,
    /// An outbound connect was never answered: only the engine's timeout ends it.
    ConnectUnanswered,
    /// A backend reset its connection right after accepting it.
    ConnectReset,
    /// A backend accepted a connect only after a delay (virtual milliseconds), so the
    /// engine's timeout may come first.
    ConnectSlow,
}

impl FaultKind {
    /// Every kind, in a fixed order.
    pub const ALL: [FaultKind; 20] = [
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
        FaultKind::ConnectRefused,
        FaultKind::ConnectUnanswered,
        FaultKind::ConnectReset,
        FaultKind::ConnectSlow,
    ];

    /// The kinds that existed before outbound connections, in [`FaultKind::ALL`]
    /// order: their rates are what a seed draws first and what a [`FuzzCase`]'s bytes
    /// hold (so neither changed when the outbound kinds came).
    ///
    /// [`FuzzCase`]: crate::FuzzCase
    pub const ACCEPTED: [FaultKind; 16] = [
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

    /// The kinds of outbound connections (the simulated backends' connects): they
    /// fire only for a handler that connects out.
    pub const OUTBOUND: [FaultKind; 4] = [
        FaultKind::ConnectRefused,
        FaultKind::ConnectUnanswered,
        FaultKind::ConnectReset,
        FaultKind::ConnectSlow,
    ];

    /// Whether this is one of [`FaultKind::OUTBOUND`].
    pub const fn is_outbound(self) -> bool {
        matches!(
            self,
            FaultKind::ConnectRefused
                | FaultKind::ConnectUnanswered
                | FaultKind::ConnectReset
                | FaultKind::ConnectSlow
        )
    }

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
            FaultKind::ConnectRefused => "connect-refused",
            FaultKind::ConnectUnanswered => "connect-unanswered",
            FaultKind::ConnectReset => "connect-reset",
            FaultKind::ConnectSlow => "connect-slow",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl core::str::FromStr for FaultKind {
    type Err = ParseFaultError;

    /// Parses a kind's [`name`](FaultKind::name) (`short-read`, `wake-race`, …).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| ParseFaultError(s.to_string()))
    }
}

/// A fault name that is not one of [`FaultKind::name`]'s (nor `all` or `none`, for a
/// [`FaultSet`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseFaultError(pub String);

impl fmt::Display for ParseFaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown fault `{}` (one of: all, none", self.0)?;
        for kind in FaultKind::ALL {
            write!(f, ", {kind}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for ParseFaultError {}

/// A set of [`FaultKind`]s: which faults a run may inject (see
/// [`Constraints::faults`](crate::Constraints::faults)).
///
/// ```
/// use evio_sim::{FaultKind, FaultSet};
///
/// let set = FaultSet::NONE.with(FaultKind::ShortRead).with(FaultKind::ShortWrite);
/// assert!(set.contains(FaultKind::ShortRead) && !set.contains(FaultKind::WakeRace));
/// assert_eq!(set, "short-read,short-write".parse().unwrap());
/// assert_eq!(set.to_string(), "short-read,short-write");
/// assert_eq!(FaultSet::ALL.without(FaultKind::PoolFull).len(), FaultKind::ALL.len() - 1);
/// assert_eq!("none".parse::<FaultSet>().unwrap(), FaultSet::NONE);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaultSet(u32);

impl FaultSet {
    /// Every kind.
    pub const ALL: FaultSet = FaultSet((1 << FaultKind::ALL.len()) - 1);
    /// No kind.
    pub const NONE: FaultSet = FaultSet(0);

    /// The set of `kinds`.
    pub const fn of(kinds: &[FaultKind]) -> Self {
        let mut set = FaultSet::NONE;
        let mut i = 0;
        while i < kinds.len() {
            set = set.with(kinds[i]);
            i += 1;
        }
        set
    }

    /// This set with `kind` added.
    #[must_use]
    pub const fn with(self, kind: FaultKind) -> Self {
        FaultSet(self.0 | 1 << kind.index())
    }

    /// This set with `kind` removed.
    #[must_use]
    pub const fn without(self, kind: FaultKind) -> Self {
        FaultSet(self.0 & !(1 << kind.index()))
    }

    /// Whether `kind` is in the set.
    pub const fn contains(self, kind: FaultKind) -> bool {
        self.0 & 1 << kind.index() != 0
    }

    /// How many kinds the set holds.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set holds no kind.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in the set, in [`FaultKind::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = FaultKind> {
        FaultKind::ALL
            .into_iter()
            .filter(move |&k| self.contains(k))
    }
}

impl Default for FaultSet {
    /// Every kind: by default a run may inject anything its seed draws.
    fn default() -> Self {
        FaultSet::ALL
    }
}

impl fmt::Debug for FaultSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultSet({self})")
    }
}

/// `all`, `none`, or the kinds' names separated by commas.
impl fmt::Display for FaultSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == FaultSet::ALL {
            return f.write_str("all");
        }
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, kind) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(kind.name())?;
        }
        Ok(())
    }
}

/// Parses what [`Display`](fmt::Display) writes: `all`, `none`, or kind names
/// separated by commas (spaces around them allowed).
impl core::str::FromStr for FaultSet {
    type Err = ParseFaultError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "all" => return Ok(FaultSet::ALL),
            "none" | "" => return Ok(FaultSet::NONE),
            _ => {}
        }
        s.split(',')
            .map(|name| name.trim().parse::<FaultKind>())
            .try_fold(FaultSet::NONE, |set, kind| Ok(set.with(kind?)))
    }
}

/// How often each injected fault happens, in chances per million at each opportunity:
/// one named field per [`FaultKind`], so a regression script sets its rates by name.
///
/// ```
/// use evio_sim::{FaultKind, FaultRates};
///
/// let rates = FaultRates {
///     short_read: 100_000,
///     wake_race: 500_000,
///     ..FaultRates::none()
/// };
/// // The same rates, built by kind.
/// let by_kind = FaultRates::none()
///     .with(FaultKind::ShortRead, 100_000)
///     .with(FaultKind::WakeRace, 500_000);
/// assert_eq!(rates, by_kind);
/// assert_eq!(rates.get(FaultKind::WakeRace), 500_000);
/// ```
///
/// Kinds that come from the script rather than from the driver (resets, EPIPE after a
/// client's close, a full pool) are not driven by their rate here (it is drawn, and
/// unused): the script's event mix decides them. The rate of
/// [`FaultKind::DetachWithReadinessQueued`] is how often a connection's handler is
/// made to return `Detach`, which is what leaves readiness queued for it; the rate of
/// [`FaultKind::EofWithLastData`] is how often a received FIN is also reported as a
/// hang-up (kqueue's EV_EOF).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultRates {
    /// [`FaultKind::ShortRead`]: a read with more than one byte waiting returns fewer.
    pub short_read: u32,
    /// [`FaultKind::ShortWrite`]: a write of more than one byte, with room for more,
    /// takes fewer.
    pub short_write: u32,
    /// [`FaultKind::ReadAgain`]: a read finds EAGAIN although bytes are waiting.
    pub read_again: u32,
    /// [`FaultKind::WriteAgain`]: a write finds EAGAIN although the window has room.
    pub write_again: u32,
    /// [`FaultKind::SpuriousReadiness`]: a connection is reported readable (and,
    /// drawn separately, writable) when it is not.
    pub spurious_readiness: u32,
    /// [`FaultKind::EofWithLastData`]: a received FIN is also reported as a hang-up,
    /// with data still buffered before it (kqueue's EV_EOF).
    pub eof_with_last_data: u32,
    /// [`FaultKind::ResetMidStream`]: drawn, unused (the script's resets decide it).
    pub reset_mid_stream: u32,
    /// [`FaultKind::BrokenPipe`]: drawn, unused (the script's closes decide it).
    pub broken_pipe: u32,
    /// [`FaultKind::AcceptExhausted`]: `accept` fails with EMFILE (or ENFILE).
    pub accept_exhausted: u32,
    /// [`FaultKind::AcceptAborted`]: `accept` fails with ECONNABORTED.
    pub accept_aborted: u32,
    /// [`FaultKind::PoolFull`]: drawn, unused (the script's connects decide it).
    pub pool_full: u32,
    /// [`FaultKind::WakeRace`]: another thread wakes a connection between an output
    /// and its report, or a wake's notification reaches the loop a round late.
    pub wake_race: u32,
    /// [`FaultKind::TickBetweenEvents`]: the clock reaches the engine's next deadline
    /// (or just short of it) between two events.
    pub tick_between_events: u32,
    /// [`FaultKind::DetachWithReadinessQueued`]: a connection's handler is made to
    /// return `Detach`.
    pub detach_with_readiness_queued: u32,
    /// [`FaultKind::ShutdownWithOutputPending`]: the handler is made to return
    /// `Shutdown` from a `data` call that leaves output pending.
    pub shutdown_with_output_pending: u32,
    /// [`FaultKind::CloseWithOutputPending`]: a connection's handler is made to return
    /// `Close` from a call that leaves output pending.
    pub close_with_output_pending: u32,
    /// [`FaultKind::ConnectRefused`]: an outbound connect is refused (ECONNREFUSED),
    /// half the time at once (`connect(2)` fails), else after a delay.
    pub connect_refused: u32,
    /// [`FaultKind::ConnectUnanswered`]: an outbound connect is never answered.
    pub connect_unanswered: u32,
    /// [`FaultKind::ConnectReset`]: a backend resets its connection right after it
    /// accepted it.
    pub connect_reset: u32,
    /// [`FaultKind::ConnectSlow`]: a backend accepts a connect after a delay of up to
    /// 200 virtual milliseconds (else at the poller's next round).
    pub connect_slow: u32,
}

impl FaultRates {
    /// No faults at all.
    pub const fn none() -> Self {
        FaultRates {
            short_read: 0,
            short_write: 0,
            read_again: 0,
            write_again: 0,
            spurious_readiness: 0,
            eof_with_last_data: 0,
            reset_mid_stream: 0,
            broken_pipe: 0,
            accept_exhausted: 0,
            accept_aborted: 0,
            pool_full: 0,
            wake_race: 0,
            tick_between_events: 0,
            detach_with_readiness_queued: 0,
            shutdown_with_output_pending: 0,
            close_with_output_pending: 0,
            connect_refused: 0,
            connect_unanswered: 0,
            connect_reset: 0,
            connect_slow: 0,
        }
    }

    /// Rates drawn from `rng`: about one run in five is clean, the rest mix light and
    /// heavy rates per kind. Only the [`FaultKind::ACCEPTED`] kinds are drawn here (so
    /// that a seed keeps every draw it made before outbound connections came); the
    /// outbound ones are drawn by [`FaultRates::draw_outbound`], after everything else.
    pub fn random(rng: &mut Rng) -> Self {
        let mut rates = FaultRates::none();
        if rng.below(5) == 0 {
            return rates;
        }
        // Drawn in `FaultKind::ALL` order, so a seed keeps its rates.
        for kind in FaultKind::ACCEPTED {
            rates.set(
                kind,
                [0, 2_000, 20_000, 100_000, 300_000][rng.below(5) as usize],
            );
        }
        // A shutdown ends the run's interesting part, so keep it rare.
        rates.shutdown_with_output_pending /= 50;
        rates.close_with_output_pending /= 4;
        rates.detach_with_readiness_queued /= 4;
        rates
    }

    /// Draws the rates of the [`FaultKind::OUTBOUND`] kinds from `rng` (a clean run,
    /// whose other rates are all zero, stays clean; the draws are made either way).
    pub fn draw_outbound(&mut self, rng: &mut Rng) {
        let clean = *self == FaultRates::none();
        for kind in FaultKind::OUTBOUND {
            let rate = [0, 20_000, 100_000, 300_000][rng.below(4) as usize];
            self.set(kind, if clean { 0 } else { rate });
        }
    }

    /// These rates with the rate of `kind` set to `per_million`: a builder, for rates
    /// chosen by kind.
    #[must_use]
    pub const fn with(mut self, kind: FaultKind, per_million: u32) -> Self {
        self.set(kind, per_million);
        self
    }

    /// These rates with every kind outside `kinds` set to zero.
    #[must_use]
    pub fn only(mut self, kinds: FaultSet) -> Self {
        for kind in FaultKind::ALL {
            if !kinds.contains(kind) {
                self.set(kind, 0);
            }
        }
        self
    }

    /// The rate of `kind`, per million.
    pub const fn get(&self, kind: FaultKind) -> u32 {
        match kind {
            FaultKind::ShortRead => self.short_read,
            FaultKind::ShortWrite => self.short_write,
            FaultKind::ReadAgain => self.read_again,
            FaultKind::WriteAgain => self.write_again,
            FaultKind::SpuriousReadiness => self.spurious_readiness,
            FaultKind::EofWithLastData => self.eof_with_last_data,
            FaultKind::ResetMidStream => self.reset_mid_stream,
            FaultKind::BrokenPipe => self.broken_pipe,
            FaultKind::AcceptExhausted => self.accept_exhausted,
            FaultKind::AcceptAborted => self.accept_aborted,
            FaultKind::PoolFull => self.pool_full,
            FaultKind::WakeRace => self.wake_race,
            FaultKind::TickBetweenEvents => self.tick_between_events,
            FaultKind::DetachWithReadinessQueued => self.detach_with_readiness_queued,
            FaultKind::ShutdownWithOutputPending => self.shutdown_with_output_pending,
            FaultKind::CloseWithOutputPending => self.close_with_output_pending,
            FaultKind::ConnectRefused => self.connect_refused,
            FaultKind::ConnectUnanswered => self.connect_unanswered,
            FaultKind::ConnectReset => self.connect_reset,
            FaultKind::ConnectSlow => self.connect_slow,
        }
    }

    /// Sets the rate of `kind`, per million.
    pub const fn set(&mut self, kind: FaultKind, per_million: u32) {
        *self.rate_mut(kind) = per_million;
    }

    /// The field that holds the rate of `kind`.
    const fn rate_mut(&mut self, kind: FaultKind) -> &mut u32 {
        match kind {
            FaultKind::ShortRead => &mut self.short_read,
            FaultKind::ShortWrite => &mut self.short_write,
            FaultKind::ReadAgain => &mut self.read_again,
            FaultKind::WriteAgain => &mut self.write_again,
            FaultKind::SpuriousReadiness => &mut self.spurious_readiness,
            FaultKind::EofWithLastData => &mut self.eof_with_last_data,
            FaultKind::ResetMidStream => &mut self.reset_mid_stream,
            FaultKind::BrokenPipe => &mut self.broken_pipe,
            FaultKind::AcceptExhausted => &mut self.accept_exhausted,
            FaultKind::AcceptAborted => &mut self.accept_aborted,
            FaultKind::PoolFull => &mut self.pool_full,
            FaultKind::WakeRace => &mut self.wake_race,
            FaultKind::TickBetweenEvents => &mut self.tick_between_events,
            FaultKind::DetachWithReadinessQueued => &mut self.detach_with_readiness_queued,
            FaultKind::ShutdownWithOutputPending => &mut self.shutdown_with_output_pending,
            FaultKind::CloseWithOutputPending => &mut self.close_with_output_pending,
            FaultKind::ConnectRefused => &mut self.connect_refused,
            FaultKind::ConnectUnanswered => &mut self.connect_unanswered,
            FaultKind::ConnectReset => &mut self.connect_reset,
            FaultKind::ConnectSlow => &mut self.connect_slow,
        }
    }
}

/// How many times each fault kind actually fired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    counts: [u64; FaultKind::ALL.len()],
    /// Outbound connects the driver was asked for.
    connects: u64,
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

    /// Counts one outbound connect asked of the driver (not a fault: what makes the
    /// outbound kinds possible).
    pub(crate) fn record_connect(&mut self) {
        self.connects += 1;
    }

    /// Outbound connects the driver was asked for.
    pub fn connects(&self) -> u64 {
        self.connects
    }

    /// The kinds that never fired; the [`FaultKind::OUTBOUND`] kinds count only when
    /// the handler connected out at all.
    pub fn missing(&self) -> Vec<FaultKind> {
        self.iter()
            .filter(|&(k, n)| n == 0 && (self.connects > 0 || !k.is_outbound()))
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
        self.connects += other.connects;
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
