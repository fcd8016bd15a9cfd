'use strict';
// wsembed for Node.js: a WebSocket server whose protocol and I/O run in the wsembed engine (Rust,
// on its own thread), with an API close to the `ws` package's server side.
//
// Event pump: the engine's event fd (the read end of a pipe, readable while events wait) is
// watched by a libuv stream on the JS main thread. On each readable callback the pump calls
// wsembed_server_poll synchronously with timeout 0 until the queue is empty, and dispatches the
// events straight from the event array (payloads copied out by address with memcpy). No thread
// pool, no timers; an idle server costs nothing. See README "How events reach JavaScript".

const { EventEmitter } = require('events');
const fs = require('fs');
const net = require('net');
const http = require('http');
const native = require('./lib/native');

const RESULT = Object.freeze({
  OK: 0, NULL_ARGUMENT: 1, INVALID_ARGUMENT: 2, NO_SUCH_CONNECTION: 3, STOPPED: 4,
  WOULD_BLOCK: 5, IO: 6, PANIC: 7, INVALID_UTF8: 8,
});
const RESULT_NAMES = Object.fromEntries(Object.entries(RESULT).map(([k, v]) => [v, `WSEMBED_ERR_${k}`]));
const EV_OPEN = 1; const EV_TEXT = 2; const EV_BINARY = 3; const EV_CLOSE = 4; const EV_DRAIN = 5;
const EV_HANDSHAKE = 6;
const KIND_TEXT = 1; const KIND_BINARY = 2;
// Layout of struct wsembed_event (checked against koffi's layout when the library loads).
const EVENT_SIZE = 80;
const OFF_KIND = 0; const OFF_CLOSE_CODE = 4; const OFF_CLEAN = 6; const OFF_CONN = 8; const OFF_DATA = 16;
const OFF_LEN = 24;

const CONNECTING = 0; const OPEN = 1; const CLOSING = 2; const CLOSED = 3;
const READY_STATES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];

// Events taken per wsembed_server_poll call; the pump polls again while batches come back full.
const POLL_CAPACITY = 512;
// Payloads up to this size share one Buffer per batch (one allocation per batch); larger ones
// get their own Buffer so a kept small message does not pin a big one.
const SHARED_PAYLOAD_MAX = 16 * 1024;
// Fallback pump only (no usable event fd): the thread-pool poll is re-armed after this long.
const POLL_TIMEOUT_MS = 1000;

// Engine options, by their ws-style or camelCase names (snake_case names are accepted as is).
const OPTION_NAMES = {
  host: 'host',
  port: 'port',
  maxPayload: 'max_message_size',
  maxMessageSize: 'max_message_size',
  maxFrameSize: 'max_frame_size',
  maxConnections: 'max_connections',
  handshakeTimeoutMs: 'handshake_timeout_ms',
  maxHeaderBytes: 'max_header_bytes',
  pingIntervalMs: 'ping_interval_ms',
  pongTimeoutMs: 'pong_timeout_ms',
  closeTimeoutMs: 'close_timeout_ms',
  maxBufferedBytes: 'max_buffered_bytes',
  backpressure: 'backpressure',
  backpressureCloseCode: 'backpressure_close_code',
  staticDir: 'static_dir',
  maxStaticFileBytes: 'max_static_file_bytes',
  subprotocols: 'subprotocols',
  allowedOrigins: 'allowed_origins',
  maxMessagesPerSec: 'max_messages_per_sec',
  maxBytesPerSec: 'max_bytes_per_sec',
  rateLimitPolicy: 'rate_limit_policy',
  maxConnectionsPerIp: 'max_connections_per_ip',
  maxHandshakesPerIpPerSec: 'max_handshakes_per_ip_per_sec',
  approveHandshakes: 'approve_handshakes',
  approvalTimeoutMs: 'approval_timeout_ms',
};
const ENGINE_OPTIONS = new Set([...Object.values(OPTION_NAMES),
  'tls_cert_file', 'tls_key_file', 'tls_cert_pem', 'tls_key_pem']);

// struct wsembed_stats fields -> camelCase keys of wss.stats().
const STATS_KEYS = native.STATS_FIELDS.map((n) => n.replace(/_([a-z])/g, (_, c) => c.toUpperCase()));

function lib() { return native.load(); }
// Load now, so a missing library is reported by require() with what to run.
const L = lib();
const F = L.f;
{
  const { koffi, Event } = L;
  const layout = [koffi.sizeof(Event), koffi.offsetof(Event, 'kind'), koffi.offsetof(Event, 'close_code'),
    koffi.offsetof(Event, 'clean'), koffi.offsetof(Event, 'conn'), koffi.offsetof(Event, 'data'), koffi.offsetof(Event, 'len')];
  if (layout.join() !== [EVENT_SIZE, OFF_KIND, OFF_CLOSE_CODE, OFF_CLEAN, OFF_CONN, OFF_DATA, OFF_LEN].join()) {
    throw new Error(`wsembed: unexpected struct wsembed_event layout on this platform: ${layout.join()}`);
  }
}

function makeError(rc, what, detail) {
  const { f } = lib();
  const text = f.result_text(rc);
  const err = new Error(`wsembed: ${what}: ${text}${detail ? ` (${detail})` : ''}`);
  err.code = RESULT_NAMES[rc] || `WSEMBED_ERR_${rc}`;
  err.result = rc;
  if (rc === RESULT.IO && /in use/i.test(detail || '')) err.code = 'EADDRINUSE';
  return err;
}

