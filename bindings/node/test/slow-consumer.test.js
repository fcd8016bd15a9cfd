'use strict';
// Issue 15: a client that sends many 1 MiB messages to examples/echo_server.js and never reads
// the echoes. The server's memory must stay bounded (engine queue capped by maxBufferedBytes,
// JS send queue capped by the same number, refused sends dropped) and go back down once the
// client has left.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const net = require('net');
const crypto = require('crypto');
const { spawnExample, stopExample } = require('./helpers');
const options = require('../lib/options');

const MIB = 1 << 20;
// The example runs with the defaults. What the server may grow by over its idle RSS: the two
// engine budgets a flooding client can fill (its send queue, max_buffered_bytes, and the events
// waiting for JS, max_pending_event_bytes) plus 200 MB for everything else (payload copies V8
// has not collected yet, malloc slack, the engine's read buffers). The unbounded JS queue this
// replaced reached 1.16 GB here.
const MAX_BUFFERED = Number(options.engineDefault('max_buffered_bytes'));
const MAX_PENDING = Number(options.engineDefault('max_pending_event_bytes'));
const GROWTH = MAX_BUFFERED + MAX_PENDING + 200 * 1000 * 1000;
const MESSAGES = 1000;

function rss(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

// A masked binary frame with the all-zero mask key (legal; leaves the payload as it is).
function frame(payload) {
  const head = Buffer.alloc(14);
  head[0] = 0x82; head[1] = 0x80 | 127;
  head.writeBigUInt64BE(BigInt(payload.length), 2);
  head.writeUInt32BE(0, 10);
  return Buffer.concat([head, payload]);
}

function openRaw(port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    sock.on('error', reject);
    sock.on('connect', () => {
      sock.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    let head = '';
    const onData = (d) => {
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        sock.off('data', onData);
        if (!head.startsWith('HTTP/1.1 101')) { reject(new Error(head)); return; }
        sock.pause(); // never read the echoes
        resolve(sock);
      }
    };
    sock.on('data', onData);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('a slow reader of 1,000 x 1 MiB echoes keeps the Node echo server bounded, and memory comes back', {
  skip: process.platform !== 'linux' ? 'reads /proc/PID/status' : false, timeout: 180000,
}, async () => {
  const echo = await spawnExample('echo_server.js', ['--port', '0']);
  const pid = echo.child.pid;
  try {
    const baseline = rss(pid);
    const BOUND = baseline + GROWTH;
    let peak = baseline;
    const sock = await openRaw(echo.port);
    const data = frame(crypto.randomBytes(MIB));
    const deadline = Date.now() + 120000;
    for (let i = 0; i < MESSAGES; i++) {
      if (!sock.write(data)) await new Promise((r) => sock.once('drain', r));
      if (i % 10 === 0) {
        peak = Math.max(peak, rss(pid));
        assert.ok(peak < BOUND, `server RSS ${peak >> 20} MiB after ${i} messages (bound ${BOUND >> 20} MiB)`);
      }
      assert.ok(Date.now() < deadline, `only ${i} messages sent in 120 s`);
    }
    for (let t = 0; t < 40; t++) { peak = Math.max(peak, rss(pid)); await sleep(50); }
    assert.ok(peak < BOUND, `server RSS peaked at ${peak >> 20} MiB (bound ${BOUND >> 20} MiB)`);
    assert.ok(peak > baseline + 32 * MIB, 'the server never queued anything: the test did not test');

    sock.destroy(); // the client leaves without reading
    const target = baseline + (peak - baseline) / 2;
    const until = Date.now() + 30000;
    let now = rss(pid);
    while (now > target && Date.now() < until) { await sleep(100); now = rss(pid); }
    console.log(`# slow consumer: baseline ${baseline >> 20} MiB, peak ${peak >> 20} MiB, after ${now >> 20} MiB`);
    assert.ok(now <= target, `server RSS still ${now >> 20} MiB 30 s after the client left (baseline ${baseline >> 20}, peak ${peak >> 20})`);
    assert.equal(echo.child.exitCode, null, echo.errors());
  } finally {
    await stopExample(echo.child);
  }
});
