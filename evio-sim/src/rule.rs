//! The rules of the contract and of output accounting that the oracle checks, one
//! variant each, so that a violation names the rule it broke.

use core::fmt;

/// One rule the oracle checks, carried by [`Violation::Contract`](crate::Violation::Contract)
/// and [`Violation::Accounting`](crate::Violation::Accounting).
///
/// Its `Display` states the rule; [`Rule::name`] is a short stable name. The shrinker
/// keeps a smaller script only when it breaks the same rule as the original.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    // ----- connections -----
    /// `opened` gets the listener and the addresses the driver reported.
    OpenedAddresses,
    /// `closed` gets the I/O error the driver reported, `FrameTooLarge` only after the
    /// handler was given a full input buffer, and no error otherwise.
    ClosedError,
    /// A slot goes to a new connection only after `closed` or `detached` ran for the
    /// connection that had it.
    SlotReuse,
    /// Every `woken` answers a wake made for that very connection (checked when the
    /// [`Model`](crate::Model) says the handler makes no wakes of its own).
    WokenForItsWake,
    /// A wake accepted for a connection that is surely still open reaches `woken` when
    /// the loop next handles wakes.
    WakeDelivered,
    /// No read while output is blocked (backpressure), unless a hang-up report asks
    /// for one.
    Backpressure,
    /// A connection the poller reported readable (or hung up) is read before anything
    /// is sent to it, while it is open and may read: a send first could provoke a
    /// reset from a peer that sent and left, and lose what it sent.
    ReadBeforeSend,
    /// A connection whose send failed while it was open and could read is read once
    /// more before it closes: what the peer sent before the failure is not lost.
    ReadAfterFailedSend,
    /// A leaving connection (closing or detaching once its output is sent) is aborted
    /// once `Config::send_timeout` passes without send progress, never before, and
    /// `closed` says so.
    SendBound,
    /// A close its handler asked for while input it had not consumed was buffered
    /// (and the peer's stream had not ended) lingers: the sending side is shut first,
    /// so the peer reads the last reply instead of a reset. The same whether the
    /// handler returned `Close` or closed it through `Loop`.
    LingerOverUnconsumed,
    // ----- outbound connections -----
    /// A connect ends in exactly one `opened` (once the driver reported it done) or
    /// one `closed` (without `opened`), never both, and never `opened` after the
    /// driver reported it failed.
    ConnectOnce,
    /// Nothing is sent on (nor read from) an outbound connection before the driver
    /// reported its connect done.
    ConnectBeforeSend,
    /// `closed` of a connect that failed carries `CloseError::Connect` with the error
    /// the driver reported; `ConnectTimeout` only for a connect the driver never
    /// reported, after time passed since it started.
    ConnectError,
    /// `FinishConnect` is asked only of a connect under way, and `Connect` only with
    /// a slot that no live connection holds.
    ConnectAsked,
    // ----- listeners -----
    /// At most `accept_batch` accepts per readiness report of a listener.
    AcceptBatch,
    /// No accept on a listener the engine paused.
    AcceptWhilePaused,
    /// No accept retried right after EMFILE: the listener backs off first.
    AcceptBackoff,
    // ----- the ticker -----
    /// A tick is given the driver's time.
    TickTime,
    /// A tick never fires before its deadline: the one the engine advertised, nor the
    /// earliest the contract allows.
    TickEarly,
    /// One tick per deadline: a second tick needs a new deadline advertised.
    TickTwice,
    /// No tick after the ticker stopped (a tick returned no delay).
    TickAfterStop,
    /// When the loop is on time, the next deadline is exactly the previous deadline
    /// plus the returned delay (no drift).
    TickNoDrift,
    /// When the loop fell behind by more than a period, the next deadline is after now
    /// and within one period of it (no burst of missed ticks).
    TickNoBurst,
    /// A delay shorter than `Config::min_tick` (zero included) is raised to it.
    TickMinDelay,
    /// A tick due by the contract is among the engine's deadlines
    /// (`Engine::poll_timeout`), or a real driver would sleep through it.
    TickScheduled,
    /// A tick due by the contract has fired once the loop ran at or past its deadline.
    TickFired,
    // ----- timeouts, other connections, the server wake, closing -----
    /// `timeout` runs at or after the deadline the handler set, never before.
    TimeoutEarly,
    /// `timeout` runs once per setting, and only for a connection that has one set.
    TimeoutOnce,
    /// A connection's timeout is among the engine's deadlines (`poll_timeout`), or a
    /// real driver would sleep through it.
    TimeoutScheduled,
    /// A timeout that came due for an open connection has fired once the loop ran at
    /// or past it.
    TimeoutFired,
    /// A nap the engine asks for (`Engine::poll_nap`) ends no later than its next
    /// deadline, counted from the engine's own time.
    NapWithinDeadline,
    /// `drained` runs only when the connection's output is all sent (or dropped, its
    /// socket having failed).
    DrainedEmpty,
    /// Every `server_woken` answers a server wake, and every accepted server wake
    /// reaches `server_woken` when the loop handles wakes.
    ServerWake,
    /// A connection is aborted only when a handler asked for it.
    AbortAsked,
    /// Nothing is sent after the sending side was shut, and no `data` runs for a
    /// lingering close.
    LingerQuiet,
    /// A handler's transport decodes and fails only the connections it took (those
    /// of the listeners it transforms).
    TransformedOnly,
    /// A handshake ends its connection (without a callback) only when it failed (the
    /// transport refused the peer's bytes, the peer ended or reset its stream) or
    /// outlived `Config::handshake_timeout` (a reset), or the server shut down.
    HandshakeEnd,
    // ----- output accounting -----
    /// A transmit carries exactly the output pending: what the handler wrote, less
    /// what was sent.
    TransmitPending,
    /// Every `prewrite` has its `postwrite` before `closed` or `detached`.
    WritesPaired,
    /// One `prewrite` per transmit, after the previous write's `postwrite`.
    PrewritePerTransmit,
    /// `prewrite` announces the whole output pending.
    PrewriteAmount,
    /// One `postwrite` per transmit, after its `prewrite`.
    PostwritePerTransmit,
    /// `postwrite` reports what was written and what remains, adding up to what its
    /// `prewrite` announced.
    PostwriteAmount,
}

