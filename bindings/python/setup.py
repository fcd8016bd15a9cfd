"""Build step of the wsembed Python package.

The package is pure Python plus the engine's shared library, which is built here with
`cargo build --release` from the wsembed checkout this directory belongs to
(bindings/python/../..) and copied into the package; the wheel is tagged for this platform
(py3-none-<platform>: the library is loaded through ctypes, so any CPython 3 can use it).

Environment:
  WSEMBED_SOURCE_DIR  the wsembed checkout (the folder with Cargo.toml), if the build does not
                      run inside one (e.g. from an unpacked sdist)
  CARGO_TARGET_DIR    honoured as by cargo itself
  CARGO               the cargo executable (default: `cargo` on PATH, then ~/.cargo/bin/cargo)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Command, setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent


def library_filename() -> str:
    if sys.platform == "darwin":
        return "libwsembed.dylib"
    if sys.platform == "win32":
        return "wsembed.dll"
    return "libwsembed.so"


def find_repo_root() -> Path:
    candidates = []
    if os.environ.get("WSEMBED_SOURCE_DIR"):
        candidates.append(Path(os.environ["WSEMBED_SOURCE_DIR"]))
    candidates.append(HERE.parent.parent)
    for root in candidates:
        cargo_toml = root / "Cargo.toml"
        if cargo_toml.is_file() and 'name = "wsembed"' in cargo_toml.read_text(encoding="utf-8"):
            return root.resolve()
    raise SystemExit(
        "wsembed: cannot find the wsembed Rust sources (Cargo.toml) at "
        + " or ".join(str(c) for c in candidates)
        + ". Build from a wsembed checkout (`pip install ./bindings/python`) or set "
        "WSEMBED_SOURCE_DIR to one."
    )


def find_cargo() -> str:
    for candidate in (os.environ.get("CARGO"), shutil.which("cargo"), str(Path.home() / ".cargo/bin/cargo")):
        if candidate and (shutil.which(candidate) or Path(candidate).is_file()):
            return candidate
    raise SystemExit(
        "wsembed: building this package compiles the Rust engine, but `cargo` was not found. "
        "Install Rust (https://rustup.rs), or set CARGO to the cargo executable."
    )


class build_rust(Command):
    """Runs `cargo build --release` and copies the shared library into the package."""

    description = "build the wsembed Rust library with cargo"
    user_options = []

    def initialize_options(self) -> None:
        self.build_lib = None

    def finalize_options(self) -> None:
        self.set_undefined_options("build_py", ("build_lib", "build_lib"))

    def run(self) -> None:
        root = find_repo_root()
        cargo = find_cargo()
        cmd = [cargo, "build", "--release", "--lib", "--manifest-path", str(root / "Cargo.toml")]
        self.announce("running " + " ".join(cmd), level=2)
        print("wsembed: " + " ".join(cmd), file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True)
        target = Path(os.environ.get("CARGO_TARGET_DIR") or root / "target")
        if not target.is_absolute():
            target = root / target
        built = target / "release" / library_filename()
        if not built.is_file():
            raise SystemExit(f"wsembed: cargo finished but {built} does not exist")
        dest = Path(self.build_lib) / "wsembed" / library_filename()
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, dest)
        print(f"wsembed: bundled {built} as {dest}", file=sys.stderr, flush=True)


class build_py_with_rust(build_py):
    def run(self) -> None:
        super().run()
        self.run_command("build_rust")


class platform_wheel(bdist_wheel):
    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


class BinaryDistribution(Distribution):
    def has_ext_modules(self) -> bool:
        return True


setup(
    distclass=BinaryDistribution,
    cmdclass={"build_rust": build_rust, "build_py": build_py_with_rust, "bdist_wheel": platform_wheel},
)
