#!/usr/bin/env python3
"""Echo throughput: examples/echo_server.py (wsembed) vs a `websockets`-library echo server,
under the same closed-loop load in one run.

    python bindings/python/bench/echo_compare.py [--conns 8] [--depth 16] [--size 16]
                                                 [--duration 5] [--warmup 1]
                                                 [--loadgen bench/target/release/loadgen]

Each server runs in its own process. The load: `--conns` WebSocket connections, each keeping
`--depth` binary messages of `--size` bytes in flight (a new message is sent for each echo
received). The default client is a small raw-socket client in a separate process (it only
counts fixed-size echo frames, so it stays cheap); `--loadgen` uses the repo's Rust loadgen
instead. Prints messages/s and server CPU seconds per server.
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import re
import selectors
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ECHO_WSEMBED = HERE.parent / "examples" / "echo_server.py"

WEBSOCKETS_ECHO = textwrap.dedent(
    """
    import asyncio, sys
    from websockets.asyncio.server import serve

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async def main():
        async with serve(echo, "127.0.0.1", 0, max_size=16 * 1024 * 1024, compression=None) as server:
            port = server.sockets[0].getsockname()[1]
            print(f"listening on ws://127.0.0.1:{port}", flush=True)
            await asyncio.Future()

    asyncio.run(main())
    """
)


def start(cmd: list) -> tuple:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.match(r"listening on ws://127\.0\.0\.1:(\d+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"server {cmd} did not start: {line!r}")
    return proc, int(match.group(1))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def handshake(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.decode(errors="replace"))
    assert head.endswith(b"\r\n\r\n"), "server sent data right after the handshake"
    return sock


def client(port: int, conns: int, depth: int, size: int, warmup: float, duration: float, out) -> None:
    """Closed loop: every echo received triggers one new message on that connection."""
    if size > 125:
        raise SystemExit("the built-in client supports --size up to 125")
    mask = b"\x37\xfa\x21\x3d"
    payload = bytes(i & 0xFF for i in range(size))
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    frame = bytes([0x82, 0x80 | size]) + mask + masked  # FIN+binary, masked
    reply = 2 + size  # FIN+binary, unmasked, 7-bit length
    sel = selectors.DefaultSelector()
    leftover = {}
    for _ in range(conns):
        sock = handshake(port)
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ)
        leftover[sock] = 0
        sock.sendall(frame * depth)
    received = 0
    start = time.monotonic()
    t0 = start + warmup
    t1 = t0 + duration
    n0 = None
    while True:
        now = time.monotonic()
        if n0 is None and now >= t0:
            n0, t0 = received, now
        if now >= t1:
            break
        for key, _ in sel.select(0.5):
            sock = key.fileobj
            data = sock.recv(1 << 20)
            if not data:
                raise ConnectionError("server closed the connection")
            total = leftover[sock] + len(data)
            done, leftover[sock] = divmod(total, reply)
            if done:
                received += done
                sock.setblocking(True)
                sock.sendall(frame * done)
                sock.setblocking(False)
    out.put((received - n0) / (now - t0))
    for sock in leftover:
        sock.close()


def measure_builtin(port: int, pid: int, args) -> tuple:
    queue = multiprocessing.Queue()
    proc = multiprocessing.Process(
        target=client, args=(port, args.conns, args.depth, args.size, args.warmup, args.duration, queue)
    )
    proc.start()
    time.sleep(args.warmup)  # measure server CPU over the measured window only
    c0 = cpu_seconds(pid)
    rate = queue.get(timeout=args.warmup + args.duration + 60)
    c1 = cpu_seconds(pid)
    proc.join()
    return rate, c1 - c0


def measure_loadgen(port: int, pid: int, args) -> tuple:
    cmd = [
        args.loadgen, "--mode", "echo", "--port", str(port), "--conns", str(args.conns),
        "--depth", str(args.depth), "--size", str(args.size), "--duration", str(args.duration),
        "--warmup", str(args.warmup), "--server-pid", str(pid),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    rate = result.get("msgs_per_s")
    cpu = result.get("server_cpu_s")
    if rate is None or result.get("error"):
        raise SystemExit(f"loadgen failed: {result}")
    return rate, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description="echo msgs/s: wsembed echo_server.py vs websockets")
    parser.add_argument("--conns", type=int, default=8)
    parser.add_argument("--depth", type=int, default=16)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--loadgen", help="path to the repo's Rust loadgen (default: built-in Python client)")
    args = parser.parse_args()

    servers = [
        ("wsembed echo_server.py", [sys.executable, str(ECHO_WSEMBED)]),
        ("websockets echo", [sys.executable, "-c", WEBSOCKETS_ECHO]),
    ]
    client_name = args.loadgen or "built-in Python client"
    print(
        f"load: {args.conns} connections x {args.depth} in flight, {args.size}-byte binary messages, "
        f"{args.duration}s after {args.warmup}s warm-up ({client_name}; {os.cpu_count()} CPUs)"
    )
    results = {}
    for name, cmd in servers:
        proc, port = start(cmd)
        try:
            measure = measure_loadgen if args.loadgen else measure_builtin
            rate, cpu = measure(port, proc.pid, args)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        results[name] = rate
        cpu_text = f", server CPU {cpu:.2f}s" if cpu is not None else ""
        print(f"{name:24s} {rate:12,.0f} msgs/s{cpu_text}", flush=True)
    a, b = results.values()
    print(f"ratio: {a / b:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
