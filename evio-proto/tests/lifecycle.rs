//! The connection lifecycle from outside: every state is bounded in time (a leaving
//! connection whose peer never reads is aborted after `Config::send_timeout` without
//! send progress), and `Loop`'s close, detach and abort of another connection do what
//! the same `Action` does for the current one.

mod common;

use std::time::Duration;

use common::*;
use evio_proto::{Action, CloseError, Config, Conn, ConnId, ConnInfo, Events, Flow, Instant, Loop};

const MS: Duration = Duration::from_millis(1);

fn at(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

// ----- the send bound ------------------------------------------------------------------

/// Answers `big` with 100 bytes and closes; records how connections ended.
#[derive(Default)]
struct BigThenClose {
    closed: Vec<(ConnId, Option<CloseError>)>,
}

impl Events for BigThenClose {
    type Context = ();
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        conn.consume(input.len());
        let _ = conn.write(&[b'x'; 100]);
        Action::Close
    }
    fn closed(
        &mut self,
        info: &ConnInfo,
        _: (),
        e: Option<CloseError>,
        _: &mut Loop<'_, ()>,
    ) -> Flow {
        self.closed.push((info.id, e));
        Flow::Continue
    }
}

fn bounded(send_timeout: Option<Duration>) -> Config {
    Config {
        send_timeout,
        ..small_config(4, 16, 128)
    }
}

#[test]
fn a_closing_connection_whose_peer_never_reads_is_aborted_after_the_send_timeout() {
    let (mut engine, _) = engine(BigThenClose::default(), bounded(Some(50 * MS)));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(id).window = 10;
    send(&mut engine, &mut net, id, b"big");
    assert_eq!(net.peer(id).received.len(), 10);
    // Leaving with 90 bytes its peer does not take: the bound is among the deadlines.
    assert_eq!(engine.poll_timeout(), Some(at(50)));
    advance(&mut engine, &mut net, at(49));
    assert!(!net.peer(id).closed, "not before the bound");
    advance(&mut engine, &mut net, at(50));
    assert!(
        net.peer(id).aborted,
        "aborted: its output is discarded, the peer reset"
    );
    engine.handle_time(at(50)); // `closed` runs at the next engine call
    assert_eq!(
        engine.handler().closed,
        [(id, Some(CloseError::SendTimeout))]
    );
    assert_eq!(engine.stats().send_timeouts, 1);
    assert_eq!(engine.free_slots(), 4, "the slot is free again");
}

#[test]
fn send_progress_starts_the_bound_again() {
    let (mut engine, _) = engine(BigThenClose::default(), bounded(Some(50 * MS)));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(id).window = 10;
    send(&mut engine, &mut net, id, b"big");
    // At 40 ms the peer reads a little: the bound moves to 90 ms.
    advance(&mut engine, &mut net, at(40));
    net.now = at(40);
    open_window(&mut engine, &mut net, id, 10);
    assert_eq!(net.peer(id).received.len(), 20);
    advance(&mut engine, &mut net, at(60));
    assert!(!net.peer(id).closed, "progress at 40 ms: bounded at 90 ms");
    advance(&mut engine, &mut net, at(90));
    assert!(net.peer(id).aborted);
    // A peer that reads it all gets it all, then a plain close.
    let id = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(id).window = 10;
    send(&mut engine, &mut net, id, b"big");
    open_window(&mut engine, &mut net, id, 1000);
    assert_eq!(net.peer(id).received.len(), 100);
    assert!(net.peer(id).closed && !net.peer(id).aborted);
}

#[test]
fn without_a_send_timeout_a_leaving_connection_waits_for_its_peer() {
    let (mut engine, _) = engine(BigThenClose::default(), bounded(None));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(id).window = 10;
    send(&mut engine, &mut net, id, b"big");
    assert_eq!(engine.poll_timeout(), None);
    advance(&mut engine, &mut net, at(3_600_000));
    assert!(
        !net.peer(id).closed,
        "an hour later: no bound was asked for"
    );
}

/// A connection closing because its peer ended its stream, with output still to
/// send, is bounded too.
#[test]
fn a_connection_whose_peer_ended_is_bounded_while_it_sends_its_answer() {
    /// Answers each byte with ten.
    struct Tenfold;
    impl Events for Tenfold {
        type Context = ();
        fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
            for &b in input {
                let _ = conn.write(&[b; 10]);
            }
            Action::None
        }
    }
    let (mut engine, _) = engine(Tenfold, bounded(Some(30 * MS)));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(id).window = 5;
    send(&mut engine, &mut net, id, b"abc");
    assert_eq!(net.peer(id).received.len(), 5);
    // Its output is blocked, so it reads no more; a hang-up report makes it read the
    // end of the stream all the same.
    net.peer(id).eof = true;
    let hangup = evio_proto::Readiness {
        hangup: true,
        ..evio_proto::Readiness::READABLE
    };
    engine.handle_conn_ready(id, hangup).unwrap();
    drain(&mut engine, &mut net);
    assert!(!net.peer(id).closed, "30 bytes still to send");
    advance(&mut engine, &mut net, at(30));
    assert!(net.peer(id).aborted);
}

