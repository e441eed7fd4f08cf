//! The run's trace: a hash of everything that happened (always kept, so two runs can be
//! compared by one number) and, when asked for, readable lines.

use evio_proto::Instant;

use crate::{Observation, ScriptedEvent, TraceHash};

/// What a record in the trace hash stands for: its first word.
///
/// The numbers are part of every seed's trace hash, so a tag keeps its number for as
/// long as the records it tags mean the same thing. Tags of records with no words of
/// their own (the outcome of a read or write) are mixed in alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub(crate) enum Tag {
    /// A scripted event: its kind and fields (see [`event_words`]).
    Event = 1,
    /// A wake made for a connection: its id, whether it was accepted, and whether
    /// another thread (a fault) rather than the script made it.
    Wake = 2,
    /// The loop handled wakes.
    WakesHandled = 3,
    /// A listener's readiness was reported: its index.
    ListenerReady = 4,
    /// A connection's readiness was reported: its id, readable, writable, hang-up.
    ConnReady = 5,
    /// The loop's turn began with the time: the clock in nanoseconds.
    Time = 6,
    /// An accept completed: the client, and its id (`u64::MAX` when refused).
    Accepted = 7,
    /// A detach completed: the id, and whether the handler took the socket.
    DetachDone = 8,
    /// The loop's shape this round: 1 when batched as evio-os does.
    LoopShape = 9,
    /// The engine asked to accept on a listener: its index.
    Accept = 10,
    /// A read found the connection reset.
    ReadReset = 11,
    /// A read found nothing waiting (end of stream, or EAGAIN).
    ReadEmpty = 12,
    /// A read found EAGAIN although bytes were waiting (a fault).
    ReadAgain = 13,
    /// A read returned bytes (followed by the bytes).
    ReadData = 14,
    /// A write found the connection reset.
    WriteReset = 15,
    /// A write failed with EPIPE.
    WriteBrokenPipe = 16,
    /// A write found EAGAIN.
    WriteBlocked = 17,
    /// A write took bytes (followed by the bytes).
    WriteData = 18,
    /// The engine set socket options: the id, TCP_NODELAY.
    Configure = 19,
    /// The engine set a connection's interest: the id, read, write.
    SetInterest = 20,
    /// The engine closed a connection: its id.
    Close = 21,
    /// The engine asked to detach a connection: its id.
    Detach = 22,
    /// The engine paused a listener: its index.
    PauseAccept = 23,
    /// The engine resumed a listener: its index.
    ResumeAccept = 24,
    /// The engine shut down.
    Shutdown = 25,
    /// `serving` ran: its action.
    Serving = 30,
    /// `opened` ran: the id, bytes written, action.
    Opened = 31,
    /// `data` ran: the id, input length, bytes written, action.
    Data = 32,
    /// `woken` ran: the id, bytes written, action.
    Woken = 33,
    /// `closed` ran: the id, whether with an error, action.
    Closed = 34,
    /// `detached` ran: the id, whether the socket was taken, action.
    Detached = 35,
    /// `prewrite` ran: the id, bytes attempted.
    Prewrite = 36,
    /// `postwrite` ran: the id, bytes written, bytes remaining.
    Postwrite = 37,
    /// `tick` ran: its time, the delay returned (`u64::MAX` for none), its flow.
    Tick = 38,
    /// `timeout` ran: the id, its time, bytes written, action.
    Timeout = 39,
    /// `drained` ran: the id, bytes written, action.
    Drained = 40,
    /// `server_woken` ran: its flow.
    ServerWoken = 41,
    /// A callback wrote to another connection: its id, bytes.
    WroteTo = 42,
    /// A callback found another connection no longer open: its id.
    NoLongerOpen = 43,
    /// A connection's timeout changed: its id, the deadline (`u64::MAX`: none).
    TimeoutSet = 44,
    /// The engine aborted a connection: its id.
    Abort = 26,
    /// The engine shut a connection's sending side: its id.
    ShutdownWrite = 27,
    /// A server wake was made: whether it was accepted.
    ServerWake = 28,
    /// The loop napped before its wait (`Engine::poll_nap`): the nap in nanoseconds,
    /// and the clock after it.
    Nap = 45,
    /// `input_ended` ran: the id, bytes written, action.
    InputEnded = 46,
    /// The engine asked to connect: the id, the backend's socket, and 1 when
    /// `connect(2)` failed at once.
    Connect = 47,
    /// The engine asked how a connect ended: the id, and 0 connected, 1 failed, 2 not
    /// yet.
    FinishConnect = 48,
    /// A backend read bytes the engine sent it (followed by the bytes): its socket.
    BackendRead = 49,
    /// `loop_message` ran: the loop it came from, its flow.
    LoopMessage = 50,
    /// `post_refused` ran: its flow.
    PostRefused = 51,
    /// A post from another loop was handed to the engine: from, to, kind, length.
    PostDelivered = 52,
    /// A refusal was handed back to the sending loop's engine: to, kind, length.
    RefusalDelivered = 53,
    /// Another loop of the server shut down: this one is told to.
    LoopsStop = 54,
    /// A transformed connection's bytes were decoded: id, plaintext length, bytes kept,
    /// whether its peer's stream ended.
    Decoded = 55,
    /// A transformed connection's transport failed: id, error.
    TransportFailed = 56,
    /// The engine handed the driver a batch of sends: how many (each entry's write
    /// follows as for a transmit, then the reports).
    TransmitBatch = 57,
}

/// The trace of one run.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    hash: TraceHash,
    lines: Option<Vec<String>>,
}

impl Trace {
    /// Mixes one record into the hash: its tag, then four words.
    pub fn note(&mut self, tag: Tag, words: [u64; 4]) {
        self.mark(tag);
        for w in words {
            self.hash.word(w);
        }
    }

