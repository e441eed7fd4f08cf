//! The step loop: [`Sim`] ties the production engine, the virtual network with its
//! fault injector, the oracle and the trace together, one scripted event and one round
//! of the loop at a time.
//!
//! The simulator is a driver: it follows the same driver protocol as `evio-os` and
//! decides nothing itself. The round's shape, the poller's batch and the reports are
//! here; performing each engine output on the network is in [`crate::driver`]; the end
//! of a run (liveness and the final checks) is in [`crate::liveness`].

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use evio_proto::{
    ConnId, DriverError, Duration, Events, HeapEngine, Instant, ListenAddr, ListenerId, Notify,
    Output, Readiness, Slot, Waker,
};

use crate::injector::FaultInjector;
use crate::network::{Network, listen_addr};
use crate::observe::{Observed, Recording};
use crate::oracle::Oracle;
use crate::trace::{Tag, Trace, event_words};
use crate::{
    Failure, FaultCounts, FaultKind, Model, Origin, Rng, Rule, ScriptedEvent, SimConfig, Violation,
};

/// The engine type a [`Sim`] runs: the production engine over the observed handler,
/// with heap storage.
pub type SimEngine<H> = HeapEngine<Observed<H>>;

/// What a [`SimEngine`] asks for.
pub(crate) type SimOutput<'a, H> =
    Output<'a, Observed<H>, Vec<Slot<<H as Events>::Context>>, Vec<u8>>;

/// The notifier the engine's waker calls: it raises a flag the loop checks, as an
/// eventfd makes the real poller return.
struct SimNotify(Arc<AtomicBool>);

impl Notify for SimNotify {
    fn notify(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// One readiness report in the poller's batch.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ready {
    /// A listener has connections waiting.
    Listener(usize),
    /// Client `.0`'s connection `.1` is ready.
    Conn(usize, ConnId, Readiness),
}

/// A simulated server: the production engine running handler `H`, checked against
/// model `M`, in a world of virtual sockets whose every choice comes from one seed.
///
/// Drive it with [`Sim::step`] (one [`ScriptedEvent`] and one round of the loop,
/// invariants checked after it), then [`Sim::finish`] (faults off, a liveness phase
/// until every client's work is done, then the end-of-run checks). [`crate::run`] and
/// [`crate::run_seed`] do both.
pub struct Sim<H: Events, M: Model> {
    pub(crate) engine: SimEngine<H>,
    pub(crate) w: World<M>,
}

/// Everything of a simulation but the engine, so that an output, which borrows the
/// engine until it is reported, can be performed on it.
pub(crate) struct World<M: Model> {
    /// The virtual network, with faults around it.
    pub io: FaultInjector,
    /// The checks.
    pub oracle: Oracle<M>,
    /// The trace hash and readable trace.
    pub trace: Trace,
    /// What the observed handler records, read while an operation borrows the engine.
    pub rec: Rc<RefCell<Recording>>,
    /// The engine's waker, as another thread holds it.
    pub waker: Waker,
    /// The notifier's flag: wakes are waiting for the loop.
    pub notified: Arc<AtomicBool>,
    /// Steps run.
    pub steps: u64,
    /// Naps performed (`Engine::poll_nap`).
    pub naps: u64,
    /// Outputs performed and callbacks seen: the liveness phase advances the clock only
    /// when a round changed nothing.
    pub activity: u64,
    /// The engine emitted `Output::Shutdown`.
    pub shut_down: bool,
    /// The poller's batch, kept to reuse its allocation.
    pub batch: Vec<Ready>,
    /// The run's configuration.
    pub config: SimConfig,
    /// The run's seed.
    pub seed: u64,
    /// The events given to [`Sim::step`], for [`Sim::failure`] to keep.
    pub stepped: Vec<ScriptedEvent>,
    /// The client of the last read or transmit performed: the connection whose handler
    /// its report may have given input to.
    pub last_io: Option<usize>,
    /// The index in `stepped` of the event whose step failed, if one did.
    pub failed_at: Option<usize>,
    /// For one loop of several ([`crate::LoopsSim`]): its number and the post office,
    /// whose record of this loop's posts the model is told of.
    pub office: Option<(usize, Arc<crate::loops::SimPostOffice>)>,
}

impl<H: Events, M: Model> core::fmt::Debug for Sim<H, M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sim")
            .field("engine", &self.engine)
            .field("clock", &self.w.io.net().clock)
            .field("clients", &self.w.io.net().sockets.len())
            .field("steps", &self.w.steps)
            .finish_non_exhaustive()
    }
}

