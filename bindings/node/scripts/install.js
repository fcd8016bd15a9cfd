#!/usr/bin/env node
// `npm install` step: makes sure libwsembed exists, building it with cargo when needed, checks
// that it loads and records its path in wsembed-library.json.
//
//   WSEMBED_LIBRARY set        that library is used as it is (nothing is built)
//   installed from a tarball   (`npm pack`: the package carries the Rust sources in ./rust/)
//                              `cargo build --release --lib --locked` of ./rust, the library
//                              copied to ./build/libwsembed.so, ./rust/target removed afterwards
//   inside a wsembed checkout  (`npm install` in bindings/node, or `npm install /path/to/bindings/node`)
//                              <repo>/target/release/libwsembed.so, built with cargo if missing
//
// cargo is `$CARGO`, else `cargo` on PATH, else ~/.cargo/bin/cargo; CARGO_TARGET_DIR is honoured
// (a shared target directory then keeps the build and reuses its compiled dependencies).
// WSEMBED_KEEP_TARGET=1 keeps ./rust/target. Without cargo (and without WSEMBED_LIBRARY) the
// install fails with a message saying what to install.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const native = require('../lib/native');

const PKG = path.resolve(__dirname, '..');

function fail(message) {
  console.error(`\nwsembed: ${message}\n`);
  process.exit(1);
}

function findCargo() {
  const candidates = [process.env.CARGO, 'cargo', path.join(os.homedir(), '.cargo', 'bin', 'cargo')].filter(Boolean);
  for (const c of candidates) {
    const r = spawnSync(c, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return c;
  }
  return null;
}

/** Runs cargo build for the crate at crateDir; returns the path of the cdylib it produced. */
function cargoBuild(crateDir) {
  const cargo = findCargo();
  if (!cargo) {
    fail('installing this package compiles its Rust engine (libwsembed), but `cargo` was not found ' +
      '(looked at $CARGO, PATH and ~/.cargo/bin).\n' +
      '  Install Rust: https://rustup.rs  (curl --proto \'=https\' --tlsv1.2 -sSf https://sh.rustup.rs | sh),\n' +
      '  then run `npm rebuild wsembed` (or install again);\n' +
      `  or build the library elsewhere and set WSEMBED_LIBRARY=/path/to/${native.LIB_NAME} for both install and run.`);
  }
  const args = ['build', '--release', '--lib', '--locked', '--message-format=json-render-diagnostics',
    '--manifest-path', path.join(crateDir, 'Cargo.toml')];
  console.error(`wsembed: building the engine: ${cargo} ${args.join(' ')}` +
    (process.env.CARGO_TARGET_DIR ? ` (CARGO_TARGET_DIR=${process.env.CARGO_TARGET_DIR})` : ''));
  // stdout: JSON messages (parsed below); stderr: cargo's progress and diagnostics, shown as is.
  const r = spawnSync(cargo, args, { cwd: crateDir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 256 << 20 });
  if (r.error) fail(`could not run ${cargo}: ${r.error.message}`);
  if (r.status !== 0) fail(`\`cargo build\` failed (exit ${r.status}); see its output above.`);
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const msg = JSON.parse(line);
    if (msg.reason === 'compiler-artifact' && msg.target && msg.target.kind.includes('cdylib')) {
      const lib = msg.filenames.find((f) => path.basename(f) === native.LIB_NAME);
      if (lib) return lib;
    }
  }
  return fail(`cargo finished but reported no ${native.LIB_NAME}`);
}

function record(libraryPath) {
  try {
    fs.writeFileSync(native.RECORDED, `${JSON.stringify({ library: libraryPath }, null, 2)}\n`);
  } catch (_) { /* read-only install: the run-time lookup still works */ }
}

function main() {
  let libraryPath;
  if (process.env.WSEMBED_LIBRARY) {
    libraryPath = native.findLibrary(); // throws when the path does not exist
  } else if (fs.existsSync(path.join(native.BUNDLED_SOURCES, 'Cargo.toml'))) {
    const built = cargoBuild(native.BUNDLED_SOURCES);
    fs.mkdirSync(path.dirname(native.BUNDLED_LIBRARY), { recursive: true });
    // copy next to the old file, then rename over it: a process using the old one is unaffected
    fs.copyFileSync(built, `${native.BUNDLED_LIBRARY}.tmp`);
    fs.renameSync(`${native.BUNDLED_LIBRARY}.tmp`, native.BUNDLED_LIBRARY);
    libraryPath = native.BUNDLED_LIBRARY;
    if (!process.env.CARGO_TARGET_DIR && process.env.WSEMBED_KEEP_TARGET !== '1') {
      fs.rmSync(path.join(native.BUNDLED_SOURCES, 'target'), { recursive: true, force: true });
    }
  } else if (native.IN_CHECKOUT) {
    libraryPath = fs.existsSync(native.DEFAULT_LIBRARY) ? native.DEFAULT_LIBRARY : cargoBuild(native.REPO_ROOT);
  } else {
    fail(`no Rust sources to build from: neither ${native.BUNDLED_SOURCES} (a package made by \`npm pack\`) ` +
      `nor a wsembed checkout around ${PKG}. Install from a tarball made by \`npm pack\` in bindings/node, ` +
      `or set WSEMBED_LIBRARY=/path/to/${native.LIB_NAME}.`);
  }
  let version;
  try {
    version = native.loadFrom(libraryPath).version;
  } catch (e) {
    fail(e.message);
  }
  console.error(`wsembed: using ${libraryPath} (wsembed ${version})`);
  record(libraryPath);
}

try {
  main();
} catch (e) {
  fail(e.message);
}
