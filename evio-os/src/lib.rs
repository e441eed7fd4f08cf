//! The evio driver over real sockets (epoll/kqueue through rustix, and a std fallback).
//!
//! Work in progress: see the project's issue on evio-os. It re-exports the engine's
//! handler types so that the facade has one place to take them from.

pub use evio_proto::{Action, Conn, ConnId, ConnInfo, Events, Options, Server, Tick, Waker};
