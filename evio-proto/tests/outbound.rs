//! Outbound connections and relays, from outside: a connect ends in exactly one
//! `opened` or one `closed` (never both), writes made while connecting wait, the
//! engine owns the timeout, and a relay whose peer is full waits for it instead of
//! being closed or polled.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use evio_proto::{
    Action, Addr, CloseError, Config, Conn, ConnId, ConnInfo, ConnState, ConnectAddr, ConnectError,
    Events, Flow, Instant, IoError, IoErrorKind, Loop, MAX_PENDING_UNIX_CONNECTS, MAX_UNIX_PATH,
};

const MS: Duration = Duration::from_millis(1);

fn at(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

fn backend() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 6379))
}

/// A relay: every accepted client gets a connection to `to`, and each side's input is
/// forwarded to the other as far as it fits (the rest left unconsumed, so the engine
/// makes the side wait). Records what the engine told it.
#[derive(Default)]
struct Relay {
    to: Option<ConnectAddr<'static>>,
    /// Keep a side whose peer ended open and pass the end on.
    half_close: bool,
    /// Write before the connect is answered.
    greeting: &'static [u8],
    opened: Vec<ConnInfo>,
    closed: Vec<(ConnId, Option<CloseError>)>,
    refused: Vec<ConnectError>,
    data_calls: usize,
}

impl Events for Relay {
    type Context = Option<ConnId>;

    fn opened(&mut self, conn: &mut Conn<'_, Option<ConnId>>) -> Action {
        self.opened.push(*conn.info());
        if conn.info().outbound {
            return Action::None;
        }
        let me = conn.id();
        let Some(to) = self.to else {
            return Action::None;
        };
        match conn.others().connect(to, 100 * MS, Some(me)) {
            Ok(peer) => {
                *conn.context() = Some(peer);
                if !self.greeting.is_empty() {
                    conn.others().write(peer, self.greeting).unwrap();
                }
                assert_eq!(conn.others().state(peer), Some(ConnState::Connecting));
                assert!(!conn.others().is_open(peer), "not open until it connects");
                Action::None
            }
            Err(e) => {
                self.refused.push(e);
                Action::Close
            }
        }
    }

    fn data(&mut self, conn: &mut Conn<'_, Option<ConnId>>, input: &[u8]) -> Action {
        self.data_calls += 1;
        let Some(peer) = *conn.context() else {
            return Action::Close;
        };
        match conn.others().write_some(peer, input) {
            Ok(n) => conn.consume(n),
            Err(_) => return Action::Close,
        }
        Action::None
    }

    fn input_ended(&mut self, conn: &mut Conn<'_, Option<ConnId>>) -> Action {
        let peer = *conn.context();
        match peer {
            Some(peer) if self.half_close && conn.others().shutdown_write(peer).is_ok() => {
                Action::None
            }
            _ => Action::Close,
        }
    }

    fn closed(
        &mut self,
        info: &ConnInfo,
        peer: Option<ConnId>,
        error: Option<CloseError>,
        others: &mut Loop<'_, Option<ConnId>>,
    ) -> Flow {
        self.closed.push((info.id, error));
        if let Some(peer) = peer {
            let _ = others.close(peer);
        }
        Flow::Continue
    }
}

fn relay(to: ConnectAddr<'static>) -> Relay {
    Relay {
        to: Some(to),
        ..Relay::default()
    }
}

fn config() -> Config {
    small_config(8, 16, 32)
}

fn closed_of(r: &Relay, id: ConnId) -> Vec<Option<CloseError>> {
    r.closed
        .iter()
        .filter(|(c, _)| *c == id)
        .map(|(_, e)| *e)
        .collect()
}

fn opened(r: &Relay, id: ConnId) -> bool {
    r.opened.iter().any(|i| i.id == id)
}

/// A client connects; returns it and the outbound connection made for it.
fn client_and_backend(engine: &mut TestEngine<Relay>, net: &mut Net) -> (ConnId, ConnId) {
    let client = connect(engine, net, 0).unwrap();
    let (backend, _) = *net.connects.last().expect("a connect was asked for");
    (client, backend)
}

