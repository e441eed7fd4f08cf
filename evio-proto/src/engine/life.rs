//! A connection's life: its states, each carrying what only it needs, and the
//! transitions between them.
//!
//! [`Life::on`] is the one function that decides a slot's next state: the engine's
//! reaction to a handler's [`Action`](crate::Action), [`Loop`](crate::Loop)'s
//! operations on other connections, the driver's reports, the deadlines and the
//! shutdown all ask it, so two paths to the same event cannot drift apart. It is pure
//! (this module depends on nothing else in the engine): the side effects (dropping
//! output, setting a deadline, queueing the slot) are the caller's, told by the state
//! it lands in; a handler's requests, the same for its `Action` and for `Loop`, go
//! through `slot::request`.
//!
//! ```text
//!            accepted                 Close / Detach / end of stream
//!   Free ─────────────▶ Open ───────────────────────────────────────▶ Leaving
//!                        │  ╲  send failed                               │ flushed
//!                        │   ╲──────────────▶ SendFailed ── read ──▶ Closed ◀─┤ (Close)
//!                        │ Abort                                          │ (Linger) ▶ Lingering ─▶ Leaving
//!                        ▼                                                │ (Detach) ▶ DetachWait
//!                     Aborting ───────────────────────────────────────▶ Closed ──▶ Free
//! ```
//!
//! Every state is bounded in time: `Open` by the handler's own timeout, `Leaving` by
//! [`Config::send_timeout`](crate::Config::send_timeout) without send progress,
//! `Lingering` by [`Config::linger`](crate::Config::linger); the others last until the
//! next output.

use core::fmt;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Life {
    /// No connection.
    Free,
    /// Outbound, not connected yet: the driver is asked to connect (`Output::Connect`),
    /// then for the outcome once the socket turns writable (`Output::FinishConnect`).
    /// Writes wait in its output buffer; `opened` runs when it connects. Bounded by
    /// the timeout given to `Loop::connect`.
    Connecting,
    /// Open: reading, writing, calling the handler.
    Open,
    /// Transformed (TLS), its handshake not over: its transport's bytes are read and
    /// sent, its handler has not heard of it (`opened` runs once it is established).
    /// Bounded by `Config::handshake_timeout`.
    Handshaking,
    /// On its way out: its pending output is sent, then `then` happens.
    Leaving {
        /// What happens once the output is sent.
        then: Then,
        /// Why it leaves, which decides what its handler still sees.
        why: Why,
    },
    /// Its sending side is shut (`Output::ShutdownWrite`): input is read and discarded
    /// until the peer closes its side or the linger deadline passes, then it closes.
    /// The handler is done with it.
    Lingering,
    /// Closes at once with a reset, its pending output discarded (`Output::Abort`).
    Aborting,
    /// A send failed while it was open: nothing more can be sent. It reads once what
    /// the peer sent before (a write must not cost what the peer already sent), gives
    /// it to its handler, then closes with the send's error.
    SendFailed,
    /// Its socket failed (a read or a send) while input read before waited for another
    /// connection or its handler's resume: the peer sent that input, so it is still
    /// its handler's (as a server that reads everything at once would have handled
    /// it). Nothing is sent (what the handler writes is dropped), it reads once more
    /// after a failed send, and once the input is delivered and no longer waits it
    /// closes with the error. Bounded by `Config::send_timeout`.
    Failing,
    /// `Output::Close` or `Output::Abort` was emitted; `closed` runs at the next engine
    /// call.
    Closed,
    /// `Output::Detach` was emitted; its operation's report ends the connection.
    DetachWait,
}

/// What a leaving connection does once its output is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Then {
    /// Close the socket.
    Close,
    /// Close lingering: the peer may still be sending (the handler left input
    /// unconsumed), and closing over unread input resets the connection, which can
    /// destroy the last reply before the peer reads it.
    Linger,
    /// Hand the socket to the handler's `detached`.
    Detach,
}

