//! The fault injector: a wrapper around the [`Network`] that decides faults around the
//! network's honest results, as smoltcp's `FaultInjector` wraps a device.
//!
//! Every fault the driver side can produce is decided here, from the run's
//! [`FaultRates`] and the seed's random streams: a short read is a read offered a
//! smaller buffer, EAGAIN after readiness is a read or write not passed on, spurious
//! readiness is a level the network did not report, and so on. The network underneath
//! never knows. Faults the handler side produces (close, detach or shutdown with output
//! pending) are armed here too, and [`FaultCounts`] count what actually fired.

use evio_proto::{AcceptError, ConnId, Instant, Readiness};

use evio_proto::{Addr, Duration};

use crate::network::{ConnectPlan, ENFILE, Network, SocketRead, SocketWrite};
use crate::observe::Injection;
use crate::{FaultCounts, FaultKind, FaultRates, Rng};

/// An accept, as the injector answers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SocketAccept {
    /// `accept` failed.
    Failed(AcceptError),
    /// Nothing waits in the backlog (EAGAIN).
    Nothing,
    /// This client's connection was taken from the backlog.
    Accepted(usize),
}

/// What the poller reports for one connection in one round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PollerReport {
    /// The connection.
    pub id: ConnId,
    /// Its readiness, faults included.
    pub readiness: Readiness,
    /// Report reading and writing as two events, as kqueue delivers them.
    pub separate: bool,
}

/// The network with faults around it.
#[derive(Debug)]
pub(crate) struct FaultInjector {
    net: Network,
    rates: FaultRates,
    /// Faults are injected (the liveness phase turns them off).
    on: bool,
    seed: u64,
    /// Each client's own fault stream, so removing one client's events (when
    /// shrinking) leaves the others' faults where they were.
    streams: Vec<Rng>,
    counts: FaultCounts,
}

impl FaultInjector {
    /// Faults at `rates` around `net`, drawn from the streams of `seed`.
    pub fn new(net: Network, rates: FaultRates, seed: u64) -> Self {
        FaultInjector {
            net,
            rates,
            on: true,
            seed,
            streams: Vec::new(),
            counts: FaultCounts::default(),
        }
    }

    /// The network underneath.
    pub fn net(&self) -> &Network {
        &self.net
    }

    /// The network underneath, mutably (for what no fault touches).
    pub fn net_mut(&mut self) -> &mut Network {
        &mut self.net
    }

    /// Faults are being injected.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Stops injecting faults for the rest of the run.
    pub fn stop(&mut self) {
        self.on = false;
    }

    /// Counts one firing of `kind` that was seen outside the injector (a reset from
    /// the script, a full pool, a handler's injected action taking effect).
    pub fn record(&mut self, kind: FaultKind) {
        self.counts.record(kind);
    }

    /// How often each fault fired so far.
    pub fn counts(&self) -> &FaultCounts {
        &self.counts
    }

    /// A new client connects to `listener`, with its own fault stream; returns its
    /// number.
    pub fn connect(&mut self, listener: u8) -> usize {
        let ci = self.net.connect(listener);
        // Derived from the client's number, not its socket's index (which backends'
        // sockets share), so a client keeps its faults whatever connects out.
        let number = self.net.sockets[ci].number;
        self.streams
            .push(Rng::derive(self.seed, 1000 + number as u64));
        ci
    }

    /// The engine asks to connect `id` to `peer`: a new backend, with its own fault
    /// stream, whose answer is drawn from the outbound rates (accepted at the next
    /// round, or after a delay; refused at once or after a delay; never answered;
    /// reset right after accepting). Returns its socket.
    pub fn connect_out(&mut self, id: ConnId, peer: Addr) -> usize {
        let backend = self.net.backends().len();
        let mut stream = Rng::derive(self.seed, 1_000_000_000 + backend as u64);
        let now = self.net.clock;
        let rates = &self.rates;
        let later = |stream: &mut Rng| now + Duration::from_millis(stream.range(1, 200));
        let plan = if !self.on {
            ConnectPlan::Accept {
                at: now,
                reset: false,
            }
        } else if stream.chance(rates.connect_refused) {
            self.counts.record(FaultKind::ConnectRefused);
            if stream.below(2) == 0 {
                ConnectPlan::RefuseAtOnce
            } else {
                ConnectPlan::Refuse {
                    at: later(&mut stream),
                }
            }
        } else if stream.chance(rates.connect_unanswered) {
            self.counts.record(FaultKind::ConnectUnanswered);
            ConnectPlan::Hang
        } else {
            let at = if stream.chance(rates.connect_slow) {
                self.counts.record(FaultKind::ConnectSlow);
                later(&mut stream)
            } else {
                now
            };
            // Counted when the reset happens.
            let reset = stream.chance(rates.connect_reset);
            ConnectPlan::Accept { at, reset }
        };
        self.counts.record_connect();
        let ci = self.net.connect_out(id, peer, plan);
        debug_assert_eq!(ci, self.streams.len());
        self.streams.push(stream);
        ci
    }

