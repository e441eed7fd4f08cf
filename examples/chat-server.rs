//! A chat server on real sockets: every line a client sends goes to every other client.
//!
//! ```text
//! cargo run --release --example chat-server -- --port 5001 [--unixsocket PATH] [--idle-timeout SECS] [--slow-consumer-ms MS]
//! ```
//!
//! Try it with two or more `nc 127.0.0.1 5001`. While a client's output cannot take a
//! line, the sender waits (it is not read until that client catches up); a client that
//! stays that full for `--slow-consumer-ms` (it does not read) is disconnected as a
//! slow consumer, and the others go on. SIGINT or SIGTERM stops the server cleanly
//! (exit status 0, the unix socket file removed).

mod common;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use evio::{Events, Flow, Server};
use evio_handlers::chat::{Chat, LINES_IN_FLIGHT};

/// A chat server: each complete line one client sends goes, unchanged, to every other
/// client connected at that moment.
#[derive(Parser, Debug)]
#[command(name = "chat-server", version)]
struct Args {
    /// Address to listen on (`0.0.0.0`: every IPv4 interface; `127.0.0.1`: this
    /// machine only).
    #[arg(long, default_value = "0.0.0.0")]
    host: String,
    /// TCP port to listen on.
    #[arg(long, default_value_t = 5001)]
    port: u16,
    /// Also listen on this unix socket path.
    #[arg(long, value_name = "PATH")]
    unixsocket: Option<String>,
    /// Close a client that sent nothing for this many seconds.
    #[arg(long, value_name = "SECS")]
    idle_timeout: Option<f64>,
    /// Bytes of input buffer per client: the longest line.
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    input: usize,
    /// Bytes of output buffer per client: how far a client may fall behind before the
    /// senders wait for it.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    output: usize,
    /// Milliseconds a client may stay too full to take a line before it is disconnected
    /// as a slow consumer (0: at once, without making senders wait).
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    slow_consumer_ms: u64,
    /// Event loops, each on a thread of its own (0: one per core); the clients are
    /// spread over them, and the room spans them all.
    #[arg(long, value_name = "N", default_value_t = 1)]
    loops: usize,
}

/// The shared chat handler, plus a line saying where it listens (from loop 0 only, with
/// the number of loops).
struct Announced(Chat, usize, usize);

impl Events for Announced {
    type Context = ();

    evio::delegate_events!(self.0, except serving);

    fn serving(&mut self, server: Server<'_>) -> Flow {
        if self.1 == 0 {
            let loops = match self.2 {
                1 => String::new(),
                n => format!(" ({n} loops)"),
            };
            for addr in server.addrs() {
                println!("chat server listening on {addr}{loops}");
            }
        }
        Flow::Continue
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let idle = match args.idle_timeout.map(Duration::try_from_secs_f64) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => {
            eprintln!("chat-server: --idle-timeout: {e}");
            return ExitCode::from(2);
        }
    };
    let builder = evio::ServerBuilder::new()
        .input_capacity(args.input)
        .output_capacity(args.output)
        .loops(args.loops);
    let loops = builder.loop_count();
    // Room in each loop's inbox for the lines the others may have on their way to it,
    // and their acknowledgements.
    let lines = LINES_IN_FLIGHT * loops;
    let builder = builder.inbox(
        lines + 64 * loops,
        lines.saturating_mul(args.input + 1) + 4096 * loops,
    );
    let addrs = common::listen_addrs(&args.host, args.port, args.unixsocket.as_deref(), false);
    let chat = |i| {
        let chat = match args.slow_consumer_ms {
            0 => Chat::new(idle),
            ms => Chat::with_slow_consumer(idle, Duration::from_millis(ms)),
        };
        Announced(chat.spanning(i, loops), i, loops)
    };
    common::serve_loops("chat-server", builder, chat, &addrs)
}
