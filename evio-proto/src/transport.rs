//! [`Transport`]: a per-connection transform between a socket's bytes and its
//! handler's (TLS), and what it can fail with.
//!
//! The engine keeps a transformed connection's bytes where it keeps anyone's: what was
//! read sits in the connection's input buffer (its decoded plaintext first, for the
//! handler, then the start of a record still to complete), and what its handler wrote
//! sits in its output buffer as plaintext until the engine sends it. Before a send the
//! transport encodes a prefix of that plaintext into bytes of its own (records), and
//! the engine sends those; after a read it decodes in place. So everything a handler
//! sees (`write`, `write_some`, `room`, `consume`, `others.write`, `drained`) counts
//! plaintext, and the transform's state (keys, sequence numbers, records waiting to go)
//! stays in the transport, out of the engine's slots.
//!
//! A transformed connection handshakes before its handler hears of it: `opened` runs
//! once [`Transport::established`] says so (bounded by
//! [`Config::handshake_timeout`](crate::Config::handshake_timeout)), and a handshake
//! that fails ends it without a callback. Its close sends the transport's closing
//! message ([`Transport::close`]) after its output. It cannot be detached (a socket in
//! the middle of a session is of no use on its own): a detach closes it.

use core::fmt;

use crate::{ConnId, ConnInfo};

/// A per-connection transform between socket bytes and handler bytes: TLS (the
/// `evio-tls` crate implements it with rustls) or any other record layer.
///
/// A handler provides one through [`Events::transport`](crate::Events::transport).
/// Every method names the connection; a transport keeps each connection's state from
/// [`Transport::start`] to [`Transport::end`].
pub trait Transport {
    /// Connection `info` just opened (accepted, or connected): whether it is
    /// transformed. If so its session starts here, and its handler's `opened` waits
    /// for the handshake.
    ///
    /// # Errors
    ///
    /// [`TransportError`] if the session cannot start: the connection closes at once.
    fn start(&mut self, info: &ConnInfo) -> Result<bool, TransportError>;

    /// Decodes connection `id`'s bytes in place. `bytes` holds what was kept from the
    /// last call followed by what was read since. Afterwards `bytes[..plain]` is the
    /// plaintext decoded (for the handler) and `bytes[plain..plain + kept]` the start
    /// of a record that needs more bytes; the rest is spent (headers, tags, handshake
    /// messages, which may leave bytes to send in [`Transport::outgoing`]). With
    /// `ended`, the peer closed its side: nothing after its closing message counts.
    ///
    /// # Errors
    ///
    /// [`TransportError`] for bytes the protocol refuses, or a session that failed:
    /// the connection closes with [`CloseError::Transport`](crate::CloseError::Transport).
    fn decode(&mut self, id: ConnId, bytes: &mut [u8]) -> Result<Decoded, TransportError>;

    /// The bytes the last [`Transport::decode`] kept (`Decoded::kept`): the next read
    /// goes after them.
    fn kept(&self, id: ConnId) -> usize;

    /// Encodes a prefix of `plain` (its handler's output) into bytes to send; returns
    /// how much of it. Zero when it cannot take more before [`Transport::outgoing`] is
    /// sent.
    ///
    /// # Errors
    ///
    /// [`TransportError`] if the session failed.
    fn encode(&mut self, id: ConnId, plain: &[u8]) -> Result<usize, TransportError>;

    /// The bytes waiting to be sent, in order: handshake messages, encoded records,
    /// the closing message.
    fn outgoing(&mut self, id: ConnId) -> &[u8];

    /// The socket took the first `n` bytes of [`Transport::outgoing`].
    fn sent(&mut self, id: ConnId, n: usize);

    /// The handshake is over: the connection opens to its handler.
    fn established(&mut self, id: ConnId) -> bool;

    /// Queues the closing message (TLS's `close_notify`) after what is encoded.
    fn close(&mut self, id: ConnId);

    /// The connection has gone: its state can go too.
    fn end(&mut self, id: ConnId);

    /// The smallest input buffer it works with: a whole record, which it can only
    /// decode once all of it is in the buffer. A configuration with less is refused
    /// ([`BuildError::InputTooSmall`](crate::BuildError::InputTooSmall)).
    fn min_input(&self) -> usize;
}

/// What [`Transport::decode`] made of a connection's bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Plaintext for the handler, now at the front of the bytes.
    pub plain: usize,
    /// Bytes of an incomplete record, right after the plaintext.
    pub kept: usize,
    /// The peer's closing message (TLS's `close_notify`) came: its stream has ended
    /// (after the plaintext), as if a read had found the end of it.
    pub ended: bool,
}

/// Why a transform failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportError {
    /// The session could not start (its configuration, or memory).
    Start,
    /// The peer's bytes are not valid for the protocol: a malformed record, one that
    /// does not decrypt, a message out of order.
    Malformed,
    /// The handshake failed: no version, cipher suite or application protocol in
    /// common, a certificate refused, or the peer's alert.
    Handshake,
    /// The handshake did not finish within
    /// [`Config::handshake_timeout`](crate::Config::handshake_timeout).
    HandshakeTimeout,
    /// The peer sent a fatal alert, or the session failed otherwise.
    Failed,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportError::Start => "the transport session could not start",
            TransportError::Malformed => "the peer's bytes are not valid for the transport",
            TransportError::Handshake => "the transport's handshake failed",
            TransportError::HandshakeTimeout => "the handshake did not finish in time",
            TransportError::Failed => "the transport session failed",
        })
    }
}

impl core::error::Error for TransportError {}
