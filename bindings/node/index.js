'use strict';
// wsembed for Node.js: a WebSocket server whose protocol and I/O run in the wsembed engine (Rust,
// on its own thread), with an API close to the `ws` package's server side.
//
// Events reach JavaScript through an asynchronous wsembed_server_poll that waits on the libuv
// thread pool (koffi `.async`); each batch is copied into JS objects, the next poll is armed at
// once, then the batch is dispatched. No timer runs while idle.

const { EventEmitter } = require('events');
const native = require('./lib/native');

const RESULT = Object.freeze({
  OK: 0, NULL_ARGUMENT: 1, INVALID_ARGUMENT: 2, NO_SUCH_CONNECTION: 3, STOPPED: 4,
  WOULD_BLOCK: 5, IO: 6, PANIC: 7, INVALID_UTF8: 8,
});
const RESULT_NAMES = Object.fromEntries(Object.entries(RESULT).map(([k, v]) => [v, `WSEMBED_ERR_${k}`]));
const EV_OPEN = 1; const EV_TEXT = 2; const EV_BINARY = 3; const EV_CLOSE = 4; const EV_DRAIN = 5;
const KIND_TEXT = 1; const KIND_BINARY = 2;
// Layout of struct wsembed_event (checked against koffi's layout when the library loads).
const EVENT_SIZE = 72;
const OFF_KIND = 0; const OFF_CLOSE_CODE = 4; const OFF_CLEAN = 6; const OFF_CONN = 8; const OFF_DATA = 16;
const OFF_LEN = 24;

const CONNECTING = 0; const OPEN = 1; const CLOSING = 2; const CLOSED = 3;
const READY_STATES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];

const POLL_CAPACITY = 512;
// The poll waits at most this long before it is re-armed. Events wake it at once; the bound
// only limits how long process exit can wait for a blocked thread-pool thread.
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
  staticDir: 'static_dir',
  maxStaticFileBytes: 'max_static_file_bytes',
  subprotocols: 'subprotocols',
};
const ENGINE_OPTIONS = new Set(Object.values(OPTION_NAMES));

