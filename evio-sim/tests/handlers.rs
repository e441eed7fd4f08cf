//! A second handler, written as a user would, that uses what echo does not: the waker
//! kept from `serving`, the ticker, wakes from inside the loop, output from `woken`,
//! and `closed`. The simulator runs it unchanged, with its own model.

use std::collections::VecDeque;
use std::time::Duration;

use evio_proto::{
    Action, CloseError, Conn, ConnId, ConnInfo, Events, Flow, Instant, Loop, Server, Tick, Waker,
};
use evio_sim::{Model, ModelError, run_seed, swarm};

/// Counts the bytes each client sent; every 2 ms it wakes every connection, and a woken
/// connection reports its count (mod 251) in one byte, when there is room.
#[derive(Default)]
struct Heartbeat {
    waker: Option<Waker>,
    conns: Vec<ConnId>,
}

impl Events for Heartbeat {
    type Context = u64;

    fn serving(&mut self, server: Server<'_>) -> Flow {
        self.waker = server.waker().cloned();
        Flow::Continue
    }

    fn opened(&mut self, conn: &mut Conn<'_, u64>) -> Action {
        self.conns.push(conn.id());
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, u64>, input: &[u8]) -> Action {
        *conn.context() += input.len() as u64;
        Action::None
    }

    fn woken(&mut self, conn: &mut Conn<'_, u64>) -> Action {
        let count = *conn.context();
        let _ = conn.write(&[(count % 251) as u8]);
        Action::None
    }

    fn closed(
        &mut self,
        info: &ConnInfo,
        _: u64,
        _: Option<CloseError>,
        _: &mut Loop<'_, u64>,
    ) -> Flow {
        self.conns.retain(|&id| id != info.id);
        Flow::Continue
    }

    fn detached(
        &mut self,
        info: &ConnInfo,
        _: &mut u64,
        _: evio_proto::Detached<'_>,
        _: &mut Loop<'_, u64>,
    ) -> Flow {
        // Not taking the socket means `closed` follows and removes the id.
        let _ = info;
        Flow::Continue
    }

    fn tick(&mut self, _: &mut Loop<'_, u64>) -> Tick {
        if let Some(waker) = &self.waker {
            for &id in &self.conns {
                waker.wake(id);
            }
        }
        Tick::after(Duration::from_millis(2))
    }
}

/// The client may receive any subsequence of the counts the handler had when it was
/// woken, in order (a wake finding a full buffer writes nothing).
#[derive(Default)]
struct HeartbeatModel;

#[derive(Default)]
struct HeartbeatConn {
    count: u64,
    allowed: VecDeque<u8>,
    received: u64,
}

impl Model for HeartbeatModel {
    type Conn = HeartbeatConn;

    fn input(&mut self, conn: &mut HeartbeatConn, bytes: &[u8]) {
        conn.count += bytes.len() as u64;
    }

    fn woken(&mut self, conn: &mut HeartbeatConn, _: Instant) {
        conn.allowed.push_back((conn.count % 251) as u8);
    }

    fn output(&mut self, conn: &mut HeartbeatConn, bytes: &[u8]) -> Result<(), ModelError> {
        for &b in bytes {
            loop {
                match conn.allowed.pop_front() {
                    Some(a) if a == b => break,
                    Some(_) => continue,
                    None => {
                        return Err(ModelError {
                            offset: conn.received,
                            detail: format!("byte {b} matches no wake's count"),
                        });
                    }
                }
            }
            conn.received += 1;
        }
        Ok(())
    }

    fn owed(&self, _: &HeartbeatConn) -> usize {
        0
    }
}

#[test]
fn heartbeat_handler_passes_a_swarm() {
    let report = swarm(0..1000, 3000, 2, || (Heartbeat::default(), HeartbeatModel));
    println!("{report}");
    assert!(report.failures.is_empty(), "{report}");
    assert!(report.bytes_written > 1000, "{report}");
}

/// Seeds whose liveness phase began with more heartbeat output held in the engine than
/// the bound allowed rounds for (a one-byte send window drains a byte per round): the
/// bound now counts output the engine still holds.
#[test]
fn heartbeat_backlog_drains_within_the_liveness_bound() {
    for seed in [2106, 3519, 6552, 7486] {
        if let Err(failure) = run_seed(seed, 3000, || (Heartbeat::default(), HeartbeatModel)) {
            panic!("{failure}");
        }
    }
}

