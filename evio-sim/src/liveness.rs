//! The end of a run: faults stop, a bounded liveness phase lets every client finish its
//! work, and the final checks find what leaked or was left undone.

use evio_proto::{Duration, Events};

use evio_proto::Instant;

use crate::{Model, Outcome, ScriptedEvent, Sim, Violation};

/// The bounds of a liveness phase (see [`Sim::finish`]).
pub(crate) struct Limits {
    /// Rounds that may pass without progress.
    pub bound: usize,
    /// How far idle rounds may move the clock.
    pub time_limit: Instant,
    /// Rounds in which clients received output that do not count against `bound`.
    pub streaming_limit: usize,
}

impl<H: Events, M: Model> Sim<H, M> {
    /// Ends the run: faults stop, a liveness phase reads every client's output and
    /// half-closes each client once its work is done, until every connection has
    /// closed (within a bound proportional to the work left), then checks that nothing
    /// leaked and that every clean connection got all its output.
    ///
    /// # Errors
    ///
    /// [`Violation::Liveness`] if the work is not done within the bound, or any other
    /// violation found on the way.
    pub fn finish(&mut self) -> Result<Outcome, Violation> {
        let limits = self.liveness_start();
        let Limits {
            bound,
            time_limit,
            streaming_limit,
        } = limits;
        let mut streaming = 0usize;
        let mut waits = 0u32;
        let mut rounds = 0;
        let mut done = false;
        while rounds < bound {
            if self.all_done() {
                done = true;
                break;
            }
            let round_start = self.w.activity;
            let received_before = self.received_total();
            self.liveness_clients()?;
            // Time passes only when nothing else moves, as on a real machine where
            // reading and writing take no time next to a timer's period.
            self.run_event(&ScriptedEvent::Poll)?;
            if self.w.activity == round_start {
                let before = self.now();
                self.run_event(&ScriptedEvent::Advance { millis: 0 })?;
                let after = self.now();
                if after > before && after <= time_limit && waits < 100_000 {
                    waits += 1;
                    continue;
                }
            }
            if self.received_total() > received_before && streaming < streaming_limit {
                streaming += 1;
                continue;
            }
            rounds += 1;
        }
        if !done && !self.all_done() {
            return Err(Violation::Liveness {
                bound,
                detail: self.stuck(),
            });
        }
        self.final_checks()?;
        Ok(self.outcome())
    }

    /// Faults stop, and the liveness phase's limits are drawn from the work left.
    pub(crate) fn liveness_start(&mut self) -> Limits {
        self.w.io.stop();
        self.engine.handler_mut().disarm();
        let (net, oracle) = (self.w.io.net(), &self.w.oracle);
        let work: usize = net
            .sockets
            .iter()
            .zip(oracle.conns())
            .enumerate()
            .map(|(ci, (s, c))| {
                // Output the engine still holds counts too: through a one-byte window
                // it takes a round per byte.
                s.unread_by_server() + s.unread_by_client() + c.unsent() as usize + oracle.owed(ci)
            })
            .sum();
        let unfinished = net
            .sockets
            .iter()
            .zip(oracle.conns())
            .filter(|(s, c)| !s.refused && !c.ended)
            .count();
        // A round lets every client read and the loop run; each productive round moves
        // at least one byte or ends a connection, and each idle one reaches a deadline.
        let bound = 64 + 8 * unfinished + 4 * work;
        // A round in which nothing moved but time, up to the next deadline, does not
        // count against `bound` (a fast ticker would otherwise use it up while a
        // listener's back-off runs out); such rounds are bounded by virtual time
        // instead, since every back-off ends within `accept_backoff_max`.
        let engine = &self.w.config.engine;
        let longest_wait = engine
            .accept_backoff_max
            .max(engine.linger)
            .max(engine.send_timeout.unwrap_or_default());
        let time_limit = net.clock + longest_wait + Duration::from_secs(1);
        // A handler may owe more than its input (each request answered at length):
        // rounds in which clients received output do not count against `bound`, up to
        // a hard limit, so a slow stream that keeps moving is not taken for a stall.
        Limits {
            bound,
            time_limit,
            streaming_limit: 1_000_000 + bound,
        }
    }

