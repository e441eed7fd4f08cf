//! Stopping a server cleanly on SIGINT and SIGTERM, through the server wake.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use evio_proto::{Events, Flow, Loop, Server, Waker};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

/// Wraps a handler so that SIGINT or SIGTERM shuts the server down cleanly: pending
/// output flushed as far as the sockets take it, every connection closed (each gets
/// `closed`), the listeners closed and their unix socket files removed, and `serve`
/// returning `Ok(())`.
///
/// The signals are caught from [`StopOnSignals::new`] on, before `serve` binds
/// anything: a signal that arrives while the listeners (and their unix socket files)
/// are being set up is held, and stops the server as soon as it is up. Without this a
/// service manager's quick SIGTERM would kill the process in that window, with status
/// 143 and its socket file left behind.
///
/// A thread waits for either signal, records it and, once `serving` has handed over the
/// [`Waker`], calls [`Waker::wake_server`]; `server_woken` sees the record and returns
/// [`Flow::Shutdown`]. Every other method goes to the inner handler unchanged. Several
/// loops share one watch: [`SignalWatch`].
#[derive(Debug)]
pub struct StopOnSignals<H> {
    inner: H,
    watch: SignalWatch,
}

/// The watch on SIGINT and SIGTERM behind [`StopOnSignals`], shareable by the
/// handlers of several loops (`ServerBuilder::serve_loops`): a signal wakes every loop
/// that is up, each shuts down, and the loops that come up after it shut down as soon
/// as they are up.
///
/// ```no_run
/// # use evio_handlers::{echo::Echo, stop::SignalWatch};
/// let watch = SignalWatch::new(); // before anything is bound
/// evio_os::ServerBuilder::new()
///     .loops(2)
///     .serve_loops(|_| watch.wrap(Echo), &["tcp://127.0.0.1:5000"])?;
/// # Ok::<(), evio_os::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SignalWatch(Arc<Watch>);

/// The signal thread's handle and what it shares with the loops.
#[derive(Debug)]
struct Watch {
    shared: Arc<Mutex<Stop>>,
    signals: Option<Handle>,
    /// Why the signals could not be watched, if they could not.
    error: Option<io::ErrorKind>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        // Ends the signal thread (its wait returns) and gives the signals back.
        if let Some(handle) = self.signals.take() {
            handle.close();
        }
    }
}

/// What the signal thread and the loops share.
#[derive(Debug, Default)]
struct Stop {
    /// A signal arrived.
    requested: bool,
    /// The wakers of the loops that are up.
    wakers: Vec<Waker>,
}

impl Stop {
    /// Records a signal, and wakes every loop that is up. The lock makes this and
    /// [`Stop::serving`] exclusive: a signal is either seen by `serving` or woken here.
    fn signalled(shared: &Mutex<Stop>) {
        let mut stop = shared.lock().unwrap_or_else(PoisonError::into_inner);
        stop.requested = true;
        for waker in &stop.wakers {
            waker.wake_server();
        }
    }

    /// Hands over a loop's waker, and wakes it at once if a signal came before it was
    /// up.
    fn serving(shared: &Mutex<Stop>, waker: &Waker) {
        let mut stop = shared.lock().unwrap_or_else(PoisonError::into_inner);
        stop.wakers.push(waker.clone());
        if stop.requested {
            waker.wake_server();
        }
    }

    fn requested(shared: &Mutex<Stop>) -> bool {
        shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .requested
    }
}

impl SignalWatch {
    /// Starts catching SIGINT and SIGTERM now (call it before `serve` binds anything).
    ///
    /// If the signals cannot be watched, the handlers it wraps still serve (stopping
    /// only as they decide) and [`SignalWatch::error`] says why.
    pub fn new() -> Self {
        let shared = Arc::new(Mutex::new(Stop::default()));
        let mut error = None;
        let mut handle = None;
        match Signals::new([SIGINT, SIGTERM]) {
            Ok(mut signals) => {
                handle = Some(signals.handle());
                let thread_shared = shared.clone();
                let spawned = std::thread::Builder::new()
                    .name("evio-signals".into())
                    .spawn(move || {
                        if signals.forever().next().is_some() {
                            Stop::signalled(&thread_shared);
                        }
                    });
                if let Err(e) = spawned {
                    error = Some(e.kind());
                }
            }
            Err(e) => error = Some(e.kind()),
        }
        SignalWatch(Arc::new(Watch {
            shared,
            signals: handle,
            error,
        }))
    }

    /// Wraps one loop's handler: it shuts its loop down on a signal.
    pub fn wrap<H>(&self, inner: H) -> StopOnSignals<H> {
        StopOnSignals {
            inner,
            watch: self.clone(),
        }
    }

    /// Why the signals could not be watched, if they could not.
    pub fn error(&self) -> Option<io::ErrorKind> {
        self.0.error
    }

    /// Whether SIGINT or SIGTERM has arrived since [`SignalWatch::new`].
    pub fn signalled(&self) -> bool {
        Stop::requested(&self.0.shared)
    }
}

impl Default for SignalWatch {
    fn default() -> Self {
        SignalWatch::new()
    }
}

impl<H> StopOnSignals<H> {
    /// Wraps `inner`, and starts catching SIGINT and SIGTERM now (call it before
    /// `serve`, as `serve(StopOnSignals::new(handler), …)` does). For several loops,
    /// share one [`SignalWatch`] instead.
    ///
    /// If the signals cannot be watched, the wrapper still serves (stopping only as
    /// its handler decides) and [`StopOnSignals::error`] says why.
    pub fn new(inner: H) -> Self {
        SignalWatch::new().wrap(inner)
    }

    /// The wrapped handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }

    /// Why the signals could not be watched, if they could not (the server then runs
    /// on, stopping only as its handler decides).
    pub fn error(&self) -> Option<io::ErrorKind> {
        self.watch.error()
    }

    /// Whether SIGINT or SIGTERM has arrived since the watch started.
    pub fn signalled(&self) -> bool {
        self.watch.signalled()
    }
}

impl<H: Events> Events for StopOnSignals<H> {
    type Context = H::Context;

    evio_proto::delegate_events!(self.inner, except serving, server_woken);

    fn serving(&mut self, server: Server<'_>) -> Flow {
        if let Some(waker) = server.waker() {
            Stop::serving(&self.watch.0.shared, waker);
        }
        self.inner.serving(server)
    }

    fn server_woken(&mut self, others: &mut Loop<'_, Self::Context>) -> Flow {
        if Stop::requested(&self.watch.0.shared) {
            return Flow::Shutdown;
        }
        self.inner.server_woken(others)
    }
}
