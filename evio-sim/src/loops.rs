//! Several loops of one server in one world: [`LoopsSim`] runs an engine per loop
//! (each a [`Sim`] with its own share of the clients), a simulated post office between
//! them, and the rules of the posts.
//!
//! Everything comes from the seed: which loop accepts each client (standing for
//! `SO_REUSEPORT`'s hash), the order the loops run in, each inbox's capacity, the
//! posts refused at once as a fault ([`Refusal::InboxFull`]), and the delay of every
//! delivery and of every refusal on its way back, counted in the world's steps. Posts
//! are delivered, and refusals handed back, at the start of a step, in loop order,
//! each inbox in the order posted to it; so a seed replays exactly.
//!
//! Each loop's engine keeps every rule and the oracle of a single [`Sim`]. Across
//! loops, [`LoopsSim`] checks that every post the office accepted is delivered exactly
//! once or refused exactly once there, that each refusal reaches the sending loop's
//! handler exactly once, and that a delivered write lands whole, in post order per
//! pair of loops.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use evio_proto::{ConnId, Events, Instant, PostKind, PostOffice, Refusal};

use crate::trace::Tag;
use crate::{Model, Outcome, Rng, ScriptedEvent, Sim, SimConfig, TraceHash, Violation};

/// A post the office took (or refused at once), as the sending loop's model is told.
pub(crate) struct Posted {
    pub to: ConnId,
    pub kind: PostKind,
    pub bytes: Vec<u8>,
    pub accepted: bool,
}

/// A post in an inbox.
struct Letter {
    seq: usize,
    from: usize,
    to: ConnId,
    kind: PostKind,
    bytes: Vec<u8>,
    due: u64,
}

/// A refusal on its way back to the sending loop.
struct Returned {
    seq: usize,
    to: ConnId,
    kind: PostKind,
    len: usize,
    why: Refusal,
    due: u64,
}

/// Where an accepted post is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Queued,
    Delivered,
    Refused,
    Returned,
}

/// What the post office did, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PostCounts {
    /// Posts the office took.
    pub accepted: u64,
    /// Posts refused at once because an inbox held its capacity.
    pub inbox_full: u64,
    /// Posts refused at once as an injected fault (an inbox full under load).
    pub inbox_full_faults: u64,
    /// Posts delivered and taken by the engine there.
    pub delivered: u64,
    /// Posts refused by the engine there (`NotOpen`, `Full`).
    pub refused_there: u64,
    /// Refusals handed back to the sending loop.
    pub refusals_returned: u64,
}

struct Office {
    loops: usize,
    capacity: usize,
    fault_per_million: u32,
    faults_on: bool,
    max_delay: u64,
    step: u64,
    rng: Rng,
    inboxes: Vec<VecDeque<Letter>>,
    returns: Vec<VecDeque<Returned>>,
    posted: Vec<Vec<Posted>>,
    ledger: Vec<State>,
    counts: PostCounts,
    /// A mutant for tests: the next post due is dropped, not handed over.
    lose_next: bool,
    lost: u64,
}

impl core::ops::AddAssign for PostCounts {
    fn add_assign(&mut self, other: PostCounts) {
        self.accepted += other.accepted;
        self.inbox_full += other.inbox_full;
        self.inbox_full_faults += other.inbox_full_faults;
        self.delivered += other.delivered;
        self.refused_there += other.refused_there;
        self.refusals_returned += other.refusals_returned;
    }
}

impl Office {
    /// The world step a post or refusal made now is due at.
    fn due(&mut self) -> u64 {
        let max = self.max_delay;
        self.step + self.rng.below(max + 1)
    }

    /// An inbox refuses a post as a fault, now.
    fn fault(&mut self) -> bool {
        let rate = self.fault_per_million;
        self.faults_on && self.rng.chance(rate)
    }
}

/// The inboxes of a simulated server's loops: bounded, delayed by the seed, and
/// refusing now and then as a fault. A [`PostOffice`] for the engines of a
/// [`LoopsSim`].
pub struct SimPostOffice {
    inner: Mutex<Office>,
}

impl core::fmt::Debug for SimPostOffice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let o = self.lock();
        f.debug_struct("SimPostOffice")
            .field("loops", &o.loops)
            .field("capacity", &o.capacity)
            .field("max_delay", &o.max_delay)
            .field("counts", &o.counts)
            .finish_non_exhaustive()
    }
}

