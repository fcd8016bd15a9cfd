"""wsembed's client side (wsembed.connect / Client / Server.connect) against real peers:
the `websockets` package's server, and wsembed's own Server; permessage-deflate with the
`websockets` client (compression on by default) against Server(compression=...)."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
import websockets
from websockets.sync.client import connect as ws_connect
from websockets.sync.server import serve as ws_serve

import wsembed

from conftest import DEADLINE, Collector

MIB = 1 << 20


class WsServer:
    """A `websockets` sync server on a free port, in a thread, recording what it saw."""

    def __init__(self):
        self.headers = []
        self.subprotocols = []
        self.received = []

        def handler(ws):
            self.headers.append(dict(ws.request.headers))
            self.subprotocols.append(ws.subprotocol)
            path = ws.request.path
            if path == "/close":
                ws.close(4001, "bye from websockets")
                return
            for msg in ws:
                self.received.append(msg)
                ws.send(msg)

        def select(ws, offered):
            # websockets refuses clients that offer none of its subprotocols; accept them.
            return next((p for p in ("chat", "superchat") if p in offered), None)

        self.server = ws_serve(handler, "127.0.0.1", 0, select_subprotocol=select, max_size=None)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.thread.join(DEADLINE)


@pytest.fixture
def wsserver():
    s = WsServer()
    yield s
    s.stop()


def test_client_with_websockets_server(wsserver):
    url = f"ws://127.0.0.1:{wsserver.port}/echo"
    with wsembed.connect(url, protocols=["nope", "superchat"], headers={"X-Token": "abc123"},
                         origin="http://example.test") as client:
        assert client.protocol == "superchat"
        assert any(k.lower() == "sec-websocket-protocol" and v == "superchat" for k, v in client.response_headers)
        client.send("hello")
        assert client.recv(DEADLINE) == "hello"
        client.send(b"\x00\x01\xff")
        got = client.recv(DEADLINE)
        assert got == b"\x00\x01\xff" and isinstance(got, bytes)
        big = os.urandom(MIB)
        client.send(big)
        assert client.recv(DEADLINE) == big
        text = "é" * (MIB // 2)
        client.send(text)
        assert client.recv(DEADLINE) == text
    seen = {k.lower(): v for k, v in wsserver.headers[0].items()}
    assert seen["x-token"] == "abc123"
    assert seen["origin"] == "http://example.test"
    assert wsserver.subprotocols == ["superchat"]
    assert client.closed
    with pytest.raises(wsembed.ClientClosedError):
        client.recv(0)


def test_client_sees_close_code_from_server(wsserver):
    client = wsembed.connect(f"ws://127.0.0.1:{wsserver.port}/close")
    with pytest.raises(wsembed.ClientClosedError) as info:
        client.recv(DEADLINE)
    assert info.value.close_code == 4001
    assert info.value.reason == "bye from websockets"
    assert list(client) == []


def test_client_refused_without_reconnect_fails():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(wsembed.ClientClosedError) as info:
        wsembed.connect(f"ws://127.0.0.1:{port}/", open_timeout=DEADLINE)
    assert info.value.failure == wsembed._abi.WSEMBED_FAILURE_CONNECTION_REFUSED


def test_client_compression_with_websockets_server(wsserver):
    with wsembed.connect(f"ws://127.0.0.1:{wsserver.port}/", compression=True) as client:
        assert client.extensions and "permessage-deflate" in client.extensions
        payload = "compress me " * 20000
        client.send(payload)
        assert client.recv(DEADLINE) == payload


def test_client_with_wsembed_server(server, events):
    client = wsembed.connect(server.url + "/room?x=1", headers=[("X-A", "1"), ("X-A", "2")])
    opened = events.wait(wsembed.Open)
    assert opened.path == "/room?x=1"
    assert [v for k, v in opened.headers if k.lower() == "x-a"] == ["1", "2"]
    client.send("ping")
    msg = events.wait(wsembed.Message)
    assert msg.data == "ping"
    server.send(opened.conn, b"pong")
    assert client.recv(DEADLINE) == b"pong"
    server.close(opened.conn, 4242, "done")
    with pytest.raises(wsembed.ClientClosedError) as info:
        client.recv(DEADLINE)
    assert info.value.close_code == 4242 and info.value.reason == "done"
    events.wait(wsembed.Close)


def test_server_connect_mixes_roles(server, events):
    # One engine is both: a server, and a client of itself.
    conn = server.connect(server.url + "/self")
    opens = [events.wait(wsembed.Open), events.wait(wsembed.Open)]
    ids = {o.conn for o in opens}
    assert conn in ids and len(ids) == 2
    other = (ids - {conn}).pop()
    server.send(conn, "from client")
    msg = events.wait(wsembed.Message)
    assert msg.conn == other and msg.data == "from client"


def test_reconnect_after_server_restart():
    first = wsembed.Server()
    port = first.port
    c1 = Collector(first)
    client = wsembed.connect(first.url, reconnect=True, reconnect_min_delay=0.05, reconnect_max_delay=0.2)
    c1.wait(wsembed.Open)
    first.stop()
    seen = []
    deadline = time.monotonic() + DEADLINE
    while not any(isinstance(e, wsembed.Reconnecting) for e in seen):
        assert time.monotonic() < deadline, seen
        e = client.recv_event(0.5)
        if e is not None:
            seen.append(e)
    rec = next(e for e in seen if isinstance(e, wsembed.Reconnecting))
    assert rec.attempt >= 1 and rec.conn == client.conn
    with pytest.raises(wsembed.NotOpenError):
        client.send("too early")
    with wsembed.Server(port=port) as second:
        c2 = Collector(second)
        deadline = time.monotonic() + DEADLINE
        while True:
            assert time.monotonic() < deadline, seen
            e = client.recv_event(0.5)
            if isinstance(e, wsembed.Open):
                break
        opened = c2.wait(wsembed.Open)
        client.send("again")
        assert c2.wait(wsembed.Message).data == "again"
        second.send(opened.conn, "back")
        assert client.recv(DEADLINE) == "back"
        client.close()
    assert client.closed


def test_connect_async_with_websockets_server(wsserver):
    async def main():
        client = await wsembed.connect_async(f"ws://127.0.0.1:{wsserver.port}/")
        async with client:
            await client.asend("a")
            await client.asend(b"b")
            assert await asyncio.wait_for(client.arecv(), DEADLINE) == "a"
            assert await asyncio.wait_for(client.arecv(), DEADLINE) == b"b"
        assert client.closed

    asyncio.run(main())


# ------------------------------------------------------------------ compression, real clients


class EchoThread:
    """Echoes every message; "broadcast:..." is broadcast to everyone instead."""

    def __init__(self, server):
        self.server = server
        self.opens = []
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                batch = self.server.poll(0.1)
            except wsembed.ServerStoppedError:
                return
            for e in batch:
                if isinstance(e, wsembed.Open):
                    self.opens.append(e)
                elif isinstance(e, wsembed.Message):
                    if isinstance(e.data, str) and e.data.startswith("broadcast:"):
                        self.server.broadcast(e.data)
                    else:
                        self.server.send(e.conn, e.data)

    def close(self):
        self.stop = True
        self.thread.join(DEADLINE)


@pytest.mark.parametrize("mode", ["shared", "dedicated"])
def test_compression_with_websockets_client(mode):
    with wsembed.Server(compression=mode) as server:
        echo = EchoThread(server)
        try:
            with ws_connect(server.url, max_size=None, open_timeout=DEADLINE) as a, \
                 ws_connect(server.url, max_size=None, open_timeout=DEADLINE) as b:
                header = a.response.headers.get("Sec-WebSocket-Extensions", "")
                assert "permessage-deflate" in header
                assert [ext.name for ext in a.protocol.extensions] == ["permessage-deflate"]
                assert echo.opens[0].extensions and "permessage-deflate" in echo.opens[0].extensions
                text = "hello compressed world " * 100
                a.send(text)
                assert a.recv(DEADLINE) == text
                blob = bytes(range(256)) * 64
                a.send(blob)
                assert a.recv(DEADLINE) == blob
                big = ("0123456789abcdef" * (MIB // 16))
                a.send(big)
                assert a.recv(DEADLINE) == big
                rnd = os.urandom(MIB)
                a.send(rnd)
                assert a.recv(DEADLINE) == rnd
                for i in range(5):  # context takeover (dedicated) across messages
                    a.send(text + str(i))
                    assert a.recv(DEADLINE) == text + str(i)
                msg = "broadcast:" + "x" * 5000
                a.send(msg)
                assert a.recv(DEADLINE) == msg
                assert b.recv(DEADLINE) == msg
                stats = server.stats()
                assert stats.bytes_out < stats.messages_out * 100 + 2 * MIB + MIB // 2  # compressed
        finally:
            echo.close()


def test_wsembed_client_compression_against_wsembed_server():
    with wsembed.Server(compression="dedicated") as server:
        echo = EchoThread(server)
        try:
            with wsembed.connect(server.url, compression=True) as client:
                assert "permessage-deflate" in (client.extensions or "")
                data = "z" * 100000
                client.send(data)
                assert client.recv(DEADLINE) == data
        finally:
            echo.close()


# ------------------------------------------------------------------ wss:// with a trusted CA

def test_client_wss_with_websockets_server_and_ca(tmp_path):
    import ssl

    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(ctx)

    def handler(ws):
        for msg in ws:
            ws.send(msg)

    srv = ws_serve(handler, "127.0.0.1", 0, ssl=ctx)
    port = srv.socket.getsockname()[1]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        ca_pem = ca.cert_pem.bytes().decode()
        with wsembed.connect(f"wss://localhost:{port}/", ca_pem=ca_pem) as client:
            client.send("secret")
            assert client.recv(DEADLINE) == "secret"
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        with wsembed.connect(f"wss://localhost:{port}/", ca_file=ca_file) as client:
            client.send(b"x")
            assert client.recv(DEADLINE) == b"x"
        # Without the CA the system roots do not trust it: failed for good, not retried.
        with pytest.raises(wsembed.ClientClosedError) as info:
            wsembed.connect(f"wss://localhost:{port}/", reconnect=True)
        assert info.value.failure == wsembed._abi.WSEMBED_FAILURE_TLS_VERIFICATION
    finally:
        srv.shutdown()
        thread.join(DEADLINE)


def test_many_clients_do_not_mix_events(server):
    echo = EchoThread(server)
    try:
        clients = [wsembed.connect(server.url) for _ in range(5)]
        for i, c in enumerate(clients):
            c.send(f"client {i}")
        for i, c in enumerate(clients):
            assert c.recv(DEADLINE) == f"client {i}"
        for c in clients:
            c.close()
    finally:
        echo.close()
