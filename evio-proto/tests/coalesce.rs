//! Wake coalescing under load (`Config::coalesce`, `Engine::poll_nap`): when a nap is
//! asked for, how long, and that it never passes a deadline.

mod common;

use std::time::Duration;

use common::*;
use evio_proto::{Action, Config, Conn, ConnId, Events, Instant};

const US: Duration = Duration::from_micros(1);

fn at_us(us: u64) -> Instant {
    Instant::ZERO + Duration::from_micros(us)
}

/// Echoes its input; "t" sets a 30 µs timeout instead.
struct Echo;

impl Events for Echo {
    type Context = ();
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        if input == b"t" {
            conn.set_timeout(Some(30 * US));
        } else {
            let _ = conn.write(input);
        }
        Action::None
    }
}

fn config(max: usize, coalesce: Option<Duration>) -> Config {
    Config {
        coalesce,
        ..small_config(max, 64, 64)
    }
}

/// An engine with `n` connections, each of which sent one request in the first
/// millisecond (one loop turn each, 20 µs apart).
fn busy(n: usize, coalesce: Option<Duration>) -> (TestEngine<Echo>, Net, Vec<ConnId>) {
    let (mut engine, _) = engine(Echo, config(n, coalesce));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let ids: Vec<ConnId> = (0..n)
        .map(|_| connect(&mut engine, &mut net, 0).expect("a free slot"))
        .collect();
    for (i, &id) in ids.iter().enumerate() {
        advance(&mut engine, &mut net, at_us(20 * i as u64));
        send(&mut engine, &mut net, id, b"ping");
        assert_eq!(net.peer(id).received, b"ping");
        net.peer(id).received.clear();
    }
    (engine, net, ids)
}

/// One loop turn: the wait ends at `us` and finds `ids` ready with a request each.
fn turn(engine: &mut TestEngine<Echo>, net: &mut Net, us: u64, ids: &[ConnId]) {
    advance(engine, net, at_us(us));
    for &id in ids {
        send(engine, net, id, b"ping");
    }
}

#[test]
fn off_by_default() {
    assert_eq!(Config::new().coalesce, None);
    let (mut engine, mut net, ids) = busy(40, None);
    turn(&mut engine, &mut net, 1_100, &ids[..2]);
    assert_eq!(engine.poll_nap(), None);
}

#[test]
fn a_busy_loop_with_many_senders_naps_at_most_the_configured_nap() {
    let (mut engine, mut net, ids) = busy(40, Some(100 * US));
    // The window of the first millisecond closes: 40 connections were active, each
    // reported once, so a quarter of them take 250 µs at that rate: capped at 100.
    turn(&mut engine, &mut net, 1_100, &ids[..2]);
    assert_eq!(engine.poll_nap(), Some(100 * US));
    // The nap, then a poll that finds a few more: still napping.
    turn(&mut engine, &mut net, 1_200, &ids[2..5]);
    assert_eq!(engine.poll_nap(), Some(100 * US));
    // A poll that finds nothing ends it.
    advance(&mut engine, &mut net, at_us(1_300));
    assert_eq!(engine.poll_nap(), None);
    // And every request was answered as usual.
    for &id in &ids[..5] {
        assert_eq!(net.peer(id).received, b"ping");
    }
}

#[test]
fn a_quarter_or_more_of_the_senders_ready_at_once_means_no_nap() {
    let (mut engine, mut net, ids) = busy(40, Some(100 * US));
    turn(&mut engine, &mut net, 1_100, &ids[..10]);
    assert_eq!(engine.poll_nap(), None);
    let (mut engine, mut net, ids) = busy(40, Some(100 * US));
    turn(&mut engine, &mut net, 1_100, &ids[..9]);
    assert!(engine.poll_nap().is_some());
}

#[test]
fn a_few_clients_waiting_on_their_replies_never_see_a_nap() {
    let (mut engine, mut net, ids) = busy(3, Some(100 * US));
    for round in 0..100u64 {
        turn(
            &mut engine,
            &mut net,
            1_000 + 15 * round,
            &ids[(round % 3) as usize..][..1],
        );
        assert_eq!(engine.poll_nap(), None, "round {round}");
    }
}

#[test]
fn a_nap_never_passes_the_next_deadline() {
    let (mut engine, mut net, ids) = busy(40, Some(100 * US));
    turn(&mut engine, &mut net, 1_100, &ids[..2]);
    // A timeout due in 30 µs cuts the nap to 30 µs.
    send(&mut engine, &mut net, ids[39], b"t");
    assert_eq!(engine.poll_timeout(), Some(at_us(1_130)));
    assert_eq!(engine.poll_nap(), Some(30 * US));
}

#[test]
fn no_nap_once_the_server_shuts_down() {
    struct Stop;
    impl Events for Stop {
        type Context = ();
        fn data(&mut self, _: &mut Conn<'_, ()>, _: &[u8]) -> Action {
            Action::Shutdown
        }
    }
    let (mut engine, _) = engine(Stop, config(1, Some(100 * US)));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    send(&mut engine, &mut net, id, b"bye");
    assert!(engine.is_shut_down());
    assert_eq!(engine.poll_nap(), None);
}
