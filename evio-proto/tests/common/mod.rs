//! A tiny in-memory driver for the engine's tests: virtual sockets with byte queues, a
//! send window, and a hand-moved clock. It performs exactly what the engine asks, like
//! evio-os does with real sockets, and records every output.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use evio_proto::{
    AcceptError, Addr, Config, ConnId, Detached, Events, HeapEngine, Instant, Interest, IoError,
    ListenAddr, ListenerId, Notify, Options, Output, Readiness, Refused, Slot,
};

/// Counts notifications.
#[derive(Default)]
pub struct CountingNotify(pub AtomicUsize);

impl Notify for CountingNotify {
    fn notify(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The client side of one virtual connection and what the server did to its socket.
#[derive(Debug, Default)]
pub struct Peer {
    /// Bytes the client sent that the server has not read yet.
    pub inbound: VecDeque<u8>,
    /// Every byte the server wrote.
    pub received: Vec<u8>,
    /// Bytes the server socket still accepts before a write would block.
    pub window: usize,
    /// The client shut down its writing side.
    pub eof: bool,
    /// The next read or write fails with this.
    pub error: Option<IoError>,
    pub closed: bool,
    /// Closed with a reset (`Output::Abort`).
    pub aborted: bool,
    /// The server shut its sending side (`Output::ShutdownWrite`).
    pub write_shut: bool,
    pub detached: bool,
    pub interest: Interest,
    pub options: Option<Options>,
    /// An outbound connection still connecting, and how its connect is to end.
    pub connecting: Option<ConnectPlan>,
}

/// How the test driver answers a connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectPlan {
    /// It connects (the socket turns writable at the next readiness round).
    Accept,
    /// It starts, then fails with this error (the socket reports a hang-up).
    Refuse(IoError),
    /// It starts and is never answered.
    Hang,
    /// `connect(2)` fails at once; no socket is kept.
    FailAtOnce(IoError),
}

/// The detached socket type of this test driver.
#[derive(Debug, PartialEq, Eq)]
pub struct FakeSocket(pub u64);

/// Everything a test driver saw.
pub struct Net {
    pub peers: BTreeMap<u64, Peer>,
    pub backlog: Vec<VecDeque<SocketAddr>>,
    pub accept_error: Option<AcceptError>,
    pub paused: Vec<bool>,
    pub now: Instant,
    pub shutdown: bool,
    pub log: Vec<String>,
    pub refused: usize,
    /// Connections accepted (ids in order).
    pub accepted: Vec<ConnId>,
    /// Unread bytes of output the driver gives a `Read` at most (to force short reads).
    pub read_limit: usize,
    /// How the next connects end, in order (then: `ConnectPlan::Accept`).
    pub connect_plans: VecDeque<ConnectPlan>,
    /// Every connect asked for: the connection and its address, as printed.
    pub connects: Vec<(ConnId, String)>,
    /// Accepts to hand to another loop (`Accept::handed_off`) before accepting here.
    pub hand_off: usize,
    /// The connections handed off: (listener, peer address).
    pub handed: Vec<(usize, SocketAddr)>,
}

impl Net {
    pub fn new(listeners: usize) -> Self {
        Net {
            peers: BTreeMap::new(),
            backlog: (0..listeners).map(|_| VecDeque::new()).collect(),
            accept_error: None,
            paused: vec![false; listeners],
            now: Instant::ZERO,
            shutdown: false,
            log: Vec::new(),
            refused: 0,
            accepted: Vec::new(),
            read_limit: usize::MAX,
            connect_plans: VecDeque::new(),
            connects: Vec::new(),
            hand_off: 0,
            handed: Vec::new(),
        }
    }

    /// A connection adopted from another loop (`Engine::handle_adopt`) gets a socket.
    pub fn adopted(&mut self, id: ConnId) {
        self.accepted.push(id);
        self.peers.insert(
            id.to_u64(),
            Peer {
                window: usize::MAX,
                interest: Interest::READ,
                ..Peer::default()
            },
        );
    }

