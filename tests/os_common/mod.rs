//! Shared helpers for the driver's integration tests: start a server on a thread, stop
//! it, connect clients with time-outs, temporary unix socket paths, a small PRNG.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use evio::{Events, Flow, ListenAddr, Loop, Server, Waker};

/// Every blocking step of a test gives up after this long (so a hang fails, never
/// blocks CI); it is a bound, never a pass/fail threshold.
pub const LIMIT: Duration = Duration::from_secs(20);

/// A listener's bound address, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bound {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl From<&ListenAddr<'_>> for Bound {
    fn from(a: &ListenAddr<'_>) -> Self {
        match a {
            ListenAddr::Ip(a) => Bound::Tcp(*a),
            ListenAddr::Unix(p) => Bound::Unix(PathBuf::from(p)),
        }
    }
}

/// What `serving` hands the test.
pub struct Started {
    pub addrs: Vec<Bound>,
    pub waker: Waker,
}

/// A server running on its own thread.
pub struct Running {
    pub addrs: Vec<Bound>,
    pub waker: Waker,
    stop: Arc<AtomicBool>,
    done: Receiver<Result<(), evio::Error>>,
}

impl Running {
    /// Asks the server to shut down (a server wake, as a signal handler would) and
    /// waits for `serve` to return.
    pub fn stop(self) -> Result<(), evio::Error> {
        self.stop.store(true, Ordering::SeqCst);
        self.waker.wake_server();
        self.wait()
    }

    /// Waits for `serve` to return on its own.
    pub fn wait(self) -> Result<(), evio::Error> {
        self.done
            .recv_timeout(LIMIT)
            .expect("serve did not return in time")
    }

    pub fn addr(&self, i: usize) -> &Bound {
        &self.addrs[i]
    }
}

/// Wraps a handler: reports `serving` to the test and shuts down when asked (through a
/// server wake). Every other method goes to the inner handler.
pub struct Stoppable<H> {
    inner: H,
    stop: Arc<AtomicBool>,
    started: Option<Sender<Started>>,
}

impl<H: Events> Events for Stoppable<H> {
    type Context = H::Context;

    evio::delegate_events!(self.inner, except serving, server_woken);

    fn serving(&mut self, server: Server<'_>) -> Flow {
        if let Some(tx) = self.started.take() {
            let _ = tx.send(Started {
                addrs: server.addrs().iter().map(Bound::from).collect(),
                waker: server.waker().expect("evio-os gives a waker").clone(),
            });
        }
        self.inner.serving(server)
    }
    fn server_woken(&mut self, others: &mut Loop<'_, Self::Context>) -> Flow {
        if self.stop.load(Ordering::SeqCst) {
            return Flow::Shutdown;
        }
        self.inner.server_woken(others)
    }
}

/// Starts `make()`'s handler on a new thread with `builder` on `addrs`.
pub fn start<H, F>(builder: evio::ServerBuilder, addrs: &[&str], make: F) -> Running
where
    H: Events,
    F: FnOnce() -> H + Send + 'static,
{
    try_start(builder, addrs, make).expect("server failed to start")
}

