//! The driver's contract against real sockets: wake, detach, flush before close and
//! detach, shutdown, ticks, a full pool, backpressure, addresses and errors.

mod os_common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use evio::{
    Action, CloseError, Conn, ConnId, ConnInfo, Detached, DetachedSocket, Events, Flow, Loop,
    Server, Tick, Waker,
};
use evio_handlers::echo::Echo;
use os_common::*;

fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

fn check_pattern(bytes: &[u8], from: usize) {
    for (k, b) in bytes.iter().enumerate() {
        assert_eq!(*b, pattern(from + k), "byte {} differs", from + k);
    }
}

/// Writes `n` pattern bytes, all at once (they must fit the output buffer).
fn write_pattern(conn: &mut Conn<'_, impl Sized>, n: usize) {
    let chunk: Vec<u8> = (0..n).map(pattern).collect();
    conn.write(&chunk).expect("fits the output buffer");
}

// ----- wake ---------------------------------------------------------------------------

/// Replies to each wake with a 4-byte counter; `self` makes the handler wake its own
/// connection from inside `data`.
struct Waking {
    waker: Option<Waker>,
    opened: Sender<ConnId>,
    closed: Sender<ConnId>,
}

impl Events for Waking {
    type Context = u32;
    fn serving(&mut self, server: Server<'_>) -> Flow {
        self.waker = server.waker().cloned();
        Flow::Continue
    }
    fn opened(&mut self, conn: &mut Conn<'_, u32>) -> Action {
        let _ = self.opened.send(conn.id());
        Action::None
    }
    fn data(&mut self, conn: &mut Conn<'_, u32>, input: &[u8]) -> Action {
        if input == b"self" {
            let ok = self.waker.as_ref().is_some_and(|w| w.wake(conn.id()));
            conn.write(if ok { b"T" } else { b"F" }).unwrap();
        }
        Action::None
    }
    fn woken(&mut self, conn: &mut Conn<'_, u32>) -> Action {
        *conn.context() += 1;
        let n = *conn.context();
        conn.write(&n.to_le_bytes()).unwrap();
        Action::None
    }
    fn closed(
        &mut self,
        info: &ConnInfo,
        _: u32,
        _: Option<CloseError>,
        _: &mut Loop<'_, u32>,
    ) -> Flow {
        let _ = self.closed.send(info.id);
        Flow::Continue
    }
}

fn waking(builder: evio::ServerBuilder) -> (Running, Receiver<ConnId>, Receiver<ConnId>) {
    let (otx, orx) = mpsc::channel();
    let (ctx, crx) = mpsc::channel();
    let server = start(builder, &["tcp4://127.0.0.1:0"], move || Waking {
        waker: None,
        opened: otx,
        closed: ctx,
    });
    (server, orx, crx)
}

