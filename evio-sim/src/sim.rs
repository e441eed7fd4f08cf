//! The simulated world: virtual listeners, sockets, poller, clock and "other thread",
//! driving the production engine through its driver protocol.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use evio_proto::{
    AcceptError, Addr, CloseError, Config, ConnId, ConnInfo, Detached, DriverError, Duration,
    Events, HeapEngine, Instant, IoError, IoErrorKind, ListenAddr, ListenerId, Notify, Output,
    Readiness, Refused, Slot, Stats, Waker,
};

use crate::observe::{Injection, Observation, Observed, Recording};
use crate::{
    FaultCounts, FaultKind, FaultRates, Model, Profile, Rng, ScriptedEvent, TraceHash, Violation,
};

/// The socket the simulator hands to [`Events::detached`]: take it with
/// `socket.take::<SimStream>()`. Under the real driver the same handler receives an
/// `evio_os` socket instead, so handlers that keep detached sockets should accept
/// either.
#[derive(Debug, PartialEq, Eq)]
pub struct SimStream {
    /// The simulator's client number for this connection.
    pub client: usize,
}

/// Everything about a run that its seed decides, besides the script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// The engine's configuration (small capacities, so partial frames, full buffers
    /// and a full pool happen often).
    pub engine: Config,
    /// Number of listeners (1 to 3).
    pub listeners: u8,
    /// Bytes the server's receive buffer holds per connection (the client's sends wait
    /// beyond that).
    pub recv_window: usize,
    /// Bytes the server's send buffer holds per connection until the client reads.
    pub send_window: usize,
    /// Fault rates.
    pub rates: FaultRates,
    /// The event mix of the seed's script.
    pub profile: Profile,
    /// A ticker that outlives the handler's own: once the handler's `tick` returns no
    /// delay (as echo's does at once), the engine is told this delay instead, and the
    /// simulator answers the ticks that follow without calling the handler's `tick`
    /// again. So the tick schedule is exercised under every handler, and no handler
    /// sees a tick after stopping its ticker. `None`: the handler's schedule only.
    pub ticker: Option<Duration>,
}

impl SimConfig {
    /// The configuration the run with `seed` uses.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = Rng::derive(seed, 1);
        let pick =
            |rng: &mut Rng, choices: &[usize]| choices[rng.below(choices.len() as u64) as usize];
        let engine = Config {
            // 40 and 70 slots span two and three words of the waker's summary bitmap.
            max_connections: pick(&mut rng, &[1, 2, 3, 8, 8, 40, 70]),
            input_capacity: pick(&mut rng, &[1, 5, 16, 64, 512]),
            output_capacity: pick(&mut rng, &[1, 5, 16, 64, 512]),
            accept_batch: pick(&mut rng, &[1, 2, 64]) as u32,
            ..Config::new()
        };
        let listeners = rng.range(1, 3) as u8;
        let recv_window = pick(&mut rng, &[1, 7, 64, 4096]);
        let send_window = pick(&mut rng, &[1, 7, 64, 4096]);
        let rates = FaultRates::random(&mut rng);
        let profile = Profile::random(&mut rng, listeners);
        // Drawn last, so the draws before it stay as they were. A zero delay is raised
        // to the engine's `min_tick`.
        let ticker = [None, None, Some(0), Some(1), Some(7), Some(50)][rng.below(6) as usize]
            .map(Duration::from_millis);
        SimConfig {
            engine,
            listeners,
            recv_window,
            send_window,
            rates,
            profile,
            ticker,
        }
    }

    /// The script of `steps` events the run with `seed` uses.
    pub fn script(&self, seed: u64, steps: usize) -> Vec<ScriptedEvent> {
        self.profile.script(&mut Rng::derive(seed, 2), steps)
    }
}

/// What a run that passed did, for summaries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Steps run, liveness phase included.
    pub steps: u64,
    /// The hash of the whole trace (events, outputs, handler callbacks): equal for two
    /// runs exactly when they did the same things in the same order.
    pub trace_hash: u64,
    /// How often each fault fired.
    pub faults: FaultCounts,
    /// The engine's counters at the end.
    pub stats: Stats,
    /// Clients that connected.
    pub clients: usize,
}

struct SimNotify(Arc<AtomicBool>);

impl Notify for SimNotify {
    fn notify(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct Client<C> {
    listener: usize,
    id: Option<ConnId>,
    refused: bool,
    /// The server's socket is in the poller.
    registered: bool,
    /// The server closed (or detached) its socket.
    server_closed: bool,
    interest_read: bool,
    interest_write: bool,
    outbox: VecDeque<u8>,
    to_server: VecDeque<u8>,
    to_client: VecDeque<u8>,
    /// Bytes the server read and the handler has not consumed yet start at
    /// `delivered[handler_pos]`; `delivered_base` bytes were trimmed from the front.
    delivered: Vec<u8>,
    delivered_base: u64,
    handler_pos: usize,
    sent: u64,
    received: u64,
    fin: bool,
    closed: bool,
    reset: bool,
    opened_cb: bool,
    ended_cb: bool,
    detached: bool,
    io_failed: bool,
    /// The driver reported the end of the stream.
    eof_reported: bool,
    /// The I/O error the driver reported.
    io_error: Option<IoError>,
    /// Bytes the last `data` call was given.
    last_input: usize,
    /// `closed` reported an error (an I/O error or a frame too large).
    errored: bool,
    /// The handler returned `Close` or `Detach` for this connection.
    leaving: bool,
    injected: bool,
    queued: u64,
    transmitted: u64,
    last_write_short: bool,
    /// The last write was short or would block and no writable (or hang-up) readiness
    /// was reported since: the engine must not read (backpressure).
    write_blocked: bool,
    /// A hang-up was reported and no read has found the socket empty since: the
    /// engine may read to learn whether the peer ended or failed, blocked or not.
    hup_unread: bool,
    /// Bytes the last `prewrite` announced.
    attempted: usize,
    /// `Transmit` outputs, `prewrite` and `postwrite` calls: one of each per write.
    transmits: u64,
    prewrites: u64,
    postwrites: u64,
    /// The simulator made a wake for this connection that `woken` has not answered.
    wake_owed: bool,
    rng: Rng,
    model: C,
}

impl<C> Client<C> {
    fn in_flight(&self) -> bool {
        !self.outbox.is_empty() || !self.to_server.is_empty() || !self.to_client.is_empty()
    }

    fn fin_arrived(&self) -> bool {
        (self.fin || self.closed) && self.outbox.is_empty() && self.to_server.is_empty()
    }

    fn refill(&mut self, window: usize) {
        while self.to_server.len() < window {
            match self.outbox.pop_front() {
                Some(b) => self.to_server.push_back(b),
                None => break,
            }
        }
    }

    fn gone(&self) -> bool {
        self.reset || self.closed
    }
}

struct ListenerState {
    backlog: VecDeque<usize>,
    watched: bool,
    /// An EMFILE was reported: the engine must pause this listener before it accepts
    /// on it again.
    must_pause: bool,
    /// `Accept` outputs since the last readiness report or `ResumeAccept`: at most
    /// `accept_batch`, so a flood of connections cannot starve the others.
    accepts: u32,
}

#[derive(Clone, Copy)]
enum Ready {
    Listener(usize),
    Conn(usize, ConnId, Readiness),
}

struct World<C> {
    seed: u64,
    config: SimConfig,
    rng: Rng,
    faults_on: bool,
    counts: FaultCounts,
    clock: Instant,
    clients: Vec<Client<C>>,
    by_slot: Vec<Option<usize>>,
    listeners: Vec<ListenerState>,
    waker: Waker,
    notified: Arc<AtomicBool>,
    hash: TraceHash,
    steps: u64,
    shut_down: bool,
    shutting_down: bool,
    trigger: Option<usize>,
    batch: Vec<Ready>,
    trace: Option<Vec<String>>,
    /// Outputs performed and callbacks seen: the liveness phase advances the clock only
    /// when a round changed nothing.
    activity: u64,
    /// When the next tick is due, by the handler's last returned delay.
    tick_due: Option<Instant>,
}

/// The engine type a [`Sim`] runs: the production engine over the observed handler,
/// with heap storage.
pub type SimEngine<H> = HeapEngine<Observed<H>>;

/// What a [`SimEngine`] asks for.
type SimOutput<'a, H> = Output<'a, Observed<H>, Vec<Slot<<H as Events>::Context>>, Vec<u8>>;

/// A simulated server: the production engine running handler `H`, checked against
/// model `M`, in a world of virtual sockets whose every choice comes from one seed.
///
/// Drive it with [`Sim::step`] (one [`ScriptedEvent`] and one round of the loop,
/// invariants checked after it), then [`Sim::finish`] (faults off, a liveness phase
/// until every client's work is done, then the end-of-run checks). [`crate::run`] and
/// [`crate::run_seed`] do both.
pub struct Sim<H: Events, M: Model> {
    engine: SimEngine<H>,
    /// What the observed handler records, read while an operation borrows the engine.
    rec: Rc<RefCell<Recording>>,
    model: M,
    w: World<M::Conn>,
}

impl<H: Events, M: Model> core::fmt::Debug for Sim<H, M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sim")
            .field("engine", &self.engine)
            .field("clock", &self.w.clock)
            .field("clients", &self.w.clients.len())
            .field("steps", &self.w.steps)
            .finish_non_exhaustive()
    }
}

