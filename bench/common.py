"""What the benchmark scripts share: installing their tools, starting and stopping
servers, reading a process's CPU time, medians, tables and the chart.

Server CPU is utime + stime of the server process from /proc/PID/stat, read before
and after each run: it counts everything the server did for the run and nothing the
client did, which on a 2-core machine shared by client and server is the fairer
figure (requests/s is capped by the client).
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
EXAMPLES = os.path.join(ROOT, "target", "release", "examples")
TICK = os.sysconf("SC_CLK_TCK")


def need(commands, packages):
    """Installs `packages` (Debian) when any of `commands` is missing."""
    if not all(shutil.which(c) for c in commands):
        install(packages, commands)


def install(packages, missing):
    """Installs `packages` (Debian), which provide `missing`; as root only."""
    if os.geteuid() != 0:
        sys.exit(f"missing {missing}: apt-get install -y {' '.join(packages)}")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def have_matplotlib():
    """Installs matplotlib if it is missing (for the chart); False if it cannot be."""
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        pass
    # This interpreter's own pip first (a pyenv python does not see Debian's
    # python3-matplotlib), then Debian's package for Debian's python.
    attempts = [[sys.executable, "-m", "pip", "install", "--quiet", "matplotlib"]]
    if os.geteuid() == 0 and shutil.which("apt-get"):
        attempts.append(["apt-get", "install", "-y", "-qq", "python3-matplotlib"])
    for cmd in attempts:
        if subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode != 0:
            continue
        try:
            import matplotlib  # noqa: F401
            return True
        except ImportError:
            pass
    print("matplotlib not available: no chart", file=sys.stderr)
    return False


def example_args():
    """Extra arguments for the example server from EVIO_ARGS (for example
    `EVIO_ARGS="--coalesce-us 0"` to measure it without wake coalescing)."""
    return os.environ.get("EVIO_ARGS", "").split()


def results_name(base):
    """`base` (e.g. "redis"), or "base-args" when EVIO_ARGS changes the example's
    options, so such a run keeps the default run's results and chart."""
    return base + ("-args" if example_args() else "")


def build_example(name):
    """Builds one example in release mode; returns its path. With EVIO_EXAMPLES set,
    takes the binary from that directory as it is (to measure another build)."""
    prebuilt = os.environ.get("EVIO_EXAMPLES")
    if prebuilt:
        return os.path.join(prebuilt, name)
    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", name],
                   cwd=ROOT, check=True)
    return os.path.join(EXAMPLES, name)


def cpu_seconds(pid):
    """utime + stime of process `pid`, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def wait_for_port(port, proc, timeout=10.0):
    """Waits until something accepts on 127.0.0.1:`port`."""
    import socket
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on port {port}")


def stop(proc):
    """Stops a server (SIGTERM, then SIGKILL)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def summarize(results, ours, theirs):
    """Per test: medians of requests/s and CPU µs per request for both servers, and
    ours/theirs ratios."""
    rows = []
    for test, by_server in results.items():
        a, b = by_server[ours], by_server[theirs]
        ra, rb = median(a["rps"]), median(b["rps"])
        ca, cb = median(a["cpu_us"]), median(b["cpu_us"])
        rows.append({
            "test": test,
            f"{ours}_rps": ra, f"{theirs}_rps": rb, "rps_ratio": ra / rb,
            f"{ours}_cpu_us": ca, f"{theirs}_cpu_us": cb, "cpu_ratio": ca / cb,
            "rounds": len(a["rps"]),
        })
    return rows


def print_table(rows, ours, theirs):
    """A markdown table of `summarize`'s rows."""
    print(f"| test | {ours} req/s | {theirs} req/s | ratio | {ours} CPU µs/req | "
          f"{theirs} CPU µs/req | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['test']} | {r[f'{ours}_rps']:,.0f} | {r[f'{theirs}_rps']:,.0f} | "
              f"{r['rps_ratio']:.2f}x | {r[f'{ours}_cpu_us']:.3f} | "
              f"{r[f'{theirs}_cpu_us']:.3f} | {r['cpu_ratio']:.2f}x |")


def save(rows, meta, json_path):
    with open(json_path, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)


def chart(rows, ours, theirs, title, png_path, names=None, group=None):
    """Requests/s and CPU per request, side by side, one pair of bars per test, each
    bar labelled with its value; `group(test)` splits the tests into rows of plots
    with scales of their own (pipelined and not differ thirtyfold); `names`: the two
    servers' names in the legend."""
    if not have_matplotlib():
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    shown = names or (ours, theirs)
    groups = {}
    for r in rows:
        groups.setdefault(group(r["test"]) if group else "", []).append(r)
    fig, axes = plt.subplots(len(groups), 2, figsize=(12, 3.6 * len(groups)),
                             squeeze=False)
    w = 0.38
    for (gname, grows), (ax1, ax2) in zip(groups.items(), axes):
        x = list(range(len(grows)))
        for ax, key, label, fmt in [
                (ax1, "rps", "requests/s (higher is better)", "{:,.0f}"),
                (ax2, "cpu_us", "server CPU µs per request (lower is better)", "{:.2f}")]:
            for offset, server, colour, name in [(-w / 2, ours, "#2b7bba", shown[0]),
                                                 (w / 2, theirs, "#c0392b", shown[1])]:
                values = [r[f"{server}_{key}"] for r in grows]
                bars = ax.bar([i + offset for i in x], values, w, label=name, color=colour)
                ax.bar_label(bars, [fmt.format(v) for v in values], fontsize=7, padding=1)
            ax.set_xticks(x)
            ax.set_xticklabels([r["test"] for r in grows], fontsize=8)
            ax.set_title(f"{gname}: {label}" if gname else label, fontsize=10)
            ax.margins(y=0.25)
            ax.set_xlim(-0.9, len(grows) - 0.1)
            ax.legend(fontsize=8, loc="upper right")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    print(f"chart: {os.path.relpath(png_path, ROOT)}")


