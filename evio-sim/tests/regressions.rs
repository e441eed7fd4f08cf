//! Failures the simulator found, kept as explicit scripts (independent of how seeds
//! make scripts) and replayed by an ordinary `cargo test`. Each is also a committed
//! seed of the `engine_script` fuzz target (`fuzz/seeds/engine_script/regression-*`),
//! checked here against its script.

use evio_handlers::echo::Echo;
use evio_proto::Config;
use evio_sim::seeds::keep_seed;
use evio_sim::{EchoModel, FaultRates, FuzzCase, Profile, ScriptedEvent, SimConfig, run};

use ScriptedEvent::{Advance, Connect, HalfClose, Poll, Read, Send, Wake};

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
        rates: FaultRates {
            short_read: 100_000,
            short_write: 100_000,
            read_again: 2_000,
            write_again: 2_000,
            spurious_readiness: 20_000,
            eof_with_last_data: 300_000,
            reset_mid_stream: 300_000,
            broken_pipe: 100_000,
            accept_exhausted: 300_000,
            accept_aborted: 2_000,
            pool_full: 300_000,
            wake_race: 2_000,
            tick_between_events: 100_000,
            detach_with_readiness_queued: 25_000,
            shutdown_with_output_pending: 0,
            close_with_output_pending: 500,
            // (No outbound connects: echo does not connect out.)
            ..FaultRates::none()
        },
        profile: Profile {
            weights: [2, 40, 60, 3, 0, 0, 15, 3, 5, 0],
            max_send: 8,
            max_window: 1,
            max_clients: 4,
            listeners: 2,
        },
        ticker: None,
    };
    replay_and_keep(seed, config, &script);
}

/// Found by seed 10835 (3000 steps) once the simulator checked that no `data` follows
/// a handler's `Close` or `Detach`: the fix above kept handing stalled input to the
/// handler after it returned `Detach` during that drain. Now a `Close` ends the drain
/// and a `Detach` detaches, as if the end of stream had not been read yet.
#[test]
fn no_data_after_detach_while_draining_input_before_eof() {
    let seed = 10835;
    let script = [
        Connect { listener: 0 },
        Advance { millis: 1 },
        Send {
            client: 0,
            bytes: vec![0x81, b'F', 0xbe, 0x8e, 0xf3],
        },
        Advance { millis: 0 },
        Send {
            client: 0,
            bytes: vec![b'4', 0xc0, 0xa8, 0xba, 0xf7, 0xa6, 0x0e, 0xf4],
        },
        Send {
            client: 0,
            bytes: vec![b'_'],
        },
        HalfClose { client: 0 },
        Advance { millis: 5 },
        Send {
            client: 0,
            bytes: vec![b'%'],
        },
        Advance { millis: 50 },
        Read {
            client: 0,
            window: 1,
        },
    ];
    let config = SimConfig {
        engine: Config {
            max_connections: 40,
            input_capacity: 512,
            output_capacity: 5,
            accept_batch: 2,
            ..Config::new()
        },
        listeners: 1,
        recv_window: 4096,
        send_window: 7,
        rates: FaultRates {
            short_read: 300_000,
            short_write: 300_000,
            read_again: 2_000,
            write_again: 100_000,
            spurious_readiness: 2_000,
            eof_with_last_data: 100_000,
            reset_mid_stream: 20_000,
            broken_pipe: 2_000,
            accept_exhausted: 300_000,
            accept_aborted: 20_000,
            pool_full: 2_000,
            wake_race: 100_000,
            tick_between_events: 2_000,
            detach_with_readiness_queued: 75_000,
            shutdown_with_output_pending: 6_000,
            close_with_output_pending: 5_000,
            // (No outbound connects: echo does not connect out.)
            ..FaultRates::none()
        },
        profile: Profile {
            weights: [5, 40, 10, 3, 1, 1, 15, 10, 5, 0],
            max_send: 8,
            max_window: 16,
            max_clients: 4,
            listeners: 1,
        },
        ticker: None,
    };
    replay_and_keep(seed, config, &script);
}

/// Found by seed 613 (3000 steps) once the simulator reported kqueue's EV_EOF as soon
/// as a FIN arrives, with data still buffered: a hang-up made a connection whose
/// handler had returned `Detach` (output still blocked) read again and call `data`.
/// A connection that is closing or detaching no longer reads on a hang-up.
#[test]
fn no_read_on_hangup_after_the_handler_detached() {
    let seed = 613;
    let script = [
        Connect { listener: 0 },
        Send {
            client: 0,
            bytes: vec![b'6', 0xc7, 0x82],
        },
        Wake { client: 0 },
        Send {
            client: 0,
            bytes: vec![b'?', 0xc8, b'd'],
        },
        Wake { client: 0 },
        Poll,
        Send {
            client: 0,
            bytes: vec![
                0xfe, 0xa3, b'_', 0xcc, 0xb7, 0xe8, 0x1f, 0xa6, b'_', b'N', 0x90, b'\t', b'c',
                b'j', b'T', b' ', 0x9c, 0x04, 0xde,
            ],
        },
        HalfClose { client: 0 },
        Wake { client: 0 },
        Send {
            client: 0,
            bytes: vec![0x1a],
        },
        Send {
            client: 0,
            bytes: vec![0xd7],
        },
        Wake { client: 0 },
        Connect { listener: 0 },
        Poll,
    ];
    let config = SimConfig {
        engine: Config {
            max_connections: 2,
            input_capacity: 16,
            output_capacity: 512,
            accept_batch: 64,
            ..Config::new()
        },
        listeners: 1,
        recv_window: 4096,
        send_window: 7,
        rates: FaultRates {
            short_read: 100_000,
            short_write: 2_000,
            read_again: 20_000,
            write_again: 100_000,
            spurious_readiness: 0,
            eof_with_last_data: 20_000,
            reset_mid_stream: 0,
            broken_pipe: 20_000,
            accept_exhausted: 100_000,
            accept_aborted: 300_000,
            pool_full: 2_000,
            wake_race: 0,
            tick_between_events: 0,
            detach_with_readiness_queued: 25_000,
            shutdown_with_output_pending: 0,
            close_with_output_pending: 75_000,
            // (No outbound connects: echo does not connect out.)
            ..FaultRates::none()
        },
        profile: Profile {
            weights: [20, 60, 10, 1, 1, 0, 15, 3, 5, 0],
            max_send: 300,
            max_window: 4096,
            max_clients: 4,
            listeners: 1,
        },
        ticker: None,
    };
    replay_and_keep(seed, config, &script);
}

/// Runs the script (echo, its model, the configuration), then checks that the
/// `engine_script` fuzz target's seed for it is committed:
/// `regression-seed-<seed>`, the handler byte (0, echo) then the case's bytes.
fn replay_and_keep(seed: u64, config: SimConfig, script: &[ScriptedEvent]) {
    let case = FuzzCase {
        seed,
        config: config.clone(),
        script: script.to_vec(),
    };
    let mut input = vec![0];
    input.extend(case.to_bytes());
    if let Err(e) = keep_seed("engine_script", &format!("regression-seed-{seed}"), &input) {
        panic!("{e}");
    }
    if let Err(failure) = run(Echo, EchoModel, seed, config, script) {
        panic!("{failure}");
    }
}
