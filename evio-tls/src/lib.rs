//! TLS for evio: [`Tls`] wraps a handler so that the connections of chosen listeners
//! speak TLS, and, if configured ([`TlsConfig::client`]), the connections it opens
//! too, as clients, through the engine's transport seam ([`evio_proto::Transport`]).
//!
//! The handler under it sees plaintext only, with the same API (`write`, `consume`,
//! `room`, `others.write`, `drained`) and `opened` once the handshake is over. The
//! session is rustls's ([`rustls::server::UnbufferedServerConnection`]), with ring as
//! its crypto provider: a small C and assembly build, fast for the ECDSA P-256 and
//! X25519 a TLS 1.3 handshake spends its time in. Records are decoded from the
//! connection's input buffer and encoded into a buffer the session keeps (one record
//! and a little), so the engine's input buffer must hold a whole record: at least
//! [`MIN_INPUT_CAPACITY`] bytes (a smaller one is refused when the engine is built).
//!
//! ```no_run
//! use evio_tls::{Tls, TlsConfig};
//! # struct Echo;
//! # impl evio_proto::Events for Echo { type Context = (); }
//! let tls = TlsConfig::from_pem_files("cert.pem".as_ref(), "key.pem".as_ref())?
//!     .with_alpn(&[b"http/1.1"]);
//! let handler = Tls::new(Echo, tls);
//! # Ok::<(), evio_tls::TlsError>(())
//! ```
//!
//! Memory: a session allocates at its start (rustls's state, some KiB, and the
//! outgoing buffer, 16.5 KiB) and frees it when the connection ends. In the steady
//! state evio's own code allocates nothing per request; rustls 0.23 allocates per
//! record it decrypts (its unbuffered API hands out each record's plaintext in a new
//! vector) and per record it encrypts.

#[cfg(feature = "sim")]
pub mod sim;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use evio_proto::{ConnId, ConnInfo, Decoded, Events, ListenerId, Transport, TransportError};
use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{ClientConfig, ServerConfig};

/// The largest TLS record on the wire: 2^14 bytes of plaintext, 256 of expansion,
/// 5 of header.
pub const MAX_RECORD: usize = (1 << 14) + 256 + 5;

/// The smallest input buffer (`Config::input_capacity`) a TLS connection works with:
/// a whole record.
pub const MIN_INPUT_CAPACITY: usize = MAX_RECORD;

/// Plaintext per record the session encodes: TLS's maximum fragment.
const MAX_FRAGMENT: usize = 1 << 14;

/// Room for one full record and the overhead of a few small ones (handshake flights
/// are larger: the buffer grows for them, once, at the handshake).
const OUTGOING_CAPACITY: usize = MAX_RECORD + 512;

