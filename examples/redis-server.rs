//! A Redis-compatible server on real sockets: `redis-cli` and `redis-benchmark` work
//! against it.
//!
//! ```text
//! cargo run --release --example redis-server -- --port 6380 [--host H] [--unixsocket PATH] [--stdlib] [--timeout SECS] [--maxclients N] [--maxmemory BYTES] [--coalesce-us MICROS]
//! redis-cli -p 6380 set hello world
//! redis-benchmark -p 6380 -q -t ping_inline,ping_mbulk,set,get -P 32 -n 1000000 -c 50
//! ```
//!
//! Commands: PING, ECHO, SET, GET, DEL, EXISTS, FLUSHDB, DBSIZE, CONFIG GET, QUIT and
//! SHUTDOWN, with Redis 7's replies and error texts (`evio_handlers::redis::Redis` has
//! the details). SIGINT, SIGTERM or `SHUTDOWN` stops it cleanly (exit status 0, the
//! unix socket file removed). `--help` lists every option.
//!
//! `--maxmemory 100mb` bounds what the store holds: once it holds more, `SET` is
//! refused with Redis's `-OOM` error until `DEL` or `FLUSHDB` make room (0, the
//! default: no limit). Memory the store gives back (FLUSHDB, DEL) is returned to the
//! system.
//!
//! A client that sends `POST` or `Host:` (an HTTP request: a web page trying to talk
//! to the server) is cut off without an answer, as Redis does, and Redis's "Possible
//! SECURITY ATTACK detected" warning goes to stderr, at most once a minute.

mod common;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use evio::{Action, Conn, Events, Flow, Server};
use evio_handlers::redis::{Client, Redis, RedisConfig, SharedStore};

/// A Redis-compatible server (PING, ECHO, SET, GET, DEL, EXISTS, FLUSHDB, DBSIZE,
/// CONFIG GET, QUIT, SHUTDOWN), in memory only.
#[derive(Parser, Debug)]
#[command(name = "redis-server", version)]
struct Args {
    /// Address to listen on (`0.0.0.0`: every IPv4 interface; `127.0.0.1`: this
    /// machine only).
    #[arg(long, default_value = "0.0.0.0")]
    host: String,
    /// TCP port to listen on.
    #[arg(long, default_value_t = 6380)]
    port: u16,
    /// Also listen on this unix socket path.
    #[arg(long, value_name = "PATH")]
    unixsocket: Option<String>,
    /// Serve with the portable poll(2) backend (`tcp-net://`, `unix-net://`: Go evio's
    /// name for its portable path) instead of epoll/kqueue.
    #[arg(long)]
    stdlib: bool,
    /// Close a client idle for this many seconds (0: never), as Redis's `timeout`: one
    /// that neither sends nor takes any of its reply (a client that stops reading is
    /// freed, its reply discarded).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    timeout: u64,
    /// Most clients at once; one more is answered `-ERR max number of clients reached`
    /// and closed (default: what the descriptor limit allows, at most 65,536).
    #[arg(long, value_name = "N")]
    maxclients: Option<usize>,
    /// Bytes of input buffer per client: a pipeline up to this size is read and
    /// answered in one go; a larger request is gathered in the client's own memory.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    input: usize,
    /// Bytes of output buffer per client: a larger reply is sent as it drains.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    output: usize,
    /// The most the store may hold before writes are refused with Redis's `-OOM`
    /// error (0: no limit), counted per key as its length + its value's length + 128:
    /// bytes, or with Redis's units (`100mb`, `1gb`, `64kb`; `k`, `m`, `g` are powers
    /// of 1000). Reads, DEL and FLUSHDB always work.
    #[arg(long, value_name = "BYTES", default_value = "0", value_parser = memory)]
    maxmemory: usize,
    /// Wake coalescing under load: the longest nap in microseconds (0: off). While
    /// many clients keep the loop busy, it naps on a timer between polls instead of
    /// blocking on its sockets, so the clients do not pay to wake it (see
    /// `ServerBuilder::coalesce`). Adds at most this much latency per batch under load.
    #[arg(long, value_name = "MICROS", default_value_t = 100)]
    coalesce_us: u64,
    /// Event loops, each on a thread of its own (0: one per core); the clients are
    /// spread over them, and they share one key space behind one lock
    /// (`evio_handlers::redis::SharedStore`).
    #[arg(long, value_name = "N", default_value_t = 1)]
    loops: usize,
}

/// The shared redis handler, plus a line saying where it listens and how, and Redis's
/// warning on stderr when a client sends an HTTP request.
struct Announced {
    redis: Redis,
    backend: evio::Backend,
    /// This loop's number, and how many there are (loop 0 prints the lines).
    index: usize,
    loops: usize,
    /// When the last security warning was printed.
    warned: Option<Instant>,
    /// What the store has given back (FLUSHDB, DEL) since memory was last returned to
    /// the system.
    freed: usize,
}

