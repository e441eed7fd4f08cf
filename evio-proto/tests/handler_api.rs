//! The handler's reach beyond the connection it was called for: the time, timeouts,
//! other connections (write, close, abort), the drained notification, the server wake,
//! and typed server-level returns.

mod common;

use std::time::Duration;

use common::*;
use evio_proto::{
    Action, CloseError, Conn, ConnId, ConnInfo, Detached, Events, Flow, Instant, Loop, NotOpen,
    Readiness, Server, Tick, Waker,
};

const MS: Duration = Duration::from_millis(1);

fn at(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

// ----- time and timeouts -----------------------------------------------------------------

/// Records when `timeout` fires; sets a 10 ms timeout when opened and, on "push",
/// pushes it back; "stop" cancels it; "bye" closes.
#[derive(Default)]
struct Timed {
    fired: Vec<(ConnId, Instant)>,
    seen_now: Vec<Instant>,
}

impl Events for Timed {
    type Context = ();
    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.seen_now.push(conn.now());
        conn.set_timeout(Some(10 * MS));
        Action::None
    }
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        self.seen_now.push(conn.now());
        match input {
            b"push" => conn.set_timeout(Some(10 * MS)),
            b"stop" => conn.set_timeout(None),
            b"bye" => return Action::Close,
            _ => {}
        }
        Action::None
    }
    fn timeout(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.fired.push((conn.id(), conn.now()));
        Action::None
    }
}

fn timed(max: usize) -> (TestEngine<Timed>, Net) {
    let (mut engine, _) = engine(Timed::default(), small_config(max, 16, 16));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    (engine, net)
}

#[test]
fn handlers_see_the_loops_time() {
    let (mut engine, mut net) = timed(1);
    advance(&mut engine, &mut net, at(3));
    let id = connect(&mut engine, &mut net, 0).unwrap();
    advance(&mut engine, &mut net, at(5));
    send(&mut engine, &mut net, id, b"x");
    assert_eq!(engine.handler().seen_now, [at(3), at(5)]);
}

#[test]
fn a_timeout_fires_once_never_early_and_can_be_pushed_back_or_cancelled() {
    let (mut engine, mut net) = timed(3);
    let a = connect(&mut engine, &mut net, 0).unwrap();
    let b = connect(&mut engine, &mut net, 0).unwrap();
    let c = connect(&mut engine, &mut net, 0).unwrap();
    assert_eq!(
        engine.poll_timeout(),
        Some(at(10)),
        "among the engine's deadlines"
    );
    advance(&mut engine, &mut net, at(4));
    send(&mut engine, &mut net, b, b"push"); // now due at 14
    send(&mut engine, &mut net, c, b"stop");
    advance(&mut engine, &mut net, at(9));
    assert!(engine.handler().fired.is_empty(), "never early");
    advance(&mut engine, &mut net, at(10));
    assert_eq!(engine.handler().fired, [(a, at(10))]);
    advance(&mut engine, &mut net, at(13));
    assert_eq!(engine.handler().fired.len(), 1, "b was pushed back");
    assert_eq!(engine.poll_timeout(), Some(at(14)));
    advance(&mut engine, &mut net, at(100));
    assert_eq!(
        engine.handler().fired,
        [(a, at(10)), (b, at(100))],
        "once each"
    );
    assert_eq!(
        engine.poll_timeout(),
        None,
        "c's was cancelled, the rest fired"
    );
}

#[test]
fn no_timeout_for_a_closed_or_closing_connection_nor_for_the_next_in_its_slot() {
    let (mut engine, mut net) = timed(1);
    let a = connect(&mut engine, &mut net, 0).unwrap();
    send(&mut engine, &mut net, a, b"bye");
    assert!(net.peer(a).closed);
    // The slot is reused; the new connection's own timeout is the only one.
    advance(&mut engine, &mut net, at(5));
    let b = connect(&mut engine, &mut net, 0).unwrap();
    assert_eq!(a.slot(), b.slot());
    advance(&mut engine, &mut net, at(12));
    assert!(
        engine.handler().fired.is_empty(),
        "a's deadline went with it"
    );
    advance(&mut engine, &mut net, at(15));
    assert_eq!(engine.handler().fired, [(b, at(15))]);
    // A connection closing with output still to flush is not timed out either.
    let (mut engine, mut net) = timed(1);
    let c = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(c).window = 0;
    engine.handler_mut().fired.clear();
    send(&mut engine, &mut net, c, b"bye");
    advance(&mut engine, &mut net, at(50));
    assert!(engine.handler().fired.is_empty());
}

