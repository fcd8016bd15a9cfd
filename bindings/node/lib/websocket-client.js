'use strict';
// The client side: `new WebSocket(url, protocols?, options?)` dials through a process-wide,
// client-only wsembed engine (listen=0), shaped like ws's client.
//
// One engine serves every client connection of the process; its events come through the same
// Pump as a server's, dispatched by connection id to the WebSocket that dialed it. The engine
// starts with the first client and is stopped and freed as soon as no client connection is
// left (the last one got its final event), so an idle process is not kept alive by it. A
// client created while the previous engine is still stopping gets a fresh engine.

const native = require('./native');
const { failure, makeError } = require('./errors');
const { Pump } = require('./pump');

const { RESULT, abi } = native;
const F = native.load().f;
const FAILURE = Object.freeze(Object.fromEntries(
  Object.entries(abi.enums.wsembed_failure).map(([k, v]) => [v, k.slice('WSEMBED_FAILURE_'.length)])));

let current = null; // the engine new clients use
const liveEngines = new Set();
let exitHook = false;

function headerLines(headers) {
  const out = [];
  if (!headers) return out;
  const entries = Array.isArray(headers) ? headers : Object.entries(headers);
  for (const [name, value] of entries) {
    if (value === undefined || value === null) continue;
    for (const v of Array.isArray(value) ? value : [value]) out.push(`${name}: ${v}`);
  }
  return out;
}

/** The [name, value] pairs of wsembed_client_options_set for ws-style client options. */
function clientOptionPairs(protocols, options) {
  const o = options || {};
  const pairs = [];
  const set = (name, value) => { if (value !== undefined && value !== null) pairs.push([name, String(value)]); };
  const bool = (v) => (v ? '1' : '0');
  const protos = protocols === undefined || protocols === null ? [] : (Array.isArray(protocols) ? protocols : [protocols]);
  if (protos.length > 0) set('protocols', protos.join(','));
  if (o.requireProtocol !== undefined) set('require_protocol', bool(o.requireProtocol));
  set('origin', o.origin);
  for (const line of headerLines(o.headers)) pairs.push(['header', line]);
  set('connect_timeout_ms', o.connectTimeout ?? o.connectTimeoutMs);
  set('handshake_timeout_ms', o.handshakeTimeout ?? o.handshakeTimeoutMs);
  const rc = o.reconnect;
  if (rc !== undefined && rc !== null && rc !== false) {
    set('reconnect', '1');
    const r = typeof rc === 'object' ? rc : {};
    set('reconnect_min_delay_ms', r.minDelayMs);
    set('reconnect_max_delay_ms', r.maxDelayMs);
    set('reconnect_max_attempts', r.maxAttempts);
    set('reconnect_reset_after_ms', r.resetAfterMs);
  }
  if (o.ca !== undefined && o.ca !== null) {
    const list = Array.isArray(o.ca) ? o.ca : [o.ca];
    const texts = list.map((c) => (Buffer.isBuffer(c) ? c.toString('utf8') : String(c)));
    if (texts.every((t) => t.includes('-----BEGIN'))) set('ca_pem', texts.join('\n'));
    else if (texts.length === 1) set('ca_file', texts[0]);
    else throw new TypeError('wsembed: ca is PEM text (one or more) or a single file path');
  }
  set('queue_while_connecting', o.queueWhileConnecting);
  if (o.perMessageDeflate !== undefined && o.perMessageDeflate !== null) set('compression', bool(o.perMessageDeflate));
  return pairs;
}

class ClientEngine {
  constructor() {
    const { f, koffi } = native.load();
    const cfg = [null];
    let rc = f.wsembed_config_new(cfg);
    if (rc !== RESULT.OK) throw failure(rc, 'config');
    try {
      rc = f.wsembed_config_set(cfg[0], 'listen', '0');
      if (rc !== RESULT.OK) throw failure(rc, 'option listen=0');
      const out = [null];
      rc = f.wsembed_server_start(cfg[0], out);
      if (rc !== RESULT.OK) throw failure(rc, 'start the client engine');
      this._handle = out[0];
    } finally {
      f.wsembed_config_free(cfg[0]);
    }
    this._handleAddr = Number(koffi.address(this._handle));
    this._sockets = new Map(); // conn -> WebSocket, until its final event
    this._retired = false;
    this._pump = new Pump(this, this._handle);
    this._pump.start();
    liveEngines.add(this);
    if (!exitHook) {
      exitHook = true;
      process.on('exit', () => {
        for (const e of liveEngines) { try { native.load().f.wsembed_server_stop(e._handle, 0); } catch (_) { /* exiting */ } }
      });
    }
  }

  static get() {
    if (current === null || current._retired) current = new ClientEngine();
    return current;
  }

  connect(ws, url, pairs) {
    const { f } = native.load();
    const opts = [null];
    let rc = f.wsembed_client_options_new(opts);
    if (rc !== RESULT.OK) throw failure(rc, 'client options');
    try {
      for (const [name, value] of pairs) {
        rc = f.wsembed_client_options_set(opts[0], name, value);
        if (rc !== RESULT.OK) throw failure(rc, `client option ${name}`);
      }
      const out = [0];
      rc = f.wsembed_server_connect(this._handle, url, opts[0], out);
      if (rc !== RESULT.OK) throw failure(rc, `connect to ${url}`);
      const conn = out[0];
      this._sockets.set(conn, ws);
      return conn;
    } finally {
      f.wsembed_client_options_free(opts[0]);
    }
  }

