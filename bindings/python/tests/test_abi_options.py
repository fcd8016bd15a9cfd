"""The generated ABI module is fresh, and the host's options are the library's."""

from __future__ import annotations

import ctypes
import dataclasses
import importlib.util
import re
from pathlib import Path

import pytest

import wsembed
from wsembed import _abi, _ffi, _server

PACKAGE_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = PACKAGE_DIR.parent.parent
GEN = REPO_ROOT / "bindings" / "gen_abi.py"
HEADER = REPO_ROOT / "include" / "wsembed.h"


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_abi", GEN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not GEN.is_file() or not HEADER.is_file(), reason="not in a wsembed checkout")
def test_generated_abi_is_fresh():
    expected = load_generator().generate(HEADER.read_text(encoding="utf-8"))["python"]
    committed = (PACKAGE_DIR / "src" / "wsembed" / "_abi.py").read_text(encoding="utf-8")
    assert committed == expected, "bindings/python/src/wsembed/_abi.py is stale: run bindings/gen_abi.py"
    # The installed package carries the same file.
    assert Path(_abi.__file__).read_text(encoding="utf-8") == expected, "reinstall the package"


@pytest.mark.skipif(not GEN.is_file() or not HEADER.is_file(), reason="not in a wsembed checkout")
def test_generator_follows_header_changes():
    """A new field, enum value or function in the header shows up in the generated text."""
    gen = load_generator()
    header = HEADER.read_text(encoding="utf-8")
    last_field = "  uint16_t http_status;\n} wsembed_event;"
    assert last_field in header, "update this test: the last field of wsembed_event moved"
    changed = header.replace(last_field, "  uint16_t http_status;\n  uint32_t future_field;\n} wsembed_event;").replace(
        "WSEMBED_EVENT_FAILED = 12,", "WSEMBED_EVENT_FAILED = 12,\n  WSEMBED_EVENT_FUTURE = 13,"
    )
    changed = changed.replace(
        "void wsembed_server_free(struct wsembed_server *server);",
        "void wsembed_server_free(struct wsembed_server *server);\n\n"
        "wsembed_result wsembed_client_connect(const char *url,\n"
        "                                      struct wsembed_server **out);",
    )
    text = gen.generate(changed)["python"]
    assert '("future_field", ctypes.c_uint32)' in text
    assert "WSEMBED_EVENT_FUTURE = 13" in text
    assert '"wsembed_client_connect": (ctypes.c_uint32, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]' in text
    before = gen.generate(header)["python"]
    old_format = next(line for line in before.splitlines() if line.startswith('    "wsembed_event": "@'))
    assert old_format.replace('0P"', 'I0P"') in text, "the new field lands at the end of the struct format"
    with pytest.raises(gen.HeaderError):
        gen.generate(header.replace("WSEMBED_TEXT = 1,", "WSEMBED_TEXT,"))  # implicit values are refused


def test_layouts_match_ctypes():
    import struct

    for name, fmt in _abi.FORMATS.items():
        assert struct.calcsize(fmt) == ctypes.sizeof(getattr(_abi, name)), name
    assert [f.name for f in dataclasses.fields(wsembed.Stats)] == list(_abi.FIELDS["wsembed_stats"])


def test_result_codes_and_texts_come_from_the_library():
    for name, code in _abi.wsembed_result.items():
        text = _ffi.result_text(code)
        assert text and text != "unknown result code", name
        if code:
            err = wsembed._errors.error_for(code, text)
            assert isinstance(err, wsembed.WsembedError) and err.code == code
    # A code this package does not know still gives an error with the library's text.
    err = wsembed._errors.error_for(999, _ffi.result_text(999))
    assert type(err) is wsembed.WsembedError and err.code == 999 and str(err) == "unknown result code"


