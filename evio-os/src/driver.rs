//! The poller driver: one thread, non-blocking sockets, epoll or kqueue.
//!
//! It performs what the engine asks and reports what happened, nothing more (see the
//! driver protocol in `evio_proto`'s crate documentation).

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use evio_proto::{Addr, ConnId, Events, Output};
use rustix::io::Errno;

use crate::report::{Flow, HANGUP, Report, deliver};
use crate::sys::net::{self, Listener, ListenerKind};
use crate::sys::poller::{EventBuf, Poller};
use crate::{DetachedSocket, Error, ServerBuilder};

/// Poller token of the wake notifier. Connection tokens are `ConnId::to_u64`, whose
/// generation (high half) has 30 bits, so tokens with bit 63 set never collide.
const WAKER_TOKEN: u64 = u64::MAX;
/// Poller token of listener `i` is `LISTENER_TOKEN | i`.
const LISTENER_TOKEN: u64 = 1 << 63;

/// The longest single wait: long enough to cost nothing, short enough for any
/// kernel's epoll_wait millisecond range.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// Per-slot flags kept next to the descriptor table.
const META_UNIX: u8 = 1;
const META_KEEPALIVE: u8 = 2;

struct Sockets<'a> {
    poller: &'a Poller,
    listeners: &'a [Listener],
    fds: Vec<Option<OwnedFd>>,
    meta: Vec<u8>,
}

impl Sockets<'_> {
    fn perform(&mut self, out: Output<'_>) -> Report<(OwnedFd, bool)> {
        match out {
            Output::Accept { listener } => {
                let Some(l) = self.listeners.get(listener) else {
                    return Report::Nothing;
                };
                match net::accept(l.fd.as_fd()) {
                    Ok((fd, peer)) => {
                        let local = match l.kind {
                            ListenerKind::Tcp(_) => net::local_addr(fd.as_fd()),
                            ListenerKind::Unix(_) => Addr::Unix,
                        };
                        // From the listener, not from `local`: a failed getsockname
                        // also gives `Addr::Unix`, and a TCP socket must stay TCP.
                        let unix = matches!(l.kind, ListenerKind::Unix(_));
                        Report::Accepted(listener, (fd, unix), local, net::to_addr(peer))
                    }
                    Err(Errno::AGAIN) => Report::AcceptBlocked(listener),
                    Err(e) => Report::AcceptFailed(listener, e),
                }
            }
            Output::Read { id, buf } => {
                let Some(fd) = self.fd(id) else {
                    return Report::IoFailed(id, Errno::BADF);
                };
                match rustix::io::read(fd, buf) {
                    Ok(0) => Report::Eof(id),
                    Ok(n) => Report::Read(id, n),
                    // Level-triggered: the poller reports the socket again if it is
                    // still readable, so an interrupted read is simply not done.
                    Err(Errno::AGAIN | Errno::INTR) => Report::ReadBlocked(id),
                    Err(e) => Report::IoFailed(id, e),
                }
            }
            Output::Transmit { id, bytes } => {
                let Some(fd) = self.fd(id) else {
                    return Report::IoFailed(id, Errno::BADF);
                };
                match net::send(fd.as_fd(), bytes) {
                    Ok(n) => Report::Written(id, n),
                    Err(Errno::AGAIN | Errno::INTR) => Report::WriteBlocked(id),
                    Err(e) => Report::IoFailed(id, e),
                }
            }
            Output::Configure { id, options } => {
                let slot = id.slot();
                if let (Some(Some(fd)), Some(meta)) = (self.fds.get(slot), self.meta.get_mut(slot))
                    && *meta & META_UNIX == 0
                {
                    net::configure(fd.as_fd(), options, *meta & META_KEEPALIVE != 0);
                    *meta = if options.keepalive.is_some() {
                        *meta | META_KEEPALIVE
                    } else {
                        *meta & !META_KEEPALIVE
                    };
                }
                Report::Nothing
            }
            Output::SetInterest { id, read, write } => match self.fd(id) {
                Some(fd) => match self.poller.modify(fd.as_fd(), id.to_u64(), read, write) {
                    Ok(()) => Report::Nothing,
                    // The socket cannot be watched: let the engine find out why by
                    // trying it.
                    Err(_) => Report::Ready(id, HANGUP),
                },
                None => Report::Nothing,
            },
            Output::Close { id } => {
                // Closing the last descriptor of a socket also removes it from the
                // poller, so no separate deregistration call is needed.
                if let Some(fd) = self.fds.get_mut(id.slot()) {
                    drop(fd.take());
                }
                Report::Nothing
            }
            Output::Detach { id } => {
                let slot = id.slot();
                let Some(fd) = self.fds.get_mut(slot).and_then(Option::take) else {
                    return Report::Detached(id, None);
                };
                // The socket lives on outside the loop: it must leave the poller now.
                let _ = self.poller.delete(fd.as_fd());
                if net::set_blocking(&fd).is_err() {
                    return Report::Detached(id, None);
                }
                let unix = self.meta.get(slot).is_some_and(|m| m & META_UNIX != 0);
                let socket = if unix {
                    DetachedSocket::Unix(std::os::unix::net::UnixStream::from(fd))
                } else {
                    DetachedSocket::Tcp(std::net::TcpStream::from(fd))
                };
                Report::Detached(id, Some(socket))
            }
            Output::PauseAccept { listener } => {
                if let Some(l) = self.listeners.get(listener) {
                    let _ = self.poller.delete(l.fd.as_fd());
                }
                Report::Nothing
            }
            Output::ResumeAccept { listener } => {
                if let Some(l) = self.listeners.get(listener) {
                    let _ = self.poller.add(
                        l.fd.as_fd(),
                        LISTENER_TOKEN | listener as u64,
                        true,
                        false,
                    );
                }
                Report::Nothing
            }
            Output::Shutdown => Report::Shutdown,
        }
    }

    fn fd(&self, id: ConnId) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.fds.get(id.slot())?.as_ref().map(AsFd::as_fd)
    }
}

