//! The portable poller: poll(2), level-triggered, with a pipe notifier.
//!
//! Every unix has it (and rustix maps it to WSAPoll on Windows). It serves targets
//! without epoll or kqueue, `-net` addresses, `Backend::Poll`, and every server under
//! `--cfg evio_force_poll`. Its cost is O(watched sockets) per wait, where epoll and
//! kqueue cost O(ready sockets): it suits a few hundred connections, not a hundred
//! thousand.
//!
//! The table is the `pollfd` array itself, kept dense (an entry leaves by swapping the
//! last one into its place), with each entry's token beside it and a map from
//! descriptor number to position, so adding, changing and removing an entry are O(1)
//! and a wait allocates nothing.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use evio_proto::{Interest, Readiness};
use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;

use super::pipe::{self, PipeNotifier, PipeReceiver};

/// No entry for this descriptor number.
const ABSENT: u32 = 0;
/// Watched for nothing: kept out of the table, so that poll(2), which reports a
/// hang-up or an error whatever the interest, does not report a reset socket the
/// engine is not reading (its input waits) at every wait, spinning the loop. (kqueue
/// reports nothing without a filter, and epoll is told edge-triggered: the engine
/// relies on no report without interest.)
const PARKED: u32 = u32::MAX;

/// A poll(2) table and the loop's end of the notifier (always entry 0).
pub(crate) struct Poller {
    /// What the kernel reads and fills in: descriptor, interest, readiness.
    fds: Vec<PollFd<'static>>,
    /// The token of each entry of `fds`, at the same position.
    tokens: Vec<u64>,
    /// One more than the position in `fds`, by descriptor number; `ABSENT` (0) where
    /// none, so that the table starts as zeroed memory the OS maps only when touched.
    position: Vec<u32>,
    receiver: PipeReceiver,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("watched", &self.fds.len())
            .finish_non_exhaustive()
    }
}

fn flags(interest: Interest) -> PollFlags {
    let mut f = PollFlags::empty();
    if interest.is_readable() {
        f |= PollFlags::IN;
    }
    if interest.is_writable() {
        f |= PollFlags::OUT;
    }
    f
}

/// A table entry for the open descriptor `raw`.
///
/// The table never holds a descriptor after it is closed: the driver closes every
/// watched socket through `Poller::close`, which removes its entry first, or removes
/// it with `Poller::delete` before the socket leaves (a detach); the notifier's read
/// end lives in the poller itself, and the listeners are created before the poller and
/// dropped after it.
fn entry(raw: RawFd, interest: PollFlags) -> PollFd<'static> {
    // SAFETY: `raw` is open for as long as this entry is in the table (see above).
    let fd = unsafe { BorrowedFd::borrow_raw(raw) };
    PollFd::from_borrowed_fd(fd, interest)
}

fn index(fd: RawFd) -> usize {
    // Descriptors are never negative once open.
    usize::try_from(fd).unwrap_or(usize::MAX)
}

impl Poller {
    fn find(&self, fd: RawFd) -> Option<usize> {
        match self.position.get(index(fd)) {
            Some(&p) if p != ABSENT && p != PARKED => Some(p as usize - 1),
            _ => None,
        }
    }

    fn is_parked(&self, fd: RawFd) -> bool {
        self.position.get(index(fd)) == Some(&PARKED)
    }

    fn insert(&mut self, raw: RawFd, token: u64, interest: PollFlags) -> io::Result<()> {
        if self.find(raw).is_some() || self.is_parked(raw) {
            return Err(Errno::EXIST.into());
        }
        self.push(raw, token, interest);
        Ok(())
    }

    /// Watches `raw`, which has no entry (or is parked), for `interest`: an entry in
    /// the table, or parked without one when the interest is empty.
    fn push(&mut self, raw: RawFd, token: u64, interest: PollFlags) {
        let i = index(raw);
        if i >= self.position.len() {
            // Only when a descriptor number is higher than any seen before: numbers are
            // reused as sockets close, so the steady state never gets here.
            let len = (i + 1).next_power_of_two();
            self.position.resize(len, ABSENT);
        }
        if interest.is_empty() {
            self.position[i] = PARKED;
            return;
        }
        self.position[i] = self.fds.len() as u32 + 1;
        self.fds.push(entry(raw, interest));
        self.tokens.push(token);
    }

