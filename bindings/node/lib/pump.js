'use strict';
// The event pump: moves the engine's events into JavaScript.
//
// The engine's event fd (the read end of a pipe, readable while events wait) is watched by a
// libuv stream on the JS main thread (a net.Socket reading into a fixed buffer: `onread`). On
// each read callback the pump calls wsembed_server_poll synchronously with timeout 0 until a
// poll comes back empty, and dispatches the events straight from the event array to the
// server's _on* methods (small payloads copied out of the engine all at once by
// wsembed_event_copy_payloads, larger ones one by one by address with memcpy). No thread pool,
// no timers; an idle server costs nothing. Field offsets come from koffi's layout of the
// generated struct wsembed_event.

const fs = require('fs');
const net = require('net');
const native = require('./native');

const { RESULT, EVENT } = native;

// Events taken per wsembed_server_poll call.
const POLL_CAPACITY = 512;
// Payloads up to this size share one Buffer per batch (one allocation per batch); larger ones
// get their own Buffer so a kept small message does not pin a big one.
const SHARED_PAYLOAD_MAX = 16 * 1024;
// Fallback pump only (no usable event fd): the thread-pool poll is re-armed after this long.
const POLL_TIMEOUT_MS = 1000;

// Reads a size_t/pointer field as a Number (exact below 2^53, which user-space addresses are).
function readWord(dv, off) {
  return dv.getUint32(off + 4, true) * 0x100000000 + dv.getUint32(off, true);
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

const PTR_SIZE = 8; // checked in native.js
// Event kinds whose data/len is a payload to copy (a lookup table by kind).
const HAS_PAYLOAD = new Uint8Array(Math.max(...Object.values(EVENT)) + 1);
for (const k of [EVENT.TEXT, EVENT.BINARY, EVENT.CLOSE, EVENT.PING, EVENT.PONG, EVENT.RECONNECTING, EVENT.FAILED]) HAS_PAYLOAD[k] = 1;
const hasPayload = (kind) => kind < HAS_PAYLOAD.length && HAS_PAYLOAD[kind] === 1;

class Pump {
  /**
   * sink: the WebSocketServer; receives _onOpen(conn, off), _onHandshake(conn, off),
   * _onMessage(conn, data, isBinary), _onClose(conn, code, reason), _onDrain(conn),
   * _onPing(conn, data), _onPong(conn, data), _onStopped(), _onPollFailed(rc | Error).
   */
  constructor(sink, handle) {
    const { koffi, f, eventLayout } = native.load();
    this._sink = sink;
    this._f = f;
    this._koffi = koffi;
    this._layout = eventLayout;
    this._handle = handle;
    this._handleAddr = Number(koffi.address(handle));
    // The event array and the count live in koffi-allocated memory (fixed addresses, passed to
    // wsembed_server_poll as numbers) and are read through one DataView each.
    this._evMem = koffi.alloc('wsembed_event', POLL_CAPACITY);
    this._evAddr = Number(koffi.address(this._evMem));
    this._evView = new DataView(koffi.view(this._evMem, POLL_CAPACITY * eventLayout.size));
    this._countMem = koffi.alloc('size_t', 1);
    this._countAddr = Number(koffi.address(this._countMem));
    this._countView = new DataView(koffi.view(this._countMem, 8));
    this._watcher = null;
    this.polling = false; // a thread-pool poll is in flight (fallback pump)
    this.stopped = false; // the engine reported STOPPED (or the pump failed)
  }

  start() {
    const fdOut = [0];
    const rc = this._f.wsembed_server_event_fd(this._handle, fdOut);
    const fd = rc === RESULT.OK ? openEventFd(fdOut[0]) : null;
    if (fd !== null) {
      let watcher = null;
      try {
        // The bytes read are only a wake-up; the pump then empties the engine's queue. With
        // `onread` libuv reads them into one fixed buffer and calls us directly: no Buffer per
        // wake-up and none of the Readable stream machinery ('data' stays as a fallback for a
        // Node without it).
        watcher = new net.Socket({
          fd, readable: true, writable: false,
          onread: { buffer: Buffer.alloc(64), callback: () => { this.drain(); } },
        });
      } catch (_) {
        try { fs.closeSync(fd); } catch (__) { /* ignore */ }
      }
      if (watcher) {
        this._watcher = watcher;
        watcher.on('data', () => this.drain());
        watcher.on('error', (err) => { if (this._evMem !== null) this._sink._onPollFailed(err); });
        watcher.on('end', () => { /* the engine closed the pipe: only at free, after the watcher */ });
        return;
      }
    }
    // No way to watch the fd from libuv: poll from the thread pool instead (slower).
    this._armPoll();
  }

  /** Takes every waiting event: synchronous zero-timeout polls until one comes back empty. */
  drain() {
    if (this._evMem === null || this.stopped) return;
    let thrown = null;
    const f = this._f;
    for (;;) {
      const rc = f.poll_addr(this._handleAddr, this._evAddr, POLL_CAPACITY, 0, this._countAddr);
      // Events come with OK only; on STOPPED (a failure result) the count is left untouched.
      const count = rc === RESULT.OK ? readWord(this._countView, 0) : 0;
      if (count > 0) {
        const t = this._dispatch(count);
        if (t !== null && thrown === null) thrown = t;
      }
      if (rc === RESULT.STOPPED) { this.stopped = true; break; }
      if (rc !== RESULT.OK) { this.stopped = true; this._sink._onPollFailed(rc); break; }
      // Besides draining, the next poll tells the engine that the batch just dispatched has
      // been handled (a connection that broke the protocol right after a message is closed
      // only then, so the replies to that message go first).
      if (count === 0) break;
    }
    if (this.stopped) {
      try { this._sink._onStopped(); } catch (e) { if (thrown === null) thrown = e; }
    }
    // A listener threw: report it like ws would (an uncaught exception), after the batch is done.
    if (thrown !== null) process.nextTick(() => { throw thrown; });
  }

  // Fallback pump: a blocking poll on the libuv thread pool (koffi async call).
  _armPoll() {
    this.polling = true;
    this._f.poll_addr.async(this._handleAddr, this._evAddr, POLL_CAPACITY, POLL_TIMEOUT_MS, this._countAddr,
      (err, rc) => this._onPoll(err, rc));
  }

  _onPoll(err, rc) {
    this.polling = false;
    if (err) {
      // koffi could not run the call: nothing sensible to retry.
      this.stopped = true;
      this._sink._onPollFailed(err);
      this._sink._onStopped();
      return;
    }
    let thrown = null;
    const count = rc === RESULT.OK ? readWord(this._countView, 0) : 0;
    if (count > 0) thrown = this._dispatch(count);
    if (rc === RESULT.OK) this._armPoll();
    else if (rc === RESULT.STOPPED) this.stopped = true;
    else { this.stopped = true; this._sink._onPollFailed(rc); }
    if (this.stopped) this._sink._onStopped();
    if (thrown !== null) throw thrown;
  }

  // Dispatches `count` events from the event array. Payloads are copied out of the engine's
  // memory (valid only until the next poll): the small ones all at once into one shared Buffer
  // per batch (wsembed_event_copy_payloads, which points their `data` at the copies), larger
  // ones into their own. Returns the first exception a listener threw (the other events are
  // still dispatched), or null.
  _dispatch(count) {
    const dv = this._evView;
    const L = this._layout;
    const SIZE = L.size; const OFF_KIND = L.kind; const OFF_CONN = L.conn; const OFF_LEN = L.len; const OFF_DATA = L.data;
    const copyTo = this._f.copy_to;
    const sink = this._sink;
    let slab = null; let slabAddr = 0; let slabEnd = 0; let slabBuffer = null; let slabBase = 0;
    if (copyTo !== null) {
      // The same rule as wsembed_event_copy_payloads (0 < len <= max_len, any kind), so that
      // everything it copies fits.
      let total = 0;
      for (let i = 0, off = 0; i < count; i++, off += SIZE) {
        const len = readWord(dv, off + OFF_LEN);
        if (len <= SHARED_PAYLOAD_MAX) total += len;
      }
      if (total > 0) {
        slab = Buffer.allocUnsafe(total);
        slabAddr = this._f.address_of(slab, 0, 0);
        const rc = this._f.copy_payloads_addr(this._evAddr, count, SHARED_PAYLOAD_MAX, slabAddr, total, this._countAddr);
        if (rc === RESULT.OK) {
          slabEnd = slabAddr + readWord(this._countView, 0);
          slabBuffer = slab.buffer; slabBase = slab.byteOffset;
        } else {
          slab = null; // copied one by one below
        }
      }
    }
    let thrown = null;
    for (let i = 0, off = 0; i < count; i++, off += SIZE) {
      const kind = dv.getUint32(off + OFF_KIND, true);
      const hi = dv.getUint32(off + OFF_CONN + 4, true);
      // Like koffi: a Number while exact, else a BigInt.
      const conn = hi < 0x200000 ? hi * 0x100000000 + dv.getUint32(off + OFF_CONN, true)
        : dv.getBigUint64(off + OFF_CONN, true);
      let data = null;
      if (hasPayload(kind)) {
        const len = readWord(dv, off + OFF_LEN);
        const ptr = len === 0 ? 0 : readWord(dv, off + OFF_DATA);
        if (len === 0) {
          data = Buffer.alloc(0);
        } else if (slab !== null && ptr >= slabAddr && ptr < slabEnd) {
          // Copied into the slab: a view of it (Buffer.from is cheaper than subarray).
          data = Buffer.from(slabBuffer, slabBase + (ptr - slabAddr), len);
        } else if (copyTo !== null) {
          data = Buffer.allocUnsafe(len);
          copyTo(this._f.address_of(data, 0, 0), ptr, len);
        } else {
          const k = this._koffi;
          data = Buffer.from(new Uint8Array(k.view(k.decode(this._evMem, off + OFF_DATA, 'void *'), len)));
        }
      }
      try {
        switch (kind) {
          case EVENT.TEXT: sink._onMessage(conn, data, false); break;
          case EVENT.BINARY: sink._onMessage(conn, data, true); break;
          case EVENT.CLOSE: sink._onClose(conn, dv.getUint16(off + L.close_code, true), data); break;
          case EVENT.DRAIN: sink._onDrain(conn); break;
          case EVENT.OPEN: sink._onOpen(conn, this._requestEvent(off)); break;
          case EVENT.HANDSHAKE: sink._onHandshake(conn, this._requestEvent(off)); break;
          case EVENT.PING: sink._onPing(conn, data); break;
          case EVENT.PONG: sink._onPong(conn, data); break;
          // Client connections (wsembed_server_connect): a sink without clients ignores them.
          case EVENT.RECONNECTING:
            if (sink._onReconnecting) sink._onReconnecting(conn, this._clientEvent(off, dv), data);
            break;
          case EVENT.FAILED:
            if (sink._onFailed) sink._onFailed(conn, this._clientEvent(off, dv), data);
            break;
          default: break; // a kind newer than this package
        }
      } catch (e) {
        if (thrown === null) thrown = e;
      }
    }
    return thrown;
  }

  // The numbers of a RECONNECTING or FAILED event.
  _clientEvent(off, dv) {
    const L = this._layout;
    return {
      attempt: dv.getUint32(off + L.attempt, true),
      delayMs: Number(dv.getUint32(off + L.delay_ms, true)),
      failure: dv.getUint32(off + L.failure, true),
      httpStatus: dv.getUint16(off + L.http_status, true),
    };
  }

  // The strings of an OPEN or HANDSHAKE event (rare: decoded with koffi).
  _requestEvent(off) {
    const k = this._koffi;
    const e = k.decode(this._evMem, off, 'wsembed_event');
    const nHeaders = Number(e.header_count);
    const nProtocols = Number(e.protocol_count);
    return {
      path: e.path,
      peer: e.peer,
      protocol: e.protocol,
      extensions: e.extensions,
      protocols: nProtocols > 0 && e.protocols !== null
        ? Array.from({ length: nProtocols }, (_, i) => k.decode(e.protocols, i * PTR_SIZE, 'const char *')) : [],
      headers: nHeaders > 0 ? k.decode(e.headers, 'wsembed_header', nHeaders) : [],
    };
  }

  /** Releases the watcher and the event memory (after the server was stopped). */
  close() {
    if (this._watcher) {
      // Closes only our own descriptor (see openEventFd); the server's is freed with it.
      this._watcher.destroy();
      this._watcher = null;
    }
    if (this._evMem !== null) {
      this._koffi.free(this._evMem);
      this._koffi.free(this._countMem);
      this._evMem = null;
      this._evView = null;
      this._countMem = null;
      this._countView = null;
    }
  }
}

module.exports = { Pump, POLL_CAPACITY };