// ----- Loop's operations are the actions -----------------------------------------------

/// What to do to a connection: its own action, or the same through `Loop` from another
/// connection's callback.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Close,
    Detach,
    Abort,
}

impl Op {
    fn action(self) -> Action {
        match self {
            Op::Close => Action::Close,
            Op::Detach => Action::Detach,
            Op::Abort => Action::Abort,
        }
    }
}

/// The first connection keeps what it is sent unconsumed when it holds no newline,
/// and answers `out` with 100 bytes. A wake makes it do `op` itself; a `go` from
/// another connection makes that one do `op` to the first through `Loop`.
struct Target {
    op: Op,
    first: Option<ConnId>,
    closed: Vec<(ConnId, Option<CloseError>)>,
    detached: Vec<ConnId>,
}

impl Events for Target {
    type Context = ();
    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.first.get_or_insert(conn.id());
        Action::None
    }
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        if Some(conn.id()) == self.first {
            if input == b"out\n" {
                conn.consume(input.len());
                let _ = conn.write(&[b'x'; 100]);
            } else if input.contains(&b'\n') {
                conn.consume(input.len());
            } else {
                conn.consume(0); // a partial line: kept for the rest
            }
            return Action::None;
        }
        conn.consume(input.len());
        if input == b"go" {
            let first = self.first.unwrap();
            let others = conn.others();
            let done = match self.op {
                Op::Close => others.close(first),
                Op::Detach => others.detach(first),
                Op::Abort => others.abort(first),
            };
            assert_eq!(done, Ok(()));
        }
        Action::None
    }
    fn woken(&mut self, _: &mut Conn<'_, ()>) -> Action {
        self.op.action()
    }
    fn closed(
        &mut self,
        info: &ConnInfo,
        _: (),
        e: Option<CloseError>,
        _: &mut Loop<'_, ()>,
    ) -> Flow {
        self.closed.push((info.id, e));
        Flow::Continue
    }
    fn detached(
        &mut self,
        info: &ConnInfo,
        _: &mut (),
        _: evio_proto::Detached<'_>,
        _: &mut Loop<'_, ()>,
    ) -> Flow {
        self.detached.push(info.id);
        Flow::Continue
    }
}

/// What became of the first connection: its socket, what its client received, and
/// whether `closed` (with which error) or `detached` ran, at each stage: right after
/// the operation, once its client reads everything, and once its client closes.
#[derive(Debug, PartialEq)]
struct Fate {
    stages: Vec<(bool, bool, bool, bool, usize)>,
    closed: Vec<Option<CloseError>>,
    detached: bool,
}

fn fate(op: Op, through_loop: bool, unconsumed: bool, pending: bool) -> Fate {
    let config = Config {
        send_timeout: Some(50 * MS),
        ..small_config(4, 16, 128)
    };
    let target = Target {
        op,
        first: None,
        closed: Vec::new(),
        detached: Vec::new(),
    };
    let (mut engine, _) = engine(target, config);
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let first = connect(&mut engine, &mut net, 0).unwrap();
    let other = connect(&mut engine, &mut net, 0).unwrap();
    if pending {
        net.peer(first).window = 10;
        send(&mut engine, &mut net, first, b"out\n");
    }
    if unconsumed {
        send(&mut engine, &mut net, first, b"partial");
    }
    if through_loop {
        send(&mut engine, &mut net, other, b"go");
    } else {
        assert!(engine.waker().unwrap().wake(first));
        engine.handle_wakes();
        drain(&mut engine, &mut net);
    }
    let mut stages = Vec::new();
    let mut look = |net: &mut Net| {
        let p = net.peer(first);
        stages.push((
            p.closed,
            p.aborted,
            p.write_shut,
            p.detached,
            p.received.len(),
        ));
    };
    look(&mut net);
    open_window(&mut engine, &mut net, first, 1000);
    look(&mut net);
    if !net.peer(first).closed && !net.peer(first).detached {
        half_close(&mut engine, &mut net, first);
    }
    engine.handle_time(at(0));
    look(&mut net);
    let h = engine.handler();
    Fate {
        stages,
        closed: h
            .closed
            .iter()
            .filter(|(id, _)| *id == first)
            .map(|(_, e)| *e)
            .collect(),
        detached: h.detached.contains(&first),
    }
}

