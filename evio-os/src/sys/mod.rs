//! System interfaces: socket calls, and one poller backend per OS behind one module
//! name (mio's layout).

pub(crate) mod net;

#[cfg_attr(any(target_os = "linux", target_os = "android"), path = "epoll.rs")]
#[cfg_attr(
    any(
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    ),
    path = "kqueue.rs"
)]
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
pub(crate) mod poller;

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
// On Linux the pipe is only used under `--cfg evio_force_pipe`; its unit test keeps it
// exercised in every build.
#[cfg_attr(
    all(any(target_os = "linux", target_os = "android"), not(evio_force_pipe)),
    allow(dead_code)
)]
mod pipe;
