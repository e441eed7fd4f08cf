//! `evio-sim`: runs a swarm of simulator seeds against the example handlers.
//!
//! ```text
//! cargo run -p evio-sim-cli --release -- --seeds 0..10000 --steps 10000
//! cargo run -p evio-sim-cli --release -- --seed 1234 --steps 10000 --trace
//! cargo run -p evio-sim-cli --release -- --seeds 0..1000 --min-output 16 --faults none
//! cargo run -p evio-sim-cli --release -- --handler chat --loops 2 --seeds 0..1000
//! cargo run -p evio-sim-cli --release -- --handler http --tls --seeds 0..1000
//! cargo run -p evio-sim-cli --release -- --help
//! ```
//!
//! It lives in a package of its own so that the `evio-sim` library does not depend on
//! the example handlers.

use std::io::{IsTerminal as _, Write as _};
use std::ops::Range;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use evio_handlers::chat::Chat;
use evio_handlers::echo::Echo;
use evio_handlers::http::Http;
use evio_handlers::redis::Redis;
use evio_handlers::redis_proxy::RedisProxy;
use evio_handlers::sim::{
    ChatLoopsModel, ChatModel, HttpModel, RedisModel, RedisProxyModel, chat_constraints,
    chat_lines, chat_loops, chat_pair, chat_tagged_lines, echo_tls_constraints, echo_tls_pair,
    http_constraints, http_pair, http_requests, http_tls_constraints, http_tls_pair,
    redis_constraints, redis_pair, redis_proxy_constraints, redis_proxy_pair, redis_proxy_requests,
    redis_requests, tcp_proxy_constraints, tcp_proxy_pair,
};
use evio_handlers::tcp_proxy::TcpProxy;
use evio_sim::{
    Constraints, EchoModel, Events, Failure, FaultSet, LoopsSim, Model, RelayModel, Rng, Swarm,
    SwarmReport, Transformed,
};
use evio_tls::Tls;
use indicatif::{ProgressBar, ProgressStyle};

/// `println!` that ignores a closed stdout (`evio-sim … | head` must not panic).
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Runs the evio simulator: a swarm of seeds against an example handler, or one seed
/// again with its trace.
///
/// Every seed's configuration, script, delivery order and faults come from the seed, so
/// a failing seed replays exactly with `--seed`. A failure prints its replay line. A
/// progress bar shows on stderr while a swarm runs, when stderr is a terminal.
#[derive(Debug, Parser)]
#[command(name = "evio-sim", version)]
struct Args {
    /// Seeds to run, A (inclusive) to B (exclusive).
    #[arg(long, value_name = "A..B", value_parser = parse_seeds, default_value = "0..1000")]
    seeds: Range<u64>,

    /// Run this one seed again (a replay), instead of a swarm.
    #[arg(long, value_name = "S")]
    seed: Option<u64>,

    /// Script steps per seed.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    steps: usize,

    /// Worker threads [default: all cores].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,

    /// Handler under test.
    #[arg(long, value_enum, default_value_t = Handler::Echo)]
    handler: Handler,

    /// Loops of the server (an engine each, posts between them through a simulated
    /// post office): more than 1 runs the chat room spanning them (`--handler chat`
    /// only), against a model of the whole room.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=8))]
    loops: u8,

    /// The clients speak TLS (rustls, on evio-tls's deterministic simulated provider)
    /// to the handler behind `evio_tls::Tls`, checked by the same model on the
    /// plaintext: echo and http only. The input buffer is raised to a record.
    #[arg(long)]
    tls: bool,

    /// With --seed: print the run's trace.
    #[arg(long, requires = "seed")]
    trace: bool,

    /// With --seed: shrink a failing script and print it.
    #[arg(long, requires = "seed")]
    shrink: bool,

    /// Smallest input buffer per connection, in bytes (the seed's draw is raised to it).
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    min_input: usize,

    /// Smallest output buffer per connection, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    min_output: usize,

    /// Smallest connection pool.
    #[arg(long, value_name = "N", default_value_t = 0)]
    min_connections: usize,

