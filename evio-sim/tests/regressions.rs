//! Failures the simulator found, kept as explicit scripts (independent of how seeds
//! make scripts) and replayed by an ordinary `cargo test`.

use evio_handlers::echo::Echo;
use evio_proto::Config;
use evio_sim::{EchoModel, FaultKind, FaultRates, Profile, ScriptedEvent, SimConfig, run};

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
    // The configuration seed 7814 had when this was found, written out so that later
    // changes to how seeds pick configurations do not lose the case.
    let config = SimConfig {
        engine: Config {
            max_connections: 1,
            input_capacity: 512,
            output_capacity: 1,
            accept_batch: 2,
            ..Config::new()
        },
        listeners: 2,
        recv_window: 64,
        send_window: 1,
        rates: rates([
            100000, 100000, 2000, 2000, 20000, 300000, 300000, 100000, 300000, 2000, 300000, 2000,
            100000, 25000, 0, 500,
        ]),
        profile: Profile {
            weights: [2, 40, 60, 3, 0, 0, 15, 3, 5],
            max_send: 8,
            max_window: 1,
            max_clients: 4,
            listeners: 2,
        },
    };
    if let Err(failure) = run(Echo, EchoModel, seed, config, &script) {
        panic!("{failure}");
    }
}

/// Fault rates per million, in [`FaultKind::ALL`] order.
fn rates(per_million: [u32; 16]) -> FaultRates {
    let mut rates = FaultRates::none();
    for (kind, rate) in FaultKind::ALL.into_iter().zip(per_million) {
        rates.set(kind, rate);
    }
    rates
}
