"""A broken WSEMBED_LIBRARY gives a clear ImportError, not a ctypes traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import wsembed

PACKAGE_PARENT = str(Path(wsembed.__file__).resolve().parent.parent)


def import_with(library: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, WSEMBED_LIBRARY=library, PYTHONPATH=PACKAGE_PARENT)
    return subprocess.run(
        [sys.executable, "-c", "import wsembed"], env=env, capture_output=True, text=True, timeout=60
    )


def check_clear(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode != 0
    err = result.stderr
    last = err.strip().splitlines()[-1]
    assert last.startswith("ImportError: wsembed:"), err
    assert "WSEMBED_LIBRARY" in last and "cargo build --release" in last, err
    for text in expected:
        assert text in last, err
    assert "During handling of the above exception" not in err, err
    assert err.count("Traceback") == 1


def test_missing_library(tmp_path):
    missing = str(tmp_path / "nope" / "libwsembed.so")
    check_clear(import_with(missing), missing)


def test_not_a_library(tmp_path):
    bogus = tmp_path / "libwsembed.so"
    bogus.write_text("not an ELF file")
    check_clear(import_with(str(bogus)), "cannot load")


def test_library_without_wsembed_symbols():
    import ctypes.util

    libm = ctypes.util.find_library("m")
    if libm is None:
        pytest.skip("no libm to load")
    check_clear(import_with(libm), "does not export wsembed_")


def test_imports_from_any_directory(tmp_path):
    """The installed package (or WSEMBED_LIBRARY, when set) loads from an unrelated cwd."""
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT)
    result = subprocess.run(
        [sys.executable, "-c", "import wsembed; print(wsembed.library_version)"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == wsembed.library_version
