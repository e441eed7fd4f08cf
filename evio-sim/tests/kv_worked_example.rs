//! The worked example of evio-sim's crate docs at full size: the same key-value server
//! (state shared between connections, keys with a time to live, idle timeouts), its
//! exact model built on `Model::consumed` and the engine's time it is given, and its
//! workload of valid requests mixed with garbage, run across thousands of seeds with
//! faults; and two mutants of the handler, which the same swarm catches. The handler
//! and the model here also count what they did, for the summary.
//!
//! ```text
//! cargo test -p evio-sim --release --test kv_worked_example -- --nocapture
//! ```

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use evio_proto::{Action, Conn, Events, Instant};
use evio_sim::{Constraints, Model, ModelError, Rng, Swarm, Violation, Workload};

/// Seeds and steps of the full swarm.
const SEEDS: u64 = 2_000;
const STEPS: usize = 5_000;

/// At least this many `GET`s and `DEL`s of the full swarm must find their key expired,
/// so the time-dependent replies are really checked.
const EXPIRED_HITS: u64 = 1_000;

/// A connection that applied no request for this long is closed.
const IDLE: Duration = Duration::from_millis(200);

/// The longest line a client sends on purpose (`SET k v999 PX 300\n`, 18 bytes), and
/// the longest reply (`-ERR unknown command\n`, 21 bytes): the input and output
/// buffers must hold them. (Garbage running into a request can still make a line
/// longer than the input buffer: the too-long path.)
const MIN_INPUT: usize = 32;
const MIN_OUTPUT: usize = 32;

/// What a swarm did, beyond the simulator's report: counted by the handler and the
/// model, for the summary.
#[derive(Default)]
struct Tally {
    /// Requests the model applied (each answered by the handler, in the same order).
    applied: AtomicU64,
    /// Connections the handler closed for being idle.
    timeouts: AtomicU64,
    /// `GET`s and `DEL`s the model applied that found their key expired.
    expired: AtomicU64,
    /// Lines longer than the input buffer.
    too_long: AtomicU64,
}

impl Tally {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

// ----- the handler ---------------------------------------------------------------------

/// A key-value server: `SET k v` answers `+OK`, `GET k` the value (`$v`) or `$-1`,
/// `DEL k` `:1` or `:0`, anything else `-ERR unknown command`; one line per request.
/// `SET k v PX ms` sets a key that expires `ms` milliseconds after it was applied (by
/// the engine's time, [`Conn::now`]); an expired key is absent. The map is shared by
/// every connection.
#[derive(Default)]
struct Kv {
    map: HashMap<Vec<u8>, Entry>,
    mutant: Option<Mutant>,
    tally: Arc<Tally>,
}

/// A value, and when it expires, if it does: a key is expired once `now >= expires`.
type Entry = (Vec<u8>, Option<Instant>);

/// Bugs a user could write, each of which the swarm must catch.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mutant {
    /// Apply the request first, then find the reply does not fit and leave the line
    /// unconsumed, so it is applied again on the next call.
    ApplyBeforeFit,
    /// Never expire a key (`PX` accepted, and ignored).
    IgnoreExpiry,
}

/// One parsed request line.
enum Request<'a> {
    /// A key, its value, and its time to live in milliseconds, if any.
    Set(&'a [u8], &'a [u8], Option<u64>),
    Get(&'a [u8]),
    Del(&'a [u8]),
    Bad,
}

/// A time to live: a positive integer of milliseconds.
fn millis(word: &[u8]) -> Option<u64> {
    let ms: u64 = std::str::from_utf8(word).ok()?.parse().ok()?;
    (ms > 0).then_some(ms)
}

fn parse(line: &[u8]) -> Request<'_> {
    let mut words = line.split(|&b| b == b' ');
    let mut next = || words.next();
    match (next(), next(), next(), next(), next(), next()) {
        (Some(b"SET"), Some(k), Some(v), None, ..) if !k.is_empty() && !v.is_empty() => {
            Request::Set(k, v, None)
        }
        (Some(b"SET"), Some(k), Some(v), Some(b"PX"), Some(ms), None)
            if !k.is_empty() && !v.is_empty() =>
        {
            match millis(ms) {
                Some(ms) => Request::Set(k, v, Some(ms)),
                None => Request::Bad,
            }
        }
        (Some(b"GET"), Some(k), None, ..) if !k.is_empty() => Request::Get(k),
        (Some(b"DEL"), Some(k), None, ..) if !k.is_empty() => Request::Del(k),
        _ => Request::Bad,
    }
}

