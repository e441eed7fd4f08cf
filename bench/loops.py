"""evio with 1, 2, ... event loops against Go evio and nginx with as many, interleaved.

For every loop count N in --loops (default 1,2) starts, on free loopback ports:

  - `examples/echo-server` and `examples/http-server` (evio, release) with
    `--loops N` (N event loops on N threads, a SO_REUSEPORT listener per loop); an
    example that does not take `--loops` yet is run at N = 1 only, without the flag,
    and the other counts are reported as not measured;
  - Go evio's own `examples/echo-server` and `examples/http-server` with `-loops N`
    and GOMAXPROCS=N (one listener that every loop polls, its default Random
    balance), from $GO_EVIO_BIN (default /work/go-evio/bin);
  - nginx with `worker_processes N` (a master and N workers, `listen ... reuseport`,
    access log off, `return 200 "Hello World!\\r\\n"`, as bench/http.py configures it
    with one worker). nginx has no echo: it is in the http test only.

Then, over several rounds, each round in the opposite order to the one before, runs
against every one of them:

  - echo: `examples/echo-client --conns 50 --parallel --rounds R --batch 16` (50
    connections at once, each doing R round trips of 16 pipelined 64-byte messages);
    its count of messages is the request count;
  - http: `wrk -t2 -c50 -dS` (plain keep-alive requests, no pipelining).

Every run records requests/s (messages/s for echo) and the server's CPU per request:
utime + stime from /proc/PID/stat before and after the run (a multithreaded process's
figure includes all its threads; nginx's is the master's plus its workers'), divided
by the requests. It also records how that CPU splits over the server's threads
(/proc/PID/task/TID/stat; nginx: over its processes), so one can see whether every
loop works. Prints per test the medians, the ratios to the same server at 1 loop, and
evio against Go evio and against nginx at equal loop counts, and writes
bench/results/loops.json (and the chart bench/loops.png).

On a machine whose cores are shared by client and server (2 here), more loops than
the cores left to the server cannot add throughput; on a larger one give the server
and the clients cores of their own and more load, for example on 16 cores:

    python3 bench/loops.py --loops 1,2,4,8 --server-cpus first --client-cpus 8-15 \\
        --wrk-threads 8 --conns 400

    python3 bench/loops.py                  # loops 1,2; 3 rounds (about 3 minutes)
    python3 bench/loops.py --loops 1,2,4 --rounds 5 --seconds 10
    python3 bench/loops.py --quick          # a smoke run: 1 round, 1 s runs, a tenth
                                            # of the echo load; writes
                                            # results/loops-quick.json, no chart
    python3 bench/loops.py --servers go-evio,nginx --tests http   # a subset
    EVIO_EXAMPLES=dir python3 bench/loops.py  # take the evio binaries from dir, unbuilt
    GO_EVIO_BIN=dir python3 bench/loops.py    # Go evio's echo-server and http-server
    EVIO_ARGS="--coalesce-us 0" python3 bench/loops.py   # extra arguments for evio's
                                            # http-server (results/loops-args.json)
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

SERVERS = ["evio", "go-evio", "nginx"]
TESTS = ["echo", "http"]
LABELS = {"evio": "evio", "go-evio": "Go evio", "nginx": "nginx"}
GO_EVIO_BIN = os.environ.get("GO_EVIO_BIN", "/work/go-evio/bin")
ECHO_BATCH, ECHO_SIZE = 16, 64
RUN_TIMEOUT = 600  # seconds; a server that stalls fails the script instead

def cpu_list(spec):
    """"0-3,8" -> [0, 1, 2, 3, 8]."""
    cpus = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--loops", default="1,2",
                   help="loop (nginx: worker) counts to measure, comma-separated "
                        "(default 1,2)")
    p.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", "3")),
                   help="interleaved rounds (default 3, or $ROUNDS)")
    p.add_argument("--seconds", type=int, default=int(os.environ.get("SECONDS", "5")),
                   help="seconds per wrk run (default 5)")
    p.add_argument("--echo-rounds", type=int, default=5000,
                   help="round trips per echo connection (default 5000: about 4 s here)")
    p.add_argument("--conns", type=int, default=50,
                   help="connections of wrk and of the echo client (default 50)")
    p.add_argument("--wrk-threads", type=int, default=2, help="wrk -t (default 2)")
    p.add_argument("--servers", default=",".join(SERVERS),
                   help=f"which servers (default {','.join(SERVERS)})")
    p.add_argument("--tests", default=",".join(TESTS),
                   help=f"which tests (default {','.join(TESTS)})")
    p.add_argument("--server-cpus", default="",
                   help="CPUs the servers may run on: a list (0-7) for all of them, or "
                        "'first': the first N CPUs for a server with N loops; default: any")
    p.add_argument("--client-cpus", default="",
                   help="CPUs wrk and the echo client may run on (a list); default: any")
    p.add_argument("--quick", action="store_true", default=os.environ.get("QUICK") == "1",
                   help="a smoke run: 1 round, 1 s wrk runs, a tenth of the echo load "
                        "(also QUICK=1)")
    a = p.parse_args()
    a.loops = sorted({int(n) for n in a.loops.split(",")})
    if not a.loops or min(a.loops) < 1:
        p.error("--loops takes counts of at least 1")
    a.servers = [s for s in a.servers.split(",") if s]
    a.tests = [t for t in a.tests.split(",") if t]
    for s in a.servers:
        if s not in SERVERS:
            p.error(f"unknown server {s!r} (one of {', '.join(SERVERS)})")
    for t in a.tests:
        if t not in TESTS:
            p.error(f"unknown test {t!r} (one of {', '.join(TESTS)})")
    if a.quick:
        a.rounds = 1
        a.seconds = 1
        a.echo_rounds = max(1, a.echo_rounds // 10)
    a.pinning = ""
    if a.server_cpus or a.client_cpus:
        a.pinning = (f"servers on CPUs {a.server_cpus or 'any'}"
                     f"{' (the first N for N loops)' if a.server_cpus == 'first' else ''}, "
                     f"clients on CPUs {a.client_cpus or 'any'}")
    a.client_cpus = cpu_list(a.client_cpus) if a.client_cpus else None
    if a.server_cpus and a.server_cpus != "first":
        a.server_cpus = cpu_list(a.server_cpus)
    return a


def server_cpus(args, loops):
    """The CPUs a server with `loops` loops is pinned to, or None (any)."""
    if not args.server_cpus:
        return None
    if args.server_cpus == "first":
        allowed = sorted(os.sched_getaffinity(0))
        if loops > len(allowed):
            sys.exit(f"--server-cpus first: {loops} loops, {len(allowed)} CPUs")
        return allowed[:loops]
    return args.server_cpus


def pinned(cpus):
    """A preexec_fn that pins the child to `cpus` (None: no pinning)."""
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


# --- CPU time ---------------------------------------------------------------------

def stat_fields(path):
    """The fields of a /proc stat file after the command name, and the name."""
    with open(path) as f:
        text = f.read()
    head, tail = text.rsplit(")", 1)
    return tail.split(), head.split("(", 1)[1]


def children(pid):
    """The PIDs whose parent is `pid`."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields, _ = stat_fields(f"/proc/{entry}/stat")
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def snapshot(server):
    """The server's CPU seconds so far: the total, and per thread (nginx: per process)
    as {label: seconds}."""
    pid = server["proc"].pid
    if server["server"] == "nginx":
        parts = {}
        for p in [pid] + children(pid):
            try:
                role = "master" if p == pid else "worker"
                parts[f"{role}[{p}]"] = common.cpu_seconds(p)
            except OSError:
                pass
        return sum(parts.values()), parts
    total = common.cpu_seconds(pid)
    parts = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            fields, comm = stat_fields(f"/proc/{pid}/task/{tid}/stat")
        except OSError:
            continue
        parts[f"{comm}[{tid}]"] = (int(fields[11]) + int(fields[12])) / common.TICK
    return total, parts


