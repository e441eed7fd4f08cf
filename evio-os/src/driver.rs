//! The loop: one thread, non-blocking sockets, one poller (epoll, kqueue or poll(2));
//! in a server of several loops, one of them, with its inbox and hand-off ring.
//!
//! It performs what the engine asks and reports what happened, nothing more (see the
//! driver protocol in `evio_proto`'s crate documentation). Every backend runs this same
//! loop; they differ only in how they wait.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use evio_proto::{
    Addr, BuildError, Config, ConnId, ConnectAddr, Detached, DriverError, Events, Interest,
    ListenAddr, ListenerId, Notify, Output, Readiness, Refused, Slot,
};
use rustix::io::Errno;

use crate::group::Group;
use crate::handoff::Adopted;
use crate::handoff::Handoff;
use crate::inbox::Inboxes;
use crate::sys::net::{self, Listener, ListenerKind};
use crate::sys::{self, FineTimers, Poller};
use crate::{DetachedSocket, Error};

/// The place of one loop among several: its number, the inboxes and the hand-off
/// rings of the server.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Siblings<'a> {
    pub index: usize,
    pub inboxes: &'a std::sync::Arc<Inboxes>,
    pub handoff: &'a Handoff,
}

/// What a loop's driver takes from the builder.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoopOptions<'a> {
    /// Size of the poller's event array.
    pub poll_events: usize,
    /// Sent, best-effort, to a connection refused because the pool is full.
    pub refusal: &'a [u8],
}

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
    /// The other loops of the server, if there are any: where accepted connections of
    /// a listener that hands off may go.
    siblings: Option<Siblings<'a>>,
    /// The rotating candidate of the next hand-off.
    next_candidate: usize,
    /// Where a batch of sends goes in one submit (`None`: one `send(2)` each).
    #[cfg(evio_uring)]
    ring: Option<sys::uring::Ring>,
}

/// What the loop does after an output was performed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Continue,
    /// The engine accepted a connection whose socket could not be watched: the engine
    /// must hear of it (as a hang-up, so that its read finds out why) or it would wait
    /// for that socket forever.
    Unwatched(ConnId),
    Shutdown,
}

