#!/usr/bin/env python3
"""echo_server: echoes every message to its sender (text as text, binary as binary), or with
--broadcast sends each message to every connected client. Messages up to 16 MiB.

    python echo_server.py [--port N] [--broadcast] [--deflate shared|dedicated] [--redis URL] [--inline] [--threads N]

--inline: no loop thread, this script's poll runs the engine (option `loop_thread` = False).
Prints "listening on ws://127.0.0.1:PORT" once it accepts connections. Stops on SIGINT/SIGTERM.
(The Python twin of examples/c/echo_server.c.)
"""

import argparse
import signal
import sys

import wsembed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: any free port)")
    parser.add_argument("--broadcast", action="store_true", help="send each message to every client")
    parser.add_argument("--deflate", choices=["shared", "dedicated"], help="permessage-deflate mode")
    parser.add_argument("--redis", metavar="URL", help="share broadcasts with every server on this Redis")
    parser.add_argument("--inline", action="store_true", help="host-driven: the polls run the engine")
    parser.add_argument("--threads", type=int, default=1, help="event loops serving the port")
    args = parser.parse_args()
    if not 0 <= args.port <= 65535:
        parser.error(f"bad port {args.port}")

    stop_requested = False

    def on_signal(signum, frame):
        nonlocal stop_requested
        stop_requested = True

    options = {"compression": args.deflate or "off", "threads": args.threads}
    if args.inline:
        options["loop_thread"] = False
    if args.redis:
        options["redis_url"] = args.redis
    with wsembed.Server(port=args.port, max_message_size=16 * 1024 * 1024, **options) as server:
        print(f"listening on ws://127.0.0.1:{server.port}", flush=True)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)

        Message = wsembed.Message
        # A peer that closed meanwhile (or a full queue) is not an error for an echo server.
        ignored = (wsembed.ConnectionClosedError, wsembed.WouldBlockError)
        send, broadcast = server.send, server.broadcast
        while not stop_requested:
            for event in server.poll(0.2):
                if type(event) is not Message:
                    continue
                try:
                    if args.broadcast:
                        broadcast(event.data)
                    else:
                        send(event.conn, event.data)
                except ignored:
                    pass
                except wsembed.WsembedError as exc:
                    print(f"echo_server: send: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
