"""The redis example against real Redis, side by side, interleaved.

Starts `examples/redis-server` (release) and a real `redis-server --save ''
--appendonly no` on loopback, then runs `redis-benchmark -q` for each of ping_inline,
ping_mbulk, set and get, pipelined (-P 32, -n 1,000,000, 50 clients) and not (-P 1,
-n 200,000, 50 clients), alternating the two servers over several rounds. Prints for
every test the medians of requests/s and of the server's CPU time per request, each
with its ratio to Redis, and writes them to bench/results/redis.json and the chart
bench/redis.png.

    python3 bench/redis.py                 # 7 rounds (about 8 minutes)
    ROUNDS=1 QUICK=1 python3 bench/redis.py   # a smoke run
    EVIO_ARGS="--coalesce-us 0" python3 bench/redis.py   # the example without wake
                                           # coalescing (results/redis-args.json, no chart)
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "7"))
QUICK = os.environ.get("QUICK") == "1"
TESTS = ["ping_inline", "ping_mbulk", "set", "get"]
# (label, pipeline depth, requests per run)
MODES = [("P32", 32, 1_000_000), ("P1", 1, 200_000)]
if QUICK:
    MODES = [("P32", 32, 100_000), ("P1", 1, 20_000)]
CLIENTS = 50
EVIO_PORT, REDIS_PORT = 6390, 6391


def run_benchmark(port, test, pipeline, n):
    """One redis-benchmark run; returns requests/s."""
    out = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-q", "-t", test,
         "-P", str(pipeline), "-n", str(n), "-c", str(CLIENTS)],
        capture_output=True, text=True, check=True).stdout
    rates = re.findall(r"([\d.]+) requests per second", out)
    if not rates:
        sys.exit(f"redis-benchmark printed no rate for {test}: {out!r}")
    return float(rates[-1])


def main():
    common.need(["redis-server", "redis-benchmark"], ["redis-server", "redis-tools"])
    exe = common.build_example("redis-server")
    servers = {
        "evio": subprocess.Popen([exe, "--host", "127.0.0.1", "--port", str(EVIO_PORT),
                                  *common.example_args()],
                                 stdout=subprocess.DEVNULL),
        "redis": subprocess.Popen(["redis-server", "--port", str(REDIS_PORT), "--bind",
                                   "127.0.0.1", "--save", "", "--appendonly", "no",
                                   "--daemonize", "no"],
                                  stdout=subprocess.DEVNULL),
    }
    ports = {"evio": EVIO_PORT, "redis": REDIS_PORT}
    try:
        for name, proc in servers.items():
            common.wait_for_port(ports[name], proc)
        redis_version = subprocess.run(["redis-server", "--version"], capture_output=True,
                                       text=True).stdout.split()[2].removeprefix("v=")
        results = {}
        for rnd in range(ROUNDS):
            # Alternate which server goes first, so neither always runs on a warmer
            # (or more throttled) machine.
            order = ["evio", "redis"] if rnd % 2 == 0 else ["redis", "evio"]
            for label, pipeline, n in MODES:
                for test in TESTS:
                    for name in order:
                        proc = servers[name]
                        c0 = common.cpu_seconds(proc.pid)
                        rps = run_benchmark(ports[name], test, pipeline, n)
                        c1 = common.cpu_seconds(proc.pid)
                        r = results.setdefault(f"{test} -P {pipeline}", {}).setdefault(
                            name, {"rps": [], "cpu_us": []})
                        r["rps"].append(rps)
                        r["cpu_us"].append((c1 - c0) * 1e6 / n)
            print(f"round {rnd + 1}/{ROUNDS} done", file=sys.stderr)
    finally:
        for proc in servers.values():
            common.stop(proc)
    rows = common.summarize(results, "evio", "redis")
    date = time.strftime("%Y-%m-%d")
    meta = {
        "date": date, "rounds": ROUNDS, "clients": CLIENTS, "modes": MODES,
        "redis": redis_version, "cpus": os.cpu_count(),
        "command": "python3 bench/redis.py", "example_args": common.example_args(),
    }
    print(f"\nredis example vs Redis {redis_version}, {date}, {os.cpu_count()} cores shared "
          f"by client and server, {CLIENTS} clients, medians of {ROUNDS} rounds "
          f"(ratio: evio / redis){' example args: ' + ' '.join(common.example_args()) if common.example_args() else ''}\n")
    common.print_table(rows, "evio", "redis")
    os.makedirs(os.path.join(common.ROOT, "bench", "results"), exist_ok=True)
    common.save(rows, meta, os.path.join(common.ROOT, "bench", "results",
                                         common.results_name("redis") + ".json"))
    if not QUICK and not common.example_args():
        common.chart(rows, "evio", "redis",
                     f"redis-benchmark, {CLIENTS} clients, {date}, {os.cpu_count()} cores "
                     f"(client and server share them)",
                     os.path.join(common.ROOT, "bench", "redis.png"),
                     names=("evio redis-server example", f"Redis {redis_version}"),
                     group=lambda test: "redis-benchmark " + test.split(" ", 1)[1])


if __name__ == "__main__":
    main()