impl Kv {
    fn new(tally: &Arc<Tally>) -> Self {
        Kv {
            tally: tally.clone(),
            ..Kv::default()
        }
    }

    fn mutant(mutant: Mutant) -> Self {
        Kv {
            mutant: Some(mutant),
            ..Kv::default()
        }
    }

    /// The value of `key` at `now`, if it is set and not expired.
    fn live(&self, key: &[u8], now: Instant) -> Option<&[u8]> {
        match self.map.get(key)? {
            (_, Some(expires)) if now >= *expires => None,
            (v, _) => Some(v),
        }
    }

    /// The reply to `request` at `now` against the map as it is (nothing applied).
    fn reply(&self, request: &Request<'_>, now: Instant) -> Vec<u8> {
        match request {
            Request::Set(..) => b"+OK\n".to_vec(),
            Request::Get(k) => match self.live(k, now) {
                Some(v) => [b"$", v, b"\n"].concat(),
                None => b"$-1\n".to_vec(),
            },
            Request::Del(k) if self.live(k, now).is_some() => b":1\n".to_vec(),
            Request::Del(_) => b":0\n".to_vec(),
            Request::Bad => b"-ERR unknown command\n".to_vec(),
        }
    }

    fn apply(&mut self, request: &Request<'_>, now: Instant) {
        match *request {
            Request::Set(k, v, ttl) => {
                let expires = ttl.map(|ms| now + Duration::from_millis(ms));
                let expires = expires.filter(|_| self.mutant != Some(Mutant::IgnoreExpiry));
                // A plain `SET` clears any expiry the key had.
                self.map.insert(k.to_vec(), (v.to_vec(), expires));
            }
            Request::Del(k) => {
                self.map.remove(k);
            }
            Request::Get(_) | Request::Bad => {}
        }
    }
}

impl Events for Kv {
    type Context = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        conn.set_timeout(Some(IDLE));
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        // A request is applied and consumed together, or neither: input left
        // unconsumed comes back in the next call, so a request applied without being
        // consumed would be applied twice.
        let now = conn.now(); // expiry is by the engine's time, as the model's
        let early = self.mutant == Some(Mutant::ApplyBeforeFit);
        let mut used = 0;
        while let Some(len) = input[used..].iter().position(|&b| b == b'\n') {
            let request = parse(&input[used..used + len]);
            let reply = self.reply(&request, now);
            if early {
                self.apply(&request, now);
            }
            if conn.write(&reply).is_err() {
                break; // output full: this line waits, unapplied, until it drains
            }
            if !early {
                self.apply(&request, now);
            }
            used += len + 1;
        }
        let no_line = !input.contains(&b'\n');
        if no_line
            && input.len() >= conn.input_capacity()
            && conn.write(b"-ERR line too long\n").is_ok()
        {
            // A line longer than the input buffer can never be taken whole. (Only
            // when there is no newline at all: a full buffer whose first reply did not
            // fit is backpressure, and waits.)
            Tally::add(&self.tally.too_long);
            conn.consume(input.len());
            return Action::Close;
        }
        conn.consume(used);
        if used > 0 {
            conn.set_timeout(Some(IDLE));
        }
        Action::None
    }

    fn timeout(&mut self, _conn: &mut Conn<'_, ()>) -> Action {
        Tally::add(&self.tally.timeouts);
        Action::Close
    }
}

// ----- its model -----------------------------------------------------------------------

/// The model: its own map, to which each request is applied when the handler consumed
/// it, in the order the handler did across all connections, and at the engine's time
/// the handler saw, so every reply is known exactly (a key's expiry included).
#[derive(Default)]
struct KvModel {
    map: HashMap<Vec<u8>, Entry>,
    tally: Arc<Tally>,
}

impl KvModel {
    fn new(tally: &Arc<Tally>) -> Self {
        KvModel {
            tally: tally.clone(),
            ..KvModel::default()
        }
    }
}

/// What one client is owed, and how much it received.
#[derive(Default)]
struct KvConn {
    owed: VecDeque<u8>,
    received: u64,
}

