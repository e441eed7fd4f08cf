//! The redis-proxy example between real clients (redis-cli, redis-benchmark, raw
//! sockets) and two real `redis-server` backends started here on free loopback
//! ports (`--save '' --appendonly no`, killed at the end). Skipped when `redis-server`
//! or `redis-cli` is missing (set EVIO_REQUIRE_CLIENTS=1 to make that a failure).

mod os_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use os_common::{KillOnDrop, RespClient, example_binary, free_port, have_client, resp_command};

/// The proxy under the default backend, and under poll(2) (`--stdlib`).
const BACKENDS: [&[&str]; 2] = [&[], &["--stdlib"]];

/// Waits until something accepts on `port` (at most 5 s).
fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start_redis(port: u16) -> KillOnDrop {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    wait_listening(port);
    KillOnDrop(child)
}

/// Two backends and the proxy in front of them.
struct Setup {
    backends: [u16; 2],
    redis: [Option<KillOnDrop>; 2],
    port: u16,
    proxy: KillOnDrop,
}

impl Setup {
    /// `None` (the test is skipped) without the redis tools.
    fn start(extra: &[&str]) -> Option<Setup> {
        if !have_client("redis-server", "redis-server") || !have_client("redis-cli", "redis-tools")
        {
            return None;
        }
        let backends = [free_port(), free_port()];
        let redis = [
            Some(start_redis(backends[0])),
            Some(start_redis(backends[1])),
        ];
        let port = free_port();
        let proxy = Command::new(example_binary("redis-proxy"))
            .args(["--port", &port.to_string()])
            .args(["--backend", &format!("127.0.0.1:{}", backends[0])])
            .args(["--backend", &format!("127.0.0.1:{}", backends[1])])
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("the proxy starts");
        let proxy = KillOnDrop(proxy);
        wait_listening(port);
        let setup = Setup {
            backends,
            redis,
            port,
            proxy,
        };
        // Both backends connected: a PING through each answers.
        setup.wait_until(|s| s.cli(&["set", "warm{a}", "1"]) == "OK\n");
        Some(setup)
    }

