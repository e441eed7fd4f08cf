//! The simulator through the facade, as a user's test uses it: `evio` with the `sim`
//! feature under `[dev-dependencies]`, a handler written against `evio`'s types, and a
//! model of it. Run with `cargo test -p evio --features sim --test sim`.

use std::collections::VecDeque;

use evio::sim::{Constraints, Model, ModelError, Rng, SimConfig, Swarm, run};
use evio::{Action, Conn, Events, Instant};

/// Answers each line with its length in decimal, then a newline.
struct LineLength;

impl Events for LineLength {
    type Context = ();

    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let mut used = 0;
        while let Some(len) = input[used..].iter().position(|&b| b == b'\n') {
            if conn.write(format!("{len}\n").as_bytes()).is_err() {
                break; // no room: the line comes back when output drains
            }
            used += len + 1;
        }
        conn.consume(used);
        Action::None
    }
}

/// The model: each consumed line owes its length.
struct LineLengthModel;

impl Model for LineLengthModel {
    type Conn = VecDeque<u8>;

    fn input(&mut self, _: &mut VecDeque<u8>, _: &[u8]) {}

    fn consumed(&mut self, owed: &mut VecDeque<u8>, bytes: &[u8], _: Instant) {
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            owed.extend(format!("{}\n", line.len() - 1).bytes());
        }
    }

    fn output(&mut self, owed: &mut VecDeque<u8>, bytes: &[u8]) -> Result<(), ModelError> {
        for &b in bytes {
            if owed.pop_front() != Some(b) {
                return Err(ModelError {
                    offset: 0,
                    detail: format!("unexpected {b:#04x}"),
                });
            }
        }
        Ok(())
    }

    fn owed(&self, owed: &VecDeque<u8>) -> usize {
        owed.len()
    }
}

/// Lines of 0 to 40 bytes.
fn lines(_client: u16, rng: &mut Rng) -> Vec<u8> {
    let mut line: Vec<u8> = (0..rng.below(41))
        .map(|_| b'a' + rng.below(26) as u8)
        .collect();
    line.push(b'\n');
    line
}

#[test]
fn a_users_handler_passes_a_swarm_through_the_facade() {
    let report = Swarm::new(|| (LineLength, LineLengthModel))
        .seeds(0..200)
        .steps(1000)
        .threads(2)
        .constraints(Constraints {
            // The longest line and its reply must fit.
            min_input_capacity: 64,
            min_output_capacity: 8,
            ..Constraints::none()
        })
        .workload(lines)
        .run();
    assert!(report.failures.is_empty(), "{report}");
    assert!(report.bytes_written > 10_000, "{report}");
}

#[test]
fn a_wrong_model_fails_with_a_replay_line() {
    /// Owes one byte too many per line.
    struct OffByOne;
    impl Model for OffByOne {
        type Conn = VecDeque<u8>;
        fn input(&mut self, _: &mut VecDeque<u8>, _: &[u8]) {}
        fn consumed(&mut self, owed: &mut VecDeque<u8>, bytes: &[u8], _: Instant) {
            for line in bytes.split_inclusive(|&b| b == b'\n') {
                owed.extend(format!("{}\n", line.len()).bytes());
            }
        }
        fn output(&mut self, owed: &mut VecDeque<u8>, bytes: &[u8]) -> Result<(), ModelError> {
            LineLengthModel.output(owed, bytes)
        }
        fn owed(&self, owed: &VecDeque<u8>) -> usize {
            owed.len()
        }
    }
    let config = SimConfig::fault_free(1, 100);
    let script = Swarm::new(|| (LineLength, OffByOne))
        .steps(100)
        .workload(lines)
        .script(1, &config);
    let failure = run(LineLength, OffByOne, 1, config, &script).expect_err("the model is wrong");
    assert!(
        failure
            .to_string()
            .contains("replay: evio_sim::run(handler, model, 1, config, &script)"),
        "{failure}"
    );
}