impl KvModel {
    /// Applies `line` at `now`, the engine's time when the handler applied it.
    fn execute(&mut self, line: &[u8], now: Instant) -> Vec<u8> {
        Tally::add(&self.tally.applied);
        let words: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        match words.as_slice() {
            [b"SET", k, v, ttl @ ..] if !k.is_empty() && !v.is_empty() => {
                let expires = match ttl {
                    [] => None, // a plain `SET` clears any expiry the key had
                    [b"PX", ms] => match millis(ms) {
                        Some(ms) => Some(now + Duration::from_millis(ms)),
                        None => return b"-ERR unknown command\n".to_vec(),
                    },
                    _ => return b"-ERR unknown command\n".to_vec(),
                };
                self.map.insert(k.to_vec(), (v.to_vec(), expires));
                b"+OK\n".to_vec()
            }
            [b"GET", k] if !k.is_empty() => match self.get(k, now) {
                Some(v) => [b"$".as_slice(), v, b"\n"].concat(),
                None => b"$-1\n".to_vec(),
            },
            [b"DEL", k] if !k.is_empty() => {
                let live = self.get(k, now).is_some();
                self.map.remove(*k);
                if live { b":1\n" } else { b":0\n" }.to_vec()
            }
            _ => b"-ERR unknown command\n".to_vec(),
        }
    }

    /// The value of `key` at `now`: none once it expired (counted, for the summary).
    fn get(&self, key: &[u8], now: Instant) -> Option<&[u8]> {
        match self.map.get(key)? {
            (_, Some(expires)) if now >= *expires => {
                Tally::add(&self.tally.expired);
                None
            }
            (v, _) => Some(v),
        }
    }
}

impl Model for KvModel {
    type Conn = KvConn;

    /// Bytes read are not requests yet: only what the handler consumed is.
    fn input(&mut self, _: &mut KvConn, _: &[u8]) {}

    fn consumed(&mut self, conn: &mut KvConn, bytes: &[u8], now: Instant) {
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            let reply = match line.strip_suffix(b"\n") {
                Some(line) => self.execute(line, now),
                // Consumed without its newline: the too-long line.
                None => b"-ERR line too long\n".to_vec(),
            };
            conn.owed.extend(reply);
        }
    }

    fn output(&mut self, conn: &mut KvConn, bytes: &[u8]) -> Result<(), ModelError> {
        for &b in bytes {
            match conn.owed.pop_front() {
                Some(e) if e == b => conn.received += 1,
                expected => {
                    let expected = match expected {
                        Some(e) => format!("`{}`", e.escape_ascii()),
                        None => "nothing more".into(),
                    };
                    return Err(ModelError {
                        offset: conn.received,
                        detail: format!("got `{}`, expected {expected}", b.escape_ascii()),
                    });
                }
            }
        }
        Ok(())
    }

    fn owed(&self, conn: &KvConn) -> usize {
        conn.owed.len()
    }

    fn handler_wakes(&self) -> bool {
        false
    }
}

// ----- the workload --------------------------------------------------------------------

/// What clients send: requests on four keys (so connections meet on them), some keys
/// with a time to live of up to 300 ms (the clock moves in steps of up to 50 ms, and
/// jumps to the 200 ms idle deadlines, so many expire during a run, some between a
/// client's `SET` and its own next request), with malformed lines and stray garbage
/// mixed in.
#[derive(Clone, Copy)]
struct KvWorkload;

impl Workload for KvWorkload {
    fn message(&mut self, _client: u16, rng: &mut Rng) -> Vec<u8> {
        let key = (b'a' + rng.below(4) as u8) as char;
        let value = rng.below(1000);
        match rng.below(20) {
            0..=4 => format!("SET {key} v{value}\n").into_bytes(),
            5..=7 => format!("SET {key} v{value} PX {}\n", rng.range(1, 300)).into_bytes(),
            8..=13 => format!("GET {key}\n").into_bytes(),
            14..=16 => format!("DEL {key}\n").into_bytes(),
            17 => b"SET a\n".to_vec(),
            // Garbage without a newline of its own: it runs into the next request,
            // and now and then past the input buffer.
            _ => (0..rng.range(1, 20))
                .map(|_| rng.next_u64() as u8)
                .collect(),
        }
    }
}

// ----- the swarm -----------------------------------------------------------------------

/// The swarm both the handler and its mutant run: faults on (every kind), buffers that
/// hold a request and a reply.
fn kv_swarm<F>(make: F) -> Swarm<F> {
    Swarm::new(make)
        .seeds(0..SEEDS)
        .steps(STEPS)
        .threads(2)
        .constraints(Constraints {
            min_input_capacity: MIN_INPUT,
            min_output_capacity: MIN_OUTPUT,
            min_connections: 8,
            ..Constraints::none()
        })
        .workload(KvWorkload)
}

