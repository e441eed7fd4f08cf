//! What a handler method reaches: [`Conn`], the connection it was called for, and
//! [`Loop`], the time and every open connection.

use core::fmt;
use core::time::Duration;

use crate::buffers::{BufState, OutputArea, OutputTarget};
use crate::lists::Queue;
use crate::slot::{Flags, Slot, SlotState};
use crate::timers::Timers;
use crate::{ConnId, ConnInfo, Instant, Options, OutputFull, Waker};

/// Why an operation on another connection was refused: it is not open.
///
/// The id is unknown, stale (its slot was reused), or its connection is closed or on
/// its way out (closing, detaching). Nothing was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NotOpen(pub ConnId);

impl fmt::Display for NotOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection {} is not open", self.0)
    }
}

impl core::error::Error for NotOpen {}

/// Why a whole write to another connection was refused; nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WriteError {
    /// The connection is not open.
    NotOpen(NotOpen),
    /// Its output buffer has too little room.
    Full(OutputFull),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::NotOpen(e) => write!(f, "{e}"),
            WriteError::Full(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for WriteError {}

/// The loop, as a handler method sees it: the time, the wake handle, and every open
/// connection by id.
///
/// From any callback the handler can write to any open connection, close, detach,
/// abort it or set its timeout (a [`Conn`] reaches the loop through
/// [`Conn::others`]).
///
/// Writes are bounded by the target's output room, exactly as [`Conn::write_some`]
/// is: nothing is buffered outside the engine, and a connection that does not read
/// fills up and refuses more (see [`Events::drained`](crate::Events::drained) to learn
/// when it has room again).
pub struct Loop<'a, C> {
    pub(crate) now: Instant,
    pub(crate) slots: &'a mut [Slot<C>],
    pub(crate) out: OutputArea<'a>,
    pub(crate) attention: &'a mut Queue,
    pub(crate) timers: &'a mut Timers,
    pub(crate) waker: Option<&'a Waker>,
    /// The connection a [`Conn`] is for (`u32::MAX`: none).
    pub(crate) current: u32,
    /// Where its output goes this call.
    pub(crate) current_target: OutputTarget,
    /// Its buffer state, held here for the call (the slot's copy is stale until the
    /// engine puts this back): the handler's own writes touch no slot.
    pub(crate) current_bufs: BufState,
    /// Cross-connection changes take effect (a shutdown closes everyone instead).
    pub(crate) running: bool,
}

/// No connection is current (a server-level callback).
pub(crate) const NO_CURRENT: u32 = u32::MAX;