# --- servers ----------------------------------------------------------------------

def help_text(exe):
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=10)
    return r.stdout + r.stderr


def find_servers(args):
    """{(server, test): binary} for the evio and Go evio servers that are there,
    whether the evio examples take --loops, and why the others are not measured."""
    exes, missing, evio_loops = {}, {}, {}
    names = {"echo": "echo-server", "http": "http-server"}
    for test in args.tests:
        name = names[test]
        if "evio" in args.servers:
            path = common.find_example(name)
            if path is None:
                missing[("evio", test)] = f"no evio {name} binary"
            else:
                exes[("evio", test)] = path
                evio_loops[test] = "--loops" in help_text(path)
        if "go-evio" in args.servers:
            path = os.path.join(GO_EVIO_BIN, name)
            if os.access(path, os.X_OK):
                exes[("go-evio", test)] = path
            else:
                missing[("go-evio", test)] = (f"no {path} (GO_EVIO_BIN): build Go evio's "
                                              f"examples/{name} there")
    return exes, evio_loops, missing


def start(name, argv, port, tmp, procs, env=None, cpus=None):
    """Starts a server with its output in tmp/`name`.log, adds it to `procs` (so that
    it is stopped whatever happens) and waits until it accepts on `port`."""
    log_path = os.path.join(tmp, name + ".log")
    with open(log_path, "w") as log:
        # A session of its own: Ctrl-C reaches this script only, which then stops
        # the servers itself.
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **(env or {})},
                                preexec_fn=pinned(cpus))
    procs.append(proc)
    try:
        common.wait_for_port(port, proc)
    except SystemExit:
        with open(log_path, errors="replace") as f:
            tail = f.read()[-3000:]
        print(f"{name} did not start: {' '.join(argv)}\n--- {log_path}:\n{tail}",
              file=sys.stderr)
        raise
    return proc