#[test]
fn thousands_of_round_trips_driven_only_by_wake() {
    let (server, opened, _closed) = waking(evio::ServerBuilder::new().max_connections(8));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let c = connect(server.addr(0));
            let id = opened.recv_timeout(LIMIT).unwrap();
            (c, id)
        })
        .collect();
    let threads: Vec<_> = clients
        .into_iter()
        .map(|(mut c, id)| {
            let waker = server.waker.clone();
            // Each client is woken from its own thread, never the loop's.
            std::thread::spawn(move || {
                for i in 1..=2000u32 {
                    assert!(waker.wake(id), "wake of a live connection");
                    assert_eq!(c.read_n(4), i.to_le_bytes(), "wake {i}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    server.stop().unwrap();
}

#[test]
fn wakes_coalesce_and_wake_from_inside_a_handler_works() {
    let (server, opened, _closed) = waking(evio::ServerBuilder::new().max_connections(4));
    let mut c = connect(server.addr(0));
    let id = opened.recv_timeout(LIMIT).unwrap();
    // From the loop's own thread, inside `data`.
    c.write_all(b"self").unwrap();
    assert_eq!(c.read_n(1), b"T");
    assert_eq!(c.read_n(4), 1u32.to_le_bytes());
    // Many wakes before the loop runs give at least one `woken`, at most one each.
    for _ in 0..100 {
        assert!(server.waker.wake(id));
    }
    let first = u32::from_le_bytes(c.read_n(4).try_into().unwrap());
    assert_eq!(first, 2);
    c.set_timeouts(Duration::from_millis(300));
    let mut rest = Vec::new();
    let _ = c.read_to_end_lossy_or_timeout(&mut rest);
    let calls = 1 + rest.len() / 4;
    assert!(calls <= 100, "{calls} woken calls for 100 wakes");
    server.stop().unwrap();
}

trait ReadSome {
    fn read_to_end_lossy_or_timeout(&mut self, out: &mut Vec<u8>) -> std::io::Result<()>;
}

impl ReadSome for Client {
    fn read_to_end_lossy_or_timeout(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        let mut buf = [0u8; 4096];
        loop {
            match self.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e),
            }
        }
    }
}

#[test]
fn wake_of_a_closed_or_stale_id_returns_false() {
    let (server, opened, closed) = waking(evio::ServerBuilder::new().max_connections(1));
    let a = connect(server.addr(0));
    let id_a = opened.recv_timeout(LIMIT).unwrap();
    drop(a);
    assert_eq!(closed.recv_timeout(LIMIT).unwrap(), id_a);
    assert!(!server.waker.wake(id_a), "wake of a closed id");
    // The slot is reused by the next connection: the old id stays refused, and a wake
    // for the new one reaches only the new one.
    let mut b = connect(server.addr(0));
    let id_b = opened.recv_timeout(LIMIT).unwrap();
    assert_eq!(id_a.slot(), id_b.slot());
    assert_ne!(id_a, id_b);
    assert!(!server.waker.wake(id_a), "wake of a stale id");
    assert!(server.waker.wake(id_b));
    assert_eq!(b.read_n(4), 1u32.to_le_bytes());
    let waker = server.waker.clone();
    server.stop().unwrap();
    assert!(!waker.wake(id_b), "wake after shutdown");
}

// ----- close, detach, flush -------------------------------------------------------

/// `close:N` writes N pattern bytes then closes; `detach:N` writes N pattern bytes then
/// detaches, handing the socket to the test.
/// The errors `closed` received, in order.
type Closed = Arc<Mutex<Vec<Option<CloseError>>>>;

struct Ender {
    detached: Sender<DetachedSocket>,
    closed: Closed,
}

impl Events for Ender {
    type Context = ();
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let text = std::str::from_utf8(input).unwrap_or("");
        if let Some(n) = text.strip_prefix("close:") {
            write_pattern(conn, n.trim().parse().unwrap());
            Action::Close
        } else if let Some(n) = text.strip_prefix("detach:") {
            write_pattern(conn, n.trim().parse().unwrap());
            Action::Detach
        } else {
            Echo.data(conn, input)
        }
    }
    fn closed(
        &mut self,
        _: &ConnInfo,
        _: (),
        error: Option<CloseError>,
        _: &mut Loop<'_, ()>,
    ) -> Flow {
        self.closed.lock().unwrap().push(error);
        Flow::Continue
    }
    fn detached(
        &mut self,
        _: &ConnInfo,
        _: &mut (),
        mut socket: Detached<'_>,
        _: &mut Loop<'_, ()>,
    ) -> Flow {
        let s = socket.take::<DetachedSocket>().expect("an evio-os socket");
        let _ = self.detached.send(s);
        Flow::Continue
    }
}

const BIG: usize = 3 << 20;

fn ender() -> (Running, Receiver<DetachedSocket>, Closed, TempDir) {
    let (tx, rx) = mpsc::channel();
    let closed = Arc::new(Mutex::new(Vec::new()));
    let c = closed.clone();
    let dir = TempDir::new("ender");
    let unix = format!("unix://{}", dir.sock("e.sock"));
    let b = evio::ServerBuilder::new()
        .max_connections(8)
        .output_capacity(4 << 20);
    let server = start(b, &["tcp4://127.0.0.1:0", &unix], move || Ender {
        detached: tx,
        closed: c,
    });
    (server, rx, closed, dir)
}

#[test]
fn close_after_output_flushes_all_of_it() {
    let (server, _rx, closed, _dir) = ender();
    for addr in server.addrs.clone() {
        let mut c = connect(&addr);
        c.write_all(format!("close:{BIG}").as_bytes()).unwrap();
        // Not reading for a moment lets the socket buffer fill, so the server must
        // finish the flush across several writes; correctness does not depend on it.
        std::thread::sleep(Duration::from_millis(50));
        let got = c.read_to_end_lossy();
        assert_eq!(got.len(), BIG, "all output before the close, over {addr:?}");
        check_pattern(&got, 0);
    }
    server.stop().unwrap();
    let closed = closed.lock().unwrap();
    assert_eq!(closed.as_slice(), &[None, None], "one clean `closed` each");
}

#[test]
fn detach_flushes_then_hands_over_a_blocking_stream() {
    let (server, rx, closed, _dir) = ender();
    for addr in server.addrs.clone() {
        let mut c = connect(&addr);
        assert_eq!(c.round_trip(b"before"), b"before");
        c.write_all(format!("detach:{BIG}").as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        // The detach waits for the flush, which waits for this read.
        let got = c.read_n(BIG);
        check_pattern(&got, 0);
        let socket = rx.recv_timeout(LIMIT).expect("detached socket");
        // The new owner uses the socket from another thread, in blocking mode.
        let owner = std::thread::spawn(move || {
            let (mut r, mut w): (Box<dyn Read + Send>, Box<dyn Write + Send>) = match socket {
                DetachedSocket::Tcp(s) => {
                    s.set_read_timeout(Some(LIMIT)).unwrap();
                    (Box::new(s.try_clone().unwrap()), Box::new(s))
                }
                DetachedSocket::Unix(s) => {
                    s.set_read_timeout(Some(LIMIT)).unwrap();
                    (Box::new(s.try_clone().unwrap()), Box::new(s))
                }
            };
            w.write_all(b"owned").unwrap();
            let mut ping = [0u8; 4];
            r.read_exact(&mut ping).unwrap();
            assert_eq!(&ping, b"ping");
            w.write_all(b"pong").unwrap();
        });
        assert_eq!(c.read_n(5), b"owned");
        c.write_all(b"ping").unwrap();
        assert_eq!(c.read_n(4), b"pong");
        owner.join().unwrap();
        assert_eq!(c.read_to_end_lossy(), b"", "the owner's drop closes it");
    }
    server.stop().unwrap();
    assert!(
        closed.lock().unwrap().is_empty(),
        "no `closed` for a detached connection"
    );
}

// ----- shutdown -------------------------------------------------------------------

struct Shutter {
    closed: Arc<AtomicUsize>,
}

impl Events for Shutter {
    type Context = ();
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        if input == b"shutdown" {
            conn.write(b"bye").unwrap();
            return Action::Shutdown;
        }
        Echo.data(conn, input)
    }
    fn closed(&mut self, _: &ConnInfo, _: (), _: Option<CloseError>, _: &mut Loop<'_, ()>) -> Flow {
        self.closed.fetch_add(1, Ordering::SeqCst);
        Flow::Continue
    }
}

#[test]
fn shutdown_closes_everyone_and_serve_returns_ok() {
    let dir = TempDir::new("shut");
    let path = dir.sock("s.sock");
    let unix = format!("unix://{path}");
    let closed = Arc::new(AtomicUsize::new(0));
    let c = closed.clone();
    let server = start(
        evio::ServerBuilder::new().max_connections(16),
        &["tcp4://127.0.0.1:0", &unix],
        move || Shutter { closed: c },
    );
    let mut clients: Vec<Client> = (0..6).map(|i| connect(server.addr(i % 2))).collect();
    for c in &mut clients {
        assert_eq!(c.round_trip(b"hi"), b"hi");
    }
    clients[0].write_all(b"shutdown").unwrap();
    assert_eq!(clients[0].read_to_end_lossy(), b"bye");
    for c in &mut clients[1..] {
        assert_eq!(c.read_to_end_lossy(), b"", "closed by the shutdown");
    }
    server.wait().expect("serve returns Ok after Shutdown");
    assert_eq!(
        closed.load(Ordering::SeqCst),
        6,
        "one `closed` per connection"
    );
    assert!(!std::path::Path::new(&path).exists(), "socket file removed");
}

// ----- ticks ----------------------------------------------------------------------

struct Ticker {
    log: Log,
    delay: Duration,
    count: u32,
    limit: u32,
}

impl Events for Ticker {
    type Context = ();
    fn serving(&mut self, _: Server<'_>) -> Flow {
        self.log.push("serving");
        Flow::Continue
    }
    fn tick(&mut self, lp: &mut Loop<'_, ()>) -> Tick {
        let now = lp.now();
        self.count += 1;
        self.log.push(now.as_nanos().to_string());
        if self.count == self.limit {
            Tick::stop().with_flow(Flow::Shutdown)
        } else {
            Tick::after(self.delay)
        }
    }
}

fn run_ticker(delay: Duration, limit: u32) -> Vec<u64> {
    let log = Log::default();
    let l = log.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let h = Ticker {
            log: l,
            delay,
            count: 0,
            limit,
        };
        let _ = tx.send(evio::serve(h, &["tcp4://127.0.0.1:0"]));
    });
    rx.recv_timeout(LIMIT)
        .expect("ticker shut down")
        .expect("serve returns Ok");
    let entries = log.snapshot();
    assert_eq!(entries[0], "serving", "the first tick follows serving");
    entries[1..].iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn ticks_fire_in_order_without_drift() {
    let delay = Duration::from_millis(2);
    let ticks = run_ticker(delay, 25);
    assert_eq!(ticks.len(), 25);
    let d = delay.as_nanos() as u64;
    for (k, t) in ticks.iter().enumerate() {
        // Never early: tick k is due at first + k * delay (scheduled from the previous
        // schedule, not from when the previous one ran).
        assert!(*t >= ticks[0] + k as u64 * d, "tick {k} early");
    }
}

#[test]
fn zero_delay_ticks_never_spin_and_never_starve_io() {
    let ticks = run_ticker(Duration::ZERO, 30);
    assert_eq!(ticks.len(), 30);
    for (k, t) in ticks.iter().enumerate() {
        // A zero delay is raised to min_tick (1 ms): tick k is never due before
        // first + k ms, so the ticker cannot spin.
        assert!(*t >= ticks[0] + k as u64 * 1_000_000, "tick {k} early");
    }
    // I/O goes on while ticking with zero delay.
    struct Busy;
    impl Events for Busy {
        type Context = ();
        fn data(&mut self, c: &mut Conn<'_, ()>, i: &[u8]) -> Action {
            Echo.data(c, i)
        }
    }
    let server = start(evio::ServerBuilder::new(), &["tcp4://127.0.0.1:0"], || Busy);
    let mut c = connect(server.addr(0));
    for i in 0..200u32 {
        assert_eq!(c.round_trip(&i.to_le_bytes()), i.to_le_bytes());
    }
    server.stop().unwrap();
}

// ----- pool full, backpressure ------------------------------------------------------

struct Counted {
    closed: Sender<()>,
}

impl Events for Counted {
    type Context = ();
    fn data(&mut self, c: &mut Conn<'_, ()>, i: &[u8]) -> Action {
        Echo.data(c, i)
    }
    fn closed(&mut self, _: &ConnInfo, _: (), _: Option<CloseError>, _: &mut Loop<'_, ()>) -> Flow {
        let _ = self.closed.send(());
        Flow::Continue
    }
}

#[test]
fn connections_beyond_capacity_are_refused_and_the_others_keep_working() {
    let (tx, closed) = mpsc::channel();
    let server = start(
        evio::ServerBuilder::new().max_connections(3),
        &["tcp4://127.0.0.1:0"],
        move || Counted { closed: tx },
    );
    let mut held: Vec<Client> = (0..3).map(|_| connect(server.addr(0))).collect();
    for c in &mut held {
        assert_eq!(c.round_trip(b"in"), b"in");
    }
    for _ in 0..3 {
        let mut extra = connect(server.addr(0));
        let _ = extra.write_all(b"anyone?");
        assert_eq!(extra.read_to_end_lossy(), b"", "refused: closed at once");
    }
    for c in &mut held {
        assert_eq!(c.round_trip(b"still"), b"still");
    }
    // A freed slot takes the next connection.
    drop(held.pop());
    closed.recv_timeout(LIMIT).unwrap();
    let mut c = connect(server.addr(0));
    assert_eq!(c.round_trip(b"new"), b"new");
    server.stop().unwrap();
}

#[test]
fn a_refused_connection_is_told_why_before_it_is_closed() {
    const WHY: &[u8] = b"-ERR max number of clients reached\r\n";
    let dir = TempDir::new("refusal");
    let unix = format!("unix://{}", dir.sock("r.sock"));
    let (tx, _closed) = mpsc::channel();
    let server = start(
        evio::ServerBuilder::new()
            .max_connections(1)
            .refusal_message(WHY),
        &["tcp4://127.0.0.1:0", &unix],
        move || Counted { closed: tx },
    );
    let mut held = connect(server.addr(0));
    assert_eq!(held.round_trip(b"in"), b"in");
    for listener in [0, 1] {
        // One refused client only reads; another has sent a request first.
        let mut quiet = connect(server.addr(listener));
        assert_eq!(quiet.read_to_end_lossy(), WHY);
        let mut eager = connect(server.addr(listener));
        let _ = eager.write_all(b"PING\r\n");
        assert_eq!(eager.read_to_end_lossy(), WHY);
    }
    assert_eq!(held.round_trip(b"still"), b"still");
    server.stop().unwrap();
}

#[test]
fn echo_through_tiny_buffers_with_a_slow_reader_loses_nothing() {
    let b = evio::ServerBuilder::new()
        .max_connections(4)
        .input_capacity(512)
        .output_capacity(1024);
    let server = start(b, &["tcp4://127.0.0.1:0"], || Echo);
    let total = 4 << 20;
    let mut reader = connect(server.addr(0));
    let mut writer = reader.try_clone();
    let w = std::thread::spawn(move || {
        let mut rng = Rng::new(7);
        let mut buf = vec![0u8; 100_000];
        let mut sent = 0;
        while sent < total {
            let n = (1 + rng.below(100_000) as usize).min(total - sent);
            for (k, b) in buf[..n].iter_mut().enumerate() {
                *b = pattern(sent + k);
            }
            writer.write_all(&buf[..n]).unwrap();
            sent += n;
        }
    });
    // The reader starts late: the server must stop reading while its output is stuck.
    std::thread::sleep(Duration::from_millis(100));
    let got = reader.read_n(total);
    check_pattern(&got, 0);
    w.join().unwrap();
    server.stop().unwrap();
}

/// `g`: streams `GEN` pattern bytes through a small output buffer, writing as room
/// allows and leaving the request unconsumed until done (so `data` runs again once the
/// output drains).
struct Generator;

const GEN: usize = 8 << 20;

impl Events for Generator {
    type Context = usize;
    fn data(&mut self, conn: &mut Conn<'_, usize>, input: &[u8]) -> Action {
        if input.first() != Some(&b'g') {
            return Action::None;
        }
        let mut chunk = [0u8; 1000];
        while *conn.context() < GEN {
            let at = *conn.context();
            let n = chunk.len().min(GEN - at);
            for (k, b) in chunk[..n].iter_mut().enumerate() {
                *b = pattern(at + k);
            }
            let w = conn.write_some(&chunk[..n]);
            *conn.context() += w;
            if w < n {
                conn.consume(0);
                return Action::None;
            }
        }
        Action::None
    }
}

#[test]
fn output_larger_than_the_output_buffer_arrives_whole() {
    let b = evio::ServerBuilder::new()
        .max_connections(4)
        .output_capacity(4096);
    let server = start(b, &["tcp4://127.0.0.1:0"], || Generator);
    let mut c = connect(server.addr(0));
    c.write_all(b"g").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let got = c.read_n(GEN);
    check_pattern(&got, 0);
    server.stop().unwrap();
}

// ----- drivers, addresses, errors ---------------------------------------------------

#[test]
fn net_schemes_the_builder_and_the_cfg_switch_select_the_backend() {
    let system = evio::Backend::system_default();
    assert!(system.is_available());
    if cfg!(evio_force_poll) {
        assert_eq!(system, evio::Backend::Poll);
    } else if cfg!(target_os = "linux") {
        assert_eq!(system, evio::Backend::Epoll);
    }
    let plain = evio::ServerBuilder::new();
    let poll = evio::ServerBuilder::new().backend(evio::Backend::Poll);
    assert_eq!(plain.backend_for(&["tcp4://127.0.0.1:0"]), system);
    assert_eq!(
        poll.backend_for(&["tcp4://127.0.0.1:0"]),
        evio::Backend::Poll
    );
    // One `-net` address puts the whole server on poll(2).
    for addrs in [
        &["tcp4-net://127.0.0.1:0"][..],
        &["tcp4://127.0.0.1:0", "unix-net:///tmp/x.sock"][..],
    ] {
        assert_eq!(plain.backend_for(addrs), evio::Backend::Poll, "{addrs:?}");
    }
    // Each serves.
    for (builder, scheme) in [
        (plain, "tcp4"),
        (poll, "tcp4"),
        (evio::ServerBuilder::new(), "tcp4-net"),
    ] {
        let server = start(
            builder.max_connections(4),
            &[&format!("{scheme}://127.0.0.1:0")],
            || Echo,
        );
        let mut c = connect(server.addr(0));
        assert_eq!(c.round_trip(b"which"), b"which");
        drop(c);
        server.stop().unwrap();
    }
    // A backend this target lacks is an error, not a silent substitute (under
    // `--cfg evio_force_poll` every server is on poll(2), whatever it asks for).
    #[cfg(all(target_os = "linux", not(evio_force_poll)))]
    match evio::ServerBuilder::new()
        .backend(evio::Backend::Kqueue)
        .serve(Echo, &["tcp4://127.0.0.1:0"])
    {
        Err(evio::Error::BackendUnavailable(evio::Backend::Kqueue)) => {}
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn address_errors_name_the_address() {
    let e = evio::serve(Echo, &["udp://127.0.0.1:1"]).unwrap_err();
    match &e {
        evio::Error::Address { addr, error } => {
            assert_eq!(addr, "udp://127.0.0.1:1");
            assert_eq!(*error, evio::AddrError::UnknownScheme);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(e.to_string().contains("udp://127.0.0.1:1"));
    let e = evio::serve(Echo, &["tcp4://127.0.0.1:0", "tcp4://[::1]:0"]).unwrap_err();
    assert!(
        matches!(e, evio::Error::Address { ref addr, error: evio::AddrError::WrongFamily } if addr == "tcp4://[::1]:0")
    );
    assert!(matches!(
        evio::serve(Echo, &[] as &[&str]).unwrap_err(),
        evio::Error::NoAddresses
    ));
    // A port in use: the bind error names the address.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp://{}", taken.local_addr().unwrap());
    match evio::serve(Echo, &[addr.as_str()]).unwrap_err() {
        evio::Error::Bind { addr: a, error } => {
            assert_eq!(a, addr);
            assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
        }
        other => panic!("unexpected {other:?}"),
    }
    let e = evio::ServerBuilder::new()
        .max_connections(0)
        .serve(Echo, &["tcp://127.0.0.1:0"])
        .unwrap_err();
    assert!(matches!(e, evio::Error::Config(_)));
}

#[test]
fn unix_paths_stale_sockets_are_replaced_other_files_are_left_alone() {
    let dir = TempDir::new("paths");
    // A regular file is never removed.
    let file = dir.sock("file");
    std::fs::write(&file, b"keep me").unwrap();
    let e = evio::serve(Echo, &[format!("unix://{file}")]).unwrap_err();
    assert!(matches!(e, evio::Error::NotASocket { .. }), "{e}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    // Nor a directory.
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let e = evio::serve(Echo, &[format!("unix://{}", sub.display())]).unwrap_err();
    assert!(matches!(e, evio::Error::NotASocket { .. }));
    assert!(sub.is_dir());
    // A stale socket (left by a process that did not clean up) is replaced.
    let stale = dir.sock("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(std::path::Path::new(&stale).exists());
    let server = start(
        evio::ServerBuilder::new(),
        &[&format!("unix://{stale}")],
        || Echo,
    );
    let mut c = connect(server.addr(0));
    assert_eq!(c.round_trip(b"fresh"), b"fresh");
    server.stop().unwrap();
    assert!(!std::path::Path::new(&stale).exists());
}

// ----- socket options -------------------------------------------------------------

/// Detaches every connection at once, so the test can inspect the socket's options.
struct DetachAll {
    tx: Sender<DetachedSocket>,
}

impl Events for DetachAll {
    type Context = ();
    fn opened(&mut self, _: &mut Conn<'_, ()>) -> Action {
        Action::Detach
    }
    fn detached(
        &mut self,
        _: &ConnInfo,
        _: &mut (),
        mut socket: Detached<'_>,
        _: &mut Loop<'_, ()>,
    ) -> Flow {
        let _ = self.tx.send(socket.take::<DetachedSocket>().unwrap());
        Flow::Continue
    }
}

fn sockopt(fd: std::os::fd::BorrowedFd<'_>, level: i32, name: i32) -> i32 {
    use std::os::fd::AsRawFd;
    let mut value: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes of a c_int and a socklen_t, and
    // `fd` is a live socket borrowed for the call.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0, "getsockopt");
    value
}

#[test]
fn tcp_options_are_applied_to_each_connection() {
    use std::os::fd::AsFd;
    for (nodelay, keepalive) in [(true, Some(Duration::from_secs(30))), (false, None)] {
        let (tx, rx) = mpsc::channel();
        let b = evio::ServerBuilder::new()
            .max_connections(4)
            .nodelay(nodelay)
            .keepalive(keepalive);
        let server = start(b, &["tcp4://127.0.0.1:0"], move || DetachAll { tx });
        let _client = connect(server.addr(0));
        let Ok(DetachedSocket::Tcp(s)) = rx.recv_timeout(LIMIT) else {
            panic!("a detached tcp socket")
        };
        assert_eq!(s.nodelay().unwrap(), nodelay, "TCP_NODELAY");
        let fd = s.as_fd();
        let on = sockopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE) != 0;
        assert_eq!(on, keepalive.is_some(), "SO_KEEPALIVE");
        if keepalive.is_some() {
            // The idle time before the first probe: TCP_KEEPALIVE on Apple's systems.
            #[cfg(target_vendor = "apple")]
            let idle = libc::TCP_KEEPALIVE;
            #[cfg(not(target_vendor = "apple"))]
            let idle = libc::TCP_KEEPIDLE;
            assert_eq!(sockopt(fd, libc::IPPROTO_TCP, idle), 30);
            assert_eq!(sockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL), 30);
        }
        server.stop().unwrap();
    }
}

/// Writes a greeting from `opened` and closes at once.
struct HelloBye;

impl Events for HelloBye {
    type Context = ();
    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        conn.write(b"hello, bye").unwrap();
        Action::Close
    }
}

#[test]
fn close_from_opened_still_sends_the_greeting() {
    let server = start(
        evio::ServerBuilder::new().max_connections(4),
        &["tcp4://127.0.0.1:0"],
        || HelloBye,
    );
    for _ in 0..20 {
        let mut c = connect(server.addr(0));
        assert_eq!(c.read_to_end_lossy(), b"hello, bye");
    }
    server.stop().unwrap();
}

#[test]
fn a_failed_setup_removes_the_socket_files_it_created() {
    let dir = TempDir::new("setup");
    let path = dir.sock("first.sock");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = format!("tcp://{}", taken.local_addr().unwrap());
    let e = evio::serve(Echo, &[format!("unix://{path}"), busy.clone()]).unwrap_err();
    assert!(
        matches!(e, evio::Error::Bind { ref addr, .. } if *addr == busy),
        "{e}"
    );
    assert!(!std::path::Path::new(&path).exists());
}

#[test]
fn reuseport_lets_two_servers_share_a_port() {
    let a = start(
        evio::ServerBuilder::new().max_connections(64),
        &["tcp4://127.0.0.1:0?reuseport=true"],
        || Echo,
    );
    let Bound::Tcp(addr) = a.addr(0).clone() else {
        unreachable!()
    };
    // Without the option the port is taken ...
    let plain = format!("tcp4://{addr}");
    let e = evio::serve(Echo, &[plain.as_str()]).unwrap_err();
    assert!(matches!(e, evio::Error::Bind { .. }), "{e}");
    // ... with it, a second server binds the same port, and both serve.
    let b = start(
        evio::ServerBuilder::new().max_connections(64),
        &[&format!("{plain}?reuseport=true")],
        || Echo,
    );
    assert_eq!(b.addr(0), &Bound::Tcp(addr));
    // (Sequential short connections: each server closes its side when it notices the
    // end of stream, so the pools are sized for a backlog of them.)
    for i in 0..20u32 {
        let mut c = connect(&Bound::Tcp(addr));
        assert_eq!(c.round_trip(&i.to_le_bytes()), i.to_le_bytes());
    }
    a.stop().unwrap();
    b.stop().unwrap();
}