const ECONNRESET: i32 = 104;
const EPIPE: i32 = 32;

impl<H: Events, M: Model> Sim<H, M> {
    /// A simulation of `handler` checked against `model`, with the configuration and
    /// fault stream of `seed`; the engine is started (`serving` and the first `tick`
    /// have run).
    ///
    /// # Errors
    ///
    /// [`Violation::Build`] if the engine cannot be built, [`Violation::Config`] if the
    /// world cannot be (no listener, more than [`evio_proto::MAX_LISTENERS`], or a
    /// socket window of zero bytes), or any violation found while
    /// starting.
    pub fn new(handler: H, model: M, seed: u64) -> Result<Self, Violation> {
        Self::with_config(handler, model, seed, SimConfig::from_seed(seed))
    }

    /// Like [`Sim::new`] with an explicit configuration; `seed` still drives the faults.
    ///
    /// # Errors
    ///
    /// As [`Sim::new`].
    pub fn with_config(
        handler: H,
        model: M,
        seed: u64,
        config: SimConfig,
    ) -> Result<Self, Violation> {
        if !(1..=evio_proto::MAX_LISTENERS).contains(&usize::from(config.listeners)) {
            return Err(Violation::Config(format!(
                "{} listeners (1 to {} can be simulated)",
                config.listeners,
                evio_proto::MAX_LISTENERS
            )));
        }
        if config.recv_window == 0 || config.send_window == 0 {
            return Err(Violation::Config(
                "a socket window of zero bytes would never move a byte".into(),
            ));
        }
        let n = config.engine.max_connections;
        let notified = Arc::new(AtomicBool::new(false));
        let mut observed = Observed::new(handler);
        observed.set_ticker(config.ticker);
        let rec = observed.recording();
        let engine = SimEngine::allocate(observed, config.engine, SimNotify(notified.clone()))
            .map_err(Violation::Build)?;
        let waker = engine.waker().expect("an engine with a notifier").clone();
        let listeners = (0..config.listeners)
            .map(|_| ListenerState {
                backlog: VecDeque::new(),
                watched: true,
                must_pause: false,
                accepts: 0,
            })
            .collect();
        let mut sim = Sim {
            engine,
            rec,
            model,
            w: World {
                rng: Rng::derive(seed, 3),
                seed,
                faults_on: true,
                counts: FaultCounts::default(),
                clock: Instant::ZERO,
                clients: Vec::new(),
                by_slot: vec![None; n],
                listeners,
                waker,
                notified,
                hash: TraceHash::default(),
                steps: 0,
                shut_down: false,
                shutting_down: false,
                trigger: None,
                batch: Vec::new(),
                trace: None,
                activity: 0,
                tick_due: None,
                config,
            },
        };
        let addrs: Vec<ListenAddr<'_>> = (0..sim.w.config.listeners)
            .map(|l| ListenAddr::Ip(listen_addr(l as usize)))
            .collect();
        sim.input(|e| {
            e.handle_time(Instant::ZERO);
            e.handle_start(&addrs)
                .map_err(|e| Violation::Config(e.to_string()))
        })??;
        Ok(sim)
    }

    /// Records a readable trace of every event, output and callback from now on (see
    /// [`Sim::trace`]). Off by default: the swarm only hashes.
    pub fn set_tracing(&mut self, on: bool) {
        self.w.trace = if on { Some(Vec::new()) } else { None };
    }

    /// The readable trace recorded since [`Sim::set_tracing`].
    pub fn trace(&self) -> &[String] {
        self.w.trace.as_deref().unwrap_or(&[])
    }

    /// The hash of everything that happened so far.
    pub fn trace_hash(&self) -> u64 {
        self.w.hash.value()
    }

    /// How often each fault fired so far.
    pub fn faults(&self) -> &FaultCounts {
        &self.w.counts
    }

    /// The engine under test.
    pub fn engine(&self) -> &SimEngine<H> {
        &self.engine
    }

    /// The handler under test.
    pub fn handler(&self) -> &H {
        self.engine.handler().inner()
    }

    /// The virtual clock.
    pub fn now(&self) -> Instant {
        self.w.clock
    }

    /// `true` once the engine has shut down.
    pub fn is_shut_down(&self) -> bool {
        self.w.shut_down
    }

    /// Everything client `client` has received so far, counted in bytes.
    pub fn received(&self, client: usize) -> Option<u64> {
        self.w.clients.get(client).map(|c| c.received)
    }

