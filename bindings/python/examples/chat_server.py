#!/usr/bin/env python3
"""The live chat demo, Python host: serves examples/chat/index.html (plain HTTP) and the
WebSocket (/ws) on one port, and broadcasts every text message to every connected browser.

    python bindings/python/examples/chat_server.py [--port N] [--host H] [--tls CERT.pem KEY.pem]

Then open the printed URL in two browser tabs.
"""

import argparse
import signal
import sys
from pathlib import Path

import wsembed

# examples/chat at the repository root (this file is bindings/python/examples/chat_server.py).
CHAT_DIR = Path(__file__).resolve().parents[3] / "examples" / "chat"


def main() -> int:
    parser = argparse.ArgumentParser(description="wsembed chat demo")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (default 8080, 0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="interface (0.0.0.0 for all)")
    parser.add_argument("--static-dir", default=str(CHAT_DIR), help="folder holding index.html")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve https:// and wss:// with these PEM files")
    args = parser.parse_args()
    if not (Path(args.static_dir) / "index.html").is_file():
        print(f"chat_server: no index.html in {args.static_dir}", file=sys.stderr)
        return 1

    tls = tuple(args.tls) if args.tls else None
    with wsembed.Server(args.host, args.port, static_dir=args.static_dir, max_message_size=64 * 1024, tls=tls) as server:
        s = "s" if tls else ""
        print(f"listening on ws{s}://127.0.0.1:{server.port}", flush=True)
        print(f"open http{s}://127.0.0.1:{server.port}/ in a browser", flush=True)
        # SIGTERM like Ctrl-C: leave the loop, and the with block says 1001 to every browser.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            for event in server:
                if isinstance(event, wsembed.Open):
                    print(f"{event.conn:#x} joined from {event.peer}", file=sys.stderr)
                elif isinstance(event, wsembed.Message):
                    if event.is_text:
                        server.broadcast(event.data)
                    else:
                        try:
                            server.close(event.conn, 1003, "text only")
                        except wsembed.ConnectionClosedError:
                            pass
                elif isinstance(event, wsembed.Close):
                    print(f"{event.conn:#x} left ({event.code})", file=sys.stderr)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