    fn remove(&mut self, fd: RawFd) -> io::Result<()> {
        if self.is_parked(fd) {
            self.position[index(fd)] = ABSENT;
            return Ok(());
        }
        let Some(p) = self.find(fd) else {
            return Err(Errno::NOENT.into());
        };
        self.position[index(fd)] = ABSENT;
        self.fds.swap_remove(p);
        self.tokens.swap_remove(p);
        if let Some(moved) = self.fds.get(p) {
            self.position[index(moved.as_fd().as_raw_fd())] = p as u32 + 1;
        }
        Ok(())
    }
}

impl super::Poller for Poller {
    type Notifier = PipeNotifier;

    fn new(capacity: usize, _events: usize, waker_token: u64) -> io::Result<(Self, PipeNotifier)> {
        let (notifier, receiver) = pipe::pipe()?;
        // The notifier, the listeners and every connection: the table never grows in
        // the steady state.
        let entries = capacity.saturating_add(1);
        // Descriptor numbers stay below the descriptor limit: sized for it up front
        // (zeroed, so untouched pages cost nothing), the table does not grow while
        // serving, even when other threads of the process hold many descriptors.
        let numbers = crate::limits::descriptor_limit()
            .map_or(1 << 20, |n| usize::try_from(n).unwrap_or(usize::MAX))
            .clamp(1024, 1 << 20);
        let mut poller = Poller {
            fds: Vec::with_capacity(entries),
            tokens: Vec::with_capacity(entries),
            position: vec![ABSENT; numbers],
            receiver,
        };
        let read_end = poller.receiver.fd().as_raw_fd();
        poller.insert(read_end, waker_token, PollFlags::IN)?;
        Ok((poller, notifier))
    }

    fn add(&mut self, fd: BorrowedFd<'_>, token: u64, interest: Interest) -> io::Result<()> {
        self.insert(fd.as_raw_fd(), token, flags(interest))
    }

    fn modify(&mut self, fd: BorrowedFd<'_>, token: u64, interest: Interest) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        let interest = flags(interest);
        if self.is_parked(raw) {
            self.push(raw, token, interest);
            return Ok(());
        }
        let p = self.find(raw).ok_or(Errno::NOENT)?;
        if interest.is_empty() {
            self.remove(raw)?;
            self.position[index(raw)] = PARKED;
            return Ok(());
        }
        self.fds[p] = entry(raw, interest);
        self.tokens[p] = token;
        Ok(())
    }

    fn delete(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.remove(fd.as_raw_fd())
    }

    fn close(&mut self, fd: OwnedFd) {
        // Not watched (never registered, or deleted) is fine: it is closed either way.
        let _ = self.remove(fd.as_raw_fd());
        drop(fd);
    }

