//! The engine's error types: small, `Copy`, one per kind of operation.

use core::fmt;

/// How an I/O operation on a connection failed, as the driver classifies the OS error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IoErrorKind {
    /// The peer reset the connection (ECONNRESET).
    ConnectionReset,
    /// Writing to a connection the peer already closed (EPIPE).
    BrokenPipe,
    /// The connection was aborted (ECONNABORTED).
    ConnectionAborted,
    /// The connection timed out (ETIMEDOUT, for example after failed keepalive probes).
    TimedOut,
    /// Nothing listens at the address connected to (ECONNREFUSED; for a unix socket
    /// path, also ENOENT).
    ConnectionRefused,
    /// The address connected to cannot be reached (EHOSTUNREACH, ENETUNREACH,
    /// EADDRNOTAVAIL).
    Unreachable,
    /// Any other error.
    Other,
}

/// An I/O error on a connection: its kind and, when the OS gave one, its raw code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IoError {
    /// The classified kind.
    pub kind: IoErrorKind,
    /// The raw OS error number, if there is one (the simulator uses the usual Linux
    /// numbers).
    pub code: Option<i32>,
}

impl IoError {
    /// An error of `kind` with no OS code.
    pub const fn new(kind: IoErrorKind) -> Self {
        IoError { kind, code: None }
    }

    /// An error of `kind` with the OS error number `code`.
    pub const fn with_code(kind: IoErrorKind, code: i32) -> Self {
        IoError {
            kind,
            code: Some(code),
        }
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            IoErrorKind::ConnectionReset => "connection reset by peer",
            IoErrorKind::BrokenPipe => "broken pipe",
            IoErrorKind::ConnectionAborted => "connection aborted",
            IoErrorKind::TimedOut => "connection timed out",
            IoErrorKind::ConnectionRefused => "connection refused",
            IoErrorKind::Unreachable => "address unreachable",
            IoErrorKind::Other => "i/o error",
        };
        match self.code {
            Some(code) => write!(f, "{what} (os error {code})"),
            None => f.write_str(what),
        }
    }
}

impl core::error::Error for IoError {}

/// Why a connection was closed with an error, as reported to
/// [`Events::closed`](crate::Events::closed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseError {
    /// Reading or writing the socket failed.
    Io(IoError),
    /// The input buffer filled up with a frame the handler could not consume: the
    /// handler consumed nothing although the buffer was full and no output was pending.
    FrameTooLarge {
        /// The input buffer's capacity in bytes.
        capacity: usize,
    },
    /// It was leaving with output its peer did not take for
    /// [`Config::send_timeout`](crate::Config::send_timeout): the output was discarded
    /// and the connection reset.
    SendTimeout,
    /// An outbound connection could not be made (refused, unreachable, reset); it
    /// never opened.
    Connect(IoError),
    /// An outbound connection did not connect within the timeout given to
    /// [`Loop::connect`](crate::Loop::connect); it never opened.
    ConnectTimeout,
    /// Its transform ([`Transport`](crate::Transport): TLS) failed: bytes it refused,
    /// or a session that failed. (A transformed connection whose handshake fails
    /// never opened, and its handler hears nothing of it.)
    Transport(crate::TransportError),
}

impl fmt::Display for CloseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseError::Io(e) => write!(f, "{e}"),
            CloseError::Connect(e) => write!(f, "connect failed: {e}"),
            CloseError::ConnectTimeout => f.write_str("connect timed out"),
            CloseError::SendTimeout => {
                f.write_str("send timed out: the peer took no output while the connection closed")
            }
            CloseError::FrameTooLarge { capacity } => {
                write!(
                    f,
                    "frame too large: {capacity} bytes buffered, none consumed"
                )
            }
            CloseError::Transport(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for CloseError {}

/// How accepting a connection failed, as the driver classifies the OS error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AcceptError {
    /// Out of file descriptors or kernel memory (EMFILE, ENFILE, ENOBUFS, ENOMEM): the
    /// engine pauses the listener for a back-off period instead of spinning.
    Exhausted,
    /// The connection went away before it was accepted (ECONNABORTED, EPROTO, EPERM,
    /// EINTR): the engine simply accepts the next one.
    Aborted,
    /// Any other error, with its OS code if known: treated like `Exhausted`, since
    /// retrying at once would most likely fail the same way.
    Other(Option<i32>),
}

impl fmt::Display for AcceptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcceptError::Exhausted => f.write_str("accept failed: out of descriptors or memory"),
            AcceptError::Aborted => f.write_str("accept failed: connection aborted"),
            AcceptError::Other(Some(code)) => write!(f, "accept failed (os error {code})"),
            AcceptError::Other(None) => f.write_str("accept failed"),
        }
    }
}