    /// Applies one scripted event, runs one round of the loop (wakes, readiness in a
    /// seeded order, due timers) with faults, and checks every invariant.
    ///
    /// # Errors
    ///
    /// The first [`Violation`] found.
    pub fn step(&mut self, event: &ScriptedEvent) -> Result<(), Violation> {
        self.w.steps += 1;
        self.w.note(1, event_words(event));
        if let ScriptedEvent::Send { bytes, .. } = event {
            self.w.hash.bytes(bytes);
        }
        if let Some(t) = &mut self.w.trace {
            t.push(format!("event {event}"));
        }
        self.apply(event)?;
        if self.w.faults_on {
            self.inject_handler_faults();
            if self
                .w
                .rng
                .chance(self.w.config.rates.get(FaultKind::TickBetweenEvents))
                && let Some(t) = self.engine.poll_timeout()
            {
                // Half the time the timer wakes a hair early, as a poller with
                // millisecond timeouts does: the loop runs just short of the deadline,
                // and nothing due at it may happen yet.
                let early = match self.w.rng.below(2) {
                    0 => 0,
                    _ => 1 + self.w.rng.below(1_000_000),
                };
                let at = Instant::from_nanos(t.as_nanos().saturating_sub(early));
                self.w.clock = self.w.clock.max(at);
                self.w.counts.record(FaultKind::TickBetweenEvents);
            }
        }
        self.poll_round()?;
        // A tick the handler asked for must be among the engine's deadlines, or a real
        // driver would sleep through it; and once the loop has run at or past it, it
        // must have fired.
        if let Some(due) = self.w.tick_due
            && !self.w.shut_down
            && !self.w.shutting_down
        {
            if self.engine.poll_timeout().is_none_or(|t| t > due) {
                return Err(Violation::Contract {
                    id: None,
                    detail: format!(
                        "tick due at {due} but the engine's deadline is {:?}",
                        self.engine.poll_timeout()
                    ),
                });
            }
            if due <= self.w.clock {
                return Err(Violation::Contract {
                    id: None,
                    detail: format!(
                        "tick due at {due} has not fired; the loop ran at {}",
                        self.w.clock
                    ),
                });
            }
        }
        Ok(())
    }

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
        self.w.faults_on = false;
        self.engine.handler_mut().disarm();
        let work: usize = self
            .w
            .clients
            .iter()
            .map(|c| {
                // Output the engine still holds counts too: through a one-byte window
                // it takes a round per byte.
                let held = c.queued.saturating_sub(c.transmitted) as usize;
                c.outbox.len()
                    + c.to_server.len()
                    + c.to_client.len()
                    + held
                    + self.model.owed(&c.model)
            })
            .sum();
        let unfinished = self
            .w
            .clients
            .iter()
            .filter(|c| !c.refused && !c.ended_cb)
            .count();
        // A round lets every client read and the loop run; each productive round moves
        // at least one byte or ends a connection, and each idle one reaches a deadline.
        let bound = 64 + 8 * unfinished + 4 * work;
        // A round in which nothing moved but time, up to the next deadline, does not
        // count against `bound` (a fast ticker would otherwise use it up while a
        // listener's back-off runs out); such rounds are bounded by virtual time
        // instead, since every back-off ends within `accept_backoff_max`.
        let time_limit =
            self.w.clock + self.w.config.engine.accept_backoff_max + Duration::from_secs(1);
        let mut waits = 0u32;
        let mut rounds = 0;
        let mut done = false;
        while rounds < bound {
            if self.all_done() {
                done = true;
                break;
            }
            let round_start = self.w.activity;
            for ci in 0..self.w.clients.len() {
                let client = ci as u16;
                if self.w.clients[ci].gone() {
                    continue;
                }
                if !self.w.clients[ci].to_client.is_empty() {
                    self.step(&ScriptedEvent::Read {
                        client,
                        window: u16::MAX,
                    })?;
                }
                // Done once everything it sent was read and answered; output the
                // handler sends unasked (a heartbeat) does not keep it open.
                if !self.w.clients[ci].fin && self.client_work_done(ci) {
                    self.step(&ScriptedEvent::HalfClose { client })?;
                }
            }
            // Time passes only when nothing else moves, as on a real machine where
            // reading and writing take no time next to a timer's period.
            self.step(&ScriptedEvent::Poll)?;
            if self.w.activity == round_start {
                let before = self.w.clock;
                self.step(&ScriptedEvent::Advance { millis: 0 })?;
                if self.w.clock > before && self.w.clock <= time_limit && waits < 100_000 {
                    waits += 1;
                    continue;
                }
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
        Ok(Outcome {
            steps: self.w.steps,
            trace_hash: self.w.hash.value(),
            faults: self.w.counts.clone(),
            stats: *self.engine.stats(),
            clients: self.w.clients.len(),
        })
    }

    // ----- the world -----------------------------------------------------------------

    fn client_index(&self, client: u16) -> Option<usize> {
        let n = self.w.clients.len();
        (n > 0).then(|| client as usize % n)
    }

    fn apply(&mut self, event: &ScriptedEvent) -> Result<(), Violation> {
        let window = self.w.config.recv_window;
        match *event {
            ScriptedEvent::Connect { listener } => {
                let listener = listener as usize % self.w.listeners.len();
                let ci = self.w.clients.len();
                self.w.clients.push(Client {
                    listener,
                    rng: Rng::derive(self.w.seed, 1000 + ci as u64),
                    ..Client::default()
                });
                self.w.listeners[listener].backlog.push_back(ci);
            }
            ScriptedEvent::Send { client, ref bytes } => {
                let Some(ci) = self.client_index(client) else {
                    return Ok(());
                };
                let c = &mut self.w.clients[ci];
                // Bytes sent to a socket the server closed are lost (the kernel answers
                // with a reset); the client cannot send after its own FIN or close.
                if c.fin || c.gone() || c.server_closed || c.refused {
                    return Ok(());
                }
                c.sent += bytes.len() as u64;
                c.outbox.extend(bytes.iter().copied());
                c.refill(window);
            }
            ScriptedEvent::Read { client, window } => {
                let Some(ci) = self.client_index(client) else {
                    return Ok(());
                };
                let c = &mut self.w.clients[ci];
                if c.gone() {
                    return Ok(());
                }
                let n = c.to_client.len().min(window as usize);
                if n == 0 {
                    return Ok(());
                }
                let got: Vec<u8> = c.to_client.drain(..n).collect();
                self.w.activity += 1;
                c.received += n as u64;
                self.w.hash.bytes(&got);
                if let Err(error) = self.model.output(&mut c.model, &got) {
                    return Err(Violation::Model { client: ci, error });
                }
            }
            ScriptedEvent::HalfClose { client } => {
                if let Some(ci) = self.client_index(client) {
                    let c = &mut self.w.clients[ci];
                    if !c.fin && !c.to_server.is_empty() {
                        self.w.counts.record(FaultKind::EofWithLastData);
                    }
                    c.fin = true;
                }
            }
            ScriptedEvent::Close { client } => {
                if let Some(ci) = self.client_index(client) {
                    let c = &mut self.w.clients[ci];
                    c.fin = true;
                    c.closed = true;
                    c.to_client.clear();
                }
            }
            ScriptedEvent::Reset { client } => {
                if let Some(ci) = self.client_index(client) {
                    let c = &mut self.w.clients[ci];
                    if c.reset {
                        return Ok(());
                    }
                    let pending = c.queued > c.transmitted;
                    if (c.in_flight() || pending) && c.registered {
                        self.w.counts.record(FaultKind::ResetMidStream);
                    }
                    c.reset = true;
                    c.outbox.clear();
                    c.to_server.clear();
                    c.to_client.clear();
                }
            }
            ScriptedEvent::Wake { client } => {
                let target = match self.client_index(client) {
                    Some(ci) => self.w.clients[ci].id.map(|id| (ci, id)),
                    None => None,
                };
                match target {
                    Some((ci, id)) => {
                        let accepted = self.w.waker.wake(id);
                        self.w.note(2, [id.to_u64(), u64::from(accepted), 0, 0]);
                        if accepted && self.w.clients[ci].server_closed {
                            return Err(Violation::WakeAccepted(id));
                        }
                        self.w.clients[ci].wake_owed |= accepted;
                    }
                    None => {
                        // Generation 0 is never issued: this id is always stale.
                        let slot = self
                            .w
                            .rng
                            .below(self.w.config.engine.max_connections as u64);
                        let id = ConnId::from_u64(slot);
                        if self.w.waker.wake(id) {
                            return Err(Violation::WakeAccepted(id));
                        }
                    }
                }
            }
            ScriptedEvent::Advance { millis } => {
                if millis == 0 {
                    if let Some(t) = self.engine.poll_timeout() {
                        self.w.clock = self.w.clock.max(t);
                    }
                } else {
                    self.w.clock = self.w.clock + Duration::from_millis(u64::from(millis));
                }
            }
            ScriptedEvent::Poll => {}
        }
        Ok(())
    }

    /// Arms a handler-side fault (close, detach, shutdown with output pending) now and
    /// then, standing for handlers that decide those on their own.
    fn inject_handler_faults(&mut self) {
        let rates = &self.w.config.rates;
        let (close, detach, shutdown) = (
            rates.get(FaultKind::CloseWithOutputPending),
            rates.get(FaultKind::DetachWithReadinessQueued),
            rates.get(FaultKind::ShutdownWithOutputPending),
        );
        // Each connection draws its own faults from its own stream, so removing one
        // client's events (when shrinking) leaves the others' faults where they were.
        for c in &mut self.w.clients {
            let (true, Some(id)) = (c.registered, c.id) else {
                continue;
            };
            if c.rng.chance(close) {
                self.engine.handler_mut().arm(Injection::Close(id));
            } else if c.rng.chance(detach) {
                let take = c.rng.below(2) == 0;
                self.engine
                    .handler_mut()
                    .arm(Injection::Detach { id, take });
            }
        }
        if self.w.rng.chance(shutdown) {
            self.engine.handler_mut().arm(Injection::Shutdown);
        }
    }

    fn poll_round(&mut self) -> Result<(), Violation> {
        if self.w.shut_down {
            return Ok(());
        }
        // The notifier's event can land in a later poller batch than the wake that
        // fired it: wakes then wait a round, while connections close and slots are
        // reused under them.
        let defer_wakes = self.w.faults_on && {
            self.w.race_wake();
            self.w
                .rng
                .chance(self.w.config.rates.get(FaultKind::WakeRace))
        };
        if defer_wakes && self.w.notified.load(Ordering::SeqCst) {
            self.w.counts.record(FaultKind::WakeRace);
        }
        // Two loop shapes, both within the protocol: drain after every input, or (as
        // evio-os does) report the time, then a whole poller batch, then wakes, and
        // drain once. Either way the loop's turn starts with the time, as a real loop's
        // starts when its wait ends.
        let batched = self.w.rng.below(2) == 0;
        self.w.note(9, [u64::from(batched), 0, 0, 0]);
        let clock = self.w.clock;
        self.w.note(6, [clock.as_nanos(), 0, 0, 0]);
        self.input_maybe_drain(batched, |e| e.handle_time(clock))?;
        if self.w.shut_down {
            return Ok(());
        }
        if !batched && !defer_wakes && self.w.notified.swap(false, Ordering::SeqCst) {
            self.w.note(3, [0; 4]);
            self.input_maybe_drain(true, |e| e.handle_wakes())?;
            self.check_wakes_delivered()?;
            self.drain()?;
        }
        let mut batch = core::mem::take(&mut self.w.batch);
        batch.clear();
        for (l, ls) in self.w.listeners.iter().enumerate() {
            if ls.watched && !ls.backlog.is_empty() {
                batch.push(Ready::Listener(l));
            }
        }
        let send_window = self.w.config.send_window;
        let faults = self.w.faults_on;
        let rates = &self.w.config.rates;
        let (spurious, eof_hup) = (
            rates.get(FaultKind::SpuriousReadiness),
            rates.get(FaultKind::EofWithLastData),
        );
        for (ci, c) in self.w.clients.iter_mut().enumerate() {
            let (true, Some(id)) = (c.registered, c.id) else {
                continue;
            };
            let hangup = c.gone();
            let mut r = Readiness {
                readable: c.interest_read && (!c.to_server.is_empty() || c.fin_arrived() || hangup),
                writable: c.interest_write && (c.to_client.len() < send_window || hangup),
                hangup,
            };
            // kqueue reports a half-close as EV_EOF, which drivers pass on as a hang-up,
            // as soon as the FIN arrives, with data still buffered before it.
            let fin_received = (c.fin || c.closed) && c.outbox.is_empty();
            if faults && fin_received && c.rng.chance(eof_hup) {
                r.hangup = true;
                r.readable = true;
            }
            if faults && !r.readable && c.rng.chance(spurious) {
                r.readable = true;
                self.w.counts.record(FaultKind::SpuriousReadiness);
            }
            if faults && !r.writable && c.rng.chance(spurious) {
                r.writable = true;
                self.w.counts.record(FaultKind::SpuriousReadiness);
            }
            if r.readable && r.writable && c.rng.below(2) == 0 {
                // Separate read and write events, as kqueue delivers them.
                batch.push(Ready::Conn(
                    ci,
                    id,
                    Readiness {
                        writable: false,
                        ..r
                    },
                ));
                batch.push(Ready::Conn(
                    ci,
                    id,
                    Readiness {
                        readable: false,
                        ..r
                    },
                ));
            } else if r.readable || r.writable || r.hangup {
                batch.push(Ready::Conn(ci, id, r));
            }
        }
        self.w.rng.shuffle(&mut batch);
        for &ready in &batch {
            if self.w.shut_down {
                break;
            }
            match ready {
                Ready::Listener(l) => {
                    self.w.note(4, [l as u64, 0, 0, 0]);
                    self.w.listeners[l].accepts = 0;
                    let id = ListenerId::new(l).unwrap_or_else(|| unreachable!("{l} listeners"));
                    self.input_maybe_drain(batched, |e| e.handle_listener_ready(id))?
                        .map_err(|error| Violation::Driver {
                            call: "handle_listener_ready",
                            error,
                        })?;
                }
                Ready::Conn(ci, id, r) => {
                    if r.writable || r.hangup {
                        self.w.clients[ci].write_blocked = false;
                    }
                    self.w.clients[ci].hup_unread |= r.hangup;
                    self.w.note(
                        5,
                        [
                            id.to_u64(),
                            u64::from(r.readable),
                            u64::from(r.writable),
                            u64::from(r.hangup),
                        ],
                    );
                    match self.input_maybe_drain(batched, |e| e.handle_conn_ready(id, r))? {
                        Ok(()) => {}
                        Err(DriverError::StaleConn) if self.w.clients[ci].server_closed => {
                            self.w.counts.record(FaultKind::DetachWithReadinessQueued);
                        }
                        Err(error) => {
                            return Err(Violation::Driver {
                                call: "handle_conn_ready",
                                error,
                            });
                        }
                    }
                }
            }
        }
        self.w.batch = batch;
        if self.w.shut_down {
            return Ok(());
        }
        if batched {
            if !defer_wakes && self.w.notified.swap(false, Ordering::SeqCst) {
                self.w.note(3, [0; 4]);
                self.input_maybe_drain(true, |e| e.handle_wakes())?;
                self.check_wakes_delivered()?;
            }
            self.drain()?;
        }
        Ok(())
    }

    /// Right after the loop handled wakes: every wake the simulator made for a
    /// connection that is surely still open (nothing the simulator saw can have started
    /// its close or detach) reached `woken`.
    fn check_wakes_delivered(&self) -> Result<(), Violation> {
        if self.w.shutting_down || self.w.shut_down {
            return Ok(());
        }
        let cap = self.w.config.engine.input_capacity;
        for c in &self.w.clients {
            let surely_open = c.opened_cb
                && !c.ended_cb
                && !c.server_closed
                && !c.leaving
                && !c.eof_reported
                && !c.io_failed
                // A full input buffer may have been a frame too large.
                && c.last_input < cap;
            if c.wake_owed && surely_open {
                return Err(Violation::Contract {
                    id: c.id,
                    detail: "a wake accepted for this open connection did not reach \
                             `woken` when the loop handled wakes"
                        .into(),
                });
            }
        }
        Ok(())
    }

    // ----- the driver ----------------------------------------------------------------

    /// One engine input, then its observations, then a full drain.
    fn input<R>(&mut self, f: impl FnOnce(&mut SimEngine<H>) -> R) -> Result<R, Violation> {
        let r = f(&mut self.engine);
        self.observe()?;
        self.drain()?;
        Ok(r)
    }

    /// One engine input and its observations, drained at once unless `batched`.
    fn input_maybe_drain<R>(
        &mut self,
        batched: bool,
        f: impl FnOnce(&mut SimEngine<H>) -> R,
    ) -> Result<R, Violation> {
        if !batched {
            return self.input(f);
        }
        let r = f(&mut self.engine);
        self.observe()?;
        Ok(r)
    }

    fn drain(&mut self) -> Result<(), Violation> {
        while !self.w.shut_down {
            let Some(out) = self.engine.poll_output() else {
                // The last poll can still run callbacks (`closed` after a `Close`).
                return self.observe();
            };
            self.w.perform::<H, M>(out, &mut self.model, &self.rec)?;
            self.observe()?;
        }
        Ok(())
    }

    fn observe(&mut self) -> Result<(), Violation> {
        self.w.observe(&mut self.model, &self.rec)
    }

    // ----- the end ---------------------------------------------------------------------

    fn client_work_done(&self, ci: usize) -> bool {
        let c = &self.w.clients[ci];
        c.outbox.is_empty() && c.to_server.is_empty() && self.model.owed(&c.model) == 0
    }

    fn all_done(&self) -> bool {
        let backlog_empty = self.w.listeners.iter().all(|l| l.backlog.is_empty());
        if !backlog_empty && !self.w.shut_down {
            return false;
        }
        self.w.clients.iter().all(|c| {
            let server_done =
                c.refused || (c.opened_cb && c.ended_cb) || (self.w.shut_down && c.id.is_none());
            server_done && (c.gone() || c.to_client.is_empty())
        })
    }

    fn stuck(&self) -> String {
        for (ci, c) in self.w.clients.iter().enumerate() {
            let server_done =
                c.refused || (c.opened_cb && c.ended_cb) || (self.w.shut_down && c.id.is_none());
            if !server_done || !(c.gone() || c.to_client.is_empty()) {
                return format!(
                    "client c{ci} (listener {}, {:?}): opened {} ended {} fin {} outbox {} to_server {} to_client {} \
                     queued {} transmitted {} owed {} interest r{} w{} engine pending out {} in {}",
                    c.listener,
                    c.id,
                    c.opened_cb,
                    c.ended_cb,
                    c.fin,
                    c.outbox.len(),
                    c.to_server.len(),
                    c.to_client.len(),
                    c.queued,
                    c.transmitted,
                    self.model.owed(&c.model),
                    c.interest_read,
                    c.interest_write,
                    c.id.map_or(0, |id| self.engine.pending_output(id)),
                    c.id.map_or(0, |id| self.engine.pending_input(id)),
                );
            }
        }
        "listener backlog not accepted".into()
    }

    fn final_checks(&mut self) -> Result<(), Violation> {
        let max = self.w.config.engine.max_connections;
        if self.engine.open_connections() != 0 || self.engine.free_slots() != max {
            return Err(Violation::Leak(format!(
                "{} connections still open, {} of {max} slots free",
                self.engine.open_connections(),
                self.engine.free_slots()
            )));
        }
        let stats = *self.engine.stats();
        let opened = self.w.clients.iter().filter(|c| c.opened_cb).count() as u64;
        if stats.accepted != stats.closed + stats.detached || stats.accepted != opened {
            return Err(Violation::Leak(format!(
                "accepted {} (opened {opened}) but closed {} + detached {}",
                stats.accepted, stats.closed, stats.detached
            )));
        }
        for (ci, c) in self.w.clients.iter().enumerate() {
            if c.registered {
                return Err(Violation::Leak(format!(
                    "client c{ci}'s socket is still in the poller"
                )));
            }
            if let Some(id) = c.id
                && self.w.waker.wake(id)
            {
                return Err(Violation::WakeAccepted(id));
            }
            let clean = c.opened_cb
                && !c.gone()
                && !c.refused
                && !c.detached
                && !c.io_failed
                && !c.errored
                && !c.injected
                && !self.w.shut_down;
            if !clean {
                continue;
            }
            let owed = self.model.owed(&c.model);
            let delivered = c.delivered_base + c.delivered.len() as u64;
            // A handler that closed the connection itself need not have read it all.
            if owed != 0
                || (delivered != c.sent && !c.leaving)
                || c.received != c.transmitted
                || c.queued != c.transmitted
            {
                return Err(Violation::Incomplete {
                    client: ci,
                    detail: format!(
                        "{:?}: sent {} read by server {delivered}, handler wrote {} transmitted {} received {}, model owes {owed}",
                        c.id, c.sent, c.queued, c.transmitted, c.received
                    ),
                });
            }
        }
        Ok(())
    }
}

impl<C> World<C> {
    /// Mixes one record into the trace hash.
    fn note(&mut self, tag: u64, words: [u64; 4]) {
        self.hash.word(tag);
        for w in words {
            self.hash.word(w);
        }
    }