/// The model is not a rubber stamp: a heartbeat that reports a wrong count is caught.
#[derive(Default)]
struct OffByOne(Heartbeat);

impl Events for OffByOne {
    type Context = u64;
    evio_proto::delegate_events!(self.0, except data);
    fn data(&mut self, conn: &mut Conn<'_, u64>, input: &[u8]) -> Action {
        // Counts one byte too many once it has seen 100.
        let extra = u64::from(*conn.context() >= 100);
        *conn.context() += input.len() as u64 + extra;
        Action::None
    }
}

#[test]
fn a_wrong_heartbeat_is_caught() {
    let report = swarm(0..300, 2000, 2, || (OffByOne::default(), HeartbeatModel));
    assert!(!report.failures.is_empty(), "{report}");
}

/// Echoes whole lines only: a partial line waits in the engine's input buffer for the
/// rest (carry-over), and a line longer than the buffer closes the connection with
/// "frame too large".
#[derive(Default)]
struct Lines;

impl Events for Lines {
    type Context = ();

    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let mut used = 0;
        while let Some(end) = input[used..].iter().position(|&b| b == b'\n') {
            let line = &input[used..used + end + 1];
            // A line longer than the output buffer goes out in pieces; the unsent rest
            // comes back (with its newline) after the socket drains.
            let n = conn.write_some(line);
            used += n;
            if n < line.len() {
                break;
            }
        }
        conn.consume(used);
        Action::None
    }
}

/// The client receives the complete lines it sent, in order.
#[derive(Default)]
struct LinesModel;

#[derive(Default)]
struct LinesConn {
    partial: Vec<u8>,
    owed: VecDeque<u8>,
    received: u64,
}

impl Model for LinesModel {
    type Conn = LinesConn;

    fn input(&mut self, conn: &mut LinesConn, bytes: &[u8]) {
        for &b in bytes {
            conn.partial.push(b);
            if b == b'\n' {
                conn.owed.extend(conn.partial.drain(..));
            }
        }
    }

    fn output(&mut self, conn: &mut LinesConn, bytes: &[u8]) -> Result<(), ModelError> {
        expect_next(&mut conn.owed, &mut conn.received, bytes)
    }

    fn owed(&self, conn: &LinesConn) -> usize {
        conn.owed.len()
    }

    fn handler_wakes(&self) -> bool {
        false
    }
}

/// The client received `bytes`: each must be the next byte `owed` (counting them in
/// `received`, for the error's offset).
fn expect_next(
    owed: &mut VecDeque<u8>,
    received: &mut u64,
    bytes: &[u8],
) -> Result<(), ModelError> {
    for &b in bytes {
        match owed.pop_front() {
            Some(e) if e == b => *received += 1,
            e => {
                return Err(ModelError {
                    offset: *received,
                    detail: format!("got byte {b:#04x}, expected {e:?}"),
                });
            }
        }
    }
    Ok(())
}

#[test]
fn line_handler_passes_a_swarm() {
    let report = swarm(0..1000, 3000, 2, || (Lines, LinesModel));
    println!("{report}");
    assert!(report.failures.is_empty(), "{report}");
    assert!(report.bytes_written > 1000, "{report}");
    // Lines longer than the input buffer happen, and end their connection cleanly.
    assert!(report.frames_too_large > 0, "{report}");
}

/// Greets every connection from `opened`; on listener 1 it closes right after the
/// greeting (output written in `opened` must still be flushed before the close), on
/// the others it echoes.
#[derive(Default)]
struct Greeter;

/// One byte, so it fits every output buffer the seeds choose.
const GREETING: &[u8] = b"+";

impl Events for Greeter {
    type Context = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        conn.write(GREETING)
            .expect("an empty buffer has room for one byte");
        if conn.info().listener.index() == 1 {
            Action::Close
        } else {
            Action::None
        }
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let n = conn.write_some(input);
        conn.consume(n);
        Action::None
    }
}

/// The greeting, then, except on listener 1, the echo.
#[derive(Default)]
struct GreeterModel;

#[derive(Default)]
struct GreeterConn {
    owed: VecDeque<u8>,
    echoes: bool,
    received: u64,
}

impl Model for GreeterModel {
    type Conn = GreeterConn;

