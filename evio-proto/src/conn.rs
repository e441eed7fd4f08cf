//! The connection handle a handler writes through.

use core::fmt;

use crate::buffers::OutputWindow;
use crate::{ConnId, ConnInfo, Options, OutputFull};

/// One connection, as a handler method sees it: its addresses, its context, and its
/// output buffer.
///
/// Output written here is sent by the engine in order, after anything written before,
/// and is always flushed before a `Close` or `Detach` takes effect. The buffer holds at
/// most [`Config::output_capacity`](crate::Config::output_capacity) bytes not yet taken
/// by the socket; [`Conn::room`] says how much more fits. A write that does not fit is
/// refused whole ([`Conn::write`]) or cut to fit ([`Conn::write_some`]); nothing is
/// dropped silently, and while the buffer is full the engine stops reading this
/// connection (backpressure) and calls `data` again with the input the handler left
/// unconsumed once the socket has drained.
pub struct Conn<'a, C> {
    pub(crate) info: &'a ConnInfo,
    pub(crate) context: &'a mut C,
    pub(crate) options: &'a mut Options,
    pub(crate) out: OutputWindow<'a>,
    pub(crate) consumed: Option<usize>,
    pub(crate) hit_full: bool,
    pub(crate) options_changed: bool,
}

impl<C> fmt::Debug for Conn<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("info", self.info)
            .field("pending", &self.out.pending())
            .field("room", &self.room())
            .finish_non_exhaustive()
    }
}

impl<'a, C> Conn<'a, C> {
    /// The connection's id (keep it to [`Waker::wake`](crate::Waker::wake) it later).
    pub fn id(&self) -> ConnId {
        self.info.id
    }

    /// Listener index and addresses.
    pub fn info(&self) -> &ConnInfo {
        self.info
    }

    /// The handler's per-connection state.
    pub fn context(&mut self) -> &mut C {
        self.context
    }

    /// This connection's socket options; a change is applied after the handler returns.
    pub fn options_mut(&mut self) -> &mut Options {
        self.options_changed = true;
        self.options
    }

    /// Bytes of output that still fit.
    pub fn room(&self) -> usize {
        self.out.room()
    }

    /// Bytes of output written and not yet taken by the socket.
    pub fn pending(&self) -> usize {
        self.out.pending()
    }

    /// Appends all of `bytes` to the output, or nothing.
    ///
    /// # Errors
    ///
    /// [`OutputFull`] if fewer than `bytes.len()` bytes of room are left; nothing is
    /// written then.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), OutputFull> {
        let room = self.room();
        if bytes.len() > room {
            self.hit_full = true;
            return Err(OutputFull {
                needed: bytes.len(),
                room,
            });
        }
        self.out.append(bytes);
        Ok(())
    }

    /// Appends as much of `bytes` as fits and returns how many bytes that was.
    pub fn write_some(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.room());
        if n < bytes.len() {
            self.hit_full = true;
        }
        self.out.append(&bytes[..n]);
        n
    }

    /// Runs `f`, and if it fails removes everything it wrote, so a reply made of several
    /// writes goes out whole or not at all.
    ///
    /// # Errors
    ///
    /// Whatever `f` returns.
    pub fn transaction<T, E>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, E>) -> Result<T, E> {
        let before = self.out.pending();
        let result = f(self);
        if result.is_err() {
            self.out.truncate(before);
        }
        result
    }

    /// Says that only the first `n` bytes of this `data` call's input were used; the
    /// rest is kept and handed back first in the next `data` call. Without a call, all
    /// input counts as used. `n` larger than the input counts as all of it. Meaningless
    /// outside `data`.
    pub fn consume(&mut self, n: usize) {
        self.consumed = Some(n);
    }
}

/// Formatting into the output (`write!(conn, …)`). A formatted write is made of several
/// pieces and one that does not fit fails with `fmt::Error` after the earlier pieces
/// went in: wrap it in [`Conn::transaction`] to make it all or nothing.
impl<C> fmt::Write for Conn<'_, C> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write(s.as_bytes()).map_err(|_| fmt::Error)
    }
}