impl<C> fmt::Debug for Loop<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loop")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl<'a, C> Loop<'a, C> {
    /// The time of this turn of the loop (the driver's clock when its wait ended).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The wake handle, if the driver provides one (evio-os and evio-sim always do).
    pub fn waker(&self) -> Option<&Waker> {
        self.waker
    }

    /// The slot of `id` while its connection is open (not closing or detaching).
    fn open_slot(&self, id: ConnId) -> Result<u32, NotOpen> {
        match self.slots.get(id.slot()) {
            Some(s) if s.info.id == id && s.state == SlotState::Open => Ok(id.slot() as u32),
            _ => Err(NotOpen(id)),
        }
    }

    /// `true` while `id` is open: not closed, closing, detaching, or stale.
    ///
    /// Every operation on another connection checks this itself and says [`NotOpen`];
    /// ask first to skip work meant for a connection that has gone.
    ///
    /// ```
    /// use std::sync::mpsc::Receiver;
    ///
    /// use evio_proto::{ConnId, Duration, Events, Loop, Tick};
    ///
    /// /// Delivers what worker threads computed for clients; a result for a client that
    /// /// has left is dropped before it is formatted.
    /// struct Results {
    ///     done: Receiver<(ConnId, Vec<f64>)>,
    /// }
    ///
    /// impl Events for Results {
    ///     type Context = ();
    ///     fn tick(&mut self, others: &mut Loop<'_, ()>) -> Tick {
    ///         while let Ok((id, values)) = self.done.try_recv() {
    ///             if !others.is_open(id) {
    ///                 continue; // gone, or its slot holds another client by now
    ///             }
    ///             let line = format!("{values:?}\r\n");
    ///             if others.write(id, line.as_bytes()).is_err() {
    ///                 let _ = others.close(id); // it cannot take its result
    ///             }
    ///         }
    ///         Tick::after(Duration::from_millis(10))
    ///     }
    /// }
    /// ```
    pub fn is_open(&self, id: ConnId) -> bool {
        self.open_slot(id).is_ok()
    }

    fn target(&self, index: u32) -> OutputTarget {
        if index == self.current {
            self.current_target
        } else {
            self.out.target(index)
        }
    }

    fn bufs(&self, index: u32) -> &BufState {
        if index == self.current {
            &self.current_bufs
        } else {
            &self.slots[index as usize].bufs
        }
    }

    /// Bytes of output that still fit for `id`.
    ///
    /// Nothing else writes to `id` while a handler method runs, so room enough for
    /// several writes in the same call means they all fit.
    ///
    /// # Errors
    ///
    /// [`NotOpen`] if `id` is not open.
    ///
    /// # Example
    ///
    /// ```
    /// use evio_proto::{ConnId, Loop, NotOpen};
    ///
    /// /// Sends `body` to `to` as one frame (a 4-byte length, then the bytes), or not at
    /// /// all: `Ok(false)` if its output has no room for the whole frame.
    /// fn send_frame<C>(others: &mut Loop<'_, C>, to: ConnId, body: &[u8]) -> Result<bool, NotOpen> {
    ///     let len = u32::try_from(body.len())
    ///         .expect("frame too long")
    ///         .to_be_bytes();
    ///     if others.room(to)? < len.len() + body.len() {
    ///         return Ok(false); // half a frame would corrupt the stream
    ///     }
    ///     others.write_some(to, &len)?;
    ///     others.write_some(to, body)?;
    ///     Ok(true)
    /// }
    /// ```
    pub fn room(&self, id: ConnId) -> Result<usize, NotOpen> {
        let i = self.open_slot(id)?;
        Ok(self.out.room(self.bufs(i), self.target(i)))
    }

    /// Bytes written to `id` and not yet taken by its socket, while its connection still
    /// has one (open, or closing or detaching with output to flush); `None` once it is
    /// gone or `id` is stale. A handler can use it to find peers that fall behind.
    ///
    /// ```
    /// use evio_proto::{ConnId, Duration, Events, Loop, Tick};
    ///
    /// /// Publishes the latest price to every subscriber ten times a second. A subscriber
    /// /// that has not taken the previous price yet skips this one: it gets a fresh price
    /// /// late rather than a growing backlog of stale ones.
    /// struct Feed {
    ///     subscribers: Vec<ConnId>, // kept by `opened` and `closed`
    ///     price: u64,
    /// }
    ///
    /// impl Events for Feed {
    ///     type Context = ();
    ///     fn tick(&mut self, others: &mut Loop<'_, ()>) -> Tick {
    ///         let line = format!("PRICE {}\r\n", self.price);
    ///         for &id in &self.subscribers {
    ///             if others.pending(id) == Some(0) {
    ///                 let _ = others.write(id, line.as_bytes());
    ///             }
    ///         }
    ///         Tick::after(Duration::from_millis(100))
    ///     }
    /// }
    /// ```
    pub fn pending(&self, id: ConnId) -> Option<usize> {
        let slot = self.slots.get(id.slot())?;
        if slot.info.id != id || !slot.state.is_live() {
            return None;
        }
        let i = id.slot() as u32;
        Some(self.out.pending(self.bufs(i), self.target(i)))
    }

    /// Appends as much of `bytes` to `id`'s output as fits and returns how many bytes
    /// that was; the engine sends them after anything written before.
    ///
    /// # Errors
    ///
    /// [`NotOpen`] if `id` is not open.
    ///
    /// # Example
    ///
    /// ```
    /// use evio_proto::{Action, Conn, ConnId, Events};
    ///
    /// /// Copies what every client sends to a monitor (the first connection to send
    /// /// `MONITOR\n`), as much as the monitor's output buffer takes: what does not fit is
    /// /// counted, not queued, so a slow monitor never holds the clients up.
    /// #[derive(Default)]
    /// struct Tap {
    ///     monitor: Option<ConnId>,
    ///     dropped: u64,
    /// }
    ///
    /// impl Events for Tap {
    ///     type Context = ();
    ///     fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
    ///         let me = conn.id();
    ///         match self.monitor {
    ///             Some(monitor) if monitor == me => {} // the monitor only listens
    ///             Some(monitor) => match conn.others().write_some(monitor, input) {
    ///                 Ok(n) => self.dropped += (input.len() - n) as u64,
    ///                 Err(_) => self.monitor = None, // the monitor has gone
    ///             },
    ///             None if input == b"MONITOR\n" => self.monitor = Some(me),
    ///             None => {}
    ///         }
    ///         // ... then handle `input` as usual ...
    ///         Action::None
    ///     }
    /// }
    /// ```
    pub fn write_some(&mut self, id: ConnId, bytes: &[u8]) -> Result<usize, NotOpen> {
        let i = self.open_slot(id)?;
        let n = self.append(i, bytes, true);
        if n > 0 && i != self.current {
            self.wake_up(i);
        }
        Ok(n)
    }

    /// Appends all of `bytes` to `id`'s output, or nothing.
    ///
    /// # Errors
    ///
    /// [`WriteError::NotOpen`] if `id` is not open, [`WriteError::Full`] if fewer than
    /// `bytes.len()` bytes fit (nothing is written then).
    ///
    /// # Example
    ///
    /// ```
    /// use evio_proto::{ConnId, Duration, Events, Loop, Tick};
    ///
    /// /// Sends every client a heartbeat line each second, whole or not at all, so a
    /// /// heartbeat never cuts into the middle of another message.
    /// struct Heartbeat {
    ///     clients: Vec<ConnId>, // kept by `opened` and `closed`
    /// }
    ///
    /// impl Events for Heartbeat {
    ///     type Context = ();
    ///     fn tick(&mut self, others: &mut Loop<'_, ()>) -> Tick {
    ///         for &id in &self.clients {
    ///             // Refused whole if it does not fit: that client is busy receiving
    ///             // other output, and needs no heartbeat.
    ///             let _ = others.write(id, b"PING\r\n");
    ///         }
    ///         Tick::after(Duration::from_secs(1))
    ///     }
    /// }
    /// ```
    pub fn write(&mut self, id: ConnId, bytes: &[u8]) -> Result<(), WriteError> {
        let i = self.open_slot(id).map_err(WriteError::NotOpen)?;
        let room = self.out.room(self.bufs(i), self.target(i));
        if bytes.len() > room {
            self.backed_up(i);
            return Err(WriteError::Full(OutputFull {
                needed: bytes.len(),
                room,
            }));
        }
        self.append(i, bytes, false);
        if !bytes.is_empty() && i != self.current {
            self.wake_up(i);
        }
        Ok(())
    }

    /// A write to slot `i` did not fit: `drained` is owed once its output is out. (For
    /// the current connection the engine marks it after the call.)
    fn backed_up(&mut self, i: u32) {
        if i != self.current {
            self.slots[i as usize].flags.insert(Flags::BACKED_UP);
        }
    }

    /// Appends `bytes` (or with `cut` what fits of them) to slot `i`'s output; returns
    /// how much. A write cut short marks the output backed up.
    fn append(&mut self, i: u32, bytes: &[u8], cut: bool) -> usize {
        if i == self.current {
            return self.append_current(bytes, cut);
        }
        let target = self.out.target(i);
        let slot = &mut self.slots[i as usize];
        let room = self.out.room(&slot.bufs, target);
        let n = if cut {
            bytes.len().min(room)
        } else {
            bytes.len()
        };
        if n < bytes.len() {
            slot.flags.insert(Flags::BACKED_UP);
        }
        self.out.append(i, &mut slot.bufs, target, &bytes[..n]);
        n
    }

    /// Appends to the current connection's output: the path every reply takes.
    #[inline(always)]
    fn append_current(&mut self, bytes: &[u8], cut: bool) -> usize {
        let target = self.current_target;
        let n = if cut {
            bytes.len().min(self.out.room(&self.current_bufs, target))
        } else {
            bytes.len()
        };
        self.out
            .append(self.current, &mut self.current_bufs, target, &bytes[..n]);
        n
    }

    /// Slot `i` has something new to do.
    fn wake_up(&mut self, i: u32) {
        if self.running {
            self.attention.push_back(self.slots, i);
        }
    }

    /// Closes `id` once its pending output is flushed; `closed` follows (this is
    /// [`Action::Close`](crate::Action::Close) for another connection).
    ///
    /// # Errors
    ///
    /// [`NotOpen`] if `id` is not open.
    ///
    /// # Example
    ///
    /// ```
    /// use evio_proto::{Action, CloseError, Conn, ConnId, ConnInfo, Events, Flow, Loop};
    ///
    /// /// One admin session at a time: a connection to the admin listener (the second
    /// /// address given) replaces the current session, which is told why and closed
    /// /// once that line has been sent.
    /// #[derive(Default)]
    /// struct Admin {
    ///     session: Option<ConnId>,
    /// }
    ///
    /// impl Events for Admin {
    ///     type Context = ();
    ///     fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
    ///         if conn.info().listener.index() == 1 {
    ///             if let Some(old) = self.session.replace(conn.id()) {
    ///                 let others = conn.others();
    ///                 let _ = others.write(old, b"replaced by a new session\r\n");
    ///                 let _ = others.close(old); // after the line above is flushed
    ///             }
    ///         }
    ///         Action::None
    ///     }
    ///     fn closed(
    ///         &mut self,
    ///         info: &ConnInfo,
    ///         _: (),
    ///         _: Option<CloseError>,
    ///         _: &mut Loop<'_, ()>,
    ///     ) -> Flow {
    ///         if self.session == Some(info.id) {
    ///             self.session = None;
    ///         }
    ///         Flow::Continue
    ///     }
    /// }
    /// ```
    pub fn close(&mut self, id: ConnId) -> Result<(), NotOpen> {
        let i = self.open_slot(id)?;
        let slot = &mut self.slots[i as usize];
        slot.state = SlotState::Closing;
        slot.flags.insert(Flags::HANDLER_DONE);
        self.wake_up(i);
        Ok(())
    }

    /// Detaches `id` once its pending output is flushed (this is
    /// [`Action::Detach`](crate::Action::Detach) for another connection):
    /// [`Events::detached`](crate::Events::detached) follows.
    ///
    /// # Errors
    ///
    /// [`NotOpen`] if `id` is not open.
    ///
    /// # Example
    ///
    /// ```
    /// use std::any::Any;
    /// use std::sync::mpsc::Sender;
    ///
    /// use evio_proto::{Action, Conn, ConnId, ConnInfo, Detached, Events, Flow, Loop};
    ///
    /// /// Pairs clients two by two and hands both sockets of each pair to a worker
    /// /// thread that relays between them with blocking I/O. `S` is the driver's socket
    /// /// type (`DetachedSocket` under evio-os).
    /// struct Pairing<S> {
    ///     waiting: Option<ConnId>,
    ///     pair: u64,
    ///     worker: Sender<(u64, S)>, // the worker matches sockets by pair number
    /// }
    ///
    /// impl<S: Any> Events for Pairing<S> {
    ///     type Context = u64; // the connection's pair number
    ///     fn opened(&mut self, conn: &mut Conn<'_, u64>) -> Action {
    ///         *conn.context() = self.pair;
    ///         match self.waiting.take() {
    ///             // Both leave the loop, each once its own output is flushed.
    ///             Some(partner) if conn.others().detach(partner).is_ok() => {
    ///                 self.pair += 1;
    ///                 Action::Detach
    ///             }
    ///             // No partner yet (or it has just left): wait for one.
    ///             _ => {
    ///                 self.waiting = Some(conn.id());
    ///                 Action::None
    ///             }
    ///         }
    ///     }
    ///     fn detached(
    ///         &mut self,
    ///         _: &ConnInfo,
    ///         pair: &mut u64,
    ///         mut socket: Detached<'_>,
    ///         _: &mut Loop<'_, u64>,
    ///     ) -> Flow {
    ///         if let Some(socket) = socket.take::<S>() {
    ///             let _ = self.worker.send((*pair, socket));
    ///         }
    ///         Flow::Continue
    ///     }
    /// }
    /// ```
    pub fn detach(&mut self, id: ConnId) -> Result<(), NotOpen> {
        let i = self.open_slot(id)?;
        let slot = &mut self.slots[i as usize];
        slot.state = SlotState::Detaching;
        slot.flags.insert(Flags::HANDLER_DONE);
        self.wake_up(i);
        Ok(())
    }

    /// Closes `id` at once, discarding its pending output; the peer gets a reset (this
    /// is [`Action::Abort`](crate::Action::Abort) for another connection). For a peer
    /// that will not read; `closed` follows.
    ///
    /// # Errors
    ///
    /// [`NotOpen`] if `id` is not open.
    ///
    /// # Example
    ///
    /// ```
    /// use evio_proto::{ConnId, Duration, Events, Loop, Tick};
    ///
    /// /// Every second, resets subscribers with more than 256 KiB still unsent: they do
    /// /// not read, and closing them politely would wait for that output first.
    /// struct Slow {
    ///     subscribers: Vec<ConnId>, // kept by `opened` and `closed`
    /// }
    ///
    /// impl Events for Slow {
    ///     type Context = ();
    ///     fn tick(&mut self, others: &mut Loop<'_, ()>) -> Tick {
    ///         for &id in &self.subscribers {
    ///             if others.pending(id).is_some_and(|n| n > 256 * 1024) {
    ///                 let _ = others.abort(id);
    ///             }
    ///         }
    ///         Tick::after(Duration::from_secs(1))
    ///     }
    /// }
    /// ```
    pub fn abort(&mut self, id: ConnId) -> Result<(), NotOpen> {
        let i = self.open_slot(id)?;
        self.slots[i as usize]
            .flags
            .insert(Flags::ABORT | Flags::HANDLER_DONE);
        self.slots[i as usize].state = SlotState::Closing;
        self.wake_up(i);
        Ok(())
    }

    /// Sets (or with `None` cancels) `id`'s timeout: [`Events::timeout`] runs for it
    /// once `after` has passed from now (see [`Conn::set_timeout`]).
    ///
    /// [`Events::timeout`]: crate::Events::timeout
    ///
    /// # Errors
    ///
    /// [`NotOpen`] if `id` is not open.
    ///
    /// # Example
    ///
    /// ```
    /// use evio_proto::{Action, Conn, ConnId, Duration, Events, Flow, Loop};
    ///
    /// /// On a server wake (an operator's "drain" command, say), tells every client the
    /// /// server is going away and closes those still connected 10 seconds later.
    /// struct Drain {
    ///     clients: Vec<ConnId>, // kept by `opened` and `closed`
    /// }
    ///
    /// impl Events for Drain {
    ///     type Context = ();
    ///     fn server_woken(&mut self, others: &mut Loop<'_, ()>) -> Flow {
    ///         for &id in &self.clients {
    ///             let _ = others.write(id, b"server going down in 10 s\r\n");
    ///             let _ = others.set_timeout(id, Some(Duration::from_secs(10)));
    ///         }
    ///         Flow::Continue
    ///     }
    ///     fn timeout(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
    ///         Action::Close
    ///     }
    /// }
    /// ```
    pub fn set_timeout(&mut self, id: ConnId, after: Option<Duration>) -> Result<(), NotOpen> {
        let i = self.open_slot(id)?;
        self.set_deadline(i, after);
        Ok(())
    }

    /// When `id`'s timeout fires, if one is set and `id` is open.
    ///
    /// ```
    /// use evio_proto::{ConnId, Loop};
    ///
    /// /// How long `id` has left before its timeout, for a status report.
    /// fn time_left(others: &Loop<'_, ()>, id: ConnId) -> Option<core::time::Duration> {
    ///     let at = others.timeout_at(id)?;
    ///     Some(at.saturating_duration_since(others.now()))
    /// }
    /// ```
    pub fn timeout_at(&self, id: ConnId) -> Option<Instant> {
        let i = self.open_slot(id).ok()?;
        Timers::deadline(self.slots, i)
    }

    pub(crate) fn set_deadline(&mut self, i: u32, after: Option<Duration>) {
        let deadline = after.map(|d| self.now + d);
        self.timers.set(self.slots, i, deadline);
    }
}

