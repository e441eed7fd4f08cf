//! What the simulator reports when a run breaks a rule.

use core::fmt;

use evio_proto::{BuildError, ConnId, DriverError};

use crate::{Constraints, ModelError, Rule, ScriptedEvent, SimConfig, script_source};

/// An invariant the run broke, found right after the step that broke it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// The engine could not be built from the run's configuration.
    Build(BuildError),
    /// The simulated world cannot be set up from the run's configuration (no
    /// listener, more than the engine serves, or a socket window of zero bytes).
    Config(String),
    /// The reference model rejected what a client received.
    Model {
        /// Client number.
        client: usize,
        /// The model's objection.
        error: ModelError,
    },
    /// A `data` call's input was not the latest bytes read, in order, or reached back
    /// before the previous call's input.
    Input {
        /// Client number.
        client: usize,
        /// What differed.
        detail: String,
    },
    /// Output counts disagree: what the handler wrote, what the engine transmitted, and
    /// what it reported to `prewrite`/`postwrite`.
    Accounting {
        /// Client number.
        client: usize,
        /// The accounting rule broken.
        rule: Rule,
        /// What differed.
        detail: String,
    },
    /// `opened` ran twice for one connection.
    OpenedTwice(ConnId),
    /// A callback ran for a connection after its `closed` or `detached`, or before its
    /// `opened`.
    CallbackOutsideLife {
        /// The connection.
        id: ConnId,
        /// The callback.
        callback: &'static str,
    },
    /// `data` or `woken` ran after the handler returned `Close` or `Detach` for the
    /// connection.
    AfterLeaving {
        /// The connection.
        id: ConnId,
        /// The callback.
        callback: &'static str,
    },
    /// Something the contract promises did not hold (addresses in `opened`, the error
    /// in `closed`, the tick schedule, the accept back-off).
    Contract {
        /// The connection concerned; `None` for a rule about the server.
        id: Option<ConnId>,
        /// The rule broken.
        rule: Rule,
        /// What did not hold, with the values seen.
        detail: String,
    },
    /// `closed` ran twice, or after `detached` took the socket.
    ClosedTwice(ConnId),
    /// `closed` ran while the driver still had the socket open.
    ClosedBeforeSocket(ConnId),
    /// The engine closed or detached a connection with output still pending.
    CloseBeforeFlush {
        /// The connection.
        id: ConnId,
        /// `"close"` or `"detach"`.
        what: &'static str,
        /// Bytes the handler wrote that never reached the socket.
        unsent: u64,
    },
    /// The engine asked for I/O on a connection the driver no longer has.
    OutputForDeadConnection {
        /// The connection.
        id: ConnId,
        /// The output.
        output: &'static str,
    },
    /// The engine refused a call that the driver protocol allows.
    Driver {
        /// The call.
        call: &'static str,
        /// Its error.
        error: DriverError,
    },
    /// `Waker::wake` accepted a wake for a connection that is closed.
    WakeAccepted(ConnId),
    /// Something was not returned at the end of the run.
    Leak(String),
    /// A violation found on one loop of a server of several
    /// ([`LoopsSim`](crate::LoopsSim)): its client numbers are that loop's.
    OnLoop {
        /// The loop.
        index: usize,
        /// What it broke.
        violation: Box<Violation>,
    },
    /// A rule between the loops of a server was broken (see
    /// [`LoopsSim`](crate::LoopsSim)): a post lost, delivered twice, out of order or
    /// not whole, or a refusal not handed back exactly once.
    Loops(String),
    /// A clean connection ended with output still owed.
    Incomplete {
        /// Client number.
        client: usize,
        /// What was missing.
        detail: String,
    },
    /// A client's transport (TLS) refused what the server sent it: the server's
    /// transport produced bytes its peer cannot decode.
    Transport {
        /// Client number.
        client: usize,
        /// What the client's transport said.
        detail: String,
    },
    /// The engine or the handler panicked.
    Panic(String),
    /// The liveness phase did not finish every client's work within its bound.
    Liveness {
        /// Rounds the phase was allowed (each: every client reads, the loop runs).
        bound: usize,
        /// Who was stuck, and how.
        detail: String,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Build(e) => write!(f, "engine build failed: {e}"),
            Violation::Config(detail) => write!(f, "simulation configuration: {detail}"),
            Violation::Model { client, error } => write!(f, "client c{client}: model: {error}"),
            Violation::Input { client, detail } => {
                write!(f, "client c{client}: data input: {detail}")
            }
            Violation::Accounting {
                client,
                rule,
                detail,
            } => write!(
                f,
                "client c{client}: output accounting: {detail} (rule {}: {rule})",
                rule.name()
            ),
            Violation::OpenedTwice(id) => write!(f, "{id}: opened twice"),
            Violation::CallbackOutsideLife { id, callback } => {
                write!(f, "{id}: `{callback}` outside the connection's life")
            }
            Violation::AfterLeaving { id, callback } => {
                write!(
                    f,
                    "{id}: `{callback}` after the handler returned Close or Detach"
                )
            }
            Violation::Contract { id, rule, detail } => {
                match id {
                    Some(id) => write!(f, "{id}: ")?,
                    None => f.write_str("server: ")?,
                }
                write!(f, "{detail} (rule {}: {rule})", rule.name())
            }
            Violation::ClosedTwice(id) => write!(f, "{id}: closed twice (or after detached)"),
            Violation::ClosedBeforeSocket(id) => {
                write!(f, "{id}: `closed` ran before the socket was closed")
            }
            Violation::CloseBeforeFlush { id, what, unsent } => {
                write!(f, "{id}: {what} with {unsent} bytes of output not flushed")
            }
            Violation::OutputForDeadConnection { id, output } => {
                write!(f, "{id}: {output} asked for a socket that is gone")
            }
            Violation::Driver { call, error } => write!(f, "engine refused {call}: {error}"),
            Violation::WakeAccepted(id) => write!(f, "{id}: wake accepted for a closed connection"),
            Violation::Leak(detail) => write!(f, "leak at the end of the run: {detail}"),
            Violation::Loops(detail) => write!(f, "between loops: {detail}"),
            Violation::OnLoop { index, violation } => write!(f, "loop {index}: {violation}"),
            Violation::Incomplete { client, detail } => {
                write!(f, "client c{client}: clean connection incomplete: {detail}")
            }
            Violation::Transport { client, detail } => {
                write!(
                    f,
                    "client c{client}: its transport refused the server's bytes: {detail}"
                )
            }
            Violation::Panic(message) => write!(f, "panic: {message}"),
            Violation::Liveness { bound, detail } => {
                write!(f, "liveness: not done after {bound} rounds: {detail}")
            }
        }
    }
}

