//! A turn's sends handed to the driver together (`Config::batch_sends`,
//! `Output::TransmitBatch`): after the turn's reads, each entry reported as a transmit
//! is, and the handlers that a drained output owes run only once the batch is over.

mod common;

use common::*;
use evio_proto::{Action, Config, Conn, ConnId, Events, IoError, IoErrorKind, Output, Readiness};

/// Echoes its input; `drained` and `postwrite` calls are logged, in order.
#[derive(Default)]
struct Echo {
    log: Vec<String>,
    /// `drained`: write this to the connection with this id.
    on_drained: Option<(ConnId, Vec<u8>)>,
}

impl Events for Echo {
    type Context = ();

    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let n = conn.write_some(input);
        conn.consume(n);
        Action::None
    }

    fn drained(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.log.push(format!("drained {:?}", conn.id()));
        if let Some((to, bytes)) = self.on_drained.take() {
            let _ = conn.others().write(to, &bytes);
        }
        Action::None
    }

    fn postwrite(&mut self, id: ConnId, written: usize, remaining: usize) {
        self.log
            .push(format!("postwrite {id:?} {written} {remaining}"));
    }
}

fn batching(output: usize) -> Config {
    Config {
        batch_sends: true,
        ..small_config(8, 64, output)
    }
}

/// Three clients' input, reported in one wait of the poller.
fn three_at_once(engine: &mut TestEngine<Echo>, net: &mut Net, ids: &[ConnId], bytes: [&[u8]; 3]) {
    for (&id, b) in ids.iter().zip(bytes) {
        net.peer(id).inbound.extend(b);
        engine.handle_conn_ready(id, Readiness::READABLE).unwrap();
    }
    net.log.clear();
    drain(engine, net);
}

fn three_clients(config: Config) -> (TestEngine<Echo>, Net, Vec<ConnId>) {
    let (mut engine, _) = engine(Echo::default(), config);
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let ids = (0..3)
        .map(|_| connect(&mut engine, &mut net, 0).unwrap())
        .collect();
    (engine, net, ids)
}

#[test]
fn a_turns_sends_go_out_together_after_its_reads() {
    let (mut engine, mut net, ids) = three_clients(batching(64));
    three_at_once(&mut engine, &mut net, &ids, [b"one", b"two", b"three"]);
    let first_outputs: Vec<&str> = net.log.iter().take(4).map(String::as_str).collect();
    assert!(
        first_outputs[..3].iter().all(|o| o.starts_with("Read(")),
        "{:?}",
        net.log
    );
    assert_eq!(first_outputs[3], "TransmitBatch(3 sends)", "{:?}", net.log);
    assert!(
        !net.log.iter().any(|o| o.starts_with("Transmit(")),
        "{:?}",
        net.log
    );
    assert_eq!(net.peer(ids[0]).received, b"one");
    assert_eq!(net.peer(ids[1]).received, b"two");
    assert_eq!(net.peer(ids[2]).received, b"three");
    assert_eq!(engine.stats().send_batches, 1);
    assert_eq!(engine.stats().writes, 3);
    assert_eq!(engine.stats().bytes_written, 11);
}

#[test]
fn without_batching_each_send_goes_alone() {
    let (mut engine, mut net, ids) = three_clients(small_config(8, 64, 64));
    three_at_once(&mut engine, &mut net, &ids, [b"one", b"two", b"three"]);
    let transmits = net
        .log
        .iter()
        .filter(|o| o.starts_with("Transmit("))
        .count();
    assert_eq!(transmits, 3, "{:?}", net.log);
    assert!(!net.log.iter().any(|o| o.starts_with("TransmitBatch")));
    assert_eq!(engine.stats().send_batches, 0);
}

#[test]
fn a_batch_of_one_is_a_plain_transmit() {
    let (mut engine, _) = engine(Echo::default(), batching(64));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    net.log.clear();
    send(&mut engine, &mut net, id, b"alone");
    assert!(
        net.log.iter().any(|o| o.starts_with("Transmit(")),
        "{:?}",
        net.log
    );
    assert!(!net.log.iter().any(|o| o.starts_with("TransmitBatch")));
    assert_eq!(net.peer(id).received, b"alone");
    assert_eq!(engine.stats().send_batches, 0);
}

