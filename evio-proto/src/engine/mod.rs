//! The engine: the connection lifecycle, and the inputs a driver gives it.
//!
//! A connection's life: a slot is taken from the free list when the driver accepts a
//! connection (`opened`), it is queued for attention whenever something about it
//! changes, `data`/`woken` run as its input and wakes arrive, a `Close` or `Detach`
//! (the handler's, an end of stream, an error) is carried out once its output is
//! flushed, and the slot returns to the free list after `closed` or `detached`.
//!
//! The parts live beside it: `next.rs` picks the next output; `report.rs` takes what
//! the driver reports about the engine's own requests; `handler.rs` calls the
//! handler; `slot.rs`, `buffers.rs`, `lists.rs`, `listeners.rs`, `ticker.rs` and
//! `shutdown.rs` (in the crate root) hold the state each concern needs.

use core::fmt;
use core::time::Duration;

use crate::batch::SendBatch;
use crate::buffers::{Buffers, Layout};
use crate::coalesce::Coalescer;
use crate::connect::UnixPaths;
use crate::listeners::Listeners;
use crate::lists::{FreeList, Queue};
use crate::pool::Pool;
use crate::post::Loops;
use crate::relay;
use crate::shutdown::Shutdown;
use crate::slot::{self, Flags, HeldSends, Slot};
use crate::ticker::Ticker;
use crate::timers::Timers;
use crate::{
    Action, BuildError, CloseError, Config, ConnId, DriverError, Events, Flow, Instant, ListenAddr,
    ListenerId, Output, Readiness, Server, Stats, Tick, TooManyListeners, Waker,
};
use life::{Event, Life, Why};

mod handler;
pub(crate) mod life;
mod next;
mod outbound;
mod report;
mod transform;

pub use crate::buffers::ByteStorage;
pub use crate::slot::SlotStorage;

/// Most listeners one engine serves.
pub const MAX_LISTENERS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Built; `handle_start` not called yet.
    Created,
    Running,
    /// A handler asked for `Shutdown`; the connections are being closed.
    ShuttingDown,
    /// `Output::Shutdown` was emitted.
    Done,
}

/// The sans-IO event-loop engine. See the [crate documentation](crate) for the driver
/// protocol.
///
/// `H` is the handler; `S` the slot storage (anything that derefs to
/// `[Slot<H::Context>]`: a `Vec`, a boxed slice, a `&'static mut` array); `B` the byte
/// storage ([`Config::bytes_needed`] bytes). The engine itself is a few hundred bytes:
/// all per-connection memory is in `S` and `B`, so a large engine is built without
/// megabytes on the stack.
pub struct Engine<H: Events, S, B> {
    handler: H,
    slots: S,
    buffers: Buffers<B>,
    config: Config,
    waker: Option<Waker>,
    /// This loop's number and the other loops' inboxes, in a server of several loops.
    loops: Option<Loops>,
    phase: Phase,
    /// The free list, the slots in use, and pending unix connects' paths.
    pool: Pool,
    /// Connections with something to do, in the order they came to need it.
    attention: Queue,
    /// Connections whose sends wait for the turn's reads (`Config::batch_sends`).
    held_sends: Queue<HeldSends>,
    /// The entries of the `Output::TransmitBatch` being performed.
    batch: SendBatch,
    /// A slot whose `Output::Close` was emitted: `closed` runs at the next engine call.
    finalize: Option<u32>,
    listeners: Listeners,
    ticker: Ticker,
    /// Per-connection deadlines: handlers' timeouts and lingering closes.
    timers: Timers,
    /// The driver's clock at its last `handle_time`.
    now: Instant,
    /// Whether the loop naps before its next wait (`Config::coalesce`).
    coalesce: Coalescer,
    shutdown: Shutdown,
    stats: Stats,
}

/// A dropped engine refuses every wake, however its loop ended (a shutdown does so
/// already; a panicking handler or a driver's error does not).
impl<H: Events, S, B> Drop for Engine<H, S, B> {
    fn drop(&mut self) {
        if let Some(w) = &self.waker {
            w.target().shut_down();
        }
    }
}

impl<H: Events, S, B> fmt::Debug for Engine<H, S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("phase", &self.phase)
            .field("open", &self.pool.open)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<H, S, B> Engine<H, S, B>
