//! An echo server on real sockets: every byte received is sent back.
//!
//! ```text
//! cargo run --release --example echo-server -- --port 5000 [--unixsocket PATH] [--stdlib]
//! ```
//!
//! SIGINT or SIGTERM stops it cleanly (every connection closed, the unix socket file
//! removed, exit status 0). `--help` lists every option.

mod common;

use std::process::ExitCode;

use clap::Parser;
use evio::{Events, Flow, Server};
use evio_handlers::echo::Echo;

/// An echo server: every byte received is sent back.
#[derive(Parser, Debug)]
#[command(name = "echo-server", version)]
struct Args {
    /// Address to listen on (`0.0.0.0`: every IPv4 interface; `127.0.0.1`: this
    /// machine only).
    #[arg(long, default_value = "0.0.0.0")]
    host: String,
    /// TCP port to listen on.
    #[arg(long, default_value_t = 5000)]
    port: u16,
    /// Also listen on this unix socket path.
    #[arg(long, value_name = "PATH")]
    unixsocket: Option<String>,
    /// Serve with the portable poll(2) backend (`tcp-net://`, `unix-net://`: Go evio's
    /// name for its portable path) instead of epoll/kqueue.
    #[arg(long)]
    stdlib: bool,
    /// Most connections at once (default: what the descriptor limit allows, at most
    /// 65,536).
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Bytes of input buffer per connection (default 16 KiB; 17 KiB with TLS, which
    /// needs a whole record: 16,645 bytes at least).
    #[arg(long, value_name = "BYTES")]
    input: Option<usize>,
    /// Bytes of output buffer per connection.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    output: usize,
    /// Event loops, each on a thread of its own (0: one per core); the connections
    /// are spread over them (`ServerBuilder::loops`).
    #[arg(long, value_name = "N", default_value_t = 1)]
    loops: usize,
    #[command(flatten)]
    tls: common::tls::TlsArgs,
}

/// The shared echo handler, plus a line saying where it listens and how (from loop 0
/// only, with the number of loops).
struct Announced(Echo, evio::Backend, usize, usize, &'static str);

impl Events for Announced {
    type Context = ();

    evio::delegate_events!(self.0, except serving);

    fn serving(&mut self, server: Server<'_>) -> Flow {
        if self.2 == 0 {
            let loops = match self.3 {
                1 => String::new(),
                n => format!(", {n} loops"),
            };
            for addr in server.addrs() {
                println!(
                    "echo server listening on {addr} ({}{loops}{})",
                    self.1, self.4
                );
            }
        }
        Flow::Continue
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let tls = match args.tls.config(&[]) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("echo-server: {e}");
            return ExitCode::from(2);
        }
    };
    let input = common::tls::input_capacity(args.input, tls.is_some());
    let mut builder = evio::ServerBuilder::new()
        .input_capacity(input)
        .output_capacity(args.output)
        .loops(args.loops);
    if let Some(n) = args.max_connections {
        builder = builder.max_connections(n);
    }
    let addrs = common::listen_addrs(
        &args.host,
        args.port,
        args.unixsocket.as_deref(),
        args.stdlib,
    );
    let backend = builder.backend_for(&addrs);
    let loops = builder.loop_count();
    let with_tls = if tls.is_some() { ", TLS" } else { "" };
    let announced = move |i| Announced(Echo, backend, i, loops, with_tls);
    common::tls::serve_loops("echo-server", builder, tls, announced, &addrs)
}
