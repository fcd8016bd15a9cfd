'use strict';
// Finds and loads libwsembed through koffi. The ABI (types, constants, prototypes) comes from
// lib/abi.js, generated from include/wsembed.h by bindings/gen_abi.py; nothing here restates it.

const fs = require('fs');
const path = require('path');
const koffi = require('koffi');
const abi = require('./abi');

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

/** { SHORT_NAME: value } of a generated enum, without the common prefix (WSEMBED_ERR_, ...). */
function shortNames(values, prefixes) {
  const out = {};
  for (const [name, value] of Object.entries(values)) {
    const prefix = prefixes.find((p) => name.startsWith(p));
    out[prefix ? name.slice(prefix.length) : name] = value;
  }
  return Object.freeze(out);
}

/** Result codes by short name: { OK: 0, NULL_ARGUMENT: 1, ..., WOULD_BLOCK: 5, ... }. */
const RESULT = shortNames(abi.enums.wsembed_result, ['WSEMBED_ERR_', 'WSEMBED_']);
/** The header's full name of each result code: { 5: 'WSEMBED_ERR_WOULD_BLOCK', ... }. */
const RESULT_NAMES = Object.freeze(Object.fromEntries(Object.entries(abi.enums.wsembed_result).map(([k, v]) => [v, k])));
/** Event kinds: { OPEN: 1, TEXT: 2, ..., PING: 7, PONG: 8 }. */
const EVENT = shortNames(abi.enums.wsembed_event_kind, ['WSEMBED_EVENT_']);
/** Message kinds to send: { TEXT: 1, BINARY: 2 }. */
const MESSAGE = shortNames(abi.enums.wsembed_message_kind, ['WSEMBED_']);

// Binary payloads up to this size are sent through the staging buffer (see loadFrom).
const STAGE_MAX = 16 * 1024;

let cached = null;

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
  let declared;
  try {
    declared = abi.declare(koffi, lib);
  } catch (e) {
    throw new Error(`wsembed: ${libraryPath} does not match include/wsembed.h (${e.message}): it is not a wsembed ` +
      'library, or one too old for this package. Rebuild it with `cargo build --release`.');
  }
  const { types, funcs } = declared;
  const version = funcs.wsembed_version();
  const [major, minor] = String(version).split('.').map(Number);
  if (major !== abi.defines.WSEMBED_VERSION_MAJOR || minor !== abi.defines.WSEMBED_VERSION_MINOR) {
    throw new Error(`wsembed: ${libraryPath} is version ${version}, but this package needs a ` +
      `${abi.defines.WSEMBED_VERSION_MAJOR}.${abi.defines.WSEMBED_VERSION_MINOR}.x library. Rebuild it with \`cargo build --release\`.`);
  }

  // Hot-path variants, derived from the generated prototypes: every pointer parameter passed as
  // an address (a plain number is the cheapest thing koffi marshals); for send, text also
  // straight from a JS string (koffi encodes it to UTF-8; len = Buffer.byteLength).
  const variant = (name, replace) => {
    const { ret, params } = abi.functions[name];
    return lib.func(name, ret, params.map(([p, t]) => (replace[p] !== undefined ? replace[p] : t.replace(/^_Out_ /, ''))));
  };
  const byAddress = (name) => {
    const replace = {};
    for (const [p, t] of abi.functions[name].params) if (t.includes('*') && !/char \*$/.test(t)) replace[p] = 'uintptr_t';
    return variant(name, replace);
  };
  const f = {
    ...funcs,
    // events and count are addresses of koffi-allocated memory the server keeps.
    poll_addr: byAddress('wsembed_server_poll'),
    send_addr: variant('wsembed_server_send', { server: 'uintptr_t' }),
    send_str: variant('wsembed_server_send', { server: 'uintptr_t', data: 'const char *' }),
    copy_payloads_addr: byAddress('wsembed_event_copy_payloads'),
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
    addressOf = null; copyTo = null; // slower fallback in pump.js
  }
  f.address_of = addressOf;
  f.copy_to = copyTo;

  // Sends. The engine copies the payload before wsembed_server_send returns, so a binary
  // payload up to STAGE_MAX bytes is first copied (TypedArray#set, a plain memcpy) into one
  // staging buffer at a fixed address and passed as a number: marshalling a Buffer argument
  // costs koffi several times what the copy does. Larger ones are passed by pointer; text from
  // a JS string is encoded by koffi.
  const sendPtr = variant('wsembed_server_send', { server: 'uintptr_t', data: 'uintptr_t' });
  const sendBuf = f.send_addr; const sendStr = f.send_str;
  const stage = addressOf !== null ? Buffer.alloc(STAGE_MAX) : null;
  const stageAddr = stage !== null ? addressOf(stage, 0, 0) : 0;
  /** wsembed_server_send(server address, conn, kind, data): data a Buffer, or a string for text. */
  f.send = (server, conn, kind, data) => {
    if (typeof data === 'string') return sendStr(server, conn, kind, data, Buffer.byteLength(data));
    const len = data.length;
    if (len > STAGE_MAX || stage === null) return sendBuf(server, conn, kind, data, len);
    stage.set(data, 0);
    return sendPtr(server, conn, kind, stageAddr, len);
  };
  // glibc's malloc_trim, if there is one: gives freed memory back to the OS (see
  // websocket-server.js, after connections close).
  try { f.malloc_trim = lib.func('malloc_trim', 'int', ['size_t']); } catch (_) { f.malloc_trim = null; }

  // Byte offsets of the event fields the pump reads through a DataView, from koffi's layout of
  // the generated struct (so a reordered or widened field moves with the header).
  const Event = types.wsembed_event;
  const eventLayout = { size: koffi.sizeof(Event) };
  for (const [field] of abi.structs.wsembed_event) eventLayout[field] = koffi.offsetof(Event, field);
  if (koffi.sizeof('size_t') !== 8 || koffi.sizeof('void *') !== 8 || new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    throw new Error('wsembed: the Node package reads events as a 64-bit little-endian platform');
  }

  return { koffi, lib, libraryPath, version, f, types, eventLayout };
}

module.exports = {
  load, loadFrom, abi, RESULT, RESULT_NAMES, EVENT, MESSAGE, findLibrary, candidates, DEFAULT_LIBRARY, LIB_NAME, REPO_ROOT,
  RECORDED, BUNDLED_SOURCES, BUNDLED_LIBRARY, IN_CHECKOUT,
};
