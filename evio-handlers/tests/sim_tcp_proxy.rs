//! The tcp proxy (`evio_handlers::tcp_proxy::TcpProxy`) in the swarm, in front of the
//! simulator's echo backends, judged by `RelayModel` (every client gets back exactly
//! what it sent, in order, its end of stream passed on; only a backend failure excuses
//! a client closed with bytes owed), with every fault on: connects refused, never
//! answered, slow or reset among them. Once with clients that half-close (end their
//! stream and wait for the rest of the echo), once without; and a mutant proxy that
//! drops what did not fit in its peer's output, which the swarm catches.
//!
//! ```text
//! cargo test -p evio-handlers --features sim --release --test sim_tcp_proxy -- --nocapture
//! ```
#![cfg(feature = "sim")]

use evio_handlers::sim::{tcp_proxy_constraints, tcp_proxy_pair};
use evio_handlers::tcp_proxy::{Side, TcpProxy};
use evio_proto::{Action, Conn, Events};
use evio_sim::{Constraints, FaultKind, FaultSet, RelayModel, Swarm};

const SEEDS: u64 = 300;

/// Every fault, the injected detach included (the proxy closes a detached side's
/// partner).
fn faults() -> FaultSet {
    FaultSet::ALL
}
const STEPS: usize = 1500;

fn swarm_of<H, F>(make: F, half_close: bool) -> Swarm<F>
where
    F: Fn() -> (H, RelayModel) + Sync,
{
    let swarm = Swarm::new(make).steps(STEPS).constraints(Constraints {
        faults: faults(),
        ..tcp_proxy_constraints()
    });
    if half_close {
        swarm
    } else {
        swarm.without_half_close()
    }
}

fn passes(half_close: bool) {
    let report = swarm_of(tcp_proxy_pair, half_close).seeds(0..SEEDS).run();
    println!(
        "tcp proxy swarm (half-close {half_close}): {} seeds x {STEPS} steps, {} bytes \
         written, {} connects, failures: {}",
        report.seeds,
        report.bytes_written,
        report.faults.connects(),
        report.failures.len()
    );
    assert!(
        report.failures.is_empty(),
        "half-close {half_close}: {report}"
    );
    assert!(report.bytes_written > 10_000, "{report}");
    for kind in FaultKind::OUTBOUND {
        assert!(report.faults[kind] > 0, "{kind} never fired\n{report}");
    }
    assert!(report.faults.connects() > 1_000, "{report}");
}

/// Clients that end their stream while some of their input still waits for the
/// backend's drain: the engine tells the proxy of the end only once that input is
/// delivered, so the end is passed on after it (seeds 8, 47, 100 and 222 lost the rest
/// of their echo when the end came first).
#[test]
fn the_tcp_proxy_passes_a_swarm_with_every_fault_and_half_closing_clients() {
    passes(true);
}

#[test]
fn the_tcp_proxy_passes_a_swarm_with_every_fault_and_no_half_close() {
    passes(false);
}

/// The bug of issue 19's item 3: a relay that drops bytes when its peer is full. It
/// relays as the proxy does, but says it consumed all its input although
/// `write_some` took less: what did not fit in the partner's output is lost.
struct DropsWhenFull(TcpProxy);

impl Events for DropsWhenFull {
    type Context = Side;
    evio_proto::delegate_events!(self.0, except data);
    fn data(&mut self, conn: &mut Conn<'_, Side>, input: &[u8]) -> Action {
        let action = self.0.data(conn, input);
        if action == Action::None {
            conn.consume(input.len());
        }
        action
    }
}

#[test]
fn a_proxy_that_drops_bytes_when_its_peer_is_full_is_caught() {
    let report = swarm_of(
        || {
            let (proxy, model) = tcp_proxy_pair();
            (DropsWhenFull(proxy), model)
        },
        false,
    )
    .seeds(0..SEEDS)
    .run();
    println!(
        "drops-when-full tcp proxy: {} of {} seeds fail; first: {}",
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
fn the_same_seed_gives_the_same_tcp_proxy_trace() {
    let swarm = swarm_of(tcp_proxy_pair, false);
    for seed in [0, 5, 42, 299] {
        let a = swarm.run_seed(seed).expect("passes");
        let b = swarm.run_seed(seed).expect("passes");
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed}");
        assert_eq!(a, b, "seed {seed}");
    }
}
