'use strict';
// The server side of one connection, like ws's WebSocket on a ws server.

const { EventEmitter } = require('events');
const native = require('./native');
const { failure, makeError } = require('./errors');

const { RESULT, MESSAGE } = native;
const CONNECTING = 0; const OPEN = 1; const CLOSING = 2; const CLOSED = 3;
const READY_STATES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];
const kInternal = Symbol('wsembed internal');

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
    kind = MESSAGE.TEXT; buf = Buffer.from(data, 'utf8');
  } else {
    buf = toBuffer(data);
    if (buf === null) {
      if (typeof data === 'number' || typeof data === 'boolean' || typeof data === 'bigint') {
        kind = MESSAGE.TEXT; buf = Buffer.from(String(data), 'utf8');
      } else {
        throw new TypeError('wsembed: data must be a string, Buffer, TypedArray, DataView or ArrayBuffer');
      }
    } else {
      kind = MESSAGE.BINARY;
    }
  }
  if (options && typeof options.binary === 'boolean') kind = options.binary ? MESSAGE.BINARY : MESSAGE.TEXT;
  return { kind, buf };
}

function notOpen(state) {
  return new Error(`WebSocket is not open: readyState ${state} (${READY_STATES[state]})`);
}

/**
 * The server side of one WebSocket connection. It is also the connection's user data: keep
 * whatever you need on it (`socket.user = ...`); the server drops every reference to it after
 * its 'close' event.
 *
 * Sends and backpressure: send() honours the engine's policy, like the C and Python hosts; no
 * message is kept on the JS side. Past `maxBufferedBytes` (backpressure 'block') the engine
 * refuses a send with WOULD_BLOCK: `cb` gets an Error with code 'WSEMBED_ERR_WOULD_BLOCK'
 * (without a `cb` the message is dropped), `droppedMessages` counts it, and 'drain' follows once
 * the queue fell below half the limit; send() returns false then. A sender that stops at a
 * false return and resends on 'drain' loses nothing. With backpressure 'close' the engine closes
 * the connection instead (1008, or `backpressureCloseCode`). So a slow reader costs at most
 * `maxBufferedBytes`, and nothing of it is held after its 'close'.
 */
class WebSocket extends EventEmitter {
  /**
   * `new WebSocket(url, protocols?, options?)` dials `url` (see lib/websocket-client.js); the
   * server side's sockets come from the server's 'connection' event.
   */
  constructor(address, protocols, options) {
    super();
    this._isClient = false;
    this._server = null;
    this._conn = 0;
    this._readyState = CONNECTING;
    this._dropped = 0;
    this._topics = new Set();
    this._binaryType = 'nodebuffer';
    this.protocol = '';
    this.extensions = '';
    this.url = undefined;
    this._socket = null;
    if (address !== kInternal) require('./websocket-client').initClient(this, address, protocols, options);
  }

  // ---- client side (lib/websocket-client.js) ----
  _clientOpened(ev) {
    this._readyState = OPEN;
    this._lastClose = null;
    this.protocol = ev.protocol || '';
    this.extensions = ev.extensions || '';
    const headers = {};
    for (const { name, value } of ev.headers) {
      const k = name.toLowerCase();
      headers[k] = k in headers ? `${headers[k]}, ${value}` : value;
    }
    this.responseHeaders = headers;
    this.emit('upgrade', { statusCode: 101, headers });
    this.emit('open');
  }