impl Rule {
    /// A short stable name (for summaries and messages).
    pub const fn name(self) -> &'static str {
        match self {
            Rule::OpenedAddresses => "opened-addresses",
            Rule::ClosedError => "closed-error",
            Rule::SlotReuse => "slot-reuse",
            Rule::WokenForItsWake => "woken-for-its-wake",
            Rule::WakeDelivered => "wake-delivered",
            Rule::Backpressure => "backpressure",
            Rule::ReadBeforeSend => "read-before-send",
            Rule::ReadAfterFailedSend => "read-after-failed-send",
            Rule::SendBound => "send-bound",
            Rule::LingerOverUnconsumed => "linger-over-unconsumed",
            Rule::ConnectOnce => "connect-once",
            Rule::ConnectBeforeSend => "connect-before-send",
            Rule::ConnectError => "connect-error",
            Rule::ConnectAsked => "connect-asked",
            Rule::AcceptBatch => "accept-batch",
            Rule::AcceptWhilePaused => "accept-while-paused",
            Rule::AcceptBackoff => "accept-backoff",
            Rule::TickTime => "tick-time",
            Rule::TickEarly => "tick-early",
            Rule::TickTwice => "tick-twice",
            Rule::TickAfterStop => "tick-after-stop",
            Rule::TickNoDrift => "tick-no-drift",
            Rule::TickNoBurst => "tick-no-burst",
            Rule::TickMinDelay => "tick-min-delay",
            Rule::TickScheduled => "tick-scheduled",
            Rule::TickFired => "tick-fired",
            Rule::TimeoutEarly => "timeout-early",
            Rule::TimeoutOnce => "timeout-once",
            Rule::TimeoutScheduled => "timeout-scheduled",
            Rule::TimeoutFired => "timeout-fired",
            Rule::NapWithinDeadline => "nap-within-deadline",
            Rule::DrainedEmpty => "drained-empty",
            Rule::ServerWake => "server-wake",
            Rule::AbortAsked => "abort-asked",
            Rule::LingerQuiet => "linger-quiet",
            Rule::TransformedOnly => "transformed-only",
            Rule::HandshakeEnd => "handshake-end",
            Rule::TransmitPending => "transmit-pending",
            Rule::WritesPaired => "writes-paired",
            Rule::PrewritePerTransmit => "prewrite-per-transmit",
            Rule::PrewriteAmount => "prewrite-amount",
            Rule::PostwritePerTransmit => "postwrite-per-transmit",
            Rule::PostwriteAmount => "postwrite-amount",
        }
    }

    /// The rule, stated.
    pub const fn statement(self) -> &'static str {
        match self {
            Rule::OpenedAddresses => {
                "`opened` gets the listener and the addresses the driver reported"
            }
            Rule::ClosedError => {
                "`closed` gets the I/O error the driver reported, FrameTooLarge only after \
                 a full input buffer, and no error otherwise"
            }
            Rule::SlotReuse => {
                "a slot goes to a new connection only after `closed` or `detached` ran for \
                 the one that had it"
            }
            Rule::WokenForItsWake => "every `woken` answers a wake made for that connection",
            Rule::WakeDelivered => {
                "a wake accepted for an open connection reaches `woken` when the loop next \
                 handles wakes"
            }
            Rule::Backpressure => {
                "no read while output is blocked, unless a hang-up report asks for one"
            }
            Rule::ReadBeforeSend => {
                "an open connection reported readable is read before anything is sent to it"
            }
            Rule::ReadAfterFailedSend => {
                "an open connection whose send failed is read once more before it closes"
            }
            Rule::SendBound => {
                "a leaving connection is aborted once `send_timeout` passes without send \
                 progress, and not before"
            }
            Rule::LingerOverUnconsumed => {
                "a close asked for over unconsumed input lingers, by `Close` or by `Loop`"
            }
            Rule::ConnectOnce => {
                "a connect ends in one `opened` once it is done or one `closed`, never both"
            }
            Rule::ConnectBeforeSend => {
                "nothing is sent on an outbound connection before its connect is done"
            }
            Rule::ConnectError => {
                "a failed connect's `closed` carries the driver's error, or ConnectTimeout                  for one never answered"
            }
            Rule::ConnectAsked => {
                "FinishConnect only for a connect under way, Connect only with a free slot"
            }
            Rule::AcceptBatch => "at most `accept_batch` accepts per listener readiness report",
            Rule::AcceptWhilePaused => "no accept on a paused listener",
            Rule::AcceptBackoff => "no accept retried right after EMFILE without a back-off",
            Rule::TickTime => "a tick is given the driver's time",
            Rule::TickEarly => "a tick never fires before its deadline",
            Rule::TickTwice => "one tick per deadline",
            Rule::TickAfterStop => "no tick after the ticker stopped",
            Rule::TickNoDrift => {
                "on time, the next tick is due at the previous deadline plus the delay \
                 (no drift)"
            }
            Rule::TickNoBurst => {
                "behind by more than a period, the next tick is due after now and within \
                 one period of it (no burst)"
            }
            Rule::TickMinDelay => "a delay shorter than `min_tick` is raised to `min_tick`",
            Rule::TickScheduled => "a tick due by the contract is among the engine's deadlines",
            Rule::TickFired => {
                "a tick due by the contract has fired once the loop ran at or past it"
            }
            Rule::TimeoutEarly => "a timeout never fires before the deadline the handler set",
            Rule::TimeoutOnce => {
                "a timeout fires once per setting, only for a connection that set one"
            }
            Rule::TimeoutScheduled => "a connection's timeout is among the engine's deadlines",
            Rule::TimeoutFired => {
                "a timeout due for an open connection has fired once the loop ran at or past it"
            }
            Rule::NapWithinDeadline => "a nap ends no later than the engine's next deadline",
            Rule::DrainedEmpty => {
                "`drained` runs only once the output is all sent (or dropped: its socket failed)"
            }
            Rule::ServerWake => {
                "`server_woken` runs once for each accepted server wake, and only then"
            }
            Rule::AbortAsked => "a connection is aborted only when a handler asked for it",
            Rule::LingerQuiet => {
                "nothing is sent after the sending side was shut, and no `data` runs while a \
                 close lingers"
            }
            Rule::TransformedOnly => "a transport decodes and fails only the connections it took",
            Rule::HandshakeEnd => {
                "a handshake ends its connection only when it failed, timed out (a reset), or \
                 the server shut down"
            }
            Rule::TransmitPending => "a transmit carries exactly the output pending",
            Rule::WritesPaired => {
                "every `prewrite` has its `postwrite` before `closed` or `detached`"
            }
            Rule::PrewritePerTransmit => {
                "one `prewrite` per transmit, after the previous write's `postwrite`"
            }
            Rule::PrewriteAmount => "`prewrite` announces the whole output pending",
            Rule::PostwritePerTransmit => "one `postwrite` per transmit, after its `prewrite`",
            Rule::PostwriteAmount => {
                "`postwrite`'s written and remaining add up to the attempt and the output \
                 still pending"
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.statement())
    }
}