    /// Every backend takes its turn (see [`Network::echo_turn`]): a backend meant to
    /// reset its connection right after accepting does so at its first turn; the
    /// others read a window drawn from their stream and echo it. Returns the bytes
    /// each backend read, for the trace.
    pub fn backends_turn(&mut self, mut read: impl FnMut(usize, &[u8])) {
        for i in 0..self.net.backends().len() {
            let ci = self.net.backends()[i];
            let s = &self.net.sockets[ci];
            let Some(o) = s.outbound else { continue };
            if o.state != crate::network::ConnectState::Connected || s.gone() {
                continue;
            }
            if let ConnectPlan::Accept { reset: true, .. } = o.plan
                && !o.reset_done
            {
                if let Some(o) = &mut self.net.sockets[ci].outbound {
                    o.reset_done = true;
                }
                if self.on {
                    self.counts.record(FaultKind::ConnectReset);
                    self.net.reset(ci);
                    continue;
                }
            }
            let window = match self.streams[ci].below(4) {
                0 => 1,
                1 => 16,
                2 => 256,
                _ => 4096,
            };
            let window = self.streams[ci].range(1, window) as usize;
            let got = if self.net.scripted() {
                self.net.serve_turn(ci, window)
            } else {
                self.net.echo_turn(ci, window)
            };
            if let Some(got) = got {
                read(ci, &got);
            }
        }
    }

    /// Arms handler-side faults (close or detach of a connection, a shutdown, each with
    /// output pending) now and then, through `arm`: they stand for handlers that decide
    /// those on their own.
    pub fn arm_handler_faults(&mut self, mut arm: impl FnMut(Injection)) {
        if !self.on {
            return;
        }
        let rates = &self.rates;
        for &ci in self.net.polled() {
            let Some(id) = self.net.sockets[ci].id else {
                continue;
            };
            if self.net.sockets[ci].outbound.is_some() {
                // A backend's connection: a relay closing or detaching it on its own
                // would be a different relay, whose clients a model could not judge.
                continue;
            }
            let stream = &mut self.streams[ci];
            if stream.chance(rates.close_with_output_pending) {
                arm(Injection::Close(id));
            } else if stream.chance(rates.detach_with_readiness_queued) {
                let take = stream.below(2) == 0;
                arm(Injection::Detach { id, take });
            }
        }
        if self.net.rng.chance(rates.shutdown_with_output_pending) {
            arm(Injection::Shutdown);
        }
    }

    /// Now and then moves the clock to `deadline` (the engine's next) between two
    /// events, or, half those times, a hair short of it, as a poller with millisecond
    /// timeouts wakes: the loop then runs just before the deadline, and nothing due at
    /// it may happen yet.
    pub fn reach_deadline(&mut self, deadline: Option<Instant>) {
        if !self.on || !self.net.rng.chance(self.rates.tick_between_events) {
            return;
        }
        let Some(t) = deadline else {
            return;
        };
        let early = match self.net.rng.below(2) {
            0 => 0,
            _ => 1 + self.net.rng.below(1_000_000),
        };
        let at = Instant::from_nanos(t.as_nanos().saturating_sub(early));
        self.net.clock = self.net.clock.max(at);
        self.counts.record(FaultKind::TickBetweenEvents);
    }

    /// Now and then, "another thread" picks a client to wake: its number and id.
    pub fn racing_wake(&mut self) -> Option<(usize, ConnId)> {
        if !self.on || !self.net.rng.chance(self.rates.wake_race) || self.net.sockets.is_empty() {
            return None;
        }
        let ci = self.net.rng.below(self.net.sockets.len() as u64) as usize;
        Some((ci, self.net.sockets[ci].id?))
    }

