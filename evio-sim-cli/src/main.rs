//! `evio-sim`: runs a swarm of simulator seeds against the example handlers.
//!
//! ```text
//! cargo run -p evio-sim-cli --release -- --seeds 0..10000 --steps 10000
//! cargo run -p evio-sim-cli --release -- --seed 1234 --steps 10000 --trace
//! ```
//!
//! It lives in a package of its own so that the `evio-sim` library does not depend on
//! the example handlers.

use std::fmt;
use std::io::Write as _;
use std::process::ExitCode;

use evio_handlers::echo::Echo;
use evio_sim::{EchoModel, replay, swarm};

/// `println!` that ignores a closed stdout (`evio-sim … | head` must not panic).
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

const USAGE: &str = "usage: evio-sim [--seeds A..B] [--steps N] [--threads N] [--handler echo]
       evio-sim --seed S [--steps N] [--trace] [--shrink]

  --seeds A..B   run seeds A (inclusive) to B (exclusive)   [default 0..1000]
  --seed S       run one seed (replay)
  --steps N      script steps per seed                       [default 1000]
  --threads N    worker threads                              [default: all cores]
  --handler H    handler under test: echo                    [default echo]
  --trace        with --seed: print the run's trace
  --shrink       with --seed: shrink a failing script and print it";

/// A command line the CLI cannot use.
#[derive(Debug, PartialEq, Eq)]
enum ArgError {
    /// An option the CLI does not know.
    Unknown(String),
    /// An option without its value, or with a value that does not parse.
    BadValue(&'static str, String),
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::Unknown(arg) => write!(f, "unknown argument `{arg}`"),
            ArgError::BadValue(opt, value) => write!(f, "bad value for {opt}: `{value}`"),
        }
    }
}

impl std::error::Error for ArgError {}

/// What the command line asks for.
struct Args {
    seeds: std::ops::Range<u64>,
    seed: Option<u64>,
    steps: usize,
    threads: usize,
    trace: bool,
    shrink: bool,
}

/// Parses the command line (without the program name).
fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, ArgError> {
    let mut args = Args {
        seeds: 0..1000,
        seed: None,
        steps: 1000,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        trace: false,
        shrink: false,
    };
    while let Some(arg) = argv.next() {
        let mut value =
            |opt: &'static str| argv.next().ok_or(ArgError::BadValue(opt, String::new()));
        match arg.as_str() {
            "--seeds" => {
                let v = value("--seeds")?;
                let bad = || ArgError::BadValue("--seeds", v.clone());
                let (a, b) = v.split_once("..").ok_or_else(bad)?;
                args.seeds = a.parse().map_err(|_| bad())?..b.parse().map_err(|_| bad())?;
            }
            "--seed" => {
                let v = value("--seed")?;
                args.seed = Some(v.parse().map_err(|_| ArgError::BadValue("--seed", v))?);
            }
            "--steps" => {
                let v = value("--steps")?;
                args.steps = v.parse().map_err(|_| ArgError::BadValue("--steps", v))?;
            }
            "--threads" => {
                let v = value("--threads")?;
                args.threads = v.parse().map_err(|_| ArgError::BadValue("--threads", v))?;
            }
            "--handler" => {
                let v = value("--handler")?;
                if v != "echo" {
                    return Err(ArgError::BadValue("--handler", v));
                }
            }
            "--trace" => args.trace = true,
            "--shrink" => args.shrink = true,
            _ => return Err(ArgError::Unknown(arg)),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("evio-sim: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some(seed) = args.seed {
        return replay_one(seed, &args);
    }
    out!(
        "evio-sim: handler echo, seeds {}..{}, {} steps each, {} threads",
        args.seeds.start,
        args.seeds.end,
        args.steps,
        args.threads
    );
    let report = swarm(args.seeds.clone(), args.steps, args.threads, || {
        (Echo, EchoModel)
    });
    out!("{report}");
    for failure in &report.failures {
        out!("  cli replay: {}", failure.cli_line());
    }
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs one seed again, printing its configuration, its trace (with `--trace`), the
/// faults that fired, its trace hash and its result, and on failure (with `--shrink`)
/// its shrunk script.
fn replay_one(seed: u64, args: &Args) -> ExitCode {
    let replay = replay(seed, args.steps, || (Echo, EchoModel));
    out!("seed {seed}: {:?}", replay.config);
    if args.trace {
        for line in &replay.trace {
            out!("{line}");
        }
    }
    out!("faults fired:\n{}", replay.faults);
    out!("trace hash: {:016x}", replay.trace_hash);
    match &replay.result {
        Ok(_) => {
            out!("seed {seed}: passed");
            ExitCode::SUCCESS
        }
        Err(failure) => {
            out!("seed {seed}: FAILED: {}", failure.violation);
            if args.shrink
                && let Some(shrunk) = replay.shrink(5000, || (Echo, EchoModel))
            {
                out!("{shrunk}");
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<Args, ArgError> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn options_parse() {
        let args = parse_args(&["--seeds", "5..9", "--steps", "30", "--threads", "3"]).unwrap();
        assert_eq!((args.seeds, args.steps, args.threads), (5..9, 30, 3));
        let args =
            parse_args(&["--seed", "42", "--trace", "--shrink", "--handler", "echo"]).unwrap();
        assert_eq!(args.seed, Some(42));
        assert!(args.trace && args.shrink);
    }

    #[test]
    fn bad_command_lines_are_refused() {
        assert_eq!(
            parse_args(&["--frob"]).err(),
            Some(ArgError::Unknown("--frob".into()))
        );
        assert_eq!(
            parse_args(&["--seeds", "9"]).err(),
            Some(ArgError::BadValue("--seeds", "9".into()))
        );
        assert_eq!(
            parse_args(&["--steps"]).err(),
            Some(ArgError::BadValue("--steps", String::new()))
        );
        assert_eq!(
            parse_args(&["--handler", "redis"]).err(),
            Some(ArgError::BadValue("--handler", "redis".into()))
        );
    }

    /// The replay path runs (seed 0 passes with the echo handler).
    #[test]
    fn one_seed_replays() {
        let args = parse_args(&["--seed", "0", "--steps", "200"]).unwrap();
        assert_eq!(replay_one(0, &args), ExitCode::SUCCESS);
    }
}
