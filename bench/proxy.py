"""The two proxy examples against their real counterparts, side by side, interleaved.

Starts two real `redis-server --save '' --appendonly no` backends on free loopback
ports, then two pairs of proxies in front of them:

  - `examples/tcp-proxy` (evio) against HAProxy (`nbthread 1`, `mode tcp`,
    `maxconn 4000`), both forwarding to the first Redis;
  - `examples/redis-proxy` (evio) against twemproxy (nutcracker: `redis: true`,
    `hash: fnv1a_64`, `distribution: ketama`, `server_connections: 1`,
    `auto_eject_hosts: false`), both in front of the two Redis.

Before measuring, `SET k <value>` and `GET k` through every proxy must give the value
back (and the value must be in a backend). Then `redis-benchmark -c 50 --csv` runs set
and get, pipelined (-P 32, -n 1,000,000) and not (-P 1, -n 200,000), alternating each
evio proxy with its counterpart over several rounds. Every run records requests/s, the
proxy's CPU per request and the backends' CPU per request (utime + stime from
/proc/PID/stat, before and after the run, divided by the requests), and checks that
the backends executed at least the requests redis-benchmark counted. Prints medians,
the ratios evio / counterpart and the targets they meet (PASS) or not (MISS), and
writes bench/results/proxy.json and the chart bench/proxy.png.

An evio proxy that is not there (no examples/NAME.rs on this branch and no binary) is
reported as not measured and skipped, and so are both with --only-anchors.

    python3 bench/proxy.py                  # 3 rounds
    python3 bench/proxy.py --rounds 7
    python3 bench/proxy.py --quick          # a smoke run: n / 10 (also QUICK=1);
                                            # writes results/proxy-quick.json and
                                            # proxy-quick.png, not the full run's
    python3 bench/proxy.py --only-anchors   # HAProxy and twemproxy only
    python3 bench/proxy.py --keyspace 100000  # random keys (redis-benchmark -r), so
                                            # that the redis proxies use both backends
                                            # (results/proxy-keyspace.json)
    EVIO_EXAMPLES=dir python3 bench/proxy.py  # take the evio binaries from dir, unbuilt
"""
import argparse
import csv
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

CLIENTS = 50
# In redis-benchmark's own order: set first, so that get finds the key.
TESTS = ["set", "get"]
# (pipeline depth, requests per run)
DEPTHS = [(32, 1_000_000), (1, 200_000)]
BENCHMARK_TIMEOUT = 600  # seconds; a proxy that stalls fails the script instead

# The two pairs: the evio example and the server it is measured against.
PAIRS = [
    {"key": "tcp", "evio": "tcp-proxy", "anchor": "haproxy", "anchor_label": "HAProxy"},
    {"key": "redis", "evio": "redis-proxy", "anchor": "twemproxy",
     "anchor_label": "twemproxy"},
]
# (pair, depth) -> (requests/s ratio at least, proxy CPU per request ratio at most)
TARGETS = {
    ("tcp", 32): (1.0, 0.95),
    ("tcp", 1): (1.0, 0.8),
    ("redis", 32): (3.0, 0.3),
    ("redis", 1): (1.0, 0.8),
}

HAPROXY_CONF = """\
global
    nbthread 1
    maxconn 4000

defaults
    mode tcp
    maxconn 4000
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend redis_in
    bind 127.0.0.1:{port}
    default_backend redis_out

backend redis_out
    server redis1 {backend}
"""

NUTCRACKER_CONF = """\
proxy:
  listen: 127.0.0.1:{port}
  redis: true
  hash: fnv1a_64
  distribution: ketama
  server_connections: 1
  auto_eject_hosts: false
  servers:
{servers}
"""


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", "3")),
                   help="interleaved rounds (default 3, or $ROUNDS)")
    p.add_argument("--quick", action="store_true", default=os.environ.get("QUICK") == "1",
                   help="a smoke run: a tenth of the requests (also QUICK=1)")
    p.add_argument("--only-anchors", action="store_true",
                   help="measure HAProxy and twemproxy only, not the evio proxies")
    p.add_argument("--keyspace", type=int, default=0,
                   help="redis-benchmark -r N (random keys); default: its one fixed key")
    return p.parse_args()