  _clientEnded(code, reason, err) {
    this._readyState = CLOSED;
    if (err) {
      if (this.listenerCount('error') > 0) this.emit('error', err);
      else process.nextTick(() => { throw err; });
    }
    this.emit('close', code, reason);
    this._server = null;
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
  /** Sends refused with WOULD_BLOCK (see the class comment). */
  get droppedMessages() { return this._dropped; }

  /** Bytes queued for this socket in the engine and not yet written to its TCP socket. */
  get bufferedAmount() {
    if (this._readyState === CLOSED || !this._server || !this._server._handle) return 0;
    const { f } = native.load();
    const out = [0];
    const rc = f.wsembed_server_buffered_amount(this._server._handle, this._conn, out);
    return rc === RESULT.OK ? Number(out[0]) : 0;
  }

  /**
   * Queues one message in the engine. Returns true when queued, false when not (not open, or
   * refused with WOULD_BLOCK: then `cb` gets the Error and 'drain' follows); ws returns nothing,
   * so code written for ws is unaffected.
   */
  send(data, options, cb) {
    if (typeof options === 'function') { cb = options; options = undefined; }
    // Fast paths (no intermediate objects): a string goes to the engine as is (koffi encodes it
    // to UTF-8), a Buffer by pointer. Everything else through encodeMessage.
    const binary = options !== undefined && options !== null ? options.binary : undefined;
    let kind; let buf;
    if (typeof data === 'string' && binary !== true) {
      kind = MESSAGE.TEXT; buf = data;
    } else if (Buffer.isBuffer(data)) {
      kind = binary === false ? MESSAGE.TEXT : MESSAGE.BINARY; buf = data;
    } else {
      ({ kind, buf } = encodeMessage(data, options));
    }
    if (this._readyState !== OPEN && !(this._isClient && this._queueWhileConnecting && this._readyState === CONNECTING)) {
      // ws throws for a client that is still connecting.
      if (this._isClient && this._readyState === CONNECTING) throw notOpen(this._readyState);
      if (cb) process.nextTick(cb, notOpen(this._readyState));
      return false;
    }
    const rc = this._server._sendRaw(this._conn, kind, buf);
    if (rc === RESULT.OK) {
      if (cb) process.nextTick(cb);
      return true;
    }
    if (rc === RESULT.WOULD_BLOCK) {
      this._dropped++;
      this._server._droppedSends++;
      if (cb) process.nextTick(cb, failure(rc, 'send'));
      return false;
    }
    const err = failure(rc, 'send');
    if (cb) process.nextTick(cb, err);
    else if (rc === RESULT.INVALID_UTF8 || rc === RESULT.INVALID_ARGUMENT) throw err;
    return false;
  }

  /**
   * Starts the closing handshake. The engine checks `code` (1000-1003, 1007-1014, 3000-4999)
   * and `reason` (at most 123 bytes) and a bad one throws a TypeError with its message.
   */
  close(code, reason) {
    if (this._readyState === CLOSING || this._readyState === CLOSED) return;
    if (this._isClient && this._readyState === CONNECTING) {
      // Not open (yet, or between reconnects): abort; 'close' (1006) follows.
      this.terminate();
      return;
    }
    if (code === undefined) code = 1000;
    if (!Number.isInteger(code) || code < 0 || code > 0xffff) {
      throw new TypeError('First argument must be a valid error code number'); // does not fit uint16_t
    }
    let reasonStr = null;
    if (reason !== undefined && reason !== null) {
      reasonStr = Buffer.isBuffer(reason) ? reason.toString('utf8') : String(reason);
      if (reasonStr.includes('\0')) throw new TypeError('The close reason must not contain NUL characters');
    }
    const rc = this._server._closeRaw(this._conn, code, reasonStr);
    if (rc === RESULT.INVALID_ARGUMENT || rc === RESULT.INVALID_UTF8) throw failure(rc, 'close');
    this._readyState = CLOSING;
    if (rc !== RESULT.OK && rc !== RESULT.NO_SUCH_CONNECTION && rc !== RESULT.STOPPED) throw failure(rc, 'close');
  }

  /** Drops the TCP connection at once, without a closing handshake; 'close' follows with 1006. */
  terminate() {
    if (this._readyState === CLOSED) return;
    this._readyState = CLOSING;
    const rc = this._server._terminateRaw(this._conn);
    if (rc !== RESULT.OK && rc !== RESULT.NO_SUCH_CONNECTION && rc !== RESULT.STOPPED) throw failure(rc, 'terminate');
  }

  /**
   * Sends a ping carrying `data` (at most 125 bytes, checked by the engine); the peer's pong
   * arrives as a 'pong' event (with the default pingEvents: true). The engine also pings idle
   * peers by itself (pingIntervalMs) and closes those that miss the pong (pongTimeoutMs).
   */
  ping(data, mask, cb) {
    if (typeof data === 'function') { cb = data; data = undefined; } else if (typeof mask === 'function') { cb = mask; }
    if (this._readyState === CONNECTING) throw notOpen(this._readyState);
    const payload = data === undefined ? Buffer.alloc(0)
      : (toBuffer(data) || Buffer.from(typeof data === 'number' ? data.toString() : String(data)));
    if (this._readyState !== OPEN) {
      if (cb) process.nextTick(cb, notOpen(this._readyState));
      return;
    }
    const rc = this._server._pingRaw(this._conn, payload);
    if (rc === RESULT.INVALID_ARGUMENT) throw failure(rc, 'ping');
    if (cb) process.nextTick(cb, rc === RESULT.OK ? undefined : makeError(rc, 'ping'));
  }

  /** Pings are answered by the engine itself; this only calls cb. */
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

  // Called by the server with the connection's CLOSE: releases everything it holds.
  _closed(code, reason) {
    this._readyState = CLOSED;
    this._topics.clear();
    this.emit('close', code, reason);
    this._server = null;
    this._socket = null;
  }
}

for (const [i, name] of READY_STATES.entries()) {
  Object.defineProperty(WebSocket, name, { enumerable: true, value: i });
  Object.defineProperty(WebSocket.prototype, name, { enumerable: true, value: i });
}

module.exports = { WebSocket, kInternal, encodeMessage, toBuffer, CONNECTING, OPEN, CLOSING, CLOSED };
