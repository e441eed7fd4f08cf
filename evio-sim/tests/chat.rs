//! The chat example's handler (`evio_handlers::chat::Chat`) in the swarm, with an exact
//! model: each complete line a client sends reaches every other member open at the
//! moment the handler relays it, once and in order. Writes to other connections,
//! aborts of slow consumers, idle timeouts on the virtual clock and lingering closes
//! after lines too long for the input buffer all happen here, under faults.

use std::collections::VecDeque;
use std::time::Duration;

use evio_handlers::chat::Chat;
use evio_proto::{Action, CloseError, Conn, ConnInfo, Events, Flow, Loop, Stats, WriteError};
use evio_sim::{Model, ModelError, ScriptedEvent, Sim, SimConfig, format_script};

/// The room as the handler should see it: who is a member, and what each member is
/// owed, in the order the handler relays.
#[derive(Default)]
struct ChatModel {
    /// Members that still receive lines (open, in the order they joined).
    receiving: Vec<usize>,
    /// What each member (by join number) has been sent and not yet read.
    expected: Vec<VecDeque<u8>>,
}

#[derive(Default)]
struct Member {
    number: usize,
    received: u64,
}

impl Model for ChatModel {
    type Conn = Member;

    fn opened(&mut self, conn: &mut Member, _: &ConnInfo) {
        conn.number = self.expected.len();
        self.expected.push(VecDeque::new());
        self.receiving.push(conn.number);
    }

    fn input(&mut self, _: &mut Member, _: &[u8]) {}

    fn consumed(&mut self, conn: &mut Member, bytes: &[u8]) {
        // The handler consumes whole lines only, and relays each to the others.
        assert!(
            bytes.is_empty() || bytes.ends_with(b"\n"),
            "consumed a partial line"
        );
        for &m in &self.receiving {
            if m != conn.number {
                self.expected[m].extend(bytes);
            }
        }
    }

    fn closing(&mut self, conn: &mut Member) {
        self.receiving.retain(|&m| m != conn.number);
    }

    fn output(&mut self, conn: &mut Member, bytes: &[u8]) -> Result<(), ModelError> {
        let expected = &mut self.expected[conn.number];
        for &b in bytes {
            match expected.pop_front() {
                Some(e) if e == b => conn.received += 1,
                other => {
                    return Err(ModelError {
                        offset: conn.received,
                        detail: format!(
                            "got {b:#04x}, expected {other:?}: not the next byte of a line \
                             another member sent"
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    fn owed(&self, conn: &Member) -> usize {
        self.expected[conn.number].len()
    }

    fn handler_wakes(&self) -> bool {
        false
    }
}

fn chat() -> (Chat, ChatModel) {
    (
        Chat::new(Some(Duration::from_millis(40))),
        ChatModel::default(),
    )
}

/// The seed's script with one payload byte in eight turned into a newline: chat
/// traffic is lines (mostly short ones), not the random bytes of the echo swarm.
fn chat_script(seed: u64, steps: usize) -> (SimConfig, Vec<ScriptedEvent>) {
    let config = SimConfig::from_seed(seed);
    let mut script = config.script(seed, steps);
    for event in &mut script {
        if let ScriptedEvent::Send { bytes, .. } = event {
            for b in bytes.iter_mut() {
                if *b % 8 == 0 {
                    *b = b'\n';
                }
            }
        }
    }
    (config, script)
}

/// Runs `seeds` on chat traffic; returns the runs' engine counters summed, and the
/// handler's lines and slow consumers.
fn chat_swarm<H: Events<Context = ()>>(
    seeds: core::ops::Range<u64>,
    steps: usize,
    make: impl Fn() -> H,
    lines_and_slow: impl Fn(&H) -> (u64, u64),
) -> Result<(Stats, u64, u64), String> {
    let (mut stats, mut lines, mut slow) = (Stats::default(), 0, 0);
    for seed in seeds {
        let (config, script) = chat_script(seed, steps);
        let mut sim = Sim::with_config(make(), ChatModel::default(), seed, config)
            .map_err(|v| format!("seed {seed}: {v}"))?;
        for (i, event) in script.iter().enumerate() {
            sim.step(event).map_err(|v| {
                format!(
                    "seed {seed} step {i}: {v}\n{}",
                    format_script(&script[..=i])
                )
            })?;
        }
        sim.finish()
            .map_err(|v| format!("seed {seed} at the end: {v}"))?;
        let s = sim.engine().stats();
        stats.timeouts += s.timeouts;
        stats.accepted += s.accepted;
        stats.bytes_written += s.bytes_written;
        stats.frame_too_large += s.frame_too_large;
        let (l, sl) = lines_and_slow(sim.handler());
        lines += l;
        slow += sl;
    }
    Ok((stats, lines, slow))
}

#[test]
fn chat_handler_passes_a_swarm_with_an_exact_model() {
    let (stats, lines, slow) =
        chat_swarm(0..500, 3000, || chat().0, |h| (h.lines, h.slow_consumers))
            .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "500 seeds x 3000 steps: {} connections, {lines} lines relayed, {} bytes written, \
         {} idle timeouts, {slow} slow consumers aborted, {} lines too long",
        stats.accepted, stats.bytes_written, stats.timeouts, stats.frame_too_large
    );
    // What the chat is for all happens: relaying, idle timeouts on the virtual clock,
    // slow consumers aborted, lines too long for the input buffer.
    assert!(lines > 1000 && stats.bytes_written > 10_000);
    assert!(stats.timeouts > 0 && slow > 0 && stats.frame_too_large > 0);
}

/// A chat that forgets to skip the sender is caught: the model is exact.
#[derive(Default)]
struct EchoingChat(Chat);

impl Events for EchoingChat {
    type Context = ();
    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.0.opened(conn)
    }
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let me = conn.id();
        let action = self.0.data(conn, input);
        // Also sends the first line back to its sender.
        if let Some(end) = input.iter().position(|&b| b == b'\n')
            && self.0.members().contains(&me)
        {
            match conn.others().write(me, &input[..=end]) {
                Ok(()) | Err(WriteError::NotOpen(_) | WriteError::Full(_)) => {}
            }
        }
        action
    }
    fn timeout(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.0.timeout(conn)
    }
    fn closed(
        &mut self,
        info: &ConnInfo,
        c: (),
        e: Option<CloseError>,
        others: &mut Loop<'_, ()>,
    ) -> Flow {
        self.0.closed(info, c, e, others)
    }
}

#[test]
fn a_chat_that_echoes_to_the_sender_is_caught() {
    let result = chat_swarm(0..200, 2000, || EchoingChat(chat().0), |_| (0, 0));
    let error = result.expect_err("the model must catch a line sent back to its sender");
    assert!(error.contains("not the next byte"), "{error}");
}
