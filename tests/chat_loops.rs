//! The chat room spanning two loops (`Chat::spanning`, `chat-server --loops 2`): every
//! line reaches every other client once and in order whichever loops the two are on,
//! a fast reader on one loop of a flood from the other is never cut off (the sender
//! waits for the other loop), a client that never reads is cut off while the rest
//! carry on, and the example with two loops relays across them and stops on SIGTERM.

mod os_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use evio::{Action, CloseError, Conn, ConnInfo, Events, Flow, Loop, Server};
use evio_handlers::chat::Chat;
use os_common::*;

/// What the loops publish to the test: members per loop, slow consumers in all.
#[derive(Default)]
struct Published {
    members: [AtomicU64; 2],
    slow_consumers: AtomicU64,
}

/// One loop's part of the room; greets each client with the loop's number (`L0\n`,
/// `L1\n`), which the test reads first.
struct Greeted {
    chat: Chat,
    index: usize,
    published: Arc<Published>,
    started: Option<mpsc::Sender<Vec<Bound>>>,
}

impl Greeted {
    fn publish(&self) {
        self.published.members[self.index]
            .store(self.chat.members().count() as u64, Ordering::SeqCst);
        // Only loop 0 counts into it, loop 1 adds its own: stored per loop would need
        // another field; the tests only ask whether any was cut off.
        if self.chat.slow_consumers > 0 {
            self.published
                .slow_consumers
                .fetch_max(self.chat.slow_consumers, Ordering::SeqCst);
        }
    }
}

impl Events for Greeted {
    type Context = ();
    evio::delegate_events!(self.chat, except serving, opened, data, closed, tick);
    fn serving(&mut self, server: Server<'_>) -> Flow {
        if let Some(tx) = self.started.take() {
            let _ = tx.send(server.addrs().iter().map(Bound::from).collect());
        }
        self.chat.serving(server)
    }
    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let _ = conn.write(format!("L{}\n", self.index).as_bytes());
        let action = self.chat.opened(conn);
        self.publish();
        action
    }
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let action = self.chat.data(conn, input);
        self.publish();
        action
    }
    fn tick(&mut self, others: &mut Loop<'_, ()>) -> evio::Tick {
        let tick = self.chat.tick(others);
        self.publish();
        tick
    }
    fn closed(
        &mut self,
        info: &ConnInfo,
        ctx: (),
        error: Option<CloseError>,
        others: &mut Loop<'_, ()>,
    ) -> Flow {
        let flow = self.chat.closed(info, ctx, error, others);
        self.publish();
        flow
    }
}

/// A room of two loops on its own thread: its address, what it publishes, and a way to
/// stop it (a `stop\n`-free room: the test shuts it down by dropping everything and
/// signalling through the returned channel's end).
struct Room {
    addr: Bound,
    published: Arc<Published>,
    done: mpsc::Receiver<Result<(), evio::Error>>,
    stop: Arc<Mutex<Option<evio::Waker>>>,
}

fn start_room(builder: evio::ServerBuilder, make: fn() -> Chat) -> Room {
    let published = Arc::new(Published::default());
    let (tx, rx) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    let p = published.clone();
    let stop: Arc<Mutex<Option<evio::Waker>>> = Arc::default();
    let s = stop.clone();
    std::thread::spawn(move || {
        let tx = Mutex::new(tx);
        let result = builder.loops(2).serve_loops(
            |index| {
                Stoppable2(
                    Greeted {
                        chat: make().spanning(index, 2),
                        index,
                        published: p.clone(),
                        started: (index == 0).then(|| tx.lock().unwrap().clone()),
                    },
                    s.clone(),
                )
            },
            &["tcp4://127.0.0.1:0"],
        );
        let _ = done_tx.send(result);
    });
    let addrs: Vec<Bound> = rx.recv_timeout(LIMIT).expect("serving");
    Room {
        addr: addrs[0].clone(),
        published,
        done,
        stop,
    }
}

/// Hands loop 0's waker to the test, and shuts the server down when woken.
struct Stoppable2(Greeted, Arc<Mutex<Option<evio::Waker>>>);

impl Events for Stoppable2 {
    type Context = ();
    evio::delegate_events!(self.0, except serving, server_woken);
    fn serving(&mut self, server: Server<'_>) -> Flow {
        if self.0.index == 0 {
            *self.1.lock().unwrap() = server.waker().cloned();
        }
        self.0.serving(server)
    }
    fn server_woken(&mut self, _: &mut Loop<'_, ()>) -> Flow {
        Flow::Shutdown
    }
}

