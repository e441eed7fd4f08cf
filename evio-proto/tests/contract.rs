//! One test (or more) per engine row of the behaviour contract (DESIGN.md §5), driven
//! through the public engine API by the in-memory driver in `common`.

mod common;

use std::time::Duration;

use common::*;
use evio_proto::{
    AcceptError, Action, CloseError, Conn, ConnId, ConnInfo, Detached, DriverError, Events, Flow,
    Instant, Interest, IoError, IoErrorKind, ListenAddr, ListenerId, Loop, Output, Readiness,
    Server, Tick, Waker,
};

/// What a handler saw, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Serving(Vec<String>),
    Opened(ConnId, usize),
    Data(ConnId, Vec<u8>),
    Woken(ConnId),
    Closed(ConnId, Option<CloseError>),
    Detached(ConnId, bool),
    Pre(ConnId, usize),
    Post(ConnId, usize, usize),
    Tick(Instant),
}

/// A handler whose behaviour each test sets through its fields.
#[derive(Default)]
struct Rec {
    log: Vec<Ev>,
    waker: Option<Waker>,
    /// `data`: echo what fits and consume only that.
    echo: bool,
    /// `data`: write this reply and return this action.
    reply: Option<(Vec<u8>, Action)>,
    /// `data`: consume whole lines only.
    lines: bool,
    /// `data`: consume nothing.
    hoard: bool,
    /// `data`: write this when the input buffer is full.
    reject_full: Vec<u8>,
    /// `opened`: write this greeting.
    greeting: Vec<u8>,
    /// `woken`: write this.
    on_wake: Vec<u8>,
    /// `detached`: take the socket.
    take_socket: bool,
    /// `tick`: the delay to return, and the action.
    tick_delay: Option<Duration>,
    tick_flow: Flow,
    /// `serving`: the action.
    serving_flow: Flow,
}

impl Events for Rec {
    type Context = u32;

    fn serving(&mut self, server: Server<'_>) -> Flow {
        self.waker = server.waker().cloned();
        let addrs = server.addrs().iter().map(ListenAddr::to_string).collect();
        self.log.push(Ev::Serving(addrs));
        self.serving_flow
    }

    fn opened(&mut self, conn: &mut Conn<'_, u32>) -> Action {
        self.log
            .push(Ev::Opened(conn.id(), conn.info().listener.index()));
        *conn.context() = 7;
        conn.write(&self.greeting).unwrap();
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, u32>, input: &[u8]) -> Action {
        assert_eq!(*conn.context(), 7, "context survives between calls");
        self.log.push(Ev::Data(conn.id(), input.to_vec()));
        if self.hoard {
            if input.len() == conn.input_capacity() {
                conn.write(&self.reject_full).unwrap();
            }
            conn.consume(0);
            return Action::None;
        }
        if self.lines {
            let end = input.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            conn.write(&input[..end]).unwrap();
            conn.consume(end);
            return Action::None;
        }
        if self.echo {
            let n = conn.write_some(input);
            conn.consume(n);
            return Action::None;
        }
        if let Some((reply, action)) = &self.reply {
            for chunk in reply.chunks(3) {
                conn.write(chunk).unwrap();
            }
            return *action;
        }
        Action::None
    }

    fn woken(&mut self, conn: &mut Conn<'_, u32>) -> Action {
        self.log.push(Ev::Woken(conn.id()));
        conn.write(&self.on_wake).unwrap();
        Action::None
    }

    fn closed(
        &mut self,
        info: &ConnInfo,
        context: u32,
        error: Option<CloseError>,
        _: &mut Loop<'_, u32>,
    ) -> Flow {
        assert_eq!(context, 7);
        self.log.push(Ev::Closed(info.id, error));
        Flow::Continue
    }

    fn detached(
        &mut self,
        info: &ConnInfo,
        context: &mut u32,
        mut socket: Detached<'_>,
        _: &mut Loop<'_, u32>,
    ) -> Flow {
        assert_eq!(*context, 7);
        let taken = self.take_socket && socket.take::<FakeSocket>().is_some();
        self.log.push(Ev::Detached(info.id, taken));
        Flow::Continue
    }

    fn prewrite(&mut self, id: ConnId, attempted: usize) {
        self.log.push(Ev::Pre(id, attempted));
    }

    fn postwrite(&mut self, id: ConnId, written: usize, remaining: usize) {
        self.log.push(Ev::Post(id, written, remaining));
    }

    fn tick(&mut self, lp: &mut Loop<'_, u32>) -> Tick {
        let now = lp.now();
        self.log.push(Ev::Tick(now));
        Tick {
            delay: self.tick_delay,
            flow: self.tick_flow,
        }
    }
}

fn setup(rec: Rec, max: usize, input: usize, output: usize) -> (TestEngine<Rec>, Net) {
    let (mut engine, _) = engine(rec, small_config(max, input, output));
    let mut net = Net::new(2);
    start(&mut engine, &mut net);
    (engine, net)
}

fn log(engine: &TestEngine<Rec>) -> &[Ev] {
    &engine.handler().log
}

fn closed_count(engine: &TestEngine<Rec>, id: ConnId) -> usize {
    log(engine)
        .iter()
        .filter(|e| matches!(e, Ev::Closed(i, _) if *i == id))
        .count()
}

