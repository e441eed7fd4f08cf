//! The checks from the clients' side of the run: the bytes a client receives, the
//! wakes made for its connection (and that they arrive), and its timeouts.

use evio_proto::{ConnId, Instant};

use super::Oracle;
use crate::network::Network;
use crate::{Model, Rule, Violation};

impl<M: Model> Oracle<M> {
    /// Client `ci` received `bytes`: the model must allow them.
    pub fn received(&mut self, ci: usize, bytes: &[u8]) -> Result<(), Violation> {
        let c = &mut self.conns[ci];
        self.model
            .output(&mut c.model, bytes)
            .map_err(|error| Violation::Model { client: ci, error })
    }

    /// A wake for client `ci`'s connection `id` was made; `accepted` is what the waker
    /// said. A wake for a connection whose socket is closed must be refused.
    pub fn wake_made(
        &mut self,
        net: &Network,
        ci: usize,
        id: ConnId,
        accepted: bool,
    ) -> Result<(), Violation> {
        if accepted && net.sockets[ci].server_closed {
            return Err(Violation::WakeAccepted(id));
        }
        self.wake_raced(ci, accepted);
        Ok(())
    }

    /// "Another thread" woke client `ci`'s connection, racing the loop.
    pub fn wake_raced(&mut self, ci: usize, accepted: bool) {
        let c = &mut self.conns[ci];
        if c.handshaking() {
            // Its handler does not know of it yet: the engine drops the wake, unless
            // the handshake is over by the time the loop handles it.
            c.woken_early |= accepted;
        } else {
            c.wake_owed |= accepted;
        }
    }

    /// Right after the loop handled wakes: every wake the simulator made for a
    /// connection that is surely still open (nothing the simulator saw can have started
    /// its close or detach) reached `woken`.
    pub fn check_wakes_delivered(&mut self, net: &Network) -> Result<(), Violation> {
        for c in &mut self.conns {
            // A wake made during a handshake was delivered or dropped by now.
            c.woken_early &= c.handshaking();
        }
        if self.shutting_down {
            return Ok(());
        }
        if self.server_wake_owed {
            return Err(Violation::contract(
                None,
                Rule::ServerWake,
                "an accepted server wake did not reach `server_woken` when the loop handled \
                 wakes"
                    .into(),
            ));
        }
        for (c, s) in self.conns.iter().zip(&net.sockets) {
            if c.wake_owed && self.surely_open(c, s.server_closed) {
                return Err(Violation::contract(
                    s.id,
                    Rule::WakeDelivered,
                    "a wake accepted for this open connection did not reach `woken` when the \
                     loop handled wakes"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// A server wake was made; `accepted` is what the waker said.
    pub fn server_wake_made(&mut self, accepted: bool) {
        self.server_wake_owed |= accepted;
    }

    /// At the end of a step whose loop ran at `clock`, the engine's earliest deadline
    /// being `deadline`: every open connection's timeout is among the engine's
    /// deadlines, and one that was due when the loop ran has fired.
    pub fn check_timeouts_due(
        &self,
        net: &Network,
        deadline: Option<Instant>,
        clock: Instant,
    ) -> Result<(), Violation> {
        for (c, s) in self.conns.iter().zip(&net.sockets) {
            let Some((at, set)) = c.timeout else {
                continue;
            };
            if !self.surely_open(c, s.server_closed) {
                continue;
            }
            // One set during this round for now fires at the next turn of the loop.
            if at <= clock && set < clock {
                return Err(Violation::contract(
                    s.id,
                    Rule::TimeoutFired,
                    format!("its timeout for {at} has not fired, and the loop ran at {clock}"),
                ));
            }
            if deadline.is_none_or(|d| d > at) {
                return Err(Violation::contract(
                    s.id,
                    Rule::TimeoutScheduled,
                    format!(
                        "its timeout is for {at}, but the engine's next deadline is {deadline:?}"
                    ),
                ));
            }
        }
        Ok(())
    }
}
