//! The checks of each handler callback the observed handler reports, against the
//! network, the contract and the model; `closed` and `detached` are in `ending.rs`.

use core::ops::Range;

use evio_proto::{Action, Addr, ConnId, ConnInfo, Flow, Instant, ListenerId};

use super::Oracle;
use crate::network::{Network, backend_local_addr, listen_addr, peer_addr};
use crate::observe::{Injection, Observation};
use crate::{Model, Rule, Violation};

impl<M: Model> Oracle<M> {
    /// An injected action fired; only a connection whose injection fired ends other than
    /// its handler and client would have it (one merely armed stays a clean connection).
    pub fn injection_fired(&mut self, net: &Network, injection: Injection) {
        let (Injection::Close(id) | Injection::Detach { id, .. }) = injection else {
            return;
        };
        if let Some(ci) = self.client_of(net, id) {
            self.conns[ci].injected = true;
        }
    }

    /// Checks one handler callback against the network, the contract and the model;
    /// `arena` holds the `data` inputs.
    pub fn check(&mut self, net: &Network, o: &Observation, arena: &[u8]) -> Result<(), Violation> {
        match *o {
            Observation::Serving { flow } => self.note_flow(flow),
            Observation::Opened {
                id,
                info,
                now,
                wrote,
                action,
            } => {
                let ci = self.check_opened(net, id, info, now)?;
                self.note_callback(ci, wrote, action);
                self.left(ci, net.clock, action);
            }
            Observation::Data {
                id,
                ref input,
                now,
                consumed,
                wrote,
                action,
            } => {
                let ci = self.check_data(net, id, arena, input, now, consumed)?;
                self.note_callback(ci, wrote, action);
                self.left(ci, net.clock, action);
            }
            Observation::Woken {
                id,
                now,
                wrote,
                action,
            } => {
                let ci = self.check_woken(net, id, now)?;
                self.note_callback(ci, wrote, action);
                self.left(ci, net.clock, action);
            }
            Observation::Timeout {
                id,
                now,
                wrote,
                action,
            } => {
                let ci = self.check_timeout(net, id, now)?;
                let c = &mut self.conns[ci];
                self.model.timeout(&mut c.model, now, wrote, action);
                self.note_callback(ci, wrote, action);
                self.left(ci, net.clock, action);
            }
            Observation::InputEnded { id, wrote, action } => {
                let ci = self.live(net, id, "input_ended")?;
                if self.conns[ci].leaving {
                    return Err(Violation::AfterLeaving {
                        id,
                        callback: "input_ended",
                    });
                }
                if action == Action::Close {
                    // The default: it closes once its output is flushed, after
                    // `drained` and input held back, if any (as the end of the stream
                    // did before `input_ended` was a callback), bounded from now.
                    let bounded = self.engine.send_timeout.is_some();
                    let c = &mut self.conns[ci];
                    c.wrote(wrote);
                    if !c.lingering && !c.aborted && !c.io_failed {
                        c.leaving_since.get_or_insert(net.clock);
                        c.deadline_possible |= bounded;
                    }
                    self.closing(ci);
                } else {
                    self.note_callback(ci, wrote, action);
                    self.left(ci, net.clock, action);
                }
                let c = &mut self.conns[ci];
                if action == Action::None && !c.cross_ended {
                    // Kept open, half-closed: it is not leaving (no send bound) until
                    // a handler closes it, or shuts its sending side too.
                    c.half_open = true;
                    c.leaving_since = None;
                }
            }
            Observation::Drained { id, wrote, action } => {
                let ci = self.check_drained(net, id)?;
                self.note_callback(ci, wrote, action);
                self.left(ci, net.clock, action);
            }
            Observation::ServerWoken { flow } => {
                self.check_server_woken()?;
                self.note_flow(flow);
            }
            Observation::LoopMessage { flow, .. } | Observation::PostRefused { flow } => {
                self.note_flow(flow);
            }
            Observation::WroteTo { id, bytes } => self.check_wrote_to(net, id, bytes)?,
            Observation::AbortedThroughLoop { id } => {
                let ci = self.live(net, id, "an abort through Loop")?;
                self.conns[ci].abort_asked = true;
                self.closing(ci);
            }
            Observation::NoLongerOpen { id } => {
                let ci = self.live(net, id, "the end of its open state")?;
                self.left_through_loop(ci, net.clock);
                self.conns[ci].cross_ended = true;
                self.closing(ci);
            }
            Observation::TimeoutSet { id, at } => {
                let ci = self.live(net, id, "a timeout setting")?;
                let c = &mut self.conns[ci];
                c.timeout = at.map(|at| (at, net.clock));
                c.deadline_possible |= at.is_some();
                self.model.timeout_set(&mut c.model, at);
            }
            Observation::Closed {
                id,
                outbound,
                error,
                flow,
            } => {
                let connecting = outbound
                    && self
                        .client_of(net, id)
                        .is_none_or(|ci| !self.conns[ci].opened);
                if connecting {
                    // A connect that ended without `opened`.
                    if let Some(ci) = self.check_connect_closed(net, id, error)? {
                        let c = &mut self.conns[ci];
                        self.model.closed(&mut c.model, true, error);
                    }
                } else {
                    let ci = self.check_closed(net, id, error)?;
                    let c = &mut self.conns[ci];
                    self.model.ended(&mut c.model);
                    self.model.closed(&mut c.model, c.outbound, error);
                }
                self.note_flow(flow);
            }
            Observation::Detached { id, taken, flow } => {
                self.check_detached(net, id, taken)?;
                self.note_flow(flow);
            }
            Observation::Prewrite { id, attempted } => self.check_prewrite(net, id, attempted)?,
            Observation::Postwrite {
                id,
                written,
                remaining,
            } => self.check_postwrite(net, id, written, remaining)?,
            Observation::Tick { now, tick } => {
                self.tick.fired(now, net.clock, tick)?;
                self.note_flow(tick.flow);
            }
            Observation::Decoded {
                id,
                ref plain,
                kept,
                ended,
            } => self.decoded(net, id, &arena[plain.clone()], kept, ended)?,
            Observation::TransportFailed { id, error } => {
                self.transport_failed(net, id, error)?;
            }
        }
        Ok(())
    }

