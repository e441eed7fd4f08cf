//! The loop: one thread, non-blocking sockets, one poller (epoll, kqueue or poll(2)).
//!
//! It performs what the engine asks and reports what happened, nothing more (see the
//! driver protocol in `evio_proto`'s crate documentation). Every backend runs this same
//! loop; they differ only in how they wait.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use evio_proto::{Addr, ConnId, DriverError, Events, Output, Refused};
use rustix::io::Errno;

use crate::report::{Flow, Report, deliver};
use crate::sys::net::{self, Listener, ListenerKind};
use crate::sys::{HANGUP, Poller};
use crate::{DetachedSocket, Error, ServerBuilder};

/// Poller token of the wake notifier. Connection tokens are `ConnId::to_u64`, whose
/// generation (high half) has 30 bits, so tokens with bit 63 set never collide.
const WAKER_TOKEN: u64 = u64::MAX;
/// Poller token of listener `i` is `LISTENER_TOKEN | i`.
const LISTENER_TOKEN: u64 = 1 << 63;

/// The longest single wait: long enough to cost nothing, short enough for any
/// kernel's millisecond range.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// Per-slot flags kept next to the descriptor table.
const META_UNIX: u8 = 1;
const META_KEEPALIVE: u8 = 2;

/// What the loop owns besides the engine: the poller and every socket.
struct Sockets<'a, P> {
    poller: P,
    listeners: &'a [Listener],
    fds: Vec<Option<OwnedFd>>,
    meta: Vec<u8>,
    /// Sent, best-effort, to a connection refused because the pool is full.
    refusal: &'a [u8],
}

impl<P: Poller> Sockets<'_, P> {
    fn perform(&mut self, out: Output<'_>) -> Report<(OwnedFd, bool)> {
        match out {
            Output::Accept { listener } => {
                let Some(l) = self.listeners.get(listener) else {
                    debug_assert!(false, "Accept for listener {listener}, which is not ours");
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
                match net::send(fd, bytes) {
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
            Output::SetInterest { id, read, write } => {
                let Some(Some(fd)) = self.fds.get(id.slot()) else {
                    debug_assert!(false, "SetInterest for {id:?}, which has no socket");
                    return Report::Nothing;
                };
                match self.poller.modify(fd.as_fd(), id.to_u64(), read, write) {
                    Ok(()) => Report::Nothing,
                    // The socket cannot be watched: let the engine find out why by
                    // trying it.
                    Err(_) => Report::Ready(id, HANGUP),
                }
            }
            Output::Close { id } => {
                match self.fds.get_mut(id.slot()).and_then(Option::take) {
                    Some(fd) => self.poller.close(fd),
                    None => debug_assert!(false, "Close for {id:?}, which has no socket"),
                }
                Report::Nothing
            }
            Output::Detach { id } => {
                let slot = id.slot();
                let Some(fd) = self.fds.get_mut(slot).and_then(Option::take) else {
                    debug_assert!(false, "Detach for {id:?}, which has no socket");
                    return Report::Detached(id, None);
                };
                // The socket lives on outside the loop: it must leave the poller now.
                // (It is watched: a failure here would leave a socket the handler
                // takes in the poller, so it is not handed over.)
                if self.poller.delete(fd.as_fd()).is_err() || net::set_blocking(&fd).is_err() {
                    self.poller.close(fd);
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
                    let removed = self.poller.delete(l.fd.as_fd());
                    debug_assert!(removed.is_ok(), "pausing listener {listener}: {removed:?}");
                }
                Report::Nothing
            }
            Output::ResumeAccept { listener } => {
                if let Some(l) = self.listeners.get(listener) {
                    // A listener that cannot be watched again stays paused; the server
                    // goes on serving its connections and its other listeners.
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

    fn fd(&self, id: ConnId) -> Option<BorrowedFd<'_>> {
        self.fds.get(id.slot())?.as_ref().map(AsFd::as_fd)
    }

    /// Watches a socket the engine accepted under its id; `false` if it cannot be
    /// watched (the socket is then closed).
    fn register(&mut self, id: ConnId, (fd, unix): (OwnedFd, bool)) -> bool {
        if self
            .poller
            .add(fd.as_fd(), id.to_u64(), true, false)
            .is_err()
        {
            return false;
        }
        self.fds[id.slot()] = Some(fd);
        self.meta[id.slot()] = if unix { META_UNIX } else { 0 };
        true
    }
}

/// Runs the loop with poller `P` until the engine shuts down.
pub(crate) fn run<H: Events, P: Poller>(
    handler: H,
    listeners: Vec<Listener>,
    builder: &ServerBuilder,
    config: evio_proto::Config,
) -> Result<(), Error> {
    let setup = |what| move |error| Error::Setup { what, error };
    let n = config.max_connections;
    let (poller, notifier) = P::new(
        n.saturating_add(listeners.len()),
        builder.poll_events,
        WAKER_TOKEN,
    )
    .map_err(setup("the poller and its wake notifier"))?;
    let (mut engine, _wakes_end) = crate::build_engine(handler, config, notifier)?;
    let mut sockets = Sockets {
        poller,
        listeners: &listeners,
        fds: (0..n).map(|_| None).collect(),
        meta: vec![0; n],
        refusal: builder.refusal.as_deref().unwrap_or_default(),
    };
    for (i, l) in listeners.iter().enumerate() {
        sockets
            .poller
            .add(l.fd.as_fd(), LISTENER_TOKEN | i as u64, true, false)
            .map_err(setup("the listener registration"))?;
    }
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
            let flow = deliver(&mut engine, report, now(), |id, socket| match id {
                Ok(id) => sockets.register(id, socket),
                Err(refused) => {
                    if refused == Refused::PoolFull {
                        net::refuse(socket.0.as_fd(), sockets.refusal);
                    }
                    drop(socket);
                    false
                }
            });
            if flow == Flow::Shutdown {
                return Ok(());
            }
        }
        debug_assert!(!engine.is_shut_down(), "Shutdown is reported as a flow");

        let timeout = engine
            .poll_timeout()
            .map(|t| t.saturating_duration_since(now()).min(MAX_WAIT));
        let mut woken = false;
        sockets
            .poller
            .wait(timeout, |token, readiness| {
                if token == WAKER_TOKEN {
                    woken = true;
                } else if token & LISTENER_TOKEN != 0 {
                    let listener = (token & !LISTENER_TOKEN) as usize;
                    let known = engine.handle_listener_ready(listener);
                    debug_assert!(known.is_ok(), "listener {listener}: {known:?}");
                } else {
                    match engine.handle_conn_ready(ConnId::from_u64(token), readiness) {
                        // Expected, rarely: epoll and kqueue watch the open socket, not
                        // the descriptor, and a child process that inherited a copy
                        // keeps a closed connection's socket open and reported.
                        Ok(()) | Err(DriverError::StaleConn) => {}
                        Err(e) => debug_assert!(false, "token {token:#x}: {e:?}"),
                    }
                }
            })
            .map_err(Error::Poll)?;
        if woken {
            engine.handle_wakes(now());
        }
        engine.handle_timeout(now());
    }
}
