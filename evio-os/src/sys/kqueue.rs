//! The macOS/BSD poller: kqueue with level-triggered read and write filters, and an
//! `EVFILT_USER` notifier (a pipe with `--cfg evio_force_pipe`, and on NetBSD/OpenBSD).
//!
//! CI type-checks and lints it for `aarch64-apple-darwin` and `x86_64-unknown-freebsd`
//! but cannot run it (the project's machines run Linux only): it is kept small and
//! mirrors `epoll.rs` call for call.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use evio_proto::{Interest, Notify, Readiness};
use rustix::event::kqueue::{self, Event, EventFilter, EventFlags};
use rustix::io::Errno;
use rustix::time::Timespec;

/// A kqueue instance, its fixed event array and the loop's end of the notifier.
#[derive(Debug)]
pub(crate) struct Poller {
    kq: Arc<OwnedFd>,
    events: Box<[MaybeUninit<Event>]>,
    receiver: Receiver,
    waker_token: u64,
}

fn udata(token: u64) -> *mut core::ffi::c_void {
    core::ptr::without_provenance_mut(token as usize)
}

/// `EV_ADD` for a filter we want, `EV_DELETE` for one we do not (level-triggered: no
/// `EV_CLEAR`). `EV_RECEIPT` makes each change report its own result.
fn change(on: bool) -> EventFlags {
    if on {
        EventFlags::ADD | EventFlags::RECEIPT
    } else {
        EventFlags::DELETE | EventFlags::RECEIPT
    }
}

impl Poller {
    /// Applies up to two changes made with `EV_RECEIPT`: each comes back as an event
    /// with `EV_ERROR` and its error number in `data` (0 for success), so one failing
    /// change does not stop the other. Deleting a filter that is not registered
    /// (ENOENT) is what "no interest" means here, and EPIPE (macOS, a write filter on a
    /// socket whose peer is gone) is reported by the next write anyway: both are fine.
    fn apply(kq: &OwnedFd, changes: &[Event]) -> io::Result<()> {
        let mut out = [MaybeUninit::<Event>::uninit(); 2];
        let n = changes.len().min(out.len());
        let now = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: the changes name sockets this loop owns; closing one removes its
        // filters from the kqueue, so no filter outlives its descriptor.
        let (results, _) =
            unsafe { kqueue::kevent_timespec(kq, &changes[..n], &mut out[..n], Some(&now))? };
        for ev in results.iter() {
            let code = ev.data() as i32;
            if ev.flags().contains(EventFlags::ERROR)
                && code != 0
                && code != Errno::NOENT.raw_os_error()
                && code != Errno::PIPE.raw_os_error()
            {
                return Err(io::Error::from_raw_os_error(code));
            }
        }
        Ok(())
    }

    /// Sets exactly this interest: a filter is registered while it is wanted.
    fn set(kq: &OwnedFd, fd: BorrowedFd<'_>, token: u64, interest: Interest) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        Self::apply(
            kq,
            &[
                Event::new(
                    EventFilter::Read(raw),
                    change(interest.is_readable()),
                    udata(token),
                ),
                Event::new(
                    EventFilter::Write(raw),
                    change(interest.is_writable()),
                    udata(token),
                ),
            ],
        )
    }
}

impl super::Poller for Poller {
    type Notifier = Notifier;

    fn new(_capacity: usize, events: usize, waker_token: u64) -> io::Result<(Self, Notifier)> {
        let kq = kqueue::kqueue()?;
        rustix::io::fcntl_setfd(&kq, rustix::io::FdFlags::CLOEXEC)?;
        let kq = Arc::new(kq);
        #[cfg(all(not(evio_force_pipe), evio_kqueue_user))]
        let (notifier, receiver) = {
            use rustix::event::kqueue::{UserDefinedFlags, UserFlags};
            Self::apply(
                &kq,
                &[Event::new(
                    EventFilter::User {
                        ident: 0,
                        flags: UserFlags::empty(),
                        user_flags: UserDefinedFlags::new(0),
                    },
                    EventFlags::ADD | EventFlags::CLEAR | EventFlags::RECEIPT,
                    udata(waker_token),
                )],
            )?;
            (Notifier::User(kq.clone(), waker_token), Receiver::User)
        };
        #[cfg(not(all(not(evio_force_pipe), evio_kqueue_user)))]
        let (notifier, receiver) = {
            let (n, r) = super::pipe::pipe()?;
            Self::set(&kq, r.fd(), waker_token, Interest::READ)?;
            (Notifier::Pipe(n), Receiver::Pipe(r))
        };
        let poller = Poller {
            kq,
            events: Box::new_uninit_slice(events.max(1)),
            receiver,
            waker_token,
        };
        Ok((poller, notifier))
    }