// ----- other connections -------------------------------------------------------------------

/// A chat room in miniature: every line is written to every other member with
/// `write_some`, and the tick writes to them too.
#[derive(Default)]
struct Room {
    members: Vec<ConnId>,
    taken: Vec<usize>,
    refused: Vec<NotOpen>,
    closed: Vec<(ConnId, Option<CloseError>)>,
    drained: Vec<ConnId>,
    tick_line: Option<Vec<u8>>,
}

impl Events for Room {
    type Context = ();
    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.members.push(conn.id());
        Action::None
    }
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let me = conn.id();
        if let Some(id) = input.strip_prefix(b"close ") {
            let other = self.members[usize::from(id[0] - b'0')];
            let _ = conn.others().close(other);
            return Action::None;
        }
        if let Some(id) = input.strip_prefix(b"abort ") {
            let other = self.members[usize::from(id[0] - b'0')];
            let _ = conn.others().abort(other);
            return Action::None;
        }
        for &other in self.members.iter().filter(|&&m| m != me) {
            match conn.others().write_some(other, input) {
                Ok(n) => self.taken.push(n),
                Err(e) => self.refused.push(e),
            }
        }
        Action::None
    }
    fn drained(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.drained.push(conn.id());
        Action::None
    }
    fn closed(
        &mut self,
        info: &ConnInfo,
        _: (),
        error: Option<CloseError>,
        _: &mut Loop<'_, ()>,
    ) -> Flow {
        self.closed.push((info.id, error));
        Flow::Continue
    }
    fn tick(&mut self, others: &mut Loop<'_, ()>) -> Tick {
        if let Some(line) = self.tick_line.take() {
            for &m in &self.members {
                let _ = others.write(m, &line);
            }
        }
        Tick::after(10 * MS)
    }
}

fn room(max: usize, output: usize) -> (TestEngine<Room>, Net) {
    let (mut engine, _) = engine(Room::default(), small_config(max, 64, output));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    (engine, net)
}

#[test]
fn a_handler_writes_to_other_connections_within_their_room() {
    let (mut engine, mut net) = room(3, 8);
    let a = connect(&mut engine, &mut net, 0).unwrap();
    let b = connect(&mut engine, &mut net, 0).unwrap();
    let c = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(c).window = 0; // c does not read
    send(&mut engine, &mut net, a, b"hello");
    assert_eq!(net.peer(b).received, b"hello");
    assert!(net.peer(a).received.is_empty(), "not to the sender");
    assert_eq!(engine.pending_output(c), 5, "kept for c, in its own buffer");
    send(&mut engine, &mut net, a, b"world");
    assert_eq!(net.peer(b).received, b"helloworld");
    assert_eq!(engine.pending_output(c), 8, "c's buffer is full");
    assert_eq!(engine.handler().taken, [5, 5, 5, 3], "bounded by c's room");
    // c drains; the producer hears of it.
    open_window(&mut engine, &mut net, c, 100);
    assert_eq!(net.peer(c).received, b"hellowor");
    assert_eq!(engine.handler().drained, [c]);
}

#[test]
fn a_closed_or_stale_id_is_refused_and_nothing_is_written() {
    let (mut engine, mut net) = room(2, 8);
    let a = connect(&mut engine, &mut net, 0).unwrap();
    let b = connect(&mut engine, &mut net, 0).unwrap();
    half_close(&mut engine, &mut net, b);
    assert!(net.peer(b).closed);
    send(&mut engine, &mut net, a, b"anyone?");
    assert_eq!(engine.handler().refused, [NotOpen(b)]);
    // Its slot reused: the old id is still refused, the new one is written to.
    let c = connect(&mut engine, &mut net, 0).unwrap();
    assert_eq!(b.slot(), c.slot());
    engine.handler_mut().members.retain(|&m| m != c);
    send(&mut engine, &mut net, a, b"hi");
    assert_eq!(engine.handler().refused, [NotOpen(b), NotOpen(b)]);
    assert!(
        net.peer(c).received.is_empty(),
        "never to the slot's next connection"
    );
}

