//! The redis example's handler (`evio_handlers::redis::Redis`) in the swarm, with an
//! exact model (`RedisModel`): a store of its own that applies each request when the
//! handler consumed it, in the handler's order across connections, and so knows every
//! reply byte, error replies included. Pipelines cut at every byte, requests larger
//! than the input buffer, replies larger than the output buffer, protocol errors and
//! their lingering closes, idle timeouts, QUIT and SHUTDOWN all happen here, under
//! faults.
//!
//! ```text
//! cargo test -p evio-handlers --features sim --release --test sim_redis -- --nocapture
//! ```

use evio_handlers::redis::{Client, Redis, RedisStats};
use evio_handlers::sim::{RedisModel, redis_constraints, redis_pair, redis_requests};
use evio_proto::{Action, Conn, Events};
use evio_sim::{Rng, Sim, Swarm, Violation};

/// Seeds and steps of the full swarm.
const SEEDS: u64 = 3_000;
const STEPS: usize = 4_000;

fn redis() -> (Redis, RedisModel) {
    redis_pair()
}

/// The swarm every test here runs: faults on (every kind); an input buffer of at least
/// 16 bytes (so most requests have to be gathered across reads, and inline ones are
/// often too big), any output buffer (down to one byte: every reply then goes out in
/// pieces as the output drains).
fn redis_swarm<H, F>(make: F) -> Swarm<F>
where
    F: Fn() -> (H, RedisModel) + Sync,
{
    Swarm::new(make)
        .constraints(redis_constraints())
        .workload(redis_requests as fn(u16, &mut Rng) -> Vec<u8>)
}

#[test]
fn redis_handler_passes_a_swarm_with_an_exact_model() {
    let report = redis_swarm(redis).seeds(0..SEEDS).steps(STEPS).run();
    let fired: u64 = report.faults.iter().map(|(_, n)| n).sum();
    println!(
        "redis swarm: {} seeds x {STEPS} steps ({} steps run, liveness included), faults \
         fired: {fired}, failures: {}",
        report.seeds,
        report.steps,
        report.failures.len()
    );
    println!("{report}");
    assert!(report.failures.is_empty(), "{report}");
    assert_eq!(report.seeds, SEEDS);
    assert!(report.bytes_written > 200_000, "{report}");
    let missing = report.faults.missing();
    assert!(missing.is_empty(), "never fired: {missing:?}\n{report}");
}

/// Step by step through `Sim`, seeds of the same swarm: the swarm reaches what the
/// handler is for, and at the end the model's store is the handler's.
#[test]
fn the_redis_swarm_reaches_every_path_and_the_stores_agree() {
    let swarm = redis_swarm(redis).steps(STEPS);
    let mut total = RedisStats::default();
    let (mut applied, mut shutdowns) = (0, 0);
    for seed in 0..100 {
        let config = swarm.config(seed);
        let script = swarm.script(seed, &config);
        let (handler, model) = redis();
        let mut sim = Sim::with_config(handler, model, seed, config).expect("a valid config");
        for event in &script {
            if let Err(v) = sim.step(event) {
                panic!("{}", sim.failure(v));
            }
        }
        if let Err(v) = sim.finish() {
            panic!("{}", sim.failure(v));
        }
        let (redis, model) = (sim.handler(), sim.model());
        let keys: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = redis
            .keys()
            .into_iter()
            .map(|k| {
                let v = redis.get(&k).unwrap();
                (k, v)
            })
            .collect();
        assert_eq!(&keys, model.store(), "seed {seed}: the stores differ");
        assert_eq!(
            redis.used_memory(),
            model.used_memory(),
            "seed {seed}: the memory counts differ"
        );
        let s = redis.stats();
        total.requests += s.requests;
        total.spilled += s.spilled;
        total.replies_held += s.replies_held;
        total.protocol_errors += s.protocol_errors;
        total.too_large += s.too_large;
        total.timeouts += s.timeouts;
        total.security_refusals += s.security_refusals;
        total.oom_refusals += s.oom_refusals;
        applied += model.applied;
        shutdowns += u64::from(model.shut_down());
    }
    println!("100 seeds: {total:?}; model applied {applied}, shutdowns {shutdowns}");
    assert_eq!(
        total.requests, applied,
        "the handler served what the model applied"
    );
    assert!(total.requests > 1_000, "{total:?}");
    assert!(total.spilled > 100, "{total:?}");
    assert!(total.protocol_errors > 20, "{total:?}");
    assert!(total.too_large > 0, "{total:?}");
    assert!(total.timeouts > 0, "{total:?}");
    assert!(total.replies_held > 100, "{total:?}");
    assert!(total.security_refusals > 0, "{total:?}");
    assert!(total.oom_refusals > 0, "{total:?}");
}

/// The bug the `Events::data` docs warn about: a pipeline's requests are served, but
/// when a reply does not fit the handler says it consumed nothing, so the requests come
/// back and are applied (and answered) a second time. The exact model catches it.
struct ForgetsWhatItServed(Redis);

impl Events for ForgetsWhatItServed {
    type Context = Client;
    evio_proto::delegate_events!(self.0, except data);
    fn data(&mut self, conn: &mut Conn<'_, Client>, input: &[u8]) -> Action {
        let action = self.0.data(conn, input);
        if conn.context().owes_output() {
            conn.consume(0);
        }
        action
    }
}

#[test]
fn a_handler_that_serves_a_request_twice_is_caught() {
    let report = redis_swarm(|| {
        let (redis, model) = redis_pair();
        (ForgetsWhatItServed(redis), model)
    })
    .seeds(0..200)
    .steps(2000)
    .run();
    println!(
        "mutant: {} of {} seeds failed; first: {}",
        report.failures.len(),
        report.seeds,
        report
            .failures
            .first()
            .map_or(String::new(), |f| f.to_string())
    );
    assert!(!report.failures.is_empty(), "{report}");
    assert!(
        report
            .failures
            .iter()
            .all(|f| matches!(f.violation, Violation::Model { .. })),
        "{report}"
    );
}
