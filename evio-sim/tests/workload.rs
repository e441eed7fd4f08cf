//! Workloads, constraints on the drawn configuration, and the `Swarm` builder: what a
//! user testing their own handler reaches for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use evio_handlers::echo::Echo;
use evio_sim::{
    Constraints, EchoModel, FaultKind, FaultRates, FaultSet, ParseFaultError, Rng, ScriptedEvent,
    SimConfig, Swarm, Workload, swarm,
};

/// Numbers each client's messages (`c3 m0\n`, `c3 m1\n`, …), so a stream can be
/// checked for order and completeness.
#[derive(Clone, Default)]
struct Numbered {
    next: HashMap<u16, u32>,
}

impl Workload for Numbered {
    fn message(&mut self, client: u16, _rng: &mut Rng) -> Vec<u8> {
        let n = self.next.entry(client).or_default();
        *n += 1;
        format!("c{client} m{}\n", *n - 1).into_bytes()
    }
}

/// Each client's payloads in script order, concatenated.
fn streams(script: &[ScriptedEvent]) -> HashMap<u16, Vec<u8>> {
    let mut out: HashMap<u16, Vec<u8>> = HashMap::new();
    for ev in script {
        if let ScriptedEvent::Send { client, bytes } = ev {
            out.entry(*client).or_default().extend(bytes);
        }
    }
    out
}

#[test]
fn a_clients_sends_are_its_messages_in_order_cut_at_random_points() {
    let mut split = 0; // a message cut across two sends
    let mut several = 0; // a send with two whole messages or more
    for seed in 0..200 {
        let config = SimConfig::from_seed(seed);
        let script = config.script_with(seed, 1000, &mut Numbered::default());
        for (client, stream) in streams(&script) {
            // The stream is the workload's messages, whole and in order, up to a cut.
            let mut expected = Vec::new();
            let mut m = 0;
            while expected.len() < stream.len() {
                expected.extend(format!("c{client} m{m}\n").bytes());
                m += 1;
            }
            assert!(expected.starts_with(&stream), "seed {seed} client {client}");
        }
        for ev in &script {
            if let ScriptedEvent::Send { bytes, .. } = ev {
                if !bytes.ends_with(b"\n") {
                    split += 1;
                }
                if bytes.iter().filter(|&&b| b == b'\n').count() >= 2 {
                    several += 1;
                }
            }
        }
    }
    assert!(split > 100, "{split}");
    assert!(several > 100, "{several}");
}

#[test]
fn the_same_seed_makes_the_same_workload_script() {
    for seed in [0, 5, 99] {
        let config = SimConfig::from_seed(seed);
        let a = config.script_with(seed, 800, &mut Numbered::default());
        let b = config.script_with(seed, 800, &mut Numbered::default());
        assert_eq!(a, b, "seed {seed}");
        // And it is not the random script.
        assert_ne!(a, config.script(seed, 800), "seed {seed}");
    }
}

#[test]
fn a_silent_workload_sends_nothing_and_ends() {
    let config = SimConfig::from_seed(3);
    let mut silent = |_: u16, _: &mut Rng| Vec::new();
    let script = config.script_with(3, 500, &mut silent);
    assert_eq!(script.len(), 500);
    assert!(
        !script
            .iter()
            .any(|e| matches!(e, ScriptedEvent::Send { .. }))
    );
}

#[test]
fn echo_passes_a_swarm_with_a_workload() {
    let report = Swarm::new(|| (Echo, EchoModel))
        .seeds(0..200)
        .steps(1000)
        .threads(2)
        .workload(Numbered::default())
        .run();
    assert!(report.failures.is_empty(), "{report}");
    assert!(report.bytes_written > 10_000, "{report}");
}

#[test]
fn constraints_raise_what_the_seed_drew_and_keep_the_rest() {
    let constraints = Constraints {
        min_input_capacity: 100,
        min_output_capacity: 200,
        min_connections: 9,
        faults: FaultSet::of(&[FaultKind::ShortRead, FaultKind::WakeRace]),
    };
    for seed in 0..300 {
        let drawn = SimConfig::from_seed(seed);
        let c = SimConfig::constrained(seed, 1000, &constraints);
        assert_eq!(
            c.engine.input_capacity,
            drawn.engine.input_capacity.max(100)
        );
        assert_eq!(
            c.engine.output_capacity,
            drawn.engine.output_capacity.max(200)
        );
        // Without PoolFull, a slot for each of the script's clients.
        assert!(c.engine.max_connections >= drawn.engine.max_connections.max(9));
        assert!(c.engine.max_connections >= drawn.profile.max_clients);
        for kind in FaultKind::ALL {
            let expected = if constraints.faults.contains(kind) {
                drawn.rates.get(kind)
            } else {
                0
            };
            assert_eq!(c.rates.get(kind), expected, "seed {seed} {kind}");
        }
        // No resets and no outright closes in the script.
        assert_eq!((c.profile.weights[4], c.profile.weights[5]), (0, 0));
        // Everything else as drawn.
        assert_eq!(c.recv_window, drawn.recv_window);
        assert_eq!(c.send_window, drawn.send_window);
        assert_eq!(c.ticker, drawn.ticker);
        assert_eq!(c.listeners, drawn.listeners);
        assert_eq!(c.profile.max_send, drawn.profile.max_send);
    }
    // No constraint changes nothing.
    for seed in 0..50 {
        assert_eq!(
            SimConfig::constrained(seed, 1000, &Constraints::none()),
            SimConfig::from_seed(seed)
        );
    }
}