#[test]
fn kv_handler_passes_thousands_of_seeds_with_faults() {
    let tally = Arc::new(Tally::default());
    let report = kv_swarm(|| (Kv::new(&tally), KvModel::new(&tally))).run();
    let fired: u64 = report.faults.iter().map(|(_, n)| n).sum();
    println!(
        "kv worked example: {} seeds x {STEPS} steps ({} steps run, liveness included), \
         faults fired: {fired}, failures: {}\n\
         requests applied and answered: {}, idle timeouts: {}, expired keys hit: {}, \
         lines too long: {}",
        report.seeds,
        report.steps,
        report.failures.len(),
        Tally::get(&tally.applied),
        Tally::get(&tally.timeouts),
        Tally::get(&tally.expired),
        Tally::get(&tally.too_long),
    );
    println!("{report}");
    assert!(report.failures.is_empty(), "{report}");
    assert_eq!(report.seeds, SEEDS);
    // Real work, with faults: connections, requests, timeouts, expired keys found,
    // too-long lines, and every fault kind firing.
    assert!(report.connections > SEEDS, "{report}");
    assert!(Tally::get(&tally.applied) > 100_000, "{report}");
    assert!(Tally::get(&tally.timeouts) > 1_000, "{report}");
    assert!(Tally::get(&tally.expired) > EXPIRED_HITS, "{report}");
    assert!(Tally::get(&tally.too_long) > 100, "{report}");
    let missing = report.faults.missing();
    assert!(missing.is_empty(), "never fired: {missing:?}\n{report}");
}

/// Step by step through `Sim`, a seed of the same swarm: the model's shared map is the
/// handler's, request for request.
#[test]
fn kv_model_and_handler_end_with_the_same_map() {
    let swarm = kv_swarm(|| (Kv::default(), KvModel::default()));
    let mut keys = 0;
    for seed in 0..20 {
        let config = swarm.config(seed);
        let script = swarm.script(seed, &config);
        let mut sim = evio_sim::Sim::with_config(Kv::default(), KvModel::default(), seed, config)
            .unwrap_or_else(|v| panic!("{v}"));
        for event in &script {
            if let Err(v) = sim.step(event) {
                panic!("{}", sim.failure(v));
            }
        }
        if let Err(v) = sim.finish() {
            panic!("{}", sim.failure(v));
        }
        assert_eq!(sim.handler().map, sim.model().map, "seed {seed}");
        keys += sim.model().map.len();
    }
    assert!(keys > 20, "{keys} keys set in all");
}

/// Runs `mutant` through the same swarm, on `seeds`: it must fail, each failing seed
/// caught by the model, with a report that says how to replay it.
fn mutant_is_caught(name: &str, mutant: Mutant, seeds: Range<u64>) {
    let report = kv_swarm(|| (Kv::mutant(mutant), KvModel::default()))
        .seeds(seeds)
        .run();
    println!(
        "kv mutant that {name}: {} of {} seeds failed",
        report.failures.len(),
        report.seeds
    );
    assert!(!report.failures.is_empty(), "the mutant passed:\n{report}");
    for failure in &report.failures {
        assert!(
            matches!(failure.violation, Violation::Model { .. }),
            "{failure}"
        );
        assert!(
            failure.to_string().contains(&format!(
                "EVIO_SIM_SEED={} EVIO_SIM_STEPS={STEPS}",
                failure.seed
            )),
            "{failure}"
        );
    }
    println!("first: {}", report.failures[0]);
}

/// Caught by the model: a reply computed from a map the request was applied to twice.
#[test]
fn kv_mutant_that_applies_before_the_reply_fits_is_caught() {
    mutant_is_caught(
        "applies before the reply fits",
        Mutant::ApplyBeforeFit,
        0..SEEDS,
    );
}

/// Caught by the model, which expires keys by the engine's time the handler saw: a
/// `GET` or `DEL` answered from a key that should have expired. (A model not told the
/// time could not tell this handler from the right one.) About a third of the seeds
/// catch it, and seeds that pass cost a full run: the first 400 are plenty, and keep
/// the file fast.
#[test]
fn kv_mutant_that_never_expires_a_key_is_caught() {
    mutant_is_caught("never expires a key", Mutant::IgnoreExpiry, 0..400);
}
