//! The std fallback driver: the same engine, fed by threads that block in the kernel.
//!
//! For targets without epoll or kqueue, for `-net` schemes, and under
//! `--cfg evio_force_std`. The engine runs on the calling thread, as with the poller.
//! Readiness is produced by threads instead of a poller:
//!
//! - each listener has an accepting thread, which accepts one connection when the loop
//!   asks for one and found none waiting, and hands it over;
//! - each connection has a reading thread, which blocks in a `MSG_PEEK` receive when
//!   the loop wants input and reports how many bytes are waiting (the loop then reads
//!   them itself, so no byte is ever read by a thread that might not deliver it, and a
//!   detached socket keeps everything unread), and a writing thread, which takes the
//!   loop's output and blocks in `send` until the kernel has it.
//!
//! Results travel to the loop through one mutex-protected queue and a condition
//! variable, which the wake notifier also signals: nothing busy-polls, and a wake from
//! any thread (the loop's own included, since the loop never holds that lock while it
//! runs a handler) cannot deadlock.

use std::collections::VecDeque;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use evio_proto::{Addr, ConnId, Events, Notify, Output, Readiness};
use rustix::io::Errno;
use rustix::net::RecvFlags;

use crate::report::{Flow, HANGUP, Report, deliver};
use crate::sys::net::{self, Listener, ListenerKind};
use crate::{DetachedSocket, Error, ServerBuilder};

/// How long `serve` waits at shutdown for writing threads to flush what the loop
/// handed them before it cuts their sockets.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// The largest peek and write buffer of a connection's threads.
const MAX_THREAD_BUFFER: usize = 64 * 1024;
const THREAD_STACK: usize = 128 * 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking handler never runs under these locks; poison carries no meaning here.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn errno(e: &io::Error) -> Errno {
    Errno::from_io_error(e).unwrap_or(Errno::IO)
}

enum HubEvent {
    Listener(usize),
    Conn(u64, Readiness),
    /// A connection thread exited (a pending detach may now complete).
    Released,
}

/// Where every thread's results meet the loop.
struct Hub {
    state: Mutex<HubState>,
    cv: Condvar,
}

struct HubState {
    events: VecDeque<HubEvent>,
    woken: bool,
    /// The loop is blocked on `cv` (signalling otherwise would be a wasted futex call).
    waiting: bool,
}

impl Hub {
    fn post(&self, ev: HubEvent) {
        let mut st = lock(&self.state);
        st.events.push_back(ev);
        if st.waiting {
            self.cv.notify_one();
        }
    }
}

/// The wake notifier: flags the hub and signals its condition variable.
struct HubNotify(Arc<Hub>);

impl Notify for HubNotify {
    fn notify(&self) {
        let mut st = lock(&self.0.state);
        st.woken = true;
        if st.waiting {
            self.0.cv.notify_one();
        }
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }

    fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }

    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
        }
    }

    fn into_detached(self) -> DetachedSocket {
        match self {
            Stream::Tcp(s) => DetachedSocket::Tcp(s),
            Stream::Unix(s) => DetachedSocket::Unix(s),
        }
    }
}

/// One connection's socket and the state its threads share with the loop.
struct StdConn {
    stream: Stream,
    token: u64,
    hub: Arc<Hub>,
    state: Mutex<ConnState>,
    cv: Condvar,
}

struct ConnState {
    /// The loop wants to hear when input arrives.
    want_read: bool,
    /// Bytes the reading thread saw waiting (the loop reads at most this many, so its
    /// blocking read returns at once).
    avail: usize,
    eof: bool,
    read_err: Option<Errno>,
    /// Output handed over by the loop, not yet taken by the writing thread.
    out: Vec<u8>,
    writing: bool,
    /// The loop wants to hear when the writing thread can take more.
    want_write: bool,
    write_err: Option<Errno>,
    closing: bool,
    detaching: bool,
    /// The reading / writing thread is blocked on `cv`.
    reader_waiting: bool,
    writer_waiting: bool,
}

impl StdConn {
    fn post(&self, r: Readiness) {
        self.hub.post(HubEvent::Conn(self.token, r));
    }

    /// Signals the connection's threads, if one is waiting (`st` is this connection's
    /// locked state).
    fn signal(&self, st: &ConnState) {
        if st.reader_waiting || st.writer_waiting {
            self.cv.notify_all();
        }
    }
}

