"""Rate limits, backpressure close codes and the stats() counters, with real clients."""

from __future__ import annotations

import dataclasses
import time

import pytest
import websocket  # websocket-client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import wsembed

from conftest import DEADLINE, Collector


def wait_for_stats(server: wsembed.Server, predicate, deadline: float = DEADLINE) -> wsembed.Stats:
    """Re-reads stats() until ``predicate`` holds (counters the client cannot observe)."""
    end = time.monotonic() + deadline
    while True:
        stats = server.stats()
        if predicate(stats):
            return stats
        if time.monotonic() > end:
            raise AssertionError(f"stats never matched within {deadline}s: {stats}")
        server.poll(0.01)  # a real wait on the event fd, not a sleep


def test_stats_after_exchange_and_close():
    with wsembed.Server() as server:
        events = Collector(server)
        assert server.stats() == wsembed.Stats(*([0] * len(dataclasses.fields(wsembed.Stats))))
        with connect(server.url) as ws:
            conn = events.wait(wsembed.Open).conn
            stats = server.stats()
            assert stats.open_connections == 1 and stats.handshakes_accepted == 1
            ws.send("ping")
            msg = events.wait(wsembed.Message)
            server.send(conn, "pong: " + msg.data)
            assert ws.recv(timeout=DEADLINE) == "pong: ping"
            ws.send(b"\x00" * 1000)
            events.wait(wsembed.Message)
        close = events.wait(wsembed.Close)
        assert close.code == 1000 and close.clean

        stats = server.stats()
        assert isinstance(stats, wsembed.Stats)
        assert stats.open_connections == 0
        assert stats.handshakes_accepted == 1
        assert stats.handshakes_rejected == 0
        assert stats.messages_in == 2
        assert stats.messages_out == 1
        assert stats.bytes_in > 1000 + len("ping")  # plus the upgrade request and frame headers
        assert stats.bytes_out > len("pong: ping")  # plus the 101 response
        assert stats.closes_clean == 1
        assert stats.closes_dropped == stats.closes_policy == stats.closes_timeout == 0
        assert stats.closes_protocol_error == stats.rate_limited == stats.dropped_deliveries == 0
        assert set(dataclasses.asdict(stats)) == set(f.name for f in dataclasses.fields(wsembed.Stats))

        # A dropped TCP connection and a broadcast count too.
        ws1 = websocket.create_connection(server.url, timeout=DEADLINE)
        with connect(server.url):
            events.wait(wsembed.Open)
            events.wait(wsembed.Open)
            server.broadcast("all")
            assert ws1.recv() == "all"
            ws1.shutdown()
            assert events.wait(wsembed.Close).code == 1006
        events.wait(wsembed.Close)
        stats = server.stats()
        assert stats.messages_out == 1 + 2
        assert stats.closes_dropped == 1 and stats.closes_clean == 2
        assert stats.handshakes_accepted == 3 and stats.open_connections == 0

    # Stats stay readable after stop.
    assert server.stats().handshakes_accepted == 3


def test_rate_limit_close_with_1008():
    with wsembed.Server(max_messages_per_sec=5) as server:
        events = Collector(server)
        with connect(server.url) as ws:
            conn = events.wait(wsembed.Open).conn
            try:
                for i in range(20):
                    ws.send(f"m{i}")
            except ConnectionClosed:
                pass  # the close may arrive while we are still sending
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    ws.recv(timeout=DEADLINE)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1008
        close = events.wait(wsembed.Close, lambda e: e.conn == conn)
        assert close.code == 1008
        delivered = [e for e in events.seen if isinstance(e, wsembed.Message)]
        assert 5 <= len(delivered) < 20
        assert [m.data for m in delivered] == [f"m{i}" for i in range(len(delivered))]
        stats = server.stats()
        assert stats.messages_in == len(delivered)
        # The engine counts each close once; a policy close whose close handshake completed
        # (the client answered the 1008) is counted under closes_clean.
        assert stats.closes_policy + stats.closes_clean == 1


def test_rate_limit_drop_keeps_connection():
    with wsembed.Server(max_messages_per_sec=5, rate_limit_policy="drop") as server:
        events = Collector(server)
        with connect(server.url) as ws:
            conn = events.wait(wsembed.Open).conn
            for i in range(20):
                ws.send(f"m{i}")
            stats = wait_for_stats(server, lambda s: s.messages_in + s.rate_limited == 20)
            assert 5 <= stats.messages_in < 20 and stats.rate_limited > 0
            # Still open: the server can talk to it.
            server.send(conn, "still here")
            assert ws.recv(timeout=DEADLINE) == "still here"
        assert events.wait(wsembed.Close).code == 1000
        assert server.stats().closes_policy == 0


def test_byte_rate_limit():
    with wsembed.Server(max_bytes_per_sec=1000) as server:
        events = Collector(server)
        with connect(server.url) as ws:
            events.wait(wsembed.Open)
            try:
                for _ in range(10):
                    ws.send(b"x" * 500)
            except ConnectionClosed:
                pass
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    ws.recv(timeout=DEADLINE)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1008
        assert events.wait(wsembed.Close).code == 1008


@pytest.mark.parametrize("code", [1008, 1013])
def test_backpressure_close_code(code):
    with wsembed.Server(
        backpressure="close", backpressure_close_code=code, max_buffered_bytes=1 << 16, close_timeout_ms=300
    ) as server:
        events = Collector(server)
        # websocket-client reads nothing unless asked, so the queue fills up.
        ws = websocket.create_connection(server.url, timeout=DEADLINE)
        try:
            conn = events.wait(wsembed.Open).conn
            chunk = b"\x01" * (1 << 16)
            with pytest.raises(wsembed.ConnectionClosedError):
                for _ in range(4096):  # at most 256 MiB: far beyond any socket buffer
                    server.send(conn, chunk)
            # The client reads nothing, so the close handshake cannot finish: close_timeout_ms.
            close = events.wait(wsembed.Close, lambda e: e.conn == conn)
            assert close.code == code and not close.clean
            assert server.stats().closes_policy == 1
        finally:
            ws.shutdown()


def test_bad_option_values():
    for bad in (
        dict(backpressure_close_code=1000),
        dict(rate_limit_policy="sometimes"),
        dict(approve_handshakes="maybe"),
        dict(approval_timeout_ms=0),
        dict(max_message_size=True),  # a switch where a number is wanted
    ):
        with pytest.raises(wsembed.InvalidArgumentError):
            wsembed.Server(**bad)
    # Every new option is accepted by name.
    with wsembed.Server(
        approve_handshakes=False,
        approval_timeout_ms=5000,
        allowed_origins=[],
        max_messages_per_sec=0,
        max_bytes_per_sec=0,
        rate_limit_policy="close",
        max_connections_per_ip=0,
        max_handshakes_per_ip_per_sec=0,
        backpressure="block",
        backpressure_close_code=1013,
        max_buffered_bytes=1 << 20,
    ) as server:
        with connect(server.url):
            assert isinstance(Collector(server).next(), wsembed.Open)
