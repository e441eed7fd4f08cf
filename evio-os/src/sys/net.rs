//! Socket system calls through rustix: binding listeners, accepting, sending, options.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use evio_proto::{Addr, ConnectAddr, IoError, IoErrorKind, Options};
use rustix::io::Errno;
use rustix::net::{self, AddressFamily, SocketAddrAny, SocketFlags, SocketType, sockopt};

use crate::addr::{Family, Resolved, Spec};
use crate::error::Error;

/// A bound, listening socket.
#[derive(Debug)]
pub(crate) struct Listener {
    pub fd: OwnedFd,
    pub kind: ListenerKind,
    /// This loop's poller watches it (a loop of several does not watch a listener
    /// another loop accepts on and hands connections off from).
    pub watched: bool,
    /// What it accepts may be handed to another loop (`crate::handoff`).
    pub hands_off: bool,
}

/// What a listener listens on.
#[derive(Debug)]
pub(crate) enum ListenerKind {
    /// TCP, with the address actually bound (the real port when 0 was asked).
    Tcp(SocketAddr),
    /// A unix socket whose file this server created (removed on drop).
    Unix(UnixFile),
}

/// A unix socket file this server created; dropping the listener that bound it
/// removes the file.
#[derive(Debug)]
pub(crate) struct UnixFile {
    pub path: String,
    /// The file's device and inode once bound: only that file is removed, not another
    /// server's socket at the same path after ours was unlinked (`None`: not known).
    id: Option<(u64, u64)>,
    /// This listener bound the file (not a loop sharing another's socket), so it
    /// removes it.
    owner: bool,
}

impl Drop for UnixFile {
    fn drop(&mut self) {
        if self.owner {
            remove_if_socket(Path::new(&self.path), self.id);
        }
    }
}

/// Whether the system spreads a port's new connections over the sockets listening on
/// it with `SO_REUSEPORT` (Linux, Android; FreeBSD's `SO_REUSEPORT_LB`), by a hash of
/// each connection's addresses. Elsewhere the last socket bound takes them all.
pub(crate) const PORT_SHARING_BALANCES: bool = cfg!(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd"
));

/// How a TCP listener shares its port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reuse {
    /// Not at all.
    No,
    /// `SO_REUSEPORT`, as the address asked (`?reuseport=true`).
    Port,
    /// The system's balancing form (see [`PORT_SHARING_BALANCES`]): one listener per
    /// loop.
    Balanced,
}

/// The device and inode of the file at `path`.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Removes the socket file at `path`, if it is one (and, given `id`, that very file).
fn remove_if_socket(path: &Path, id: Option<(u64, u64)>) -> bool {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() && id.is_none_or(|id| id == (m.dev(), m.ino())) => {
            std::fs::remove_file(path).is_ok()
        }
        _ => false,
    }
}

/// How the loops of a server share its listeners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Spread {
    /// One loop: it has them all.
    One,
    /// A TCP listener per loop where the kernel balances a port's connections
    /// ([`PORT_SHARING_BALANCES`]); the others hand connections off.
    Kernel,
    /// Every listener hands its connections off.
    Handoff,
}

/// Binds every address, in order, non-blocking, for the first loop of a server whose
/// loops share them as `spread` says: a TCP listener the kernel balances shares its
/// port in the system's balancing way, so that the other loops can listen on it too
/// ([`sibling_listeners`]); any other, with several loops, hands off.
pub(crate) fn bind_all<A: AsRef<str>>(
    addrs: &[A],
    specs: &[Spec],
    backlog: i32,
    spread: Spread,
) -> Result<Vec<Listener>, Error> {
    let balanced = spread == Spread::Kernel && PORT_SHARING_BALANCES;
    let mut out = Vec::with_capacity(specs.len());
    for (text, spec) in addrs.iter().zip(specs) {
        let text = text.as_ref();
        let bind_err = |error: io::Error| Error::Bind {
            addr: text.to_owned(),
            error,
        };
        let listener = match &spec.target {
            Resolved::Tcp { addr, family } => {
                let reuse = if balanced && PORT_SHARING_BALANCES {
                    Reuse::Balanced
                } else if spec.reuseport {
                    Reuse::Port
                } else {
                    Reuse::No
                };
                let (fd, local) = bind_tcp(*addr, *family, reuse, backlog).map_err(bind_err)?;
                Listener {
                    fd,
                    kind: ListenerKind::Tcp(local),
                    watched: true,
                    hands_off: spread != Spread::One && !balanced,
                }
            }
            Resolved::Unix(path) => {
                let (fd, id) = bind_unix(path, backlog).map_err(|e| match e {
                    BindUnixError::NotASocket => Error::NotASocket {
                        addr: text.to_owned(),
                    },
                    BindUnixError::Io(e) => bind_err(e),
                })?;
                Listener {
                    fd,
                    kind: ListenerKind::Unix(UnixFile {
                        path: path.to_string_lossy().into_owned(),
                        id,
                        owner: true,
                    }),
                    watched: true,
                    hands_off: spread != Spread::One,
                }
            }
        };
        out.push(listener);
    }
    Ok(out)
}

