//! The chat handler's reference model and workload.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use evio_proto::{ConnId, ConnInfo, Instant, PostKind};
use evio_sim::{Constraints, Model, ModelError, Rng};

use crate::chat::{Chat, LINES_IN_FLIGHT};

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

/// The chat handler as loops `0..loops` of one server run it in the simulator
/// ([`evio_sim::LoopsSim`], [`evio_sim::Swarm::run_loops`]): the room of
/// [`chat_pair`] spanning the loops ([`Chat::spanning`]), each loop with a handle on one
/// model of the whole room ([`ChatLoopsModel`]).
pub fn chat_loops(loops: usize) -> Vec<(Chat, ChatLoopsModel)> {
    let room = Rc::new(RefCell::new(Room {
        loops,
        lines: vec![Vec::new(); loops * loops],
        unmatched: vec![VecDeque::new(); loops],
        ..Room::default()
    }));
    (0..loops)
        .map(|me| {
            let (chat, _) = chat_pair();
            (
                chat.spanning(me, loops),
                ChatLoopsModel {
                    room: Rc::clone(&room),
                },
            )
        })
        .collect()
}

/// Chat traffic whose lines can be told apart: each starts with a tag of eight random
/// letters (the [`ChatLoopsModel`] tells lines by their bytes), and now and then one is
/// too long for a small input buffer.
pub fn chat_tagged_lines(_client: u16, rng: &mut Rng) -> Vec<u8> {
    let len = if rng.below(20) == 0 {
        rng.range(40, 600)
    } else {
        rng.range(8, 15)
    } as usize;
    let mut line: Vec<u8> = (0..len).map(|_| b'a' + rng.below(26) as u8).collect();
    line.push(b'\n');
    line
}

/// The reference model of a [`Chat`] room spanning the loops of a server, one handle
/// per loop on the same room.
///
/// - A line consumed on a loop is owed, exactly and in order, to every other member of
///   that loop open when the handler consumed it (as [`ChatModel`]), and must have
///   been posted to every other loop (taken by the post office, or refused at once
///   because an inbox was full: then that loop's members never get it, as the handler
///   documents).
/// - On another loop, a member receives the lines of each loop in the order that loop
///   posted them there, each once, with none left out between two it received; it may
///   begin with lines posted before it joined (they were on their way: at most
///   [`LINES_IN_FLIGHT`] of them), and is owed every line posted after it joined, until
///   it stops being open.
///
/// The lines a member receives from its own loop and from the others interleave, so
/// the model reads its stream a line at a time and tells lines apart by their bytes:
/// run it with [`chat_tagged_lines`], whose lines are distinct.
#[derive(Debug)]
pub struct ChatLoopsModel {
    room: Rc<RefCell<Room>>,
}

/// The room's state, shared by the loops' models.
#[derive(Debug, Default)]
struct Room {
    loops: usize,
    members: Vec<RoomMember>,
    /// Per pair of loops (`from * loops + to`): the lines the office took, in order.
    lines: Vec<Vec<Vec<u8>>>,
    /// Per loop: lines it posted (to which loop) that no consumed line has matched yet.
    unmatched: Vec<VecDeque<(usize, Vec<u8>)>>,
}

#[derive(Debug)]
struct RoomMember {
    home: usize,
    receiving: bool,
    /// Lines of its own loop's members owed to it, in order.
    own: VecDeque<Vec<u8>>,
    /// What it received of a line so far.
    partial: Vec<u8>,
    /// Per loop: the index of the next line of that loop it must receive, once it
    /// received one.
    next: Vec<Option<usize>>,
    /// Per loop: lines posted from there to its loop before it joined.
    start: Vec<usize>,
}

impl Room {
    fn seq(&self, from: usize, to: usize) -> &[Vec<u8>] {
        &self.lines[from * self.loops + to]
    }
}

impl Model for ChatLoopsModel {
    type Conn = Member;

    fn opened(&mut self, conn: &mut Member, info: &ConnInfo, _: Instant) {
        let mut room = self.room.borrow_mut();
        let home = info.id.loop_index();
        let loops = room.loops;
        let start = (0..loops).map(|l| room.seq(l, home).len()).collect();
        conn.number = Some(room.members.len());
        room.members.push(RoomMember {
            home,
            receiving: true,
            own: VecDeque::new(),
            partial: Vec::new(),
            next: vec![None; loops],
            start,
        });
    }

