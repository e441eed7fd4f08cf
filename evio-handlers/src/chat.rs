//! A chat server: every complete line a client sends goes, unchanged, to every other
//! client connected at that moment.

use core::time::Duration;
use std::collections::VecDeque;

use evio_proto::{Action, CloseError, Conn, ConnId, ConnInfo, Events, Flow, Instant, Loop, Tick};

/// The chat room.
///
/// - A line is everything up to and including `\n`. A partial line waits in the
///   engine's input buffer for its end; a line longer than the input buffer cannot be
///   relayed, and the engine closes its sender ([`CloseError::FrameTooLarge`]).
/// - Each line is written whole to every other member, or not yet: while some member's
///   output buffer cannot take it, the sender waits for that member
///   ([`Conn::wait_for`]: once the sender's input buffer is full the engine stops
///   reading it, so TCP slows it down, and it hands the sender its lines again once
///   the member has drained). A reader briefly
///   slower than a sender is not dropped.
/// - A member that stays too full to take a line for the slow-consumer limit is
///   disconnected (an abortive close: what it has not read is dropped), and the others
///   go on. With no limit (`None`), a member too full for a line is disconnected at
///   once. Nothing is buffered outside the engine's fixed output buffers.
/// - With an idle timeout, a member that sent nothing for that long is closed.
/// - A room can span the loops of a server of several ([`Chat::spanning`]): each loop
///   keeps its own members, and a line goes to the other loops as a message
///   ([`Loop::post_message`]), which each writes to its members as it would a line of
///   its own. A sender may have at most [`LINES_IN_FLIGHT`] lines on their way to each
///   other loop; past that it is held (as for a full member) until that loop has
///   written them all, so a slow member on one loop slows the senders on every loop,
///   and each loop holds at most that many lines per other loop.
#[derive(Debug, Default)]
pub struct Chat {
    members: Vec<Member>,
    idle: Option<Duration>,
    slow_consumer: Option<Duration>,
    /// The other loops of the server, if the room spans several.
    span: Option<Span>,
    /// Members disconnected as slow consumers so far.
    pub slow_consumers: u64,
    /// Lines relayed so far (each counted once, however many members it reached).
    pub lines: u64,
}

/// Lines a loop may have on their way to each other loop (posted, not yet written to
/// all of that loop's members).
pub const LINES_IN_FLIGHT: usize = 256;

/// What a loop of a room spanning several keeps of the others.
#[derive(Debug, Default)]
struct Span {
    /// This loop's number, and how many loops there are.
    me: usize,
    loops: usize,
    /// Per loop: lines posted to it that it has not yet written to all its members.
    in_flight: Vec<usize>,
    /// Per loop: lines of its that this loop has written and not yet acknowledged.
    acks_owed: Vec<u32>,
    /// Senders of this loop whose input is held until a loop has room for more lines.
    held: Vec<ConnId>,
    /// Lines from other loops waiting for room on a member of this one, in arrival
    /// order: (from which loop, the line).
    pending: VecDeque<(usize, Vec<u8>)>,
    /// Line buffers to reuse (nothing is allocated per line once warm).
    spare: Vec<Vec<u8>>,
    /// A message being built.
    scratch: Vec<u8>,
    /// Lines that could not be posted to a loop whose inbox was full (its `inbox`
    /// smaller than the room needs).
    lost: u64,
}

/// The first byte of a message between loops: a line, or acknowledgements.
const LINE: u8 = b'L';
const ACK: u8 = b'A';

/// A member of the room, and since when it has been too full for a line (`None`: it
/// took the last line meant for it).
#[derive(Clone, Copy, Debug)]
struct Member {
    id: ConnId,
    full_since: Option<Instant>,
}

impl Chat {
    /// A room whose members are closed after `idle` without sending anything (`None`:
    /// never), and in which a member too full for a line is disconnected at once.
    pub fn new(idle: Option<Duration>) -> Self {
        Chat {
            idle,
            ..Chat::default()
        }
    }

    /// A room whose senders wait for a member too full for their line, for at most
    /// `slow_consumer` of that member staying full, after which it is disconnected.
    pub fn with_slow_consumer(idle: Option<Duration>, slow_consumer: Duration) -> Self {
        Chat {
            idle,
            slow_consumer: Some(slow_consumer),
            ..Chat::default()
        }
    }

