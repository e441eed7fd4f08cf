//! A unix socket path where a server is listening is not stale: a second server must
//! not remove it and take the path over.

mod os_common;

use evio_handlers::echo::Echo;
use os_common::*;

fn a_live_socket_path_is_not_taken_over(builder: fn() -> evio::ServerBuilder) {
    let dir = TempDir::new("live");
    let unix = format!("unix://{}", dir.sock("live.sock"));
    let a = start(builder(), &[&unix], || Echo);
    match try_start(builder(), &[&unix], || Echo) {
        Ok(b) => {
            b.stop().unwrap();
            a.stop().unwrap();
            panic!("a second server took over the path of a live one");
        }
        Err(e) => assert!(
            matches!(e, evio::Error::Bind { ref addr, ref error }
                if *addr == unix && error.kind() == std::io::ErrorKind::AddrInUse),
            "{e}"
        ),
    }
    // The first server still answers on its path.
    let mut c = connect(a.addr(0));
    assert_eq!(c.round_trip(b"still mine"), b"still mine");
    drop(c);
    a.stop().unwrap();
    assert!(!dir.path().join("live.sock").exists());
}

#[test]
fn a_live_socket_path_is_not_taken_over_default() {
    a_live_socket_path_is_not_taken_over(evio::ServerBuilder::new);
}

#[test]
fn a_live_socket_path_is_not_taken_over_poll() {
    a_live_socket_path_is_not_taken_over(|| {
        evio::ServerBuilder::new().backend(evio::Backend::Poll)
    });
}

fn stopping_leaves_another_servers_socket_file_alone(builder: fn() -> evio::ServerBuilder) {
    let dir = TempDir::new("replaced");
    let path = dir.path().join("s.sock");
    let unix = format!("unix://{}", path.display());
    let a = start(builder(), &[&unix], || Echo);
    // Someone removes the first server's file and a second server binds the path.
    std::fs::remove_file(&path).unwrap();
    let b = start(builder(), &[&unix], || Echo);
    a.stop().unwrap();
    // The first server removes only the file it created, which is gone already.
    assert!(path.exists(), "the second server's socket file was removed");
    let mut c = connect(b.addr(0));
    assert_eq!(c.round_trip(b"b"), b"b");
    drop(c);
    b.stop().unwrap();
    assert!(!path.exists());
}

#[test]
fn stopping_leaves_another_servers_socket_file_alone_default() {
    stopping_leaves_another_servers_socket_file_alone(evio::ServerBuilder::new);
}

#[test]
fn stopping_leaves_another_servers_socket_file_alone_poll() {
    stopping_leaves_another_servers_socket_file_alone(|| {
        evio::ServerBuilder::new().backend(evio::Backend::Poll)
    });
}
