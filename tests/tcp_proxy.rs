//! The L4 proxy (`evio_handlers::tcp_proxy`, `examples/tcp-proxy.rs`) as its clients
//! and backends see it: real clients (redis-cli and redis-benchmark to a real
//! `redis-server`, curl and wrk to the http example), large transfers both ways,
//! half-close, a backend that closes first, a backend that is down or never answers,
//! and a client that never reads while its backend floods. Each under the default
//! backend and poll(2) (`--stdlib`, the `-net` schemes).

mod os_common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use evio_handlers::http::{Http, HttpConfig};
use evio_handlers::tcp_proxy::{Backend, TcpProxy, TcpProxyConfig};
use os_common::*;

/// The two backends: the system's default, and poll(2).
const ADDRS: [&str; 2] = ["tcp4://127.0.0.1:0", "tcp4-net://127.0.0.1:0"];

fn proxy_config(backend: Backend) -> TcpProxyConfig {
    TcpProxyConfig {
        backend,
        connect_timeout: Duration::from_secs(5),
        idle_timeout: None,
    }
}

/// The proxy served in this process on `addr`, to `config`'s backend.
fn start_proxy(addr: &str, config: TcpProxyConfig) -> (Running, SocketAddr) {
    let server = start(
        evio::ServerBuilder::new().max_connections(256),
        &[addr],
        move || TcpProxy::new(config),
    );
    let Bound::Tcp(at) = server.addr(0).clone() else {
        panic!("a TCP listener")
    };
    (server, at)
}

fn client(at: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(at).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.set_write_timeout(Some(LIMIT)).unwrap();
    s
}

/// A TCP backend on a thread that runs `serve` for each of the first `n` connections
/// it accepts; returns its address.
fn tcp_backend(n: usize, serve: fn(TcpStream)) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let at = listener.local_addr().unwrap();
    thread::spawn(move || {
        for s in listener.incoming().take(n).flatten() {
            s.set_read_timeout(Some(LIMIT)).unwrap();
            s.set_write_timeout(Some(LIMIT)).unwrap();
            thread::spawn(move || serve(s));
        }
    });
    at
}

fn echo(mut s: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// A real `redis-server` on a unix socket in `dir`, killed when dropped; `None` (the
/// test is skipped) without redis-server and redis-cli.
fn redis_backend(dir: &TempDir) -> Option<(KillOnDrop, String)> {
    if !have_client("redis-server", "redis-server") || !have_client("redis-cli", "redis-tools") {
        return None;
    }
    let sock = dir.sock("redis.sock");
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--unixsocket",
            &sock,
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    let child = KillOnDrop(child);
    let deadline = Instant::now() + LIMIT;
    loop {
        let pong = Command::new("redis-cli")
            .args(["-s", &sock, "PING"])
            .output()
            .map(|o| o.stdout == b"PONG\n")
            .unwrap_or(false);
        if pong {
            return Some((child, sock));
        }
        assert!(Instant::now() < deadline, "redis-server did not come up");
        thread::sleep(Duration::from_millis(20));
    }
}

fn redis_cli(at: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &at.port().to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn redis_cli_and_redis_benchmark_through_the_proxy_to_a_real_redis() {
    let dir = TempDir::new("proxy-redis");
    let Some((_redis, sock)) = redis_backend(&dir) else {
        return;
    };
    if !have_client("redis-benchmark", "redis-tools") {
        return;
    }
    for addr in ADDRS {
        let (proxy, at) = start_proxy(addr, proxy_config(Backend::Unix(sock.clone())));
        assert_eq!(redis_cli(at, &["SET", "through", addr]), "OK\n");
        assert_eq!(redis_cli(at, &["GET", "through"]), format!("{addr}\n"));
        // The value is in the real Redis behind it.
        let direct = Command::new("redis-cli")
            .args(["-s", &sock, "GET", "through"])
            .output()
            .unwrap();
        assert_eq!(direct.stdout, format!("{addr}\n").as_bytes());
        for depth in ["16", "1"] {
            let out = Command::new("redis-benchmark")
                .args(["-h", "127.0.0.1", "-p", &at.port().to_string()])
                .args(["-q", "-t", "get,set", "-n", "5000", "-c", "20", "-P", depth])
                .output()
                .expect("redis-benchmark runs");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{addr} -P {depth}: {text}");
            for test in ["SET:", "GET:"] {
                assert!(
                    text.lines()
                        .any(|l| l.contains(test) && l.contains("requests per second")),
                    "{addr} -P {depth}: no {test} result in {text:?}"
                );
            }
        }
        proxy.stop().unwrap();
    }
}

#[test]
fn curl_and_wrk_through_the_proxy_to_the_http_example() {
    if !have_client("curl", "curl") || !have_client("wrk", "wrk") {
        return;
    }
    let http = start(evio::ServerBuilder::new(), &["tcp4://127.0.0.1:0"], || {
        Http::new(HttpConfig::default())
    });
    let Bound::Tcp(web) = http.addr(0).clone() else {
        panic!("a TCP listener")
    };
    for addr in ADDRS {
        let (proxy, at) = start_proxy(addr, proxy_config(Backend::Tcp(web)));
        let url = format!("http://127.0.0.1:{}/", at.port());
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "10",
            ])
            .arg(&url)
            .output()
            .expect("curl runs");
        assert_eq!(out.stdout, b"200", "{addr}");
        let out = Command::new("wrk")
            .args(["-t1", "-c10", "-d1s", "--timeout", "5s", &url])
            .output()
            .expect("wrk runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{addr}: {text}");
        assert!(text.contains("requests in"), "{addr}: {text}");
        assert!(
            !text.contains("Socket errors") && !text.contains("Non-2xx"),
            "{addr}: {text}"
        );
        proxy.stop().unwrap();
    }
    http.stop().unwrap();
}

