"""Admission control: approve_handshakes (Handshake events, accept/reject), allowed_origins,
per-IP limits. Real clients; every wait has a deadline."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
import websocket  # websocket-client
import websockets
from websockets.sync.client import connect

import wsembed

from conftest import DEADLINE, Collector


@pytest.fixture
def pool():
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield executor


def bad_status(url: str, **options) -> websocket.WebSocketBadStatusException:
    """Connects with websocket-client and returns the HTTP refusal it raised."""
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        ws = websocket.create_connection(url, timeout=DEADLINE, **options)
        ws.close()
    return info.value


def test_accept_with_chosen_protocol_sees_cookie_and_offers(pool):
    with wsembed.Server(approve_handshakes=True) as server:
        events = Collector(server)
        pending = pool.submit(
            connect,
            server.url + "/chat?room=7",
            additional_headers={"Cookie": "session=abc123", "Authorization": "Bearer t0k"},
            subprotocols=["chat.v1", "chat.v2"],
            open_timeout=DEADLINE,
        )
        hs = events.wait(wsembed.Handshake)
        assert isinstance(hs, wsembed.Event)
        assert hs.path == "/chat?room=7"
        assert hs.peer.startswith("127.0.0.1:")
        assert hs.header("cookie") == "session=abc123"
        assert hs.header("AUTHORIZATION") == "Bearer t0k"
        assert hs.header("x-missing", "none") == "none"
        assert hs.protocols == ["chat.v1", "chat.v2"]
        # Nothing opens before the decision.
        assert not pending.done()
        assert all(not isinstance(e, wsembed.Open) for e in server.poll(0))

        server.accept(hs.conn, "chat.v2")
        with pending.result(timeout=DEADLINE) as ws:
            assert ws.subprotocol == "chat.v2"
            opened = events.wait(wsembed.Open)
            assert opened.conn == hs.conn
            assert opened.protocol == "chat.v2"
            assert opened.header("Cookie") == "session=abc123"
            ws.send("hi")
            msg = events.wait(wsembed.Message)
            assert (msg.conn, msg.data) == (hs.conn, "hi")
            server.send(msg.conn, "hello")
            assert ws.recv(timeout=DEADLINE) == "hello"
            # Answering twice: the handshake is no longer pending.
            with pytest.raises(wsembed.ConnectionClosedError):
                server.accept(hs.conn)
            with pytest.raises(wsembed.ConnectionClosedError):
                server.reject(hs.conn, 400)


def test_accept_without_protocol_uses_server_list(pool):
    with wsembed.Server(approve_handshakes=True, subprotocols="json,chat.v1") as server:
        events = Collector(server)
        pending = pool.submit(connect, server.url, subprotocols=["chat.v1", "json"], open_timeout=DEADLINE)
        hs = events.wait(wsembed.Handshake)
        assert hs.protocols == ["chat.v1", "json"]
        server.accept(hs.conn)  # None: the server's own preference order decides
        with pending.result(timeout=DEADLINE) as ws:
            assert ws.subprotocol == "json"
            assert events.wait(wsembed.Open).protocol == "json"

        # No subprotocol offered: an empty list.
        pending = pool.submit(connect, server.url, open_timeout=DEADLINE)
        hs = events.wait(wsembed.Handshake)
        assert hs.protocols == []
        server.accept(hs.conn)
        with pending.result(timeout=DEADLINE) as ws:
            assert ws.subprotocol is None
            assert events.wait(wsembed.Open).protocol is None


def test_reject_with_401_and_body(pool):
    with wsembed.Server(approve_handshakes=True) as server:
        events = Collector(server)
        refused = pool.submit(bad_status, server.url + "/private", header=["Cookie: session=expired"])
        hs = events.wait(wsembed.Handshake)
        assert hs.path == "/private" and hs.header("cookie") == "session=expired"
        server.reject(hs.conn, 401, "login first")
        err = refused.result(timeout=DEADLINE)
        assert err.status_code == 401
        assert err.resp_body == b"login first"
        # No Open or Close follows a rejection; the id is answered.
        assert all(e.conn != hs.conn for e in server.poll(0.1))
        with pytest.raises(wsembed.ConnectionClosedError):
            server.accept(hs.conn)

        # Default status is 403; argument checks.
        refused = pool.submit(bad_status, server.url)
        hs = events.wait(wsembed.Handshake)
        with pytest.raises(wsembed.InvalidArgumentError):
            server.reject(hs.conn, 200)
        with pytest.raises(wsembed.InvalidArgumentError):
            server.reject(hs.conn, 403, "x" * 1025)
        with pytest.raises(ValueError):
            server.reject(hs.conn, 403, "nul\0inside")
        server.reject(hs.conn)
        assert refused.result(timeout=DEADLINE).status_code == 403

        stats = server.stats()
        assert stats.handshakes_rejected == 2 and stats.handshakes_accepted == 0


def test_unanswered_handshake_gets_503(pool):
    with wsembed.Server(approve_handshakes=True, approval_timeout_ms=300) as server:
        events = Collector(server)
        refused = pool.submit(bad_status, server.url)
        hs = events.wait(wsembed.Handshake)
        err = refused.result(timeout=DEADLINE)  # nobody answers
        assert err.status_code == 503
        with pytest.raises(wsembed.ConnectionClosedError):
            server.accept(hs.conn)
        assert server.stats().handshakes_rejected == 1


def test_approval_timeout_in_seconds_alias(pool):
    with wsembed.Server(approve_handshakes=True, approval_timeout=0.2) as server:
        refused = pool.submit(bad_status, server.url)
        Collector(server).wait(wsembed.Handshake)
        assert refused.result(timeout=DEADLINE).status_code == 503


def test_handshakes_without_approval_open_directly(server, events):
    with connect(server.url):
        assert isinstance(events.next(), wsembed.Open)


def test_approval_under_asyncio():
    async def main():
        with wsembed.Server(approve_handshakes=True) as server:
            async def decide():
                async for event in server.aevents():
                    if isinstance(event, wsembed.Handshake):
                        if event.header("cookie") == "ok=1":
                            server.accept(event.conn)
                        else:
                            server.reject(event.conn, 401, "no")
                    elif isinstance(event, wsembed.Message):
                        server.send(event.conn, event.data.upper())

            task = asyncio.create_task(decide())
            async with websockets.connect(server.url, additional_headers={"Cookie": "ok=1"}) as ws:
                await ws.send("shout")
                assert await ws.recv() == "SHOUT"
            with pytest.raises(websockets.exceptions.InvalidStatus) as info:
                async with websockets.connect(server.url):
                    pass
            assert info.value.response.status_code == 401
            server.stop()
            await task

    asyncio.run(asyncio.wait_for(main(), timeout=DEADLINE * 2))


def test_allowed_origins():
    with wsembed.Server(allowed_origins=["https://good.example", "http://also.example"]) as server:
        events = Collector(server)
        err = bad_status(server.url, origin="https://evil.example")
        assert err.status_code == 403

        ws = websocket.create_connection(server.url, timeout=DEADLINE, origin="https://good.example")
        try:
            opened = events.wait(wsembed.Open)
            assert opened.header("origin") == "https://good.example"
        finally:
            ws.close()
        # Non-browser clients without an Origin header are allowed.
        ws = websocket.create_connection(server.url, timeout=DEADLINE, suppress_origin=True)
        try:
            assert events.wait(wsembed.Open).header("origin") is None
        finally:
            ws.close()
        stats = server.stats()
        assert stats.handshakes_rejected == 1 and stats.handshakes_accepted == 2

    # A comma-separated string works too, and the origin check happens before approval.
    with wsembed.Server(allowed_origins="https://a.example, https://b.example", approve_handshakes=True) as server:
        assert bad_status(server.url, origin="https://c.example").status_code == 403
        assert all(not isinstance(e, wsembed.Handshake) for e in server.poll(0.1))


def test_max_connections_per_ip():
    with wsembed.Server(max_connections_per_ip=2) as limited:
        events = Collector(limited)
        with connect(limited.url), connect(limited.url):
            events.wait(wsembed.Open)
            events.wait(wsembed.Open)
            assert bad_status(limited.url).status_code == 429
        events.wait(wsembed.Close)
        events.wait(wsembed.Close)
        # Both slots are free again.
        with connect(limited.url):
            events.wait(wsembed.Open)
