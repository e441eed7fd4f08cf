//! What the oracle knows of each connection and each listener beyond what the
//! network holds: [`Shadow`] and [`ListenerShadow`].

use evio_proto::{Instant, IoError, TransportError};

/// What the oracle knows of one client's connection beyond its socket.
#[derive(Debug, Default)]
pub(crate) struct Shadow<C> {
    /// Bytes the server read; those the handler has not consumed yet start at
    /// `delivered[handler_pos]`, and `delivered_base` bytes were trimmed from the front.
    pub(super) delivered: Vec<u8>,
    pub(super) delivered_base: u64,
    pub(super) handler_pos: usize,
    /// `opened` ran.
    pub opened: bool,
    /// `closed` ran, or `detached` took the socket.
    pub ended: bool,
    /// `detached` took the socket.
    pub detached: bool,
    /// The driver reported an I/O error.
    pub io_failed: bool,
    /// The driver reported the end of the stream.
    pub eof_reported: bool,
    /// The I/O error the driver reported first.
    pub(super) io_error: Option<IoError>,
    /// Bytes the last `data` call was given.
    pub(super) last_input: usize,
    /// `closed` reported an error (an I/O error or a frame too large).
    pub errored: bool,
    /// The handler returned `Close` or `Detach` for this connection.
    pub leaving: bool,
    /// An injected action (close or detach) fired for this connection.
    pub injected: bool,
    /// Bytes the handler wrote in all.
    pub queued: u64,
    /// Bytes the socket took in all.
    pub transmitted: u64,
    /// The last write was short or would block.
    pub(super) last_write_short: bool,
    /// The last write was short or would block and no writable (or hang-up) readiness
    /// was reported since: the engine must not read (backpressure).
    pub(super) write_blocked: bool,
    /// A hang-up was reported and no read has found the socket empty since: the
    /// engine may read to learn whether the peer ended or failed, blocked or not.
    pub(super) hup_unread: bool,
    /// Readability (or a hang-up) was reported and the engine has not read since: it
    /// must read before it sends, while it may read ([`Rule::ReadBeforeSend`]).
    ///
    /// [`Rule::ReadBeforeSend`]: crate::Rule::ReadBeforeSend
    pub(super) read_reported: bool,
    /// A send failed while the connection was open and could read, and the engine has
    /// not read since ([`Rule::ReadAfterFailedSend`]).
    ///
    /// [`Rule::ReadAfterFailedSend`]: crate::Rule::ReadAfterFailedSend
    pub(super) read_owed: bool,
    /// The clock when it started to leave (a handler closed or detached it, or its
    /// peer ended its stream), moved on by each send that made progress since: the
    /// engine aborts it once `Config::send_timeout` has passed from here
    /// ([`Rule::SendBound`]).
    ///
    /// [`Rule::SendBound`]: crate::Rule::SendBound
    pub(super) leaving_since: Option<Instant>,
    /// The send bound had passed when the engine aborted it.
    pub(super) bound_passed: bool,
    /// A handler closed it while input it had not consumed was buffered and its peer's
    /// stream had not ended: the close must linger ([`Rule::LingerOverUnconsumed`]).
    ///
    /// [`Rule::LingerOverUnconsumed`]: crate::Rule::LingerOverUnconsumed
    pub(super) must_linger: bool,
    /// Bytes the last `prewrite` announced.
    pub(super) attempted: usize,
    /// `Transmit` outputs, `prewrite` and `postwrite` calls: one of each per write.
    pub(super) transmits: u64,
    pub(super) prewrites: u64,
    pub(super) postwrites: u64,
    /// The simulator made a wake for this connection that `woken` has not answered.
    pub(super) wake_owed: bool,
    /// A callback for another connection (or the server) found it no longer open: a
    /// handler may have closed, detached or aborted it through `Loop`.
    pub cross_ended: bool,
    /// Its own handler returned `Abort`.
    pub(super) abort_asked: bool,
    /// The engine aborted it: its pending output was discarded.
    pub aborted: bool,
    /// The engine shut its sending side for a lingering close.
    pub lingering: bool,
    /// Its timeout as last seen (when it fires), and the clock when it was set.
    pub(super) timeout: Option<(Instant, Instant)>,
    /// The engine may hold a deadline for it (a timeout was set, or it lingers).
    pub(super) deadline_possible: bool,
    /// The model was told it is no longer open.
    pub(super) closing_told: bool,
    /// An outbound connection (a backend's socket).
    pub outbound: bool,
    /// The error the driver reported for its connect, if it failed.
    pub(super) connect_error: Option<IoError>,
    /// The driver reported its connect done.
    pub(super) connect_done: bool,
    /// The engine shut its sending side while it was open (a handler's
    /// `Loop::shutdown_write`, not a lingering close): nothing more may be sent.
    pub(super) write_shut: bool,
    /// Its peer ended its stream and `input_ended` kept it open (half-closed).
    pub(super) half_open: bool,
    /// Its bytes go through the handler's transport (TLS): `delivered` holds the
    /// plaintext decoded and `transmitted` the plaintext encoded, while the socket
    /// carries records.
    pub transformed: bool,
    /// A transformed connection: when it was accepted (its handshake's deadline
    /// counts from there).
    pub(super) handshake_from: Option<Instant>,
    /// A transformed connection: the bytes of an incomplete record its transport
    /// kept at the last decode (they take room in the input buffer too).
    pub(super) kept: usize,
    /// A transformed connection's peer ended its stream (TLS's `close_notify`)
    /// before its handshake was over: told to the model once it opens.
    pub(super) ended_early: bool,
    /// A transformed connection was woken before it opened (the engine drops such a
    /// wake, or delivers it once open if its handshake ends first).
    pub(super) woken_early: bool,
    /// A transformed connection: the plaintext its client sent that the server's
    /// transport has not decoded yet, which the next decode must match.
    pub(super) client_plain: std::collections::VecDeque<u8>,
    /// How its transport failed, if it did.
    pub(super) transport_error: Option<TransportError>,
    /// The model's state for the connection.
    pub model: C,
}

