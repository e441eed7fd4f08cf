//! The driver protocol's types: what the engine asks for, and the operations a driver
//! completes by value.
//!
//! An output that expects a report ([`Output::Accept`], [`Output::Read`],
//! [`Output::Transmit`], [`Output::TransmitBatch`], [`Output::Detach`],
//! [`Output::Connect`], [`Output::FinishConnect`]) carries an operation that borrows the
//! engine until the driver completes it: reporting twice, reporting the wrong kind, or
//! reporting something the engine did not ask for does not compile, and no other
//! engine call can come in between (a batch's entries are checked as they are reported:
//! a second report of one is ignored). An operation dropped without a report counts as
//! "would block" (a detach as "could not be performed").

use core::fmt;
use core::ops::Range;

use crate::batch::MAX_BATCH;
use crate::engine::{ByteStorage, SlotStorage};
use crate::{
    AcceptError, Addr, ConnId, ConnectAddr, Detached, Engine, Events, IoError, IoErrorKind,
    ListenerId, Options, Refused,
};

/// Which readiness a connection's socket is registered for: the poller reports it
/// (level-triggered) while the socket has it. The default is [`Interest::NONE`].
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Interest {
    read: bool,
    write: bool,
}

impl Interest {
    /// Neither: hang-ups and errors only.
    pub const NONE: Interest = Interest::new(false, false);
    /// Readable (and hang-ups).
    pub const READ: Interest = Interest::new(true, false);
    /// Writable (and hang-ups).
    pub const WRITE: Interest = Interest::new(false, true);
    /// Readable and writable.
    pub const READ_WRITE: Interest = Interest::new(true, true);

    /// The interest with these two parts.
    pub const fn new(read: bool, write: bool) -> Self {
        Interest { read, write }
    }

    /// Readability is wanted.
    pub const fn is_readable(self) -> bool {
        self.read
    }

    /// Writability is wanted.
    pub const fn is_writable(self) -> bool {
        self.write
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.read, self.write) {
            (false, false) => "Interest::NONE",
            (true, false) => "Interest::READ",
            (false, true) => "Interest::WRITE",
            (true, true) => "Interest::READ_WRITE",
        })
    }
}

/// Readiness of a connection's socket, as the driver's poller reported it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Readiness {
    /// Bytes (or end of stream) can be read.
    pub readable: bool,
    /// The socket can take more output.
    pub writable: bool,
    /// The peer hung up or the socket has an error (EPOLLHUP/EPOLLERR, EV_EOF): the
    /// engine reads to learn which, even when it had stopped reading.
    pub hangup: bool,
}

/// The usual reports, as constants (the default is none of the three). Others are
/// built from them:
///
/// ```
/// use evio_proto::Readiness;
///
/// // A read filter's event that also carries the end of the stream (kqueue's EV_EOF).
/// let eof = Readiness { hangup: true, ..Readiness::READABLE };
/// assert!(eof.readable && !eof.writable && eof.hangup);
/// ```
impl Readiness {
    /// Readable only: bytes, or the end of the stream, can be read.
    pub const READABLE: Readiness = Readiness {
        readable: true,
        writable: false,
        hangup: false,
    };
    /// Writable only: the socket can take more output.
    pub const WRITABLE: Readiness = Readiness {
        readable: false,
        writable: true,
        hangup: false,
    };
    /// Readable and writable.
    pub const READ_WRITE: Readiness = Readiness {
        readable: true,
        writable: true,
        hangup: false,
    };
    /// A hang-up or an error only (EPOLLHUP/EPOLLERR with neither EPOLLIN nor
    /// EPOLLOUT; evio-os also reports it for a socket it can no longer watch): the
    /// engine reads to learn which.
    pub const HANGUP: Readiness = Readiness {
        readable: false,
        writable: false,
        hangup: true,
    };
}

