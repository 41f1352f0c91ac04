#!/usr/bin/env python3
"""Far end and local end of the forwarding benchmark (bench/forward.sh).

  peer.py serve PORTFILE
      Listens on 127.0.0.1:0, writes the port to PORTFILE, serves until
      killed. Each connection starts with one command byte:
        b'D' + 8-byte big-endian N : sends N bytes, then closes
        b'U' + 8-byte N            : reads N bytes, replies b'K', closes
        b'E'                       : echoes until EOF

  peer.py down|up HOST PORT BYTES [--socks DHOST DPORT] [--streams K]
      One (or K parallel) stream(s) of BYTES each through the tunnel;
      prints "seconds total_bytes". Fails (exit 1) on a short count.

  peer.py ping HOST PORT ROUNDS
      1-byte ping-pong; prints "median_us p99_us".

  peer.py setup PORT PIDFILE -- CMD...
      Starts CMD (a client with -N -L PORT:...:echo), polls PORT every
      2 ms until a connect works, echoes one byte; prints seconds from
      spawn to the echoed byte. Kills CMD before returning.

  peer.py many HOST PORT CONNS BYTES PID
      CONNS concurrent connections, each echoing BYTES (checked). Samples
      VmRSS of PID while they run and once while all are open. Prints
      "seconds failures rss_open_kib rss_max_kib".

  peer.py rss PID  : VmRSS of PID in KiB.
"""
import os
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time

BUF = 1 << 20
CHUNK = bytes(os.urandom(BUF))
TIMEOUT = 120.0  # no socket operation waits longer than this


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def recv_exact(s, n):
    out = bytearray()
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            raise EOFError(f"EOF after {len(out)} of {n} bytes")
        out += b
    return bytes(out)


