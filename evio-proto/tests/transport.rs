//! Transformed connections (the seam TLS uses), with a toy transport whose records are
//! easy to write by hand: a handshake (`HELLO\n` answered by `WELCOME\n`), then
//! records of one length byte and that many payload bytes XORed with 0x5A; an empty
//! record is the closing message.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use evio_proto::{
    Action, BuildError, CloseError, Config, Conn, ConnId, ConnInfo, Decoded, Events, Flow, Loop,
    Transport, TransportError,
};

const KEY: u8 = 0x5A;
const HELLO: &[u8] = b"HELLO\n";
const WELCOME: &[u8] = b"WELCOME\n";
/// The most outgoing bytes it holds before `encode` says no more.
const OUTGOING_MAX: usize = 600;

#[derive(Default)]
struct ToySession {
    established: bool,
    kept: usize,
    outgoing: Vec<u8>,
}

#[derive(Default)]
struct Toy {
    sessions: HashMap<ConnId, ToySession>,
    /// Connections it ended.
    ended: Vec<ConnId>,
    /// Take no connection: all plain.
    off: bool,
}

impl Transport for Toy {
    fn start(&mut self, info: &ConnInfo) -> Result<bool, TransportError> {
        if self.off {
            return Ok(false);
        }
        self.sessions.insert(info.id, ToySession::default());
        Ok(true)
    }

    fn decode(&mut self, id: ConnId, bytes: &mut [u8]) -> Result<Decoded, TransportError> {
        let s = self.sessions.get_mut(&id).expect("a session");
        let mut at = 0;
        let mut plain = 0;
        if !s.established {
            if bytes.len() < HELLO.len() {
                s.kept = bytes.len();
                return Ok(Decoded {
                    plain: 0,
                    kept: bytes.len(),
                    ended: false,
                });
            }
            if bytes[..HELLO.len()] != *HELLO {
                return Err(TransportError::Handshake);
            }
            s.outgoing.extend_from_slice(WELCOME);
            s.established = true;
            at = HELLO.len();
        }
        let mut ended = false;
        while at < bytes.len() {
            let len = bytes[at] as usize;
            if len == 0 {
                // The closing message: nothing after it counts.
                ended = true;
                at = bytes.len();
                break;
            }
            if at + 1 + len > bytes.len() {
                break;
            }
            for i in 0..len {
                bytes[plain + i] = bytes[at + 1 + i] ^ KEY;
            }
            plain += len;
            at += 1 + len;
        }
        let kept = bytes.len() - at;
        bytes.copy_within(at.., plain);
        s.kept = kept;
        Ok(Decoded { plain, kept, ended })
    }

    fn kept(&self, id: ConnId) -> usize {
        self.sessions[&id].kept
    }

    fn encode(&mut self, id: ConnId, plain: &[u8]) -> Result<usize, TransportError> {
        let s = self.sessions.get_mut(&id).expect("a session");
        let mut taken = 0;
        while taken < plain.len() && s.outgoing.len() + 2 <= OUTGOING_MAX {
            let n = (plain.len() - taken)
                .min(255)
                .min(OUTGOING_MAX - s.outgoing.len() - 1);
            s.outgoing.push(n as u8);
            s.outgoing
                .extend(plain[taken..taken + n].iter().map(|b| b ^ KEY));
            taken += n;
        }
        Ok(taken)
    }

    fn outgoing(&mut self, id: ConnId) -> &[u8] {
        &self.sessions[&id].outgoing
    }

    fn sent(&mut self, id: ConnId, n: usize) {
        self.sessions.get_mut(&id).unwrap().outgoing.drain(..n);
    }

    fn established(&mut self, id: ConnId) -> bool {
        self.sessions[&id].established
    }

    fn close(&mut self, id: ConnId) {
        self.sessions.get_mut(&id).unwrap().outgoing.push(0);
    }

    fn end(&mut self, id: ConnId) {
        assert!(self.sessions.remove(&id).is_some(), "ended twice");
        self.ended.push(id);
    }

    fn min_input(&self) -> usize {
        256
    }
}

/// Records for `plain`, as the toy peer sends them, cut `per` bytes of plaintext each.
fn records(plain: &[u8], per: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in plain.chunks(per) {
        out.push(chunk.len() as u8);
        out.extend(chunk.iter().map(|b| b ^ KEY));
    }
    out
}

