"""Clients that send one line and leave: how many of their lines reach a listener.

Starts the chat example, connects a listener, then N clients one after another that
each connect, send one line and close at once (issue 17's check: a relay written to a
client that had already left provoked a reset, and the server closed that client with
its own line still unread). Prints how many of the N lines the listener received.

    cargo build --release --example chat-server
    python3 bench/chat_parting.py 50 300 1000
    python3 bench/chat_parting.py --exe PATH 50      # another build of the example
"""
import os, socket, subprocess, sys, time

args = sys.argv[1:]
exe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "examples", "chat-server")
if args[:1] == ["--exe"]:
    exe, args = args[1], args[2:]

def parting(n):
    p = subprocess.Popen([exe, "--host", "127.0.0.1", "--port", "0"], stdout=subprocess.PIPE, text=True)
    port = int(p.stdout.readline().split(":")[-1].split()[0])
    listener = socket.create_connection(("127.0.0.1", port))
    time.sleep(0.2)
    for i in range(n):
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"line %d\n" % i)
        c.close()
    listener.settimeout(2.0)
    got = b""
    try:
        while True:
            d = listener.recv(65536)
            if not d:
                break
            got += d
    except socket.timeout:
        pass
    p.terminate()
    p.wait()
    return len(got.splitlines())

for n in [int(a) for a in args] or [50]:
    print(f"{parting(n)} of {n} lines reached the listener")
