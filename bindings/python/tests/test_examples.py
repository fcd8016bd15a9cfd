"""The example scripts, run as real processes."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

import wsembed

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
REPO_ROOT = EXAMPLES.parent.parent.parent
PACKAGE_PARENT = str(Path(wsembed.__file__).resolve().parent.parent)


@contextlib.contextmanager
def run_example(*args: str):
    """Starts an example, waits for its "listening on ws://127.0.0.1:PORT" line, yields the URL."""
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()  # the script flushes it; EOF if it died
        match = re.fullmatch(r"listening on (ws://127\.0\.0\.1:(\d+))\n", line)
        assert match, f"unexpected first line {line!r}; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
        yield match.group(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == 0


def test_echo_server_example():
    with run_example(str(EXAMPLES / "echo_server.py"), "--port", "0") as url:
        with connect(url, max_size=None) as ws:
            ws.send("hello")
            assert ws.recv(timeout=10) == "hello"
            ws.send(b"\x00\x01\x02")
            assert ws.recv(timeout=10) == b"\x00\x01\x02"
            big = os.urandom(16 * 1024 * 1024)  # 16 MiB is allowed
            ws.send(big)
            assert ws.recv(timeout=30) == big


def test_echo_server_example_host_driven():
    """--inline: no loop thread; the script's polls run the engine, and its sends between polls
    go straight into the connection's queue."""
    with run_example(str(EXAMPLES / "echo_server.py"), "--port", "0", "--inline") as url:
        with connect(url, max_size=None) as ws:
            for i in range(200):
                ws.send(f"m{i}")
                assert ws.recv(timeout=10) == f"m{i}"
            big = os.urandom(1024 * 1024)
            ws.send(big)
            assert ws.recv(timeout=30) == big


def test_echo_server_example_broadcast():
    with run_example(str(EXAMPLES / "echo_server.py"), "--broadcast") as url:
        with connect(url) as a, connect(url) as b:
            a.send("one")
            assert a.recv(timeout=10) == "one"
            # b may have connected after "one" was broadcast; a message sent now reaches both.
            b.send(b"two")
            assert a.recv(timeout=10) == b"two"
            got = b.recv(timeout=10)
            if got == "one":
                got = b.recv(timeout=10)
            assert got == b"two"


@pytest.mark.skipif(not (REPO_ROOT / "examples" / "chat" / "index.html").is_file(), reason="no chat page")
def test_chat_server_example():
    with run_example(str(EXAMPLES / "chat_server.py"), "--port", "0") as url:
        http = url.replace("ws://", "http://")
        page = urllib.request.urlopen(http + "/", timeout=10).read()
        assert page == (REPO_ROOT / "examples" / "chat" / "index.html").read_bytes()
        with connect(url + "/ws") as a, connect(url + "/ws") as b:
            # Make sure both are registered: each sees its own ping back, then a's chat line.
            a.send("a here")
            assert a.recv(timeout=10) == "a here"
            b.send("b here")
            while a.recv(timeout=10) != "b here":
                pass
            while b.recv(timeout=10) != "b here":  # may first see "a here"
                pass
            a.send("hello everyone")
            assert a.recv(timeout=10) == "hello everyone"
            assert b.recv(timeout=10) == "hello everyone"
