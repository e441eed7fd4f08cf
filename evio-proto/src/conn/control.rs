//! What [`Loop`] does to the other connections beyond writing: closes, detaches and
//! aborts them, and sets their timeouts.

use core::time::Duration;

use super::{Loop, NotOpen};
use crate::engine::life::Event;
use crate::post::PostKind;
use crate::slot;
use crate::timers::Timers;
use crate::{ConnId, Instant};

impl<'a, C> Loop<'a, C> {
    /// Closes `id` once its pending output is flushed; `closed` follows (this is
    /// [`Action::Close`](crate::Action::Close) for another connection).
    ///
    /// # Errors
    ///
    /// [`NotOpen`] if `id` is closed, stale, or already leaving (closing, detaching or
    /// being reset; a connection closing because its peer ended its stream, whose
    /// handler is still answering, takes it, as it takes its own `Action::Close`).
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
        self.request(id, Event::Close)
            .or_else(|e| self.post_control(id, PostKind::Close, e))
    }

    /// Detaches `id` once its pending output is flushed (this is
    /// [`Action::Detach`](crate::Action::Detach) for another connection):
    /// [`Events::detached`](crate::Events::detached) follows.
    ///
    /// # Errors
    ///
    /// [`NotOpen`] if `id` is closed, stale, or already leaving (closing, detaching or
    /// being reset; a connection closing because its peer ended its stream, whose
    /// handler is still answering, takes it, as it takes its own `Action::Detach`).
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
        self.request(id, Event::Detach)
    }

    /// Closes `id` at once, discarding its pending output; the peer gets a reset (this
    /// is [`Action::Abort`](crate::Action::Abort) for another connection). For a peer
    /// that will not read; `closed` follows.
    ///
    /// # Errors
    ///
    /// [`NotOpen`] if `id` is closed, stale, or already being reset (an abort is taken
    /// while it is open and while it is closing or detaching, as its own `Action::Abort`
    /// would be).
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
        self.request(id, Event::Abort)
            .or_else(|e| self.post_control(id, PostKind::Abort, e))
    }

    /// A close or abort of `id`, which is not one of this loop's connections: posted to
    /// its loop if it is another loop's (`Ok` once posted; `NotOpen` if it could not
    /// be), `not_open` otherwise.
    #[cold]
    #[inline(never)]
    fn post_control(
        &mut self,
        id: ConnId,
        kind: PostKind,
        not_open: NotOpen,
    ) -> Result<(), NotOpen> {
        match self.post(id, kind, &[]) {
            Some(Ok(())) => Ok(()),
            _ => Err(not_open),
        }
    }

    /// A close, detach or abort of `id`, exactly as its handler's own `Action` would
    /// do it (the same transition, `slot::request`), in whatever state that action is
    /// accepted.
    pub(super) fn request(&mut self, id: ConnId, event: Event) -> Result<(), NotOpen> {
        let i = match self.slots.get(id.slot()) {
            Some(s) if s.info.id == id && s.state.is_live() => id.slot() as u32,
            _ => return Err(NotOpen(id)),
        };
        let input_capacity = self.out.input_capacity();
        slot::request(
            self.slots,
            self.timers,
            i,
            event,
            input_capacity,
            self.config.send_timeout.map(|d| self.now + d),
        )
        .map_err(|_| NotOpen(id))?;
        self.wake_up(i);
        Ok(())
    }

    /// Sets (or with `None` cancels) `id`'s timeout: [`Events::timeout`] runs for it
    /// once `after` has passed from now (see [`Conn::set_timeout`]).
    ///
    /// [`Events::timeout`]: crate::Events::timeout
    /// [`Conn::set_timeout`]: crate::Conn::set_timeout
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
