//! quickcheck properties over generated scripts, with shrinking to a minimal script.

use core::fmt;

use evio_handlers::echo::Echo;
use evio_proto::{Action, Conn, Events};
use evio_sim::{EchoModel, Rng, ScriptedEvent, SimConfig, format_script, run};
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

/// A seed (configuration and faults) and a script, shrinkable to fewer and smaller
/// events.
#[derive(Clone)]
struct Case {
    seed: u64,
    events: Vec<ScriptedEvent>,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} with {} events:\n{}",
            self.seed,
            self.events.len(),
            format_script(&self.events)
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
        Case { seed, events }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let mut out = Vec::new();
        let n = self.events.len();
        let mut chunk = n / 2;
        while chunk >= 1 {
            let mut i = 0;
            while i < n {
                let mut events = self.events[..i].to_vec();
                events.extend_from_slice(&self.events[(i + chunk).min(n)..]);
                out.push(Case {
                    seed: self.seed,
                    events,
                });
                i += chunk;
            }
            chunk /= 2;
        }
        for (i, ev) in self.events.iter().enumerate() {
            if let ScriptedEvent::Send { client, bytes } = ev
                && bytes.len() > 1
            {
                let mut events = self.events.clone();
                events[i] = ScriptedEvent::Send {
                    client: *client,
                    bytes: bytes[..bytes.len() / 2].to_vec(),
                };
                out.push(Case {
                    seed: self.seed,
                    events,
                });
            }
        }
        Box::new(out.into_iter())
    }
}

fn check(property: fn(Case) -> bool, seed: u64, tests: u64) {
    QuickCheck::new()
        .rng(Gen::from_size_and_seed(300, seed))
        .tests(tests)
        .quickcheck(property);
}

fn echo_passes(case: Case) -> bool {
    match run(
        Echo,
        EchoModel,
        case.seed,
        SimConfig::from_seed(case.seed),
        &case.events,
    ) {
        Ok(_) => true,
        Err(failure) => {
            eprintln!("{failure}");
            false
        }
    }
}

fn replays_identically(case: Case) -> bool {
    let a = run(
        Echo,
        EchoModel,
        case.seed,
        SimConfig::from_seed(case.seed),
        &case.events,
    );
    let b = run(
        Echo,
        EchoModel,
        case.seed,
        SimConfig::from_seed(case.seed),
        &case.events,
    );
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
    let r = run(
        Lossy,
        EchoModel,
        case.seed,
        SimConfig::from_seed(case.seed),
        &case.events,
    );
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
    let events = args.matches(": ").count();
    assert!(
        events <= 8,
        "shrunk script still has {events} events: {args}"
    );
}
