//! A whole run as bytes: the input format of the fuzz targets, with an exact inverse so
//! that seeds can be written from readable scripts.

use evio_proto::{Config, Duration, Events};

use crate::{Failure, FaultKind, FaultRates, Model, Origin, ScriptedEvent, Sim, SimConfig};

/// A run made from any bytes: a seed (which drives the faults), a configuration
/// (capacities, socket windows, listeners, a ticker, the fault plan) and a script.
///
/// [`FuzzCase::from_bytes`] reads every byte string as a case, so every mutation a
/// fuzzer makes is a valid run; [`FuzzCase::to_bytes`] writes a case back as the bytes
/// that read as it, so seed inputs are written from scripts a person can read (a past
/// failure's shrunk script, a hand-made pipeline of requests).
///
/// ```
/// use evio_handlers::echo::Echo;
/// use evio_sim::{EchoModel, FuzzCase, ScriptedEvent};
///
/// let mut case = FuzzCase::from_bytes(&[]); // all zeros: the smallest configuration
/// case.script = vec![
///     ScriptedEvent::Connect { listener: 0 },
///     ScriptedEvent::Send { client: 0, bytes: b"hello".to_vec() },
/// ];
/// assert_eq!(FuzzCase::from_bytes(&case.to_bytes()), case);
/// let sim = case.run(Echo, EchoModel).unwrap();
/// assert_eq!(sim.received_bytes(0), Some(&b"hello"[..]));
/// ```
///
/// # Format
///
/// Integers are little-endian; a byte past the end reads as 0 (so a short input is a
/// whole header and, at worst, a last event with zero fields).
///
/// | bytes | field | value |
/// |---|---|---|
/// | 8 | seed | as is |
/// | 1 | `engine.max_connections` | 1 + b % 128 |
/// | 2 | `engine.input_capacity` | 1 + v % 4096 |
/// | 2 | `engine.output_capacity` | 1 + v % 4096 |
/// | 1 | `engine.accept_batch` | 1 + b % 64 |
/// | 1 | `listeners` | 1 + b % 3 |
/// | 2 | `recv_window` | 1 + v % 4096 |
/// | 2 | `send_window` | 1 + v % 4096 |
/// | 1 | `ticker` | 0: none; n: n - 1 ms |
/// | 16 × 4 | `rates` of [`FaultKind::ACCEPTED`], in that order | v % 1,000,001 per million |
/// | 2 | `engine.coalesce` | 0: none; v: v µs |
/// | 2 | `engine.send_timeout` | 0: the default (60 s); 65,535: none; v: v ms |
///
/// Then events until the bytes end (at most [`FuzzCase::MAX_EVENTS`]), each a tag byte
/// (taken modulo 10) and its fields:
///
/// | tag | event | fields |
/// |---|---|---|
/// | 0 | `Connect` | listener: 1 byte |
/// | 1 | `Send` | client: 2, length: 2, then that many bytes (fewer if the input ends) |
/// | 2 | `Read` | client: 2, window: 2 |
/// | 3, 4, 5, 6 | `HalfClose`, `Close`, `Reset`, `Wake` | client: 2 |
/// | 7 | `WakeServer` | |
/// | 8 | `Advance` | millis: 2 |
/// | 9 | `Poll` | |
///
/// What is not in the format takes its default: the rest of the engine's
/// [`Config`] is [`Config::new`]'s, and the script profile (which only makes a seed's
/// own scripts, unused here), the rates of the outbound connects
/// ([`FaultKind::OUTBOUND`], which only a handler that connects out meets) and
/// `engine.batch_sends` are [`SimConfig::from_seed`]'s for the seed: the format is the
/// one it was before outbound connections and batched sends, and
/// [`FuzzCase::to_bytes`] does not write them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuzzCase {
    /// The seed: the fault stream, the delivery order and every I/O result.
    pub seed: u64,
    /// The configuration.
    pub config: SimConfig,
    /// The script.
    pub script: Vec<ScriptedEvent>,
}

/// Reads the format's fields; past the end, zeros.
struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }

    /// `len` bytes, or as many as are left.
    fn bytes(&mut self, len: usize) -> &[u8] {
        let (taken, rest) = self.data.split_at(len.min(self.data.len()));
        self.data = rest;
        taken
    }
}