/// The listeners of another loop of a server whose first loop listens on `first`
/// (bound from `addrs` and `specs` by [`bind_all`]): for a TCP listener the kernel
/// balances, one of its own on the same port; for one that hands off, a copy of the
/// first loop's that this loop does not watch (it has the listener's address and
/// number, and adopts what the first loop hands it).
pub(crate) fn sibling_listeners<A: AsRef<str>>(
    addrs: &[A],
    first: &[Listener],
    specs: &[Spec],
    backlog: i32,
) -> Result<Vec<Listener>, Error> {
    let mut out = Vec::with_capacity(first.len());
    for ((text, spec), l) in addrs.iter().zip(specs).zip(first) {
        let bind_err = |error: io::Error| Error::Bind {
            addr: text.as_ref().to_owned(),
            error,
        };
        let listener = match (&l.kind, &spec.target) {
            (ListenerKind::Tcp(local), Resolved::Tcp { family, .. }) if !l.hands_off => {
                let (fd, local) =
                    bind_tcp(*local, *family, Reuse::Balanced, backlog).map_err(bind_err)?;
                Listener {
                    fd,
                    kind: ListenerKind::Tcp(local),
                    watched: true,
                    hands_off: false,
                }
            }
            (kind, _) => Listener {
                fd: l.fd.try_clone().map_err(bind_err)?,
                kind: match kind {
                    ListenerKind::Tcp(local) => ListenerKind::Tcp(*local),
                    ListenerKind::Unix(f) => ListenerKind::Unix(UnixFile {
                        path: f.path.clone(),
                        id: f.id,
                        owner: false,
                    }),
                },
                watched: false,
                hands_off: true,
            },
        };
        out.push(listener);
    }
    Ok(out)
}

/// A non-blocking, close-on-exec stream socket.
fn new_socket(family: AddressFamily) -> io::Result<OwnedFd> {
    #[cfg(not(target_vendor = "apple"))]
    {
        let flags = SocketFlags::CLOEXEC | SocketFlags::NONBLOCK;
        Ok(net::socket_with(family, SocketType::STREAM, flags, None)?)
    }
    #[cfg(target_vendor = "apple")]
    {
        // No SOCK_NONBLOCK / SOCK_CLOEXEC on Apple: set them after the fact.
        let fd = net::socket_with(family, SocketType::STREAM, SocketFlags::empty(), None)?;
        rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)?;
        rustix::io::ioctl_fionbio(&fd, true)?;
        Ok(fd)
    }
}

fn bind_tcp(
    addr: SocketAddr,
    family: Family,
    reuse: Reuse,
    backlog: i32,
) -> io::Result<(OwnedFd, SocketAddr)> {
    let af = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = new_socket(af)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    match reuse {
        Reuse::No => {}
        #[cfg(target_os = "freebsd")]
        Reuse::Balanced => sockopt::set_socket_reuseport_lb(&fd, true)?,
        #[cfg(not(any(target_os = "illumos", target_os = "solaris")))]
        _ => sockopt::set_socket_reuseport(&fd, true)?,
        #[cfg(any(target_os = "illumos", target_os = "solaris"))]
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "SO_REUSEPORT is not supported here",
            ));
        }
    }
    if addr.is_ipv6() {
        // tcp6 is IPv6 only; tcp on an IPv6 address keeps the system's default.
        if family == Family::V6 {
            sockopt::set_ipv6_v6only(&fd, true)?;
        }
    }
    net::bind(&fd, &addr)?;
    net::listen(&fd, backlog)?;
    let local = SocketAddr::try_from(net::getsockname(&fd)?).map_err(io::Error::from)?;
    Ok((fd, local))
}

enum BindUnixError {
    NotASocket,
    Io(io::Error),
}