#[test]
fn loop_close_detach_and_abort_do_what_the_same_action_does() {
    for op in [Op::Close, Op::Detach, Op::Abort] {
        for unconsumed in [false, true] {
            for pending in [false, true] {
                let own = fate(op, false, unconsumed, pending);
                let through_loop = fate(op, true, unconsumed, pending);
                assert_eq!(
                    own, through_loop,
                    "{op:?}, unconsumed input {unconsumed}, pending output {pending}"
                );
            }
        }
    }
    // And the cases differ from one another where they should: a close over
    // unconsumed input lingers (its sending side is shut first), an abort resets.
    let lingering = fate(Op::Close, true, true, false);
    assert!(lingering.stages[0].2, "{lingering:?}");
    let plain = fate(Op::Close, true, false, false);
    assert!(!plain.stages[0].2 && plain.stages[0].0, "{plain:?}");
    let reset = fate(Op::Abort, true, false, true);
    assert!(reset.stages[0].1, "{reset:?}");
}

/// `Loop::abort` takes a connection that is already closing (its own handler
/// returned `Close` with output its peer does not read): for a server that cuts off
/// such peers itself, before the send bound.
#[test]
fn loop_abort_takes_a_closing_connection() {
    /// `big` gets 100 bytes and a close; `cut` from another connection aborts the
    /// first.
    #[derive(Default)]
    struct Cutter {
        first: Option<ConnId>,
        refused: Vec<ConnId>,
    }
    impl Events for Cutter {
        type Context = ();
        fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
            self.first.get_or_insert(conn.id());
            Action::None
        }
        fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
            conn.consume(input.len());
            match input {
                b"big" => {
                    let _ = conn.write(&[b'x'; 100]);
                    Action::Close
                }
                b"cut" => {
                    let first = self.first.unwrap();
                    if conn.others().abort(first).is_err() {
                        self.refused.push(first);
                    }
                    // Closing or aborting it twice is refused: it is already leaving.
                    assert!(conn.others().close(first).is_err());
                    Action::None
                }
                _ => Action::None,
            }
        }
    }
    let (mut engine, _) = engine(Cutter::default(), bounded(Some(Duration::from_secs(60))));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let first = connect(&mut engine, &mut net, 0).unwrap();
    let other = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(first).window = 10;
    send(&mut engine, &mut net, first, b"big");
    assert!(!net.peer(first).closed, "closing, with 90 bytes to send");
    send(&mut engine, &mut net, other, b"cut");
    assert!(net.peer(first).aborted);
    assert!(engine.handler().refused.is_empty());
}

/// A shutdown that comes right after the send bound passed (another connection's
/// timeout asks for it in the same turn) resets the connection as the bound decided,
/// rather than closing it.
#[test]
fn a_shutdown_keeps_an_abort_the_send_bound_decided() {
    /// `big` gets 100 bytes and a close; `stop` sets a timeout that shuts down.
    #[derive(Default)]
    struct BigThenStop {
        closed: Vec<(ConnId, Option<CloseError>)>,
    }
    impl Events for BigThenStop {
        type Context = ();
        fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
            conn.consume(input.len());
            if input == b"big" {
                let _ = conn.write(&[b'x'; 100]);
                return Action::Close;
            }
            conn.set_timeout(Some(50 * MS));
            Action::None
        }
        fn timeout(&mut self, _: &mut Conn<'_, ()>) -> Action {
            Action::Shutdown
        }
        fn closed(
            &mut self,
            info: &ConnInfo,
            _: (),
            e: Option<CloseError>,
            _: &mut Loop<'_, ()>,
        ) -> Flow {
            self.closed.push((info.id, e));
            Flow::Continue
        }
    }
    let (mut engine, _) = engine(BigThenStop::default(), bounded(Some(50 * MS)));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let leaving = connect(&mut engine, &mut net, 0).unwrap();
    let stopper = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(leaving).window = 10;
    send(&mut engine, &mut net, leaving, b"big");
    send(&mut engine, &mut net, stopper, b"stop");
    // Both deadlines at 50 ms: the bound first (set first), then the shutdown.
    advance(&mut engine, &mut net, at(50));
    assert!(net.shutdown);
    assert!(net.peer(leaving).aborted, "reset, not closed");
    assert!(net.peer(stopper).closed && !net.peer(stopper).aborted);
    assert!(
        engine
            .handler()
            .closed
            .contains(&(leaving, Some(CloseError::SendTimeout)))
    );
}
