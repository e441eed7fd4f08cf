//! System interfaces: socket calls, and the pollers behind one trait: the system's own
//! (epoll or kqueue, one file per OS behind the module name `native`, mio's layout) and
//! poll(2), which every unix has and every build compiles.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

use evio_proto::{ByteStorage, Events, Interest, Notify, Readiness, SlotStorage, TransmitBatch};
use rustix::io::Errno;

pub(crate) mod net;
// On Linux the pipe notifier serves the poll(2) backend and `--cfg evio_force_pipe`.
pub(crate) mod pipe;
pub(crate) mod poll;
#[cfg(evio_uring)]
pub(crate) mod uring;

#[cfg_attr(evio_epoll, path = "epoll.rs")]
#[cfg_attr(evio_kqueue, path = "kqueue.rs")]
#[cfg(any(evio_epoll, evio_kqueue))]
pub(crate) mod native;

/// What the driver's loop needs of a poller: level-triggered readiness for the sockets
/// it registers, each under a 64-bit token, and a notifier that wakes a waiting loop
/// from any thread.
pub(crate) trait Poller: Sized {
    /// What wakers hold: wakes the loop from any thread.
    type Notifier: Notify + 'static;

    /// Whether the loop sends a batch of sends in one io_uring submit (the epoll
    /// backend, where the kernel has io_uring) rather than with one `send(2)` each.
    #[cfg(evio_uring)]
    const URING_SENDS: bool = false;

    /// A poller with room for `capacity` registered sockets and `events` events per
    /// wait, and its notifier, whose wakes `wait` reports under `waker_token`.
    fn new(capacity: usize, events: usize, waker_token: u64) -> io::Result<(Self, Self::Notifier)>;

    /// Starts watching `fd` under `token` with this interest.
    fn add(&mut self, fd: BorrowedFd<'_>, token: u64, interest: Interest) -> io::Result<()>;

    /// Changes the interest of a watched `fd` to exactly this.
    fn modify(&mut self, fd: BorrowedFd<'_>, token: u64, interest: Interest) -> io::Result<()>;

    /// Stops watching `fd`, which stays open.
    fn delete(&mut self, fd: BorrowedFd<'_>) -> io::Result<()>;

    /// Stops watching `fd` (if it is watched) and closes it. Every watched socket is
    /// closed through here or deleted first, never merely dropped.
    fn close(&mut self, fd: OwnedFd);

    /// Waits up to `timeout` (forever for `None`) and calls `f` with each ready token
    /// and its readiness. The notifier is reset before its token is reported. EINTR
    /// counts as a wait that found nothing.
    fn wait(&mut self, timeout: Option<Duration>, f: impl FnMut(u64, Readiness)) -> io::Result<()>;
}

/// Performs entry `k` of a batch of sends with `send(2)` on `fd` (`None`: the
/// connection has no socket, which fails it with EBADF), and reports it.
pub(crate) fn send_entry<H: Events, S: SlotStorage<H::Context>, B: ByteStorage>(
    fd: Option<BorrowedFd<'_>>,
    batch: &mut TransmitBatch<'_, H, S, B>,
    k: usize,
) {
    let Some(fd) = fd else {
        batch.failed(k, net::io_error(Errno::BADF));
        return;
    };
    match net::send(fd, batch.bytes(k)) {
        Ok(n) => batch.done(k, n),
        Err(Errno::AGAIN | Errno::INTR) => batch.would_block(k),
        Err(e) => batch.failed(k, net::io_error(e)),
    }
}

/// A wait's time-out as the kernel takes it.
pub(crate) fn timespec(d: Duration) -> rustix::time::Timespec {
    rustix::time::Timespec {
        tv_sec: d.as_secs().try_into().unwrap_or(i64::MAX as _),
        tv_nsec: d.subsec_nanos() as _,
    }
}

/// Sleeps `nap` on a timer, watching nothing (the engine's `poll_nap`).
pub(crate) fn nap(nap: Duration) {
    std::thread::sleep(nap);
}

/// Timer slack of the loop's thread lowered to 1 µs while it lives, then restored.
///
/// Linux lets a sleep of an ordinary thread end up to its timer slack late (50 µs by
/// default), which would stretch a coalescing nap of tens of microseconds several
/// times over. Elsewhere it does nothing.
#[derive(Debug)]
pub(crate) struct FineTimers {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    restore: Option<u64>,
}

impl FineTimers {
    /// Lowers the calling thread's timer slack (if the system allows it).
    pub(crate) fn new() -> Self {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use rustix::thread::{current_timer_slack, set_current_timer_slack};
            let restore = current_timer_slack()
                .ok()
                .filter(|_| set_current_timer_slack(std::num::NonZeroU64::new(1_000)).is_ok());
            FineTimers { restore }
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        FineTimers {}
    }
}

impl Drop for FineTimers {
    fn drop(&mut self) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(slack) = self.restore {
            // A slack read as 0 (which `NonZeroU64` cannot hold) sets the thread's
            // default back, as 0 does for prctl.
            let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(slack));
        }
    }
}