    /// One liveness round's clients: each reads what it was sent, and half-closes once
    /// its work is done.
    pub(crate) fn liveness_clients(&mut self) -> Result<(), Violation> {
        for client in 0..self.w.io.net().clients().len() {
            let ci = self.w.io.net().clients()[client];
            let client = client as u16;
            let socket = &self.w.io.net().sockets[ci];
            if socket.gone() {
                continue;
            }
            if socket.unread_by_client() > 0 {
                self.run_event(&ScriptedEvent::Read {
                    client,
                    window: u16::MAX,
                })?;
            }
            // Done once everything it sent was read and answered (output the
            // handler sends unasked, a heartbeat, does not keep it open), or once
            // the server ended its side of a lingering close and it read the rest.
            if !self.w.io.net().sockets[ci].fin
                && (self.client_work_done(ci) || self.server_shut_write(ci))
            {
                self.run_event(&ScriptedEvent::HalfClose { client })?;
            }
        }
        Ok(())
    }

    /// What the run did, at its end.
    pub(crate) fn outcome(&self) -> Outcome {
        Outcome {
            steps: self.w.steps,
            trace_hash: self.w.trace.hash(),
            faults: self.w.io.counts().clone(),
            stats: *self.engine.stats(),
            clients: self.w.io.net().clients().len(),
            naps: self.w.naps,
        }
    }

    /// The server shut its sending side to client `ci` (a lingering close), and the
    /// client read everything before that end of stream.
    fn server_shut_write(&self, ci: usize) -> bool {
        self.w.io.net().write_shut_read(ci)
    }

    /// Bytes taken off the wire so far, by the clients and by the server (handshake
    /// messages and records too): progress, through a one-byte window as well.
    pub(crate) fn received_total(&self) -> u64 {
        let net = self.w.io.net();
        net.sockets
            .iter()
            .map(|s| s.received_wire + s.read_wire)
            .sum()
    }

    /// Client `ci` has sent everything and was answered in full.
    fn client_work_done(&self, ci: usize) -> bool {
        self.w.io.net().sockets[ci].all_sent_read() && self.w.oracle.owed(ci) == 0
    }

    /// The server is done with client `ci` (refused, closed or detached, or never
    /// accepted before a shutdown), and the client has read what it can.
    fn client_done(&self, ci: usize) -> bool {
        let s = &self.w.io.net().sockets[ci];
        let c = self.w.oracle.conn(ci);
        if s.outbound.is_some() {
            // A backend is done once the server is done with its connection (opened
            // and closed, or its connect ended in `closed`), or once the connection
            // is pooled: kept open by its handler with nothing left to do on it.
            return c.ended
                || (self.w.shut_down && !c.opened && s.server_closed)
                || self.pooled(ci);
        }
        // (A transformed connection whose handshake failed ended without `opened`.)
        let server_done = s.refused || c.ended || (self.w.shut_down && s.id.is_none());
        server_done && (s.gone() || s.unread_by_client() == 0)
    }

    /// Outbound connection `ci` is open and idle, as the simulator saw it: connected,
    /// no byte in flight either way, nothing the backend holds back (a request cut
    /// short, an answer waiting for its time), everything the handler wrote
    /// transmitted and everything read consumed, neither side shut, and nothing owed by
    /// the model. A handler may keep such a connection open on purpose (a pool of
    /// backend links): it does not keep a run from settling.
    fn pooled(&self, ci: usize) -> bool {
        let c = self.w.oracle.conn(ci);
        !self.w.shut_down
            && c.outbound
            && c.at_rest()
            && self.w.io.net().backend_idle(ci)
            && self.w.oracle.owed(ci) == 0
    }

    /// Every client is done, and no connection waits to be accepted.
    pub(crate) fn all_done(&self) -> bool {
        let net = self.w.io.net();
        let backlog_empty = net.listeners.iter().all(|l| l.backlog.is_empty());
        if !backlog_empty && !self.w.shut_down {
            return false;
        }
        (0..net.sockets.len()).all(|ci| self.client_done(ci))
    }

