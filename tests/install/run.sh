#!/usr/bin/env bash
# Installs wsembed the three ways a user would, each into a fresh temporary place outside the
# repository, and echoes a message through each installed copy:
#   c       cargo cinstall into a prefix; echo.c and echo.cpp built with pkg-config only
#           (shared, and static with `pkg-config --static`), run from the temporary directory
#   node    npm pack of bindings/node, npm install of the tarball into an empty folder (it builds
#           the engine from the Rust sources inside the tarball), echo.js run there
#   python  python -m build in bindings/python (sdist, then the wheel from the sdist), the wheel
#           installed into a fresh venv, echo.py run from another directory with no cargo on PATH
#
#   tests/install/run.sh [c] [node] [python]      (default: all three)
#
# Environment:
#   CARGO_TARGET_DIR  where the npm and wheel builds compile (default: this checkout's target/,
#                     so they reuse its compiled dependencies and only recompile wsembed itself;
#                     note that they then leave their libwsembed.so, built from the same sources,
#                     in target/release). cargo cinstall always builds in target/<host triple>/.
#   PYTHON            the Python that runs `build` and makes the venv (default python3)
#   KEEP_TMP=1        keep the temporary directories
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$(pwd)
[ -d "$HOME/.cargo/bin" ] && case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) PATH=$HOME/.cargo/bin:$PATH ;; esac
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
tmp=$(mktemp -d /tmp/wsembed-install.XXXXXX)
cleanup() { if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi; }
trap cleanup EXIT
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(c node python)
step() { printf '\n---- install/%s: %s\n' "$1" "$2"; }
elapsed() { echo "---- install/$1: done in $(( $(date +%s) - $2 )) s"; }
# an environment with neither cargo nor this checkout's library in sight
bare_path=/usr/local/bin:/usr/bin:/bin
[ -n "$(command -v node)" ] && bare_path=$(dirname "$(command -v node)"):$bare_path

install_c() {
  local t0; t0=$(date +%s)
  step c "cargo cinstall --release --prefix $tmp/prefix"
  # cargo-c 0.10.24 is the newest that builds with rustc 1.95 (newer ones need 1.97). It embeds
  # cargo itself (~420 crates): a release build takes ~10 min on 2 cores, an unoptimised one
  # without debug info ~4 min, and is fast enough for this; `cargo install cargo-c --locked`
  # gives a normal one.
  if ! command -v cargo-cinstall >/dev/null; then
    local t1; t1=$(date +%s)
    CARGO_PROFILE_DEV_DEBUG=0 cargo install cargo-c --version '0.10.24+cargo-0.98.0' --locked --debug
    echo "---- install/c: cargo install cargo-c took $(( $(date +%s) - t1 )) s"
  fi
  cargo cinstall --release --prefix "$tmp/prefix" --libdir "$tmp/prefix/lib"
  local prefix=$tmp/prefix
  ls -l "$prefix/lib" "$prefix/include"
  readelf -d "$prefix/lib/libwsembed.so" | grep -q 'SONAME.*libwsembed\.so\.0\.1' \
    || { echo "libwsembed.so has no versioned soname" >&2; exit 1; }

  step c "build echo.c and echo.cpp with pkg-config only, outside the checkout"
  local app=$tmp/c-app
  mkdir -p "$app"
  cp tests/install/echo.c tests/install/echo.cpp tests/c/ws_client.c tests/c/ws_client.h "$app/"
  (
    cd "$app"
    export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
    echo "pkg-config --cflags --libs wsembed: $(pkg-config --cflags --libs wsembed)"
    echo "pkg-config --static --libs wsembed: $(pkg-config --static --libs wsembed)"
    local rpath="-Wl,-rpath,$(pkg-config --variable=libdir wsembed)"
    cc -std=c11 -Wall -Wextra -Werror -O1 -o echo_c echo.c ws_client.c $(pkg-config --cflags --libs wsembed) -lpthread "$rpath"
    cc -std=c11 -Wall -Wextra -Werror -O1 -c ws_client.c -o ws_client.o
    c++ -std=c++17 -Wall -Wextra -Werror -pedantic -O1 -o echo_cpp echo.cpp ws_client.o $(pkg-config --cflags --libs wsembed) -lpthread "$rpath"
    # static: the archive plus what `--static` lists (Libs.private), no libwsembed.so needed
    cc -std=c11 -Wall -Wextra -Werror -O1 -o echo_static echo.c ws_client.c $(pkg-config --cflags wsembed) \
      $(pkg-config --static --libs wsembed | sed 's/-lwsembed\b/-l:libwsembed.a/') -lpthread
    if ldd ./echo_static | grep -q libwsembed; then echo "echo_static links libwsembed.so" >&2; exit 1; fi
    ldd ./echo_c | grep libwsembed
    ./echo_c
    ./echo_cpp
    ./echo_static
  )
  elapsed c "$t0"
}

install_node() {
  local t0; t0=$(date +%s)
  step node "npm pack bindings/node (carries the Rust sources)"
  mkdir -p "$tmp/pack"
  (cd bindings/node && npm pack --silent --pack-destination "$tmp/pack" >/dev/null)
  local tarball
  tarball=$(ls "$tmp"/pack/wsembed-*.tgz)
  tar tzf "$tarball" > "$tmp/pack/listing"
  grep -qx 'package/rust/Cargo.lock' "$tmp/pack/listing" || { echo "the tarball lacks the Rust sources" >&2; exit 1; }

  step node "npm install the tarball into an empty folder (builds libwsembed with cargo, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
  local app=$tmp/node-app
  mkdir -p "$app"
  cp tests/install/echo.js "$app/"
  (
    cd "$app"
    echo '{"name": "wsembed-install-test", "private": true}' > package.json
    env -u WSEMBED_LIBRARY npm install --no-audit --no-fund --foreground-scripts "$tarball"
    test -f node_modules/wsembed/build/libwsembed.so
    # run without cargo on PATH and without WSEMBED_LIBRARY
    env -u WSEMBED_LIBRARY -u CARGO_TARGET_DIR PATH="$bare_path" node echo.js
  )
  elapsed node "$t0"
}

install_python() {
  local t0; t0=$(date +%s)
  local py=${PYTHON:-python3}
  step python "python -m build bindings/python (sdist, then the wheel built from the sdist)"
  "$py" -m venv "$tmp/build-venv"
  "$tmp/build-venv/bin/python" -m pip install -q --disable-pip-version-check build
  "$tmp/build-venv/bin/python" -m build --outdir "$tmp/dist" bindings/python
  ls -l "$tmp/dist"
  tar tzf "$tmp"/dist/wsembed-*.tar.gz > "$tmp/dist-listing"
  grep -q '/rust/Cargo.lock$' "$tmp/dist-listing" || { echo "the sdist lacks the Rust sources" >&2; exit 1; }

  step python "install the wheel into a fresh venv; echo from another directory, no cargo on PATH"
  "$py" -m venv "$tmp/venv"
  "$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check "$tmp"/dist/wsembed-*.whl
  mkdir -p "$tmp/elsewhere"
  cp tests/install/echo.py "$tmp/elsewhere/"
  (cd "$tmp/elsewhere" && env -u WSEMBED_LIBRARY -u PYTHONPATH PATH="$bare_path" "$tmp/venv/bin/python" echo.py)
  elapsed python "$t0"
}

for part in "${parts[@]}"; do
  case $part in
    c) install_c ;;
    node) install_node ;;
    python) install_python ;;
    *) echo "unknown part: $part (c, node, python)" >&2; exit 2 ;;
  esac
done