    fn input(&mut self, _: &mut Member, _: &[u8]) {}

    fn posted(&mut self, from: usize, to: ConnId, kind: PostKind, bytes: &[u8], accepted: bool) {
        let Some((&b'L', line)) = bytes.split_first() else {
            return; // acknowledgements
        };
        assert_eq!(kind, PostKind::Message, "the chat posts only messages");
        let mut room = self.room.borrow_mut();
        let to = to.loop_index();
        room.unmatched[from].push_back((to, line.to_vec()));
        if accepted {
            let n = room.loops;
            room.lines[from * n + to].push(line.to_vec());
        }
    }

    fn consumed(&mut self, conn: &mut Member, bytes: &[u8], _: Instant) {
        let mut room = self.room.borrow_mut();
        let Some(sender) = conn.number else { return };
        let home = room.members[sender].home;
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            assert!(line.ends_with(b"\n"), "consumed a partial line");
            for (m, member) in room.members.iter_mut().enumerate() {
                if m != sender && member.home == home && member.receiving {
                    member.own.push_back(line.to_vec());
                }
            }
            for to in (0..room.loops).filter(|&l| l != home) {
                let posted = room.unmatched[home].pop_front();
                assert!(
                    posted.as_ref() == Some(&(to, line.to_vec())),
                    "loop {home} relayed {:?} but posted {posted:?} to loop {to}",
                    String::from_utf8_lossy(line)
                );
            }
        }
    }

    fn closing(&mut self, conn: &mut Member) {
        if let Some(n) = conn.number {
            self.room.borrow_mut().members[n].receiving = false;
        }
    }

    fn output(&mut self, conn: &mut Member, bytes: &[u8]) -> Result<(), ModelError> {
        let mut room = self.room.borrow_mut();
        let Some(n) = conn.number else {
            return Err(ModelError {
                offset: conn.received,
                detail: format!("{} bytes for a client that never joined", bytes.len()),
            });
        };
        let loops = room.loops;
        for &b in bytes {
            room.members[n].partial.push(b);
            if b != b'\n' {
                continue;
            }
            let line = core::mem::take(&mut room.members[n].partial);
            let home = room.members[n].home;
            let offset = conn.received;
            conn.received += line.len() as u64;
            if room.members[n].own.front() == Some(&line) {
                room.members[n].own.pop_front();
                continue;
            }
            let found = (0..loops).filter(|&l| l != home).find_map(|l| {
                let seq = room.seq(l, home);
                let member = &room.members[n];
                match member.next[l] {
                    Some(i) => (seq.get(i) == Some(&line)).then_some((l, i)),
                    // Lines on their way when it joined (at most LINES_IN_FLIGHT were
                    // not yet written there), or the first posted since.
                    None => (member.start[l].saturating_sub(LINES_IN_FLIGHT)
                        ..seq.len().min(member.start[l] + 1))
                        .rev()
                        .find(|&i| seq[i] == line)
                        .map(|i| (l, i)),
                }
            });
            let Some((l, i)) = found else {
                return Err(ModelError {
                    offset,
                    detail: format!(
                        "line {:?} is neither the next line of its own loop ({:?}) nor the \
                         next of another loop's",
                        String::from_utf8_lossy(&line),
                        room.members[n]
                            .own
                            .front()
                            .map(|l| String::from_utf8_lossy(l).into_owned())
                    ),
                });
            };
            room.members[n].next[l] = Some(i + 1);
        }
        Ok(())
    }

    fn owed(&self, conn: &Member) -> usize {
        let room = self.room.borrow();
        let Some(m) = conn.number.map(|n| &room.members[n]) else {
            return 0;
        };
        let own: usize = m.own.iter().map(Vec::len).sum();
        let others: usize = if m.receiving {
            (0..room.loops)
                .filter(|&l| l != m.home)
                .map(|l| {
                    let from = m.next[l].unwrap_or(m.start[l]);
                    room.seq(l, m.home)
                        .get(from..)
                        .map_or(0, |s| s.iter().map(Vec::len).sum())
                })
                .sum()
        } else {
            0
        };
        (own + others).saturating_sub(m.partial.len())
    }

    fn handler_wakes(&self) -> bool {
        false
    }
}
