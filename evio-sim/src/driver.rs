//! The driver's half of the protocol: each engine output performed on the faulty
//! network and reported back, with the oracle told what was performed and what the
//! handler did meanwhile.

use evio_proto::{
    AcceptError, Addr, ConnId, ConnectAddr, Detached, Events, IoErrorKind, Output, Refused,
};

use crate::injector::SocketAccept;
use crate::network::{
    ECONNREFUSED, FinishOutcome, SimStream, SocketRead, SocketWrite, backend_local_addr, io_error,
    listen_addr, peer_addr,
};
use crate::observe::Injection;
use crate::sim::{SimOutput, World};
use crate::trace::{Tag, observation_record};
use crate::{FaultKind, Model, Violation};

impl<M: Model> World<M> {
    /// Checks what the handler did since the last look, against the network and the
    /// model, and counts the injected actions that fired.
    pub(crate) fn observe(&mut self) -> Result<(), Violation> {
        if let Some((index, office)) = &self.office {
            // What this loop's handler posted comes before the callbacks that posted
            // it.
            for p in office.take_posted(*index) {
                self.oracle
                    .model_mut()
                    .posted(*index, p.to, p.kind, &p.bytes, p.accepted);
            }
        }
        let (log, arena, fired) = self.rec.borrow_mut().take();
        for &injection in &fired {
            match injection {
                Injection::Close(_) => self.io.record(FaultKind::CloseWithOutputPending),
                Injection::Shutdown => self.io.record(FaultKind::ShutdownWithOutputPending),
                Injection::Detach { .. } => {}
            }
            self.oracle.injection_fired(self.io.net(), injection);
        }
        let mut result = Ok(());
        for o in &log {
            self.activity += 1;
            self.trace.line(|| format!("  handler {o:?}"));
            let (tag, words) = observation_record(o);
            self.trace.note(tag, words);
            result = self.oracle.check(self.io.net(), o, &arena);
            if result.is_err() {
                break;
            }
        }
        self.rec.borrow_mut().recycle(log, arena, fired);
        result
    }

    /// Between an output and its report: what the output's own borrow of the engine
    /// ran (`prewrite`, a `closed`) is checked first, and another thread may wake
    /// someone.
    fn between(&mut self) -> Result<(), Violation> {
        self.observe()?;
        if self.io.is_on() && self.race_wake() {
            self.io.record(FaultKind::WakeRace);
        }
        Ok(())
    }

    /// Writes `bytes` to connection `id`'s client as one transmit (alone or in a
    /// batch), checking it against the oracle and recording it; the report is the
    /// caller's.
    fn sim_write(&mut self, id: ConnId, bytes: &[u8]) -> Result<SocketWrite, Violation> {
        let ci = self.oracle.live_output(self.io.net(), id, "transmit")?;
        self.oracle.check_connected(ci, id, "transmit")?;
        self.last_io = Some(ci);
        let len = bytes.len();
        self.oracle.check_transmit(ci, len)?;
        let outcome = self.io.write(ci, bytes);
        match outcome {
            SocketWrite::Failed(e) => {
                self.trace.mark(if e.kind == IoErrorKind::BrokenPipe {
                    Tag::WriteBrokenPipe
                } else {
                    Tag::WriteReset
                });
                self.between()?;
                self.oracle.send_failed(ci);
                self.oracle.io_failed(ci, e);
            }
            SocketWrite::WouldBlock => {
                self.trace.mark(Tag::WriteBlocked);
                self.between()?;
                let clock = self.io.net().clock;
                self.oracle.transmitted(ci, 0, len, clock);
            }
            SocketWrite::Wrote(n) => {
                self.trace.mark(Tag::WriteData);
                self.trace.bytes(&bytes[..n]);
                self.between()?;
                let clock = self.io.net().clock;
                self.oracle.transmitted(ci, n, len, clock);
            }
        }
        Ok(outcome)
    }

