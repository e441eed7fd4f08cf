//! The chat example's handler (`evio_handlers::chat::Chat`) in the swarm, with an exact
//! model: each complete line a client sends reaches every other member open at the
//! moment the handler relays it, once and in order. Writes to other connections,
//! aborts of slow consumers, idle timeouts on the virtual clock and lingering closes
//! after lines too long for the input buffer all happen here, under faults.

use evio_handlers::chat::Chat;
use evio_handlers::sim::fuzz::ScriptHandler;
use evio_handlers::sim::{ChatModel, chat_constraints, chat_lines, chat_pair};
use evio_proto::{Action, Conn, Events, WriteError};
use evio_sim::seeds::keep_seed;
use evio_sim::{FuzzCase, Rng, Sim, Swarm, Violation};

fn chat() -> (Chat, ChatModel) {
    chat_pair()
}

fn chat_swarm<H, F>(make: F) -> Swarm<F>
where
    F: Fn() -> (H, ChatModel) + Sync,
{
    // Buffers that hold a short line: with one byte of output every member is a slow
    // consumer at once, with one byte of input every line is too long.
    Swarm::new(make)
        .constraints(chat_constraints())
        .workload(chat_lines as fn(u16, &mut Rng) -> Vec<u8>)
}

#[test]
fn chat_handler_passes_a_swarm_with_an_exact_model() {
    let report = chat_swarm(chat).seeds(0..2000).steps(3000).run();
    println!("{report}");
    assert!(report.failures.is_empty(), "{report}");
    assert!(report.bytes_written > 100_000, "{report}");
    // Lines longer than the input buffer end their sender's connection.
    assert!(report.frames_too_large > 0, "{report}");
}

/// The swarm reaches what the chat is for: lines relayed, idle timeouts on the virtual
/// clock, slow consumers aborted.
#[test]
fn the_chat_swarm_relays_times_out_and_aborts_slow_consumers() {
    let swarm = chat_swarm(chat).steps(3000);
    let (mut lines, mut slow, mut timeouts) = (0, 0, 0);
    for seed in 0..100 {
        let config = swarm.config(seed);
        let script = swarm.script(seed, &config);
        let (handler, model) = chat();
        let mut sim = Sim::with_config(handler, model, seed, config).expect("a valid config");
        for event in &script {
            if let Err(v) = sim.step(event) {
                panic!("{}", sim.failure(v));
            }
        }
        if let Err(v) = sim.finish() {
            panic!("{}", sim.failure(v));
        }
        lines += sim.handler().lines;
        slow += sim.handler().slow_consumers;
        timeouts += sim.engine().stats().timeouts;
    }
    println!("100 seeds: {lines} lines relayed, {timeouts} idle timeouts, {slow} slow consumers");
    assert!(lines > 1000 && timeouts > 0 && slow > 0);
}

/// A chat that forgets to skip the sender is caught: the model is exact.
#[derive(Default)]
struct EchoingChat(Chat);

impl Events for EchoingChat {
    type Context = ();
    evio_proto::delegate_events!(self.0, except data);
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let me = conn.id();
        let action = self.0.data(conn, input);
        // Also sends the first line back to its sender.
        if let Some(end) = input.iter().position(|&b| b == b'\n')
            && self.0.members().any(|m| m == me)
        {
            match conn.others().write(me, &input[..=end]) {
                Ok(())
                | Err(WriteError::NotOpen(_) | WriteError::Full(_) | WriteError::Refused(_)) => {}
            }
        }
        action
    }
}

#[test]
fn a_chat_that_echoes_to_the_sender_is_caught() {
    let report = chat_swarm(|| (EchoingChat(chat().0), ChatModel::default()))
        .seeds(0..100)
        .steps(2000)
        .run();
    assert!(!report.failures.is_empty(), "{report}");
    assert!(
        report
            .failures
            .iter()
            .all(|f| matches!(f.violation, Violation::Model { .. })),
        "{report}"
    );
}

/// Seed 4546 ended with a client the server never accepted: the model was asked what
/// that client is owed and indexed a member list it was never on (a panic in the
/// model, reported as the run's failure). A client that never joined is owed nothing.
#[test]
fn a_client_that_never_joined_is_owed_nothing() {
    let swarm = chat_swarm(chat).steps(3000);
    if let Err(failure) = swarm.run_seed(4546) {
        panic!("{failure}");
    }
    // Also a committed seed of the engine_script fuzz target, if the seed's
    // configuration is one the fuzz input format can hold exactly (it is: checked).
    let config = swarm.config(4546);
    let case = FuzzCase {
        seed: 4546,
        script: swarm.script(4546, &config),
        config,
    };
    let input = ScriptHandler::Chat.input(&case);
    // The format does not hold the script profile, which only makes a seed's own
    // scripts (unused when the script is given).
    let mut read_back = FuzzCase::from_bytes(&input[1..]);
    read_back.config.profile = case.config.profile.clone();
    assert_eq!(read_back, case);
    if let Err(e) = keep_seed("engine_script", "regression-chat-seed-4546", &input) {
        panic!("{e}");
    }
}
