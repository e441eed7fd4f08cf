//! TLS in the simulator: the echo and http handlers behind `Tls`, their clients
//! speaking TLS through rustls (`evio_tls::sim`), checked by the same exact models
//! as over plain TCP, under the simulator's faults, with records cut wherever the
//! windows, short reads and short writes cut them.

use evio_handlers::echo::Echo;
use evio_handlers::sim::{
    echo_tls_constraints, echo_tls_on_listener_0, echo_tls_pair, http_requests,
    http_tls_constraints, http_tls_pair,
};
use evio_proto::{ConnId, ConnInfo, Decoded, Events, Transport, TransportError};
use evio_sim::{
    EchoModel, FaultRates, Rng, ScriptedEvent, Sim, Swarm, Transformed, Violation, run,
};
use evio_tls::{MIN_INPUT_CAPACITY, Tls};

/// A swarm of `seeds` of the echo handler made by `make`, 800 steps each; it must
/// pass.
fn echo_swarm(
    make: fn() -> (Tls<Echo>, Transformed<EchoModel>),
    seeds: core::ops::Range<u64>,
) -> evio_sim::SwarmReport {
    let report = Swarm::new(make)
        .seeds(seeds)
        .steps(800)
        .threads(2)
        .constraints(echo_tls_constraints())
        .run();
    println!("{report}");
    assert!(report.failures.is_empty(), "{report}");
    report
}

#[test]
fn echo_over_tls_passes_a_swarm() {
    let report = echo_swarm(echo_tls_pair, 0..300);
    // (Many clients close or reset before their handshake is over: the server's side
    // of that is checked too.)
    assert!(report.handshakes > 400, "{report}");
    assert!(report.bytes_written > 1_000_000, "{report}");
}

#[test]
fn echo_with_plain_and_tls_listeners_passes_a_swarm() {
    let report = echo_swarm(echo_tls_on_listener_0, 1000..1200);
    assert!(report.handshakes > 100, "{report}");
    assert!(report.handshakes < report.connections, "{report}");
}

#[test]
fn http_over_tls_passes_a_swarm_with_its_exact_model() {
    let report = Swarm::new(http_tls_pair)
        .seeds(0..200)
        .steps(1000)
        .threads(2)
        .constraints(http_tls_constraints())
        .workload(http_requests as fn(u16, &mut Rng) -> Vec<u8>)
        .run();
    println!("{report}");
    assert!(report.failures.is_empty(), "{report}");
    assert!(report.handshakes > 300, "{report}");
}

/// Three clients that finish their handshakes, then send a byte, a few hundred and
/// more than a record's worth, through windows of one byte each way: every record
/// (and every handshake message) is cut at every byte, in both directions.
#[test]
fn records_cut_at_every_byte_arrive_whole_through_tls() {
    let swarm = Swarm::new(echo_tls_pair).constraints(echo_tls_constraints());
    let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let mut script = Vec::new();
    for client in 0..3u16 {
        script.push(ScriptedEvent::Connect { listener: 0 });
        for _ in 0..400 {
            script.push(ScriptedEvent::Read {
                client,
                window: u16::MAX,
            });
        }
        for bytes in [&b"x"[..], &big[..300], &big] {
            script.push(ScriptedEvent::Send {
                client,
                bytes: bytes.to_vec(),
            });
        }
    }
    for seed in 0..3 {
        let mut config = swarm.config(seed);
        config.recv_window = 1;
        config.send_window = 1;
        config.rates = FaultRates::none();
        config.engine.max_connections = config.engine.max_connections.max(4);
        config.listeners = 1;
        let (handler, model) = echo_tls_pair();
        let outcome = run(handler, model, seed, config, &script).unwrap_or_else(|f| panic!("{f}"));
        assert_eq!(outcome.stats.handshakes, 3, "{outcome:?}");
        assert_eq!(outcome.stats.transport_errors, 0, "{outcome:?}");
        // Each client's 20,301 bytes came back: more bytes on the wire than that.
        assert!(outcome.stats.bytes_written > 3 * 20_301, "{outcome:?}");
    }
}

/// A seed over TLS replays exactly: the same trace, byte for byte, twice.
#[test]
fn a_tls_swarm_replays_exactly() {
    let run = || {
        Swarm::new(echo_tls_pair)
            .seeds(0..40)
            .steps(500)
            .threads(2)
            .constraints(echo_tls_constraints())
            .run()
    };
    let (a, b) = (run(), run());
    assert!(a.failures.is_empty() && b.failures.is_empty(), "{a}");
    assert!(a.handshakes > 0, "{a}");
    assert_eq!(a.combined_hash, b.combined_hash);
}

