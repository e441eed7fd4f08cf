//! The swarm over the echo handler, the fault-coverage check, and the replay entry point
//! that failure reports point to.

use evio_handlers::echo::Echo;
use evio_sim::{EchoModel, FaultKind, SimConfig, swarm};

/// Steps per seed in the suite's swarm.
const STEPS: usize = 10_000;

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[test]
fn echo_swarm_of_1000_seeds_passes() {
    let report = swarm(0..1000, STEPS, threads(), || (Echo, EchoModel));
    println!("{report}");
    assert_eq!(report.seeds, 1000);
    assert!(report.failures.is_empty(), "{report}");
    // The swarm did real work, not 1000 empty runs.
    assert!(report.connections > 1000, "{report}");
    assert!(report.bytes_written > 100_000, "{report}");
    assert!(report.detached > 0, "{report}");
    assert!(report.naps > 0, "{report}");
}

#[test]
fn naps_happen_only_where_the_seed_turned_coalescing_on() {
    // The seeds that draw `Config::coalesce` run their loop with naps between polls
    // (the virtual clock moves on by each nap): the swarm above checks every
    // invariant of those runs; here, that naps happen at all, and only where asked.
    let mut napped = 0;
    for seed in 0..300 {
        let config = SimConfig::from_seed(seed);
        let outcome = evio_sim::run_seed(seed, 3_000, || (Echo, EchoModel)).expect("passes");
        match config.engine.coalesce {
            None => assert_eq!(outcome.naps, 0, "seed {seed}"),
            Some(_) => napped += usize::from(outcome.naps > 0),
        }
    }
    assert!(napped >= 10, "only {napped} of 300 seeds napped");
}

#[test]
fn every_fault_kind_fires_across_the_swarm() {
    let report = swarm(1000..1600, STEPS, threads(), || (Echo, EchoModel));
    assert!(report.failures.is_empty(), "{report}");
    let missing = report.faults.missing();
    assert!(missing.is_empty(), "never fired: {missing:?}\n{report}");
    // Echo never connects out: the outbound kinds are for relays (tests/relay.rs).
    for kind in FaultKind::ACCEPTED {
        assert!(report.faults[kind] > 0, "{kind}");
    }
}

#[test]
fn some_seeds_run_clean_and_some_heavy() {
    let mut clean = 0;
    let mut heavy = 0;
    for seed in 0..200 {
        let rates = SimConfig::from_seed(seed).rates;
        let total: u64 = FaultKind::ALL
            .iter()
            .map(|&k| u64::from(rates.get(k)))
            .sum();
        if total == 0 {
            clean += 1;
        }
        if FaultKind::ALL.iter().any(|&k| rates.get(k) >= 100_000) {
            heavy += 1;
        }
    }
    assert!(clean > 10, "{clean} clean seeds");
    assert!(heavy > 100, "{heavy} heavy seeds");
}

/// Replays one seed: `EVIO_SIM_SEED=<seed> [EVIO_SIM_STEPS=<steps>] cargo test -p
/// evio-sim --test swarm replay -- --nocapture`. Without the variable it replays seed 0
/// (so the entry point itself stays tested). On failure it prints the tail of the trace
/// and the shrunk script.
#[test]
fn replay() {
    let seed: u64 = std::env::var("EVIO_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let steps: usize = std::env::var("EVIO_SIM_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(STEPS);
    let replay = evio_sim::replay(seed, steps, || (Echo, EchoModel));
    if let Err(failure) = &replay.result {
        for line in replay.trace_tail(60) {
            println!("{line}");
        }
        if let Some(shrunk) = replay.shrink(3000, || (Echo, EchoModel)) {
            println!("{shrunk}");
        }
        panic!("{failure}");
    }
    println!("seed {seed}: passed, trace hash {:016x}", replay.trace_hash);
}