/// What the engine asks the driver to do next, from [`Engine::poll_output`].
///
/// Perform it before calling the engine again. The seven operations that expect a report
/// borrow the engine until they are completed (or dropped); the rest need none.
pub enum Output<'a, H: Events, S: SlotStorage<H::Context>, B: ByteStorage> {
    /// Accept one connection on a listener.
    Accept(Accept<'a, H, S, B>),
    /// Read once from a connection into the buffer the engine lends.
    Read(Read<'a, H, S, B>),
    /// Write the engine's bytes to a connection once (with MSG_NOSIGNAL).
    Transmit(Transmit<'a, H, S, B>),
    /// Write to several connections, each once, as [`Output::Transmit`] does for one
    /// (only with [`Config::batch_sends`](crate::Config::batch_sends)).
    TransmitBatch(TransmitBatch<'a, H, S, B>),
    /// Remove a connection's socket from the poller, make it blocking, and hand it
    /// over.
    Detach(Detach<'a, H, S, B>),
    /// Open a non-blocking socket and start connecting it to an address.
    Connect(Connect<'a, H, S, B>),
    /// A connecting socket turned writable or reported an error: learn how the connect
    /// ended (`SO_ERROR`).
    FinishConnect(FinishConnect<'a, H, S, B>),
    /// Apply socket options to a connection (TCP only; a driver ignores them for unix
    /// sockets, and a failure to set them is not an error of the connection).
    Configure {
        /// The connection.
        id: ConnId,
        /// The options.
        options: Options,
    },
    /// Make the poller's interest in a connection exactly this.
    SetInterest {
        /// The connection.
        id: ConnId,
        /// What to watch for.
        interest: Interest,
    },
    /// Close a connection's socket (remove it from the poller, close it, forget it).
    /// `closed` runs at the next engine call, so the socket is gone by then.
    Close {
        /// The connection.
        id: ConnId,
    },
    /// Close a connection's socket with a reset: set `SO_LINGER` to zero, then close
    /// it as for `Close` (the kernel discards what it has not sent).
    Abort {
        /// The connection.
        id: ConnId,
    },
    /// Shut down the sending side of a connection's socket (`shutdown(SHUT_WR)`): the
    /// peer reads the end of the stream after everything sent before. The socket stays
    /// open and watched; reads go on.
    ShutdownWrite {
        /// The connection.
        id: ConnId,
    },
    /// Stop watching a listener for new connections until `ResumeAccept`.
    PauseAccept {
        /// The listener.
        listener: ListenerId,
    },
    /// Watch a listener again.
    ResumeAccept {
        /// The listener.
        listener: ListenerId,
    },
    /// Every connection is closed: close the listeners, remove unix socket files this
    /// server created, and return from the loop. The last output of an engine.
    Shutdown,
}

impl<H: Events, S: SlotStorage<H::Context>, B: ByteStorage> fmt::Debug for Output<'_, H, S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Accept(op) => write!(f, "Accept({})", op.listener()),
            Output::Read(op) => write!(f, "Read({:?}, {} bytes)", op.id(), op.len()),
            Output::Transmit(op) => write!(f, "Transmit({:?}, {} bytes)", op.id(), op.len()),
            Output::TransmitBatch(op) => write!(f, "TransmitBatch({} sends)", op.len()),
            Output::Detach(op) => write!(f, "Detach({:?})", op.id()),
            Output::Connect(op) => write!(f, "Connect({:?}, {})", op.id(), op.addr()),
            Output::FinishConnect(op) => write!(f, "FinishConnect({:?})", op.id()),
            Output::Configure { id, options } => write!(f, "Configure({id:?}, {options:?})"),
            Output::SetInterest { id, interest } => write!(f, "SetInterest({id:?}, {interest:?})"),
            Output::Close { id } => write!(f, "Close({id:?})"),
            Output::Abort { id } => write!(f, "Abort({id:?})"),
            Output::ShutdownWrite { id } => write!(f, "ShutdownWrite({id:?})"),
            Output::PauseAccept { listener } => write!(f, "PauseAccept({listener})"),
            Output::ResumeAccept { listener } => write!(f, "ResumeAccept({listener})"),
            Output::Shutdown => f.write_str("Shutdown"),
        }
    }
}

/// Accept one connection on [`Accept::listener`], then report exactly one of
/// [`Accept::done`], [`Accept::would_block`] (EAGAIN; also what dropping it means) or
/// [`Accept::failed`].
#[must_use = "an operation dropped unreported counts as \"would block\""]
pub struct Accept<'a, H: Events, S: SlotStorage<H::Context>, B: ByteStorage> {
    engine: &'a mut Engine<H, S, B>,
    listener: ListenerId,
    reported: bool,
}

impl<'a, H: Events, S: SlotStorage<H::Context>, B: ByteStorage> Accept<'a, H, S, B> {
    pub(crate) fn new(engine: &'a mut Engine<H, S, B>, listener: ListenerId) -> Self {
        Accept {
            engine,
            listener,
            reported: false,
        }
    }

    /// The listener to accept on.
    pub fn listener(&self) -> ListenerId {
        self.listener
    }

    /// A connection was accepted, with its own local address and its peer's. The engine
    /// opens it and calls `opened`; register the socket with the poller under the
    /// returned id with read interest before the next engine call.
    ///
    /// # Errors
    ///
    /// [`Refused`]: close the socket at once (the pool is full, or the server is
    /// shutting down). The engine counts it.
    pub fn done(mut self, local: Addr, peer: Addr) -> Result<ConnId, Refused> {
        self.reported = true;
        self.engine.accepted(self.listener, local, peer)
    }

    /// Accepting would block (EAGAIN): the backlog is empty.
    pub fn would_block(self) {}

    /// A connection was accepted and handed to another loop of the server, whose
    /// driver adopts it there ([`Engine::handle_adopt`]): this loop counts it and goes
    /// on accepting, as after [`Accept::done`].
    pub fn handed_off(mut self) {
        self.reported = true;
        self.engine.accepted_elsewhere(self.listener);
    }

    /// Accepting failed. For [`AcceptError::Exhausted`] and [`AcceptError::Other`] the
    /// engine pauses the listener (`Output::PauseAccept`) for a back-off that doubles on
    /// each failure in a row, then resumes it from [`Engine::handle_time`]: no busy loop
    /// while descriptors are short. For [`AcceptError::Aborted`] it goes on accepting.
    pub fn failed(mut self, error: AcceptError) {
        self.reported = true;
        self.engine.accept_failed(self.listener, error);
    }
}

impl<H: Events, S: SlotStorage<H::Context>, B: ByteStorage> Drop for Accept<'_, H, S, B> {
    fn drop(&mut self) {
        if !self.reported {
            self.engine.accept_blocked(self.listener);
        }
    }
}

/// Read once from [`Read::id`]'s socket into [`Read::buf`], then report exactly one of
/// [`Read::done`] (what `read(2)` returned: a count, 0 at end of stream),
/// [`Read::would_block`] (EAGAIN or EINTR; also what dropping it means) or
/// [`Read::failed`].
#[must_use = "an operation dropped unreported counts as \"would block\""]
pub struct Read<'a, H: Events, S: SlotStorage<H::Context>, B: ByteStorage> {
    engine: &'a mut Engine<H, S, B>,
    id: ConnId,
    slot: u32,
    scratch: bool,
    range: Range<usize>,
    reported: bool,
}

