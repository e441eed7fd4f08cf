//! The handler side: the `Events` trait and what its methods receive and return.

use core::any::Any;
use core::fmt;
use core::time::Duration;

use crate::{
    CloseError, Conn, ConnId, ConnInfo, ConnectAddr, ConnectError, Instant, ListenAddr, Loop, Waker,
};

/// What a handler asks the loop to do next, from a method called for one connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Action {
    /// Carry on.
    #[default]
    None,
    /// Flush this connection's pending output, then close it; `closed` follows. If
    /// input the handler did not consume is still buffered, the close lingers so the
    /// peer can read what was written: the sending side is shut first, and input is
    /// read and discarded (for at most [`Config::linger`](crate::Config::linger)) until
    /// the peer closes too.
    Close,
    /// Flush this connection's pending output, then hand its socket to `detached`. If
    /// the handler does not take it there, the connection ends as a close instead and
    /// `closed` follows (see [`Events::detached`]).
    Detach,
    /// Close this connection at once: its pending output is discarded and the peer
    /// gets a reset (SO_LINGER 0); `closed` follows. For a peer that will not read,
    /// where a `Close` would first wait for it to take its output.
    ///
    /// ```
    /// use evio_proto::{Action, Conn, Duration, Events};
    ///
    /// /// Closes connections idle for a minute: with a goodbye if the peer has read all
    /// /// it was sent, with a reset if it has not even done that.
    /// struct Idle;
    ///
    /// impl Events for Idle {
    ///     type Context = ();
    ///     fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
    ///         conn.set_timeout(Some(Duration::from_secs(60)));
    ///         Action::None
    ///     }
    ///     fn data(&mut self, conn: &mut Conn<'_, ()>, _input: &[u8]) -> Action {
    ///         conn.set_timeout(Some(Duration::from_secs(60)));
    ///         // ... handle the input ...
    ///         Action::None
    ///     }
    ///     fn timeout(&mut self, conn: &mut Conn<'_, ()>) -> Action {
    ///         if conn.pending() > 0 {
    ///             return Action::Abort;
    ///         }
    ///         let _ = conn.write(b"idle for a minute: goodbye\r\n");
    ///         Action::Close
    ///     }
    /// }
    /// ```
    Abort,
    /// Shut the whole server down: flush the triggering connection's output as far as
    /// the socket takes it without blocking, close every connection (each gets
    /// `closed`), close the listeners, and return from `serve`.
    Shutdown,
}

/// What a handler asks the server to do from a method about the server: carry on, or
/// shut down.
///
/// The methods that concern the server and not one connection return it (`serving`,
/// `closed`, `detached`, `server_woken`; `tick` inside its [`Tick`]). Closing or
/// detaching means nothing there, so it cannot be said.
///
/// ```
/// use evio_proto::{Action, CloseError, Conn, ConnInfo, Events, Flow, Loop};
///
/// /// Serves until the last client has left, then shuts the server down.
/// #[derive(Default)]
/// struct UntilEmpty {
///     open: usize,
/// }
///
/// impl Events for UntilEmpty {
///     type Context = ();
///     fn opened(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
///         self.open += 1;
///         Action::None
///     }
///     fn closed(&mut self, _: &ConnInfo, _: (), _: Option<CloseError>, _: &mut Loop<'_, ()>) -> Flow {
///         self.open -= 1;
///         if self.open == 0 {
///             Flow::Shutdown
///         } else {
///             Flow::Continue
///         }
///     }
/// }
/// ```
///
/// A method for the server cannot ask for what only a connection can do:
///
/// ```compile_fail
/// # use evio_proto::{Events, Flow, Loop, Tick};
/// struct H;
/// impl Events for H {
///     type Context = ();
///     fn server_woken(&mut self, _: &mut Loop<'_, ()>) -> Flow {
///         evio_proto::Action::Close // error: expected `Flow`, found `Action`
///     }
/// }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Flow {
    /// Carry on.
    #[default]
    Continue,
    /// Shut the whole server down (see [`Action::Shutdown`]).
    Shutdown,
}

