//! Counters the engine keeps about what happened.

/// Counters of what the engine has done since it was built. All only grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stats {
    /// Connections accepted and opened.
    pub accepted: u64,
    /// Outbound connections that connected and opened.
    pub connected: u64,
    /// Outbound connections that failed to connect (timeouts included).
    pub connect_failures: u64,
    /// Outbound connections that did not connect within their timeout.
    pub connect_timeouts: u64,
    /// `data` calls whose unconsumed input went to wait for another connection's
    /// drain (a relay whose peer was full).
    pub relay_waits: u64,
    /// Connections this loop accepted and handed to another (`Accept::handed_off`).
    pub handed_off: u64,
    /// Connections another loop accepted and handed to this one
    /// (`Engine::handle_adopt`).
    pub adopted: u64,
    /// Posts from other loops handed to this one (`Engine::handle_post`).
    pub posts_received: u64,
    /// Posts of this loop that another loop refused (`Engine::handle_refusal`).
    pub posts_refused: u64,
    /// Connections refused because every slot was in use.
    pub refused_pool_full: u64,
    /// Connections refused during shutdown.
    pub refused_shutting_down: u64,
    /// Accept failures reported by the driver.
    pub accept_errors: u64,
    /// Times a listener was paused after an accept failure.
    pub accept_pauses: u64,
    /// Connections closed (each with one `closed` call).
    pub closed: u64,
    /// Connections detached and taken by the handler.
    pub detached: u64,
    /// Connections closed because a frame did not fit the input buffer.
    pub frame_too_large: u64,
    /// Connections closed by an I/O error.
    pub io_errors: u64,
    /// Transformed connections (TLS) whose handshake finished: they opened.
    pub handshakes: u64,
    /// Transformed connections whose handshake failed or timed out (or whose session
    /// could not start): they never opened.
    pub handshake_failures: u64,
    /// Transformed connections closed because their transport failed (handshakes
    /// included).
    pub transport_errors: u64,
    /// Leaving connections aborted after `Config::send_timeout` without send progress.
    pub send_timeouts: u64,
    /// `woken` calls made.
    pub wakes: u64,
    /// `server_woken` calls made.
    pub server_wakes: u64,
    /// `timeout` calls made.
    pub timeouts: u64,
    /// `drained` calls made.
    pub drains: u64,
    /// `tick` calls made.
    pub ticks: u64,
    /// Read requests completed with data.
    pub reads: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// Write requests completed (including short ones).
    pub writes: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Batches of sends handed to the driver together (`Output::TransmitBatch`; its
    /// entries count in `writes`).
    pub send_batches: u64,
    /// Times a handler's output had to be moved from the scratch buffer into its
    /// connection's own buffer (a partial write, or another connection's turn).
    pub output_spills: u64,
    /// Times unconsumed input was kept in a connection's own buffer.
    pub input_carries: u64,
}
