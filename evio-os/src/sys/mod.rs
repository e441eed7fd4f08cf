//! System interfaces: socket calls, and one poller backend per OS behind one module
//! name (mio's layout).

pub(crate) mod net;

#[cfg_attr(evio_epoll, path = "epoll.rs")]
#[cfg_attr(evio_kqueue, path = "kqueue.rs")]
#[cfg(evio_poller)]
pub(crate) mod poller;

#[cfg(evio_poller)]
// On Linux the pipe is only used under `--cfg evio_force_pipe`; its unit test keeps it
// exercised in every build.
#[cfg_attr(all(evio_epoll, not(evio_force_pipe)), allow(dead_code))]
mod pipe;