/// Why a connection leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// A handler asked (its own action, or another callback through `Loop`): it gets
    /// no more callbacks.
    Asked,
    /// Its peer ended its stream. Its handler still answers what it read before:
    /// `drained` runs for output that backed up, and with `drain`, input stalled
    /// behind full output is still delivered once the output drains.
    PeerEnded {
        /// Input is stalled behind full output, still to be delivered.
        drain: bool,
    },
    /// Its socket failed: its output was dropped and it closes at once, with the
    /// error recorded in the slot.
    Failed,
}

/// What happened to a connection, as far as its life goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// The driver accepted it.
    Accepted,
    /// A handler asked to connect it.
    Connect,
    /// Its connect succeeded.
    Connected,
    /// Its connect failed, or did not finish in time.
    ConnectFailed,
    /// A handler asked to close it once its output is sent.
    Close,
    /// A handler asked to detach it once its output is sent.
    Detach,
    /// A handler asked to close it at once with a reset.
    Abort,
    /// A read found the end of its stream.
    PeerEnded,
    /// A send failed.
    SendFailed,
    /// A read failed.
    ReadFailed,
    /// Its output is all sent (or dropped): what it was leaving for happens now.
    Flushed,
    /// Its peer closed its side, or the linger deadline passed.
    LingerOver,
    /// It made no send progress for `Config::send_timeout` while leaving.
    SendTimedOut,
    /// `Output::Abort` was emitted for it.
    AbortEmitted,
    /// A shutdown closes it.
    ShutdownClose,
    /// Its `closed` ran, or `detached` took (or declined) its socket: the slot is free.
    Ended,
    /// The input a failing connection owed its handler was delivered (or no longer
    /// waits).
    Delivered,
    /// Its transport (TLS) starts a handshake, right after it opened.
    Handshake,
    /// Its transport's handshake is over.
    Established,
}

/// What a transition reads of the connection without owning it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Facts {
    /// Input the handler has not consumed is buffered.
    pub(crate) unread_input: bool,
    /// A read found the end of the stream.
    pub(crate) eof: bool,
    /// The input buffer has room for a read.
    pub(crate) input_room: bool,
    /// Input waits for output to drain (the handler's write did not fit).
    pub(crate) stalled: bool,
    /// Input waits for another connection's drain or its handler's resume.
    pub(crate) waiting: bool,
}

/// A transition the connection's state does not allow: nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    /// The state it was in.
    pub(crate) state: Life,
    /// The event refused.
    pub(crate) event: Event,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} refused in state {:?}", self.event, self.state)
    }
}

