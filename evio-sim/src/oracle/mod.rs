//! The oracle: the per-connection shadow state the simulator keeps beside the engine,
//! and every check of the engine's outputs and of the handler's callbacks against the
//! network, the contract and the [`Model`].
//!
//! The oracle decides nothing about the run; it watches. The driver tells it what it
//! performed and reported, the observed handler tells it what ran, and each check says
//! which [`Rule`](crate::Rule) (or which [`Violation`] variant) broke. The ticker's
//! rules are in [`crate::tick`].
//!
//! The parts: `shadow.rs` holds what the oracle knows of each connection and listener;
//! `client.rs` checks what the clients see, `outputs.rs` the engine's outputs as the
//! driver performs them, `callbacks.rs` each handler callback and `ending.rs` the
//! callbacks that end a connection.

use evio_proto::{Config, ConnId};

use crate::network::Network;
use crate::tick::TickOracle;
use crate::{Model, Violation};

mod callbacks;
mod client;
mod ending;
mod outputs;
mod shadow;

use shadow::ListenerShadow;
pub(crate) use shadow::Shadow;

/// The oracle of one run.
#[derive(Debug)]
pub(crate) struct Oracle<M: Model> {
    model: M,
    conns: Vec<Shadow<M::Conn>>,
    /// The client whose connection holds each engine slot, from its accept until its
    /// `closed` or `detached`.
    by_slot: Vec<Option<usize>>,
    listeners: Vec<ListenerShadow>,
    engine: Config,
    /// A handler returned `Shutdown`.
    pub shutting_down: bool,
    /// The connection whose handler returned `Shutdown` first (`None`: the server's).
    trigger: Option<usize>,
    /// The bytes the trigger had queued when its flush ended (the shutdown's first
    /// close or detach), what it owes at its close, and whether its last write was
    /// short then (its flush ended at a full socket: nothing more is owed).
    trigger_flushed: Option<(u64, bool)>,
    /// A server wake was accepted that `server_woken` has not answered.
    server_wake_owed: bool,
    /// The ticker's contract.
    pub tick: TickOracle,
    /// The handler connected out: its connections may wait for each other's drain.
    relaying: bool,
}

impl<M: Model> Oracle<M> {
    /// An oracle for an engine built with `engine` and `listeners` listeners, checking
    /// clients' output with `model`.
    pub fn new(model: M, engine: Config, listeners: usize) -> Self {
        Oracle {
            model,
            conns: Vec::new(),
            by_slot: vec![None; engine.max_connections],
            listeners: (0..listeners).map(|_| ListenerShadow::default()).collect(),
            tick: TickOracle::new(engine.min_tick),
            engine,
            shutting_down: false,
            trigger: None,
            trigger_flushed: None,
            server_wake_owed: false,
            relaying: false,
        }
    }

    /// The shadow of client `ci`'s connection.
    pub fn conn(&self, ci: usize) -> &Shadow<M::Conn> {
        &self.conns[ci]
    }

    /// Every client's shadow, in client order.
    pub fn conns(&self) -> &[Shadow<M::Conn>] {
        &self.conns
    }

    /// Bytes the model says client `ci` is still owed.
    pub fn owed(&self, ci: usize) -> usize {
        self.model.owed(&self.conns[ci].model)
    }

    /// A new client connected.
    pub fn connected(&mut self) {
        self.conns.push(Shadow::default());
    }

    /// The client whose connection `id` is, while it has not ended.
    pub fn client_of(&self, net: &Network, id: ConnId) -> Option<usize> {
        let ci = (*self.by_slot.get(id.slot())?)?;
        (net.sockets[ci].id == Some(id)).then_some(ci)
    }

    /// The model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The model, to tell it what the handler posted to other loops.
    pub fn model_mut(&mut self) -> &mut M {
        &mut self.model
    }

    /// A deadline other than the tick's may be among the engine's: a listener's
    /// back-off (an EMFILE was reported on it, or it is paused), or a connection's
    /// timeout or lingering close.
    pub fn other_deadline_possible(&self, net: &Network) -> bool {
        self.listeners.iter().any(|l| l.must_pause)
            || net.listeners.iter().any(|l| !l.watched)
            || self.conns.iter().any(|c| c.deadline_possible && !c.ended)
            // A connect's timeout is the engine's deadline until it is answered, and a
            // handshake's until it is over.
            || self
                .conns
                .iter()
                .any(|c| (c.outbound && !c.connect_done || c.handshaking()) && !c.ended)
    }

    /// The connection is open as far as anything the oracle saw can tell: nothing has
    /// started its close or detach.
    fn surely_open(&self, c: &Shadow<M::Conn>, server_closed: bool) -> bool {
        c.opened
            && !c.ended
            && !server_closed
            && !c.leaving
            && !c.cross_ended
            && !c.lingering
            && !c.aborted
            && !c.eof_reported
            && !c.io_failed
            // A full input buffer may have been a frame too large.
            && c.last_input < self.engine.input_capacity
    }

    /// The client whose connection `id` a callback ran for, while it is between
    /// `opened` and its end.
    fn live(&self, net: &Network, id: ConnId, callback: &'static str) -> Result<usize, Violation> {
        match self.client_of(net, id) {
            Some(ci) if self.conns[ci].opened && !self.conns[ci].ended => Ok(ci),
            _ => Err(Violation::CallbackOutsideLife { id, callback }),
        }
    }

    /// Client `ci`'s connection is no longer open (see [`Model::closing`]).
    fn closing(&mut self, ci: usize) {
        let c = &mut self.conns[ci];
        if c.opened && !c.closing_told {
            c.closing_told = true;
            self.model.closing(&mut c.model);
        }
    }
}
