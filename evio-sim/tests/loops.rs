//! Several loops of one server in one world (`LoopsSim`): a handler that writes to,
//! closes and aborts connections of the other loops, so that the post office's every
//! path runs (posts delivered, refused at once with a full inbox, refused on arrival
//! with the connection gone or its output full, refusals handed back), under the
//! rules of the posts and every loop's own oracle; and one loop stopping stops all.

use evio_proto::{
    Action, CloseError, Conn, ConnId, ConnInfo, Events, Flow, Loop, PostKind, Refusal,
};
use evio_sim::{LoopsSim, Model, ModelError, Rng, Swarm, Violation};

/// Each loop tells the others of its connections as they open and close; every input
/// is written whole to every connection of the other loops it knows of (a `!` first
/// closes the first of them, a `#` aborts it), and refusals are counted.
#[derive(Default)]
struct Scatter {
    loops: usize,
    remote: Vec<ConnId>,
    refused_at_once: u64,
    refused_later: u64,
}

impl Scatter {
    fn tell(lp: &mut Loop<'_, ()>, loops: usize, what: u8, id: ConnId) {
        let mut msg = vec![what];
        msg.extend_from_slice(&id.to_u64().to_le_bytes());
        let me = lp.loop_index();
        for l in (0..loops).filter(|&l| l != me) {
            let _ = lp.post_message(l, &msg);
        }
    }
}

impl Events for Scatter {
    type Context = ();

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let id = conn.id();
        Scatter::tell(conn.others(), self.loops, b'O', id);
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let lp = conn.others();
        match (input.first(), self.remote.first()) {
            (Some(b'!'), Some(&first)) => {
                let _ = lp.close(first);
            }
            (Some(b'#'), Some(&first)) => {
                let _ = lp.abort(first);
            }
            _ => {}
        }
        for &id in &self.remote {
            if lp.write(id, input).is_err() {
                self.refused_at_once += 1;
            }
        }
        Action::None
    }

    fn loop_message(&mut self, _: &mut Loop<'_, ()>, _: usize, bytes: &[u8]) -> Flow {
        if let Some((&what, id)) = bytes.split_first()
            && let Ok(id) = <[u8; 8]>::try_from(id)
        {
            let id = ConnId::from_u64(u64::from_le_bytes(id));
            match what {
                b'O' => self.remote.push(id),
                _ => self.remote.retain(|&r| r != id),
            }
        }
        Flow::Continue
    }

    fn post_refused(
        &mut self,
        _: &mut Loop<'_, ()>,
        _: ConnId,
        _: PostKind,
        _: usize,
        _: Refusal,
    ) -> Flow {
        self.refused_later += 1;
        Flow::Continue
    }

    fn closed(
        &mut self,
        info: &ConnInfo,
        _: (),
        _: Option<CloseError>,
        others: &mut Loop<'_, ()>,
    ) -> Flow {
        Scatter::tell(others, self.loops, b'C', info.id);
        Flow::Continue
    }
}

/// What a client of [`Scatter`] receives is whatever other loops' clients sent: this
/// model asks nothing of it (each loop's oracle still checks that every byte written
/// to a connection, by a post too, reaches its client, in order).
struct Anything;

impl Model for Anything {
    type Conn = ();
    fn input(&mut self, _: &mut (), _: &[u8]) {}
    fn output(&mut self, _: &mut (), _: &[u8]) -> Result<(), ModelError> {
        Ok(())
    }
    fn owed(&self, _: &()) -> usize {
        0
    }
}

fn scatter(loops: usize) -> Vec<(Scatter, Anything)> {
    (0..loops)
        .map(|_| {
            (
                Scatter {
                    loops,
                    ..Scatter::default()
                },
                Anything,
            )
        })
        .collect()
}

fn lines(_: u16, rng: &mut Rng) -> Vec<u8> {
    let first = [b'a', b'!', b'#'][usize::from(rng.below(10) == 0) * (1 + rng.below(2) as usize)];
    let mut line = vec![first];
    line.extend((0..rng.below(20)).map(|_| b'a' + rng.below(26) as u8));
    line
}

/// What makes the loops' handlers and models.
type Make = fn(usize) -> Vec<(Scatter, Anything)>;