/// Runs the loop until the engine shuts down.
pub(crate) fn run<H: Events>(
    handler: H,
    listeners: Vec<Listener>,
    builder: &ServerBuilder,
) -> Result<(), Error> {
    let setup = |what| move |error| Error::Setup { what, error };
    let poller = Poller::new().map_err(setup("the poller"))?;
    let (notifier, receiver) = poller
        .notifier(WAKER_TOKEN)
        .map_err(setup("the wake notifier"))?;
    let (mut engine, _wakes_end) = crate::build_engine(handler, builder.config, notifier)?;
    for (i, l) in listeners.iter().enumerate() {
        poller
            .add(l.fd.as_fd(), LISTENER_TOKEN | i as u64, true, false)
            .map_err(setup("the listener registration"))?;
    }
    let n = builder.config.max_connections;
    let mut sockets = Sockets {
        poller: &poller,
        listeners: &listeners,
        fds: (0..n).map(|_| None).collect(),
        meta: vec![0; n],
    };
    let mut events = EventBuf::new(builder.poll_events);
    let start = std::time::Instant::now();
    let now = || evio_proto::Instant::from_nanos(start.elapsed().as_nanos() as u64);

    let bound = crate::listen_addrs(&listeners);
    engine
        .handle_start(&bound, now())
        .map_err(|e| Error::TooManyListeners {
            given: e.given,
            max: e.max,
        })?;
    drop(bound);

    loop {
        // Drain: perform each output, and report its result, before the next one.
        while let Some(report) = engine.poll_output().map(|out| sockets.perform(out)) {
            let register = |id: ConnId, (fd, unix): (OwnedFd, bool)| {
                if poller.add(fd.as_fd(), id.to_u64(), true, false).is_err() {
                    return false;
                }
                sockets.fds[id.slot()] = Some(fd);
                sockets.meta[id.slot()] = if unix { META_UNIX } else { 0 };
                true
            };
            if deliver(&mut engine, report, now(), register) == Flow::Shutdown {
                return Ok(());
            }
        }
        if engine.is_shut_down() {
            return Ok(());
        }

        let timeout = engine
            .poll_timeout()
            .map(|t| t.saturating_duration_since(now()).min(MAX_WAIT));
        let mut woken = false;
        poller
            .wait(&mut events, timeout, |token, readiness| {
                if token == WAKER_TOKEN {
                    woken = true;
                } else if token & LISTENER_TOKEN != 0 {
                    let _ = engine.handle_listener_ready((token & !LISTENER_TOKEN) as usize);
                } else {
                    // Err(StaleConn): readiness collected before a close; ignored.
                    let _ = engine.handle_conn_ready(ConnId::from_u64(token), readiness);
                }
            })
            .map_err(Error::Poll)?;
        if woken {
            receiver.drain();
            engine.handle_wakes(now());
        }
        engine.handle_timeout(now());
    }
}
