//! The http example's handler (`evio_handlers::http::Http`) in the swarm, with an exact
//! model: one response per request, in order, byte for byte (the `Date` checked for
//! form and order), `100 Continue` before a body that asks for it, error responses
//! then a close; bodies consumed as they arrive; every deadline the handler sets, and
//! what it does when one comes (an idle close, a 408, a reset of a client that does
//! not read), on the virtual clock. Requests and bodies arrive split at every byte and
//! pipelined many to a read, under faults, with output buffers small enough that
//! responses wait for room, and pools small enough that idle connections are closed
//! to make room.

use evio_handlers::http::{Http, HttpConfig, HttpConn, HttpStats};
use evio_handlers::sim::{
    HttpModel, SIM_CONFIG, http_constraints, http_pair, http_requests, virtual_clock,
};
use evio_proto::{Action, Conn, Events};
use evio_sim::{Rng, Sim, Swarm, Violation};

fn http_swarm<H, F>(make: F) -> Swarm<F>
where
    F: Fn() -> (H, HttpModel) + Sync,
{
    // The input buffer holds the longest request the configuration accepts (the model
    // assumes it); the output buffer one response at least, so that pipelined
    // responses often wait for room.
    Swarm::new(make)
        .constraints(http_constraints())
        .workload(http_requests as fn(u16, &mut Rng) -> Vec<u8>)
}

#[test]
fn http_handler_passes_a_swarm_with_an_exact_model() {
    let report = http_swarm(http_pair).seeds(0..4000).steps(3000).run();
    println!("{report}");
    assert!(report.failures.is_empty(), "{report}");
    assert!(report.bytes_written > 1_000_000, "{report}");
}

/// The swarm reaches what the handler is for: many requests answered, pipelined
/// batches, every kind of refusal, and on the virtual clock every kind of close the
/// handler makes: 408s, idle connections, clients that do not read, and idle
/// connections closed to make room for new ones.
#[test]
fn the_http_swarm_answers_refuses_and_times_out() {
    let swarm = http_swarm(http_pair).steps(2000);
    let mut total = HttpStats::default();
    for seed in 0..200 {
        let config = swarm.config(seed);
        let script = swarm.script(seed, &config);
        let (handler, model) = http_pair();
        let mut sim = Sim::with_config(handler, model, seed, config).expect("a valid config");
        for event in &script {
            if let Err(v) = sim.step(event) {
                panic!("{}", sim.failure(v));
            }
        }
        if let Err(v) = sim.finish() {
            panic!("{}", sim.failure(v));
        }
        let stats = sim.handler().stats;
        total.ok += stats.ok;
        total.errors += stats.errors;
        total.timeouts += stats.timeouts;
        total.idle += stats.idle;
        total.send_timeouts += stats.send_timeouts;
        total.reclaimed += stats.reclaimed;
    }
    println!("200 seeds: {total:?}");
    assert!(
        total.ok > 500
            && total.errors > 50
            && total.timeouts > 0
            && total.idle > 0
            && total.send_timeouts > 0
            && total.reclaimed > 0,
        "{total:?}"
    );
}

/// A handler that answers a pipelined batch in the wrong order: the whole requests
/// that arrive together are answered last first.
struct OutOfOrder(Http);

/// Where each whole request in `input` ends (a test's own splitter: head by httparse,
/// body by Content-Length); stops at anything else.
fn request_ends(input: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut at = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(head)) = request.parse(&input[at..]) else {
            return ends;
        };
        let body = request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
            .unwrap_or(0);
        if input.len() - at < head + body {
            return ends;
        }
        at += head + body;
        ends.push(at);
    }
}

impl Events for OutOfOrder {
    type Context = HttpConn;
    evio_proto::delegate_events!(self.0, except data);
    fn data(&mut self, conn: &mut Conn<'_, HttpConn>, input: &[u8]) -> Action {
        let ends = request_ends(input);
        if ends.len() < 2 || conn.room() < ends.len() * 256 {
            return self.0.data(conn, input);
        }
        let mut start = 0;
        let slices: Vec<(usize, usize)> = ends
            .iter()
            .map(|&end| {
                let s = (start, end);
                start = end;
                s
            })
            .collect();
        for &(a, b) in slices.iter().rev() {
            let action = self.0.data(conn, &input[a..b]);
            if action != Action::None {
                return action;
            }
        }
        conn.consume(start);
        Action::None
    }
}