/// Like [`start`], but returns `serve`'s error if it fails before serving.
pub fn try_start<H, F>(
    builder: evio::ServerBuilder,
    addrs: &[&str],
    make: F,
) -> Result<Running, evio::Error>
where
    H: Events,
    F: FnOnce() -> H + Send + 'static,
{
    let addrs: Vec<String> = addrs.iter().map(|s| s.to_string()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let (started_tx, started_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let s = stop.clone();
    std::thread::spawn(move || {
        let handler = Stoppable {
            inner: make(),
            stop: s,
            started: Some(started_tx),
        };
        let _ = done_tx.send(builder.serve(handler, &addrs));
    });
    match started_rx.recv_timeout(LIMIT) {
        Ok(st) => Ok(Running {
            addrs: st.addrs,
            waker: st.waker,
            stop,
            done: done_rx,
        }),
        Err(_) => Err(done_rx
            .recv_timeout(LIMIT)
            .expect("serve neither started nor failed")
            .expect_err("serve returned Ok without serving")),
    }
}

/// A client socket with time-outs on both directions.
pub enum Client {
    Tcp(TcpStream),
    Unix(UnixStream),
}

pub fn connect(addr: &Bound) -> Client {
    try_connect(addr).expect("connect")
}

pub fn try_connect(addr: &Bound) -> io::Result<Client> {
    let c = match addr {
        Bound::Tcp(a) => Client::Tcp(TcpStream::connect_timeout(a, LIMIT)?),
        Bound::Unix(p) => Client::Unix(UnixStream::connect(p)?),
    };
    c.set_timeouts(LIMIT);
    Ok(c)
}

impl Client {
    pub fn set_timeouts(&self, t: Duration) {
        match self {
            Client::Tcp(s) => {
                s.set_read_timeout(Some(t)).unwrap();
                s.set_write_timeout(Some(t)).unwrap();
            }
            Client::Unix(s) => {
                s.set_read_timeout(Some(t)).unwrap();
                s.set_write_timeout(Some(t)).unwrap();
            }
        }
    }

    pub fn try_clone(&self) -> Client {
        match self {
            Client::Tcp(s) => Client::Tcp(s.try_clone().unwrap()),
            Client::Unix(s) => Client::Unix(s.try_clone().unwrap()),
        }
    }

    pub fn shutdown_write(&self) {
        let _ = match self {
            Client::Tcp(s) => s.shutdown(Shutdown::Write),
            Client::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }

    /// Reads exactly `n` bytes.
    pub fn read_n(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        self.read_exact(&mut buf).expect("read_n");
        buf
    }

    /// Reads until end of stream (or an error such as a reset, which ends it too).
    pub fn read_to_end_lossy(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match self.read(&mut buf) {
                Ok(0) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    panic!("read timed out")
                }
                Err(_) => return out,
            }
        }
    }

    /// Writes `msg` and reads exactly its length back.
    pub fn round_trip(&mut self, msg: &[u8]) -> Vec<u8> {
        self.write_all(msg).expect("write");
        self.read_n(msg.len())
    }
}

impl Read for Client {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Client::Tcp(s) => s.read(buf),
            Client::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Client {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Client::Tcp(s) => s.write(buf),
            Client::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "evio-os-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn sock(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// xorshift64*: deterministic test data and sizes.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next_u64() as u8;
        }
    }
}

/// `true` if this machine can bind ::1.
pub fn ipv6_available() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