/// Memory is returned to the system once the store has given this much back.
const TRIM_AFTER: usize = 32 << 20;

/// Redis's words, in its log, when it aborts a client that sent `POST` or `Host:`.
const SECURITY_WARNING: &str = "Possible SECURITY ATTACK detected. It looks like somebody is \
    sending POST or Host: commands to Redis. This is likely due to an attacker attempting \
    to use Cross Protocol Scripting to compromise your Redis instance. Connection aborted.";

/// At most one warning a minute, as Redis logs it: a web page can open connections
/// faster than anyone reads a log.
const WARN_EVERY: Duration = Duration::from_secs(60);

impl Announced {
    fn warn_security(&mut self, conn: &mut Conn<'_, Client>) {
        let now = Instant::now();
        if self
            .warned
            .is_some_and(|at| now.duration_since(at) < WARN_EVERY)
        {
            return;
        }
        self.warned = Some(now);
        eprintln!(
            "redis-server: {SECURITY_WARNING} (client {})",
            conn.info().peer
        );
    }
}

impl Events for Announced {
    type Context = Client;

    evio::delegate_events!(self.redis, except serving, data);

    fn serving(&mut self, server: Server<'_>) -> Flow {
        if self.index == 0 {
            let loops = match self.loops {
                1 => String::new(),
                n => format!(", {n} loops"),
            };
            for addr in server.addrs() {
                println!("redis server listening on {addr} ({}{loops})", self.backend);
            }
        }
        Flow::Continue
    }
    fn data(&mut self, conn: &mut Conn<'_, Client>, input: &[u8]) -> Action {
        let refused = self.redis.stats().security_refusals;
        let used = self.redis.used_memory();
        let action = self.redis.data(conn, input);
        if self.redis.stats().security_refusals != refused {
            self.warn_security(conn);
        }
        self.freed += used.saturating_sub(self.redis.used_memory());
        if self.freed >= TRIM_AFTER {
            self.freed = 0;
            give_back_freed_memory();
        }
        action
    }
}

/// Returns the memory the allocator holds free to the system. glibc keeps the many
/// small blocks a store's keys and values were in on its free lists (not merged, so
/// not at the top of the heap, which is all `free` trims): after FLUSHDB of 1M keys
/// the process kept 113 MB of its 163 MB (measured; Redis, with jemalloc, went back
/// to 15 MB). `malloc_trim` merges them and gives their pages back (to 10 MB here).
/// Called only after the store gave back [`TRIM_AFTER`], so its walk of the heap is
/// paid rarely.
fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim(3) takes no pointer and has no precondition; it only
    // walks glibc's own free lists (under its lock) and returns pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A memory size as Redis reads one (`memtoull`): digits, then optionally a unit, `b`,
/// `k` (1000), `kb` (1024), `m`, `mb`, `g` or `gb`, in any case.
fn memory(s: &str) -> Result<usize, String> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = s.split_at(digits);
    let unit_size: usize = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1 << 10,
        "m" => 1000 * 1000,
        "mb" => 1 << 20,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1 << 30,
        _ => return Err(format!("`{unit}` is not a unit (b, k, kb, m, mb, g, gb)")),
    };
    number
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(unit_size))
        .ok_or_else(|| format!("`{s}` is not a size in bytes this machine can hold"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut builder = evio::ServerBuilder::new()
        .input_capacity(args.input)
        .output_capacity(args.output)
        .coalesce((args.coalesce_us > 0).then(|| Duration::from_micros(args.coalesce_us)))
        .refusal_message(b"-ERR max number of clients reached\r\n")
        .loops(args.loops);
    if let Some(n) = args.maxclients {
        builder = builder.max_connections(n);
    }
    if args.timeout > 0 {
        // Redis frees a client that makes no progress for `timeout`, closing or not:
        // so does the engine with a connection that is closing.
        builder = builder.send_timeout(Some(Duration::from_secs(args.timeout)));
    }
    let config = RedisConfig {
        idle_timeout: (args.timeout > 0).then(|| Duration::from_secs(args.timeout)),
        maxmemory: args.maxmemory,
        ..RedisConfig::default()
    };
    let addrs = common::listen_addrs(
        &args.host,
        args.port,
        args.unixsocket.as_deref(),
        args.stdlib,
    );
    let backend = builder.backend_for(&addrs);
    let loops = builder.loop_count();
    let store = (loops > 1).then(|| SharedStore::new(config.maxmemory));
    common::serve_loops(
        "redis-server",
        builder,
        |index| Announced {
            redis: match &store {
                Some(store) => Redis::sharing(config, store),
                None => Redis::new(config),
            },
            backend,
            index,
            loops,
            warned: None,
            freed: 0,
        },
        &addrs,
    )
}