    fn client_of(&self, id: ConnId) -> Option<usize> {
        let ci = (*self.by_slot.get(id.slot())?)?;
        (self.clients[ci].id == Some(id)).then_some(ci)
    }

    fn live_client(&self, id: ConnId, output: &'static str) -> Result<usize, Violation> {
        match self.client_of(id) {
            Some(ci) if self.clients[ci].registered => Ok(ci),
            _ => Err(Violation::OutputForDeadConnection { id, output }),
        }
    }

    fn check_flushed(&self, ci: usize, id: ConnId, what: &'static str) -> Result<(), Violation> {
        let c = &self.clients[ci];
        let unsent = c.queued - c.transmitted.min(c.queued);
        if unsent == 0 || c.io_failed {
            return Ok(());
        }
        // During a shutdown only the trigger's output must have been tried, and only
        // as far as the socket took it without blocking.
        if self.shutting_down && (self.trigger != Some(ci) || c.last_write_short) {
            return Ok(());
        }
        Err(Violation::CloseBeforeFlush { id, what, unsent })
    }

    /// "Another thread" wakes a random live connection.
    fn race_wake(&mut self) -> bool {
        if !self.rng.chance(self.config.rates.get(FaultKind::WakeRace)) || self.clients.is_empty() {
            return false;
        }
        let ci = self.rng.below(self.clients.len() as u64) as usize;
        let Some(id) = self.clients[ci].id else {
            return false;
        };
        let accepted = self.waker.wake(id);
        self.note(2, [id.to_u64(), u64::from(accepted), 1, 0]);
        self.clients[ci].wake_owed |= accepted;
        accepted
    }

