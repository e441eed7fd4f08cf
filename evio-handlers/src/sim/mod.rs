//! Reference models and workloads of the example handlers, for the simulator (the
//! `sim` feature): the same handler values the examples serve, checked against an
//! exact model of what each client should receive, under a workload of valid requests
//! mixed with garbage; each handler's setup (`*_pair`: the handler as the simulator
//! runs it, with its model; `*_constraints`: the buffers it needs), and the echo and
//! http handlers behind TLS (`*_tls_pair`). The swarm tests
//! (`evio-handlers/tests/`), the simulator's command line (`--handler`) and the fuzz
//! targets ([`fuzz`]) use them.

mod chat;
pub mod fuzz;
mod http;
mod redis;
mod redis_proxy;
mod tcp_proxy;
mod tls;

pub use chat::{
    ChatLoopsModel, ChatModel, Member, chat_constraints, chat_lines, chat_loops, chat_pair,
    chat_tagged_lines,
};
pub use http::{
    HttpClient, HttpModel, SIM_CONFIG, http_constraints, http_pair, http_requests, virtual_clock,
};
pub use redis::{
    RedisClient, RedisModel, SIM_MAXMEMORY, redis_constraints, redis_pair, redis_requests,
    sim_limits,
};
pub use redis_proxy::{
    REDIS_PROXY_BACKENDS, RedisProxyClient, RedisProxyModel, redis_proxy_constraints,
    redis_proxy_pair, redis_proxy_requests,
};
pub use tcp_proxy::{TCP_PROXY_BACKEND, tcp_proxy_constraints, tcp_proxy_pair};
pub use tls::{
    echo_tls_constraints, echo_tls_on_listener_0, echo_tls_pair, http_tls_constraints,
    http_tls_pair,
};