/// The ranges of the format's configuration fields (each value is 1 + its field modulo
/// these).
const CONNECTIONS: u64 = 128;
const CAPACITY: u64 = 4096;
const BATCH: u64 = 64;
const LISTENERS: u64 = 3;
const WINDOW: u64 = 4096;
const RATE: u64 = 1_000_001;

/// `1 + v % modulus`.
fn one_plus(v: impl Into<u64>, modulus: u64) -> u64 {
    1 + v.into() % modulus
}

/// The field that reads as `value` (`1 + field % modulus`), for a value in range.
fn field(value: u64, modulus: u64) -> u64 {
    value.saturating_sub(1) % modulus
}

impl FuzzCase {
    /// Most events read from one input: a bound on a run's length whatever the input.
    pub const MAX_EVENTS: usize = 4096;

    /// Reads `data` as a case (see the format above). Every byte string is one.
    pub fn from_bytes(data: &[u8]) -> FuzzCase {
        let mut r = Reader { data };
        let seed = r.u64();
        let engine = Config {
            max_connections: one_plus(r.u8(), CONNECTIONS) as usize,
            input_capacity: one_plus(r.u16(), CAPACITY) as usize,
            output_capacity: one_plus(r.u16(), CAPACITY) as usize,
            accept_batch: one_plus(r.u8(), BATCH) as u32,
            ..Config::new()
        };
        let listeners = one_plus(r.u8(), LISTENERS) as u8;
        let recv_window = one_plus(r.u16(), WINDOW) as usize;
        let send_window = one_plus(r.u16(), WINDOW) as usize;
        let ticker = match r.u8() {
            0 => None,
            n => Some(Duration::from_millis(u64::from(n) - 1)),
        };
        let mut rates = FaultRates::none();
        for kind in FaultKind::ACCEPTED {
            rates.set(kind, (u64::from(r.u32()) % RATE) as u32);
        }
        let coalesce = match r.u16() {
            0 => None,
            us => Some(Duration::from_micros(u64::from(us))),
        };
        let send_timeout = match r.u16() {
            0 => Config::new().send_timeout,
            u16::MAX => None,
            ms => Some(Duration::from_millis(u64::from(ms))),
        };
        let drawn = SimConfig::from_seed(seed);
        let engine = Config {
            coalesce,
            send_timeout,
            batch_sends: drawn.engine.batch_sends,
            ..engine
        };
        for kind in FaultKind::OUTBOUND {
            rates.set(kind, drawn.rates.get(kind));
        }
        let mut profile = drawn.profile;
        profile.listeners = listeners;
        let config = SimConfig {
            engine,
            listeners,
            recv_window,
            send_window,
            rates,
            profile,
            ticker,
        };
        let mut script = Vec::new();
        while !r.data.is_empty() && script.len() < Self::MAX_EVENTS {
            let event = match r.u8() % 10 {
                0 => ScriptedEvent::Connect { listener: r.u8() },
                1 => {
                    let client = r.u16();
                    let len = usize::from(r.u16());
                    ScriptedEvent::Send {
                        client,
                        bytes: r.bytes(len).to_vec(),
                    }
                }
                2 => ScriptedEvent::Read {
                    client: r.u16(),
                    window: r.u16(),
                },
                3 => ScriptedEvent::HalfClose { client: r.u16() },
                4 => ScriptedEvent::Close { client: r.u16() },
                5 => ScriptedEvent::Reset { client: r.u16() },
                6 => ScriptedEvent::Wake { client: r.u16() },
                7 => ScriptedEvent::WakeServer,
                8 => ScriptedEvent::Advance { millis: r.u16() },
                _ => ScriptedEvent::Poll,
            };
            script.push(event);
        }
        FuzzCase {
            seed,
            config,
            script,
        }
    }