impl Violation {
    /// The contract or accounting rule this violation broke; `None` for the variants
    /// that stand for one rule each.
    pub fn rule(&self) -> Option<Rule> {
        match self.innermost() {
            Violation::Contract { rule, .. } | Violation::Accounting { rule, .. } => Some(*rule),
            _ => None,
        }
    }

    /// The violation itself, without the loop it was found on
    /// ([`Violation::OnLoop`]).
    pub fn innermost(&self) -> &Violation {
        match self {
            Violation::OnLoop { violation, .. } => violation.innermost(),
            v => v,
        }
    }

    /// A breach of contract rule `rule`, for connection `id` (`None`: the server).
    pub(crate) fn contract(id: Option<ConnId>, rule: Rule, detail: String) -> Self {
        Violation::Contract { id, rule, detail }
    }

    /// A breach of accounting rule `rule` on client `client`'s connection.
    pub(crate) fn accounting(client: usize, rule: Rule, detail: String) -> Self {
        Violation::Accounting {
            client,
            rule,
            detail,
        }
    }
}

impl std::error::Error for Violation {}

/// A failed run: the seed, where it failed, and how to replay it.
///
/// Its [`Display`](fmt::Display) always says how to run it again, whichever entry
/// point made it: a seed's own run ([`run_seed`](crate::run_seed),
/// [`swarm`](crate::swarm), a [`Swarm`](crate::Swarm)) prints the one-line command that
/// replays the seed through the same call ([`Failure::replay_line`]); an explicit
/// script ([`run`](crate::run), or a [`Sim`](crate::Sim) stepped by hand and turned into
/// a failure with [`Sim::failure`](crate::Sim::failure)) cannot be made again from its
/// seed, so the failure keeps its configuration and script ([`Failure::script`],
/// [`Failure::config`]) and prints the script as Rust when it is short.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The run's seed.
    pub seed: u64,
    /// Steps of the script to run (the script length the run was made with).
    pub steps: usize,
    /// The step (index into the script, or past its end for the liveness phase and the
    /// final checks) at which the violation was found.
    pub at_step: usize,
    /// The broken invariant.
    pub violation: Violation,
    /// The test that ran the seed, when it ran under `cargo test` (the test harness
    /// names its threads after the tests); `None` from the CLI or a program of one's
    /// own.
    pub test: Option<String>,
    /// How the run was made, which decides how it is replayed (boxed: it can hold a
    /// whole script, and a failure travels in every `Result`).
    pub origin: Box<Origin>,
}