def server_argv(server, test, loops, port, exes, evio_loops, tmp):
    """The command line (and environment) of one server."""
    if server == "evio":
        argv = [exes[("evio", test)], "--host", "127.0.0.1", "--port", str(port)]
        if evio_loops[test]:
            argv += ["--loops", str(loops)]
        if test == "http":
            # As many requests per connection as nginx is given (keepalive_requests).
            argv += ["--keepalive-requests", "1000000000", *common.example_args()]
        return argv, None
    if server == "go-evio":
        # One P per loop, as Go evio's own benchmarks run it (GOMAXPROCS=1, one loop).
        return ([exes[("go-evio", test)], "-port", str(port), "-loops", str(loops)],
                {"GOMAXPROCS": str(loops)})
    conf = os.path.join(tmp, f"nginx-{loops}.conf")
    with open(conf, "w") as f:
        f.write(common.nginx_conf(tmp, port, workers=loops, connections=4096))
    check = subprocess.run(["nginx", "-t", "-q", "-c", conf, "-p", tmp],
                           capture_output=True, text=True)
    if check.returncode != 0:
        sys.exit(f"nginx rejects {conf}:\n{check.stdout}{check.stderr}")
    return ["nginx", "-c", conf, "-p", tmp], None


def plan(args, exes, evio_loops, missing):
    """The (test, server, loops) to measure, and why the others are not."""
    todo, skipped = [], {}
    for test in args.tests:
        for server in args.servers:
            if server == "nginx" and test == "echo":
                continue  # nginx has no echo server
            for n in args.loops:
                key = (test, server, n)
                if server != "nginx" and (server, test) not in exes:
                    skipped[key] = missing[(server, test)]
                elif server == "evio" and not evio_loops[test] and n != 1:
                    skipped[key] = "the evio example takes no --loops yet"
                else:
                    todo.append(key)
    return todo, skipped


# --- load -------------------------------------------------------------------------

def run_client(argv, cpus):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                           preexec_fn=pinned(cpus))
    except subprocess.TimeoutExpired:
        sys.exit(f"took more than {RUN_TIMEOUT} s: {' '.join(argv)}")
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(argv)}\n{r.stdout}{r.stderr}")
    return r.stdout


def run_echo(client, port, args):
    """One echo-client run: messages/s and messages."""
    out = run_client([client, "--addr", f"127.0.0.1:{port}", "--conns", str(args.conns),
                      "--parallel", "--rounds", str(args.echo_rounds),
                      "--batch", str(ECHO_BATCH), "--size", str(ECHO_SIZE)],
                     args.client_cpus)
    m = re.search(r"(\d+) messages in .*, ([\d.]+) messages/s", out)
    if not m:
        sys.exit(f"echo-client printed no rate: {out!r}")
    return float(m.group(2)), int(m.group(1))