#[test]
fn large_transfers_both_ways_arrive_whole_and_in_order() {
    const TOTAL: usize = 8 << 20;
    for addr in ADDRS {
        let backend = tcp_backend(1, echo);
        let (proxy, at) = start_proxy(addr, proxy_config(Backend::Tcp(backend)));
        let mut s = client(at);
        let mut data = vec![0u8; TOTAL];
        Rng::new(7).fill(&mut data);
        let sent = data.clone();
        let mut writer = s.try_clone().unwrap();
        let w = thread::spawn(move || {
            // Uneven writes, so the relay sees every size.
            let mut rng = Rng::new(9);
            let mut at = 0;
            while at < sent.len() {
                let n = (1 + rng.below(200_000) as usize).min(sent.len() - at);
                writer.write_all(&sent[at..at + n]).unwrap();
                at += n;
            }
            writer.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::with_capacity(TOTAL);
        s.read_to_end(&mut got).unwrap();
        w.join().unwrap();
        assert_eq!(got.len(), TOTAL, "{addr}");
        assert!(got == data, "{addr}: the bytes differ");
        proxy.stop().unwrap();
    }
}

#[test]
fn a_half_close_is_passed_on_and_the_answer_still_comes_back() {
    /// Reads until the end of the stream, then answers with the count and closes.
    fn count(mut s: TcpStream) {
        let mut n = 0;
        let mut buf = [0u8; 16 * 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(_) => return,
            }
        }
        let _ = s.write_all(format!("{n} bytes").as_bytes());
    }
    for addr in ADDRS {
        let backend = tcp_backend(1, count);
        let (proxy, at) = start_proxy(addr, proxy_config(Backend::Tcp(backend)));
        let mut s = client(at);
        s.write_all(&[b'x'; 300_000]).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert_eq!(answer, "300000 bytes", "{addr}");
        proxy.stop().unwrap();
    }
}

#[test]
fn a_backend_that_closes_first_has_its_last_bytes_and_its_end_passed_on() {
    fn greet_and_leave(mut s: TcpStream) {
        let _ = s.write_all(&[b'g'; 200_000]);
    }
    for addr in ADDRS {
        let backend = tcp_backend(1, greet_and_leave);
        let (proxy, at) = start_proxy(addr, proxy_config(Backend::Tcp(backend)));
        let mut s = client(at);
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), 200_000, "{addr}");
        proxy.stop().unwrap();
    }
}

#[test]
fn a_backend_that_is_down_closes_its_client_and_the_proxy_goes_on() {
    let dir = TempDir::new("proxy-down");
    let path = dir.sock("later.sock");
    for addr in ADDRS {
        let _ = std::fs::remove_file(&path);
        let (proxy, at) = start_proxy(addr, proxy_config(Backend::Unix(path.clone())));
        // Nothing listens there yet: the client is closed, promptly and cleanly.
        let mut s = client(at);
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        assert!(got.is_empty(), "{addr}");
        // The backend comes up: the next client is served.
        let listener = UnixListener::bind(&path).unwrap();
        let echoer = thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut buf = [0u8; 5];
            c.read_exact(&mut buf).unwrap();
            c.write_all(&buf).unwrap();
        });
        let mut s = client(at);
        s.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello", "{addr}");
        echoer.join().unwrap();
        proxy.stop().unwrap();
    }
}