impl<'a, H: Events, S: SlotStorage<H::Context>, B: ByteStorage> Read<'a, H, S, B> {
    pub(crate) fn new(
        engine: &'a mut Engine<H, S, B>,
        id: ConnId,
        slot: u32,
        scratch: bool,
        range: Range<usize>,
    ) -> Self {
        Read {
            engine,
            id,
            slot,
            scratch,
            range,
            reported: false,
        }
    }

    /// The connection to read from.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The most bytes this read takes.
    pub fn len(&self) -> usize {
        self.range.len()
    }

    /// Whether the buffer is empty (never: the engine asks for a read only with room).
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }

    /// Where the bytes go: lent by the engine until the report.
    pub fn buf(&mut self) -> &mut [u8] {
        self.engine.bytes_mut(self.range.clone())
    }

    /// The read returned `n`: that many bytes are in the buffer, and the engine calls
    /// `data` with them (after any unconsumed input); 0 is the end of the stream, after
    /// which the engine flushes pending output and closes the connection. A count
    /// larger than the buffer is a driver bug: it is cut to the buffer (and fails a
    /// debug assertion).
    pub fn done(mut self, n: usize) {
        debug_assert!(n <= self.range.len(), "read {n} into {}", self.range.len());
        self.reported = true;
        let n = n.min(self.range.len());
        self.engine
            .read_done(self.slot, self.scratch, self.range.len(), n);
    }

    /// Nothing to read now (EAGAIN).
    pub fn would_block(self) {}

    /// The read failed: the connection is closed at once (its pending output cannot be
    /// sent) and `closed` gets the error.
    pub fn failed(mut self, error: IoError) {
        self.reported = true;
        self.engine.io_failed(self.slot, error, None);
    }
}