#[test]
fn an_entry_the_socket_does_not_take_waits_for_writability_and_the_others_go() {
    let (mut engine, mut net, ids) = three_clients(batching(64));
    net.peer(ids[1]).window = 2;
    three_at_once(&mut engine, &mut net, &ids, [b"one", b"two", b"three"]);
    assert_eq!(net.peer(ids[0]).received, b"one");
    assert_eq!(net.peer(ids[1]).received, b"tw");
    assert_eq!(net.peer(ids[2]).received, b"three");
    assert!(
        net.peer(ids[1]).interest.is_writable(),
        "waits for writability"
    );
    open_window(&mut engine, &mut net, ids[1], 64);
    assert_eq!(net.peer(ids[1]).received, b"two");
    assert!(!net.peer(ids[1]).interest.is_writable());
}

#[test]
fn a_failed_entry_closes_its_connection_only() {
    let (mut engine, mut net, ids) = three_clients(batching(64));
    for (&id, b) in ids.iter().zip([&b"one"[..], b"two", b"three"]) {
        net.peer(id).inbound.extend(b);
        engine.handle_conn_ready(id, Readiness::READABLE).unwrap();
    }
    // The reads go well; client 2's socket fails at the send.
    let mut batches = 0;
    while let Some(out) = engine.poll_output() {
        if matches!(out, Output::TransmitBatch(_)) {
            batches += 1;
            net.peer(ids[2]).error = Some(IoError::new(IoErrorKind::ConnectionReset));
        }
        perform(out, &mut net);
    }
    drain(&mut engine, &mut net);
    assert_eq!(batches, 1);
    assert_eq!(net.peer(ids[0]).received, b"one");
    assert_eq!(net.peer(ids[1]).received, b"two");
    assert!(net.peer(ids[2]).received.is_empty());
    assert!(net.peer(ids[2]).closed);
    assert!(!net.peer(ids[0]).closed && !net.peer(ids[1]).closed);
    // The others go on being served.
    send(&mut engine, &mut net, ids[0], b"more");
    assert_eq!(net.peer(ids[0]).received, b"onemore");
}

#[test]
fn drained_runs_after_every_entry_is_accounted_for() {
    // Client 0's output backs up; when it drains in a batch, its `drained` writes to
    // client 1, which is in the same batch: client 1's report must still be of the
    // bytes its entry lent (the oracle's rule: written and remaining add up to the
    // attempt), and the new bytes go in a later send.
    let (mut engine, mut net, ids) = three_clients(batching(64));
    net.peer(ids[0]).window = 1;
    send(&mut engine, &mut net, ids[0], b"abc");
    assert_eq!(net.peer(ids[0]).received, b"a");
    engine.handler_mut().on_drained = Some((ids[1], b"-from-0".to_vec()));
    engine.handler_mut().log.clear();
    // One wait: client 0 writable, client 1 readable.
    net.peer(ids[0]).window = 64;
    net.peer(ids[1]).inbound.extend(b"xy");
    engine
        .handle_conn_ready(ids[0], Readiness::WRITABLE)
        .unwrap();
    engine
        .handle_conn_ready(ids[1], Readiness::READABLE)
        .unwrap();
    net.log.clear();
    drain(&mut engine, &mut net);
    assert!(
        net.log.iter().any(|o| o == "TransmitBatch(2 sends)"),
        "{:?}",
        net.log
    );
    assert_eq!(net.peer(ids[0]).received, b"abc");
    assert_eq!(net.peer(ids[1]).received, b"xy-from-0");
    let log = &engine.handler_mut().log;
    let drained = log.iter().position(|l| l.starts_with("drained")).unwrap();
    let postwrites_before = log[..drained]
        .iter()
        .filter(|l| l.starts_with("postwrite"))
        .count();
    assert_eq!(postwrites_before, 2, "both entries reported first: {log:?}");
    assert!(
        log.contains(&format!("postwrite {:?} 2 0", ids[1])),
        "client 1's entry reported as lent: {log:?}"
    );
}