const READABLE: Readiness = Readiness {
    readable: true,
    writable: false,
    hangup: false,
};
const WRITABLE: Readiness = Readiness {
    readable: false,
    writable: true,
    hangup: false,
};

/// Exits a connection thread: the reference goes first, so the loop, woken by the
/// event, sees the count drop.
fn release(conn: Arc<StdConn>) {
    let hub = conn.hub.clone();
    drop(conn);
    hub.post(HubEvent::Released);
}

fn reader(conn: Arc<StdConn>, mut buf: Vec<u8>) {
    loop {
        {
            let mut st = lock(&conn.state);
            while !st.want_read && !st.closing && !st.detaching {
                st.reader_waiting = true;
                st = conn.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
                st.reader_waiting = false;
            }
            if st.closing || st.detaching {
                break;
            }
        }
        let r = rustix::net::recv(conn.stream.fd(), &mut buf[..], RecvFlags::PEEK);
        let mut st = lock(&conn.state);
        if st.closing || st.detaching {
            break;
        }
        let readiness = match r {
            Ok((0, _)) => {
                st.eof = true;
                READABLE
            }
            Ok((n, _)) => {
                st.avail = n;
                READABLE
            }
            // The periodic time-out (see `std_detach_check`), or a signal.
            Err(Errno::AGAIN | Errno::INTR) => continue,
            Err(e) => {
                st.read_err = Some(e);
                HANGUP
            }
        };
        st.want_read = false;
        drop(st);
        conn.post(readiness);
    }
    release(conn);
}

fn writer(conn: Arc<StdConn>, mut local: Vec<u8>) {
    loop {
        let mut st = lock(&conn.state);
        while st.out.is_empty() && !st.closing && !st.detaching {
            st.writer_waiting = true;
            st = conn.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
            st.writer_waiting = false;
        }
        if st.out.is_empty() {
            // Closing or detaching, with everything flushed.
            if st.closing {
                conn.stream.shutdown();
            }
            break;
        }
        std::mem::swap(&mut st.out, &mut local);
        st.writing = true;
        drop(st);
        let mut result = Ok(());
        let mut at = 0;
        while at < local.len() {
            match net::send(conn.stream.fd(), &local[at..]) {
                Ok(n) => at += n,
                Err(Errno::INTR) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        local.clear();
        let mut st = lock(&conn.state);
        st.writing = false;
        match result {
            Err(e) => {
                // Keep running until the close, so the close still shuts the socket.
                st.write_err = Some(e);
                st.out.clear();
                drop(st);
                conn.post(HANGUP);
            }
            Ok(()) if st.want_write && st.out.is_empty() => {
                st.want_write = false;
                drop(st);
                conn.post(WRITABLE);
            }
            Ok(()) => {}
        }
    }
    release(conn);
}

enum StdListener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl StdListener {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            StdListener::Tcp(l) => l.as_fd(),
            StdListener::Unix(l) => l.as_fd(),
        }
    }
}

type Accepted = Result<(Stream, Addr, Addr), Errno>;

struct Acceptor {
    listener: StdListener,
    index: usize,
    hub: Arc<Hub>,
    state: Mutex<AcceptState>,
    cv: Condvar,
}

struct AcceptState {
    armed: bool,
    pending: Option<Accepted>,
    stop: bool,
    exited: bool,
}

fn accept_one(l: &StdListener) -> Accepted {
    match l {
        StdListener::Tcp(l) => {
            let (s, peer) = l.accept().map_err(|e| errno(&e))?;
            let local = s.local_addr().map(Addr::Ip).unwrap_or(Addr::Unix);
            Ok((Stream::Tcp(s), local, Addr::Ip(peer)))
        }
        StdListener::Unix(l) => {
            let (s, _) = l.accept().map_err(|e| errno(&e))?;
            Ok((Stream::Unix(s), Addr::Unix, Addr::Unix))
        }
    }
}

fn acceptor(acc: Arc<Acceptor>) {
    accept_loop(&acc);
    lock(&acc.state).exited = true;
    acc.cv.notify_all();
}

fn accept_loop(acc: &Acceptor) {
    loop {
        {
            let mut st = lock(&acc.state);
            while !st.armed && !st.stop {
                st = acc.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
            if st.stop {
                return;
            }
            st.armed = false;
        }
        let r = accept_one(&acc.listener);
        let mut st = lock(&acc.state);
        if st.stop {
            return;
        }
        st.pending = Some(r);
        drop(st);
        acc.hub.post(HubEvent::Listener(acc.index));
    }
}

fn spawn<F: FnOnce() + Send + 'static>(
    name: &str,
    f: F,
) -> io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .stack_size(THREAD_STACK)
        .spawn(f)
}

