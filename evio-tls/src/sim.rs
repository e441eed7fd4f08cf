//! TLS in the simulator (feature `sim`): a [`Tls`](crate::Tls) server configuration
//! and the clients' side for `evio-sim`, both on a deterministic crypto provider, so
//! that a run over TLS replays byte for byte from its seed.
//!
//! ```
//! use evio_sim::{EchoModel, Swarm, Transformed};
//! use evio_tls::Tls;
//! # use evio_proto::{Action, Conn, Events};
//! # struct Echo;
//! # impl Events for Echo {
//! #     type Context = ();
//! #     fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
//! #         let n = conn.write_some(input);
//! #         conn.consume(n);
//! #         Action::None
//! #     }
//! # }
//!
//! let report = Swarm::new(|| {
//!     let (server, clients) = evio_tls::sim::pair();
//!     (Tls::new(Echo, server), Transformed::new(EchoModel, clients))
//! })
//! .seeds(0..4)
//! .steps(200)
//! .constraints(evio_tls::sim::constraints())
//! .run();
//! assert!(report.failures.is_empty(), "{report}");
//! ```
//!
//! What is simulated and what is not:
//!
//! - TLS 1.3 with `TLS13_AES_128_GCM_SHA256` (ring's AES-GCM and HKDF), session
//!   tickets and resumption: the records, the handshake's messages and their order
//!   are rustls's own, on both sides.
//! - The randomness is a fixed stream (restarted by each [`pair`], per thread), the
//!   clock is fixed, the key exchange is a stand-in (each side's share is 32 random
//!   bytes, the secret their XOR: deterministic, and no protection at all), and the
//!   server signs with an Ed25519 key made from a constant seed, which the clients
//!   check against its public key (Ed25519 signatures are deterministic).
//! - The certificate is an opaque placeholder that the clients' verifier accepts:
//!   certificate validation is rustls's and webpki's concern, tested there.

use std::cell::Cell;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use evio_proto::ListenerId;
use evio_sim::{ClientTransport, ClientTransports, Constraints};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    ActiveKeyExchange, CryptoProvider, GetRandomFailed, SecureRandom, SharedSecret,
    SupportedKxGroup, WebPkiSupportedAlgorithms, verify_tls13_signature_with_raw_key,
};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, SubjectPublicKeyInfoDer,
    UnixTime,
};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::time_provider::TimeProvider;
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, NamedGroup, PeerMisbehaved,
    ServerConfig, SignatureScheme,
};

use crate::{MIN_INPUT_CAPACITY, TlsConfig};

/// The placeholder the server sends as its certificate.
const CERTIFICATE: &[u8] = b"evio-sim: not a certificate";

/// The name the clients ask for (SNI).
const SERVER_NAME: &str = "evio.sim";

/// The seed of the server's Ed25519 key: a constant, so signatures replay.
const KEY_SEED: [u8; 32] = [0x5e; 32];

/// Where the fixed random stream restarts at each [`pair`].
const RANDOM_START: u64 = 0x7e57_ab1e_5eed_0001;

thread_local! {
    /// The state of the random stream: one per thread, as a swarm runs each of its
    /// seeds on one thread.
    static RANDOM_STATE: Cell<u64> = const { Cell::new(RANDOM_START) };
}

/// A server configuration and the clients' side for one simulated run: every
/// listener speaks TLS. The random stream restarts, so two runs of the same seed see
/// the same bytes; make a pair per run (in the swarm's `make`).
pub fn pair() -> (TlsConfig, Box<dyn ClientTransports>) {
    pair_on(None)
}

/// [`pair`] with TLS on the listeners in `listeners` only (by index, in the order
/// the simulator numbers them); clients of the others stay plain, so one run mixes
/// both.
pub fn pair_on_listeners(listeners: &[usize]) -> (TlsConfig, Box<dyn ClientTransports>) {
    pair_on(Some(listeners.to_vec()))
}

fn pair_on(listeners: Option<Vec<usize>>) -> (TlsConfig, Box<dyn ClientTransports>) {
    RANDOM_STATE.with(|s| s.set(RANDOM_START));
    let provider = Arc::new(provider());
    let time: Arc<dyn TimeProvider> = Arc::new(FixedTime);
    let key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            ed25519_pkcs8(&KEY_SEED),
        )))
        .expect("ring loads an Ed25519 PKCS#8 v1 key");
    let spki = key
        .public_key()
        .expect("ring's Ed25519 key has a public key")
        .into_owned();
    let certified = Arc::new(CertifiedKey::new(
        vec![CertificateDer::from(CERTIFICATE.to_vec())],
        key,
    ));
    let server = ServerConfig::builder_with_details(provider.clone(), time.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("the simulated provider supports TLS 1.3")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(OneKey(certified)));
    let verifier = SimVerifier {
        spki,
        algorithms: provider.signature_verification_algorithms,
    };
    let client = ClientConfig::builder_with_details(provider, time)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("the simulated provider supports TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let mut config = TlsConfig::from_rustls(Arc::new(server));
    if let Some(listeners) = &listeners {
        let ids: Vec<ListenerId> = listeners
            .iter()
            .filter_map(|&l| ListenerId::new(l))
            .collect();
        config = config.on_listeners(&ids);
    }
    let clients = SimClients {
        config: Arc::new(client),
        listeners,
    };
    (config, Box::new(clients))
}

/// Constraints for a swarm over TLS: an input buffer that holds a whole record
/// (smaller ones are refused when the engine is built), anything else as drawn.
pub fn constraints() -> Constraints {
    Constraints {
        min_input_capacity: MIN_INPUT_CAPACITY,
        ..Constraints::none()
    }
}