/// The plaintext of the complete toy records in `bytes`, and whether they end with the
/// closing message.
fn plaintext(bytes: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = bytes[at] as usize;
        if len == 0 {
            assert_eq!(at + 1, bytes.len(), "nothing after the closing message");
            return (out, true);
        }
        if at + 1 + len > bytes.len() {
            break;
        }
        out.extend(bytes[at + 1..at + 1 + len].iter().map(|b| b ^ KEY));
        at += 1 + len;
    }
    (out, false)
}

/// Echoes lines (complete ones only), closes on `quit`, and writes `hi` to every
/// connection when the server is woken.
#[derive(Default)]
struct Lines {
    toy: Toy,
    /// Echo every byte at once instead of whole lines.
    raw: bool,
    /// `opened` returns `Close`.
    close_on_open: bool,
    /// `pending` and `unsent` as `opened` saw them.
    at_open: Vec<(usize, usize)>,
    opened: Vec<ConnId>,
    lines: Vec<Vec<u8>>,
    closed: Vec<(ConnId, Option<CloseError>)>,
}

impl Events for Lines {
    type Context = ();

    fn transport(&mut self) -> Option<&mut dyn Transport> {
        Some(&mut self.toy)
    }

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        self.opened.push(conn.id());
        self.at_open.push((conn.pending(), conn.unsent()));
        if self.close_on_open {
            return Action::Close;
        }
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        if self.raw {
            self.lines.push(input.to_vec());
            conn.write(input).unwrap();
            return Action::None;
        }
        let mut used = 0;
        while let Some(end) = input[used..].iter().position(|&b| b == b'\n') {
            let line = &input[used..used + end + 1];
            used += end + 1;
            if line == b"quit\n" {
                conn.consume(used);
                return Action::Close;
            }
            if line == b"detach\n" {
                conn.consume(used);
                return Action::Detach;
            }
            self.lines.push(line.to_vec());
            conn.write(line).unwrap();
        }
        conn.consume(used);
        Action::None
    }

    fn server_woken(&mut self, others: &mut Loop<'_, ()>) -> Flow {
        for &id in &self.opened {
            let _ = others.write(id, b"hi\n");
        }
        Flow::Continue
    }

    fn closed(
        &mut self,
        info: &ConnInfo,
        _: (),
        error: Option<CloseError>,
        _: &mut Loop<'_, ()>,
    ) -> Flow {
        self.closed.push((info.id, error));
        Flow::Continue
    }
}

fn config() -> Config {
    small_config(4, 512, 1024)
}

/// A connection whose handshake is done: `WELCOME` received and taken off.
fn established(engine: &mut TestEngine<Lines>, net: &mut Net) -> ConnId {
    let id = connect(engine, net, 0).unwrap();
    assert!(
        engine.handler().opened.is_empty(),
        "not before the handshake"
    );
    send(engine, net, id, HELLO);
    assert_eq!(net.peer(id).received, WELCOME);
    assert_eq!(engine.handler().opened, [id], "opened once established");
    net.peer(id).received.clear();
    id
}

/// `opened` runs right after the read that ended the handshake, before the transport's
/// answer to it (`WELCOME`) is sent: nothing of the handler's is pending, but output
/// waits for the socket.
#[test]
fn unsent_counts_what_the_transport_holds_and_pending_does_not() {
    let (mut engine, _) = engine(Lines::default(), config());
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = established(&mut engine, &mut net);
    assert_eq!(engine.handler().at_open, [(0, 1)]);
    send(&mut engine, &mut net, id, &records(b"one\n", 255));
    assert_eq!(plaintext(&net.peer(id).received).0, b"one\n");
}

#[test]
fn the_handler_sees_plaintext_only_after_the_handshake() {
    let (mut engine, _) = engine(Lines::default(), config());
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = established(&mut engine, &mut net);
    send(&mut engine, &mut net, id, &records(b"one\ntwo\n", 5));
    assert_eq!(
        engine.handler().lines,
        [b"one\n".to_vec(), b"two\n".to_vec()]
    );
    let (echo, closing) = plaintext(&net.peer(id).received);
    assert_eq!(echo, b"one\ntwo\n");
    assert!(!closing);
    assert_eq!(engine.stats().handshakes, 1);
}

