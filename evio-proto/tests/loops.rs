//! Two engines as two loops of one server, with a post office in the test's hands: ids
//! name their loop; a handler's write, close and abort of the other loop's connection
//! are posted, delivered by `handle_post` whole or refused, and a refusal reaches the
//! sending loop's `post_refused`; an inbox with no room refuses at once; a waker never
//! wakes another loop's connection.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use common::*;
use evio_proto::{
    Action, Conn, ConnId, Events, Flow, Loop, Loops, PostKind, PostOffice, Refusal, WriteError,
};

/// One post: from which loop, to which connection, what, and the bytes.
type Post = (usize, ConnId, PostKind, Vec<u8>);

/// Inboxes that keep posts until the test hands them over, up to `room` at a time.
struct Office {
    queue: Mutex<VecDeque<Post>>,
    room: usize,
    loops: usize,
}

impl PostOffice for Office {
    fn post(&self, from: usize, to: ConnId, kind: PostKind, bytes: &[u8]) -> Result<(), Refusal> {
        if to.loop_index() >= self.loops {
            return Err(Refusal::NoSuchLoop);
        }
        let mut q = self.queue.lock().unwrap();
        if q.len() == self.room {
            return Err(Refusal::InboxFull);
        }
        q.push_back((from, to, kind, bytes.to_vec()));
        Ok(())
    }
}

/// Runs the line each client sends as a command on another connection: `w ID text`
/// writes text to connection ID (its `to_u64`), `c ID` closes it, `a ID` aborts it;
/// answers `ok` or the refusal at once, and records refusals that come later.
#[derive(Default)]
struct Commands {
    refused: Vec<(ConnId, PostKind, usize, Refusal)>,
    messages: Vec<(usize, Vec<u8>)>,
}

impl Events for Commands {
    type Context = ();
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let line = std::str::from_utf8(input).unwrap().trim_end();
        let mut words = line.splitn(3, ' ');
        let (verb, id) = (words.next().unwrap(), words.next().unwrap());
        if verb == "m" {
            let text = words.next().unwrap_or("");
            let answer = match conn
                .others()
                .post_message(id.parse().unwrap(), text.as_bytes())
            {
                Ok(()) => "ok".to_owned(),
                Err(why) => format!("refused: {why}"),
            };
            let _ = conn.write(answer.as_bytes());
            return Action::None;
        }
        let id = ConnId::from_u64(id.parse().unwrap());
        let lp = conn.others();
        let answer = match verb {
            "w" => match lp.write(id, words.next().unwrap_or("").as_bytes()) {
                Ok(()) => "ok".to_owned(),
                Err(WriteError::Refused(why)) => format!("refused: {why}"),
                Err(e) => format!("error: {e}"),
            },
            "c" => format!("{:?}", lp.close(id).is_ok()),
            "a" => format!("{:?}", lp.abort(id).is_ok()),
            _ => unreachable!(),
        };
        let _ = conn.write(answer.as_bytes());
        Action::None
    }
    fn loop_message(&mut self, _: &mut Loop<'_, ()>, from: usize, bytes: &[u8]) -> Flow {
        self.messages.push((from, bytes.to_vec()));
        Flow::Continue
    }
    fn post_refused(
        &mut self,
        _: &mut Loop<'_, ()>,
        to: ConnId,
        kind: PostKind,
        len: usize,
        why: Refusal,
    ) -> Flow {
        self.refused.push((to, kind, len, why));
        Flow::Continue
    }
}

/// Loops 0 and 1 of a server, started, over `office`.
fn two_loops(office: &Arc<Office>, output: usize) -> [(TestEngine<Commands>, Net); 2] {
    [0, 1].map(|index| {
        let (mut engine, _) = engine(Commands::default(), small_config(4, 256, output));
        engine.join_loops(Loops::from_arc(index, office.clone()));
        assert_eq!(engine.loop_index(), index);
        let mut net = Net::new(1);
        start(&mut engine, &mut net);
        (engine, net)
    })
}

/// Hands every queued post to its loop, and every refusal back to the sender.
fn deliver(office: &Office, loops: &mut [(TestEngine<Commands>, Net); 2]) {
    loop {
        let Some((from, to, kind, bytes)) = office.queue.lock().unwrap().pop_front() else {
            return;
        };
        let (engine, net) = &mut loops[to.loop_index()];
        let result = engine.handle_post(from, to, kind, &bytes);
        drain(engine, net);
        if let Err(why) = result {
            let (engine, net) = &mut loops[from];
            engine.handle_refusal(to, kind, bytes.len(), why);
            drain(engine, net);
        }
    }
}