struct Table {
    acceptors: Vec<Arc<Acceptor>>,
    conns: Vec<Option<Arc<StdConn>>>,
    /// Closed connections whose threads may still be flushing.
    closing: Vec<Arc<StdConn>>,
    /// Detached connections waiting for their threads to let go of the socket.
    detaching: Vec<(ConnId, Arc<StdConn>)>,
}

impl Table {
    fn conn(&self, id: ConnId) -> Option<&Arc<StdConn>> {
        self.conns.get(id.slot())?.as_ref()
    }

    fn perform(&mut self, out: Output<'_>) -> Report<Stream> {
        match out {
            Output::Accept { listener } => {
                let Some(acc) = self.acceptors.get(listener) else {
                    return Report::Nothing;
                };
                let mut st = lock(&acc.state);
                match st.pending.take() {
                    Some(Ok((s, local, peer))) => Report::Accepted(listener, s, local, peer),
                    Some(Err(e)) => Report::AcceptFailed(listener, e),
                    None => {
                        st.armed = true;
                        acc.cv.notify_all();
                        Report::AcceptBlocked(listener)
                    }
                }
            }
            Output::Read { id, buf } => {
                let Some(conn) = self.conn(id) else {
                    return Report::IoFailed(id, Errno::BADF);
                };
                let mut st = lock(&conn.state);
                if let Some(e) = st.read_err {
                    return Report::IoFailed(id, e);
                }
                if st.avail > 0 {
                    let want = st.avail.min(buf.len());
                    // The socket is blocking, but `want` bytes are waiting: this read
                    // returns at once.
                    match rustix::io::read(conn.stream.fd(), &mut buf[..want]) {
                        Ok(0) => Report::Eof(id),
                        Ok(n) => {
                            st.avail -= n;
                            if st.avail == 0 {
                                st.want_read = true;
                                conn.signal(&st);
                            }
                            Report::Read(id, n)
                        }
                        Err(e) => Report::IoFailed(id, e),
                    }
                } else if let Some(e) = st.write_err {
                    // The writing thread's send failed after the loop had handed it the
                    // bytes; its hang-up report made the engine read, and this is what
                    // the socket has to say (a poller's send would have returned it).
                    Report::IoFailed(id, e)
                } else if st.eof {
                    Report::Eof(id)
                } else {
                    st.want_read = true;
                    conn.signal(&st);
                    Report::ReadBlocked(id)
                }
            }
            Output::Transmit { id, bytes } => {
                let Some(conn) = self.conn(id) else {
                    return Report::IoFailed(id, Errno::BADF);
                };
                let mut st = lock(&conn.state);
                if let Some(e) = st.write_err {
                    return Report::IoFailed(id, e);
                }
                let room = st.out.capacity() - st.out.len();
                let n = room.min(bytes.len());
                if n < bytes.len() {
                    st.want_write = true;
                }
                if n == 0 {
                    return Report::WriteBlocked(id);
                }
                st.out.extend_from_slice(&bytes[..n]);
                conn.signal(&st);
                Report::Written(id, n)
            }
            Output::Configure { id, options } => {
                if let Some(conn) = self.conn(id)
                    && let Stream::Tcp(_) = conn.stream
                {
                    net::configure(conn.stream.fd(), options, true);
                }
                Report::Nothing
            }
            Output::SetInterest { id, read, write } => {
                let Some(conn) = self.conn(id) else {
                    return Report::Nothing;
                };
                let mut st = lock(&conn.state);
                // Level-triggered, as a poller would be: report what is already true.
                let readable = read && (st.avail > 0 || st.eof || st.read_err.is_some());
                let writable =
                    write && (st.write_err.is_some() || (!st.writing && st.out.is_empty()));
                if write && !writable {
                    st.want_write = true;
                }
                if readable || writable {
                    Report::Ready(
                        id,
                        Readiness {
                            readable,
                            writable,
                            hangup: false,
                        },
                    )
                } else {
                    Report::Nothing
                }
            }
            Output::Close { id } => {
                if let Some(conn) = self.conns.get_mut(id.slot()).and_then(Option::take) {
                    lock(&conn.state).closing = true;
                    conn.cv.notify_all();
                    self.closing.retain(|c| Arc::strong_count(c) > 1);
                    self.closing.push(conn);
                }
                Report::Nothing
            }
            Output::Detach { id } => {
                let Some(conn) = self.conns.get_mut(id.slot()).and_then(Option::take) else {
                    // No socket (its threads could not start): report the detach at
                    // once, as the poller does, or the engine's slot waits forever.
                    return Report::Detached(id, None);
                };
                lock(&conn.state).detaching = true;
                conn.cv.notify_all();
                self.detaching.push((id, conn));
                Report::Nothing
            }
            // Accepting threads accept only when the loop asks, so a paused listener
            // simply is not asked.
            Output::PauseAccept { .. } | Output::ResumeAccept { .. } => Report::Nothing,
            Output::Shutdown => Report::Shutdown,
        }
    }