def install_tools():
    """Installs Redis, redis-benchmark, HAProxy and twemproxy from Debian if missing."""
    common.need(["redis-server", "redis-benchmark", "redis-cli"],
                ["redis-server", "redis-tools"])
    common.need(["haproxy", "nutcracker"], ["haproxy", "nutcracker"])


def tool_versions():
    """The versions of Redis, HAProxy and twemproxy, as they print them."""
    def out(cmd):
        r = subprocess.run(cmd, capture_output=True, text=True)
        return (r.stdout + r.stderr).strip()
    redis = out(["redis-server", "--version"]).split()[2].removeprefix("v=")
    # "HAProxy version 2.6.12-1+deb12u4 2025/...": the upstream part.
    haproxy = out(["haproxy", "-v"]).splitlines()[0].split()[2].split("-")[0]
    # "This is nutcracker-0.5.0"
    nutcracker = out(["nutcracker", "-V"]).splitlines()[0].rsplit("-", 1)[-1]
    return {"redis": redis, "haproxy": haproxy, "twemproxy": nutcracker}


def start(name, argv, port, tmp, procs):
    """Starts a server with its output in tmp/`name`.log, adds it to `procs` (so that
    it is stopped whatever happens) and waits until it accepts on `port`."""
    log_path = os.path.join(tmp, name + ".log")
    with open(log_path, "w") as log:
        # A session of its own: Ctrl-C reaches this script only, which then stops
        # the servers itself (rather than reporting the ones that died first).
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    procs.append(proc)
    try:
        common.wait_for_port(port, proc)
    except SystemExit:
        print(f"{name} did not start: {' '.join(argv)}\n--- {log_path}:\n"
              f"{read_tail(log_path)}", file=sys.stderr)
        raise
    return proc


def read_tail(path, chars=3000):
    with open(path, errors="replace") as f:
        return f.read()[-chars:]


def start_redis(name, port, tmp, procs):
    """A real Redis on 127.0.0.1:`port`, without persistence."""
    return start(name, ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                        "--save", "", "--appendonly", "no", "--daemonize", "no",
                        "--dir", tmp], port, tmp, procs)


def start_haproxy(port, backend_port, tmp, procs):
    """HAProxy, one thread, TCP mode, forwarding 127.0.0.1:`port` to the backend."""
    conf = os.path.join(tmp, "haproxy.cfg")
    with open(conf, "w") as f:
        f.write(HAPROXY_CONF.format(port=port, backend=f"127.0.0.1:{backend_port}"))
    check = subprocess.run(["haproxy", "-c", "-f", conf], capture_output=True, text=True)
    if check.returncode != 0:
        sys.exit(f"haproxy rejects {conf}:\n{check.stdout}{check.stderr}")
    # -db: in the foreground, no master process: the PID is the proxy's.
    return start("haproxy", ["haproxy", "-db", "-f", conf], port, tmp, procs)


def start_twemproxy(port, stats_port, backend_ports, tmp, procs):
    """twemproxy in the foreground, in front of the backends, its stats on
    127.0.0.1:`stats_port`, its log in the temporary directory."""
    conf = os.path.join(tmp, "nutcracker.yml")
    servers = "\n".join(f"   - 127.0.0.1:{b}:1" for b in backend_ports)
    with open(conf, "w") as f:
        f.write(NUTCRACKER_CONF.format(port=port, servers=servers))
    check = subprocess.run(["nutcracker", "-t", "-c", conf], capture_output=True,
                           text=True)
    if check.returncode != 0:
        sys.exit(f"nutcracker rejects {conf}:\n{check.stdout}{check.stderr}")
    return start("twemproxy", ["nutcracker", "-c", conf, "-s", str(stats_port),
                               "-a", "127.0.0.1",
                               "-o", os.path.join(tmp, "nutcracker-own.log")],
                 port, tmp, procs)


