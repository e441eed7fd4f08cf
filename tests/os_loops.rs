//! Several event loops (`ServerBuilder::loops`, `serve_loops`) on real sockets, under
//! both backends this machine has: every client is served whichever loop takes it;
//! over TCP on Linux the kernel spreads clients over every loop (one `SO_REUSEPORT`
//! listener each); over a unix socket, and over TCP with `Balance::Handoff`, loop 0
//! accepts and hands each connection to the less loaded loop; a shutdown asked
//! for on any loop stops them all, closing every loop's clients; `serve` refuses
//! several loops without a factory.

mod os_common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use evio::{Action, Conn, Events, Flow, Server};
use os_common::*;

/// Greets each client with its loop's number (one byte), echoes lines, and shuts the
/// server down on the line `stop\n`.
struct Numbered {
    index: usize,
    accepted: Arc<Vec<AtomicUsize>>,
    started: Option<Sender<(usize, Vec<Bound>)>>,
}

impl Events for Numbered {
    type Context = ();
    fn serving(&mut self, server: Server<'_>) -> Flow {
        if let Some(tx) = self.started.take() {
            let addrs = server.addrs().iter().map(Bound::from).collect();
            let _ = tx.send((self.index, addrs));
        }
        Flow::Continue
    }
    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.accepted[self.index].fetch_add(1, Ordering::SeqCst);
        let _ = conn.write(&[b'0' + self.index as u8]);
        Action::None
    }
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        if input == b"stop\n" {
            return Action::Shutdown;
        }
        let _ = conn.write(input);
        Action::None
    }
}

/// A server of `loops` loops on its own thread: the bound addresses every loop
/// reported, the per-loop accept counts, and `serve_loops`'s result when it returns.
struct Group {
    addrs: Vec<Vec<Bound>>,
    accepted: Arc<Vec<AtomicUsize>>,
    done: mpsc::Receiver<Result<(), evio::Error>>,
}

fn start_loops(loops: usize, addr: &str) -> Group {
    start_balanced(loops, addr, evio::Balance::Kernel)
}

