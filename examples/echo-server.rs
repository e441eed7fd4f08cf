//! An echo server on real sockets: every byte received is sent back.
//!
//! ```text
//! cargo run --release --example echo-server -- --port 5000 [--unixsocket PATH] [--stdlib]
//! ```
//!
//! `--stdlib` serves with the portable poll(2) backend (the `tcp-net://` and
//! `unix-net://` schemes, named after Go evio's flag) instead of epoll/kqueue.
//! Other options: `--max-connections N` (default: what the descriptor limit allows, at
//! most 65,536), `--input BYTES` and `--output BYTES` (per-connection buffer
//! capacities; defaults 16384 and 65536).

use std::process::ExitCode;

use evio::{Action, Events, Server};
use evio_handlers::echo::Echo;

/// The shared echo handler, plus a line saying where it listens and how.
struct Announced(Echo, evio::Backend);

impl Events for Announced {
    type Context = ();

    fn serving(&mut self, server: Server<'_>) -> Action {
        for addr in server.addrs() {
            println!("echo server listening on {addr} ({})", self.1);
        }
        Action::None
    }

    fn data(&mut self, conn: &mut evio::Conn<'_, ()>, input: &[u8]) -> Action {
        self.0.data(conn, input)
    }
}

fn main() -> ExitCode {
    let mut port = 5000u16;
    let mut unix = None;
    let mut stdlib = false;
    let mut builder = evio::ServerBuilder::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let parsed: Result<(), String> = (|| {
            match arg.as_str() {
                "--port" => {
                    port = value("--port")?
                        .parse()
                        .map_err(|e| format!("--port: {e}"))?
                }
                "--unixsocket" => unix = Some(value("--unixsocket")?),
                "--stdlib" => stdlib = true,
                "--max-connections" => {
                    let n = value("--max-connections")?
                        .parse()
                        .map_err(|e| format!("{e}"))?;
                    builder = builder.clone().max_connections(n);
                }
                "--input" => {
                    let n = value("--input")?.parse().map_err(|e| format!("{e}"))?;
                    builder = builder.clone().input_capacity(n);
                }
                "--output" => {
                    let n = value("--output")?.parse().map_err(|e| format!("{e}"))?;
                    builder = builder.clone().output_capacity(n);
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
            Ok(())
        })();
        if let Err(e) = parsed {
            eprintln!("echo-server: {e}");
            eprintln!(
                "usage: echo-server [--port N] [--unixsocket PATH] [--stdlib] \
                 [--max-connections N] [--input BYTES] [--output BYTES]"
            );
            return ExitCode::from(2);
        }
    }
    let net = if stdlib { "-net" } else { "" };
    let mut addrs = vec![format!("tcp{net}://0.0.0.0:{port}")];
    if let Some(path) = unix {
        addrs.push(format!("unix{net}://{path}"));
    }
    let backend = builder.backend_for(&addrs);
    match builder.serve(Announced(Echo, backend), &addrs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo-server: {e}");
            ExitCode::FAILURE
        }
    }
}