fn command(loops: &mut [(TestEngine<Commands>, Net); 2], on: usize, client: ConnId, text: &str) {
    let (engine, net) = &mut loops[on];
    net.peer(client).received.clear();
    send(engine, net, client, text.as_bytes());
}

fn answer(loops: &mut [(TestEngine<Commands>, Net); 2], on: usize, client: ConnId) -> String {
    String::from_utf8(loops[on].1.peer(client).received.clone()).unwrap()
}

#[test]
fn a_write_to_another_loops_connection_is_posted_and_delivered_whole() {
    let office = Arc::new(Office {
        queue: Mutex::default(),
        room: 16,
        loops: 2,
    });
    let mut loops = two_loops(&office, 64);
    let a = connect(&mut loops[0].0, &mut loops[0].1, 0).unwrap();
    let b = connect(&mut loops[1].0, &mut loops[1].1, 0).unwrap();
    assert_eq!((a.loop_index(), b.loop_index()), (0, 1));
    assert_eq!((a.slot(), a.generation()), (b.slot(), b.generation()));
    assert_ne!(a, b, "the same slot and generation on two loops: two ids");

    command(&mut loops, 0, a, &format!("w {} hello", b.to_u64()));
    assert_eq!(answer(&mut loops, 0, a), "ok", "posted, not yet delivered");
    assert!(loops[1].1.peer(b).received.is_empty());
    deliver(&office, &mut loops);
    assert_eq!(loops[1].1.peer(b).received, b"hello");
    assert_eq!(loops[1].0.stats().posts_received, 1);
    assert!(loops[0].0.handler().refused.is_empty());

    // A write that does not fit there is refused whole, and the sender hears why.
    let big = "x".repeat(100);
    loops[1].1.peer(b).window = 0;
    command(&mut loops, 0, a, &format!("w {} {big}", b.to_u64()));
    deliver(&office, &mut loops);
    assert_eq!(loops[1].1.peer(b).received, b"hello", "nothing of it");
    assert_eq!(
        loops[0].0.handler().refused,
        [(
            b,
            PostKind::Write,
            100,
            Refusal::Full {
                needed: 100,
                room: 64
            }
        )]
    );

    // A close is posted too; then the connection is gone, and a write to it refused.
    command(&mut loops, 0, a, &format!("c {}", b.to_u64()));
    assert_eq!(answer(&mut loops, 0, a), "true");
    deliver(&office, &mut loops);
    let (engine, net) = &mut loops[1];
    open_window(engine, net, b, 1000);
    assert!(net.peer(b).closed && !net.peer(b).aborted);
    command(&mut loops, 0, a, &format!("w {} late", b.to_u64()));
    deliver(&office, &mut loops);
    assert_eq!(
        loops[0].0.handler().refused.last(),
        Some(&(b, PostKind::Write, 4, Refusal::NotOpen))
    );
    assert_eq!(loops[0].0.stats().posts_refused, 2);
}

#[test]
fn an_abort_is_posted_and_a_full_inbox_refuses_at_once() {
    let office = Arc::new(Office {
        queue: Mutex::default(),
        room: 1,
        loops: 2,
    });
    let mut loops = two_loops(&office, 64);
    let a = connect(&mut loops[0].0, &mut loops[0].1, 0).unwrap();
    let b = connect(&mut loops[1].0, &mut loops[1].1, 0).unwrap();
    command(&mut loops, 0, a, &format!("w {} one", b.to_u64()));
    assert_eq!(answer(&mut loops, 0, a), "ok");
    command(&mut loops, 0, a, &format!("w {} two", b.to_u64()));
    assert_eq!(
        answer(&mut loops, 0, a),
        "refused: its loop's inbox is full"
    );
    command(&mut loops, 0, a, &format!("a {}", b.to_u64()));
    assert_eq!(
        answer(&mut loops, 0, a),
        "false",
        "an abort that cannot be posted"
    );
    deliver(&office, &mut loops);
    assert_eq!(loops[1].1.peer(b).received, b"one");
    command(&mut loops, 0, a, &format!("a {}", b.to_u64()));
    assert_eq!(answer(&mut loops, 0, a), "true");
    deliver(&office, &mut loops);
    assert!(loops[1].1.peer(b).aborted);
    // An id of a loop the server does not have.
    let nowhere = ConnId::from_u64(b.to_u64() | (5 << 24));
    assert_eq!(nowhere.loop_index(), 5);
    command(&mut loops, 0, a, &format!("w {} x", nowhere.to_u64()));
    assert_eq!(
        answer(&mut loops, 0, a),
        "refused: no loop of this server has its number"
    );
}