    /// Mixes a tag alone into the hash.
    pub fn mark(&mut self, tag: Tag) {
        self.hash.word(tag as u64);
    }

    /// Mixes bytes (with their length) into the hash.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.hash.bytes(bytes);
    }

    /// Records a readable line, made only when lines are being recorded.
    pub fn line(&mut self, make: impl FnOnce() -> String) {
        if let Some(lines) = &mut self.lines {
            lines.push(make());
        }
    }

    /// Starts (or stops and forgets) recording readable lines.
    pub fn set_lines(&mut self, on: bool) {
        self.lines = on.then(Vec::new);
    }

    /// The readable lines recorded.
    pub fn lines(&self) -> &[String] {
        self.lines.as_deref().unwrap_or(&[])
    }

    /// Takes the readable lines recorded, leaving none.
    pub fn take_lines(&mut self) -> Vec<String> {
        self.lines.as_mut().map(core::mem::take).unwrap_or_default()
    }

    /// The hash so far.
    pub fn hash(&self) -> u64 {
        self.hash.value()
    }
}

/// The words of a scripted event's record (its payload is hashed after them).
pub(crate) fn event_words(event: &ScriptedEvent) -> [u64; 4] {
    match *event {
        ScriptedEvent::Connect { listener } => [0, u64::from(listener), 0, 0],
        ScriptedEvent::Send { client, ref bytes } => [1, u64::from(client), bytes.len() as u64, 0],
        ScriptedEvent::Read { client, window } => [2, u64::from(client), u64::from(window), 0],
        ScriptedEvent::HalfClose { client } => [3, u64::from(client), 0, 0],
        ScriptedEvent::Close { client } => [4, u64::from(client), 0, 0],
        ScriptedEvent::Reset { client } => [5, u64::from(client), 0, 0],
        ScriptedEvent::Wake { client } => [6, u64::from(client), 0, 0],
        ScriptedEvent::Advance { millis } => [7, u64::from(millis), 0, 0],
        ScriptedEvent::Poll => [8, 0, 0, 0],
        ScriptedEvent::WakeServer => [9, 0, 0, 0],
    }
}

/// The record of one handler callback.
pub(crate) fn observation_record(o: &Observation) -> (Tag, [u64; 4]) {
    match *o {
        Observation::Serving { flow } => (Tag::Serving, [flow as u64, 0, 0, 0]),
        Observation::Opened {
            id, wrote, action, ..
        } => (Tag::Opened, [id.to_u64(), wrote as u64, action as u64, 0]),
        Observation::Data {
            id,
            ref input,
            consumed,
            wrote,
            action,
            ..
        } => (
            Tag::Data,
            [
                id.to_u64(),
                input.len() as u64 | (consumed as u64) << 32,
                wrote as u64,
                action as u64,
            ],
        ),
        Observation::Timeout {
            id,
            now,
            wrote,
            action,
        } => (
            Tag::Timeout,
            [id.to_u64(), now.as_nanos(), wrote as u64, action as u64],
        ),
        Observation::Drained { id, wrote, action } => {
            (Tag::Drained, [id.to_u64(), wrote as u64, action as u64, 0])
        }
        Observation::InputEnded { id, wrote, action } => (
            Tag::InputEnded,
            [id.to_u64(), wrote as u64, action as u64, 0],
        ),
        Observation::ServerWoken { flow } => (Tag::ServerWoken, [flow as u64, 0, 0, 0]),
        Observation::LoopMessage { from, flow } => {
            (Tag::LoopMessage, [from as u64, flow as u64, 0, 0])
        }
        Observation::PostRefused { flow } => (Tag::PostRefused, [flow as u64, 0, 0, 0]),
        Observation::WroteTo { id, bytes } => (Tag::WroteTo, [id.to_u64(), bytes as u64, 0, 0]),
        Observation::NoLongerOpen { id } => (Tag::NoLongerOpen, [id.to_u64(), 0, 0, 0]),
        Observation::AbortedThroughLoop { id } => (Tag::NoLongerOpen, [id.to_u64(), 1, 0, 0]),
        Observation::TimeoutSet { id, at } => (
            Tag::TimeoutSet,
            [id.to_u64(), at.map_or(u64::MAX, Instant::as_nanos), 0, 0],
        ),
        Observation::Woken {
            id, wrote, action, ..
        } => (Tag::Woken, [id.to_u64(), wrote as u64, action as u64, 0]),
        Observation::Closed {
            id, error, flow, ..
        } => (
            Tag::Closed,
            [id.to_u64(), u64::from(error.is_some()), flow as u64, 0],
        ),
        Observation::Detached { id, taken, flow } => (
            Tag::Detached,
            [id.to_u64(), u64::from(taken), flow as u64, 0],
        ),
        Observation::Prewrite { id, attempted } => {
            (Tag::Prewrite, [id.to_u64(), attempted as u64, 0, 0])
        }
        Observation::Postwrite {
            id,
            written,
            remaining,
        } => (
            Tag::Postwrite,
            [id.to_u64(), written as u64, remaining as u64, 0],
        ),
        Observation::Tick { now, tick } => (
            Tag::Tick,
            [
                now.as_nanos(),
                tick.delay.map_or(u64::MAX, |d| d.as_nanos() as u64),
                tick.flow as u64,
                0,
            ],
        ),
        Observation::Decoded {
            id,
            ref plain,
            kept,
            ended,
        } => (
            Tag::Decoded,
            [
                id.to_u64(),
                plain.len() as u64,
                kept as u64,
                u64::from(ended),
            ],
        ),
        Observation::TransportFailed { id, error } => {
            (Tag::TransportFailed, [id.to_u64(), error as u64, 0, 0])
        }
    }
}
