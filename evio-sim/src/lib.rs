//! The deterministic simulator for evio handlers.
//!
//! Work in progress: see the project's issue on evio-sim.

pub use evio_proto::Events;
