#!/usr/bin/env bash
# Refreshes include/wsembed.h and README.md's option table from a fresh build (build.rs
# generates both into OUT_DIR; a build never writes into the source tree). Commit the result;
# tests/header.rs fails while they differ.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
WSEMBED_BLESS=1 cargo test --release --test header -- --test-threads=1
git --no-pager diff --stat -- include/wsembed.h README.md
# The Python and Node bindings' ABI modules are generated from the header too.
python3 bindings/gen_abi.py
git --no-pager diff --stat -- bindings/python/src/wsembed/_abi.py bindings/node/lib/abi.js