    fn opened(&mut self, conn: &mut GreeterConn, info: &ConnInfo, _: Instant) {
        conn.owed.extend(GREETING);
        conn.echoes = info.listener.index() != 1;
    }

    fn input(&mut self, conn: &mut GreeterConn, bytes: &[u8]) {
        // Listener 1's connections close from `opened`: the engine must read nothing.
        assert!(
            conn.echoes,
            "read {} bytes after Close from opened",
            bytes.len()
        );
        conn.owed.extend(bytes);
    }

    fn output(&mut self, conn: &mut GreeterConn, bytes: &[u8]) -> Result<(), ModelError> {
        expect_next(&mut conn.owed, &mut conn.received, bytes)
    }

    fn owed(&self, conn: &GreeterConn) -> usize {
        conn.owed.len()
    }

    fn handler_wakes(&self) -> bool {
        false
    }
}

#[test]
fn greeter_flushes_output_from_opened_before_closing() {
    let report = swarm(0..1000, 3000, 2, || (Greeter, GreeterModel));
    println!("{report}");
    assert!(report.failures.is_empty(), "{report}");
}

/// Answers each byte `b` with `REPEAT` copies of `b`, written as room allows: what does
/// not fit waits as a count in the handler (nothing buffered outside the engine), and
/// is written from `drained` once the backed-up output is out. Without `drained` it
/// would stall: nothing else calls it again.
#[derive(Default)]
struct Producer {
    /// Use `woken` instead of `drained` (a mutant that never resumes).
    never_resumes: bool,
}

const REPEAT: usize = 12;

/// Bytes still to answer, and how much of the first one's answer went out.
#[derive(Default)]
struct Backlog {
    bytes: VecDeque<u8>,
    sent_of_first: usize,
}

fn pump(conn: &mut Conn<'_, Backlog>) {
    let chunk = [0u8; REPEAT];
    while let Some(&b) = conn.context().bytes.front() {
        let sent = conn.context().sent_of_first;
        let answer = &chunk.map(|_| b)[..REPEAT - sent];
        let n = conn.write_some(answer);
        let backlog = conn.context();
        backlog.sent_of_first += n;
        if backlog.sent_of_first < REPEAT {
            return;
        }
        backlog.bytes.pop_front();
        backlog.sent_of_first = 0;
    }
}

impl Events for Producer {
    type Context = Backlog;

    fn data(&mut self, conn: &mut Conn<'_, Backlog>, input: &[u8]) -> Action {
        conn.context().bytes.extend(input);
        pump(conn);
        Action::None
    }

    fn drained(&mut self, conn: &mut Conn<'_, Backlog>) -> Action {
        if !self.never_resumes {
            pump(conn);
        }
        Action::None
    }
}

/// Each byte consumed is owed `REPEAT` times, in order.
#[derive(Default)]
struct ProducerModel;

impl Model for ProducerModel {
    type Conn = GreeterConn;

    fn input(&mut self, _: &mut GreeterConn, _: &[u8]) {}

    fn consumed(&mut self, conn: &mut GreeterConn, bytes: &[u8], _: Instant) {
        for &b in bytes {
            conn.owed.extend([b; REPEAT]);
        }
    }

    fn output(&mut self, conn: &mut GreeterConn, bytes: &[u8]) -> Result<(), ModelError> {
        expect_next(&mut conn.owed, &mut conn.received, bytes)
    }

    fn owed(&self, conn: &GreeterConn) -> usize {
        conn.owed.len()
    }

    fn handler_wakes(&self) -> bool {
        false
    }
}

#[test]
fn a_producer_resumes_from_drained() {
    let report = swarm(0..600, 3000, 2, || (Producer::default(), ProducerModel));
    println!("{report}");
    assert!(report.failures.is_empty(), "{report}");
    assert!(report.bytes_written > 100_000, "{report}");
}

#[test]
fn a_producer_that_ignores_drained_stalls_and_is_caught() {
    let report = swarm(0..100, 2000, 2, || {
        (
            Producer {
                never_resumes: true,
            },
            ProducerModel,
        )
    });
    assert!(
        report
            .failures
            .iter()
            .any(|f| matches!(f.violation, evio_sim::Violation::Liveness { .. })),
        "{report}"
    );
}