def start_evio(name, exe, port, backend_ports, tmp, procs):
    """An evio proxy example: --port P --backend 127.0.0.1:B for each backend."""
    argv = [exe, "--port", str(port)]
    for b in backend_ports:
        argv += ["--backend", f"127.0.0.1:{b}"]
    return start(name, argv + common.example_args(), port, tmp, procs)


def redis_cli(port, *args):
    """One command through redis-cli; its reply as redis-cli prints it (raw)."""
    r = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
                       capture_output=True, text=True, timeout=10)
    return (r.stdout + r.stderr).strip()


def check_proxy(name, port, backend_ports):
    """SET k and GET k through the proxy must give the value back, and the value must
    be in one of the backends (not kept by the proxy); exits otherwise."""
    value = f"v-{name}-{uuid.uuid4().hex[:8]}"
    set_reply = redis_cli(port, "SET", "k", value)
    get_reply = redis_cli(port, "GET", "k")
    in_backends = [redis_cli(b, "GET", "k") for b in backend_ports]
    if set_reply != "OK" or get_reply != value or value not in in_backends:
        sys.exit(f"{name} on port {port} does not proxy: SET k {value} -> {set_reply!r}, "
                 f"GET k -> {get_reply!r}, GET k on the backends -> {in_backends!r}")
    print(f"{name}: SET k {value} / GET k -> {get_reply} (in a backend): ok",
          file=sys.stderr)


def backend_calls(test, backend_ports):
    """How many `test` commands (set or get) the backends have executed so far."""
    total = 0
    for b in backend_ports:
        for line in redis_cli(b, "INFO", "commandstats").splitlines():
            if line.startswith(f"cmdstat_{test}:"):
                total += int(line.split("calls=", 1)[1].split(",", 1)[0])
    return total


def run_benchmark(port, test, depth, n, keyspace):
    """One redis-benchmark run of one test; returns requests/s."""
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "--csv", "-t", test,
           "-P", str(depth), "-n", str(n), "-c", str(CLIENTS)]
    if keyspace:
        cmd += ["-r", str(keyspace)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=BENCHMARK_TIMEOUT)
    except subprocess.TimeoutExpired:
        sys.exit(f"redis-benchmark took more than {BENCHMARK_TIMEOUT} s: {' '.join(cmd)}")
    for row in csv.reader(r.stdout.splitlines()):
        if r.returncode == 0 and row and row[0] == test.upper():
            return float(row[1])
    sys.exit(f"redis-benchmark failed ({r.returncode}): {' '.join(cmd)}\n"
             f"{r.stdout}{r.stderr}")


