//! The handlers behind the example servers.
//!
//! They live in a library so that the very same values run under the real driver
//! (`examples/`) and under the simulator (`evio-sim`), as the design asks: the simulator
//! never tests a copy.

pub mod chat;
pub mod echo;
pub mod http;
pub mod redis;
pub mod redis_proxy;
#[cfg(feature = "sim")]
pub mod sim;
pub mod stop;
pub mod tcp_proxy;