#[test]
fn a_connect_that_succeeds_opens_once_and_sends_what_was_written_before() {
    let (mut engine, _) = engine(
        Relay {
            greeting: b"HELLO ",
            ..relay(backend().into())
        },
        config(),
    );
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let (client, up) = client_and_backend(&mut engine, &mut net);
    assert_eq!(net.connects, [(up, "tcp://127.0.0.1:6379".to_string())]);
    let info = *engine
        .handler()
        .opened
        .iter()
        .find(|i| i.id == up)
        .expect("opened for the outbound connection");
    assert!(info.outbound);
    assert_eq!(info.peer, Addr::Ip(backend()));
    assert_eq!(info.local, Addr::Ip(addr(50000 + up.slot() as u16)));
    assert!(
        !engine.handler().opened[0].outbound,
        "the client was accepted"
    );
    assert_eq!(net.peer(up).received, b"HELLO ");
    // Both ways, in order.
    send(&mut engine, &mut net, client, b"PING\r\n");
    assert_eq!(net.peer(up).received, b"HELLO PING\r\n");
    send(&mut engine, &mut net, up, b"+PONG\r\n");
    assert_eq!(net.peer(client).received, b"+PONG\r\n");
    assert_eq!(engine.stats().connected, 1);
    assert!(engine.handler().closed.is_empty());
}

#[test]
fn a_refused_connect_calls_closed_once_with_the_error_and_never_opened() {
    let refused = IoError::with_code(IoErrorKind::ConnectionRefused, 111);
    let (mut engine, _) = engine(relay(backend().into()), config());
    let mut net = Net::new(1);
    net.connect_plans.push_back(ConnectPlan::Refuse(refused));
    start(&mut engine, &mut net);
    let (client, up) = client_and_backend(&mut engine, &mut net);
    let h = engine.handler();
    assert!(!opened(h, up));
    assert_eq!(closed_of(h, up), [Some(CloseError::Connect(refused))]);
    assert!(net.peer(up).closed, "the socket is closed");
    // The relay closed its client in `closed`.
    assert_eq!(closed_of(engine.handler(), client), [None]);
    assert_eq!(engine.stats().connect_failures, 1);
    assert_eq!(engine.open_connections(), 0);
}

#[test]
fn a_connect_that_fails_at_once_keeps_no_socket() {
    let gone = IoError::with_code(IoErrorKind::ConnectionRefused, 2);
    let (mut engine, _) = engine(relay(ConnectAddr::Unix("/run/none.sock")), config());
    let mut net = Net::new(1);
    net.connect_plans.push_back(ConnectPlan::FailAtOnce(gone));
    start(&mut engine, &mut net);
    let (_, up) = client_and_backend(&mut engine, &mut net);
    assert_eq!(net.connects[0].1, "unix:///run/none.sock");
    assert!(!net.peers.contains_key(&up.to_u64()), "no socket was kept");
    assert!(!opened(engine.handler(), up));
    assert_eq!(
        closed_of(engine.handler(), up),
        [Some(CloseError::Connect(gone))]
    );
    assert!(
        !net.log
            .iter()
            .any(|l| l.starts_with(&format!("Close({up:?}"))),
        "no Close for a socket the driver does not have: {:?}",
        net.log
    );
}

#[test]
fn the_engine_gives_up_on_a_connect_at_its_timeout() {
    let (mut engine, _) = engine(relay(backend().into()), config());
    let mut net = Net::new(1);
    net.connect_plans.push_back(ConnectPlan::Hang);
    start(&mut engine, &mut net);
    let (_, up) = client_and_backend(&mut engine, &mut net);
    assert_eq!(engine.poll_timeout(), Some(at(100)));
    advance(&mut engine, &mut net, at(99));
    assert!(engine.handler().closed.is_empty(), "never early");
    advance(&mut engine, &mut net, at(100));
    assert_eq!(
        closed_of(engine.handler(), up),
        [Some(CloseError::ConnectTimeout)]
    );
    assert!(net.peer(up).closed);
    assert!(!opened(engine.handler(), up));
    assert_eq!(engine.stats().connect_timeouts, 1);
}