function lib() { return native.load(); }
// Load now, so a missing library is reported by require() with what to run.
{
  const { koffi, Event } = lib();
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
    if (typeof options === 'function') { cb = options; options = {}; }
    const { kind, buf } = encodeMessage(data, options);
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
    this._queue.push({ kind, buf: Buffer.from(buf), cb });
    this._queuedBytes += buf.length;
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

// Live servers, stopped on process exit so no thread-pool thread stays blocked in a poll.
const liveServers = new Set();
let exitHookInstalled = false;
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const s of liveServers) {
      try { lib().f.server_stop(s._handle, 0); } catch (_) { /* exiting anyway */ }
    }
  });
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
    const { koffi, f } = lib();
    this.options = options;
    this._state = 'running';
    this._handle = null;
    this._sockets = new Map(); // conn id -> WebSocket
    this.clients = options.clientTracking ? new Set() : undefined;
    this._path = options.path;
    this._stopTimeout = options.stopTimeoutMs ?? 2000;
    this._closeCallbacks = [];
    this._polling = false;
    this._stopping = false;
    this._stopDone = false;
    this._stoppedSeen = false;
    if (typeof callback === 'function') this.on('listening', callback);

    const values = {};
    for (const [key, value] of Object.entries(options)) {
      if (value === undefined || value === null) continue;
      const name = OPTION_NAMES[key] || (ENGINE_OPTIONS.has(key) ? key : null);
      if (!name) continue;
      values[name] = Array.isArray(value) ? value.join(',') : value;
    }
    if (values.host === 'localhost') values.host = '127.0.0.1';
    if (values.host === '::' || values.host === '0.0.0.0') this._wildcard = true;

    const cfg = [null];
    let rc = f.config_new(cfg);
    if (rc !== RESULT.OK) throw failure(rc, 'config');
    try {
      for (const [name, value] of Object.entries(values)) {
        rc = typeof value === 'number' && Number.isInteger(value) && value >= 0
          ? f.config_set_int(cfg[0], name, value)
          : f.config_set(cfg[0], name, String(value));
        if (rc !== RESULT.OK) throw failure(rc, `option ${name}=${JSON.stringify(value)}`);
      }
      const out = [null];
      rc = f.server_start(cfg[0], out);
      if (rc !== RESULT.OK) {
        // Like ws (an http.Server 'error'), a failed listen is reported as an 'error' event.
        const err = failure(rc, `listen on ${values.host || '127.0.0.1'}:${values.port}`);
        this._state = 'closed';
        process.nextTick(() => this.emit('error', err));
        return;
      }
      this._handle = out[0];
    } finally {
      f.config_free(cfg[0]);
    }

    const port = [0];
    f.server_port(this._handle, port);
    this._port = port[0];
    this._host = values.host || '127.0.0.1';
    this._evBuf = koffi.alloc('wsembed_event', POLL_CAPACITY);
    this._countBuf = koffi.alloc('size_t', 1);
    this._evView = new DataView(koffi.view(this._evBuf, POLL_CAPACITY * EVENT_SIZE));
    liveServers.add(this);
    installExitHook();
    this._armPoll();
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
    const { f } = lib();
    this._stopping = true;
    f.server_stop.async(this._handle, this._stopTimeout, (err, rc) => {
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
    const { f } = lib();
    const rc = f.server_broadcast(this._handle, kind, buf, buf.length, except);
    if (rc === RESULT.STOPPED) return false;
    if (rc !== RESULT.OK) throw failure(rc, 'broadcast');
    return true;
  }

  /** Sends `data` to every socket subscribed to `topic`. */
  publish(topic, data, options) {
    if (this._state !== 'running') return false;
    const { kind, buf } = encodeMessage(data, options);
    const { f } = lib();
    const rc = f.server_publish(this._handle, String(topic), kind, buf, buf.length);
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

  _sendRaw(conn, kind, buf) {
    if (!this._handle) return RESULT.STOPPED;
    return lib().f.server_send(this._handle, conn, kind, buf, buf.length);
  }

  _closeRaw(conn, code, reason) {
    if (!this._handle) return RESULT.STOPPED;
    return lib().f.server_close(this._handle, conn, code, reason);
  }

  _subscribeRaw(conn, topic, on) {
    if (!this._handle) return RESULT.STOPPED;
    const { f } = lib();
    return on ? f.server_subscribe(this._handle, conn, topic) : f.server_unsubscribe(this._handle, conn, topic);
  }

  _emitError(err) {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else process.nextTick(() => { throw err; });
  }

  _armPoll() {
    const { f } = lib();
    this._polling = true;
    f.server_poll.async(this._handle, this._evBuf, POLL_CAPACITY, POLL_TIMEOUT_MS, this._countBuf,
      (err, rc) => this._onPoll(err, rc));
  }

  _onPoll(err, rc) {
    this._polling = false;
    if (err) {
      // koffi could not run the call: nothing sensible to retry.
      this._stoppedSeen = true;
      this._emitError(err);
      this._abandon();
      return;
    }
    let batch = null;
    if (rc === RESULT.OK || rc === RESULT.STOPPED) {
      const { koffi } = lib();
      const count = Number(koffi.decode(this._countBuf, 'size_t'));
      if (count > 0 && rc === RESULT.OK) batch = this._decode(count);
    }
    if (rc === RESULT.OK) {
      this._armPoll();
    } else if (rc === RESULT.STOPPED) {
      this._stoppedSeen = true;
    } else {
      // Unexpected (e.g. PANIC): report it and shut the server down.
      this._emitError(makeError(rc, 'poll'));
      this._stoppedSeen = true;
      if (!this._stopping) {
        this._state = 'closing';
        this._stopping = true;
        lib().f.server_stop.async(this._handle, 0, () => { this._stopDone = true; this._maybeFinish(); });
      }
    }
    let thrown = null;
    if (batch) {
      for (const ev of batch) {
        try { this._dispatch(ev); } catch (e) { if (thrown === null) thrown = e; }
      }
    }
    if (this._stoppedSeen) this._maybeFinish();
    if (thrown !== null) throw thrown;
  }

  // Copies a batch out of the engine's memory (valid only until the next poll). Fixed fields are
  // read straight from a view of the event array; pointers are followed only when needed.
  _decode(count) {
    const { koffi } = lib();
    const dv = this._evView;
    const out = new Array(count);
    for (let i = 0; i < count; i++) {
      const off = i * EVENT_SIZE;
      const kind = dv.getUint32(off + OFF_KIND, true);
      const lo = dv.getUint32(off + OFF_CONN, true);
      const hi = dv.getUint32(off + OFF_CONN + 4, true);
      // Like koffi: a Number while exact, else a BigInt.
      const conn = hi < 0x200000 ? hi * 0x100000000 + lo : dv.getBigUint64(off + OFF_CONN, true);
      const ev = { kind, conn, data: null, code: 0, clean: false, path: null, peer: null, protocol: null, headers: null };
      if (kind === EV_TEXT || kind === EV_BINARY || kind === EV_CLOSE) {
        const len = Number(dv.getBigUint64(off + OFF_LEN, true));
        ev.data = len === 0 ? Buffer.alloc(0)
          : Buffer.from(new Uint8Array(koffi.view(koffi.decode(this._evBuf, off + OFF_DATA, 'void *'), len)));
        if (kind === EV_CLOSE) {
          ev.code = dv.getUint16(off + OFF_CLOSE_CODE, true);
          ev.clean = dv.getUint8(off + OFF_CLEAN) !== 0;
        }
      } else if (kind === EV_OPEN) {
        const e = koffi.decode(this._evBuf, off, 'wsembed_event');
        ev.path = e.path;
        ev.peer = e.peer;
        ev.protocol = e.protocol;
        ev.headers = e.header_count > 0 ? koffi.decode(e.headers, 'wsembed_header', Number(e.header_count)) : [];
      }
      out[i] = ev;
    }
    return out;
  }

  _dispatch(ev) {
    switch (ev.kind) {
      case EV_OPEN: return this._onOpen(ev);
      case EV_TEXT: {
        const s = this._sockets.get(ev.conn);
        if (s && s._readyState !== CLOSED) s.emit('message', ev.data, false);
        return undefined;
      }
      case EV_BINARY: {
        const s = this._sockets.get(ev.conn);
        if (s && s._readyState !== CLOSED) s.emit('message', s._convertBinary(ev.data), true);
        return undefined;
      }
      case EV_CLOSE: return this._onClose(ev.conn, ev.code, ev.data);
      case EV_DRAIN: {
        const s = this._sockets.get(ev.conn);
        if (s) { s._flush(); if (s._queue.length === 0) s.emit('drain'); }
        return undefined;
      }
      default: return undefined;
    }
  }

  _onOpen(ev) {
    const socket = new WebSocket(kInternal);
    socket._server = this;
    socket._conn = ev.conn;
    socket._readyState = OPEN;
    socket.protocol = ev.protocol || '';
    const peer = splitPeer(ev.peer);
    const { headers, rawHeaders } = buildHeaders(ev.headers);
    const sock = { remoteAddress: peer.address, remotePort: peer.port, remoteFamily: peer.family,
      localAddress: this._host, localPort: this._port };
    const request = {
      method: 'GET', url: ev.path, headers, rawHeaders, httpVersion: '1.1', httpVersionMajor: 1,
      httpVersionMinor: 1, socket: sock, connection: sock,
    };
    socket._socket = sock;
    socket.url = ev.path;
    this._sockets.set(ev.conn, socket);
    if (!this.shouldHandle(request)) {
      // ws answers 400 before the upgrade; the engine already upgraded, so close with 1008.
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

  // The event loop could not go on: forget every socket.
  _abandon() {
    this._stopDone = true;
    this._maybeFinish();
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
    const { f } = lib();
    const handle = this._handle;
    this._handle = null;
    f.server_free(handle);
    const { koffi } = lib();
    koffi.free(this._evBuf);
    koffi.free(this._countBuf);
    this._evBuf = null;
    this._evView = null;
    this._countBuf = null;
    process.nextTick(() => {
      this.emit('close');
      const cbs = this._closeCallbacks;
      this._closeCallbacks = [];
      for (const cb of cbs) cb();
    });
    if (thrown !== null) throw thrown;
  }
}

function copyBytes(koffi, ptr, len) {
  len = Number(len);
  if (!ptr || len === 0) return Buffer.alloc(0);
  // view() maps the engine's memory; Buffer.from(Uint8Array) copies it out.
  return Buffer.from(new Uint8Array(koffi.view(ptr, len)));
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

module.exports = WebSocket;
