"""What the kernel interface costs an L4 proxy at -P 1: a C probe against HAProxy and
evio's tcp-proxy, interleaved.

The probe (bench/probes/l4_probe.c) is a minimal L4 proxy in C, run in four modes that
differ only in how it talks to the kernel: `now` (epoll, read(2), send(2) at once, as
evio and HAProxy do), `after-reads` (the same with a wait's sends held until its reads
are done), `uring` (a wait's sends in one io_uring_enter) and `ring` (io_uring only:
multishot accept and recv, batched sends). It answered one question: does a different
way of sending or receiving, not a leaner user space, take an L4 proxy's CPU per
request below HAProxy's by more than evio did? (Yes: the batched sends; tcp-proxy now
makes them, `--batch-sends`, and is measured here with them and without.)

One real `redis-server` behind every proxy; `redis-benchmark -t get -P 1 -c 50 -n N`
against each in turn, every round; CPU per request is utime + stime of the proxy
process (/proc), as in bench/proxy.py. Prints, for each, the median over rounds of its
requests/s and CPU per request as ratios to HAProxy's in the same round.

    python3 bench/probes/l4_probe.py                 # 8 rounds of 100,000 requests
    python3 bench/probes/l4_probe.py --rounds 12 --requests 200000
    python3 bench/probes/l4_probe.py --modes uring   # one probe mode only ("" for none)

Needs gcc and liburing (installed from Debian when missing), HAProxy and Redis.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import common  # noqa: E402
import proxy  # noqa: E402

MODES = ["now", "after-reads", "uring", "ring"]


def build_probe(tmp):
    """Compiles the probe into tmp; returns its path."""
    common.need(["gcc"], ["gcc"])
    if not os.path.exists("/usr/include/liburing.h"):
        common.install(["liburing-dev"], "liburing.h")
    exe = os.path.join(tmp, "l4_probe")
    subprocess.run(["gcc", "-O2", "-Wall", "-o", exe, os.path.join(HERE, "l4_probe.c"),
                    "-luring"], check=True)
    return exe


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--requests", type=int, default=100_000)
    p.add_argument("--modes", default=",".join(MODES),
                   help="the probe's modes to run, comma-separated (default: all)")
    args = p.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        sys.exit(f"--modes: unknown {sorted(unknown)}; known: {MODES}")
    proxy.install_tools()
    procs = []
    tmp = tempfile.mkdtemp(prefix="l4-probe-")
    try:
        probe = build_probe(tmp)
        tcp_proxy = common.build_example("tcp-proxy")
        ports = common.free_ports(4 + len(modes))
        backend = ports[0]
        proxy.start_redis("redis", backend, tmp, procs)
        servers = [("HAProxy", proxy.start_haproxy(ports[1], backend, tmp, procs))]
        for name, batch, port in [("tcp-proxy (evio)", "true", ports[2]),
                                  ("tcp-proxy (evio) --batch-sends false", "false",
                                   ports[3])]:
            servers.append((name, proxy.start(
                f"tcp-proxy-batch-{batch}",
                [tcp_proxy, "--port", str(port), "--backend", f"127.0.0.1:{backend}",
                 "--batch-sends", batch], port, tmp, procs)))
        for mode, port in zip(modes, ports[4:]):
            servers.append((f"probe {mode}", proxy.start(
                f"probe-{mode}", [probe, str(port), str(backend), mode], port, tmp, procs)))
        port_of = dict(zip([name for name, _ in servers], ports[1:]))
        for name, _ in servers:
            # Every proxy must relay before it is measured.
            proxy.redis_cli(port_of[name], "SET", "k", "v")
            got = proxy.redis_cli(port_of[name], "GET", "k")
            if got != "v":
                sys.exit(f"{name}: GET k through it gave {got!r}")
        results = {name: [] for name, _ in servers}
        for r in range(args.rounds):
            for name, proc in servers:
                before = common.cpu_seconds(proc.pid)
                rps = proxy.run_benchmark(port_of[name], "get", 1, args.requests, 0)
                cpu = (common.cpu_seconds(proc.pid) - before) * 1e6 / args.requests
                results[name].append((rps, cpu))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
        base = results["HAProxy"]
        print(f"\nget -P 1, 50 clients, {args.requests:,} requests per run, medians of "
              f"{args.rounds} rounds; ratios to HAProxy in the same round\n")
        print("| proxy | req/s | CPU µs/req | req/s ratio | CPU ratio |")
        print("|---|---:|---:|---:|---:|")
        for name, xs in results.items():
            rps = statistics.median(x[0] for x in xs)
            cpu = statistics.median(x[1] for x in xs)
            rr = statistics.median(x[0] / b[0] for x, b in zip(xs, base))
            cr = statistics.median(x[1] / b[1] for x, b in zip(xs, base))
            print(f"| {name} | {rps:,.0f} | {cpu:.2f} | {rr:.2f}x | {cr:.2f}x |")
    finally:
        for proc in procs:
            common.stop(proc)


if __name__ == "__main__":
    main()