#[test]
fn a_loop_refuses_posts_for_ids_that_are_not_its_own_and_wakes_only_its_own() {
    let office = Arc::new(Office {
        queue: Mutex::default(),
        room: 4,
        loops: 2,
    });
    let mut loops = two_loops(&office, 64);
    let a = connect(&mut loops[0].0, &mut loops[0].1, 0).unwrap();
    let b = connect(&mut loops[1].0, &mut loops[1].1, 0).unwrap();
    // Loop 0 handed a post for loop 1's connection (a driver's mistake) refuses it,
    // although its own `a` has the same slot and generation.
    let (engine, net) = &mut loops[0];
    assert_eq!(
        engine.handle_post(1, b, PostKind::Write, b"no"),
        Err(Refusal::NotOpen)
    );
    drain(engine, net);
    assert!(net.peer(a).received.is_empty());
    let waker_0 = loops[0].0.waker().unwrap().clone();
    let waker_1 = loops[1].0.waker().unwrap().clone();
    assert!(
        !waker_0.wake(b),
        "loop 0's waker does not wake loop 1's connection"
    );
    assert!(waker_0.wake(a) && waker_1.wake(b));
}

#[test]
fn a_handler_posts_a_message_to_another_loops_handler() {
    let office = Arc::new(Office {
        queue: Mutex::default(),
        room: 4,
        loops: 2,
    });
    let mut loops = two_loops(&office, 64);
    let a = connect(&mut loops[0].0, &mut loops[0].1, 0).unwrap();
    command(&mut loops, 0, a, "m 1 first");
    assert_eq!(answer(&mut loops, 0, a), "ok");
    command(&mut loops, 0, a, "m 0 to myself");
    command(&mut loops, 0, a, "m 1 second");
    assert!(
        loops[1].0.handler().messages.is_empty(),
        "not before delivery"
    );
    deliver(&office, &mut loops);
    assert_eq!(
        loops[1].0.handler().messages,
        [(0, b"first".to_vec()), (0, b"second".to_vec())],
        "in the order posted"
    );
    assert_eq!(loops[0].0.handler().messages, [(0, b"to myself".to_vec())]);
    command(&mut loops, 0, a, "m 7 nowhere");
    assert_eq!(
        answer(&mut loops, 0, a),
        "refused: no loop of this server has its number"
    );
    // One loop and no post office: no other loop to post to.
    let (mut alone, _) = engine(Commands::default(), small_config(4, 256, 64));
    let mut net = Net::new(1);
    start(&mut alone, &mut net);
    let c = connect(&mut alone, &mut net, 0).unwrap();
    send(&mut alone, &mut net, c, b"m 0 hello");
    assert_eq!(
        net.peer(c).received,
        b"refused: no loop of this server has its number"
    );
}

#[test]
fn a_connection_accepted_on_one_loop_is_adopted_by_another() {
    let office = Arc::new(Office {
        queue: Mutex::default(),
        room: 4,
        loops: 2,
    });
    let mut loops = two_loops(&office, 64);
    // Loop 0 accepts two connections and hands the first to loop 1.
    loops[0].1.hand_off = 1;
    let (engine, net) = &mut loops[0];
    net.backlog[0].push_back(addr(5000));
    net.backlog[0].push_back(addr(5001));
    engine
        .handle_listener_ready(evio_proto::ListenerId::new(0).unwrap())
        .unwrap();
    drain(engine, net);
    assert_eq!(net.handed, [(0, addr(5000))]);
    assert_eq!(net.accepted.len(), 1, "the second is this loop's own");
    assert_eq!(engine.stats().handed_off, 1);
    assert_eq!(engine.open_connections(), 1);
    // Loop 1 adopts it: an id of loop 1, opened there, served there.
    let (engine, net) = &mut loops[1];
    let id = engine
        .handle_adopt(
            evio_proto::ListenerId::new(0).unwrap(),
            evio_proto::Addr::Ip(addr(1000)),
            evio_proto::Addr::Ip(addr(5000)),
        )
        .unwrap();
    net.adopted(id);
    drain(engine, net);
    assert_eq!((id.loop_index(), engine.open_connections()), (1, 1));
    assert_eq!(engine.stats().adopted, 1);
    send(engine, net, id, b"m 0 adopted");
    assert_eq!(net.peer(id).received, b"ok");
    // A listener the engine was not started with is refused.
    assert_eq!(
        engine.handle_adopt(
            evio_proto::ListenerId::new(3).unwrap(),
            evio_proto::Addr::Unix,
            evio_proto::Addr::Unix,
        ),
        Err(evio_proto::Refused::ShuttingDown)
    );
}