#[test]
fn a_tick_reaches_every_connection_and_a_whole_write_is_all_or_nothing() {
    let (mut engine, mut net) = room(2, 8);
    let a = connect(&mut engine, &mut net, 0).unwrap();
    let b = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(b).window = 0;
    engine.handler_mut().tick_line = Some(b"12345".to_vec());
    advance(&mut engine, &mut net, at(10));
    assert_eq!(net.peer(a).received, b"12345");
    assert_eq!(engine.pending_output(b), 5);
    engine.handler_mut().tick_line = Some(b"6789".to_vec());
    advance(&mut engine, &mut net, at(20));
    assert_eq!(net.peer(a).received, b"123456789");
    assert_eq!(
        engine.pending_output(b),
        5,
        "4 more would not fit: nothing written"
    );
}

#[test]
fn another_connection_is_closed_after_its_output_or_aborted_without_it() {
    let (mut engine, mut net) = room(3, 64);
    let a = connect(&mut engine, &mut net, 0).unwrap();
    let b = connect(&mut engine, &mut net, 0).unwrap();
    let c = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(b).window = 0;
    net.peer(c).window = 0;
    send(&mut engine, &mut net, a, b"last words");
    send(&mut engine, &mut net, a, b"close 1");
    assert!(!net.peer(b).closed, "flushes first");
    open_window(&mut engine, &mut net, b, 100);
    assert!(net.peer(b).closed && !net.peer(b).aborted);
    assert_eq!(net.peer(b).received, b"last words");
    send(&mut engine, &mut net, a, b"abort 2");
    assert!(
        net.peer(c).closed && net.peer(c).aborted,
        "at once, with a reset"
    );
    assert!(net.peer(c).received.is_empty(), "its output discarded");
    let closed = &engine.handler().closed;
    assert!(closed.contains(&(b, None)) && closed.contains(&(c, None)));
    assert!(!net.peer(a).closed);
}

#[test]
fn an_abort_from_the_handler_discards_output_and_resets() {
    struct Rude;
    impl Events for Rude {
        type Context = ();
        fn data(&mut self, conn: &mut Conn<'_, ()>, _: &[u8]) -> Action {
            conn.write(b"you will never read this").unwrap();
            Action::Abort
        }
    }
    let (mut engine, _) = engine(Rude, small_config(1, 16, 64));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    send(&mut engine, &mut net, id, b"x");
    assert!(net.peer(id).aborted);
    assert!(net.peer(id).received.is_empty());
    assert_eq!(engine.free_slots(), 1);
}

#[test]
fn drained_follows_backed_up_output_only() {
    let rec_room = Room::default();
    let (mut engine, _) = engine(rec_room, small_config(2, 64, 64));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let a = connect(&mut engine, &mut net, 0).unwrap();
    let b = connect(&mut engine, &mut net, 0).unwrap();
    send(&mut engine, &mut net, a, b"sent at once");
    assert!(engine.handler().drained.is_empty(), "nothing backed up");
    net.peer(b).window = 3;
    send(&mut engine, &mut net, a, b"a short write");
    assert!(engine.handler().drained.is_empty());
    open_window(&mut engine, &mut net, b, 100);
    assert_eq!(engine.handler().drained, [b]);
}

/// Answers a request with `total` bytes, written as room allows and resumed from
/// `drained`.
struct Streamer {
    total: usize,
    left: usize,
}

impl Streamer {
    fn pump(&mut self, conn: &mut Conn<'_, ()>) {
        while self.left > 0 {
            let n = conn.write_some(&[b's'; 7][..self.left.min(7)]);
            if n == 0 {
                return;
            }
            self.left -= n;
        }
    }
}

impl Events for Streamer {
    type Context = ();
    fn data(&mut self, conn: &mut Conn<'_, ()>, _: &[u8]) -> Action {
        self.left = self.total;
        self.pump(conn);
        Action::None
    }
    fn drained(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.pump(conn);
        Action::None
    }
}

#[test]
fn a_producer_finishes_its_answer_after_the_peer_half_closes() {
    let streamer = Streamer {
        total: 100,
        left: 0,
    };
    let (mut engine, _) = engine(streamer, small_config(1, 16, 16));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(id).window = 5;
    send(&mut engine, &mut net, id, b"GET");
    // The end of stream is read while the answer is backed up (a hang-up report makes
    // the engine read even while its output is blocked, as epoll's EPOLLRDHUP does).
    net.peer(id).eof = true;
    let _ = engine.handle_conn_ready(
        id,
        Readiness {
            hangup: true,
            ..Readiness::READABLE
        },
    );
    drain(&mut engine, &mut net);
    assert!(!net.peer(id).closed, "the answer is not finished");
    for _ in 0..40 {
        open_window(&mut engine, &mut net, id, 5);
    }
    assert_eq!(net.peer(id).received, vec![b's'; 100], "the whole answer");
    assert!(net.peer(id).closed, "then the close");
    assert_eq!(engine.free_slots(), 1);
}

