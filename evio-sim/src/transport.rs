//! Clients that speak through a transport (TLS): the client's end of a transformed
//! connection, and a model wrapper that hands the simulator one per connection.
//!
//! The engine runs a transformed connection's bytes through the handler's
//! [`Transport`](evio_proto::Transport): the socket carries records, the handler sees
//! plaintext. The simulator's clients then need the other end of the same protocol:
//! a [`ClientTransport`] per connection turns what the script sends into records and
//! what the server sends back into plaintext, which the [`Model`] checks as it checks
//! a plain client's bytes. The simulator stays protocol-blind; `evio-tls` (feature
//! `sim`) has a rustls client with a deterministic crypto provider.

use evio_proto::{Action, CloseError, ConnId, ConnInfo, Instant, PostKind};

use crate::{Backends, Model, ModelError};

/// The client's end of one transformed connection: it encodes what the client sends
/// and decodes what the server sent. Every call is made at the simulated client's
/// turn, never from inside the engine.
pub trait ClientTransport {
    /// The bytes the client sends as soon as it connects (a TLS client's hello).
    fn start(&mut self, wire: &mut Vec<u8>);

    /// Encodes `plain`, what the client sends, onto `wire`; before the handshake is
    /// over the transport may hold it (see [`ClientTransport::holding`]).
    fn send(&mut self, plain: &[u8], wire: &mut Vec<u8>);

    /// Decodes `received`, bytes the server sent (any cut of its records), appending
    /// the plaintext to `plain` and whatever the client must answer (handshake
    /// messages, and plaintext it held until now) to `wire`.
    ///
    /// # Errors
    ///
    /// What the protocol found wrong with the server's bytes: the run fails with
    /// [`Violation::Transport`](crate::Violation::Transport).
    fn receive(
        &mut self,
        received: &[u8],
        plain: &mut Vec<u8>,
        wire: &mut Vec<u8>,
    ) -> Result<(), String>;

    /// Queues the client's closing message (TLS's `close_notify`) onto `wire`: the
    /// client ends its stream.
    fn close(&mut self, wire: &mut Vec<u8>);

    /// The transport holds plaintext it could not send yet (its handshake is not
    /// over): the client's work is not done.
    fn holding(&self) -> bool;
}

/// Makes a [`ClientTransport`] for each client that connects.
pub trait ClientTransports {
    /// The transport for a client connecting to `listener`; `None` for a plain
    /// connection (a listener the server does not transform).
    fn connect(&mut self, listener: usize) -> Option<Box<dyn ClientTransport>>;
}

/// A [`Model`] whose clients speak through a transport: every call goes to the
/// wrapped model, which sees plaintext, and [`Model::client_transports`] hands the
/// simulator `clients`. `evio_tls::sim` (evio-tls's `sim` feature) makes a TLS server
/// configuration and its clients for it, with a worked example.
pub struct Transformed<M> {
    model: M,
    clients: Option<Box<dyn ClientTransports>>,
}

impl<M> Transformed<M> {
    /// `model`, with its clients speaking through the transports `clients` makes.
    pub fn new(model: M, clients: Box<dyn ClientTransports>) -> Self {
        Transformed {
            model,
            clients: Some(clients),
        }
    }

    /// The wrapped model.
    pub fn inner(&self) -> &M {
        &self.model
    }
}

impl<M: core::fmt::Debug> core::fmt::Debug for Transformed<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Transformed")
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl<M: Model> Model for Transformed<M> {
    type Conn = M::Conn;

    fn opened(&mut self, conn: &mut M::Conn, info: &ConnInfo, now: Instant) {
        self.model.opened(conn, info, now);
    }

    fn input(&mut self, conn: &mut M::Conn, bytes: &[u8]) {
        self.model.input(conn, bytes);
    }

    fn consumed(&mut self, conn: &mut M::Conn, bytes: &[u8], now: Instant) {
        self.model.consumed(conn, bytes, now);
    }

    fn closing(&mut self, conn: &mut M::Conn) {
        self.model.closing(conn);
    }

    fn ended(&mut self, conn: &mut M::Conn) {
        self.model.ended(conn);
    }

    fn input_ended(&mut self, conn: &mut M::Conn) {
        self.model.input_ended(conn);
    }

    fn closed(&mut self, conn: &mut M::Conn, outbound: bool, error: Option<CloseError>) {
        self.model.closed(conn, outbound, error);
    }

    fn woken(&mut self, conn: &mut M::Conn, now: Instant) {
        self.model.woken(conn, now);
    }

    fn timeout(&mut self, conn: &mut M::Conn, now: Instant, wrote: usize, action: Action) {
        self.model.timeout(conn, now, wrote, action);
    }

    fn timeout_set(&mut self, conn: &mut M::Conn, at: Option<Instant>) {
        self.model.timeout_set(conn, at);
    }

    fn output(&mut self, conn: &mut M::Conn, bytes: &[u8]) -> Result<(), ModelError> {
        self.model.output(conn, bytes)
    }

    fn owed(&self, conn: &M::Conn) -> usize {
        self.model.owed(conn)
    }

    fn posted(&mut self, from: usize, to: ConnId, kind: PostKind, bytes: &[u8], accepted: bool) {
        self.model.posted(from, to, kind, bytes, accepted);
    }

    fn handler_wakes(&self) -> bool {
        self.model.handler_wakes()
    }

    fn backends(&mut self) -> Option<Box<dyn Backends>> {
        self.model.backends()
    }

    fn client_transports(&mut self) -> Option<Box<dyn ClientTransports>> {
        self.clients.take()
    }
}
