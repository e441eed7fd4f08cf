//! What a handler method reaches: [`Conn`], the connection it was called for, and
//! [`Loop`], the time and every open connection.
//!
//! `Conn` is here; `others.rs` holds `Loop` (what it tells of other connections, the
//! writes to them, and the errors that refuse them) and `control.rs` the rest of what
//! it does to them (close, detach, abort, timeouts).

use core::fmt;
use core::time::Duration;

use crate::engine::life::Life;
use crate::slot::Flags;
use crate::timers::Timers;
use crate::{ConnId, ConnInfo, Instant, Options, OutputFull};

mod control;
mod others;
mod outbound;

pub(crate) use others::NO_CURRENT;
pub use others::{ConnState, Loop, NotOpen, WriteError};

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
        // Only an open connection has a handler's timeout: one that is leaving keeps
        // its deadline for send progress (`Config::send_timeout`).
        if self.lp.slots[self.lp.current as usize].state == Life::Open {
            self.lp.set_deadline(self.lp.current, after);
        }
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
    ///
    /// On a transformed connection (TLS) these are the plaintext bytes its transport
    /// has not encoded yet; [`Conn::unsent`] counts what waits for the socket.
    pub fn pending(&self) -> usize {
        self.lp
            .out
            .pending(&self.lp.current_bufs, self.lp.current_target)
    }

    /// Output that still waits for the socket: [`Conn::pending`], plus one while a
    /// transformed connection's transport holds encoded bytes not yet sent (records,
    /// its closing message): the engine knows that they wait, not how many.
    ///
    /// A handler that bounds how long a client may leave its output unread (a send
    /// timeout) measures with this: a transport takes plaintext into records at once,
    /// so `pending` can be zero while the client reads nothing.
    pub fn unsent(&self) -> usize {
        let outgoing = self
            .lp
            .slots
            .get(self.lp.current as usize)
            .map_or(0, |slot| slot.flags.outgoing());
        self.pending() + outgoing
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
    /// /// Wraps a handler and counts the input bytes it used; every other call goes to
    /// /// the handler unchanged.
    /// struct Counting<H>(H, u64);
    /// impl<H: Events> Events for Counting<H> {
    ///     type Context = H::Context;
    ///     evio_proto::delegate_events!(self.0, except data);
    ///     fn data(&mut self, conn: &mut Conn<'_, H::Context>, input: &[u8]) -> Action {
    ///         let action = self.0.data(conn, input);
    ///         self.1 += conn.consumed().unwrap_or(input.len()).min(input.len()) as u64;
    ///         action
    ///     }
    /// }
    /// ```
    pub fn consumed(&self) -> Option<usize> {
        self.consumed
    }

    /// Makes the input this `data` call leaves unconsumed wait for `other`'s output to
    /// drain: a relay's answer to a peer that is full.
    ///
    /// Until `other` has sent all its pending output (or has gone), the input is not
    /// counted as a frame too large however full the buffer is, and once the buffer is
    /// full the engine reads no more from this connection, so its peer is slowed by
    /// TCP's own flow control; then `data` is called again with it. Nothing polls
    /// meanwhile. (While the buffer still has room, what arrives is read and given to
    /// `data` with the rest, as always: a peer's bytes are read before anything is
    /// sent to it.)
    ///
    /// A write to another connection that is cut short ([`Loop::write_some`]) or
    /// refused as full ([`Loop::write`]) in this call makes this connection wait for
    /// that one by itself; `wait_for` chooses, for a handler that checks
    /// [`Loop::room`] before writing anything (a message for several connections,
    /// which must not go to some twice). It has no effect if `other` has nothing
    /// pending by the end of the call, or if all the input is consumed.
    ///
    /// # Errors
    ///
    /// [`NotOpen`] if `other` is not open or connecting, or is this connection.
    ///
    /// # Example
    ///
    /// ```
    /// use evio_proto::{Action, Conn, ConnId, Events};
    ///
    /// /// Sends each whole line to every other member, or, when one of them has no
    /// /// room for it, waits for that member before sending it to anyone.
    /// struct Broadcast {
    ///     members: Vec<ConnId>, // kept by `opened` and `closed`
    /// }
    ///
    /// impl Events for Broadcast {
    ///     type Context = ();
    ///     fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
    ///         let Some(end) = input.iter().position(|&b| b == b'\n') else {
    ///             conn.consume(0); // wait for the rest of the line
    ///             return Action::None;
    ///         };
    ///         let line = &input[..=end];
    ///         let me = conn.id();
    ///         let others: Vec<ConnId> =
    ///             self.members.iter().copied().filter(|&id| id != me).collect();
    ///         let lp = conn.others();
    ///         if let Some(&full) = others
    ///             .iter()
    ///             .find(|&&id| lp.room(id).is_ok_and(|room| room < line.len()))
    ///         {
    ///             conn.consume(0);
    ///             let _ = conn.wait_for(full);
    ///             return Action::None;
    ///         }
    ///         for id in others {
    ///             let _ = conn.others().write(id, line);
    ///         }
    ///         conn.consume(line.len());
    ///         Action::None
    ///     }
    /// }
    /// ```
    ///
    /// [`Loop::write_some`]: crate::Loop::write_some
    /// [`Loop::write`]: crate::Loop::write
    /// [`Loop::room`]: crate::Loop::room
    pub fn wait_for(&mut self, other: ConnId) -> Result<(), NotOpen> {
        let lp = &mut self.lp;
        match lp.slots.get(other.slot()) {
            Some(s)
                if s.info.id == other
                    && matches!(s.state, Life::Open | Life::Connecting)
                    && other.slot() as u32 != lp.current =>
            {
                lp.wait_on = other.slot() as u32;
                Ok(())
            }
            _ => Err(NotOpen(other)),
        }
    }

    /// Holds the input this `data` call leaves unconsumed until the handler says
    /// otherwise with [`Loop::resume`]: for a limit of the handler's own (a proxy with
    /// as many requests of this client in flight as it allows, waiting for replies).
    ///
    /// As with [`Conn::wait_for`]: the input is not counted as a frame too large, the
    /// connection is read while its input buffer has room (what arrives is given to
    /// `data` with the rest), and once the buffer is full it is not read, so TCP slows
    /// its peer down. `Loop::resume` has `data` called again with the input at the
    /// connection's next turn. It has no effect if all the input is consumed; each
    /// `data` call that leaves input holds it only if it says so again.
    ///
    /// If the socket fails (its peer resets) while input is held, that input is not
    /// lost: the peer sent it. The connection sends nothing more and is no longer
    /// open for other connections' writes, but `Loop::resume` still gives its handler
    /// the input, and it closes with the error once the input is taken (or after
    /// [`Config::send_timeout`](crate::Config::send_timeout)). The same holds for
    /// [`Conn::wait_for`].
    ///
    /// [`Loop::resume`]: crate::Loop::resume
    pub fn hold(&mut self) {
        self.lp.wait_on = crate::relay::HELD;
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
