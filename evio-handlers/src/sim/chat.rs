//! The chat handler's reference model and workload.

use std::collections::VecDeque;
use std::time::Duration;

use evio_proto::{ConnInfo, Instant};
use evio_sim::{Constraints, Model, ModelError, Rng};

use crate::chat::Chat;

/// The chat handler as the swarm, the simulator's command line and the fuzz targets
/// run it (a 40 ms idle timeout, and senders that wait up to 20 ms for a full member,
/// on the virtual clock), with its model.
pub fn chat_pair() -> (Chat, ChatModel) {
    (
        Chat::with_slow_consumer(Some(Duration::from_millis(40)), Duration::from_millis(20)),
        ChatModel::default(),
    )
}

/// The buffers the chat handler is simulated with: each holds a short line (with one
/// byte of output every member is a slow consumer at once, with one byte of input
/// every line is too long).
pub fn chat_constraints() -> Constraints {
    Constraints {
        min_input_capacity: 16,
        min_output_capacity: 16,
        ..Constraints::none()
    }
}

/// The reference model of [`Chat`](crate::chat::Chat): who is a member, and what each
/// member is owed, in the order the handler relays. Exact: each complete line a member
/// sends is owed, once and in order, to every other member open when the handler
/// consumed it (the simulator tells it in handler order, through
/// [`Model::consumed`] and [`Model::closing`]).
#[derive(Debug, Default)]
pub struct ChatModel {
    /// Members that still receive lines (open, in the order they joined).
    receiving: Vec<usize>,
    /// What each member (by join number) has been sent and not yet read.
    expected: Vec<VecDeque<u8>>,
}

/// [`ChatModel`]'s state for one connection: its join number (`None` until `opened`:
/// a client the server refused, or never accepted, is no member).
#[derive(Debug, Default)]
pub struct Member {
    number: Option<usize>,
    received: u64,
}

impl Model for ChatModel {
    type Conn = Member;

    fn opened(&mut self, conn: &mut Member, _: &ConnInfo, _: Instant) {
        let number = self.expected.len();
        conn.number = Some(number);
        self.expected.push(VecDeque::new());
        self.receiving.push(number);
    }

    fn input(&mut self, _: &mut Member, _: &[u8]) {}

    fn consumed(&mut self, conn: &mut Member, bytes: &[u8], _: Instant) {
        // The handler consumes whole lines only, and relays each to the others.
        assert!(
            bytes.is_empty() || bytes.ends_with(b"\n"),
            "consumed a partial line"
        );
        for &m in &self.receiving {
            if Some(m) != conn.number {
                self.expected[m].extend(bytes);
            }
        }
    }

    fn closing(&mut self, conn: &mut Member) {
        self.receiving.retain(|&m| Some(m) != conn.number);
    }

    fn output(&mut self, conn: &mut Member, bytes: &[u8]) -> Result<(), ModelError> {
        let Some(expected) = conn.number.and_then(|n| self.expected.get_mut(n)) else {
            return Err(ModelError {
                offset: conn.received,
                detail: format!("{} bytes for a client that never joined", bytes.len()),
            });
        };
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
        conn.number
            .and_then(|n| self.expected.get(n))
            .map_or(0, VecDeque::len)
    }

    fn handler_wakes(&self) -> bool {
        false
    }
}

/// Chat traffic: short lines of text, now and then one too long for a small input
/// buffer; the simulator cuts each client's stream at random points.
pub fn chat_lines(_client: u16, rng: &mut Rng) -> Vec<u8> {
    let len = if rng.below(20) == 0 {
        rng.range(40, 600)
    } else {
        rng.range(0, 12)
    } as usize;
    let mut line: Vec<u8> = (0..len).map(|_| b'a' + rng.below(26) as u8).collect();
    line.push(b'\n');
    line
}