/// The simulated crypto provider: ring's AES-128-GCM suite, the stand-in key
/// exchange, the fixed random stream, ring's signatures.
fn provider() -> CryptoProvider {
    // (ring's provider is deprecated for lacking post-quantum key exchange, which the
    // simulation replaces anyway.)
    #[allow(deprecated)]
    let ring = rustls::crypto::ring::default_provider();
    #[allow(deprecated)]
    let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
    CryptoProvider {
        cipher_suites: vec![suite],
        kx_groups: vec![&SimKeyExchange],
        secure_random: &SimRandom,
        ..ring
    }
}

/// An Ed25519 private key as PKCS#8 v1: the fixed prefix, then the 32-byte seed.
fn ed25519_pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    [&PREFIX[..], &seed[..]].concat()
}

/// The fixed random stream (splitmix64 over the thread's state).
#[derive(Debug)]
struct SimRandom;

impl SecureRandom for SimRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        RANDOM_STATE.with(|state| {
            for chunk in buf.chunks_mut(8) {
                let mut z = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
                state.set(z);
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^= z >> 31;
                chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
            }
        });
        Ok(())
    }
}

/// The stand-in key exchange, under X25519's name: a share is 32 random bytes and the
/// secret is the XOR of both shares, which either side computes alike.
#[derive(Debug)]
struct SimKeyExchange;

impl SupportedKxGroup for SimKeyExchange {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, rustls::Error> {
        let mut share = [0u8; 32];
        SimRandom
            .fill(&mut share)
            .map_err(|_| rustls::Error::FailedToGetRandomBytes)?;
        Ok(Box::new(SimShare(share)))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

struct SimShare([u8; 32]);

impl ActiveKeyExchange for SimShare {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, rustls::Error> {
        if peer.len() != self.0.len() {
            return Err(PeerMisbehaved::InvalidKeyShare.into());
        }
        let secret: Vec<u8> = self.0.iter().zip(peer).map(|(a, b)| a ^ b).collect();
        Ok(SharedSecret::from(secret))
    }

    fn pub_key(&self) -> &[u8] {
        &self.0
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

/// A fixed clock: tickets never expire within a run.
#[derive(Debug)]
struct FixedTime;

impl TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        // 2026-01-01T00:00:00Z.
        Some(UnixTime::since_unix_epoch(Duration::from_secs(
            1_767_225_600,
        )))
    }
}

/// The server's one key, whatever the client asks for.
#[derive(Debug)]
struct OneKey(Arc<CertifiedKey>);

impl ResolvesServerCert for OneKey {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// The clients' verifier: the placeholder certificate, and signatures made with the
/// server's key (checked for real).
#[derive(Debug)]
struct SimVerifier {
    spki: SubjectPublicKeyInfoDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for SimVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == CERTIFICATE {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // (Never asked: both sides of the simulation speak TLS 1.3 only.)
        Err(rustls::Error::General(
            "the simulated clients speak TLS 1.3 only".into(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        _cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature_with_raw_key(message, &self.spki, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// The clients' side: a rustls client per connection to a TLS listener.
struct SimClients {
    config: Arc<ClientConfig>,
    listeners: Option<Vec<usize>>,
}

impl ClientTransports for SimClients {
    fn connect(&mut self, listener: usize) -> Option<Box<dyn ClientTransport>> {
        if let Some(listeners) = &self.listeners
            && !listeners.contains(&listener)
        {
            return None;
        }
        let name = ServerName::try_from(SERVER_NAME).expect("a DNS name");
        let mut conn = ClientConnection::new(self.config.clone(), name)
            .expect("the simulated client configuration is valid");
        // What a script sends before the handshake is over waits whole (by default
        // rustls takes 64 KiB and refuses the rest).
        conn.set_buffer_limit(None);
        Some(Box::new(SimClient {
            conn,
            sent_early: false,
        }))
    }
}

/// One simulated client's session (rustls's buffered client).
struct SimClient {
    conn: ClientConnection,
    /// Plaintext was sent before the handshake was over (rustls holds it until then).
    sent_early: bool,
}

impl SimClient {
    /// Everything the session has to send, onto `wire`.
    fn flush(&mut self, wire: &mut Vec<u8>) {
        while self.conn.wants_write() {
            if self.conn.write_tls(wire).is_err() {
                break;
            }
        }
    }
}

impl ClientTransport for SimClient {
    fn start(&mut self, wire: &mut Vec<u8>) {
        self.flush(wire);
    }

    fn send(&mut self, plain: &[u8], wire: &mut Vec<u8>) {
        self.sent_early |= self.conn.is_handshaking();
        // (Held without limit until the handshake is over: it cannot fail.)
        let _ = self.conn.writer().write_all(plain);
        self.flush(wire);
    }

    fn receive(
        &mut self,
        mut received: &[u8],
        plain: &mut Vec<u8>,
        wire: &mut Vec<u8>,
    ) -> Result<(), String> {
        let mut buf = [0u8; 4096];
        while !received.is_empty() {
            let n = self
                .conn
                .read_tls(&mut received)
                .map_err(|e| e.to_string())?;
            self.conn.process_new_packets().map_err(|e| e.to_string())?;
            loop {
                match self.conn.reader().read(&mut buf) {
                    Ok(0) => break, // the server's close_notify
                    Ok(n) => plain.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.to_string()),
                }
            }
            if n == 0 {
                break;
            }
        }
        self.flush(wire);
        Ok(())
    }

    fn close(&mut self, wire: &mut Vec<u8>) {
        self.conn.send_close_notify();
        self.flush(wire);
    }

    fn holding(&self) -> bool {
        self.sent_early && self.conn.is_handshaking()
    }
}