def measure(server, test, depth, n, backend_ports, keyspace):
    """One run against one proxy: requests/s, the proxy's and the backends' CPU µs per
    request, and the commands the backends executed (at least n, or it exits)."""
    proxy_pid = server["proc"].pid
    backend_pids = [p.pid for p in server["backends"]]
    calls0 = backend_calls(test, backend_ports)
    c0 = common.cpu_seconds(proxy_pid)
    b0 = sum(common.cpu_seconds(pid) for pid in backend_pids)
    rps = run_benchmark(server["port"], test, depth, n, keyspace)
    c1 = common.cpu_seconds(proxy_pid)
    b1 = sum(common.cpu_seconds(pid) for pid in backend_pids)
    forwarded = backend_calls(test, backend_ports) - calls0
    if forwarded < n:
        sys.exit(f"{server['name']}: redis-benchmark counted {n} {test} replies but the "
                 f"backends executed {forwarded} {test} commands")
    return {"rps": rps, "proxy_cpu_us": (c1 - c0) * 1e6 / n,
            "backends_cpu_us": (b1 - b0) * 1e6 / n, "forwarded": forwarded}


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def summarize(results, depths, measured, versions):
    """One row per pair, depth and test: the medians of both proxies, the ratios
    evio / counterpart and whether they meet the targets (None: not measured)."""
    rows = []
    for pair in PAIRS:
        for depth, n in depths:
            for test in TESTS:
                runs = results[(pair["key"], depth, test)]
                row = {"pair": pair["key"], "evio": pair["evio"], "anchor": pair["anchor"],
                       "anchor_version": versions[pair["anchor"]],
                       "test": test, "depth": depth, "n": n,
                       "evio_measured": pair["evio"] in measured}
                for role in ("evio", "anchor"):
                    rs = runs[role]
                    for key in ("rps", "proxy_cpu_us", "backends_cpu_us"):
                        row[f"{role}_{key}"] = (common.median([r[key] for r in rs])
                                                if rs else None)
                row["rps_ratio"] = ratio(row["evio_rps"], row["anchor_rps"])
                row["cpu_ratio"] = ratio(row["evio_proxy_cpu_us"], row["anchor_proxy_cpu_us"])
                row["backends_cpu_ratio"] = ratio(row["evio_backends_cpu_us"],
                                                  row["anchor_backends_cpu_us"])
                min_rps, max_cpu = TARGETS[(pair["key"], depth)]
                row["target_rps_ratio_min"] = min_rps
                row["target_cpu_ratio_max"] = max_cpu
                row["rps_pass"] = (None if row["rps_ratio"] is None
                                   else row["rps_ratio"] >= min_rps)
                row["cpu_pass"] = (None if row["cpu_ratio"] is None
                                   else row["cpu_ratio"] <= max_cpu)
                row["runs"] = runs
                rows.append(row)
    return rows


def fmt(value, spec, missing="not measured"):
    return missing if value is None else format(value, spec)


def ratio_text(value):
    return "—" if value is None else f"{value:.2f}x"


def verdict(passed, target):
    if passed is None:
        return f"n/a ({target})"
    return f"{'PASS' if passed else 'MISS'} ({target})"


def print_tables(rows, versions):
    """A markdown table per pair: medians, ratios and targets."""
    for pair in PAIRS:
        ours, theirs = pair["evio"], f"{pair['anchor_label']} {versions[pair['anchor']]}"
        print(f"\n{ours} (evio) vs {theirs}\n")
        print(f"| test | {ours} req/s | {theirs} req/s | ratio | target | "
              f"{ours} CPU µs/req | {theirs} CPU µs/req | ratio | target | "
              f"backends CPU µs/req ({ours} / {theirs}) |")
        print("|---|---:|---:|---:|---|---:|---:|---:|---|---:|")
        for r in rows:
            if r["pair"] != pair["key"]:
                continue
            print(f"| {r['test']} -P {r['depth']} "
                  f"| {fmt(r['evio_rps'], ',.0f')} | {fmt(r['anchor_rps'], ',.0f')} "
                  f"| {ratio_text(r['rps_ratio'])} "
                  f"| {verdict(r['rps_pass'], '>= ' + str(r['target_rps_ratio_min']) + 'x')} "
                  f"| {fmt(r['evio_proxy_cpu_us'], '.3f')} "
                  f"| {fmt(r['anchor_proxy_cpu_us'], '.3f')} "
                  f"| {ratio_text(r['cpu_ratio'])} "
                  f"| {verdict(r['cpu_pass'], '<= ' + str(r['target_cpu_ratio_max']) + 'x')} "
                  f"| {fmt(r['evio_backends_cpu_us'], '.3f', '—')} / "
                  f"{fmt(r['anchor_backends_cpu_us'], '.3f')} |")


