//! Several event loops (`ServerBuilder::loops`, `serve_loops`) on real sockets, under
//! both backends this machine has: every client is served whichever loop takes it;
//! over TCP on Linux the kernel spreads clients over every loop (one `SO_REUSEPORT`
//! listener each); over a unix socket the loops share one listener; a shutdown asked
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
    let accepted = Arc::new((0..loops).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
    let (started_tx, started_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let addr = addr.to_owned();
    let counts = accepted.clone();
    std::thread::spawn(move || {
        let started = Mutex::new(started_tx);
        let result = evio::ServerBuilder::new()
            .loops(loops)
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
        let served: usize = group
            .accepted
            .iter()
            .map(|n| n.load(Ordering::SeqCst))
            .sum();
        assert_eq!(served, 32, "every client accepted once, by one loop");
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
