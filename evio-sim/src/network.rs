//! The virtual network: listeners with their backlogs, one virtual socket per client
//! (the client's end and the server's, with the server's receive and send windows
//! between them), the virtual clock, and readiness as a level-triggered poller reports
//! it.
//!
//! Everything here is honest: a read returns what is waiting, a write takes what the
//! send window has room for, readiness is the sockets' level. Faults are decided around
//! these results by [`FaultInjector`](crate::injector::FaultInjector), and what the
//! engine does with them is checked by the [`Oracle`](crate::oracle::Oracle).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use evio_proto::{Addr, ConnId, Instant, IoError, IoErrorKind, Readiness};

use crate::{Backends, ClientTransport, ClientTransports, Rng, SimConfig};

/// ECONNRESET on Linux: the peer reset the connection.
pub(crate) const ECONNRESET: i32 = 104;
/// EPIPE on Linux: writing to a connection the peer closed.
pub(crate) const EPIPE: i32 = 32;
/// ENFILE on Linux: the system's descriptor table is full (an accept error some
/// drivers pass on as `AcceptError::Other`).
pub(crate) const ENFILE: i32 = 23;
/// ECONNREFUSED on Linux: nothing listens at the address connected to.
pub(crate) const ECONNREFUSED: i32 = 111;

/// The error a virtual socket reports for `errno`.
pub(crate) fn io_error(errno: i32) -> IoError {
    let kind = match errno {
        ECONNRESET => IoErrorKind::ConnectionReset,
        EPIPE => IoErrorKind::BrokenPipe,
        ECONNREFUSED => IoErrorKind::ConnectionRefused,
        _ => IoErrorKind::Other,
    };
    IoError::with_code(kind, errno)
}

/// The local address the driver reports for backend `backend`'s connection.
pub(crate) fn backend_local_addr(backend: usize) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, 1, (backend >> 16) as u8)),
        20000 + (backend % 40000) as u16,
    )
}

/// How a simulated backend answers a connect, drawn when the engine asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnectPlan {
    /// It accepts once the clock reaches `at`, then serves (or, with `reset`, resets
    /// the connection at its first turn).
    Accept {
        /// When the connect completes.
        at: Instant,
        /// The backend resets the connection right after accepting it.
        reset: bool,
    },
    /// `connect(2)` itself fails with ECONNREFUSED: no socket is kept.
    RefuseAtOnce,
    /// The connect fails with ECONNREFUSED once the clock reaches `at`.
    Refuse {
        /// When the refusal arrives.
        at: Instant,
    },
    /// Never answered: only the engine's timeout ends it.
    Hang,
}

/// Where an outbound connection's connect stands, as the driver reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnectState {
    /// Started; the driver has not reported how it ended.
    Pending,
    /// The driver reported it connected (`FinishConnect::done`).
    Connected,
    /// The driver reported it failed (at once, or from `FinishConnect`).
    Failed,
}

/// The backend's side of an outbound connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Outbound {
    /// How the backend answers the connect.
    pub plan: ConnectPlan,
    /// Where the connect stands.
    pub state: ConnectState,
    /// The address the engine connected to.
    pub peer: Addr,
    /// When the engine asked for the connect.
    pub started: Instant,
    /// The backend reset the connection after accepting it (done once).
    pub reset_done: bool,
}

impl Outbound {
    /// The connect's outcome is decided at `clock`: `Some(true)` accepted,
    /// `Some(false)` refused, `None` not yet (or never).
    pub fn decided(&self, clock: Instant) -> Option<bool> {
        match self.plan {
            ConnectPlan::Accept { at, .. } if clock >= at => Some(true),
            ConnectPlan::Refuse { at } if clock >= at => Some(false),
            ConnectPlan::RefuseAtOnce => Some(false),
            _ => None,
        }
    }
}

/// How a finished connect ends, as the socket's pending error says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FinishOutcome {
    /// Connected.
    Done,
    /// Failed with this error.
    Failed(IoError),
    /// Not decided yet.
    InProgress,
}

/// The socket the simulator hands to [`Events::detached`](evio_proto::Events::detached):
/// take it with `socket.take::<SimStream>()`. Under the real driver the same handler
/// receives an `evio_os` socket instead, so handlers that keep detached sockets should
/// accept either.
#[derive(Debug, PartialEq, Eq)]
pub struct SimStream {
    /// The simulator's client number for this connection.
    pub client: usize,
}

