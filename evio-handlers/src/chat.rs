//! A chat server: every complete line a client sends goes, unchanged, to every other
//! client connected at that moment.

use core::time::Duration;

use evio_proto::{Action, CloseError, Conn, ConnId, ConnInfo, Events, Flow, Loop, WriteError};

/// The chat room.
///
/// - A line is everything up to and including `\n`. A partial line waits in the
///   engine's input buffer for its end; a line longer than the input buffer cannot be
///   relayed, and the engine closes its sender ([`CloseError::FrameTooLarge`]).
/// - Each line is written whole to every other member, or not at all: a member whose
///   output buffer cannot take it is disconnected at once as a slow consumer (an
///   abortive close: what it has not read is dropped), and the others go on. Nothing
///   is buffered outside the engine's fixed output buffers.
/// - With an idle timeout, a member that sent nothing for that long is closed.
#[derive(Debug, Default)]
pub struct Chat {
    members: Vec<ConnId>,
    idle: Option<Duration>,
    /// Members disconnected as slow consumers so far.
    pub slow_consumers: u64,
    /// Lines relayed so far (each counted once, however many members it reached).
    pub lines: u64,
}

impl Chat {
    /// A room whose members are closed after `idle` without sending anything (`None`:
    /// never).
    pub fn new(idle: Option<Duration>) -> Self {
        Chat {
            idle,
            ..Chat::default()
        }
    }

    /// The members, in the order they joined.
    pub fn members(&self) -> &[ConnId] {
        &self.members
    }

    /// Writes `line` to every member but `from`; disconnects those it does not fit.
    fn relay(&mut self, from: ConnId, line: &[u8], others: &mut Loop<'_, ()>) {
        self.lines += 1;
        for &member in &self.members {
            if member == from {
                continue;
            }
            match others.write(member, line) {
                Ok(()) | Err(WriteError::NotOpen(_)) => {}
                Err(WriteError::Full(_)) => {
                    self.slow_consumers += 1;
                    let _ = others.abort(member);
                }
            }
        }
    }
}

impl Events for Chat {
    type Context = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.members.push(conn.id());
        conn.set_timeout(self.idle);
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let me = conn.id();
        conn.set_timeout(self.idle);
        let mut used = 0;
        while let Some(end) = input[used..].iter().position(|&b| b == b'\n') {
            let line = &input[used..used + end + 1];
            self.relay(me, line, conn.others());
            used += end + 1;
        }
        // A partial line waits for its end.
        conn.consume(used);
        Action::None
    }

    fn timeout(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
        Action::Close
    }

    fn closed(
        &mut self,
        info: &ConnInfo,
        _: (),
        _: Option<CloseError>,
        _: &mut Loop<'_, ()>,
    ) -> Flow {
        if let Some(pos) = self.members.iter().position(|&m| m == info.id) {
            self.members.remove(pos);
        }
        Flow::Continue
    }
}
