'use strict';
// Loads libwsembed through koffi and declares the C ABI of include/wsembed.h.

const fs = require('fs');
const path = require('path');
const koffi = require('koffi');

const LIB_NAME = process.platform === 'win32' ? 'wsembed.dll'
  : process.platform === 'darwin' ? 'libwsembed.dylib' : 'libwsembed.so';

const PKG_ROOT = path.resolve(__dirname, '..');
// A package made by `npm pack` carries the engine's Rust sources in rust/; scripts/install.js
// builds them at `npm install` time and puts the library in build/.
const BUNDLED_SOURCES = path.join(PKG_ROOT, 'rust');
const BUNDLED_LIBRARY = path.join(PKG_ROOT, 'build', LIB_NAME);
// In a wsembed checkout: <repo>/bindings/node/lib -> <repo>, and `cargo build --release` there.
const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const DEFAULT_LIBRARY = path.join(REPO_ROOT, 'target', 'release', LIB_NAME);
const IN_CHECKOUT = !fs.existsSync(path.join(BUNDLED_SOURCES, 'Cargo.toml')) && isWsembedCrate(REPO_ROOT);
// Written by scripts/install.js at `npm install` time.
const RECORDED = path.join(__dirname, '..', 'wsembed-library.json');

function isWsembedCrate(dir) {
  try {
    return /^name = "wsembed"$/m.test(fs.readFileSync(path.join(dir, 'Cargo.toml'), 'utf8'));
  } catch (_) {
    return false;
  }
}

/** Candidate library paths, most preferred first: [{path, from}] */
function candidates() {
  const list = [];
  if (process.env.WSEMBED_LIBRARY) list.push({ path: path.resolve(process.env.WSEMBED_LIBRARY), from: 'WSEMBED_LIBRARY' });
  list.push({ path: BUNDLED_LIBRARY, from: 'built at npm install' });
  if (IN_CHECKOUT) list.push({ path: DEFAULT_LIBRARY, from: 'cargo build --release' });
  try {
    const rec = JSON.parse(fs.readFileSync(RECORDED, 'utf8'));
    if (rec && typeof rec.library === 'string') list.push({ path: rec.library, from: 'recorded at npm install' });
  } catch (_) { /* nothing recorded */ }
  return list;
}

/** What to do when the library is missing or broken. */
function howToFix() {
  return IN_CHECKOUT
    ? `Run \`cargo build --release\` at the root of the wsembed repository (${REPO_ROOT}), or set WSEMBED_LIBRARY=/path/to/${LIB_NAME}.`
    : `Reinstall the package with Rust's cargo on PATH (\`npm rebuild wsembed\` builds it again), or set WSEMBED_LIBRARY=/path/to/${LIB_NAME}.`;
}

function findLibrary() {
  const list = candidates();
  // WSEMBED_LIBRARY, when set, is authoritative: a wrong path is an error, not a fallback.
  if (process.env.WSEMBED_LIBRARY) {
    const p = list[0].path;
    if (!fs.existsSync(p)) {
      throw new Error(`wsembed: WSEMBED_LIBRARY points to ${p}, which does not exist. ` +
        `Build the library with \`cargo build --release\` at the repository root, or set WSEMBED_LIBRARY ` +
        `to the path of ${LIB_NAME}.`);
    }
    return p;
  }
  for (const c of list) if (fs.existsSync(c.path)) return c.path;
  throw new Error(`wsembed: the native library ${LIB_NAME} was not found (looked in ${list.map((c) => c.path).join(', ')}). ${howToFix()}`);
}

let cached = null;

// struct wsembed_stats, in header order (14 uint64_t counters).
const STATS_FIELDS = [
  'open_connections', 'handshakes_accepted', 'handshakes_rejected', 'messages_in', 'messages_out',
  'bytes_in', 'bytes_out', 'dropped_deliveries', 'rate_limited', 'closes_clean',
  'closes_protocol_error', 'closes_timeout', 'closes_dropped', 'closes_policy',
];

function load() {
  if (!cached) cached = loadFrom(findLibrary());
  return cached;
}

