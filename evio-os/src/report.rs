//! What performing one output produced, and handing it to the engine: one place for
//! both drivers, so they cannot drift apart in how they report.

use evio_proto::{Addr, ConnId, Detached, Events, Instant, Readiness};
use rustix::io::Errno;

use crate::sys::net;
use crate::{DetachedSocket, OsEngine};

/// A hang-up report: the engine reads to learn what happened to the socket.
pub(crate) const HANGUP: Readiness = Readiness {
    readable: false,
    writable: false,
    hangup: true,
};

/// The result of one performed output, reported once the output's borrow of the engine
/// has ended. `S` is the driver's own accepted-socket type.
pub(crate) enum Report<S> {
    Nothing,
    Accepted(usize, S, Addr, Addr),
    AcceptBlocked(usize),
    AcceptFailed(usize, Errno),
    Read(ConnId, usize),
    Eof(ConnId),
    ReadBlocked(ConnId),
    Written(ConnId, usize),
    WriteBlocked(ConnId),
    IoFailed(ConnId, Errno),
    Ready(ConnId, Readiness),
    Detached(ConnId, Option<DetachedSocket>),
    Shutdown,
}

/// Whether the loop goes on after a report.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Shutdown,
}

/// Hands `report` to the engine. `register` takes a socket the engine accepted, under
/// its id, and says whether the driver could watch it; a refused socket is dropped
/// (closed) here.
pub(crate) fn deliver<H: Events, S>(
    engine: &mut OsEngine<H>,
    report: Report<S>,
    now: Instant,
    register: impl FnOnce(ConnId, S) -> bool,
) -> Flow {
    // Engine errors here are `StaleConn`/`NotRequested` for results about connections
    // that closed meanwhile: nothing to do about them.
    match report {
        Report::Nothing => {}
        Report::Accepted(listener, socket, local, peer) => {
            if let Ok(id) = engine.handle_accepted(listener, local, peer, now)
                && !register(id, socket)
            {
                // Unwatched, the socket is useless: the engine's next read of it
                // reports the failure and closes it.
                let _ = engine.handle_conn_ready(id, HANGUP);
            }
        }
        Report::AcceptBlocked(listener) => {
            let _ = engine.handle_accept_blocked(listener);
        }
        Report::AcceptFailed(listener, e) => {
            let _ = engine.handle_accept_error(listener, net::accept_error(e), now);
        }
        Report::Read(id, n) => {
            let _ = engine.handle_read(id, n, now);
        }
        Report::Eof(id) => {
            let _ = engine.handle_eof(id, now);
        }
        Report::ReadBlocked(id) => {
            let _ = engine.handle_read_blocked(id);
        }
        Report::Written(id, n) => {
            let _ = engine.handle_written(id, n, now);
        }
        Report::WriteBlocked(id) => {
            let _ = engine.handle_write_blocked(id);
        }
        Report::IoFailed(id, e) => {
            let _ = engine.handle_io_error(id, net::io_error(e), now);
        }
        Report::Ready(id, readiness) => {
            let _ = engine.handle_conn_ready(id, readiness);
        }
        Report::Detached(id, mut socket) => {
            let _ = engine.handle_detached(id, Detached::new(&mut socket), now);
            // A socket the handler did not take is closed here.
            drop(socket);
        }
        Report::Shutdown => return Flow::Shutdown,
    }
    Flow::Continue
}