impl<M: Model> World<M> {
    /// Every backend takes its turn (reads what the engine sent it and echoes it):
    /// what a backend reads is checked against the model as a client's is.
    fn backends_turn(&mut self) -> Result<(), Violation> {
        let mut read = Vec::new();
        self.io
            .backends_turn(|ci, bytes| read.push((ci, bytes.to_vec())));
        for (ci, bytes) in read {
            self.activity += 1;
            self.trace.note(Tag::BackendRead, [ci as u64, 0, 0, 0]);
            self.trace.bytes(&bytes);
            self.oracle.received(ci, &bytes)?;
        }
        Ok(())
    }

    /// Client `ci` reads at most `window` bytes: the model must allow them.
    fn receive(&mut self, ci: usize, window: usize) -> Result<(), Violation> {
        let Some(got) = self.io.net_mut().receive(ci, window) else {
            return Ok(());
        };
        if let Some(detail) = self.io.net_mut().take_transport_error(ci) {
            return Err(Violation::Transport { client: ci, detail });
        }
        self.activity += 1;
        self.trace.bytes(&got);
        self.oracle.received(ci, &got)
    }

    /// Client `ci` shuts down its sending side.
    fn half_close(&mut self, ci: usize) {
        let fin_behind_data = self.io.net_mut().half_close(ci);
        if fin_behind_data {
            self.io.record(FaultKind::EofWithLastData);
        }
    }

    /// Client `ci`'s connection is reset (once).
    fn reset(&mut self, ci: usize) {
        let socket = &self.io.net().sockets[ci];
        if socket.reset {
            return;
        }
        let pending = self.oracle.conn(ci).unsent() > 0;
        if (socket.in_flight() || pending) && socket.registered() {
            self.io.record(FaultKind::ResetMidStream);
        }
        self.io.net_mut().reset(ci);
    }

