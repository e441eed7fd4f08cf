//! Seeds that once failed, replayed by an ordinary `cargo test`.

use evio_handlers::echo::Echo;
use evio_sim::{EchoModel, run_seed};

/// (seed, steps, what it found).
const SEEDS: &[(u64, usize, &str)] = &[(
    411,
    1000,
    "engine: input stalled behind full output was dropped when a hang-up made the \
     engine read end of stream (kqueue EV_EOF on a half-close)",
)];

#[test]
fn regression_seeds_pass() {
    for &(seed, steps, what) in SEEDS {
        if let Err(failure) = run_seed(seed, steps, || (Echo, EchoModel)) {
            panic!("regression ({what}): {failure}");
        }
    }
}