def run_wrk(port, args):
    """One wrk run: requests/s and requests; exits on errors or non-2xx responses."""
    out = run_client(["wrk", f"-t{args.wrk_threads}", f"-c{args.conns}",
                      f"-d{args.seconds}s", f"http://127.0.0.1:{port}/"],
                     args.client_cpus)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if non2xx or errors:
        sys.exit(f"wrk on port {port}: {non2xx.group(1) if non2xx else 0} non-2xx "
                 f"responses, socket errors: {errors.group(1) if errors else ''}\n{out}")
    return rps, total


def measure(server, test, port, args, client):
    """One run: requests/s, CPU µs per request and CPU seconds per thread/process."""
    c0, t0 = snapshot(server)
    if test == "echo":
        rps, n = run_echo(client, port, args)
    else:
        rps, n = run_wrk(port, args)
    c1, t1 = snapshot(server)
    if server["proc"].poll() is not None:
        sys.exit(f"{server['name']} exited ({server['proc'].returncode}) during the run")
    threads = {k: v - t0.get(k, 0.0) for k, v in t1.items()}
    return {"rps": rps, "requests": n, "cpu_us": (c1 - c0) * 1e6 / n,
            "cpu_s": c1 - c0, "threads": threads}


# --- results ----------------------------------------------------------------------

def ratio(a, b):
    return None if a is None or b is None or not b else a / b


def summarize(results, todo, skipped, args):
    """One row per test, server and loop count: medians, ratios to the same server
    at 1 loop and to Go evio and nginx at the same count, and the CPU split."""
    rows = []
    med = {}
    for key, runs in results.items():
        med[key] = (common.median([r["rps"] for r in runs]),
                    common.median([r["cpu_us"] for r in runs]))
    for test in args.tests:
        for server in args.servers:
            for n in args.loops:
                key = (test, server, n)
                if key not in med and key not in skipped:
                    continue
                rps, cpu = med.get(key, (None, None))
                one = med.get((test, server, 1), (None, None))
                go = med.get((test, "go-evio", n), (None, None))
                ngx = med.get((test, "nginx", n), (None, None))
                runs = results.get(key, [])
                split = {}
                for r in runs:
                    for k, v in r["threads"].items():
                        split[k] = split.get(k, 0.0) + v
                total = sum(split.values())
                shares = sorted(((v / total, k) for k, v in split.items()
                                 if total and v / total >= 0.01), reverse=True)
                rows.append({
                    "test": test, "server": server, "loops": n,
                    "measured": key in med, "not_measured": skipped.get(key),
                    "rps": rps, "cpu_us": cpu,
                    "rps_vs_1": ratio(rps, one[0]) if n != 1 else None,
                    "cpu_vs_1": ratio(cpu, one[1]) if n != 1 else None,
                    "rps_vs_go_evio": ratio(rps, go[0]) if server == "evio" else None,
                    "cpu_vs_go_evio": ratio(cpu, go[1]) if server == "evio" else None,
                    "rps_vs_nginx": (ratio(rps, ngx[0])
                                     if server == "evio" and test == "http" else None),
                    "cpu_vs_nginx": (ratio(cpu, ngx[1])
                                     if server == "evio" and test == "http" else None),
                    "cpu_split": [{"thread": k, "share": s} for s, k in shares],
                    "runs": [{k: v for k, v in r.items() if k != "threads"} for r in runs],
                })
    return rows


def fmt(value, spec, missing="—"):
    return missing if value is None else format(value, spec)


def xratio(value):
    return "—" if value is None else f"{value:.2f}x"