    /// Writes the case as the bytes [`FuzzCase::from_bytes`] reads as it.
    ///
    /// Exact for every case `from_bytes` makes, and for any case whose values lie in the
    /// format's ranges, whose other fields have the defaults named in the format, and
    /// whose `Send` payloads are at most 65,535 bytes. Other values are written reduced
    /// into range (and read back as something else).
    pub fn to_bytes(&self) -> Vec<u8> {
        let c = &self.config;
        let mut out = Vec::new();
        out.extend(self.seed.to_le_bytes());
        out.push(field(c.engine.max_connections as u64, CONNECTIONS) as u8);
        out.extend((field(c.engine.input_capacity as u64, CAPACITY) as u16).to_le_bytes());
        out.extend((field(c.engine.output_capacity as u64, CAPACITY) as u16).to_le_bytes());
        out.push(field(u64::from(c.engine.accept_batch), BATCH) as u8);
        out.push(field(u64::from(c.listeners), LISTENERS) as u8);
        out.extend((field(c.recv_window as u64, WINDOW) as u16).to_le_bytes());
        out.extend((field(c.send_window as u64, WINDOW) as u16).to_le_bytes());
        out.push(match c.ticker {
            None => 0,
            Some(d) => (d.as_millis().min(254) + 1) as u8,
        });
        for kind in FaultKind::ACCEPTED {
            out.extend(((u64::from(c.rates.get(kind)) % RATE) as u32).to_le_bytes());
        }
        let coalesce = c
            .engine
            .coalesce
            .map_or(0, |d| d.as_micros().clamp(1, 65_535));
        out.extend((coalesce as u16).to_le_bytes());
        let send_timeout = match c.engine.send_timeout {
            None => u16::MAX,
            Some(d) if Some(d) == Config::new().send_timeout => 0,
            Some(d) => d.as_millis().clamp(1, u128::from(u16::MAX - 1)) as u16,
        };
        out.extend(send_timeout.to_le_bytes());
        let client = |out: &mut Vec<u8>, tag: u8, client: u16| {
            out.push(tag);
            out.extend(client.to_le_bytes());
        };
        for event in self.script.iter().take(Self::MAX_EVENTS) {
            match event {
                ScriptedEvent::Connect { listener } => out.extend([0, *listener]),
                ScriptedEvent::Send { client: c, bytes } => {
                    let bytes = &bytes[..bytes.len().min(usize::from(u16::MAX))];
                    client(&mut out, 1, *c);
                    out.extend((bytes.len() as u16).to_le_bytes());
                    out.extend(bytes);
                }
                ScriptedEvent::Read { client: c, window } => {
                    client(&mut out, 2, *c);
                    out.extend(window.to_le_bytes());
                }
                ScriptedEvent::HalfClose { client: c } => client(&mut out, 3, *c),
                ScriptedEvent::Close { client: c } => client(&mut out, 4, *c),
                ScriptedEvent::Reset { client: c } => client(&mut out, 5, *c),
                ScriptedEvent::Wake { client: c } => client(&mut out, 6, *c),
                ScriptedEvent::WakeServer => out.push(7),
                ScriptedEvent::Advance { millis } => {
                    out.push(8);
                    out.extend(millis.to_le_bytes());
                }
                ScriptedEvent::Poll => out.push(9),
            }
        }
        out
    }

