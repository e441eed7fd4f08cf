//! Stopping a server cleanly on SIGINT and SIGTERM, through the server wake.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use evio_proto::{
    Action, CloseError, Conn, ConnId, ConnInfo, Detached, Events, Flow, Loop, Server, Tick,
};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

/// Wraps a handler so that SIGINT or SIGTERM shuts the server down cleanly: pending
/// output flushed as far as the sockets take it, every connection closed (each gets
/// `closed`), the listeners closed and their unix socket files removed, and `serve`
/// returning `Ok(())`.
///
/// In `serving` it starts a thread that waits for either signal, then sets a flag and
/// calls [`Waker::wake_server`](evio_proto::Waker::wake_server); `server_woken` sees
/// the flag and returns [`Flow::Shutdown`]. Every other method goes to the inner
/// handler unchanged.
#[derive(Debug)]
pub struct StopOnSignals<H> {
    inner: H,
    stop: Arc<AtomicBool>,
    signals: Option<Handle>,
    /// Why the signal thread could not start, if it could not.
    error: Option<io::ErrorKind>,
}

impl<H> StopOnSignals<H> {
    /// Wraps `inner`.
    pub fn new(inner: H) -> Self {
        StopOnSignals {
            inner,
            stop: Arc::default(),
            signals: None,
            error: None,
        }
    }

    /// The wrapped handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }

    /// Why the signals could not be watched, if they could not (the server then runs
    /// on, stopping only as its handler decides).
    pub fn error(&self) -> Option<io::ErrorKind> {
        self.error
    }
}

impl<H> Drop for StopOnSignals<H> {
    fn drop(&mut self) {
        // Ends the signal thread (its wait returns) and gives the signals back.
        if let Some(handle) = self.signals.take() {
            handle.close();
        }
    }
}

impl<H: Events> Events for StopOnSignals<H> {
    type Context = H::Context;

    fn serving(&mut self, server: Server<'_>) -> Flow {
        if let Some(waker) = server.waker().cloned() {
            match Signals::new([SIGINT, SIGTERM]) {
                Ok(mut signals) => {
                    self.signals = Some(signals.handle());
                    let stop = self.stop.clone();
                    let spawned = std::thread::Builder::new()
                        .name("evio-signals".into())
                        .spawn(move || {
                            if signals.forever().next().is_some() {
                                stop.store(true, Ordering::SeqCst);
                                waker.wake_server();
                            }
                        });
                    if let Err(e) = spawned {
                        self.error = Some(e.kind());
                    }
                }
                Err(e) => self.error = Some(e.kind()),
            }
        }
        self.inner.serving(server)
    }

    fn server_woken(&mut self, others: &mut Loop<'_, Self::Context>) -> Flow {
        if self.stop.load(Ordering::SeqCst) {
            return Flow::Shutdown;
        }
        self.inner.server_woken(others)
    }

    fn opened(&mut self, conn: &mut Conn<'_, Self::Context>) -> Action {
        self.inner.opened(conn)
    }

    fn data(&mut self, conn: &mut Conn<'_, Self::Context>, input: &[u8]) -> Action {
        self.inner.data(conn, input)
    }

    fn woken(&mut self, conn: &mut Conn<'_, Self::Context>) -> Action {
        self.inner.woken(conn)
    }

    fn timeout(&mut self, conn: &mut Conn<'_, Self::Context>) -> Action {
        self.inner.timeout(conn)
    }

    fn drained(&mut self, conn: &mut Conn<'_, Self::Context>) -> Action {
        self.inner.drained(conn)
    }

    fn closed(
        &mut self,
        info: &ConnInfo,
        context: Self::Context,
        error: Option<CloseError>,
        others: &mut Loop<'_, Self::Context>,
    ) -> Flow {
        self.inner.closed(info, context, error, others)
    }

    fn detached(
        &mut self,
        info: &ConnInfo,
        context: &mut Self::Context,
        socket: Detached<'_>,
        others: &mut Loop<'_, Self::Context>,
    ) -> Flow {
        self.inner.detached(info, context, socket, others)
    }

    fn prewrite(&mut self, id: ConnId, attempted: usize) {
        self.inner.prewrite(id, attempted);
    }

    fn postwrite(&mut self, id: ConnId, written: usize, remaining: usize) {
        self.inner.postwrite(id, written, remaining);
    }

    fn tick(&mut self, others: &mut Loop<'_, Self::Context>) -> Tick {
        self.inner.tick(others)
    }
}