#[test]
fn a_connect_abandoned_before_or_after_it_started_ends_in_one_closed() {
    /// Connects twice from a tick: closes the first in the same callback (before the
    /// driver was asked), aborts the second once it is under way.
    #[derive(Default)]
    struct Abandon {
        ids: Vec<ConnId>,
        closed: Vec<(ConnId, Option<CloseError>)>,
        opened: usize,
    }
    impl Events for Abandon {
        type Context = ();
        fn tick(&mut self, others: &mut Loop<'_, ()>) -> evio_proto::Tick {
            let to = ConnectAddr::Ip(backend());
            if self.ids.is_empty() {
                let a = others.connect(to, 100 * MS, ()).unwrap();
                others.close(a).unwrap();
                assert_eq!(others.state(a), Some(ConnState::Aborting));
                let b = others.connect(to, 100 * MS, ()).unwrap();
                self.ids = vec![a, b];
                evio_proto::Tick::after(10 * MS)
            } else {
                others.abort(self.ids[1]).unwrap();
                evio_proto::Tick::stop()
            }
        }
        fn opened(&mut self, _: &mut Conn<'_, ()>) -> Action {
            self.opened += 1;
            Action::None
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
    let (mut engine, _) = engine(Abandon::default(), config());
    let mut net = Net::new(1);
    net.connect_plans.push_back(ConnectPlan::Hang);
    start(&mut engine, &mut net);
    let (a, b) = (engine.handler().ids[0], engine.handler().ids[1]);
    assert_eq!(engine.handler().closed, [(a, None)]);
    assert_eq!(net.connects.len(), 1, "the first was never asked for");
    assert_eq!(net.connects[0].0, b);
    advance(&mut engine, &mut net, at(10));
    assert_eq!(engine.handler().closed, [(a, None), (b, None)]);
    assert!(net.peer(b).aborted);
    assert_eq!(engine.handler().opened, 0);
    assert_eq!(engine.open_connections(), 0);
    advance(&mut engine, &mut net, at(200));
    assert_eq!(engine.handler().closed.len(), 2, "no timeout after the end");
}

#[test]
fn connects_are_refused_when_nothing_can_start() {
    #[derive(Default)]
    struct Greedy {
        results: Vec<Result<ConnId, ConnectError>>,
    }
    impl Events for Greedy {
        type Context = ();
        fn tick(&mut self, others: &mut Loop<'_, ()>) -> evio_proto::Tick {
            let long = "/".repeat(MAX_UNIX_PATH + 1);
            self.results
                .push(others.connect(ConnectAddr::Unix(&long), MS, ()));
            for _ in 0..MAX_PENDING_UNIX_CONNECTS + 1 {
                self.results
                    .push(others.connect(ConnectAddr::Unix("/tmp/x.sock"), MS, ()));
            }
            for _ in 0..4 {
                self.results
                    .push(others.connect(ConnectAddr::Ip(backend()), MS, ()));
            }
            evio_proto::Tick::stop()
        }
    }
    let (mut engine, _) = engine(Greedy::default(), small_config(6, 16, 16));
    let mut net = Net::new(1);
    net.connect_plans.extend([ConnectPlan::Hang; 6]);
    start(&mut engine, &mut net);
    let r = &engine.handler().results;
    assert_eq!(
        r[0],
        Err(ConnectError::PathTooLong {
            len: MAX_UNIX_PATH + 1
        })
    );
    let unix = &r[1..MAX_PENDING_UNIX_CONNECTS + 2];
    assert!(unix[..MAX_PENDING_UNIX_CONNECTS].iter().all(Result::is_ok));
    assert_eq!(
        unix[MAX_PENDING_UNIX_CONNECTS],
        Err(ConnectError::TooManyPending)
    );
    let tcp = &r[MAX_PENDING_UNIX_CONNECTS + 2..];
    assert_eq!(tcp[..2].iter().filter(|r| r.is_ok()).count(), 2);
    assert_eq!(
        tcp[2..],
        [Err(ConnectError::PoolFull), Err(ConnectError::PoolFull)]
    );
    assert_eq!(engine.free_slots(), 0);
    // Every unix connect reached the driver with its path.
    assert_eq!(
        net.connects
            .iter()
            .filter(|(_, a)| a == "unix:///tmp/x.sock")
            .count(),
        MAX_PENDING_UNIX_CONNECTS
    );
}

#[test]
fn a_shutdown_closes_connects_started_or_not_once_each() {
    #[derive(Default)]
    struct ConnectThenStop {
        closed: usize,
        step: u8,
    }
    impl Events for ConnectThenStop {
        type Context = ();
        fn tick(&mut self, others: &mut Loop<'_, ()>) -> evio_proto::Tick {
            self.step += 1;
            others
                .connect(ConnectAddr::Ip(backend()), 100 * MS, ())
                .unwrap();
            evio_proto::Tick::after(MS)
        }
        fn server_woken(&mut self, others: &mut Loop<'_, ()>) -> Flow {
            others
                .connect(ConnectAddr::Ip(backend()), 100 * MS, ())
                .unwrap();
            Flow::Shutdown
        }
        fn closed(
            &mut self,
            _: &ConnInfo,
            _: (),
            _: Option<CloseError>,
            _: &mut Loop<'_, ()>,
        ) -> Flow {
            self.closed += 1;
            Flow::Continue
        }
    }
    let (mut engine, _) = engine(ConnectThenStop::default(), config());
    let mut net = Net::new(1);
    net.connect_plans.extend([ConnectPlan::Hang; 4]);
    start(&mut engine, &mut net);
    assert_eq!(net.connects.len(), 1);
    engine.waker().unwrap().wake_server();
    engine.handle_wakes();
    drain(&mut engine, &mut net);
    assert!(net.shutdown);
    assert_eq!(
        engine.handler().closed,
        2,
        "the started one and the one never asked for"
    );
    assert_eq!(net.connects.len(), 1);
    assert!(net.peer(net.connects[0].0).closed);
}

#[test]
fn a_relay_whose_peer_is_full_waits_for_it_instead_of_closing() {
    let (mut engine, _) = engine(relay(backend().into()), config());
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let (client, up) = client_and_backend(&mut engine, &mut net);
    net.peer(up).window = 0;
    // 16 bytes fill the client's input buffer; 32 fit the backend's output; the rest
    // waits. The old engine closed the client with FrameTooLarge here.
    let message: Vec<u8> = (0..100u8).collect();
    send(&mut engine, &mut net, client, &message);
    assert!(
        engine.handler().closed.is_empty(),
        "{:?}",
        engine.handler().closed
    );
    assert_eq!(engine.pending_output(up), 32);
    assert_eq!(engine.pending_input(client), 16);
    assert!(
        !net.peer(client).interest.is_readable(),
        "not read while it waits"
    );
    let calls = engine.handler().data_calls;
    // The backend takes a little at a time: each drain resumes the client.
    for _ in 0..20 {
        open_window(&mut engine, &mut net, up, 8);
    }
    open_window(&mut engine, &mut net, up, usize::MAX / 2);
    assert_eq!(net.peer(up).received, message, "every byte, in order");
    assert!(engine.handler().closed.is_empty());
    assert!(engine.stats().relay_waits > 0);
    assert!(
        engine.handler().data_calls - calls < 40,
        "resumed on drains, not polled: {} calls",
        engine.handler().data_calls - calls
    );
    assert!(net.peer(client).interest.is_readable(), "reading again");
}

#[test]
fn a_waiting_relay_goes_on_when_its_peer_goes() {
    let (mut engine, _) = engine(relay(backend().into()), config());
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let (client, up) = client_and_backend(&mut engine, &mut net);
    net.peer(up).window = 0;
    send(&mut engine, &mut net, client, &[7; 60]);
    assert_eq!(engine.pending_input(client), 16);
    // The backend resets while the client waits for it: the relay closes the client,
    // which lingers over the input it left (its peer may still be sending), then
    // closes when its peer does.
    net.peer(up).error = Some(IoError::new(IoErrorKind::ConnectionReset));
    engine
        .handle_conn_ready(up, evio_proto::Readiness::HANGUP)
        .unwrap();
    drain(&mut engine, &mut net);
    assert_eq!(closed_of(engine.handler(), up).len(), 1);
    assert!(net.peer(client).write_shut, "lingering");
    let calls = engine.handler().data_calls;
    half_close(&mut engine, &mut net, client);
    assert_eq!(
        engine.handler().data_calls,
        calls,
        "no input after its close"
    );
    assert_eq!(closed_of(engine.handler(), client), [None]);
    assert_eq!(engine.open_connections(), 0);

    // Without a close from the relay, the waiter is given its input again once its
    // peer has gone, and decides itself.
    #[derive(Default)]
    struct Quiet(Relay);
    impl Events for Quiet {
        type Context = Option<ConnId>;
        evio_proto::delegate_events!(self.0, except closed);
    }
    let (mut engine, _) = common::engine(Quiet(relay(backend().into())), config());
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let client = connect(&mut engine, &mut net, 0).unwrap();
    let up = net.connects[0].0;
    net.peer(up).window = 0;
    send(&mut engine, &mut net, client, &[7; 60]);
    let calls = engine.handler().0.data_calls;
    net.peer(up).error = Some(IoError::new(IoErrorKind::ConnectionReset));
    engine
        .handle_conn_ready(up, evio_proto::Readiness::HANGUP)
        .unwrap();
    drain(&mut engine, &mut net);
    assert_eq!(
        engine.handler().0.data_calls,
        calls + 1,
        "given its input again"
    );
    assert!(net.peer(client).closed || net.peer(client).write_shut);
}

#[test]
fn an_explicit_wait_holds_input_until_the_chosen_connection_drains() {
    /// Forwards whole 4-byte records to the backend only when all of one fits, and
    /// otherwise waits for it by name (no write was cut, so nothing implicit).
    #[derive(Default)]
    struct Records {
        inner: Relay,
    }
    impl Events for Records {
        type Context = Option<ConnId>;
        evio_proto::delegate_events!(self.inner, except data);
        fn data(&mut self, conn: &mut Conn<'_, Option<ConnId>>, input: &[u8]) -> Action {
            let Some(peer) = *conn.context() else {
                return Action::Close;
            };
            let mut used = 0;
            for record in input.chunks_exact(4) {
                if conn.others().write(peer, record).is_err() {
                    break;
                }
                used += 4;
            }
            conn.consume(used);
            if used < input.len() {
                conn.wait_for(peer).unwrap();
            }
            Action::None
        }
    }
    let (mut engine, _) = engine(
        Records {
            inner: relay(backend().into()),
        },
        small_config(8, 16, 10),
    );
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let client = connect(&mut engine, &mut net, 0).unwrap();
    let up = net.connects[0].0;
    net.peer(up).window = 0;
    let message: Vec<u8> = (0..64u8).collect();
    send(&mut engine, &mut net, client, &message);
    assert!(engine.handler().inner.closed.is_empty());
    assert_eq!(engine.pending_output(up), 8, "two whole records");
    for _ in 0..30 {
        open_window(&mut engine, &mut net, up, 3);
    }
    open_window(&mut engine, &mut net, up, 1000);
    assert_eq!(net.peer(up).received, message);
}

#[test]
fn a_half_close_is_passed_on_and_the_other_direction_goes_on() {
    let (mut engine, _) = engine(
        Relay {
            half_close: true,
            ..relay(backend().into())
        },
        config(),
    );
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let (client, up) = client_and_backend(&mut engine, &mut net);
    net.peer(up).window = 4;
    send(&mut engine, &mut net, client, b"GET k\r\n");
    half_close(&mut engine, &mut net, client);
    // The end is passed on only after everything sent before it.
    assert!(!net.peer(up).write_shut);
    open_window(&mut engine, &mut net, up, 100);
    assert_eq!(net.peer(up).received, b"GET k\r\n");
    assert!(net.peer(up).write_shut, "the backend reads the end");
    // The client is half-closed, not closed: the answer still reaches it.
    assert!(engine.is_open(client) && !net.peer(client).closed);
    send(&mut engine, &mut net, up, b"$1\r\nv\r\n");
    assert_eq!(net.peer(client).received, b"$1\r\nv\r\n");
    // The backend ends too: the client's sending side is shut in turn (here its close,
    // which the relay asks for when the backend closes, ends it), and with both
    // directions over both close.
    half_close(&mut engine, &mut net, up);
    let h = engine.handler();
    assert_eq!(closed_of(h, client), [None]);
    assert_eq!(closed_of(h, up), [None]);
    assert!(net.peer(client).closed && net.peer(up).closed);
}

#[test]
fn writes_after_a_shutdown_of_the_sending_side_are_refused() {
    #[derive(Default)]
    struct ShutThenWrite {
        second: Option<Result<(), evio_proto::WriteError>>,
    }
    impl Events for ShutThenWrite {
        type Context = ();
        fn data(&mut self, conn: &mut Conn<'_, ()>, _: &[u8]) -> Action {
            let me = conn.id();
            conn.others().write(me, b"bye").unwrap();
            conn.others().shutdown_write(me).unwrap();
            self.second = Some(conn.others().write(me, b"more"));
            Action::None
        }
    }
    let (mut engine, _) = engine(ShutThenWrite::default(), config());
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    send(&mut engine, &mut net, id, b"x");
    assert!(matches!(
        engine.handler().second,
        Some(Err(evio_proto::WriteError::NotOpen(_)))
    ));
    assert_eq!(net.peer(id).received, b"bye");
    assert!(net.peer(id).write_shut);
    assert!(!net.peer(id).closed, "still open for reading");
}

#[test]
fn a_client_that_sends_and_half_closes_before_the_backend_answers_gets_its_answer() {
    let (mut engine, _) = engine(
        Relay {
            half_close: true,
            ..relay(backend().into())
        },
        config(),
    );
    let mut net = Net::new(1);
    net.connect_plans.push_back(ConnectPlan::Hang);
    start(&mut engine, &mut net);
    let (client, up) = client_and_backend(&mut engine, &mut net);
    let message: Vec<u8> = (0..95u8).collect();
    net.peer(client).inbound.extend(&message);
    net.peer(client).eof = true;
    engine
        .handle_conn_ready(client, evio_proto::Readiness::READABLE)
        .unwrap();
    drain(&mut engine, &mut net);
    // The backend answers now.
    net.peer(up).connecting = Some(ConnectPlan::Accept);
    engine
        .handle_conn_ready(up, evio_proto::Readiness::WRITABLE)
        .unwrap();
    drain(&mut engine, &mut net);
    assert_eq!(
        net.peer(up).received,
        message,
        "all of it reached the backend"
    );
    assert!(net.peer(up).write_shut, "and then its end");
    // The backend echoes and ends: the client gets it all, then its end.
    send(&mut engine, &mut net, up, &message);
    half_close(&mut engine, &mut net, up);
    assert_eq!(net.peer(client).received, message);
    assert!(net.peer(client).closed);
}

/// Takes 4-byte records while it has credit; holds the rest until a server wake
/// gives credit back and resumes the connection.
#[derive(Default)]
struct Gate {
    credit: usize,
    /// Writes each record it takes back to its sender.
    echo: bool,
    /// Writes `!` to every connection at each server wake, before resuming them.
    poke: bool,
    taken: Vec<u8>,
    ids: Vec<ConnId>,
    closed: Vec<(ConnId, Option<CloseError>)>,
}
impl Events for Gate {
    type Context = ();
    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.ids.push(conn.id());
        Action::None
    }
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let mut used = 0;
        while self.credit > 0 && input.len() - used >= 4 {
            self.taken.extend_from_slice(&input[used..used + 4]);
            if self.echo {
                let _ = conn.write(&input[used..used + 4]);
            }
            used += 4;
            self.credit -= 1;
        }
        conn.consume(used);
        if used < input.len() {
            conn.hold();
        }
        Action::None
    }
    fn server_woken(&mut self, others: &mut Loop<'_, ()>) -> Flow {
        self.credit += 2;
        for &id in &self.ids {
            if self.poke {
                // (Refused once the connection failed: it takes no more writes.)
                let _ = others.write(id, b"!");
            }
            others.resume(id).unwrap();
        }
        Flow::Continue
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

#[test]
fn held_input_waits_for_resume_and_is_never_too_large() {
    let (mut engine, _) = engine(Gate::default(), small_config(4, 16, 16));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    let message: Vec<u8> = (0..40u8).collect();
    send(&mut engine, &mut net, id, &message);
    // No credit: a full input buffer is held, not closed as too large, and not read.
    assert!(engine.handler().closed.is_empty());
    assert_eq!(engine.pending_input(id), 16);
    assert!(!net.peer(id).interest.is_readable());
    let mut rounds = 0;
    while engine.handler().taken.len() < message.len() {
        rounds += 1;
        assert!(rounds < 20, "resumed without progress");
        engine.waker().unwrap().wake_server();
        engine.handle_wakes();
        drain(&mut engine, &mut net);
    }
    assert_eq!(engine.handler().taken, message);
    assert!(engine.handler().closed.is_empty());
}

/// Input read before a reset that waits for its handler is still delivered: the peer
/// sent it (a server that reads everything at once would have handled it), and what
/// the handler writes meanwhile is dropped. Then the connection closes with the reset.
#[test]
fn input_held_when_the_peer_resets_is_delivered_before_the_close() {
    let (mut engine, _) = engine(
        Gate {
            echo: true,
            ..Gate::default()
        },
        small_config(4, 16, 16),
    );
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    let message: Vec<u8> = (0..12u8).collect();
    let reset = IoError::new(IoErrorKind::ConnectionReset);
    send(&mut engine, &mut net, id, &message);
    assert_eq!(engine.pending_input(id), 12, "held");
    // The peer resets: the next read fails, and so does every later send.
    net.peer(id).error = Some(reset);
    engine
        .handle_conn_ready(id, evio_proto::Readiness::HANGUP)
        .unwrap();
    drain(&mut engine, &mut net);
    assert!(engine.handler().closed.is_empty(), "the failure waits");
    assert_eq!(engine.pending_input(id), 12, "nothing lost");
    // Each record taken is echoed: what it writes meanwhile is never sent.
    wake_until_closed(&mut engine, &mut net);
    assert_eq!(engine.handler().taken, message, "every byte delivered");
    assert_eq!(
        engine.handler().closed,
        [(id, Some(CloseError::Io(reset)))],
        "then closed once, with the reset"
    );
    assert!(
        net.peer(id).received.is_empty(),
        "nothing sent after the reset"
    );
}

/// Wakes the server (giving a `Gate` credit) until a connection closes.
fn wake_until_closed(engine: &mut TestEngine<Gate>, net: &mut Net) {
    let mut rounds = 0;
    while engine.handler().closed.is_empty() {
        rounds += 1;
        assert!(rounds < 20, "resumed without progress");
        engine.waker().unwrap().wake_server();
        engine.handle_wakes();
        drain(engine, net);
    }
}

/// A send that fails while input is held: the input is delivered, with what one more
/// read finds (the peer sent it before it reset), and then the connection closes.
#[test]
fn input_held_when_a_send_fails_is_delivered_with_one_more_read() {
    let (mut engine, _) = engine(
        Gate {
            poke: true,
            ..Gate::default()
        },
        small_config(4, 16, 16),
    );
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    let first: Vec<u8> = (0..12u8).collect();
    send(&mut engine, &mut net, id, &first);
    assert_eq!(engine.pending_input(id), 12, "held");
    // More arrives, not reported yet, and the peer resets: the next send fails.
    let more: Vec<u8> = (12..16u8).collect();
    net.peer(id).inbound.extend(&more);
    let reset = IoError::new(IoErrorKind::ConnectionReset);
    net.peer(id).error = Some(reset);
    wake_until_closed(&mut engine, &mut net);
    assert_eq!(
        engine.handler().taken,
        [first, more].concat(),
        "every byte delivered, the last read after the failed send"
    );
    assert_eq!(engine.handler().closed, [(id, Some(CloseError::Io(reset)))]);
}

#[test]
fn a_handler_connects_from_serving_before_any_client() {
    #[derive(Default)]
    struct Eager {
        asked: Option<Result<ConnId, ConnectError>>,
        opened: Vec<ConnInfo>,
    }
    impl Events for Eager {
        type Context = ();
        fn serving(&mut self, mut server: evio_proto::Server<'_>) -> Flow {
            self.asked = Some(server.connect(ConnectAddr::Ip(backend()), 100 * MS));
            Flow::Continue
        }
        fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
            self.opened.push(*conn.info());
            Action::None
        }
    }
    let (mut engine, _) = engine(Eager::default(), config());
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = engine.handler().asked.unwrap().unwrap();
    assert_eq!(net.connects, [(id, "tcp://127.0.0.1:6379".to_string())]);
    assert_eq!(engine.handler().opened.len(), 1);
    assert!(engine.handler().opened[0].outbound && engine.handler().opened[0].id == id);
}

#[test]
fn the_end_of_a_stream_is_told_after_the_input_that_waited_before_it() {
    let (mut engine, _) = engine(
        Relay {
            half_close: true,
            ..relay(backend().into())
        },
        config(),
    );
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let (client, up) = client_and_backend(&mut engine, &mut net);
    net.peer(up).window = 0;
    // More than the backend's buffer takes, then the end: the client's input waits.
    let message: Vec<u8> = (0..40u8).collect();
    net.peer(client).inbound.extend(&message);
    net.peer(client).eof = true;
    engine
        .handle_conn_ready(client, evio_proto::Readiness::READABLE)
        .unwrap();
    drain(&mut engine, &mut net);
    assert!(engine.pending_input(client) > 0, "input waits");
    assert!(
        !net.peer(up).write_shut,
        "the end is not passed on before it"
    );
    for _ in 0..10 {
        open_window(&mut engine, &mut net, up, 4);
    }
    open_window(&mut engine, &mut net, up, 1000);
    assert_eq!(net.peer(up).received, message, "every byte, then");
    assert!(net.peer(up).write_shut, "the end");
    assert!(engine.handler().closed.is_empty());
}