impl Life {
    /// The state after `event`, or why it cannot happen in this state.
    ///
    /// # Errors
    ///
    /// [`Refused`] when the state does not accept the event (for a handler's request:
    /// the connection is already leaving, or gone).
    pub(crate) fn on(self, event: Event, facts: Facts) -> Result<Life, Refused> {
        use Event as E;
        use Life::*;
        let leaving = |then, why| Leaving { then, why };
        let next = match (self, event) {
            (Free, E::Accepted) => Open,
            (Free, E::Connect) => Connecting,
            (Connecting, E::Connected) => Open,
            (Connecting, E::ConnectFailed) => leaving(Then::Close, Why::Failed),
            // Nothing was sent yet: a close cannot flush anything to a socket that is
            // not connected, so it abandons the connect, as an abort does.
            (Connecting, E::Close | E::Abort) => Aborting,
            (Connecting, E::ShutdownClose) => Closed,
            (Open, E::Handshake) => Handshaking,
            (Handshaking, E::Established) => Open,
            // A handshake that fails ends the connection at once; one that takes too
            // long is reset.
            (Handshaking, E::PeerEnded | E::ReadFailed | E::SendFailed) => {
                leaving(Then::Close, Why::Failed)
            }
            (Handshaking, E::SendTimedOut) => Aborting,
            (Handshaking, E::ShutdownClose) => Closed,
            (Open, E::Close) => leaving(
                if facts.unread_input && !facts.eof {
                    Then::Linger
                } else {
                    Then::Close
                },
                Why::Asked,
            ),
            // A handler still answering a peer that ended decides to close: the
            // stream is over, so there is nothing to linger for.
            (
                Leaving {
                    then: Then::Close,
                    why: Why::PeerEnded { .. },
                },
                E::Close,
            ) => leaving(Then::Close, Why::Asked),
            (Open, E::Detach) => leaving(Then::Detach, Why::Asked),
            // While it drains input read before the end of the stream, the connection
            // is still its handler's to detach; with nothing to drain it closes.
            (
                Leaving {
                    then: Then::Close,
                    why: Why::PeerEnded { drain },
                },
                E::Detach,
            ) => leaving(if drain { Then::Detach } else { Then::Close }, Why::Asked),
            // A socket that failed cannot be handed over or flushed: it closes now.
            (SendFailed, E::Close | E::Detach) => leaving(Then::Close, Why::Failed),
            (Open | Leaving { .. } | SendFailed, E::Abort) => Aborting,
            (Open, E::PeerEnded) => leaving(
                Then::Close,
                Why::PeerEnded {
                    drain: facts.stalled,
                },
            ),
            // Once the stream has ended there is nothing to linger for.
            (
                Leaving {
                    then: Then::Linger,
                    why,
                },
                E::PeerEnded,
            ) => leaving(Then::Close, why),
            // Otherwise the end of a stream read while leaving changes nothing: the
            // close or detach goes ahead once the output is sent; a connection whose
            // send failed closes after its read in any case.
            (Leaving { .. } | SendFailed, E::PeerEnded) => self,
            (Lingering, E::PeerEnded | E::LingerOver) => leaving(Then::Close, Why::Asked),
            (Open, E::SendFailed | E::ReadFailed) if facts.waiting && facts.unread_input => Failing,
            (Open, E::SendFailed) if !facts.eof && facts.input_room => SendFailed,
            // Its one more read found the end, or failed: the input it owes still goes.
            (Failing, E::PeerEnded | E::ReadFailed) => Failing,
            (Failing, E::Close | E::Detach | E::Delivered | E::SendTimedOut) => {
                leaving(Then::Close, Why::Failed)
            }
            (Failing, E::Abort) => Aborting,
            // A peer that resets a lingering close has read what it could: the close
            // goes on for the reason it had.
            (Lingering, E::SendFailed | E::ReadFailed) => leaving(Then::Close, Why::Asked),
            (Open | Leaving { .. } | SendFailed, E::SendFailed | E::ReadFailed) => {
                leaving(Then::Close, Why::Failed)
            }
            // An abort discards the output anyway; a failed socket is reset all the same.
            (Aborting, E::SendFailed | E::ReadFailed) => Aborting,
            (
                Leaving {
                    then: Then::Close, ..
                }
                | SendFailed,
                E::Flushed,
            ) => Closed,
            (
                Leaving {
                    then: Then::Linger, ..
                },
                E::Flushed,
            ) => Lingering,
            (
                Leaving {
                    then: Then::Detach, ..
                },
                E::Flushed,
            ) => DetachWait,
            (Leaving { .. }, E::SendTimedOut) => Aborting,
            (Aborting, E::AbortEmitted) => Closed,
            (Open | Leaving { .. } | Lingering | SendFailed | Failing, E::ShutdownClose) => Closed,
            (Closed | DetachWait, E::Ended) => Free,
            (state, event) => return Err(Refused { state, event }),
        };
        Ok(next)
    }

    /// The connection has a socket the engine may still ask for I/O on.
    #[inline]
    pub(crate) fn is_live(self) -> bool {
        matches!(
            self,
            Life::Open
                | Life::Connecting
                | Life::Leaving { .. }
                | Life::Lingering
                | Life::Aborting
                | Life::SendFailed
                | Life::Failing
                | Life::Handshaking
        )
    }