    fn cli_at(&self, port: u16, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn cli(&self, args: &[&str]) -> String {
        self.cli_at(self.port, args)
    }

    /// Retries `f` for at most 10 s.
    fn wait_until(&self, f: impl Fn(&Setup) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f(self) {
            assert!(Instant::now() < deadline, "timed out waiting");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn raw(&self) -> Raw {
        RespClient::connect(SocketAddr::from(([127, 0, 0, 1], self.port)))
    }
}

type Raw = RespClient;

fn cmd(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    resp_command(&mut out, args);
    out
}

#[test]
fn commands_are_sharded_split_merged_and_refused() {
    for extra in BACKENDS {
        commands_are_sharded_split_merged_and_refused_with(extra);
    }
}

fn commands_are_sharded_split_merged_and_refused_with(extra: &[&str]) {
    let Some(s) = Setup::start(extra) else { return };
    assert_eq!(s.cli(&["set", "hello", "world"]), "OK\n");
    assert_eq!(s.cli(&["get", "hello"]), "world\n");
    assert_eq!(s.cli(&["ping"]), "PONG\n");
    assert_eq!(s.cli(&["echo", "hi there"]), "hi there\n");
    // Keys spread over both backends, each key on one of them only.
    for i in 0..40 {
        let key = format!("key:{i}");
        assert_eq!(s.cli(&["set", &key, &format!("v{i}")]), "OK\n");
    }
    let mut on = [0, 0];
    for i in 0..40 {
        let key = format!("key:{i}");
        let found: Vec<bool> = s
            .backends
            .iter()
            .map(|&p| s.cli_at(p, &["exists", &key]) == "1\n")
            .collect();
        assert_eq!(found.iter().filter(|&&f| f).count(), 1, "{key}: {found:?}");
        on[usize::from(found[1])] += 1;
    }
    assert!(on[0] > 5 && on[1] > 5, "keys per backend: {on:?}");
    // MGET across the backends keeps the keys' order; DEL and EXISTS add up.
    let mut args = vec!["mget"];
    let keys: Vec<String> = (0..40).rev().map(|i| format!("key:{i}")).collect();
    args.extend(keys.iter().map(String::as_str));
    args.push("missing");
    let want: String = (0..40).rev().map(|i| format!("v{i}\n")).collect::<String>() + "\n";
    assert_eq!(s.cli(&args), want);
    assert_eq!(
        s.cli(&["exists", "key:1", "key:2", "nope", "key:3", "key:1"]),
        "4\n"
    );
    assert_eq!(s.cli(&["del", "key:1", "key:2", "nope", "key:3"]), "3\n");
    assert_eq!(s.cli(&["exists", "key:1", "key:2", "key:4"]), "1\n");
    // Commands with no key, or several keys not split, get an error (not a hang).
    for refused in [
        &["config", "get", "save"][..],
        &["flushdb"],
        &["keys", "*"],
        &["select", "1"],
        &["mset", "a", "1", "b", "2"],
    ] {
        let out = s.cli(refused);
        assert!(
            out.starts_with("ERR redis-proxy does not support"),
            "{refused:?}: {out}"
        );
    }
    assert!(
        s.cli(&["get"])
            .starts_with("ERR wrong number of arguments for 'get'")
    );
    // Malformed input: Redis's protocol error, then the close.
    let mut raw = s.raw();
    raw.send(b"*1\r\n$4\r\nPING\r\n*x\r\n");
    assert_eq!(raw.reply(), b"+PONG\r\n");
    assert_eq!(
        raw.reply(),
        b"-ERR Protocol error: invalid multibulk length\r\n"
    );
    let mut rest = Vec::new();
    assert_eq!(raw.0.read_to_end(&mut rest).unwrap(), 0, "closed");
    // Inline commands are forwarded too.
    let mut raw = s.raw();
    raw.send(b"SET inline yes\r\nGET inline\r\nQUIT\r\n");
    assert_eq!(raw.reply(), b"+OK\r\n");
    assert_eq!(raw.reply(), b"$3\r\nyes\r\n");
    assert_eq!(raw.reply(), b"+OK\r\n");
}

#[test]
fn a_pipeline_of_1000_mixed_commands_is_answered_in_order() {
    for extra in BACKENDS {
        a_pipeline_of_1000_mixed_commands_is_answered_in_order_with(extra);
    }
}

fn a_pipeline_of_1000_mixed_commands_is_answered_in_order_with(extra: &[&str]) {
    let Some(s) = Setup::start(extra) else { return };
    let mut raw = s.raw();
    let mut batch = Vec::new();
    let mut want: Vec<Vec<u8>> = Vec::new();
    for i in 0..1000 {
        let key = format!("p:{}", i % 97);
        let value = format!("value-{i}");
        match i % 5 {
            0 => {
                batch.extend(cmd(&[b"SET", key.as_bytes(), value.as_bytes()]));
                want.push(b"+OK\r\n".to_vec());
            }
            1 => {
                batch.extend(cmd(&[b"PING"]));
                want.push(b"+PONG\r\n".to_vec());
            }
            2 => {
                let k2 = format!("p:{}", (i + 31) % 97);
                batch.extend(cmd(&[b"DEL", b"nothing:a", k2.as_bytes(), b"nothing:b"]));
                want.push(Vec::new()); // a count: checked as an integer below
            }
            3 => {
                batch.extend(cmd(&[b"ECHO", value.as_bytes()]));
                want.push(format!("${}\r\n{value}\r\n", value.len()).into_bytes());
            }
            _ => {
                batch.extend(cmd(&[b"SET", b"last", value.as_bytes()]));
                batch.extend(cmd(&[b"GET", b"last"]));
                want.push(b"+OK\r\n".to_vec());
                want.push(format!("${}\r\n{value}\r\n", value.len()).into_bytes());
            }
        }
    }
    raw.send(&batch);
    for (i, want) in want.iter().enumerate() {
        let got = raw.reply();
        if want.is_empty() {
            assert!(got.starts_with(b":"), "reply {i}: {got:?}");
        } else {
            assert_eq!(&got, want, "reply {i}");
        }
    }
}

#[test]
fn redis_benchmark_completes_through_the_proxy() {
    for extra in BACKENDS {
        redis_benchmark_completes_through_the_proxy_with(extra);
    }
}

fn redis_benchmark_completes_through_the_proxy_with(extra: &[&str]) {
    let Some(s) = Setup::start(extra) else { return };
    if !have_client("redis-benchmark", "redis-tools") {
        return;
    }
    let mut child = KillOnDrop(
        Command::new("redis-benchmark")
            .args(["-h", "127.0.0.1", "-p", &s.port.to_string()])
            .args([
                "-t", "get,set", "-n", "20000", "-P", "16", "-c", "20", "-r", "1000", "-q",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "redis-benchmark did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(child.try_wait().unwrap().unwrap().success());
    for test in ["SET:", "GET:"] {
        assert!(out.contains(test), "{out}");
    }
}

#[test]
fn a_backend_down_gets_errors_for_its_keys_and_is_reconnected() {
    for extra in BACKENDS {
        a_backend_down_gets_errors_for_its_keys_and_is_reconnected_with(extra);
    }
}

fn a_backend_down_gets_errors_for_its_keys_and_is_reconnected_with(extra: &[&str]) {
    let Some(mut s) = Setup::start(extra) else {
        return;
    };
    // A key on each backend.
    let mut keys = [None, None];
    for i in 0..100 {
        let key = format!("d:{i}");
        assert_eq!(s.cli(&["set", &key, "x"]), "OK\n");
        let b = usize::from(s.cli_at(s.backends[1], &["exists", &key]) == "1\n");
        keys[b].get_or_insert(key);
    }
    let [Some(k0), Some(k1)] = keys else {
        panic!("keys on both backends")
    };
    drop(s.redis[1].take()); // killed
    std::thread::sleep(Duration::from_millis(200));
    let out = s.cli(&["get", &k1]);
    let name = format!("ERR backend 127.0.0.1:{}", s.backends[1]);
    assert!(out.starts_with(&name), "{out}");
    assert_eq!(s.cli(&["get", &k0]), "x\n", "the other backend still works");
    let out = s.cli(&["mget", &k0, &k1]);
    assert!(out.starts_with(&name), "{out}");
    // Back on the same port: the proxy reconnects (back-off at most 5 s).
    s.redis[1] = Some(start_redis(s.backends[1]));
    s.wait_until(|s| s.cli(&["set", &k1, "again"]) == "OK\n");
    assert_eq!(s.cli(&["get", &k1]), "again\n");
}

/// The proxy's resident memory in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_client_that_never_reads_does_not_grow_the_proxy() {
    for extra in BACKENDS {
        a_client_that_never_reads_does_not_grow_the_proxy_with(extra);
    }
}

fn a_client_that_never_reads_does_not_grow_the_proxy_with(extra: &[&str]) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let Some(s) = Setup::start(extra) else { return };
    let value = vec![b'v'; 512 * 1024];
    let mut raw = s.raw();
    raw.send(&cmd(&[b"SET", b"big", &value]));
    assert_eq!(raw.reply(), b"+OK\r\n");
    let before = rss_kib(s.proxy.id());
    // 2,000 GETs of 512 KiB (1 GB of replies), never read; the writer gives up when
    // the proxy stops reading.
    let mut stream = raw.0.into_inner();
    stream
        .set_write_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let get = cmd(&[b"GET", b"big"]);
    for _ in 0..2000 {
        if stream.write_all(&get).is_err() {
            break;
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_kib(s.proxy.id());
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    // Other clients are still served.
    assert_eq!(s.cli(&["ping"]), "PONG\n");
    assert_eq!(s.cli(&["set", "other", "1"]), "OK\n");
}

#[test]
fn a_pipeline_far_beyond_the_inflight_bound_is_held_and_answered_in_order() {
    for extra in BACKENDS {
        a_pipeline_far_beyond_the_inflight_bound_is_held_and_answered_in_order_with(extra);
    }
}

fn a_pipeline_far_beyond_the_inflight_bound_is_held_and_answered_in_order_with(extra: &[&str]) {
    // 4 requests in flight at most: the 20,000 requests (and a 300 KiB SET among them,
    // larger than half the input buffer) mostly wait in the engine, held and resumed.
    let Some(s) = Setup::start(&[extra, &["--max-inflight", "4"][..]].concat()) else {
        return;
    };
    let raw = s.raw();
    let mut writer = raw.0.get_ref().try_clone().unwrap();
    let mut reader = raw;
    let big = vec![b'b'; 300 * 1024];
    let mut batch = Vec::new();
    let mut want: Vec<Vec<u8>> = Vec::new();
    for i in 0..20_000 {
        let key = format!("h:{}", (i / 2) % 101);
        if i == 10_000 {
            batch.extend(cmd(&[b"SET", b"h:big", &big]));
            want.push(b"+OK\r\n".to_vec());
            batch.extend(cmd(&[b"STRLEN", b"h:big"]));
            want.push(format!(":{}\r\n", big.len()).into_bytes());
        }
        if i % 2 == 0 {
            let value = format!("v{i}");
            batch.extend(cmd(&[b"SET", key.as_bytes(), value.as_bytes()]));
            want.push(b"+OK\r\n".to_vec());
        } else {
            batch.extend(cmd(&[b"GET", key.as_bytes()]));
            let value = format!("v{}", i - 1);
            want.push(format!("${}\r\n{value}\r\n", value.len()).into_bytes());
        }
    }
    let sender = std::thread::spawn(move || writer.write_all(&batch).unwrap());
    for (i, want) in want.iter().enumerate() {
        assert_eq!(&reader.reply(), want, "reply {i}");
    }
    sender.join().unwrap();
}

#[test]
fn clients_that_pipeline_without_reading_do_not_grow_the_proxy() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let Some(s) = Setup::start(&[]) else { return };
    let before = rss_kib(s.proxy.id());
    // 16 clients each write up to 8 MiB of small SETs and read nothing: the proxy
    // holds what it cannot forward in its input buffers and stops reading them.
    let set = cmd(&[b"SET", b"w", b"0123456789"]);
    let chunk: Vec<u8> = set.iter().copied().cycle().take(set.len() * 2048).collect();
    let writers: Vec<_> = (0..16)
        .map(|_| {
            let stream = s.raw().0.into_inner();
            let chunk = chunk.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                stream
                    .set_write_timeout(Some(Duration::from_secs(2)))
                    .unwrap();
                let mut sent = 0;
                while sent < 8 << 20 {
                    if stream.write_all(&chunk).is_err() {
                        break;
                    }
                    sent += chunk.len();
                }
                stream // kept open until measured
            })
        })
        .collect();
    let streams: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let after = rss_kib(s.proxy.id());
    assert!(
        after < before + 24 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    assert_eq!(s.cli(&["ping"]), "PONG\n");
    assert_eq!(s.cli(&["set", "other", "1"]), "OK\n");
    drop(streams);
}

/// A client that ends its stream in the middle of a large request (gathered by the
/// proxy apart from the engine's input buffer) is closed once its other replies are
/// sent, instead of being held open for ever (the simulator's seed 72 found it).
#[test]
fn a_client_that_ends_in_the_middle_of_a_large_request_is_closed() {
    for extra in BACKENDS {
        let Some(s) = Setup::start(extra) else { return };
        let mut raw = s.raw();
        raw.send(b"*1\r\n$4\r\nPING\r\n");
        let mut partial = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n".to_vec();
        partial.extend(std::iter::repeat_n(b'v', 40_000));
        raw.send(&partial);
        raw.0.get_ref().shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(raw.reply(), b"+PONG\r\n");
        let mut rest = Vec::new();
        raw.0.read_to_end(&mut rest).expect("closed, not held open");
        assert!(rest.is_empty(), "{extra:?}: {rest:?}");
        // The proxy goes on.
        assert_eq!(s.cli(&["ping"]), "PONG\n");
    }
}
