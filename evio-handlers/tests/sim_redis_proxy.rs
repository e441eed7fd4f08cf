//! The redis proxy (`evio_handlers::redis_proxy::RedisProxy`) in the swarm, in front of
//! two simulated Redis servers (`evio_sim::RespServer`) that answer after delays of
//! their own, judged by `RedisProxyModel` (each client's replies are what one Redis
//! holding all keys would answer, in its request order; a backend error only where a
//! backend failed), with every fault on; and a mutant that answers a client's pipeline
//! out of order, which the swarm catches.
//!
//! ```text
//! cargo test -p evio-handlers --features sim --release --test sim_redis_proxy -- --nocapture
//! ```
//!
//! The proxy keeps its pooled backend connections open; the simulator counts an idle
//! outbound connection (nothing in flight, nothing owed) as settled, so runs end.
//!
//! The swarm found a proxy bug with the smallest input buffers (64 bytes): a client
//! that ended its stream while the proxy's own backlog held an incomplete request was
//! never closed (54 of 300 seeds; seed 72 shrinks to two events, kept below as
//! `the_proxy_closes_a_client_that_ends_mid_request`). The proxy now drops such a
//! request at the end of the stream, as Redis does.
#![cfg(feature = "sim")]

use evio_handlers::redis_proxy::{RedisProxy, Role};
use evio_handlers::sim::{
    RedisProxyModel, redis_proxy_constraints, redis_proxy_pair, redis_proxy_requests,
};
use evio_proto::{Action, Conn, Events};
use evio_sim::{Constraints, FaultRates, Rng, ScriptedEvent, Swarm, parse_multibulk};

const SEEDS: u64 = 300;
const STEPS: usize = 1500;

/// The smallest input buffer the swarms run the proxy with (see the module docs for why
/// not 64).
const MIN_INPUT: usize = 512;

fn swarm_of<H, F>(make: F) -> Swarm<F>
where
    F: Fn() -> (H, RedisProxyModel) + Sync,
{
    swarm_with(make, MIN_INPUT)
}

fn swarm_with<H, F>(make: F, min_input_capacity: usize) -> Swarm<F>
where
    F: Fn() -> (H, RedisProxyModel) + Sync,
{
    Swarm::new(make)
        .steps(STEPS)
        .constraints(Constraints {
            min_input_capacity,
            ..redis_proxy_constraints()
        })
        .workload(redis_proxy_requests as fn(u16, &mut Rng) -> Vec<u8>)
}

#[test]
fn the_redis_proxy_passes_a_swarm_with_an_exact_model() {
    let report = swarm_of(redis_proxy_pair).seeds(0..SEEDS).run();
    println!(
        "redis proxy swarm: {} seeds x {STEPS} steps, {} bytes written, {} send batches, \
         {} connects, failures: {}",
        report.seeds,
        report.bytes_written,
        report.send_batches,
        report.faults.connects(),
        report.failures.len()
    );
    for f in report.failures.iter().take(5) {
        println!("{f}");
    }
    assert!(report.failures.is_empty(), "{report}");
    assert!(report.bytes_written > 10_000, "{report}");
    // Half the seeds hand a turn's sends over together (`Config::batch_sends`).
    assert!(report.send_batches > 100, "{report}");
}

/// Step by step: the swarm reaches what it is for (replies checked, pipelines over
/// both backends, some backend errors).
#[test]
fn the_redis_proxy_swarm_checks_replies() {
    let swarm = swarm_of(redis_proxy_pair);
    let (mut replies, mut errors, mut served) = (0, 0, 0);
    for seed in 0..40 {
        let config = swarm.config(seed);
        let script = swarm.script(seed, &config);
        let (proxy, model) = redis_proxy_pair();
        let mut sim = evio_sim::Sim::with_config(proxy, model, seed, config).expect("a config");
        for event in &script {
            if let Err(v) = sim.step(event) {
                panic!("{}", sim.failure(v));
            }
        }
        if let Err(v) = sim.finish() {
            panic!("{}", sim.failure(v));
        }
        replies += sim.model().replies;
        errors += sim.model().backend_errors;
        served += sim.handler().stats().forwarded;
    }
    println!("40 seeds: {replies} replies checked, {errors} backend errors, {served} forwarded");
    assert!(replies > 1_000, "{replies}");
    assert!(served > 500, "{served}");
}

/// A proxy that answers a client's pipeline out of order: when a client's input holds
/// two whole requests whose keys live on different backends, it hands them to the
/// proxy swapped, so the reply of the second comes first (as a proxy that took
/// replies in the order the backends sent them would, when the second's backend is
/// faster).
struct OutOfOrder(RedisProxy);

fn key_of(args: &[&[u8]]) -> Option<Vec<u8>> {
    (args.len() >= 2).then(|| args[1].to_vec())
}