    /// Checks what the handler did since the last look, against the world and the model.
    fn observe<M: Model<Conn = C>>(
        &mut self,
        model: &mut M,
        rec: &RefCell<Recording>,
    ) -> Result<(), Violation> {
        let (log, arena, fired) = rec.borrow_mut().take();
        let mut result = Ok(());
        for injection in &fired {
            let id = match *injection {
                Injection::Close(id) => {
                    self.counts.record(FaultKind::CloseWithOutputPending);
                    id
                }
                Injection::Detach { id, .. } => id,
                Injection::Shutdown => {
                    self.counts.record(FaultKind::ShutdownWithOutputPending);
                    continue;
                }
            };
            // Only a connection whose injection fired ends other than its handler and
            // client would have it; one merely armed stays a clean connection.
            if let Some(ci) = self.client_of(id) {
                self.clients[ci].injected = true;
            }
        }
        for o in &log {
            result = self.check(o, &arena, model);
            if result.is_err() {
                break;
            }
        }
        rec.borrow_mut().recycle(log, arena, fired);
        result
    }

    /// Between an output and its report: what the output's own borrow of the engine
    /// ran (`prewrite`, a `closed`) is checked first, and another thread may wake
    /// someone.
    fn between<M: Model<Conn = C>>(
        &mut self,
        model: &mut M,
        rec: &RefCell<Recording>,
    ) -> Result<(), Violation> {
        self.observe(model, rec)?;
        if self.faults_on && self.race_wake() {
            self.counts.record(FaultKind::WakeRace);
        }
        Ok(())
    }