// ----- serving, opened, addresses --------------------------------------------------

#[test]
fn serving_gets_the_bound_addresses_in_order_and_a_waker() {
    let (engine, _) = setup(Rec::default(), 2, 16, 16);
    assert_eq!(
        log(&engine)[0],
        Ev::Serving(vec![
            "tcp://127.0.0.1:1000".into(),
            "tcp://127.0.0.1:1001".into()
        ])
    );
    assert!(engine.handler().waker.is_some());
}

#[test]
fn opened_reports_the_listener_index_and_addresses() {
    let (mut engine, mut net) = setup(Rec::default(), 4, 16, 16);
    let a = connect(&mut engine, &mut net, 0).unwrap();
    let b = connect(&mut engine, &mut net, 1).unwrap();
    assert!(log(&engine).contains(&Ev::Opened(a, 0)));
    assert!(log(&engine).contains(&Ev::Opened(b, 1)));
    assert_ne!(a, b);
    // TCP_NODELAY is asked for every new connection by default.
    assert!(net.peer(a).options.is_some_and(|o| o.nodelay));
}

// ----- flush before close and detach -----------------------------------------------

#[test]
fn close_flushes_all_pending_output_first() {
    let rec = Rec {
        reply: Some((b"0123456789abcdef".to_vec(), Action::Close)),
        ..Rec::default()
    };
    let (mut engine, mut net) = setup(rec, 2, 64, 64);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(id).window = 2;
    send(&mut engine, &mut net, id, b"go");
    assert!(!net.peer(id).closed, "closed with output pending");
    assert_eq!(
        net.peer(id).interest,
        Interest::WRITE,
        "wait for writable, do not read"
    );
    for _ in 0..3 {
        open_window(&mut engine, &mut net, id, 4);
        assert!(!net.peer(id).closed);
    }
    open_window(&mut engine, &mut net, id, 100);
    assert!(net.peer(id).closed);
    assert_eq!(net.peer(id).received, b"0123456789abcdef");
    assert_eq!(closed_count(&engine, id), 1);
    assert!(log(&engine).contains(&Ev::Closed(id, None)));
    assert_eq!(engine.free_slots(), 2, "slot released");
}

#[test]
fn detach_flushes_output_then_hands_over_the_socket_and_never_closes() {
    let rec = Rec {
        reply: Some((b"bye!".to_vec(), Action::Detach)),
        take_socket: true,
        ..Rec::default()
    };
    let (mut engine, mut net) = setup(rec, 2, 64, 64);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(id).window = 2;
    send(&mut engine, &mut net, id, b"x");
    assert!(!net.peer(id).detached);
    open_window(&mut engine, &mut net, id, 10);
    assert!(net.peer(id).detached);
    assert!(!net.peer(id).closed);
    assert_eq!(net.peer(id).received, b"bye!");
    assert!(log(&engine).contains(&Ev::Detached(id, true)));
    assert_eq!(closed_count(&engine, id), 0);
    assert!(net.log.iter().any(|l| l.starts_with("taken")));
    assert_eq!(engine.free_slots(), 2);
    assert_eq!(engine.stats().detached, 1);
}

#[test]
fn detach_hands_over_the_input_the_handler_did_not_consume() {
    struct Upgrade(Vec<u8>);
    impl Events for Upgrade {
        type Context = ();
        fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
            match input.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    conn.consume(end + 1);
                    Action::Detach
                }
                None => {
                    conn.consume(0);
                    Action::None
                }
            }
        }
        fn detached(
            &mut self,
            _: &ConnInfo,
            _: &mut (),
            mut socket: Detached<'_>,
            _: &mut Loop<'_, ()>,
        ) -> Flow {
            self.0 = socket.unread_input().to_vec();
            assert!(socket.take::<FakeSocket>().is_some());
            Flow::Continue
        }
    }
    let (mut engine, _) = engine(Upgrade(vec![]), small_config(1, 64, 64));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    send(&mut engine, &mut net, id, b"UPGR");
    send(&mut engine, &mut net, id, b"ADE\nfirst frame");
    assert!(net.peer(id).detached);
    assert_eq!(engine.handler().0, b"first frame");
}

#[test]
fn detach_without_taking_the_socket_acts_as_close() {
    let rec = Rec {
        reply: Some((b"x".to_vec(), Action::Detach)),
        take_socket: false,
        ..Rec::default()
    };
    let (mut engine, mut net) = setup(rec, 2, 64, 64);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    send(&mut engine, &mut net, id, b"x");
    assert!(log(&engine).contains(&Ev::Detached(id, false)));
    assert_eq!(closed_count(&engine, id), 1);
    assert_eq!(engine.free_slots(), 2);
}

// ----- exactly one closed ------------------------------------------------------------

#[test]
fn end_of_stream_flushes_then_closes_once() {
    let rec = Rec {
        echo: true,
        ..Rec::default()
    };
    let (mut engine, mut net) = setup(rec, 2, 64, 64);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(id).window = 3;
    net.peer(id).eof = true;
    send(&mut engine, &mut net, id, b"hello");
    open_window(&mut engine, &mut net, id, 100);
    assert_eq!(net.peer(id).received, b"hello");
    assert!(net.peer(id).closed);
    assert_eq!(closed_count(&engine, id), 1);
    assert!(log(&engine).contains(&Ev::Closed(id, None)));
}

