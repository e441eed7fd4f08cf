//! Every failing run says how to replay it, whichever entry point started it: `swarm`,
//! a `Swarm` builder, `run_seed`, `run` with an explicit script, and a `Sim` stepped by
//! hand. The builder's replay line is also run, as a child process, to show it replays
//! the very failure.

use std::process::Command;

use evio_handlers::echo::Echo;
use evio_sim::{
    Constraints, Failure, FaultKind, FaultSet, Model, ModelError, Origin, Rng, ScriptedEvent, Sim,
    SimConfig, Swarm, Violation, run, run_seed, swarm,
};

/// A model that objects to any output: echo fails as soon as a client reads a byte.
#[derive(Default)]
struct Silence;

impl Model for Silence {
    type Conn = ();

    fn input(&mut self, _: &mut (), _: &[u8]) {}

    fn output(&mut self, _: &mut (), bytes: &[u8]) -> Result<(), ModelError> {
        Err(ModelError {
            offset: 0,
            detail: format!("no output expected, got {} bytes", bytes.len()),
        })
    }

    fn owed(&self, _: &()) -> usize {
        0
    }
}

/// The replay command of a seed's failure under this test.
fn seed_line(failure: &Failure, test: &str) -> String {
    format!(
        "EVIO_SIM_SEED={} EVIO_SIM_STEPS={} cargo test",
        failure.seed, failure.steps
    ) + &std::env::var("CARGO_PKG_NAME")
        .map(|p| format!(" -p {p}"))
        .unwrap_or_default()
        + &format!(" -- --exact {test} --nocapture")
}

#[test]
fn a_swarm_failure_prints_its_replay_line() {
    let report = swarm(0..20, 300, 2, || (Echo, Silence));
    let failure = report.failures.first().expect("echo fails under Silence");
    assert!(matches!(failure.violation, Violation::Model { .. }));
    let line = seed_line(failure, "a_swarm_failure_prints_its_replay_line");
    assert_eq!(failure.replay_line(), line);
    let shown = failure.to_string();
    assert!(shown.contains(&format!("replay: {line}")), "{shown}");
    // The whole report shows it too.
    assert!(report.to_string().contains(&line), "{report}");
}

#[test]
fn a_builder_failure_prints_its_replay_line_and_what_made_it() {
    let constraints = Constraints {
        min_output_capacity: 16,
        faults: FaultSet::NONE.with(FaultKind::ShortRead),
        ..Constraints::none()
    };
    let report = Swarm::new(|| (Echo, Silence))
        .seeds(0..20)
        .steps(300)
        .threads(2)
        .constraints(constraints.clone())
        .workload(|_: u16, _: &mut Rng| b"hi\n".to_vec())
        .run();
    let failure = report.failures.first().expect("echo fails under Silence");
    assert_eq!(
        *failure.origin,
        Origin::Seed {
            constraints,
            workload: true
        }
    );
    let shown = failure.to_string();
    let line = seed_line(
        failure,
        "a_builder_failure_prints_its_replay_line_and_what_made_it",
    );
    assert!(shown.contains(&format!("replay: {line}")), "{shown}");
    assert!(
        shown.contains("with constraints (output capacity >= 16, faults: short-read)"),
        "{shown}"
    );
    assert!(shown.contains("with its workload"), "{shown}");
}

#[test]
fn a_run_seed_failure_prints_its_replay_line() {
    let failure = run_seed(3, 300, || (Echo, Silence)).expect_err("fails");
    assert_eq!(*failure.origin, Origin::seed());
    let line = seed_line(&failure, "a_run_seed_failure_prints_its_replay_line");
    assert!(failure.to_string().contains(&format!("replay: {line}")));
}

/// Outside a test harness thread, the replay line reruns the same program.
#[test]
fn outside_a_test_the_line_reruns_the_program() {
    let mut failure = run_seed(3, 300, || (Echo, Silence)).expect_err("fails");
    failure.test = None;
    let program = std::env::args().next().expect("argv[0]");
    let line = failure.replay_line();
    assert!(
        line.starts_with(&format!("EVIO_SIM_SEED=3 EVIO_SIM_STEPS=300 {program}")),
        "{line}"
    );
}