/// Socket options for one connection.
///
/// Set them from [`Events::opened`] through [`Conn::options_mut`]. The initial value
/// comes from the engine's [`Config::options`](crate::Config::options).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Options {
    /// TCP_NODELAY: send small writes at once. On by default.
    pub nodelay: bool,
    /// TCP keepalive idle time (and probe interval); `None` leaves keepalive off.
    pub keepalive: Option<Duration>,
}

impl Options {
    /// What a new socket has before any option is set: nothing to apply.
    pub(crate) const NONE: Options = Options {
        nodelay: false,
        keepalive: None,
    };
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
    /// Carry on or shut down.
    pub flow: Flow,
}

impl Tick {
    /// Fire again after `delay`.
    pub const fn after(delay: Duration) -> Self {
        Tick {
            delay: Some(delay),
            flow: Flow::Continue,
        }
    }

    /// Stop ticking.
    pub const fn stop() -> Self {
        Tick {
            delay: None,
            flow: Flow::Continue,
        }
    }

    /// The same schedule, and `flow` now.
    pub const fn with_flow(self, flow: Flow) -> Self {
        Tick {
            delay: self.delay,
            flow,
        }
    }
}

/// What [`Events::serving`] learns about the server that just started, and what it can
/// do before the first connection: connect out.
pub struct Server<'a> {
    addrs: &'a [ListenAddr<'a>],
    waker: Option<&'a Waker>,
    now: Instant,
    connector: Option<&'a mut dyn Connector>,
}

impl fmt::Debug for Server<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addrs", &self.addrs)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// What lets [`Server::connect`] reach the loop whatever the handler's context type.
pub(crate) trait Connector {
    fn connect(&mut self, to: ConnectAddr<'_>, timeout: Duration) -> Result<ConnId, ConnectError>;
}

impl<C: Default> Connector for Loop<'_, C> {
    fn connect(&mut self, to: ConnectAddr<'_>, timeout: Duration) -> Result<ConnId, ConnectError> {
        Loop::connect(self, to, timeout, C::default())
    }
}

