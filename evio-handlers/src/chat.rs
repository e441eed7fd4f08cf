//! A chat server: every complete line a client sends goes, unchanged, to every other
//! client connected at that moment.

use core::time::Duration;

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
#[derive(Debug, Default)]
pub struct Chat {
    members: Vec<Member>,
    idle: Option<Duration>,
    slow_consumer: Option<Duration>,
    /// Members disconnected as slow consumers so far.
    pub slow_consumers: u64,
    /// Lines relayed so far (each counted once, however many members it reached).
    pub lines: u64,
}

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

    /// The members, in the order they joined.
    pub fn members(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.members.iter().map(|m| m.id)
    }

    /// Writes `line` to every member but `from`, whole, or to none of them: `Err` names
    /// a member too full for it, which the sender must wait for. Members past the
    /// slow-consumer limit (or with no limit, any member too full) are disconnected on
    /// the way.
    fn relay(
        &mut self,
        from: ConnId,
        line: &[u8],
        others: &mut Loop<'_, ()>,
    ) -> Result<(), ConnId> {
        let now = others.now();
        for m in self.members.iter_mut().filter(|m| m.id != from) {
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
            return Err(m.id);
        }
        self.lines += 1;
        for m in self.members.iter().filter(|m| m.id != from) {
            let _ = others.write(m.id, line);
        }
        Ok(())
    }

    /// The tick's period: often enough to cut a slow consumer off near its limit.
    fn tick_period(&self) -> Option<Duration> {
        self.slow_consumer
            .map(|limit| (limit / 4).max(Duration::from_millis(1)))
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
            if let Err(full) = self.relay(me, line, conn.others()) {
                // This line and the rest wait until that member drains (or goes).
                let _ = conn.wait_for(full);
                break;
            }
            used += end + 1;
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
        Action::None
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
        Tick::after(period)
    }

    fn closed(
        &mut self,
        info: &ConnInfo,
        _: (),
        _: Option<CloseError>,
        _: &mut Loop<'_, ()>,
    ) -> Flow {
        if let Some(pos) = self.members.iter().position(|m| m.id == info.id) {
            self.members.remove(pos);
        }
        Flow::Continue
    }
}
