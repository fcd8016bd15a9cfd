'use strict';
// WebSocketServer: a wsembed engine (its own thread) behind an API like ws's server.

const { EventEmitter } = require('events');
const http = require('http');
const native = require('./native');
const { failure, makeError } = require('./errors');
const { engineValues, engineDefault } = require('./options');
const { Pump } = require('./pump');
const { WebSocket, kInternal, encodeMessage, OPEN, CLOSED } = require('./websocket');

const { RESULT, abi } = native;
const F = native.load().f; // the hot calls

// Live servers, stopped on process exit (1001 to their clients, engine thread joined).
const liveServers = new Set();
let exitHookInstalled = false;
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    const { f } = native.load();
    for (const s of liveServers) {
      try { f.wsembed_server_stop(s._handle, 0); } catch (_) { /* exiting anyway */ }
    }
  });
}

// After connections close, what their queues held (up to maxBufferedBytes each, in the engine
// thread's malloc arena, and the payload Buffers V8 freed in the main one) is free but still
// resident: glibc keeps freed memory in its arenas. Once the connections are gone, give it back
// with malloc_trim(0): at most once a second, and only when the process grew by 32 MiB or more
// since the last trim (so a server with ordinary churn does not pay for it).
const TRIM_GROWTH = 32 << 20;
let trimTimer = null;
let rssAfterTrim = 0;
function scheduleTrim() {
  const { f } = native.load();
  if (f.malloc_trim === null || trimTimer !== null) return;
  trimTimer = setTimeout(() => {
    trimTimer = null;
    if (process.memoryUsage.rss() < rssAfterTrim + TRIM_GROWTH) return;
    f.malloc_trim(0);
    rssAfterTrim = process.memoryUsage.rss();
  }, 1000);
  trimTimer.unref();
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

// struct wsembed_stats fields (generated) -> camelCase keys of wss.stats().
const STATS_FIELDS = abi.structs.wsembed_stats.map(([name]) => name);
const STATS_KEYS = STATS_FIELDS.map((n) => n.replace(/_([a-z])/g, (_, c) => c.toUpperCase()));
const toNumber = (v) => (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);

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
    try {
      return this._server._answer(this._conn, true, protocol);
    } catch (e) {
      this.answered = false; // refused by the engine (a bad argument): still pending
      throw e;
    }
  }

  /** Refuses the upgrade with HTTP `status` (400-599, default 401; checked by the engine) and a short text body. */
  reject(status = 401, body) {
    if (this.answered) return false;
    this.answered = true;
    try {
      return this._server._answer(this._conn, false, null, status, body);
    } catch (e) {
      this.answered = false; // refused by the engine (a bad status or body): still pending
      throw e;
    }
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
    if (options.WebSocket !== undefined) throw new TypeError('wsembed: the "WebSocket" option is not supported');
    if (options.port === undefined || options.port === null) {
      throw new TypeError('One and only one of the "port", "server", or "noServer" options must be specified');
    }
    if (options.verifyClient !== undefined && typeof options.verifyClient !== 'function') {
      throw new TypeError('wsembed: verifyClient must be a function');
    }
    if (options.handleProtocols !== undefined && typeof options.handleProtocols !== 'function') {
      throw new TypeError('wsembed: handleProtocols must be a function');
    }
    const { f } = native.load();
    this.options = options;
    this._state = 'running';
    this._handle = null;
    this._handleAddr = 0; // the same pointer as a number, for the hot calls
    this._sockets = new Map(); // conn id -> WebSocket, until its CLOSE
    this._requests = new Map(); // conn id -> request of a handshake, until its OPEN (or its end)
    this._requestTimes = new Map(); // conn id -> when its HANDSHAKE came (to forget abandoned ones)
    this._lastSweep = 0;
    this.clients = options.clientTracking ? new Set() : undefined;
    this._path = options.path;
    this._verifyClient = options.verifyClient || null;
    this._handleProtocols = options.handleProtocols || null;
    this._stopTimeout = options.stopTimeoutMs ?? 2000;
    this._closeCallbacks = [];
    this._pump = null;
    this._stopping = false;
    this._stopDone = false;
    this._finalStats = null;
    this._droppedSends = 0;
    if (typeof callback === 'function') this.on('listening', callback);

    const values = engineValues(options);
    this._secure = values.tls_cert_pem !== undefined || values.tls_cert_file !== undefined;
    // verifyClient / handleProtocols run in JS on each upgrade request: the engine asks first.
    if (this._verifyClient || this._handleProtocols) values.approve_handshakes = '1';
    this._approving = ['1', 'true'].includes(values.approve_handshakes);
    if (values.host === 'localhost') values.host = '127.0.0.1';
    this._approvalTimeout = Number(values.approval_timeout_ms ?? engineDefault('approval_timeout_ms'));

    const cfg = [null];
    let rc = f.wsembed_config_new(cfg);
    if (rc !== RESULT.OK) throw failure(rc, 'config');
    try {
      for (const [name, value] of Object.entries(values)) {
        rc = f.wsembed_config_set(cfg[0], name, value);
        if (rc !== RESULT.OK) {
          const shown = name.startsWith('tls_') ? '(hidden)' : JSON.stringify(value);
          throw failure(rc, `option ${name}=${shown}`);
        }
      }
      const out = [null];
      rc = f.wsembed_server_start(cfg[0], out);
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
      f.wsembed_config_free(cfg[0]);
    }

    this._handleAddr = Number(native.load().koffi.address(this._handle));
    const port = [0];
    f.wsembed_server_port(this._handle, port);
    this._port = port[0];
    this._host = values.host || engineDefault('host');
    liveServers.add(this);
    installExitHook();
    this._pump = new Pump(this, this._handle);
    this._pump.start();
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

  /** Sends refused with WOULD_BLOCK, over every socket (see lib/websocket.js). */
  get droppedSends() { return this._droppedSends; }

  /**
   * The engine's counters since start, one per field of struct wsembed_stats, camelCase
   * (Numbers; BigInt past 2^53). After close: the last snapshot, taken when the server was
   * released.
   */
  stats() {
    if (!this._handle) return this._finalStats ? { ...this._finalStats } : null;
    const { f } = native.load();
    const raw = {};
    const rc = f.wsembed_server_stats(this._handle, raw);
    if (rc !== RESULT.OK) throw failure(rc, 'stats');
    const out = {};
    for (let i = 0; i < STATS_FIELDS.length; i++) out[STATS_KEYS[i]] = toNumber(raw[STATS_FIELDS[i]]);
    return out;
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
    native.load().f.wsembed_server_stop.async(this._handle, this._stopTimeout, (err) => {
      this._stopDone = true;
      if (err) this._emitError(err);
      this._onStopped();
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
    const rc = native.load().f.wsembed_server_broadcast(this._handle, kind, buf, buf.length, except);
    if (rc === RESULT.STOPPED) return false;
    if (rc !== RESULT.OK) throw failure(rc, 'broadcast');
    return true;
  }

  /** Sends `data` to every socket subscribed to `topic`. */
  publish(topic, data, options) {
    if (this._state !== 'running') return false;
    const { kind, buf } = encodeMessage(data, options);
    const rc = native.load().f.wsembed_server_publish(this._handle, String(topic), kind, buf, buf.length);
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

  // ---- calls from WebSocket ----

  // buf: a Buffer, or a string for text. The server is passed by address (a number): cheaper
  // for koffi than the pointer object.
  _sendRaw(conn, kind, buf) {
    if (this._handleAddr === 0) return RESULT.STOPPED;
    return F.send(this._handleAddr, conn, kind, buf);
  }

  _closeRaw(conn, code, reason) {
    if (!this._handle) return RESULT.STOPPED;
    return native.load().f.wsembed_server_close(this._handle, conn, code, reason);
  }

  _terminateRaw(conn) {
    if (!this._handle) return RESULT.STOPPED;
    return native.load().f.wsembed_server_terminate(this._handle, conn);
  }

  _pingRaw(conn, payload) {
    if (!this._handle) return RESULT.STOPPED;
    return native.load().f.wsembed_server_ping(this._handle, conn, payload, payload.length);
  }

  _subscribeRaw(conn, topic, on) {
    if (!this._handle) return RESULT.STOPPED;
    const { f } = native.load();
    return on ? f.wsembed_server_subscribe(this._handle, conn, topic) : f.wsembed_server_unsubscribe(this._handle, conn, topic);
  }

  _emitError(err) {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else process.nextTick(() => { throw err; });
  }

  // ---- events from the pump ----

  _onMessage(conn, data, isBinary) {
    const s = this._sockets.get(conn);
    if (s !== undefined && s._readyState !== CLOSED) s.emit('message', isBinary ? s._convertBinary(data) : data, isBinary);
  }

  _onDrain(conn) {
    const s = this._sockets.get(conn);
    if (s !== undefined && s._readyState !== CLOSED) s.emit('drain');
  }

  _onPing(conn, data) {
    const s = this._sockets.get(conn);
    if (s !== undefined && s._readyState !== CLOSED) s.emit('ping', data);
  }

  _onPong(conn, data) {
    const s = this._sockets.get(conn);
    if (s !== undefined && s._readyState !== CLOSED) s.emit('pong', data);
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
    const hs = new Handshake(this, conn, request, new Set(ev.protocols));
    this._sweepRequests();
    this._requests.set(conn, request);
    this._requestTimes.set(conn, Date.now());
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

  // A handshake the engine refused by itself (approvalTimeoutMs, the client left) ends without
  // an event: forget its request once it is well past the approval timeout.
  _sweepRequests() {
    const now = Date.now();
    if (now - this._lastSweep < 1000) return;
    this._lastSweep = now;
    const horizon = now - 2 * this._approvalTimeout - 1000;
    for (const [conn, at] of this._requestTimes) {
      if (at > horizon) break; // in arrival order
      this._requestTimes.delete(conn);
      this._requests.delete(conn);
    }
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
  // the server is closing). The engine checks the status and the body's length.
  _answer(conn, ok, protocol, status, body) {
    if (this._handle === null || this._state !== 'running') { this._forgetRequest(conn); return false; }
    const { f } = native.load();
    let rc;
    if (ok) {
      rc = f.wsembed_server_accept(this._handle, conn, protocol === undefined || protocol === null ? null : String(protocol));
    } else {
      if (!Number.isInteger(status) || status < 0 || status > 0xffff) {
        throw new TypeError(`wsembed: reject: HTTP status ${status} does not fit uint16_t`);
      }
      const text = body === undefined || body === null ? (http.STATUS_CODES[status] || '') : String(body);
      rc = f.wsembed_server_reject(this._handle, conn, status, text);
    }
    if (rc === RESULT.OK) {
      if (!ok) this._forgetRequest(conn);
      return true;
    }
    if (rc === RESULT.NO_SUCH_CONNECTION || rc === RESULT.STOPPED) { this._forgetRequest(conn); return false; }
    throw failure(rc, ok ? 'accept' : 'reject');
  }

  _onOpen(conn, ev) {
    const socket = new WebSocket(kInternal);
    socket._server = this;
    socket._conn = conn;
    socket._readyState = OPEN;
    socket.protocol = ev.protocol || '';
    socket.extensions = ev.extensions || '';
    let request = this._requests.get(conn);
    this._requestTimes.delete(conn);
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

  _forgetRequest(conn) {
    this._requests.delete(conn);
    this._requestTimes.delete(conn);
  }

  _onClose(conn, code, reason) {
    this._forgetRequest(conn);
    const s = this._sockets.get(conn);
    if (!s) return;
    this._sockets.delete(conn);
    if (this.clients) this.clients.delete(s);
    scheduleTrim();
    s._closed(code, reason);
  }

  _onPollFailed(rcOrErr) {
    // Unexpected (e.g. PANIC): report it and shut the server down.
    this._emitError(typeof rcOrErr === 'number' ? makeError(rcOrErr, 'poll') : rcOrErr);
    if (!this._stopping && this._handle) {
      this._state = 'closing';
      this._stopping = true;
      native.load().f.wsembed_server_stop.async(this._handle, 0, () => { this._stopDone = true; this._onStopped(); });
    }
  }

  // The engine stopped (its STOPPED came through the pump) or wsembed_server_stop returned:
  // once both happened, release everything.
  _onStopped() {
    if (this._state === 'closed') return;
    const pump = this._pump;
    if (!pump || !pump.stopped || !this._stopDone || pump.polling) return;
    let thrown = null;
    for (const conn of [...this._sockets.keys()]) {
      try { this._onClose(conn, 1006, Buffer.alloc(0)); } catch (e) { if (thrown === null) thrown = e; }
    }
    this._state = 'closed';
    liveServers.delete(this);
    try { this._finalStats = this.stats(); } catch (_) { /* keep null */ }
    pump.close();
    this._pump = null;
    const handle = this._handle;
    this._handle = null;
    this._handleAddr = 0;
    this._requests.clear();
    this._requestTimes.clear();
    native.load().f.wsembed_server_free(handle);
    process.nextTick(() => {
      this.emit('close');
      const cbs = this._closeCallbacks;
      this._closeCallbacks = [];
      for (const cb of cbs) cb();
    });
    if (thrown !== null) throw thrown;
  }
}

module.exports = { WebSocketServer, Handshake, STATS_KEYS };