    fn add(&mut self, fd: BorrowedFd<'_>, token: u64, interest: Interest) -> io::Result<()> {
        Self::set(&self.kq, fd, token, interest)
    }

    fn modify(&mut self, fd: BorrowedFd<'_>, token: u64, interest: Interest) -> io::Result<()> {
        Self::set(&self.kq, fd, token, interest)
    }

    fn delete(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        Self::set(&self.kq, fd, 0, Interest::NONE)
    }

    fn close(&mut self, fd: OwnedFd) {
        // Closing a descriptor removes its filters from the kqueue: no separate call.
        drop(fd);
    }

    fn wait(
        &mut self,
        timeout: Option<Duration>,
        mut f: impl FnMut(u64, Readiness),
    ) -> io::Result<()> {
        let ts = timeout.map(super::timespec);
        // SAFETY: no changes are submitted here (see `apply`).
        let result =
            unsafe { kqueue::kevent_timespec(&*self.kq, &[], &mut self.events[..], ts.as_ref()) };
        let (ready, _) = match result {
            Ok(r) => r,
            Err(Errno::INTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for ev in ready.iter() {
            let token = ev.udata() as usize as u64;
            if token == self.waker_token {
                self.receiver.drain();
            }
            let flags = ev.flags();
            let hangup = flags.intersects(EventFlags::EOF | EventFlags::ERROR);
            let r = match ev.filter() {
                EventFilter::Read(_) => Readiness {
                    hangup,
                    ..Readiness::READABLE
                },
                EventFilter::Write(_) => Readiness {
                    hangup,
                    ..Readiness::WRITABLE
                },
                _ => Readiness::READABLE,
            };
            f(token, r);
        }
        Ok(())
    }
}

/// Wakes the loop from any thread.
#[derive(Debug)]
pub(crate) enum Notifier {
    /// Triggers the kqueue's `EVFILT_USER` event, registered under the token.
    #[allow(dead_code)]
    User(Arc<OwnedFd>, u64),
    /// A pipe's write end.
    #[allow(dead_code)]
    Pipe(super::pipe::PipeNotifier),
}

impl Notify for Notifier {
    fn notify(&self) {
        match self {
            #[cfg(all(not(evio_force_pipe), evio_kqueue_user))]
            Notifier::User(kq, token) => {
                use rustix::event::kqueue::{UserDefinedFlags, UserFlags};
                let ev = Event::new(
                    EventFilter::User {
                        ident: 0,
                        flags: UserFlags::TRIGGER,
                        user_flags: UserDefinedFlags::new(0),
                    },
                    EventFlags::empty(),
                    // Every change to a knote replaces its udata (FreeBSD, macOS, as
                    // mio's waker knows): the trigger must carry the token, or the
                    // wake is reported under another one and lost.
                    udata(*token),
                );
                let mut none: [MaybeUninit<Event>; 0] = [];
                let now = Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                // SAFETY: a user event names no descriptor.
                let _ = unsafe { kqueue::kevent_timespec(&**kq, &[ev], &mut none[..], Some(&now)) };
            }
            Notifier::Pipe(p) => p.notify(),
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }
}

/// The loop's end of the notifier.
#[derive(Debug)]
enum Receiver {
    /// `EVFILT_USER` with `EV_CLEAR` resets itself when reported.
    #[allow(dead_code)]
    User,
    /// A pipe's read end.
    #[allow(dead_code)]
    Pipe(super::pipe::PipeReceiver),
}

impl Receiver {
    /// Resets the notifier so that level-triggered polling stops reporting it.
    fn drain(&self) {
        if let Receiver::Pipe(p) = self {
            p.drain();
        }
    }
}