/// One connection, as a handler method sees it: its addresses, its context, its output
/// buffer, and (through [`Conn::others`]) the rest of the loop.
///
/// Output written here is sent by the engine in order, after anything written before,
/// and is always flushed before a `Close` or `Detach` takes effect. The buffer holds at
/// most [`Config::output_capacity`](crate::Config::output_capacity) bytes not yet taken
/// by the socket; [`Conn::room`] says how much more fits. A write that does not fit is
/// refused whole ([`Conn::write`]) or cut to fit ([`Conn::write_some`]); nothing is
/// dropped silently, and while the buffer is full the engine stops reading this
/// connection (backpressure) and calls `data` again with the input the handler left
/// unconsumed once the socket has drained.
pub struct Conn<'a, C> {
    pub(crate) lp: Loop<'a, C>,
    pub(crate) context: &'a mut C,
    pub(crate) consumed: Option<usize>,
    pub(crate) hit_full: bool,
}

impl<C> fmt::Debug for Conn<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("info", self.info())
            .field("pending", &self.pending())
            .field("room", &self.room())
            .finish_non_exhaustive()
    }
}

impl<'a, C> Conn<'a, C> {
    /// The connection's id (keep it to [`Waker::wake`](crate::Waker::wake) it later, or
    /// to write to it from another connection's callback).
    pub fn id(&self) -> ConnId {
        self.info().id
    }

