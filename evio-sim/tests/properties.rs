//! quickcheck properties over generated scripts, with shrinking to a minimal script.

use core::fmt;

use evio_handlers::echo::Echo;
use evio_proto::{Action, Conn, Events};
use evio_sim::{
    EchoModel, FaultRates, Rng, ScriptedEvent, SimConfig, format_script, resolve_clients, run,
    smaller_scripts,
};
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

/// A seed (configuration and fault stream), whether faults are on, and a script;
/// shrinks to faults off, then to fewer and smaller events.
#[derive(Clone)]
struct Case {
    seed: u64,
    faults: bool,
    events: Vec<ScriptedEvent>,
}

impl Case {
    fn config(&self) -> SimConfig {
        let config = SimConfig::from_seed(self.seed);
        if self.faults {
            config
        } else {
            SimConfig {
                rates: FaultRates::none(),
                ..config
            }
        }
    }

    fn run<H: Events>(&self, handler: H) -> Result<evio_sim::Outcome, evio_sim::Failure> {
        run(handler, EchoModel, self.seed, self.config(), &self.events)
    }
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let faults = if self.faults { "on" } else { "off" };
        write!(
            f,
            "seed {}, faults {faults}, {} events:\n{}",
            self.seed,
            self.events.len(),
            format_script(&resolve_clients(&self.events))
        )
    }
}