    /// Another thread wakes the connection of the script's client `client`, or a stale
    /// id when it has none: a wake for a closed connection must be refused.
    fn wake(&mut self, client: u16) -> Result<(), Violation> {
        let net = self.io.net();
        let target = net
            .client(client)
            .and_then(|ci| Some((ci, net.sockets[ci].id?)));
        let Some((ci, id)) = target else {
            // Generation 0 is never issued: this id is always stale.
            let slots = self.config.engine.max_connections as u64;
            let id = ConnId::from_u64(self.io.net_mut().rng.below(slots));
            if self.waker.wake(id) {
                return Err(Violation::WakeAccepted(id));
            }
            return Ok(());
        };
        let accepted = self.waker.wake(id);
        self.trace
            .note(Tag::Wake, [id.to_u64(), u64::from(accepted), 0, 0]);
        self.oracle.wake_made(self.io.net(), ci, id, accepted)
    }
}

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
        Self::build(handler, model, seed, config, None)
    }

    /// [`Sim::with_config`], as loop `office.0` of a server whose inboxes are
    /// `office.1` when given.
    pub(crate) fn build(
        handler: H,
        model: M,
        seed: u64,
        config: SimConfig,
        office: Option<(usize, Arc<crate::loops::SimPostOffice>)>,
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
        let notified = Arc::new(AtomicBool::new(false));
        let mut observed = Observed::new(handler);
        observed.set_ticker(config.ticker);
        let rec = observed.recording();
        let mut engine = SimEngine::allocate(observed, config.engine, SimNotify(notified.clone()))
            .map_err(Violation::Build)?;
        if let Some((index, office)) = &office {
            let office: Arc<dyn evio_proto::PostOffice> = office.clone();
            engine.join_loops(evio_proto::Loops::from_arc(*index, office));
        }
        let waker = engine.waker().expect("an engine with a notifier").clone();
        let mut net = Network::new(&config, Rng::derive(seed, 3));
        let mut model = model;
        if let Some(backends) = model.backends() {
            net.set_backends(backends, Rng::derive(seed, 5));
        }
        if let Some(transports) = model.client_transports() {
            net.set_client_transports(transports);
        }
        let mut sim = Sim {
            engine,
            w: World {
                io: FaultInjector::new(net, config.rates.clone(), seed),
                oracle: Oracle::new(model, config.engine, usize::from(config.listeners)),
                trace: Trace::default(),
                rec,
                waker,
                notified,
                steps: 0,
                naps: 0,
                activity: 0,
                shut_down: false,
                batch: Vec::new(),
                config,
                seed,
                stepped: Vec::new(),
                last_io: None,
                failed_at: None,
                office,
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
        self.w.trace.set_lines(on);
    }

    /// The readable trace recorded since [`Sim::set_tracing`].
    pub fn trace(&self) -> &[String] {
        self.w.trace.lines()
    }

    /// The hash of everything that happened so far.
    pub fn trace_hash(&self) -> u64 {
        self.w.trace.hash()
    }

    /// How often each fault fired so far.
    pub fn faults(&self) -> &FaultCounts {
        self.w.io.counts()
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
        self.w.io.net().clock
    }

    /// `true` once the engine has shut down.
    pub fn is_shut_down(&self) -> bool {
        self.w.shut_down
    }

    /// Everything client `client` has received so far, counted in bytes.
    pub fn received(&self, client: usize) -> Option<u64> {
        let net = self.w.io.net();
        net.clients()
            .get(client)
            .map(|&ci| net.sockets[ci].received)
    }

    /// The bytes client `client` has received so far, in order; `None` if it never
    /// connected.
    pub fn received_bytes(&self, client: usize) -> Option<&[u8]> {
        let net = self.w.io.net();
        let ci = *net.clients().get(client)?;
        Some(net.sockets[ci].received_bytes.as_slice())
    }

    /// The bytes backend `backend` (in the order the engine connected out) has
    /// received so far, in order; `None` if there is no such backend.
    pub fn backend_received_bytes(&self, backend: usize) -> Option<&[u8]> {
        let net = self.w.io.net();
        let ci = *net.backends().get(backend)?;
        Some(net.sockets[ci].received_bytes.as_slice())
    }

    /// Backends the engine connected to so far (outbound connects it asked the
    /// driver for).
    pub fn backends(&self) -> usize {
        self.w.io.net().backends().len()
    }

    /// The model, as the run has left it (its state shared between connections).
    pub fn model(&self) -> &M {
        self.w.oracle.model()
    }

    /// The model's state for client `client`'s connection; `None` if it never
    /// connected.
    pub fn model_conn(&self, client: usize) -> Option<&M::Conn> {
        let ci = *self.w.io.net().clients().get(client)?;
        self.w.oracle.conns().get(ci).map(|c| &c.model)
    }

    /// Clients that connected so far.
    pub fn clients(&self) -> usize {
        self.w.io.net().clients().len()
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.w.seed
    }

    /// The run's configuration.
    pub fn config(&self) -> &SimConfig {
        &self.w.config
    }

    /// The events given to [`Sim::step`] so far (not those the liveness phase of
    /// [`Sim::finish`] makes, which it makes again on a replay).
    pub fn script(&self) -> &[ScriptedEvent] {
        &self.w.stepped
    }

    /// A [`Failure`] for `violation`, found by [`Sim::step`] or [`Sim::finish`], with
    /// what replays it: the seed, the configuration and the events stepped so far
    /// ([`Origin::Script`]). Its report prints how to run them again with
    /// [`run`](crate::run), and the script itself when it is short.
    ///
    /// ```
    /// use evio_handlers::echo::Echo;
    /// use evio_sim::{EchoModel, ScriptedEvent, Sim};
    ///
    /// let mut sim = Sim::new(Echo, EchoModel, 7).unwrap();
    /// let script = [ScriptedEvent::Connect { listener: 0 }, ScriptedEvent::Poll];
    /// for event in &script {
    ///     if let Err(violation) = sim.step(event) {
    ///         panic!("{}", sim.failure(violation)); // the report says how to replay it
    ///     }
    /// }
    /// assert_eq!(sim.script(), &script);
    /// ```
    pub fn failure(&self, violation: Violation) -> Failure {
        let script = self.w.stepped.clone();
        Failure {
            seed: self.w.seed,
            steps: script.len(),
            at_step: self.w.failed_at.unwrap_or(script.len()),
            violation,
            test: crate::test_name(),
            origin: Box::new(Origin::Script {
                config: Box::new(self.w.config.clone()),
                script,
            }),
        }
    }

    /// Applies one scripted event, runs one round of the loop (wakes, readiness in a
    /// seeded order, due timers) with faults, and checks every invariant.
    ///
    /// The event is kept (see [`Sim::script`]), so that a failure made with
    /// [`Sim::failure`] can be replayed.
    ///
    /// # Errors
    ///
    /// The first [`Violation`] found; [`Sim::failure`] turns it into a [`Failure`]
    /// that says how to replay it.
    pub fn step(&mut self, event: &ScriptedEvent) -> Result<(), Violation> {
        self.w.stepped.push(event.clone());
        let result = self.run_event(event);
        if result.is_err() && self.w.failed_at.is_none() {
            self.w.failed_at = Some(self.w.stepped.len() - 1);
        }
        result
    }

    /// [`Sim::step`] without keeping the event: for whole scripts the caller keeps
    /// ([`crate::run`]) and for the liveness phase's own events.
    pub(crate) fn run_event(&mut self, event: &ScriptedEvent) -> Result<(), Violation> {
        self.w.steps += 1;
        self.w.trace.note(Tag::Event, event_words(event));
        if let ScriptedEvent::Send { bytes, .. } = event {
            self.w.trace.bytes(bytes);
        }
        self.w.trace.line(|| format!("event {event}"));
        self.apply(event)?;
        self.w.backends_turn()?;
        let handler = self.engine.handler_mut();
        self.w
            .io
            .arm_handler_faults(|injection| handler.arm(injection));
        self.w.io.reach_deadline(self.engine.poll_timeout());
        self.poll_round()?;
        if !self.w.shut_down && !self.w.oracle.shutting_down {
            let clock = self.w.io.net().clock;
            let deadline = self.engine.poll_timeout();
            self.w.oracle.tick.check_due(deadline, clock)?;
            self.w
                .oracle
                .check_timeouts_due(self.w.io.net(), deadline, clock)?;
            self.w.oracle.check_send_bounds(self.w.io.net(), clock)?;
        }
        Ok(())
    }

    /// What a scripted event does to the world outside the server. An event for a
    /// client when none has connected does nothing.
    fn apply(&mut self, event: &ScriptedEvent) -> Result<(), Violation> {
        let w = &mut self.w;
        match *event {
            ScriptedEvent::Connect { listener } => {
                w.io.connect(listener);
                w.oracle.connected();
            }
            ScriptedEvent::Send { client, ref bytes } => {
                if let Some(ci) = w.io.net().client(client)
                    && w.io.net_mut().send(ci, bytes)
                    && w.io.net().sockets[ci].transformed()
                {
                    w.oracle.client_sent(ci, bytes);
                }
            }
            ScriptedEvent::Read { client, window } => {
                if let Some(ci) = w.io.net().client(client) {
                    w.receive(ci, usize::from(window))?;
                }
            }
            ScriptedEvent::HalfClose { client } => {
                if let Some(ci) = w.io.net().client(client) {
                    w.half_close(ci);
                }
            }
            ScriptedEvent::Close { client } => {
                if let Some(ci) = w.io.net().client(client) {
                    w.io.net_mut().close(ci);
                }
            }
            ScriptedEvent::Reset { client } => {
                if let Some(ci) = w.io.net().client(client) {
                    w.reset(ci);
                }
            }
            ScriptedEvent::Wake { client } => w.wake(client)?,
            ScriptedEvent::WakeServer => {
                let accepted = w.waker.wake_server();
                w.trace
                    .note(Tag::ServerWake, [u64::from(accepted), 0, 0, 0]);
                if accepted && w.shut_down {
                    return Err(Violation::contract(
                        None,
                        Rule::ServerWake,
                        "a server wake was accepted after the server shut down".into(),
                    ));
                }
                w.oracle.server_wake_made(accepted);
            }
            ScriptedEvent::Advance { millis } => {
                let net = w.io.net_mut();
                if millis == 0 {
                    // The engine's next deadline, or a backend's answer if sooner.
                    let next = match (self.engine.poll_timeout(), net.next_answer()) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    if let Some(t) = next {
                        net.clock = net.clock.max(t);
                    }
                } else {
                    net.clock = net.clock + Duration::from_millis(u64::from(millis));
                }
            }
            ScriptedEvent::Poll => {}
        }
        Ok(())
    }

    /// One round of the loop: the time, then wakes and the poller's batch of readiness
    /// (in a seeded order), in one of two shapes.
    fn poll_round(&mut self) -> Result<(), Violation> {
        if self.w.shut_down {
            return Ok(());
        }
        // The notifier's event can land in a later poller batch than the wake that
        // fired it: wakes then wait a round, while connections close and slots are
        // reused under them.
        let defer_wakes = self.w.io.is_on() && {
            self.w.race_wake();
            self.w.io.defer_wakes()
        };
        if defer_wakes && self.w.notified.load(Ordering::SeqCst) {
            self.w.io.record(FaultKind::WakeRace);
        }
        // Two loop shapes, both within the protocol: drain after every input, or (as
        // evio-os does) report the time, then a whole poller batch, then wakes, and
        // drain once. Either way the loop's turn starts with the time, as a real loop's
        // starts when its wait ends.
        self.nap()?;
        let batched = self.w.io.net_mut().rng.below(2) == 0;
        self.w
            .trace
            .note(Tag::LoopShape, [u64::from(batched), 0, 0, 0]);
        let clock = self.w.io.net().clock;
        self.w.trace.note(Tag::Time, [clock.as_nanos(), 0, 0, 0]);
        self.input_maybe_drain(batched, |e| e.handle_time(clock))?;
        if self.w.shut_down {
            return Ok(());
        }
        if !batched && !defer_wakes && self.w.notified.swap(false, Ordering::SeqCst) {
            self.handle_wakes()?;
            self.drain()?;
        }
        let mut batch = core::mem::take(&mut self.w.batch);
        self.poller_batch(&mut batch);
        for &ready in &batch {
            if self.w.shut_down {
                break;
            }
            self.report(batched, ready)?;
        }
        self.w.batch = batch;
        if self.w.shut_down {
            return Ok(());
        }
        if batched {
            if !defer_wakes && self.w.notified.swap(false, Ordering::SeqCst) {
                self.handle_wakes()?;
            }
            self.drain()?;
        }
        Ok(())
    }

    /// The nap the engine asks for before the wait (`Engine::poll_nap`): the virtual
    /// clock moves on by it, never past the engine's next deadline, as a real loop's
    /// sleep does; what the script does meanwhile is found by the wait after it.
    fn nap(&mut self) -> Result<(), Violation> {
        let Some(nap) = self.engine.poll_nap() else {
            return Ok(());
        };
        if let Some(deadline) = self.engine.poll_timeout()
            && self.engine.now() + nap > deadline
        {
            return Err(Violation::contract(
                None,
                Rule::NapWithinDeadline,
                format!(
                    "a nap of {nap:?} at {:?} ends after the deadline {deadline:?}",
                    self.engine.now()
                ),
            ));
        }
        let net = self.w.io.net_mut();
        let mut until = net.clock + nap;
        if let Some(deadline) = self.engine.poll_timeout() {
            until = until.min(deadline.max(net.clock));
        }
        net.clock = net.clock.max(until);
        let clock = net.clock;
        self.w.naps += 1;
        self.w
            .trace
            .note(Tag::Nap, [nap.as_nanos() as u64, clock.as_nanos(), 0, 0]);
        self.w.trace.line(|| format!("nap {nap:?}"));
        Ok(())
    }

    /// What the poller reports this round, in a seeded order: listeners with
    /// connections waiting, and connections as the fault injector reports them.
    fn poller_batch(&mut self, batch: &mut Vec<Ready>) {
        batch.clear();
        let net = self.w.io.net();
        for (l, listener) in net.listeners.iter().enumerate() {
            if listener.watched && !listener.backlog.is_empty() {
                batch.push(Ready::Listener(l));
            }
        }
        for i in 0..net.polled().len() {
            let ci = self.w.io.net().polled()[i];
            let Some(report) = self.w.io.readiness(ci) else {
                continue;
            };
            let (id, r) = (report.id, report.readiness);
            if report.separate {
                let read = Readiness {
                    writable: false,
                    ..r
                };
                let write = Readiness {
                    readable: false,
                    ..r
                };
                batch.extend([Ready::Conn(ci, id, read), Ready::Conn(ci, id, write)]);
            } else {
                batch.push(Ready::Conn(ci, id, r));
            }
        }
        self.w.io.net_mut().rng.shuffle(batch);
    }

    /// Reports one readiness to the engine.
    fn report(&mut self, batched: bool, ready: Ready) -> Result<(), Violation> {
        match ready {
            Ready::Listener(l) => {
                self.w.trace.note(Tag::ListenerReady, [l as u64, 0, 0, 0]);
                self.w.oracle.listener_reported(l);
                let id = ListenerId::new(l).unwrap_or_else(|| unreachable!("{l} listeners"));
                self.input_maybe_drain(batched, |e| e.handle_listener_ready(id))?
                    .map_err(|error| Violation::Driver {
                        call: "handle_listener_ready",
                        error,
                    })
            }
            Ready::Conn(ci, id, r) => {
                self.w.oracle.readiness_reported(ci, r);
                self.w.trace.note(
                    Tag::ConnReady,
                    [
                        id.to_u64(),
                        u64::from(r.readable),
                        u64::from(r.writable),
                        u64::from(r.hangup),
                    ],
                );
                match self.input_maybe_drain(batched, |e| e.handle_conn_ready(id, r))? {
                    Ok(()) => Ok(()),
                    Err(DriverError::StaleConn) if self.w.io.net().sockets[ci].server_closed => {
                        self.w.io.record(FaultKind::DetachWithReadinessQueued);
                        Ok(())
                    }
                    Err(error) => Err(Violation::Driver {
                        call: "handle_conn_ready",
                        error,
                    }),
                }
            }
        }
    }

    /// The loop handles wakes; right after, every wake for a connection surely open
    /// must have reached `woken`.
    fn handle_wakes(&mut self) -> Result<(), Violation> {
        self.w.trace.note(Tag::WakesHandled, [0; 4]);
        self.input_maybe_drain(true, |e| e.handle_wakes())?;
        if self.w.shut_down {
            return Ok(());
        }
        self.w.oracle.check_wakes_delivered(self.w.io.net())
    }

    // ----- the driver protocol -------------------------------------------------------

    /// One engine input, then its observations, then a full drain.
    pub(crate) fn input<R>(
        &mut self,
        f: impl FnOnce(&mut SimEngine<H>) -> R,
    ) -> Result<R, Violation> {
        let r = self.input_maybe_drain(true, f)?;
        self.drain()?;
        Ok(r)
    }

    /// One engine input, its observations and the deadline the engine advertises
    /// after it, drained at once unless `batched`.
    pub(crate) fn input_maybe_drain<R>(
        &mut self,
        batched: bool,
        f: impl FnOnce(&mut SimEngine<H>) -> R,
    ) -> Result<R, Violation> {
        if !batched {
            return self.input(f);
        }
        let r = f(&mut self.engine);
        self.w.observe()?;
        self.advertised_deadline()?;
        Ok(r)
    }

    /// Hands the engine's next deadline to the tick oracle (not during a shutdown,
    /// when the ticker is over).
    fn advertised_deadline(&mut self) -> Result<(), Violation> {
        if self.w.shut_down || self.w.oracle.shutting_down {
            return Ok(());
        }
        let net = self.w.io.net();
        // A connect asked for in this callback (from `tick`, say) is not performed
        // yet, so the oracle does not know of it, but its timeout is already among the
        // engine's deadlines: the engine has more connections than the network.
        let known = net
            .sockets
            .iter()
            .filter(|s| s.id.is_some() && !s.server_closed)
            .count();
        let exact =
            !self.w.oracle.other_deadline_possible(net) && self.engine.open_connections() <= known;
        self.w
            .oracle
            .tick
            .advertised(self.engine.poll_timeout(), exact)
    }

    /// Performs every output the engine has, checking what ran after each.
    pub(crate) fn drain(&mut self) -> Result<(), Violation> {
        while !self.w.shut_down {
            let too_large = self.engine.stats().frame_too_large;
            let Some(out) = self.engine.poll_output() else {
                // The last poll can still run callbacks (`closed` after a `Close`).
                return self.w.observe();
            };
            self.w.perform::<H>(out)?;
            if self.engine.stats().frame_too_large > too_large
                && let Some(ci) = self.w.last_io
            {
                // The report gave the handler a full input buffer it consumed none of:
                // the engine closes the connection itself (lingering), which no
                // callback shows.
                let clock = self.w.io.net().clock;
                self.w.oracle.frame_too_large(ci, clock);
            }
            self.w.observe()?;
        }
        Ok(())
    }
}
