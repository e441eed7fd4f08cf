//! [`Loop`], a handler's handle to the other connections: what it tells of them and
//! the writes to them; and [`NotOpen`] and [`WriteError`], why it refused one.

use core::fmt;

use crate::buffers::{BufState, OutputArea, OutputTarget};
use crate::engine::life::{Life, Then};
use crate::lists::Queue;
use crate::pool::Pool;
use crate::post::{Loops, PostKind, Refusal};
use crate::slot::{Flags, Slot};
use crate::timers::Timers;
use crate::{Config, ConnId, Instant, OutputFull, Waker};

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
    /// A connection of another loop: the post could not be queued (its loop's inbox is
    /// full, or there is no such loop). Nothing was posted.
    Refused(Refusal),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::NotOpen(e) => write!(f, "{e}"),
            WriteError::Full(e) => write!(f, "{e}"),
            WriteError::Refused(e) => write!(f, "cannot post to another loop: {e}"),
        }
    }
}

impl core::error::Error for WriteError {}

/// Where a connection is in its life, as [`Loop::state`] tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnState {
    /// Outbound and not connected yet: it can be written to (the output waits), and
    /// its handler's `opened` runs once it connects.
    Connecting,
    /// Open: its handler is called for it, and it can be written to.
    Open,
    /// Closing once its pending output is sent (lingering first if its peer may still
    /// be sending). Its handler may still be answering a peer that ended its stream; a
    /// peer that stops reading is cut off after
    /// [`Config::send_timeout`](crate::Config::send_timeout).
    Closing,
    /// Detaching once its pending output is sent.
    Detaching,
    /// Being reset, its pending output discarded.
    Aborting,
}

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
///
/// [`Conn`]: crate::Conn
/// [`Conn::others`]: crate::Conn::others
/// [`Conn::write_some`]: crate::Conn::write_some
pub struct Loop<'a, C> {
    pub(crate) now: Instant,
    pub(crate) config: &'a Config,
    /// The free slots (taken by connects), the slots in use, pending unix paths.
    pub(crate) pool: &'a mut Pool,
    /// The connection whose drain the current one's unconsumed input waits for
    /// ([`Conn::wait_for`](crate::Conn::wait_for), or the last one a write was cut
    /// short for); `NO_CURRENT`: none.
    pub(crate) wait_on: u32,
    pub(crate) slots: &'a mut [Slot<C>],
    pub(crate) out: OutputArea<'a>,
    pub(crate) attention: &'a mut Queue,
    pub(crate) timers: &'a mut Timers,
    pub(crate) waker: Option<&'a Waker>,
    /// This loop's number and the other loops' inboxes, in a server of several loops.
    pub(crate) loops: Option<&'a Loops>,
    /// The connection a [`Conn`](crate::Conn) is for (`u32::MAX`: none).
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

    /// Slots free for new connections, accepted or outbound (a connection closed during
    /// this callback frees its slot only once its `closed` has run; a connect takes one
    /// at once).
    ///
    /// At 0 the next connection is refused: a server that keeps idle connections
    /// (HTTP keep-alive) can close some of them here to make room, as nginx does when
    /// its connections run out.
    pub fn free_slots(&self) -> usize {
        self.config.max_connections - self.pool.open
    }

    /// The wake handle, if the driver provides one (evio-os and evio-sim always do).
    pub fn waker(&self) -> Option<&Waker> {
        self.waker
    }

    /// The slot of `id` while its connection is open (not closing or detaching).
    pub(super) fn open_slot(&self, id: ConnId) -> Result<u32, NotOpen> {
        match self.slots.get(id.slot()) {
            Some(s) if s.info.id == id && s.state == Life::Open => Ok(id.slot() as u32),
            _ => Err(NotOpen(id)),
        }
    }

    /// Where `id` is in its life: `None` once it is closed or detached, or for a stale
    /// id (one whose slot went to another connection).
    ///
    /// [`Loop::close`], [`Loop::detach`] and [`Loop::abort`] are taken in the states
    /// where the connection's own [`Action`](crate::Action) would be: an abort also
    /// while it is closing or detaching (a peer that does not read its last output).
    pub fn state(&self, id: ConnId) -> Option<ConnState> {
        let slot = self.slots.get(id.slot())?;
        if slot.info.id != id {
            return None;
        }
        Some(match slot.state {
            Life::Open => ConnState::Open,
            Life::Connecting => ConnState::Connecting,
            Life::Leaving {
                then: Then::Detach, ..
            } => ConnState::Detaching,
            Life::Leaving { .. } | Life::Lingering | Life::SendFailed | Life::Failing => {
                ConnState::Closing
            }
            Life::Aborting => ConnState::Aborting,
            // (A connection still handshaking is not its handler's yet.)
            Life::Free | Life::Closed | Life::DetachWait | Life::Handshaking => return None,
        })
    }

    /// The slot of `id` while it takes writes: open or connecting, its sending side not
    /// shut.
    pub(super) fn writable_slot(&self, id: ConnId) -> Result<u32, NotOpen> {
        match self.slots.get(id.slot()) {
            Some(s)
                if s.info.id == id
                    && matches!(s.state, Life::Open | Life::Connecting)
                    && !s.flags.contains(Flags::SHUT_WR) =>
            {
                Ok(id.slot() as u32)
            }
            _ => Err(NotOpen(id)),
        }
    }

    /// `true` while `id` is open: not connecting, closed, closing, detaching, or stale.
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

    /// Bytes of output that still fit for `id` (open, or connecting: what is written
    /// to an outbound connection before it connects waits in its buffer).
    ///
    /// Nothing else writes to `id` while a handler method runs, so room enough for
    /// several writes in the same call means they all fit.
    ///
    /// # Errors
    ///
    /// [`NotOpen`] if `id` is not open or connecting, or its sending side is shut
    /// ([`Loop::shutdown_write`]).
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
        let i = self.writable_slot(id)?;
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
    /// that was; the engine sends them after anything written before (for a
    /// connection still connecting, once it connects).
    ///
    /// Called from `data`, a write cut short makes the connection being served wait
    /// for `id` if it leaves input unconsumed (see [`Conn::wait_for`](crate::Conn::wait_for)).
    ///
    /// # Errors
    ///
    /// [`NotOpen`] if `id` is not open or connecting, or its sending side is shut.
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
        let i = match self.writable_slot(id) {
            Ok(i) => i,
            Err(e) => {
                return match self.post(id, PostKind::Write, bytes) {
                    Some(Ok(())) => Ok(bytes.len()),
                    _ => Err(e),
                };
            }
        };
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
    /// [`WriteError::NotOpen`] if `id` is not open or connecting, or its sending side
    /// is shut; [`WriteError::Full`] if fewer than
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
        let i = match self.writable_slot(id) {
            Ok(i) => i,
            Err(e) => {
                return match self.post(id, PostKind::Write, bytes) {
                    Some(r) => r.map_err(WriteError::Refused),
                    None => Err(WriteError::NotOpen(e)),
                };
            }
        };
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

    /// This loop's number (0 in a server of one loop).
    pub fn loop_index(&self) -> usize {
        self.loops.map_or(0, Loops::index)
    }

    /// Posts `bytes` to loop `to`'s handler, which gets them in
    /// [`Events::loop_message`](crate::Events::loop_message) when that loop next takes
    /// its mail (in a server of several loops: [`PostOffice`](crate::PostOffice)). Posts
    /// from one loop to another arrive in the order posted, with its writes to that
    /// loop's connections; a loop may post to itself.
    ///
    /// # Errors
    ///
    /// [`Refusal::InboxFull`] if that loop's inbox has no room, and
    /// [`Refusal::NoSuchLoop`] if the server has no loop `to` (or runs one loop).
    pub fn post_message(&mut self, to: usize, bytes: &[u8]) -> Result<(), Refusal> {
        let Some(loops) = self.loops else {
            return Err(Refusal::NoSuchLoop);
        };
        let Ok(to) = u8::try_from(to) else {
            return Err(Refusal::NoSuchLoop);
        };
        loops
            .office
            .get()
            .post(loops.index(), ConnId::of_loop(to), PostKind::Message, bytes)
    }

    /// Posts `kind` for `id` if it is a connection of another loop of this server:
    /// `None` if it is not (one of this loop's, or no loops).
    #[cold]
    #[inline(never)]
    pub(super) fn post(
        &mut self,
        id: ConnId,
        kind: PostKind,
        bytes: &[u8],
    ) -> Option<Result<(), Refusal>> {
        let loops = self.loops?;
        if id.loop_index() == loops.index() {
            return None;
        }
        Some(loops.office.get().post(loops.index(), id, kind, bytes))
    }

    /// A write to slot `i` did not fit: `drained` is owed once its output is out. (For
    /// the current connection the engine marks it after the call.)
    fn backed_up(&mut self, i: u32) {
        if i != self.current {
            self.slots[i as usize].flags.insert(Flags::BACKED_UP);
            self.wait_on = i;
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
            self.wait_on = i;
        }
        self.out.append(i, &mut slot.bufs, target, &bytes[..n]);
        n
    }

    /// Appends to the current connection's output: the path every reply takes.
    #[inline(always)]
    pub(super) fn append_current(&mut self, bytes: &[u8], cut: bool) -> usize {
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
    pub(super) fn wake_up(&mut self, i: u32) {
        if self.running {
            self.attention.push_back(self.slots, i);
        }
    }
}