/// Collects events from handlers on the loop thread for the test to inspect.
#[derive(Clone, Default)]
pub struct Log(pub Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }
    pub fn snapshot(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Sends `total` pseudo-random bytes in random-sized writes (1..=max_write) while a
/// second thread reads them back, and checks every byte comes back in order.
pub fn echo_stream(client: Client, seed: u64, total: usize, max_write: usize) {
    let mut reader = client.try_clone();
    let mut writer = client;
    let w = std::thread::spawn(move || {
        let mut rng = Rng::new(seed);
        let mut sizes = Rng::new(seed ^ 0xABCD);
        let mut buf = vec![0u8; max_write];
        let mut sent = 0;
        while sent < total {
            let n = (1 + sizes.below(max_write as u64) as usize).min(total - sent);
            rng.fill(&mut buf[..n]);
            writer.write_all(&buf[..n]).expect("client write");
            sent += n;
        }
        writer
    });
    let mut expect = Rng::new(seed);
    let mut got = 0;
    let mut buf = vec![0u8; 65536];
    let mut want = vec![0u8; 65536];
    while got < total {
        let n = reader.read(&mut buf).expect("client read");
        assert!(n > 0, "server closed after {got} of {total} bytes");
        expect.fill(&mut want[..n]);
        assert!(buf[..n] == want[..n], "echoed bytes differ at offset {got}");
        got += n;
    }
    let writer = w.join().expect("writer thread");
    writer.shutdown_write();
    // After our end of stream, the server closes: nothing more arrives.
    assert_eq!(reader.read_to_end_lossy().len(), 0);
}

/// Set (to anything but `0`) to make a missing external client fail the tests that
/// drive it, instead of skipping them. `.ci/run` sets it after installing the clients,
/// so CI never skips them.
pub const REQUIRE_CLIENTS: &str = "EVIO_REQUIRE_CLIENTS";

/// Whether the external client program `name` (Debian package `package`) can run.
///
/// When it cannot, the calling test should return at once: this reports it as skipped
/// on the terminal, past the test harness's output capture, with the install line.
///
/// # Panics
///
/// If the client is missing and [`REQUIRE_CLIENTS`] is set.
pub fn have_client(name: &str, package: &str) -> bool {
    let runs = std::process::Command::new(name)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    if runs {
        return true;
    }
    let install = format!("`{name}` is not installed (`apt-get install -y {package}`)");
    if std::env::var_os(REQUIRE_CLIENTS).is_some_and(|v| v != "0") {
        panic!("{install}, and {REQUIRE_CLIENTS} is set");
    }
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    // Straight to the terminal: `eprintln!` would be captured, and shown only for a
    // failing test.
    let _ = writeln!(
        io::stderr().lock(),
        "\nSKIPPED {test}: {install}; set {REQUIRE_CLIENTS}=1 to make this a failure\n"
    );
    false
}

/// How many file descriptors this process has open.
///
/// Probes each descriptor number below the soft limit (at most 65,536) with
/// `fcntl(F_GETFD)`: portable where `/proc/self/fd` (Linux) and `/dev/fd` (macOS; on
/// FreeBSD only with fdescfs mounted) are not.
pub fn open_fds() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to fill.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    let bound = i32::try_from(lim.rlim_cur).unwrap_or(i32::MAX).min(65_536);
    // SAFETY: F_GETFD only reads the descriptor's flags; a closed number fails (EBADF).
    (0..bound)
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1)
        .count()
}

/// A child process (an example server) killed and reaped when this is dropped, so a
/// test that fails half-way never leaves a server running (or holding the test
/// harness's output pipe open).
#[derive(Debug)]
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The example binary `name`, which `cargo test` builds next to the test binaries.
///
/// # Panics
///
/// If it is not built (a test run alone with `--test` does not build the examples).
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let example = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("examples").join(name))
        .expect("a target directory");
    assert!(
        example.exists(),
        "{} is not built: `cargo test` builds it, `cargo test --test …` alone does not \
         (run `cargo build --example {name}` first)",
        example.display()
    );
    example
}

/// Sends `signal` to an example server started as `child`, and asserts it stops as
/// the examples promise: exit status 0, its unix socket file `sock` removed, and
/// `client` (connected when the signal came) closed rather than left hanging.
pub fn stop_example_with_signal(
    child: &mut std::process::Child,
    signal: i32,
    sock: &str,
    client: &mut Client,
) {
    // SAFETY: kill(2) on our own child's pid, with a valid signal number.
    let killed = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(killed, 0);
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(
        !std::path::Path::new(sock).exists(),
        "socket file left behind"
    );
    assert_eq!(client.read_to_end_lossy(), b"", "the client was closed");
}

/// A raw RESP client for the redis proxy's tests: writes bytes, reads whole RESP2
/// replies.
pub struct RespClient(pub std::io::BufReader<TcpStream>);

impl RespClient {
    /// Connects to `addr`, with a 10 s read time-out.
    pub fn connect(addr: SocketAddr) -> RespClient {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        RespClient(std::io::BufReader::new(s))
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.0.get_mut().write_all(bytes).unwrap();
    }