/// How a failed run was made, so that it can be made again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The seed made the configuration and the script (as [`run_seed`](crate::run_seed),
    /// [`replay`](crate::replay), [`swarm`](crate::swarm) and a
    /// [`Swarm`](crate::Swarm) do), so the seed replays it through the same call, with
    /// `EVIO_SIM_SEED` set.
    Seed {
        /// The constraints applied to the seed's configuration
        /// ([`Constraints::none`] for the seed's own).
        constraints: Constraints,
        /// Whether the clients sent a [`Workload`](crate::Workload)'s messages rather
        /// than random bytes.
        workload: bool,
    },
    /// An explicit configuration and script, given to [`run`](crate::run) or stepped
    /// through a [`Sim`](crate::Sim): the seed does not make them, so they are kept.
    Script {
        /// The configuration the run had.
        config: Box<SimConfig>,
        /// The script (for a [`Sim`](crate::Sim), the events stepped so far).
        script: Vec<ScriptedEvent>,
    },
}

impl Origin {
    /// The seed's own configuration and script, unconstrained.
    pub const fn seed() -> Self {
        Origin::Seed {
            constraints: Constraints::none(),
            workload: false,
        }
    }
}

/// Scripts up to this many events are printed whole in a failure report.
const SHORT_SCRIPT: usize = 64;

impl Failure {
    /// The one-line command that replays this failure.
    ///
    /// For a run the seed made: under `cargo test`, the same test with
    /// `EVIO_SIM_SEED` and `EVIO_SIM_STEPS` set (a [`swarm`](crate::swarm) or
    /// [`Swarm`](crate::Swarm) then runs only that seed, with the same constraints and
    /// workload, and prints its trace and shrunk script); outside a test, the same
    /// program with the same arguments and those variables. For an explicit script, the
    /// call that runs it again with the configuration and script this failure keeps.
    pub fn replay_line(&self) -> String {
        match (&*self.origin, &self.test) {
            (Origin::Seed { .. }, Some(test)) => {
                let package = std::env::var("CARGO_PKG_NAME")
                    .map(|p| format!(" -p {p}"))
                    .unwrap_or_default();
                format!(
                    "EVIO_SIM_SEED={} EVIO_SIM_STEPS={} cargo test{package} -- --exact {test} --nocapture",
                    self.seed, self.steps
                )
            }
            (Origin::Seed { .. }, None) => {
                let program: Vec<String> = std::env::args().map(|a| shell_quote(&a)).collect();
                format!(
                    "EVIO_SIM_SEED={} EVIO_SIM_STEPS={} {}",
                    self.seed,
                    self.steps,
                    program.join(" ")
                )
            }
            (Origin::Script { script, .. }, _) => format!(
                "evio_sim::run(handler, model, {}, config, &script) with the configuration and \
                 {}-event script this failure keeps (Failure::config, Failure::script; the seed \
                 alone does not make them)",
                self.seed,
                script.len()
            ),
        }
    }

    /// The one-line command that replays this failure with the CLI (the `evio-sim`
    /// binary of the `evio-sim-cli` package, echo handler, unconstrained), printing
    /// its trace and shrunk script. Only meaningful for the echo handler and a seed's
    /// own run; the CLI prints its own line, with its constraint flags.
    pub fn cli_line(&self) -> String {
        format!(
            "cargo run -p evio-sim-cli --release -- --seed {} --steps {} --trace --shrink",
            self.seed, self.steps
        )
    }

    /// The script of an explicit run ([`Origin::Script`]); `None` when the seed makes
    /// it.
    pub fn script(&self) -> Option<&[ScriptedEvent]> {
        match &*self.origin {
            Origin::Script { script, .. } => Some(script),
            Origin::Seed { .. } => None,
        }
    }

    /// The configuration of an explicit run ([`Origin::Script`]); `None` when the seed
    /// makes it.
    pub fn config(&self) -> Option<&SimConfig> {
        match &*self.origin {
            Origin::Script { config, .. } => Some(config),
            Origin::Seed { .. } => None,
        }
    }
}

/// `arg` quoted for a POSIX shell when it needs it.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed {} failed at step {}", self.seed, self.at_step)?;
        if let Origin::Script { script, .. } = &*self.origin {
            write!(f, " of an explicit {}-event script", script.len())?;
        }
        write!(f, ": {}", self.violation)?;
        write!(f, "\n  replay: {}", self.replay_line())?;
        match &*self.origin {
            Origin::Seed {
                constraints,
                workload,
            } if !constraints.is_none() || *workload => {
                f.write_str("\n  made by a Swarm")?;
                if !constraints.is_none() {
                    write!(f, " with constraints ({constraints})")?;
                }
                if *workload {
                    f.write_str(" with its workload")?;
                }
                f.write_str(": only the same Swarm call (or its `replay`) makes it again")?;
            }
            Origin::Seed { .. } => {}
            Origin::Script { config, script } => {
                write!(f, "\n  configuration: {config:?}")?;
                if script.len() <= SHORT_SCRIPT {
                    write!(f, "\n  script: {}", script_source(script))?;
                }
            }
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}