impl core::error::Error for AcceptError {}

/// Why the engine refused a connection the driver accepted. The driver closes the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refused {
    /// Every connection slot is in use.
    PoolFull,
    /// The engine is shutting down or has shut down.
    ShuttingDown,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::PoolFull => f.write_str("connection refused: the connection pool is full"),
            Refused::ShuttingDown => f.write_str("connection refused: the server is shutting down"),
        }
    }
}

impl core::error::Error for Refused {}

/// A driver reported something the engine cannot take: readiness for a connection
/// that is not open, or for a listener it was not given.
///
/// The engine ignores the call and returns this; nothing in its state changed. (What
/// the driver reports about the engine's own requests is typed: see
/// [`Output`](crate::Output).)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DriverError {
    /// The connection id is unknown, closed, or from an earlier use of its slot.
    StaleConn,
    /// The listener is not one the engine was started with.
    UnknownListener,
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DriverError::StaleConn => "unknown or stale connection id",
            DriverError::UnknownListener => "unknown listener",
        })
    }
}

impl core::error::Error for DriverError {}

/// The output buffer has too little room for a write; nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OutputFull {
    /// Bytes the write needed.
    pub needed: usize,
    /// Bytes of room there were.
    pub room: usize,
}

impl fmt::Display for OutputFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "output buffer full: {} bytes needed, {} free",
            self.needed, self.room
        )
    }
}

impl core::error::Error for OutputFull {}

/// The engine could not be built from the configuration and storage given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BuildError {
    /// A capacity in the configuration is zero.
    ZeroCapacity(&'static str),
    /// `max_connections` does not fit a connection id (at most 2^24 slots per loop,
    /// [`MAX_SLOTS`](crate::MAX_SLOTS)), or a buffer
    /// capacity is above 4 GiB.
    TooManyConnections,
    /// The byte storage the configuration needs is larger than the address space.
    StorageTooLarge,
    /// Heap storage for the tables, or address space for the buffers, could not be
    /// allocated (by `Engine::allocate`, with the `alloc` feature).
    OutOfMemory,
    /// The slot storage has the wrong length.
    SlotStorage {
        /// Slots the configuration needs.
        needed: usize,
        /// Slots given.
        given: usize,
    },
    /// The byte storage is too small.
    ByteStorage {
        /// Bytes the configuration needs.
        needed: usize,
        /// Bytes given.
        given: usize,
    },
    /// The waker has fewer slots than the engine.
    WakerTooSmall {
        /// Slots the configuration needs.
        needed: usize,
        /// Slots the waker has.
        given: usize,
    },
    /// The input buffer cannot hold a whole record of the handler's transport
    /// ([`Transport::min_input`](crate::Transport::min_input)): a record it could
    /// never complete would stall its connection.
    InputTooSmall {
        /// Bytes of input buffer the transport needs (`input_capacity` at least).
        needed: usize,
        /// `input_capacity` configured.
        given: usize,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroCapacity(what) => write!(f, "{what} must be at least 1"),
            BuildError::TooManyConnections => {
                f.write_str("max_connections is above 2^24 or a buffer is above 4 GiB")
            }
            BuildError::StorageTooLarge => {
                f.write_str("the buffer storage needed is larger than the address space")
            }
            BuildError::OutOfMemory => f.write_str(
                "out of memory (or address space) for the connection tables and buffers",
            ),
            BuildError::SlotStorage { needed, given } => {
                write!(
                    f,
                    "slot storage has {given} slots, the configuration needs {needed}"
                )
            }
            BuildError::ByteStorage { needed, given } => {
                write!(
                    f,
                    "byte storage has {given} bytes, the configuration needs {needed}"
                )
            }
            BuildError::WakerTooSmall { needed, given } => {
                write!(
                    f,
                    "waker has {given} slots, the configuration needs {needed}"
                )
            }
            BuildError::InputTooSmall { needed, given } => {
                write!(
                    f,
                    "input_capacity is {given} bytes, the transport (TLS) needs at least \
                     {needed} to hold a whole record"
                )
            }
        }
    }
}

impl core::error::Error for BuildError {}

/// The engine was asked to start with more listeners than it supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TooManyListeners {
    /// Listeners given.
    pub given: usize,
    /// The most the engine supports ([`MAX_LISTENERS`](crate::MAX_LISTENERS)).
    pub max: usize,
}

impl fmt::Display for TooManyListeners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} listeners given, at most {} supported",
            self.given, self.max
        )
    }
}

impl core::error::Error for TooManyListeners {}
