"""Echo, broadcast, topics, options and events with real clients."""

from __future__ import annotations

import contextlib
import threading
import urllib.request

import pytest
import websocket  # websocket-client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import wsembed

from conftest import Collector


def test_echo_text_and_binary_websockets(server, events):
    with connect(server.url + "/echo?x=1", additional_headers={"X-Test": "yes"}) as ws:
        opened = events.wait(wsembed.Open)
        assert opened.path == "/echo?x=1"
        assert opened.peer.startswith("127.0.0.1:")
        assert opened.protocol is None
        assert opened.header("x-test") == "yes"
        assert ("X-Test", "yes") in opened.headers

        ws.send("héllo ✓")
        msg = events.wait(wsembed.Message)
        assert msg.conn == opened.conn
        assert msg.is_text and not msg.is_binary
        assert msg.data == "héllo ✓" and msg.text == "héllo ✓"
        server.send(msg.conn, msg.data)
        assert ws.recv(timeout=5) == "héllo ✓"

        payload = bytes(range(256)) * 100
        ws.send(payload)
        msg = events.wait(wsembed.Message)
        assert not msg.is_text and msg.data == payload
        server.send(msg.conn, msg.data)
        assert ws.recv(timeout=5) == payload

        # bytearray and memoryview send binary; empty messages work both ways.
        server.send(msg.conn, bytearray(b"from bytearray"))
        assert ws.recv(timeout=5) == b"from bytearray"
        server.send(msg.conn, memoryview(b"xxfrom memoryviewxx")[2:-2])
        assert ws.recv(timeout=5) == b"from memoryview"
        server.send(msg.conn, "")
        assert ws.recv(timeout=5) == ""
        ws.send(b"")
        msg = events.wait(wsembed.Message)
        assert msg.data == b"" and not msg.is_text


def test_echo_websocket_client(server, events):
    ws = websocket.create_connection(server.url + "/", timeout=5)
    try:
        ws.send("text message")
        msg = events.wait(wsembed.Message)
        server.send(msg.conn, msg.data)
        opcode, data = ws.recv_data()
        assert opcode == websocket.ABNF.OPCODE_TEXT and data == "text message".encode()

        ws.send_binary(b"\x00\xffbinary")
        msg = events.wait(wsembed.Message)
        assert msg.data == b"\x00\xffbinary"
        server.send(msg.conn, msg.data)
        opcode, data = ws.recv_data()
        assert opcode == websocket.ABNF.OPCODE_BINARY and data == b"\x00\xffbinary"
    finally:
        ws.close()
    close = events.wait(wsembed.Close)
    assert close.code == 1000 and close.clean


def test_broadcast(server, events):
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect(server.url)) for _ in range(3)]
        conns = [events.wait(wsembed.Open).conn for _ in clients]
        server.broadcast("to everyone")
        for ws in clients:
            assert ws.recv(timeout=5) == "to everyone"
        server.broadcast(b"all but first", exclude=conns[0])
        server.broadcast("marker")
        assert clients[0].recv(timeout=5) == "marker"
        for ws in clients[1:]:
            assert ws.recv(timeout=5) == b"all but first"
            assert ws.recv(timeout=5) == "marker"


def test_topics(server, events):
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect(server.url)) for _ in range(3)]
        a, b, c = (events.wait(wsembed.Open).conn for _ in clients)
        # Opens may arrive in any order relative to clients; map conn -> client by asking.
        by_conn = {}
        for conn in (a, b, c):
            server.send(conn, str(conn))
        for ws in clients:
            by_conn[int(ws.recv(timeout=5))] = ws
        server.subscribe(a, "news")
        server.subscribe(b, "news")
        server.subscribe(b, "news")  # twice is harmless
        server.subscribe(c, "sport")
        server.publish("news", "headline")
        server.publish("sport", b"score")
        server.publish("nobody-listens", "void")
        assert by_conn[a].recv(timeout=5) == "headline"
        assert by_conn[b].recv(timeout=5) == "headline"
        assert by_conn[c].recv(timeout=5) == b"score"

        server.unsubscribe(b, "news")
        server.publish("news", "second")
        server.broadcast("end")
        assert by_conn[a].recv(timeout=5) == "second"
        assert by_conn[a].recv(timeout=5) == "end"
        assert by_conn[b].recv(timeout=5) == "end"
        assert by_conn[c].recv(timeout=5) == "end"