def chart(rows, versions, title, png_path):
    """Requests/s and proxy CPU per request, one row of plots per pair and depth, one
    pair of bars (evio, counterpart) per test, each bar labelled with its value."""
    if not common.have_matplotlib():
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    groups = {}
    for r in rows:
        groups.setdefault((r["pair"], r["depth"]), []).append(r)
    fig, axes = plt.subplots(len(groups), 2, figsize=(12, 3.4 * len(groups)),
                             squeeze=False)
    w = 0.38
    for ((pair_key, depth), grows), (ax1, ax2) in zip(groups.items(), axes):
        pair = next(p for p in PAIRS if p["key"] == pair_key)
        names = (f"evio {pair['evio']} example",
                 f"{pair['anchor_label']} {versions[pair['anchor']]}")
        x = list(range(len(grows)))
        for ax, key, label, fmt_ in [
                (ax1, "rps", "requests/s (higher is better)", "{:,.0f}"),
                (ax2, "proxy_cpu_us", "proxy CPU µs per request (lower is better)",
                 "{:.2f}")]:
            for offset, role, colour, name in [(-w / 2, "evio", "#2b7bba", names[0]),
                                               (w / 2, "anchor", "#c0392b", names[1])]:
                xs = [i + offset for i, r in zip(x, grows) if r[f"{role}_{key}"] is not None]
                values = [r[f"{role}_{key}"] for r in grows if r[f"{role}_{key}"] is not None]
                if not values:
                    name += " (not measured)"
                bars = ax.bar(xs, values, w, label=name, color=colour)
                ax.bar_label(bars, [fmt_.format(v) for v in values], fontsize=7, padding=1)
            ax.set_xticks(x)
            ax.set_xticklabels([r["test"] for r in grows], fontsize=8)
            ax.set_title(f"{pair['evio']} vs {pair['anchor_label']}, -P {depth}: {label}",
                         fontsize=9)
            if key == "rps":
                ax.yaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:,.0f}"))
            ax.margins(y=0.25)
            ax.set_xlim(-0.9, len(grows) - 0.1)
            ax.legend(fontsize=8, loc="upper right")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    print(f"chart: {os.path.relpath(png_path, common.ROOT)}")


def find_evio_proxies(only_anchors):
    """The evio proxy binaries that are there ({name: path}) and why the others are
    not ({name: reason})."""
    found, missing = {}, {}
    for pair in PAIRS:
        name = pair["evio"]
        if only_anchors:
            missing[name] = "--only-anchors"
            continue
        path = common.find_example(name)
        if path is None:
            if os.environ.get("EVIO_EXAMPLES"):
                missing[name] = f"no {name} in EVIO_EXAMPLES={os.environ['EVIO_EXAMPLES']}"
            else:
                missing[name] = (f"no examples/{name}.rs and no "
                                 f"{os.path.relpath(common.EXAMPLES, common.ROOT)}/{name}")
        else:
            found[name] = path
    for name, reason in missing.items():
        print(f"NOT MEASURED: {name}: {reason}", file=sys.stderr)
    return found, missing


