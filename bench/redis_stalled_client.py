"""A client that asks for a large value and never reads: is its slot freed?

Issue 18's check, against the redis example and a real redis-server side by side:
`--timeout 1 --maxclients 3`, a client sends `GET big` for an 8 MiB value and never
reads the reply; three new clients then PING every 100 ms until all three are answered
(a refused one gets `-ERR max number of clients reached`). Prints how long that took
(none within 30 s: the slot is held).

    cargo build --release --example redis-server
    python3 bench/redis_stalled_client.py [--exe PATH]
"""
import os, socket, subprocess, sys, time

exe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "examples", "redis-server")
if sys.argv[1:2] == ["--exe"]:
    exe = sys.argv[2]

def served_after(cmd, port):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        s = socket.create_connection(("127.0.0.1", port))
        big = b"v" * (8 << 20)
        s.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % len(big) + big + b"\r\n")
        assert s.recv(16) == b"+OK\r\n"
        s.close()
        silent = socket.create_connection(("127.0.0.1", port))
        silent.sendall(b"GET big\r\n")  # and never reads
        start = time.time()
        while time.time() - start < 30:
            time.sleep(0.1)
            clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
            answers = []
            for c in clients:
                c.settimeout(2)
                c.sendall(b"PING\r\n")
                try:
                    answers.append(c.recv(64))
                except OSError:
                    answers.append(b"")
            for c in clients:
                c.close()
            if all(a == b"+PONG\r\n" for a in answers):
                return time.time() - start
        return None
    finally:
        p.terminate()
        p.wait()

def show(name, t):
    print(f"{name}: three new clients served after " + ("(not within 30 s)" if t is None else f"{t:.2f} s"))

show("evio example", served_after([exe, "--host", "127.0.0.1", "--port", "17101", "--timeout", "1", "--maxclients", "3"], 17101))
show("redis-server", served_after(["redis-server", "--port", "17102", "--timeout", "1", "--maxclients", "3",
                                   "--save", "", "--appendonly", "no"], 17102))