#[test]
fn an_explicit_script_failure_keeps_its_script_and_says_so() {
    let script = vec![
        ScriptedEvent::Connect { listener: 0 },
        ScriptedEvent::Send {
            client: 0,
            bytes: b"hi\n".to_vec(),
        },
        ScriptedEvent::Read {
            client: 0,
            window: 10,
        },
    ];
    let config = SimConfig::fault_free(11, script.len());
    let failure = run(Echo, Silence, 11, config.clone(), &script).expect_err("fails");
    assert_eq!(failure.script(), Some(&script[..]));
    assert_eq!(failure.config(), Some(&config));
    let shown = failure.to_string();
    assert!(shown.contains("of an explicit 3-event script"), "{shown}");
    assert!(
        shown.contains("replay: evio_sim::run(handler, model, 11, config, &script)"),
        "{shown}"
    );
    // Short scripts are printed whole, as Rust.
    assert!(
        shown.contains("ScriptedEvent::Send { client: 0, bytes: b\"hi\\n\".to_vec() }"),
        "{shown}"
    );
    // And running what it keeps fails the same way.
    let again = run(
        Echo,
        Silence,
        failure.seed,
        failure.config().unwrap().clone(),
        failure.script().unwrap(),
    )
    .expect_err("fails again");
    assert_eq!(again.violation, failure.violation);
    assert_eq!(again.at_step, failure.at_step);
}

#[test]
fn a_sim_stepped_by_hand_makes_a_failure_that_keeps_its_events() {
    let events = [
        ScriptedEvent::Connect { listener: 0 },
        ScriptedEvent::Send {
            client: 0,
            bytes: b"hello".to_vec(),
        },
        ScriptedEvent::Poll,
        ScriptedEvent::Read {
            client: 0,
            window: 64,
        },
        ScriptedEvent::Poll,
    ];
    let config = SimConfig::fault_free(5, events.len());
    let mut sim = Sim::with_config(Echo, Silence, 5, config.clone()).expect("builds");
    let mut failure = None;
    for event in &events {
        if let Err(violation) = sim.step(event) {
            failure = Some(sim.failure(violation));
            break;
        }
    }
    let failure = failure.expect("the read fails under Silence");
    assert_eq!(failure.at_step, 3, "{failure}");
    assert_eq!(failure.script(), Some(&events[..4]));
    assert_eq!(failure.config(), Some(&config));
    let shown = failure.to_string();
    assert!(
        shown.contains("seed 5 failed at step 3 of an explicit 4-event script"),
        "{shown}"
    );
    assert!(shown.contains("replay: evio_sim::run("), "{shown}");
    assert!(shown.contains("ScriptedEvent::Read { client: 0, window: 64 }"));
    // The kept events replay it.
    let again = run(Echo, Silence, 5, config, failure.script().unwrap()).expect_err("fails");
    assert_eq!((again.at_step, &again.violation), (3, &failure.violation));
}

/// The builder's replay line, run (this test binary with the line's variables, as
/// `cargo test` would run it): the child swarm runs only that seed, through the same
/// constraints and workload, and fails the same way.
#[test]
fn the_replay_line_replays_the_failure_through_the_same_swarm() {
    const TEST: &str = "the_replay_line_replays_the_failure_through_the_same_swarm";
    let report = Swarm::new(|| (Echo, Silence))
        .seeds(0..10)
        .steps(200)
        .threads(2)
        .constraints(Constraints {
            min_output_capacity: 64,
            ..Constraints::fault_free()
        })
        .workload(|client: u16, _: &mut Rng| format!("client {client}\n").into_bytes())
        .run();
    let failure = report.failures.first().expect("fails");
    if std::env::var_os("EVIO_SIM_SEED").is_some() {
        // The child: the swarm ran only the seed asked for.
        assert_eq!(report.seeds, 1);
        println!(
            "REPLAYED {} at {}: {}",
            failure.seed, failure.at_step, failure.violation
        );
        return;
    }
    assert!(failure.replay_line().contains(&format!("--exact {TEST}")));
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", TEST, "--nocapture", "--test-threads", "1"])
        .env("EVIO_SIM_SEED", failure.seed.to_string())
        .env("EVIO_SIM_STEPS", failure.steps.to_string())
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&child.stdout);
    let stderr = String::from_utf8_lossy(&child.stderr);
    assert!(child.status.success(), "{stdout}\n{stderr}");
    let expected = format!(
        "REPLAYED {} at {}: {}",
        failure.seed, failure.at_step, failure.violation
    );
    assert!(stdout.contains(&expected), "{stdout}\n{stderr}");
    // The replay printed the trace's end and a shrunk script.
    assert!(
        stderr.contains(&format!("EVIO_SIM_SEED={}: trace", failure.seed)),
        "{stderr}"
    );
    assert!(stderr.contains("shrunk in"), "{stderr}");
}
