//! Wake coalescing on real sockets (`ServerBuilder::coalesce`): a napping loop answers
//! every request of many concurrent clients, on both backends, and on Linux the loop's
//! thread keeps fine timers only while it serves.

mod os_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use evio::{Action, Conn, Events, Loop, Tick};
use evio_handlers::echo::Echo;
use os_common::*;

fn coalescing() -> evio::ServerBuilder {
    evio::ServerBuilder::new()
        .max_connections(64)
        .coalesce(Some(Duration::from_micros(100)))
}

/// `clients` threads each make `rounds` round trips of a message of their own.
fn ping_pong(addr: &Bound, clients: usize, rounds: usize) {
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut client = connect(&addr);
                for r in 0..rounds {
                    let msg = format!("client {c} round {r}\n");
                    assert_eq!(client.round_trip(msg.as_bytes()), msg.as_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client failed");
    }
}

#[test]
fn a_coalescing_loop_answers_every_request_of_many_clients() {
    let server = start(coalescing(), &["tcp4://127.0.0.1:0"], || Echo);
    // Forty clients at once keep the loop busy with many senders (naps); one alone
    // afterwards must not be held back waiting for company (each round trip has a
    // time-out of its own in the client).
    ping_pong(server.addr(0), 40, 300);
    ping_pong(server.addr(0), 1, 300);
    server.stop().expect("serve returns Ok");
}

#[test]
fn a_coalescing_loop_on_the_poll_backend_answers_every_request() {
    let server = start(coalescing(), &["tcp-net://127.0.0.1:0"], || Echo);
    ping_pong(server.addr(0), 40, 200);
    server.stop().expect("serve returns Ok");
}

#[test]
fn a_coalescing_loop_still_ticks_and_times_out_on_time() {
    /// Ticks every 2 ms, echoes, and closes a connection 20 ms after it sent `idle`
    /// (only then: a busy client on a loaded machine may well pause for 20 ms between
    /// round trips); counts the ticks.
    struct Ticking(Arc<Mutex<u32>>);
    impl Events for Ticking {
        type Context = ();
        fn tick(&mut self, _: &mut Loop<'_, ()>) -> Tick {
            *self.0.lock().unwrap() += 1;
            Tick::after(Duration::from_millis(2))
        }
        fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
            if input.starts_with(b"idle") {
                conn.set_timeout(Some(Duration::from_millis(20)));
            }
            let _ = conn.write(input);
            Action::None
        }
        fn timeout(&mut self, _: &mut Conn<'_, ()>) -> Action {
            Action::Close
        }
    }
    let ticks = Arc::new(Mutex::new(0));
    let t = ticks.clone();
    let server = start(coalescing(), &["tcp4://127.0.0.1:0"], move || Ticking(t));
    ping_pong(server.addr(0), 20, 100);
    // An idle client is closed by its timeout: the read sees the end of the stream.
    let mut idle = connect(server.addr(0));
    assert_eq!(idle.round_trip(b"idle"), b"idle");
    assert!(
        idle.read_to_end_lossy().is_empty(),
        "closed after 20 ms idle"
    );
    server.stop().expect("serve returns Ok");
    assert!(*ticks.lock().unwrap() >= 5, "the ticker kept running");
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn the_loop_keeps_fine_timers_while_it_serves_and_restores_them() {
    use evio::{Flow, Server};
    use rustix::thread::current_timer_slack;

    /// Records the loop thread's timer slack when serving starts, then stops.
    struct Slack(Arc<Mutex<Option<u64>>>);
    impl Events for Slack {
        type Context = ();
        fn serving(&mut self, _: Server<'_>) -> Flow {
            *self.0.lock().unwrap() = current_timer_slack().ok();
            Flow::Shutdown
        }
    }
    let serve_with = |builder: evio::ServerBuilder| {
        std::thread::spawn(move || {
            let before = current_timer_slack().expect("timer slack");
            let seen = Arc::new(Mutex::new(None));
            builder
                .serve(Slack(seen.clone()), &["tcp4://127.0.0.1:0"])
                .expect("serve returns Ok");
            let during = seen.lock().unwrap().expect("serving ran");
            let after = current_timer_slack().expect("timer slack");
            (before, during, after)
        })
        .join()
        .expect("server thread")
    };
    let (before, during, after) = serve_with(coalescing());
    assert_eq!(during, 1_000, "1 µs of slack while coalescing");
    assert_eq!(after, before, "the thread's own slack is back after serve");
    let (before, during, _) = serve_with(evio::ServerBuilder::new());
    assert_eq!(during, before, "no coalescing, no change");
}