/// The address listener `listener` is bound to.
pub(crate) fn listen_addr(listener: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7000 + listener as u16)
}

/// The address client `client` connects from.
pub(crate) fn peer_addr(client: usize) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(10, 0, (client >> 8) as u8, client as u8)),
        40000 + (client % 20000) as u16,
    )
}

/// One client's connection: the client's end and the server's socket. A backend's
/// connection (an outbound connection the engine opened) is a socket too, the backend
/// standing where the client stands: what "the client" reads is what the engine sent
/// to the backend, and what "the client" sends is the backend's answer.
#[derive(Debug, Default)]
pub(crate) struct Socket {
    /// The client's number (in the order clients connected) or the backend's (in the
    /// order the engine connected out).
    pub number: usize,
    /// A backend's connection: how its connect goes.
    pub outbound: Option<Outbound>,
    /// The server shut its sending side (`Output::ShutdownWrite`): the peer reads the
    /// end of the stream once it has read everything before.
    pub write_shut: bool,
    /// The listener the client connected to.
    pub listener: usize,
    /// The server's connection id, once the engine accepted the connection.
    pub id: Option<ConnId>,
    /// The engine refused the connection when it accepted it (closed at once).
    pub refused: bool,
    /// The server's socket is in the poller (kept in step with
    /// [`Network::polled`]).
    registered: bool,
    /// The server closed (or detached) its socket.
    pub server_closed: bool,
    /// The engine wants to hear when the socket is readable.
    pub interest_read: bool,
    /// The engine wants to hear when the socket is writable.
    pub interest_write: bool,
    /// Bytes the client sent that wait for room in the server's receive window.
    outbox: VecDeque<u8>,
    /// The server's receive window: bytes the server can read.
    to_server: VecDeque<u8>,
    /// The server's send window: bytes the server wrote that the client has not read.
    to_client: VecDeque<u8>,
    /// Bytes the client sent in all.
    pub sent: u64,
    /// Bytes the client received in all.
    pub received: u64,
    /// Everything the client received, in order.
    pub received_bytes: Vec<u8>,
    /// Bytes the client took off the wire in all: `received`, but for a client
    /// with a transport, whose records and handshake messages count here.
    pub received_wire: u64,
    /// Bytes the server read off the wire in all.
    pub read_wire: u64,
    /// The client shut down its sending side (FIN after its queued bytes).
    pub fin: bool,
    /// The client closed its socket.
    pub closed: bool,
    /// The connection was reset.
    pub reset: bool,
    /// A scripted backend's connection: bytes read and not yet served (a request cut
    /// across reads).
    unserved: Vec<u8>,
    /// A scripted backend's answers waiting for their time, oldest first.
    answers: VecDeque<(Instant, Vec<u8>)>,
    /// The client's end of a transformed connection (TLS): what it sends is encoded
    /// into `outbox`, what it reads decoded; `sent`, `received` and
    /// `received_bytes` then count plaintext.
    client_end: Option<ClientEnd>,
    /// What the client's transport refused of the server's bytes, not yet reported.
    transport_error: Option<String>,
}

/// A client's transport, in a socket.
pub(crate) struct ClientEnd(Box<dyn ClientTransport>);

impl core::fmt::Debug for ClientEnd {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientEnd")
            .field("holding", &self.0.holding())
            .finish_non_exhaustive()
    }
}

impl Socket {
    /// The server's socket is in the poller.
    pub fn registered(&self) -> bool {
        self.registered
    }

    /// Bytes are on their way in either direction.
    pub fn in_flight(&self) -> bool {
        !self.outbox.is_empty() || !self.to_server.is_empty() || !self.to_client.is_empty()
    }

    /// The client's FIN has reached the server's side, with data possibly still
    /// buffered before it (what kqueue reports as EV_EOF).
    pub fn fin_received(&self) -> bool {
        (self.fin || self.closed) && self.outbox.is_empty()
    }

    /// The server has read everything up to the client's FIN: a read finds the end of
    /// the stream.
    pub fn fin_arrived(&self) -> bool {
        self.fin_received() && self.to_server.is_empty()
    }

