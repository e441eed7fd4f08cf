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
//! Not yet passing: the runs fail the liveness phase, not the model. The simulator's
//! liveness phase waits for every connection to end, and the proxy keeps its pooled
//! backend connections open (and reconnects them after back-off when they end), so
//! a run never quiesces: every seed ends with "liveness: not done … backend bN
//! opened true ended false", nothing in flight, nothing owed. What is missing is a
//! way for the simulator to end a run whose only open connections are idle outbound
//! ones (shut the server down at the end of the liveness phase; the engine has no
//! shutdown input today, so it would be an injected `Action::Shutdown` from a
//! callback, or an input `Engine::handle_shutdown`). The three swarm tests are
//! ignored until then; determinism holds.
#![cfg(feature = "sim")]

use evio_handlers::redis_proxy::{RedisProxy, Role};
use evio_handlers::sim::{
    RedisProxyModel, redis_proxy_constraints, redis_proxy_pair, redis_proxy_requests,
};
use evio_proto::{Action, Conn, Events};
use evio_sim::{Rng, Swarm, parse_multibulk};

const SEEDS: u64 = 300;
const STEPS: usize = 1500;

fn swarm_of<H, F>(make: F) -> Swarm<F>
where
    F: Fn() -> (H, RedisProxyModel) + Sync,
{
    Swarm::new(make)
        .steps(STEPS)
        .constraints(redis_proxy_constraints())
        .workload(redis_proxy_requests as fn(u16, &mut Rng) -> Vec<u8>)
}

#[test]
#[ignore = "the liveness phase cannot end: the proxy keeps its backend links open and reconnects (see the module docs)"]
fn the_redis_proxy_passes_a_swarm_with_an_exact_model() {
    let report = swarm_of(redis_proxy_pair).seeds(0..SEEDS).run();
    println!(
        "redis proxy swarm: {} seeds x {STEPS} steps, {} bytes written, {} connects, \
         failures: {}",
        report.seeds,
        report.bytes_written,
        report.faults.connects(),
        report.failures.len()
    );
    for f in report.failures.iter().take(5) {
        println!("{f}");
    }
    assert!(report.failures.is_empty(), "{report}");
    assert!(report.bytes_written > 10_000, "{report}");
}

/// Step by step: the swarm reaches what it is for (replies checked, pipelines over
/// both backends, some backend errors).
#[test]
#[ignore = "the liveness phase cannot end: the proxy keeps its backend links open and reconnects (see the module docs)"]
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
#[ignore = "the liveness phase cannot end: the proxy keeps its backend links open and reconnects (see the module docs)"]
fn a_proxy_that_answers_a_pipeline_out_of_order_is_caught() {
    let report = swarm_of(|| {
        let (proxy, model) = redis_proxy_pair();
        (OutOfOrder(proxy), model)
    })
    .seeds(0..SEEDS)
    .run();
    println!(
        "out-of-order redis proxy: {} of {} seeds fail; first: {}",
        report.failures.len(),
        report.seeds,
        report
            .failures
            .first()
            .map_or(String::new(), |f| f.to_string())
    );
    assert!(report.failures.len() >= 10, "{report}");
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
