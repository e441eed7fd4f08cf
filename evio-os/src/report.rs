//! What performing one output produced, and handing it to the engine. The output
//! borrows the engine's buffers, so its result is reported once that borrow has ended.

use evio_proto::{Addr, ConnId, Detached, DriverError, Events, Instant, Readiness, Refused};
use rustix::io::Errno;

use crate::sys::{HANGUP, net};
use crate::{DetachedSocket, OsEngine};

/// The result of one performed output. `S` is the driver's accepted-socket type.
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Shutdown,
}

/// Checks that the engine took a report. Each report answers the output the engine
/// asked for just before, so a refusal means this driver broke the protocol: tests
/// (debug builds) fail on it; a release build goes on, as the engine has ignored it.
fn took(result: Result<(), DriverError>, what: &str) {
    debug_assert!(result.is_ok(), "the engine refused {what}: {result:?}");
}

/// Hands `report` to the engine. `accepted` gets the engine's answer for an accepted
/// socket: with an id, it watches the socket under it and says whether it could; when
/// refused, it disposes of the socket (and its answer does not matter).
pub(crate) fn deliver<H: Events, S>(
    engine: &mut OsEngine<H>,
    report: Report<S>,
    now: Instant,
    accepted: impl FnOnce(Result<ConnId, Refused>, S) -> bool,
) -> Flow {
    match report {
        Report::Nothing => {}
        Report::Accepted(listener, socket, local, peer) => {
            let answer = engine.handle_accepted(listener, local, peer, now);
            if !accepted(answer, socket)
                && let Ok(id) = answer
            {
                // Unwatched, the socket is useless: the engine's next read of it
                // reports the failure and closes it.
                took(engine.handle_conn_ready(id, HANGUP), "a hang-up report")
            }
        }
        Report::AcceptBlocked(listener) => {
            took(engine.handle_accept_blocked(listener), "an accept EAGAIN");
        }
        Report::AcceptFailed(listener, e) => took(
            engine.handle_accept_error(listener, net::accept_error(e), now),
            "an accept error",
        ),
        Report::Read(id, n) => took(engine.handle_read(id, n, now), "a read"),
        Report::Eof(id) => took(engine.handle_eof(id, now), "an end of stream"),
        Report::ReadBlocked(id) => took(engine.handle_read_blocked(id), "a read EAGAIN"),
        Report::Written(id, n) => took(engine.handle_written(id, n, now), "a write"),
        Report::WriteBlocked(id) => took(engine.handle_write_blocked(id), "a write EAGAIN"),
        Report::IoFailed(id, e) => took(
            engine.handle_io_error(id, net::io_error(e), now),
            "an I/O error",
        ),
        Report::Ready(id, readiness) => took(
            engine.handle_conn_ready(id, readiness),
            "a readiness report",
        ),
        Report::Detached(id, mut socket) => {
            took(
                engine.handle_detached(id, Detached::new(&mut socket), now),
                "a detached socket",
            );
            // A socket the handler did not take is closed here.
            drop(socket);
        }
        Report::Shutdown => return Flow::Shutdown,
    }
    Flow::Continue
}