    /// Its pending output may be sent: open, or leaving for its handler's or its
    /// peer's reasons (a failed socket sends nothing, an aborted one drops its output).
    #[inline]
    pub(crate) fn sends(self) -> bool {
        self == Life::Open
            || matches!(
                self,
                Life::Leaving {
                    why: Why::Asked | Why::PeerEnded { .. },
                    ..
                }
            )
    }

    /// Leaving with output to send, bounded by `Config::send_timeout`.
    #[inline]
    pub(crate) fn is_leaving(self) -> bool {
        matches!(self, Life::Leaving { .. })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    const ALL_STATES: [Life; 19] = [
        Life::Free,
        Life::Connecting,
        Life::Open,
        Life::Handshaking,
        Life::Leaving {
            then: Then::Close,
            why: Why::Asked,
        },
        Life::Leaving {
            then: Then::Linger,
            why: Why::Asked,
        },
        Life::Leaving {
            then: Then::Detach,
            why: Why::Asked,
        },
        Life::Leaving {
            then: Then::Close,
            why: Why::PeerEnded { drain: false },
        },
        Life::Leaving {
            then: Then::Close,
            why: Why::PeerEnded { drain: true },
        },
        Life::Leaving {
            then: Then::Close,
            why: Why::Failed,
        },
        Life::Leaving {
            then: Then::Linger,
            why: Why::Failed,
        },
        Life::Leaving {
            then: Then::Detach,
            why: Why::Failed,
        },
        Life::Lingering,
        Life::Aborting,
        Life::SendFailed,
        Life::Failing,
        Life::Closed,
        Life::DetachWait,
        // A leaving state that a peer's end never makes, for completeness.
        Life::Leaving {
            then: Then::Detach,
            why: Why::PeerEnded { drain: true },
        },
    ];

    const ALL_EVENTS: [Event; 19] = [
        Event::Accepted,
        Event::Connect,
        Event::Connected,
        Event::ConnectFailed,
        Event::Close,
        Event::Detach,
        Event::Abort,
        Event::PeerEnded,
        Event::SendFailed,
        Event::ReadFailed,
        Event::Flushed,
        Event::LingerOver,
        Event::SendTimedOut,
        Event::AbortEmitted,
        Event::ShutdownClose,
        Event::Ended,
        Event::Delivered,
        Event::Handshake,
        Event::Established,
    ];

    /// Short names for the table.
    fn name(s: Life) -> &'static str {
        match s {
            Life::Free => "free",
            Life::Connecting => "connecting",
            Life::Open => "open",
            Life::Handshaking => "handshaking",
            Life::Leaving { then, why } => match (then, why) {
                (Then::Close, Why::Asked) => "close",
                (Then::Linger, Why::Asked) => "linger",
                (Then::Detach, Why::Asked) => "detach",
                (Then::Close, Why::PeerEnded { drain: false }) => "ended",
                (Then::Close, Why::PeerEnded { drain: true }) => "ended+drain",
                (Then::Close, Why::Failed) => "failed",
                (Then::Linger, Why::Failed) => "failed-linger",
                (Then::Detach, Why::Failed) => "failed-detach",
                (Then::Linger | Then::Detach, Why::PeerEnded { .. }) => "ended-detach",
            },
            Life::Lingering => "lingering",
            Life::Aborting => "aborting",
            Life::SendFailed => "send-failed",
            Life::Failing => "failing",
            Life::Closed => "closed",
            Life::DetachWait => "detach-wait",
        }
    }

