"""echo.py: run with the Python of a venv where the wsembed wheel was installed (see run.sh):
starts a wsembed echo server on a free port, connects one raw client (the standard library's
socket, no other package), sends a text message and checks it comes back. Prints
"echo ok: <message>"."""

import base64
import os
import socket
import struct
import sys
import threading

import wsembed
from wsembed import Message, Server

MESSAGE = "hello through the installed wheel"


def client(port: int, result: list) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(
            (
                f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        head, _, buf = buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        payload = MESSAGE.encode()
        mask = os.urandom(4)
        s.sendall(struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        while len(buf) < 2 or len(buf) < 2 + (buf[1] & 0x7F):
            buf += s.recv(4096)
        assert buf[0] == 0x81, buf
        result.append(buf[2 : 2 + (buf[1] & 0x7F)].decode())


def main() -> int:
    with Server(port=0) as server:
        result: list = []
        t = threading.Thread(target=client, args=(server.port, result), daemon=True)
        t.start()
        while t.is_alive():
            for event in server.poll(0.1):
                if isinstance(event, Message):
                    server.send(event.conn, event.data)
        t.join()
    if result != [MESSAGE]:
        print(f"echo.py: got {result!r}", file=sys.stderr)
        return 1
    print(f"echo ok: {result[0]} (wsembed {wsembed.library_version} from {os.path.dirname(wsembed.__file__)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
