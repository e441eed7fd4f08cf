//! A turn's sends in one system call on Linux: the entries of an
//! [`Output::TransmitBatch`](evio_proto::Output::TransmitBatch) submitted to an
//! io_uring together.
//!
//! Each entry is an `IORING_OP_SEND` with `MSG_DONTWAIT | MSG_NOSIGNAL`. With
//! `MSG_DONTWAIT` a send never waits in the ring: it takes what the socket has room for
//! during the submit, or completes with EAGAIN, exactly as `send(2)` on the
//! non-blocking socket would. So every result is known when the one `io_uring_enter`
//! returns, and the reports stay synchronous. Only the sends use the ring; readiness
//! still comes from epoll, reads are still `read(2)`.
//!
//! Measured on loopback with a minimal proxy in C (`bench/probes/l4_probe.c`), this
//! took a third of a system call off each relayed request and about a tenth off the
//! proxy's CPU at one request per round trip: on loopback most of a send's cost is
//! the receiving side's work and its wake-up, done in the sender's context, and a
//! submit of fifty sends pays the entry into the kernel once.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use evio_proto::{ByteStorage, ConnId, Events, MAX_BATCH, SlotStorage, TransmitBatch};
use io_uring::{IoUring, opcode, types};
use rustix::io::Errno;
use rustix::net::SendFlags;

use super::net;

/// An io_uring with room for one batch.
pub(crate) struct Ring {
    ring: IoUring,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ring")
    }
}

/// What became of one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    /// Not submitted, or its completion was not read.
    Unknown,
    /// The send's result (a count, or a negated errno).
    Result(i32),
}

impl Ring {
    /// A ring for batches of up to [`MAX_BATCH`] sends, or the reason there is none
    /// (an old kernel, `io_uring_disabled`, a seccomp filter, the locked-memory
    /// limit): the caller then sends each entry with `send(2)`.
    pub(crate) fn new() -> io::Result<Ring> {
        Ok(Ring {
            ring: IoUring::new(MAX_BATCH as u32)?,
        })
    }

    /// Performs `batch`: every entry with a socket submitted at once, then reported
    /// from its completion; an entry whose connection has no socket fails with EBADF.
    ///
    /// # Errors
    ///
    /// The ring failed (an `io_uring_enter` error other than EINTR). The entries the
    /// kernel did not take are then sent here with `send(2)` and every entry is
    /// reported; the error tells the caller to drop the ring and use `send(2)` from
    /// now on.
    pub(crate) fn send<'f, H: Events, S: SlotStorage<H::Context>, B: ByteStorage>(
        &mut self,
        fd_of: impl Fn(ConnId) -> Option<BorrowedFd<'f>>,
        batch: &mut TransmitBatch<'_, H, S, B>,
    ) -> io::Result<()> {
        let len = batch.len();
        let flags = (SendFlags::DONTWAIT | SendFlags::NOSIGNAL).bits() as i32;
        let mut sent = [Sent::Unknown; MAX_BATCH];
        let mut submitted = 0;
        {
            let mut sq = self.ring.submission();
            for k in 0..len {
                let Some(fd) = fd_of(batch.id(k)) else {
                    continue;
                };
                let bytes = batch.bytes(k);
                let entry = opcode::Send::new(
                    types::Fd(fd.as_raw_fd()),
                    bytes.as_ptr(),
                    bytes.len().min(u32::MAX as usize) as u32,
                )
                .flags(flags)
                .build()
                .user_data(k as u64);
                // SAFETY: the entry points at bytes the batch lends until it is dropped
                // and at a socket `fds` owns; both outlive this call, which does not
                // return before the kernel has completed every entry it took (and the
                // ones it did not take are dropped with the ring on an error). The
                // queue has room: it holds `MAX_BATCH` entries and is empty between
                // calls.
                if unsafe { sq.push(&entry) }.is_err() {
                    break;
                }
                submitted += 1;
            }
        }
        let mut completed = 0;
        let mut failure = None;
        while completed < submitted {
            match self.ring.submit_and_wait(submitted - completed) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(e);
                }
            }
            for cqe in self.ring.completion() {
                let k = cqe.user_data() as usize;
                if k < len && sent[k] == Sent::Unknown {
                    sent[k] = Sent::Result(cqe.result());
                    completed += 1;
                }
            }
            if failure.is_some() {
                break;
            }
        }
        for (k, result) in sent.iter().enumerate().take(len) {
            match *result {
                Sent::Result(n) if n >= 0 => batch.done(k, n as usize),
                Sent::Result(e) => match Errno::from_raw_os_error(-e) {
                    Errno::AGAIN | Errno::INTR => batch.would_block(k),
                    e => batch.failed(k, net::io_error(e)),
                },
                Sent::Unknown => super::send_entry(fd_of(batch.id(k)), batch, k),
            }
        }
        failure.map_or(Ok(()), Err)
    }
}