    /// Every state × every event, with facts that change the outcome where they can
    /// (no unread input, room for a read, not at the end of the stream, not stalled):
    /// the state it goes to, or `-` for a refusal. Rows follow `ALL_STATES`, columns
    /// `ALL_EVENTS`: accepted, connect, connected, connect-failed, close, detach,
    /// abort, peer-ended, send-failed,
    /// read-failed, flushed, linger-over, send-timed-out, abort-emitted,
    /// shutdown-close, ended, delivered, handshake, established.
    const TABLE: [[&str; 19]; 19] = [
        // free
        [
            "open",
            "connecting",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
        ],
        // connecting
        [
            "-", "-", "open", "failed", "aborting", "-", "aborting", "-", "-", "-", "-", "-", "-",
            "-", "closed", "-", "-", "-", "-",
        ],
        // open
        [
            "-",
            "-",
            "-",
            "-",
            "close",
            "detach",
            "aborting",
            "ended",
            "send-failed",
            "failed",
            "-",
            "-",
            "-",
            "-",
            "closed",
            "-",
            "-",
            "handshaking",
            "-",
        ],
        // handshaking
        [
            "-", "-", "-", "-", "-", "-", "-", "failed", "failed", "failed", "-", "-", "aborting",
            "-", "closed", "-", "-", "-", "open",
        ],
        // leaving to close, asked
        [
            "-", "-", "-", "-", "-", "-", "aborting", "close", "failed", "failed", "closed", "-",
            "aborting", "-", "closed", "-", "-", "-", "-",
        ],
        // leaving to linger, asked
        [
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "aborting",
            "close",
            "failed",
            "failed",
            "lingering",
            "-",
            "aborting",
            "-",
            "closed",
            "-",
            "-",
            "-",
            "-",
        ],
        // leaving to detach, asked
        [
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "aborting",
            "detach",
            "failed",
            "failed",
            "detach-wait",
            "-",
            "aborting",
            "-",
            "closed",
            "-",
            "-",
            "-",
            "-",
        ],
        // leaving, the peer ended
        [
            "-", "-", "-", "-", "close", "close", "aborting", "ended", "failed", "failed",
            "closed", "-", "aborting", "-", "closed", "-", "-", "-", "-",
        ],
        // leaving, the peer ended with input to drain
        [
            "-",
            "-",
            "-",
            "-",
            "close",
            "detach",
            "aborting",
            "ended+drain",
            "failed",
            "failed",
            "closed",
            "-",
            "aborting",
            "-",
            "closed",
            "-",
            "-",
            "-",
            "-",
        ],
        // leaving, failed
        [
            "-", "-", "-", "-", "-", "-", "aborting", "failed", "failed", "failed", "closed", "-",
            "aborting", "-", "closed", "-", "-", "-", "-",
        ],
        // leaving to linger, failed
        [
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "aborting",
            "failed",
            "failed",
            "failed",
            "lingering",
            "-",
            "aborting",
            "-",
            "closed",
            "-",
            "-",
            "-",
            "-",
        ],
        // leaving to detach, failed
        [
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "aborting",
            "failed-detach",
            "failed",
            "failed",
            "detach-wait",
            "-",
            "aborting",
            "-",
            "closed",
            "-",
            "-",
            "-",
            "-",
        ],
        // lingering
        [
            "-", "-", "-", "-", "-", "-", "-", "close", "close", "close", "-", "close", "-", "-",
            "closed", "-", "-", "-", "-",
        ],
        // aborting
        [
            "-", "-", "-", "-", "-", "-", "-", "-", "aborting", "aborting", "-", "-", "-",
            "closed", "-", "-", "-", "-", "-",
        ],
        // send-failed
        [
            "-",
            "-",
            "-",
            "-",
            "failed",
            "failed",
            "aborting",
            "send-failed",
            "failed",
            "failed",
            "closed",
            "-",
            "-",
            "-",
            "closed",
            "-",
            "-",
            "-",
            "-",
        ],
        // failing
        [
            "-", "-", "-", "-", "failed", "failed", "aborting", "failing", "-", "failing", "-",
            "-", "failed", "-", "closed", "-", "failed", "-", "-",
        ],
        // closed
        [
            "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "free", "-",
            "-", "-",
        ],
        // detach-wait
        [
            "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "free", "-",
            "-", "-",
        ],
        // leaving to detach, the peer ended (not reached)
        [
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "aborting",
            "ended-detach",
            "failed",
            "failed",
            "detach-wait",
            "-",
            "aborting",
            "-",
            "closed",
            "-",
            "-",
            "-",
            "-",
        ],
    ];

