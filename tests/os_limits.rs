//! `max_connections` follows the process's descriptor limit: by default, and when a
//! configured value is higher than the limit allows (lowered, with one line on standard
//! error).
//!
//! The server runs in a child process (this test binary, run again) whose soft
//! `RLIMIT_NOFILE` it lowers to 100, and the clients in this one: with both ends in one
//! process, the clients would use up the very limit under test.

mod os_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use evio::{Action, Events, Flow, Loop, Server, Tick};
use evio_handlers::echo::Echo;
use os_common::*;

/// The child's soft descriptor limit.
const LIMIT_IN_CHILD: u64 = 100;
/// What that leaves for connections with one listener.
const ALLOWED: usize = LIMIT_IN_CHILD as usize - evio::RESERVED_DESCRIPTORS - 1;
const WHY: &[u8] = b"full\n";
const CHILD: &str = "EVIO_LIMITS_CHILD";

/// Echo; prints its port once serving; shuts down once standard input ends.
struct ChildServer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Events for ChildServer {
    type Context = ();
    fn serving(&mut self, server: Server<'_>) -> Flow {
        if let [evio::ListenAddr::Ip(a)] = server.addrs() {
            println!("child: port={}", a.port());
        }
        Flow::Continue
    }
    fn data(&mut self, conn: &mut evio::Conn<'_, ()>, input: &[u8]) -> Action {
        Echo.data(conn, input)
    }
    fn tick(&mut self, _: &mut Loop<'_, ()>) -> Tick {
        let stop = self.stop.load(std::sync::atomic::Ordering::SeqCst);
        Tick::after(std::time::Duration::from_millis(5)).with_flow(if stop {
            Flow::Shutdown
        } else {
            Flow::Continue
        })
    }
}

fn child() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let hard = getrlimit(Resource::Nofile).maximum;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(LIMIT_IN_CHILD),
            maximum: hard,
        },
    )
    .unwrap();
    let default = evio::ServerBuilder::new().engine_config().max_connections;
    println!("child: default={default}");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        s.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    evio::ServerBuilder::new()
        .max_connections(10_000)
        .refusal_message(WHY)
        .serve(ChildServer { stop }, &["tcp4://127.0.0.1:0"])
        .unwrap();
}

#[test]
fn max_connections_follows_the_descriptor_limit() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let mut server = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "max_connections_follows_the_descriptor_limit",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    let mut next = |prefix: &str| loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the child ended early"
        );
        // (The test harness's own "test … ... " may precede it on the line.)
        if let Some((_, v)) = line.trim().split_once(prefix) {
            return v.parse::<usize>().unwrap();
        }
    };
    assert_eq!(
        next("child: default="),
        ALLOWED,
        "the default follows the limit"
    );
    let port = next("child: port=") as u16;
    let addr = Bound::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    // As many connections as the limit allows are served...
    let mut held: Vec<Client> = (0..ALLOWED).map(|_| connect(&addr)).collect();
    for c in &mut held {
        assert_eq!(c.round_trip(b"in"), b"in");
    }
    // ... and the next is told why and closed, not left to fail on EMFILE.
    let mut extra = connect(&addr);
    assert_eq!(extra.read_to_end_lossy(), WHY);
    for c in &mut held {
        assert_eq!(c.round_trip(b"still"), b"still");
    }
    drop(held);
    drop(server.stdin.take());
    let status = server.wait().unwrap();
    let mut stderr = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}: {stderr}");
    let lowered: Vec<&str> = stderr.lines().filter(|l| l.contains("lowered")).collect();
    assert_eq!(
        lowered,
        [format!(
            "evio: max_connections 10000 lowered to {ALLOWED}: the descriptor limit \
             (RLIMIT_NOFILE) allows no more"
        )],
        "{stderr}"
    );
    let _ = std::io::stdout().flush();
}