where
    H: Events,
    S: SlotStorage<H::Context>,
    B: ByteStorage,
{
    /// Builds an engine over caller-provided storage.
    ///
    /// `slots` must hold exactly `config.max_connections` slots (their previous contents
    /// are reset) and `bytes` at least [`Config::bytes_needed`] bytes (their contents do
    /// not matter, and are not touched here: zeroed pages stay unmapped until used).
    /// `waker`, if given, must have at least `max_connections` slots.
    ///
    /// # Errors
    ///
    /// [`BuildError`] if a capacity is zero or too large, the storage does not fit, or
    /// the input buffer cannot hold a record of the handler's transport.
    pub fn new(
        mut handler: H,
        config: Config,
        mut slots: S,
        bytes: B,
        waker: Option<Waker>,
    ) -> Result<Self, BuildError> {
        let needed = config.validate()?;
        if let Some(transport) = handler.transport() {
            let min = transport.min_input();
            if config.input_capacity < min {
                return Err(BuildError::InputTooSmall {
                    needed: min,
                    given: config.input_capacity,
                });
            }
        }
        let given = slots.as_ref().len();
        if given != config.max_connections {
            return Err(BuildError::SlotStorage {
                needed: config.max_connections,
                given,
            });
        }
        if bytes.as_ref().len() < needed {
            return Err(BuildError::ByteStorage {
                needed,
                given: bytes.as_ref().len(),
            });
        }
        if let Some(w) = &waker {
            let given = w.target().slots();
            if given < config.max_connections {
                return Err(BuildError::WakerTooSmall {
                    needed: config.max_connections,
                    given,
                });
            }
        }
        for slot in slots.as_mut() {
            *slot = Slot::new();
        }
        let free = FreeList::all(slots.as_mut());
        let layout = Layout::new(&config);
        debug_assert_eq!(
            layout.total(),
            needed,
            "the layout is what the storage holds"
        );
        Ok(Engine {
            handler,
            slots,
            buffers: Buffers::new(bytes, layout),
            waker,
            loops: None,
            phase: Phase::Created,
            pool: Pool {
                free,
                open: 0,
                unix_paths: UnixPaths::default(),
            },
            attention: Queue::new(),
            held_sends: Queue::new(),
            batch: SendBatch::new(),
            finalize: None,
            listeners: Listeners::new(
                config.accept_batch,
                config.accept_backoff,
                config.accept_backoff_max,
            ),
            ticker: Ticker::default(),
            timers: Timers::default(),
            now: Instant::ZERO,
            coalesce: Coalescer::new(config.coalesce),
            shutdown: Shutdown::default(),
            stats: Stats::default(),
            config,
        })
    }

    // ----- queries -------------------------------------------------------------------

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, mutably (between engine calls only).
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// The configuration the engine was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The wake handle given at construction.
    pub fn waker(&self) -> Option<&Waker> {
        self.waker.as_ref()
    }

    /// Connections that hold a slot (opened and not yet closed or detached).
    pub fn open_connections(&self) -> usize {
        self.pool.open
    }

    /// Slots free for new connections.
    pub fn free_slots(&self) -> usize {
        self.config.max_connections - self.pool.open
    }

    /// The time the driver gave at its last [`Engine::handle_time`]
    /// ([`Instant::ZERO`] before the first).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// `true` once `Output::Shutdown` has been emitted.
    pub fn is_shut_down(&self) -> bool {
        self.phase == Phase::Done
    }

    /// `true` while `id` is a live connection (opened, not yet closed or detached).
    pub fn is_open(&self, id: ConnId) -> bool {
        self.live_slot(id).is_some()
    }

    /// Bytes of output pending for `id` (0 for an unknown id): for a transformed
    /// connection (TLS), its handler's plaintext not encoded yet, plus one if its
    /// transport has encoded bytes to send.
    pub fn pending_output(&self, id: ConnId) -> usize {
        match self.live_slot(id) {
            Some(i) => self.pending_len(i) + self.slot(i).flags.outgoing(),
            None => 0,
        }
    }

    /// Bytes of unconsumed input kept for `id` (0 for an unknown id): for a
    /// transformed connection (TLS), its plaintext and the start of a record.
    pub fn pending_input(&self, id: ConnId) -> usize {
        match self.live_slot(id) {
            Some(i) => self.slot(i).bufs.in_len as usize,
            None => 0,
        }
    }

    /// When the engine next needs [`Engine::handle_time`]: the next tick, the end of
    /// a listener's back-off, or a connection's deadline (its timeout, or the end of a
    /// lingering close). `None`: no deadline (wait for I/O or a wake only).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase != Phase::Running {
            return None;
        }
        [
            self.ticker.deadline(),
            self.listeners.deadline(),
            self.timers.next(self.slots.as_ref()),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// How long the driver should nap before its next wait, if at all: sleep that long
    /// on a timer without watching the sockets, then wait with a zero timeout (and call
    /// [`Engine::handle_time`] after it, as after any wait). `None`: wait as usual, for
    /// up to [`Engine::poll_timeout`].
    ///
    /// Always `None` unless [`Config::coalesce`] is set. Then there is a nap when the
    /// last wait found some connections ready and they were fewer than a quarter of
    /// those reported ready in the last millisecond: the loop is busy with many
    /// senders, and sleeping on a timer spares them the cost of waking it (the first
    /// one to send would otherwise pay it) while what they send meanwhile is taken in
    /// one batch. A wait that found nothing, or a quarter or more of the active
    /// connections (a few clients each waiting on its reply), gives `None`.
    ///
    /// The nap lasts as long as a quarter of the active connections take to turn ready
    /// at the last millisecond's rate, at most [`Config::coalesce`], and never past the
    /// engine's next deadline as seen from [`Engine::now`] (a driver whose clock has
    /// moved on since caps it by its own timeout).
    pub fn poll_nap(&self) -> Option<Duration> {
        if self.phase != Phase::Running {
            return None;
        }
        let nap = self.coalesce.nap()?;
        match self.poll_timeout() {
            Some(deadline) if deadline <= self.now => None,
            Some(deadline) => Some(nap.min(deadline - self.now)),
            None => Some(nap),
        }
    }

    // ----- inputs --------------------------------------------------------------------

    /// The driver's clock reads `now`: the engine's one entry point for time. The
    /// engine takes it as the current time (time never goes back: an earlier `now` is
    /// ignored), fires the tick if it is due, resumes listeners whose back-off has
    /// ended, and acts on the connections' deadlines that have come (`timeout`, the end
    /// of a lingering close). Every handler call until the next `handle_time` happens
    /// at this time.
    ///
    /// Call it once per turn of the loop, after waiting and before reporting what the
    /// wait found, so that the handlers see the time the wait ended; and before
    /// [`Engine::handle_start`] to set the start time (otherwise [`Instant::ZERO`]).
    pub fn handle_time(&mut self, now: Instant) {
        self.enter();
        if now > self.now {
            self.now = now;
        }
        self.coalesce.wait_ended(self.now);
        if self.phase != Phase::Running {
            return;
        }
        self.listeners.resume_due(self.now);
        if let Some(due) = self.ticker.take_due(self.now) {
            self.fire_tick(due);
        }
        while self.phase == Phase::Running
            && let Some(index) = self.timers.pop_due(self.slots.as_mut(), self.now)
        {
            self.deadline_passed(index);
        }
    }

    /// Starts the server: calls `serving` with the bound addresses (in the order given;
    /// the first is listener 0) and the waker, then the first `tick`. Call once, after
    /// binding the listeners.
    ///
    /// # Errors
    ///
    /// [`TooManyListeners`] if more than [`MAX_LISTENERS`] addresses are given.
    pub fn handle_start(&mut self, listeners: &[ListenAddr<'_>]) -> Result<(), TooManyListeners> {
        if listeners.len() > MAX_LISTENERS {
            return Err(TooManyListeners {
                given: listeners.len(),
                max: MAX_LISTENERS,
            });
        }
        if self.phase != Phase::Created {
            return Ok(());
        }
        self.phase = Phase::Running;
        self.listeners.start(listeners.len());
        let now = self.now;
        let flow = self.with_loop(0..0, |h, lp, _| {
            let waker = lp.waker;
            h.serving(Server::new(listeners, waker, now, Some(lp)))
        });
        if flow == Flow::Shutdown {
            self.begin_shutdown(None);
            return Ok(());
        }
        self.fire_tick(self.now);
        Ok(())
    }

    /// Listener `listener` has connections waiting.
    ///
    /// # Errors
    ///
    /// [`DriverError::UnknownListener`] for a listener [`Engine::handle_start`] was not
    /// given.
    pub fn handle_listener_ready(&mut self, listener: ListenerId) -> Result<(), DriverError> {
        self.enter();
        self.listeners.ready(listener.index())
    }

    /// The poller reported readiness for connection `id`.
    ///
    /// # Errors
    ///
    /// [`DriverError::StaleConn`] if `id` is not open (readiness for a socket that was
    /// closed or detached; a poller that watches the socket and not the descriptor can
    /// report one whose descriptor a child process still holds).
    pub fn handle_conn_ready(&mut self, id: ConnId, ready: Readiness) -> Result<(), DriverError> {
        self.enter();
        let index = self.live_slot(id).ok_or(DriverError::StaleConn)?;
        let slot = &mut self.slots.as_mut()[index as usize];
        self.coalesce.conn_ready(&mut slot.active_window);
        let flags = &mut slot.flags;
        if ready.readable || ready.hangup {
            flags.insert(Flags::READABLE);
        }
        if ready.hangup {
            flags.insert(Flags::HUP);
        }
        if ready.writable || ready.hangup {
            flags.remove(Flags::WRITE_BLOCKED);
        }
        self.enqueue(index);
        Ok(())
    }

    /// The notifier fired: call `woken` for every connection with a pending wake, then
    /// `server_woken` if the server itself was woken.
    pub fn handle_wakes(&mut self) {
        self.enter();
        if self.phase != Phase::Running {
            return;
        }
        let Some(waker) = self.waker.clone() else {
            return;
        };
        let server = waker.target().drain(&mut |slot| {
            let slot = slot as u32;
            if self.slot(slot).state != Life::Open || self.phase != Phase::Running {
                return;
            }
            self.stats.wakes += 1;
            let action = self.call_handler(slot, |h, conn| h.woken(conn));
            self.apply_action(slot, action);
            self.enqueue(slot);
        });
        if server && self.phase == Phase::Running {
            self.stats.server_wakes += 1;
            self.call_server(|h, lp| h.server_woken(lp));
        }
    }

    /// Makes this engine loop `loops.index()` of a server of several loops, whose
    /// inboxes are `loops`' post office: its connections' ids name this loop, and a
    /// handler's write, close or abort of another loop's connection is posted there
    /// (see [`PostOffice`](crate::PostOffice)). Call it before
    /// [`Engine::handle_start`]; later it has no effect.
    pub fn join_loops(&mut self, loops: Loops) {
        if self.phase == Phase::Created {
            if let Some(w) = &mut self.waker {
                w.set_loop(loops.index);
            }
            self.loops = Some(loops);
        }
    }

    /// This loop's number: 0 unless [`Engine::join_loops`] said otherwise.
    pub fn loop_index(&self) -> usize {
        self.loops.as_ref().map_or(0, Loops::index)
    }

    /// [`Engine::loop_index`] as the byte a connection id holds.
    pub(super) fn loops_byte(&self) -> u8 {
        self.loops.as_ref().map_or(0, |l| l.index)
    }

    /// A post from loop `from` for this loop's connection `to` has arrived (the driver
    /// took it from this loop's inbox): a write is appended to its output whole, as
    /// [`Loop::write`](crate::Loop::write) does; a close or abort is done as
    /// [`Loop::close`](crate::Loop::close) and [`Loop::abort`](crate::Loop::abort) do;
    /// a message goes to the handler's
    /// [`Events::loop_message`](crate::Events::loop_message).
    ///
    /// # Errors
    ///
    /// The [`Refusal`](crate::Refusal) to post back to loop `from` (the driver does,
    /// and that loop's engine hears of it through [`Engine::handle_refusal`]):
    /// `NotOpen` if `to` is not open here (or is not this loop's), `Full` if a write
    /// does not fit.
    pub fn handle_post(
        &mut self,
        from: usize,
        to: ConnId,
        kind: crate::PostKind,
        bytes: &[u8],
    ) -> Result<(), crate::Refusal> {
        use crate::{PostKind, Refusal, WriteError};
        self.enter();
        if to.loop_index() != self.loop_index() {
            return Err(Refusal::NotOpen);
        }
        self.stats.posts_received += 1;
        if kind == PostKind::Message {
            if self.phase == Phase::Running {
                self.call_server(|h, lp| h.loop_message(lp, from, bytes));
            }
            return Ok(());
        }
        self.with_loop(0..0, |_, lp, _| match kind {
            PostKind::Write => lp.write(to, bytes).map_err(|e| match e {
                WriteError::Full(full) => Refusal::Full {
                    needed: full.needed,
                    room: full.room,
                },
                _ => Refusal::NotOpen,
            }),
            PostKind::Close => lp.close(to).map_err(|_| Refusal::NotOpen),
            PostKind::Abort => lp.abort(to).map_err(|_| Refusal::NotOpen),
            PostKind::Message => Ok(()),
        })
    }

    /// A post this loop sent to connection `to` of another loop was refused there
    /// (`kind`, with `len` bytes for a write): the handler hears of it through
    /// [`Events::post_refused`](crate::Events::post_refused).
    pub fn handle_refusal(
        &mut self,
        to: ConnId,
        kind: crate::PostKind,
        len: usize,
        why: crate::Refusal,
    ) {
        self.enter();
        if self.phase != Phase::Running {
            return;
        }
        self.stats.posts_refused += 1;
        self.call_server(|h, lp| h.post_refused(lp, to, kind, len, why));
    }

    /// A connection another loop of the server accepted on `listener` and handed to
    /// this one (its driver said [`Accept::handed_off`](crate::Accept::handed_off)):
    /// open it and call `opened`, as for a connection accepted here. Register the
    /// socket with the poller under the returned id with read interest before the next
    /// engine call.
    ///
    /// # Errors
    ///
    /// [`Refused`](crate::Refused): close the socket at once (the pool is full, or the
    /// server is shutting down; a listener this engine was not started with is
    /// refused as shutting down too). The engine counts it.
    pub fn handle_adopt(
        &mut self,
        listener: ListenerId,
        local: crate::Addr,
        peer: crate::Addr,
    ) -> Result<ConnId, crate::Refused> {
        self.enter();
        if listener.index() >= self.listeners.count() {
            self.stats.refused_shutting_down += 1;
            return Err(crate::Refused::ShuttingDown);
        }
        let adopted = self.accepted(listener, local, peer);
        if adopted.is_ok() {
            self.stats.adopted += 1;
        }
        adopted
    }

    /// The driver asks the server to shut down, as if a handler had returned
    /// [`Flow::Shutdown`](crate::Flow::Shutdown): every connection is closed as in any
    /// shutdown, then [`Output::Shutdown`] is emitted. For a loop that is one of
    /// several, when another has stopped, or for an embedding that stops its server from
    /// outside. It has no effect before [`Engine::handle_start`] or once a shutdown has
    /// begun.
    pub fn handle_shutdown(&mut self) {
        self.enter();
        if self.phase == Phase::Running {
            self.begin_shutdown(None);
        }
    }

    /// The next thing for the driver to do, or `None` when there is nothing until the
    /// next input. See the [crate documentation](crate) for the order.
    pub fn poll_output(&mut self) -> Option<Output<'_, H, S, B>> {
        self.enter();
        let next = self.next_output()?;
        Some(self.materialize(next))
    }

    // ----- the lifecycle -------------------------------------------------------------

    /// Runs at the start of every engine call: a close emitted by the previous
    /// `poll_output` is now done, so `closed` runs.
    fn enter(&mut self) {
        if let Some(index) = self.finalize.take() {
            self.finish_close(index);
        }
    }

    fn slot(&self, index: u32) -> &Slot<H::Context> {
        &self.slots.as_ref()[index as usize]
    }

    fn slot_mut(&mut self, index: u32) -> &mut Slot<H::Context> {
        &mut self.slots.as_mut()[index as usize]
    }

    /// The slot of `id` while its connection is live.
    fn live_slot(&self, id: ConnId) -> Option<u32> {
        let slot = self.slots.as_ref().get(id.slot())?;
        (slot.state.is_live() && slot.info.id == id).then_some(id.slot() as u32)
    }

    /// The bytes of its handler's output slot `index` has to send (for a transformed
    /// connection, not encoded yet: its transport's own bytes are `Flags::OUTGOING`).
    #[inline(always)]
    fn pending_len(&self, index: u32) -> usize {
        self.buffers.pending(index, &self.slot(index).bufs)
    }

    /// Queues slot `index` for attention (while running: a shutdown closes everyone
    /// in its own order).
    fn enqueue(&mut self, index: u32) {
        if self.phase == Phase::Running {
            self.attention.push_back(self.slots.as_mut(), index);
        }
    }

    /// Carries out what a handler returned for slot `index`: a `Close`, `Detach` or
    /// `Abort` goes through [`slot::request`], as `Loop`'s do.
    #[inline(always)]
    fn apply_action(&mut self, index: u32, action: Action) {
        // The common answer costs a comparison, not a call.
        if action != Action::None {
            self.apply_request(index, action);
        }
    }

    #[inline(never)]
    fn apply_request(&mut self, index: u32, action: Action) {
        let event = match action {
            Action::None => return,
            Action::Close => Event::Close,
            Action::Detach => Event::Detach,
            Action::Abort => Event::Abort,
            Action::Shutdown => return self.begin_shutdown(Some(index)),
        };
        let bound = self.send_bound();
        let Self {
            slots,
            timers,
            config,
            ..
        } = self;
        // Refused: another callback closed it already, or its socket failed; the
        // connection goes on leaving as it was.
        let _ = slot::request(
            slots.as_mut(),
            timers,
            index,
            event,
            config.input_capacity,
            bound,
        );
    }

    /// When a connection that starts to leave now must have made send progress by.
    fn send_bound(&self) -> Option<Instant> {
        self.config.send_timeout.map(|d| self.now + d)
    }

    /// Slot `index`'s socket failed (`event`: a read or a send): its output is dropped
    /// and it closes at once (`closed` gets `error` unless an I/O error came first), or,
    /// after a send, it reads once more first (`Life::SendFailed`). A lingering close
    /// goes on for the reason it had; an abort goes ahead.
    ///
    /// With input that waits for another connection (or its handler's resume), the
    /// failure waits for that input to be delivered instead (`Life::Failing`): the
    /// peer sent it before it failed.
    fn fail(&mut self, index: u32, error: CloseError, event: Event) {
        let in_cap = self.config.input_capacity;
        let bound = self.send_bound();
        let Self {
            slots,
            buffers,
            timers,
            ..
        } = self;
        let slots = slots.as_mut();
        let slot = &mut slots[index as usize];
        let facts = slot.facts(in_cap);
        let before = slot.state;
        let next = slot.go(event, facts);
        if matches!(
            next,
            Life::SendFailed
                | Life::Failing
                | Life::Leaving {
                    why: Why::Failed,
                    ..
                }
        ) && !matches!(slot.error, Some(CloseError::Io(_)))
        {
            // The socket's first failure is what `closed` reports, over a frame too
            // large or a send timeout found before it.
            slot.error = Some(error);
        }
        match next {
            Life::Leaving {
                why: Why::Failed, ..
            } => {
                buffers.release(index, &mut slot.bufs);
                slot.bufs.in_len = 0;
                slot.flags.remove(Flags::STALLED);
            }
            Life::SendFailed => {
                buffers.release(index, &mut slot.bufs);
                // Input stalled behind the output that can no longer go comes back to
                // the handler with what the read finds.
                slot.flags
                    .remove(Flags::WRITE_BLOCKED | Flags::BACKED_UP | Flags::STALLED);
                slot.flags.insert(Flags::READABLE);
            }
            Life::Failing if before != Life::Failing => {
                buffers.release(index, &mut slot.bufs);
                let flags = &mut slot.flags;
                // (`BACKED_UP` stays: `drained` is owed, for the room its handler may
                // wait for before it takes the input.)
                flags.remove(Flags::WRITE_BLOCKED | Flags::STALLED);
                // Owed: the failure, once the input is delivered (`end_if_owed`).
                flags.insert(Flags::ENDED_OWED);
                if event == Event::SendFailed {
                    flags.insert(Flags::READABLE);
                } else {
                    flags.insert(Flags::EOF);
                    flags.remove(Flags::READABLE | Flags::HUP);
                }
                let waited_on = flags.contains(Flags::WAITED_ON);
                timers.set(slots, index, bound);
                if waited_on {
                    // Its output is gone: what waited for it to drain goes on.
                    self.release_waiters(index);
                }
            }
            _ => {}
        }
        self.enqueue(index);
    }

    /// A handler asked for `Shutdown` (`trigger`: from a call for that slot).
    fn begin_shutdown(&mut self, trigger: Option<u32>) {
        if matches!(self.phase, Phase::ShuttingDown | Phase::Done) {
            return;
        }
        self.attention.clear(self.slots.as_mut());
        self.held_sends.clear(self.slots.as_mut());
        self.phase = Phase::ShuttingDown;
        self.shutdown = Shutdown::new(trigger);
        self.ticker.stop();
        if let Some(w) = &self.waker {
            w.target().shut_down();
        }
    }

    /// Calls `tick` for the tick due at `scheduled`, and schedules the next.
    fn fire_tick(&mut self, scheduled: Instant) {
        self.stats.ticks += 1;
        let mut next = None;
        self.call_server(|h, lp| {
            let Tick { delay, flow } = h.tick(lp);
            next = delay;
            flow
        });
        let now = self.now;
        if self.phase == Phase::Running {
            self.ticker
                .schedule(scheduled, now, next, self.config.min_tick);
        }
    }

    /// Slot `index`'s deadline has come: its handler's `timeout` if it is open, the end
    /// of its lingering close if it lingers, and if it is leaving, the send bound:
    /// no send progress since the bound was set, so it is aborted.
    fn deadline_passed(&mut self, index: u32) {
        match self.slot(index).state {
            Life::Open => {
                self.stats.timeouts += 1;
                let action = self.call_handler(index, |h, conn| h.timeout(conn));
                self.apply_action(index, action);
                self.enqueue(index);
            }
            Life::Connecting => self.connect_timed_out(index),
            Life::Handshaking => {
                self.stats.handshake_failures += 1;
                self.stats.transport_errors += 1;
                let slot = self.slot_mut(index);
                slot.go(Event::SendTimedOut, Default::default());
                slot.error = Some(CloseError::Transport(
                    crate::TransportError::HandshakeTimeout,
                ));
                self.enqueue(index);
            }
            Life::Failing => {
                // Its input waited too long for its handler: the failure goes ahead.
                self.stats.send_timeouts += 1;
                self.slot_mut(index)
                    .go(Event::SendTimedOut, Default::default());
                self.enqueue(index);
            }
            Life::Lingering => {
                self.slot_mut(index)
                    .go(Event::LingerOver, Default::default());
                self.enqueue(index);
            }
            Life::Leaving { .. } => {
                self.stats.send_timeouts += 1;
                let slot = self.slot_mut(index);
                slot.go(Event::SendTimedOut, Default::default());
                slot.error.get_or_insert(CloseError::SendTimeout);
                self.enqueue(index);
            }
            _ => {}
        }
    }

    /// Returns slot `index` to the free list.
    fn free_slot(&mut self, index: u32) {
        let Self {
            slots,
            buffers,
            attention,
            held_sends,
            ..
        } = self;
        let slots = slots.as_mut();
        attention.remove(slots, index);
        held_sends.remove(slots, index);
        self.timers.remove(slots, index);
        // Connections whose input waited for this one's drain go on without it.
        let running = self.phase == Phase::Running;
        relay::forget(slots, index, |slots, waiter| {
            if running {
                attention.push_back(slots, waiter);
            }
        });
        let slot = &mut slots[index as usize];
        buffers.release(index, &mut slot.bufs);
        let transformed = slot.flags.contains(Flags::TRANSFORMED);
        if transformed {
            self.end_transform(index);
        }
        let Self { slots, pool, .. } = self;
        let slots = slots.as_mut();
        slots[index as usize].clear();
        pool.free.push(slots, index);
        pool.open -= 1;
    }

    /// The socket of slot `index` is closed (its `Output::Close` was performed): call
    /// `closed` and free the slot.
    fn finish_close(&mut self, index: u32) {
        let slot = self.slot_mut(index);
        if slot.state != Life::Closed {
            return;
        }
        let info = slot.info;
        let error = slot.error;
        let unannounced = slot.flags.contains(Flags::UNANNOUNCED);
        let context = slot.context.take().unwrap_or_default();
        self.free_slot(index);
        if unannounced {
            // A handshake that never finished: its handler never heard of it.
            return;
        }
        self.stats.closed += 1;
        self.call_server(|h, lp| h.closed(&info, context, error, lp));
    }
}
