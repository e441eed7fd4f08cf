//! Same seed, same run: the trace hash proves it.

use evio_handlers::echo::Echo;
use evio_sim::{EchoModel, run_seed, swarm};

#[test]
fn same_seed_twice_gives_the_same_trace_hash() {
    for seed in [0, 1, 7, 411, 9999, u64::MAX] {
        let a = run_seed(seed, 3000, || (Echo, EchoModel)).expect("passes");
        let b = run_seed(seed, 3000, || (Echo, EchoModel)).expect("passes");
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed}");
        assert_eq!(a, b, "seed {seed}");
    }
}

#[test]
fn different_seeds_give_different_traces() {
    let hashes: Vec<u64> = (0..50)
        .map(|seed| {
            run_seed(seed, 500, || (Echo, EchoModel))
                .expect("passes")
                .trace_hash
        })
        .collect();
    let mut unique = hashes.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), hashes.len());
}

#[test]
fn swarm_result_does_not_depend_on_thread_count() {
    let one = swarm(0..40, 500, 1, || (Echo, EchoModel));
    let two = swarm(0..40, 500, 2, || (Echo, EchoModel));
    assert_eq!(one.combined_hash, two.combined_hash);
    assert_eq!(one.steps, two.steps);
    assert_eq!(one.faults, two.faults);
}