def print_tables(rows, args, go_version, nginx_version):
    units = {"echo": ("messages/s", "CPU µs/message"), "http": ("req/s", "CPU µs/req")}
    heads = {"echo": f"echo: echo-client --conns {args.conns} --parallel --rounds "
                     f"{args.echo_rounds} --batch {ECHO_BATCH} --size {ECHO_SIZE}",
             "http": f"http: wrk -t{args.wrk_threads} -c{args.conns} -d{args.seconds}s"}
    for test in args.tests:
        trows = [r for r in rows if r["test"] == test]
        if not trows:
            continue
        rate, cpu = units[test]
        print(f"\n{heads[test]}\n")
        print(f"| server | loops | {rate} | {cpu} | {rate} vs 1 loop | CPU vs 1 loop | "
              f"{rate} evio / Go evio | CPU evio / Go evio"
              + (" | req/s evio / nginx | CPU evio / nginx |" if test == "http" else " |"))
        print("|---|---:|---:|---:|---:|---:|---:|---:"
              + ("|---:|---:|" if test == "http" else "|"))
        for r in trows:
            if not r["measured"]:
                print(f"| {LABELS[r['server']]} | {r['loops']} | not measured: "
                      f"{r['not_measured']} | | | | | |" + (" | |" if test == "http" else ""))
                continue
            line = (f"| {LABELS[r['server']]} | {r['loops']} | {fmt(r['rps'], ',.0f')} "
                    f"| {fmt(r['cpu_us'], '.3f')} | {xratio(r['rps_vs_1'])} "
                    f"| {xratio(r['cpu_vs_1'])} | {xratio(r['rps_vs_go_evio'])} "
                    f"| {xratio(r['cpu_vs_go_evio'])} |")
            if test == "http":
                line += f" {xratio(r['rps_vs_nginx'])} | {xratio(r['cpu_vs_nginx'])} |"
            print(line)
    print("\nserver CPU split over its threads (nginx: its processes), all rounds, "
          "those with at least 1%:\n")
    for r in rows:
        if r["measured"]:
            split = ", ".join(f"{s['thread']} {s['share'] * 100:.0f}%"
                              for s in r["cpu_split"])
            print(f"  {r['test']:4} {LABELS[r['server']]:7} loops {r['loops']}: {split}")
    print(f"\nGo evio: {go_version}; GOMAXPROCS = loops, default balance (Random), one "
          f"listener polled by every loop (goroutines are not locked to threads, so its "
          f"split is over OS threads, not loops). nginx {nginx_version}: master + N "
          f"workers, listen reuseport. nginx has no echo.")


def chart(rows, args, title, png_path):
    """Requests/s and CPU per request against the loop count, one row of plots per
    test, one bar per server at each count, each bar labelled with its value."""
    if not common.have_matplotlib():
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    tests = [t for t in args.tests if any(r["test"] == t and r["measured"] for r in rows)]
    fig, axes = plt.subplots(len(tests), 2, figsize=(12, 3.6 * len(tests)), squeeze=False)
    colours = {"evio": "#2b7bba", "go-evio": "#27ae60", "nginx": "#c0392b"}
    for test, (ax1, ax2) in zip(tests, axes):
        servers = [s for s in args.servers
                   if any(r["test"] == test and r["server"] == s for r in rows)]
        w = 0.8 / max(1, len(servers))
        x = list(range(len(args.loops)))
        unit = "message" if test == "echo" else "request"
        for ax, key, label, fmt_ in [
                (ax1, "rps", f"{unit}s/s (higher is better)", "{:,.0f}"),
                (ax2, "cpu_us", f"server CPU µs per {unit} (lower is better)", "{:.2f}")]:
            for i, server in enumerate(servers):
                by_n = {r["loops"]: r for r in rows
                        if r["test"] == test and r["server"] == server and r["measured"]}
                xs = [j + (i - (len(servers) - 1) / 2) * w
                      for j, n in zip(x, args.loops) if n in by_n]
                values = [by_n[n][key] for n in args.loops if n in by_n]
                name = LABELS[server]
                absent = [str(n) for n in args.loops if n not in by_n]
                if absent:
                    name += f" ({','.join(absent)} not measured)"
                bars = ax.bar(xs, values, w, label=name, color=colours[server])
                ax.bar_label(bars, [fmt_.format(v) for v in values], fontsize=7, padding=1)
            ax.set_xticks(x)
            ax.set_xticklabels([f"{n} loop{'s' if n > 1 else ''}" for n in args.loops],
                               fontsize=8)
            ax.set_title(f"{test}: {label}", fontsize=10)
            if key == "rps":
                ax.yaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:,.0f}"))
            ax.margins(y=0.35)
            ax.legend(fontsize=8, loc="upper left", ncol=len(servers))
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    print(f"chart: {os.path.relpath(png_path, common.ROOT)}")