    /// A connection's own callback for client `ci` wrote `wrote` bytes and returned
    /// `action`.
    fn note_callback(&mut self, ci: usize, wrote: usize, action: Action) {
        self.conns[ci].wrote(wrote);
        self.note_action(Some(ci), action);
    }

    /// `opened` ran for `id` with `info` at the engine's time `now`: once, for a
    /// connection the driver accepted, with the addresses the driver reported. Returns
    /// the client.
    fn check_opened(
        &mut self,
        net: &Network,
        id: ConnId,
        info: ConnInfo,
        now: Instant,
    ) -> Result<usize, Violation> {
        let Some(ci) = self.client_of(net, id) else {
            return Err(Violation::CallbackOutsideLife {
                id,
                callback: "opened",
            });
        };
        let c = &mut self.conns[ci];
        if c.opened {
            return Err(Violation::OpenedTwice(id));
        }
        let socket = &net.sockets[ci];
        let expected = match socket.outbound {
            Some(o) => {
                if !c.connect_done || c.connect_error.is_some() || c.ended {
                    return Err(Violation::contract(
                        Some(id),
                        Rule::ConnectOnce,
                        format!(
                            "opened for a connect the driver did not report done (failed: \
                             {:?}, ended: {})",
                            c.connect_error, c.ended
                        ),
                    ));
                }
                ConnInfo {
                    id,
                    listener: ListenerId::new(0).expect("listener 0"),
                    local: match o.peer {
                        Addr::Ip(_) => Addr::Ip(backend_local_addr(socket.number)),
                        Addr::Unix => Addr::Unix,
                    },
                    peer: o.peer,
                    outbound: true,
                }
            }
            None => {
                let listener = socket.listener;
                ConnInfo {
                    id,
                    listener: ListenerId::new(listener).expect("a simulated listener"),
                    local: Addr::Ip(listen_addr(listener)),
                    peer: Addr::Ip(peer_addr(socket.number)),
                    outbound: false,
                }
            }
        };
        if info != expected {
            return Err(Violation::contract(
                Some(id),
                Rule::OpenedAddresses,
                format!("opened with {info:?}, the driver reported {expected:?}"),
            ));
        }
        c.opened = true;
        self.model.opened(&mut c.model, &info, now);
        if c.transformed {
            self.opened_late(ci, net.clock);
        }
        Ok(ci)
    }