impl Arbitrary for Case {
    fn arbitrary(g: &mut Gen) -> Self {
        let seed = u64::arbitrary(g);
        let len = usize::arbitrary(g) % (g.size() + 1);
        // The seed's own event mix makes realistic scripts; the Gen picks which.
        let events = SimConfig::from_seed(seed)
            .profile
            .script(&mut Rng::new(u64::arbitrary(g)), len);
        Case {
            seed,
            faults: true,
            events,
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let (seed, faults) = (self.seed, self.faults);
        let quiet = faults.then(|| Case {
            seed,
            faults: false,
            events: self.events.clone(),
        });
        let smaller = smaller_scripts(&self.events).map(move |events| Case {
            seed,
            faults,
            events,
        });
        Box::new(quiet.into_iter().chain(smaller))
    }
}

fn check(property: fn(Case) -> bool, seed: u64, tests: u64) {
    QuickCheck::new()
        .rng(Gen::from_size_and_seed(300, seed))
        .tests(tests)
        .quickcheck(property);
}

fn echo_passes(case: Case) -> bool {
    match case.run(Echo) {
        Ok(_) => true,
        Err(failure) => {
            eprintln!("{failure}");
            false
        }
    }
}

fn replays_identically(case: Case) -> bool {
    let a = case.run(Echo);
    let b = case.run(Echo);
    a == b
}

#[test]
fn echo_passes_every_generated_script() {
    check(echo_passes, 1, 300);
}

#[test]
fn a_script_replays_to_the_same_trace() {
    check(replays_identically, 2, 100);
}

/// An echo that loses every byte after the 20th on each connection's data: the
/// invariants must catch it, and quickcheck must shrink the script to a few events.
#[derive(Default)]
struct Lossy;

impl Events for Lossy {
    type Context = usize;
    fn data(&mut self, conn: &mut Conn<'_, usize>, input: &[u8]) -> Action {
        let seen = *conn.context();
        let keep = input.len().min(20usize.saturating_sub(seen));
        let n = conn.write_some(&input[..keep]);
        *conn.context() += n;
        if n < keep {
            conn.consume(n);
        }
        Action::None
    }
}

fn lossy_passes(case: Case) -> TestResult {
    let r = case.run(Lossy);
    TestResult::from_bool(r.is_ok())
}

#[test]
fn a_broken_handler_is_caught_and_shrunk() {
    let result = QuickCheck::new()
        .rng(Gen::from_size_and_seed(300, 3))
        .tests(300)
        .quicktest(lossy_passes as fn(Case) -> TestResult);
    let witness = result.expect_err("the lossy handler must fail some script");
    let args = format!("{witness:?}");
    // The shrunk witness is small: one connect and a send of more than 20 bytes suffice.
    // Each event is a numbered line: "   3: send c0 …".
    let events = args
        .split("\\n")
        .filter(|line| {
            line.trim_start()
                .split(':')
                .next()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .count();
    assert!(
        (2..=8).contains(&events),
        "shrunk script still has {events} events: {args}"
    );
}

/// With the `arbitrary` feature (for cargo-fuzz), any bytes make a seed and a script
/// that runs: `cargo test -p evio-sim --features arbitrary`.
#[cfg(feature = "arbitrary")]
#[test]
fn arbitrary_bytes_make_runnable_scripts() {
    use evio_sim::arbitrary::{Arbitrary as Fuzz, Unstructured};
    let mut runs = 0;
    for salt in 0..200u64 {
        let mut rng = Rng::new(salt);
        let data: Vec<u8> = (0..2048).map(|_| rng.next_u64() as u8).collect();
        let mut u = Unstructured::new(&data);
        let seed = <u64 as Fuzz>::arbitrary(&mut u).expect("enough bytes");
        // Events until the bytes run out (as a fuzz target takes them).
        let mut script = Vec::new();
        while !u.is_empty() && script.len() < 1000 {
            script.push(<ScriptedEvent as Fuzz>::arbitrary(&mut u).expect("any bytes are events"));
        }
        runs += script.len();
        if let Err(failure) = run(Echo, EchoModel, seed, SimConfig::from_seed(seed), &script) {
            panic!("{failure}\n{}", format_script(&script));
        }
    }
    assert!(runs > 200 * 50, "scripts were short: {runs} events in all");
}

/// A configuration the simulated world cannot have is reported as such (not as a panic
/// of the engine or the handler), and odd scripts run: events for clients that never
/// connected, empty sends, zero read windows, a listener number out of range, repeated
/// resets, a wake after the close.
#[test]
fn odd_configurations_and_scripts_do_not_panic() {
    use ScriptedEvent::{Advance, Close, Connect, HalfClose, Read, Reset, Send, Wake};
    let base = SimConfig::from_seed(5);
    for (listeners, recv_window, send_window) in [(0, 64, 64), (17, 64, 64), (1, 0, 64), (1, 64, 0)]
    {
        let config = SimConfig {
            listeners,
            recv_window,
            send_window,
            ..base.clone()
        };
        let failure = run(Echo, EchoModel, 5, config, &[Connect { listener: 0 }])
            .expect_err("the configuration is refused");
        assert!(
            matches!(failure.violation, evio_sim::Violation::Config(_)),
            "{failure}"
        );
    }
    let script = [
        Send {
            client: 3,
            bytes: vec![],
        },
        Read {
            client: 9,
            window: 0,
        },
        Wake { client: 0 },
        Connect { listener: 200 },
        Send {
            client: 7,
            bytes: vec![],
        },
        Read {
            client: 0,
            window: 0,
        },
        Advance { millis: u16::MAX },
        Reset { client: 1 },
        Reset { client: 1 },
        Close { client: 0 },
        HalfClose { client: 0 },
        Wake { client: 0 },
    ];
    for seed in 0..50 {
        if let Err(failure) = run(Echo, EchoModel, seed, SimConfig::from_seed(seed), &script) {
            panic!("{failure}");
        }
    }
    // More clients than a u16 counts: removing one still works.
    let many = vec![Connect { listener: 0 }; 70_000];
    assert_eq!(evio_sim::without_client(&many, 3).len(), 69_999);
}

/// The stale-wake scenario, made likely: a wake lands, its notification is deferred
/// (half the time, by the wake-race rate), the client closes, and a new client takes
/// the only slot before the loop handles the wake. An engine that delivered the old
/// wake to the new connection fails here ("woken with no wake made for this
/// connection").
#[test]
fn a_closed_connections_wake_never_reaches_the_next_in_its_slot() {
    use ScriptedEvent::{Close, Connect, Poll, Wake};
    let rates = FaultRates {
        wake_race: 500_000,
        ..FaultRates::none()
    };
    let mut script = Vec::new();
    for k in 0..40u16 {
        script.extend([
            Connect { listener: 0 },
            Poll,
            Wake { client: k },
            Close { client: k },
        ]);
    }
    for seed in 0..20 {
        let config = SimConfig {
            engine: evio_proto::Config {
                max_connections: 1,
                ..SimConfig::from_seed(seed).engine
            },
            listeners: 1,
            recv_window: 64,
            send_window: 64,
            rates: rates.clone(),
            ticker: None,
            ..SimConfig::from_seed(seed)
        };
        if let Err(failure) = run(Echo, EchoModel, seed, config, &script) {
            panic!("{failure}");
        }
    }
}