#[test]
fn a_fault_free_swarm_injects_nothing() {
    let report = Swarm::new(|| (Echo, EchoModel))
        .seeds(0..200)
        .steps(1000)
        .threads(2)
        .constraints(Constraints::fault_free())
        .run();
    assert!(report.failures.is_empty(), "{report}");
    for (kind, n) in report.faults.iter() {
        // The hard cases that arise by themselves may count; nothing else.
        let natural = matches!(
            kind,
            FaultKind::EofWithLastData | FaultKind::DetachWithReadinessQueued
        );
        assert!(n == 0 || natural, "{kind} fired {n} times\n{report}");
    }
    for seed in 0..50 {
        assert_eq!(SimConfig::fault_free(seed, 1000).rates, FaultRates::none());
    }
}

#[test]
fn a_chosen_set_of_faults_is_all_that_fires() {
    let chosen = FaultSet::of(&[FaultKind::ShortRead, FaultKind::ShortWrite]);
    let report = Swarm::new(|| (Echo, EchoModel))
        .seeds(0..200)
        .steps(1000)
        .threads(2)
        .constraints(Constraints {
            faults: chosen,
            ..Constraints::none()
        })
        .run();
    assert!(report.failures.is_empty(), "{report}");
    for (kind, n) in report.faults.iter() {
        if chosen.contains(kind) {
            assert!(n > 0, "{kind} never fired\n{report}");
        } else if kind != FaultKind::EofWithLastData && kind != FaultKind::DetachWithReadinessQueued
        {
            assert_eq!(n, 0, "{kind}\n{report}");
        }
    }
}

#[test]
fn fault_sets_parse_and_print() {
    assert_eq!("all".parse::<FaultSet>(), Ok(FaultSet::ALL));
    assert_eq!("none".parse::<FaultSet>(), Ok(FaultSet::NONE));
    let set: FaultSet = "wake-race, short-read".parse().unwrap();
    assert_eq!(
        set,
        FaultSet::of(&[FaultKind::ShortRead, FaultKind::WakeRace])
    );
    assert_eq!(set.to_string(), "short-read,wake-race");
    for kind in FaultKind::ALL {
        assert_eq!(kind.name().parse::<FaultKind>(), Ok(kind));
        let one = FaultSet::NONE.with(kind);
        assert_eq!(one.to_string().parse::<FaultSet>(), Ok(one));
    }
    assert_eq!(
        "short-read,frob".parse::<FaultSet>(),
        Err(ParseFaultError("frob".into()))
    );
    assert!(
        ParseFaultError("frob".into())
            .to_string()
            .contains("wake-race")
    );
}

#[test]
fn the_builder_without_options_is_the_swarm_function() {
    let a = swarm(0..60, 500, 2, || (Echo, EchoModel));
    let b = Swarm::new(|| (Echo, EchoModel))
        .seeds(0..60)
        .steps(500)
        .threads(1)
        .run();
    assert_eq!(a.combined_hash, b.combined_hash);
    assert_eq!((a.seeds, a.steps), (b.seeds, b.steps));
}

#[test]
fn the_progress_hook_sees_every_seed_once() {
    let calls = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let report = {
        let (calls, seen) = (calls.clone(), seen.clone());
        Swarm::new(|| (Echo, EchoModel))
            .seeds(10..50)
            .steps(200)
            .threads(3)
            .progress(move |p| {
                calls.fetch_add(1, Ordering::Relaxed);
                assert_eq!(p.total, 40);
                assert!(p.passed && p.failures == 0);
                seen.lock().unwrap().push((p.seed, p.done));
            })
            .run()
    };
    assert_eq!(report.seeds, 40);
    assert_eq!(calls.load(Ordering::Relaxed), 40);
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_unstable();
    let seeds: Vec<u64> = seen.iter().map(|&(s, _)| s).collect();
    assert_eq!(seeds, (10..50).collect::<Vec<_>>());
    let mut done: Vec<u64> = seen.iter().map(|&(_, d)| d).collect();
    done.sort_unstable();
    assert_eq!(done, (1..=40).collect::<Vec<_>>());
}

/// What the replay of a failing seed runs is what the swarm ran: the same
/// configuration and script, so the same failure.
#[test]
fn a_swarm_replays_its_seeds_with_its_constraints_and_workload() {
    let swarm = Swarm::new(|| (Echo, evio_sim::EchoModel))
        .steps(600)
        .constraints(Constraints {
            min_output_capacity: 64,
            faults: FaultSet::NONE.with(FaultKind::ShortWrite),
            ..Constraints::none()
        })
        .workload(Numbered::default());
    for seed in 0..20 {
        let replay = swarm.replay(seed);
        assert_eq!(replay.config, swarm.config(seed));
        assert_eq!(replay.script, swarm.script(seed, &replay.config));
        assert!(replay.config.engine.output_capacity >= 64);
        let outcome = swarm.run_seed(seed).expect("echo passes");
        assert_eq!(
            outcome.trace_hash, replay.trace_hash,
            "seed {seed}: replay differs"
        );
    }
}
