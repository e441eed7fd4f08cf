//! An HTTP/1.1 server on real sockets: every request gets `Hello World!\r\n` (or 1 KiB
//! of `a` with `--aaaa`).
//!
//! ```text
//! cargo run --release --example http-server -- --port 8080 [--host H] [--unixsocket PATH] [--stdlib] [--aaaa] [--coalesce-us MICROS]
//! ```
//!
//! Try it with `curl -v http://127.0.0.1:8080/` or load it with
//! `wrk -t1 -c50 -d5s http://127.0.0.1:8080/`. Keep-alive, pipelining, HTTP/1.0,
//! `Connection: close`, request bodies (`Content-Length` and chunked, streamed), the
//! time bounds on every connection and every error it answers are described in
//! `evio_handlers::http`. SIGINT or SIGTERM stops it cleanly (exit status 0, the unix
//! socket file removed). `--help` lists every option.

mod common;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use evio::{Events, Flow, Server};
use evio_handlers::http::{Body, Http, HttpConfig, HttpConn};

/// An HTTP/1.1 server answering every request with one fixed response.
#[derive(Parser, Debug)]
#[command(name = "http-server", version)]
struct Args {
    /// Address to listen on (`0.0.0.0`: every IPv4 interface; `127.0.0.1`: this
    /// machine only).
    #[arg(long, default_value = "0.0.0.0")]
    host: String,
    /// TCP port to listen on.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Also listen on this unix socket path.
    #[arg(long, value_name = "PATH")]
    unixsocket: Option<String>,
    /// Serve with the portable poll(2) backend (`tcp-net://`, `unix-net://`: Go evio's
    /// name for its portable path) instead of epoll/kqueue.
    #[arg(long)]
    stdlib: bool,
    /// Answer with 1 KiB of `a` instead of `Hello World!\r\n`.
    #[arg(long)]
    aaaa: bool,
    /// Most connections at once (default: what the descriptor limit allows, at most
    /// 65,536).
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Longest request head (request line and header fields) in bytes; a longer one
    /// is answered 431. The input buffer must hold it (see --input).
    #[arg(long, value_name = "BYTES", default_value_t = 8 * 1024)]
    max_head: usize,
    /// Largest request body (Content-Length, or chunked) in bytes; a larger one is
    /// answered 413 before it is read. Bodies stream through the input buffer, so
    /// this costs no memory.
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024)]
    max_body: u64,
    /// Bytes of input buffer per connection: at least --max-head (a smaller buffer
    /// lowers that limit); more makes fewer reads of long bodies and pipelined batches.
    /// Default 16 KiB; 17 KiB with TLS, which needs a whole record (16,645 bytes at
    /// least).
    #[arg(long, value_name = "BYTES")]
    input: Option<usize>,
    /// Seconds a client has to send a whole request head, from its first byte (the
    /// first request's from the accept): slowloris protection. A partial head then
    /// gets 408; a connection that sent nothing is closed. 0: no limit.
    #[arg(
        long,
        visible_alias = "request-timeout",
        value_name = "SECS",
        default_value_t = 10.0
    )]
    header_timeout: f64,
    /// Seconds a body under way may go without a byte arriving (nginx's
    /// client_body_timeout); then 408. 0: no limit.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    body_timeout: f64,
    /// Seconds an idle keep-alive connection is kept after its last response (nginx's
    /// keepalive_timeout); then it is closed. 0: no limit.
    #[arg(long, value_name = "SECS", default_value_t = 75.0)]
    keepalive_timeout: f64,
    /// Seconds output may wait for a client that takes none of it (nginx's
    /// send_timeout); then the connection is reset. 0: no limit.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    send_timeout: f64,
    /// Most requests per connection (nginx's keepalive_requests): the last response
    /// says `Connection: close`. 0: no limit.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    keepalive_requests: u64,
    /// Bytes of output buffer per connection: how many responses may wait for a
    /// client that pipelines faster than it reads.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    output: usize,
    /// Wake coalescing under load: the longest nap in microseconds (0: off). While
    /// many clients keep the loop busy, it naps on a timer between polls instead of
    /// blocking on its sockets, so the clients do not pay to wake it (see
    /// `ServerBuilder::coalesce`). Adds at most this much latency per batch under load.
    #[arg(long, value_name = "MICROS", default_value_t = 100)]
    coalesce_us: u64,
    /// Event loops, each on a thread of its own (0: one per core); the connections
    /// are spread over them (`ServerBuilder::loops`).
    #[arg(long, value_name = "N", default_value_t = 1)]
    loops: usize,
    #[command(flatten)]
    tls: common::tls::TlsArgs,
}

/// The shared HTTP handler, plus a line saying where it listens and how (from loop 0
/// only, with the number of loops).
struct Announced(Http, evio::Backend, usize, usize, &'static str);

impl Events for Announced {
    type Context = HttpConn;

    evio::delegate_events!(self.0, except serving);

    fn serving(&mut self, server: Server<'_>) -> Flow {
        if self.2 == 0 {
            let loops = match self.3 {
                1 => String::new(),
                n => format!(", {n} loops"),
            };
            for addr in server.addrs() {
                println!(
                    "http server listening on {addr} ({}{loops}{})",
                    self.1, self.4
                );
            }
        }
        Flow::Continue
    }
}

/// `secs` as a timeout: 0 is none.
fn timeout(flag: &str, secs: f64) -> Result<Option<Duration>, String> {
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if d.is_zero() => Ok(None),
        Ok(d) => Ok(Some(d)),
        Err(e) => Err(format!("--{flag}: {e}")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let tls = match args.tls.config(&[b"http/1.1"]) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("http-server: {e}");
            return ExitCode::from(2);
        }
    };
    let input = common::tls::input_capacity(args.input, tls.is_some());
    let timeouts = (|| {
        Ok::<_, String>((
            timeout("header-timeout", args.header_timeout)?,
            timeout("body-timeout", args.body_timeout)?,
            timeout("keepalive-timeout", args.keepalive_timeout)?,
            timeout("send-timeout", args.send_timeout)?,
        ))
    })();
    let (head_timeout, body_timeout, keepalive_timeout, send_timeout) = match timeouts {
        Ok(t) => t,
        Err(e) => {
            eprintln!("http-server: {e}");
            return ExitCode::from(2);
        }
    };
    let config = HttpConfig {
        body: if args.aaaa { Body::Aaaa } else { Body::Hello },
        max_head: args.max_head,
        max_body: args.max_body,
        head_timeout,
        body_timeout,
        keepalive_timeout,
        send_timeout,
        keepalive_requests: (args.keepalive_requests > 0).then_some(args.keepalive_requests),
    };
    let http = Http::new(config);
    if args.output < http.longest_response() {
        eprintln!(
            "http-server: --output {} cannot hold a response ({} bytes)",
            args.output,
            http.longest_response()
        );
        return ExitCode::from(2);
    }
    let mut builder = evio::ServerBuilder::new()
        .input_capacity(input)
        .output_capacity(args.output)
        .coalesce((args.coalesce_us > 0).then(|| Duration::from_micros(args.coalesce_us)))
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
    let announced = move |i| Announced(Http::new(config), backend, i, loops, with_tls);
    common::tls::serve_loops("http-server", builder, tls, announced, &addrs)
}
