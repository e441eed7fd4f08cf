//! The engine's capacities and defaults, fixed at construction.

use core::time::Duration;

use crate::{BuildError, Options};

/// Capacities and defaults of an engine, fixed when it is built.
///
/// Memory is known up front: [`Config::bytes_needed`] bytes of buffer storage and one
/// connection slot per `max_connections`. Each connection has its own input buffer
/// (for a partial frame carried over between reads) and output buffer (for output the
/// socket has not taken yet), but touches them only while it holds such carry-over: a
/// whole request read in one go and a whole reply written in one go pass through two
/// loop-wide scratch buffers instead. Reserve the storage with zeroed memory (untouched
/// pages cost no RSS) or a `static`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Most connections open at once; one more is accepted and closed at once (and
    /// counted in the engine's statistics). Default 1024.
    pub max_connections: usize,
    /// Bytes of input buffer per connection: the largest frame a handler can wait for,
    /// and the most read per `read` call. Default 16 KiB.
    pub input_capacity: usize,
    /// Bytes of output buffer per connection: the most output a connection can have
    /// pending; past it [`Conn::write`](crate::Conn::write) says `OutputFull` and the
    /// engine stops reading the connection until the socket drains. Default 64 KiB.
    pub output_capacity: usize,
    /// Socket options every connection starts with. Default: TCP_NODELAY on, no
    /// keepalive.
    pub options: Options,
    /// The shortest delay between ticks; shorter delays (zero included) are raised to
    /// it, so the ticker never spins. Default 1 ms.
    pub min_tick: Duration,
    /// Most connections accepted per listener readiness report, so one busy listener
    /// does not starve the connections already open. Default 64.
    pub accept_batch: u32,
    /// First pause of a listener after an accept failed for lack of descriptors or
    /// memory; it doubles on each failure in a row. Default 10 ms.
    pub accept_backoff: Duration,
    /// Longest such pause. Default 1 s.
    pub accept_backoff_max: Duration,
    /// Longest a lingering close waits for the peer to close its side, reading and
    /// discarding what it still sends, before closing anyway (see
    /// [`Action::Close`](crate::Action::Close)). Default 5 s.
    pub linger: Duration,
    /// The longest nap of wake coalescing under load: when the last wait found a few
    /// of many active connections ready, the loop naps (a timer sleep, not watching the
    /// sockets) before polling again, so the clients of a busy loop do not pay to wake
    /// it and what they send meanwhile is taken in one batch. A nap adds at most this
    /// much latency per batch while the loop is busy with many senders, and nothing
    /// otherwise; see [`Engine::poll_nap`](crate::Engine::poll_nap). Default `None`
    /// (off).
    pub coalesce: Option<Duration>,
    /// A turn's sends wait until its reads are done, then go to the driver together,
    /// as one [`Output::TransmitBatch`](crate::Output::TransmitBatch) of up to
    /// [`MAX_BATCH`](crate::MAX_BATCH) entries (default `false`: each connection's
    /// output is sent as soon as its turn comes; a turn handles what one wait of the
    /// poller reported).
    ///
    /// A driver can then make all of them in one system call: evio-os on Linux submits
    /// them to an io_uring at once, each with `MSG_DONTWAIT`, so each completes during
    /// the submit exactly as a `send(2)` would. Worth it for a relay or a proxy under
    /// load, where a turn sends to many connections: on loopback most of a send's cost
    /// is the receiving side's, and the entry into the kernel is paid once. The price:
    /// a turn's first replies wait for its last read, and output a handler wrote into
    /// the shared scratch buffer is copied into its connection's own buffer if another
    /// handler needs that buffer before the batch goes. A transformed connection's
    /// sends (its transport's) are not batched.
    pub batch_sends: bool,
    /// Longest a connection that is leaving (closing or detaching once its output is
    /// sent, its handler's or its peer's doing) may go without send progress: a peer
    /// that stops reading would otherwise hold its slot for ever. Past it the
    /// connection is aborted (its output discarded, the peer reset) and `closed` gets
    /// [`CloseError::SendTimeout`](crate::CloseError::SendTimeout). An open connection
    /// is bounded by its handler's own timeout instead, and a lingering close by
    /// [`Config::linger`]. `None`: no bound. Default 60 s (nginx's `send_timeout`).
    pub send_timeout: Option<Duration>,
    /// Longest a transformed connection (TLS, see [`Transport`](crate::Transport)) may
    /// take over its handshake, from its accept or connect: past it the connection is
    /// reset and its handler never hears of it (nginx's `ssl_handshake_timeout`, 60 s,
    /// and HAProxy's `timeout client` bound the same). Default 10 s.
    pub handshake_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

impl Config {
    /// The default configuration (see each field).
    pub const fn new() -> Self {
        Config {
            max_connections: 1024,
            input_capacity: 16 * 1024,
            output_capacity: 64 * 1024,
            options: Options {
                nodelay: true,
                keepalive: None,
            },
            min_tick: Duration::from_millis(1),
            accept_batch: 64,
            accept_backoff: Duration::from_millis(10),
            accept_backoff_max: Duration::from_secs(1),
            linger: Duration::from_secs(5),
            coalesce: None,
            batch_sends: false,
            send_timeout: Some(Duration::from_secs(60)),
            handshake_timeout: Duration::from_secs(10),
        }
    }

    /// Bytes of buffer storage an engine with this configuration needs: every slot's
    /// input and output buffer plus one scratch buffer of each. Saturates at
    /// `usize::MAX` for a configuration no memory can hold ([`Config::validate`] says
    /// so as an error).
    pub const fn bytes_needed(&self) -> usize {
        let per_slot = self.input_capacity.saturating_add(self.output_capacity);
        self.max_connections
            .saturating_add(1)
            .saturating_mul(per_slot)
    }

    /// Checks the configuration before any storage is reserved for it; returns
    /// [`Config::bytes_needed`]. Building an engine runs the same check (and a server
    /// runs it before it binds anything).
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroCapacity`] for a zero capacity or batch,
    /// [`BuildError::TooManyConnections`] past 2^24 connections or 4 GiB buffers, and
    /// [`BuildError::StorageTooLarge`] if the byte storage exceeds the address space.
    pub const fn validate(&self) -> Result<usize, BuildError> {
        if self.max_connections == 0 {
            return Err(BuildError::ZeroCapacity("max_connections"));
        }
        if self.input_capacity == 0 {
            return Err(BuildError::ZeroCapacity("input_capacity"));
        }
        if self.output_capacity == 0 {
            return Err(BuildError::ZeroCapacity("output_capacity"));
        }
        if self.accept_batch == 0 {
            return Err(BuildError::ZeroCapacity("accept_batch"));
        }
        if self.max_connections > crate::id::MAX_SLOTS
            || self.input_capacity > u32::MAX as usize
            || self.output_capacity > u32::MAX as usize
        {
            return Err(BuildError::TooManyConnections);
        }
        let bytes = self.bytes_needed();
        if bytes > isize::MAX as usize {
            return Err(BuildError::StorageTooLarge);
        }
        Ok(bytes)
    }
}
