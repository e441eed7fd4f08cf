//! The example servers with `--loops 2`, as a user starts them: every client of the
//! echo and http servers is served whole, over TCP and a unix socket, the redis
//! server's loops share one key space, both loop threads do the work (their CPU time, from /proc, on Linux), and SIGTERM stops every
//! loop with exit status 0 and the socket file removed.

mod os_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use os_common::*;

/// Starts example `name` with `args`, and waits for its "listening" lines (one per
/// address, from loop 0 only): they must say how many loops run.
fn start(name: &str, args: &[&str], addrs: usize) -> KillOnDrop {
    let mut child = KillOnDrop(
        Command::new(example_binary(name))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the example starts"),
    );
    let mut out = BufReader::new(child.stdout.take().unwrap());
    for _ in 0..addrs {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(line.contains("listening on"), "{line:?}");
        assert!(line.contains(", 2 loops)"), "{line:?}");
    }
    // Nothing else is printed: not a second set of lines from the other loop.
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = out.read_to_string(&mut rest);
        assert!(!rest.contains("listening"), "{rest:?}");
    });
    child
}

/// CPU time of each thread of process `pid`, by thread name: nanoseconds on the CPU
/// from /proc's schedstat (exact; the stat file's ticks miss short bursts).
#[cfg(target_os = "linux")]
fn thread_ticks(pid: u32) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let path = task.unwrap().path();
        let (Ok(comm), Ok(sched)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("schedstat")),
        ) else {
            continue;
        };
        let ns = sched.split(' ').next().unwrap().parse::<u64>().unwrap();
        out.push((comm.trim_end().to_owned(), ns));
    }
    out
}

/// Both loop threads (the main thread runs loop 0, `evio-loop-1` loop 1) have used
/// CPU time.
fn assert_both_loops_worked(pid: u32) {
    #[cfg(target_os = "linux")]
    {
        let ticks = thread_ticks(pid);
        let loop1 = ticks.iter().find(|(n, _)| n == "evio-loop-1");
        let main = ticks.iter().find(|(n, _)| !n.starts_with("evio-"));
        assert!(
            matches!((main, loop1), (Some((_, a)), Some((_, b))) if *a > 0 && *b > 0),
            "both loops worked: {ticks:?}"
        );
    }
    #[cfg(not(target_os = "linux"))]
    let _ = pid;
}

#[test]
fn the_echo_server_with_two_loops_echoes_every_client_on_both_loops() {
    let port = free_port();
    let dir = TempDir::new("echo-loops");
    let sock = dir.sock("echo.sock");
    let port_text = port.to_string();
    let mut server = start(
        "echo-server",
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port_text,
            "--unixsocket",
            &sock,
            "--loops",
            "2",
        ],
        2,
    );
    let tcp = Bound::Tcp(SocketAddr::from(([127, 0, 0, 1], port)));
    let unix = Bound::Unix(sock.clone().into());
    // 24 TCP clients (the kernel spreads them by port hash) and 8 unix ones, 2 MB
    // each, at once.
    let streams: Vec<_> = (0..32u64)
        .map(|k| {
            let to = if k < 24 { tcp.clone() } else { unix.clone() };
            std::thread::spawn(move || echo_stream(connect(&to), k, 2 << 20, 16 << 10))
        })
        .collect();
    for s in streams {
        s.join().expect("every client echoed whole");
    }
    assert_both_loops_worked(server.id());
    let mut idle = connect(&tcp);
    idle.write_all(b"x").unwrap();
    assert_eq!(idle.read_n(1), b"x");
    stop_example_with_signal(&mut server, libc::SIGTERM, &sock, &mut idle);
}

/// Reads responses until `n` status lines have come; how many came (a close before
/// that fails).
fn count_responses(c: &mut Client, n: usize) -> usize {
    const STATUS: &[u8] = b"HTTP/1.1 200 OK";
    let mut seen = 0;
    let mut tail: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 65536];
    while seen < n {
        let got = c.read(&mut buf).expect("responses");
        assert!(got > 0, "closed after {seen} responses");
        // What is left of the last read that could start a status line, then this one.
        tail.extend_from_slice(&buf[..got]);
        seen += tail.windows(STATUS.len()).filter(|w| *w == STATUS).count();
        let keep = tail.len().min(STATUS.len() - 1);
        tail.drain(..tail.len() - keep);
    }
    seen
}