#[test]
fn an_io_error_closes_at_once_and_reports_the_error() {
    let rec = Rec {
        echo: true,
        ..Rec::default()
    };
    let (mut engine, mut net) = setup(rec, 2, 64, 64);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    let reset = IoError::with_code(IoErrorKind::ConnectionReset, 104);
    net.peer(id).error = Some(reset);
    send(&mut engine, &mut net, id, b"x");
    assert!(net.peer(id).closed);
    assert_eq!(closed_count(&engine, id), 1);
    assert!(log(&engine).contains(&Ev::Closed(id, Some(CloseError::Io(reset)))));
    // Readiness collected before the close is refused, not delivered.
    assert_eq!(
        engine.handle_conn_ready(id, Readiness::READABLE),
        Err(DriverError::StaleConn)
    );
}

#[test]
fn a_write_error_drops_pending_output_and_closes_once() {
    let rec = Rec {
        echo: true,
        ..Rec::default()
    };
    let (mut engine, mut net) = setup(rec, 2, 64, 64);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(id).window = 0;
    send(&mut engine, &mut net, id, b"abc");
    assert_eq!(engine.pending_output(id), 3);
    let pipe = IoError::with_code(IoErrorKind::BrokenPipe, 32);
    net.peer(id).error = Some(pipe);
    open_window(&mut engine, &mut net, id, 10);
    assert!(net.peer(id).closed);
    assert!(log(&engine).contains(&Ev::Closed(id, Some(CloseError::Io(pipe)))));
    assert_eq!(closed_count(&engine, id), 1);
}

// ----- shutdown ------------------------------------------------------------------------

#[test]
fn shutdown_flushes_the_trigger_closes_everyone_and_ends() {
    let rec = Rec {
        reply: Some((b"goodbye".to_vec(), Action::Shutdown)),
        ..Rec::default()
    };
    let (mut engine, mut net) = setup(rec, 4, 64, 64);
    let a = connect(&mut engine, &mut net, 0).unwrap();
    let b = connect(&mut engine, &mut net, 1).unwrap();
    let c = connect(&mut engine, &mut net, 0).unwrap();
    let waker = engine.handler().waker.clone().unwrap();
    send(&mut engine, &mut net, b, b"stop");
    assert_eq!(net.peer(b).received, b"goodbye");
    for id in [a, b, c] {
        assert!(net.peer(id).closed);
        assert_eq!(closed_count(&engine, id), 1);
    }
    assert!(net.shutdown);
    assert_eq!(net.log.last().map(String::as_str), Some("Shutdown"));
    assert!(engine.is_shut_down());
    assert_eq!(engine.free_slots(), 4);
    assert!(!waker.wake(a), "no wake after shutdown");
    assert!(engine.poll_output().is_none());
}

#[test]
fn shutdown_writes_the_trigger_output_only_as_far_as_the_socket_takes_it() {
    let rec = Rec {
        reply: Some((b"0123456789".to_vec(), Action::Shutdown)),
        ..Rec::default()
    };
    let (mut engine, mut net) = setup(rec, 2, 64, 64);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(id).window = 4;
    send(&mut engine, &mut net, id, b"x");
    assert_eq!(net.peer(id).received, b"0123", "no waiting for writability");
    assert!(net.peer(id).closed);
    assert!(net.shutdown);
}

#[test]
fn the_driver_can_shut_the_server_down_from_outside() {
    let (mut engine, mut net) = setup(Rec::default(), 4, 64, 64);
    let a = connect(&mut engine, &mut net, 0).unwrap();
    let b = connect(&mut engine, &mut net, 1).unwrap();
    net.peer(a).window = 0;
    send(&mut engine, &mut net, a, b"unsent");
    engine.handle_shutdown();
    drain(&mut engine, &mut net);
    for id in [a, b] {
        assert!(net.peer(id).closed);
        assert_eq!(closed_count(&engine, id), 1);
    }
    assert!(net.shutdown && engine.is_shut_down());
    assert_eq!(net.log.last().map(String::as_str), Some("Shutdown"));
    // Asked again, or after the end: nothing more happens.
    engine.handle_shutdown();
    assert!(engine.poll_output().is_none());
    assert_eq!(closed_count(&engine, a), 1);
}

#[test]
fn shutdown_from_tick_and_from_serving() {
    let rec = Rec {
        tick_delay: Some(Duration::from_millis(5)),
        ..Rec::default()
    };
    let (mut engine, mut net) = setup(rec, 2, 16, 16);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    engine.handler_mut().tick_flow = Flow::Shutdown;
    advance(&mut engine, &mut net, Instant::from_nanos(5_000_000));
    assert!(net.peer(id).closed && net.shutdown);

    let rec = Rec {
        serving_flow: Flow::Shutdown,
        ..Rec::default()
    };
    let (engine, net) = setup(rec, 2, 16, 16);
    assert!(net.shutdown);
    assert!(!log(&engine).iter().any(|e| matches!(e, Ev::Tick(_))));
}

// ----- wakes ---------------------------------------------------------------------------

