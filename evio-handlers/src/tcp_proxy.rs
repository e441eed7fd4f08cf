//! An L4 proxy: every client connection gets its own connection to one backend, and
//! the bytes go both ways unchanged, with backpressure and half-close.
//!
//! - **Backpressure.** What one side sends is written to the other side's output
//!   buffer as far as it fits; the rest stays unconsumed, and the engine makes the
//!   sending side wait for the other's drain (once its input buffer is full it is not
//!   read, so TCP slows its peer down). Memory is the two connections' buffers, however fast one side is
//!   and however slow the other; nothing is allocated per byte.
//! - **Before the backend answers.** What the client sends while the backend is still
//!   connecting waits in the backend connection's output buffer.
//! - **Half-close.** A side that ends its stream has the end passed on to the other
//!   (`shutdown(SHUT_WR)` after everything it sent); the other direction goes on. When
//!   both directions are over, both connections close.
//! - **Failures.** A backend that cannot be reached (refused, unreachable, or no answer
//!   within the connect timeout) closes its client at once; the proxy keeps serving
//!   the others. A side that fails (reset) or idles past the idle timeout closes, and
//!   its partner is closed after what was already relayed to it is sent.

use core::net::SocketAddr;
use core::time::Duration;

use evio_proto::{
    Action, CloseError, Conn, ConnId, ConnInfo, ConnectAddr, ConnectError, Detached, Events, Flow,
    Loop,
};

/// Where the proxy connects to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A unix socket path.
    Unix(String),
}

impl Backend {
    /// The address as the engine takes it.
    pub fn addr(&self) -> ConnectAddr<'_> {
        match self {
            Backend::Tcp(a) => ConnectAddr::Ip(*a),
            Backend::Unix(p) => ConnectAddr::Unix(p),
        }
    }
}

/// The proxy's settings.
#[derive(Clone, Debug)]
pub struct TcpProxyConfig {
    /// The backend.
    pub backend: Backend,
    /// How long a connect to the backend may take before the client is closed.
    pub connect_timeout: Duration,
    /// A connection (client or backend) that receives nothing for this long is closed,
    /// and its partner with it; `None`: never.
    pub idle_timeout: Option<Duration>,
}

/// Counters, for the example's log and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpProxyStats {
    /// Clients accepted.
    pub clients: u64,
    /// Clients closed because their backend could not be reached.
    pub backend_failures: u64,
    /// Clients refused because no connection slot was left for their backend.
    pub refused: u64,
}

/// One side of a proxied pair: the other side's id (`None` until the backend
/// connection exists, and for a client whose backend could not be started).
#[derive(Clone, Copy, Debug, Default)]
pub struct Side {
    partner: Option<ConnId>,
}

/// The L4 proxy handler.
#[derive(Debug)]
pub struct TcpProxy {
    config: TcpProxyConfig,
    stats: TcpProxyStats,
}

impl TcpProxy {
    /// A proxy to `config.backend`.
    pub fn new(config: TcpProxyConfig) -> Self {
        TcpProxy {
            config,
            stats: TcpProxyStats::default(),
        }
    }

    /// What it has done so far.
    pub fn stats(&self) -> TcpProxyStats {
        self.stats
    }

    fn touch(&self, conn: &mut Conn<'_, Side>) {
        if let Some(idle) = self.config.idle_timeout {
            conn.set_timeout(Some(idle));
        }
    }
}

impl Events for TcpProxy {
    type Context = Side;

    fn opened(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        self.touch(conn);
        if conn.info().outbound {
            // The backend's context was given at the connect.
            return Action::None;
        }
        self.stats.clients += 1;
        let client = conn.id();
        let to = self.config.backend.addr();
        let timeout = self.config.connect_timeout;
        let side = Side {
            partner: Some(client),
        };
        match conn.others().connect(to, timeout, side) {
            Ok(backend) => {
                conn.context().partner = Some(backend);
                Action::None
            }
            Err(ConnectError::PoolFull | ConnectError::ShuttingDown) => {
                self.stats.refused += 1;
                Action::Close
            }
            Err(_) => {
                self.stats.backend_failures += 1;
                Action::Close
            }
        }
    }

    fn data(&mut self, conn: &mut Conn<'_, Side>, input: &[u8]) -> Action {
        self.touch(conn);
        let Some(partner) = conn.context().partner else {
            return Action::Close;
        };
        // What does not fit stays unconsumed; the cut-short write makes this side wait
        // for the partner's drain.
        match conn.others().write_some(partner, input) {
            Ok(n) => {
                conn.consume(n);
                Action::None
            }
            // The partner is gone, or its sending side is shut: nowhere to relay to.
            Err(_) => Action::Close,
        }
    }

    fn input_ended(&mut self, conn: &mut Conn<'_, Side>) -> Action {
        let partner = conn.context().partner;
        match partner {
            // Pass the end on after what was relayed before; this side stays open for
            // the other direction, and closes by itself once that one ends too.
            Some(partner) if conn.others().shutdown_write(partner).is_ok() => Action::None,
            _ => Action::Close,
        }
    }

    fn timeout(&mut self, _conn: &mut Conn<'_, Side>) -> Action {
        Action::Close
    }

    /// The proxy never detaches a side itself; a wrapper that does takes the pair
    /// apart, and the other side is closed.
    fn detached(
        &mut self,
        _: &ConnInfo,
        side: &mut Side,
        _: Detached<'_>,
        others: &mut Loop<'_, Side>,
    ) -> Flow {
        if let Some(partner) = side.partner {
            let _ = others.close(partner);
        }
        Flow::Continue
    }

    fn closed(
        &mut self,
        info: &ConnInfo,
        side: Side,
        error: Option<CloseError>,
        others: &mut Loop<'_, Side>,
    ) -> Flow {
        if matches!(
            error,
            Some(CloseError::Connect(_) | CloseError::ConnectTimeout)
        ) {
            self.stats.backend_failures += 1;
        }
        let _ = info;
        if let Some(partner) = side.partner {
            // After a clean end both close by themselves; otherwise (a failure, a
            // timeout, a connect that never came) the partner goes too, once what was
            // relayed to it is sent. (Refused when it is already closing.)
            let _ = others.close(partner);
        }
        Flow::Continue
    }
}