impl Events for OutOfOrder {
    type Context = Role;
    evio_proto::delegate_events!(self.0, except data);
    fn data(&mut self, conn: &mut Conn<'_, Role>, input: &[u8]) -> Action {
        if let Ok(Some((a, la))) = parse_multibulk(input)
            && let Ok(Some((b, lb))) = parse_multibulk(&input[la..])
            && let (Some(ka), Some(kb)) = (key_of(&a), key_of(&b))
            && self.0.backend_of(&ka) != self.0.backend_of(&kb)
        {
            let mut swapped = Vec::with_capacity(input.len());
            swapped.extend_from_slice(&input[la..la + lb]);
            swapped.extend_from_slice(&input[..la]);
            swapped.extend_from_slice(&input[la + lb..]);
            return self.0.data(conn, &swapped);
        }
        self.0.data(conn, input)
    }
}

#[test]
fn a_proxy_that_answers_a_pipeline_out_of_order_is_caught() {
    let report = swarm_of(|| {
        let (proxy, model) = redis_proxy_pair();
        (OutOfOrder(proxy), model)
    })
    .seeds(0..SEEDS)
    .run();
    for f in &report.failures {
        println!("{}", f.to_string().lines().next().unwrap_or_default());
    }
    println!(
        "out-of-order redis proxy: {} of {} seeds fail",
        report.failures.len(),
        report.seeds,
    );
    // Of the 300 seeds, 66 have the proxy take a swapped pair whole; 46 fail (42 on a
    // reply checked against the other request, 4 on the garbled input the mutant
    // makes when the proxy takes only the first of the pair); in the others the
    // client never reads the pair's replies (an injected detach, a reset) or they
    // cannot be told apart.
    assert!(report.failures.len() >= 30, "{report}");
}

#[test]
fn the_same_seed_gives_the_same_redis_proxy_trace() {
    let swarm = swarm_of(redis_proxy_pair);
    for seed in [0, 7, 42, 299] {
        let a = swarm.run_seed(seed);
        let b = swarm.run_seed(seed);
        match (a, b) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "seed {seed}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "seed {seed}"),
            (a, b) => panic!("seed {seed}: {a:?} then {b:?}"),
        }
    }
}

/// Seed 72 of the swarm with 64-byte input buffers, shrunk (faults off): a client
/// pipelines a DEL (26 bytes) and an EXISTS (40 bytes) and the start of a third
/// request, then half-closes. The first read (64 bytes) ends 38 bytes into the
/// EXISTS, over half the buffer, so the proxy takes it into its backlog; the next
/// read completes it, and the 6 bytes of the third stay in the backlog. Both replies
/// reach the client, which half-closes; `input_ended` finds the client not idle
/// (its backlog is not empty) and returns `None`, and nothing closes it after: the
/// liveness phase ends with "client c2 … fin true … queued 8 transmitted 8 owed 0
/// interest rfalse".
///
/// (The proxy now drops an ended client's incomplete request, so `idle()` holds once
/// its replies are written.)
#[test]
fn the_proxy_closes_a_client_that_ends_mid_request() {
    let swarm = swarm_with(redis_proxy_pair, 64);
    let mut config = swarm.config(72);
    config.rates = FaultRates::none();
    assert_eq!(config.engine.input_capacity, 64);
    let script = vec![
        ScriptedEvent::Connect { listener: 0 },
        ScriptedEvent::Send {
            client: 0,
            bytes: b"*2\r\n$3\r\nDEL\r\n$6\r\nc13:k4\r\n*3\r\n$6\r\nEXISTS\r\n$6\r\nc13:k2\r\n\
                     $6\r\nc13:k1\r\n*2\r\n$3\r"
                .to_vec(),
        },
    ];
    let (proxy, model) = redis_proxy_pair();
    if let Err(f) = evio_sim::run(proxy, model, 72, config, &script) {
        panic!("{f}");
    }
}

/// The swarm with the smallest input buffers the redis proxy constraints allow (64
/// bytes): 54 of 300 seeds failed on the proxy bug above, before its fix.
#[test]
fn the_redis_proxy_passes_a_swarm_with_small_input_buffers() {
    let report = swarm_with(redis_proxy_pair, 64).seeds(0..SEEDS).run();
    println!(
        "redis proxy swarm, input buffers from 64 bytes: {} seeds, failures: {}",
        report.seeds,
        report.failures.len()
    );
    assert!(report.failures.is_empty(), "{report}");
}

/// Seeds of the small-buffer swarm (each run with 1,500 steps, as the CLI's soak
/// `evio-sim --handler redis-proxy --seeds 300..3300 --steps 1500` does) that found two
/// more proxy bugs, kept as regressions:
///
/// - a request the proxy could not yet queue on a backend connection (that
///   connection's own queue, not the engine's output, was full) was left to
///   `Conn::wait_for`, which waits only for output the engine holds: nothing resumed
///   the client (450, 468: "ended client never closed"), or its full input buffer was
///   closed as a frame too large (483);
/// - the incomplete request of a client that had ended its stream was dropped while
///   input left behind the client's full output was still to come, so the rest of the
///   request was read as new commands (512: "does not support '$6'"; 26376).
#[test]
fn seeds_that_found_proxy_bugs_pass() {
    for seed in [450, 468, 483, 512, 26376] {
        let report = swarm_with(redis_proxy_pair, 64).seeds(seed..seed + 1).run();
        assert!(report.failures.is_empty(), "seed {seed}: {report}");
    }
}
