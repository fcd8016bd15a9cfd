"""asyncio integration: aevents() waits on the event fd with loop.add_reader."""

from __future__ import annotations

import asyncio
import threading

import pytest
import websockets

import wsembed


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=20))


async def echo_until_stopped(server: wsembed.Server, log: list) -> None:
    async for event in server.aevents():
        log.append(event)
        if isinstance(event, wsembed.Message):
            server.send(event.conn, event.data)


def test_asyncio_echo_host_driven():
    """loop_thread=False: the event fd is the engine's epoll descriptor and each apoll runs the
    engine; the echoes sent between polls are written by the next one."""

    async def main():
        log: list = []
        with wsembed.Server(loop_thread=False) as server:
            consumer = asyncio.create_task(echo_until_stopped(server, log))
            async with websockets.connect(server.url) as ws:
                for i in range(100):
                    await ws.send(f"m{i}")
                    assert await ws.recv() == f"m{i}"
            server.stop()
            await consumer
        assert sum(isinstance(e, wsembed.Message) for e in log) == 100

    run(main())


def test_asyncio_echo_with_websockets_client():
    async def main():
        log: list = []
        with wsembed.Server() as server:
            consumer = asyncio.create_task(echo_until_stopped(server, log))
            async with websockets.connect(server.url) as a, websockets.connect(server.url) as b:
                for i in range(50):
                    await a.send(f"a{i}")
                    await b.send(f"b{i}".encode())
                for i in range(50):
                    assert await a.recv() == f"a{i}"
                    assert await b.recv() == f"b{i}".encode()
            server.stop()
            await consumer  # ends by itself once the server is stopped and drained
        opens = [e for e in log if isinstance(e, wsembed.Open)]
        closes = [e for e in log if isinstance(e, wsembed.Close)]
        assert len(opens) == 2 and len(closes) == 2
        assert sum(isinstance(e, wsembed.Message) for e in log) == 100

    run(main())


def test_asyncio_no_busy_polling():
    """While nothing happens, the consumer sleeps in the event loop instead of polling."""

    async def main():
        with wsembed.Server() as server:
            calls = 0
            real_poll = server.poll

            def counting_poll(timeout=None):
                nonlocal calls
                calls += 1
                return real_poll(timeout)

            server.poll = counting_poll  # type: ignore[method-assign]
            got = asyncio.Queue()

            async def consume():
                async for event in server.aevents():
                    await got.put(event)

            task = asyncio.create_task(consume())
            async with websockets.connect(server.url) as ws:
                assert isinstance(await asyncio.wait_for(got.get(), 5), wsembed.Open)
                before = calls
                # Idle for a while: a busy poller would call poll() thousands of times here.
                await asyncio.sleep(0.3)
                assert calls - before <= 1
                await ws.send("wake")
                msg = await asyncio.wait_for(got.get(), 5)
                assert isinstance(msg, wsembed.Message) and msg.data == "wake"
            server.stop()
            await asyncio.wait_for(task, 5)

    run(main())


def test_asyncio_stop_from_other_thread_ends_aevents():
    async def main():
        server = wsembed.Server()
        loop = asyncio.get_running_loop()
        async with websockets.connect(server.url) as ws:
            seen = []
            async for event in server.aevents():
                seen.append(event)
                if isinstance(event, wsembed.Open):
                    # stop() blocks up to its timeout for closing handshakes: use a thread.
                    threading.Thread(target=server.stop).start()
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd.code == 1001
        assert isinstance(seen[-1], wsembed.Close)

    run(main())


def test_fileno_readiness():
    import selectors

    with wsembed.Server() as server:
        sel = selectors.DefaultSelector()
        sel.register(server.fileno(), selectors.EVENT_READ)
        assert sel.select(0) == []

        async def client():
            async with websockets.connect(server.url) as ws:
                await ws.send("x")

        asyncio.run(client())
        assert sel.select(10)  # readable: Open/Message/Close are waiting
        taken = []
        while len(taken) < 3:
            taken += server.poll(5)
        assert [type(e) for e in taken] == [wsembed.Open, wsembed.Message, wsembed.Close]
        assert sel.select(0) == []
        sel.close()