fn swarm() -> Swarm<Make> {
    Swarm::new(scatter as Make)
        .workload(lines as fn(u16, &mut Rng) -> Vec<u8>)
        .steps(1500)
}

#[test]
fn writes_closes_and_aborts_between_loops_keep_every_rule() {
    for loops in [2, 3] {
        let report = swarm().seeds(0..200).run_loops(loops);
        println!("{loops} loops: {report}");
        assert!(report.failures.is_empty(), "{report}");
    }
}

/// Every path of the post office runs: delivered, refused at once, refused on arrival
/// and handed back (each refusal told to the sending loop's handler once).
#[test]
fn the_post_office_delivers_refuses_and_hands_refusals_back() {
    let swarm = swarm();
    let mut totals = evio_sim::PostCounts::default();
    let (mut at_once, mut later, mut stopped) = (0, 0, 0);
    for seed in 0..100 {
        let config = swarm.config(seed);
        let script = swarm.script(seed, &config);
        let mut sim = LoopsSim::with_config(scatter(2), seed, config).expect("a valid config");
        for event in &script {
            if let Err(v) = sim.step(event) {
                panic!("seed {seed}: {v}");
            }
        }
        let outcome = sim.finish().unwrap_or_else(|v| panic!("seed {seed}: {v}"));
        let p = outcome.posts;
        // One loop stopping (an injected shutdown) stops all.
        if sim.loops().iter().any(|l| l.is_shut_down()) {
            stopped += 1;
            assert!(sim.loops().iter().all(|l| l.is_shut_down()), "seed {seed}");
        }
        assert_eq!(p.accepted, p.delivered + p.refused_there, "seed {seed}");
        assert_eq!(p.refused_there, p.refusals_returned, "seed {seed}");
        totals.accepted += p.accepted;
        totals.delivered += p.delivered;
        totals.refused_there += p.refused_there;
        totals.refusals_returned += p.refusals_returned;
        totals.inbox_full_faults += p.inbox_full_faults;
        totals.inbox_full += p.inbox_full;
        for l in sim.loops() {
            at_once += l.handler().refused_at_once;
            later += l.handler().refused_later;
        }
    }
    println!(
        "100 seeds: {totals:?}; handlers told of {at_once} refusals at once, {later} later; \
         {stopped} seeds stopped every loop"
    );
    assert!(stopped > 0);
    assert!(totals.delivered > 1000 && totals.refused_there > 0);
    assert!(totals.inbox_full > 0 && totals.inbox_full_faults > 0);
    assert!(later > 0 && at_once > 0);
}

/// A world that loses a post (a broken driver: a letter the office took and never
/// handed over) is caught by the rules between loops, on every seed where a post was
/// lost.
#[test]
fn a_lost_post_is_caught() {
    let swarm = swarm();
    let (mut lost, mut caught) = (0, 0);
    for seed in 0..50 {
        let config = swarm.config(seed);
        let script = swarm.script(seed, &config);
        let mut sim = LoopsSim::with_config(scatter(2), seed, config).expect("a valid config");
        let mut result = Ok(());
        for (i, event) in script.iter().enumerate() {
            if i == script.len() / 2 {
                sim.lose_next_post();
            }
            result = result.and_then(|()| sim.step(event));
        }
        let result = result.and_then(|()| sim.finish().map(drop));
        if sim.posts_lost() > 0 {
            lost += 1;
            if let Err(Violation::Loops(_)) = result {
                caught += 1;
            }
        }
    }
    println!("a lost post: {caught} of {lost} seeds that lost one caught");
    assert!(lost > 10);
    assert_eq!(caught, lost);
}

/// A fault-free configuration has no inbox refusing a post it has room for (inboxes
/// still refuse past their capacity); the swarm's report counts the posts.
#[test]
fn fault_free_loops_refuse_only_past_capacity() {
    let report = swarm()
        .constraints(evio_sim::Constraints::fault_free())
        .seeds(0..100)
        .run_loops(2);
    println!("{report}");
    assert!(report.failures.is_empty(), "{report}");
    assert!(report.posts.accepted > 1000, "{report}");
    assert!(report.posts.inbox_full > 0, "{report}");
    assert_eq!(report.posts.inbox_full_faults, 0, "{report}");
    assert!(report.to_string().contains("posts between loops"));
}