    /// The client's end is gone (closed or reset): it reads no more.
    pub fn gone(&self) -> bool {
        self.reset || self.closed
    }

    /// Everything the client sent has been read by the server (and its transport, if
    /// it has one, holds nothing back).
    pub fn all_sent_read(&self) -> bool {
        self.outbox.is_empty()
            && self.to_server.is_empty()
            && self.client_end.as_ref().is_none_or(|t| !t.0.holding())
    }

    /// The client speaks through a transport (TLS).
    pub fn transformed(&self) -> bool {
        self.client_end.is_some()
    }

    /// The client's transport ends its stream (its closing message), once, before
    /// the client's FIN.
    fn close_transport(&mut self, window: usize) {
        if self.fin || self.gone() {
            return;
        }
        if let Some(t) = &mut self.client_end {
            let mut wire = Vec::new();
            t.0.close(&mut wire);
            self.outbox.extend(wire);
            self.refill(window);
        }
    }

    /// Bytes the client sent that the server has not read yet.
    pub fn unread_by_server(&self) -> usize {
        self.outbox.len() + self.to_server.len()
    }

    /// Bytes the server wrote that the client has not read yet.
    pub fn unread_by_client(&self) -> usize {
        self.to_client.len()
    }

    /// Moves bytes from the client's queue into the server's receive window while it
    /// has room.
    fn refill(&mut self, window: usize) {
        while self.to_server.len() < window {
            match self.outbox.pop_front() {
                Some(b) => self.to_server.push_back(b),
                None => break,
            }
        }
    }
}

/// A virtual listener.
#[derive(Debug)]
pub(crate) struct Listener {
    /// Clients waiting to be accepted, oldest first.
    pub backlog: VecDeque<usize>,
    /// The listener is in the poller (the engine has not paused it).
    pub watched: bool,
}

/// A read on a server socket, as the socket answers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SocketRead {
    /// The read failed (the connection was reset).
    Failed(IoError),
    /// The end of the stream: nothing more will come.
    Eof,
    /// Nothing is waiting (EAGAIN).
    Nothing,
    /// EAGAIN although bytes were waiting: only the fault injector answers this.
    Again,
    /// This many bytes were read into the buffer.
    Data(usize),
}

/// A write on a server socket, as the socket answers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SocketWrite {
    /// The write failed (reset, or EPIPE after the client closed).
    Failed(IoError),
    /// The send window is full (or the fault injector said EAGAIN).
    WouldBlock,
    /// The socket took this many bytes.
    Wrote(usize),
}

/// The virtual network of one run.
#[derive(Debug)]
pub(crate) struct Network {
    /// The virtual clock.
    pub clock: Instant,
    /// One socket per client, in the order the clients connected.
    pub sockets: Vec<Socket>,
    /// The listeners, by index.
    pub listeners: Vec<Listener>,
    /// The poller's interest list: the clients whose server socket is registered, in
    /// client order (a round looks at these, not at every client that ever connected).
    polled: Vec<usize>,
    /// The clients' sockets, in the order they connected.
    clients: Vec<usize>,
    /// The backends' sockets, in the order the engine connected out.
    backends: Vec<usize>,
    /// The world's random stream: the order in which the poller delivers readiness,
    /// and which of two equivalent reports the driver makes. The fault injector draws
    /// its faults that belong to no one client from it too (one stream for the world,
    /// one per client, so removing a client from a script leaves the others' faults
    /// where they were).
    pub rng: Rng,
    recv_window: usize,
    send_window: usize,
    /// The scripted backends, when a model names them (echo servers otherwise).
    servers: Option<Servers>,
    /// What makes the clients' transports, when a model's clients speak through one.
    transports: Option<Transports>,
}

/// What makes the clients' transports.
pub(crate) struct Transports(Box<dyn ClientTransports>);

impl core::fmt::Debug for Transports {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Transports").finish_non_exhaustive()
    }
}

/// The scripted backends of a run, with each address's answer delay.
pub(crate) struct Servers {
    backends: Box<dyn Backends>,
    /// Each address's delay, drawn when the engine first connects to it.
    delays: Vec<(Addr, evio_proto::Duration)>,
    /// The stream the delays are drawn from.
    rng: Rng,
}

impl core::fmt::Debug for Servers {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Servers")
            .field("delays", &self.delays)
            .finish_non_exhaustive()
    }
}