// ----- the server wake -------------------------------------------------------------------

#[derive(Default)]
struct Stopper {
    woken: u32,
    stop: bool,
}

impl Events for Stopper {
    type Context = ();
    fn server_woken(&mut self, _: &mut Loop<'_, ()>) -> Flow {
        self.woken += 1;
        if self.stop {
            Flow::Shutdown
        } else {
            Flow::Continue
        }
    }
}

#[test]
fn the_server_is_woken_without_a_connection_and_can_shut_down() {
    let (mut engine, notify) = engine(Stopper::default(), small_config(2, 16, 16));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let waker = engine.waker().unwrap().clone();
    let notified = || notify.0.load(std::sync::atomic::Ordering::SeqCst);
    assert!(waker.wake_server());
    assert!(waker.wake_server(), "coalesces");
    assert_eq!(notified(), 1, "one notification for both");
    engine.handle_wakes();
    drain(&mut engine, &mut net);
    assert_eq!(engine.handler().woken, 1);
    engine.handle_wakes();
    assert_eq!(engine.handler().woken, 1, "nothing pending");
    let id = connect(&mut engine, &mut net, 0).unwrap();
    engine.handler_mut().stop = true;
    assert!(waker.wake_server());
    engine.handle_wakes();
    drain(&mut engine, &mut net);
    assert!(net.peer(id).closed, "a shutdown closes everyone");
    assert!(net.shutdown && engine.is_shut_down());
    assert!(!waker.wake_server(), "refused after the shutdown");
}

// ----- room for new connections --------------------------------------------------------

/// Records the free slots each `opened` saw; a client's "bye" closes its connection.
#[derive(Default)]
struct FreeSlots {
    seen: Vec<usize>,
}

impl Events for FreeSlots {
    type Context = ();
    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.seen.push(conn.others().free_slots());
        Action::None
    }
    fn data(&mut self, _: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        if input == b"bye" {
            Action::Close
        } else {
            Action::None
        }
    }
}

#[test]
fn a_handler_sees_how_many_slots_are_free() {
    let (mut engine, _) = engine(FreeSlots::default(), small_config(2, 16, 16));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let a = connect(&mut engine, &mut net, 0).unwrap();
    connect(&mut engine, &mut net, 0).unwrap();
    // The second took the last slot: the next connection would be refused.
    assert_eq!(engine.handler().seen, [1, 0]);
    send(&mut engine, &mut net, a, b"bye");
    connect(&mut engine, &mut net, 0).unwrap();
    assert_eq!(
        engine.handler().seen,
        [1, 0, 0],
        "a's slot was freed and retaken"
    );
    assert_eq!(engine.free_slots(), 0);
}

// ----- wrappers: delegate_events! ------------------------------------------------------

/// Every `Events` method, by name.
const METHODS: [&str; 12] = [
    "serving",
    "opened",
    "data",
    "woken",
    "timeout",
    "drained",
    "closed",
    "detached",
    "server_woken",
    "prewrite",
    "postwrite",
    "tick",
];

/// Logs every method it is called for, and makes each one count: a greeting and a 5 ms
/// timeout from `opened`, an echo from `data` (and a detach on "detach"), a reply to a
/// wake, a tick every 10 ms, and a context checked at the end.
#[derive(Default)]
struct Everything {
    calls: Vec<&'static str>,
    waker: Option<Waker>,
}