    /// Who is not done, and how, for a liveness failure.
    pub(crate) fn stuck(&self) -> String {
        let net = self.w.io.net();
        let Some(ci) = (0..net.sockets.len()).find(|&ci| !self.client_done(ci)) else {
            return "listener backlog not accepted".into();
        };
        let (s, c) = (&net.sockets[ci], self.w.oracle.conn(ci));
        let who = match s.outbound {
            Some(o) => format!("backend b{} (connect {:?}", s.number, o.state),
            None => format!("client c{ci} (listener {}", s.listener),
        };
        format!(
            "{who}, {:?}): opened {} ended {} fin {} unread by server {} \
             unread by client {} queued {} transmitted {} owed {} interest r{} w{} engine \
             pending out {} in {}",
            s.id,
            c.opened,
            c.ended,
            s.fin,
            s.unread_by_server(),
            s.unread_by_client(),
            c.queued,
            c.transmitted,
            self.w.oracle.owed(ci),
            s.interest_read,
            s.interest_write,
            s.id.map_or(0, |id| self.engine.pending_output(id)),
            s.id.map_or(0, |id| self.engine.pending_input(id)),
        )
    }

    /// After the liveness phase: the pool and the engine's counters are back to their
    /// start but for the pooled outbound connections (`pooled`), no other
    /// socket is left in the poller, no wake is accepted for a connection that ended,
    /// and every clean connection is complete.
    pub(crate) fn final_checks(&mut self) -> Result<(), Violation> {
        let max = self.w.config.engine.max_connections;
        let pooled: Vec<bool> = (0..self.w.io.net().sockets.len())
            .map(|ci| self.pooled(ci))
            .collect();
        let kept = pooled.iter().filter(|&&p| p).count();
        if self.engine.open_connections() != kept || self.engine.free_slots() != max - kept {
            return Err(Violation::Leak(format!(
                "{} connections still open ({kept} pooled outbound), {} of {max} slots free",
                self.engine.open_connections(),
                self.engine.free_slots()
            )));
        }
        let (net, oracle) = (self.w.io.net(), &self.w.oracle);
        let stats = *self.engine.stats();
        let opened = oracle.conns().iter().filter(|c| c.opened).count() as u64;
        // Accepted transformed connections whose handshake failed never opened.
        let unannounced = net
            .sockets
            .iter()
            .zip(oracle.conns())
            .filter(|(s, c)| c.handshaking() && s.id.is_some() && !s.refused)
            .count() as u64;
        // Every connection opened (accepted, or connected out) ended; connects that
        // failed end in `closed` too, without `opened`.
        // Pooled connections are still open.
        let ended = stats.closed + stats.detached + kept as u64;
        if stats.accepted + stats.connected != opened + unannounced
            || ended < opened
            || (self.w.io.counts().connects() == 0 && ended != opened)
        {
            return Err(Violation::Leak(format!(
                "accepted {} and connected {} (opened {opened}) but closed {} + detached {} \
                 ({kept} pooled)",
                stats.accepted, stats.connected, stats.closed, stats.detached
            )));
        }
        for (ci, (s, c)) in net.sockets.iter().zip(oracle.conns()).enumerate() {
            if pooled[ci] {
                // Open on purpose, and at rest: it got everything it was sent and
                // sent everything its handler wrote.
                if c.delivered() != s.sent || s.received != c.transmitted {
                    return Err(Violation::Incomplete {
                        client: ci,
                        detail: format!(
                            "pooled backend {:?}: backend sent {} read by server {}, handler \
                             wrote {} received by backend {}",
                            s.id,
                            s.sent,
                            c.delivered(),
                            c.transmitted,
                            s.received
                        ),
                    });
                }
                continue;
            }
            if s.registered() {
                return Err(Violation::Leak(format!(
                    "client c{ci}'s socket is still in the poller"
                )));
            }
            if let Some(id) = s.id
                && self.w.waker.wake(id)
            {
                return Err(Violation::WakeAccepted(id));
            }
            let clean = c.opened
                && s.outbound.is_none()
                && !s.gone()
                && !s.refused
                && !c.detached
                && !c.io_failed
                && !c.errored
                && !c.injected
                && !self.w.shut_down;
            if !clean {
                continue;
            }
            let owed = oracle.owed(ci);
            let delivered = c.delivered();
            // A handler that closed the connection need not have read it all: from its
            // own callback, or from another's through `Loop` (a server closing idle
            // connections to make room for new ones).
            if owed != 0
                || (delivered != s.sent && !c.leaving && !c.cross_ended)
                || s.received != c.transmitted
                || c.queued != c.transmitted
            {
                return Err(Violation::Incomplete {
                    client: ci,
                    detail: format!(
                        "{:?}: sent {} read by server {delivered}, handler wrote {} transmitted \
                         {} received {}, model owes {owed}",
                        s.id, s.sent, c.queued, c.transmitted, s.received
                    ),
                });
            }
        }
        Ok(())
    }
}
