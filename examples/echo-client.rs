//! A load client for the echo server, used to measure it from a separate process.
//!
//! ```text
//! # 10,000 connections, one round trip each, then held open until stdin closes:
//! cargo run --release --example echo-client -- --addr 127.0.0.1:5000 --conns 10000 --hold
//! # sequential round trips on one connection (a batch of K messages per write):
//! cargo run --release --example echo-client -- --addr 127.0.0.1:5000 --rounds 10000 --size 64 --batch 32
//! # load: 50 connections at once, each doing 2,000 round trips of 16 pipelined messages:
//! cargo run --release --example echo-client -- --addr 127.0.0.1:5000 --conns 50 --parallel --rounds 2000 --batch 16
//! ```

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::ExitCode;
use std::time::Instant;

struct Args {
    addr: String,
    conns: usize,
    hold: bool,
    rounds: usize,
    size: usize,
    batch: usize,
    parallel: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        addr: "127.0.0.1:5000".into(),
        conns: 1,
        hold: false,
        rounds: 0,
        size: 64,
        batch: 1,
        parallel: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> Result<usize, String> {
            it.next()
                .ok_or(format!("{name} needs a value"))?
                .parse()
                .map_err(|e| format!("{name}: {e}"))
        };
        match arg.as_str() {
            "--addr" => a.addr = it.next().ok_or("--addr needs a value")?,
            "--conns" => a.conns = num("--conns")?,
            "--rounds" => a.rounds = num("--rounds")?,
            "--size" => a.size = num("--size")?.max(1),
            "--batch" => a.batch = num("--batch")?.max(1),
            "--hold" => a.hold = true,
            "--parallel" => a.parallel = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

/// Messages up to this size fit in the loopback socket buffers while nobody reads, so
/// they are written, then read, on one thread.
const SEQUENTIAL_MAX: usize = 64 * 1024;

/// Sends `msg` and reads its echo into `back`.
fn round_trip(s: &mut TcpStream, msg: &[u8], back: &mut [u8]) -> io::Result<()> {
    if msg.len() <= SEQUENTIAL_MAX {
        s.write_all(msg)?;
        return s.read_exact(back);
    }
    // The server echoes a large message while it is still arriving: written and read
    // on one thread, both sides' buffers fill and the round trip never ends.
    let mut w = s.try_clone()?;
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || w.write_all(msg));
        let read = s.read_exact(back);
        if read.is_err() {
            // Unblocks the writer.
            let _ = s.shutdown(Shutdown::Both);
        }
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("writer panicked")));
        read.and(written)
    })
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("echo-client: {e}");
            return ExitCode::from(2);
        }
    };
    let msg = vec![b'x'; args.size * args.batch];
    if args.parallel {
        return parallel(&args, &msg);
    }
    let mut back = vec![0u8; msg.len()];
    let start = Instant::now();
    let mut held = Vec::with_capacity(args.conns);
    for i in 0..args.conns {
        let mut s = match TcpStream::connect(&args.addr) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("echo-client: connection {i}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let _ = s.set_nodelay(true);
        let rounds = if i == 0 { args.rounds.max(1) } else { 1 };
        for _ in 0..rounds {
            if let Err(e) = round_trip(&mut s, &msg, &mut back) {
                eprintln!("echo-client: connection {i}: {e}");
                return ExitCode::FAILURE;
            }
        }
        if args.hold {
            held.push(s);
        }
    }
    println!(
        "{} connections, {} round trips of {} x {} bytes on the first, in {:?}",
        args.conns,
        args.rounds.max(1),
        args.batch,
        args.size,
        start.elapsed()
    );
    if args.hold {
        println!("holding {} connections; close stdin to end", held.len());
        let _ = std::io::stdout().flush();
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
    }
    ExitCode::SUCCESS
}

/// Every connection at once, one thread each, `rounds` round trips of `msg` apiece.
fn parallel(args: &Args, msg: &[u8]) -> ExitCode {
    let start = Instant::now();
    let failed = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..args.conns)
            .map(|_| {
                scope.spawn(move || -> io::Result<()> {
                    let mut s = TcpStream::connect(&args.addr)?;
                    s.set_nodelay(true)?;
                    let mut back = vec![0u8; msg.len()];
                    for _ in 0..args.rounds.max(1) {
                        round_trip(&mut s, msg, &mut back)?;
                    }
                    Ok(())
                })
            })
            .collect();
        threads
            .into_iter()
            .enumerate()
            .filter_map(|(i, t)| match t.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("connection {i}: {e}")),
                Err(_) => Some(format!("connection {i}: thread panicked")),
            })
            .collect::<Vec<_>>()
    });
    if let Some(e) = failed.first() {
        eprintln!("echo-client: {e}");
        return ExitCode::FAILURE;
    }
    let elapsed = start.elapsed();
    let messages = args.conns * args.rounds.max(1) * args.batch;
    println!(
        "{} connections x {} round trips of {} x {} bytes: {messages} messages in {elapsed:?}, {:.0} messages/s",
        args.conns,
        args.rounds.max(1),
        args.batch,
        args.size,
        messages as f64 / elapsed.as_secs_f64()
    );
    ExitCode::SUCCESS
}