/** Loads the library at libraryPath and declares its functions (not cached). */
function loadFrom(libraryPath) {
  let lib;
  try {
    lib = koffi.load(libraryPath);
  } catch (e) {
    throw new Error(`wsembed: could not load ${libraryPath}: ${e.message}. ${howToFix()}`);
  }

  // Types are registered once per process in koffi; reuse them if another copy declared them.
  const type = (name, make) => { try { return koffi.resolve(name); } catch (_) { return make(); } };
  type('wsembed_config', () => koffi.opaque('wsembed_config'));
  type('wsembed_server', () => koffi.opaque('wsembed_server'));
  const Header = type('wsembed_header', () => koffi.struct('wsembed_header', {
    name: 'const char *',
    value: 'const char *',
  }));
  const Event = type('wsembed_event', () => koffi.struct('wsembed_event', {
    kind: 'uint32_t',
    close_code: 'uint16_t',
    clean: 'bool',
    conn: 'uint64_t',
    data: 'void *',
    len: 'size_t',
    path: 'const char *',
    peer: 'const char *',
    protocol: 'const char *',
    headers: 'void *',
    header_count: 'size_t',
    protocols: 'const char *',
  }));
  const Stats = type('wsembed_stats', () => koffi.struct('wsembed_stats', Object.fromEntries(STATS_FIELDS.map((n) => [n, 'uint64_t']))));

  const f = {
    result_text: lib.func('const char *wsembed_result_text(uint32_t code)'),
    last_error_message: lib.func('const char *wsembed_last_error_message(void)'),
    version: lib.func('const char *wsembed_version(void)'),
    config_new: lib.func('uint32_t wsembed_config_new(_Out_ wsembed_config **out)'),
    config_free: lib.func('void wsembed_config_free(wsembed_config *config)'),
    config_set: lib.func('uint32_t wsembed_config_set(wsembed_config *config, const char *name, const char *value)'),
    config_set_int: lib.func('uint32_t wsembed_config_set_int(wsembed_config *config, const char *name, int64_t value)'),
    server_start: lib.func('uint32_t wsembed_server_start(const wsembed_config *config, _Out_ wsembed_server **out)'),
    server_port: lib.func('uint32_t wsembed_server_port(const wsembed_server *server, _Out_ uint16_t *port)'),
    // events and count are raw pointers to memory allocated with koffi.alloc (stable across
    // the asynchronous call).
    // events and count are addresses (numbers) of Buffers the caller keeps alive: passing plain
    // numbers is the cheapest marshalling koffi has, and the memory does not move.
    // The server too is passed as its address on this hot path (see koffi.address).
    server_poll: lib.func('uint32_t wsembed_server_poll(uintptr_t server, uintptr_t events, size_t capacity, int32_t timeout_ms, uintptr_t count)'),
    server_event_fd: lib.func('uint32_t wsembed_server_event_fd(const wsembed_server *server, _Out_ int *fd)'),
    server_send: lib.func('uint32_t wsembed_server_send(const wsembed_server *server, uint64_t conn, uint32_t kind, const uint8_t *data, size_t len)'),
    // Hot-path variants of wsembed_server_send: the server by address; text from a JS string
    // (koffi encodes it to UTF-8 itself, len = Buffer.byteLength) or bytes from a Buffer.
    server_send_addr: lib.func('wsembed_server_send', 'uint32_t', ['uintptr_t', 'uint64_t', 'uint32_t', 'const uint8_t *', 'size_t']),
    server_send_str: lib.func('wsembed_server_send', 'uint32_t', ['uintptr_t', 'uint64_t', 'uint32_t', 'const char *', 'size_t']),
    server_broadcast: lib.func('uint32_t wsembed_server_broadcast(const wsembed_server *server, uint32_t kind, const uint8_t *data, size_t len, uint64_t except_conn)'),
    server_publish: lib.func('uint32_t wsembed_server_publish(const wsembed_server *server, const char *topic, uint32_t kind, const uint8_t *data, size_t len)'),
    server_subscribe: lib.func('uint32_t wsembed_server_subscribe(const wsembed_server *server, uint64_t conn, const char *topic)'),
    server_unsubscribe: lib.func('uint32_t wsembed_server_unsubscribe(const wsembed_server *server, uint64_t conn, const char *topic)'),
    server_close: lib.func('uint32_t wsembed_server_close(const wsembed_server *server, uint64_t conn, uint16_t code, const char *reason)'),
    server_accept: lib.func('uint32_t wsembed_server_accept(const wsembed_server *server, uint64_t conn, const char *protocol)'),
    server_reject: lib.func('uint32_t wsembed_server_reject(const wsembed_server *server, uint64_t conn, uint16_t status, const char *body)'),
    // out: memory from koffi.alloc('wsembed_stats', 1), read with koffi.decode.
    server_stats: lib.func('uint32_t wsembed_server_stats(const wsembed_server *server, void *stats)'),
    server_buffered_amount: lib.func('uint32_t wsembed_server_buffered_amount(const wsembed_server *server, uint64_t conn, _Out_ size_t *bytes)'),
    server_stop: lib.func('uint32_t wsembed_server_stop(const wsembed_server *server, uint32_t timeout_ms)'),
    server_free: lib.func('void wsembed_server_free(wsembed_server *server)'),
  };

  // memcpy, found through the library's own dependencies (libc), to copy message payloads out
  // of the engine's memory by address: ~70 ns a message instead of ~2 us for koffi.view() and a
  // copy. addressOf(buffer) is memcpy(buffer, 0, 0), which returns the buffer's address.
  let addressOf = null; let copyTo = null;
  try {
    addressOf = lib.func('memcpy', 'uintptr_t', ['void *', 'uintptr_t', 'size_t']);
    copyTo = lib.func('memcpy', 'uintptr_t', ['uintptr_t', 'uintptr_t', 'size_t']);
    const probe = Buffer.from('wsembed');
    const dst = Buffer.alloc(7);
    copyTo(addressOf(dst, 0, 0), addressOf(probe, 0, 0), 7);
    if (!dst.equals(probe)) throw new Error('memcpy probe failed');
  } catch (_) {
    addressOf = null; copyTo = null; // slower fallback in index.js
  }
  f.address_of = addressOf;
  f.copy_to = copyTo;

  return { koffi, lib, libraryPath, f, Event, Header, Stats, STATS_SIZE: koffi.sizeof(Stats), EVENT_SIZE: koffi.sizeof(Event), HEADER_SIZE: koffi.sizeof(Header) };
}

module.exports = {
  load, loadFrom, STATS_FIELDS, findLibrary, candidates, DEFAULT_LIBRARY, LIB_NAME, REPO_ROOT, RECORDED,
  BUNDLED_SOURCES, BUNDLED_LIBRARY, IN_CHECKOUT,
};
