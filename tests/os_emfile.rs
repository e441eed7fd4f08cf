//! Out of file descriptors: accept fails with EMFILE, the listener backs off (the
//! engine pauses it and retries later instead of spinning), open connections keep
//! being served, and once descriptors are free again the waiting client is accepted.
//!
//! Its own test binary, because the descriptor limit is per process.

mod os_common;

use std::fs::File;
use std::io::Write;

use evio_handlers::echo::Echo;
use os_common::*;
use rustix::net::{AddressFamily, SocketType};

fn set_nofile(soft: usize) -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to fill and then to pass back.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        // `rlim_t` is u64 on Linux and macOS, i64 on FreeBSD.
        let old = usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX);
        lim.rlim_cur = soft.try_into().expect("a limit rlim_t holds");
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        old
    }
}

fn client(fd: std::os::fd::OwnedFd, addr: std::net::SocketAddr) -> Client {
    rustix::net::connect(&fd, &addr).expect("connect");
    let c = Client::Tcp(std::net::TcpStream::from(fd));
    c.set_timeouts(LIMIT);
    c
}

#[test]
fn emfile_backs_off_keeps_serving_and_recovers() {
    let server = start(
        evio::ServerBuilder::new().max_connections(16),
        &["tcp4://127.0.0.1:0"],
        || Echo,
    );
    let mut existing = connect(server.addr(0));
    assert_eq!(existing.round_trip(b"before"), b"before");

    // Two client sockets made now, connected once every descriptor is used up, so the
    // server's accept fails with EMFILE and nothing else in this process competes for
    // a descriptor.
    let Bound::Tcp(addr) = server.addr(0).clone() else {
        unreachable!()
    };
    let socket = || rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    let (s1, s2) = (socket(), socket());
    let old = set_nofile(open_fds() + 32);
    let mut filler = Vec::new();
    while let Ok(f) = File::open("/dev/null") {
        filler.push(f);
    }
    let mut first = client(s1, addr);
    first.write_all(b"queued").unwrap();
    let mut waiting = client(s2, addr);
    waiting.write_all(b"queued").unwrap();

    // The server keeps serving the connections it has.
    for i in 0..50u32 {
        assert_eq!(existing.round_trip(&i.to_le_bytes()), i.to_le_bytes());
    }
    // ... but not the waiting client, which it could not accept (this proves the
    // exhaustion happened; an echo here would mean it did not).
    waiting.set_timeouts(std::time::Duration::from_millis(100));
    let mut buf = [0u8; 6];
    let e = std::io::Read::read(&mut waiting, &mut buf).expect_err("not accepted yet");
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    waiting.set_timeouts(LIMIT);

    // Descriptors come back: after its back-off the listener accepts the client.
    drop(filler);
    set_nofile(old);
    assert_eq!(waiting.read_n(6), b"queued");
    assert_eq!(first.read_n(6), b"queued");
    assert_eq!(existing.round_trip(b"after"), b"after");
    drop((existing, first, waiting));
    server.stop().unwrap();
}