impl<H: Events, S: SlotStorage<H::Context>, B: ByteStorage> Drop for Read<'_, H, S, B> {
    fn drop(&mut self) {
        if !self.reported {
            self.engine.read_blocked(self.slot);
        }
    }
}

/// Write [`Transmit::bytes`] (all or a prefix) to [`Transmit::id`]'s socket once, then
/// report exactly one of [`Transmit::done`], [`Transmit::would_block`] (EAGAIN or
/// EINTR; also what dropping it means) or [`Transmit::failed`].
#[must_use = "an operation dropped unreported counts as \"would block\""]
pub struct Transmit<'a, H: Events, S: SlotStorage<H::Context>, B: ByteStorage> {
    engine: &'a mut Engine<H, S, B>,
    id: ConnId,
    slot: u32,
    range: Range<usize>,
    /// The bytes are the handler's transport's (a transformed connection), not the
    /// engine's buffers'.
    transport: bool,
    reported: bool,
}

impl<'a, H: Events, S: SlotStorage<H::Context>, B: ByteStorage> Transmit<'a, H, S, B> {
    pub(crate) fn new(
        engine: &'a mut Engine<H, S, B>,
        id: ConnId,
        slot: u32,
        range: Range<usize>,
        transport: bool,
    ) -> Self {
        Transmit {
            engine,
            id,
            slot,
            range,
            transport,
            reported: false,
        }
    }

    /// The connection to write to.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The number of bytes to write.
    pub fn len(&self) -> usize {
        self.range.len()
    }

    /// Whether there is nothing to write (never: the engine asks only with output
    /// pending).
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }

    /// The bytes to write.
    pub fn bytes(&mut self) -> &[u8] {
        if self.transport {
            return self.engine.transport_outgoing(self.slot);
        }
        self.engine.bytes(self.range.clone())
    }

    /// The socket took the first `n` bytes. The rest stays pending; a short write means
    /// the socket is full, so the engine waits for writability before it writes again.
    /// A count larger than what was given is a driver bug: it is cut (and fails a
    /// debug assertion).
    pub fn done(mut self, n: usize) {
        debug_assert!(n <= self.range.len(), "wrote {n} of {}", self.range.len());
        self.reported = true;
        let n = n.min(self.range.len());
        if self.transport {
            self.engine.transformed_sent(self.slot, self.range.len(), n);
        } else {
            self.engine.transmit_done(self.slot, self.range.len(), n);
        }
    }

    /// The socket took nothing (EAGAIN).
    pub fn would_block(self) {}

    /// The write failed: the connection is closed at once (its pending output cannot be
    /// sent) and `closed` gets the error.
    pub fn failed(mut self, error: IoError) {
        self.reported = true;
        self.engine
            .io_failed(self.slot, error, Some(self.range.len()));
    }
}

