//! evio: event-driven networking that is fast, small, and low on memory.
//!
//! The facade over the sans-IO engine ([`proto`], `no_std` and allocation-free) and its
//! drivers. Handlers implement [`Events`].

pub use evio_proto as proto;
pub use evio_proto::{
    Action, Addr, CloseError, Config, Conn, ConnId, ConnInfo, Detached, Events, Instant,
    ListenAddr, Options, OutputFull, Server, Tick, Waker,
};