def free_ports(count):
    """`count` distinct TCP ports that are free on 127.0.0.1 now (the kernel picks
    them; another program could still take one before it is used, which the server's
    start-up then reports)."""
    import socket
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def find_example(name):
    """The release binary of example `name`, or None if there is none. With
    EVIO_EXAMPLES set, looks only in that directory; otherwise builds the example
    when examples/`name`.rs exists (a build failure is an error), and else takes an
    already built target/release/examples/`name` (saying so)."""
    prebuilt = os.environ.get("EVIO_EXAMPLES")
    if prebuilt:
        path = os.path.join(prebuilt, name)
        return path if os.path.isfile(path) else None
    if os.path.isfile(os.path.join(ROOT, "examples", name + ".rs")):
        return build_example(name)
    path = os.path.join(EXAMPLES, name)
    if os.path.isfile(path):
        print(f"no examples/{name}.rs on this branch: using the binary {path} as it is",
              file=sys.stderr)
        return path
    return None


NGINX_CONF = """
daemon off;
master_process {master};
worker_processes {workers};
error_log {dir}/error.log error;
pid {dir}/nginx-{port}.pid;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {dir};
    proxy_temp_path {dir};
    fastcgi_temp_path {dir};
    uwsgi_temp_path {dir};
    scgi_temp_path {dir};
    keepalive_requests 1000000000;
    server {{
        listen 127.0.0.1:{port}{ssl} reuseport;{tls}
        location / {{
            default_type text/plain;
            return 200 "Hello World!\\r\\n";
        }}
    }}
}}
"""


def nginx_conf(dir, port, workers=1, connections=1024, tls=None):
    """The nginx configuration the http benchmarks measure: `worker_processes` workers
    (one: no master process, so the measured PID is the worker), keep-alive without a
    request limit, no access log, and `return 200 "Hello World!\\r\\n"` on 127.0.0.1:`port`
    (temporary files and the log in `dir`); with `tls` = (certificate, key) paths, TLS
    1.3 only with them."""
    ssl, tls_lines = "", ""
    if tls:
        ssl = " ssl"
        tls_lines = (f"\n        ssl_certificate {tls[0]};\n        ssl_certificate_key {tls[1]};"
                     "\n        ssl_protocols TLSv1.3;")
    return NGINX_CONF.format(dir=dir, port=port, workers=workers, connections=connections,
                             master="on" if workers > 1 else "off", ssl=ssl, tls=tls_lines)


def parse_wrk(out):
    """Requests/s, requests, non-2xx responses and socket errors from wrk's report."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return rps, total, (int(non2xx.group(1)) if non2xx else 0), (errors.group(1) if errors else "")


def http_against_nginx(evio_argv, conf, tmp, ports, rounds, modes, run, errors_ok=None):
    """The http example (`evio_argv`) and nginx (configuration file `conf`, prefix
    `tmp`), side by side: both start and listen on `ports` ("evio", "nginx"), then each
    round runs `run(port, extra)` for every (label, extra) of `modes` against each,
    evio first in even rounds and nginx first in odd ones, and both stop. Returns the
    results (per label, per server: requests/s and CPU µs per request of every round)
    and nginx's version. A run with non-2xx responses, or socket errors unless
    `errors_ok(extra)`, ends the benchmark."""
    servers = {
        "evio": subprocess.Popen(evio_argv, stdout=subprocess.DEVNULL),
        "nginx": subprocess.Popen(["nginx", "-c", conf, "-p", tmp],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    }
    nginx_version = subprocess.run(["nginx", "-v"], capture_output=True,
                                   text=True).stderr.strip().split("/")[-1]
    results = {}
    try:
        for name, proc in servers.items():
            wait_for_port(ports[name], proc)
        for rnd in range(rounds):
            order = ["evio", "nginx"] if rnd % 2 == 0 else ["nginx", "evio"]
            for label, extra in modes:
                for name in order:
                    proc = servers[name]
                    c0 = cpu_seconds(proc.pid)
                    rps, total, non2xx, errors = run(ports[name], extra)
                    c1 = cpu_seconds(proc.pid)
                    if non2xx:
                        sys.exit(f"{name} {label}: {non2xx} non-2xx responses")
                    if errors and not (errors_ok and errors_ok(extra)):
                        sys.exit(f"{name} {label}: socket errors: {errors}")
                    r = results.setdefault(label, {}).setdefault(
                        name, {"rps": [], "cpu_us": []})
                    r["rps"].append(rps)
                    r["cpu_us"].append((c1 - c0) * 1e6 / total)
            print(f"round {rnd + 1}/{rounds} done", file=sys.stderr)
    finally:
        for proc in servers.values():
            stop(proc)
    return results, nginx_version
