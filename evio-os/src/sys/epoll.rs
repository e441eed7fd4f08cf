//! The Linux/Android poller: level-triggered epoll, and an eventfd notifier (a pipe
//! with `--cfg evio_force_pipe`).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

use evio_proto::{Notify, Readiness};
use rustix::event::epoll::{self, CreateFlags, EventData, EventFlags};
use rustix::io::Errno;
use rustix::time::Timespec;

/// An epoll instance.
#[derive(Debug)]
pub(crate) struct Poller {
    ep: OwnedFd,
}

/// The fixed event array one `wait` fills, allocated once per loop.
pub(crate) struct EventBuf {
    buf: Box<[MaybeUninit<epoll::Event>]>,
}

impl EventBuf {
    pub(crate) fn new(capacity: usize) -> Self {
        EventBuf {
            buf: Box::new_uninit_slice(capacity.max(1)),
        }
    }
}

fn flags(read: bool, write: bool) -> EventFlags {
    let mut f = EventFlags::empty();
    if read {
        f |= EventFlags::IN;
    }
    if write {
        f |= EventFlags::OUT;
    }
    f
}

impl Poller {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Poller {
            ep: epoll::create(CreateFlags::CLOEXEC)?,
        })
    }

    pub(crate) fn add(
        &self,
        fd: BorrowedFd<'_>,
        token: u64,
        read: bool,
        write: bool,
    ) -> io::Result<()> {
        Ok(epoll::add(
            &self.ep,
            fd,
            EventData::new_u64(token),
            flags(read, write),
        )?)
    }

    pub(crate) fn modify(
        &self,
        fd: BorrowedFd<'_>,
        token: u64,
        read: bool,
        write: bool,
    ) -> io::Result<()> {
        Ok(epoll::modify(
            &self.ep,
            fd,
            EventData::new_u64(token),
            flags(read, write),
        )?)
    }

    pub(crate) fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        Ok(epoll::delete(&self.ep, fd)?)
    }

    /// Waits up to `timeout` (forever for `None`) and calls `f` with each event's token
    /// and readiness. EINTR counts as a wait that found nothing.
    pub(crate) fn wait(
        &self,
        events: &mut EventBuf,
        timeout: Option<Duration>,
        mut f: impl FnMut(u64, Readiness),
    ) -> io::Result<()> {
        let ts = timeout.map(|d| Timespec {
            tv_sec: d.as_secs() as _,
            tv_nsec: d.subsec_nanos() as _,
        });
        let (ready, _) = match epoll::wait(&self.ep, &mut events.buf[..], ts.as_ref()) {
            Ok(r) => r,
            Err(Errno::INTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for ev in ready.iter() {
            // `Event` is packed on x86_64: copy the fields out before use.
            let bits = ev.flags;
            let data = ev.data;
            f(
                data.u64(),
                Readiness {
                    readable: bits.contains(EventFlags::IN),
                    writable: bits.contains(EventFlags::OUT),
                    hangup: bits.intersects(EventFlags::ERR | EventFlags::HUP),
                },
            );
        }
        Ok(())
    }

    /// The wake notifier and the loop's end of it, registered under `token`.
    pub(crate) fn notifier(&self, token: u64) -> io::Result<(Notifier, Receiver)> {
        #[cfg(not(evio_force_pipe))]
        let (n, r) = {
            use rustix::event::{EventfdFlags, eventfd};
            let fd =
                std::sync::Arc::new(eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)?);
            (Notifier::EventFd(fd.clone()), Receiver::EventFd(fd))
        };
        #[cfg(evio_force_pipe)]
        let (n, r) = {
            let (n, r) = super::pipe::pipe()?;
            (Notifier::Pipe(n), Receiver::Pipe(r))
        };
        self.add(r.fd(), token, true, false)?;
        Ok((n, r))
    }
}

/// Wakes the loop from any thread.
#[derive(Debug)]
pub(crate) enum Notifier {
    /// An eventfd shared with the loop.
    #[cfg(not(evio_force_pipe))]
    EventFd(std::sync::Arc<OwnedFd>),
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
pub(crate) enum Receiver {
    /// The eventfd.
    #[cfg(not(evio_force_pipe))]
    EventFd(std::sync::Arc<OwnedFd>),
    /// A pipe's read end.
    #[cfg(evio_force_pipe)]
    Pipe(super::pipe::PipeReceiver),
}

impl Receiver {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            #[cfg(not(evio_force_pipe))]
            Receiver::EventFd(fd) => std::os::fd::AsFd::as_fd(&**fd),
            #[cfg(evio_force_pipe)]
            Receiver::Pipe(p) => p.fd(),
        }
    }

    /// Resets the notifier so that level-triggered polling stops reporting it.
    pub(crate) fn drain(&self) {
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
