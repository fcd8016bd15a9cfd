'use strict';
// WebSocketServer options. The engine's options are read from the library at load time
// (wsembed_config_option_count / wsembed_config_option_info): each one is accepted by its
// snake_case name and by its camelCase name (mechanically: max_buffered_bytes ->
// maxBufferedBytes), and its value is converted by the option's kind. A few ws names map onto
// engine options (ws's maxPayload is max_message_size); the rest of ws's options are
// host-only, listed in HOST_OPTIONS with what they do here.

const native = require('./native');

const camelCase = (snake) => snake.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
const snakeCase = (camel) => camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** ws option names that mean an engine option. */
const WS_ALIASES = Object.freeze({ maxPayload: 'max_message_size' });

/** Options handled by this package itself (not engine options), with what they do. */
const HOST_OPTIONS = Object.freeze({
  clientTracking: 'ws: keep the open sockets in wss.clients (default true).',
  path: 'ws: only accept WebSocket requests for this path (with handshake approval: 400 before the upgrade; without: 1008 after it).',
  verifyClient: 'ws: decides on each upgrade request, (info) => boolean or (info, cb) => cb(ok, status, body); turns on approve_handshakes.',
  handleProtocols: 'ws: (protocols: Set<string>, request) => protocol | false picks the subprotocol; turns on approve_handshakes.',
  tls: '{ cert, key } (PEM strings or Buffers) or { certFile, keyFile }: serve wss:// (tls_cert_pem/tls_key_pem or tls_cert_file/tls_key_file).',
  stopTimeoutMs: 'How long close() waits for the clients\' closing handshakes, in ms (default 2000).',
  perMessageDeflate: 'ws: true = compression "dedicated" (context takeover, as ws); an object maps serverNoContextTakeover + clientNoContextTakeover to "shared", serverMaxWindowBits to compressionWindowBits, threshold to compressionThreshold, zlibDeflateOptions.memLevel to compressionMemLevel; false = off. An explicit compression option wins.',
  server: 'ws: not supported (the engine owns its listening socket): throws.',
  noServer: 'ws: not supported (the engine owns its listening socket): throws.',
  backlog: 'ws: accepted for compatibility and ignored (the engine sets its own listen backlog).',
  skipUTF8Validation: 'ws: accepted for compatibility and ignored (the engine always validates text).',
  autoPong: 'ws: accepted for compatibility and ignored (the engine always answers pings).',
  allowSynchronousEvents: 'ws: accepted for compatibility and ignored (events are dispatched in batches).',
  WebSocket: 'ws: not supported (sockets are this package\'s WebSocket): throws.',
});

/** Engine option defaults this package changes: a ws server always emits 'ping'/'pong'. */
const HOST_DEFAULTS = Object.freeze({ ping_events: '1' });

let table = null;

/**
 * The engine's options as the library describes them, in its order:
 * [{ name, camel, kind, default, doc }] (cached).
 */
function engineOptions() {
  if (table) return table;
  const { f } = native.load();
  const list = [];
  const n = Number(f.wsembed_config_option_count());
  for (let i = 0; i < n; i++) {
    const info = {};
    const rc = f.wsembed_config_option_info(i, info);
    if (rc !== native.RESULT.OK) throw new Error(`wsembed: wsembed_config_option_info(${i}) failed (${rc})`);
    list.push(Object.freeze({ name: info.name, camel: camelCase(info.name), kind: info.kind, default: info.default_value, doc: info.doc }));
  }
  table = Object.freeze(list);
  return table;
}

/** option key (camelCase, snake_case or ws alias) -> engine option name. */
function nameMap() {
  const map = new Map();
  for (const o of engineOptions()) { map.set(o.name, o.name); map.set(o.camel, o.name); }
  for (const [alias, name] of Object.entries(WS_ALIASES)) map.set(alias, name);
  return map;
}

const pemText = (v) => (Buffer.isBuffer(v) || ArrayBuffer.isView(v)
  ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8') : String(v));

/**
 * The text wsembed_config_set takes for `value`, by the option's kind. Meaning and ranges are
 * checked by the engine (a bad value throws with its message); only the JS type is mapped.
 */
function toText(kind, value) {
  switch (kind) {
    case 'bool':
      return typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
    case 'list':
      return Array.isArray(value) || value instanceof Set ? [...value].map(String).join(',') : String(value);
    case 'pem':
      return pemText(value);
    default:
      // numbers (integer, bytes, milliseconds, count): decimal text; the engine refuses
      // negative, fractional or boolean values. text, choice, path: as given.
      return String(value);
  }
}

/**
 * Engine option values for the constructor's `options`: { snake_name: text }. Throws a
 * TypeError for a key that is neither an engine option nor a host option (a typo would
 * otherwise be silently ignored).
 */
function engineValues(options) {
  const names = nameMap();
  const kinds = new Map(engineOptions().map((o) => [o.name, o.kind]));
  const values = { ...HOST_DEFAULTS };
  const seen = new Map();
  for (const [key, value] of Object.entries(options)) {
    if (Object.prototype.hasOwnProperty.call(HOST_OPTIONS, key)) continue;
    const name = names.get(key);
    if (name === undefined) {
      throw new TypeError(`wsembed: unknown option "${key}" (engine options: ${engineOptions().map((o) => o.camel).join(', ')}; ` +
        `host options: ${Object.keys(HOST_OPTIONS).join(', ')})`);
    }
    if (value === undefined || value === null) continue;
    if (seen.has(name)) throw new TypeError(`wsembed: options "${seen.get(name)}" and "${key}" both set ${name}`);
    seen.set(name, key);
    values[name] = toText(kinds.get(name), value);
  }
  if (options.tls !== undefined && options.tls !== null) {
    const { cert, key, certFile, keyFile } = options.tls;
    if ((cert === undefined) === (certFile === undefined) || (key === undefined) === (keyFile === undefined)) {
      throw new TypeError('wsembed: tls needs { cert, key } (PEM strings or Buffers) or { certFile, keyFile }');
    }
    if (cert !== undefined) values.tls_cert_pem = pemText(cert); else values.tls_cert_file = String(certFile);
    if (key !== undefined) values.tls_key_pem = pemText(key); else values.tls_key_file = String(keyFile);
  }
  const pmd = options.perMessageDeflate;
  if (pmd !== undefined && pmd !== null && values.compression === undefined) {
    if (pmd === false) {
      values.compression = 'off';
    } else if (pmd === true) {
      values.compression = 'dedicated';
    } else if (typeof pmd === 'object') {
      values.compression = pmd.serverNoContextTakeover && pmd.clientNoContextTakeover ? 'shared' : 'dedicated';
      if (typeof pmd.serverMaxWindowBits === 'number') values.compression_window_bits = String(pmd.serverMaxWindowBits);
      if (typeof pmd.threshold === 'number') values.compression_threshold = String(pmd.threshold);
      const zlib = pmd.zlibDeflateOptions || {};
      if (typeof zlib.memLevel === 'number') values.compression_mem_level = String(zlib.memLevel);
    } else {
      throw new TypeError('wsembed: perMessageDeflate is true, false or an options object');
    }
  }
  return values;
}

/** The engine's default of `name` (its text), or undefined. */
function engineDefault(name) {
  const o = engineOptions().find((x) => x.name === name);
  return o ? o.default : undefined;
}

module.exports = { engineOptions, engineValues, engineDefault, toText, camelCase, snakeCase, WS_ALIASES, HOST_OPTIONS, HOST_DEFAULTS };