#[test]
fn a_backend_that_never_answers_is_given_up_at_the_connect_timeout() {
    // A listener whose accept queue is full (backlog 0, one connection waiting that
    // nobody accepts): the kernel drops further SYNs, so a connect never completes.
    let listener = socket2_listener_with_backlog_zero();
    let at_backend = listener.1;
    let _filler = TcpStream::connect(at_backend).unwrap();
    let _filler2 = std::net::TcpStream::connect_timeout(&at_backend, Duration::from_millis(200));
    for addr in ADDRS {
        let config = TcpProxyConfig {
            connect_timeout: Duration::from_millis(300),
            ..proxy_config(Backend::Tcp(at_backend))
        };
        let (proxy, at) = start_proxy(addr, config);
        let mut s = client(at);
        let started = Instant::now();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        assert!(got.is_empty(), "{addr}");
        // Closed by the engine's timeout, not by the kernel's own (minutes).
        assert!(started.elapsed() < LIMIT, "{addr}");
        proxy.stop().unwrap();
    }
    drop(listener);
}

/// A TCP listener on loopback with a backlog of 0.
fn socket2_listener_with_backlog_zero() -> (std::os::fd::OwnedFd, SocketAddr) {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: plain socket calls on a descriptor this function owns.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let owned = OwnedFd::from_raw_fd(fd);
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(libc::bind(fd, (&raw const sa).cast(), len), 0);
        assert_eq!(libc::listen(fd, 0), 0);
        let mut len = len;
        assert_eq!(
            libc::getsockname(owned.as_raw_fd(), (&raw mut sa).cast(), &mut len),
            0
        );
        let port = u16::from_be(sa.sin_port);
        (owned, SocketAddr::from(([127, 0, 0, 1], port)))
    }
}

#[test]
fn a_client_that_never_reads_while_its_backend_floods_costs_bounded_memory() {
    static WRITTEN: AtomicU64 = AtomicU64::new(0);
    fn flood(mut s: TcpStream) {
        s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
        let chunk = vec![b'f'; 64 * 1024];
        while s.write_all(&chunk).is_ok() {
            WRITTEN.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        }
    }
    let backend = tcp_backend(2, flood);
    for stdlib in [false, true] {
        let listen = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listen.local_addr().unwrap().port();
        drop(listen);
        let mut args = vec![
            "--host".to_string(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--backend".into(),
            backend.to_string(),
        ];
        if stdlib {
            args.push("--stdlib".into());
        }
        let mut proxy = KillOnDrop(
            Command::new(example_binary("tcp-proxy"))
                .args(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut line = [0u8; 1];
        // The first byte of its "listening" line: it is up.
        proxy
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut line)
            .unwrap();
        WRITTEN.store(0, Ordering::SeqCst);
        let s = client(SocketAddr::from(([127, 0, 0, 1], port)));
        // The backend writes as fast as it can while the client reads nothing: it is
        // held back once the kernel's buffers and the proxy's two buffers are full.
        let mut last = 0;
        let deadline = Instant::now() + LIMIT;
        loop {
            thread::sleep(Duration::from_millis(300));
            let now = WRITTEN.load(Ordering::SeqCst);
            if now > 0 && now == last {
                break;
            }
            assert!(Instant::now() < deadline, "the backend was never held back");
            last = now;
        }
        let written = WRITTEN.load(Ordering::SeqCst);
        assert!(written < 64 << 20, "{written} bytes went into the proxy");
        let rss = rss_kib(proxy.id());
        assert!(rss < 64 * 1024, "the proxy holds {rss} KiB");
        drop(s);
        let _ = proxy.kill();
    }
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

#[test]
fn many_clients_at_once_each_get_their_own_bytes_back() {
    let backend = tcp_backend(64, echo);
    let (proxy, at) = start_proxy(ADDRS[0], proxy_config(Backend::Tcp(backend)));
    let done = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..32u64)
        .map(|i| {
            let done = done.clone();
            thread::spawn(move || {
                let mut s = client(at);
                let mut data = vec![0u8; 100_000];
                Rng::new(i).fill(&mut data);
                let mut w = s.try_clone().unwrap();
                let sent = data.clone();
                let t = thread::spawn(move || w.write_all(&sent).unwrap());
                let mut got = vec![0u8; data.len()];
                s.read_exact(&mut got).unwrap();
                t.join().unwrap();
                assert!(got == data, "client {i}: the bytes differ");
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), 32);
    proxy.stop().unwrap();
}
