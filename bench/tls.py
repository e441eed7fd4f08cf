"""The http example over TLS against nginx over TLS, one worker each, interleaved.

Both serve the same 14-byte body on loopback with the same certificate (ECDSA P-256,
made here with openssl), TLS 1.3 only, keep-alive without a request limit, no access
log. wrk measures:

  - "https keep-alive": `wrk -t1 -c50` over TLS, each connection's handshake once,
    then requests on it: requests/s and the server's CPU time per request;
  - "https handshakes": `wrk -t1 -c50` with `Connection: close` on every request, so
    every request is a new connection with a full TLS 1.3 handshake (ECDHE X25519 and
    an ECDSA P-256 signature; wrk resumes no sessions): handshakes (= requests) per
    second and CPU per handshake.

evio's TLS is rustls 0.23 on ring; nginx's is OpenSSL. Prints the medians with their
ratios to nginx and writes bench/results/tls.json and the chart bench/tls.png.

    python3 bench/tls.py                   # 5 rounds of 5 s runs (about 2 minutes)
    ROUNDS=1 SECONDS=1 python3 bench/tls.py   # a smoke run
"""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "5"))
SECONDS = int(os.environ.get("SECONDS", "5"))
CONNS = 50
EVIO_PORT, NGINX_PORT = 8094, 8095
CLOSE_LUA = 'wrk.headers["Connection"] = "close"\n'
MODES = [("https keep-alive", False), ("https handshakes", True)]

def certificate(tmp):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


def run_wrk(port, script):
    argv = ["wrk", "-t1", f"-c{CONNS}", f"-d{SECONDS}s"]
    if script:
        argv += ["-s", script]
    out = subprocess.run([*argv, f"https://127.0.0.1:{port}/"],
                         capture_output=True, text=True, check=True).stdout
    return common.parse_wrk(out)


def main():
    common.need(["wrk", "nginx", "openssl"], ["wrk", "nginx-light", "openssl"])
    exe = common.build_example("http-server")
    tmp = tempfile.mkdtemp(prefix="evio-bench-tls-")
    cert, key = certificate(tmp)
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(common.nginx_conf(tmp, NGINX_PORT, connections=4096, tls=(cert, key)))
    close_lua = os.path.join(tmp, "close.lua")
    with open(close_lua, "w") as f:
        f.write(CLOSE_LUA)
    evio_argv = [exe, "--host", "127.0.0.1", "--port", str(EVIO_PORT),
                 "--keepalive-requests", "1000000000", "--tls-cert", cert, "--tls-key", key,
                 *common.example_args()]
    modes = [(label, close_lua if close else None) for label, close in MODES]
    # (With `Connection: close` wrk may count the servers' closes as socket errors.)
    results, nginx_version = common.http_against_nginx(
        evio_argv, conf, tmp, {"evio": EVIO_PORT, "nginx": NGINX_PORT}, ROUNDS, modes,
        run_wrk, errors_ok=lambda script: script is not None)
    rows = common.summarize(results, "evio", "nginx")
    date = time.strftime("%Y-%m-%d")
    meta = {"date": date, "rounds": ROUNDS, "seconds": SECONDS, "connections": CONNS,
            "nginx": nginx_version, "cpus": os.cpu_count(), "certificate": "ECDSA P-256",
            "tls": "1.3", "evio_tls": "rustls 0.23 (ring)",
            "command": "python3 bench/tls.py", "example_args": common.example_args()}
    print(f"\nhttp example over TLS vs nginx {nginx_version} over TLS (one worker), {date}, "
          f"{os.cpu_count()} cores shared by client and server, medians of {ROUNDS} rounds "
          f"of {SECONDS} s (ratio: evio / nginx)\n")
    common.print_table(rows, "evio", "nginx")
    os.makedirs(os.path.join(common.ROOT, "bench", "results"), exist_ok=True)
    common.save(rows, meta, os.path.join(common.ROOT, "bench", "results",
                                         common.results_name("tls") + ".json"))
    if ROUNDS > 1 and not common.example_args():
        common.chart(rows, "evio", "nginx",
                     f"wrk over TLS 1.3, {CONNS} connections, {date}, {os.cpu_count()} "
                     f"cores (client and server share them)",
                     os.path.join(common.ROOT, "bench", "tls.png"),
                     names=("evio http-server example (rustls, ring)",
                            f"nginx {nginx_version} (OpenSSL), 1 worker"),
                     group=lambda test: test)


if __name__ == "__main__":
    main()