    /// Faults that may fire: `all`, `none`, or kinds separated by commas
    /// (short-read, short-write, eagain-after-readable, eagain-after-writable,
    /// spurious-readiness, eof-with-last-data, reset-mid-stream, epipe, accept-emfile,
    /// accept-econnaborted, pool-full, wake-race, deadline-between-events,
    /// readiness-after-detach-or-close, shutdown-with-output-pending,
    /// close-with-output-pending).
    #[arg(long, value_name = "SET", default_value = "all")]
    faults: FaultSet,
}

/// A handler the CLI can run, with its model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Handler {
    /// The example servers' echo handler: random bytes, echoed.
    Echo,
    /// The chat example's handler (40 ms idle timeout): lines relayed to every other
    /// member, under a workload of short and overlong lines.
    Chat,
    /// The http example's handler (head limit 200 bytes, body limit 1000, timeouts of
    /// 30 to 120 ms, 6 requests per connection): valid HTTP/1.x requests, with
    /// `Content-Length` and chunked bodies, mixed with refused ones and garbage.
    Http,
    /// The redis example's handler (40 ms idle timeout, arguments up to 2 KiB, 1,400
    /// bytes of arguments per request) against an exact model, under Redis requests mixed with garbage.
    Redis,
    /// The tcp proxy in front of the simulator's echo backends: every client gets back
    /// exactly what it sent, its end of stream passed on (connects refused, never
    /// answered, slow or reset among the faults).
    TcpProxy,
    /// The redis proxy in front of two simulated Redis servers answering at their own
    /// speeds, against an exact model, under pipelined GET, SET, DEL, EXISTS, MGET and
    /// PING.
    RedisProxy,
}

impl std::fmt::Display for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Handler::Echo => "echo",
            Handler::Chat => "chat",
            Handler::Http => "http",
            Handler::Redis => "redis",
            Handler::TcpProxy => "tcp-proxy",
            Handler::RedisProxy => "redis-proxy",
        })
    }
}

/// How the CLI runs one handler: a fresh handler and model per seed, the workload its
/// clients send (`None`: the seed's random bytes), and the smallest buffers it can
/// work with (raised over what the flags ask).
struct Setup<H, M> {
    make: fn() -> (H, M),
    workload: Option<fn(u16, &mut Rng) -> Vec<u8>>,
    min_input: usize,
    min_output: usize,
    min_connections: usize,
}

impl<H, M> Setup<H, M> {
    /// A setup whose buffers and pool are at least what the handler's constraints ask.
    fn with_needs(
        make: fn() -> (H, M),
        workload: Option<fn(u16, &mut Rng) -> Vec<u8>>,
        needs: Constraints,
    ) -> Self {
        Setup {
            make,
            workload,
            min_input: needs.min_input_capacity,
            min_output: needs.min_output_capacity,
            min_connections: needs.min_connections,
        }
    }
}