#[test]
fn a_handler_answering_out_of_order_is_caught() {
    let report = http_swarm(|| {
        (
            OutOfOrder(Http::with_clock(SIM_CONFIG, virtual_clock)),
            HttpModel::new(SIM_CONFIG),
        )
    })
    .seeds(0..100)
    .steps(2000)
    .run();
    assert!(!report.failures.is_empty(), "{report}");
    assert!(report.failures.iter().all(by_the_model), "{report}");
}

/// A failure the model found: in what a client received, or (a panic of the model's)
/// in what the handler consumed or the deadlines it set.
fn by_the_model(failure: &evio_sim::Failure) -> bool {
    match &failure.violation {
        Violation::Model { .. } => true,
        Violation::Panic(message) => message.contains("model") || message.contains("the handler"),
        _ => false,
    }
}

/// Runs 100 seeds of a mutant against the model of the real handler, and checks the
/// model catches it.
fn caught<H: evio_proto::Events<Context = HttpConn>>(make: impl Fn() -> H + Sync) {
    let report = http_swarm(|| (make(), HttpModel::new(SIM_CONFIG)))
        .seeds(0..100)
        .steps(2000)
        .run();
    assert!(!report.failures.is_empty(), "{report}");
    assert!(report.failures.iter().all(by_the_model), "{report}");
}

/// Handlers configured otherwise than the model says: every deadline is checked.
#[test]
fn a_handler_with_other_timeouts_is_caught() {
    let mutants = [
        HttpConfig {
            keepalive_timeout: Some(std::time::Duration::from_millis(100)),
            ..SIM_CONFIG
        },
        HttpConfig {
            keepalive_timeout: None,
            ..SIM_CONFIG
        },
        HttpConfig {
            head_timeout: Some(std::time::Duration::from_millis(60)),
            ..SIM_CONFIG
        },
        HttpConfig {
            body_timeout: None,
            ..SIM_CONFIG
        },
        HttpConfig {
            send_timeout: Some(std::time::Duration::from_millis(20)),
            ..SIM_CONFIG
        },
        HttpConfig {
            keepalive_requests: Some(7),
            ..SIM_CONFIG
        },
    ];
    for config in mutants {
        caught(move || Http::with_clock(config, virtual_clock));
    }
}

/// A handler that resets a client as soon as a timeout finds output waiting, without
/// giving it a send timeout to take some.
struct Impatient(Http);

impl Events for Impatient {
    type Context = HttpConn;
    evio_proto::delegate_events!(self.0, except timeout);
    fn timeout(&mut self, conn: &mut Conn<'_, HttpConn>) -> Action {
        if conn.pending() > 0 {
            return Action::Abort;
        }
        self.0.timeout(conn)
    }
}

#[test]
fn a_handler_resetting_a_client_without_a_send_timeout_is_caught() {
    caught(|| Impatient(Http::with_clock(SIM_CONFIG, virtual_clock)));
}

/// A handler that consumes a request whose response did not fit: the request is lost.
struct DropsWhenFull(Http);

impl Events for DropsWhenFull {
    type Context = HttpConn;
    evio_proto::delegate_events!(self.0, except data);
    fn data(&mut self, conn: &mut Conn<'_, HttpConn>, input: &[u8]) -> Action {
        let action = self.0.data(conn, input);
        if conn.room() < 64 {
            // As if the output had room: everything counts as consumed.
            conn.consume(input.len());
        }
        action
    }
}

#[test]
fn a_handler_consuming_a_request_it_did_not_answer_is_caught() {
    let report = http_swarm(|| {
        (
            DropsWhenFull(Http::with_clock(SIM_CONFIG, virtual_clock)),
            HttpModel::new(SIM_CONFIG),
        )
    })
    .seeds(0..100)
    .steps(2000)
    .run();
    assert!(!report.failures.is_empty(), "{report}");
}