// Reads the thread-local detail right after a failing call (same thread).
function failure(rc, what) {
  const { f } = lib();
  return makeError(rc, what, f.last_error_message());
}

function toBuffer(data) {
  if (Buffer.isBuffer(data)) return data;
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && data instanceof SharedArrayBuffer)) {
    return Buffer.from(data);
  }
  if (Array.isArray(data)) return Buffer.concat(data.map(toBuffer)); // ws 'fragments'
  return null;
}

// (data[, options]) -> { kind, buf }; strings are text, bytes are binary, like ws.
function encodeMessage(data, options) {
  let kind; let buf;
  if (typeof data === 'string') {
    kind = KIND_TEXT; buf = Buffer.from(data, 'utf8');
  } else {
    buf = toBuffer(data);
    if (buf === null) {
      if (typeof data === 'number' || typeof data === 'boolean' || typeof data === 'bigint') {
        kind = KIND_TEXT; buf = Buffer.from(String(data), 'utf8');
      } else {
        throw new TypeError('wsembed: data must be a string, Buffer, TypedArray, DataView or ArrayBuffer');
      }
    } else {
      kind = KIND_BINARY;
    }
  }
  if (options && typeof options.binary === 'boolean') kind = options.binary ? KIND_BINARY : KIND_TEXT;
  return { kind, buf };
}

function splitPeer(peer) {
  if (!peer) return { address: undefined, port: undefined, family: undefined };
  const i = peer.lastIndexOf(':');
  let address = i >= 0 ? peer.slice(0, i) : peer;
  const port = i >= 0 ? Number(peer.slice(i + 1)) : undefined;
  if (address.startsWith('[') && address.endsWith(']')) address = address.slice(1, -1);
  return { address, port, family: address.includes(':') ? 'IPv6' : 'IPv4' };
}

function buildHeaders(list) {
  const headers = {};
  const rawHeaders = [];
  for (const { name, value } of list) {
    rawHeaders.push(name, value);
    const key = name.toLowerCase();
    if (!(key in headers)) {
      headers[key] = key === 'set-cookie' ? [value] : value;
    } else if (key === 'set-cookie') {
      headers[key].push(value);
    } else {
      headers[key] += (key === 'cookie' ? '; ' : ', ') + value;
    }
  }
  return { headers, rawHeaders };
}

/** The server side of one WebSocket connection (like ws's WebSocket on the server). */
class WebSocket extends EventEmitter {
  constructor(address) {
    super();
    if (address !== kInternal) {
      throw new Error('wsembed is a WebSocket server library: sockets come from the server\'s ' +
        '"connection" event. Use the `ws` package for a client.');
    }
    this._server = null;
    this._conn = 0;
    this._readyState = CONNECTING;
    this._queue = []; // messages refused with WOULD_BLOCK, sent on DRAIN
    this._queuedBytes = 0;
    this._topics = new Set();
    this._binaryType = 'nodebuffer';
    this.protocol = '';
    this.extensions = '';
    this.url = undefined;
    this._socket = null;
    this._closeFrameSent = false;
  }

  get readyState() { return this._readyState; }
  get binaryType() { return this._binaryType; }
  set binaryType(type) {
    if (!['nodebuffer', 'arraybuffer', 'fragments'].includes(type)) return;
    this._binaryType = type;
  }
  /** The connection id used by the engine (a number, or a BigInt above 2^53). */
  get id() { return this._conn; }
  /** Topics this socket is subscribed to. */
  get topics() { return new Set(this._topics); }

  /** Bytes queued for this socket and not yet written to its TCP socket. */
  get bufferedAmount() {
    if (this._readyState === CLOSED || !this._server || !this._server._handle) return this._queuedBytes;
    const { f } = lib();
    const out = [0];
    const rc = f.server_buffered_amount(this._server._handle, this._conn, out);
    return (rc === RESULT.OK ? Number(out[0]) : 0) + this._queuedBytes;
  }

  send(data, options, cb) {
    if (typeof options === 'function') { cb = options; options = undefined; }
    // Fast paths (no intermediate objects): a string goes to the engine as is (koffi encodes it
    // to UTF-8), a Buffer by pointer. Everything else through encodeMessage.
    const binary = options !== undefined && options !== null ? options.binary : undefined;
    let kind; let buf;
    if (typeof data === 'string' && binary !== true) {
      kind = KIND_TEXT; buf = data;
    } else if (Buffer.isBuffer(data)) {
      kind = binary === false ? KIND_TEXT : KIND_BINARY; buf = data;
    } else {
      ({ kind, buf } = encodeMessage(data, options));
    }
    if (this._readyState !== OPEN) {
      const err = new Error(`WebSocket is not open: readyState ${this._readyState} (${READY_STATES[this._readyState]})`);
      if (cb) process.nextTick(cb, err);
      return;
    }
    if (this._queue.length > 0) {
      this._enqueue(kind, buf, cb);
      return;
    }
    const rc = this._server._sendRaw(this._conn, kind, buf);
    if (rc === RESULT.OK) {
      if (cb) process.nextTick(cb);
    } else if (rc === RESULT.WOULD_BLOCK) {
      // ws never drops a message: keep it until the engine's DRAIN event.
      this._enqueue(kind, buf, cb);
    } else {
      const err = failure(rc, 'send');
      if (cb) process.nextTick(cb, err);
      else if (rc === RESULT.INVALID_UTF8 || rc === RESULT.INVALID_ARGUMENT) throw err;
    }
  }