def main():
    args = parse_args()
    # A plain `kill` stops the servers too (the finally below), as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    depths = [(d, n // 10) for d, n in DEPTHS] if args.quick else DEPTHS
    install_tools()
    versions = tool_versions()
    evio_exes, missing = find_evio_proxies(args.only_anchors)

    procs = []
    tmp_dir = tempfile.TemporaryDirectory(prefix="evio-bench-proxy-")
    tmp = tmp_dir.name
    results = {(p["key"], d, t): {"evio": [], "anchor": []}
               for p in PAIRS for d, _ in depths for t in TESTS}
    try:
        (b1, b2, haproxy_port, tcp_port, twem_port, twem_stats,
         redis_proxy_port) = common.free_ports(7)
        backends = [start_redis("redis1", b1, tmp, procs),
                    start_redis("redis2", b2, tmp, procs)]
        backend_ports = [b1, b2]
        # name -> what measuring it needs; the tcp pair uses the first backend only.
        servers = {
            "haproxy": {"proc": start_haproxy(haproxy_port, b1, tmp, procs),
                        "port": haproxy_port, "pair": "tcp", "role": "anchor"},
            "twemproxy": {"proc": start_twemproxy(twem_port, twem_stats, backend_ports,
                                                  tmp, procs),
                          "port": twem_port, "pair": "redis", "role": "anchor"},
        }
        if "tcp-proxy" in evio_exes:
            servers["tcp-proxy"] = {
                "proc": start_evio("tcp-proxy", evio_exes["tcp-proxy"], tcp_port, [b1],
                                   tmp, procs),
                "port": tcp_port, "pair": "tcp", "role": "evio"}
        if "redis-proxy" in evio_exes:
            servers["redis-proxy"] = {
                "proc": start_evio("redis-proxy", evio_exes["redis-proxy"],
                                   redis_proxy_port, backend_ports, tmp, procs),
                "port": redis_proxy_port, "pair": "redis", "role": "evio"}
        for name, server in servers.items():
            server["name"] = name
            server["backends"] = backends if server["pair"] == "redis" else backends[:1]
            server["backend_ports"] = backend_ports if server["pair"] == "redis" else [b1]
            check_proxy(name, server["port"], server["backend_ports"])

        for rnd in range(args.rounds):
            for pair in PAIRS:
                # Alternate which proxy goes first, so that neither always runs on a
                # warmer (or more throttled) machine.
                order = [pair["evio"], pair["anchor"]]
                if rnd % 2:
                    order.reverse()
                order = [name for name in order if name in servers]
                for depth, n in depths:
                    for test in TESTS:
                        for name in order:
                            server = servers[name]
                            run = measure(server, test, depth, n,
                                          server["backend_ports"], args.keyspace)
                            results[(pair["key"], depth, test)][server["role"]].append(run)
            print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        for proc in procs:
            common.stop(proc)
        tmp_dir.cleanup()

    measured = list(servers)
    rows = summarize(results, depths, measured, versions)
    date = time.strftime("%Y-%m-%d")
    meta = {
        "date": date, "rounds": args.rounds, "clients": CLIENTS, "quick": args.quick,
        "depths": depths, "tests": TESTS, "keyspace": args.keyspace or None,
        "versions": versions, "cpus": os.cpu_count(), "measured": measured,
        "not_measured": missing, "example_args": common.example_args(),
        "command": "python3 " + " ".join(["bench/proxy.py", *sys.argv[1:]]),
        "cpu": "utime + stime from /proc/PID/stat over each run, divided by the requests",
    }
    print(f"\nproxies: evio examples vs HAProxy {versions['haproxy']} and twemproxy "
          f"{versions['twemproxy']}, backends Redis {versions['redis']}, {date}, "
          f"{os.cpu_count()} cores shared by client, proxy and backends, {CLIENTS} "
          f"clients, medians of {args.rounds} rounds (ratio: evio / counterpart)"
          f"{', quick (n / 10)' if args.quick else ''}"
          f"{', keyspace ' + str(args.keyspace) if args.keyspace else ''}"
          f"{', example args: ' + ' '.join(common.example_args()) if common.example_args() else ''}")
    print_tables(rows, versions)
    for name, reason in missing.items():
        print(f"\nNOT MEASURED: {name}: {reason}; its columns, ratios and targets are empty")
    # A smoke run or one with random keys keeps the default run's results and chart.
    base = common.results_name("proxy" + ("-quick" if args.quick else "")
                               + ("-keyspace" if args.keyspace else ""))
    os.makedirs(os.path.join(common.ROOT, "bench", "results"), exist_ok=True)
    json_path = os.path.join(common.ROOT, "bench", "results", base + ".json")
    common.save(rows, meta, json_path)
    print(f"\nresults: {os.path.relpath(json_path, common.ROOT)}")
    chart(rows, versions,
          f"redis-benchmark through a proxy, {CLIENTS} clients, {date}, "
          f"{os.cpu_count()} cores (client, proxy and Redis share them)"
          f"{', quick run' if args.quick else ''}",
          os.path.join(common.ROOT, "bench", base + ".png"))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted (the servers it started are stopped)")