impl<C> Shadow<C> {
    /// Bytes the handler wrote that the socket has not taken.
    pub fn unsent(&self) -> u64 {
        self.queued - self.transmitted.min(self.queued)
    }

    /// Bytes the server read in all.
    pub fn delivered(&self) -> u64 {
        self.delivered_base + self.delivered.len() as u64
    }

    /// Bytes read that the handler has not consumed: what the engine keeps in the
    /// connection's input buffer.
    pub(super) fn unconsumed(&self) -> usize {
        self.delivered.len() - self.handler_pos
    }

    /// Bytes in the engine's input buffer: unconsumed input, and a transformed
    /// connection's incomplete record.
    pub(super) fn buffered(&self) -> usize {
        self.unconsumed() + self.kept
    }

    /// As far as the oracle saw, an open connection at rest: open for input, its
    /// sending side not shut, its connect (if outbound) reported done, everything its
    /// handler wrote taken by the socket, and everything read consumed by the handler.
    pub fn at_rest(&self) -> bool {
        self.open_for_input()
            && (!self.outbound || self.connect_done)
            && !self.write_shut
            && !self.half_open
            && self.unsent() == 0
            && self.unconsumed() == 0
    }

    /// Open as far as reading goes: opened, and neither its handler nor another is
    /// done with it, nor its stream over, nor its socket failed.
    pub(super) fn open_for_input(&self) -> bool {
        self.opened
            && !self.ended
            && !self.leaving
            && !self.cross_ended
            && !self.lingering
            && !self.eof_reported
            && !self.io_failed
            && !self.abort_asked
            && !self.aborted
    }

    /// A transformed connection whose handshake is not over (its handler has not
    /// heard of it).
    pub fn handshaking(&self) -> bool {
        self.transformed && !self.opened && !self.outbound
    }

    /// The handler wrote `wrote` bytes in a callback.
    pub(super) fn wrote(&mut self, wrote: usize) {
        self.queued += wrote as u64;
        if wrote > 0 {
            self.last_write_short = false;
        }
    }
}

/// What the oracle knows of one listener.
#[derive(Debug, Default)]
pub(super) struct ListenerShadow {
    /// An EMFILE was reported: the engine must pause this listener before it accepts
    /// on it again.
    pub(super) must_pause: bool,
    /// `Accept` outputs since the last readiness report or `ResumeAccept`: at most
    /// `accept_batch`, so a flood of connections cannot starve the others.
    pub(super) accepts: u32,
}
