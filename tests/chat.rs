//! The chat example against real sockets: every line reaches every other client once
//! and in order, a client that never reads is disconnected while the rest carry on, and
//! the example stops cleanly on SIGTERM.

mod os_common;

use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use evio::{Action, CloseError, Conn, ConnInfo, Events, Flow, Loop};
use evio_handlers::chat::Chat;
use os_common::*;

const CLIENTS: usize = 10;
const LINES_EACH: usize = 1_000;

#[test]
fn every_line_reaches_every_other_client_once_and_in_order() {
    // Output buffers big enough for everything a client is sent: nobody is slow here.
    let published = Arc::new(Published::default());
    let p = published.clone();
    let server = start(
        evio::ServerBuilder::new()
            .max_connections(CLIENTS + 2)
            .output_capacity(1 << 20),
        &["tcp4://127.0.0.1:0"],
        move || Counted(Chat::new(None), p),
    );
    let clients: Vec<Client> = (0..CLIENTS).map(|_| connect(server.addr(0))).collect();
    // Everyone is in the room before the first line (a late joiner would miss lines).
    published.wait_for_members(CLIENTS as u64);
    chat_every_line_once_in_order(clients, LINES_EACH);
    server.stop().unwrap();
}

/// What the chat handler under test publishes to the test thread.
#[derive(Default)]
struct Published {
    members: AtomicU64,
    slow_consumers: AtomicU64,
}

impl Published {
    /// Waits until `n` clients are in the room (a client that joins late misses the
    /// lines sent before).
    fn wait_for_members(&self, n: u64) {
        let started = Instant::now();
        while self.members.load(Ordering::SeqCst) < n {
            assert!(started.elapsed() < LIMIT, "clients never all joined");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The chat handler, publishing its room size and how many slow consumers it
/// disconnected.
struct Counted(Chat, Arc<Published>);

impl Counted {
    fn publish(&self) {
        self.1
            .members
            .store(self.0.members().count() as u64, Ordering::SeqCst);
        self.1
            .slow_consumers
            .store(self.0.slow_consumers, Ordering::SeqCst);
    }
}

impl Events for Counted {
    type Context = ();
    evio::delegate_events!(self.0, except opened, data, closed);
    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let action = self.0.opened(conn);
        self.publish();
        action
    }
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let action = self.0.data(conn, input);
        self.publish();
        action
    }
    fn closed(
        &mut self,
        info: &ConnInfo,
        ctx: (),
        error: Option<CloseError>,
        others: &mut Loop<'_, ()>,
    ) -> Flow {
        let flow = self.0.closed(info, ctx, error, others);
        self.publish();
        flow
    }
}

#[test]
fn a_client_that_never_reads_is_disconnected_and_the_rest_carry_on() {
    // At once, and after the senders waited 200 ms for it.
    for slow in [None, Some(Duration::from_millis(200))] {
        a_client_that_never_reads_is_disconnected(slow);
    }
}

fn a_client_that_never_reads_is_disconnected(slow: Option<Duration>) {
    let published = Arc::new(Published::default());
    let p = published.clone();
    let server = start(
        evio::ServerBuilder::new().output_capacity(16 * 1024),
        &["tcp4://127.0.0.1:0"],
        move || {
            let chat = match slow {
                None => Chat::new(None),
                Some(limit) => Chat::with_slow_consumer(None, limit),
            };
            Counted(chat, p)
        },
    );
    let mut talker = connect(server.addr(0));
    let listener = connect(server.addr(0));
    let silent = connect(server.addr(0)); // never reads
    published.wait_for_members(3);
    chat_talk_until_a_silent_member_is_cut_off(&mut talker, &listener, || {
        published.slow_consumers.load(Ordering::SeqCst) > 0
    });
    drop((silent, listener));
    server.stop().unwrap();
}

/// A reader as fast as it can be is never cut off as a slow consumer, however much one
/// client sends: the sender waits while the reader's output buffer is full. (With the
/// old rule, `Chat::new`: a member too full for a line is cut off at once, the reader
/// is reset in 3 of 3 runs of this test.)
#[test]
fn a_fast_reader_of_a_flood_of_lines_is_never_disconnected() {
    const TOTAL: usize = 40 << 20;
    let published = Arc::new(Published::default());
    let p = published.clone();
    let server = start(
        evio::ServerBuilder::new()
            .input_capacity(4096)
            .output_capacity(16 * 1024),
        &["tcp4://127.0.0.1:0"],
        move || Counted(Chat::with_slow_consumer(None, Duration::from_secs(5)), p),
    );
    let talker = connect(server.addr(0));
    let reader = connect(server.addr(0));
    published.wait_for_members(2);
    chat_flood_to_a_fast_reader(talker, reader, TOTAL);
    assert_eq!(published.slow_consumers.load(Ordering::SeqCst), 0);
    server.stop().unwrap();
}

#[test]
fn the_example_stops_on_sigterm_with_status_zero_and_removes_its_socket_file() {
    let example = example_binary("chat-server");
    let dir = TempDir::new("chat");
    let sock = dir.sock("chat.sock");
    let mut child = KillOnDrop(
        std::process::Command::new(&example)
            .args(["--host", "127.0.0.1", "--port", "0", "--unixsocket", &sock])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(
        first.starts_with("chat server listening on tcp://"),
        "{first}"
    );
    let port: u16 = first.trim().rsplit(':').next().unwrap().parse().unwrap();
    let mut second = String::new();
    out.read_line(&mut second).unwrap();
    assert!(std::path::Path::new(&sock).exists(), "{second}");
    // A client is connected when the signal comes: it is closed, not left hanging.
    let mut c = connect(&Bound::Tcp(([127, 0, 0, 1], port).into()));
    c.write_all(b"hi\n").unwrap();
    stop_example_with_signal(&mut child, libc::SIGTERM, &sock, &mut c);
}

/// Clients that connect, send one line and close at once: every line reaches a
/// listener that stays. Relaying one client's line writes to the others, whose clients
/// may already have closed; the reset such a write provokes must not cost them the
/// line they sent first (the engine reads a readable connection before sending to it,
/// and reads once more when a send fails). Under both backends, with the example's
/// default buffers.
#[test]
fn every_line_of_clients_that_send_once_and_leave_reaches_a_listener() {
    const PARTING: usize = 200;
    for backend in [evio::Backend::system_default(), evio::Backend::Poll] {
        let published = Arc::new(Published::default());
        let p = published.clone();
        let server = start(
            evio::ServerBuilder::new()
                .backend(backend)
                .max_connections(PARTING + 8),
            &["tcp4://127.0.0.1:0"],
            move || Counted(Chat::new(None), p),
        );
        let listener = connect(server.addr(0));
        published.wait_for_members(1);
        for c in 0..PARTING {
            let mut parting = connect(server.addr(0));
            parting.write_all(chat_line(c, 0).as_bytes()).unwrap();
            drop(parting);
        }
        let mut reader = BufReader::new(listener);
        let mut got = [false; PARTING];
        let mut text = String::new();
        for _ in 0..PARTING {
            text.clear();
            reader.read_line(&mut text).unwrap_or_else(|e| {
                let n = got.iter().filter(|&&g| g).count();
                panic!("{backend:?}: {e}: {n} of the {PARTING} lines arrived")
            });
            let c: usize = text[1..text.find(' ').unwrap()].parse().unwrap();
            assert_eq!(text, chat_line(c, 0), "{backend:?}");
            assert!(!got[c], "{backend:?}: line of c{c} twice");
            got[c] = true;
        }
        server.stop().unwrap();
    }
}
