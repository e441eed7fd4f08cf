//! The tcp proxy (`evio_handlers::tcp_proxy::TcpProxy`) as the simulator runs it, in
//! front of the simulator's echo backends, judged by [`RelayModel`].

use core::time::Duration;

use evio_sim::{Constraints, RelayModel};

use crate::tcp_proxy::{Backend, TcpProxy, TcpProxyConfig};

/// The address the swarm's proxy connects to (every simulated backend answers any
/// address; an echo server stands behind this one).
pub const TCP_PROXY_BACKEND: &str = "127.0.0.1:6379";

/// The tcp proxy as the swarm runs it (a 100 ms connect timeout on the virtual clock,
/// no idle timeout: an idle close is not a failure the relay model excuses), with its
/// model. The proxy always passes an end of stream on, so the model is
/// [`RelayModel::half_closing`]: a client that ends its stream is still owed the
/// echo of everything it sent.
pub fn tcp_proxy_pair() -> (TcpProxy, RelayModel) {
    let config = TcpProxyConfig {
        backend: Backend::Tcp(TCP_PROXY_BACKEND.parse().expect("an address")),
        connect_timeout: Duration::from_millis(100),
        idle_timeout: None,
    };
    (TcpProxy::new(config), RelayModel::half_closing())
}

/// The buffers the tcp proxy is simulated with: two slots per client.
pub fn tcp_proxy_constraints() -> Constraints {
    Constraints {
        min_connections: 4,
        ..Constraints::none()
    }
}