    /// Runs the case against `handler`, checked against `model`: every event with its
    /// invariants, then the liveness phase and the final checks, as [`run`](crate::run)
    /// does; but the simulation is returned, so that the handler and the model can be
    /// compared at the end (a store against the model's, say).
    ///
    /// A panic of the engine, the handler or the model is not caught: a fuzzer reports
    /// it where it happened.
    ///
    /// # Errors
    ///
    /// A [`Failure`] whose report holds the configuration and the script
    /// ([`Origin::Script`]).
    pub fn run<H: Events, M: Model>(&self, handler: H, model: M) -> Result<Sim<H, M>, Failure> {
        let mut sim =
            Sim::with_config(handler, model, self.seed, self.config.clone()).map_err(|v| {
                Failure {
                    seed: self.seed,
                    steps: self.script.len(),
                    at_step: 0,
                    violation: v,
                    test: crate::test_name(),
                    origin: Box::new(Origin::Script {
                        config: Box::new(self.config.clone()),
                        script: self.script.clone(),
                    }),
                }
            })?;
        for event in &self.script {
            if let Err(v) = sim.step(event) {
                return Err(sim.failure(v));
            }
        }
        match sim.finish() {
            Ok(_) => Ok(sim),
            Err(v) => Err(sim.failure(v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EchoModel, Rng};

    #[test]
    fn every_input_reads_and_writes_back_exactly() {
        let mut rng = Rng::new(11);
        for len in [0, 1, 7, 50, 83, 84, 85, 300, 2000] {
            for _ in 0..50 {
                let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                let case = FuzzCase::from_bytes(&data);
                assert_eq!(FuzzCase::from_bytes(&case.to_bytes()), case, "{data:?}");
            }
        }
    }

    #[test]
    fn a_written_case_reads_back_as_it_was() {
        let mut case = FuzzCase::from_bytes(&[]);
        case.seed = 7814;
        case.config.engine.max_connections = 128;
        case.config.engine.input_capacity = 4096;
        case.config.engine.output_capacity = 1;
        case.config.engine.accept_batch = 64;
        case.config.listeners = 3;
        case.config.recv_window = 4096;
        case.config.send_window = 1;
        case.config.ticker = Some(Duration::from_millis(254));
        case.config.rates.wake_race = 1_000_000;
        case.config.profile = SimConfig::from_seed(7814).profile;
        case.config.profile.listeners = 3;
        // The outbound rates and the batching of sends are the seed's, as the profile
        // is.
        for kind in FaultKind::OUTBOUND {
            let rate = SimConfig::from_seed(7814).rates.get(kind);
            case.config.rates.set(kind, rate);
        }
        case.config.engine.batch_sends = SimConfig::from_seed(7814).engine.batch_sends;
        case.script = vec![
            ScriptedEvent::Connect { listener: 255 },
            ScriptedEvent::Send {
                client: u16::MAX,
                bytes: vec![9; 70_000],
            },
            ScriptedEvent::Read {
                client: 1,
                window: 0,
            },
            ScriptedEvent::HalfClose { client: 2 },
            ScriptedEvent::Close { client: 3 },
            ScriptedEvent::Reset { client: 4 },
            ScriptedEvent::Wake { client: 5 },
            ScriptedEvent::WakeServer,
            ScriptedEvent::Advance { millis: 65535 },
            ScriptedEvent::Poll,
        ];
        let again = FuzzCase::from_bytes(&case.to_bytes());
        // A payload over 65,535 bytes is cut there; everything else is exact.
        let ScriptedEvent::Send { bytes, .. } = &mut case.script[1] else {
            unreachable!()
        };
        bytes.truncate(65_535);
        assert_eq!(again, case);
        // A value out of range is reduced, not kept.
        case.config.engine.input_capacity = 4097;
        assert_eq!(
            FuzzCase::from_bytes(&case.to_bytes())
                .config
                .engine
                .input_capacity,
            1
        );
    }

    /// Sends one byte nobody asked for as each connection opens.
    struct Chatty;

    impl Events for Chatty {
        type Context = ();
        fn opened(&mut self, conn: &mut evio_proto::Conn<'_, ()>) -> evio_proto::Action {
            let _ = conn.write(b"!");
            evio_proto::Action::None
        }
    }

    #[test]
    fn a_case_runs_and_a_failure_keeps_its_script() {
        let mut case = FuzzCase::from_bytes(&[0; 84]);
        case.config.engine.output_capacity = 16;
        case.script = vec![
            ScriptedEvent::Connect { listener: 0 },
            ScriptedEvent::Send {
                client: 0,
                bytes: b"abc".to_vec(),
            },
        ];
        let sim = case.run(evio_handlers::echo::Echo, EchoModel).unwrap();
        assert_eq!(sim.received_bytes(0), Some(&b"abc"[..]));
        let failure = case.run(Chatty, EchoModel).unwrap_err();
        assert!(
            matches!(failure.violation, crate::Violation::Model { client: 0, .. }),
            "{failure}"
        );
        assert_eq!(
            *failure.origin,
            Origin::Script {
                config: Box::new(case.config.clone()),
                script: case.script.clone(),
            }
        );
    }
}