#[test]
fn wakes_coalesce_and_never_discard_pending_output() {
    let rec = Rec {
        greeting: b"hi ".to_vec(),
        on_wake: b"ping ".to_vec(),
        ..Rec::default()
    };
    let (mut engine, notify) = engine(rec, small_config(2, 16, 64));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(id).window = 1;
    drain(&mut engine, &mut net);
    let waker = engine.handler().waker.clone().unwrap();
    assert!(waker.wake(id));
    assert!(waker.wake(id));
    assert!(waker.wake(id));
    assert_eq!(
        notify.0.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one notification"
    );
    engine.handle_wakes();
    drain(&mut engine, &mut net);
    let woken = log(&engine)
        .iter()
        .filter(|e| matches!(e, Ev::Woken(_)))
        .count();
    assert_eq!(
        woken, 1,
        "three wakes before the loop ran coalesce into one"
    );
    assert!(waker.wake(id));
    engine.handle_wakes();
    drain(&mut engine, &mut net);
    open_window(&mut engine, &mut net, id, 100);
    assert_eq!(net.peer(id).received, b"hi ping ping ");
}

#[test]
fn a_stale_wake_is_refused_and_never_reaches_the_slots_next_connection() {
    let rec = Rec {
        reply: Some((vec![], Action::Close)),
        ..Rec::default()
    };
    let (mut engine, mut net) = setup(rec, 1, 16, 16);
    let waker = engine.handler().waker.clone().unwrap();
    let old = connect(&mut engine, &mut net, 0).unwrap();
    assert!(waker.wake(old));
    send(&mut engine, &mut net, old, b"close");
    assert!(net.peer(old).closed);
    assert!(!waker.wake(old), "closed id");
    let new = connect(&mut engine, &mut net, 0).unwrap();
    assert_eq!(new.slot(), old.slot(), "the slot is reused");
    assert_ne!(new, old);
    assert!(!waker.wake(old), "stale id");
    engine.handle_wakes();
    drain(&mut engine, &mut net);
    assert!(
        !log(&engine).contains(&Ev::Woken(new)),
        "the old wake leaked into the new connection"
    );
    assert!(
        !log(&engine).contains(&Ev::Woken(old)),
        "a wake for a closed connection"
    );
    assert!(waker.wake(new));
    engine.handle_wakes();
    drain(&mut engine, &mut net);
    assert!(log(&engine).contains(&Ev::Woken(new)));
}

// ----- ticks -------------------------------------------------------------------------

#[test]
fn tick_fires_after_serving_then_on_schedule_without_drift() {
    let rec = Rec {
        tick_delay: Some(Duration::from_millis(10)),
        ..Rec::default()
    };
    let (mut engine, mut net) = setup(rec, 1, 16, 16);
    assert!(matches!(log(&engine)[0], Ev::Serving(_)));
    assert_eq!(log(&engine)[1], Ev::Tick(Instant::ZERO));
    assert_eq!(engine.poll_timeout(), Some(Instant::from_nanos(10_000_000)));
    // Early: nothing.
    advance(&mut engine, &mut net, Instant::from_nanos(9_000_000));
    assert_eq!(engine.stats().ticks, 1);
    // Late by 3 ms: it fires, and the next is still at 20 ms (no drift).
    advance(&mut engine, &mut net, Instant::from_nanos(13_000_000));
    assert_eq!(engine.stats().ticks, 2);
    assert_eq!(engine.poll_timeout(), Some(Instant::from_nanos(20_000_000)));
    // Very late: one tick, not a burst, and the schedule restarts from now.
    advance(&mut engine, &mut net, Instant::from_nanos(100_000_000));
    assert_eq!(engine.stats().ticks, 3);
    assert_eq!(
        engine.poll_timeout(),
        Some(Instant::from_nanos(110_000_000))
    );
}

#[test]
fn a_zero_tick_delay_never_spins() {
    let rec = Rec {
        tick_delay: Some(Duration::ZERO),
        ..Rec::default()
    };
    let (mut engine, mut net) = setup(rec, 1, 16, 16);
    let min_tick = engine.config().min_tick;
    assert_eq!(engine.poll_timeout(), Some(Instant::ZERO + min_tick));
    // Calling handle_time again at the same instant does not tick again.
    for _ in 0..5 {
        advance(&mut engine, &mut net, Instant::ZERO);
    }
    assert_eq!(engine.stats().ticks, 1);
    // I/O between ticks is served.
    engine.handler_mut().echo = true;
    let id = connect(&mut engine, &mut net, 0).unwrap();
    send(&mut engine, &mut net, id, b"io");
    assert_eq!(net.peer(id).received, b"io");
}

#[test]
fn the_default_tick_stops_the_ticker() {
    struct Quiet;
    impl Events for Quiet {
        type Context = ();
    }
    let (mut engine, _) = engine(Quiet, small_config(1, 8, 8));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    assert_eq!(engine.stats().ticks, 1);
    assert_eq!(engine.poll_timeout(), None);
}

// ----- prewrite / postwrite ------------------------------------------------------------

