//! The handler side: the `Events` trait and what its methods receive and return.

use core::any::Any;
use core::fmt;
use core::time::Duration;

use crate::{CloseError, Conn, ConnId, ConnInfo, Instant, ListenAddr, Waker};

/// What a handler asks the loop to do next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Action {
    /// Carry on.
    #[default]
    None,
    /// Flush this connection's pending output, then close it; `closed` follows.
    Close,
    /// Flush this connection's pending output, then hand its socket to `detached`.
    Detach,
    /// Shut the whole server down: flush the triggering connection's output as far as
    /// the socket takes it without blocking, close every connection (each gets
    /// `closed`), close the listeners, and return from `serve`.
    Shutdown,
}

/// Socket options for one connection, set from [`Events::opened`] through
/// [`Conn::options_mut`]. The initial value comes from the engine's
/// [`Config::options`](crate::Config::options).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Options {
    /// TCP_NODELAY: send small writes at once. On by default.
    pub nodelay: bool,
    /// TCP keepalive idle time (and probe interval); `None` leaves keepalive off.
    pub keepalive: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nodelay: true,
            keepalive: None,
        }
    }
}

/// When the ticker should fire next, as returned by [`Events::tick`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tick {
    /// Delay from this tick's scheduled time to the next one; `None` stops the ticker.
    /// A delay shorter than [`Config::min_tick`](crate::Config::min_tick) is raised to
    /// it, so a zero delay never spins the loop.
    pub delay: Option<Duration>,
    /// What to do now.
    pub action: Action,
}

impl Tick {
    /// Fire again after `delay`.
    pub const fn after(delay: Duration) -> Self {
        Tick {
            delay: Some(delay),
            action: Action::None,
        }
    }

    /// Stop ticking.
    pub const fn stop() -> Self {
        Tick {
            delay: None,
            action: Action::None,
        }
    }

    /// The same schedule, with `action` to perform now.
    pub const fn with_action(self, action: Action) -> Self {
        Tick {
            delay: self.delay,
            action,
        }
    }
}

/// What [`Events::serving`] learns about the server that just started.
#[derive(Clone, Copy, Debug)]
pub struct Server<'a> {
    addrs: &'a [ListenAddr<'a>],
    waker: Option<&'a Waker>,
}

impl<'a> Server<'a> {
    pub(crate) fn new(addrs: &'a [ListenAddr<'a>], waker: Option<&'a Waker>) -> Self {
        Server { addrs, waker }
    }

    /// The listeners' bound addresses, in the order they were given (the real port for
    /// TCP listeners asked to bind port 0).
    pub fn addrs(&self) -> &'a [ListenAddr<'a>] {
        self.addrs
    }

    /// The wake handle, if the driver provides one (evio-os and evio-sim always do).
    /// Clone it to keep it.
    pub fn waker(&self) -> Option<&'a Waker> {
        self.waker
    }
}

/// The socket of a detached connection, handed to [`Events::detached`].
///
/// Its type depends on the driver (evio-os gives an `evio_os::DetachedSocket`, the
/// simulator its own stream type), so the same handler works under both; take it with
/// [`Detached::take`]. A socket not taken is closed by the driver, and the detach then
/// counts as a close: `closed` is called.
///
/// Input the connection received and the handler did not consume (for example the bytes
/// that followed an upgrade request in the same read) is not lost: it is in
/// [`Detached::unread_input`], to be processed before anything read from the socket.
pub struct Detached<'a> {
    socket: &'a mut dyn Any,
    holds: fn(&dyn Any) -> bool,
    input: &'a [u8],
}

impl fmt::Debug for Detached<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detached")
            .field("holds_socket", &self.holds_socket())
            .finish_non_exhaustive()
    }
}

impl<'a> Detached<'a> {
    /// Wraps the driver's socket, held as `Option<T>` (`Some` on the way in).
    pub fn new<T: Any>(socket: &'a mut Option<T>) -> Self {
        Detached {
            socket,
            holds: |any| any.downcast_ref::<Option<T>>().is_some_and(Option::is_some),
            input: &[],
        }
    }

