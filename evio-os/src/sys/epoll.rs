//! The Linux/Android poller: level-triggered epoll, and an eventfd notifier (a pipe
//! with `--cfg evio_force_pipe`).

use std::io;
use std::mem::MaybeUninit;
#[cfg(not(evio_force_pipe))]
use std::os::fd::AsFd;
use std::os::fd::{BorrowedFd, OwnedFd};
#[cfg(not(evio_force_pipe))]
use std::sync::Arc;
use std::time::Duration;

use evio_proto::{Interest, Notify, Readiness};
use rustix::event::epoll::{self, CreateFlags, EventData, EventFlags};
use rustix::io::Errno;

/// An epoll instance, its fixed event array and the loop's end of the notifier.
#[derive(Debug)]
pub(crate) struct Poller {
    ep: OwnedFd,
    events: Box<[MaybeUninit<epoll::Event>]>,
    receiver: Receiver,
    waker_token: u64,
}

fn flags(interest: Interest) -> EventFlags {
    let mut f = EventFlags::empty();
    if interest.is_readable() {
        f |= EventFlags::IN;
    }
    if interest.is_writable() {
        f |= EventFlags::OUT;
    }
    if f.is_empty() {
        // epoll reports a hang-up or an error whatever the interest: level-triggered,
        // a reset socket the engine is not reading (its input waits) would be reported
        // at every wait, and the loop would spin. Edge-triggered, it is reported once.
        f |= EventFlags::ET;
    }
    f
}

impl super::Poller for Poller {
    type Notifier = Notifier;

    #[cfg(evio_uring)]
    const URING_SENDS: bool = true;

    fn new(_capacity: usize, events: usize, waker_token: u64) -> io::Result<(Self, Notifier)> {
        let ep = epoll::create(CreateFlags::CLOEXEC)?;
        #[cfg(not(evio_force_pipe))]
        let (notifier, receiver) = {
            use rustix::event::{EventfdFlags, eventfd};
            let fd = Arc::new(eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)?);
            (Notifier::EventFd(fd.clone()), Receiver::EventFd(fd))
        };
        #[cfg(evio_force_pipe)]
        let (notifier, receiver) = {
            let (n, r) = super::pipe::pipe()?;
            (Notifier::Pipe(n), Receiver::Pipe(r))
        };
        epoll::add(
            &ep,
            receiver.fd(),
            EventData::new_u64(waker_token),
            EventFlags::IN,
        )?;
        let poller = Poller {
            ep,
            events: Box::new_uninit_slice(events.max(1)),
            receiver,
            waker_token,
        };
        Ok((poller, notifier))
    }

    fn add(&mut self, fd: BorrowedFd<'_>, token: u64, interest: Interest) -> io::Result<()> {
        Ok(epoll::add(
            &self.ep,
            fd,
            EventData::new_u64(token),
            flags(interest),
        )?)
    }

    fn modify(&mut self, fd: BorrowedFd<'_>, token: u64, interest: Interest) -> io::Result<()> {
        Ok(epoll::modify(
            &self.ep,
            fd,
            EventData::new_u64(token),
            flags(interest),
        )?)
    }

    fn delete(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        Ok(epoll::delete(&self.ep, fd)?)
    }

    fn close(&mut self, fd: OwnedFd) {
        // Closing the last descriptor of a socket removes it from the epoll set: no
        // separate system call.
        drop(fd);
    }

    fn wait(
        &mut self,
        timeout: Option<Duration>,
        mut f: impl FnMut(u64, Readiness),
    ) -> io::Result<()> {
        let ts = timeout.map(super::timespec);
        let (ready, _) = match epoll::wait(&self.ep, &mut self.events[..], ts.as_ref()) {
            Ok(r) => r,
            Err(Errno::INTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for ev in ready.iter() {
            // `Event` is packed on x86_64: copy the fields out before use.
            let bits = ev.flags;
            let token = ev.data.u64();
            if token == self.waker_token {
                self.receiver.drain();
            }
            f(
                token,
                Readiness {
                    readable: bits.contains(EventFlags::IN),
                    writable: bits.contains(EventFlags::OUT),
                    hangup: bits.intersects(EventFlags::ERR | EventFlags::HUP),
                },
            );
        }
        Ok(())
    }
}

/// Wakes the loop from any thread.
#[derive(Debug)]
pub(crate) enum Notifier {
    /// An eventfd shared with the loop.
    #[cfg(not(evio_force_pipe))]
    EventFd(Arc<OwnedFd>),
    /// A pipe's write end.
    #[cfg(evio_force_pipe)]
    Pipe(super::pipe::PipeNotifier),
}

impl Notify for Notifier {
    fn notify(&self) {
        match self {
            // A non-blocking eventfd: EAGAIN only when the counter would overflow, in
            // which case a notification is pending anyway.
            #[cfg(not(evio_force_pipe))]
            Notifier::EventFd(fd) => {
                let _ = rustix::io::write(&**fd, &1u64.to_ne_bytes());
            }
            #[cfg(evio_force_pipe)]
            Notifier::Pipe(p) => p.notify(),
        }
    }
}

/// The loop's end of the notifier.
#[derive(Debug)]
enum Receiver {
    /// The eventfd.
    #[cfg(not(evio_force_pipe))]
    EventFd(Arc<OwnedFd>),
    /// A pipe's read end.
    #[cfg(evio_force_pipe)]
    Pipe(super::pipe::PipeReceiver),
}

impl Receiver {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            #[cfg(not(evio_force_pipe))]
            Receiver::EventFd(fd) => fd.as_fd(),
            #[cfg(evio_force_pipe)]
            Receiver::Pipe(p) => p.fd(),
        }
    }

    /// Resets the notifier so that level-triggered polling stops reporting it.
    fn drain(&self) {
        match self {
            #[cfg(not(evio_force_pipe))]
            Receiver::EventFd(fd) => {
                let mut buf = [0u8; 8];
                let _ = rustix::io::read(&**fd, &mut buf);
            }
            #[cfg(evio_force_pipe)]
            Receiver::Pipe(p) => p.drain(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    use evio_proto::{Interest, Readiness};

    use super::Poller;
    use crate::sys::Poller as _;

    const WAKER: u64 = u64::MAX;

    fn events(p: &mut Poller) -> Vec<(u64, Readiness)> {
        let mut out = Vec::new();
        p.wait(Some(Duration::ZERO), |t, r| out.push((t, r)))
            .unwrap();
        out
    }

    #[test]
    fn a_standing_hangup_without_interest_is_reported_once_not_at_every_wait() {
        let (mut p, _n) = Poller::new(2, 8, WAKER).unwrap();
        let (ours, peer) = UnixStream::pair().unwrap();
        p.add(ours.as_fd(), 5, Interest::READ).unwrap();
        drop(peer);
        for _ in 0..2 {
            // Level-triggered while watched: reported at every wait.
            let e = events(&mut p);
            assert!(e.len() == 1 && e[0].0 == 5 && e[0].1.hangup);
        }
        p.modify(ours.as_fd(), 5, Interest::NONE).unwrap();
        let reports = (0..3).map(|_| events(&mut p).len()).sum::<usize>();
        assert!(reports <= 1, "reported {reports} times in 3 waits");
        p.modify(ours.as_fd(), 6, Interest::READ).unwrap();
        let e = events(&mut p);
        assert!(e.len() == 1 && e[0].0 == 6 && e[0].1.hangup);
    }
}