fn bind_unix(path: &PathBuf, backlog: i32) -> Result<(OwnedFd, Option<(u64, u64)>), BindUnixError> {
    // A stale socket file from an earlier run is removed; anything else at that path
    // (a directory, a regular file, a socket a server still listens on) is never
    // touched.
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if !m.file_type().is_socket() {
            return Err(BindUnixError::NotASocket);
        }
        if is_listening(path) {
            return Err(BindUnixError::Io(io::ErrorKind::AddrInUse.into()));
        }
        remove_if_socket(path, None);
    }
    let io = |e: Errno| BindUnixError::Io(e.into());
    let fd = new_socket(AddressFamily::UNIX).map_err(BindUnixError::Io)?;
    let sa = net::SocketAddrUnix::new(path.as_path()).map_err(io)?;
    net::bind(&fd, &sa).map_err(io)?;
    let id = file_id(path);
    if let Err(e) = net::listen(&fd, backlog) {
        remove_if_socket(path, id);
        return Err(io(e));
    }
    Ok((fd, id))
}

/// Whether a server listens on the unix socket at `path`: a non-blocking connect is
/// accepted, or refused only because the backlog is full (a stale file: ECONNREFUSED).
/// The live server sees the probe as a connection that ends at once.
fn is_listening(path: &Path) -> bool {
    let Ok(fd) = new_socket(AddressFamily::UNIX) else {
        return false;
    };
    let Ok(sa) = net::SocketAddrUnix::new(path) else {
        return false;
    };
    matches!(net::connect(&fd, &sa), Ok(()) | Err(Errno::AGAIN))
}

/// Accepts one connection, non-blocking and close-on-exec, with its peer address.
pub(crate) fn accept(listener: BorrowedFd<'_>) -> Result<(OwnedFd, Option<SocketAddrAny>), Errno> {
    #[cfg(not(target_vendor = "apple"))]
    {
        net::acceptfrom_with(listener, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)
    }
    #[cfg(target_vendor = "apple")]
    {
        // No accept4 on Apple; SO_NOSIGPIPE stands in for MSG_NOSIGNAL.
        let (fd, peer) = net::acceptfrom(listener)?;
        rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC)?;
        rustix::io::ioctl_fionbio(&fd, true)?;
        sockopt::set_socket_nosigpipe(&fd, true)?;
        Ok((fd, peer))
    }
}

/// Starts a non-blocking connect to `to` and returns its socket: `connect` returned
/// EINPROGRESS (or EINTR, after which the connect goes on), or succeeded at once.
///
/// # Errors
///
/// The socket could not be made, or the connect failed at once (a unix socket's full
/// backlog, EAGAIN, included: it is not retried).
pub(crate) fn connect(to: ConnectAddr<'_>) -> Result<OwnedFd, Errno> {
    let io = |e: io::Error| {
        e.raw_os_error()
            .map_or(Errno::INVAL, Errno::from_raw_os_error)
    };
    let fd = match to {
        ConnectAddr::Ip(addr) => {
            let af = if addr.is_ipv4() {
                AddressFamily::INET
            } else {
                AddressFamily::INET6
            };
            let fd = new_socket(af).map_err(io)?;
            match net::connect(&fd, &addr) {
                Ok(()) | Err(Errno::INPROGRESS | Errno::INTR) => fd,
                Err(e) => return Err(e),
            }
        }
        ConnectAddr::Unix(path) => {
            let fd = new_socket(AddressFamily::UNIX).map_err(io)?;
            let sa = net::SocketAddrUnix::new(path)?;
            match net::connect(&fd, &sa) {
                Ok(()) | Err(Errno::INPROGRESS | Errno::INTR) => fd,
                Err(e) => return Err(e),
            }
        }
    };
    // Accepted sockets get it from `accept`; Apple has no MSG_NOSIGNAL.
    #[cfg(target_vendor = "apple")]
    sockopt::set_socket_nosigpipe(&fd, true)?;
    Ok(fd)
}

