"""Per-connection user data, PING/PONG events, abortive close, and engine-side argument
checks surfacing as InvalidArgumentError."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest
import websocket  # websocket-client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import wsembed

from conftest import DEADLINE, Collector


class Session:
    def __init__(self, name: str) -> None:
        self.name = name


def test_user_data_rides_on_every_event_then_is_dropped(server, events):
    with connect(server.url) as ws:
        opened = events.wait(wsembed.Open)
        assert opened.user_data is None
        session = Session("ann")
        ref = weakref.ref(session)
        server.set_user_data(opened.conn, session)
        assert server.get_user_data(opened.conn) is session
        ws.send("hi")
        msg = events.wait(wsembed.Message)
        assert msg.user_data is session
        server.set_user_data(opened.conn, {"replaced": True})
        ws.send(b"bin")
        assert events.wait(wsembed.Message).user_data == {"replaced": True}
        del session, msg
        events.seen.clear()  # the test's own references
        gc.collect()
        assert ref() is None, "the replaced value is not held any more"
        holder = Session("bob")
        ref = weakref.ref(holder)
        server.set_user_data(opened.conn, holder)
        del holder
    close = events.wait(wsembed.Close)
    assert close.user_data.name == "bob"  # the Close carries it one last time
    assert server.get_user_data(close.conn) is None
    del close
    events.seen.clear()
    gc.collect()
    assert ref() is None, "the server dropped its reference after the Close"
    assert server._user_data == {}
    # The connection is gone: attaching more is refused, nothing leaks.
    with pytest.raises(wsembed.ConnectionClosedError):
        server.set_user_data(opened.conn, object())
    assert server._user_data == {}


def test_user_data_from_the_handshake_and_none_detaches():
    with wsembed.Server(approve_handshakes=True) as server:
        events = Collector(server)
        results = []
        t = threading.Thread(target=lambda: results.append(websocket.create_connection(server.url, timeout=DEADLINE)))
        t.start()
        hs = events.wait(wsembed.Handshake)
        server.set_user_data(hs.conn, "from handshake")
        server.accept(hs.conn)
        t.join(DEADLINE)
        ws = results[0]
        try:
            assert events.wait(wsembed.Open).user_data == "from handshake"
            server.set_user_data(hs.conn, None)
            ws.send("x")
            assert events.wait(wsembed.Message).user_data is None
        finally:
            ws.close()
        assert events.wait(wsembed.Close).user_data is None


def test_user_data_set_from_many_threads_never_leaks(server, events):
    """set_user_data racing the Close from other threads leaves nothing behind."""
    for _ in range(20):
        ws = websocket.create_connection(server.url, timeout=DEADLINE)
        conn = events.wait(wsembed.Open).conn
        stop = threading.Event()

        def setter() -> None:
            while not stop.is_set():
                try:
                    server.set_user_data(conn, object())
                except wsembed.ConnectionClosedError:
                    return

        threads = [threading.Thread(target=setter) for _ in range(2)]
        for t in threads:
            t.start()
        ws.close()
        events.wait(wsembed.Close, lambda e: e.conn == conn)
        stop.set()
        for t in threads:
            t.join()
    assert server._user_data == {}


def test_ping_and_pong_events():
    with wsembed.Server(ping_events=True) as server:
        events = Collector(server)
        ws = websocket.create_connection(server.url, timeout=DEADLINE)
        try:
            conn = events.wait(wsembed.Open).conn
            server.set_user_data(conn, "u")
            # Client ping: the engine answers it and reports it.
            ws.ping(b"are you there")
            ping = events.wait(wsembed.Ping)
            assert (ping.conn, ping.data, ping.user_data) == (conn, b"are you there", "u")
            opcode, data = ws.recv_data(control_frame=True)
            assert opcode == websocket.ABNF.OPCODE_PONG and data == b"are you there"
            # Server ping: websocket-client answers with a pong carrying the payload.
            server.ping(conn, b"t=123")
            opcode, data = ws.recv_data(control_frame=True)
            assert opcode == websocket.ABNF.OPCODE_PING and data == b"t=123"
            ws.pong(data)
            pong = events.wait(wsembed.Pong)
            assert (pong.conn, pong.data) == (conn, b"t=123")
            server.ping(conn)  # empty payload
            assert ws.recv_data(control_frame=True) == (websocket.ABNF.OPCODE_PING, b"")
            # The engine checks the payload size.
            with pytest.raises(wsembed.InvalidArgumentError):
                server.ping(conn, b"x" * 126)
        finally:
            ws.close()


def test_no_ping_events_by_default(server, events):
    ws = websocket.create_connection(server.url, timeout=DEADLINE)
    try:
        conn = events.wait(wsembed.Open).conn
        ws.ping(b"quiet")
        assert ws.recv_data(control_frame=True) == (websocket.ABNF.OPCODE_PONG, b"quiet")
        ws.send("after")
        msg = events.wait(wsembed.Message)
        assert msg.data == "after"
        assert not any(isinstance(e, (wsembed.Ping, wsembed.Pong)) for e in events.seen)
        server.ping(conn, "text is sent as UTF-8")
    finally:
        ws.close()


def test_terminate_drops_the_connection_with_1006(server, events):
    with connect(server.url) as ws:
        conn = events.wait(wsembed.Open).conn
        server.terminate(conn)
        close = events.wait(wsembed.Close)
        assert (close.conn, close.code, close.clean) == (conn, 1006, False)
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=DEADLINE)
        assert info.value.rcvd is None  # no close frame: the TCP connection was dropped
    with pytest.raises(wsembed.ConnectionClosedError):
        server.terminate(conn)
    # After close() too: no waiting for the close handshake.
    ws = websocket.create_connection(server.url, timeout=DEADLINE)
    try:
        conn = events.wait(wsembed.Open).conn
        server.close(conn, 1000)
        server.terminate(conn)
        assert events.wait(wsembed.Close).code in (1000, 1006)
    finally:
        ws.shutdown()


def test_engine_checks_arguments(server, events):
    """Close codes, reasons, reject statuses are validated by the engine; its message is the
    error's text."""
    with connect(server.url):
        conn = events.wait(wsembed.Open).conn
        with pytest.raises(wsembed.InvalidArgumentError) as info:
            server.close(conn, 1005)
        assert "1005" in str(info.value)
        with pytest.raises(wsembed.InvalidArgumentError) as info:
            server.close(conn, 1000, "x" * 124)
        assert "123" in str(info.value) or "reason" in str(info.value)
        # Only the C width is checked on the Python side (ctypes would wrap 70000 to 4464).
        with pytest.raises(wsembed.InvalidArgumentError, match="does not fit"):
            server.close(conn, 70000)