impl SimPostOffice {
    /// The office of `loops` loops, its capacity, fault rate and delays drawn from
    /// `rng`.
    fn new(loops: usize, mut rng: Rng) -> Self {
        let capacity = [2, 8, 40, 4096][rng.below(4) as usize];
        let fault_per_million = [0, 0, 5_000, 50_000][rng.below(4) as usize];
        let max_delay = [0, 1, 4, 16][rng.below(4) as usize];
        SimPostOffice {
            inner: Mutex::new(Office {
                loops,
                capacity,
                fault_per_million,
                faults_on: true,
                max_delay,
                step: 0,
                rng,
                inboxes: (0..loops).map(|_| VecDeque::new()).collect(),
                returns: (0..loops).map(|_| VecDeque::new()).collect(),
                posted: (0..loops).map(|_| Vec::new()).collect(),
                ledger: Vec::new(),
                counts: PostCounts::default(),
                lose_next: false,
                lost: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Office> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What loop `from` posted since the last call, in order.
    pub(crate) fn take_posted(&self, from: usize) -> Vec<Posted> {
        core::mem::take(&mut self.lock().posted[from])
    }

    /// What the office did so far.
    pub fn counts(&self) -> PostCounts {
        self.lock().counts
    }

    /// Posts per inbox before it refuses with [`Refusal::InboxFull`].
    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }

    /// How often, per million posts, an inbox refuses a post it has room for (the
    /// fault "inbox full", counted in [`PostCounts::inbox_full_faults`]): drawn from
    /// the seed among 0, 5,000 and 50,000, and 0 in a fault-free configuration.
    pub fn fault_rate(&self) -> u32 {
        self.lock().fault_per_million
    }

    /// The most world steps a post or a refusal waits before it is handed over (each
    /// waits a number drawn from the seed up to this): 0, 1, 4 or 16.
    pub fn max_delay(&self) -> u64 {
        self.lock().max_delay
    }

    /// Nothing is on its way: every inbox and every return is empty.
    fn idle(&self) -> bool {
        let o = self.lock();
        o.inboxes.iter().all(VecDeque::is_empty) && o.returns.iter().all(VecDeque::is_empty)
    }

    /// The first post of loop `to`'s inbox, if it is due (or `all`).
    fn pop_due(&self, to: usize, all: bool) -> Option<Letter> {
        let mut o = self.lock();
        let step = o.step;
        if !o.inboxes[to].front().is_some_and(|l| all || l.due <= step) {
            return None;
        }
        let letter = o.inboxes[to].pop_front();
        if o.lose_next {
            // The rest of this inbox waits for the next step.
            o.lose_next = false;
            o.lost += 1;
            return None;
        }
        letter
    }

    /// The first refusal on its way back to loop `from`, if it is due (or `all`).
    fn pop_return(&self, from: usize, all: bool) -> Option<Returned> {
        let mut o = self.lock();
        let step = o.step;
        let back = &mut o.returns[from];
        if back.front().is_some_and(|r| all || r.due <= step) {
            back.pop_front()
        } else {
            None
        }
    }

    /// Moves accepted post `seq` from `from` to `to`, which must be its state now.
    fn transition(&self, seq: usize, from: State, to: State) -> Result<(), Violation> {
        let mut o = self.lock();
        let now = o.ledger[seq];
        if now != from {
            return Err(Violation::Loops(format!(
                "post {seq} was to become {to:?} from {from:?}, but it is {now:?}"
            )));
        }
        o.ledger[seq] = to;
        Ok(())
    }

    /// Engine `letter.to`'s loop took or refused `letter`: a refusal goes back.
    fn answered(&self, letter: &Letter, result: Result<(), Refusal>) -> Result<(), Violation> {
        match result {
            Ok(()) => {
                self.transition(letter.seq, State::Queued, State::Delivered)?;
                self.lock().counts.delivered += 1;
            }
            Err(why) => {
                self.transition(letter.seq, State::Queued, State::Refused)?;
                let mut o = self.lock();
                o.counts.refused_there += 1;
                let due = o.due();
                o.returns[letter.from].push_back(Returned {
                    seq: letter.seq,
                    to: letter.to,
                    kind: letter.kind,
                    len: letter.bytes.len(),
                    why,
                    due,
                });
            }
        }
        Ok(())
    }

    /// Every accepted post ended delivered, or refused with the refusal handed back.
    fn check_all_settled(&self) -> Result<(), Violation> {
        let o = self.lock();
        if let Some((seq, state)) = o
            .ledger
            .iter()
            .enumerate()
            .find(|(_, s)| !matches!(s, State::Delivered | State::Returned))
        {
            return Err(Violation::Loops(format!(
                "post {seq} ended {state:?}: neither delivered nor refused back"
            )));
        }
        Ok(())
    }
}

impl PostOffice for SimPostOffice {
    fn post(&self, from: usize, to: ConnId, kind: PostKind, bytes: &[u8]) -> Result<(), Refusal> {
        let mut o = self.lock();
        let target = to.loop_index();
        let result = if target >= o.loops || from >= o.loops {
            Err(Refusal::NoSuchLoop)
        } else if o.inboxes[target].len() >= o.capacity {
            o.counts.inbox_full += 1;
            Err(Refusal::InboxFull)
        } else if o.fault() {
            o.counts.inbox_full_faults += 1;
            Err(Refusal::InboxFull)
        } else {
            let seq = o.ledger.len();
            o.ledger.push(State::Queued);
            o.counts.accepted += 1;
            let due = o.due();
            o.inboxes[target].push_back(Letter {
                seq,
                from,
                to,
                kind,
                bytes: bytes.to_vec(),
                due,
            });
            Ok(())
        };
        if from < o.loops {
            o.posted[from].push(Posted {
                to,
                kind,
                bytes: bytes.to_vec(),
                accepted: result.is_ok(),
            });
        }
        result
    }
}

/// What a run of several loops did: each loop's [`Outcome`], and the post office's
/// counts.
#[derive(Clone, Debug)]
pub struct LoopsOutcome {
    /// Each loop's outcome, by loop number.
    pub loops: Vec<Outcome>,
    /// What the post office did.
    pub posts: PostCounts,
    /// The hash of every loop's trace, in loop order.
    pub trace_hash: u64,
}

/// A simulated server of several loops: one engine per loop, each in a [`Sim`] of its
/// own clients, checked by its own oracle against its own model (a model of state
/// shared between loops shares it through its own handle), and a [`SimPostOffice`]
/// between them.
///
/// Everything comes from the seed: which loop accepts each client (standing for
/// `SO_REUSEPORT`'s hash), the order the loops run in, each inbox's capacity, the
/// posts refused at once as a fault ([`Refusal::InboxFull`]), and the delay of every
/// delivery and of every refusal on its way back, counted in the world's steps. At
/// the start of each step the posts due are handed to their loops' engines
/// (`Engine::handle_post`), loop by loop, each inbox in the order posted to it, then
/// the refusals due to theirs (`Engine::handle_refusal`); so a seed replays exactly.
/// The loops share one clock: each runs at the latest time any has reached.
///
/// Across loops it checks that every post the office accepted is delivered exactly
/// once or refused exactly once there, that each refusal reaches the sending loop's
/// handler exactly once, and that a delivered write lands whole, in post order per
/// pair of loops ([`Violation::Loops`]).
///
/// The script is the one a single [`Sim`] runs: a `Connect` goes to the loop the seed
/// picks, and the events for a client follow it there (by its number among all
/// clients, modulo the clients so far, as in a [`Sim`]); the other events go to a loop
/// the seed picks. After each event, each other
/// loop runs a round of its own, or not, as the seed says.
pub struct LoopsSim<H: Events, M: Model> {
    sims: Vec<Sim<H, M>>,
    office: Arc<SimPostOffice>,
    rng: Rng,
    /// Each client (by connection order), its loop and its number there.
    routes: Vec<(usize, u16)>,
    /// Clients per loop.
    locals: Vec<u16>,
    /// World steps so far.
    step: u64,
    /// The world's clock: the latest of the loops' clocks.
    clock: Instant,
    /// The last post delivered, per pair (from, to) of loops.
    last_seq: Vec<Option<usize>>,
    /// A loop shut down, and the others were told to.
    stopping: bool,
    seed: u64,
}

impl<H: Events, M: Model> core::fmt::Debug for LoopsSim<H, M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LoopsSim")
            .field("loops", &self.sims)
            .field("office", &self.office)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

impl<H: Events, M: Model> LoopsSim<H, M> {
    /// A server of `loops.len()` loops (at least one, at most
    /// [`evio_proto::MAX_LOOPS`]), loop `i` running handler and model `loops[i]`, all
    /// with `config`; the faults of loop 0 are those of `seed`, the others' are
    /// derived from it.
    ///
    /// # Errors
    ///
    /// As [`Sim::with_config`], or [`Violation::Config`] for a number of loops out of
    /// range.
    pub fn with_config(
        loops: Vec<(H, M)>,
        seed: u64,
        config: SimConfig,
    ) -> Result<Self, Violation> {
        let n = loops.len();
        if !(1..=evio_proto::MAX_LOOPS).contains(&n) {
            return Err(Violation::Config(format!(
                "{n} loops (1 to {} can be simulated)",
                evio_proto::MAX_LOOPS
            )));
        }
        let office = SimPostOffice::new(n, Rng::derive(seed, 11));
        if config.rates == crate::FaultRates::none() {
            // A fault-free configuration: no inbox refuses a post it has room for.
            office.lock().fault_per_million = 0;
        }
        let office = Arc::new(office);
        let sims = loops
            .into_iter()
            .enumerate()
            .map(|(i, (handler, model))| {
                let seed = seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                Sim::build(
                    handler,
                    model,
                    seed,
                    config.clone(),
                    Some((i, office.clone())),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LoopsSim {
            sims,
            office,
            rng: Rng::derive(seed, 12),
            routes: Vec::new(),
            locals: vec![0; n],
            step: 0,
            clock: Instant::ZERO,
            last_seq: vec![None; n * n],
            stopping: false,
            seed,
        })
    }

    /// Records a readable trace of every loop (see [`Sim::set_tracing`]; each loop's
    /// is in [`Sim::trace`] of [`LoopsSim::loops`]).
    pub fn set_tracing(&mut self, on: bool) {
        for sim in &mut self.sims {
            sim.set_tracing(on);
        }
    }

    /// The loops' simulations, by loop number.
    pub fn loops(&self) -> &[Sim<H, M>] {
        &self.sims
    }

    /// The post office between the loops.
    pub fn office(&self) -> &SimPostOffice {
        &self.office
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A mutant of the world, for tests of the rules: the next post due is dropped
    /// instead of handed over, as a driver that loses a letter would. The rules
    /// between loops must catch it.
    pub fn lose_next_post(&mut self) {
        self.office.lock().lose_next = true;
    }

    /// Posts dropped by [`LoopsSim::lose_next_post`].
    pub fn posts_lost(&self) -> u64 {
        self.office.lock().lost
    }

    /// Client `client`'s loop (by connection order among all clients), once it has
    /// connected.
    pub fn loop_of(&self, client: usize) -> Option<usize> {
        self.routes.get(client).map(|&(l, _)| l)
    }

    /// Runs `f` on loop `l`'s simulation at the world's time.
    fn on<R>(
        &mut self,
        l: usize,
        f: impl FnOnce(&mut Sim<H, M>) -> Result<R, Violation>,
    ) -> Result<R, Violation> {
        let sim = &mut self.sims[l];
        let net = sim.w.io.net_mut();
        net.clock = net.clock.max(self.clock);
        let r = f(sim);
        self.clock = self.clock.max(self.sims[l].w.io.net().clock);
        let r = r.map_err(|v| match v {
            Violation::Loops(_) | Violation::OnLoop { .. } => v,
            v => Violation::OnLoop {
                index: l,
                violation: Box::new(v),
            },
        })?;
        self.stop_all_if_one_stopped()?;
        Ok(r)
    }

    /// One loop stopping stops all (as in `evio-os`): once a loop has shut down, every
    /// loop still running is told to (`Engine::handle_shutdown`), its oracle expecting
    /// every connection closed.
    fn stop_all_if_one_stopped(&mut self) -> Result<(), Violation> {
        if self.stopping || !self.sims.iter().any(|s| s.w.shut_down) {
            return Ok(());
        }
        self.stopping = true;
        for l in 0..self.sims.len() {
            let sim = &mut self.sims[l];
            if sim.w.shut_down || sim.w.oracle.shutting_down {
                continue;
            }
            sim.w.trace.note(Tag::LoopsStop, [0; 4]);
            sim.w.oracle.shutting_down = true;
            sim.input(|e| e.handle_shutdown())?;
        }
        Ok(())
    }

    /// One event of the script, as the module documentation says.
    ///
    /// # Errors
    ///
    /// The first violation found: on a loop ([`Violation::OnLoop`]), or between them
    /// ([`Violation::Loops`]).
    pub fn step(&mut self, event: &ScriptedEvent) -> Result<(), Violation> {
        self.next_step(false)?;
        let n = self.sims.len();
        let (l, event) = match *event {
            ScriptedEvent::Connect { listener } => {
                let l = self.rng.below(n as u64) as usize;
                self.routes.push((l, self.locals[l]));
                self.locals[l] += 1;
                (l, ScriptedEvent::Connect { listener })
            }
            // A client number names a client modulo the clients so far, as in a
            // single `Sim`; with none yet, the event does nothing wherever it goes.
            ref e => match client_of(e).filter(|_| !self.routes.is_empty()) {
                Some(c) => {
                    let (l, local) = self.routes[usize::from(c) % self.routes.len()];
                    (l, with_client(e, local))
                }
                None => (self.rng.below(n as u64) as usize, e.clone()),
            },
        };
        self.on(l, |sim| sim.step(&event))?;
        for other in (0..n).filter(|&o| o != l) {
            if self.rng.below(2) == 0 {
                self.on(other, |sim| sim.run_event(&ScriptedEvent::Poll))?;
            }
        }
        Ok(())
    }

    /// A new world step: the posts and refusals due are handed over (all of them when
    /// `all`).
    fn next_step(&mut self, all: bool) -> Result<(), Violation> {
        self.step += 1;
        self.office.lock().step = self.step;
        let n = self.sims.len();
        for to in 0..n {
            while let Some(letter) = self.office.pop_due(to, all) {
                self.deliver(to, letter)?;
            }
        }
        for from in 0..n {
            while let Some(back) = self.office.pop_return(from, all) {
                self.hand_back(from, back)?;
            }
        }
        Ok(())
    }

    /// Loop `to`'s engine takes `letter` (`Engine::handle_post`), and the rules of a
    /// delivery are checked.
    fn deliver(&mut self, to: usize, letter: Letter) -> Result<(), Violation> {
        let n = self.sims.len();
        let pair = letter.from * n + to;
        if self.last_seq[pair].is_some_and(|last| last > letter.seq) {
            return Err(Violation::Loops(format!(
                "post {} from loop {} delivered to loop {to} after post {:?}",
                letter.seq, letter.from, self.last_seq[pair]
            )));
        }
        self.last_seq[pair] = Some(letter.seq);
        let office = self.office.clone();
        self.on(to, |sim| {
            let id = letter.to;
            sim.w.trace.note(
                Tag::PostDelivered,
                [
                    letter.from as u64,
                    id.to_u64(),
                    letter.kind as u64,
                    letter.bytes.len() as u64,
                ],
            );
            let before = sim.engine.pending_output(id);
            let result = sim.input_maybe_drain(true, |e| {
                e.handle_post(letter.from, id, letter.kind, &letter.bytes)
            })?;
            let after = sim.engine.pending_output(id);
            if letter.kind == PostKind::Write {
                let whole = match result {
                    Ok(()) => after == before + letter.bytes.len(),
                    Err(_) => after == before,
                };
                if !whole {
                    return Err(Violation::Loops(format!(
                        "a write of {} bytes from loop {} to {id} ({result:?}) took its \
                         output from {before} to {after} bytes",
                        letter.bytes.len(),
                        letter.from
                    )));
                }
            }
            if result.is_ok() && letter.kind != PostKind::Message {
                // What the post did to the connection, as a callback's write, close or
                // abort through `Loop` would have shown it.
                // A close or abort that the engine took leaves the connection no longer
                // open (`Engine::is_open` still counts it while it flushes or resets).
                let open = letter.kind == PostKind::Write;
                let aborting = letter.kind == PostKind::Abort;
                sim.engine
                    .handler_mut()
                    .post_landed(id, after, open, aborting);
                sim.w.observe()?;
            }
            office.answered(&letter, result)?;
            sim.drain()
        })
    }

    /// Loop `from`'s engine hears that its post was refused
    /// (`Engine::handle_refusal`), and its handler must be told exactly once.
    fn hand_back(&mut self, from: usize, back: Returned) -> Result<(), Violation> {
        self.office
            .transition(back.seq, State::Refused, State::Returned)?;
        self.office.lock().counts.refusals_returned += 1;
        self.on(from, |sim| {
            sim.w.trace.note(
                Tag::RefusalDelivered,
                [back.to.to_u64(), back.kind as u64, back.len as u64, 0],
            );
            let running = !sim.w.shut_down && !sim.w.oracle.shutting_down;
            let before = sim.engine.stats().posts_refused;
            sim.input(|e| e.handle_refusal(back.to, back.kind, back.len, back.why))?;
            let told = sim.engine.stats().posts_refused - before;
            if running && told != 1 {
                return Err(Violation::Loops(format!(
                    "the refusal of post {} ({:?}) reached loop {from}'s handler {told} times",
                    back.seq, back.why
                )));
            }
            Ok(())
        })
    }

    /// Ends the run: faults stop (the office's too), and a liveness phase runs every
    /// loop, and hands every post over, until every loop's clients are done and
    /// nothing is on its way; then each loop's final checks, and every post settled.
    ///
    /// # Errors
    ///
    /// As [`Sim::finish`], and [`Violation::Loops`] for a post left unsettled.
    pub fn finish(&mut self) -> Result<LoopsOutcome, Violation> {
        self.office.lock().faults_on = false;
        let mut bound = 64;
        let mut time_limit = self.clock;
        let mut streaming_limit = 0;
        for sim in &mut self.sims {
            let limits = sim.liveness_start();
            bound += limits.bound;
            time_limit = time_limit.max(limits.time_limit);
            streaming_limit += limits.streaming_limit;
        }
        let (mut rounds, mut waits, mut streaming) = (0, 0u32, 0usize);
        let mut done = false;
        while rounds < bound {
            if self.settled() {
                done = true;
                break;
            }
            let activity: u64 = self.sims.iter().map(|s| s.w.activity).sum();
            let received: u64 = self.sims.iter().map(Sim::received_total).sum();
            self.next_step(true)?;
            for l in 0..self.sims.len() {
                self.on(l, |sim| {
                    sim.liveness_clients()?;
                    sim.run_event(&ScriptedEvent::Poll)
                })?;
            }
            if self.sims.iter().map(|s| s.w.activity).sum::<u64>() == activity && self.office.idle()
            {
                // Nothing moved: the clock goes to the earliest deadline of any loop.
                let before = self.clock;
                let next = (0..self.sims.len())
                    .filter_map(|l| Some((self.sims[l].engine.poll_timeout()?, l)))
                    .min();
                if let Some((_, l)) = next {
                    self.on(l, |sim| {
                        sim.run_event(&ScriptedEvent::Advance { millis: 0 })
                    })?;
                }
                if self.clock > before && self.clock <= time_limit && waits < 100_000 {
                    waits += 1;
                    continue;
                }
            }
            let now: u64 = self.sims.iter().map(Sim::received_total).sum();
            if now > received && streaming < streaming_limit {
                streaming += 1;
                continue;
            }
            rounds += 1;
        }
        if !done && !self.settled() {
            let detail = match self.sims.iter().position(|s| !s.all_done()) {
                Some(l) => format!("loop {l}: {}", self.sims[l].stuck()),
                None => "posts still on their way between loops".into(),
            };
            return Err(Violation::Liveness { bound, detail });
        }
        for (index, sim) in self.sims.iter_mut().enumerate() {
            sim.final_checks().map_err(|v| Violation::OnLoop {
                index,
                violation: Box::new(v),
            })?;
        }
        self.office.check_all_settled()?;
        let loops: Vec<Outcome> = self.sims.iter().map(Sim::outcome).collect();
        let mut hash = TraceHash::default();
        for o in &loops {
            hash.word(o.trace_hash);
        }
        Ok(LoopsOutcome {
            loops,
            posts: self.office.counts(),
            trace_hash: hash.value(),
        })
    }
}

impl<H: Events, M: Model> LoopsSim<H, M> {
    /// Every loop's clients are done, and nothing is on its way between loops.
    fn settled(&self) -> bool {
        self.office.idle() && self.sims.iter().all(Sim::all_done)
    }
}

/// The client an event is for, if it is for one.
fn client_of(event: &ScriptedEvent) -> Option<u16> {
    match *event {
        ScriptedEvent::Send { client, .. }
        | ScriptedEvent::Read { client, .. }
        | ScriptedEvent::HalfClose { client }
        | ScriptedEvent::Close { client }
        | ScriptedEvent::Reset { client }
        | ScriptedEvent::Wake { client } => Some(client),
        _ => None,
    }
}

/// `event` for client `local` of its loop.
fn with_client(event: &ScriptedEvent, local: u16) -> ScriptedEvent {
    let mut e = event.clone();
    match &mut e {
        ScriptedEvent::Send { client, .. }
        | ScriptedEvent::Read { client, .. }
        | ScriptedEvent::HalfClose { client }
        | ScriptedEvent::Close { client }
        | ScriptedEvent::Reset { client }
        | ScriptedEvent::Wake { client } => *client = local,
        _ => {}
    }
    e
}