    /// Performs one engine output on the virtual sockets and reports it.
    fn perform<H: Events, M: Model<Conn = C>>(
        &mut self,
        out: SimOutput<'_, H>,
        model: &mut M,
        rec: &RefCell<Recording>,
    ) -> Result<(), Violation> {
        let faults = self.faults_on;
        let rates = &self.config.rates;
        let (short_read, read_again, short_write, write_again, emfile, aborted) = (
            rates.get(FaultKind::ShortRead),
            rates.get(FaultKind::ReadAgain),
            rates.get(FaultKind::ShortWrite),
            rates.get(FaultKind::WriteAgain),
            rates.get(FaultKind::AcceptExhausted),
            rates.get(FaultKind::AcceptAborted),
        );
        self.activity += 1;
        if let Some(t) = &mut self.trace {
            t.push(format!("  output {out:?}"));
        }
        match out {
            Output::Accept(accept) => {
                let listener = accept.listener().index();
                self.note(10, [listener as u64, 0, 0, 0]);
                let batch = self.config.engine.accept_batch;
                let l = &mut self.listeners[listener];
                l.accepts += 1;
                if l.accepts > batch {
                    return Err(Violation::Contract {
                        id: None,
                        detail: format!(
                            "{} accepts on listener {listener} for one readiness report \
                             (accept_batch is {batch})",
                            l.accepts
                        ),
                    });
                }
                if !l.watched || l.must_pause {
                    return Err(Violation::Contract {
                        id: None,
                        detail: format!(
                            "accept on listener {listener} {}",
                            if l.must_pause {
                                "again right after EMFILE, without a back-off"
                            } else {
                                "while it is paused"
                            }
                        ),
                    });
                }
                if faults && self.rng.chance(emfile) {
                    self.counts.record(FaultKind::AcceptExhausted);
                    // ENFILE and ENOBUFS reach the engine as `Other` from some drivers.
                    let error = if self.rng.below(4) == 0 {
                        AcceptError::Other(Some(23))
                    } else {
                        AcceptError::Exhausted
                    };
                    self.listeners[listener].must_pause = true;
                    self.between(model, rec)?;
                    accept.failed(error);
                    return Ok(());
                }
                if faults && self.rng.chance(aborted) {
                    self.counts.record(FaultKind::AcceptAborted);
                    self.between(model, rec)?;
                    accept.failed(AcceptError::Aborted);
                    return Ok(());
                }
                let Some(ci) = self.listeners[listener].backlog.pop_front() else {
                    self.between(model, rec)?;
                    // Dropping the operation says the same as reporting EAGAIN; do
                    // either, half the time.
                    if self.rng.below(2) == 0 {
                        drop(accept);
                    } else {
                        accept.would_block();
                    }
                    return Ok(());
                };
                self.between(model, rec)?;
                let (local, peer) = (Addr::Ip(listen_addr(listener)), Addr::Ip(peer_addr(ci)));
                match accept.done(local, peer) {
                    Ok(id) => {
                        self.note(7, [ci as u64, id.to_u64(), 0, 0]);
                        if let Some(t) = &mut self.trace {
                            t.push(format!("  accepted c{ci} as {id}"));
                        }
                        if let Some(other) = self.by_slot[id.slot()]
                            && !self.clients[other].ended_cb
                        {
                            return Err(Violation::Contract {
                                id: self.clients[other].id,
                                detail: format!(
                                    "its slot went to a new connection {id} before `closed` \
                                     or `detached` ran for it"
                                ),
                            });
                        }
                        let c = &mut self.clients[ci];
                        c.id = Some(id);
                        c.registered = true;
                        c.interest_read = true;
                        self.by_slot[id.slot()] = Some(ci);
                    }
                    Err(refused) => {
                        self.note(7, [ci as u64, u64::MAX, 0, 0]);
                        if refused == Refused::PoolFull {
                            self.counts.record(FaultKind::PoolFull);
                        }
                        let c = &mut self.clients[ci];
                        c.refused = true;
                        c.server_closed = true;
                    }
                }
            }
            Output::Read(mut read) => {
                let id = read.id();
                let ci = self.live_client(id, "read")?;
                let window = self.config.recv_window;
                let c = &mut self.clients[ci];
                if c.write_blocked && c.queued > c.transmitted && !c.hup_unread {
                    return Err(Violation::Contract {
                        id: Some(id),
                        detail: format!(
                            "read while {} bytes of output are blocked (no writable or \
                             hang-up report since the last short write): backpressure ignored",
                            c.queued - c.transmitted
                        ),
                    });
                }
                let full = c.hup_unread;
                c.hup_unread = false;
                if c.reset {
                    self.hash.word(11);
                    let e = io_error(ECONNRESET);
                    self.between(model, rec)?;
                    self.io_failed(ci, e);
                    read.failed(e);
                    return Ok(());
                }
                let available = c.to_server.len();
                if available == 0 {
                    self.hash.word(12);
                    let eof = c.fin_arrived();
                    self.between(model, rec)?;
                    if eof {
                        self.clients[ci].eof_reported = true;
                        read.done(0);
                    } else if self.rng.below(2) == 0 {
                        drop(read);
                    } else {
                        read.would_block();
                    }
                    return Ok(());
                }
                if faults && c.rng.chance(read_again) {
                    self.counts.record(FaultKind::ReadAgain);
                    self.hash.word(13);
                    self.between(model, rec)?;
                    read.would_block();
                    return Ok(());
                }
                let buf = read.buf();
                let mut n = available.min(buf.len());
                if faults && n > 1 && c.rng.chance(short_read) {
                    n = c.rng.range(1, n as u64 - 1) as usize;
                    self.counts.record(FaultKind::ShortRead);
                }
                // A read that fills the buffer may leave more behind; anything else
                // answers the hang-up.
                c.hup_unread = full && n == buf.len();
                for (slot, b) in buf.iter_mut().zip(c.to_server.drain(..n)) {
                    *slot = b;
                }
                let got = &buf[..n];
                self.hash.word(14);
                self.hash.bytes(got);
                c.delivered.extend_from_slice(got);
                model.input(&mut c.model, got);
                c.refill(window);
                self.between(model, rec)?;
                read.done(n);
            }
            Output::Transmit(transmit) => {
                let id = transmit.id();
                let ci = self.live_client(id, "transmit")?;
                let send_window = self.config.send_window;
                let c = &mut self.clients[ci];
                c.transmits += 1;
                let bytes = transmit.bytes();
                let pending = c.queued.wrapping_sub(c.transmitted);
                if bytes.is_empty() || bytes.len() as u64 != pending {
                    return Err(Violation::Accounting {
                        client: ci,
                        detail: format!(
                            "transmit of {} bytes, but the handler wrote {} of which {} were sent",
                            bytes.len(),
                            c.queued,
                            c.transmitted
                        ),
                    });
                }
                let len = bytes.len();
                let broken = if c.reset {
                    self.hash.word(15);
                    Some(ECONNRESET)
                } else if c.closed {
                    self.hash.word(16);
                    self.counts.record(FaultKind::BrokenPipe);
                    Some(EPIPE)
                } else {
                    None
                };
                if let Some(errno) = broken {
                    let e = io_error(errno);
                    self.between(model, rec)?;
                    self.io_failed(ci, e);
                    transmit.failed(e);
                    return Ok(());
                }
                let room = send_window.saturating_sub(c.to_client.len());
                let again = room > 0 && faults && c.rng.chance(write_again);
                if room == 0 || again {
                    if again {
                        self.counts.record(FaultKind::WriteAgain);
                    }
                    self.hash.word(17);
                    self.between(model, rec)?;
                    // Reported or not, EAGAIN leaves the output blocked.
                    let c = &mut self.clients[ci];
                    c.last_write_short = true;
                    c.write_blocked = true;
                    if self.rng.below(2) == 0 {
                        transmit.would_block();
                    } else {
                        drop(transmit);
                    }
                    return Ok(());
                }
                let mut n = room.min(len);
                if faults && n > 1 && c.rng.chance(short_write) {
                    n = c.rng.range(1, n as u64 - 1) as usize;
                    self.counts.record(FaultKind::ShortWrite);
                }
                c.to_client.extend(bytes[..n].iter().copied());
                self.hash.word(18);
                self.hash.bytes(&bytes[..n]);
                self.between(model, rec)?;
                let c = &mut self.clients[ci];
                c.transmitted += n as u64;
                c.last_write_short = n < len;
                c.write_blocked = n < len;
                transmit.done(n);
            }
            Output::Detach(detach) => {
                let id = detach.id();
                let ci = self.live_client(id, "detach")?;
                self.note(22, [id.to_u64(), 0, 0, 0]);
                self.check_flushed(ci, id, "detach")?;
                let c = &mut self.clients[ci];
                c.registered = false;
                c.server_closed = true;
                self.between(model, rec)?;
                let mut socket = Some(SimStream { client: ci });
                detach.done(Detached::new(&mut socket));
                self.note(8, [id.to_u64(), u64::from(socket.is_none()), 0, 0]);
            }
            Output::Configure { id, options } => {
                self.live_client(id, "configure")?;
                self.note(19, [id.to_u64(), u64::from(options.nodelay), 0, 0]);
                self.between(model, rec)?;
            }
            Output::SetInterest { id, interest } => {
                let ci = self.live_client(id, "set-interest")?;
                let (read, write) = (interest.is_readable(), interest.is_writable());
                self.note(20, [id.to_u64(), u64::from(read), u64::from(write), 0]);
                let c = &mut self.clients[ci];
                c.interest_read = read;
                c.interest_write = write;
                self.between(model, rec)?;
            }
            Output::Close { id } => {
                let ci = self.live_client(id, "close")?;
                self.note(21, [id.to_u64(), 0, 0, 0]);
                self.check_flushed(ci, id, "close")?;
                let c = &mut self.clients[ci];
                c.registered = false;
                c.server_closed = true;
                self.between(model, rec)?;
            }
            Output::PauseAccept { listener } => {
                let l = listener.index();
                self.note(23, [l as u64, 0, 0, 0]);
                self.listeners[l].watched = false;
                self.listeners[l].must_pause = false;
                self.between(model, rec)?;
            }
            Output::ResumeAccept { listener } => {
                let l = listener.index();
                self.note(24, [l as u64, 0, 0, 0]);
                self.listeners[l].watched = true;
                self.listeners[l].accepts = 0;
                self.between(model, rec)?;
            }
            Output::Shutdown => {
                self.note(25, [0; 4]);
                self.shut_down = true;
                self.between(model, rec)?;
            }
        }
        Ok(())
    }