    /// Starts a new connection's threads.
    fn open(&mut self, id: ConnId, stream: Stream, hub: &Arc<Hub>, b: &ServerBuilder) -> bool {
        if stream.set_read_timeout(Some(b.std_detach_check)).is_err() {
            return false;
        }
        // No MSG_NOSIGNAL on Apple: the socket itself must not raise SIGPIPE.
        #[cfg(target_vendor = "apple")]
        if rustix::net::sockopt::set_socket_nosigpipe(stream.fd(), true).is_err() {
            return false;
        }
        let size = b.config.input_capacity.clamp(1, MAX_THREAD_BUFFER);
        let out_size = b.config.output_capacity.clamp(1, MAX_THREAD_BUFFER);
        let conn = Arc::new(StdConn {
            stream,
            token: id.to_u64(),
            hub: hub.clone(),
            state: Mutex::new(ConnState {
                want_read: true,
                avail: 0,
                eof: false,
                read_err: None,
                out: Vec::with_capacity(out_size),
                writing: false,
                want_write: false,
                write_err: None,
                closing: false,
                detaching: false,
                reader_waiting: false,
                writer_waiting: false,
            }),
            cv: Condvar::new(),
        });
        let c = conn.clone();
        if spawn("evio-read", move || reader(c, vec![0; size])).is_err() {
            return false;
        }
        let c = conn.clone();
        if spawn("evio-write", move || {
            writer(c, Vec::with_capacity(out_size))
        })
        .is_err()
        {
            // The reading thread runs: close so that it exits.
            lock(&conn.state).closing = true;
            conn.cv.notify_all();
            conn.stream.shutdown();
            return false;
        }
        self.conns[id.slot()] = Some(conn);
        true
    }
}

/// Runs the loop until the engine shuts down.
pub(crate) fn run<H: Events>(
    handler: H,
    listeners: Vec<Listener>,
    builder: &ServerBuilder,
) -> Result<(), Error> {
    let hub = Arc::new(Hub {
        state: Mutex::new(HubState {
            events: VecDeque::with_capacity(64),
            woken: false,
            waiting: false,
        }),
        cv: Condvar::new(),
    });
    let (mut engine, _wakes_end) =
        crate::build_engine(handler, builder.config, HubNotify(hub.clone()))?;
    let n = builder.config.max_connections;
    // Declared after the engine, so a panicking handler unwinds through its `Drop`.
    let mut threads = Threads {
        table: Table {
            acceptors: Vec::with_capacity(listeners.len()),
            conns: (0..n).map(|_| None).collect(),
            closing: Vec::new(),
            detaching: Vec::new(),
        },
        kinds: Vec::with_capacity(listeners.len()),
        hub: hub.clone(),
    };
    let mut result = Ok(());
    for (index, l) in listeners.into_iter().enumerate() {
        let listener = match l.kind {
            ListenerKind::Tcp(_) => StdListener::Tcp(TcpListener::from(l.fd)),
            ListenerKind::Unix(_) => StdListener::Unix(UnixListener::from(l.fd)),
        };
        threads.kinds.push(l.kind);
        let acc = Arc::new(Acceptor {
            listener,
            index,
            hub: hub.clone(),
            state: Mutex::new(AcceptState {
                armed: true,
                pending: None,
                stop: false,
                exited: false,
            }),
            cv: Condvar::new(),
        });
        let a = acc.clone();
        if let Err(error) = spawn("evio-accept", move || acceptor(a)) {
            result = Err(Error::Setup {
                what: "an accepting thread",
                error,
            });
        }
        threads.table.acceptors.push(acc);
    }
    if result.is_ok() {
        result = run_loop(
            &mut engine,
            &mut threads.table,
            &hub,
            &threads.kinds,
            builder,
        );
    }
    drop(threads);
    result
}