/// Which callback saw which time: what [`Timed`] and [`TimedModel`] each log.
type TimeLog = Vec<(&'static str, Instant)>;

/// Consumes everything and answers nothing, logging the engine's time of each
/// `opened`, `data` and `woken` call.
#[derive(Default)]
struct Timed {
    log: TimeLog,
}

impl Events for Timed {
    type Context = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.log.push(("opened", conn.now()));
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>, _: &[u8]) -> Action {
        self.log.push(("data", conn.now()));
        Action::None
    }

    fn woken(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.log.push(("woken", conn.now()));
        Action::None
    }
}

/// Logs the `now` each callback is given: it must be the handler's log, entry for
/// entry.
#[derive(Default)]
struct TimedModel {
    log: TimeLog,
}

impl Model for TimedModel {
    type Conn = ();

    fn opened(&mut self, _: &mut (), _: &ConnInfo, now: Instant) {
        self.log.push(("opened", now));
    }

    fn input(&mut self, _: &mut (), _: &[u8]) {}

    fn consumed(&mut self, _: &mut (), _: &[u8], now: Instant) {
        self.log.push(("data", now));
    }

    fn woken(&mut self, _: &mut (), now: Instant) {
        self.log.push(("woken", now));
    }

    fn output(&mut self, _: &mut (), bytes: &[u8]) -> Result<(), ModelError> {
        Err(ModelError {
            offset: 0,
            detail: format!("no output expected, got {} bytes", bytes.len()),
        })
    }

    fn owed(&self, _: &()) -> usize {
        0
    }

    fn handler_wakes(&self) -> bool {
        false
    }
}

/// The model is given exactly the time the handler read from `conn.now()` in each
/// `opened`, `data` and `woken` (which is how a model of a time-dependent reply stays
/// exact), and that time is never ahead of the network's clock.
#[test]
fn the_model_is_given_the_engines_time_of_each_callback() {
    let swarm = evio_sim::Swarm::new(|| (Timed::default(), TimedModel::default())).steps(2000);
    let (mut kinds, mut times) = ([0usize; 3], std::collections::BTreeSet::new());
    for seed in 0..30 {
        let config = swarm.config(seed);
        let script = swarm.script(seed, &config);
        let mut sim =
            evio_sim::Sim::with_config(Timed::default(), TimedModel::default(), seed, config)
                .unwrap_or_else(|v| panic!("{v}"));
        for event in &script {
            if let Err(v) = sim.step(event) {
                panic!("{}", sim.failure(v));
            }
            let clock = sim.now(); // the network's clock
            let last = sim.handler().log.last().map(|&(_, now)| now);
            assert!(last.is_none_or(|now| now <= clock), "seed {seed}");
        }
        if let Err(v) = sim.finish() {
            panic!("{}", sim.failure(v));
        }
        assert_eq!(sim.handler().log, sim.model().log, "seed {seed}");
        for &(kind, now) in &sim.model().log {
            kinds[["opened", "data", "woken"]
                .iter()
                .position(|&k| k == kind)
                .unwrap()] += 1;
            times.insert(now);
        }
    }
    // Every kind of call, at many different times.
    assert!(kinds.iter().all(|&n| n > 10), "{kinds:?}");
    assert!(times.len() > 100, "{} distinct times", times.len());
}

/// Echoes whole lines as `Lines` does, and closes another connection through `Loop`
/// whenever a line starts with an odd byte: the oldest other connection, which often
/// holds a partial line it has not consumed. Such a close must linger as the
/// connection's own `Close` would (rule linger-over-unconsumed), and no connection it
/// leaves with output its client does not read outlives the send bound.
#[derive(Default)]
struct Kicker {
    open: Vec<ConnId>,
    /// Closes through `Loop`, counted across the swarm's seeds.
    kicks: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Events for Kicker {
    type Context = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.open.push(conn.id());
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let mut used = 0;
        let mut kick = false;
        while let Some(end) = input[used..].iter().position(|&b| b == b'\n') {
            let line = &input[used..used + end + 1];
            kick |= line[0] % 2 == 1;
            let n = conn.write_some(line);
            used += n;
            if n < line.len() {
                break;
            }
        }
        conn.consume(used);
        let me = conn.id();
        if kick && let Some(&other) = self.open.iter().find(|&&id| id != me) {
            if conn.others().close(other).is_ok() {
                self.kicks
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            self.open.retain(|&id| id != other);
        }
        Action::None
    }

    fn closed(
        &mut self,
        info: &ConnInfo,
        _: (),
        _: Option<CloseError>,
        _: &mut Loop<'_, ()>,
    ) -> Flow {
        self.open.retain(|&id| id != info.id);
        Flow::Continue
    }
}

/// The client receives what the handler consumed of its input (exactly what it wrote
/// back), whether or not another connection closes it meanwhile.
#[derive(Default)]
struct ConsumedModel;

#[derive(Default)]
struct ConsumedConn {
    owed: VecDeque<u8>,
    received: u64,
}

impl Model for ConsumedModel {
    type Conn = ConsumedConn;