  // ---- the calls lib/websocket.js makes on its _server ----
  _sendRaw(conn, kind, buf) {
    if (this._handleAddr === 0) return RESULT.STOPPED;
    return F.send(this._handleAddr, conn, kind, buf);
  }
  _closeRaw(conn, code, reason) { return this._handle ? F.wsembed_server_close(this._handle, conn, code, reason) : RESULT.STOPPED; }
  _terminateRaw(conn) { return this._handle ? F.wsembed_server_terminate(this._handle, conn) : RESULT.STOPPED; }
  _pingRaw(conn, payload) { return this._handle ? F.wsembed_server_ping(this._handle, conn, payload, payload.length) : RESULT.STOPPED; }
  _subscribeRaw() { return RESULT.INVALID_ARGUMENT; }

  // ---- events from the pump ----
  _onOpen(conn, ev) {
    const ws = this._sockets.get(conn);
    if (ws) ws._clientOpened(ev);
  }
  _onMessage(conn, data, isBinary) {
    const ws = this._sockets.get(conn);
    if (ws && ws._readyState === 1) ws.emit('message', isBinary ? ws._convertBinary(data) : data, isBinary);
  }
  _onDrain(conn) { const ws = this._sockets.get(conn); if (ws) ws.emit('drain'); }
  _onPing(conn, data) { const ws = this._sockets.get(conn); if (ws) ws.emit('ping', data); }
  _onPong(conn, data) { const ws = this._sockets.get(conn); if (ws) ws.emit('pong', data); }
  _onHandshake() { /* a client-only engine has no server side */ }
  _onClose(conn, code, reason) {
    const ws = this._sockets.get(conn);
    if (!ws) return;
    if (ws._clientReconnect) {
      // With reconnect on, a FAILED (or a RECONNECTING) always follows.
      ws._lastClose = { code, reason };
      ws._readyState = 2;
      return;
    }
    this._final(conn, ws, code, reason, null);
  }
  _onReconnecting(conn, info, data) {
    const ws = this._sockets.get(conn);
    if (!ws) return;
    ws._readyState = 0;
    ws.emit('reconnecting', { ...info, failureName: FAILURE[info.failure], reason: data ? data.toString('utf8') : '' });
  }
  _onFailed(conn, info, data) {
    const ws = this._sockets.get(conn);
    if (!ws) return;
    const last = ws._lastClose;
    const reasonText = data ? data.toString('utf8') : '';
    let err = null;
    if (FAILURE[info.failure] !== 'CLOSED_BY_HOST' && FAILURE[info.failure] !== 'CLOSED') {
      const name = FAILURE[info.failure] || String(info.failure);
      err = new Error(`wsembed: connection to ${ws.url} failed (${name.toLowerCase()}` +
        `${info.httpStatus ? `, ${info.httpStatus}` : ''})${reasonText ? `: ${reasonText}` : ''}`);
      err.code = `WSEMBED_FAILURE_${name}`;
      err.failure = info.failure;
      err.httpStatus = info.httpStatus;
      err.reason = reasonText;
    }
    this._final(conn, ws, last ? last.code : 1006, last ? last.reason : Buffer.alloc(0), err);
  }
  _onPollFailed(rcOrErr) {
    const err = typeof rcOrErr === 'number' ? makeError(rcOrErr, 'poll') : rcOrErr;
    for (const [conn, ws] of [...this._sockets]) this._final(conn, ws, 1006, Buffer.alloc(0), err);
  }
  _onStopped() {
    // Stopped from outside (exit) or by _retire: every socket left ends here.
    for (const [conn, ws] of [...this._sockets]) this._final(conn, ws, 1006, Buffer.alloc(0), null);
  }

  _final(conn, ws, code, reason, err) {
    this._sockets.delete(conn);
    try {
      ws._clientEnded(code, reason, err);
    } finally {
      if (this._sockets.size === 0) this._retire();
    }
  }

  // No client left: stop the engine (on the thread pool) and free it, so nothing keeps the
  // process alive. New clients get a new engine meanwhile.
  _retire() {
    if (this._retired) return;
    this._retired = true;
    if (current === this) current = null;
    const handle = this._handle;
    native.load().f.wsembed_server_stop.async(handle, 0, () => {
      const pump = this._pump;
      this._pump = null;
      this._handle = null;
      this._handleAddr = 0;
      if (pump) pump.close();
      liveEngines.delete(this);
      native.load().f.wsembed_server_free(handle);
    });
  }
}

/** Makes `ws` (a lib/websocket.js WebSocket under construction) a client of `address`. */
function initClient(ws, address, protocols, options) {
  if (protocols !== undefined && protocols !== null && typeof protocols === 'object' && !Array.isArray(protocols)) {
    options = protocols; protocols = undefined;
  }
  const url = address instanceof URL ? address.href : String(address);
  if (!/^wss?:\/\//i.test(url)) {
    throw new SyntaxError(`The URL's protocol must be one of "ws:" or "wss:" (got ${url})`);
  }
  const pairs = clientOptionPairs(protocols, options);
  const o = options || {};
  ws.url = url;
  ws._isClient = true;
  ws._clientReconnect = o.reconnect !== undefined && o.reconnect !== null && o.reconnect !== false;
  ws._queueWhileConnecting = Number(o.queueWhileConnecting || 0) > 0;
  ws._lastClose = null;
  ws.responseHeaders = {};
  const engine = ClientEngine.get();
  ws._server = engine;
  try {
    ws._conn = engine.connect(ws, url, pairs);
  } finally {
    if (engine._sockets.size === 0) engine._retire();
  }
}

module.exports = { initClient, clientOptionPairs, ClientEngine, FAILURE };