/// A transport that changes the first byte of every fifth record it decodes: the
/// handler and the model agree on what it decoded, so only the check of the decoded
/// plaintext against what the client sent can catch it.
struct Corrupting<H> {
    inner: H,
    decodes: u64,
    kept: Vec<(ConnId, usize)>,
}

impl<H: Events> Events for Corrupting<H> {
    type Context = H::Context;

    evio_proto::delegate_events!(self.inner, except transport);

    fn transport(&mut self) -> Option<&mut dyn Transport> {
        self.inner.transport()?;
        Some(self)
    }
}

impl<H: Events> Corrupting<H> {
    fn inner(&mut self) -> &mut dyn Transport {
        self.inner.transport().expect("a transport")
    }
}

impl<H: Events> Transport for Corrupting<H> {
    fn start(&mut self, info: &ConnInfo) -> Result<bool, TransportError> {
        self.inner().start(info)
    }

    fn decode(&mut self, id: ConnId, bytes: &mut [u8]) -> Result<Decoded, TransportError> {
        let decoded = self.inner().decode(id, bytes)?;
        self.kept.retain(|(k, _)| *k != id);
        self.kept.push((id, decoded.kept));
        if decoded.plain > 0 {
            self.decodes += 1;
            if self.decodes.is_multiple_of(5) {
                bytes[0] ^= 0x20;
            }
        }
        Ok(decoded)
    }

    fn kept(&self, id: ConnId) -> usize {
        self.kept.iter().find(|(k, _)| *k == id).map_or(0, |k| k.1)
    }

    fn encode(&mut self, id: ConnId, plain: &[u8]) -> Result<usize, TransportError> {
        self.inner().encode(id, plain)
    }

    fn outgoing(&mut self, id: ConnId) -> &[u8] {
        self.inner().outgoing(id)
    }

    fn sent(&mut self, id: ConnId, n: usize) {
        self.inner().sent(id, n);
    }

    fn established(&mut self, id: ConnId) -> bool {
        self.inner().established(id)
    }

    fn close(&mut self, id: ConnId) {
        self.inner().close(id);
    }

    fn end(&mut self, id: ConnId) {
        self.inner().end(id);
    }

    fn min_input(&self) -> usize {
        MIN_INPUT_CAPACITY
    }
}

#[test]
fn a_transport_that_corrupts_what_it_decodes_is_caught() {
    let report = Swarm::new(|| {
        let (tls, model) = echo_tls_pair();
        let corrupting = Corrupting {
            inner: tls,
            decodes: 0,
            kept: Vec::new(),
        };
        (corrupting, model)
    })
    .seeds(0..40)
    .steps(500)
    .constraints(echo_tls_constraints())
    .run();
    assert!(!report.failures.is_empty(), "{report}");
    for failure in &report.failures {
        assert!(
            matches!(&failure.violation, Violation::Input { detail, .. } if detail.contains("decoded")),
            "{failure}"
        );
    }
}

/// Behind TLS a response is taken into records at once, so the handler's own count
/// of output pending drops to zero while the client has read nothing: the http
/// handler's send timeout must still reset a client that stops reading (it measures
/// what its transport has not sent).
#[test]
fn an_https_client_that_stops_reading_is_reset_by_the_send_timeout() {
    let swarm = Swarm::new(http_tls_pair).constraints(http_tls_constraints());
    let request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".repeat(4);
    let mut script = vec![ScriptedEvent::Connect { listener: 0 }];
    // The handshake (the client reads the server's flight, answers, and takes the
    // tickets that follow).
    for _ in 0..40 {
        script.push(ScriptedEvent::Read {
            client: 0,
            window: u16::MAX,
        });
    }
    script.push(ScriptedEvent::Send {
        client: 0,
        bytes: request,
    });
    // It reads nothing more while the clock runs past two send timeouts.
    for _ in 0..8 {
        script.push(ScriptedEvent::Poll);
        script.push(ScriptedEvent::Advance { millis: 20 });
    }
    for seed in 0..3 {
        let mut config = swarm.config(seed);
        config.rates = FaultRates::none();
        config.listeners = 1;
        config.recv_window = 1 << 16;
        // Room for the handshake's messages, not for the records of four responses.
        config.send_window = 256;
        let (handler, model) = http_tls_pair();
        let mut sim = Sim::with_config(handler, model, seed, config).expect("a valid config");
        for event in &script {
            if let Err(v) = sim.step(event) {
                panic!("{}", sim.failure(v));
            }
        }
        let stats = sim.handler().inner().stats;
        assert_eq!(sim.engine().stats().handshakes, 1);
        assert_eq!(stats.send_timeouts, 1, "seed {seed}: {stats:?}");
        if let Err(v) = sim.finish() {
            panic!("{}", sim.failure(v));
        }
    }
}