    /// Now and then, the notifier's event lands in a later poller batch than the wakes
    /// that fired it: the loop handles wakes a round late.
    pub fn defer_wakes(&mut self) -> bool {
        self.on && self.net.rng.chance(self.rates.wake_race)
    }

    /// What the poller reports for client `ci` this round: the network's level, a
    /// hang-up as soon as the client's FIN arrives (kqueue's EV_EOF, now and then), and
    /// spurious readiness; `None` when it reports nothing.
    pub fn readiness(&mut self, ci: usize) -> Option<PollerReport> {
        let (id, mut r) = self.net.readiness(ci)?;
        let stream = &mut self.streams[ci];
        if self.on
            && self.net.sockets[ci].fin_received()
            && stream.chance(self.rates.eof_with_last_data)
        {
            r.hangup = true;
            r.readable = true;
        }
        let spurious = self.rates.spurious_readiness;
        if self.on && !r.readable && stream.chance(spurious) {
            r.readable = true;
            self.counts.record(FaultKind::SpuriousReadiness);
        }
        if self.on && !r.writable && stream.chance(spurious) {
            r.writable = true;
            self.counts.record(FaultKind::SpuriousReadiness);
        }
        // Not a fault: pollers differ in whether one event carries both directions.
        let separate = r.readable && r.writable && stream.below(2) == 0;
        (r.readable || r.writable || r.hangup).then_some(PollerReport {
            id,
            readiness: r,
            separate,
        })
    }

    /// Accepts on `listener`: EMFILE (now and then ENFILE) or ECONNABORTED at their
    /// rates, else what the backlog holds.
    pub fn accept(&mut self, listener: usize) -> SocketAccept {
        if self.on && self.net.rng.chance(self.rates.accept_exhausted) {
            self.counts.record(FaultKind::AcceptExhausted);
            // ENFILE and ENOBUFS reach the engine as `Other` from some drivers.
            let error = if self.net.rng.below(4) == 0 {
                AcceptError::Other(Some(ENFILE))
            } else {
                AcceptError::Exhausted
            };
            return SocketAccept::Failed(error);
        }
        if self.on && self.net.rng.chance(self.rates.accept_aborted) {
            self.counts.record(FaultKind::AcceptAborted);
            return SocketAccept::Failed(AcceptError::Aborted);
        }
        match self.net.accept(listener) {
            Some(ci) => SocketAccept::Accepted(ci),
            None => SocketAccept::Nothing,
        }
    }

    /// Reads from client `ci`'s server socket into `buf`: EAGAIN although bytes wait,
    /// or fewer bytes than wait, at their rates.
    pub fn read(&mut self, ci: usize, buf: &mut [u8]) -> SocketRead {
        let waiting = self.net.readable_bytes(ci).unwrap_or(0);
        if !self.on || waiting == 0 {
            return self.net.read(ci, buf);
        }
        let stream = &mut self.streams[ci];
        if stream.chance(self.rates.read_again) {
            self.counts.record(FaultKind::ReadAgain);
            return SocketRead::Again;
        }
        let n = waiting.min(buf.len());
        if n > 1 && stream.chance(self.rates.short_read) {
            let short = stream.range(1, n as u64 - 1) as usize;
            self.counts.record(FaultKind::ShortRead);
            return self.net.read(ci, &mut buf[..short]);
        }
        self.net.read(ci, buf)
    }

    /// Writes `bytes` to client `ci`'s server socket: EAGAIN although the window has
    /// room, or fewer bytes than it has room for, at their rates.
    pub fn write(&mut self, ci: usize, bytes: &[u8]) -> SocketWrite {
        let room = self.net.write_room(ci).unwrap_or(0);
        if self.on && room > 0 {
            let stream = &mut self.streams[ci];
            if stream.chance(self.rates.write_again) {
                self.counts.record(FaultKind::WriteAgain);
                return SocketWrite::WouldBlock;
            }
            let n = room.min(bytes.len());
            if n > 1 && stream.chance(self.rates.short_write) {
                let short = stream.range(1, n as u64 - 1) as usize;
                self.counts.record(FaultKind::ShortWrite);
                return self.net.write(ci, &bytes[..short]);
            }
        }
        let written = self.net.write(ci, bytes);
        if let SocketWrite::Failed(e) = written
            && e.kind == evio_proto::IoErrorKind::BrokenPipe
        {
            // Not decided here (the client's close is), but counted where it happens.
            self.counts.record(FaultKind::BrokenPipe);
        }
        written
    }
}