/// Runs the command line for one handler.
fn run<H: Events, M: Model>(args: &Args, setup: &Setup<H, M>) -> ExitCode {
    if let Some(seed) = args.seed {
        return replay_one(seed, args, setup);
    }
    out!(
        "evio-sim: handler {}, seeds {}..{}, {} steps each, {} threads, constraints: {}",
        args.handler,
        args.seeds.start,
        args.seeds.end,
        args.steps,
        args.threads(),
        args.constraints(setup)
    );
    let total = args.seeds.end - args.seeds.start;
    let bar = progress_bar(total, std::io::stderr().is_terminal());
    let report = run_swarm(args, setup, bar.as_ref());
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    out!("{report}");
    for failure in &report.failures {
        out!("  cli replay: {}", args.replay_line(failure));
    }
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A `--seeds` value that is not `A..B` with `A <= B`.
#[derive(Debug, PartialEq, Eq)]
struct BadSeeds(String);

impl std::fmt::Display for BadSeeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` is not a seed range A..B (A <= B)", self.0)
    }
}

impl std::error::Error for BadSeeds {}

/// Parses `A..B`.
fn parse_seeds(s: &str) -> Result<Range<u64>, BadSeeds> {
    let bad = || BadSeeds(s.to_string());
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let (a, b): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a > b {
        return Err(bad());
    }
    Ok(a..b)
}

impl Args {
    fn constraints<H, M>(&self, setup: &Setup<H, M>) -> Constraints {
        Constraints {
            min_input_capacity: self.min_input.max(setup.min_input),
            min_output_capacity: self.min_output.max(setup.min_output),
            min_connections: self.min_connections.max(setup.min_connections),
            faults: self.faults,
        }
    }

    fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// The swarm the command line describes (for `--seed`, its seed's replay).
    fn swarm<H, M>(&self, setup: &Setup<H, M>) -> Swarm<fn() -> (H, M)> {
        let swarm = Swarm::new(setup.make)
            .seeds(self.seeds.clone())
            .steps(self.steps)
            .threads(self.threads())
            .constraints(self.constraints(setup));
        match setup.workload {
            Some(workload) => swarm.workload(workload),
            None => swarm,
        }
    }

    /// The constraint flags that differ from their defaults, as given on a command line.
    fn constraint_flags(&self) -> String {
        let mut flags = String::new();
        if self.min_input > 0 {
            flags += &format!(" --min-input {}", self.min_input);
        }
        if self.min_output > 0 {
            flags += &format!(" --min-output {}", self.min_output);
        }
        if self.min_connections > 0 {
            flags += &format!(" --min-connections {}", self.min_connections);
        }
        if self.faults != FaultSet::ALL {
            flags += &format!(" --faults {}", self.faults);
        }
        if self.tls {
            flags += " --tls";
        }
        if self.loops > 1 {
            flags += &format!(" --loops {}", self.loops);
        }
        flags
    }

    /// The command that replays `failure` with this CLI: the same handler and
    /// constraints, its trace and shrunk script printed.
    fn replay_line(&self, failure: &Failure) -> String {
        format!(
            "cargo run -p evio-sim-cli --release -- --handler {} --seed {} --steps {}{} --trace \
             --shrink",
            self.handler,
            failure.seed,
            failure.steps,
            self.constraint_flags()
        )
    }
}

/// A progress bar for `total` seeds when `show` (stderr is a terminal): CI logs and
/// pipes get plain output.
fn progress_bar(total: u64, show: bool) -> Option<ProgressBar> {
    if !show {
        return None;
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{bar:40} {pos}/{len} seeds {msg}[{elapsed_precise}, eta {eta}]",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

/// Runs the swarm, advancing `bar` as each seed finishes.
fn run_swarm<H: Events, M: Model>(
    args: &Args,
    setup: &Setup<H, M>,
    bar: Option<&ProgressBar>,
) -> SwarmReport {
    let mut swarm = args.swarm(setup);
    if let Some(bar) = bar {
        let bar = bar.clone();
        swarm = swarm.progress(move |p| {
            bar.inc(1);
            if !p.passed {
                bar.set_message(format!("({} failed) ", p.failures));
            }
        });
    }
    swarm.run()
}

/// The echo handler: the seed's random bytes, echoed.
fn echo_setup() -> Setup<Echo, EchoModel> {
    Setup {
        make: || (Echo, EchoModel),
        workload: None,
        min_input: 0,
        min_output: 0,
        min_connections: 0,
    }
}

/// The echo handler behind TLS: the seed's random bytes, encrypted, echoed.
fn echo_tls_setup() -> Setup<Tls<Echo>, Transformed<EchoModel>> {
    Setup::with_needs(echo_tls_pair, None, echo_tls_constraints())
}

/// The http handler behind TLS, under its mix of requests and garbage.
fn http_tls_setup() -> Setup<Tls<Http>, Transformed<HttpModel>> {
    Setup::with_needs(http_tls_pair, Some(http_requests), http_tls_constraints())
}

/// The chat handler with a 40 ms idle timeout, under lines of chat.
fn chat_setup() -> Setup<Chat, ChatModel> {
    Setup::with_needs(chat_pair, Some(chat_lines), chat_constraints())
}

/// The http handler as the swarm test runs it, under a mix of requests and garbage.
fn http_setup() -> Setup<Http, HttpModel> {
    Setup::with_needs(http_pair, Some(http_requests), http_constraints())
}

/// The redis handler with a 40 ms idle timeout and the simulator's small limits, under
/// Redis requests.
fn redis_setup() -> Setup<Redis, RedisModel> {
    Setup::with_needs(redis_pair, Some(redis_requests), redis_constraints())
}

/// The tcp proxy in front of echo backends, under the seed's random bytes.
fn tcp_proxy_setup() -> Setup<TcpProxy, RelayModel> {
    Setup::with_needs(tcp_proxy_pair, None, tcp_proxy_constraints())
}

/// The redis proxy in front of two simulated Redis servers, under pipelined requests.
fn redis_proxy_setup() -> Setup<RedisProxy, RedisProxyModel> {
    Setup::with_needs(
        redis_proxy_pair,
        Some(redis_proxy_requests),
        redis_proxy_constraints(),
    )
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.loops > 1 {
        if args.handler != Handler::Chat {
            eprintln!(
                "evio-sim: --loops {} runs only the chat handler (--handler chat)",
                args.loops
            );
            return ExitCode::from(2);
        }
        return run_chat_loops(&args);
    }
    if args.tls {
        return match args.handler {
            Handler::Echo => run(&args, &echo_tls_setup()),
            Handler::Http => run(&args, &http_tls_setup()),
            other => {
                eprintln!("evio-sim: --tls runs the echo and http handlers only, not {other}");
                ExitCode::from(2)
            }
        };
    }
    match args.handler {
        Handler::Echo => run(&args, &echo_setup()),
        Handler::Chat => run(&args, &chat_setup()),
        Handler::Http => run(&args, &http_setup()),
        Handler::Redis => run(&args, &redis_setup()),
        Handler::TcpProxy => run(&args, &tcp_proxy_setup()),
        Handler::RedisProxy => run(&args, &redis_proxy_setup()),
    }
}

/// Runs one seed again, printing its configuration, its trace (with `--trace`), the
/// faults that fired, its trace hash and its result, and on failure (with `--shrink`)
/// its shrunk script.
fn replay_one<H: Events, M: Model>(seed: u64, args: &Args, setup: &Setup<H, M>) -> ExitCode {
    let swarm = args.swarm(setup);
    let replay = swarm.replay(seed);
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
                && let Some(shrunk) = replay.shrink(5000, setup.make)
            {
                out!("{shrunk}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Makes the handlers and models of a chat room spanning loops.
type MakeLoops = fn(usize) -> Vec<(Chat, ChatLoopsModel)>;

/// The chat room spanning `--loops` loops: a swarm, or with `--seed` one seed again.
fn run_chat_loops(args: &Args) -> ExitCode {
    let setup = chat_setup();
    let loops = usize::from(args.loops);
    let swarm = Swarm::new(chat_loops as MakeLoops)
        .seeds(args.seeds.clone())
        .steps(args.steps)
        .threads(args.threads())
        .constraints(args.constraints(&setup))
        .workload(chat_tagged_lines as fn(u16, &mut Rng) -> Vec<u8>);
    if let Some(seed) = args.seed {
        return replay_loops(seed, loops, args, &swarm);
    }
    out!(
        "evio-sim: handler chat on {loops} loops, seeds {}..{}, {} steps each, {} threads, \
         constraints: {}",
        args.seeds.start,
        args.seeds.end,
        args.steps,
        args.threads(),
        args.constraints(&setup)
    );
    let bar = progress_bar(
        args.seeds.end - args.seeds.start,
        std::io::stderr().is_terminal(),
    );
    let swarm = match &bar {
        Some(bar) => {
            let bar = bar.clone();
            swarm.progress(move |p| {
                bar.inc(1);
                if !p.passed {
                    bar.set_message(format!("({} failed) ", p.failures));
                }
            })
        }
        None => swarm,
    };
    let report = swarm.run_loops(loops);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    out!("{report}");
    for failure in &report.failures {
        out!("  cli replay: {}", args.replay_line(failure));
    }
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One seed of the chat room on several loops again: each loop's trace (with
/// `--trace`, each line marked with its loop), the posts between loops and the result.
/// (`--shrink` does not apply: scripts of several loops are not shrunk.)
fn replay_loops(seed: u64, loops: usize, args: &Args, swarm: &Swarm<MakeLoops>) -> ExitCode {
    let config = swarm.config(seed);
    let script = swarm.script(seed, &config);
    out!("seed {seed} on {loops} loops: {config:?}");
    let mut result = LoopsSim::with_config(chat_loops(loops), seed, config);
    if let Ok(sim) = &mut result {
        sim.set_tracing(args.trace);
    }
    let outcome = result.and_then(|mut sim| {
        let run = script
            .iter()
            .try_for_each(|event| sim.step(event))
            .and_then(|()| sim.finish());
        if args.trace {
            for (l, lp) in sim.loops().iter().enumerate() {
                for line in lp.trace() {
                    out!("loop {l}: {line}");
                }
            }
        }
        out!("posts: {:?}", sim.office().counts());
        run
    });
    match outcome {
        Ok(outcome) => {
            out!(
                "seed {seed}: passed, trace hash {:016x}",
                outcome.trace_hash
            );
            ExitCode::SUCCESS
        }
        Err(violation) => {
            out!("seed {seed}: FAILED: {violation}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;
    use clap::error::ErrorKind;
    use evio_sim::{FaultKind, Origin, Violation};

    use super::*;

    fn parse_args(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("evio-sim").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn help_works() {
        let err = parse_args(&["--help"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DisplayHelp);
        let help = err.to_string();
        for flag in [
            "--seeds",
            "--seed",
            "--steps",
            "--threads",
            "--handler",
            "--trace",
            "--shrink",
            "--min-input",
            "--min-output",
            "--min-connections",
            "--faults",
            "--loops",
        ] {
            assert!(help.contains(flag), "{flag} missing from:\n{help}");
        }
    }

    #[test]
    fn options_parse() {
        let args = parse_args(&["--seeds", "5..9", "--steps", "30", "--threads", "3"]).unwrap();
        assert_eq!(
            (args.seeds.clone(), args.steps, args.threads()),
            (5..9, 30, 3)
        );
        let args =
            parse_args(&["--seed", "42", "--trace", "--shrink", "--handler", "echo"]).unwrap();
        assert_eq!(args.seed, Some(42));
        assert!(args.trace && args.shrink);
        // The README's command.
        let args = parse_args(&["--seeds", "0..10000", "--steps", "10000"]).unwrap();
        assert_eq!((args.seeds.clone(), args.steps), (0..10000, 10000));
        assert!(args.constraints(&echo_setup()).is_none());
    }

    #[test]
    fn constraint_flags_make_constraints() {
        let args = parse_args(&[
            "--min-input",
            "8",
            "--min-output",
            "16",
            "--min-connections",
            "4",
            "--faults",
            "short-read,wake-race",
        ])
        .unwrap();
        assert_eq!(
            args.constraints(&echo_setup()),
            Constraints {
                min_input_capacity: 8,
                min_output_capacity: 16,
                min_connections: 4,
                faults: FaultSet::of(&[FaultKind::ShortRead, FaultKind::WakeRace]),
            }
        );
        let none = parse_args(&["--faults", "none"]).unwrap();
        assert_eq!(none.constraints(&echo_setup()), Constraints::fault_free());
    }

    #[test]
    fn bad_command_lines_are_refused() {
        let kind = |args: &[&str]| parse_args(args).unwrap_err().kind();
        assert_eq!(kind(&["--frob"]), ErrorKind::UnknownArgument);
        assert_eq!(kind(&["--seeds", "9"]), ErrorKind::ValueValidation);
        assert_eq!(kind(&["--seeds", "9..3"]), ErrorKind::ValueValidation);
        assert_eq!(kind(&["--steps"]), ErrorKind::InvalidValue);
        assert_eq!(kind(&["--handler", "memcached"]), ErrorKind::InvalidValue);
        assert_eq!(kind(&["--faults", "frob"]), ErrorKind::ValueValidation);
        // --trace and --shrink only make sense for one seed.
        assert_eq!(kind(&["--trace"]), ErrorKind::MissingRequiredArgument);
        let message = parse_args(&["--faults", "frob"]).unwrap_err().to_string();
        assert!(message.contains("unknown fault `frob`"), "{message}");
    }

    /// The http handler runs from the command line, with its buffer minimums.
    #[test]
    fn the_http_handler_runs() {
        let args =
            parse_args(&["--handler", "http", "--seeds", "0..20", "--steps", "500"]).unwrap();
        let setup = http_setup();
        let constraints = args.constraints(&setup);
        assert_eq!(
            constraints.min_input_capacity, 200,
            "a head: bodies stream through"
        );
        assert!(constraints.min_output_capacity >= 150);
        let report = run_swarm(&args, &setup, None);
        assert!(report.failures.is_empty(), "{report}");
        assert!(report.bytes_written > 0, "{report}");
        assert!(
            args.replay_line(&Failure {
                seed: 1,
                steps: 500,
                at_step: 0,
                violation: Violation::Panic("x".into()),
                test: None,
                origin: Box::new(Origin::seed()),
            })
            .contains("--handler http")
        );
    }

    /// The chat room runs on several loops from the command line, a swarm and one seed
    /// again; other handlers are refused on several loops.
    #[test]
    fn the_chat_runs_on_several_loops() {
        let args = parse_args(&[
            "--handler",
            "chat",
            "--loops",
            "2",
            "--seeds",
            "0..20",
            "--steps",
            "300",
        ])
        .unwrap();
        assert_eq!(run_chat_loops(&args), ExitCode::SUCCESS);
        let args = parse_args(&[
            "--handler",
            "chat",
            "--loops",
            "3",
            "--seed",
            "5",
            "--steps",
            "300",
            "--trace",
        ])
        .unwrap();
        assert_eq!(run_chat_loops(&args), ExitCode::SUCCESS);
        assert!(args.constraint_flags().contains("--loops 3"));
        let kind = |args: &[&str]| parse_args(args).unwrap_err().kind();
        assert_eq!(kind(&["--loops", "0"]), ErrorKind::ValueValidation);
        assert_eq!(kind(&["--loops", "9"]), ErrorKind::ValueValidation);
    }

    /// The replay path runs (seed 0 passes with the echo handler).
    #[test]
    fn one_seed_replays() {
        let args = parse_args(&["--seed", "0", "--steps", "200"]).unwrap();
        assert_eq!(replay_one(0, &args, &echo_setup()), ExitCode::SUCCESS);
    }

    /// The swarm advances the progress bar once per seed (a hidden bar: the same
    /// counting, nothing drawn).
    #[test]
    fn the_progress_bar_counts_every_seed() {
        let args = parse_args(&["--seeds", "3..43", "--steps", "100", "--threads", "2"]).unwrap();
        let bar = ProgressBar::hidden();
        let report = run_swarm(&args, &echo_setup(), Some(&bar));
        assert!(report.failures.is_empty(), "{report}");
        assert_eq!(bar.position(), 40);
        // Not a terminal: no bar at all.
        assert!(progress_bar(40, false).is_none());
        assert_eq!(progress_bar(40, true).map(|b| b.length()), Some(Some(40)));
    }

    #[test]
    fn the_cli_replay_line_carries_the_constraints() {
        let args = parse_args(&["--min-output", "16", "--faults", "none"]).unwrap();
        let failure = Failure {
            seed: 7,
            steps: 1000,
            at_step: 3,
            violation: Violation::Panic("x".into()),
            test: None,
            origin: Box::new(Origin::seed()),
        };
        assert_eq!(
            args.replay_line(&failure),
            "cargo run -p evio-sim-cli --release -- --handler echo --seed 7 --steps 1000 \
             --min-output 16 --faults none --trace --shrink"
        );
        // And that command line parses to the same constraints.
        let replay = parse_args(&[
            "--seed",
            "7",
            "--steps",
            "1000",
            "--min-output",
            "16",
            "--faults",
            "none",
            "--trace",
            "--shrink",
        ])
        .unwrap();
        assert_eq!(
            replay.constraints(&echo_setup()),
            args.constraints(&echo_setup())
        );
    }
}