impl Network {
    /// The network `config` describes, with no client yet.
    pub fn new(config: &SimConfig, rng: Rng) -> Self {
        let listeners = (0..config.listeners)
            .map(|_| Listener {
                backlog: VecDeque::new(),
                watched: true,
            })
            .collect();
        Network {
            clock: Instant::ZERO,
            sockets: Vec::new(),
            listeners,
            polled: Vec::new(),
            clients: Vec::new(),
            backends: Vec::new(),
            rng,
            recv_window: config.recv_window,
            send_window: config.send_window,
            servers: None,
            transports: None,
        }
    }

    /// Clients speak through the transports `transports` makes (TLS).
    pub fn set_client_transports(&mut self, transports: Box<dyn ClientTransports>) {
        self.transports = Some(Transports(transports));
    }

    /// What client `ci`'s transport refused of the server's bytes since the last call.
    pub fn take_transport_error(&mut self, ci: usize) -> Option<String> {
        self.sockets[ci].transport_error.take()
    }

    /// Scripted backends serve the engine's outbound connections instead of echo
    /// servers, each address's delay drawn from `rng`.
    pub fn set_backends(&mut self, backends: Box<dyn Backends>, rng: Rng) {
        self.servers = Some(Servers {
            backends,
            delays: Vec::new(),
            rng,
        });
    }

    /// Scripted backends serve the outbound connections.
    pub fn scripted(&self) -> bool {
        self.servers.is_some()
    }

    /// A scripted backend `ci` takes its turn: it reads at most `window` bytes of what
    /// the engine sent, serves every whole request, and holds each answer until its
    /// address's delay has passed since it read it; answers whose time has come are
    /// sent, in order. Once it has read the end of the engine's stream and sent every
    /// answer, it ends its own. Returns the bytes it read.
    pub fn serve_turn(&mut self, ci: usize, window: usize) -> Option<Vec<u8>> {
        let s = &self.sockets[ci];
        let o = s.outbound?;
        if o.state != ConnectState::Connected || s.gone() || s.fin {
            return None;
        }
        let peer = o.peer;
        let got = self.receive(ci, window);
        let clock = self.clock;
        if let Some(bytes) = &got {
            let servers = self.servers.as_mut().expect("scripted backends");
            let delay = match servers.delays.iter().find(|(a, _)| *a == peer) {
                Some(&(_, d)) => d,
                None => {
                    let d = servers.backends.delay(&peer, &mut servers.rng);
                    servers.delays.push((peer, d));
                    d
                }
            };
            let s = &mut self.sockets[ci];
            s.unserved.extend_from_slice(bytes);
            let mut out = Vec::new();
            let served = servers.backends.serve(&peer, &s.unserved, &mut out);
            s.unserved.drain(..served.min(s.unserved.len()));
            if !out.is_empty() {
                s.answers.push_back((clock + delay, out));
            }
        }
        while let Some((at, _)) = self.sockets[ci].answers.front() {
            if *at > clock {
                break;
            }
            let (_, answer) = self.sockets[ci].answers.pop_front().expect("an answer");
            self.send(ci, &answer);
        }
        if self.sockets[ci].answers.is_empty() && self.write_shut_read(ci) {
            self.half_close(ci);
        }
        got
    }

    /// The client a script's client number names (modulo the clients so far), if any
    /// has connected.
    pub fn client(&self, client: u16) -> Option<usize> {
        let n = self.clients.len();
        (n > 0).then(|| self.clients[client as usize % n])
    }

    // ----- the clients' side -------------------------------------------------------

    /// A new client connects to `listener` (modulo the listener count) and waits in
    /// its backlog; returns its number.
    pub fn connect(&mut self, listener: u8) -> usize {
        let listener = listener as usize % self.listeners.len();
        let ci = self.sockets.len();
        let client_end = self
            .transports
            .as_mut()
            .and_then(|t| t.0.connect(listener))
            .map(ClientEnd);
        let mut socket = Socket {
            number: self.clients.len(),
            listener,
            client_end,
            ..Socket::default()
        };
        if let Some(t) = &mut socket.client_end {
            let mut wire = Vec::new();
            t.0.start(&mut wire);
            socket.outbox.extend(wire);
            socket.refill(self.recv_window);
        }
        self.sockets.push(socket);
        self.clients.push(ci);
        self.listeners[listener].backlog.push_back(ci);
        ci
    }