impl<H: Events, S: SlotStorage<H::Context>, B: ByteStorage> Drop for Transmit<'_, H, S, B> {
    fn drop(&mut self) {
        if !self.reported {
            if self.transport {
                self.engine.transformed_sent(self.slot, self.range.len(), 0);
            } else {
                self.engine.transmit_blocked(self.slot, self.range.len());
            }
        }
    }
}

/// Write to each of [`TransmitBatch::len`] connections once: entry `k`'s bytes
/// ([`TransmitBatch::bytes`], all or a prefix) to [`TransmitBatch::id`]'s socket, then
/// report for it exactly one of [`TransmitBatch::done`], [`TransmitBatch::would_block`]
/// (EAGAIN or EINTR; also what leaving it unreported means) or
/// [`TransmitBatch::failed`], as for a [`Transmit`].
///
/// The engine hands a turn's sends over together when
/// [`Config::batch_sends`](crate::Config::batch_sends) is on, so that a driver can
/// make them in one system call (evio-os on Linux submits them to an io_uring at once).
/// Every entry's bytes are lent until the operation is dropped, so all of them can be
/// in the kernel's hands at the same time; entries are distinct connections, and may
/// be performed and reported in any order, interleaved or not. A report runs no
/// handler: what a drained output owes (`drained`, input that waited for the room)
/// runs when the operation is dropped, after every entry is accounted for.
#[must_use = "an operation dropped unreported counts as \"would block\" for each entry"]
pub struct TransmitBatch<'a, H: Events, S: SlotStorage<H::Context>, B: ByteStorage> {
    engine: &'a mut Engine<H, S, B>,
    /// One bit per entry reported.
    reported: u64,
    /// One bit per entry whose output drained with someone waiting: they hear of it
    /// when the batch is over.
    drained: u64,
}

impl<'a, H: Events, S: SlotStorage<H::Context>, B: ByteStorage> TransmitBatch<'a, H, S, B> {
    pub(crate) fn new(engine: &'a mut Engine<H, S, B>) -> Self {
        const { assert!(MAX_BATCH <= 64, "one bit per entry in `reported`") };
        TransmitBatch {
            engine,
            reported: 0,
            drained: 0,
        }
    }

    /// The number of entries (at least 2, at most [`MAX_BATCH`]).
    pub fn len(&self) -> usize {
        self.engine.batch().len()
    }

    /// Whether there are no entries (never).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The connection entry `k` writes to.
    ///
    /// # Panics
    ///
    /// If `k` is not below [`TransmitBatch::len`].
    pub fn id(&self, k: usize) -> ConnId {
        self.engine.batch_id(k)
    }

    /// The bytes entry `k` writes, lent until the operation is dropped.
    ///
    /// # Panics
    ///
    /// If `k` is not below [`TransmitBatch::len`].
    pub fn bytes(&self, k: usize) -> &[u8] {
        self.engine.batch_bytes(k)
    }

    /// Entry `k`'s socket took the first `n` of its bytes, as [`Transmit::done`]. A
    /// second report for an entry is a driver bug: it is ignored (and fails a debug
    /// assertion).
    ///
    /// # Panics
    ///
    /// If `k` is not below [`TransmitBatch::len`].
    pub fn done(&mut self, k: usize, n: usize) {
        if self.take(k) && self.engine.batch_sent(k, n) {
            self.drained |= 1 << k;
        }
    }

    /// Entry `k`'s socket took nothing (EAGAIN), as [`Transmit::would_block`].
    ///
    /// # Panics
    ///
    /// If `k` is not below [`TransmitBatch::len`].
    pub fn would_block(&mut self, k: usize) {
        if self.take(k) {
            self.engine.batch_sent(k, 0);
        }
    }

