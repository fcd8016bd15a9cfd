"""Shared fixtures. Tests use real clients (websockets, websocket-client) over real sockets.

Run against the installed package (`pip install ./bindings/python`), or against the sources
in src/ with a library built elsewhere:
    WSEMBED_LIBRARY=/path/libwsembed.so pytest bindings/python/tests
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable, List, Optional, Type, TypeVar

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = PACKAGE_DIR.parent.parent

if os.environ.get("WSEMBED_LIBRARY"):
    # Development mode: test the sources next to this folder with the given library.
    sys.path.insert(0, str(PACKAGE_DIR / "src"))

import wsembed  # noqa: E402

DEADLINE = 10.0  # seconds: generous upper bound, never a sleep

E = TypeVar("E", bound=wsembed.Event)


class Collector:
    """Polls a server until an expected event shows up, keeping every event seen."""

    def __init__(self, server: wsembed.Server) -> None:
        self.server = server
        self.seen: List[wsembed.Event] = []
        self._pending: List[wsembed.Event] = []

    def next(self, deadline: float = DEADLINE) -> wsembed.Event:
        end = time.monotonic() + deadline
        while not self._pending:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no event within {deadline}s; seen so far: {self.seen}")
            self._pending.extend(self.server.poll(remaining))
        event = self._pending.pop(0)
        self.seen.append(event)
        return event

    def wait(
        self,
        cls: Type[E],
        predicate: Optional[Callable[[E], bool]] = None,
        deadline: float = DEADLINE,
    ) -> E:
        end = time.monotonic() + deadline
        while True:
            event = self.next(max(0.0, end - time.monotonic()))
            if isinstance(event, cls) and (predicate is None or predicate(event)):
                return event


@pytest.fixture
def server():
    with wsembed.Server() as srv:
        yield srv


@pytest.fixture
def events(server):
    return Collector(server)