def main():
    args = parse_args()
    # A plain `kill` stops the servers too (the finally below), as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    common.need(["wrk"] + (["nginx"] if "nginx" in args.servers else []),
                ["wrk"] + (["nginx-light"] if "nginx" in args.servers else []))
    exes, evio_loops, missing = find_servers(args)
    client = None
    if "echo" in args.tests:
        client = common.find_example("echo-client")
        if client is None:
            sys.exit("no echo-client example binary")
    todo, skipped = plan(args, exes, evio_loops, missing)
    for (test, server, n), reason in skipped.items():
        print(f"NOT MEASURED: {test} {LABELS[server]} loops {n}: {reason}",
              file=sys.stderr)
    nginx_version = (subprocess.run(["nginx", "-v"], capture_output=True, text=True)
                     .stderr.strip().split("/")[-1] if "nginx" in args.servers else None)
    go_version = None
    if any(s == "go-evio" for _, s, _ in todo):
        version_file = os.path.join(GO_EVIO_BIN, "VERSION")
        if os.path.isfile(version_file):
            with open(version_file) as f:
                go_version = f.read().strip()
        else:
            go_version = f"binaries in {GO_EVIO_BIN}"

    procs = []
    tmp_dir = tempfile.TemporaryDirectory(prefix="evio-bench-loops-")
    tmp = tmp_dir.name
    servers = {}
    results = {key: [] for key in todo}
    try:
        for key, port in zip(todo, common.free_ports(len(todo))):
            test, server, n = key
            argv, env = server_argv(server, test, n, port, exes, evio_loops, tmp)
            name = f"{test}-{server}-{n}"
            proc = start(name, argv, port, tmp, procs, env, server_cpus(args, n))
            servers[key] = {"name": name, "server": server, "proc": proc, "port": port,
                            "argv": argv, "env": env}
        for rnd in range(args.rounds):
            # Each round in the opposite order to the one before, so that no server
            # always runs on a warmer (or more throttled) machine.
            order = todo if rnd % 2 == 0 else todo[::-1]
            for key in order:
                test = key[0]
                s = servers[key]
                results[key].append(measure(s, test, s["port"], args, client))
            print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        for proc in procs:
            common.stop(proc)
        tmp_dir.cleanup()

    rows = summarize(results, todo, skipped, args)
    date = time.strftime("%Y-%m-%d")
    meta = {
        "date": date, "rounds": args.rounds, "loops": args.loops, "quick": args.quick,
        "seconds": args.seconds, "conns": args.conns, "wrk_threads": args.wrk_threads,
        "echo": {"rounds": args.echo_rounds, "batch": ECHO_BATCH, "size": ECHO_SIZE},
        "cpus": os.cpu_count(), "pinning": args.pinning or None,
        "go_evio": go_version, "nginx": nginx_version,
        "evio_takes_loops": evio_loops, "example_args": common.example_args(),
        "servers": {s["name"]: {"argv": s["argv"], "env": s["env"]}
                    for s in servers.values()},
        "not_measured": {f"{t} {s} {n}": why for (t, s, n), why in skipped.items()},
        "command": "python3 " + " ".join(["bench/loops.py", *sys.argv[1:]]),
        "cpu": "utime + stime from /proc/PID/stat (nginx: master + workers) over each "
               "run, divided by the requests (echo: messages)",
    }
    pin = f", {args.pinning}" if args.pinning else ""
    print(f"\nevio with {', '.join(map(str, args.loops))} loops vs Go evio (-loops N) "
          f"and nginx {nginx_version} (N workers), {date}, {os.cpu_count()} cores"
          f"{pin or ' shared by client and server'}, medians of "
          f"{args.rounds} rounds{', quick' if args.quick else ''}"
          f"{', evio http-server args: ' + ' '.join(common.example_args()) if common.example_args() else ''}")
    print_tables(rows, args, go_version, nginx_version)
    for (test, server, n), reason in skipped.items():
        print(f"NOT MEASURED: {test} {LABELS[server]} loops {n}: {reason}")
    base = common.results_name("loops" + ("-quick" if args.quick else ""))
    os.makedirs(os.path.join(common.ROOT, "bench", "results"), exist_ok=True)
    json_path = os.path.join(common.ROOT, "bench", "results", base + ".json")
    common.save(rows, meta, json_path)
    print(f"\nresults: {os.path.relpath(json_path, common.ROOT)}")
    if not args.quick and not common.example_args() and args.rounds > 1:
        chart(rows, args,
              f"echo-client and wrk -t{args.wrk_threads} -c{args.conns}, {date}, "
              f"{os.cpu_count()} cores{pin or ' (client and server share them)'}",
              os.path.join(common.ROOT, "bench", "loops.png"))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted (the servers it started are stopped)")