  _enqueue(kind, buf, cb) {
    // The engine copies the data; keep our own copy since the caller may reuse its buffer.
    const copy = Buffer.from(buf); // a string is encoded here
    this._queue.push({ kind, buf: copy, cb });
    this._queuedBytes += copy.length;
  }

  _flush() {
    while (this._queue.length > 0 && this._readyState === OPEN) {
      const m = this._queue[0];
      const rc = this._server._sendRaw(this._conn, m.kind, m.buf);
      if (rc === RESULT.WOULD_BLOCK) return;
      this._queue.shift();
      this._queuedBytes -= m.buf.length;
      if (m.cb) process.nextTick(m.cb, rc === RESULT.OK ? undefined : makeError(rc, 'send'));
    }
  }

  _failQueue() {
    const err = new Error('WebSocket closed before the message was sent');
    for (const m of this._queue) if (m.cb) process.nextTick(m.cb, err);
    this._queue = [];
    this._queuedBytes = 0;
  }

  /** Starts the closing handshake. code: 1000-1003, 1007-1014, 3000-4999; reason <= 123 bytes. */
  close(code, reason) {
    if (this._readyState === CLOSING || this._readyState === CLOSED) return;
    if (code === undefined) code = 1000;
    if (typeof code !== 'number' || !Number.isInteger(code) ||
        !((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999))) {
      throw new TypeError('First argument must be a valid error code number');
    }
    let reasonStr = null;
    if (reason !== undefined && reason !== null) {
      reasonStr = Buffer.isBuffer(reason) ? reason.toString('utf8') : String(reason);
      if (Buffer.byteLength(reasonStr) > 123) throw new RangeError('The message must not be greater than 123 bytes');
      if (reasonStr.includes('\0')) throw new TypeError('The close reason must not contain NUL characters');
    }
    this._readyState = CLOSING;
    const rc = this._server._closeRaw(this._conn, code, reasonStr);
    if (rc !== RESULT.OK && rc !== RESULT.NO_SUCH_CONNECTION && rc !== RESULT.STOPPED) {
      throw failure(rc, 'close');
    }
  }

  /**
   * ws's terminate() destroys the TCP socket at once. The engine has no abort call, so this starts
   * a close handshake with 1001; the engine's close_timeout_ms bounds how long it can take.
   */
  terminate() {
    if (this._readyState === CLOSING || this._readyState === CLOSED) return;
    this.close(1001);
  }

  /**
   * The engine sends pings itself (ping_interval_ms) and closes peers that miss the pong
   * (pong_timeout_ms), so an application-level heartbeat is not needed. For code written for ws,
   * ping() answers with a 'pong' event on the next tick while the socket is open.
   */
  ping(data, mask, cb) {
    if (typeof data === 'function') { cb = data; data = undefined; } else if (typeof mask === 'function') { cb = mask; }
    if (this._readyState !== OPEN) {
      if (cb) process.nextTick(cb, new Error('WebSocket is not open'));
      return;
    }
    const payload = data === undefined ? Buffer.alloc(0) : (toBuffer(data) || Buffer.from(String(data)));
    process.nextTick(() => {
      if (this._readyState === OPEN) this.emit('pong', payload);
      if (cb) cb();
    });
  }

  /** Pongs are answered by the engine; this only calls cb. */
  pong(data, mask, cb) {
    if (typeof data === 'function') cb = data; else if (typeof mask === 'function') cb = mask;
    if (cb) process.nextTick(cb);
  }

  /** Subscribes this socket to `topic` (see WebSocketServer#publish). */
  subscribe(topic) {
    topic = String(topic);
    if (this._readyState !== OPEN) return false;
    const rc = this._server._subscribeRaw(this._conn, topic, true);
    if (rc === RESULT.OK) { this._topics.add(topic); return true; }
    if (rc === RESULT.NO_SUCH_CONNECTION || rc === RESULT.STOPPED) return false;
    throw failure(rc, 'subscribe');
  }

  unsubscribe(topic) {
    topic = String(topic);
    this._topics.delete(topic);
    if (this._readyState !== OPEN) return false;
    const rc = this._server._subscribeRaw(this._conn, topic, false);
    if (rc === RESULT.OK) return true;
    if (rc === RESULT.NO_SUCH_CONNECTION || rc === RESULT.STOPPED) return false;
    throw failure(rc, 'unsubscribe');
  }

  isSubscribed(topic) { return this._topics.has(String(topic)); }

  // Browser-style handlers, as ws offers them.
  addEventListener(type, listener) { this.on(type, listener); }
  removeEventListener(type, listener) { this.off(type, listener); }

  _convertBinary(buf) {
    if (this._binaryType === 'arraybuffer') return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
    if (this._binaryType === 'fragments') return [buf];
    return buf;
  }
}
const kInternal = Symbol('wsembed internal');

for (const [i, name] of READY_STATES.entries()) {
  Object.defineProperty(WebSocket, name, { enumerable: true, value: i });
  Object.defineProperty(WebSocket.prototype, name, { enumerable: true, value: i });
}