#[test]
fn the_http_server_with_two_loops_answers_every_client_on_both_loops() {
    let port = free_port();
    let dir = TempDir::new("http-loops");
    let sock = dir.sock("http.sock");
    let port_text = port.to_string();
    let mut server = start(
        "http-server",
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port_text,
            "--unixsocket",
            &sock,
            "--loops",
            "2",
            "--keepalive-requests",
            "0",
        ],
        2,
    );
    let tcp = Bound::Tcp(SocketAddr::from(([127, 0, 0, 1], port)));
    // 32 keep-alive clients, 5,000 pipelined requests each: every response comes.
    const REQUESTS: usize = 5000;
    let clients: Vec<_> = (0..32)
        .map(|_| {
            let to = tcp.clone();
            std::thread::spawn(move || {
                let mut reader = connect(&to);
                let mut writer = reader.try_clone();
                let w = std::thread::spawn(move || {
                    let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(REQUESTS);
                    writer.write_all(&request).unwrap();
                });
                assert_eq!(count_responses(&mut reader, REQUESTS), REQUESTS);
                w.join().unwrap();
            })
        })
        .collect();
    for c in clients {
        c.join().expect("every client answered");
    }
    assert_both_loops_worked(server.id());
    let mut idle = connect(&tcp);
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 15];
    idle.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200 OK");
    let mut rest = [0u8; 512];
    let _ = idle.read(&mut rest);
    stop_example_with_signal(&mut server, libc::SIGTERM, &sock, &mut idle);
}

#[test]
fn the_redis_server_with_two_loops_shares_one_key_space() {
    let port = free_port();
    let dir = TempDir::new("redis-loops");
    let sock = dir.sock("redis.sock");
    let port_text = port.to_string();
    let mut server = start(
        "redis-server",
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port_text,
            "--unixsocket",
            &sock,
            "--loops",
            "2",
        ],
        2,
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    const CLIENTS: usize = 24;
    const KEYS: usize = 2000;
    // Each client sets its keys (pipelined), then reads another client's: whichever
    // loops the two are on, it sees them.
    let writers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut client = RespClient::connect(addr);
                let mut batch = Vec::new();
                for i in 0..KEYS {
                    let (k, v) = (format!("k{c}:{i}"), format!("v{c}:{i}"));
                    resp_command(&mut batch, &[b"SET", k.as_bytes(), v.as_bytes()]);
                }
                client.send(&batch);
                for _ in 0..KEYS {
                    assert_eq!(client.reply(), b"+OK\r\n");
                }
                client
            })
        })
        .collect();
    let mut clients: Vec<RespClient> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    for (c, client) in clients.iter_mut().enumerate() {
        let other = (c + 1) % CLIENTS;
        let mut batch = Vec::new();
        for i in 0..KEYS {
            resp_command(&mut batch, &[b"GET", format!("k{other}:{i}").as_bytes()]);
        }
        client.send(&batch);
        for i in 0..KEYS {
            let v = format!("v{other}:{i}");
            assert_eq!(
                client.reply(),
                format!("${}\r\n{v}\r\n", v.len()).as_bytes(),
                "client {c} reads client {other}'s key {i}"
            );
        }
    }
    clients[0].send(b"*1\r\n$6\r\nDBSIZE\r\n");
    assert_eq!(
        clients[0].reply(),
        format!(":{}\r\n", CLIENTS * KEYS).as_bytes()
    );
    assert_both_loops_worked(server.id());
    drop(clients);
    let mut idle = connect(&Bound::Tcp(addr));
    idle.write_all(b"PING\r\n").unwrap();
    assert_eq!(idle.read_n(7), b"+PONG\r\n");
    stop_example_with_signal(&mut server, libc::SIGTERM, &sock, &mut idle);
}