/// The threads and sockets of a running server, stopped and released when `run` ends,
/// however it ends (a panicking handler unwinds through here too).
struct Threads {
    table: Table,
    /// Dropped after `table`: dropping it removes the unix socket files.
    kinds: Vec<ListenerKind>,
    hub: Arc<Hub>,
}

impl Drop for Threads {
    fn drop(&mut self) {
        let (table, kinds, hub) = (&mut self.table, &self.kinds, &self.hub);
        // Stop the accepting threads: each is either waiting to be asked (the flag wakes
        // it) or blocked in accept (shutting its listener down, or a connection of our
        // own, wakes it). With SO_REUSEPORT the kernel may hand our connection to another
        // socket sharing the port, so try a few times; a thread still blocked after the
        // grace period is left to finish on its own (its listener closes when the next
        // connection reaches it).
        for (acc, kind) in table.acceptors.iter().zip(kinds) {
            lock(&acc.state).stop = true;
            acc.cv.notify_all();
            // On Linux, shutting a listening socket down wakes a thread blocked in
            // accept on it, even one no connection can reach any more (its socket file
            // removed by someone else, its port shared with SO_REUSEPORT); elsewhere it
            // may fail, and a connection of our own does it (below).
            let _ = rustix::net::shutdown(acc.listener.fd(), rustix::net::Shutdown::Read);
            let deadline = std::time::Instant::now() + SHUTDOWN_GRACE;
            loop {
                let st = lock(&acc.state);
                let (st, _) = acc
                    .cv
                    .wait_timeout_while(st, Duration::from_millis(20), |st| !st.exited)
                    .unwrap_or_else(PoisonError::into_inner);
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if st.exited || left.is_zero() {
                    break;
                }
                drop(st);
                match kind {
                    ListenerKind::Tcp(a) => {
                        let mut a = *a;
                        if a.ip().is_unspecified() {
                            a.set_ip(match a {
                                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                            });
                        }
                        let _ = TcpStream::connect_timeout(&a, left);
                    }
                    ListenerKind::Unix(f) => {
                        let _ = UnixStream::connect(&f.path);
                    }
                }
            }
        }
        // Closed connections get a grace period to flush; then their sockets are cut.
        let deadline = std::time::Instant::now() + SHUTDOWN_GRACE;
        let mut st = lock(&hub.state);
        loop {
            table.closing.retain(|c| Arc::strong_count(c) > 1);
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if table.closing.is_empty() || left.is_zero() {
                break;
            }
            st.waiting = true;
            st = hub
                .cv
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            st.waiting = false;
        }
        drop(st);
        for c in table.closing.iter().chain(table.conns.iter().flatten()) {
            c.stream.shutdown();
            lock(&c.state).closing = true;
            c.cv.notify_all();
        }
        for (_, c) in &table.detaching {
            lock(&c.state).closing = true;
            c.cv.notify_all();
        }
    }
}