    #[test]
    fn every_state_and_every_event() {
        let facts = Facts {
            unread_input: false,
            eof: false,
            input_room: true,
            stalled: false,
            waiting: false,
        };
        let mut wrong = Vec::new();
        for (row, &state) in ALL_STATES.iter().enumerate() {
            for (col, &event) in ALL_EVENTS.iter().enumerate() {
                let got = match state.on(event, facts) {
                    Ok(next) => name(next),
                    Err(refused) => {
                        assert_eq!(refused, Refused { state, event });
                        "-"
                    }
                };
                if got != TABLE[row][col] {
                    wrong.push(std::format!(
                        "{} × {event:?}: {got}, the table says {}",
                        name(state),
                        TABLE[row][col]
                    ));
                }
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn the_facts_that_change_an_outcome() {
        let plain = Facts {
            input_room: true,
            ..Facts::default()
        };
        // Closing over unconsumed input lingers, unless the stream has ended.
        let unread = Facts {
            unread_input: true,
            ..plain
        };
        assert_eq!(
            Life::Open.on(Event::Close, unread),
            Ok(Life::Leaving {
                then: Then::Linger,
                why: Why::Asked
            })
        );
        let unread_ended = Facts {
            eof: true,
            ..unread
        };
        assert_eq!(
            Life::Open.on(Event::Close, unread_ended),
            Ok(Life::Leaving {
                then: Then::Close,
                why: Why::Asked
            })
        );
        // A failed send reads once more only with room to read into and a stream that
        // has not ended.
        let full = Facts {
            input_room: false,
            ..plain
        };
        let failed = Ok(Life::Leaving {
            then: Then::Close,
            why: Why::Failed,
        });
        assert_eq!(Life::Open.on(Event::SendFailed, full), failed);
        let ended = Facts { eof: true, ..plain };
        assert_eq!(Life::Open.on(Event::SendFailed, ended), failed);
        // A socket that fails while unread input waits owes its handler that input.
        let waiting = Facts {
            waiting: true,
            ..unread
        };
        assert_eq!(Life::Open.on(Event::ReadFailed, waiting), Ok(Life::Failing));
        assert_eq!(Life::Open.on(Event::SendFailed, waiting), Ok(Life::Failing));
        let nothing_waits = Facts {
            waiting: true,
            ..plain
        };
        assert_eq!(Life::Open.on(Event::ReadFailed, nothing_waits), failed);
        // The end of the stream with input stalled behind full output drains it.
        let stalled = Facts {
            stalled: true,
            ..plain
        };
        assert_eq!(
            Life::Open.on(Event::PeerEnded, stalled),
            Ok(Life::Leaving {
                then: Then::Close,
                why: Why::PeerEnded { drain: true }
            })
        );
    }

    #[test]
    fn what_each_state_lets_the_handler_and_the_driver_do() {
        for state in ALL_STATES {
            let live = !matches!(state, Life::Free | Life::Closed | Life::DetachWait);
            // (Connecting is live: the driver holds its socket once asked to connect.)
            assert_eq!(state.is_live(), live, "{state:?}");
            assert_eq!(
                state.is_leaving(),
                matches!(state, Life::Leaving { .. }),
                "{state:?}"
            );
        }
        for state in ALL_STATES {
            let sends = matches!(
                state,
                Life::Open
                    | Life::Leaving {
                        why: Why::Asked | Why::PeerEnded { .. },
                        ..
                    }
            );
            assert_eq!(state.sends(), sends, "{state:?}");
        }
    }
}