// Live servers, stopped on process exit (1001 to their clients, engine thread joined).
const liveServers = new Set();
let exitHookInstalled = false;
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const s of liveServers) {
      try { F.server_stop(s._handle, 0); } catch (_) { /* exiting anyway */ }
    }
  });
}

// Opens a second, independent descriptor for the engine's event pipe, so that the libuv handle
// watching it may close its own descriptor (destroy() always does) without touching the
// server's, which the server owns. null where the platform has no such path.
function openEventFd(fd) {
  if (process.env.WSEMBED_NODE_PUMP === 'threadpool') return null;
  const dir = process.platform === 'linux' ? '/proc/self/fd' : '/dev/fd';
  try {
    return fs.openSync(`${dir}/${fd}`, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK || 0));
  } catch (_) {
    return null;
  }
}

// Reads a size_t/pointer field as a Number (exact below 2^53, which user-space addresses are).
function readWord(dv, off) {
  return dv.getUint32(off + 4, true) * 0x100000000 + dv.getUint32(off, true);
}

function statsToObject(dv) {
  const out = {};
  for (let i = 0; i < STATS_KEYS.length; i++) {
    const hi = dv.getUint32(i * 8 + 4, true);
    out[STATS_KEYS[i]] = hi < 0x200000 ? hi * 0x100000000 + dv.getUint32(i * 8, true) : dv.getBigUint64(i * 8, true);
  }
  return out;
}

/** A pending upgrade request (HANDSHAKE event) awaiting an answer. */
class Handshake {
  constructor(server, conn, request, protocols) {
    this._server = server;
    this._conn = conn;
    /** The request-like view of the upgrade request (same object as the later 'connection' one). */
    this.request = request;
    /** Subprotocols the client offered, in its order. */
    this.protocols = protocols;
    this.answered = false;
  }

  /** Completes the upgrade; `protocol` (one the client offered) or the `subprotocols` option decides. */
  accept(protocol) {
    if (this.answered) return false;
    this.answered = true;
    return this._server._answer(this._conn, true, protocol);
  }

  /** Refuses the upgrade with HTTP `status` (400-599, default 401) and a short text body. */
  reject(status = 401, body) {
    if (this.answered) return false;
    this.answered = true;
    return this._server._answer(this._conn, false, null, status, body);
  }
}

