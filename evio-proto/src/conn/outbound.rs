//! What [`Loop`] does to open connections and to pass on the end of a stream:
//! connects, and shutting the sending side of a connection.

use core::time::Duration;

use super::{Loop, NotOpen};
use crate::engine::life::{Event, Life};
use crate::slot::Flags;
use crate::{Addr, ConnId, ConnectAddr, ConnectError};

impl<C> Loop<'_, C> {
    /// Opens a connection to `to`, giving up after `timeout`; returns its id at once.
    ///
    /// The connection holds a slot from now on, with `context` as its context. The
    /// engine asks the driver for a non-blocking connect as soon as this callback
    /// returns. Then exactly one of:
    ///
    /// - it connects: [`Events::opened`](crate::Events::opened) runs for it, with
    ///   [`ConnInfo::outbound`](crate::ConnInfo::outbound) set, its `peer` the address
    ///   connected to and its `local` the address the OS chose, and from then on it is
    ///   a connection like any other;
    /// - the connect fails (refused, unreachable, reset) or `timeout` passes first:
    ///   [`Events::closed`](crate::Events::closed) runs for it with
    ///   [`CloseError::Connect`](crate::CloseError::Connect) or
    ///   [`CloseError::ConnectTimeout`](crate::CloseError::ConnectTimeout), and
    ///   `opened` never does.
    ///
    /// Until then, [`Loop::state`] says [`ConnState::Connecting`](crate::ConnState),
    /// writes to it ([`Loop::write`], [`Loop::write_some`]) wait in its output buffer
    /// (bounded by its room, as any other), and [`Loop::close`] or [`Loop::abort`]
    /// abandon it (`closed` follows, with no error; what was written is dropped).
    ///
    /// No name is resolved here: resolve host names before `serve`, or on a thread of
    /// your own that hands the addresses in through a wake.
    ///
    /// # Errors
    ///
    /// [`ConnectError`] when nothing can be started: every slot is in use, the server
    /// is shutting down, or a unix path is too long or too many unix connects were
    /// started in this callback. No callback follows then.
    ///
    /// # Example
    ///
    /// ```
    /// use core::net::SocketAddr;
    ///
    /// use evio_proto::{
    ///     Action, CloseError, Conn, ConnId, ConnInfo, Duration, Events, Flow, Loop, Tick,
    /// };
    ///
    /// /// Keeps one connection to a backend open, reconnecting a second after it fails.
    /// struct Upstream {
    ///     backend: SocketAddr,
    ///     link: Option<ConnId>,
    /// }
    ///
    /// impl Events for Upstream {
    ///     type Context = ();
    ///     fn tick(&mut self, others: &mut Loop<'_, ()>) -> Tick {
    ///         if self.link.is_none() {
    ///             let timeout = Duration::from_secs(2);
    ///             self.link = others.connect(self.backend.into(), timeout, ()).ok();
    ///         }
    ///         Tick::after(Duration::from_secs(1))
    ///     }
    ///     fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
    ///         if conn.info().outbound {
    ///             let _ = conn.write(b"PING\r\n");
    ///         }
    ///         Action::None
    ///     }
    ///     fn closed(
    ///         &mut self,
    ///         info: &ConnInfo,
    ///         _: (),
    ///         error: Option<CloseError>,
    ///         _: &mut Loop<'_, ()>,
    ///     ) -> Flow {
    ///         if self.link == Some(info.id) {
    ///             self.link = None; // refused, timed out, or lost: the next tick retries
    ///             let _ = error;
    ///         }
    ///         Flow::Continue
    ///     }
    /// }
    /// ```
    pub fn connect(
        &mut self,
        to: ConnectAddr<'_>,
        timeout: Duration,
        context: C,
    ) -> Result<ConnId, ConnectError> {
        if !self.running {
            return Err(ConnectError::ShuttingDown);
        }
        let peer = match to {
            ConnectAddr::Ip(addr) => Addr::Ip(addr),
            ConnectAddr::Unix(path) => {
                self.pool.unix_paths.check(path)?;
                Addr::Unix
            }
        };
        let Some(i) = self.pool.free.pop(self.slots) else {
            return Err(ConnectError::PoolFull);
        };
        self.pool.open += 1;
        let options = self.config.options;
        let word = ConnId::slot_word(i, self.loop_index() as u8);
        let id = self.slots[i as usize].open_outbound(word, peer, options, context);
        if let ConnectAddr::Unix(path) = to {
            self.pool.unix_paths.push(i, path);
        }
        self.set_deadline(i, Some(timeout));
        self.wake_up(i);
        Ok(id)
    }

    /// Shuts the sending side of `id` once its pending output is sent: its peer reads
    /// the end of the stream after everything written before. The connection stays
    /// open for reading; writes to it are refused from now on. A relay passes on the
    /// end of one side's stream this way (see
    /// [`Events::input_ended`](crate::Events::input_ended)).
    ///
    /// Once both directions are over (its own peer has ended its stream too, and the
    /// handler kept it open), the connection closes by itself and `closed` runs.
    ///
    /// # Errors
    ///
    /// [`NotOpen`] if `id` is not open or connecting, or its sending side is shut
    /// already.
    ///
    /// # Example
    ///
    /// ```
    /// use evio_proto::{Action, Conn, ConnId, Events};
    ///
    /// /// One half of a relay: when the client ends its stream, the backend is told (after
    /// /// what the client sent before), and the client stays open for the rest of the
    /// /// backend's answer.
    /// struct HalfClose;
    ///
    /// impl Events for HalfClose {
    ///     type Context = Option<ConnId>; // the other side
    ///     fn input_ended(&mut self, conn: &mut Conn<'_, Option<ConnId>>) -> Action {
    ///         let peer = *conn.context();
    ///         match peer {
    ///             Some(peer) if conn.others().shutdown_write(peer).is_ok() => Action::None,
    ///             _ => Action::Close,
    ///         }
    ///     }
    /// }
    /// ```
    pub fn shutdown_write(&mut self, id: ConnId) -> Result<(), NotOpen> {
        let i = self.writable_slot(id)?;
        let flags = &mut self.slots[i as usize].flags;
        flags.insert(Flags::SHUT_WR);
        if flags.contains(Flags::EOF) {
            // Its peer ended its stream already: both directions are over, so it closes
            // once its output is sent, bounded as any close (`Config::send_timeout`).
            return self.request(id, Event::Close);
        }
        self.wake_up(i);
        Ok(())
    }

    /// Gives `id` the input it holds ([`Conn::hold`](crate::Conn::hold)) again: its
    /// `data` is called with it at its next turn. Nothing happens if it holds none.
    ///
    /// A connection whose socket failed while it held input is resumed too: the peer
    /// sent that input before it failed, so its handler gets it before `closed`.
    ///
    /// # Errors
    ///
    /// [`NotOpen`] if `id` is not open (nor failing with input held).
    pub fn resume(&mut self, id: ConnId) -> Result<(), NotOpen> {
        let i = match self.slots.get(id.slot()) {
            Some(s) if s.info.id == id && matches!(s.state, Life::Open | Life::Failing) => {
                id.slot() as u32
            }
            _ => return Err(NotOpen(id)),
        };
        let slot = &mut self.slots[i as usize];
        if slot.wait.on() == Some(crate::relay::HELD) {
            crate::relay::unwait(self.slots, i);
            // Still marked waiting, with nothing to wait for: delivered at its turn.
            self.wake_up(i);
        }
        Ok(())
    }
}