    /// Performs a batch of sends: every write first, then the reports (which run
    /// handlers), as a driver that makes them in one system call does. (Not inlined
    /// into `perform`: its table would make every output's frame larger.)
    #[inline(never)]
    fn transmit_batch<H: Events>(
        &mut self,
        batch: &mut evio_proto::TransmitBatch<'_, H, Vec<evio_proto::Slot<H::Context>>, Vec<u8>>,
    ) -> Result<(), Violation> {
        let mut outcomes = [SocketWrite::WouldBlock; evio_proto::MAX_BATCH];
        let len = batch.len();
        self.trace.note(Tag::TransmitBatch, [len as u64, 0, 0, 0]);
        for (k, outcome) in outcomes.iter_mut().enumerate().take(len) {
            *outcome = self.sim_write(batch.id(k), batch.bytes(k))?;
        }
        for (k, outcome) in outcomes.iter().enumerate().take(len) {
            match *outcome {
                SocketWrite::Failed(e) => batch.failed(k, e),
                SocketWrite::Wrote(n) => batch.done(k, n),
                // Left unreported, it counts as blocked when the batch drops.
                SocketWrite::WouldBlock if self.io.net_mut().rng.below(2) == 0 => {
                    batch.would_block(k);
                }
                SocketWrite::WouldBlock => {}
            }
        }
        Ok(())
    }

    /// "Another thread" wakes a connection now and then; `true` when it did and the
    /// waker accepted.
    pub(crate) fn race_wake(&mut self) -> bool {
        let Some((ci, id)) = self.io.racing_wake() else {
            return false;
        };
        let accepted = self.waker.wake(id);
        self.trace
            .note(Tag::Wake, [id.to_u64(), u64::from(accepted), 1, 0]);
        self.oracle.wake_raced(ci, accepted);
        accepted
    }