    /// `data` ran for `id` with `arena[input]` at the engine's time `now` and consumed
    /// `consumed` bytes of it: it was given exactly what was read and not consumed
    /// before, and neither after its handler asked to leave nor while its close
    /// lingers. Returns the client.
    fn check_data(
        &mut self,
        net: &Network,
        id: ConnId,
        arena: &[u8],
        input: &Range<usize>,
        now: Instant,
        consumed: usize,
    ) -> Result<usize, Violation> {
        let ci = self.live(net, id, "data")?;
        let c = &mut self.conns[ci];
        if c.leaving {
            return Err(Violation::AfterLeaving {
                id,
                callback: "data",
            });
        }
        if c.lingering {
            return Err(Violation::contract(
                Some(id),
                Rule::LingerQuiet,
                "`data` while its close lingers".into(),
            ));
        }
        let input = &arena[input.clone()];
        // Exactly the input not consumed before, then what was read since.
        let held = &c.delivered[c.handler_pos..];
        if held != input {
            return Err(Violation::Input {
                client: ci,
                detail: format!(
                    "got {} bytes, expected the {} bytes read and not consumed",
                    input.len(),
                    held.len()
                ),
            });
        }
        // The engine's time, not the network's clock (the engine's time is what the
        // driver last reported, and can lag it): the model decides a time-dependent
        // reply with the very instant the handler decided with.
        self.model.consumed(&mut c.model, &input[..consumed], now);
        c.handler_pos += consumed;
        c.last_input = input.len();
        if c.handler_pos > 4096 {
            // Keep memory bounded on long runs: consumed bytes are never looked at again.
            c.delivered.drain(..c.handler_pos);
            c.delivered_base += c.handler_pos as u64;
            c.handler_pos = 0;
        }
        Ok(ci)
    }

    /// `woken` ran for `id` at the engine's time `now`: not after its handler asked to
    /// leave, and (when only the simulator wakes) only for a wake made for it. Returns
    /// the client.
    fn check_woken(&mut self, net: &Network, id: ConnId, now: Instant) -> Result<usize, Violation> {
        let ci = self.live(net, id, "woken")?;
        let c = &mut self.conns[ci];
        if c.leaving {
            return Err(Violation::AfterLeaving {
                id,
                callback: "woken",
            });
        }
        if !c.wake_owed && !c.woken_early && !self.model.handler_wakes() {
            return Err(Violation::contract(
                Some(id),
                Rule::WokenForItsWake,
                "woken with no wake made for this connection since its last woken (a \
                 wake for an earlier connection in its slot?)"
                    .into(),
            ));
        }
        c.wake_owed = false;
        c.woken_early = false;
        self.model.woken(&mut c.model, now);
        Ok(ci)
    }

    /// `timeout` ran for `id` at `now`: not after its handler asked to leave, once per
    /// timeout set, never early. Returns the client.
    fn check_timeout(
        &mut self,
        net: &Network,
        id: ConnId,
        now: Instant,
    ) -> Result<usize, Violation> {
        let ci = self.live(net, id, "timeout")?;
        let c = &mut self.conns[ci];
        if c.leaving {
            return Err(Violation::AfterLeaving {
                id,
                callback: "timeout",
            });
        }
        match c.timeout.take() {
            None => {
                return Err(Violation::contract(
                    Some(id),
                    Rule::TimeoutOnce,
                    format!("`timeout` at {now} with no timeout set"),
                ));
            }
            Some((at, _)) if now < at => {
                return Err(Violation::contract(
                    Some(id),
                    Rule::TimeoutEarly,
                    format!("`timeout` at {now}, before its deadline {at}"),
                ));
            }
            Some(_) => {}
        }
        Ok(ci)
    }

    /// `drained` ran for `id`: not after its handler asked to leave, and only once all
    /// its output was sent. Returns the client.
    fn check_drained(&mut self, net: &Network, id: ConnId) -> Result<usize, Violation> {
        let ci = self.live(net, id, "drained")?;
        let c = &mut self.conns[ci];
        if c.leaving {
            return Err(Violation::AfterLeaving {
                id,
                callback: "drained",
            });
        }
        // (After a failed socket its output is dropped, not sent: a handler whose input
        // waited hears of the room that leaves.)
        if c.unsent() != 0 && !c.io_failed {
            return Err(Violation::contract(
                Some(id),
                Rule::DrainedEmpty,
                format!("`drained` with {} bytes still unsent", c.unsent()),
            ));
        }
        Ok(ci)
    }

    /// `server_woken` ran: only for a server wake made since the last.
    fn check_server_woken(&mut self) -> Result<(), Violation> {
        if !self.server_wake_owed {
            return Err(Violation::contract(
                None,
                Rule::ServerWake,
                "`server_woken` with no server wake made since the last".into(),
            ));
        }
        self.server_wake_owed = false;
        Ok(())
    }

    /// A handler wrote `bytes` to `id` through `Loop`: only while it is open.
    fn check_wrote_to(&mut self, net: &Network, id: ConnId, bytes: usize) -> Result<(), Violation> {
        let ci = self.live(net, id, "a write through `Loop`")?;
        let c = &mut self.conns[ci];
        if c.leaving || c.cross_ended || c.lingering || c.aborted {
            return Err(Violation::AfterLeaving {
                id,
                callback: "a write through `Loop`",
            });
        }
        c.wrote(bytes);
        Ok(())
    }