    /// Entry `k`'s write failed, as [`Transmit::failed`].
    ///
    /// # Panics
    ///
    /// If `k` is not below [`TransmitBatch::len`].
    pub fn failed(&mut self, k: usize, error: IoError) {
        if self.take(k) {
            self.engine.batch_failed(k, error);
        }
    }

    /// Marks entry `k` reported: `false` if it was already.
    fn take(&mut self, k: usize) -> bool {
        assert!(k < self.len(), "batch entry {k} of {}", self.len());
        let bit = 1u64 << k;
        let first = self.reported & bit == 0;
        debug_assert!(first, "batch entry {k} reported twice");
        self.reported |= bit;
        first
    }
}

impl<H: Events, S: SlotStorage<H::Context>, B: ByteStorage> Drop for TransmitBatch<'_, H, S, B> {
    fn drop(&mut self) {
        for k in 0..self.len() {
            if self.reported & (1u64 << k) == 0 {
                self.engine.batch_sent(k, 0);
            }
        }
        // Handlers run now that every send is accounted for.
        for k in 0..self.len() {
            if self.drained & (1u64 << k) != 0 {
                self.engine.batch_drained(k);
            }
        }
    }
}

/// Detach [`Detach::id`]: remove its socket from the poller, make it blocking, wrap it,
/// and hand it over with [`Detach::done`]; or report [`Detach::failed`] (also what
/// dropping it means) if that cannot be done.
#[must_use = "an operation dropped unreported counts as a detach that failed"]
pub struct Detach<'a, H: Events, S: SlotStorage<H::Context>, B: ByteStorage> {
    engine: &'a mut Engine<H, S, B>,
    id: ConnId,
    slot: u32,
    reported: bool,
}

impl<'a, H: Events, S: SlotStorage<H::Context>, B: ByteStorage> Detach<'a, H, S, B> {
    pub(crate) fn new(engine: &'a mut Engine<H, S, B>, id: ConnId, slot: u32) -> Self {
        Detach {
            engine,
            id,
            slot,
            reported: false,
        }
    }

    /// The connection to detach.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The socket, out of the poller and blocking, wrapped in `socket`. The engine
    /// calls `detached`; if the handler does not take the socket, the driver closes it
    /// (drops it) and the engine calls `closed` instead. An empty `socket` counts as
    /// [`Detach::failed`].
    pub fn done(mut self, socket: Detached<'_>) {
        self.reported = true;
        self.engine.detach_done(self.slot, socket);
    }

    /// The socket could not be handed over (it failed to leave the poller or to become
    /// blocking; the driver closes it): the connection ends in `closed` with an I/O
    /// error.
    pub fn failed(self) {}
}

impl<H: Events, S: SlotStorage<H::Context>, B: ByteStorage> Drop for Detach<'_, H, S, B> {
    fn drop(&mut self) {
        if !self.reported {
            self.engine.detach_failed(self.slot);
        }
    }
}

/// Start connecting [`Connect::id`] to [`Connect::addr`]: open a non-blocking socket of
/// its family and `connect(2)` it, then report exactly one of [`Connect::started`]
/// (the connect is under way, or already done) or [`Connect::failed`] (also what
/// dropping it means).
#[must_use = "an operation dropped unreported counts as a connect that failed"]
pub struct Connect<'a, H: Events, S: SlotStorage<H::Context>, B: ByteStorage> {
    engine: &'a mut Engine<H, S, B>,
    id: ConnId,
    slot: u32,
    reported: bool,
}

impl<'a, H: Events, S: SlotStorage<H::Context>, B: ByteStorage> Connect<'a, H, S, B> {
    pub(crate) fn new(engine: &'a mut Engine<H, S, B>, id: ConnId, slot: u32) -> Self {
        Connect {
            engine,
            id,
            slot,
            reported: false,
        }
    }

