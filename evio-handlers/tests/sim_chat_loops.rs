//! The chat room spanning the loops of a server (`Chat::spanning`) in the simulator's
//! world of several loops (`evio_sim::LoopsSim`): each client is accepted by one loop,
//! lines go between loops through a post office whose capacity, delays and refusals
//! come from the seed, and a model of the whole room holds across loops: every line
//! reaches every other member that was there when it was sent, once, in order per
//! loop. A room that loses one line on its way between loops is caught.

use evio_handlers::chat::Chat;
use evio_handlers::sim::{ChatLoopsModel, chat_constraints, chat_loops, chat_tagged_lines};
use evio_proto::{Flow, Loop};
use evio_sim::{LoopsSim, Rng, Swarm, Violation};

fn swarm<H, F>(make: F) -> Swarm<F>
where
    F: Fn(usize) -> Vec<(H, ChatLoopsModel)> + Sync,
{
    Swarm::new(make)
        .constraints(chat_constraints())
        .workload(chat_tagged_lines as fn(u16, &mut Rng) -> Vec<u8>)
        .steps(1500)
}

#[test]
fn a_chat_spanning_two_loops_passes_a_swarm() {
    let report = swarm(chat_loops).seeds(0..300).run_loops(2);
    println!("{report}");
    assert!(report.failures.is_empty(), "{report}");
    assert!(report.bytes_written > 100_000, "{report}");
}

#[test]
fn a_chat_spanning_three_loops_passes_a_swarm() {
    let report = swarm(chat_loops).seeds(0..150).run_loops(3);
    println!("{report}");
    assert!(report.failures.is_empty(), "{report}");
}

/// The swarm reaches what crossing loops is for: lines delivered to other loops,
/// inboxes full (by their capacity and as a fault), and lines lost for that, as the
/// handler documents.
#[test]
fn the_loops_swarm_posts_delivers_and_refuses() {
    let swarm = swarm(chat_loops);
    let (mut accepted, mut delivered, mut full, mut faults, mut lost) = (0, 0, 0, 0, 0);
    for seed in 0..60 {
        let config = swarm.config(seed);
        let script = swarm.script(seed, &config);
        let mut sim = LoopsSim::with_config(chat_loops(2), seed, config).expect("a valid config");
        for event in &script {
            if let Err(v) = sim.step(event) {
                panic!("seed {seed}: {v}");
            }
        }
        let outcome = sim.finish().unwrap_or_else(|v| panic!("seed {seed}: {v}"));
        accepted += outcome.posts.accepted;
        delivered += outcome.posts.delivered;
        full += outcome.posts.inbox_full;
        faults += outcome.posts.inbox_full_faults;
        lost += sim
            .loops()
            .iter()
            .map(|l| l.handler().lines_lost_between_loops())
            .sum::<u64>();
    }
    println!(
        "60 seeds: {accepted} posts, {delivered} delivered, {full} refused (inbox full), \
         {faults} refused (fault), {lost} lines lost between loops"
    );
    assert!(accepted > 1000 && delivered == accepted);
    assert!(full > 0 && faults > 0 && lost > 0);
}

/// The same seed twice does the same thing, and a swarm's result does not depend on
/// its threads.
#[test]
fn a_seed_of_several_loops_replays_exactly() {
    let swarm = swarm(chat_loops);
    for seed in [3, 17] {
        let a = swarm.run_seed_loops(seed, 2).expect("passes");
        let b = swarm.run_seed_loops(seed, 2).expect("passes");
        assert_eq!(a.trace_hash, b.trace_hash);
        assert_eq!(a.posts, b.posts);
    }
    // A swarm's result does not depend on its threads.
    let one = self::swarm(chat_loops).seeds(0..40).threads(1).run_loops(2);
    let two = self::swarm(chat_loops).seeds(0..40).threads(2).run_loops(2);
    assert_eq!(one.combined_hash, two.combined_hash);
    assert_eq!(one.posts, two.posts);
}

/// A room that drops the third line another loop sends it (and so never writes it to
/// its members) is caught by the model; so is one that writes it twice.
struct LosesALine {
    chat: Chat,
    lines_in: u64,
    twice: bool,
}

impl evio_proto::Events for LosesALine {
    type Context = ();
    evio_proto::delegate_events!(self.chat, except loop_message);
    fn loop_message(&mut self, others: &mut Loop<'_, ()>, from: usize, bytes: &[u8]) -> Flow {
        if bytes.first() == Some(&b'L') {
            self.lines_in += 1;
            if self.lines_in == 3 {
                if !self.twice {
                    return Flow::Continue;
                }
                self.chat.loop_message(others, from, bytes);
            }
        }
        self.chat.loop_message(others, from, bytes)
    }
}

fn mutant(twice: bool) -> impl Fn(usize) -> Vec<(LosesALine, ChatLoopsModel)> + Sync {
    move |loops| {
        chat_loops(loops)
            .into_iter()
            .map(|(chat, model)| {
                let lines_in = 0;
                (
                    LosesALine {
                        chat,
                        lines_in,
                        twice,
                    },
                    model,
                )
            })
            .collect()
    }
}

#[test]
fn a_chat_that_loses_a_line_between_loops_is_caught() {
    for twice in [false, true] {
        let report = swarm(mutant(twice)).seeds(0..100).run_loops(2);
        let what = if twice { "written twice" } else { "lost" };
        println!("{report}");
        println!(
            "a line {what} between loops: {} of 100 seeds caught",
            report.failures.len()
        );
        assert!(!report.failures.is_empty(), "{report}");
        assert!(
            report.failures.iter().all(|f| matches!(
                f.violation.innermost(),
                Violation::Model { .. } | Violation::Incomplete { .. } | Violation::Liveness { .. }
            )),
            "{report}"
        );
    }
}
