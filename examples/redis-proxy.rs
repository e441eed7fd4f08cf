//! A Redis proxy in the manner of twemproxy: keys sharded over several Redis servers,
//! all clients multiplexed over one connection (by default) to each.
//!
//! ```text
//! cargo run --release --example redis-proxy -- --port 22121 --backend 127.0.0.1:6379 --backend 127.0.0.1:6380 [--host H] [--unixsocket PATH] [--connections-per-backend N] [--connect-timeout MS] [--reply-timeout MS] [--stdlib]
//! redis-cli -p 22121 set hello world
//! redis-benchmark -p 22121 -q -t get,set -P 16 -n 100000 -c 50
//! ```
//!
//! `evio_handlers::redis_proxy` has the details: which commands are forwarded, split
//! or refused, the hash, and what a client gets while a backend is down. Backend host
//! names are resolved once, before serving. SIGINT or SIGTERM stops it cleanly (exit
//! status 0). `--help` lists every option.

mod common;

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use evio::{Events, Flow, Server};
use evio_handlers::redis_proxy::{ProxyConfig, RedisProxy, Role};

/// A Redis proxy: keys sharded over the backends by a consistent hash (ketama over
/// FNV-1a 64), MGET/DEL/EXISTS split over them, PING/ECHO/QUIT answered here.
#[derive(Parser, Debug)]
#[command(name = "redis-proxy", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// TCP port to listen on.
    #[arg(long, default_value_t = 22121)]
    port: u16,
    /// A Redis server, `HOST:PORT` (give it once per backend; the order names the
    /// backends in the hash, so keep it the same across restarts).
    #[arg(long = "backend", value_name = "HOST:PORT", required = true)]
    backends: Vec<String>,
    /// Also listen on this unix socket path.
    #[arg(long, value_name = "PATH")]
    unixsocket: Option<String>,
    /// Connections to each backend, shared by all clients.
    #[arg(long, value_name = "N", default_value_t = 1)]
    connections_per_backend: usize,
    /// Milliseconds a connect to a backend may take.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    connect_timeout: u64,
    /// Milliseconds a backend with requests pending may go without replying before
    /// its connection is dropped and its requests get errors.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    reply_timeout: u64,
    /// Most outstanding requests per client.
    #[arg(long, value_name = "N", default_value_t = evio_handlers::redis_proxy::DEFAULT_MAX_INFLIGHT)]
    max_inflight: usize,
    /// Most clients at once.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    maxclients: usize,
    /// Bytes of input buffer per connection.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    input: usize,
    /// Bytes of output buffer per connection.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    output: usize,
    /// Serve with the portable poll(2) backend instead of epoll/kqueue.
    #[arg(long)]
    stdlib: bool,
    /// Wake coalescing under load: the longest nap in microseconds (0: off; see
    /// `ServerBuilder::coalesce`).
    #[arg(long, value_name = "MICROS", default_value_t = 100)]
    coalesce_us: u64,
    /// A turn's sends go out together, after its reads: on Linux in one io_uring
    /// submit (`ServerBuilder::batch_sends`).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    batch_sends: bool,
}

/// The proxy, plus a line saying where it listens and what it proxies.
struct Announced {
    proxy: RedisProxy,
    backend: evio::Backend,
    backends: Vec<SocketAddr>,
}

impl Events for Announced {
    type Context = Role;

    evio::delegate_events!(self.proxy, except serving);

    fn serving(&mut self, server: Server<'_>) -> Flow {
        for addr in server.addrs() {
            println!(
                "redis proxy listening on {addr} ({}), backends {:?}",
                self.backend, self.backends
            );
        }
        Flow::Continue
    }
}

/// `HOST:PORT` resolved to its first address (blocking, before serving: the engine
/// resolves no names).
fn resolve(backend: &str) -> Result<SocketAddr, String> {
    backend
        .to_socket_addrs()
        .map_err(|e| format!("backend {backend}: {e}"))?
        .next()
        .ok_or_else(|| format!("backend {backend}: no address"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let backends = match args
        .backends
        .iter()
        .map(|b| resolve(b))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(b) => b,
        Err(e) => {
            eprintln!("redis-proxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.connections_per_backend == 0 || args.max_inflight == 0 {
        eprintln!("redis-proxy: --connections-per-backend and --max-inflight must be at least 1");
        return ExitCode::FAILURE;
    }
    let mut config = ProxyConfig::new(backends.clone());
    config.connections_per_backend = args.connections_per_backend;
    config.connect_timeout = Duration::from_millis(args.connect_timeout.max(1));
    config.reply_timeout = Duration::from_millis(args.reply_timeout.max(1));
    config.max_inflight = args.max_inflight;
    config.max_clients = args.maxclients;
    let builder = evio::ServerBuilder::new()
        .input_capacity(args.input)
        .output_capacity(args.output)
        .coalesce((args.coalesce_us > 0).then(|| Duration::from_micros(args.coalesce_us)))
        .batch_sends(args.batch_sends)
        // The clients and the backend connections share the pool.
        .max_connections(args.maxclients + backends.len() * args.connections_per_backend + 16)
        .refusal_message(b"-ERR max number of clients reached\r\n");
    let addrs = common::listen_addrs(
        &args.host,
        args.port,
        args.unixsocket.as_deref(),
        args.stdlib,
    );
    let backend = builder.backend_for(&addrs);
    common::serve(
        "redis-proxy",
        builder,
        Announced {
            proxy: RedisProxy::new(config),
            backend,
            backends,
        },
        &addrs,
    )
}