    fn input(&mut self, _: &mut ConsumedConn, _: &[u8]) {}

    fn consumed(&mut self, conn: &mut ConsumedConn, bytes: &[u8], _: Instant) {
        conn.owed.extend(bytes);
    }

    fn output(&mut self, conn: &mut ConsumedConn, bytes: &[u8]) -> Result<(), ModelError> {
        expect_next(&mut conn.owed, &mut conn.received, bytes)
    }

    fn owed(&self, conn: &ConsumedConn) -> usize {
        conn.owed.len()
    }

    fn handler_wakes(&self) -> bool {
        false
    }
}

#[test]
fn closes_through_loop_linger_over_unconsumed_input_as_closes_by_action_do() {
    let kicks = std::sync::Arc::default();
    let report = swarm(0..1000, 3000, 2, || {
        (
            Kicker {
                kicks: std::sync::Arc::clone(&kicks),
                ..Kicker::default()
            },
            ConsumedModel,
        )
    });
    println!("{report}");
    assert!(report.failures.is_empty(), "{report}");
    let kicks = kicks.load(std::sync::atomic::Ordering::Relaxed);
    assert!(kicks > 300, "{kicks} closes through Loop\n{report}");
}

/// One line of what [`Deadlines`] and [`DeadlinesModel`] each log.
type DeadlineLog = Vec<String>;

/// Sets, moves and cancels its timeout from the bytes it is given (their count mod 4:
/// cancel, leave, or 10 or 15 ms), and when it fires writes a byte every second time
/// and closes every third time, setting a new 3 ms timeout otherwise; logs each change
/// of its deadline and each firing, as the model must see them.
#[derive(Default)]
struct Deadlines {
    log: DeadlineLog,
}

/// Per connection: timeouts fired, and the deadline as last logged.
type DeadlinesConn = (u32, Option<Instant>);

impl Deadlines {
    /// Logs the deadline if it changed.
    fn note(&mut self, conn: &mut Conn<'_, DeadlinesConn>) {
        let at = conn.timeout_at();
        if conn.context().1 != at {
            conn.context().1 = at;
            self.log.push(format!("set {at:?}"));
        }
    }
}

impl Events for Deadlines {
    type Context = DeadlinesConn;

    fn opened(&mut self, conn: &mut Conn<'_, DeadlinesConn>) -> Action {
        conn.set_timeout(Some(Duration::from_millis(7)));
        self.note(conn);
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, DeadlinesConn>, input: &[u8]) -> Action {
        match input.len() % 4 {
            0 => conn.set_timeout(None),
            1 => {}
            n => conn.set_timeout(Some(Duration::from_millis(5 * n as u64))),
        }
        self.note(conn);
        Action::None
    }

    fn timeout(&mut self, conn: &mut Conn<'_, DeadlinesConn>) -> Action {
        let ctx = conn.context();
        ctx.0 += 1;
        // The engine took the deadline off: one set again is a change.
        ctx.1 = None;
        let k = ctx.0;
        let wrote = if k % 2 == 0 && conn.write(b"t").is_ok() {
            1
        } else {
            0
        };
        self.log.push(format!("timeout {} {wrote}", conn.now()));
        if k % 3 == 0 {
            return Action::Close;
        }
        conn.set_timeout(Some(Duration::from_millis(3)));
        self.note(conn);
        Action::None
    }
}

/// Logs every `timeout` and `timeout_set` call (it must be the handler's log, entry for
/// entry), and expects one `t` for each byte a timeout wrote.
#[derive(Default)]
struct DeadlinesModel {
    log: DeadlineLog,
    /// Fired timeouts that returned `Close` (the handler's own, or an injected one).
    closes: usize,
}

impl Model for DeadlinesModel {
    type Conn = usize;

