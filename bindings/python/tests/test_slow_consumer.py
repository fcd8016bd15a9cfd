"""A client that sends many 1 MiB messages to examples/echo_server.py and never reads the
echoes: the server's memory must stay bounded (the engine's send queue is capped by
max_buffered_bytes; a send refused with WouldBlockError is not kept on the Python side), and
must go back down once the client has left."""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import wsembed

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PACKAGE_PARENT = str(Path(wsembed.__file__).resolve().parent.parent)
MIB = 1 << 20
# The example runs with the defaults. What the server may grow by over its idle RSS: the two
# engine budgets a flooding client can fill (its send queue, max_buffered_bytes, and the events
# waiting for Python, max_pending_event_bytes) plus 200 MB for everything else.
MAX_BUFFERED = int(wsembed.OPTIONS["max_buffered_bytes"].default)
MAX_PENDING = int(wsembed.OPTIONS["max_pending_event_bytes"].default)
GROWTH = MAX_BUFFERED + MAX_PENDING + 200 * 1000 * 1000
MESSAGES = 1000


def rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (VmRSS in /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def frame(payload: bytes) -> bytes:
    """A masked binary frame; the all-zero mask key leaves the payload as it is (legal: the
    client must mask, any key will do) so the test spends no time masking."""
    n = len(payload)
    head = bytes([0x82, 0x80 | 127]) + n.to_bytes(8, "big") if n >= 1 << 16 else bytes([0x82, 0x80 | 126]) + n.to_bytes(2, "big")
    return head + b"\0\0\0\0" + payload


def open_raw(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    # A small receive buffer: the echoes pile up in the server, not in this kernel.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, "server closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/status")
def test_slow_reader_keeps_echo_server_memory_bounded():
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "echo_server.py"), "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.fullmatch(r"listening on ws://127\.0\.0\.1:(\d+)\n", line)
        assert match, f"unexpected first line {line!r}"
        port = int(match.group(1))
        baseline = rss(proc.pid)
        BOUND = baseline + GROWTH
        peak = baseline

        sock = open_raw(port)
        data = frame(os.urandom(MIB))
        deadline = time.monotonic() + 120
        for i in range(MESSAGES):
            sock.sendall(data)
            if i % 10 == 0:
                peak = max(peak, rss(proc.pid))
                assert peak < BOUND, f"server RSS {peak >> 20} MiB after {i} messages (bound {BOUND >> 20} MiB)"
            assert time.monotonic() < deadline, f"only {i} messages sent in 120 s"
        # The server has read everything it will; let it settle a little, watching RSS.
        settle = time.monotonic() + 2
        while time.monotonic() < settle:
            peak = max(peak, rss(proc.pid))
            time.sleep(0.05)
        assert peak < BOUND, f"server RSS peaked at {peak >> 20} MiB (bound {BOUND >> 20} MiB)"
        assert peak > baseline + 32 * MIB, "the server never queued anything: the test did not test"

        # The client leaves without reading: the queued echoes are freed.
        sock.close()
        target = baseline + (peak - baseline) // 2
        deadline = time.monotonic() + 30
        now = rss(proc.pid)
        while now > target and time.monotonic() < deadline:
            time.sleep(0.1)
            now = rss(proc.pid)
        assert now <= target, (
            f"server RSS still {now >> 20} MiB 30 s after the client left "
            f"(baseline {baseline >> 20} MiB, peak {peak >> 20} MiB)"
        )
        print(f"slow consumer: baseline {baseline >> 20} MiB, peak {peak >> 20} MiB, after {now >> 20} MiB")
        assert proc.poll() is None, proc.stderr.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