impl Room {
    /// A client, and the loop it landed on.
    fn join(&self) -> (Client, usize) {
        let mut c = connect(&self.addr);
        let mut greeting = [0u8; 3];
        c.read_exact(&mut greeting).unwrap();
        assert_eq!(greeting[0], b'L');
        (c, usize::from(greeting[1] - b'0'))
    }

    fn members(&self) -> u64 {
        self.published
            .members
            .iter()
            .map(|m| m.load(Ordering::SeqCst))
            .sum()
    }

    fn wait_for_members(&self, n: u64) {
        let started = Instant::now();
        while self.members() < n {
            assert!(started.elapsed() < LIMIT, "clients never all joined");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn stop(self) {
        let waker = self.stop.lock().unwrap().clone().expect("serving");
        waker.wake_server();
        self.done
            .recv_timeout(LIMIT)
            .expect("stopped in time")
            .expect("a clean shutdown");
    }
}

const CLIENTS: usize = 10;
const LINES_EACH: usize = 1_000;

#[test]
fn every_line_reaches_every_other_client_once_and_in_order_across_loops() {
    let room = start_room(
        evio::ServerBuilder::new()
            .max_connections(2 * CLIENTS + 4)
            .output_capacity(1 << 20),
        || Chat::new(None),
    );
    let clients: Vec<(Client, usize)> = (0..CLIENTS).map(|_| room.join()).collect();
    room.wait_for_members(CLIENTS as u64);
    let on_1 = clients.iter().filter(|(_, l)| *l == 1).count();
    assert!(
        on_1 > 0 && on_1 < CLIENTS,
        "the kernel spread {CLIENTS} clients over both loops ({on_1} on loop 1)"
    );
    chat_every_line_once_in_order(clients.into_iter().map(|(c, _)| c).collect(), LINES_EACH);
    room.stop();
}

/// Clients until one is on `want`.
fn join_on(room: &Room, want: usize, spare: &mut Vec<Client>) -> Client {
    for _ in 0..64 {
        let (c, l) = room.join();
        if l == want {
            return c;
        }
        spare.push(c);
    }
    panic!("64 clients, none on loop {want}");
}

#[test]
fn a_fast_reader_on_one_loop_of_a_flood_from_the_other_is_never_disconnected() {
    const TOTAL: usize = 40 << 20;
    let room = start_room(
        evio::ServerBuilder::new()
            .input_capacity(4096)
            .output_capacity(16 * 1024),
        || Chat::with_slow_consumer(None, Duration::from_secs(5)),
    );
    let mut spare = Vec::new();
    let talker = join_on(&room, 0, &mut spare);
    let reader = join_on(&room, 1, &mut spare);
    // The extra clients read nothing and would be slow consumers: they leave first.
    let extra = spare.len() as u64;
    drop(spare);
    let started = Instant::now();
    while room.members() != 2 {
        assert!(
            started.elapsed() < LIMIT,
            "{extra} extra clients never left"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    chat_flood_to_a_fast_reader(talker, reader, TOTAL);
    assert_eq!(room.published.slow_consumers.load(Ordering::SeqCst), 0);
    room.stop();
}

#[test]
fn a_client_on_the_other_loop_that_never_reads_is_cut_off_and_the_rest_carry_on() {
    let room = start_room(
        evio::ServerBuilder::new().output_capacity(16 * 1024),
        || Chat::with_slow_consumer(None, Duration::from_millis(200)),
    );
    let mut spare = Vec::new();
    let mut talker = join_on(&room, 0, &mut spare);
    let listener = join_on(&room, 0, &mut spare);
    let silent = join_on(&room, 1, &mut spare); // never reads
    drop(spare);
    let started = Instant::now();
    while room.members() != 3 {
        assert!(started.elapsed() < LIMIT, "extra clients never left");
        std::thread::sleep(Duration::from_millis(5));
    }
    chat_talk_until_a_silent_member_is_cut_off(&mut talker, &listener, || {
        room.published.slow_consumers.load(Ordering::SeqCst) > 0
    });
    drop((silent, listener));
    room.stop();
}

/// The example as a user starts it: `chat-server --loops 2`. Clients join one by one,
/// each announcing itself to those already in (so each is in the room before the next
/// speaks); then every client's line reaches every other, and SIGTERM stops both loops.
/// (The clients land on either loop as the kernel's hash puts them.)
#[test]
fn the_example_with_two_loops_relays_between_them_and_stops_on_sigterm() {
    let dir = TempDir::new("chat-loops");
    let sock = dir.sock("chat.sock");
    let mut child = KillOnDrop(
        std::process::Command::new(example_binary("chat-server"))
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--unixsocket",
                &sock,
                "--loops",
                "2",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.ends_with(" (2 loops)\n"), "{first}");
    let port: u16 = first
        .trim()
        .trim_end_matches(" (2 loops)")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let addr = Bound::Tcp(([127, 0, 0, 1], port).into());
    // The first two prove they are in the room: the second pings until the first
    // hears it (a line sent before a client's loop accepted it would miss it).
    let first_client = connect(&addr);
    let mut second = connect(&addr);
    let mut readers = vec![BufReader::new(first_client)];
    readers[0]
        .get_ref()
        .set_timeouts(Duration::from_millis(100));
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < LIMIT,
            "the first client never heard a ping"
        );
        second.write_all(b"ping\n").unwrap();
        let mut got = String::new();
        if readers[0].read_line(&mut got).is_ok() {
            assert_eq!(got, "ping\n");
            break;
        }
    }
    readers[0].get_ref().set_timeouts(LIMIT);
    readers.push(BufReader::new(second));
    // The others announce themselves to those already in.
    let next_line = |r: &mut BufReader<Client>| loop {
        let mut got = String::new();
        r.read_line(&mut got).unwrap();
        if got != "ping\n" {
            return got;
        }
    };
    for k in 2..12 {
        let mut c = connect(&addr);
        let hello = format!("hello from {k}\n");
        c.write_all(hello.as_bytes()).unwrap();
        for r in &mut readers {
            assert_eq!(next_line(r), hello);
        }
        readers.push(BufReader::new(c));
    }
    for (k, r) in readers.iter_mut().enumerate() {
        let bye = format!("bye from {k}\n");
        r.get_mut().write_all(bye.as_bytes()).unwrap();
    }
    for (me, r) in readers.iter_mut().enumerate() {
        let mut seen: Vec<String> = (0..11).map(|_| next_line(r)).collect();
        seen.sort();
        let mut want: Vec<String> = (0..12)
            .filter(|&k| k != me)
            .map(|k| format!("bye from {k}\n"))
            .collect();
        want.sort();
        assert_eq!(seen, want, "client {me}");
    }
    let mut last = readers.pop().unwrap().into_inner();
    stop_example_with_signal(&mut child, libc::SIGTERM, &sock, &mut last);
}

/// Clients that connect, send one line and close at once, spread over both loops: every
/// line reaches a listener on loop 0. (With 32 lines allowed on their way to another
/// loop, a sender held for room there was reset by its client before its line went:
/// 640 of 1,000 lines arrived; with 256, all of them.)
#[test]
fn every_line_of_clients_that_send_once_and_leave_reaches_a_listener_on_either_loop() {
    const PARTING: usize = 1_000;
    let room = start_room(
        evio::ServerBuilder::new().max_connections(2 * PARTING + 16),
        || Chat::new(None),
    );
    let mut spare = Vec::new();
    let listener = join_on(&room, 0, &mut spare);
    drop(spare);
    let started = Instant::now();
    while room.members() != 1 {
        assert!(started.elapsed() < LIMIT, "extra clients never left");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut reader = BufReader::new(listener);
    let senders = std::thread::spawn({
        let addr = room.addr.clone();
        move || {
            for c in 0..PARTING {
                let mut parting = connect(&addr);
                parting.write_all(chat_line(c, 0).as_bytes()).unwrap();
                drop(parting);
            }
        }
    });
    let mut got = std::collections::HashSet::new();
    let mut text = String::new();
    while got.len() < PARTING {
        text.clear();
        let n = reader
            .read_line(&mut text)
            .expect("the listener reads every line");
        assert!(n > 0, "the listener was cut off after {} lines", got.len());
        assert!(got.insert(text.clone()), "a line twice: {text:?}");
    }
    senders.join().unwrap();
    room.stop();
}
