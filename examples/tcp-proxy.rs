//! An L4 (TCP) proxy on real sockets: each client gets its own connection to the
//! backend, and bytes go both ways unchanged.
//!
//! ```text
//! cargo run --release --example tcp-proxy -- --port 7000 --backend 127.0.0.1:6379 [--host H] [--unixsocket PATH] [--connect-timeout MS] [--idle-timeout SECS] [--stdlib]
//! redis-cli -p 7000 ping
//! ```
//!
//! One thread, one event loop, no thread per connection: what the client sends while
//! the backend is still connecting waits in the backend connection's buffer; a side
//! whose partner is full is not read until the partner drains (memory stays within the
//! two connections' buffers); a side that ends its stream has the end passed on and
//! the other direction goes on (half-close); a backend that cannot be reached closes
//! its client at once, and the proxy keeps serving the others. `--backend` takes
//! `HOST:PORT` (the name is resolved once, at start) or `unix:PATH`. SIGINT or SIGTERM
//! stops it cleanly (exit status 0, the unix socket file removed). `--help` lists every
//! option.

mod common;

use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use evio::{Events, Flow, Server};
use evio_handlers::tcp_proxy::{Backend, TcpProxy, TcpProxyConfig};

/// A TCP proxy: every client connection is relayed to one backend.
#[derive(Parser, Debug)]
#[command(name = "tcp-proxy", version)]
struct Args {
    /// Address to listen on (`0.0.0.0`: every IPv4 interface; `127.0.0.1`: this
    /// machine only).
    #[arg(long, default_value = "0.0.0.0")]
    host: String,
    /// TCP port to listen on.
    #[arg(long, default_value_t = 7000)]
    port: u16,
    /// The backend: `HOST:PORT` (resolved once, at start; the first address is used)
    /// or `unix:PATH`.
    #[arg(long, value_name = "ADDR")]
    backend: String,
    /// Also listen on this unix socket path.
    #[arg(long, value_name = "PATH")]
    unixsocket: Option<String>,
    /// Milliseconds a connect to the backend may take before its client is closed.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    connect_timeout: u64,
    /// Seconds a side may receive nothing before the pair is closed (0: never).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    idle_timeout: u64,
    /// Serve with the portable poll(2) backend (`tcp-net://`, `unix-net://`) instead of
    /// epoll/kqueue.
    #[arg(long)]
    stdlib: bool,
    /// Most connections at once, clients and backend connections together (default:
    /// what the descriptor limit allows, at most 65,536).
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Bytes of input buffer per connection.
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024)]
    input: usize,
    /// Bytes of output buffer per connection.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    output: usize,
    /// Wake coalescing under load: the longest nap in microseconds (0: off; see
    /// `ServerBuilder::coalesce`).
    #[arg(long, value_name = "MICROS", default_value_t = 100)]
    coalesce_us: u64,
    /// A turn's sends go out together, after its reads: on Linux in one io_uring
    /// submit (`ServerBuilder::batch_sends`).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    batch_sends: bool,
}

/// The proxy, plus a line saying where it listens and to what.
struct Announced(TcpProxy, String, evio::Backend);

impl Events for Announced {
    type Context = <TcpProxy as Events>::Context;

    evio::delegate_events!(self.0, except serving);

    fn serving(&mut self, server: Server<'_>) -> Flow {
        for addr in server.addrs() {
            println!("tcp proxy listening on {addr} ({}), to {}", self.2, self.1);
        }
        Flow::Continue
    }
}

/// The backend named on the command line.
fn backend(text: &str) -> Result<Backend, String> {
    if let Some(path) = text.strip_prefix("unix:") {
        return Ok(Backend::Unix(path.to_owned()));
    }
    let mut addrs = text
        .to_socket_addrs()
        .map_err(|e| format!("--backend {text}: {e}"))?;
    addrs
        .next()
        .map(Backend::Tcp)
        .ok_or_else(|| format!("--backend {text}: no address"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let backend = match backend(&args.backend) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("tcp-proxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut builder = evio::ServerBuilder::new()
        .input_capacity(args.input)
        .output_capacity(args.output)
        .coalesce((args.coalesce_us > 0).then(|| Duration::from_micros(args.coalesce_us)))
        .batch_sends(args.batch_sends);
    if let Some(n) = args.max_connections {
        builder = builder.max_connections(n);
    }
    let addrs = common::listen_addrs(
        &args.host,
        args.port,
        args.unixsocket.as_deref(),
        args.stdlib,
    );
    let proxy = TcpProxy::new(TcpProxyConfig {
        backend,
        connect_timeout: Duration::from_millis(args.connect_timeout),
        idle_timeout: (args.idle_timeout > 0).then(|| Duration::from_secs(args.idle_timeout)),
    });
    let io = builder.backend_for(&addrs);
    common::serve(
        "tcp-proxy",
        builder,
        Announced(proxy, args.backend.clone(), io),
        &addrs,
    )
}
