//! What the example servers share: where they listen, and how they serve until a
//! signal stops them.

use std::process::ExitCode;

#[allow(dead_code)] // only the echo and http examples speak TLS
pub mod tls;

use evio::{Events, ServerBuilder};
use evio_handlers::stop::{SignalWatch, StopOnSignals};

/// The addresses an example listens on: TCP on `host:port` (an IPv6 host in brackets),
/// and the unix socket `unixsocket` if given; with `stdlib`, the `-net` schemes (the
/// portable poll(2) backend, Go evio's name for it).
pub fn listen_addrs(host: &str, port: u16, unixsocket: Option<&str>, stdlib: bool) -> Vec<String> {
    let net = if stdlib { "-net" } else { "" };
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let mut addrs = vec![format!("tcp{net}://{host}:{port}")];
    if let Some(path) = unixsocket {
        addrs.push(format!("unix{net}://{path}"));
    }
    addrs
}

/// Serves `handler` on `addrs` until SIGINT or SIGTERM (or the handler) stops it:
/// exit status 0 then, 1 with the error on stderr (prefixed with the example's `name`)
/// if serving failed.
#[allow(dead_code)] // the examples that run several loops use `serve_loops`
pub fn serve<H: Events>(
    name: &str,
    builder: ServerBuilder,
    handler: H,
    addrs: &[String],
) -> ExitCode {
    match builder.serve(StopOnSignals::new(handler), addrs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Serves `make(i)`'s handler on each of the builder's loops (`ServerBuilder::loops`)
/// on `addrs` until SIGINT or SIGTERM (or a handler) stops them, with the exit status
/// of [`serve`].
#[allow(dead_code)] // not every example runs several loops
pub fn serve_loops<H: Events>(
    name: &str,
    builder: ServerBuilder,
    make: impl Fn(usize) -> H + Sync,
    addrs: &[String],
) -> ExitCode {
    let watch = SignalWatch::new();
    match builder.serve_loops(|i| watch.wrap(make(i)), addrs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