impl<'a> Server<'a> {
    pub(crate) fn new(
        addrs: &'a [ListenAddr<'a>],
        waker: Option<&'a Waker>,
        now: Instant,
        connector: Option<&'a mut dyn Connector>,
    ) -> Self {
        Server {
            addrs,
            waker,
            now,
            connector,
        }
    }

    /// Opens a connection to `to`, exactly as [`Loop::connect`] does, with a default
    /// context (set it in `opened`): `opened` or `closed` follows for it once the
    /// server runs.
    ///
    /// ```
    /// use core::net::SocketAddr;
    ///
    /// use evio_proto::{ConnId, Duration, Events, Flow, Server};
    ///
    /// /// Opens its link to a backend as the server starts, before any client comes.
    /// struct Linked {
    ///     backend: SocketAddr,
    ///     link: Option<ConnId>,
    /// }
    ///
    /// impl Events for Linked {
    ///     type Context = ();
    ///     fn serving(&mut self, mut server: Server<'_>) -> Flow {
    ///         self.link = server.connect(self.backend.into(), Duration::from_secs(1)).ok();
    ///         Flow::Continue
    ///     }
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConnectError`] when nothing can be started (see [`Loop::connect`]).
    pub fn connect(
        &mut self,
        to: ConnectAddr<'_>,
        timeout: Duration,
    ) -> Result<ConnId, ConnectError> {
        match self.connector.as_deref_mut() {
            Some(c) => c.connect(to, timeout),
            None => Err(ConnectError::ShuttingDown),
        }
    }

    /// The time the server started (the driver's clock).
    pub fn now(&self) -> Instant {
        self.now
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
/// Its type depends on the driver (evio-os and the `evio` facade give a
/// `DetachedSocket`, the simulator its own stream type), so the same handler works
/// under both; take it with [`Detached::take`]. Once taken, the socket is the
/// handler's and `closed` never runs for the connection. If the handler does not take
/// it, the detach ends as a close: `closed` runs right after `detached` returns, and
/// the driver closes the socket.
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
///
/// A handler that wraps another and changes only some methods writes the others, which
/// pass each call on unchanged, with [`delegate_events!`](crate::delegate_events).
pub trait Events {
    /// Per-connection state kept in the connection's slot (no map, no allocation):
    /// made with `Default` just before `opened`, reached through [`Conn::context`], and
    /// given back at the end, by value to `closed`, or by `&mut` to `detached` (then
    /// dropped if the handler took the socket, or handed on to `closed` if it did
    /// not).
    type Context: Default;

    /// The server is listening. Called once, first.
    fn serving(&mut self, server: Server<'_>) -> Flow {
        let _ = server;
        Flow::Continue
    }

    /// A connection was accepted. Output written here is sent before any input is read.
    fn opened(&mut self, conn: &mut Conn<'_, Self::Context>) -> Action {
        let _ = conn;
        Action::None
    }

    /// Bytes arrived: `input` is the input left unconsumed by earlier calls followed by
    /// the new bytes.
    ///
    /// All of `input` counts as consumed unless the handler calls [`Conn::consume`]
    /// with less. What is not consumed is kept and handed back, at the start of `input`,
    /// in the next `data` call (with more bytes after it): that is how a partial frame
    /// waits for the rest of it.
    ///
    /// **A request that is applied must be consumed in the same call.** Unconsumed input
    /// comes back as if it had never been seen, so a handler that applies a request (a
    /// `SET`, say) and leaves it unconsumed, for example with `conn.consume(n)` where `n`
    /// stops before the `SET` because its reply did not fit, is handed the same `SET`
    /// in the next call and applies it a second time. Consume up to the end of the last
    /// request applied (or let all input count as consumed when every request in it was
    /// applied). When a reply does not fit, either leave that request unapplied and
    /// unconsumed (write its reply first, all or nothing, and apply the request only if
    /// the write succeeded: the engine stops reading and calls `data` again with it once
    /// the output has drained), or apply it, consume it, and keep the unsent reply
    /// yourself until [`Events::drained`].
    ///
    /// ```
    /// use core::fmt::Write;
    /// use evio_proto::{Action, Conn, Events};
    ///
    /// /// A counter: every line received adds one and is answered with the new value.
    /// struct Counter {
    ///     value: u64,
    /// }
    ///
    /// impl Events for Counter {
    ///     type Context = ();
    ///     fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
    ///         let mut used = 0;
    ///         while let Some(end) = input[used..].iter().position(|&b| b == b'\n') {
    ///             let next = self.value + 1;
    ///             // The reply first, whole or not at all: a line whose reply does not
    ///             // fit stays unapplied and unconsumed, and comes back once the output
    ///             // has drained.
    ///             if conn.transaction(|c| writeln!(c, "{next}")).is_err() {
    ///                 break;
    ///             }
    ///             self.value = next; // applied...
    ///             used += end + 1; // ...and consumed, together
    ///         }
    ///         // A partial line (or one not answered yet) waits for the next call.
    ///         conn.consume(used);
    ///         Action::None
    ///     }
    /// }
    /// ```
    fn data(&mut self, conn: &mut Conn<'_, Self::Context>, input: &[u8]) -> Action {
        let _ = (conn, input);
        Action::None
    }

    /// Another thread called [`Waker::wake`] for this connection.
    fn woken(&mut self, conn: &mut Conn<'_, Self::Context>) -> Action {
        let _ = conn;
        Action::None
    }

    /// The timeout set with [`Conn::set_timeout`] expired: called once per setting,
    /// never before the deadline, never after the connection is closed.
    ///
    /// ```
    /// use evio_proto::{Action, Conn, Duration, Events};
    ///
    /// /// Closes connections that send nothing for 30 seconds.
    /// struct Idle;
    /// impl Events for Idle {
    ///     type Context = ();
    ///     fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
    ///         conn.set_timeout(Some(Duration::from_secs(30)));
    ///         Action::None
    ///     }
    ///     fn data(&mut self, conn: &mut Conn<'_, ()>, _input: &[u8]) -> Action {
    ///         conn.set_timeout(Some(Duration::from_secs(30))); // pushed back: O(1)
    ///         Action::None
    ///     }
    ///     fn timeout(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
    ///         Action::Close
    ///     }
    /// }
    /// ```
    fn timeout(&mut self, conn: &mut Conn<'_, Self::Context>) -> Action {
        let _ = conn;
        Action::None
    }

    /// The peer ended its stream (a read found the end: it closed, or shut its sending
    /// side). What it sent before has all been given to `data`, except input left
    /// unconsumed while its own output was full, which still comes once it drains.
    /// (Input that waited for another connection, [`Conn::wait_for`] or [`Conn::hold`],
    /// is given to `data` first: `input_ended` runs once none waits, so a relay passes
    /// the end on after everything before it.)
    ///
    /// The default, `Action::Close`, closes the connection once its output is flushed
    /// (after `drained` and that input, if any). `Action::None` keeps it open,
    /// half-closed: nothing more is read, it can still be written to, and it closes
    /// when a handler closes it, or by itself once its sending side is shut too
    /// ([`Loop::shutdown_write`](crate::Loop::shutdown_write)) and flushed (its
    /// timeout still runs meanwhile). A relay keeps the side whose
    /// peer ended open and passes the end on with
    /// [`Loop::shutdown_write`](crate::Loop::shutdown_write). `Detach`, `Abort` and
    /// `Shutdown` act as anywhere else.
    ///
    /// It runs only for an open connection: not for one a handler is already closing.
    ///
    /// ```
    /// use evio_proto::{Action, Conn, Events};
    ///
    /// /// Counts the bytes a client uploads and answers with the count once the client
    /// /// has shut its sending side (`nc -N`, `shutdown(SHUT_WR)`).
    /// struct Count;
    /// impl Events for Count {
    ///     type Context = u64;
    ///     fn data(&mut self, conn: &mut Conn<'_, u64>, input: &[u8]) -> evio_proto::Action {
    ///         *conn.context() += input.len() as u64;
    ///         Action::None
    ///     }
    ///     fn input_ended(&mut self, conn: &mut Conn<'_, u64>) -> Action {
    ///         let line = format!("{} bytes\n", conn.context());
    ///         let _ = conn.write(line.as_bytes());
    ///         Action::Close // once the line is sent
    ///     }
    /// }
    /// ```
    fn input_ended(&mut self, conn: &mut Conn<'_, Self::Context>) -> Action {
        let _ = conn;
        Action::Close
    }

    /// Output of this connection that had backed up (a write the socket did not take
    /// whole, or a write that did not fit the output buffer) has now all been sent: a
    /// producer can resume without a buffer of its own.
    ///
    /// It also runs after the peer ended its stream (a half-close): the peer may still
    /// read, so the connection closes only once `drained` writes nothing more and the
    /// output is flushed. It does not run once a handler closed, detached or aborted
    /// the connection.
    ///
    /// ```
    /// use evio_proto::{Action, Conn, Events};
    ///
    /// /// Sends an endless stream of b'x', as fast as the peer reads it.
    /// struct Firehose;
    /// impl Events for Firehose {
    ///     type Context = ();
    ///     fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
    ///         while conn.write_some(&[b'x'; 4096]) > 0 {}
    ///         Action::None
    ///     }
    ///     fn drained(&mut self, conn: &mut Conn<'_, ()>) -> Action {
    ///         self.opened(conn)
    ///     }
    /// }
    /// ```
    fn drained(&mut self, conn: &mut Conn<'_, Self::Context>) -> Action {
        let _ = conn;
        Action::None
    }

    /// The connection is closed (its socket already is, except after a detach the
    /// handler did not take: the driver closes that one right after this call).
    /// `error` says why when it was not the handler's own `Close`, a clean end of
    /// stream, or a shutdown.
    ///
    /// Called exactly once for each `opened`, unless the handler took the socket in
    /// [`Events::detached`].
    fn closed(
        &mut self,
        info: &ConnInfo,
        context: Self::Context,
        error: Option<CloseError>,
        others: &mut Loop<'_, Self::Context>,
    ) -> Flow {
        let _ = (info, context, error, others);
        Flow::Continue
    }

    /// The connection was detached ([`Action::Detach`], [`Loop::detach`]) after its
    /// output was flushed: the socket is out of the poller, in blocking mode, and held
    /// by `socket`.
    ///
    /// - Take it with [`Detached::take`] and it is the handler's: this was the
    ///   connection's last callback, and `closed` never runs for it.
    /// - Leave it (as the default method does) and the detach ends as a close: `closed`
    ///   runs for the connection right after this method returns, with no error and
    ///   the context, and the driver closes the socket.
    ///
    /// Input received but not consumed is in [`Detached::unread_input`], to be handled
    /// before anything read from the socket. If the driver cannot take the socket out
    /// of its poller, this method is not called: the connection ends with `closed` and
    /// an I/O error.
    fn detached(
        &mut self,
        info: &ConnInfo,
        context: &mut Self::Context,
        socket: Detached<'_>,
        others: &mut Loop<'_, Self::Context>,
    ) -> Flow {
        let _ = (info, context, socket, others);
        Flow::Continue
    }

    /// Another thread called [`Waker::wake_server`]: the way to stop the server from
    /// outside, whether or not any connection is open. Several wakes before the loop
    /// runs make one call, so the waking thread leaves what it means in shared state
    /// (a flag, a queue) for this method to read; [`Waker::wake_server`] shows the
    /// thread's side.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use evio_proto::{Events, Flow, Loop};
    ///
    /// /// Shuts down once a signal handler set the flag and woke the server.
    /// struct Stoppable(Arc<AtomicBool>);
    /// impl Events for Stoppable {
    ///     type Context = ();
    ///     fn server_woken(&mut self, _: &mut Loop<'_, ()>) -> Flow {
    ///         if self.0.load(Ordering::SeqCst) { Flow::Shutdown } else { Flow::Continue }
    ///     }
    /// }
    /// ```
    fn server_woken(&mut self, others: &mut Loop<'_, Self::Context>) -> Flow {
        let _ = others;
        Flow::Continue
    }

    /// Loop `from`'s handler posted `bytes` to this loop's
    /// ([`Loop::post_message`]): a server of several loops. The default ignores it.
    fn loop_message(
        &mut self,
        others: &mut Loop<'_, Self::Context>,
        from: usize,
        bytes: &[u8],
    ) -> Flow {
        let _ = (others, from, bytes);
        Flow::Continue
    }

    /// A post of this loop (`kind`, with `len` bytes for a write) to connection `to` of
    /// another loop was refused there, for `why`: the connection had closed, or its
    /// output had no room for the bytes (nothing of them was written). A server of
    /// several loops only ([`Loop::write`] to a connection of another loop, and
    /// [`Loop::close`], [`Loop::abort`]); see [`PostOffice`](crate::PostOffice).
    ///
    /// The default does nothing: a post is then best-effort, as a UDP datagram. A
    /// handler that must not lose a write tells the sender, retries later, or closes
    /// `to` (a slow consumer).
    fn post_refused(
        &mut self,
        others: &mut Loop<'_, Self::Context>,
        to: ConnId,
        kind: crate::PostKind,
        len: usize,
        why: crate::Refusal,
    ) -> Flow {
        let _ = (others, to, kind, len, why);
        Flow::Continue
    }

    /// The transform between its connections' socket bytes and their plaintext (TLS),
    /// if it has one: see [`Transport`](crate::Transport). The engine asks for it when
    /// it builds (to check the input buffer holds a record), when a connection opens
    /// (whether it is transformed), and then only for transformed connections. The
    /// default has none: every connection's bytes are its handler's.
    fn transport(&mut self) -> Option<&mut dyn crate::Transport> {
        None
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
    /// time plus the returned delay (no drift). The default stops the ticker. The
    /// time is [`Loop::now`]; every open connection is within reach through `others`.
    fn tick(&mut self, others: &mut Loop<'_, Self::Context>) -> Tick {
        let _ = others;
        Tick::stop()
    }
}