    fn input(&mut self, _: &mut usize, _: &[u8]) {}

    fn timeout(&mut self, owed: &mut usize, now: Instant, wrote: usize, action: Action) {
        *owed += wrote;
        self.log.push(format!("timeout {now} {wrote}"));
        self.closes += usize::from(action == Action::Close);
    }

    fn timeout_set(&mut self, _: &mut usize, at: Option<Instant>) {
        self.log.push(format!("set {at:?}"));
    }

    fn output(&mut self, owed: &mut usize, bytes: &[u8]) -> Result<(), ModelError> {
        if bytes.len() > *owed || bytes.iter().any(|&b| b != b't') {
            return Err(ModelError {
                offset: 0,
                detail: format!("{} bytes where {owed} `t`s are owed", bytes.len()),
            });
        }
        *owed -= bytes.len();
        Ok(())
    }

    fn owed(&self, owed: &usize) -> usize {
        *owed
    }

    fn handler_wakes(&self) -> bool {
        false
    }
}

/// The model is told of every change of a connection's deadline, right after the
/// callback that made it, and of every `timeout` with the time, the bytes written and
/// the action taken: exactly what the handler did, in its order.
#[test]
fn the_model_is_told_every_deadline_and_every_timeout() {
    let make = || (Deadlines::default(), DeadlinesModel::default());
    let swarm = evio_sim::Swarm::new(make).steps(2000);
    let (mut sets, mut fired, mut wrote, mut closes) = (0, 0, 0, 0);
    for seed in 0..30 {
        let config = swarm.config(seed);
        let script = swarm.script(seed, &config);
        let (handler, model) = make();
        let mut sim = evio_sim::Sim::with_config(handler, model, seed, config)
            .unwrap_or_else(|v| panic!("{v}"));
        for event in &script {
            if let Err(v) = sim.step(event) {
                panic!("{}", sim.failure(v));
            }
        }
        if let Err(v) = sim.finish() {
            panic!("{}", sim.failure(v));
        }
        assert_eq!(sim.handler().log, sim.model().log, "seed {seed}");
        for line in &sim.model().log {
            sets += usize::from(line.starts_with("set"));
            fired += usize::from(line.starts_with("timeout"));
            wrote += usize::from(line.ends_with(" 1"));
        }
        closes += sim.model().closes;
    }
    assert!(
        sets > 100 && fired > 50 && wrote > 10 && closes > 10,
        "{sets} settings, {fired} timeouts ({wrote} wrote, {closes} closed)"
    );
}

/// Echoes, and closes the connection opened before it through `Loop` (once its
/// output is flushed) whenever a new one opens, as a server closing idle
/// connections to make room does.
#[derive(Default)]
struct Evictor {
    last: Option<ConnId>,
}

impl Events for Evictor {
    type Context = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        if let Some(last) = self.last.replace(conn.id()) {
            let _ = conn.others().close(last);
        }
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let n = conn.write_some(input);
        conn.consume(n);
        Action::None
    }
}

/// An echo's model that owes nothing: a client receives, in order, a prefix of what
/// the server read (its connection may be closed before the rest is echoed).
#[derive(Default)]
struct PrefixModel;

impl Model for PrefixModel {
    type Conn = VecDeque<u8>;

    fn input(&mut self, echo: &mut VecDeque<u8>, bytes: &[u8]) {
        echo.extend(bytes);
    }

    fn output(&mut self, echo: &mut VecDeque<u8>, bytes: &[u8]) -> Result<(), ModelError> {
        for &b in bytes {
            if echo.pop_front() != Some(b) {
                return Err(ModelError {
                    offset: 0,
                    detail: format!("{b:#04x} is not the next byte read"),
                });
            }
        }
        Ok(())
    }

    fn owed(&self, _: &VecDeque<u8>) -> usize {
        0
    }
}

/// A connection another callback closed through `Loop` may leave input unread (bytes
/// the client sent after, or while, the close came): the final check does not count
/// them as lost, as it does not for a connection its own handler closed.
#[test]
fn a_connection_closed_through_loop_need_not_have_read_everything() {
    let report = evio_sim::Swarm::new(|| (Evictor::default(), PrefixModel))
        .seeds(0..300)
        .steps(1000)
        .run();
    assert!(report.failures.is_empty(), "{report}");
}