    /// `prewrite` ran for `id` announcing `attempted` bytes: one per transmit, before it,
    /// for exactly the output pending.
    fn check_prewrite(
        &mut self,
        net: &Network,
        id: ConnId,
        attempted: usize,
    ) -> Result<(), Violation> {
        let ci = self.live(net, id, "prewrite")?;
        let c = &mut self.conns[ci];
        c.attempted = attempted;
        c.prewrites += 1;
        // The prewrite comes before its transmit is performed (a transformed
        // connection's, before its plaintext is encoded: its records may take several
        // transmits, or share one with a handshake message).
        if c.prewrites != c.postwrites + 1 || (!c.transformed && c.prewrites != c.transmits + 1) {
            return Err(Violation::accounting(
                ci,
                Rule::PrewritePerTransmit,
                format!(
                    "prewrite #{} after {} postwrites, for {} transmits",
                    c.prewrites, c.postwrites, c.transmits
                ),
            ));
        }
        if attempted as u64 != c.unsent() || attempted == 0 {
            return Err(Violation::accounting(
                ci,
                Rule::PrewriteAmount,
                format!(
                    "prewrite({attempted}) but the handler wrote {} of which {} were sent",
                    c.queued, c.transmitted
                ),
            ));
        }
        Ok(())
    }

    /// `postwrite` ran for `id` with `written` and `remaining`: one per transmit, after it,
    /// adding up to what its `prewrite` announced.
    fn check_postwrite(
        &mut self,
        net: &Network,
        id: ConnId,
        written: usize,
        remaining: usize,
    ) -> Result<(), Violation> {
        let ci = self.live(net, id, "postwrite")?;
        let c = &mut self.conns[ci];
        c.postwrites += 1;
        if c.transformed {
            // Encoded: sent as far as its handler's output goes.
            c.transmitted += written as u64;
        }
        if c.postwrites != c.prewrites || (!c.transformed && c.postwrites != c.transmits) {
            return Err(Violation::accounting(
                ci,
                Rule::PostwritePerTransmit,
                format!(
                    "postwrite #{} after {} prewrites, for {} transmits",
                    c.postwrites, c.prewrites, c.transmits
                ),
            ));
        }
        if remaining as u64 != c.queued.wrapping_sub(c.transmitted)
            || written.checked_add(remaining) != Some(c.attempted)
        {
            return Err(Violation::accounting(
                ci,
                Rule::PostwriteAmount,
                format!(
                    "postwrite({written}, {remaining}) after prewrite({}), but the \
                     handler wrote {} of which {} were sent",
                    c.attempted, c.queued, c.transmitted
                ),
            ));
        }
        Ok(())
    }

    /// A server-level callback returned `flow`.
    fn note_flow(&mut self, flow: Flow) {
        if flow == Flow::Shutdown && !self.shutting_down {
            self.shutting_down = true;
            self.trigger = None;
        }
    }

    /// A callback for client `ci` (`None`: not a connection's own callback) returned
    /// `action`.
    /// Client `ci`'s handler returned `action` at `clock`: a `Close` or `Detach` starts
    /// the send bound (once), and a `Close` over unconsumed input must linger.
    fn left(&mut self, ci: usize, clock: Instant, action: Action) {
        let bounded = self.engine.send_timeout.is_some();
        let c = &mut self.conns[ci];
        if !matches!(action, Action::Close | Action::Detach) || c.io_failed {
            return;
        }
        c.leaving_since.get_or_insert(clock);
        c.deadline_possible |= bounded;
        if action == Action::Close && c.unconsumed() > 0 && !c.eof_reported {
            c.must_linger = true;
        }
    }

    /// Another callback found client `ci` no longer open at `clock`: a handler closed,
    /// detached or aborted it through `Loop` (or the engine began to close it). As for
    /// its own action: the send bound starts, and a close (which the next output tells
    /// from a detach or an abort) over unconsumed input must linger.
    fn left_through_loop(&mut self, ci: usize, clock: Instant) {
        let bounded = self.engine.send_timeout.is_some();
        let c = &mut self.conns[ci];
        // (A connection kept open after its peer ended leaves here too.)
        if c.cross_ended || c.leaving || c.io_failed || (c.eof_reported && !c.half_open) {
            return;
        }
        c.leaving_since.get_or_insert(clock);
        c.deadline_possible |= bounded;
        if c.unconsumed() > 0 && !c.eof_reported {
            c.must_linger = true;
        }
    }

    fn note_action(&mut self, ci: Option<usize>, action: Action) {
        if let (Some(ci), Action::Close | Action::Detach | Action::Abort) = (ci, action) {
            self.conns[ci].leaving = true;
            self.conns[ci].abort_asked |= action == Action::Abort;
            self.closing(ci);
        }
        if action == Action::Shutdown && !self.shutting_down {
            self.shutting_down = true;
            self.trigger = ci;
        }
    }
}