    /// Client `ci` sends `bytes`; they enter the server's receive window as far as it
    /// has room. Bytes sent after the client's FIN or close, or to a socket the server
    /// closed (the kernel answers those with a reset), go nowhere: `false`.
    pub fn send(&mut self, ci: usize, bytes: &[u8]) -> bool {
        let window = self.recv_window;
        let s = &mut self.sockets[ci];
        if s.fin || s.gone() || s.server_closed || s.refused {
            return false;
        }
        s.sent += bytes.len() as u64;
        match &mut s.client_end {
            Some(t) => {
                let mut wire = Vec::new();
                t.0.send(bytes, &mut wire);
                s.outbox.extend(wire);
            }
            None => s.outbox.extend(bytes.iter().copied()),
        }
        s.refill(window);
        true
    }

    /// Client `ci` reads at most `window` bytes of what the server sent; `None` when
    /// it reads nothing. A client with a transport gets the plaintext decoded (none,
    /// from handshake messages or a record cut short), and answers what its
    /// transport says to.
    pub fn receive(&mut self, ci: usize, window: usize) -> Option<Vec<u8>> {
        let recv_window = self.recv_window;
        let s = &mut self.sockets[ci];
        let n = s.to_client.len().min(window);
        if s.gone() || n == 0 {
            return None;
        }
        let mut got: Vec<u8> = s.to_client.drain(..n).collect();
        s.received_wire += n as u64;
        if let Some(t) = &mut s.client_end {
            let (mut plain, mut wire) = (Vec::new(), Vec::new());
            if let Err(e) = t.0.receive(&got, &mut plain, &mut wire) {
                s.transport_error.get_or_insert(e);
            }
            if !s.fin && !s.gone() {
                s.outbox.extend(wire);
                s.refill(recv_window);
            }
            got = plain;
        }
        s.received += got.len() as u64;
        s.received_bytes.extend_from_slice(&got);
        Some(got)
    }

    /// Backend `ci`, an echo server, takes its turn: it reads at most `window` bytes of
    /// what the engine sent and sends them back (queued behind its earlier answer: it
    /// does not stop reading while its answer waits, or it and an engine that does not
    /// read a connection whose output is blocked would wait for each other through
    /// small windows); once it has read everything up to the end of the engine's
    /// stream, it ends its own. Returns the bytes it read.
    pub fn echo_turn(&mut self, ci: usize, window: usize) -> Option<Vec<u8>> {
        let s = &self.sockets[ci];
        let connected = s
            .outbound
            .is_some_and(|o| o.state == ConnectState::Connected);
        if !connected || s.gone() || s.fin {
            return None;
        }
        let got = self.receive(ci, window);
        if let Some(bytes) = &got {
            self.send(ci, bytes);
        }
        if self.write_shut_read(ci) {
            self.half_close(ci);
        }
        got
    }

    /// Client `ci` shuts down its sending side; `true` when data was still waiting in
    /// the server's receive window (the FIN arrives right behind it).
    pub fn half_close(&mut self, ci: usize) -> bool {
        let window = self.recv_window;
        let s = &mut self.sockets[ci];
        s.close_transport(window);
        let behind_data = !s.fin && !s.to_server.is_empty();
        s.fin = true;
        behind_data
    }

    /// Client `ci` closes its socket: what the server sent and it did not read is lost.
    pub fn close(&mut self, ci: usize) {
        let window = self.recv_window;
        let s = &mut self.sockets[ci];
        s.close_transport(window);
        s.fin = true;
        s.closed = true;
        s.to_client.clear();
    }

    /// The connection of client `ci` is reset: data in flight is lost.
    pub fn reset(&mut self, ci: usize) {
        let s = &mut self.sockets[ci];
        s.reset = true;
        s.answers.clear();
        s.outbox.clear();
        s.to_server.clear();
        s.to_client.clear();
    }

    // ----- the server's side -------------------------------------------------------

    /// Takes the oldest client waiting on `listener`.
    pub fn accept(&mut self, listener: usize) -> Option<usize> {
        self.listeners[listener].backlog.pop_front()
    }