#[test]
fn records_cut_at_every_byte_arrive_whole_and_in_order() {
    let text: Vec<u8> = (0..40)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let wire = [HELLO.to_vec(), records(&text, 7)].concat();
    let (mut engine, _) = engine(Lines::default(), config());
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    for b in &wire {
        send(&mut engine, &mut net, id, std::slice::from_ref(b));
    }
    let got: Vec<u8> = engine.handler().lines.concat();
    assert_eq!(got, text);
    let received = net.peer(id).received.clone();
    assert_eq!(&received[..WELCOME.len()], WELCOME);
    assert_eq!(plaintext(&received[WELCOME.len()..]).0, text);
}

/// A handler that takes all its input at once is given plaintext only: never the
/// start of a record kept for later, however the records are cut.
#[test]
fn a_handler_that_takes_everything_never_sees_a_kept_record() {
    let text: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let wire = [HELLO.to_vec(), records(&text, 200)].concat();
    for cut in [1, 2, 3, 7, 150, 201, 202, 500] {
        let handler = Lines {
            raw: true,
            ..Lines::default()
        };
        let (mut engine, _) = engine(handler, config());
        let mut net = Net::new(1);
        start(&mut engine, &mut net);
        let id = connect(&mut engine, &mut net, 0).unwrap();
        for part in wire.chunks(cut) {
            send(&mut engine, &mut net, id, part);
        }
        assert_eq!(
            engine.handler().lines.concat(),
            text,
            "cut every {cut} bytes"
        );
        let received = net.peer(id).received.clone();
        assert_eq!(plaintext(&received[WELCOME.len()..]).0, text);
    }
}

#[test]
fn a_close_sends_the_output_then_the_closing_message() {
    let (mut engine, _) = engine(Lines::default(), config());
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = established(&mut engine, &mut net);
    send(&mut engine, &mut net, id, &records(b"last\nquit\n", 255));
    let (echo, closing) = plaintext(&net.peer(id).received);
    assert_eq!(echo, b"last\n");
    assert!(closing, "the closing message goes last");
    assert!(net.peer(id).closed);
    assert_eq!(engine.handler().closed, [(id, None)]);
    assert_eq!(engine.handler().toy.ended, [id]);
}

/// The peer's closing message ends its stream after its last plaintext: the handler
/// gets that plaintext, then the end (here it closes in answer), and what came after
/// the closing message is ignored.
#[test]
fn the_peers_closing_message_ends_its_stream() {
    let (mut engine, _) = engine(Lines::default(), config());
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = established(&mut engine, &mut net);
    let wire = [records(b"last\n", 255), vec![0], records(b"after\n", 255)].concat();
    send(&mut engine, &mut net, id, &wire);
    assert_eq!(engine.handler().lines, [b"last\n".to_vec()]);
    let (echo, closing) = plaintext(&net.peer(id).received);
    assert_eq!(echo, b"last\n");
    assert!(closing, "closed in answer, with its own closing message");
    assert!(net.peer(id).closed);
    assert_eq!(engine.handler().closed, [(id, None)]);
}

/// Found by the simulator over TLS: plaintext that came with the end of the
/// handshake was handed to `data` after `opened` had returned `Close`.
#[test]
fn a_handler_that_closes_in_opened_is_given_no_input_from_the_handshakes_read() {
    let handler = Lines {
        close_on_open: true,
        ..Lines::default()
    };
    let (mut engine, _) = engine(handler, config());
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    let wire = [HELLO.to_vec(), records(b"early\n", 255)].concat();
    send(&mut engine, &mut net, id, &wire);
    assert_eq!(engine.handler().opened, [id]);
    assert!(engine.handler().lines.is_empty(), "no data after Close");
    // (It lingers over the input it never took, after its closing message.)
    let (echo, closing) = plaintext(&net.peer(id).received[WELCOME.len()..]);
    assert!(echo.is_empty());
    assert!(closing, "closing message sent");
}

#[test]
fn a_detach_closes_a_transformed_connection() {
    let (mut engine, _) = engine(Lines::default(), config());
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = established(&mut engine, &mut net);
    send(&mut engine, &mut net, id, &records(b"detach\n", 255));
    assert!(!net.peer(id).detached);
    assert!(net.peer(id).closed);
    assert!(plaintext(&net.peer(id).received).1, "closing message sent");
    assert_eq!(engine.handler().closed, [(id, None)]);
}