/// How a connecting socket's connect ended: `Ok(true)` connected, `Ok(false)` not yet,
/// or the error it failed with (`SO_ERROR`).
pub(crate) fn connect_outcome(fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    sockopt::socket_error(fd)??;
    // No pending error: connected if it has a peer (ENOTCONN: still connecting).
    match net::getpeername(fd) {
        Ok(_) => Ok(true),
        Err(Errno::NOTCONN) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Classifies a failed connect.
pub(crate) fn connect_error(e: Errno) -> IoError {
    let kind = match e {
        Errno::CONNREFUSED | Errno::NOENT => IoErrorKind::ConnectionRefused,
        Errno::HOSTUNREACH | Errno::NETUNREACH | Errno::ADDRNOTAVAIL => IoErrorKind::Unreachable,
        _ => return io_error(e),
    };
    IoError::with_code(kind, e.raw_os_error())
}

/// The engine's address for a socket address (unix ones are all `Addr::Unix`).
pub(crate) fn to_addr(sa: Option<SocketAddrAny>) -> Addr {
    match sa.map(SocketAddr::try_from) {
        Some(Ok(a)) => Addr::Ip(a),
        _ => Addr::Unix,
    }
}

/// The connection's own local address (getsockname on the connection).
pub(crate) fn local_addr(fd: BorrowedFd<'_>) -> Addr {
    to_addr(net::getsockname(fd).ok())
}

/// Sends without raising SIGPIPE.
pub(crate) fn send(fd: BorrowedFd<'_>, bytes: &[u8]) -> Result<usize, Errno> {
    #[cfg(not(target_vendor = "apple"))]
    let flags = net::SendFlags::NOSIGNAL;
    #[cfg(target_vendor = "apple")]
    let flags = net::SendFlags::empty();
    net::send(fd, bytes, flags)
}

/// Tells a connection refused for a full pool why, best-effort and without blocking,
/// before the caller closes it: sends `message` (if any), ends the sending side, and
/// discards what the peer has already sent, so that the close does not reset the
/// connection (a reset can destroy the message before the peer reads it). A peer whose
/// input keeps coming may still see a reset.
pub(crate) fn refuse(fd: BorrowedFd<'_>, message: &[u8]) {
    if message.is_empty() {
        return;
    }
    let _ = send(fd, message);
    shutdown_write(fd);
    let mut sink = [0u8; 4096];
    // Bounded: a refusal must not hold up the loop.
    for _ in 0..16 {
        match rustix::io::read(fd, &mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

/// Applies TCP options; `keepalive_was_on` avoids a system call to turn off what was
/// never on. Failures are ignored: they are not errors of the connection.
pub(crate) fn configure(fd: BorrowedFd<'_>, options: Options, keepalive_was_on: bool) {
    let _ = sockopt::set_tcp_nodelay(fd, options.nodelay);
    match options.keepalive {
        Some(idle) => {
            let idle = idle.max(Duration::from_secs(1));
            let _ = sockopt::set_socket_keepalive(fd, true);
            // OpenBSD has no per-socket keepalive timing: the system's applies there.
            #[cfg(not(target_os = "openbsd"))]
            {
                let _ = sockopt::set_tcp_keepidle(fd, idle);
                let _ = sockopt::set_tcp_keepintvl(fd, idle);
            }
            #[cfg(target_os = "openbsd")]
            let _ = idle;
        }
        None if keepalive_was_on => {
            let _ = sockopt::set_socket_keepalive(fd, false);
        }
        None => {}
    }
}

/// Makes the next close of a socket reset the connection (SO_LINGER with a zero time):
/// the kernel discards what it has not sent and the peer gets an RST. A failure (a
/// unix socket, where there is no reset) leaves an ordinary close.
pub(crate) fn set_reset_on_close(fd: BorrowedFd<'_>) {
    let _ = sockopt::set_socket_linger(fd, Some(Duration::ZERO));
}

/// Shuts the sending side: the peer reads the end of the stream after what was sent.
/// An error (the peer is gone) shows at the next read.
pub(crate) fn shutdown_write(fd: BorrowedFd<'_>) {
    let _ = net::shutdown(fd, net::Shutdown::Write);
}

/// Makes a socket blocking (for a detached connection).
pub(crate) fn set_blocking(fd: impl AsFd) -> io::Result<()> {
    Ok(rustix::io::ioctl_fionbio(fd, false)?)
}

/// Classifies a failed read or send.
pub(crate) fn io_error(e: Errno) -> IoError {
    let kind = match e {
        Errno::CONNRESET => IoErrorKind::ConnectionReset,
        Errno::PIPE => IoErrorKind::BrokenPipe,
        Errno::CONNABORTED => IoErrorKind::ConnectionAborted,
        Errno::TIMEDOUT => IoErrorKind::TimedOut,
        _ => IoErrorKind::Other,
    };
    IoError::with_code(kind, e.raw_os_error())
}

/// Classifies a failed accept.
pub(crate) fn accept_error(e: Errno) -> evio_proto::AcceptError {
    use evio_proto::AcceptError;
    match e {
        Errno::MFILE | Errno::NFILE | Errno::NOBUFS | Errno::NOMEM => AcceptError::Exhausted,
        Errno::CONNABORTED | Errno::PROTO | Errno::PERM | Errno::INTR => AcceptError::Aborted,
        e => AcceptError::Other(Some(e.raw_os_error())),
    }
}
