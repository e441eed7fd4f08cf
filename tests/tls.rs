//! The echo and http examples over TLS, as a user runs them: `--tls-cert` and
//! `--tls-key` with a certificate a test CA signs (both made at test time with
//! openssl), then curl (`--cacert`), `openssl s_client` and wrk over TLS as the
//! clients; a client that speaks plain TCP to a TLS port is refused and everyone else
//! goes on; an input buffer too small for a record is refused with the minimum.

mod os_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use os_common::*;

/// A test CA and a leaf for `localhost` it signs: (dir, CA path for the clients'
/// `--cacert`, leaf certificate, leaf key).
fn certificate() -> (TempDir, String, String, String) {
    let dir = TempDir::new("tls");
    let (ca, cert, key) = test_ca_and_leaf(&dir);
    (dir, ca, cert, key)
}

/// Starts example `name` on `port` with TLS and `extra` arguments, once its line says
/// it listens with TLS.
fn start_tls(name: &str, port: u16, cert: &str, key: &str, extra: &[&str]) -> KillOnDrop {
    let mut child = KillOnDrop(
        Command::new(example_binary(name))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--tls-cert", cert, "--tls-key", key])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the example starts"),
    );
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(
        line.contains("listening on") && line.contains("TLS)"),
        "{line:?}"
    );
    child
}

/// curl's body and status for `urls` over one connection, trusting the CA `ca`.
fn curl(ca: &str, urls: &[String]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert", ca])
        .args(["-w", "[%{http_code} %{ssl_verify_result}]"])
        .args(urls)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let codes = text
        .match_indices('[')
        .map(|(i, _)| text[i..].split(']').next().unwrap().to_owned() + "]")
        .collect::<Vec<_>>()
        .join("");
    (text, codes)
}

#[test]
fn curl_gets_200_over_https_and_keeps_the_connection() {
    if !have_client("curl", "curl") || !have_client("openssl", "openssl") {
        return;
    }
    let (_dir, ca, cert, key) = certificate();
    let port = free_port();
    let _server = start_tls("http-server", port, &cert, &key, &[]);
    let url = format!("https://localhost:{port}/");
    let (body, codes) = curl(&ca, &[url.clone(), url.clone(), url]);
    assert_eq!(body.matches("Hello World!").count(), 3, "{body:?}");
    // 200, and the certificate verified (0) for each.
    assert_eq!(codes, "[200 0][200 0][200 0]");
}

#[test]
fn a_plain_client_on_the_tls_port_is_refused_and_others_go_on() {
    if !have_client("curl", "curl") || !have_client("openssl", "openssl") {
        return;
    }
    let (_dir, ca, cert, key) = certificate();
    let port = free_port();
    let _server = start_tls("http-server", port, &cert, &key, &[]);
    let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain.set_read_timeout(Some(LIMIT)).unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    // Closed (a reset or an end), never answered in plaintext.
    let _ = plain.read_to_end(&mut got);
    assert!(!got.starts_with(b"HTTP/"), "{got:?}");
    let (_, codes) = curl(&ca, &[format!("https://localhost:{port}/")]);
    assert_eq!(codes, "[200 0]");
}

#[test]
fn openssl_s_client_echoes_through_the_echo_example() {
    if !have_client("openssl", "openssl") {
        return;
    }
    let (_dir, ca, cert, key) = certificate();
    let port = free_port();
    let _server = start_tls("echo-server", port, &cert, &key, &[]);
    let mut client = KillOnDrop(
        Command::new("openssl")
            .args(["s_client", "-quiet", "-CAfile", &ca])
            .args(["-connect", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_client runs"),
    );
    // Lines up to 40 KB in all: several records each way, records cut by TCP.
    let mut sent = Vec::new();
    for i in 0..400 {
        sent.extend(format!("{i:>5} {}\n", "x".repeat(i % 200)).bytes());
    }
    let mut stdout = client.stdout.take().unwrap();
    let want = sent.len();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut got = vec![0; want];
        let result = stdout.read_exact(&mut got).map(|()| got);
        let _ = tx.send(result);
    });
    client.stdin.as_mut().unwrap().write_all(&sent).unwrap();
    let got = rx
        .recv_timeout(LIMIT)
        .expect("the echo came back in time")
        .expect("s_client read it");
    if got != sent {
        let at = got.iter().zip(&sent).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "the echo differs at byte {at} of {}: got {:?}, sent {:?}",
            sent.len(),
            String::from_utf8_lossy(&got[at.saturating_sub(20)..(at + 40).min(got.len())]),
            String::from_utf8_lossy(&sent[at.saturating_sub(20)..(at + 40).min(sent.len())])
        );
    }
}

#[test]
fn wrk_over_https_gets_only_200s() {
    if !have_client("wrk", "wrk") || !have_client("openssl", "openssl") {
        return;
    }
    let (_dir, _ca, cert, key) = certificate();
    let port = free_port();
    let _server = start_tls("http-server", port, &cert, &key, &[]);
    let out = Command::new("wrk")
        .args(["-t1", "-c8", "-d1s", &format!("https://127.0.0.1:{port}/")])
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let requests: u64 = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .map(|(n, _)| n.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(requests > 0, "{text}");
    assert!(!text.contains("Socket errors"), "{text}");
    assert!(!text.contains("Non-2xx"), "{text}");
}

#[test]
fn an_input_buffer_too_small_for_a_record_is_refused_with_the_minimum() {
    if !have_client("openssl", "openssl") {
        return;
    }
    let (_dir, _ca, cert, key) = certificate();
    let out = Command::new(example_binary("echo-server"))
        .args(["--host", "127.0.0.1", "--port", &free_port().to_string()])
        .args(["--tls-cert", &cert, "--tls-key", &key, "--input", "16384"])
        .stdin(Stdio::null())
        .output()
        .expect("the example runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("16645"), "{err}");
}

#[test]
fn a_missing_key_file_is_a_clear_error() {
    let out = Command::new(example_binary("http-server"))
        .args(["--port", &free_port().to_string()])
        .args([
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/k.pem",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("the example runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
}
