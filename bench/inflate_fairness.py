#!/usr/bin/env python3
"""Neighbour latency while one peer sends compressed messages that each inflate to 16 MiB.

    cargo build --release
    WSEMBED_LIBRARY=$PWD/target/release/libwsembed.so PYTHONPATH=bindings/python/src \
        python3 bench/inflate_fairness.py [--bombs 64] [--seconds 5]

Starts a wsembed server (Python binding, `compression=shared`, 16 MiB messages) in a child
process that echoes messages under 1 KiB and drops the rest, so the loop's only heavy work is
inflating. Peer A (permessage-deflate) sends `--bombs` messages of ~16 KB that inflate to
16 MiB each; peer B (plain) echoes 32-byte texts in a closed loop meanwhile. Prints B's echo
round trips: p50, p99 and max. Inflating is bounded per loop turn, so the max stays in the
milliseconds; one synchronous inflate per message let it reach 0.5-1.5 s. Point
WSEMBED_LIBRARY at another build to compare (without it, an installed wsembed package is used).
"""

import argparse
import base64
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib


def serve() -> None:
    import wsembed

    with wsembed.Server(port=0, max_message_size=16 << 20, compression="shared") as server:
        print(f"listening on ws://127.0.0.1:{server.port}", flush=True)
        while True:
            for event in server.poll(0.2):
                if type(event) is wsembed.Message and len(event.data) < 1024:
                    try:
                        server.send(event.conn, event.data)
                    except wsembed.WsembedError:
                        pass


def connect(port: int, deflate: bool) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else ""
    sock.sendall(
        f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n".encode()
    )
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            sys.exit("the server hung up during the handshake")
        head += chunk
    if b" 101 " not in head or (deflate and b"permessage-deflate" not in head):
        sys.exit(f"unexpected handshake answer: {head!r}")
    return sock


def frame(first: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        length = bytes([0x80 | n])
    elif n < 65536:
        length = bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        length = bytes([0x80 | 127]) + struct.pack(">Q", n)
    return bytes([first]) + length + b"\0\0\0\0" + payload  # a zero mask leaves the payload as is


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bombs", type=int, default=64, help="compressed messages peer A sends")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long peer B measures")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return 0
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        if not line.startswith("listening on "):
            sys.exit("the server did not start (is WSEMBED_LIBRARY set?)")
        port = int(line.rsplit(":", 1)[1])
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        bomb = compressor.compress(b"a" * ((16 << 20) - 64)) + compressor.flush(zlib.Z_SYNC_FLUSH)
        bomb = bomb[:-4]  # RFC 7692: the 00 00 ff ff tail is left off
        a, b = connect(port, True), connect(port, False)

        def echo() -> float:
            started = time.perf_counter()
            b.sendall(frame(0x81, b"x" * 32))
            got = b""
            while len(got) < 34:
                chunk = b.recv(100)
                if not chunk:
                    sys.exit("peer B was disconnected")
                got += chunk
            return time.perf_counter() - started

        for _ in range(20):
            echo()
        threading.Thread(target=a.sendall, args=(frame(0xC2, bomb) * args.bombs,), daemon=True).start()
        rtts = []
        started = time.perf_counter()
        while time.perf_counter() - started < args.seconds:
            rtts.append(echo())
        rtts.sort()
        pct = lambda p: rtts[min(len(rtts) - 1, int(p * len(rtts)))] * 1e3
        print(
            f"peer A: {args.bombs} messages of {len(bomb)} B inflating to 16 MiB each; peer B: {len(rtts)} echoes, "
            f"p50 {pct(0.5):.2f} ms, p99 {pct(0.99):.2f} ms, max {rtts[-1] * 1e3:.2f} ms"
        )
    finally:
        server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
