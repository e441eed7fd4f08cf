//! `evio-sim`: runs a swarm of simulator seeds against the example handlers.
//!
//! ```text
//! cargo run -p evio-sim --release -- --seeds 0..10000 --steps 10000
//! cargo run -p evio-sim --release -- --seed 1234 --steps 10000 --trace
//! ```

use std::fmt;
use std::io::Write as _;
use std::process::ExitCode;

use evio_handlers::echo::Echo;
use evio_sim::{EchoModel, SimConfig, shrink, swarm};

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

struct Args {
    seeds: std::ops::Range<u64>,
    seed: Option<u64>,
    steps: usize,
    threads: usize,
    trace: bool,
    shrink: bool,
}

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
        return replay(seed, &args);
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

fn replay(seed: u64, args: &Args) -> ExitCode {
    let config = SimConfig::from_seed(seed);
    let script = config.script(seed, args.steps);
    out!("seed {seed}: {config:?}");
    let mut sim = match evio_sim::Sim::with_config(Echo, EchoModel, seed, config.clone()) {
        Ok(sim) => sim,
        Err(e) => {
            out!("seed {seed}: {e}");
            return ExitCode::FAILURE;
        }
    };
    sim.set_tracing(args.trace);
    let mut result = Ok(());
    for event in &script {
        result = sim.step(event);
        if result.is_err() {
            break;
        }
    }
    let result = result.and_then(|()| sim.finish().map(|_| ()));
    if args.trace {
        for line in sim.trace() {
            out!("{line}");
        }
    }
    out!("faults fired:\n{}", sim.faults());
    out!("trace hash: {:016x}", sim.trace_hash());
    match result {
        Ok(()) => {
            out!("seed {seed}: passed");
            ExitCode::SUCCESS
        }
        Err(violation) => {
            out!("seed {seed}: FAILED: {violation}");
            if args.shrink
                && let Some(shrunk) = shrink(seed, &config, &script, 5000, || (Echo, EchoModel))
            {
                out!("{shrunk}");
            }
            ExitCode::FAILURE
        }
    }
}