    /// The connection to connect.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// Where to connect.
    pub fn addr(&self) -> ConnectAddr<'_> {
        self.engine.connect_addr(self.slot)
    }

    /// The socket exists and `connect` returned EINPROGRESS (or succeeded at once):
    /// register it with the poller under [`Connect::id`] with [`Interest::WRITE`]
    /// before the next engine call. The engine asks for the outcome with
    /// [`Output::FinishConnect`] once the poller reports it writable or hung up.
    pub fn started(mut self) {
        self.reported = true;
        self.engine.connect_started(self.slot);
    }

    /// No socket could be opened, or `connect` failed at once (ECONNREFUSED, ENOENT,
    /// EMFILE, a unix socket's full backlog: EAGAIN, …); the driver keeps no socket for
    /// it. The handler's `closed` runs with [`CloseError::Connect`].
    ///
    /// [`CloseError::Connect`]: crate::CloseError::Connect
    pub fn failed(mut self, error: IoError) {
        self.reported = true;
        self.engine.connect_failed_at_once(self.slot, error);
    }
}

impl<H: Events, S: SlotStorage<H::Context>, B: ByteStorage> Drop for Connect<'_, H, S, B> {
    fn drop(&mut self) {
        if !self.reported {
            self.engine
                .connect_failed_at_once(self.slot, IoError::new(IoErrorKind::Other));
        }
    }
}

/// Learn how [`FinishConnect::id`]'s connect ended (`getsockopt(SO_ERROR)`), then report
/// exactly one of [`FinishConnect::done`] (no error: connected), [`FinishConnect::failed`]
/// or [`FinishConnect::in_progress`] (not decided yet; also what dropping it means).
#[must_use = "an operation dropped unreported counts as a connect still in progress"]
pub struct FinishConnect<'a, H: Events, S: SlotStorage<H::Context>, B: ByteStorage> {
    engine: &'a mut Engine<H, S, B>,
    id: ConnId,
    slot: u32,
    reported: bool,
}

impl<'a, H: Events, S: SlotStorage<H::Context>, B: ByteStorage> FinishConnect<'a, H, S, B> {
    pub(crate) fn new(engine: &'a mut Engine<H, S, B>, id: ConnId, slot: u32) -> Self {
        FinishConnect {
            engine,
            id,
            slot,
            reported: false,
        }
    }

    /// The connection.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// It is connected, with this local address (`getsockname`; [`Addr::Unix`] for a
    /// unix socket). The engine opens it and calls `opened`; keep the socket registered
    /// (the engine sets the interest it needs next).
    pub fn done(mut self, local: Addr) {
        self.reported = true;
        self.engine.connect_done(self.slot, local);
    }

    /// The connect failed with `error` (the socket's pending error). Keep the socket:
    /// the engine closes it with [`Output::Close`], then calls `closed` with
    /// [`CloseError::Connect`](crate::CloseError::Connect).
    pub fn failed(mut self, error: IoError) {
        self.reported = true;
        self.engine.connect_check_failed(self.slot, error);
    }

    /// No outcome yet (a report that came early): the engine waits for the next.
    pub fn in_progress(self) {}
}

impl<H: Events, S: SlotStorage<H::Context>, B: ByteStorage> Drop for FinishConnect<'_, H, S, B> {
    fn drop(&mut self) {
        if !self.reported {
            self.engine.connect_in_progress(self.slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interest_is_two_independent_wishes() {
        for (interest, read, write) in [
            (Interest::NONE, false, false),
            (Interest::READ, true, false),
            (Interest::WRITE, false, true),
            (Interest::READ_WRITE, true, true),
        ] {
            assert_eq!(interest, Interest::new(read, write));
            assert_eq!(
                (interest.is_readable(), interest.is_writable()),
                (read, write)
            );
        }
        assert_eq!(Interest::default(), Interest::NONE);
    }
}