    /// The same room as loop `me` of a server of `loops` loops: lines go to the members
    /// of every loop (see the type's documentation). The server's inboxes must hold
    /// [`LINES_IN_FLIGHT`] lines of the input buffer's length per other loop
    /// (`ServerBuilder::inbox`); a line that finds an inbox full is lost for that
    /// loop's members, and counted in [`Chat::lines_lost_between_loops`].
    pub fn spanning(mut self, me: usize, loops: usize) -> Self {
        if loops > 1 {
            self.span = Some(Span {
                me,
                loops,
                in_flight: vec![0; loops],
                acks_owed: vec![0; loops],
                ..Span::default()
            });
        }
        self
    }

    /// Lines that could not reach another loop because its inbox was full.
    pub fn lines_lost_between_loops(&self) -> u64 {
        self.span.as_ref().map_or(0, |s| s.lost)
    }

    /// The members, in the order they joined.
    pub fn members(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.members.iter().map(|m| m.id)
    }

    /// Writes `line` to every member but `from`, whole, or to none of them: `Err` says
    /// what the sender must wait for (a member too full for it, or another loop with
    /// as many of this loop's lines as it may have). Members past the slow-consumer
    /// limit (or with no limit, any member too full) are disconnected on the way.
    fn relay(&mut self, from: ConnId, line: &[u8], others: &mut Loop<'_, ()>) -> Result<(), Wait> {
        if let Some(full) = self.first_full(Some(from), line, others) {
            return Err(Wait::Member(full));
        }
        if let Some(span) = &self.span
            && (0..span.loops).any(|l| l != span.me && span.in_flight[l] >= LINES_IN_FLIGHT)
        {
            return Err(Wait::Loops);
        }
        self.lines += 1;
        for m in self.members.iter().filter(|m| m.id != from) {
            let _ = others.write(m.id, line);
        }
        if let Some(span) = &mut self.span {
            span.post_line(line, others);
        }
        Ok(())
    }

    /// The first member but `except` too full for `line`, which must be waited for;
    /// members past the slow-consumer limit are disconnected on the way.
    fn first_full(
        &mut self,
        except: Option<ConnId>,
        line: &[u8],
        others: &mut Loop<'_, ()>,
    ) -> Option<ConnId> {
        let now = others.now();
        for m in self.members.iter_mut().filter(|m| Some(m.id) != except) {
            let Ok(room) = others.room(m.id) else {
                continue; // leaving: it gets no more lines
            };
            if room >= line.len() {
                continue;
            }
            let since = *m.full_since.get_or_insert(now);
            // A line larger than the member's whole buffer can never fit: it is as
            // good as full for ever.
            let never = others.pending(m.id) == Some(0);
            let past_limit = self
                .slow_consumer
                .is_none_or(|limit| now.saturating_duration_since(since) >= limit);
            if never || past_limit {
                self.slow_consumers += 1;
                let _ = others.abort(m.id);
                continue;
            }
            // A write that does not fit marks the member's output as backed up, so its
            // `drained` tells when it took everything.
            let _ = others.write(m.id, line);
            return Some(m.id);
        }
        None
    }

    /// Writes the lines from other loops that wait, in order, as far as every member
    /// has room; acknowledges them to their loops.
    fn flush_pending(&mut self, others: &mut Loop<'_, ()>) {
        loop {
            let Some(span) = &mut self.span else { return };
            let Some((from, line)) = span.pending.pop_front() else {
                break;
            };
            if self.first_full(None, &line, others).is_some() {
                let span = self.span.as_mut().expect("spanning");
                span.pending.push_front((from, line));
                break;
            }
            for m in &self.members {
                let _ = others.write(m.id, &line);
            }
            let span = self.span.as_mut().expect("spanning");
            span.acks_owed[from] += 1;
            span.recycle(line);
        }
        if let Some(span) = &mut self.span {
            span.send_acks(others);
        }
    }

    /// The tick's period: often enough to cut a slow consumer off near its limit (and,
    /// spanning loops, to retry acknowledgements an inbox had no room for).
    fn tick_period(&self) -> Option<Duration> {
        let slow = self
            .slow_consumer
            .map(|limit| (limit / 4).max(Duration::from_millis(1)));
        match (slow, &self.span) {
            (slow, Some(_)) => Some(slow.map_or(SPAN_TICK, |p| p.min(SPAN_TICK))),
            (slow, None) => slow,
        }
    }
}

/// How often a loop of a spanning room retries what an inbox had no room for.
const SPAN_TICK: Duration = Duration::from_millis(10);

/// What a sender waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// A member too full for its line.
    Member(ConnId),
    /// Another loop with as many of this loop's lines on their way as it may have.
    Loops,
}

