//! The redis handler against the real clients, `redis-cli` and `redis-benchmark`, under
//! the default backend and the poll(2) backend (`-net` schemes, the examples'
//! `--stdlib`). Every expected text below is what Redis 7.0 itself prints for the same
//! command (checked side by side with a real `redis-server`).
//!
//! The clients come from Debian's `redis-tools` (`.ci/run` installs it); without them
//! these tests are reported as skipped, with the install line, unless
//! `EVIO_REQUIRE_CLIENTS` is set (as CI sets it), which makes them fail.

mod os_common;

use std::net::SocketAddr;
use std::process::{Command, Output};

use evio_handlers::redis::{Redis, RedisConfig};
use os_common::*;

/// The two backends: the system's default, and poll(2).
const ADDRS: [&str; 2] = ["tcp4://127.0.0.1:0", "tcp4-net://127.0.0.1:0"];

/// `name` from `redis-tools` (each test checks it is there first: [`have_client`]).
fn tool(name: &str) -> Command {
    Command::new(name)
}

fn start_redis(addr: &str) -> (Running, SocketAddr) {
    let server = start(evio::ServerBuilder::new(), &[addr], || {
        Redis::new(RedisConfig::default())
    });
    let Bound::Tcp(at) = server.addr(0).clone() else {
        panic!("a TCP listener")
    };
    (server, at)
}

/// `redis-cli` (its human-readable output, as on a terminal) with `args` against `at`.
fn cli(at: SocketAddr, args: &[&str]) -> Output {
    let port = at.port().to_string();
    tool("redis-cli")
        .args(["--no-raw", "-h", "127.0.0.1", "-p", &port])
        .args(args)
        .output()
        .expect("redis-cli runs")
}

/// Each command, and what `redis-cli` prints for Redis 7.0's reply to it, in order.
const SESSION: &[(&[&str], &str)] = &[
    (&["FLUSHDB"], "OK\n"),
    (&["PING"], "PONG\n"),
    (&["ping", "hello"], "\"hello\"\n"),
    (&["ECHO", "hi there"], "\"hi there\"\n"),
    (&["SET", "k", "v"], "OK\n"),
    (&["get", "k"], "\"v\"\n"),
    (&["GET", "missing"], "(nil)\n"),
    (&["SET", "k2", "a b"], "OK\n"),
    (&["EXISTS", "k", "k", "k2", "nope"], "(integer) 3\n"),
    (&["DEL", "k", "nope", "k"], "(integer) 1\n"),
    (&["DBSIZE"], "(integer) 1\n"),
    (&["FLUSHDB", "ASYNC"], "OK\n"),
    (&["DBSIZE"], "(integer) 0\n"),
    (&["FLUSHDB", "x"], "(error) ERR syntax error\n"),
    (&["CONFIG", "GET", "save"], "1) \"save\"\n2) \"\"\n"),
    (
        &["config", "get", "appendonly"],
        "1) \"appendonly\"\n2) \"no\"\n",
    ),
    (
        &["CONFIG", "FOO"],
        "(error) ERR unknown subcommand 'FOO'. Try CONFIG HELP.\n",
    ),
    (
        &["CONFIG", "GET"],
        "(error) ERR wrong number of arguments for 'config|get' command\n",
    ),
    (
        &["FOO", "a", "b"],
        "(error) ERR unknown command 'FOO', with args beginning with: 'a' 'b' \n",
    ),
    (
        &["GET"],
        "(error) ERR wrong number of arguments for 'get' command\n",
    ),
    (
        &["SET", "a"],
        "(error) ERR wrong number of arguments for 'set' command\n",
    ),
    (&["SET", "a", "b", "c"], "(error) ERR syntax error\n"),
    (
        &["ECHO"],
        "(error) ERR wrong number of arguments for 'echo' command\n",
    ),
    (
        &["PING", "a", "b"],
        "(error) ERR wrong number of arguments for 'ping' command\n",
    ),
    (
        &["DEL"],
        "(error) ERR wrong number of arguments for 'del' command\n",
    ),
    (
        &["EXISTS"],
        "(error) ERR wrong number of arguments for 'exists' command\n",
    ),
    (
        &["DBSIZE", "x"],
        "(error) ERR wrong number of arguments for 'dbsize' command\n",
    ),
    (&["QUIT"], "OK\n"),
    (
        &["SHUTDOWN", "ABORT"],
        "(error) ERR No shutdown in progress.\n",
    ),
    (&["SHUTDOWN", "FROB"], "(error) ERR syntax error\n"),
];

#[test]
fn redis_cli_gets_redis_s_reply_to_every_command_and_error() {
    if !have_client("redis-cli", "redis-tools") {
        return;
    }
    for addr in ADDRS {
        let (server, at) = start_redis(addr);
        for (args, expected) in SESSION {
            let out = cli(at, args);
            assert!(out.status.success(), "{addr} {args:?}: {out:?}");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                *expected,
                "{addr}: redis-cli {args:?}"
            );
        }
        server.stop().unwrap();
    }
}

#[test]
fn redis_cli_shutdown_stops_the_server() {
    if !have_client("redis-cli", "redis-tools") {
        return;
    }
    for addr in ADDRS {
        let (server, at) = start_redis(addr);
        let out = cli(at, &["SHUTDOWN"]);
        assert!(out.status.success(), "{addr}: {out:?}");
        assert_eq!(out.stdout, b"", "{addr}: Redis says nothing to SHUTDOWN");
        // `serve` returns on its own.
        server.wait().unwrap();
    }
}

/// Runs `redis-benchmark` against `at` and checks that every test completed and
/// nothing reported an error (its speed is not judged).
fn benchmark(at: SocketAddr, pipeline: &str, requests: &str) {
    let port = at.port().to_string();
    let out = tool("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port, "-q", "-c", "20"])
        .args(["-t", "ping_inline,ping_mbulk,set,get", "-P", pipeline])
        .args(["-n", requests])
        .output()
        .expect("redis-benchmark runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "-P {pipeline}: {out:?}");
    // The progress lines end in `\r`; the results are the lines after the last one.
    let results: Vec<&str> = stdout
        .split(['\r', '\n'])
        .filter(|l| l.contains("requests per second"))
        .collect();
    for test in ["PING_INLINE", "PING_MBULK", "SET", "GET"] {
        assert!(
            results.iter().any(|l| l.starts_with(&format!("{test}: "))),
            "-P {pipeline}: no result for {test}:\n{stdout}\n{stderr}"
        );
    }
    for text in [&stdout, &stderr] {
        assert!(
            !text.contains("rror") && !text.contains("WARN"),
            "-P {pipeline}: {stdout}\n{stderr}"
        );
    }
}

#[test]
fn redis_benchmark_completes_without_errors_pipelined_and_not() {
    if !have_client("redis-benchmark", "redis-tools") || !have_client("redis-cli", "redis-tools") {
        return;
    }
    for addr in ADDRS {
        let (server, at) = start_redis(addr);
        benchmark(at, "32", "20000");
        benchmark(at, "1", "5000");
        // The benchmark's own key, set (3 bytes of its data) and read back.
        let out = tool("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &at.port().to_string()])
            .args(["GET", "key:__rand_int__"])
            .output()
            .unwrap();
        assert_eq!(out.stdout.len(), 4, "{out:?}");
        server.stop().unwrap();
    }
}
