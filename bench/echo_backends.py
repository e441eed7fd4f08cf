"""Echo throughput and server CPU per message, epoll against poll(2), interleaved.

Starts the echo example twice (default backend, and --stdlib = poll(2)), then runs the
echo-client load against each in turn, ROUNDS times, optionally with IDLE extra idle
connections held open on each server. Prints medians and the poll/epoll ratios.
Server CPU is utime + stime from /proc/PID/stat, read before and after each run.

    cargo build --release --examples
    python3 bench/echo_backends.py               # 50 pipelining clients
    IDLE=1000 python3 bench/echo_backends.py     # and 1,000 idle connections on each
"""
import os, socket, statistics, subprocess, sys, time

ROUNDS = int(os.environ.get("ROUNDS", "7"))
IDLE = int(os.environ.get("IDLE", "0"))
ARGS = os.environ.get("LOAD", "--conns 50 --parallel --rounds 2000 --batch 16").split()
EX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "examples")
tick = os.sysconf("SC_CLK_TCK")

def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick

servers = {}
for name, port, extra in [("epoll", 5201, []), ("poll", 5202, ["--stdlib"])]:
    p = subprocess.Popen([f"{EX}/echo-server", "--port", str(port)] + extra, stdout=subprocess.PIPE)
    print(p.stdout.readline().decode().strip())
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(IDLE)]
    servers[name] = (p, port, idle)
res = {n: {"rate": [], "cpu_us": []} for n in servers}
for r in range(ROUNDS):
    for name, (p, port, _) in servers.items():
        c0 = cpu(p.pid)
        out = subprocess.run([f"{EX}/echo-client", "--addr", f"127.0.0.1:{port}"] + ARGS,
                             capture_output=True, text=True, check=True).stdout
        c1 = cpu(p.pid)
        msgs = int(out.split(" messages in")[0].split()[-1])
        rate = float(out.split(", ")[-1].split()[0])
        res[name]["rate"].append(rate)
        res[name]["cpu_us"].append((c1 - c0) * 1e6 / msgs)
for name, (p, _, idle) in servers.items():
    for s in idle: s.close()
    p.terminate(); p.wait()
print(f"load: {' '.join(ARGS)}; idle connections per server: {IDLE}; rounds: {ROUNDS}")
for name in res:
    rr, cc = res[name]["rate"], res[name]["cpu_us"]
    print(f"{name:6} messages/s median {statistics.median(rr):>10.0f} (min {min(rr):.0f}, max {max(rr):.0f});"
          f" server CPU per message median {statistics.median(cc):.3f} us")
e, p = res["epoll"], res["poll"]
print(f"poll/epoll: messages/s {statistics.median(p['rate'])/statistics.median(e['rate']):.2f}x,"
      f" server CPU per message {statistics.median(p['cpu_us'])/statistics.median(e['cpu_us']):.2f}x")
