//! The engine: connection pools and every decision of the event loop.

use core::fmt;
use core::time::Duration;

use crate::output::{Accept, Detach, Read, Transmit};
use crate::{
    AcceptError, Action, Addr, BuildError, CloseError, Config, Conn, ConnId, ConnInfo, Detached,
    DriverError, Events, Instant, Interest, IoError, IoErrorKind, ListenAddr, ListenerId, Options,
    Output, Readiness, Refused, Server, Stats, Tick, TooManyListeners, Waker,
};

/// Most listeners one engine serves.
pub const MAX_LISTENERS: usize = 16;

const NONE: u32 = u32::MAX;

// Per-slot flags.
const F_READABLE: u16 = 1 << 0;
const F_HUP: u16 = 1 << 1;
const F_EOF: u16 = 1 << 2;
const F_WRITE_BLOCKED: u16 = 1 << 3;
const F_REG_READ: u16 = 1 << 4;
const F_REG_WRITE: u16 = 1 << 5;
const F_IN_LIST: u16 = 1 << 6;
const F_OUT_SCRATCH: u16 = 1 << 7;
const F_STALLED: u16 = 1 << 8;
const F_CONFIGURE: u16 = 1 << 9;
const F_FLUSH_DONE: u16 = 1 << 10;
/// End of stream was read while input was stalled behind full output: that input is
/// still the handler's to process before the close.
const F_EOF_DRAIN: u16 = 1 << 11;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotState {
    Free,
    Open,
    /// Flush, then close.
    Closing,
    /// Flush, then detach.
    Detaching,
    /// `Output::Close` was emitted; `closed` runs at the next engine call.
    Closed,
    /// `Output::Detach` was emitted; its operation's report ends the connection.
    DetachWait,
}

/// One connection slot: the metadata of one connection (its buffers live in the byte
/// storage). Storage for an engine is `max_connections` of these, made with
/// [`Slot::new`] or `Default`.
pub struct Slot<C> {
    info: ConnInfo,
    generation: u32,
    state: SlotState,
    flags: u16,
    in_len: u32,
    out_start: u32,
    out_len: u32,
    next: u32,
    error: Option<CloseError>,
    options: Options,
    context: Option<C>,
}

impl<C> Slot<C> {
    /// A free slot.
    pub const fn new() -> Self {
        Slot {
            info: ConnInfo {
                id: ConnId::new(0, 0),
                listener: ListenerId::FIRST,
                local: Addr::Unix,
                peer: Addr::Unix,
            },
            generation: 0,
            state: SlotState::Free,
            flags: 0,
            in_len: 0,
            out_start: 0,
            out_len: 0,
            next: NONE,
            error: None,
            options: Options {
                nodelay: true,
                keepalive: None,
            },
            context: None,
        }
    }

    fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    fn set(&mut self, flag: u16, on: bool) {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
    }
}

impl<C> Default for Slot<C> {
    fn default() -> Self {
        Slot::new()
    }
}

impl<C> fmt::Debug for Slot<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("state", &self.state)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// Storage for an engine's slots: anything that derefs to `[Slot<C>]` (a `Vec`, a boxed
/// slice, an array, a `&'static mut` array).
pub trait SlotStorage<C>: AsRef<[Slot<C>]> + AsMut<[Slot<C>]> {}

impl<C, T: AsRef<[Slot<C>]> + AsMut<[Slot<C>]> + ?Sized> SlotStorage<C> for T {}

/// Storage for an engine's buffers: anything that derefs to `[u8]`.
pub trait ByteStorage: AsRef<[u8]> + AsMut<[u8]> {}

impl<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized> ByteStorage for T {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Created,
    Running,
    ShuttingDown,
    Done,
}

#[derive(Clone, Copy, Debug)]
struct Listener {
    ready: bool,
    accepts_left: u32,
    paused_until: Option<Instant>,
    backoff: Duration,
    /// `PauseAccept` (true) or `ResumeAccept` (false) still to be emitted.
    command: Option<bool>,
}