/// Why TLS could not be set up.
#[derive(Debug)]
pub enum TlsError {
    /// A certificate or key file could not be read or parsed.
    Pem {
        /// The file.
        path: String,
        /// What went wrong.
        detail: String,
    },
    /// rustls refused the configuration (a key that does not match the certificate,
    /// an unsupported key type).
    Config(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Pem { path, detail } => write!(f, "{path}: {detail}"),
            TlsError::Config(e) => write!(f, "TLS configuration refused: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// A server's TLS configuration: its certificate chain and key, its application
/// protocols (ALPN), and which listeners speak TLS; and, for the connections it opens
/// (`Loop::connect`), whether they speak TLS as clients, and to which name.
#[derive(Clone, Debug)]
pub struct TlsConfig {
    /// The accepted connections' side; `None`: they stay plain.
    server: Option<Arc<ServerConfig>>,
    /// Listeners whose connections speak TLS; `None`: all of them.
    listeners: Option<Vec<ListenerId>>,
    /// The outbound connections' side, and the server name they verify and send
    /// (SNI); `None`: they stay plain.
    client: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

impl TlsConfig {
    /// A configuration from a PEM certificate chain (leaf first) and a PEM private key
    /// (PKCS#8, PKCS#1 or SEC1), TLS 1.3 and 1.2 with rustls's default cipher suites
    /// on ring, no client authentication, and no 0-RTT data.
    ///
    /// # Errors
    ///
    /// [`TlsError::Pem`] if a file cannot be read or holds no certificate or key;
    /// [`TlsError::Config`] if rustls refuses them.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let pem_error = |path: &Path, detail: String| TlsError::Pem {
            path: path.display().to_string(),
            detail,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|e| pem_error(cert, e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| pem_error(cert, e.to_string()))?;
        if certs.is_empty() {
            return Err(pem_error(cert, "no certificate in the file".into()));
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e.to_string()))?;
        // ring has no post-quantum key exchange (hence rustls's deprecation of this
        // provider); neither has the OpenSSL 3.0 it is measured against.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(TlsError::Config)?;
        Ok(Self::from_rustls(Arc::new(config)))
    }

    /// A configuration from a rustls one the caller built (client authentication,
    /// resumption, another crypto provider).
    pub fn from_rustls(server: Arc<ServerConfig>) -> Self {
        TlsConfig {
            server: Some(server),
            listeners: None,
            client: None,
        }
    }

    /// A configuration for outbound connections only: the ones the handler opens
    /// (`Loop::connect`) speak TLS as clients of `name` (sent as SNI, and the name
    /// the server's certificate must carry); accepted connections stay plain.
    pub fn client(config: Arc<ClientConfig>, name: ServerName<'static>) -> Self {
        TlsConfig {
            server: None,
            listeners: None,
            client: Some((config, name)),
        }
    }

    /// The outbound connections speak TLS too, as [`TlsConfig::client`] says.
    pub fn with_client(mut self, config: Arc<ClientConfig>, name: ServerName<'static>) -> Self {
        self.client = Some((config, name));
        self
    }

    /// Offers these application protocols (ALPN), in order of preference; a client
    /// that offers others is refused (TLS's `no_application_protocol` alert).
    pub fn with_alpn(mut self, protocols: &[&[u8]]) -> Self {
        if let Some(server) = &self.server {
            let mut server = (**server).clone();
            server.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
            self.server = Some(Arc::new(server));
        }
        self
    }

    /// Speaks TLS on these listeners only (in the order the server was given its
    /// addresses); the others stay plain. By default every listener speaks TLS.
    pub fn on_listeners(mut self, listeners: &[ListenerId]) -> Self {
        self.listeners = Some(listeners.to_vec());
        self
    }
}

/// A handler whose connections speak TLS: the wrapped handler sees their plaintext.
pub struct Tls<H> {
    inner: H,
    sessions: Sessions,
}

impl<H> Tls<H> {
    /// Wraps `inner`: its listeners' connections speak TLS as `config` says.
    pub fn new(inner: H, config: TlsConfig) -> Self {
        Tls {
            inner,
            sessions: Sessions {
                config,
                by_slot: Vec::new(),
                plain: Vec::new(),
            },
        }
    }

    /// The wrapped handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }

    /// The wrapped handler, to change.
    pub fn inner_mut(&mut self) -> &mut H {
        &mut self.inner
    }

    /// The application protocol connection `id` agreed on (ALPN), if any.
    pub fn alpn(&self, id: ConnId) -> Option<&[u8]> {
        match &self.sessions.get(id)?.conn {
            Side::Server(c) => c.alpn_protocol(),
            Side::Client(c) => c.alpn_protocol(),
        }
    }
}

impl<H: Events> Events for Tls<H> {
    type Context = H::Context;

    evio_proto::delegate_events!(self.inner, except transport);

    fn transport(&mut self) -> Option<&mut dyn Transport> {
        Some(&mut self.sessions)
    }
}

/// A session's side: a server's (accepted) or a client's (connected).
enum Side {
    Server(UnbufferedServerConnection),
    Client(UnbufferedClientConnection),
}

/// What the two sides' sessions have in common, for the code that drives either.
trait Records {
    type Data;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
}

/// `Records` for a side's unbuffered connection: its own `process_tls_records`.
macro_rules! records {
    ($conn:ty, $data:ty) => {
        impl Records for $conn {
            type Data = $data;
            fn process<'c, 'i>(
                &'c mut self,
                incoming: &'i mut [u8],
            ) -> UnbufferedStatus<'c, 'i, Self::Data> {
                self.process_tls_records(incoming)
            }
        }
    };
}

records!(UnbufferedServerConnection, ServerConnectionData);
records!(UnbufferedClientConnection, ClientConnectionData);

/// One connection's TLS session.
struct Session {
    conn: Side,
    /// Bytes of an incomplete record the last decode left.
    kept: usize,
    out: Outgoing,
}

/// Encoded bytes waiting to be sent: `bytes[start..end]`. `bytes` is zeroed once,
/// at its full length, and written in place: an encoding writes after `end` without
/// clearing the room it may use first.
struct Outgoing {
    bytes: Vec<u8>,
    start: usize,
    end: usize,
}

impl Outgoing {
    /// An empty buffer of [`OUTGOING_CAPACITY`] bytes.
    fn new() -> Self {
        Outgoing {
            bytes: vec![0; OUTGOING_CAPACITY],
            start: 0,
            end: 0,
        }
    }

    /// The bytes still to send.
    fn pending(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    /// The socket took `n` bytes of [`Outgoing::pending`].
    fn sent(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Encodes with `write` after what is pending, growing the buffer if what is
    /// written needs more room than it has (a handshake flight with certificates: at
    /// the handshake only). Returns how many bytes `write` wrote.
    fn encode<E>(
        &mut self,
        mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
        needs: impl Fn(&E) -> Option<usize>,
    ) -> Result<usize, E> {
        if self.start > 0 {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            match write(&mut self.bytes[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) => match needs(&e) {
                    Some(more) if more > self.bytes.len() - self.end => {
                        self.bytes.resize(self.end + more, 0);
                    }
                    _ => return Err(e),
                },
            }
        }
    }
}

/// How much room an encoding that failed for lack of it needs.
fn encode_needs(e: &EncodeError) -> Option<usize> {
    match e {
        EncodeError::InsufficientSize(need) => Some(need.required_size),
        _ => None,
    }
}

/// The sessions of a server's TLS connections, by slot: the engine's transport.
struct Sessions {
    config: TlsConfig,
    by_slot: Vec<Option<Box<Session>>>,
    /// Decrypted plaintext on its way into the input buffer (reused).
    plain: Vec<u8>,
}

impl Sessions {
    fn get(&self, id: ConnId) -> Option<&Session> {
        self.by_slot.get(id.slot())?.as_deref()
    }

    fn session(&mut self, id: ConnId) -> &mut Session {
        self.by_slot[id.slot()]
            .as_deref_mut()
            .expect("a TLS connection has a session")
    }
}

/// The engine's name for what rustls refused.
fn refused(e: &rustls::Error) -> TransportError {
    use rustls::Error as E;
    match e {
        E::InvalidMessage(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. }
        | E::DecryptError
        | E::PeerMisbehaved(_) => TransportError::Malformed,
        E::NoCertificatesPresented
        | E::InvalidCertificate(_)
        | E::PeerIncompatible(_)
        | E::NoApplicationProtocol
        | E::HandshakeNotComplete => TransportError::Handshake,
        _ => TransportError::Failed,
    }
}

impl Transport for Sessions {
    fn start(&mut self, info: &ConnInfo) -> Result<bool, TransportError> {
        let conn = if info.outbound {
            let Some((config, name)) = &self.config.client else {
                return Ok(false);
            };
            let conn = UnbufferedClientConnection::new(config.clone(), name.clone())
                .map_err(|_| TransportError::Start)?;
            Side::Client(conn)
        } else {
            let Some(server) = &self.config.server else {
                return Ok(false);
            };
            if let Some(listeners) = &self.config.listeners
                && !listeners.contains(&info.listener)
            {
                return Ok(false);
            }
            let conn = UnbufferedServerConnection::new(server.clone())
                .map_err(|_| TransportError::Start)?;
            Side::Server(conn)
        };
        let slot = info.id.slot();
        if self.by_slot.len() <= slot {
            self.by_slot.resize_with(slot + 1, || None);
        }
        let mut session = Box::new(Session {
            conn,
            kept: 0,
            out: Outgoing::new(),
        });
        if let Side::Client(c) = &mut session.conn {
            // A client speaks first: its hello is ready to send at once.
            self.plain.clear();
            decode_with(c, &mut session.out, &mut self.plain, &mut [])?;
        }
        self.by_slot[slot] = Some(session);
        Ok(true)
    }

    fn decode(&mut self, id: ConnId, bytes: &mut [u8]) -> Result<Decoded, TransportError> {
        let Sessions { by_slot, plain, .. } = self;
        let s = by_slot[id.slot()].as_deref_mut().expect("a session");
        plain.clear();
        let (used, ended) = match &mut s.conn {
            Side::Server(c) => decode_with(c, &mut s.out, plain, bytes)?,
            Side::Client(c) => decode_with(c, &mut s.out, plain, bytes)?,
        };
        let n = plain.len();
        // (After the peer's close_notify nothing counts: none of it is kept.)
        let kept = if ended { 0 } else { bytes.len() - used };
        // Plaintext never outgrows the records it came in (`n <= used`).
        bytes.copy_within(used..used + kept, n);
        bytes[..n].copy_from_slice(plain);
        s.kept = kept;
        Ok(Decoded {
            plain: n,
            kept,
            ended,
        })
    }

    fn kept(&self, id: ConnId) -> usize {
        self.get(id).map_or(0, |s| s.kept)
    }

    fn encode(&mut self, id: ConnId, plain: &[u8]) -> Result<usize, TransportError> {
        let Session { conn, out, .. } = self.session(id);
        match conn {
            Side::Server(c) => encode_with(c, out, plain),
            Side::Client(c) => encode_with(c, out, plain),
        }
    }

    fn outgoing(&mut self, id: ConnId) -> &[u8] {
        self.session(id).out.pending()
    }

    fn sent(&mut self, id: ConnId, n: usize) {
        self.session(id).out.sent(n);
    }

    fn established(&mut self, id: ConnId) -> bool {
        match &self.session(id).conn {
            Side::Server(c) => !c.is_handshaking(),
            Side::Client(c) => !c.is_handshaking(),
        }
    }

    fn close(&mut self, id: ConnId) {
        let Session { conn, out, .. } = self.session(id);
        match conn {
            Side::Server(c) => close_with(c, out),
            Side::Client(c) => close_with(c, out),
        }
    }

    fn end(&mut self, id: ConnId) {
        if let Some(s) = self.by_slot.get_mut(id.slot()) {
            *s = None;
        }
    }

    fn min_input(&self) -> usize {
        MIN_INPUT_CAPACITY
    }
}

/// Runs `conn`'s records in `bytes` (what was kept, then what was read): plaintext
/// into `plain`, messages to send into `out`. Returns the bytes spent, and whether the
/// peer's `close_notify` came.
fn decode_with<R: Records>(
    conn: &mut R,
    out: &mut Outgoing,
    plain: &mut Vec<u8>,
    bytes: &mut [u8],
) -> Result<(usize, bool), TransportError> {
    let mut used = 0;
    loop {
        let UnbufferedStatus { mut discard, state } = conn.process(&mut bytes[used..]);
        let state = state.map_err(|e| refused(&e))?;
        let mut more = true;
        match state {
            ConnectionState::ReadTraffic(mut records) => {
                while let Some(record) = records.next_record() {
                    let record = record.map_err(|e| refused(&e))?;
                    discard += record.discard;
                    plain.extend_from_slice(record.payload);
                }
            }
            ConnectionState::EncodeTlsData(mut message) => {
                out.encode(|o| message.encode(o), encode_needs)
                    .map_err(|_| TransportError::Failed)?;
            }
            ConnectionState::TransmitTlsData(transmit) => {
                // What is encoded goes out with the connection's next send.
                transmit.done();
            }
            ConnectionState::PeerClosed | ConnectionState::Closed => {
                return Ok((used + discard, true));
            }
            // Nothing more to read now: more records to come, or the handshake
            // waiting for the peer. (0-RTT data is off.)
            _ => more = false,
        }
        used += discard;
        if !more {
            return Ok((used, false));
        }
    }
}

/// Encodes a prefix of `plain` into `out`, one record at a time while one fits;
/// returns how much.
fn encode_with<R: Records>(
    conn: &mut R,
    out: &mut Outgoing,
    plain: &[u8],
) -> Result<usize, TransportError> {
    let mut taken = 0;
    while taken < plain.len() {
        let UnbufferedStatus { state, .. } = conn.process(&mut []);
        match state.map_err(|e| refused(&e))? {
            ConnectionState::EncodeTlsData(mut message) => {
                out.encode(|o| message.encode(o), encode_needs)
                    .map_err(|_| TransportError::Failed)?;
            }
            ConnectionState::TransmitTlsData(transmit) => transmit.done(),
            ConnectionState::WriteTraffic(mut traffic) => {
                // A record's overhead (header, content type, tag) is under 64 bytes.
                let room = OUTGOING_CAPACITY.saturating_sub(out.pending().len());
                if room <= 64 {
                    break;
                }
                let chunk = (plain.len() - taken).min(MAX_FRAGMENT).min(room - 64);
                let part = &plain[taken..taken + chunk];
                match out.encode(|o| traffic.encrypt(part, o), |_| None) {
                    Ok(_) => taken += chunk,
                    Err(EncryptError::InsufficientSize(_)) => break,
                    Err(_) => return Err(TransportError::Failed),
                }
            }
            // Still handshaking, or closed: nothing can be encoded now.
            _ => break,
        }
    }
    Ok(taken)
}

/// Queues `conn`'s `close_notify` into `out`.
fn close_with<R: Records>(conn: &mut R, out: &mut Outgoing) {
    let UnbufferedStatus { state, .. } = conn.process(&mut []);
    if let Ok(ConnectionState::WriteTraffic(mut traffic)) = state {
        // (Refused only by a session that failed: then there is nothing to say.)
        let _ = out.encode(|o| traffic.queue_close_notify(o), |_| None);
    }
}