#[test]
fn prewrite_and_postwrite_report_attempted_written_and_remaining() {
    let rec = Rec {
        reply: Some((b"abcdefghij".to_vec(), Action::None)),
        ..Rec::default()
    };
    let (mut engine, mut net) = setup(rec, 1, 16, 16);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(id).window = 4;
    send(&mut engine, &mut net, id, b"x");
    open_window(&mut engine, &mut net, id, 100);
    let writes: Vec<&Ev> = log(&engine)
        .iter()
        .filter(|e| matches!(e, Ev::Pre(..) | Ev::Post(..)))
        .collect();
    assert_eq!(
        writes,
        [
            &Ev::Pre(id, 10),
            &Ev::Post(id, 4, 6),
            &Ev::Pre(id, 6),
            &Ev::Post(id, 6, 0)
        ]
    );
}

// ----- input carry-over ----------------------------------------------------------------

#[test]
fn unconsumed_input_is_kept_for_the_next_data_call() {
    let rec = Rec {
        lines: true,
        ..Rec::default()
    };
    let (mut engine, mut net) = setup(rec, 1, 32, 64);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    send(&mut engine, &mut net, id, b"one\ntw");
    assert_eq!(engine.pending_input(id), 2);
    send(&mut engine, &mut net, id, b"o\nthr");
    send(&mut engine, &mut net, id, b"ee\n");
    assert_eq!(net.peer(id).received, b"one\ntwo\nthree\n");
    let data: Vec<Vec<u8>> = log(&engine)
        .iter()
        .filter_map(|e| match e {
            Ev::Data(_, d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        data,
        [
            b"one\ntw".to_vec(),
            b"two\nthr".to_vec(),
            b"three\n".to_vec()
        ]
    );
}

#[test]
fn a_whole_request_and_reply_never_touch_the_connections_own_buffers() {
    let rec = Rec {
        echo: true,
        ..Rec::default()
    };
    let (mut engine, mut net) = setup(rec, 4, 64, 64);
    let ids: Vec<ConnId> = (0..4)
        .map(|_| connect(&mut engine, &mut net, 0).unwrap())
        .collect();
    for round in 0..10u8 {
        for &id in &ids {
            send(&mut engine, &mut net, id, &[round; 20]);
        }
    }
    for &id in &ids {
        assert_eq!(net.peer(id).received.len(), 200);
    }
    assert_eq!(engine.stats().output_spills, 0);
    assert_eq!(engine.stats().input_carries, 0);
}

// ----- backpressure ----------------------------------------------------------------------

#[test]
fn full_output_stops_reading_until_it_drains_and_loses_nothing() {
    let rec = Rec {
        echo: true,
        ..Rec::default()
    };
    let (mut engine, mut net) = setup(rec, 2, 32, 16);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(id).window = 0;
    let payload: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    net.peer(id).inbound.extend(&payload);
    engine.handle_conn_ready(id, Readiness::READABLE).unwrap();
    drain(&mut engine, &mut net);
    assert_eq!(engine.pending_output(id), 16, "output full");
    assert_eq!(net.peer(id).interest, Interest::WRITE, "reading stopped");
    assert!(
        net.peer(id).inbound.len() > 900,
        "the rest stays in the socket"
    );
    let mut rounds = 0;
    while net.peer(id).received.len() < payload.len() {
        open_window(&mut engine, &mut net, id, 7);
        // The client's data is still there for the engine to read when it resumes.
        let _ = engine.handle_conn_ready(id, Readiness::READABLE);
        drain(&mut engine, &mut net);
        rounds += 1;
        assert!(rounds < 10_000);
    }
    assert_eq!(net.peer(id).received, payload);
    assert!(!net.peer(id).closed);
    assert_eq!(closed_count(&engine, id), 0);
}

#[test]
fn the_handler_sees_how_much_room_is_left() {
    struct Room(Vec<usize>);
    impl Events for Room {
        type Context = ();
        fn data(&mut self, conn: &mut Conn<'_, ()>, _: &[u8]) -> Action {
            self.0.push(conn.room());
            let _ = conn.write(b"12345");
            self.0.push(conn.room());
            assert!(
                conn.write(&[0; 100]).is_err(),
                "a write that does not fit is refused"
            );
            self.0.push(conn.room());
            Action::None
        }
    }
    let (mut engine, _) = engine(Room(vec![]), small_config(1, 16, 16));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(id).window = 0;
    send(&mut engine, &mut net, id, b"a");
    assert_eq!(engine.handler().0, [16, 11, 11]);
}

// ----- frame too large -------------------------------------------------------------------

#[test]
fn a_full_input_buffer_with_nothing_consumed_closes_with_frame_too_large() {
    let rec = Rec {
        hoard: true,
        reject_full: b"too big\n".to_vec(),
        ..Rec::default()
    };
    let (mut engine, mut net) = setup(rec, 2, 8, 16);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    let other = connect(&mut engine, &mut net, 0).unwrap();
    send(&mut engine, &mut net, id, b"1234");
    assert!(!net.peer(id).write_shut, "a partial frame is fine");
    send(&mut engine, &mut net, id, b"56789abc");
    // The reply written with the full buffer in hand goes out, then the sending side
    // is shut: the peer reads the reply and the end of the stream, no reset.
    assert_eq!(net.peer(id).received, b"too big\n");
    assert!(net.peer(id).write_shut);
    assert!(
        !net.peer(id).closed,
        "lingering: the peer may still be sending"
    );
    assert!(
        net.peer(id).inbound.is_empty(),
        "what it sends is read and discarded"
    );
    send(&mut engine, &mut net, id, b"more of the frame");
    assert!(net.peer(id).inbound.is_empty());
    let data_calls = log(&engine)
        .iter()
        .filter(|e| matches!(e, Ev::Data(i, _) if *i == id))
        .count();
    assert_eq!(
        data_calls, 2,
        "the discarded input never reaches the handler"
    );
    // The peer closes its side: the socket closes, `closed` says why.
    half_close(&mut engine, &mut net, id);
    assert!(net.peer(id).closed && !net.peer(id).aborted);
    assert!(log(&engine).contains(&Ev::Closed(
        id,
        Some(CloseError::FrameTooLarge { capacity: 8 })
    )));
    assert_eq!(engine.stats().frame_too_large, 1);
    assert!(!net.peer(other).closed, "the others keep being served");
    assert_eq!(engine.free_slots(), 1);
}

#[test]
fn a_lingering_close_ends_at_its_deadline_if_the_peer_never_closes() {
    let rec = Rec {
        hoard: true,
        ..Rec::default()
    };
    let (mut engine, mut net) = setup(rec, 1, 4, 16);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    send(&mut engine, &mut net, id, b"abcd");
    assert!(net.peer(id).write_shut && !net.peer(id).closed);
    let linger = engine.config().linger;
    let start = net.now;
    assert_eq!(engine.poll_timeout(), Some(start + linger));
    advance(&mut engine, &mut net, start + linger / 2);
    assert!(!net.peer(id).closed, "never early");
    advance(&mut engine, &mut net, start + linger);
    assert!(net.peer(id).closed);
    assert!(log(&engine).contains(&Ev::Closed(
        id,
        Some(CloseError::FrameTooLarge { capacity: 4 })
    )));
}

#[test]
fn a_close_with_unconsumed_input_lingers_and_a_plain_close_does_not() {
    // Consumes one line per call and closes on "quit"; what follows "quit" in the same
    // read is left unconsumed, so the peer may still be sending.
    struct Quit;
    impl Events for Quit {
        type Context = ();
        fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
            let Some(end) = input.iter().position(|&b| b == b'\n') else {
                conn.consume(0);
                return Action::None;
            };
            conn.consume(end + 1);
            if &input[..end] == b"quit" {
                conn.write(b"bye\n").unwrap();
                return Action::Close;
            }
            Action::None
        }
    }
    let (mut engine, _) = engine(Quit, small_config(2, 64, 64));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let a = connect(&mut engine, &mut net, 0).unwrap();
    send(&mut engine, &mut net, a, b"quit\nGET x\n");
    assert_eq!(net.peer(a).received, b"bye\n");
    assert!(net.peer(a).write_shut && !net.peer(a).closed, "lingers");
    half_close(&mut engine, &mut net, a);
    assert!(net.peer(a).closed);
    let b = connect(&mut engine, &mut net, 0).unwrap();
    send(&mut engine, &mut net, b, b"quit\n");
    assert!(
        net.peer(b).closed && !net.peer(b).write_shut,
        "nothing unread: a plain close"
    );
}

// ----- pool full -------------------------------------------------------------------------

#[test]
fn a_full_pool_refuses_new_connections_and_keeps_serving() {
    let rec = Rec {
        echo: true,
        ..Rec::default()
    };
    let (mut engine, mut net) = setup(rec, 2, 16, 16);
    let a = connect(&mut engine, &mut net, 0).unwrap();
    let b = connect(&mut engine, &mut net, 0).unwrap();
    assert!(connect(&mut engine, &mut net, 0).is_none());
    assert!(connect(&mut engine, &mut net, 1).is_none());
    assert_eq!(net.refused, 2);
    assert_eq!(engine.stats().refused_pool_full, 2);
    send(&mut engine, &mut net, a, b"still");
    send(&mut engine, &mut net, b, b"here");
    assert_eq!(net.peer(a).received, b"still");
    assert_eq!(net.peer(b).received, b"here");
    half_close(&mut engine, &mut net, a);
    assert!(
        connect(&mut engine, &mut net, 0).is_some(),
        "a freed slot is used again"
    );
}

// ----- accept back-off ---------------------------------------------------------------------

#[test]
fn accept_exhaustion_pauses_the_listener_with_a_doubling_back_off() {
    let (mut engine, mut net) = setup(Rec::default(), 2, 16, 16);
    net.accept_error = Some(AcceptError::Exhausted);
    assert!(connect(&mut engine, &mut net, 0).is_none());
    assert!(net.paused[0]);
    assert_eq!(engine.stats().accept_pauses, 1);
    // While paused the listener is not polled, however often it reports ready.
    for _ in 0..10 {
        engine
            .handle_listener_ready(ListenerId::new(0).unwrap())
            .unwrap();
        drain(&mut engine, &mut net);
    }
    assert_eq!(
        net.log.iter().filter(|l| l.starts_with("Accept")).count(),
        1
    );
    let backoff = engine.config().accept_backoff;
    assert_eq!(engine.poll_timeout(), Some(Instant::ZERO + backoff));
    // Back-off over: resumed, and the waiting connection is accepted.
    net.accept_error = Some(AcceptError::Exhausted);
    advance(&mut engine, &mut net, Instant::ZERO + backoff);
    assert!(net.paused[0], "failed again");
    let t1 = Instant::ZERO + backoff;
    assert_eq!(
        engine.poll_timeout(),
        Some(t1 + backoff * 2),
        "back-off doubles"
    );
    advance(&mut engine, &mut net, t1 + backoff * 2);
    assert!(!net.paused[0]);
    assert_eq!(net.accepted.len(), 1);
    // Other listeners were never affected.
    assert!(connect(&mut engine, &mut net, 1).is_some());
}

#[test]
fn an_aborted_accept_does_not_pause() {
    let (mut engine, mut net) = setup(Rec::default(), 2, 16, 16);
    net.accept_error = Some(AcceptError::Aborted);
    assert!(
        connect(&mut engine, &mut net, 0).is_some(),
        "the next connection is accepted"
    );
    assert!(!net.paused[0]);
}

// ----- driver misuse ---------------------------------------------------------------------

// A report for an operation not asked for, a second report, or a report between an
// output and its own do not compile: see the `compile_fail` examples in the crate docs.

#[test]
fn readiness_for_an_unknown_listener_or_a_stale_id_is_refused() {
    let (mut engine, mut net) = setup(Rec::default(), 2, 16, 16);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    assert_eq!(
        engine.handle_listener_ready(ListenerId::new(7).unwrap()),
        Err(DriverError::UnknownListener)
    );
    let forged = ConnId::from_u64(id.to_u64() + (1 << 32));
    assert_eq!(
        engine.handle_conn_ready(forged, Readiness::default()),
        Err(DriverError::StaleConn)
    );
    drain(&mut engine, &mut net);
    assert!(!net.peer(id).closed, "nothing changed");
}

/// Takes outputs: `f` gets every `Read`, `Transmit` and `Detach` until it returns a
/// result; the rest are performed as usual.
fn until_op<R>(
    engine: &mut TestEngine<Rec>,
    net: &mut Net,
    mut f: impl FnMut(TestOutput<'_, Rec>) -> Option<R>,
) -> R {
    loop {
        let out = engine.poll_output().expect("the operation was asked for");
        if matches!(
            out,
            Output::Read(_) | Output::Transmit(_) | Output::Detach(_)
        ) {
            if let Some(r) = f(out) {
                return r;
            }
            continue;
        }
        perform(out, net);
    }
}

#[test]
fn operations_dropped_unreported_count_as_would_block() {
    let rec = Rec {
        echo: true,
        ..Rec::default()
    };
    let (mut engine, mut net) = setup(rec, 2, 16, 16);
    // An accept dropped: the backlog waits for the next readiness report.
    net.backlog[0].push_back(addr(9));
    engine
        .handle_listener_ready(ListenerId::new(0).unwrap())
        .unwrap();
    match engine.poll_output() {
        Some(Output::Accept(accept)) => drop(accept),
        other => panic!("{other:?}"),
    }
    assert!(
        engine.poll_output().is_none(),
        "no accept until ready again"
    );
    let id = connect(&mut engine, &mut net, 0).unwrap();
    // A read dropped: the bytes wait in the socket for the next readiness report.
    net.peer(id).inbound.extend(b"ping");
    engine.handle_conn_ready(id, Readiness::READABLE).unwrap();
    until_op(&mut engine, &mut net, |out| match out {
        Output::Read(read) => {
            drop(read);
            Some(())
        }
        _ => None,
    });
    assert!(engine.poll_output().is_none(), "no read until ready again");
    assert!(net.peer(id).received.is_empty());
    // A transmit dropped: the output stays pending and waits for writability.
    // (The read below stands in for the socket: it takes the bytes waiting there.)
    net.peer(id).window = 0;
    net.peer(id).inbound.clear();
    engine.handle_conn_ready(id, Readiness::READABLE).unwrap();
    until_op(&mut engine, &mut net, |out| match out {
        Output::Transmit(transmit) => {
            drop(transmit);
            Some(())
        }
        Output::Read(mut read) => {
            read.buf()[..5].copy_from_slice(b"ping!");
            read.done(5);
            None
        }
        _ => None,
    });
    drain(&mut engine, &mut net);
    assert_eq!(net.peer(id).interest, Interest::WRITE, "waits to write");
    assert_eq!(engine.pending_output(id), 5);
    open_window(&mut engine, &mut net, id, 100);
    assert_eq!(net.peer(id).received, b"ping!", "nothing lost");
    let posts: Vec<_> = log(&engine)
        .iter()
        .filter(|e| matches!(e, Ev::Post(..)))
        .collect();
    assert_eq!(posts, [&Ev::Post(id, 0, 5), &Ev::Post(id, 5, 0)]);
}

#[test]
fn hangup_is_read_even_while_reading_is_paused() {
    let rec = Rec {
        echo: true,
        ..Rec::default()
    };
    let (mut engine, mut net) = setup(rec, 1, 16, 8);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    net.peer(id).window = 0;
    send(&mut engine, &mut net, id, b"0123456789");
    assert_eq!(net.peer(id).interest, Interest::WRITE);
    net.peer(id).error = Some(IoError::new(IoErrorKind::ConnectionReset));
    engine.handle_conn_ready(id, Readiness::HANGUP).unwrap();
    drain(&mut engine, &mut net);
    assert!(net.peer(id).closed);
    assert_eq!(closed_count(&engine, id), 1);
}

// ----- storage -----------------------------------------------------------------------

#[test]
fn a_large_engine_keeps_its_pools_off_the_stack() {
    // The engine value is small whatever its capacity: every pool is in the storage
    // the caller passes (here heap vectors), so nothing large is ever on the stack.
    // (Fixed tables only: the largest is the batch of sends, `MAX_BATCH` entries of 8
    // bytes.)
    let size = std::mem::size_of::<TestEngine<Rec>>();
    assert!(size < 2304 + 8 * evio_proto::MAX_BATCH, "{size} bytes");
    let (mut engine, _) = engine(Rec::default(), small_config(100_000, 256, 256));
    assert_eq!(engine.free_slots(), 100_000);
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    engine.handler_mut().echo = true;
    send(&mut engine, &mut net, id, b"big");
    assert_eq!(net.peer(id).received, b"big");
}

#[test]
fn storage_that_does_not_fit_the_configuration_is_refused() {
    use evio_proto::{BuildError, Config, Engine, Slot};
    let config = small_config(4, 16, 16);
    let slots: Vec<Slot<u32>> = (0..3).map(|_| Slot::new()).collect();
    let err = Engine::new(
        Rec::default(),
        config,
        slots,
        vec![0; config.bytes_needed()],
        None,
    )
    .err()
    .unwrap();
    assert_eq!(
        err,
        BuildError::SlotStorage {
            needed: 4,
            given: 3
        }
    );
    let slots: Vec<Slot<u32>> = (0..4).map(|_| Slot::new()).collect();
    let err = Engine::new(Rec::default(), config, slots, vec![0; 10], None)
        .err()
        .unwrap();
    assert_eq!(
        err,
        BuildError::ByteStorage {
            needed: config.bytes_needed(),
            given: 10
        }
    );
    let zero = Config {
        max_connections: 0,
        ..config
    };
    let err = Engine::new(
        Rec::default(),
        zero,
        Vec::<Slot<u32>>::new(),
        vec![0; 64],
        None,
    )
    .err()
    .unwrap();
    assert_eq!(err, BuildError::ZeroCapacity("max_connections"));
    assert_eq!(err.to_string(), "max_connections must be at least 1");
    // A configuration no memory can hold is refused before any storage is reserved,
    // and sizing it never overflows.
    let huge = Config {
        max_connections: evio_proto::MAX_SLOTS,
        input_capacity: u32::MAX as usize,
        output_capacity: u32::MAX as usize,
        ..config
    };
    if usize::BITS == 64 {
        // 2^24 slots of 8 GiB: 2^57 bytes, which the address space could hold; the
        // allocation is what refuses it (`BuildError::OutOfMemory`).
        assert_eq!(huge.validate(), Ok(huge.bytes_needed()));
        assert!(huge.bytes_needed() > 1 << 56);
    } else {
        assert_eq!(huge.validate(), Err(BuildError::StorageTooLarge));
        assert_eq!(huge.bytes_needed(), usize::MAX);
    }
    assert_eq!(
        Config {
            max_connections: evio_proto::MAX_SLOTS * 2,
            input_capacity: 16,
            output_capacity: 16,
            ..config
        }
        .validate(),
        Err(BuildError::TooManyConnections),
        "a connection id holds 2^24 slots"
    );
    assert_eq!(config.validate(), Ok(config.bytes_needed()));
}

#[test]
fn a_detach_the_driver_could_not_perform_ends_as_a_close_with_an_error() {
    for report in ["failed", "dropped", "empty"] {
        let rec = Rec {
            reply: Some((vec![], Action::Detach)),
            take_socket: true,
            ..Rec::default()
        };
        let (mut engine, mut net) = setup(rec, 1, 16, 16);
        let id = connect(&mut engine, &mut net, 0).unwrap();
        net.peer(id).inbound.extend(b"x");
        engine.handle_conn_ready(id, Readiness::READABLE).unwrap();
        // Answer the Detach as a driver whose socket could not leave the poller does.
        until_op(&mut engine, &mut net, |out| match out {
            Output::Read(mut read) => {
                read.buf()[0] = b'x';
                read.done(1);
                None
            }
            Output::Detach(detach) => {
                assert_eq!(detach.id(), id);
                match report {
                    "failed" => detach.failed(),
                    "dropped" => drop(detach),
                    _ => detach.done(Detached::new(&mut None::<FakeSocket>)),
                }
                Some(())
            }
            _ => None,
        });
        // The driver closed the socket it could not hand over.
        net.peer(id).closed = true;
        drain(&mut engine, &mut net);
        let io = CloseError::Io(IoError::new(IoErrorKind::Other));
        assert!(log(&engine).contains(&Ev::Closed(id, Some(io))), "{report}");
        assert!(!log(&engine).iter().any(|e| matches!(e, Ev::Detached(..))));
        assert_eq!(engine.free_slots(), 1);
        // And the server goes on: the slot takes the next connection.
        assert!(connect(&mut engine, &mut net, 0).is_some());
    }
}