fn start_balanced(loops: usize, addr: &str, balance: evio::Balance) -> Group {
    let accepted = Arc::new((0..loops).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
    let (started_tx, started_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let addr = addr.to_owned();
    let counts = accepted.clone();
    std::thread::spawn(move || {
        let started = Mutex::new(started_tx);
        let result = evio::ServerBuilder::new()
            .loops(loops)
            .balance(balance)
            .max_connections(256)
            .serve_loops(
                |index| Numbered {
                    index,
                    accepted: counts.clone(),
                    started: Some(started.lock().unwrap().clone()),
                },
                &[addr.as_str()],
            );
        let _ = done_tx.send(result);
    });
    let mut addrs = vec![Vec::new(); loops];
    for _ in 0..loops {
        let (i, a) = started_rx
            .recv_timeout(LIMIT)
            .expect("every loop reports serving");
        addrs[i] = a;
    }
    Group {
        addrs,
        accepted,
        done: done_rx,
    }
}

impl Group {
    fn wait(self) -> Result<(), evio::Error> {
        self.done
            .recv_timeout(LIMIT)
            .expect("serve_loops did not return in time")
    }
}

/// Connects `n` clients; each reads its loop's number and gets a line echoed. The
/// clients, with the loop each landed on.
fn clients(addr: &Bound, n: usize) -> Vec<(Client, usize)> {
    (0..n)
        .map(|k| {
            let mut c = connect(addr);
            let index = usize::from(c.read_n(1)[0] - b'0');
            let line = format!("client {k}\n");
            assert_eq!(c.round_trip(line.as_bytes()), line.as_bytes());
            (c, index)
        })
        .collect()
}

#[test]
fn two_loops_on_tcp_share_the_port_and_both_serve() {
    for scheme in ["tcp4", "tcp4-net"] {
        let group = start_loops(2, &format!("{scheme}://127.0.0.1:0"));
        assert_eq!(
            group.addrs[0], group.addrs[1],
            "{scheme}: both loops listen on the same port"
        );
        let clients = clients(&group.addrs[0][0], 64);
        let on = |i| clients.iter().filter(|(_, l)| *l == i).count();
        assert_eq!(on(0) + on(1), 64);
        for i in 0..2 {
            assert_eq!(group.accepted[i].load(Ordering::SeqCst), on(i));
        }
        if cfg!(any(
            target_os = "linux",
            target_os = "android",
            target_os = "freebsd"
        )) {
            // The kernel hashes each connection's ports: 64 clients on one loop would
            // be a 1 in 2^63 chance.
            assert!(
                on(0) > 0 && on(1) > 0,
                "{scheme}: the kernel spread the clients ({} and {})",
                on(0),
                on(1)
            );
        }
        let (mut stopper, _) = clients.into_iter().next().unwrap();
        stopper.write_all(b"stop\n").unwrap();
        group.wait().expect("a clean shutdown");
    }
}

#[test]
fn a_shutdown_on_one_loop_stops_every_loop_and_closes_its_clients() {
    let group = start_loops(2, "tcp4://127.0.0.1:0");
    let mut clients = clients(&group.addrs[0][0], 64);
    // Stop from a client of loop 1; every client of loop 0 must be closed too.
    let at = clients
        .iter()
        .position(|(_, l)| *l == 1)
        .expect("a client on loop 1");
    let (mut stopper, _) = clients.remove(at);
    stopper.write_all(b"stop\n").unwrap();
    group.wait().expect("a clean shutdown");
    for (mut c, _) in clients {
        c.set_timeouts(Duration::from_secs(5));
        let mut buf = [0u8; 16];
        assert!(
            matches!(c.read(&mut buf), Ok(0) | Err(_)),
            "every client is closed"
        );
    }
}

#[test]
fn loops_share_a_unix_socket_and_its_file_goes_once_they_stop() {
    let dir = TempDir::new("loops");
    let path = dir.path().join("s.sock");
    for scheme in ["unix", "unix-net"] {
        let group = start_loops(2, &format!("{scheme}://{}", path.display()));
        assert_eq!(group.addrs[0], group.addrs[1]);
        let clients = clients(&group.addrs[0][0], 32);
        let served: Vec<usize> = group
            .accepted
            .iter()
            .map(|n| n.load(Ordering::SeqCst))
            .collect();
        assert_eq!(
            served[0] + served[1],
            32,
            "every client opened once, on one loop"
        );
        // Loop 0 accepts and hands each connection to the less loaded loop: the clients
        // stay connected, so the loads stay even.
        assert!(
            served.iter().all(|&n| n >= 12),
            "{scheme}: handed off by load: {served:?}"
        );
        assert!(
            clients.iter().filter(|(_, l)| *l == 1).count() == served[1],
            "each client greeted by the loop that opened it"
        );
        let (mut stopper, _) = clients.into_iter().next().unwrap();
        stopper.write_all(b"stop\n").unwrap();
        group.wait().expect("a clean shutdown");
        assert!(!path.exists(), "{scheme}: the socket file is removed");
    }
}

#[test]
fn serve_refuses_several_loops_and_serve_loops_with_one_is_serve() {
    let e = evio::ServerBuilder::new()
        .loops(2)
        .serve(
            Numbered {
                index: 0,
                accepted: Arc::new(Vec::new()),
                started: None,
            },
            &["tcp4://127.0.0.1:0"],
        )
        .expect_err("two loops and one handler");
    assert!(matches!(e, evio::Error::LoopsNeedAFactory { loops: 2 }));
    assert!(e.to_string().contains("serve_loops"), "{e}");

    let group = start_loops(1, "tcp4://127.0.0.1:0");
    let clients = clients(&group.addrs[0][0], 4);
    assert!(clients.iter().all(|(_, l)| *l == 0));
    let (mut stopper, _) = clients.into_iter().next().unwrap();
    stopper.write_all(b"stop\n").unwrap();
    group.wait().expect("a clean shutdown");
}

#[test]
fn the_loop_count_resolves_zero_to_the_parallelism() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(evio::ServerBuilder::new().loops(0).loop_count(), cores);
    assert_eq!(evio::ServerBuilder::new().loop_count(), 1);
    assert_eq!(evio::ServerBuilder::new().loops(3).loop_count(), 3);
}

/// Greets each client with `<loop> <id>` and runs its lines: `send ID TEXT` writes
/// `TEXT\n` to connection ID, whichever loop it is on, and answers `posted` or why not;
/// a refusal that comes back later is told to the last client that sent, as
/// `refused: WHY`; `stop` shuts the server down.
#[derive(Default)]
struct Router {
    last_sender: Option<evio::ConnId>,
}

impl Events for Router {
    type Context = ();
    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let id = conn.id();
        let _ = conn.write(format!("{} {}\n", id.loop_index(), id.to_u64()).as_bytes());
        Action::None
    }
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let line = String::from_utf8_lossy(input);
        let line = line.trim_end();
        if line == "stop" {
            return Action::Shutdown;
        }
        let mut words = line.splitn(3, ' ');
        let (Some("send"), Some(to), Some(text)) = (words.next(), words.next(), words.next())
        else {
            return Action::Close;
        };
        let to = evio::ConnId::from_u64(to.parse().unwrap());
        self.last_sender = Some(conn.id());
        let answer = match conn.others().write(to, format!("{text}\n").as_bytes()) {
            Ok(()) => "posted\n".to_owned(),
            Err(e) => format!("error: {e}\n"),
        };
        let _ = conn.write(answer.as_bytes());
        Action::None
    }
    fn post_refused(
        &mut self,
        others: &mut evio::Loop<'_, ()>,
        _to: evio::ConnId,
        _kind: evio::PostKind,
        _len: usize,
        why: evio::Refusal,
    ) -> Flow {
        if let Some(sender) = self.last_sender {
            let _ = others.write(sender, format!("refused: {why}\n").as_bytes());
        }
        Flow::Continue
    }
}

