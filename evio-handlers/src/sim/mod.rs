//! Reference models and workloads of the example handlers, for the simulator (the
//! `sim` feature): the same handler values the examples serve, checked against an
//! exact model of what each client should receive, under a workload of valid requests
//! mixed with garbage. The swarm tests (`evio-handlers/tests/`), the simulator's
//! command line (`--handler`) and the fuzz targets use them.

mod chat;
mod http;
mod redis;

pub use chat::{ChatModel, Member, chat_lines};
pub use http::{HttpClient, HttpModel, SIM_CONFIG, http_pair, http_requests, virtual_clock};
pub use redis::{RedisClient, RedisModel, redis_requests, sim_limits};
