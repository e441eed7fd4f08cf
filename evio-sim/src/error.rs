//! What the simulator reports when a run breaks a rule.

use core::fmt;

use evio_proto::{BuildError, ConnId, DriverError};

use crate::{ModelError, Rule};

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
    /// A clean connection ended with output still owed.
    Incomplete {
        /// Client number.
        client: usize,
        /// What was missing.
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
            Violation::Incomplete { client, detail } => {
                write!(f, "client c{client}: clean connection incomplete: {detail}")
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
        match self {
            Violation::Contract { rule, .. } | Violation::Accounting { rule, .. } => Some(*rule),
            _ => None,
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
    /// names its threads after the tests); `None` from the CLI.
    pub test: Option<String>,
    /// `true` when the script was the seed's own (from [`run_seed`](crate::run_seed) or
    /// a swarm), so the seed alone replays it; `false` for an explicit script given to
    /// [`run`](crate::run), which only that script replays.
    pub seed_script: bool,
}

impl Failure {
    /// The one-line command that replays this failure: under `cargo test`, the same
    /// test with `EVIO_SIM_SEED` (a [`swarm`](crate::swarm) then runs only that seed and
    /// prints its trace and shrunk script); otherwise the CLI.
    pub fn replay_line(&self) -> String {
        match &self.test {
            Some(test) => {
                let package = std::env::var("CARGO_PKG_NAME")
                    .map(|p| format!(" -p {p}"))
                    .unwrap_or_default();
                format!(
                    "EVIO_SIM_SEED={} EVIO_SIM_STEPS={} cargo test{package} -- --exact {test} --nocapture",
                    self.seed, self.steps
                )
            }
            None => self.cli_line(),
        }
    }

    /// The one-line command that replays this failure with the CLI (the `evio-sim`
    /// binary of the `evio-sim-cli` package, echo handler), printing its trace and
    /// shrunk script.
    pub fn cli_line(&self) -> String {
        format!(
            "cargo run -p evio-sim-cli --release -- --seed {} --steps {} --trace --shrink",
            self.seed, self.steps
        )
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} failed at step {}: {}",
            self.seed, self.at_step, self.violation
        )?;
        if self.seed_script {
            write!(f, "\n  replay: {}", self.replay_line())
        } else {
            write!(f, "\n  replay: run the same script with seed {}", self.seed)
        }
    }
}

impl std::error::Error for Failure {}