    /// Performs one engine output on the network and reports it.
    pub(crate) fn perform<H: Events>(&mut self, out: SimOutput<'_, H>) -> Result<(), Violation> {
        self.activity += 1;
        // What ran while the engine produced this output (`prewrite`, a `closed`, and
        // their writes to other connections) is checked before the output is.
        self.observe()?;
        self.trace.line(|| format!("  output {out:?}"));
        match out {
            Output::Accept(accept) => {
                let listener = accept.listener().index();
                self.trace.note(Tag::Accept, [listener as u64, 0, 0, 0]);
                self.oracle.check_accept(self.io.net(), listener)?;
                match self.io.accept(listener) {
                    SocketAccept::Failed(error) => {
                        // The engine backs off after every accept error but ECONNABORTED.
                        if error != AcceptError::Aborted {
                            self.oracle.accept_exhausted(listener);
                        }
                        self.between()?;
                        accept.failed(error);
                    }
                    SocketAccept::Nothing => {
                        self.between()?;
                        // Dropping the operation says the same as reporting EAGAIN; do
                        // either, half the time.
                        if self.io.net_mut().rng.below(2) == 0 {
                            drop(accept);
                        } else {
                            accept.would_block();
                        }
                    }
                    SocketAccept::Accepted(ci) => {
                        self.between()?;
                        let local = Addr::Ip(listen_addr(listener));
                        let number = self.io.net().sockets[ci].number;
                        match accept.done(local, Addr::Ip(peer_addr(number))) {
                            Ok(id) => {
                                self.trace
                                    .note(Tag::Accepted, [ci as u64, id.to_u64(), 0, 0]);
                                self.trace.line(|| format!("  accepted c{ci} as {id}"));
                                self.oracle.accepted(self.io.net(), ci, id)?;
                                self.io.net_mut().accepted(ci, id);
                            }
                            Err(refused) => {
                                self.trace.note(Tag::Accepted, [ci as u64, u64::MAX, 0, 0]);
                                if refused == Refused::PoolFull {
                                    self.io.record(FaultKind::PoolFull);
                                }
                                self.io.net_mut().refused(ci);
                            }
                        }
                    }
                }
            }
            // A connect reaches a simulated backend, whose answer the injector draws.
            Output::Connect(connect) => {
                let id = connect.id();
                let peer = match connect.addr() {
                    ConnectAddr::Ip(addr) => Addr::Ip(addr),
                    ConnectAddr::Unix(_) => Addr::Unix,
                };
                self.oracle.check_connect(self.io.net(), id)?;
                let ci = self.io.connect_out(id, peer);
                self.oracle.connected();
                self.oracle.connect_started(ci, id);
                let at_once = self.io.net().sockets[ci].server_closed;
                self.trace.note(
                    Tag::Connect,
                    [id.to_u64(), ci as u64, u64::from(at_once), 0],
                );
                self.trace
                    .line(|| format!("  connect {id} to b{}", self.io.net().sockets[ci].number));
                self.between()?;
                if at_once {
                    let e = io_error(ECONNREFUSED);
                    self.oracle.connect_failed(ci, e);
                    connect.failed(e);
                } else {
                    connect.started();
                }
            }
            Output::FinishConnect(finish) => {
                let id = finish.id();
                let ci = self
                    .oracle
                    .live_output(self.io.net(), id, "finish-connect")?;
                self.oracle.check_finish_connect(ci, id)?;
                match self.io.net_mut().finish_connect(ci) {
                    FinishOutcome::Done => {
                        self.trace.note(Tag::FinishConnect, [id.to_u64(), 0, 0, 0]);
                        let s = &self.io.net().sockets[ci];
                        let local = match s.outbound.map(|o| o.peer) {
                            Some(Addr::Unix) => Addr::Unix,
                            _ => Addr::Ip(backend_local_addr(s.number)),
                        };
                        self.oracle.connect_done(ci);
                        self.between()?;
                        finish.done(local);
                    }
                    FinishOutcome::Failed(e) => {
                        self.trace.note(Tag::FinishConnect, [id.to_u64(), 1, 0, 0]);
                        self.oracle.connect_failed(ci, e);
                        self.between()?;
                        finish.failed(e);
                    }
                    FinishOutcome::InProgress => {
                        self.trace.note(Tag::FinishConnect, [id.to_u64(), 2, 0, 0]);
                        self.between()?;
                        if self.io.net_mut().rng.below(2) == 0 {
                            drop(finish);
                        } else {
                            finish.in_progress();
                        }
                    }
                }
            }
            Output::Read(mut read) => {
                let id = read.id();
                let ci = self.oracle.live_output(self.io.net(), id, "read")?;
                self.oracle.check_connected(ci, id, "read")?;
                self.last_io = Some(ci);
                let hangup = self.oracle.check_read(ci, id)?;
                let buf = read.buf();
                let capacity = buf.len();
                match self.io.read(ci, buf) {
                    SocketRead::Failed(e) => {
                        self.trace.mark(Tag::ReadReset);
                        self.between()?;
                        self.oracle.io_failed(ci, e);
                        read.failed(e);
                    }
                    SocketRead::Eof => {
                        self.trace.mark(Tag::ReadEmpty);
                        self.between()?;
                        let clock = self.io.net().clock;
                        self.oracle.eof_reported(ci, clock);
                        read.done(0);
                    }
                    SocketRead::Nothing => {
                        self.trace.mark(Tag::ReadEmpty);
                        self.between()?;
                        if self.io.net_mut().rng.below(2) == 0 {
                            drop(read);
                        } else {
                            read.would_block();
                        }
                    }
                    SocketRead::Again => {
                        self.trace.mark(Tag::ReadAgain);
                        self.between()?;
                        read.would_block();
                    }
                    SocketRead::Data(n) => {
                        let got = &read.buf()[..n];
                        self.trace.mark(Tag::ReadData);
                        self.trace.bytes(got);
                        self.oracle.read_data(ci, got, capacity, hangup);
                        self.between()?;
                        read.done(n);
                    }
                }
            }
            Output::Transmit(mut transmit) => {
                let outcome = self.sim_write(transmit.id(), transmit.bytes())?;
                match outcome {
                    SocketWrite::Failed(e) => transmit.failed(e),
                    SocketWrite::Wrote(n) => transmit.done(n),
                    // Reported or not, EAGAIN leaves the output blocked.
                    SocketWrite::WouldBlock if self.io.net_mut().rng.below(2) == 0 => {
                        transmit.would_block();
                    }
                    SocketWrite::WouldBlock => drop(transmit),
                }
            }
            Output::TransmitBatch(mut batch) => self.transmit_batch(&mut batch)?,
            Output::Detach(detach) => {
                let id = detach.id();
                let ci = self.oracle.live_output(self.io.net(), id, "detach")?;
                self.trace.note(Tag::Detach, [id.to_u64(), 0, 0, 0]);
                self.oracle.check_flushed(ci, id, "detach")?;
                self.io.net_mut().server_close(ci);
                self.between()?;
                let mut socket = Some(SimStream { client: ci });
                detach.done(Detached::new(&mut socket));
                self.trace.note(
                    Tag::DetachDone,
                    [id.to_u64(), u64::from(socket.is_none()), 0, 0],
                );
            }
            Output::Configure { id, options } => {
                self.oracle.live_output(self.io.net(), id, "configure")?;
                self.trace.note(
                    Tag::Configure,
                    [id.to_u64(), u64::from(options.nodelay), 0, 0],
                );
                self.between()?;
            }
            Output::SetInterest { id, interest } => {
                let ci = self.oracle.live_output(self.io.net(), id, "set-interest")?;
                let (read, write) = (interest.is_readable(), interest.is_writable());
                self.trace.note(
                    Tag::SetInterest,
                    [id.to_u64(), u64::from(read), u64::from(write), 0],
                );
                let socket = &mut self.io.net_mut().sockets[ci];
                socket.interest_read = read;
                socket.interest_write = write;
                self.between()?;
            }
            Output::Close { id } => {
                let ci = self.oracle.live_output(self.io.net(), id, "close")?;
                self.trace.note(Tag::Close, [id.to_u64(), 0, 0, 0]);
                if self.oracle.conn(ci).handshaking() {
                    let clock = self.io.net().clock;
                    self.oracle.handshake_abandoned(ci, id, false, clock)?;
                } else {
                    self.oracle.check_flushed(ci, id, "close")?;
                    self.oracle.check_read_after_failed_send(ci, id)?;
                    self.oracle.check_linger(ci, id)?;
                }
                self.io.net_mut().server_close(ci);
                self.between()?;
            }
            Output::Abort { id } => {
                let ci = self.oracle.live_output(self.io.net(), id, "abort")?;
                self.trace.note(Tag::Abort, [id.to_u64(), 0, 0, 0]);
                let clock = self.io.net().clock;
                if self.oracle.conn(ci).handshaking() {
                    self.oracle.handshake_abandoned(ci, id, true, clock)?;
                } else {
                    self.oracle.aborting(ci, id, clock)?;
                }
                self.io.net_mut().server_abort(ci);
                self.between()?;
            }
            Output::ShutdownWrite { id } => {
                let ci = self
                    .oracle
                    .live_output(self.io.net(), id, "shutdown-write")?;
                self.trace.note(Tag::ShutdownWrite, [id.to_u64(), 0, 0, 0]);
                self.oracle.shutting_write(ci, id)?;
                self.io.net_mut().shut_write(ci);
                self.between()?;
            }
            Output::PauseAccept { listener } => {
                let l = listener.index();
                self.trace.note(Tag::PauseAccept, [l as u64, 0, 0, 0]);
                self.io.net_mut().listeners[l].watched = false;
                self.oracle.paused(l);
                self.between()?;
            }
            Output::ResumeAccept { listener } => {
                let l = listener.index();
                self.trace.note(Tag::ResumeAccept, [l as u64, 0, 0, 0]);
                self.io.net_mut().listeners[l].watched = true;
                self.oracle.resumed(l);
                self.between()?;
            }
            Output::Shutdown => {
                self.trace.note(Tag::Shutdown, [0; 4]);
                self.shut_down = true;
                self.between()?;
            }
        }
        Ok(())
    }
}