    /// Listener and addresses.
    pub fn info(&self) -> &ConnInfo {
        &self.lp.slots[self.lp.current as usize].info
    }

    /// The handler's per-connection state.
    pub fn context(&mut self) -> &mut C {
        self.context
    }

    /// The time of this turn of the loop (the driver's clock when its wait ended).
    ///
    /// ```
    /// use evio_proto::{Action, Conn, Duration, Events, Instant};
    ///
    /// /// Closes a connection that sends more than 1 MiB within one second.
    /// struct RateLimit;
    ///
    /// #[derive(Default)]
    /// struct Window {
    ///     start: Instant,
    ///     bytes: usize,
    /// }
    ///
    /// impl Events for RateLimit {
    ///     type Context = Window;
    ///     fn data(&mut self, conn: &mut Conn<'_, Window>, input: &[u8]) -> Action {
    ///         let now = conn.now();
    ///         let window = conn.context();
    ///         if now - window.start >= Duration::from_secs(1) {
    ///             window.start = now; // a new window
    ///             window.bytes = 0;
    ///         }
    ///         window.bytes += input.len();
    ///         if window.bytes > 1 << 20 {
    ///             return Action::Close;
    ///         }
    ///         // ... handle `input` ...
    ///         Action::None
    ///     }
    /// }
    /// ```
    pub fn now(&self) -> Instant {
        self.lp.now
    }

