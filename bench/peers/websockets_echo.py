#!/usr/bin/env python3
"""websockets_echo.py: echo server on the Python `websockets` library (asyncio implementation,
default options except max_size), peer for the wsembed bench.

    python websockets_echo.py [--port N] [--broadcast]

Echoes each message to its sender, or with --broadcast sends each message to every connected
client (websockets.asyncio.server.broadcast). Prints "listening on ws://127.0.0.1:PORT".
"""
import argparse
import asyncio
import signal
import sys

from websockets.asyncio.server import broadcast, serve


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--broadcast", action="store_true")
    args = ap.parse_args()

    clients = set()

    async def echo(ws):
        async for msg in ws:
            await ws.send(msg)

    async def fanout(ws):
        clients.add(ws)
        try:
            async for msg in ws:
                broadcast(clients, msg)
        finally:
            clients.discard(ws)

    handler = fanout if args.broadcast else echo
    async with serve(handler, "127.0.0.1", args.port, max_size=16 * 1024 * 1024) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on ws://127.0.0.1:{port}", flush=True)
        stop = asyncio.get_running_loop().create_future()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
