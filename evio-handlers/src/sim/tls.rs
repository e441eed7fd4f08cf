//! The echo and http handlers behind TLS (`evio_tls::Tls`), their clients speaking
//! TLS through rustls on evio-tls's deterministic provider (`evio_tls::sim`), checked
//! by the same models on the plaintext.

use evio_sim::{Constraints, EchoModel, Transformed};
use evio_tls::{MIN_INPUT_CAPACITY, Tls};

use super::{HttpModel, http_constraints, http_pair};
use crate::echo::Echo;
use crate::http::Http;

/// The echo handler behind TLS on every listener, with the echo model. Make one per
/// run: its random stream restarts (see `evio_tls::sim::pair`).
pub fn echo_tls_pair() -> (Tls<Echo>, Transformed<EchoModel>) {
    let (server, clients) = evio_tls::sim::pair();
    (Tls::new(Echo, server), Transformed::new(EchoModel, clients))
}

/// The echo handler with TLS on listener 0 only: a run with several listeners mixes
/// plain and TLS clients.
pub fn echo_tls_on_listener_0() -> (Tls<Echo>, Transformed<EchoModel>) {
    let (server, clients) = evio_tls::sim::pair_on_listeners(&[0]);
    (Tls::new(Echo, server), Transformed::new(EchoModel, clients))
}

/// The http handler as the swarm runs it ([`http_pair`]) behind TLS, with its model.
pub fn http_tls_pair() -> (Tls<Http>, Transformed<HttpModel>) {
    let (server, clients) = evio_tls::sim::pair();
    let (http, model) = http_pair();
    (Tls::new(http, server), Transformed::new(model, clients))
}

/// The echo handler's buffers behind TLS: an input buffer that holds a record.
pub fn echo_tls_constraints() -> Constraints {
    evio_tls::sim::constraints()
}

/// The http handler's buffers ([`http_constraints`]), with an input buffer that holds
/// a record.
pub fn http_tls_constraints() -> Constraints {
    let http = http_constraints();
    Constraints {
        min_input_capacity: http.min_input_capacity.max(MIN_INPUT_CAPACITY),
        ..http
    }
}