    /// Takes the socket if it is a `T`; `None` if it is another type or already taken.
    pub fn take<T: Any>(&mut self) -> Option<T> {
        self.socket.downcast_mut::<Option<T>>()?.take()
    }

    /// `true` while the socket has not been taken.
    pub fn holds_socket(&self) -> bool {
        (self.holds)(&*self.socket)
    }

    /// Bytes received on this connection that the handler had not consumed when it
    /// detached. They came before anything still in the socket.
    pub fn unread_input(&self) -> &[u8] {
        self.input
    }

    /// The same socket, borrowed for a shorter time.
    pub fn reborrow(&mut self) -> Detached<'_> {
        Detached {
            socket: &mut *self.socket,
            holds: self.holds,
            input: self.input,
        }
    }

    /// The same socket with the connection's unconsumed input attached.
    pub(crate) fn with_input<'b>(&'b mut self, input: &'b [u8]) -> Detached<'b> {
        Detached {
            socket: &mut *self.socket,
            holds: self.holds,
            input,
        }
    }
}

/// The handler: what the loop calls when something happens.
///
/// Every method has a default, so a handler implements only what it needs, as in Go's
/// evio. Methods that receive a [`Conn`] write output through it into the engine's
/// buffer for that connection; the engine sends it, in order, and flushes it before any
/// `Close` or `Detach` the handler returns.
///
/// The same handler value runs under the real driver (`evio::serve`) and under the
/// simulator (`evio-sim`).
pub trait Events {
    /// Per-connection state kept in the connection's slot: made with `Default` just
    /// before `opened`, dropped after `closed` (or handed to `detached`).
    type Context: Default;

    /// The server is listening. Called once, first.
    fn serving(&mut self, server: Server<'_>) -> Action {
        let _ = server;
        Action::None
    }

    /// A connection was accepted. Output written here is sent before any input is read.
    fn opened(&mut self, conn: &mut Conn<'_, Self::Context>) -> Action {
        let _ = conn;
        Action::None
    }

    /// Bytes arrived: `input` is the unconsumed input kept from earlier calls followed by
    /// the new bytes. All of it counts as consumed unless the handler calls
    /// [`Conn::consume`] with less; the rest is handed back, with more bytes after it,
    /// in the next call (a partial frame).
    fn data(&mut self, conn: &mut Conn<'_, Self::Context>, input: &[u8]) -> Action {
        let _ = (conn, input);
        Action::None
    }

    /// Another thread called [`Waker::wake`] for this connection.
    fn woken(&mut self, conn: &mut Conn<'_, Self::Context>) -> Action {
        let _ = conn;
        Action::None
    }

    /// The connection is closed (its socket already is). `error` says why when it was
    /// not the handler's own `Close`, a clean end of stream, or a shutdown. Returning
    /// `Shutdown` shuts the server down; `Close` and `Detach` mean nothing here.
    fn closed(
        &mut self,
        info: &ConnInfo,
        context: Self::Context,
        error: Option<CloseError>,
    ) -> Action {
        let _ = (info, context, error);
        Action::None
    }

    /// The connection was detached after its output was flushed: the socket is out of
    /// the poller, in blocking mode, and owned by `socket`. Take it with
    /// [`Detached::take`]; not taking it (the default) closes it and calls `closed`.
    /// Input received but not consumed is in [`Detached::unread_input`]. `closed` never
    /// fires for a detached connection.
    fn detached(
        &mut self,
        info: &ConnInfo,
        context: &mut Self::Context,
        socket: Detached<'_>,
    ) -> Action {
        let _ = (info, context, socket);
        Action::None
    }

    /// A write of `attempted` bytes to connection `id` is about to be tried.
    fn prewrite(&mut self, id: ConnId, attempted: usize) {
        let _ = (id, attempted);
    }

    /// A write to connection `id` took `written` bytes; `remaining` are still pending.
    fn postwrite(&mut self, id: ConnId, written: usize, remaining: usize) {
        let _ = (id, written, remaining);
    }

    /// The ticker fired. Called first right after `serving`, then at the scheduled
    /// time plus the returned delay (no drift). The default stops the ticker.
    fn tick(&mut self, now: Instant) -> Tick {
        let _ = now;
        Tick::stop()
    }
}