impl<P: Poller> Sockets<'_, P> {
    fn perform<H: Events>(&mut self, out: OsOutput<'_, H>) -> Step {
        match out {
            Output::Accept(accept) => {
                let listener = accept.listener();
                let Some(l) = self.listeners.get(listener.index()) else {
                    debug_assert!(false, "Accept on {listener}, which is not ours");
                    return Step::Continue;
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
                        let peer = net::to_addr(peer);
                        // A listener that hands off: the less loaded of two loops takes
                        // it (this one, or another through its ring).
                        let fd = match self.siblings.filter(|_| l.hands_off) {
                            Some(s) => {
                                let to = s.handoff.choose(s.index, &mut self.next_candidate);
                                if to == s.index {
                                    fd
                                } else {
                                    let socket = Adopted {
                                        fd,
                                        listener,
                                        local,
                                        peer,
                                        unix,
                                    };
                                    match s.handoff.offer(to, socket) {
                                        Ok(()) => {
                                            accept.handed_off();
                                            return Step::Continue;
                                        }
                                        // That loop's ring is full: this one keeps it.
                                        Err(socket) => socket.fd,
                                    }
                                }
                            }
                            None => fd,
                        };
                        match accept.done(local, peer) {
                            Ok(id) => {
                                if self.register(id, fd, unix) {
                                    Step::Continue
                                } else {
                                    Step::Unwatched(id)
                                }
                            }
                            Err(refused) => {
                                if refused == Refused::PoolFull {
                                    net::refuse(fd.as_fd(), self.refusal);
                                }
                                drop(fd);
                                Step::Continue
                            }
                        }
                    }
                    Err(Errno::AGAIN) => {
                        accept.would_block();
                        Step::Continue
                    }
                    Err(e) => {
                        accept.failed(net::accept_error(e));
                        Step::Continue
                    }
                }
            }
            Output::Read(mut read) => {
                let Some(fd) = fd_of(&self.fds, read.id()) else {
                    read.failed(net::io_error(Errno::BADF));
                    return Step::Continue;
                };
                match rustix::io::read(fd, read.buf()) {
                    Ok(n) => read.done(n),
                    // Level-triggered: the poller reports the socket again if it is
                    // still readable, so an interrupted read is simply not done.
                    Err(Errno::AGAIN | Errno::INTR) => read.would_block(),
                    Err(e) => read.failed(net::io_error(e)),
                }
                Step::Continue
            }
            Output::Transmit(mut transmit) => {
                let Some(fd) = fd_of(&self.fds, transmit.id()) else {
                    transmit.failed(net::io_error(Errno::BADF));
                    return Step::Continue;
                };
                match net::send(fd, transmit.bytes()) {
                    Ok(n) => transmit.done(n),
                    Err(Errno::AGAIN | Errno::INTR) => transmit.would_block(),
                    Err(e) => transmit.failed(net::io_error(e)),
                }
                Step::Continue
            }
            Output::TransmitBatch(mut batch) => {
                self.send_batch(&mut batch);
                Step::Continue
            }
            Output::Detach(detach) => {
                let id = detach.id();
                let slot = id.slot();
                let Some(fd) = self.fds.get_mut(slot).and_then(Option::take) else {
                    debug_assert!(false, "Detach for {id:?}, which has no socket");
                    detach.failed();
                    return Step::Continue;
                };
                // The socket lives on outside the loop: it must leave the poller now.
                // (It is watched: a failure here would leave a socket the handler
                // takes in the poller, so it is not handed over.)
                if self.poller.delete(fd.as_fd()).is_err() || net::set_blocking(&fd).is_err() {
                    self.poller.close(fd);
                    detach.failed();
                    return Step::Continue;
                }
                let unix = self.meta.get(slot).is_some_and(|m| m & META_UNIX != 0);
                let mut socket = Some(if unix {
                    DetachedSocket::Unix(std::os::unix::net::UnixStream::from(fd))
                } else {
                    DetachedSocket::Tcp(std::net::TcpStream::from(fd))
                });
                detach.done(Detached::new(&mut socket));
                // A socket the handler did not take is closed here.
                drop(socket);
                Step::Continue
            }
            Output::Connect(connect) => {
                let id = connect.id();
                let unix = matches!(connect.addr(), ConnectAddr::Unix(_));
                match net::connect(connect.addr()) {
                    Ok(fd) => {
                        if self
                            .poller
                            .add(fd.as_fd(), id.to_u64(), Interest::WRITE)
                            .is_err()
                        {
                            // The socket is closed here; the engine hears of a failure.
                            connect.failed(net::io_error(Errno::NOMEM));
                            return Step::Continue;
                        }
                        self.fds[id.slot()] = Some(fd);
                        self.meta[id.slot()] = if unix { META_UNIX } else { 0 };
                        connect.started();
                    }
                    Err(e) => connect.failed(net::connect_error(e)),
                }
                Step::Continue
            }
            Output::FinishConnect(finish) => {
                let Some(fd) = fd_of(&self.fds, finish.id()) else {
                    debug_assert!(
                        false,
                        "FinishConnect for {:?}, which has no socket",
                        finish.id()
                    );
                    finish.failed(net::io_error(Errno::BADF));
                    return Step::Continue;
                };
                match net::connect_outcome(fd) {
                    Ok(true) => {
                        let unix = self
                            .meta
                            .get(finish.id().slot())
                            .is_some_and(|m| m & META_UNIX != 0);
                        let local = if unix {
                            Addr::Unix
                        } else {
                            net::local_addr(fd)
                        };
                        finish.done(local);
                    }
                    Ok(false) => finish.in_progress(),
                    Err(e) => finish.failed(net::connect_error(e)),
                }
                Step::Continue
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
                Step::Continue
            }
            Output::SetInterest { id, interest } => {
                let Some(Some(fd)) = self.fds.get(id.slot()) else {
                    debug_assert!(false, "SetInterest for {id:?}, which has no socket");
                    return Step::Continue;
                };
                match self.poller.modify(fd.as_fd(), id.to_u64(), interest) {
                    Ok(()) => Step::Continue,
                    // The socket cannot be watched: let the engine find out why by
                    // trying it.
                    Err(_) => Step::Unwatched(id),
                }
            }
            Output::Close { id } => {
                match self.fds.get_mut(id.slot()).and_then(Option::take) {
                    Some(fd) => self.poller.close(fd),
                    None => debug_assert!(false, "Close for {id:?}, which has no socket"),
                }
                Step::Continue
            }
            Output::Abort { id } => {
                match self.fds.get_mut(id.slot()).and_then(Option::take) {
                    Some(fd) => {
                        net::set_reset_on_close(fd.as_fd());
                        self.poller.close(fd);
                    }
                    None => debug_assert!(false, "Abort for {id:?}, which has no socket"),
                }
                Step::Continue
            }
            Output::ShutdownWrite { id } => {
                match fd_of(&self.fds, id) {
                    // A peer that is gone already: the lingering close's next read
                    // finds out.
                    Some(fd) => net::shutdown_write(fd),
                    None => debug_assert!(false, "ShutdownWrite for {id:?}, which has no socket"),
                }
                Step::Continue
            }
            Output::PauseAccept { listener } => {
                if let Some(l) = self.listeners.get(listener.index()).filter(|l| l.watched) {
                    let removed = self.poller.delete(l.fd.as_fd());
                    debug_assert!(removed.is_ok(), "pausing {listener}: {removed:?}");
                }
                Step::Continue
            }
            Output::ResumeAccept { listener } => {
                if let Some(l) = self.listeners.get(listener.index()).filter(|l| l.watched) {
                    // A listener that cannot be watched again stays paused; the server
                    // goes on serving its connections and its other listeners.
                    let _ = self.poller.add(
                        l.fd.as_fd(),
                        LISTENER_TOKEN | listener.index() as u64,
                        Interest::READ,
                    );
                }
                Step::Continue
            }
            Output::Shutdown => Step::Shutdown,
        }
    }

    /// Adopts a connection another loop accepted: the engine opens it, and its
    /// socket is watched here.
    fn adopt<H: Events>(&mut self, engine: &mut OsEngine<H>, socket: Adopted) {
        match engine.handle_adopt(socket.listener, socket.local, socket.peer) {
            Ok(id) => {
                if !self.register(id, socket.fd, socket.unix) {
                    let live = engine.handle_conn_ready(id, Readiness::HANGUP);
                    debug_assert!(live.is_ok(), "{id:?}: {live:?}");
                }
            }
            Err(Refused::PoolFull) => net::refuse(socket.fd.as_fd(), self.refusal),
            Err(_) => {}
        }
    }

    /// Watches a socket the engine accepted under its id; `false` if it cannot be
    /// watched (the socket is then closed).
    fn register(&mut self, id: ConnId, fd: OwnedFd, unix: bool) -> bool {
        if self
            .poller
            .add(fd.as_fd(), id.to_u64(), Interest::READ)
            .is_err()
        {
            return false;
        }
        self.fds[id.slot()] = Some(fd);
        self.meta[id.slot()] = if unix { META_UNIX } else { 0 };
        true
    }
}