impl Events for Everything {
    type Context = u8;
    fn serving(&mut self, server: Server<'_>) -> Flow {
        self.calls.push("serving");
        self.waker = server.waker().cloned();
        Flow::Continue
    }
    fn opened(&mut self, conn: &mut Conn<'_, u8>) -> Action {
        self.calls.push("opened");
        *conn.context() = 7;
        conn.set_timeout(Some(5 * MS));
        conn.write(b"hi").unwrap();
        Action::None
    }
    fn data(&mut self, conn: &mut Conn<'_, u8>, input: &[u8]) -> Action {
        self.calls.push("data");
        if input == b"detach" {
            return Action::Detach;
        }
        let n = conn.write_some(input);
        conn.consume(n);
        Action::None
    }
    fn woken(&mut self, conn: &mut Conn<'_, u8>) -> Action {
        self.calls.push("woken");
        conn.write(b"w").unwrap();
        Action::None
    }
    fn timeout(&mut self, _: &mut Conn<'_, u8>) -> Action {
        self.calls.push("timeout");
        Action::None
    }
    fn drained(&mut self, _: &mut Conn<'_, u8>) -> Action {
        self.calls.push("drained");
        Action::None
    }
    fn closed(
        &mut self,
        _: &ConnInfo,
        context: u8,
        _: Option<CloseError>,
        _: &mut Loop<'_, u8>,
    ) -> Flow {
        self.calls.push("closed");
        assert_eq!(context, 7);
        Flow::Continue
    }
    fn detached(
        &mut self,
        _: &ConnInfo,
        context: &mut u8,
        _: Detached<'_>,
        _: &mut Loop<'_, u8>,
    ) -> Flow {
        self.calls.push("detached");
        assert_eq!(*context, 7);
        Flow::Continue
    }
    fn server_woken(&mut self, _: &mut Loop<'_, u8>) -> Flow {
        self.calls.push("server_woken");
        Flow::Continue
    }
    fn prewrite(&mut self, _: ConnId, _: usize) {
        self.calls.push("prewrite");
    }
    fn postwrite(&mut self, _: ConnId, _: usize, _: usize) {
        self.calls.push("postwrite");
    }
    fn tick(&mut self, _: &mut Loop<'_, u8>) -> Tick {
        self.calls.push("tick");
        Tick::after(10 * MS)
    }
}

/// Runs a connection through every method: `inner` finds the [`Everything`] in
/// `handler`. Gives the methods it was called for, every output of the engine, and what
/// the client received.
fn every_method<H: Events<Context = u8>>(
    handler: H,
    inner: fn(&H) -> &Everything,
) -> (Vec<&'static str>, Vec<String>, Vec<u8>) {
    let (mut engine, _) = engine(handler, small_config(2, 16, 16));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    // The echo backs up, and drains once the client reads.
    net.peer(id).window = 0;
    send(&mut engine, &mut net, id, b"abc");
    open_window(&mut engine, &mut net, id, 64);
    let waker = inner(engine.handler()).waker.clone().unwrap();
    assert!(waker.wake(id));
    engine.handle_wakes();
    drain(&mut engine, &mut net);
    assert!(waker.wake_server());
    engine.handle_wakes();
    drain(&mut engine, &mut net);
    advance(&mut engine, &mut net, at(6));
    advance(&mut engine, &mut net, at(10));
    send(&mut engine, &mut net, id, b"detach");
    let received = net.peer(id).received.clone();
    (inner(engine.handler()).calls.clone(), net.log, received)
}

#[test]
fn a_wrapper_made_with_delegate_events_passes_every_call_on_unchanged() {
    struct PassesOn(Everything);
    impl Events for PassesOn {
        type Context = u8;
        evio_proto::delegate_events!(self.0);
    }

    let alone = every_method(Everything::default(), |h| h);
    for method in METHODS {
        assert!(
            alone.0.contains(&method),
            "{method} not called: {:?}",
            alone.0
        );
    }
    assert_eq!(alone.2, b"hiabcw");
    let wrapped = every_method(PassesOn(Everything::default()), |h| &h.0);
    assert_eq!(wrapped, alone);
}

#[test]
fn a_wrapper_made_with_delegate_events_writes_what_it_excepts() {
    /// Marks the start of each input it passes on, and keeps `tick` from its handler
    /// (the trait's default runs, which stops the ticker).
    struct Changes(Everything);
    impl Events for Changes {
        type Context = u8;
        evio_proto::delegate_events!(self.0, except data, tick);
        fn data(&mut self, conn: &mut Conn<'_, u8>, input: &[u8]) -> Action {
            conn.write(b"[").unwrap();
            self.0.data(conn, input)
        }
    }

    let (calls, _, received) = every_method(Changes(Everything::default()), |h| &h.0);
    for method in METHODS {
        assert_eq!(
            calls.contains(&method),
            method != "tick",
            "{method}: {calls:?}"
        );
    }
    assert_eq!(calls.iter().filter(|&&c| c == "data").count(), 2);
    assert_eq!(received, b"hi[abcw[");
}