/// What `poll_output` decided, before borrowing the buffers it points into.
enum Next {
    Accept(usize),
    Read(u32, bool),
    Transmit(u32),
    Configure(u32),
    Interest(u32, Interest),
    Close(u32),
    Detach(u32),
    Pause(usize),
    Resume(usize),
    Shutdown,
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
    bytes: B,
    config: Config,
    waker: Option<Waker>,
    phase: Phase,
    free_head: u32,
    open: usize,
    list_head: u32,
    list_tail: u32,
    scratch_owner: u32,
    scratch_len: usize,
    finalize: u32,
    listeners: [Listener; MAX_LISTENERS],
    listener_count: usize,
    tick_next: Option<Instant>,
    /// The driver's clock at its last `handle_time`.
    now: Instant,
    shutdown_trigger: u32,
    shutdown_cursor: usize,
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
            .field("open", &self.open)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Where a `data` call's input is.
#[derive(Clone, Copy)]
enum InputSource {
    /// `scratch_in[..len]`.
    Scratch(usize),
    /// The slot's own input buffer, `in_len` bytes.
    Own,
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
    /// [`BuildError`] if a capacity is zero or too large or the storage does not fit.
    pub fn new(
        handler: H,
        config: Config,
        mut slots: S,
        bytes: B,
        waker: Option<Waker>,
    ) -> Result<Self, BuildError> {
        let needed = config.validate()?;
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
        let count = config.max_connections;
        for (i, slot) in slots.as_mut().iter_mut().enumerate() {
            *slot = Slot::new();
            slot.next = if i + 1 < count { (i + 1) as u32 } else { NONE };
        }
        let listener = Listener {
            ready: false,
            accepts_left: 0,
            paused_until: None,
            backoff: config.accept_backoff,
            command: None,
        };
        Ok(Engine {
            handler,
            slots,
            bytes,
            config,
            waker,
            phase: Phase::Created,
            free_head: 0,
            open: 0,
            list_head: NONE,
            list_tail: NONE,
            scratch_owner: NONE,
            scratch_len: 0,
            finalize: NONE,
            listeners: [listener; MAX_LISTENERS],
            listener_count: 0,
            tick_next: None,
            now: Instant::ZERO,
            shutdown_trigger: NONE,
            shutdown_cursor: 0,
            stats: Stats::default(),
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
        self.open
    }

    /// Slots free for new connections.
    pub fn free_slots(&self) -> usize {
        self.config.max_connections - self.open
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

    /// Bytes of output pending for `id` (0 for an unknown id).
    pub fn pending_output(&self, id: ConnId) -> usize {
        match self.live_slot(id) {
            Some(i) => self.pending_len(i),
            None => 0,
        }
    }

    /// Bytes of unconsumed input kept for `id` (0 for an unknown id).
    pub fn pending_input(&self, id: ConnId) -> usize {
        match self.live_slot(id) {
            Some(i) => self.slots.as_ref()[i as usize].in_len as usize,
            None => 0,
        }
    }

    /// When the engine next needs [`Engine::handle_time`]: the next tick or the end
    /// of a listener's back-off. `None`: no deadline (wait for I/O or a wake only).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase != Phase::Running {
            return None;
        }
        let mut next = self.tick_next;
        for l in &self.listeners[..self.listener_count] {
            if let Some(t) = l.paused_until {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        next
    }

    // ----- inputs --------------------------------------------------------------------

    /// The driver's clock reads `now`: the engine's one entry point for time. The
    /// engine takes it as the current time (time never goes back: an earlier `now` is
    /// ignored), fires the tick if it is due, and resumes listeners whose back-off has
    /// ended. Every handler call until the next `handle_time` happens at this time.
    ///
    /// Call it once per turn of the loop, after waiting and before reporting what the
    /// wait found, so that the handlers see the time the wait ended; and before
    /// [`Engine::handle_start`] to set the start time (otherwise [`Instant::ZERO`]).
    pub fn handle_time(&mut self, now: Instant) {
        self.enter();
        if now > self.now {
            self.now = now;
        }
        if self.phase != Phase::Running {
            return;
        }
        let now = self.now;
        for l in &mut self.listeners[..self.listener_count] {
            if l.paused_until.is_some_and(|t| t <= now) {
                l.paused_until = None;
                l.command = Some(false);
                l.ready = true;
                l.accepts_left = self.config.accept_batch;
            }
        }
        if let Some(due) = self.tick_next
            && due <= now
        {
            self.fire_tick(due, now);
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
        self.listener_count = listeners.len();
        let action = self
            .handler
            .serving(Server::new(listeners, self.waker.as_ref()));
        if action == Action::Shutdown {
            self.begin_shutdown(NONE);
            return Ok(());
        }
        let now = self.now;
        self.fire_tick(now, now);
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
        let i = listener.index();
        if i >= self.listener_count {
            return Err(DriverError::UnknownListener);
        }
        let l = &mut self.listeners[i];
        l.ready = true;
        l.accepts_left = self.config.accept_batch;
        Ok(())
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
        if ready.readable || ready.hangup {
            slot.flags |= F_READABLE;
        }
        if ready.hangup {
            slot.flags |= F_HUP;
        }
        if ready.writable || ready.hangup {
            slot.flags &= !F_WRITE_BLOCKED;
        }
        self.enqueue(index);
        Ok(())
    }

    /// The notifier fired: call `woken` for every connection with a pending wake.
    pub fn handle_wakes(&mut self) {
        self.enter();
        if self.phase != Phase::Running {
            return;
        }
        let Some(waker) = self.waker.clone() else {
            return;
        };
        waker.target().drain(&mut |slot| {
            let slot = slot as u32;
            let state = self.slots.as_ref()[slot as usize].state;
            if state != SlotState::Open || self.phase != Phase::Running {
                return;
            }
            self.stats.wakes += 1;
            let (action, _) = self.call_handler(slot, None, |h, conn, _| h.woken(conn));
            self.apply_action(slot, action);
            self.enqueue(slot);
        });
    }

    // ----- outputs -------------------------------------------------------------------

    /// The next thing for the driver to do, or `None` when there is nothing until the
    /// next input. See the [crate documentation](crate) for the order.
    pub fn poll_output(&mut self) -> Option<Output<'_, H, S, B>> {
        self.enter();
        let next = self.next_output()?;
        Some(self.materialize(next))
    }

    // ----- operation reports (from the operations in `output.rs`) --------------------

    /// An accepted connection: open it and call `opened`.
    pub(crate) fn accepted(
        &mut self,
        listener: ListenerId,
        local: Addr,
        peer: Addr,
    ) -> Result<ConnId, Refused> {
        if self.phase != Phase::Running {
            self.stats.refused_shutting_down += 1;
            return Err(Refused::ShuttingDown);
        }
        let backoff = self.config.accept_backoff;
        self.listeners[listener.index()].backoff = backoff;
        let index = self.free_head;
        if index == NONE {
            self.stats.refused_pool_full += 1;
            return Err(Refused::PoolFull);
        }
        let default_options = self.config.options;
        let slot = &mut self.slots.as_mut()[index as usize];
        self.free_head = slot.next;
        slot.next = NONE;
        slot.generation = (slot.generation + 1) & crate::id::GEN_MASK;
        let id = ConnId::new(index, slot.generation);
        slot.info = ConnInfo {
            id,
            listener,
            local,
            peer,
        };
        slot.state = SlotState::Open;
        slot.flags = F_REG_READ;
        slot.in_len = 0;
        slot.out_start = 0;
        slot.out_len = 0;
        slot.error = None;
        slot.options = default_options;
        slot.context = Some(H::Context::default());
        if default_options
            != (Options {
                nodelay: false,
                keepalive: None,
            })
        {
            slot.flags |= F_CONFIGURE;
        }
        self.open += 1;
        self.stats.accepted += 1;
        if let Some(w) = &self.waker {
            w.target().open(id);
        }
        let (action, _) = self.call_handler(index, None, |h, conn, _| h.opened(conn));
        self.apply_action(index, action);
        self.enqueue(index);
        Ok(id)
    }

    /// Accepting would block: the backlog is empty.
    pub(crate) fn accept_blocked(&mut self, listener: ListenerId) {
        self.listeners[listener.index()].ready = false;
    }

    /// Accepting failed: back off unless the connection merely went away.
    pub(crate) fn accept_failed(&mut self, listener: ListenerId, error: AcceptError) {
        self.stats.accept_errors += 1;
        if error == AcceptError::Aborted {
            return;
        }
        let max = self.config.accept_backoff_max;
        let now = self.now;
        let l = &mut self.listeners[listener.index()];
        if l.paused_until.is_none() {
            l.paused_until = Some(now + l.backoff);
            l.backoff = (l.backoff * 2).min(max);
            l.ready = false;
            l.command = Some(true);
            self.stats.accept_pauses += 1;
        }
    }

    /// `n` bytes (0: end of stream) were read into the buffer of slot `index`'s read,
    /// which lent `len` bytes (of the scratch buffer, or of its own input buffer).
    pub(crate) fn read_done(&mut self, index: u32, scratch: bool, len: usize, n: usize) {
        if n == 0 {
            self.end_of_stream(index);
            return;
        }
        self.stats.reads += 1;
        self.stats.bytes_read += n as u64;
        {
            let slot = &mut self.slots.as_mut()[index as usize];
            // A read that filled the buffer probably left more behind: read again
            // without waiting for the poller. Otherwise wait for the next report.
            if n < len {
                slot.flags &= !(F_READABLE | F_HUP);
            }
        }
        let source = if scratch {
            InputSource::Scratch(n)
        } else {
            self.slots.as_mut()[index as usize].in_len += n as u32;
            InputSource::Own
        };
        self.deliver_input(index, source);
        self.enqueue(index);
    }

    /// Slot `index`'s read found nothing.
    pub(crate) fn read_blocked(&mut self, index: u32) {
        let slot = &mut self.slots.as_mut()[index as usize];
        slot.flags &= !(F_READABLE | F_HUP);
    }

    /// Slot `index`'s transmit of `len` bytes wrote `n`.
    pub(crate) fn transmit_done(&mut self, index: u32, len: usize, n: usize) {
        self.stats.writes += 1;
        self.stats.bytes_written += n as u64;
        self.complete_transmit(index, len, n);
    }

    /// Slot `index`'s transmit of `len` bytes would block.
    pub(crate) fn transmit_blocked(&mut self, index: u32, len: usize) {
        self.complete_transmit(index, len, 0);
    }

    /// Slot `index`'s read, or its transmit of `transmit` bytes, failed: nothing more can
    /// be sent, so the connection closes at once and `closed` gets the error.
    pub(crate) fn io_failed(&mut self, index: u32, error: IoError, transmit: Option<usize>) {
        if let Some(len) = transmit {
            let id = self.slots.as_ref()[index as usize].info.id;
            self.handler.postwrite(id, 0, len);
        }
        self.stats.io_errors += 1;
        self.fail(index, CloseError::Io(error));
    }

    /// Slot `index` was detached: call `detached`, or `closed` if the handler did not
    /// take the socket (or there was none to take).
    pub(crate) fn detach_done(&mut self, index: u32, mut socket: Detached<'_>) {
        if !socket.holds_socket() {
            self.detach_failed(index);
            return;
        }
        let slot = &mut self.slots.as_mut()[index as usize];
        let info = slot.info;
        let in_len = slot.in_len as usize;
        let mut context = slot.context.take().unwrap_or_default();
        let in_start = self.in_region(index).start;
        let unread = &self.bytes.as_ref()[in_start..in_start + in_len];
        let action = self
            .handler
            .detached(&info, &mut context, socket.with_input(unread));
        let taken = !socket.holds_socket();
        let action = if taken {
            self.stats.detached += 1;
            drop(context);
            action
        } else {
            self.stats.closed += 1;
            let closed_action = self.handler.closed(&info, context, None);
            if action == Action::Shutdown {
                action
            } else {
                closed_action
            }
        };
        self.free_slot(index);
        if action == Action::Shutdown {
            self.begin_shutdown(NONE);
        }
    }

    /// Slot `index` could not be detached (the driver failed to take its socket out of
    /// the poller or to make it blocking): the connection ends as a close with an I/O
    /// error.
    pub(crate) fn detach_failed(&mut self, index: u32) {
        let slot = &mut self.slots.as_mut()[index as usize];
        let info = slot.info;
        let context = slot.context.take().unwrap_or_default();
        self.stats.closed += 1;
        self.stats.io_errors += 1;
        let error = CloseError::Io(IoError::new(IoErrorKind::Other));
        let action = self.handler.closed(&info, context, Some(error));
        self.free_slot(index);
        if action == Action::Shutdown {
            self.begin_shutdown(NONE);
        }
    }

    /// The bytes of `range` of the byte storage (an operation's buffer).
    pub(crate) fn bytes(&self, range: core::ops::Range<usize>) -> &[u8] {
        &self.bytes.as_ref()[range]
    }

    /// The bytes of `range` of the byte storage, to write into (a read's buffer).
    pub(crate) fn bytes_mut(&mut self, range: core::ops::Range<usize>) -> &mut [u8] {
        &mut self.bytes.as_mut()[range]
    }

    // ----- internals -----------------------------------------------------------------

    /// Runs at the start of every engine call: a close emitted by the previous
    /// `poll_output` is now done, so `closed` runs.
    fn enter(&mut self) {
        if self.finalize != NONE {
            let index = core::mem::replace(&mut self.finalize, NONE);
            self.finish_close(index);
        }
    }

    fn live_slot(&self, id: ConnId) -> Option<u32> {
        let slot = self.slots.as_ref().get(id.slot())?;
        let live = matches!(
            slot.state,
            SlotState::Open | SlotState::Closing | SlotState::Detaching
        );
        (live && slot.info.id == id).then_some(id.slot() as u32)
    }

    fn pending_len(&self, index: u32) -> usize {
        let slot = &self.slots.as_ref()[index as usize];
        if slot.has(F_OUT_SCRATCH) {
            self.scratch_len
        } else {
            slot.out_len as usize
        }
    }

    fn in_region(&self, index: u32) -> core::ops::Range<usize> {
        let cap = self.config.input_capacity;
        let start = index as usize * cap;
        start..start + cap
    }

    fn out_region(&self, index: u32) -> core::ops::Range<usize> {
        let cap = self.config.output_capacity;
        let base = self.config.max_connections * self.config.input_capacity;
        let start = base + index as usize * cap;
        start..start + cap
    }

    fn scratch_in_region(&self) -> core::ops::Range<usize> {
        let n = self.config.max_connections;
        let start = n * (self.config.input_capacity + self.config.output_capacity);
        start..start + self.config.input_capacity
    }

    fn scratch_out_region(&self) -> core::ops::Range<usize> {
        let start = self.scratch_in_region().end;
        start..start + self.config.output_capacity
    }

    fn enqueue(&mut self, index: u32) {
        if self.phase != Phase::Running {
            return;
        }
        let slots = self.slots.as_mut();
        let slot = &mut slots[index as usize];
        if slot.has(F_IN_LIST) {
            return;
        }
        slot.flags |= F_IN_LIST;
        slot.next = NONE;
        if self.list_tail == NONE {
            self.list_head = index;
        } else {
            slots[self.list_tail as usize].next = index;
        }
        self.list_tail = index;
    }

    fn dequeue_head(&mut self) -> u32 {
        let index = self.list_head;
        if index == NONE {
            return NONE;
        }
        let slots = self.slots.as_mut();
        let slot = &mut slots[index as usize];
        self.list_head = slot.next;
        if self.list_head == NONE {
            self.list_tail = NONE;
        }
        slot.next = NONE;
        slot.flags &= !F_IN_LIST;
        index
    }

    /// Moves the scratch output of whichever connection owns it into that connection's
    /// own output buffer, so the scratch buffer can serve another connection.
    fn spill_scratch(&mut self) {
        let owner = self.scratch_owner;
        if owner == NONE {
            return;
        }
        let len = self.scratch_len;
        let scratch = self.scratch_out_region();
        let own = self.out_region(owner);
        let bytes = self.bytes.as_mut();
        bytes.copy_within(scratch.start..scratch.start + len, own.start);
        let slot = &mut self.slots.as_mut()[owner as usize];
        slot.out_start = 0;
        slot.out_len = len as u32;
        slot.flags &= !F_OUT_SCRATCH;
        self.scratch_owner = NONE;
        self.scratch_len = 0;
        self.stats.output_spills += 1;
    }

    fn release_output(&mut self, index: u32) {
        let slot = &mut self.slots.as_mut()[index as usize];
        if slot.has(F_OUT_SCRATCH) {
            slot.flags &= !F_OUT_SCRATCH;
            self.scratch_owner = NONE;
            self.scratch_len = 0;
        }
        slot.out_start = 0;
        slot.out_len = 0;
    }

    /// Calls a handler method with a `Conn` for slot `index`, whose output goes to the
    /// scratch buffer when the connection has nothing pending in its own buffer.
    /// Returns the handler's result and the consumed count it set, if any.
    fn call_handler<R>(
        &mut self,
        index: u32,
        input: Option<InputSource>,
        f: impl FnOnce(&mut H, &mut Conn<'_, H::Context>, &[u8]) -> R,
    ) -> (R, Option<(Option<usize>, bool)>) {
        let own_pending = {
            let slot = &self.slots.as_ref()[index as usize];
            !slot.has(F_OUT_SCRATCH) && slot.out_len > 0
        };
        let use_scratch = !own_pending;
        if use_scratch && self.scratch_owner != index {
            self.spill_scratch();
        }
        let out_range = if use_scratch {
            self.scratch_out_region()
        } else {
            self.out_region(index)
        };
        let in_range = match input {
            Some(InputSource::Scratch(n)) => {
                let r = self.scratch_in_region();
                r.start..r.start + n
            }
            Some(InputSource::Own) => {
                let r = self.in_region(index);
                let len = self.slots.as_ref()[index as usize].in_len as usize;
                r.start..r.start + len
            }
            None => 0..0,
        };
        let (out_start, out_len) = if use_scratch {
            (0, self.scratch_len)
        } else {
            let slot = &self.slots.as_ref()[index as usize];
            (slot.out_start as usize, slot.out_len as usize)
        };
        let bytes = self.bytes.as_mut();
        // Input and output regions never overlap: split the byte storage between them.
        let (input_bytes, out_bytes): (&[u8], &mut [u8]) = if in_range.end <= out_range.start {
            let (a, b) = bytes.split_at_mut(out_range.start);
            (&a[in_range.clone()], &mut b[..out_range.len()])
        } else {
            let (a, b) = bytes.split_at_mut(in_range.start);
            (&b[..in_range.len()], &mut a[out_range.start..out_range.end])
        };
        let slot = &mut self.slots.as_mut()[index as usize];
        let mut context = slot.context.take().unwrap_or_default();
        let mut conn = Conn {
            info: &slot.info,
            context: &mut context,
            options: &mut slot.options,
            out: out_bytes,
            out_start,
            out_len,
            consumed: None,
            hit_full: false,
            options_changed: false,
        };
        let result = f(&mut self.handler, &mut conn, input_bytes);
        let (out_start, out_len, consumed, hit_full, options_changed) = (
            conn.out_start,
            conn.out_len,
            conn.consumed,
            conn.hit_full,
            conn.options_changed,
        );
        slot.context = Some(context);
        if options_changed {
            slot.flags |= F_CONFIGURE;
        }
        if use_scratch {
            if out_len > 0 {
                slot.flags |= F_OUT_SCRATCH;
                self.scratch_owner = index;
            } else {
                slot.flags &= !F_OUT_SCRATCH;
                self.scratch_owner = NONE;
            }
            self.scratch_len = out_len;
        } else {
            slot.out_start = out_start as u32;
            slot.out_len = out_len as u32;
        }
        (result, input.map(|_| (consumed, hit_full)))
    }

    /// Hands input to `data`, keeps what it did not consume, and decides about
    /// backpressure and frames too large for the buffer.
    fn deliver_input(&mut self, index: u32, source: InputSource) {
        let total = match source {
            InputSource::Scratch(n) => n,
            InputSource::Own => self.slots.as_ref()[index as usize].in_len as usize,
        };
        let (action, effects) =
            self.call_handler(index, Some(source), |h, conn, input| h.data(conn, input));
        let (consumed, hit_full) = effects.unwrap_or((None, false));
        let consumed = consumed.unwrap_or(total).min(total);
        let left = total - consumed;
        let in_range = self.in_region(index);
        match source {
            InputSource::Scratch(_) => {
                if left > 0 {
                    let scratch = self.scratch_in_region();
                    let from = scratch.start + consumed;
                    self.bytes
                        .as_mut()
                        .copy_within(from..from + left, in_range.start);
                    self.stats.input_carries += 1;
                }
            }
            InputSource::Own => {
                if consumed > 0 && left > 0 {
                    let from = in_range.start + consumed;
                    self.bytes
                        .as_mut()
                        .copy_within(from..from + left, in_range.start);
                }
            }
        }
        let cap = self.config.input_capacity;
        let pending = self.pending_len(index);
        let slot = &mut self.slots.as_mut()[index as usize];
        slot.in_len = left as u32;
        // Input left because output was full waits for the output to drain; with
        // nothing pending to drain, the handler's write can never fit.
        let stalled = left > 0 && hit_full && pending > 0;
        slot.set(F_STALLED, stalled);
        let too_large = left == cap && !stalled;
        self.apply_action(index, action);
        if too_large {
            self.stats.frame_too_large += 1;
            self.close_with(index, Some(CloseError::FrameTooLarge { capacity: cap }));
        }
    }

    fn end_of_stream(&mut self, index: u32) {
        let slot = &mut self.slots.as_mut()[index as usize];
        slot.flags |= F_EOF;
        slot.flags &= !(F_READABLE | F_HUP);
        // A hang-up report (kqueue's EV_EOF on a half-close) makes the engine read even
        // while input is stalled; that input arrived before the end of stream.
        if slot.state == SlotState::Open && slot.has(F_STALLED) {
            slot.flags |= F_EOF_DRAIN;
        }
        self.close_with(index, None);
        self.enqueue(index);
    }

    fn complete_transmit(&mut self, index: u32, len: usize, n: usize) {
        let id = self.slots.as_ref()[index as usize].info.id;
        let remaining = len - n;
        self.handler.postwrite(id, n, remaining);
        let in_scratch = self.slots.as_ref()[index as usize].has(F_OUT_SCRATCH);
        if in_scratch {
            if remaining > 0 {
                // Keep the unsent tail in the connection's own buffer.
                let scratch = self.scratch_out_region();
                let own = self.out_region(index);
                self.bytes
                    .as_mut()
                    .copy_within(scratch.start + n..scratch.start + len, own.start);
                let slot = &mut self.slots.as_mut()[index as usize];
                slot.out_start = 0;
                slot.out_len = remaining as u32;
                self.stats.output_spills += 1;
            }
            let slot = &mut self.slots.as_mut()[index as usize];
            slot.flags &= !F_OUT_SCRATCH;
            self.scratch_owner = NONE;
            self.scratch_len = 0;
        } else {
            let slot = &mut self.slots.as_mut()[index as usize];
            slot.out_start += n as u32;
            slot.out_len -= n as u32;
            if slot.out_len == 0 {
                slot.out_start = 0;
            }
        }
        let shutting_down = self.phase == Phase::ShuttingDown;
        let slot = &mut self.slots.as_mut()[index as usize];
        if remaining > 0 {
            slot.flags |= F_WRITE_BLOCKED;
            if shutting_down {
                slot.flags |= F_FLUSH_DONE;
            }
        } else {
            slot.flags &= !F_WRITE_BLOCKED;
            let draining = slot.state == SlotState::Closing && slot.has(F_EOF_DRAIN);
            if slot.has(F_STALLED) && (slot.state == SlotState::Open || draining) && !shutting_down
            {
                slot.flags &= !F_STALLED;
                self.deliver_input(index, InputSource::Own);
            }
        }
        if n == 0 && shutting_down {
            self.slots.as_mut()[index as usize].flags |= F_FLUSH_DONE;
        }
        self.enqueue(index);
    }

    fn apply_action(&mut self, index: u32, action: Action) {
        let slot = &mut self.slots.as_mut()[index as usize];
        match action {
            Action::None => {}
            Action::Close => {
                if slot.state == SlotState::Open {
                    slot.state = SlotState::Closing;
                }
                // The handler is done with this connection: no more of its input.
                slot.flags &= !F_EOF_DRAIN;
            }
            Action::Detach => {
                // While draining input read before an end of stream the connection is
                // still the handler's, as if the end had not been read yet.
                let draining = slot.has(F_EOF_DRAIN) && slot.error.is_none();
                if slot.state == SlotState::Open || draining {
                    slot.state = SlotState::Detaching;
                }
                slot.flags &= !F_EOF_DRAIN;
            }
            Action::Shutdown => self.begin_shutdown(index),
        }
    }

    fn close_with(&mut self, index: u32, error: Option<CloseError>) {
        let slot = &mut self.slots.as_mut()[index as usize];
        if slot.state == SlotState::Open {
            slot.state = SlotState::Closing;
        }
        if slot.error.is_none() {
            slot.error = error;
        }
    }

    /// An I/O error: nothing more can be sent, so pending output is dropped (the error
    /// reaches `closed`) and the connection closes at once.
    fn fail(&mut self, index: u32, error: CloseError) {
        self.release_output(index);
        let slot = &mut self.slots.as_mut()[index as usize];
        slot.error = Some(error);
        slot.in_len = 0;
        slot.flags &= !F_STALLED;
        if matches!(
            slot.state,
            SlotState::Open | SlotState::Closing | SlotState::Detaching
        ) {
            slot.state = SlotState::Closing;
        }
        self.enqueue(index);
    }

    fn begin_shutdown(&mut self, trigger: u32) {
        if matches!(self.phase, Phase::ShuttingDown | Phase::Done) {
            return;
        }
        while self.dequeue_head() != NONE {}
        self.phase = Phase::ShuttingDown;
        self.shutdown_trigger = trigger;
        self.shutdown_cursor = 0;
        self.tick_next = None;
        if let Some(w) = &self.waker {
            w.target().shut_down();
        }
    }

    fn fire_tick(&mut self, scheduled: Instant, now: Instant) {
        self.tick_next = None;
        self.stats.ticks += 1;
        let Tick { delay, action } = self.handler.tick(now);
        if let Some(delay) = delay {
            let delay = delay.max(self.config.min_tick);
            let mut next = scheduled + delay;
            if next <= now {
                // The loop fell behind by more than a period: skip the missed ticks
                // rather than fire a burst that would starve I/O.
                next = now + delay;
            }
            self.tick_next = Some(next);
        }
        if action == Action::Shutdown {
            self.begin_shutdown(NONE);
        }
    }

    /// Removes a slot from the attention list wherever it is (rare: a slot is normally
    /// out of the list when it is freed).
    fn unlink(&mut self, index: u32) {
        let slots = self.slots.as_mut();
        if slots[index as usize].flags & F_IN_LIST == 0 {
            return;
        }
        let mut prev = NONE;
        let mut cur = self.list_head;
        while cur != NONE && cur != index {
            prev = cur;
            cur = slots[cur as usize].next;
        }
        let next = slots[index as usize].next;
        if prev == NONE {
            self.list_head = next;
        } else {
            slots[prev as usize].next = next;
        }
        if self.list_tail == index {
            self.list_tail = prev;
        }
        slots[index as usize].flags &= !F_IN_LIST;
        slots[index as usize].next = NONE;
    }

    fn free_slot(&mut self, index: u32) {
        self.unlink(index);
        if self.scratch_owner == index {
            self.scratch_owner = NONE;
            self.scratch_len = 0;
        }
        let slot = &mut self.slots.as_mut()[index as usize];
        slot.state = SlotState::Free;
        slot.flags = 0;
        slot.in_len = 0;
        slot.out_start = 0;
        slot.out_len = 0;
        slot.error = None;
        slot.context = None;
        slot.next = self.free_head;
        self.free_head = index;
        self.open -= 1;
    }

    fn finish_close(&mut self, index: u32) {
        let slot = &mut self.slots.as_mut()[index as usize];
        if slot.state != SlotState::Closed {
            return;
        }
        let info = slot.info;
        let error = slot.error;
        let context = slot.context.take().unwrap_or_default();
        self.free_slot(index);
        self.stats.closed += 1;
        let action = self.handler.closed(&info, context, error);
        if action == Action::Shutdown {
            self.begin_shutdown(NONE);
        }
    }

    /// Picks the next output without borrowing the buffers.
    fn next_output(&mut self) -> Option<Next> {
        match self.phase {
            Phase::Created | Phase::Done => return None,
            Phase::ShuttingDown => return self.next_shutdown_output(),
            Phase::Running => {}
        }
        for i in 0..self.listener_count {
            if let Some(pause) = self.listeners[i].command.take() {
                return Some(if pause {
                    Next::Pause(i)
                } else {
                    Next::Resume(i)
                });
            }
        }
        // Output waiting in the scratch buffer goes first, so the next handler call
        // finds the scratch buffer free and nothing is copied.
        if self.scratch_owner != NONE {
            let owner = self.scratch_owner;
            if !self.slots.as_ref()[owner as usize].has(F_WRITE_BLOCKED) {
                return Some(self.begin_transmit(owner));
            }
        }
        loop {
            let index = self.dequeue_head();
            if index == NONE {
                break;
            }
            if let Some(next) = self.slot_output(index) {
                if !matches!(next, Next::Close(_) | Next::Detach(_)) {
                    self.enqueue(index);
                }
                return Some(next);
            }
        }
        for i in 0..self.listener_count {
            let l = &mut self.listeners[i];
            if l.ready && l.paused_until.is_none() {
                if l.accepts_left == 0 {
                    l.ready = false;
                    continue;
                }
                l.accepts_left -= 1;
                return Some(Next::Accept(i));
            }
        }
        None
    }

    /// The next output for one connection, in order: options, output, close or detach,
    /// input, poller interest.
    fn slot_output(&mut self, index: u32) -> Option<Next> {
        let in_cap = self.config.input_capacity as u32;
        let pending = self.pending_len(index);
        let slot = &mut self.slots.as_mut()[index as usize];
        let state = slot.state;
        if !matches!(
            state,
            SlotState::Open | SlotState::Closing | SlotState::Detaching
        ) {
            return None;
        }
        if slot.has(F_CONFIGURE) {
            slot.flags &= !F_CONFIGURE;
            return Some(Next::Configure(index));
        }
        if pending > 0 && !slot.has(F_WRITE_BLOCKED) {
            return Some(self.begin_transmit(index));
        }
        if pending == 0 {
            match state {
                SlotState::Closing => return Some(self.emit_close(index)),
                SlotState::Detaching => return Some(self.emit_detach(index)),
                _ => {}
            }
        }
        let slot = &mut self.slots.as_mut()[index as usize];
        let can_read = slot.in_len < in_cap && !slot.has(F_EOF);
        let want_read = state == SlotState::Open && can_read && !slot.has(F_WRITE_BLOCKED);
        // A hang-up makes an open connection read even while its output is blocked, to
        // learn whether the peer ended or failed. A connection the handler is closing
        // or detaching reads nothing more: its handler is done with input.
        let hup_read = slot.has(F_HUP) && state == SlotState::Open;
        if slot.has(F_READABLE) && can_read && (want_read || hup_read) {
            slot.flags &= !F_READABLE;
            let scratch = slot.in_len == 0;
            return Some(Next::Read(index, scratch));
        }
        let want_write = slot.has(F_WRITE_BLOCKED) && pending > 0;
        if want_read != slot.has(F_REG_READ) || want_write != slot.has(F_REG_WRITE) {
            slot.set(F_REG_READ, want_read);
            slot.set(F_REG_WRITE, want_write);
            return Some(Next::Interest(index, Interest::new(want_read, want_write)));
        }
        None
    }

    fn begin_transmit(&mut self, index: u32) -> Next {
        let len = self.pending_len(index);
        let id = self.slots.as_ref()[index as usize].info.id;
        self.handler.prewrite(id, len);
        Next::Transmit(index)
    }

    fn emit_close(&mut self, index: u32) -> Next {
        self.release_output(index);
        let slot = &mut self.slots.as_mut()[index as usize];
        slot.state = SlotState::Closed;
        let id = slot.info.id;
        if let Some(w) = &self.waker {
            w.target().close(id);
        }
        self.finalize = index;
        Next::Close(index)
    }

    fn emit_detach(&mut self, index: u32) -> Next {
        let slot = &mut self.slots.as_mut()[index as usize];
        slot.state = SlotState::DetachWait;
        let id = slot.info.id;
        if let Some(w) = &self.waker {
            w.target().close(id);
        }
        Next::Detach(index)
    }

    fn next_shutdown_output(&mut self) -> Option<Next> {
        let trigger = self.shutdown_trigger;
        if trigger != NONE {
            let slot = &self.slots.as_ref()[trigger as usize];
            let live = matches!(
                slot.state,
                SlotState::Open | SlotState::Closing | SlotState::Detaching
            );
            if live && !slot.has(F_FLUSH_DONE) && self.pending_len(trigger) > 0 {
                return Some(self.begin_transmit(trigger));
            }
            self.shutdown_trigger = NONE;
        }
        while self.shutdown_cursor < self.config.max_connections {
            let index = self.shutdown_cursor as u32;
            let state = self.slots.as_ref()[index as usize].state;
            if matches!(
                state,
                SlotState::Open | SlotState::Closing | SlotState::Detaching
            ) {
                return Some(self.emit_close(index));
            }
            self.shutdown_cursor += 1;
        }
        self.phase = Phase::Done;
        Some(Next::Shutdown)
    }

    fn materialize(&mut self, next: Next) -> Output<'_, H, S, B> {
        let id_of = |slots: &[Slot<H::Context>], i: u32| slots[i as usize].info.id;
        let listener = |i: usize| ListenerId::new(i).unwrap_or(ListenerId::FIRST);
        match next {
            Next::Accept(i) => Output::Accept(Accept::new(self, listener(i))),
            Next::Pause(i) => Output::PauseAccept {
                listener: listener(i),
            },
            Next::Resume(i) => Output::ResumeAccept {
                listener: listener(i),
            },
            Next::Shutdown => Output::Shutdown,
            Next::Configure(i) => {
                let slot = &self.slots.as_ref()[i as usize];
                Output::Configure {
                    id: slot.info.id,
                    options: slot.options,
                }
            }
            Next::Interest(i, interest) => Output::SetInterest {
                id: id_of(self.slots.as_ref(), i),
                interest,
            },
            Next::Close(i) => Output::Close {
                id: id_of(self.slots.as_ref(), i),
            },
            Next::Detach(i) => {
                let id = id_of(self.slots.as_ref(), i);
                Output::Detach(Detach::new(self, id, i))
            }
            Next::Read(i, scratch) => {
                let slot = &self.slots.as_ref()[i as usize];
                let id = slot.info.id;
                let in_len = slot.in_len as usize;
                let range = if scratch {
                    self.scratch_in_region()
                } else {
                    let r = self.in_region(i);
                    r.start + in_len..r.end
                };
                Output::Read(Read::new(self, id, i, scratch, range))
            }
            Next::Transmit(i) => {
                let slot = &self.slots.as_ref()[i as usize];
                let id = slot.info.id;
                let range = if slot.has(F_OUT_SCRATCH) {
                    let r = self.scratch_out_region();
                    r.start..r.start + self.scratch_len
                } else {
                    let r = self.out_region(i);
                    let start = r.start + slot.out_start as usize;
                    start..start + slot.out_len as usize
                };
                Output::Transmit(Transmit::new(self, id, i, range))
            }
        }
    }
}