    pub fn peer(&mut self, id: ConnId) -> &mut Peer {
        self.peers.get_mut(&id.to_u64()).expect("no such peer")
    }
}

pub type TestEngine<H> = HeapEngine<H>;

/// What a [`TestEngine`] asks for.
pub type TestOutput<'a, H> = Output<'a, H, Vec<Slot<<H as Events>::Context>>, Vec<u8>>;

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// An engine over heap storage with a waker, and its notifier.
pub fn engine<H: Events>(handler: H, config: Config) -> (TestEngine<H>, Arc<CountingNotify>) {
    let notify = Arc::new(CountingNotify::default());
    let engine = TestEngine::allocate(handler, config, ArcNotify(notify.clone())).expect("engine");
    (engine, notify)
}

pub struct ArcNotify(pub Arc<CountingNotify>);

impl Notify for ArcNotify {
    fn notify(&self) {
        self.0.notify();
    }
}

pub fn small_config(max: usize, input: usize, output: usize) -> Config {
    Config {
        max_connections: max,
        input_capacity: input,
        output_capacity: output,
        ..Config::new()
    }
}

/// Starts the engine with `listeners` TCP listeners on ports 1000, 1001, …
pub fn start<H: Events>(engine: &mut TestEngine<H>, net: &mut Net) {
    let addrs: Vec<ListenAddr<'_>> = (0..net.backlog.len())
        .map(|i| ListenAddr::Ip(addr(1000 + i as u16)))
        .collect();
    engine.handle_time(net.now);
    engine.handle_start(&addrs).expect("start");
    drain(engine, net);
}

/// Performs every output until the engine has nothing more to do.
///
/// Like a level-triggered poller, it then reports every socket that is ready for what
/// the engine registered interest in, and drains again, until nothing is ready: an
/// engine that keeps an interest it does not act on makes this spin, and the guard
/// fails the test.
pub fn drain<H: Events>(engine: &mut TestEngine<H>, net: &mut Net) {
    let mut guard = 0;
    loop {
        while let Some(out) = engine.poll_output() {
            guard += 1;
            assert!(guard < 1_000_000, "poll_output never ran dry");
            perform(out, net);
        }
        let mut ready = Vec::new();
        for (&bits, peer) in &net.peers {
            if peer.closed || peer.detached {
                continue;
            }
            if let Some(plan) = peer.connecting {
                if plan != ConnectPlan::Hang && peer.interest.is_writable() {
                    let refused = matches!(plan, ConnectPlan::Refuse(_));
                    ready.push((ConnId::from_u64(bits), refused, true, refused));
                }
                continue;
            }
            let readable = peer.interest.is_readable()
                && (!peer.inbound.is_empty() || peer.eof || peer.error.is_some());
            let writable = peer.interest.is_writable() && peer.window > 0;
            if readable || writable {
                ready.push((ConnId::from_u64(bits), readable, writable, false));
            }
        }
        if ready.is_empty() {
            return;
        }
        guard += 1;
        assert!(guard < 1_000_000, "level-triggered readiness never settled");
        for (id, readable, writable, hangup) in ready {
            engine
                .handle_conn_ready(
                    id,
                    Readiness {
                        readable,
                        writable,
                        hangup,
                    },
                )
                .expect("readiness for a live connection");
        }
    }
}

/// Performs one output on the virtual sockets and reports it, as evio-os does on real
/// ones.
pub fn perform<H: Events>(out: TestOutput<'_, H>, net: &mut Net) {
    net.log.push(format!("{out:?}"));
    match out {
        Output::Accept(accept) => {
            let l = accept.listener().index();
            if let Some(e) = net.accept_error.take() {
                accept.failed(e);
            } else if net.hand_off > 0 && !net.backlog[l].is_empty() {
                net.hand_off -= 1;
                let peer_addr = net.backlog[l].pop_front().unwrap();
                net.handed.push((l, peer_addr));
                accept.handed_off();
            } else if let Some(peer_addr) = net.backlog[l].pop_front() {
                match accept.done(Addr::Ip(addr(1000 + l as u16)), Addr::Ip(peer_addr)) {
                    Ok(id) => {
                        net.accepted.push(id);
                        net.peers.insert(
                            id.to_u64(),
                            Peer {
                                window: usize::MAX,
                                interest: Interest::READ,
                                ..Peer::default()
                            },
                        );
                    }
                    Err(Refused::PoolFull) | Err(Refused::ShuttingDown) => net.refused += 1,
                }
            } else {
                accept.would_block();
            }
        }
        Output::Read(mut read) => {
            let limit = net.read_limit;
            let peer = net.peer(read.id());
            assert!(!peer.closed, "read from a closed socket");
            if let Some(e) = peer.error.take() {
                return read.failed(e);
            }
            if peer.inbound.is_empty() {
                return if peer.eof {
                    read.done(0)
                } else {
                    read.would_block()
                };
            }
            let buf = read.buf();
            let n = buf.len().min(peer.inbound.len()).min(limit);
            for (i, b) in peer.inbound.drain(..n).enumerate() {
                buf[i] = b;
            }
            read.done(n);
        }
        Output::Transmit(mut transmit) => {
            let peer = net.peer(transmit.id());
            assert!(!peer.closed, "write to a closed socket");
            if let Some(e) = peer.error.take() {
                return transmit.failed(e);
            }
            let n = transmit.len().min(peer.window);
            if n == 0 {
                return transmit.would_block();
            }
            peer.window -= n;
            peer.received.extend_from_slice(&transmit.bytes()[..n]);
            transmit.done(n);
        }
        Output::TransmitBatch(mut batch) => {
            // Every write, then every report, as one submit of them would.
            let mut results = Vec::new();
            for k in 0..batch.len() {
                let peer = net.peer(batch.id(k));
                assert!(!peer.closed, "write to a closed socket");
                if let Some(e) = peer.error.take() {
                    results.push(Err(e));
                    continue;
                }
                let n = batch.bytes(k).len().min(peer.window);
                peer.window -= n;
                let bytes = &batch.bytes(k)[..n];
                net.peer(batch.id(k)).received.extend_from_slice(bytes);
                results.push(Ok(n));
            }
            for (k, result) in results.into_iter().enumerate() {
                match result {
                    Err(e) => batch.failed(k, e),
                    Ok(0) => batch.would_block(k),
                    Ok(n) => batch.done(k, n),
                }
            }
        }
        Output::Detach(detach) => {
            let id = detach.id();
            net.peer(id).detached = true;
            let mut socket = Some(FakeSocket(id.to_u64()));
            detach.done(Detached::new(&mut socket));
            if socket.is_none() {
                net.log.push(format!("taken {id:?}"));
            }
        }
        Output::Configure { id, options } => net.peer(id).options = Some(options),
        Output::SetInterest { id, interest } => net.peer(id).interest = interest,
        Output::Close { id } => {
            let peer = net.peer(id);
            assert!(!peer.closed, "closed twice");
            peer.closed = true;
        }
        Output::Abort { id } => {
            let peer = net.peer(id);
            assert!(!peer.closed, "closed twice");
            peer.closed = true;
            peer.aborted = true;
        }
        Output::ShutdownWrite { id } => {
            let peer = net.peer(id);
            assert!(
                !peer.closed && !peer.write_shut,
                "shut after close or twice"
            );
            peer.write_shut = true;
        }
        Output::Connect(connect) => {
            let id = connect.id();
            net.connects.push((id, connect.addr().to_string()));
            match net.connect_plans.pop_front().unwrap_or(ConnectPlan::Accept) {
                ConnectPlan::FailAtOnce(e) => connect.failed(e),
                plan => {
                    assert!(
                        !net.peers.contains_key(&id.to_u64()),
                        "a connect over a live socket"
                    );
                    net.peers.insert(
                        id.to_u64(),
                        Peer {
                            window: usize::MAX,
                            interest: Interest::WRITE,
                            connecting: Some(plan),
                            ..Peer::default()
                        },
                    );
                    connect.started();
                }
            }
        }
        Output::FinishConnect(finish) => {
            let id = finish.id();
            let peer = net.peer(id);
            match peer.connecting.take() {
                Some(ConnectPlan::Accept) => {
                    finish.done(Addr::Ip(addr(50000 + id.slot() as u16)));
                }
                Some(ConnectPlan::Refuse(e)) => finish.failed(e),
                plan => {
                    peer.connecting = plan;
                    finish.in_progress();
                }
            }
        }
        Output::PauseAccept { listener } => net.paused[listener.index()] = true,
        Output::ResumeAccept { listener } => net.paused[listener.index()] = false,
        Output::Shutdown => net.shutdown = true,
    }
}

/// A client connects to listener `l`; the engine is told and everything is drained.
pub fn connect<H: Events>(engine: &mut TestEngine<H>, net: &mut Net, l: usize) -> Option<ConnId> {
    let before = net.accepted.len();
    net.backlog[l].push_back(SocketAddr::from(([10, 0, 0, 1], 40000 + before as u16)));
    engine
        .handle_listener_ready(ListenerId::new(l).unwrap())
        .unwrap();
    drain(engine, net);
    (net.accepted.len() > before).then(|| *net.accepted.last().unwrap())
}

/// The client of `id` sends `bytes`; readiness is reported and everything drained.
pub fn send<H: Events>(engine: &mut TestEngine<H>, net: &mut Net, id: ConnId, bytes: &[u8]) {
    net.peer(id).inbound.extend(bytes);
    let _ = engine.handle_conn_ready(id, Readiness::READABLE);
    drain(engine, net);
}

/// The client of `id` lets the server write `n` more bytes.
pub fn open_window<H: Events>(engine: &mut TestEngine<H>, net: &mut Net, id: ConnId, n: usize) {
    let peer = net.peer(id);
    peer.window = peer.window.saturating_add(n);
    let _ = engine.handle_conn_ready(id, Readiness::WRITABLE);
    drain(engine, net);
}

/// The client of `id` shuts its writing side.
pub fn half_close<H: Events>(engine: &mut TestEngine<H>, net: &mut Net, id: ConnId) {
    net.peer(id).eof = true;
    let _ = engine.handle_conn_ready(id, Readiness::READABLE);
    drain(engine, net);
}

/// Moves the clock to `t` and lets the engine act on it.
pub fn advance<H: Events>(engine: &mut TestEngine<H>, net: &mut Net, t: Instant) {
    net.now = t;
    engine.handle_time(t);
    drain(engine, net);
}
