"""Build step of the wsembed Python package (setuptools + setuptools-rust).

The package is pure Python plus the engine's shared library (loaded through ctypes, see
src/wsembed/_ffi.py). setuptools-rust compiles the library (`cargo rustc --release --lib
--crate-type cdylib`, a `Binding.NoBinding` extension: a plain cdylib, no Python bindings) and
puts it in the package as wsembed/libwsembed.so. The wheel is tagged py3-none-<platform>: any
CPython 3 can load the library.

The Rust sources are
  - in an sdist (and so in the wheel `python -m build` makes from it): rust/ next to this file,
    copied in when the sdist is made: the files of `cargo package --list`, i.e. Cargo.toml's
    `include` list (so cargo is needed to make an sdist, as to build a wheel);
  - in a wsembed checkout (`pip install ./bindings/python`): the checkout itself, ../..;
  - else the directory named by WSEMBED_SOURCE_DIR.

Environment: CARGO_TARGET_DIR is honoured as by cargo (reuse a target directory that already has
the dependencies compiled); CARGO names the cargo executable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.sdist import sdist
from setuptools_rust import Binding, RustExtension

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent
BUNDLED = HERE / "rust"  # the Rust sources inside an sdist
EXTENSION = "wsembed.libwsembed"


def library_filename() -> str:
    if sys.platform == "darwin":
        return "libwsembed.dylib"
    if sys.platform == "win32":
        return "wsembed.dll"
    return "libwsembed.so"


def is_wsembed_crate(root: Path) -> bool:
    cargo_toml = root / "Cargo.toml"
    return cargo_toml.is_file() and 'name = "wsembed"' in cargo_toml.read_text(encoding="utf-8")


def crate_dir() -> Path:
    candidates = [BUNDLED, HERE.parent.parent]
    if os.environ.get("WSEMBED_SOURCE_DIR"):
        candidates.insert(0, Path(os.environ["WSEMBED_SOURCE_DIR"]))
    for root in candidates:
        if is_wsembed_crate(root):
            return root.resolve()
    raise SystemExit(
        "wsembed: cannot find the wsembed Rust sources (Cargo.toml) at "
        + " or ".join(str(c) for c in candidates)
        + ". Build from a wsembed checkout (`pip install ./bindings/python`), from an sdist made "
        "by `python -m build --sdist` there, or set WSEMBED_SOURCE_DIR to a checkout."
    )


def cargo_executable() -> str:
    for candidate in (os.environ.get("CARGO"), "cargo", str(Path.home() / ".cargo/bin/cargo")):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    raise SystemExit(
        "wsembed: building this package compiles the Rust engine, but `cargo` was not found "
        "(looked at $CARGO, PATH and ~/.cargo/bin). Install Rust (https://rustup.rs), or install "
        "a prebuilt wheel instead of building from source."
    )


class build_ext_plain_library(build_ext):
    """Names the library libwsembed.so (what _ffi.py loads), not libwsembed.cpython-3XX-....so:
    it is not an extension module and serves every Python version."""

    def get_ext_filename(self, fullname: str) -> str:
        if fullname in (EXTENSION, EXTENSION.rsplit(".", 1)[1]):
            return os.path.join(*fullname.split(".")[:-1], library_filename())
        return super().get_ext_filename(fullname)


class sdist_with_rust_sources(sdist):
    """Adds the crate's files (`cargo package --list`) under rust/ in the sdist."""

    def make_release_tree(self, base_dir: str, files: list) -> None:
        super().make_release_tree(base_dir, files)
        root = crate_dir()
        listing = subprocess.run(
            [cargo_executable(), "package", "--list", "--allow-dirty", "--quiet"],
            cwd=root, check=True, capture_output=True, text=True,
        ).stdout.split()
        dest = Path(base_dir) / "rust"
        copied = 0
        for rel in listing:
            src = root / rel
            if not src.is_file():  # Cargo.toml.orig, .cargo_vcs_info.json: made by cargo package
                continue
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest / rel)
            copied += 1
        print(f"wsembed: added {copied} Rust source files from {root} under rust/", file=sys.stderr)


class platform_wheel(bdist_wheel):
    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


if "CARGO" not in os.environ:
    # setuptools-rust runs $CARGO or `cargo` from PATH; find ~/.cargo/bin/cargo too.
    try:
        os.environ["CARGO"] = cargo_executable()
    except SystemExit:
        pass  # reported by setuptools-rust if a build actually needs cargo

setup(
    rust_extensions=[
        RustExtension(
            EXTENSION,
            path=os.path.relpath(crate_dir() / "Cargo.toml", HERE),
            binding=Binding.NoBinding,
            args=["--locked"],
            # the release profile keeps line tables for backtraces; a wheel does without
            rustc_flags=["-Cstrip=debuginfo"],
        )
    ],
    cmdclass={"build_ext": build_ext_plain_library, "sdist": sdist_with_rust_sources, "bdist_wheel": platform_wheel},
    zip_safe=False,
)