# ---------------------------------------------------------------- server
class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        s.settimeout(TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            cmd = recv_exact(s, 1)
            if cmd == b"D":
                (n,) = struct.unpack(">Q", recv_exact(s, 8))
                view = memoryview(CHUNK)
                while n > 0:
                    k = min(n, BUF)
                    s.sendall(view[:k])
                    n -= k
            elif cmd == b"U":
                (n,) = struct.unpack(">Q", recv_exact(s, 8))
                buf = bytearray(BUF)
                while n > 0:
                    k = s.recv_into(buf, min(n, BUF))
                    if k == 0:
                        return  # short upload: no ack, the client fails
                    n -= k
                s.sendall(b"K")
            elif cmd == b"E":
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    s.sendall(b)
        except (OSError, EOFError):
            pass


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 1024


def serve(portfile):
    srv = Server(("127.0.0.1", 0), Handler)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{srv.server_address[1]}\n")
    os.rename(tmp, portfile)
    srv.serve_forever()


# ---------------------------------------------------------------- client
def connect(host, port, socks=None):
    s = socket.create_connection((host, port), timeout=TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if socks:
        # SOCKS5 by hand: no auth, CONNECT to an IPv4 address.
        dhost, dport = socks
        s.sendall(b"\x05\x01\x00")
        if recv_exact(s, 2) != b"\x05\x00":
            raise OSError("SOCKS5: no-auth method refused")
        s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(dhost) + struct.pack(">H", dport))
        rep = recv_exact(s, 4)
        if rep[1] != 0:
            raise OSError(f"SOCKS5: CONNECT failed, reply {rep[1]}")
        recv_exact(s, {1: 4, 4: 16}.get(rep[3], 0) + 2)  # bound addr+port
    return s


def one_stream(direction, host, port, n, socks, result, i):
    try:
        s = connect(host, port, socks)
        if direction == "down":
            s.sendall(b"D" + struct.pack(">Q", n))
            buf = bytearray(BUF)
            got = 0
            while True:
                k = s.recv_into(buf)
                if k == 0:
                    break
                got += k
            result[i] = got
        else:
            s.sendall(b"U" + struct.pack(">Q", n))
            view = memoryview(CHUNK)
            left = n
            while left > 0:
                k = min(left, BUF)
                s.sendall(view[:k])
                left -= k
            ack = s.recv(1)
            result[i] = n if ack == b"K" else -1
        s.close()
    except (OSError, EOFError) as e:
        print(f"stream {i}: {e!r}", file=sys.stderr)
        result[i] = -1


def streams(direction, host, port, n, socks, k):
    result = [None] * k
    t0 = time.perf_counter()
    ths = [threading.Thread(target=one_stream, args=(direction, host, port, n, socks, result, i))
           for i in range(k)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    dt = time.perf_counter() - t0
    bad = [r for r in result if r != n]
    if bad:
        print(f"{direction}: wrong byte count: expected {n} per stream, got {result}", file=sys.stderr)
        sys.exit(1)
    print(f"{dt:.6f} {n * k}")


def ping(host, port, rounds):
    s = connect(host, port)
    s.sendall(b"E")
    for _ in range(50):  # warm-up
        s.sendall(b"x")
        recv_exact(s, 1)
    ts = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        s.sendall(b"x")
        if recv_exact(s, 1) != b"x":
            raise SystemExit("ping: wrong byte echoed")
        ts.append(time.perf_counter_ns() - t0)
    s.close()
    ts.sort()
    med = ts[len(ts) // 2] / 1000
    p99 = ts[min(len(ts) - 1, int(len(ts) * 0.99))] / 1000
    print(f"{med:.1f} {p99:.1f}")


def setup(port, pidfile, cmd):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    with open(pidfile, "w") as f:
        f.write(f"{p.pid}\n")
    try:
        deadline = t0 + 20
        while True:
            if p.poll() is not None:
                raise SystemExit(f"setup: client exited with {p.returncode} before forwarding")
            if time.perf_counter() > deadline:
                raise SystemExit("setup: no forwarded byte within 20 s")
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
            except OSError:
                time.sleep(0.002)
                continue
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                s.sendall(b"E!")
                b = s.recv(1)
            except OSError:
                b = b""
            s.close()
            if b == b"!":
                break
            # The listener was up but the tunnel dropped the connection:
            # count it and try again (OpenSSH binds after login, so this
            # should not happen; recorded on stderr if it does).
            print("setup: connected but no echo; retrying", file=sys.stderr)
            time.sleep(0.002)
        print(f"{time.perf_counter() - t0:.6f}")
    finally:
        p.kill()
        p.wait()
        os.unlink(pidfile)


def many(host, port, conns, n, pid):
    payload = os.urandom(n)
    failures = []
    done = threading.Barrier(conns + 1, timeout=TIMEOUT)
    release = threading.Event()
    socks_open = []
    lock = threading.Lock()

    def worker(i):
        s = None
        try:
            s = connect(host, port)
            s.sendall(b"E")
            # Write from a helper thread so a full pipe can't deadlock us.
            w = threading.Thread(target=s.sendall, args=(payload,))
            w.start()
            got = recv_exact(s, n)
            w.join()
            if got != payload:
                raise OSError("echoed bytes differ")
        except (OSError, EOFError) as e:
            with lock:
                failures.append(f"conn {i}: {e!r}")
        try:
            done.wait()
        except threading.BrokenBarrierError:
            pass
        release.wait(TIMEOUT)
        if s:
            s.close()

    rss_max = [rss_kib(pid)]
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            try:
                rss_max[0] = max(rss_max[0], rss_kib(pid))
            except OSError:
                return
            time.sleep(0.005)

    smp = threading.Thread(target=sampler)
    smp.start()
    t0 = time.perf_counter()
    ths = [threading.Thread(target=worker, args=(i,)) for i in range(conns)]
    for t in ths:
        t.start()
    try:
        done.wait()
    except threading.BrokenBarrierError:
        failures.append("barrier broken (timeout)")
    dt = time.perf_counter() - t0
    time.sleep(0.2)  # all connections still open: let the client settle
    rss_open = rss_kib(pid)
    release.set()
    for t in ths:
        t.join(TIMEOUT)
    stop.set()
    smp.join()
    for f in failures[:10]:
        print(f, file=sys.stderr)
    print(f"{dt:.6f} {len(failures)} {rss_open} {max(rss_max[0], rss_open)}")


def main():
    a = sys.argv[1:]
    if not a:
        raise SystemExit(__doc__)
    cmd = a[0]
    if cmd == "serve":
        serve(a[1])
    elif cmd in ("down", "up"):
        host, port, n = a[1], int(a[2]), int(a[3])
        socks, k = None, 1
        rest = a[4:]
        while rest:
            if rest[0] == "--socks":
                socks = (rest[1], int(rest[2]))
                rest = rest[3:]
            elif rest[0] == "--streams":
                k = int(rest[1])
                rest = rest[2:]
            else:
                raise SystemExit(f"unknown option {rest[0]}")
        streams(cmd, host, port, n, socks, k)
    elif cmd == "ping":
        ping(a[1], int(a[2]), int(a[3]))
    elif cmd == "setup":
        i = a.index("--")
        setup(int(a[1]), a[2], a[i + 1:])
    elif cmd == "many":
        many(a[1], int(a[2]), int(a[3]), int(a[4]), int(a[5]))
    elif cmd == "rss":
        print(rss_kib(int(a[1])))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
