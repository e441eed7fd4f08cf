//! The checks of the end of a connection's life: `closed` and `detached`.

use evio_proto::{CloseError, ConnId};

use super::Oracle;
use crate::network::Network;
use crate::{Model, Rule, Violation};

impl<M: Model> Oracle<M> {
    /// `closed` ran for `id` with `error`: once, after the socket closed, after every
    /// write's callbacks, with the error the driver reported.
    pub(super) fn check_closed(
        &mut self,
        net: &Network,
        id: ConnId,
        error: Option<CloseError>,
    ) -> Result<usize, Violation> {
        let Some(ci) = self.client_of(net, id) else {
            // The slot no longer maps to a connection that ended: name a second `closed`
            // (or one after `detached` took the socket) as such.
            let ended = net
                .sockets
                .iter()
                .zip(&self.conns)
                .any(|(s, c)| s.id == Some(id) && c.ended);
            return Err(if ended {
                Violation::ClosedTwice(id)
            } else {
                Violation::CallbackOutsideLife {
                    id,
                    callback: "closed",
                }
            });
        };
        let c = &mut self.conns[ci];
        if !c.opened {
            return Err(Violation::CallbackOutsideLife {
                id,
                callback: "closed",
            });
        }
        if c.ended {
            return Err(Violation::ClosedTwice(id));
        }
        if !net.sockets[ci].server_closed {
            return Err(Violation::ClosedBeforeSocket(id));
        }
        if c.postwrites != c.prewrites {
            return Err(Violation::accounting(
                ci,
                Rule::WritesPaired,
                format!(
                    "closed after {} prewrites but {} postwrites",
                    c.prewrites, c.postwrites
                ),
            ));
        }
        // The I/O error the driver reported reaches `closed`; a frame too large only
        // after the handler was given a full input buffer; a send timeout only after
        // the send bound passed; nothing else is an error.
        let cap = self.engine.input_capacity;
        let fits = match error {
            Some(CloseError::Io(e)) => c.io_error == Some(e),
            // (A transformed connection's buffer holds an incomplete record too.)
            Some(CloseError::FrameTooLarge { capacity }) => {
                c.io_error.is_none() && capacity == cap && c.last_input + c.kept >= cap
            }
            Some(CloseError::SendTimeout) => c.io_error.is_none() && c.bound_passed,
            // The error its transport failed with.
            Some(CloseError::Transport(e)) => c.transport_error == Some(e),
            // Only an outbound connection's connect fails; these were accepted.
            Some(CloseError::Connect(_) | CloseError::ConnectTimeout) => false,
            None => c.io_error.is_none(),
        };
        if !fits {
            return Err(Violation::contract(
                Some(id),
                Rule::ClosedError,
                format!(
                    "closed with {error:?}, but the driver reported {:?} and the last data call \
                     was given {} bytes of an input buffer of {cap}",
                    c.io_error, c.last_input
                ),
            ));
        }
        c.ended = true;
        c.errored = error.is_some();
        self.by_slot[id.slot()] = None;
        Ok(ci)
    }

    /// `closed` ran for outbound connection `id`, which never opened, with `error`:
    /// once; with the error the driver reported for its connect, or `ConnectTimeout`
    /// for a connect the driver never reported (after time passed), or none (the
    /// handler or a shutdown abandoned it). An id the driver was never asked to
    /// connect was abandoned before the engine asked: no error. Returns the backend's
    /// socket, if there is one.
    pub(super) fn check_connect_closed(
        &mut self,
        net: &Network,
        id: ConnId,
        error: Option<CloseError>,
    ) -> Result<Option<usize>, Violation> {
        let Some(ci) = self.client_of(net, id) else {
            if net.sockets.iter().any(|s| s.id == Some(id)) {
                return Err(Violation::ClosedTwice(id));
            }
            if error.is_some() {
                return Err(Violation::contract(
                    Some(id),
                    Rule::ConnectError,
                    format!("closed with {error:?} for a connect the driver was never asked for"),
                ));
            }
            return Ok(None);
        };
        let c = &mut self.conns[ci];
        if c.ended {
            return Err(Violation::ClosedTwice(id));
        }
        if !net.sockets[ci].server_closed {
            return Err(Violation::ClosedBeforeSocket(id));
        }
        let started = net.sockets[ci].outbound.map(|o| o.started);
        let fits = match (error, c.connect_error) {
            (Some(CloseError::Connect(e)), Some(reported)) => e == reported,
            (Some(CloseError::ConnectTimeout), None) => {
                !c.connect_done && started.is_some_and(|t| net.clock > t)
            }
            // Abandoned by a handler (closed or aborted while connecting), or by a
            // shutdown.
            (None, None) => !c.connect_done,
            _ => false,
        };
        if !fits {
            return Err(Violation::contract(
                Some(id),
                Rule::ConnectError,
                format!(
                    "closed with {error:?}, but the driver reported {:?} for the connect \
                     (done: {}, started at {started:?}, now {})",
                    c.connect_error, c.connect_done, net.clock
                ),
            ));
        }
        c.ended = true;
        c.errored = error.is_some();
        self.by_slot[id.slot()] = None;
        Ok(Some(ci))
    }

    /// `detached` ran for `id`, the socket `taken` or not: after the socket left the
    /// driver, after every write's callbacks.
    pub(super) fn check_detached(
        &mut self,
        net: &Network,
        id: ConnId,
        taken: bool,
    ) -> Result<(), Violation> {
        let ci = self.live(net, id, "detached")?;
        let c = &mut self.conns[ci];
        if !net.sockets[ci].server_closed {
            return Err(Violation::CallbackOutsideLife {
                id,
                callback: "detached",
            });
        }
        if c.postwrites != c.prewrites {
            return Err(Violation::accounting(
                ci,
                Rule::WritesPaired,
                format!(
                    "detached after {} prewrites but {} postwrites",
                    c.prewrites, c.postwrites
                ),
            ));
        }
        if taken {
            c.ended = true;
            c.detached = true;
            self.by_slot[id.slot()] = None;
            self.model.ended(&mut c.model);
        }
        Ok(())
    }
}
