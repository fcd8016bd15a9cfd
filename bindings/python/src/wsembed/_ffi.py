"""Loading the wsembed C library through ctypes with the ABI declared in _abi.py (generated)."""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Dict, NamedTuple

from . import _abi

# Every type, constant and signature below comes from _abi.py, generated from include/wsembed.h
# by bindings/gen_abi.py. A library must report the header's major.minor version.
ABI_VERSION = (_abi.WSEMBED_VERSION_MAJOR, _abi.WSEMBED_VERSION_MINOR)


def _library_filename() -> str:
    if sys.platform == "darwin":
        return "libwsembed.dylib"
    if sys.platform == "win32":
        return "wsembed.dll"
    return "libwsembed.so"


_HOW_TO_FIX = (
    "Reinstall the package with `pip install ./bindings/python` from a wsembed checkout "
    "(the build runs `cargo build --release`, so Rust's cargo must be installed), or set "
    "WSEMBED_LIBRARY=/path/to/libwsembed.so to a library built with `cargo build --release`."
)


def _load() -> tuple[ctypes.CDLL, str]:
    override = os.environ.get("WSEMBED_LIBRARY")
    if override:
        path = override
        origin = f"WSEMBED_LIBRARY={override}"
        fix = (
            "Point WSEMBED_LIBRARY at a libwsembed shared library built by `cargo build --release` "
            "(target/release/" + _library_filename() + "), or unset it to use the library "
            "bundled with the package."
        )
    else:
        path = str(Path(__file__).resolve().parent / _library_filename())
        origin = f"the bundled library {path}"
        fix = _HOW_TO_FIX
        if not os.path.exists(path):
            raise ImportError(f"wsembed: {origin} is missing, so this install is incomplete. {fix}")
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        raise ImportError(f"wsembed: cannot load {origin}: {exc}. {fix}") from None

    for name, (restype, argtypes, _names) in _abi.FUNCTIONS.items():
        try:
            func = getattr(lib, name)
        except AttributeError:
            raise ImportError(
                f"wsembed: {origin} does not export {name}(): it is not a wsembed library, or one "
                f"too old for this Python package. {fix}"
            ) from None
        func.restype = restype
        func.argtypes = argtypes

    raw_version = lib.wsembed_version()
    version = raw_version.decode("utf-8", "replace") if raw_version else "?"
    try:
        major_minor = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        major_minor = ()
    if major_minor != ABI_VERSION:
        wanted = ".".join(map(str, ABI_VERSION))
        raise ImportError(
            f"wsembed: {origin} is version {version}, but this Python package needs a "
            f"{wanted}.x library. {fix}"
        )
    return lib, version


lib, library_version = _load()


def last_error_message() -> str:
    raw = lib.wsembed_last_error_message()
    return raw.decode("utf-8", "replace") if raw else ""


def result_text(code: int) -> str:
    raw = lib.wsembed_result_text(code)
    return raw.decode("utf-8", "replace") if raw else f"error {code}"


def result_name(code: int) -> str:
    """The header's name of a result code, e.g. ``"WSEMBED_ERR_WOULD_BLOCK"``."""
    return _RESULT_NAMES.get(code, f"WSEMBED_ERR_{code}")


_RESULT_NAMES = {value: name for name, value in _abi.wsembed_result.items()}


class OptionInfo(NamedTuple):
    """One engine option, as the library describes it (``wsembed_config_option_info``)."""

    name: str
    #: "bool", "integer", "bytes", "milliseconds", "count", "text", "list", "choice", "path"
    #: or "pem".
    kind: str
    #: The default in the text form ``wsembed_config_set`` takes ("" for none).
    default: str
    doc: str


def _read_options() -> Dict[str, OptionInfo]:
    options: Dict[str, OptionInfo] = {}
    info = _abi.wsembed_option_info()
    for index in range(lib.wsembed_config_option_count()):
        rc = lib.wsembed_config_option_info(index, ctypes.byref(info))
        if rc:
            raise ImportError(f"wsembed: wsembed_config_option_info({index}) failed: {result_text(rc)}")
        text = [(getattr(info, f) or b"").decode("utf-8") for f in ("name", "kind", "default_value", "doc")]
        options[text[0]] = OptionInfo(*text)
    return options


#: The engine's options, in the library's order: name -> OptionInfo.
OPTIONS: Dict[str, OptionInfo] = _read_options()