    /// The engine accepted client `ci` as `id`: its socket enters the poller, watched
    /// for reading.
    pub fn accepted(&mut self, ci: usize, id: ConnId) {
        let s = &mut self.sockets[ci];
        s.id = Some(id);
        s.registered = true;
        s.interest_read = true;
        if let Err(at) = self.polled.binary_search(&ci) {
            self.polled.insert(at, ci);
        }
    }

    /// The engine refused client `ci` (its socket closed at once).
    pub fn refused(&mut self, ci: usize) {
        let s = &mut self.sockets[ci];
        s.refused = true;
        s.server_closed = true;
    }

    /// The server closed client `ci`'s socket with a reset (SO_LINGER 0): what it had
    /// sent and the client had not read is lost, and the client's end is reset.
    pub fn server_abort(&mut self, ci: usize) {
        self.server_close(ci);
        let s = &mut self.sockets[ci];
        s.reset = true;
        s.outbox.clear();
        s.to_server.clear();
        s.to_client.clear();
    }

    /// The server closed (or detached) its socket for client `ci`: it leaves the poller.
    pub fn server_close(&mut self, ci: usize) {
        let s = &mut self.sockets[ci];
        s.registered = false;
        s.server_closed = true;
        if let Ok(at) = self.polled.binary_search(&ci) {
            self.polled.remove(at);
        }
    }

    /// The sockets of the clients, in the order they connected: a script's client
    /// number `c` names `clients[c % len]`.
    pub fn clients(&self) -> &[usize] {
        &self.clients
    }

    /// The sockets of the backends, in the order the engine connected to them.
    pub fn backends(&self) -> &[usize] {
        &self.backends
    }

    /// The engine asks to connect `id` to `peer`, which `plan` answers: a new
    /// backend socket; returns its index. Unless refused at once, the socket enters
    /// the poller watched for writability (what `Connect::started` asks for).
    pub fn connect_out(&mut self, id: ConnId, peer: Addr, plan: ConnectPlan) -> usize {
        let ci = self.sockets.len();
        let refused = plan == ConnectPlan::RefuseAtOnce;
        self.sockets.push(Socket {
            number: self.backends.len(),
            outbound: Some(Outbound {
                plan,
                state: if refused {
                    ConnectState::Failed
                } else {
                    ConnectState::Pending
                },
                peer,
                started: self.clock,
                reset_done: false,
            }),
            id: Some(id),
            registered: !refused,
            interest_write: !refused,
            server_closed: refused,
            ..Socket::default()
        });
        self.backends.push(ci);
        if !refused {
            self.polled.push(ci); // the highest index: the list stays sorted
        }
        ci
    }

    /// The outcome of backend socket `ci`'s connect, as `SO_ERROR` tells it now; the
    /// connect's state follows what is reported.
    pub fn finish_connect(&mut self, ci: usize) -> FinishOutcome {
        let clock = self.clock;
        let s = &mut self.sockets[ci];
        let Some(o) = &mut s.outbound else {
            return FinishOutcome::InProgress;
        };
        match o.decided(clock) {
            Some(true) => {
                o.state = ConnectState::Connected;
                FinishOutcome::Done
            }
            Some(false) => {
                o.state = ConnectState::Failed;
                FinishOutcome::Failed(io_error(ECONNREFUSED))
            }
            None => FinishOutcome::InProgress,
        }
    }

    /// The earliest time a pending connect is answered, if any is still to be (a
    /// virtual timer of the network's own: the clock can jump to it as to a
    /// deadline of the engine's).
    pub fn next_answer(&self) -> Option<Instant> {
        let answers = self.backends.iter().filter_map(|&ci| {
            let s = &self.sockets[ci];
            let (at, _) = s.answers.front()?;
            (!s.gone() && *at > self.clock).then_some(*at)
        });
        self.backends
            .iter()
            .filter_map(|&ci| {
                let o = self.sockets[ci].outbound?;
                if o.state != ConnectState::Pending {
                    return None;
                }
                match o.plan {
                    ConnectPlan::Accept { at, .. } | ConnectPlan::Refuse { at } => {
                        (at > self.clock).then_some(at)
                    }
                    _ => None,
                }
            })
            .chain(answers)
            .min()
    }