/// The socket of connection `id`, if it has one.
impl<P: Poller> Sockets<'_, P> {
    /// Performs a batch of sends: in one io_uring submit where the backend and the
    /// kernel allow it, else with one `send(2)` each.
    fn send_batch<H: Events>(&mut self, batch: &mut OsBatch<'_, H>) {
        #[cfg(evio_uring)]
        if let Some(ring) = &mut self.ring {
            let fds = &self.fds;
            if ring.send(|id| fd_of(fds, id), batch).is_err() {
                // Every entry is reported; later batches go by `send(2)`.
                self.ring = None;
            }
            return;
        }
        for k in 0..batch.len() {
            sys::send_entry(fd_of(&self.fds, batch.id(k)), batch, k);
        }
    }
}

fn fd_of(fds: &[Option<OwnedFd>], id: ConnId) -> Option<BorrowedFd<'_>> {
    fds.get(id.slot())?.as_ref().map(AsFd::as_fd)
}

/// Runs the loop with poller `P` until the engine shuts down.
pub(crate) fn run<H: Events, P: Poller>(
    handler: H,
    listeners: Vec<Listener>,
    options: LoopOptions<'_>,
    config: evio_proto::Config,
    group: &Group,
    loops: Option<Siblings<'_>>,
) -> Result<(), Error> {
    let setup = |what| move |error| Error::Setup { what, error };
    let n = config.max_connections;
    // The ring for batched sends is made up front, so that the steady state allocates
    // nothing; without one (the kernel refuses it) a batch goes by `send(2)`.
    #[cfg(evio_uring)]
    let ring = (P::URING_SENDS && config.batch_sends)
        .then(sys::uring::Ring::new)
        .and_then(Result::ok);
    let (poller, notifier) = P::new(
        n.saturating_add(listeners.len()),
        options.poll_events,
        WAKER_TOKEN,
    )
    .map_err(setup("the poller and its wake notifier"))?;
    let mut engine = build_engine(handler, config, notifier)?;
    let mut spare = loops.map(|s| {
        engine.join_loops(evio_proto::Loops::from_arc(s.index, s.inboxes.clone()));
        (s.inboxes.spare(), s.handoff.spare())
    });
    let mut sockets = Sockets {
        poller,
        listeners: &listeners,
        fds: (0..n).map(|_| None).collect(),
        meta: vec![0; n],
        refusal: options.refusal,
        siblings: loops,
        next_candidate: loops.map_or(0, |s| s.index),
        #[cfg(evio_uring)]
        ring,
    };
    for (i, l) in listeners.iter().enumerate().filter(|(_, l)| l.watched) {
        sockets
            .poller
            .add(l.fd.as_fd(), LISTENER_TOKEN | i as u64, Interest::READ)
            .map_err(setup("the listener registration"))?;
    }
    // Naps of tens of microseconds need timers that keep them.
    let _fine_timers = config.coalesce.map(|_| FineTimers::new());
    let start = std::time::Instant::now();
    let now = || evio_proto::Instant::from_nanos(start.elapsed().as_nanos() as u64);

    let bound = listen_addrs(&listeners);
    engine.handle_time(now());
    engine
        .handle_start(&bound)
        .map_err(|e| Error::TooManyListeners {
            given: e.given,
            max: e.max,
        })?;
    drop(bound);
    if group.join(engine.waker()) {
        engine.handle_shutdown();
    }
    if let (Some(s), Some((mail, _))) = (loops, &mut spare) {
        s.inboxes.open(s.index, engine.waker());
        s.handoff.open(s.index, engine.waker());
        // What other loops posted before this one was up.
        s.inboxes.deliver(s.index, &mut engine, mail);
    }

    loop {
        // Connections the other loops handed to this one (what their `opened` asks
        // for is drained next).
        if let (Some(s), Some((_, ring))) = (loops, &mut spare) {
            s.handoff
                .take(s.index, ring, |socket| sockets.adopt(&mut engine, socket));
        }
        // Drain: perform each output, and report its result, before the next one.
        loop {
            // The output borrows the engine until `perform` has reported it.
            let step = match engine.poll_output() {
                Some(out) => sockets.perform(out),
                None => break,
            };
            match step {
                Step::Continue => {}
                Step::Unwatched(id) => {
                    let live = engine.handle_conn_ready(id, Readiness::HANGUP);
                    debug_assert!(live.is_ok(), "{id:?}: {live:?}");
                }
                Step::Shutdown => return Ok(()),
            }
        }
        // This loop's load, for the other loops' hand-off choices.
        if let Some(s) = loops {
            s.handoff.publish_load(s.index, engine.open_connections());
        }

        let mut timeout = engine
            .poll_timeout()
            .map(|t| t.saturating_duration_since(now()).min(MAX_WAIT));
        if let Some(nap) = engine.poll_nap() {
            // Asleep on a timer, not in the poller: a socket turning ready meanwhile
            // wakes nobody, and the poll after the nap takes what came in one batch.
            sys::nap(timeout.map_or(nap, |t| nap.min(t)));
            timeout = Some(Duration::ZERO);
        }
        let mut woken = false;
        let mut time_told = false;
        // A loop that sleeps in its poller is woken by a hand-off; one about to, with
        // a socket already waiting, does not sleep.
        if let Some(s) = loops
            && !s.handoff.may_sleep(s.index)
        {
            timeout = Some(Duration::ZERO);
        }
        sockets
            .poller
            .wait(timeout, |token, readiness| {
                // The time the wait ended, before anything it found can run a handler.
                if !time_told {
                    engine.handle_time(now());
                    time_told = true;
                }
                if token == WAKER_TOKEN {
                    woken = true;
                } else if token & LISTENER_TOKEN != 0 {
                    let listener = ListenerId::new((token & !LISTENER_TOKEN) as usize);
                    let known = listener.map(|l| engine.handle_listener_ready(l));
                    debug_assert!(
                        matches!(known, Some(Ok(()))),
                        "listener token {token:#x}: {known:?}"
                    );
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
        if let Some(s) = loops {
            s.handoff.awake(s.index);
        }
        if !time_told {
            // The wait timed out: a deadline is due.
            engine.handle_time(now());
        }
        if woken {
            // Another loop of the server stopped (it woke this one to say so).
            if group.stopping() {
                engine.handle_shutdown();
            }
            engine.handle_wakes();
            // Mail from the other loops (their posts notify this driver).
            if let (Some(s), Some((mail, _))) = (loops, &mut spare) {
                s.inboxes.deliver(s.index, &mut engine, mail);
            }
        }
    }
}

/// The engine type the driver runs.
type OsEngine<H> = evio_proto::HeapEngine<H>;

/// What that engine asks for.
type OsOutput<'a, H> = evio_proto::Output<'a, H, Vec<Slot<<H as Events>::Context>>, Vec<u8>>;
/// A batch of sends, as the loop's engine hands it over.
type OsBatch<'a, H> = evio_proto::TransmitBatch<'a, H, Vec<Slot<<H as Events>::Context>>, Vec<u8>>;

/// Builds the engine over zeroed heap storage, with a waker that notifies through
/// `notify`.
fn build_engine<H: Events, N: Notify + 'static>(
    handler: H,
    config: Config,
    notify: N,
) -> Result<OsEngine<H>, Error> {
    OsEngine::allocate(handler, config, notify).map_err(|e| match e {
        BuildError::OutOfMemory => Error::Setup {
            what: "the connection tables and buffers",
            error: std::io::ErrorKind::OutOfMemory.into(),
        },
        e => Error::Config(e),
    })
}

/// The listeners' bound addresses, in order, as `serving` reports them.
fn listen_addrs(listeners: &[Listener]) -> Vec<ListenAddr<'_>> {
    listeners
        .iter()
        .map(|l| match &l.kind {
            ListenerKind::Tcp(a) => ListenAddr::Ip(*a),
            ListenerKind::Unix(f) => ListenAddr::Unix(&f.path),
        })
        .collect()
}