def typed_default(info: wsembed.OptionInfo):
    """The option's default as the Python value a user would pass."""
    if info.kind == "bool":
        return info.default in ("1", "true")
    if info.kind in ("integer", "bytes", "milliseconds", "count"):
        return int(info.default)
    if info.kind == "list":
        return [v for v in info.default.split(",") if v]
    return info.default


KNOWN_KINDS = {"bool", "integer", "bytes", "milliseconds", "count", "text", "list", "choice", "path", "pem"}


def test_every_library_option_is_accepted_and_documented():
    options = wsembed.OPTIONS
    assert len(options) == _ffi.lib.wsembed_config_option_count() > 0
    doc = wsembed.Server.__doc__
    for name, info in options.items():
        assert info.kind in KNOWN_KINDS, f"option {name}: kind {info.kind!r} has no conversion in _server.py"
        assert f"``{name}`` ({info.kind}" in doc, f"option {name} is missing from Server's docstring"
        assert info.doc and info.doc in doc
    # Each one, given as a Python value (its default), passes the conversion and the engine.
    kwargs = {name: typed_default(info) for name, info in options.items() if name not in ("host", "port")}
    kwargs = {k: v for k, v in kwargs.items() if v not in ("", [])}  # "" = none: leave unset
    with wsembed.Server(**kwargs) as server:
        assert server.port > 0
    # Empty values are accepted too.
    for name, info in options.items():
        if info.default == "" and not name.startswith("tls_"):
            with wsembed.Server(**{name: typed_default(info)}):
                pass


def test_host_exposes_only_library_options_and_documented_host_keywords():
    options = wsembed.OPTIONS
    doc = wsembed.Server.__doc__
    for name, text in wsembed.HOST_OPTIONS.items():
        assert name not in options, f"host keyword {name} shadows a library option"
        assert f"``{name}``" in doc and text in doc
    # The seconds aliases are exactly the library's millisecond options.
    ms = {n[:-3] for n, i in options.items() if i.kind == "milliseconds" and n.endswith("_ms")}
    assert set(wsembed.HOST_OPTIONS) == ms | {"tls"}
    # Server()'s own parameters: host and port are library options, tls a host keyword.
    import inspect

    params = set(inspect.signature(wsembed.Server).parameters) - {"limits"}
    assert params <= set(options) | set(wsembed.HOST_OPTIONS)
    # Anything else goes to the engine, which refuses unknown names.
    with pytest.raises(wsembed.InvalidArgumentError, match="unknown option"):
        wsembed.Server(definitely_not_an_option=1)
    # README points at the generated list rather than restating it.
    readme = (PACKAGE_DIR / "README.md").read_text(encoding="utf-8")
    for name in wsembed.HOST_OPTIONS:
        assert name in readme, f"host keyword {name} is not in README.md"


def test_conversion_by_kind():
    conv = _server._option_value
    assert conv("approve_handshakes", True) == "1" and conv("approve_handshakes", False) == "0"
    assert conv("max_message_size", 1024) == "1024"
    assert conv("subprotocols", ["a", "b"]) == "a,b" and conv("subprotocols", "a, b") == "a, b"
    assert conv("static_dir", Path("/tmp")) == "/tmp"
    assert conv("tls_cert_pem", b"PEM") == "PEM"
    with pytest.raises(TypeError):
        conv("max_message_size", 1.5)
    with pytest.raises(TypeError):
        conv("subprotocols", 3)
    # Ranges are the engine's: a negative number is refused there, with its message.
    with pytest.raises(wsembed.InvalidArgumentError, match="max_connections"):
        wsembed.Server(max_connections=-1)
    with pytest.raises(wsembed.InvalidArgumentError):
        wsembed.Server(ping_events="maybe")


def test_docstring_lists_options_in_library_order():
    doc = wsembed.Server.__doc__
    positions = [doc.index(f"``{name}`` (") for name in wsembed.OPTIONS]
    assert positions == sorted(positions)
    assert re.search(r"``ping_events`` \(bool, default ``false``\)", doc)