    fn wait(
        &mut self,
        timeout: Option<Duration>,
        mut f: impl FnMut(u64, Readiness),
    ) -> io::Result<()> {
        let ts = timeout.map(super::timespec);
        let mut ready = match rustix::event::poll(&mut self.fds, ts.as_ref()) {
            Ok(n) => n,
            Err(Errno::INTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if ready > 0 && !self.fds[0].revents().is_empty() {
            self.receiver.drain();
        }
        for (pfd, &token) in self.fds.iter().zip(&self.tokens) {
            if ready == 0 {
                break;
            }
            let bits = pfd.revents();
            if bits.is_empty() {
                continue;
            }
            ready -= 1;
            f(
                token,
                Readiness {
                    readable: bits.contains(PollFlags::IN),
                    writable: bits.contains(PollFlags::OUT),
                    // NVAL cannot happen while the table holds only open descriptors;
                    // reported as a hang-up, the engine's read would find out why.
                    hangup: bits.intersects(PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL),
                },
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsFd, AsRawFd};
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    use evio_proto::{Interest, Notify, Readiness};

    use super::Poller;
    use crate::sys::Poller as _;

    const WAKER: u64 = u64::MAX;
    const READ: Readiness = Readiness::READABLE;

    fn events(p: &mut Poller, timeout: Duration) -> Vec<(u64, Readiness)> {
        let mut out = Vec::new();
        p.wait(Some(timeout), |t, r| out.push((t, r))).unwrap();
        out.sort_by_key(|e| e.0);
        out
    }

    #[test]
    fn readiness_follows_interest_and_entries_move_when_one_leaves() {
        let (mut p, _n) = Poller::new(8, 0, WAKER).unwrap();
        let pairs: Vec<(UnixStream, UnixStream)> =
            (0..3).map(|_| UnixStream::pair().unwrap()).collect();
        for (i, (ours, _)) in pairs.iter().enumerate() {
            p.add(ours.as_fd(), i as u64, Interest::READ).unwrap();
        }
        assert!(events(&mut p, Duration::ZERO).is_empty(), "nothing yet");
        for (_, peer) in &pairs {
            std::io::Write::write_all(&mut &*peer, b"x").unwrap();
        }
        assert_eq!(
            events(&mut p, Duration::ZERO),
            vec![(0, READ), (1, READ), (2, READ)]
        );
        // The first entry leaves: the last takes its place and keeps its token.
        p.delete(pairs[0].0.as_fd()).unwrap();
        assert_eq!(events(&mut p, Duration::ZERO), vec![(1, READ), (2, READ)]);
        // Interest changes apply to the moved entry too.
        p.modify(pairs[2].0.as_fd(), 22, Interest::WRITE).unwrap();
        let e = events(&mut p, Duration::ZERO);
        assert_eq!(e[0], (1, READ));
        assert_eq!(e[1].0, 22);
        assert!(e[1].1.writable && !e[1].1.readable);
        assert!(
            p.add(pairs[1].0.as_fd(), 9, Interest::READ).is_err(),
            "twice"
        );
        assert!(p.delete(pairs[0].0.as_fd()).is_err(), "not watched");
    }

    #[test]
    fn a_hangup_is_reported_with_interest_only_and_close_forgets_the_entry() {
        let (mut p, _n) = Poller::new(2, 0, WAKER).unwrap();
        let (ours, peer) = UnixStream::pair().unwrap();
        p.add(ours.as_fd(), 5, Interest::READ).unwrap();
        assert!(events(&mut p, Duration::ZERO).is_empty());
        drop(peer);
        let e = events(&mut p, Duration::ZERO);
        assert_eq!(e.len(), 1);
        assert!(e[0].0 == 5 && e[0].1.hangup);
        // Watched for nothing, a standing hang-up is not reported (no spinning)...
        p.modify(ours.as_fd(), 5, Interest::NONE).unwrap();
        assert!(events(&mut p, Duration::ZERO).is_empty());
        assert_eq!(p.fds.len(), 1, "parked: only the notifier is in the table");
        assert!(p.modify(ours.as_fd(), 5, Interest::NONE).is_ok(), "twice");
        assert!(
            p.add(ours.as_fd(), 5, Interest::READ).is_err(),
            "still watched"
        );
        // ...and is again once watched for something.
        p.modify(ours.as_fd(), 6, Interest::WRITE).unwrap();
        let e = events(&mut p, Duration::ZERO);
        assert!(e.len() == 1 && e[0].0 == 6 && e[0].1.hangup);
        p.close(std::os::fd::OwnedFd::from(ours));
        assert!(events(&mut p, Duration::ZERO).is_empty());
        assert_eq!(p.fds.len(), 1, "only the notifier is left");
        // A parked descriptor is forgotten by a close as well.
        let (other, _peer) = UnixStream::pair().unwrap();
        p.add(other.as_fd(), 7, Interest::NONE).unwrap();
        assert_eq!(p.fds.len(), 1);
        let raw = other.as_fd().as_raw_fd();
        p.close(std::os::fd::OwnedFd::from(other));
        assert_eq!(p.position[super::index(raw)], super::ABSENT);
    }

    #[test]
    fn the_notifier_wakes_a_wait_and_is_reset_when_reported() {
        let (mut p, n) = Poller::new(1, 0, WAKER).unwrap();
        let n = std::sync::Arc::new(n);
        let other = n.clone();
        let waker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            other.notify();
        });
        // Bounded, so a lost wake fails instead of hanging.
        assert_eq!(events(&mut p, Duration::from_secs(20)), vec![(WAKER, READ)]);
        waker.join().unwrap();
        // Several notifications before a wait: one report, and then none.
        n.notify();
        n.notify();
        assert_eq!(events(&mut p, Duration::ZERO), vec![(WAKER, READ)]);
        assert!(events(&mut p, Duration::ZERO).is_empty(), "drained");
    }
}