    /// One whole reply, as its bytes.
    pub fn reply(&mut self) -> Vec<u8> {
        use std::io::BufRead;
        let mut line = Vec::new();
        self.0.read_until(b'\n', &mut line).unwrap();
        assert!(line.ends_with(b"\r\n"), "cut reply {line:?}");
        let n: i64 = String::from_utf8_lossy(&line[1..line.len() - 2])
            .parse()
            .unwrap_or(0);
        match line[0] {
            b'$' if n >= 0 => {
                let mut body = vec![0; n as usize + 2];
                self.0.read_exact(&mut body).unwrap();
                line.extend(body);
            }
            b'*' => {
                for _ in 0..n.max(0) {
                    let element = self.reply();
                    line.extend(element);
                }
            }
            _ => {}
        }
        line
    }
}

/// Appends a RESP multibulk request of `args` to `out`.
pub fn resp_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend(format!("*{}\r\n", args.len()).bytes());
    for a in args {
        out.extend(format!("${}\r\n", a.len()).bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// A chat test client's `seq`-th line: its number, the sequence, and a payload whose
/// length varies.
pub fn chat_line(client: usize, seq: usize) -> String {
    let pad = "x".repeat((client * 7 + seq * 13) % 40);
    format!("c{client} {seq} {pad}\n")
}

/// Every one of `clients` (all in the chat room already) sends `lines_each` lines of
/// [`chat_line`], cut at random byte boundaries, while it reads: each must get every
/// other client's lines once, in order, unchanged, and none of its own.
pub fn chat_every_line_once_in_order(clients: Vec<Client>, lines_each: usize) {
    let count = clients.len();
    let want_bytes: Vec<usize> = (0..count)
        .map(|me| {
            (0..count)
                .filter(|&c| c != me)
                .map(|c| {
                    (0..lines_each)
                        .map(|s| chat_line(c, s).len())
                        .sum::<usize>()
                })
                .sum()
        })
        .collect();
    let threads: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(me, client)| {
            let mut reader = client.try_clone();
            let mut writer = client;
            let want = want_bytes[me];
            let w = std::thread::spawn(move || {
                let all: String = (0..lines_each).map(|s| chat_line(me, s)).collect();
                let bytes = all.as_bytes();
                let mut rng = Rng::new(me as u64 + 1);
                let mut at = 0;
                while at < bytes.len() {
                    let n = (1 + rng.below(200) as usize).min(bytes.len() - at);
                    writer.write_all(&bytes[at..at + n]).expect("client write");
                    at += n;
                }
                writer
            });
            std::thread::spawn(move || {
                let mut got = Vec::with_capacity(want);
                let mut buf = [0u8; 65536];
                while got.len() < want {
                    let n = reader.read(&mut buf).expect("client read");
                    assert!(n > 0, "client {me} cut off after {} bytes", got.len());
                    got.extend_from_slice(&buf[..n]);
                }
                w.join().expect("writer");
                (me, got)
            })
        })
        .collect();
    for t in threads {
        let (me, got) = t.join().expect("client thread");
        let text = String::from_utf8(got).expect("lines are text");
        let mut next: std::collections::HashMap<usize, usize> = Default::default();
        for l in text.lines() {
            let mut parts = l.splitn(3, ' ');
            let from: usize = parts.next().unwrap()[1..].parse().unwrap();
            let seq: usize = parts.next().unwrap().parse().unwrap();
            assert_ne!(from, me, "client {me} got its own line back");
            let expect = next.entry(from).or_default();
            assert_eq!(
                seq, *expect,
                "client {me}: from c{from}, out of order or twice"
            );
            assert_eq!(
                format!("{l}\n"),
                chat_line(from, seq),
                "a line changed on the way"
            );
            *expect += 1;
        }
        for from in (0..count).filter(|&c| c != me) {
            assert_eq!(
                next.get(&from),
                Some(&lines_each),
                "client {me} from c{from}"
            );
        }
    }
}

/// `talker` floods the room with `total` bytes of 100-byte lines while `reader` reads
/// them as fast as it can: it must get every byte (it is never cut off).
pub fn chat_flood_to_a_fast_reader(mut talker: Client, mut reader: Client, total: usize) {
    let line = format!("{}\n", "y".repeat(99));
    let lines = total / line.len();
    let w = std::thread::spawn(move || {
        let block = line.repeat(100);
        for _ in 0..lines / 100 {
            talker.write_all(block.as_bytes()).unwrap();
        }
        talker
    });
    let mut got = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    let want = lines / 100 * 100 * 100;
    while got < want {
        let n = reader.read(&mut buf).unwrap();
        assert!(n > 0, "the reader was disconnected after {got} bytes");
        assert!(buf[..n].iter().all(|&b| b == b'y' || b == b'\n'));
        got += n;
    }
    assert_eq!(got, want);
    drop(w.join().unwrap());
}

/// `talker` sends lines, 100 at a time, each read back by `listener`, until
/// `cut_off()` says a silent member was disconnected (within [`LIMIT`]); then 100 more
/// go through: the room carries on.
pub fn chat_talk_until_a_silent_member_is_cut_off(
    talker: &mut Client,
    listener: &Client,
    cut_off: impl Fn() -> bool,
) {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(listener.try_clone());
    let started = std::time::Instant::now();
    let mut sent = 0usize;
    let mut text = String::new();
    let mut hundred = |sent: &mut usize| {
        for _ in 0..100 {
            let l = chat_line(0, *sent);
            talker.write_all(l.as_bytes()).unwrap();
            text.clear();
            reader.read_line(&mut text).unwrap();
            assert_eq!(text, l, "the listener misses nothing");
            *sent += 1;
        }
    };
    while !cut_off() {
        assert!(
            started.elapsed() < LIMIT,
            "the silent client was never disconnected"
        );
        hundred(&mut sent);
    }
    // The room goes on without it.
    hundred(&mut sent);
}

/// A test CA and a leaf certificate for `localhost` it signs (ECDSA P-256, a day),
/// made in `dir` with the `openssl` command: (CA certificate, leaf certificate chain,
/// leaf key) paths. (webpki, rustls's verifier, takes no self-signed leaf.)
///
/// # Panics
///
/// If openssl fails.
pub fn test_ca_and_leaf(dir: &TempDir) -> (String, String, String) {
    use std::process::{Command, Stdio};
    let (ca, ca_key) = (dir.sock("ca.pem"), dir.sock("ca-key.pem"));
    let (cert, key, csr) = (
        dir.sock("cert.pem"),
        dir.sock("key.pem"),
        dir.sock("leaf.csr"),
    );
    let ext = dir.sock("leaf.ext");
    std::fs::write(
        &ext,
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let steps: [Vec<&str>; 3] = [
        [
            &["req", "-x509"][..],
            &ec,
            &["-days", "1", "-subj", "/CN=evio test CA"],
        ]
        .concat()
        .into_iter()
        .chain(["-keyout", &ca_key, "-out", &ca])
        .collect(),
        [&["req"][..], &ec, &["-subj", "/CN=localhost"]]
            .concat()
            .into_iter()
            .chain(["-keyout", &key, "-out", &csr])
            .collect(),
        vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &ext,
            "-out",
            &cert,
        ],
    ];
    for step in steps {
        let made = Command::new("openssl")
            .args(&step)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(made.success(), "openssl {step:?}");
    }
    (ca, cert, key)
}

/// A rustls client configuration (ring, as evio-tls) that trusts the CA certificate in
/// the PEM file `ca`.
pub fn tls_client_config(ca: &str) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ca).unwrap())
        .unwrap();
    // (Deprecated by rustls for its lack of post-quantum key exchange, which the tests
    // do not need.)
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A port on 127.0.0.1 free right now (for an example server started as a process).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
