"""The http example against nginx with one worker, side by side, interleaved.

Starts `examples/http-server` (release) and nginx (one process: `master_process off`,
one worker's work, access log off) serving the same fixed 14-byte body on loopback,
then runs `wrk -t1 -c50` against each, plain and with 16 pipelined requests per write
(bench/http-pipeline.lua), alternating the two servers over several rounds. Prints the
medians of requests/s and of the server's CPU time per request, with their ratios to
nginx, and writes bench/results/http.json and the chart bench/http.png.

    python3 bench/http.py                  # 7 rounds of 5 s runs (about 3 minutes)
    ROUNDS=1 SECONDS=1 python3 bench/http.py  # a smoke run
    EVIO_ARGS="--coalesce-us 0" python3 bench/http.py    # the example without wake
                                           # coalescing (results/http-args.json, no chart)
"""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "7"))
SECONDS = int(os.environ.get("SECONDS", "5"))
CONNS = 50
EVIO_PORT, NGINX_PORT = 8090, 8091
PIPELINE_LUA = os.path.join(common.ROOT, "bench", "http-pipeline.lua")
MODES = [("wrk -t1 -c50", []), ("wrk -t1 -c50, 16 pipelined", ["-s", PIPELINE_LUA])]

def run_wrk(port, extra):
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONNS}", f"-d{SECONDS}s", *extra, f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True).stdout
    return common.parse_wrk(out)


def main():
    common.need(["wrk", "nginx"], ["wrk", "nginx-light"])
    exe = common.build_example("http-server")
    tmp = tempfile.mkdtemp(prefix="evio-bench-nginx-")
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(common.nginx_conf(tmp, NGINX_PORT))
    # As many requests per connection as nginx is given (keepalive_requests).
    evio_argv = [exe, "--host", "127.0.0.1", "--port", str(EVIO_PORT),
                 "--keepalive-requests", "1000000000", *common.example_args()]
    results, nginx_version = common.http_against_nginx(
        evio_argv, conf, tmp, {"evio": EVIO_PORT, "nginx": NGINX_PORT}, ROUNDS, MODES,
        run_wrk)
    rows = common.summarize(results, "evio", "nginx")
    date = time.strftime("%Y-%m-%d")
    meta = {"date": date, "rounds": ROUNDS, "seconds": SECONDS, "connections": CONNS,
            "nginx": nginx_version, "cpus": os.cpu_count(),
            "command": "python3 bench/http.py", "example_args": common.example_args()}
    print(f"\nhttp example vs nginx {nginx_version} (one worker), {date}, {os.cpu_count()} "
          f"cores shared by client and server, medians of {ROUNDS} rounds of {SECONDS} s "
          f"(ratio: evio / nginx){' example args: ' + ' '.join(common.example_args()) if common.example_args() else ''}\n")
    common.print_table(rows, "evio", "nginx")
    os.makedirs(os.path.join(common.ROOT, "bench", "results"), exist_ok=True)
    common.save(rows, meta, os.path.join(common.ROOT, "bench", "results",
                                         common.results_name("http") + ".json"))
    if ROUNDS > 1 and not common.example_args():
        common.chart(rows, "evio", "nginx",
                     f"wrk, {CONNS} connections, {date}, {os.cpu_count()} cores "
                     f"(client and server share them)",
                     os.path.join(common.ROOT, "bench", "http.png"),
                     names=("evio http-server example", f"nginx {nginx_version}, 1 worker"),
                     group=lambda test: test)


if __name__ == "__main__":
    main()
