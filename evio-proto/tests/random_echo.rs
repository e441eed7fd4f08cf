//! Echo integrity under random socket windows, short reads, half-closes and wakes,
//! through the level-triggered test driver. (The simulator in evio-sim does this with
//! far more faults; this is the engine crate's own quick check.)

mod common;

use common::*;
use evio_proto::{Action, Conn, ConnId, Events};

struct Echo;

impl Events for Echo {
    type Context = ();
    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let n = conn.write_some(input);
        conn.consume(n);
        Action::None
    }
}

/// splitmix64: enough randomness for a test, and the seed is in the failure message.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn run(seed: u64) -> usize {
    let mut rng = Rng(seed);
    let input = 8 + rng.below(64) as usize;
    let output = 8 + rng.below(64) as usize;
    let (mut engine, _) = engine(Echo, small_config(3, input, output));
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let mut sent: Vec<(ConnId, Vec<u8>)> = Vec::new();
    for step in 0..400 {
        net.read_limit = 1 + rng.below(40) as usize;
        match rng.below(10) {
            0 => {
                if let Some(id) = connect(&mut engine, &mut net, 0) {
                    net.peer(id).window = rng.below(50) as usize;
                    sent.push((id, Vec::new()));
                }
            }
            1..=5 if !sent.is_empty() => {
                let i = rng.below(sent.len() as u64) as usize;
                let id = sent[i].0;
                if net.peer(id).eof || net.peer(id).closed {
                    continue;
                }
                let bytes: Vec<u8> = (0..rng.below(100)).map(|k| (step + k) as u8).collect();
                sent[i].1.extend(&bytes);
                send(&mut engine, &mut net, id, &bytes);
            }
            6..=8 if !sent.is_empty() => {
                let i = rng.below(sent.len() as u64) as usize;
                let n = rng.below(60) as usize;
                open_window(&mut engine, &mut net, sent[i].0, n);
            }
            9 if !sent.is_empty() => {
                let i = rng.below(sent.len() as u64) as usize;
                half_close(&mut engine, &mut net, sent[i].0);
            }
            _ => {}
        }
        for (id, bytes) in &sent {
            let got = &net.peer(*id).received;
            assert!(
                bytes.starts_with(got),
                "seed {seed}: {id} received bytes it never sent"
            );
        }
    }
    // Liveness: with the windows open and every client done, all bytes come back and
    // every connection closes exactly once.
    for (id, _) in &sent {
        half_close(&mut engine, &mut net, *id);
        open_window(&mut engine, &mut net, *id, usize::MAX / 2);
    }
    for (id, bytes) in &sent {
        let peer = net.peer(*id);
        assert_eq!(
            &peer.received, bytes,
            "seed {seed}: {id} lost or reordered bytes"
        );
        assert!(peer.closed, "seed {seed}: {id} never closed");
    }
    assert_eq!(engine.open_connections(), 0, "seed {seed}: slots leaked");
    sent.iter().map(|(_, b)| b.len()).sum()
}

#[test]
fn echo_is_exact_under_random_windows_and_short_reads() {
    let echoed: usize = (0..300).map(run).sum();
    assert!(echoed > 100_000, "the runs moved only {echoed} bytes");
}
