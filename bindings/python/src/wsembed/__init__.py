"""wsembed: a fast embeddable WebSocket server (Rust engine, loaded through ctypes).

    import wsembed

    with wsembed.Server(port=8765) as server:
        for event in server:
            if isinstance(event, wsembed.Message):
                server.send(event.conn, event.data)   # echo: str as text, bytes as binary

Admission control: ``Server(approve_handshakes=True)`` reports each upgrade request as a
``Handshake`` event (path, peer, headers such as Cookie, offered subprotocols) that the
application answers with ``server.accept(conn, protocol=None)`` or
``server.reject(conn, status=403, body="")``. ``server.stats()`` returns the engine's counters.
``server.set_user_data(conn, obj)`` attaches any object to a connection (``event.user_data``);
``ping_events=True`` reports ``Ping``/``Pong`` events; ``server.terminate(conn)`` drops a
connection at once (1006). ``OPTIONS`` lists the engine's options as the library reports them.

The native library is bundled inside the package; ``WSEMBED_LIBRARY=/path/libwsembed.so``
overrides it (for development against a fresh ``cargo build``).
"""

from __future__ import annotations

from ._ffi import library_version as _library_version
from ._errors import (
    ConnectionClosedError,
    InternalError,
    InvalidArgumentError,
    InvalidUtf8Error,
    ClientClosedError,
    NotOpenError,
    ServerIOError,
    ServerStoppedError,
    WouldBlockError,
    WsembedError,
)
from ._events import FAILURES, Close, Drain, Event, Failed, Handshake, Message, Open, Ping, Pong, Reconnecting, Stats
from ._ffi import OPTIONS, OptionInfo
from ._server import CLIENT_OPTIONS, HOST_OPTIONS, Data, Server
from ._client import Client, connect, connect_async

__version__ = "0.1.0"

#: Version of the loaded native library (``wsembed_version()``).
library_version: str = _library_version

__all__ = [
    "Server",
    "Client",
    "connect",
    "connect_async",
    "CLIENT_OPTIONS",
    "Reconnecting",
    "Failed",
    "FAILURES",
    "NotOpenError",
    "ClientClosedError",
    "Data",
    "Event",
    "Handshake",
    "Open",
    "Message",
    "Close",
    "Drain",
    "Ping",
    "Pong",
    "Stats",
    "OPTIONS",
    "OptionInfo",
    "HOST_OPTIONS",
    "WsembedError",
    "InvalidArgumentError",
    "InvalidUtf8Error",
    "ConnectionClosedError",
    "ServerStoppedError",
    "WouldBlockError",
    "ServerIOError",
    "InternalError",
    "library_version",
]