    /// The driver is about to report I/O error `e` for client `ci`.
    fn io_failed(&mut self, ci: usize, e: IoError) {
        let c = &mut self.clients[ci];
        c.io_failed = true;
        c.io_error.get_or_insert(e);
    }

    /// Checks one handler callback against the world and the model.
    fn check<M: Model<Conn = C>>(
        &mut self,
        o: &Observation,
        arena: &[u8],
        model: &mut M,
    ) -> Result<(), Violation> {
        self.activity += 1;
        if let Some(t) = &mut self.trace {
            t.push(format!("  handler {o:?}"));
        }
        let live = |w: &Self, id: ConnId, callback: &'static str| -> Result<usize, Violation> {
            match w.client_of(id) {
                Some(ci) if w.clients[ci].opened_cb && !w.clients[ci].ended_cb => Ok(ci),
                _ => Err(Violation::CallbackOutsideLife { id, callback }),
            }
        };
        match *o {
            Observation::Serving { action } => {
                self.note(30, [action as u64, 0, 0, 0]);
                self.note_action(None, action);
            }
            Observation::Opened {
                id,
                info,
                wrote,
                action,
            } => {
                self.note(31, [id.to_u64(), wrote as u64, action as u64, 0]);
                let Some(ci) = self.client_of(id) else {
                    return Err(Violation::CallbackOutsideLife {
                        id,
                        callback: "opened",
                    });
                };
                let c = &mut self.clients[ci];
                if c.opened_cb {
                    return Err(Violation::OpenedTwice(id));
                }
                let expected = ConnInfo {
                    id,
                    listener: ListenerId::new(c.listener).expect("a simulated listener"),
                    local: Addr::Ip(listen_addr(c.listener)),
                    peer: Addr::Ip(peer_addr(ci)),
                };
                if info != expected {
                    return Err(Violation::Contract {
                        id: Some(id),
                        detail: format!("opened with {info:?}, the driver reported {expected:?}"),
                    });
                }
                c.opened_cb = true;
                model.opened(&mut c.model, &info);
                c.queued += wrote as u64;
                if wrote > 0 {
                    c.last_write_short = false;
                }
                self.note_action(Some(ci), action);
            }
            Observation::Data {
                id,
                ref input,
                wrote,
                action,
            } => {
                self.note(
                    32,
                    [id.to_u64(), input.len() as u64, wrote as u64, action as u64],
                );
                let ci = live(self, id, "data")?;
                let c = &mut self.clients[ci];
                if c.leaving {
                    return Err(Violation::AfterLeaving {
                        id,
                        callback: "data",
                    });
                }
                let input = &arena[input.clone()];
                let held = c.delivered.len() - c.handler_pos;
                if input.len() > held || c.delivered[c.delivered.len() - input.len()..] != *input {
                    return Err(Violation::Input {
                        client: ci,
                        detail: format!(
                            "got {} bytes, expected the last {held} bytes read (or a suffix of them)",
                            input.len()
                        ),
                    });
                }
                c.handler_pos = c.delivered.len() - input.len();
                c.last_input = input.len();
                if c.handler_pos > 4096 {
                    // Keep memory bounded on long runs: consumed bytes are never looked at again.
                    c.delivered.drain(..c.handler_pos);
                    c.delivered_base += c.handler_pos as u64;
                    c.handler_pos = 0;
                }
                c.queued += wrote as u64;
                if wrote > 0 {
                    c.last_write_short = false;
                }
                self.note_action(Some(ci), action);
            }
            Observation::Woken { id, wrote, action } => {
                self.note(33, [id.to_u64(), wrote as u64, action as u64, 0]);
                let ci = live(self, id, "woken")?;
                let c = &mut self.clients[ci];
                if c.leaving {
                    return Err(Violation::AfterLeaving {
                        id,
                        callback: "woken",
                    });
                }
                if !c.wake_owed && !model.handler_wakes() {
                    return Err(Violation::Contract {
                        id: Some(id),
                        detail: "woken with no wake made for this connection since its \
                                 last woken (a wake for an earlier connection in its slot?)"
                            .into(),
                    });
                }
                c.wake_owed = false;
                model.woken(&mut c.model);
                c.queued += wrote as u64;
                if wrote > 0 {
                    c.last_write_short = false;
                }
                self.note_action(Some(ci), action);
            }
            Observation::Closed { id, error, action } => {
                self.note(
                    34,
                    [id.to_u64(), u64::from(error.is_some()), action as u64, 0],
                );
                let Some(ci) = self.client_of(id) else {
                    // The slot no longer maps to a connection that ended: name a second
                    // `closed` (or one after `detached` took the socket) as such.
                    let ended = self.clients.iter().any(|c| c.id == Some(id) && c.ended_cb);
                    return Err(if ended {
                        Violation::ClosedTwice(id)
                    } else {
                        Violation::CallbackOutsideLife {
                            id,
                            callback: "closed",
                        }
                    });
                };
                let c = &mut self.clients[ci];
                if !c.opened_cb {
                    return Err(Violation::CallbackOutsideLife {
                        id,
                        callback: "closed",
                    });
                }
                if c.ended_cb {
                    return Err(Violation::ClosedTwice(id));
                }
                if !c.server_closed {
                    return Err(Violation::ClosedBeforeSocket(id));
                }
                if c.postwrites != c.prewrites {
                    return Err(Violation::Accounting {
                        client: ci,
                        detail: format!(
                            "closed after {} prewrites but {} postwrites",
                            c.prewrites, c.postwrites
                        ),
                    });
                }
                // The I/O error the driver reported reaches `closed`; a frame too
                // large only after the handler was given a full input buffer; nothing
                // else is an error.
                let cap = self.config.engine.input_capacity;
                let fits = match error {
                    Some(CloseError::Io(e)) => c.io_error == Some(e),
                    Some(CloseError::FrameTooLarge { capacity }) => {
                        c.io_error.is_none() && capacity == cap && c.last_input == cap
                    }
                    None => c.io_error.is_none(),
                };
                if !fits {
                    return Err(Violation::Contract {
                        id: Some(id),
                        detail: format!(
                            "closed with {error:?}, but the driver reported {:?} and the last \
                             data call was given {} bytes of an input buffer of {cap}",
                            c.io_error, c.last_input
                        ),
                    });
                }
                c.ended_cb = true;
                c.errored = error.is_some();
                self.by_slot[id.slot()] = None;
                self.note_action(None, action);
            }
            Observation::Detached { id, taken, action } => {
                self.note(35, [id.to_u64(), u64::from(taken), action as u64, 0]);
                let ci = live(self, id, "detached")?;
                let c = &mut self.clients[ci];
                if !c.server_closed {
                    return Err(Violation::CallbackOutsideLife {
                        id,
                        callback: "detached",
                    });
                }
                if c.postwrites != c.prewrites {
                    return Err(Violation::Accounting {
                        client: ci,
                        detail: format!(
                            "detached after {} prewrites but {} postwrites",
                            c.prewrites, c.postwrites
                        ),
                    });
                }
                if taken {
                    c.ended_cb = true;
                    c.detached = true;
                    self.by_slot[id.slot()] = None;
                }
                self.note_action(None, action);
            }
            Observation::Prewrite { id, attempted } => {
                self.note(36, [id.to_u64(), attempted as u64, 0, 0]);
                let ci = live(self, id, "prewrite")?;
                let c = &mut self.clients[ci];
                c.attempted = attempted;
                c.prewrites += 1;
                if c.prewrites != c.postwrites + 1 || c.prewrites != c.transmits {
                    return Err(Violation::Accounting {
                        client: ci,
                        detail: format!(
                            "prewrite #{} after {} postwrites, for {} transmits",
                            c.prewrites, c.postwrites, c.transmits
                        ),
                    });
                }
                if attempted as u64 != c.queued - c.transmitted.min(c.queued) || attempted == 0 {
                    return Err(Violation::Accounting {
                        client: ci,
                        detail: format!(
                            "prewrite({attempted}) but the handler wrote {} of which {} were sent",
                            c.queued, c.transmitted
                        ),
                    });
                }
            }
            Observation::Postwrite {
                id,
                written,
                remaining,
            } => {
                self.note(37, [id.to_u64(), written as u64, remaining as u64, 0]);
                let ci = live(self, id, "postwrite")?;
                let c = &mut self.clients[ci];
                c.postwrites += 1;
                if c.postwrites != c.prewrites || c.postwrites != c.transmits {
                    return Err(Violation::Accounting {
                        client: ci,
                        detail: format!(
                            "postwrite #{} after {} prewrites, for {} transmits",
                            c.postwrites, c.prewrites, c.transmits
                        ),
                    });
                }
                if remaining as u64 != c.queued.wrapping_sub(c.transmitted)
                    || written.checked_add(remaining) != Some(c.attempted)
                {
                    return Err(Violation::Accounting {
                        client: ci,
                        detail: format!(
                            "postwrite({written}, {remaining}) after prewrite({}), but the handler \
                             wrote {} of which {} were sent",
                            c.attempted, c.queued, c.transmitted
                        ),
                    });
                }
            }
            Observation::Tick { now, tick } => {
                if now != self.clock {
                    return Err(Violation::Contract {
                        id: None,
                        detail: format!(
                            "tick given {now}, but the driver's time is {}",
                            self.clock
                        ),
                    });
                }
                if let Some(due) = self.tick_due
                    && now < due
                {
                    return Err(Violation::Contract {
                        id: None,
                        detail: format!("tick at {now}, due at {due}"),
                    });
                }
                // The engine's schedule: from the time it was due (no drift), at least
                // `min_tick` apart, skipping ticks missed by more than a period.
                let scheduled = self.tick_due.unwrap_or(now);
                self.tick_due = tick.delay.map(|d| {
                    let d = d.max(self.config.engine.min_tick);
                    let next = scheduled + d;
                    if next <= now { now + d } else { next }
                });
                self.note(
                    38,
                    [
                        now.as_nanos(),
                        tick.delay.map_or(u64::MAX, |d| d.as_nanos() as u64),
                        tick.action as u64,
                        0,
                    ],
                );
                self.note_action(None, tick.action);
            }
        }
        Ok(())
    }