#[test]
fn a_failed_handshake_ends_the_connection_without_a_callback() {
    let (mut engine, _) = engine(Lines::default(), config());
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    send(&mut engine, &mut net, id, b"HELLX\n");
    assert!(net.peer(id).closed);
    assert!(engine.handler().opened.is_empty());
    assert!(
        engine.handler().closed.is_empty(),
        "its handler never heard of it"
    );
    assert_eq!(engine.stats().handshake_failures, 1);
    assert_eq!(engine.handler().toy.ended, [id]);
    assert_eq!(engine.free_slots(), 4);
}

#[test]
fn a_handshake_that_never_finishes_is_reset_after_the_timeout() {
    let config = Config {
        handshake_timeout: Duration::from_secs(3),
        ..config()
    };
    let (mut engine, _) = engine(Lines::default(), config);
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    send(&mut engine, &mut net, id, b"HEL");
    assert_eq!(
        engine.poll_timeout(),
        Some(evio_proto::Instant::ZERO + Duration::from_secs(3))
    );
    advance(
        &mut engine,
        &mut net,
        evio_proto::Instant::ZERO + Duration::from_secs(3),
    );
    assert!(net.peer(id).aborted, "reset");
    assert!(engine.handler().opened.is_empty() && engine.handler().closed.is_empty());
    assert_eq!(engine.stats().handshake_failures, 1);
    assert_eq!(engine.free_slots(), 4);
}

#[test]
fn writes_from_other_connections_are_encoded_and_large_output_waits_for_room() {
    let (mut engine, _) = engine(Lines::default(), config());
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = established(&mut engine, &mut net);
    engine.waker().unwrap().wake_server();
    engine.handle_wakes();
    drain(&mut engine, &mut net);
    assert_eq!(plaintext(&net.peer(id).received).0, b"hi\n");
    // More plaintext than the transport holds at once, through a socket that takes
    // 100 bytes at a time: all of it arrives, in order.
    net.peer(id).received.clear();
    let text: Vec<u8> = (0..60)
        .flat_map(|i| format!("{i:>15}\n").into_bytes())
        .collect();
    net.peer(id).window = 100;
    send(&mut engine, &mut net, id, &records(&text, 200));
    let mut rounds = 0;
    while plaintext(&net.peer(id).received).0.len() < text.len() {
        rounds += 1;
        assert!(rounds < 100, "stuck");
        open_window(&mut engine, &mut net, id, 100);
    }
    assert_eq!(plaintext(&net.peer(id).received).0, text);
}

#[test]
fn an_input_buffer_smaller_than_a_record_is_refused() {
    let config = small_config(4, 255, 1024);
    let err = TestEngine::allocate(Lines::default(), config, ArcNotify(Default::default()))
        .err()
        .unwrap();
    assert_eq!(
        err,
        BuildError::InputTooSmall {
            needed: 256,
            given: 255
        }
    );
    assert!(err.to_string().contains("at least 256"));
}

#[test]
fn a_transport_that_declines_a_connection_leaves_it_plain() {
    let handler = Lines {
        toy: Toy {
            off: true,
            ..Toy::default()
        },
        ..Lines::default()
    };
    let (mut engine, _) = engine(handler, config());
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = connect(&mut engine, &mut net, 0).unwrap();
    assert_eq!(engine.handler().opened, [id]);
    send(&mut engine, &mut net, id, b"plain\n");
    assert_eq!(net.peer(id).received, b"plain\n");
}

/// Output larger than the transport encodes at once, through a socket that takes all
/// of it: the rest is encoded at the connection's next turns, all of it in order.
#[test]
fn output_larger_than_the_transport_holds_goes_in_turns_without_blocking() {
    let (mut engine, _) = engine(
        Lines {
            raw: true,
            ..Lines::default()
        },
        small_config(4, 2048, 2048),
    );
    let mut net = Net::new(1);
    start(&mut engine, &mut net);
    let id = established(&mut engine, &mut net);
    // One read, one echo of 1,500 bytes: more than the toy's 600 outgoing.
    let text: Vec<u8> = (0..1500u32).map(|i| (i % 251) as u8).collect();
    send(&mut engine, &mut net, id, &records(&text, 250));
    assert_eq!(engine.handler().lines.len(), 1, "one data call");
    assert_eq!(plaintext(&net.peer(id).received).0, text);
}