    /// Backend socket `ci` is connected and idle, as the network sees it: neither end
    /// closed, reset or shut, no byte on its way in either direction, and the backend
    /// holds no request cut short and no answer waiting for its time.
    pub fn backend_idle(&self, ci: usize) -> bool {
        let s = &self.sockets[ci];
        s.outbound
            .is_some_and(|o| o.state == ConnectState::Connected)
            && s.registered
            && !s.server_closed
            && !s.write_shut
            && !s.fin
            && !s.gone()
            && !s.in_flight()
            && s.unserved.is_empty()
            && s.answers.is_empty()
    }

    /// The server shut its sending side of socket `ci`.
    pub fn shut_write(&mut self, ci: usize) {
        self.sockets[ci].write_shut = true;
    }

    /// The engine's peer on socket `ci` has read everything up to the end the server
    /// sent (`Output::ShutdownWrite`).
    pub fn write_shut_read(&self, ci: usize) -> bool {
        let s = &self.sockets[ci];
        s.write_shut && s.to_client.is_empty()
    }

    /// The clients whose server socket is in the poller, in client order.
    pub fn polled(&self) -> &[usize] {
        &self.polled
    }

    /// The level a poller reports for client `ci`'s server socket, with its id; `None`
    /// when the socket is not in the poller.
    pub fn readiness(&self, ci: usize) -> Option<(ConnId, Readiness)> {
        let s = &self.sockets[ci];
        let (true, Some(id)) = (s.registered, s.id) else {
            return None;
        };
        if let Some(o) = &s.outbound
            && o.state == ConnectState::Pending
        {
            // A connecting socket turns writable when the connect succeeded, and
            // reports an error (readable, writable, hang-up) when it failed.
            let readiness = match o.decided(self.clock) {
                Some(true) => Readiness {
                    writable: s.interest_write,
                    ..Readiness::default()
                },
                Some(false) => Readiness {
                    readable: s.interest_read,
                    writable: s.interest_write,
                    hangup: true,
                },
                None => Readiness::default(),
            };
            return Some((id, readiness));
        }
        let hangup = s.gone();
        let readiness = Readiness {
            readable: s.interest_read && (!s.to_server.is_empty() || s.fin_arrived() || hangup),
            writable: s.interest_write && (s.to_client.len() < self.send_window || hangup),
            hangup,
        };
        Some((id, readiness))
    }

    /// Bytes a read on client `ci`'s server socket would find; `None` when it would
    /// fail.
    pub fn readable_bytes(&self, ci: usize) -> Option<usize> {
        let s = &self.sockets[ci];
        (!s.reset).then_some(s.to_server.len())
    }

    /// Reads from client `ci`'s server socket into `buf`.
    pub fn read(&mut self, ci: usize, buf: &mut [u8]) -> SocketRead {
        let window = self.recv_window;
        let s = &mut self.sockets[ci];
        if s.reset {
            return SocketRead::Failed(io_error(ECONNRESET));
        }
        if s.to_server.is_empty() {
            return if s.fin_arrived() {
                SocketRead::Eof
            } else {
                SocketRead::Nothing
            };
        }
        let n = s.to_server.len().min(buf.len());
        s.read_wire += n as u64;
        for (slot, b) in buf.iter_mut().zip(s.to_server.drain(..n)) {
            *slot = b;
        }
        s.refill(window);
        SocketRead::Data(n)
    }

    /// Room in client `ci`'s send window; `None` when a write would fail.
    pub fn write_room(&self, ci: usize) -> Option<usize> {
        let s = &self.sockets[ci];
        (!s.reset && !s.closed).then(|| self.send_window.saturating_sub(s.to_client.len()))
    }

    /// Writes `bytes` to client `ci`'s server socket.
    pub fn write(&mut self, ci: usize, bytes: &[u8]) -> SocketWrite {
        let send_window = self.send_window;
        let s = &mut self.sockets[ci];
        if s.reset {
            return SocketWrite::Failed(io_error(ECONNRESET));
        }
        if s.closed {
            return SocketWrite::Failed(io_error(EPIPE));
        }
        let room = send_window.saturating_sub(s.to_client.len());
        if room == 0 {
            return SocketWrite::WouldBlock;
        }
        let n = room.min(bytes.len());
        s.to_client.extend(bytes[..n].iter().copied());
        SocketWrite::Wrote(n)
    }
}