/// Reads one line.
fn line(c: &mut Client) -> String {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while c.read(&mut byte).expect("a line") == 1 && byte[0] != b'\n' {
        out.push(byte[0]);
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn a_handler_writes_to_a_connection_of_another_loop_and_hears_of_a_refusal() {
    for scheme in ["tcp4", "tcp4-net"] {
        let (tx, rx) = mpsc::channel();
        let addr = format!("{scheme}://127.0.0.1:0");
        let server = std::thread::spawn(move || {
            let tx = Mutex::new(tx);
            evio::ServerBuilder::new()
                .loops(2)
                .max_connections(64)
                .serve_loops(
                    |i| {
                        struct First<H>(H, Option<Sender<Vec<Bound>>>);
                        impl<H: Events<Context = ()>> Events for First<H> {
                            type Context = ();
                            evio::delegate_events!(self.0, except serving);
                            fn serving(&mut self, server: Server<'_>) -> Flow {
                                if let Some(tx) = self.1.take() {
                                    let _ =
                                        tx.send(server.addrs().iter().map(Bound::from).collect());
                                }
                                Flow::Continue
                            }
                        }
                        First(
                            Router::default(),
                            (i == 0).then(|| tx.lock().unwrap().clone()),
                        )
                    },
                    &[addr.as_str()],
                )
        });
        let addrs = rx.recv_timeout(LIMIT).expect("serving");
        // Clients until there is one on each loop.
        let mut on: [Option<(Client, u64)>; 2] = [None, None];
        let mut extra = Vec::new();
        for _ in 0..64 {
            let mut c = connect(&addrs[0]);
            let greeting = line(&mut c);
            let (l, id) = greeting.split_once(' ').unwrap();
            let (l, id): (usize, u64) = (l.parse().unwrap(), id.parse().unwrap());
            assert_eq!(evio::ConnId::from_u64(id).loop_index(), l);
            if on[l].is_none() {
                on[l] = Some((c, id));
            } else {
                extra.push(c);
            }
            if on.iter().all(Option::is_some) {
                break;
            }
        }
        let [Some((mut a, a_id)), Some((mut b, b_id))] = on else {
            panic!("{scheme}: 64 clients all on one loop");
        };
        // Both ways across the loops.
        a.write_all(format!("send {b_id} hello from loop 0\n").as_bytes())
            .unwrap();
        assert_eq!(line(&mut a), "posted");
        assert_eq!(line(&mut b), "hello from loop 0");
        b.write_all(format!("send {a_id} and back\n").as_bytes())
            .unwrap();
        assert_eq!(line(&mut b), "posted");
        assert_eq!(line(&mut a), "and back");
        // b leaves; a post to it is refused on arrival, and a hears of it.
        drop(b);
        let mut told = None;
        for _ in 0..200 {
            a.write_all(format!("send {b_id} anyone?\n").as_bytes())
                .unwrap();
            assert_eq!(line(&mut a), "posted");
            // A post made before b's loop saw it close is delivered to nobody (its
            // socket is gone) or refused: wait for the refusal.
            a.set_timeouts(Duration::from_millis(50));
            let mut buf = [0u8; 256];
            if let Ok(n) = a.read(&mut buf) {
                told = Some(String::from_utf8_lossy(&buf[..n]).into_owned());
                break;
            }
            a.set_timeouts(LIMIT);
        }
        a.set_timeouts(LIMIT);
        assert_eq!(
            told.as_deref(),
            Some("refused: the connection is not open\n"),
            "{scheme}"
        );
        a.write_all(b"stop\n").unwrap();
        server.join().unwrap().expect("a clean shutdown");
        drop(extra);
    }
}

#[test]
fn with_handoff_the_first_loop_spreads_tcp_clients_by_load() {
    for scheme in ["tcp4", "tcp4-net"] {
        let group = start_balanced(
            2,
            &format!("{scheme}://127.0.0.1:0"),
            evio::Balance::Handoff,
        );
        let clients = clients(&group.addrs[0][0], 64);
        let on = |i| clients.iter().filter(|(_, l)| *l == i).count();
        assert_eq!(on(0) + on(1), 64);
        assert!(
            on(0) >= 24 && on(1) >= 24,
            "{scheme}: by load, about even ({} and {})",
            on(0),
            on(1)
        );
        let (mut stopper, _) = clients.into_iter().next().unwrap();
        stopper.write_all(b"stop\n").unwrap();
        group.wait().expect("a clean shutdown");
    }
}