def test_close_codes(server, events):
    # Server closes with a code and reason.
    with connect(server.url) as ws:
        conn = events.wait(wsembed.Open).conn
        server.close(conn, 4001, "bye now")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "bye now")
        close = events.wait(wsembed.Close)
        assert close.conn == conn and close.code == 4001 and close.clean

    # Client closes with a code and reason.
    with connect(server.url) as ws:
        conn = events.wait(wsembed.Open).conn
        ws.close(4002, "see you")
    close = events.wait(wsembed.Close)
    assert (close.conn, close.code, close.reason, close.clean) == (conn, 4002, "see you", True)

    # Client sends no code: 1005.
    ws = websocket.create_connection(server.url, timeout=5)
    conn = events.wait(wsembed.Open).conn
    ws.send(b"", websocket.ABNF.OPCODE_CLOSE)
    close = events.wait(wsembed.Close)
    assert close.conn == conn and close.code == 1005
    ws.shutdown()

    # TCP drops without a close frame: 1006, not clean.
    ws = websocket.create_connection(server.url, timeout=5)
    conn = events.wait(wsembed.Open).conn
    ws.shutdown()
    close = events.wait(wsembed.Close)
    assert close.conn == conn and close.code == 1006 and not close.clean


def test_bad_close_arguments_raise(server, events):
    with connect(server.url):
        conn = events.wait(wsembed.Open).conn
        with pytest.raises(wsembed.InvalidArgumentError):
            server.close(conn, 1005)
        with pytest.raises(wsembed.InvalidArgumentError):
            server.close(conn, 1000, "x" * 124)
        with pytest.raises(ValueError):
            server.close(conn, 1000, "nul\0inside")


def test_close_code_1014_and_other_valid_codes(server, events):
    for code, reason in ((1014, "bad gateway"), (1011, ""), (1003, "no binary"), (3000, "app")):
        with connect(server.url) as ws:
            conn = events.wait(wsembed.Open).conn
            server.close(conn, code, reason)
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=5)
            assert info.value.rcvd is not None
            assert (info.value.rcvd.code, info.value.rcvd.reason) == (code, reason)
        close = events.wait(wsembed.Close)
        assert (close.conn, close.code, close.clean) == (conn, code, True)
    with connect(server.url):
        conn = events.wait(wsembed.Open).conn
        for bad in (999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 70000):
            with pytest.raises(wsembed.InvalidArgumentError):
                server.close(conn, bad)


def test_stale_ids_raise(server, events):
    with pytest.raises(wsembed.ConnectionClosedError):
        server.send(987654321, "never existed")
    with connect(server.url) as ws:
        conn = events.wait(wsembed.Open).conn
        ws.close()
    assert events.wait(wsembed.Close).conn == conn
    for call in (
        lambda: server.send(conn, "late"),
        lambda: server.send(conn, b"late"),
        lambda: server.subscribe(conn, "t"),
        lambda: server.close(conn),
        lambda: server.buffered_amount(conn),
        lambda: server.accept(conn),
        lambda: server.reject(conn, 403),
    ):
        with pytest.raises(wsembed.ConnectionClosedError) as info:
            call()
        assert info.value.code == 3
        assert isinstance(info.value, wsembed.WsembedError)
    # A connection being closed is already stale for sends.
    with connect(server.url):
        conn = events.wait(wsembed.Open).conn
        server.close(conn)
        with pytest.raises(wsembed.ConnectionClosedError):
            server.send(conn, "after close")


def test_sends_from_8_threads(server, events):
    per_thread = 250
    with connect(server.url, max_size=None) as ws:
        conn = events.wait(wsembed.Open).conn
        barrier = threading.Barrier(8)
        errors = []

        def sender(tid: int) -> None:
            try:
                barrier.wait(timeout=10)
                for i in range(per_thread):
                    if i % 2:
                        server.send(conn, f"{tid}:{i}")
                    else:
                        server.send(conn, f"{tid}:{i}".encode())
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=sender, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        received = {t: [] for t in range(8)}
        for _ in range(8 * per_thread):
            msg = ws.recv(timeout=10)
            text = msg.decode() if isinstance(msg, bytes) else msg
            tid, i = map(int, text.split(":"))
            assert isinstance(msg, bytes) == (i % 2 == 0)
            received[tid].append(i)
        for t in threads:
            t.join()
        assert not errors
        # Each thread's messages arrive complete and in that thread's order.
        for tid in range(8):
            assert received[tid] == list(range(per_thread))


def test_broadcast_and_publish_from_threads(server, events):
    with connect(server.url) as ws:
        conn = events.wait(wsembed.Open).conn
        server.subscribe(conn, "t")
        threads = [
            threading.Thread(target=lambda: [server.broadcast("b") for _ in range(50)]),
            threading.Thread(target=lambda: [server.publish("t", "p") for _ in range(50)]),
        ]
        for t in threads:
            t.start()
        got = [ws.recv(timeout=10) for _ in range(100)]
        for t in threads:
            t.join()
        assert sorted(got) == ["b"] * 50 + ["p"] * 50


