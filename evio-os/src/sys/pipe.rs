//! The pipe notifier: the portable fallback, forced with `--cfg evio_force_pipe`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use evio_proto::Notify;
use rustix::io::Errno;
#[cfg(not(target_vendor = "apple"))]
use rustix::pipe::{PipeFlags, pipe_with};

/// The write end, shared with every waker.
#[derive(Debug)]
pub(crate) struct PipeNotifier {
    write: OwnedFd,
    /// The read end, kept open while a waker lives: a waker can outlive the loop, and
    /// a write to a pipe nobody can read fails with EPIPE and raises SIGPIPE.
    _read: Arc<OwnedFd>,
}

impl Notify for PipeNotifier {
    fn notify(&self) {
        // EAGAIN (a full pipe) is fine: a notification is already pending, and the
        // loop drains the whole pipe when it wakes.
        let _ = rustix::io::write(&self.write, &[1]);
    }
}

/// The read end, watched by the loop.
#[derive(Debug)]
pub(crate) struct PipeReceiver {
    read: Arc<OwnedFd>,
}

impl PipeReceiver {
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Empties the pipe so that level-triggered polling stops reporting it.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 64];
        loop {
            match rustix::io::read(&self.read, &mut buf) {
                Ok(n) if n == buf.len() => continue,
                Err(Errno::INTR) => continue,
                _ => break,
            }
        }
    }
}

/// A non-blocking, close-on-exec pipe.
pub(crate) fn pipe() -> io::Result<(PipeNotifier, PipeReceiver)> {
    #[cfg(not(target_vendor = "apple"))]
    let (read, write) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
    #[cfg(target_vendor = "apple")]
    let (read, write) = {
        // No pipe2 on Apple: set the flags after the fact.
        let (r, w) = rustix::pipe::pipe()?;
        for fd in [&r, &w] {
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)?;
            rustix::io::ioctl_fionbio(fd, true)?;
        }
        (r, w)
    };
    let read = Arc::new(read);
    Ok((
        PipeNotifier {
            write,
            _read: read.clone(),
        },
        PipeReceiver { read },
    ))
}

#[cfg(test)]
mod tests {
    use evio_proto::Notify;

    #[test]
    fn a_notify_after_the_loop_is_gone_hits_no_broken_pipe() {
        let (n, r) = super::pipe().unwrap();
        // The loop ends (its receiver drops) while a waker lives on.
        drop(r);
        assert_ne!(
            rustix::io::write(&n.write, &[1]).err(),
            Some(rustix::io::Errno::PIPE)
        );
    }

    #[test]
    fn notify_never_blocks_and_drain_empties() {
        let (n, r) = super::pipe().unwrap();
        // Far more notifications than a pipe holds: a full pipe must not block.
        for _ in 0..100_000 {
            n.notify();
        }
        r.drain();
        let mut buf = [0u8; 1];
        assert_eq!(
            rustix::io::read(r.fd(), &mut buf),
            Err(rustix::io::Errno::AGAIN)
        );
    }
}