    /// The loop: every other open connection, by id.
    ///
    /// ```
    /// use evio_proto::{Action, CloseError, Conn, ConnId, ConnInfo, Events, Flow, Loop, WriteError};
    ///
    /// /// Sends what each client sends to every other client. A client too slow to
    /// /// take a message is disconnected, so the others never wait for it.
    /// #[derive(Default)]
    /// struct Room {
    ///     members: Vec<ConnId>,
    /// }
    ///
    /// impl Events for Room {
    ///     type Context = ();
    ///     fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
    ///         self.members.push(conn.id());
    ///         Action::None
    ///     }
    ///     fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
    ///         let me = conn.id();
    ///         let others = conn.others();
    ///         for &id in self.members.iter().filter(|&&id| id != me) {
    ///             if let Err(WriteError::Full(_)) = others.write(id, input) {
    ///                 let _ = others.abort(id);
    ///             }
    ///         }
    ///         Action::None
    ///     }
    ///     fn closed(
    ///         &mut self,
    ///         info: &ConnInfo,
    ///         _: (),
    ///         _: Option<CloseError>,
    ///         _: &mut Loop<'_, ()>,
    ///     ) -> Flow {
    ///         self.members.retain(|&id| id != info.id);
    ///         Flow::Continue
    ///     }
    /// }
    /// ```
    pub fn others(&mut self) -> &mut Loop<'a, C> {
        &mut self.lp
    }

    /// Sets this connection's timeout: [`Events::timeout`](crate::Events::timeout) runs
    /// once `after` has passed from now, unless it is set again (the new value
    /// replaces it; pushing it later on every request costs O(1)) or cancelled with
    /// `None`. One timeout per connection.
    ///
    /// ```
    /// use evio_proto::{Action, Conn, Duration, Events};
    ///
    /// /// Gives a client 5 seconds to finish a line once it has started one (so a client
    /// /// that trickles a byte at a time cannot hold a connection), and no limit between
    /// /// lines.
    /// struct LineDeadline {
    ///     lines: u64,
    /// }
    ///
    /// impl Events for LineDeadline {
    ///     type Context = bool; // a partial line waits, under its deadline
    ///     fn data(&mut self, conn: &mut Conn<'_, bool>, input: &[u8]) -> Action {
    ///         let whole = input.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    ///         self.lines += input[..whole].iter().filter(|&&b| b == b'\n').count() as u64;
    ///         conn.consume(whole); // the partial line comes back with the rest of it
    ///         let partial = whole < input.len();
    ///         if !partial {
    ///             conn.set_timeout(None);
    ///         } else if whole > 0 || !*conn.context() {
    ///             // A new line has started: its 5 seconds run from now, and more bytes
    ///             // of the same line do not push them back.
    ///             conn.set_timeout(Some(Duration::from_secs(5)));
    ///         }
    ///         *conn.context() = partial;
    ///         Action::None
    ///     }
    ///     fn timeout(&mut self, _conn: &mut Conn<'_, bool>) -> Action {
    ///         Action::Close
    ///     }
    /// }
    /// ```
    pub fn set_timeout(&mut self, after: Option<Duration>) {
        self.lp.set_deadline(self.lp.current, after);
    }

    /// When this connection's timeout fires, if one is set.
    ///
    /// ```
    /// use core::time::Duration;
    /// use evio_proto::{Action, Conn, Events};
    ///
    /// /// Gives each client 5 s to send its first byte, not pushed back by later ones.
    /// struct Deadline;
    /// impl Events for Deadline {
    ///     type Context = ();
    ///     fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
    ///         conn.set_timeout(Some(Duration::from_secs(5)));
    ///         Action::None
    ///     }
    ///     fn data(&mut self, conn: &mut Conn<'_, ()>, _: &[u8]) -> Action {
    ///         if conn.timeout_at().is_some() {
    ///             conn.set_timeout(None); // it made it in time
    ///         }
    ///         Action::None
    ///     }
    ///     fn timeout(&mut self, _: &mut Conn<'_, ()>) -> Action {
    ///         Action::Close
    ///     }
    /// }
    /// ```
    pub fn timeout_at(&self) -> Option<Instant> {
        Timers::deadline(self.lp.slots, self.lp.current)
    }

    /// This connection's socket options; a change is applied after the handler returns.
    pub fn options_mut(&mut self) -> &mut Options {
        let slot = &mut self.lp.slots[self.lp.current as usize];
        slot.flags.insert(Flags::CONFIGURE);
        &mut slot.options
    }

    /// Bytes of input buffer: the largest frame `data` can be given. A frame that does
    /// not fit can never be consumed: the engine answers a full buffer with nothing
    /// consumed by closing the connection (after the handler's reply is flushed; see
    /// [`CloseError::FrameTooLarge`](crate::CloseError::FrameTooLarge)).
    ///
    /// ```
    /// use evio_proto::{Action, Conn, Events};
    ///
    /// /// A line protocol that answers a line too long for the input buffer with an
    /// /// error, rather than being closed with `FrameTooLarge` without a word.
    /// struct Lines;
    ///
    /// impl Events for Lines {
    ///     type Context = ();
    ///     fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
    ///         let whole = input.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    ///         if whole == 0 && input.len() >= conn.input_capacity() {
    ///             // A full buffer and no end of line: this line can never be read whole.
    ///             let _ = conn.write(b"-ERR line too long\r\n");
    ///             return Action::Close;
    ///         }
    ///         // ... handle the lines in `input[..whole]` ...
    ///         conn.consume(whole);
    ///         Action::None
    ///     }
    /// }
    /// ```
    pub fn input_capacity(&self) -> usize {
        self.lp.out.input_capacity()
    }

    /// Bytes of output that still fit.
    pub fn room(&self) -> usize {
        self.lp
            .out
            .room(&self.lp.current_bufs, self.lp.current_target)
    }

    /// Bytes of output written and not yet taken by the socket.
    pub fn pending(&self) -> usize {
        self.lp
            .out
            .pending(&self.lp.current_bufs, self.lp.current_target)
    }

    /// Appends all of `bytes` to the output, or nothing.
    ///
    /// # Errors
    ///
    /// [`OutputFull`] if fewer than `bytes.len()` bytes of room are left; nothing is
    /// written then.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), OutputFull> {
        let room = self.room();
        if bytes.len() > room {
            self.hit_full = true;
            return Err(OutputFull {
                needed: bytes.len(),
                room,
            });
        }
        self.lp.append_current(bytes, false);
        Ok(())
    }

    /// Appends as much of `bytes` as fits and returns how many bytes that was.
    pub fn write_some(&mut self, bytes: &[u8]) -> usize {
        let n = self.lp.append_current(bytes, true);
        if n < bytes.len() {
            self.hit_full = true;
        }
        n
    }

    /// Runs `f`, and if it fails removes everything it wrote, so a reply made of several
    /// writes goes out whole or not at all.
    ///
    /// # Errors
    ///
    /// Whatever `f` returns.
    pub fn transaction<T, E>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, E>) -> Result<T, E> {
        let before = self.pending();
        let result = f(self);
        if result.is_err() {
            let lp = &mut self.lp;
            lp.out
                .truncate(lp.current, &mut lp.current_bufs, lp.current_target, before);
        }
        result
    }

    /// Says that only the first `n` bytes of this `data` call's input were used; the
    /// rest is kept and handed back first in the next `data` call. Without a call, all
    /// input counts as used. `n` larger than the input counts as all of it. Meaningless
    /// outside `data`.
    pub fn consume(&mut self, n: usize) {
        self.consumed = Some(n);
    }

    /// What [`Conn::consume`] said in this `data` call, if it was called (`None`: all
    /// of the input counts as used). For wrappers that watch a handler, such as a
    /// simulator's model learning which requests the handler applied.
    ///
    /// ```
    /// use evio_proto::{Action, Conn, Events};
    ///
    /// /// Wraps a handler and counts the input bytes it used.
    /// struct Counting<H>(H, u64);
    /// impl<H: Events<Context = ()>> Events for Counting<H> {
    ///     type Context = ();
    ///     fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
    ///         let action = self.0.data(conn, input);
    ///         self.1 += conn.consumed().unwrap_or(input.len()).min(input.len()) as u64;
    ///         action
    ///     }
    /// }
    /// ```
    pub fn consumed(&self) -> Option<usize> {
        self.consumed
    }
}

/// Formatting into the output (`write!(conn, …)`). A formatted write is made of several
/// pieces and one that does not fit fails with `fmt::Error` after the earlier pieces
/// went in: wrap it in [`Conn::transaction`] to make it all or nothing.
impl<C> fmt::Write for Conn<'_, C> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write(s.as_bytes()).map_err(|_| fmt::Error)
    }
}