@contextlib.contextmanager
def connect_later():
    """Lets a test open a client inside another block and still close it at the end."""
    with contextlib.ExitStack() as stack:
        yield lambda url: stack.enter_context(connect(url))


def test_context_manager_stops_and_client_sees_1001():
    with connect_later() as later:
        with wsembed.Server() as srv:
            collector = Collector(srv)
            ws = later(srv.url)
            conn = collector.wait(wsembed.Open).conn
        assert srv.stopped
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    # Remaining events are still delivered, then iteration ends.
    rest = list(srv)
    assert any(isinstance(e, wsembed.Close) for e in rest)
    with pytest.raises(wsembed.ServerStoppedError):
        srv.poll(0)
    # After stop every call reports STOPPED, for known and unknown connection ids alike.
    for call in (
        lambda: srv.broadcast("x"),
        lambda: srv.publish("t", "x"),
        lambda: srv.send(conn, "x"),
        lambda: srv.send(987654321, b"x"),
        lambda: srv.subscribe(conn, "t"),
        lambda: srv.unsubscribe(conn, "t"),
        lambda: srv.close(conn),
        lambda: srv.buffered_amount(conn),
        lambda: srv.accept(conn),
        lambda: srv.reject(conn, 403),
    ):
        with pytest.raises(wsembed.ServerStoppedError) as info:
            call()
        assert info.value.code == 4
    srv.stop()  # a second stop does nothing
    # Counters stay readable.
    assert srv.stats().handshakes_accepted == 1


def test_iteration_ends_when_stopped_from_another_thread():
    srv = wsembed.Server()
    seen = []
    stopper = None
    with connect(srv.url):
        for event in srv:  # blocks until events; ends once stopped and drained
            seen.append(event)
            if isinstance(event, wsembed.Open) and stopper is None:
                stopper = threading.Thread(target=srv.stop)
                stopper.start()
    stopper.join()
    assert isinstance(seen[0], wsembed.Open)
    assert isinstance(seen[-1], wsembed.Close) and seen[-1].code == 1001


def test_poll_timeout_and_events_timeout(server):
    assert server.poll(0) == []
    assert server.poll(0.05) == []
    assert list(server.events(timeout=0.05)) == []


def test_options_and_errors():
    with pytest.raises(wsembed.InvalidArgumentError, match="unknown option"):
        wsembed.Server(no_such_option=1)
    with pytest.raises(wsembed.InvalidArgumentError):
        wsembed.Server(backpressure="sometimes")
    with pytest.raises(TypeError):
        wsembed.Server(max_message_size=object())
    with wsembed.Server(max_message_size=1000, ping_interval=1.5, close_timeout_ms=2000) as srv:
        port = srv.port
        assert port > 0
        with pytest.raises(wsembed.ServerIOError) as info:
            wsembed.Server(port=port)
        assert isinstance(info.value, OSError)
        collector = Collector(srv)
        with connect(srv.url, max_size=None) as ws:
            collector.wait(wsembed.Open)
            ws.send("x" * 1001)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        assert collector.wait(wsembed.Close).code == 1009


def test_subprotocols(events):
    with wsembed.Server(subprotocols=["chat.v2", "chat.v1"]) as srv:
        collector = Collector(srv)
        with connect(srv.url, subprotocols=["chat.v1"]) as ws:
            assert ws.subprotocol == "chat.v1"
            assert collector.wait(wsembed.Open).protocol == "chat.v1"


def test_static_dir(tmp_path):
    (tmp_path / "index.html").write_text("<h1>hi</h1>")
    with wsembed.Server(static_dir=tmp_path) as srv:
        body = urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/index.html", timeout=5).read()
        assert body == b"<h1>hi</h1>"
        collector = Collector(srv)
        with connect(srv.url + "/ws") as ws:
            assert collector.wait(wsembed.Open).path == "/ws"
            ws.send("ok")
            assert collector.wait(wsembed.Message).data == "ok"


def test_send_type_errors(server, events):
    with connect(server.url):
        conn = events.wait(wsembed.Open).conn
        with pytest.raises(TypeError):
            server.send(conn, 42)  # type: ignore[arg-type]
        with pytest.raises(wsembed.InvalidUtf8Error):
            server.send(conn, "\ud800")
        with pytest.raises(ValueError):
            server.publish("nul\0topic", "x")