/** A WebSocket server running in the wsembed engine. */
class WebSocketServer extends EventEmitter {
  constructor(options, callback) {
    super();
    options = { clientTracking: true, ...(options || {}) };
    if (options.server !== undefined || options.noServer) {
      throw new TypeError('wsembed: the "server" and "noServer" options are not supported: the engine ' +
        'owns its listening socket. Use "port" (and "staticDir" to serve the HTTP pages on the same port).');
    }
    if (options.port === undefined || options.port === null) {
      throw new TypeError('One and only one of the "port", "server", or "noServer" options must be specified');
    }
    if (options.verifyClient !== undefined && typeof options.verifyClient !== 'function') {
      throw new TypeError('wsembed: verifyClient must be a function');
    }
    if (options.handleProtocols !== undefined && typeof options.handleProtocols !== 'function') {
      throw new TypeError('wsembed: handleProtocols must be a function');
    }
    const { koffi } = L;
    this.options = options;
    this._state = 'running';
    this._handle = null;
    this._handleAddr = 0; // the same pointer as a number, for the hot calls
    this._sockets = new Map(); // conn id -> WebSocket
    this._requests = new Map(); // conn id -> request of an accepted handshake, until its OPEN
    this.clients = options.clientTracking ? new Set() : undefined;
    this._path = options.path;
    this._verifyClient = options.verifyClient || null;
    this._handleProtocols = options.handleProtocols || null;
    this._stopTimeout = options.stopTimeoutMs ?? 2000;
    this._closeCallbacks = [];
    this._polling = false;
    this._stopping = false;
    this._stopDone = false;
    this._stoppedSeen = false;
    this._watcher = null;
    this._finalStats = null;
    if (typeof callback === 'function') this.on('listening', callback);

    const values = {};
    for (const [key, value] of Object.entries(options)) {
      if (value === undefined || value === null) continue;
      const name = OPTION_NAMES[key] || (ENGINE_OPTIONS.has(key) ? key : null);
      if (!name) continue;
      values[name] = Array.isArray(value) ? value.join(',') : value;
    }
    if (options.tls !== undefined && options.tls !== null) {
      const { cert, key, certFile, keyFile } = options.tls;
      if ((cert === undefined) === (certFile === undefined) || (key === undefined) === (keyFile === undefined)) {
        throw new TypeError('wsembed: tls needs { cert, key } (PEM strings or Buffers) or { certFile, keyFile }');
      }
      const pem = (v) => (Buffer.isBuffer(v) || ArrayBuffer.isView(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8') : String(v));
      if (cert !== undefined) values.tls_cert_pem = pem(cert); else values.tls_cert_file = String(certFile);
      if (key !== undefined) values.tls_key_pem = pem(key); else values.tls_key_file = String(keyFile);
    }
    this._secure = values.tls_cert_pem !== undefined || values.tls_cert_file !== undefined;
    // verifyClient / handleProtocols run in JS on each upgrade request: the engine asks first.
    if (this._verifyClient || this._handleProtocols) values.approve_handshakes = true;
    if (typeof values.approve_handshakes === 'boolean') values.approve_handshakes = String(values.approve_handshakes);
    this._approving = values.approve_handshakes === 'true' || values.approve_handshakes === 1 || values.approve_handshakes === '1';
    if (values.host === 'localhost') values.host = '127.0.0.1';
    if (values.host === '::' || values.host === '0.0.0.0') this._wildcard = true;

    const cfg = [null];
    let rc = F.config_new(cfg);
    if (rc !== RESULT.OK) throw failure(rc, 'config');
    try {
      for (const [name, value] of Object.entries(values)) {
        rc = typeof value === 'number' && Number.isInteger(value) && value >= 0
          ? F.config_set_int(cfg[0], name, value)
          : F.config_set(cfg[0], name, String(value));
        if (rc !== RESULT.OK) {
          const shown = name.startsWith('tls_') ? '(hidden)' : JSON.stringify(value);
          throw failure(rc, `option ${name}=${shown}`);
        }
      }
      const out = [null];
      rc = F.server_start(cfg[0], out);
      // A configuration the engine refuses at start (e.g. a bad TLS certificate) throws, like
      // a bad option value.
      if (rc === RESULT.INVALID_ARGUMENT) throw failure(rc, 'start');
      if (rc !== RESULT.OK) {
        // Like ws (an http.Server 'error'), a failed listen is reported as an 'error' event.
        const err = failure(rc, `listen on ${values.host || '127.0.0.1'}:${values.port}`);
        this._state = 'closed';
        process.nextTick(() => this.emit('error', err));
        return;
      }
      this._handle = out[0];
    } finally {
      F.config_free(cfg[0]);
    }

    this._handleAddr = Number(koffi.address(this._handle));
    const port = [0];
    F.server_port(this._handle, port);
    this._port = port[0];
    this._host = values.host || '127.0.0.1';
    // The event array and the count live in koffi-allocated memory (fixed addresses, passed to
    // wsembed_server_poll as numbers) and are read through one DataView each.
    this._evMem = koffi.alloc('wsembed_event', POLL_CAPACITY);
    this._evAddr = Number(koffi.address(this._evMem));
    this._evView = new DataView(koffi.view(this._evMem, POLL_CAPACITY * EVENT_SIZE));
    this._countMem = koffi.alloc('size_t', 1);
    this._countAddr = Number(koffi.address(this._countMem));
    this._countView = new DataView(koffi.view(this._countMem, 8));
    liveServers.add(this);
    installExitHook();
    this._startPump();
    process.nextTick(() => { if (this._state === 'running') this.emit('listening'); });
  }

  /** { address, family, port } of the listening socket, or null once closed. */
  address() {
    if (this._state === 'closed' || !this._handle) return null;
    const family = this._host.includes(':') ? 'IPv6' : 'IPv4';
    return { address: this._host, family, port: this._port };
  }

  /** The bound port (useful with port 0). */
  get port() { return this._port; }

  /**
   * The engine's counters since start: { openConnections, handshakesAccepted, handshakesRejected,
   * messagesIn, messagesOut, bytesIn, bytesOut, droppedDeliveries, rateLimited, closesClean,
   * closesProtocolError, closesTimeout, closesDropped, closesPolicy } (Numbers; BigInt past
   * 2^53). After close: the last snapshot, taken when the server was released.
   */
  stats() {
    if (!this._handle) return this._finalStats ? { ...this._finalStats } : null;
    const mem = L.koffi.alloc('wsembed_stats', 1);
    try {
      const rc = F.server_stats(this._handle, mem);
      if (rc !== RESULT.OK) throw failure(rc, 'stats');
      return statsToObject(new DataView(L.koffi.view(mem, L.STATS_SIZE)));
    } finally {
      L.koffi.free(mem);
    }
  }

  /**
   * Stops the server: every client gets 1001 "going away", 'close' events follow for them, then the
   * server's 'close' event. cb(err) is called after 'close' (with an Error if it was not running).
   */
  close(cb) {
    if (typeof cb === 'function') {
      if (this._state === 'closed') {
        process.nextTick(cb, new Error('The server is not running'));
        return;
      }
      this._closeCallbacks.push(cb);
    }
    if (this._state !== 'running') return;
    this._state = 'closing';
    this._stopping = true;
    // wsembed_server_stop waits for the closing handshakes (up to stopTimeoutMs) and joins the
    // engine thread: it runs on the thread pool while this thread keeps pumping the CLOSE events.
    F.server_stop.async(this._handle, this._stopTimeout, (err) => {
      this._stopDone = true;
      if (err) this._emitError(err);
      this._maybeFinish();
    });
  }

  /** Sends `data` to every open connection, except options.except (a socket or an array of one). */
  broadcast(data, options) {
    if (this._state !== 'running') return false;
    const { kind, buf } = encodeMessage(data, options);
    let except = 0;
    const ex = options && options.except;
    if (ex !== undefined && ex !== null) {
      const sock = Array.isArray(ex) ? ex[0] : ex;
      if (Array.isArray(ex) && ex.length > 1) {
        throw new TypeError('wsembed: broadcast can leave out one socket (options.except)');
      }
      if (sock instanceof WebSocket) except = sock._conn;
      else if (typeof sock === 'number' || typeof sock === 'bigint') except = sock;
    }
    const rc = F.server_broadcast(this._handle, kind, buf, buf.length, except);
    if (rc === RESULT.STOPPED) return false;
    if (rc !== RESULT.OK) throw failure(rc, 'broadcast');
    return true;
  }

  /** Sends `data` to every socket subscribed to `topic`. */
  publish(topic, data, options) {
    if (this._state !== 'running') return false;
    const { kind, buf } = encodeMessage(data, options);
    const rc = F.server_publish(this._handle, String(topic), kind, buf, buf.length);
    if (rc === RESULT.STOPPED) return false;
    if (rc !== RESULT.OK) throw failure(rc, 'publish');
    return true;
  }

  /** ws compatibility: with the "path" option, only requests for that path are accepted. */
  shouldHandle(req) {
    if (this._path) {
      const q = req.url.indexOf('?');
      const pathname = q !== -1 ? req.url.slice(0, q) : req.url;
      if (pathname !== this._path) return false;
    }
    return true;
  }

  handleUpgrade() {
    throw new Error('wsembed: handleUpgrade is not supported (the engine does the handshake itself)');
  }

  // ---- internals ----

  // buf: a Buffer, or a string for text. The server is passed by address (a number): cheaper
  // for koffi than the pointer object.
  _sendRaw(conn, kind, buf) {
    if (this._handleAddr === 0) return RESULT.STOPPED;
    if (typeof buf === 'string') return F.server_send_str(this._handleAddr, conn, kind, buf, Buffer.byteLength(buf));
    return F.server_send_addr(this._handleAddr, conn, kind, buf, buf.length);
  }

  _closeRaw(conn, code, reason) {
    if (!this._handle) return RESULT.STOPPED;
    return F.server_close(this._handle, conn, code, reason);
  }

  _subscribeRaw(conn, topic, on) {
    if (!this._handle) return RESULT.STOPPED;
    return on ? F.server_subscribe(this._handle, conn, topic) : F.server_unsubscribe(this._handle, conn, topic);
  }

  _emitError(err) {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else process.nextTick(() => { throw err; });
  }

  _startPump() {
    const fdOut = [0];
    const rc = F.server_event_fd(this._handle, fdOut);
    const fd = rc === RESULT.OK ? openEventFd(fdOut[0]) : null;
    if (fd !== null) {
      let watcher = null;
      try {
        watcher = new net.Socket({ fd, readable: true, writable: false });
      } catch (_) {
        try { fs.closeSync(fd); } catch (__) { /* ignore */ }
      }
      if (watcher) {
        this._watcher = watcher;
        // The bytes read are only a wake-up; the pump then empties the engine's queue.
        watcher.on('data', () => this._pump());
        watcher.on('error', (err) => {
          if (this._state === 'closed') return;
          this._emitError(err);
        });
        watcher.on('end', () => { /* the engine closed the pipe: only at free, after the watcher */ });
        // Events queued before the watcher started reading (e.g. nothing yet) are signalled by
        // the pipe itself: the engine makes it readable when the fd is first requested.
        return;
      }
    }
    // No way to watch the fd from libuv: poll from the thread pool instead (slower).
    this._armPoll();
  }

  // Takes every waiting event: synchronous zero-timeout polls while batches come back full.
  _pump() {
    if (this._handle === null || this._stoppedSeen) return;
    let thrown = null;
    for (;;) {
      const rc = F.server_poll(this._handleAddr, this._evAddr, POLL_CAPACITY, 0, this._countAddr);
      // Events come with OK only; on STOPPED (a failure result) the count is left untouched.
      const count = rc === RESULT.OK ? readWord(this._countView, 0) : 0;
      if (count > 0) {
        const t = this._dispatchBatch(count);
        if (t !== null && thrown === null) thrown = t;
      }
      if (rc === RESULT.STOPPED) { this._stoppedSeen = true; break; }
      if (rc !== RESULT.OK) { this._pollFailed(rc); break; }
      // Poll until a poll comes back empty: besides draining, the next poll tells the engine
      // that the batch just dispatched has been handled (a connection that broke the protocol
      // right after a message is closed only then, so the replies to that message go first).
      if (count === 0) break;
    }
    if (this._stoppedSeen) {
      try { this._maybeFinish(); } catch (e) { if (thrown === null) thrown = e; }
    }
    // A listener threw: report it like ws would (an uncaught exception), after the batch is done.
    if (thrown !== null) process.nextTick(() => { throw thrown; });
  }

  _pollFailed(rc) {
    // Unexpected (e.g. PANIC): report it and shut the server down.
    this._stoppedSeen = true;
    this._emitError(makeError(rc, 'poll'));
    if (!this._stopping) {
      this._state = 'closing';
      this._stopping = true;
      F.server_stop.async(this._handle, 0, () => { this._stopDone = true; this._maybeFinish(); });
    }
  }

  // Fallback pump: a blocking poll on the libuv thread pool (koffi async call).
  _armPoll() {
    this._polling = true;
    F.server_poll.async(this._handleAddr, this._evAddr, POLL_CAPACITY, POLL_TIMEOUT_MS, this._countAddr,
      (err, rc) => this._onPoll(err, rc));
  }

  _onPoll(err, rc) {
    this._polling = false;
    if (err) {
      // koffi could not run the call: nothing sensible to retry.
      this._stoppedSeen = true;
      this._stopDone = true;
      this._emitError(err);
      this._maybeFinish();
      return;
    }
    let thrown = null;
    // Events come with OK only; on STOPPED (a failure result) the count is left untouched.
    const count = rc === RESULT.OK ? readWord(this._countView, 0) : 0;
    if (count > 0) thrown = this._dispatchBatch(count);
    if (rc === RESULT.OK) this._armPoll();
    else if (rc === RESULT.STOPPED) this._stoppedSeen = true;
    else this._pollFailed(rc);
    if (this._stoppedSeen) this._maybeFinish();
    if (thrown !== null) throw thrown;
  }

  // Dispatches `count` events from the event array. Payloads are copied out of the engine's
  // memory (valid only until the next poll): small ones into one shared Buffer per batch with
  // memcpy by address, larger ones into their own. Returns the first exception a listener threw
  // (the other events are still dispatched), or null.
  _dispatchBatch(count) {
    const dv = this._evView;
    const copyTo = F.copy_to;
    let slab = null; let slabAddr = 0; let slabOff = 0;
    if (copyTo !== null) {
      let total = 0;
      for (let i = 0, off = 0; i < count; i++, off += EVENT_SIZE) {
        const kind = dv.getUint32(off + OFF_KIND, true);
        if (kind === EV_TEXT || kind === EV_BINARY || kind === EV_CLOSE) {
          const len = readWord(dv, off + OFF_LEN);
          if (len <= SHARED_PAYLOAD_MAX) total += len;
        }
      }
      if (total > 0) {
        slab = Buffer.allocUnsafe(total);
        slabAddr = F.address_of(slab, 0, 0);
      }
    }
    let thrown = null;
    for (let i = 0, off = 0; i < count; i++, off += EVENT_SIZE) {
      const kind = dv.getUint32(off + OFF_KIND, true);
      const hi = dv.getUint32(off + OFF_CONN + 4, true);
      // Like koffi: a Number while exact, else a BigInt.
      const conn = hi < 0x200000 ? hi * 0x100000000 + dv.getUint32(off + OFF_CONN, true)
        : dv.getBigUint64(off + OFF_CONN, true);
      let data = null;
      if (kind === EV_TEXT || kind === EV_BINARY || kind === EV_CLOSE) {
        const len = readWord(dv, off + OFF_LEN);
        if (len === 0) {
          data = Buffer.alloc(0);
        } else if (slab !== null && len <= SHARED_PAYLOAD_MAX) {
          copyTo(slabAddr + slabOff, readWord(dv, off + OFF_DATA), len);
          data = slab.subarray(slabOff, slabOff + len);
          slabOff += len;
        } else if (copyTo !== null) {
          data = Buffer.allocUnsafe(len);
          copyTo(F.address_of(data, 0, 0), readWord(dv, off + OFF_DATA), len);
        } else {
          const { koffi } = L;
          data = Buffer.from(new Uint8Array(koffi.view(koffi.decode(this._evMem, off + OFF_DATA, 'void *'), len)));
        }
      }
      try {
        switch (kind) {
          case EV_TEXT: {
            const s = this._sockets.get(conn);
            if (s !== undefined && s._readyState !== CLOSED) s.emit('message', data, false);
            break;
          }
          case EV_BINARY: {
            const s = this._sockets.get(conn);
            if (s !== undefined && s._readyState !== CLOSED) s.emit('message', s._convertBinary(data), true);
            break;
          }
          case EV_CLOSE:
            this._onClose(conn, dv.getUint16(off + OFF_CLOSE_CODE, true), data);
            break;
          case EV_DRAIN: {
            const s = this._sockets.get(conn);
            if (s !== undefined) { s._flush(); if (s._queue.length === 0) s.emit('drain'); }
            break;
          }
          case EV_OPEN:
            this._onOpen(conn, this._decodeRequestEvent(off));
            break;
          case EV_HANDSHAKE:
            this._onHandshake(conn, this._decodeRequestEvent(off));
            break;
          default:
            break;
        }
      } catch (e) {
        if (thrown === null) thrown = e;
      }
    }
    return thrown;
  }

  // The strings of an OPEN or HANDSHAKE event (rare: decoded with koffi).
  _decodeRequestEvent(off) {
    const { koffi } = L;
    const e = koffi.decode(this._evMem, off, 'wsembed_event');
    const n = Number(e.header_count);
    return {
      path: e.path,
      peer: e.peer,
      protocol: e.protocol,
      protocols: e.protocols,
      headers: n > 0 ? koffi.decode(e.headers, 'wsembed_header', n) : [],
    };
  }

  _makeRequest(ev) {
    const peer = splitPeer(ev.peer);
    const { headers, rawHeaders } = buildHeaders(ev.headers);
    const sock = { remoteAddress: peer.address, remotePort: peer.port, remoteFamily: peer.family,
      localAddress: this._host, localPort: this._port, encrypted: this._secure || undefined };
    return {
      method: 'GET', url: ev.path, headers, rawHeaders, httpVersion: '1.1', httpVersionMajor: 1,
      httpVersionMinor: 1, socket: sock, connection: sock,
    };
  }

  _onHandshake(conn, ev) {
    const request = this._makeRequest(ev);
    const offered = ev.protocols ? ev.protocols.split(',').map((p) => p.trim()).filter(Boolean) : [];
    const hs = new Handshake(this, conn, request, new Set(offered));
    this._requests.set(conn, request);
    if (!this.shouldHandle(request)) {
      hs.reject(400, 'Bad Request');
      return;
    }
    if (this._verifyClient) {
      const info = { origin: request.headers.origin, secure: this._secure, req: request };
      try {
        if (this._verifyClient.length >= 2) {
          this._verifyClient(info, (ok, code, message) => {
            if (ok) this._acceptWithProtocols(hs);
            else hs.reject(code || 401, message);
          });
        } else if (this._verifyClient(info)) {
          this._acceptWithProtocols(hs);
        } else {
          hs.reject(401);
        }
      } catch (e) {
        hs.reject(500); // no-op if already answered; the exception is then reported as uncaught
        throw e;
      }
      return;
    }
    if (this.listenerCount('handshake') > 0) {
      this.emit('handshake', hs, request);
      return;
    }
    this._acceptWithProtocols(hs);
  }

  _acceptWithProtocols(hs) {
    if (hs.answered) return;
    let protocol;
    if (this._handleProtocols && hs.protocols.size > 0) {
      try {
        protocol = this._handleProtocols(hs.protocols, hs.request);
      } catch (e) {
        hs.reject(500);
        throw e;
      }
    }
    hs.accept(typeof protocol === 'string' && protocol ? protocol : undefined);
  }

  // Answers a HANDSHAKE. False when it could not be delivered (already answered, timed out, or
  // the server is closing).
  _answer(conn, ok, protocol, status, body) {
    if (!ok) this._requests.delete(conn);
    if (this._handle === null || this._state !== 'running') { this._requests.delete(conn); return false; }
    let rc;
    if (ok) {
      rc = F.server_accept(this._handle, conn, protocol === undefined || protocol === null ? null : String(protocol));
    } else {
      let text = body === undefined || body === null ? (http.STATUS_CODES[status] || '') : String(body);
      if (Buffer.byteLength(text) > 1024) text = Buffer.from(text).subarray(0, 1024).toString('utf8').replace(/\uFFFD$/, '');
      const code = Number.isInteger(status) && status >= 400 && status <= 599 ? status : 500;
      rc = F.server_reject(this._handle, conn, code, text);
    }
    if (rc === RESULT.OK) return true;
    this._requests.delete(conn);
    if (rc === RESULT.NO_SUCH_CONNECTION || rc === RESULT.STOPPED) return false;
    throw failure(rc, ok ? 'accept' : 'reject');
  }

  _onOpen(conn, ev) {
    const socket = new WebSocket(kInternal);
    socket._server = this;
    socket._conn = conn;
    socket._readyState = OPEN;
    socket.protocol = ev.protocol || '';
    let request = this._requests.get(conn);
    if (request !== undefined) {
      this._requests.delete(conn);
    } else {
      request = this._makeRequest(ev);
    }
    socket._socket = request.socket;
    socket.url = ev.path;
    this._sockets.set(conn, socket);
    if (!this._approving && !this.shouldHandle(request)) {
      // ws answers 400 before the upgrade; without handshake approval the engine already
      // upgraded, so close with 1008.
      socket.close(1008, 'unexpected path');
      return;
    }
    if (this.clients) this.clients.add(socket);
    this.emit('connection', socket, request);
  }

  _onClose(conn, code, reason) {
    const s = this._sockets.get(conn);
    if (!s) return;
    this._sockets.delete(conn);
    if (this.clients) this.clients.delete(s);
    s._readyState = CLOSED;
    s._failQueue();
    s._topics.clear();
    s.emit('close', code, reason);
  }

  _maybeFinish() {
    if (this._state === 'closed') return;
    if (!this._stoppedSeen || !this._stopDone || this._polling) return;
    let thrown = null;
    for (const conn of [...this._sockets.keys()]) {
      try { this._onClose(conn, 1006, Buffer.alloc(0)); } catch (e) { if (thrown === null) thrown = e; }
    }
    this._state = 'closed';
    liveServers.delete(this);
    try { this._finalStats = this.stats(); } catch (_) { /* keep null */ }
    if (this._watcher) {
      // Closes only our own descriptor (see openEventFd); the server's is freed below.
      this._watcher.destroy();
      this._watcher = null;
    }
    const handle = this._handle;
    this._handle = null;
    this._handleAddr = 0;
    this._requests.clear();
    F.server_free(handle);
    const { koffi } = L;
    koffi.free(this._evMem);
    koffi.free(this._countMem);
    this._evMem = null;
    this._evView = null;
    this._countMem = null;
    this._countView = null;
    process.nextTick(() => {
      this.emit('close');
      const cbs = this._closeCallbacks;
      this._closeCallbacks = [];
      for (const cb of cbs) cb();
    });
    if (thrown !== null) throw thrown;
  }
}

/** The library version, e.g. "0.1.0". */
function version() { return lib().f.version(); }
/** Path of the loaded native library. */
function libraryPath() { return lib().libraryPath; }

WebSocket.WebSocket = WebSocket;
WebSocket.WebSocketServer = WebSocketServer;
WebSocket.Server = WebSocketServer;
WebSocket.version = version;
WebSocket.libraryPath = libraryPath;
WebSocket.RESULT = RESULT;
WebSocket.Handshake = Handshake;

module.exports = WebSocket;