    fn note_action(&mut self, ci: Option<usize>, action: evio_proto::Action) {
        if let (Some(ci), evio_proto::Action::Close | evio_proto::Action::Detach) = (ci, action) {
            self.clients[ci].leaving = true;
        }
        if action == evio_proto::Action::Shutdown && !self.shutting_down {
            self.shutting_down = true;
            self.trigger = ci;
        }
    }
}

fn listen_addr(listener: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7000 + listener as u16)
}

fn peer_addr(client: usize) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(10, 0, (client >> 8) as u8, client as u8)),
        40000 + (client % 20000) as u16,
    )
}

fn event_words(event: &ScriptedEvent) -> [u64; 4] {
    match *event {
        ScriptedEvent::Connect { listener } => [0, u64::from(listener), 0, 0],
        ScriptedEvent::Send { client, ref bytes } => [1, u64::from(client), bytes.len() as u64, 0],
        ScriptedEvent::Read { client, window } => [2, u64::from(client), u64::from(window), 0],
        ScriptedEvent::HalfClose { client } => [3, u64::from(client), 0, 0],
        ScriptedEvent::Close { client } => [4, u64::from(client), 0, 0],
        ScriptedEvent::Reset { client } => [5, u64::from(client), 0, 0],
        ScriptedEvent::Wake { client } => [6, u64::from(client), 0, 0],
        ScriptedEvent::Advance { millis } => [7, u64::from(millis), 0, 0],
        ScriptedEvent::Poll => [8, 0, 0, 0],
    }
}

/// The error a virtual socket reports for `errno` (the usual Linux numbers).
fn io_error(errno: i32) -> IoError {
    let kind = match errno {
        ECONNRESET => IoErrorKind::ConnectionReset,
        EPIPE => IoErrorKind::BrokenPipe,
        _ => IoErrorKind::Other,
    };
    IoError::with_code(kind, errno)
}