fn run_loop<H: Events>(
    engine: &mut crate::OsEngine<H>,
    table: &mut Table,
    hub: &Arc<Hub>,
    kinds: &[ListenerKind],
    builder: &ServerBuilder,
) -> Result<(), Error> {
    let start = std::time::Instant::now();
    let now = || evio_proto::Instant::from_nanos(start.elapsed().as_nanos() as u64);
    {
        let bound: Vec<evio_proto::ListenAddr<'_>> = kinds
            .iter()
            .map(|k| match k {
                ListenerKind::Tcp(a) => evio_proto::ListenAddr::Ip(*a),
                ListenerKind::Unix(f) => evio_proto::ListenAddr::Unix(&f.path),
            })
            .collect();
        engine
            .handle_start(&bound, now())
            .map_err(|e| Error::TooManyListeners {
                given: e.given,
                max: e.max,
            })?;
    }
    let mut batch: VecDeque<HubEvent> = VecDeque::with_capacity(64);
    loop {
        while let Some(report) = engine.poll_output().map(|out| table.perform(out)) {
            let register = |id, stream| table.open(id, stream, hub, builder);
            if deliver(engine, report, now(), register) == Flow::Shutdown {
                return Ok(());
            }
        }
        if engine.is_shut_down() {
            return Ok(());
        }
        if engine.is_shutting_down() {
            // The engine's last output waits for the detaches still held by their
            // threads: give those a bounded grace, then cut them.
            if table.detaching.is_empty() {
                return Ok(());
            }
            finish_detaches(engine, table, hub, builder, &now);
            continue;
        }

        let deadline = engine
            .poll_timeout()
            .map(|t| start + Duration::from_nanos(t.as_nanos()));
        let woken;
        {
            let mut st = lock(&hub.state);
            while st.events.is_empty() && !st.woken {
                st.waiting = true;
                match deadline {
                    None => st = hub.cv.wait(st).unwrap_or_else(PoisonError::into_inner),
                    Some(d) => {
                        let left = d.saturating_duration_since(std::time::Instant::now());
                        if left.is_zero() {
                            st.waiting = false;
                            break;
                        }
                        st = hub
                            .cv
                            .wait_timeout(st, left)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                }
                st.waiting = false;
            }
            std::mem::swap(&mut st.events, &mut batch);
            woken = std::mem::take(&mut st.woken);
        }
        let mut released = false;
        for ev in batch.drain(..) {
            match ev {
                HubEvent::Listener(i) => {
                    let _ = engine.handle_listener_ready(i);
                }
                HubEvent::Conn(token, r) => {
                    let _ = engine.handle_conn_ready(ConnId::from_u64(token), r);
                }
                HubEvent::Released => released = true,
            }
        }
        if released {
            // A closed connection's socket closes once its threads are done with it.
            table.closing.retain(|c| Arc::strong_count(c) > 1);
            complete_detaches(engine, table, now());
        }
        if woken {
            engine.handle_wakes(now());
        }
        engine.handle_timeout(now());
    }
}

/// Hands the engine every detaching connection whose threads have let go of its socket.
fn complete_detaches<H: Events>(
    engine: &mut crate::OsEngine<H>,
    table: &mut Table,
    now: evio_proto::Instant,
) {
    let mut i = 0;
    while i < table.detaching.len() {
        if Arc::strong_count(&table.detaching[i].1) > 1 {
            i += 1;
            continue;
        }
        let (id, conn) = table.detaching.swap_remove(i);
        let socket = Arc::try_unwrap(conn).ok().and_then(|c| {
            // The threads are gone: the socket is ours alone, blocking, and
            // must not keep their time-out.
            c.stream.set_read_timeout(None).ok()?;
            Some(c.stream.into_detached())
        });
        deliver(
            engine,
            Report::<Stream>::Detached(id, socket),
            now,
            |_, _| false,
        );
    }
}

/// At shutdown, completes the detaches still waiting for their threads, so that each
/// of those connections ends in `detached` (or `closed`) as with the poller, where a
/// detach is immediate. A reading thread lets go within `std_detach_check`; a writing
/// thread once its output is flushed, so the wait is bounded: a connection still held
/// after it is cut and reported without a socket (the engine then reports it `closed`
/// with an I/O error).
fn finish_detaches<H: Events>(
    engine: &mut crate::OsEngine<H>,
    table: &mut Table,
    hub: &Hub,
    builder: &ServerBuilder,
    now: &impl Fn() -> evio_proto::Instant,
) {
    let deadline = std::time::Instant::now() + builder.std_detach_check + SHUTDOWN_GRACE;
    loop {
        // No lock is held here: a handler may wake.
        complete_detaches(engine, table, now());
        if table.detaching.is_empty() {
            return;
        }
        let mut st = lock(&hub.state);
        // A thread drops its reference before it takes this lock to post `Released`:
        // checked under the lock, no release is missed.
        if table
            .detaching
            .iter()
            .all(|(_, c)| Arc::strong_count(c) > 1)
        {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            st.waiting = true;
            st = hub
                .cv
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            st.waiting = false;
        }
        // The engine has stopped: nothing else in the queue matters any more.
        st.events.clear();
    }
    for (id, conn) in std::mem::take(&mut table.detaching) {
        lock(&conn.state).closing = true;
        conn.cv.notify_all();
        conn.stream.shutdown();
        table.closing.push(conn);
        deliver(
            engine,
            Report::<Stream>::Detached(id, None),
            now(),
            |_, _| false,
        );
    }
}
