//! Failures the simulator found, kept as explicit scripts (independent of how seeds
//! make scripts) and replayed by an ordinary `cargo test`.

use evio_handlers::echo::Echo;
use evio_sim::{EchoModel, ScriptedEvent, SimConfig, run};

use ScriptedEvent::{Connect, HalfClose, Read, Send, Wake};

/// Engine bug found by seed 411 (1000 steps, first simulator version; this script is
/// the same failure shrunk from seed 7814): a hang-up report on a half-closed
/// connection (kqueue's EV_EOF) made the engine read the end of stream while echo
/// input was stalled behind full output, and it closed without handing that input to
/// the handler, so the client lost its last echoes.
#[test]
fn eof_on_hangup_does_not_drop_stalled_input() {
    let seed = 7814;
    let script = [
        Connect { listener: 1 },
        Wake { client: 0 },
        Read {
            client: 0,
            window: 1,
        },
        Send {
            client: 0,
            bytes: vec![0xa7, 0xe6, 0xed, 0x1d, 0xec, 0xa8, 0xe1],
        },
        Read {
            client: 0,
            window: 1,
        },
        HalfClose { client: 0 },
        Read {
            client: 0,
            window: 1,
        },
        Read {
            client: 0,
            window: 1,
        },
    ];
    let config = SimConfig::from_seed(seed);
    if let Err(failure) = run(Echo, EchoModel, seed, config, &script) {
        panic!("{failure}");
    }
}