impl Span {
    /// Posts `line` to every other loop.
    fn post_line(&mut self, line: &[u8], others: &mut Loop<'_, ()>) {
        self.scratch.clear();
        self.scratch.push(LINE);
        self.scratch.extend_from_slice(line);
        for l in (0..self.loops).filter(|&l| l != self.me) {
            match others.post_message(l, &self.scratch) {
                Ok(()) => self.in_flight[l] += 1,
                Err(_) => self.lost += 1,
            }
        }
    }

    /// Posts the acknowledgements owed to each loop (what an inbox has no room for now
    /// is retried at the next tick).
    fn send_acks(&mut self, others: &mut Loop<'_, ()>) {
        for l in 0..self.loops {
            let n = self.acks_owed[l];
            if n == 0 {
                continue;
            }
            self.scratch.clear();
            self.scratch.push(ACK);
            self.scratch.extend_from_slice(&n.to_le_bytes());
            if others.post_message(l, &self.scratch).is_ok() {
                self.acks_owed[l] = 0;
            }
        }
    }

    /// A line buffer to fill with `line`.
    fn buffer(&mut self, line: &[u8]) -> Vec<u8> {
        let mut b = self.spare.pop().unwrap_or_default();
        b.clear();
        b.extend_from_slice(line);
        b
    }

    fn recycle(&mut self, line: Vec<u8>) {
        if self.spare.len() < LINES_IN_FLIGHT * self.loops {
            self.spare.push(line);
        }
    }
}

impl Events for Chat {
    type Context = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.members.push(Member {
            id: conn.id(),
            full_since: None,
        });
        conn.set_timeout(self.idle);
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let me = conn.id();
        conn.set_timeout(self.idle);
        let mut used = 0;
        while let Some(end) = input[used..].iter().position(|&b| b == b'\n') {
            let line = &input[used..used + end + 1];
            match self.relay(me, line, conn.others()) {
                Ok(()) => used += end + 1,
                // This line and the rest wait until that member drains (or goes).
                Err(Wait::Member(full)) => {
                    let _ = conn.wait_for(full);
                    break;
                }
                // ... or until the other loops have written this loop's lines.
                Err(Wait::Loops) => {
                    conn.hold();
                    if let Some(span) = &mut self.span
                        && !span.held.contains(&me)
                    {
                        span.held.push(me);
                    }
                    break;
                }
            }
        }
        // A partial line waits for its end.
        conn.consume(used);
        Action::None
    }

    fn drained(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let id = conn.id();
        if let Some(m) = self.members.iter_mut().find(|m| m.id == id) {
            m.full_since = None;
        }
        self.flush_pending(conn.others());
        Action::None
    }

    /// A line, or acknowledgements of lines, from another loop of a spanning room.
    fn loop_message(&mut self, others: &mut Loop<'_, ()>, from: usize, bytes: &[u8]) -> Flow {
        let Some(span) = &mut self.span else {
            return Flow::Continue;
        };
        match bytes.split_first() {
            Some((&LINE, line)) if from < span.loops => {
                let line = span.buffer(line);
                span.pending.push_back((from, line));
                self.flush_pending(others);
            }
            Some((&ACK, n)) if from < span.loops && n.len() == 4 => {
                let n = u32::from_le_bytes([n[0], n[1], n[2], n[3]]) as usize;
                span.in_flight[from] = span.in_flight[from].saturating_sub(n);
                // The senders held for room on the loops try again.
                for id in span.held.drain(..) {
                    let _ = others.resume(id);
                }
            }
            _ => {}
        }
        Flow::Continue
    }

    fn timeout(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
        Action::Close
    }

    /// Disconnects members that have stayed full past the limit, so that the senders
    /// waiting for them go on even if nobody sends again.
    fn tick(&mut self, others: &mut Loop<'_, ()>) -> Tick {
        let Some(period) = self.tick_period() else {
            return Tick::stop();
        };
        let now = others.now();
        for m in &mut self.members {
            if let (Some(since), Some(limit)) = (m.full_since, self.slow_consumer)
                && now.saturating_duration_since(since) >= limit
                && others.abort(m.id).is_ok()
            {
                self.slow_consumers += 1;
                m.full_since = None;
            }
        }
        self.flush_pending(others);
        Tick::after(period)
    }

    fn closed(
        &mut self,
        info: &ConnInfo,
        _: (),
        _: Option<CloseError>,
        others: &mut Loop<'_, ()>,
    ) -> Flow {
        if let Some(pos) = self.members.iter().position(|m| m.id == info.id) {
            self.members.remove(pos);
        }
        if let Some(span) = &mut self.span {
            span.held.retain(|&id| id != info.id);
        }
        self.flush_pending(others);
        Flow::Continue
    }
}
