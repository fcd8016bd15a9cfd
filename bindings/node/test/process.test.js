'use strict';
// Process-level behaviour: exit after close, library lookup errors, the examples.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const WebSocket = require('ws');
const { runNode, spawnExample, stopExample, withTimeout } = require('./helpers');

const PKG = JSON.stringify(path.resolve(__dirname, '..'));
const WS = JSON.stringify(require.resolve('ws'));

test('the process exits by itself after wss.close() (no dangling handles)', async () => {
  const script = `
    const { WebSocketServer } = require(${PKG});
    const WebSocket = require(${WS});
    const wss = new WebSocketServer({ port: 0 }, () => {
      const c = new WebSocket('ws://127.0.0.1:' + wss.address().port + '/');
      c.on('open', () => c.send('ping'));
      c.on('message', () => wss.close(() => console.log('server closed')));
      c.on('close', (code) => console.log('client close ' + code));
    });
    wss.on('connection', (s) => s.on('message', (d) => s.send(d.toString())));
  `;
  const r = await runNode(['-e', script], { timeoutMs: 10000 });
  assert.equal(r.signal, null, `killed: ${r.stderr}`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /client close 1001/);
  assert.match(r.stdout, /server closed/);
  assert.ok(r.ms < 5000, `took ${r.ms} ms`);
});

test('an idle server closed right away lets the process exit at once', async () => {
  const r = await runNode(['-e', `
    const { WebSocketServer } = require(${PKG});
    const wss = new WebSocketServer({ port: 0 });
    wss.on('listening', () => wss.close());
  `], { timeoutMs: 10000 });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.ms < 3000, `took ${r.ms} ms`);
});

test('process.exit() with a running server does not hang', async () => {
  const r = await runNode(['-e', `
    const { WebSocketServer } = require(${PKG});
    const wss = new WebSocketServer({ port: 0 }, () => setTimeout(() => process.exit(3), 100));
  `], { timeoutMs: 10000 });
  assert.equal(r.code, 3, r.stderr);
  assert.ok(r.ms < 3000, `took ${r.ms} ms`);
});

test('a missing library throws an Error that says what to run', async () => {
  const r = await runNode(['-e', `require(${PKG})`], { env: { WSEMBED_LIBRARY: '/nonexistent/libwsembed.so' } });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Error: wsembed: WSEMBED_LIBRARY points to \/nonexistent\/libwsembed\.so/);
  assert.match(r.stderr, /cargo build --release/);
});

test('examples/echo_server.js: prints the C echo_server line, echoes, --broadcast fans out', async () => {
  const echo = await spawnExample('echo_server.js');
  assert.match(echo.output(), /^listening on ws:\/\/127\.0\.0\.1:\d+\n$/);
  const c = new WebSocket(`ws://127.0.0.1:${echo.port}/`);
  await new Promise((r) => c.on('open', r));
  const got = [];
  c.on('message', (d, isBinary) => got.push([isBinary ? [...d] : d.toString(), isBinary]));
  c.send('hi');
  c.send(Buffer.from([1, 2, 3]));
  await withTimeout(new Promise((r) => { const t = setInterval(() => { if (got.length === 2) { clearInterval(t); r(); } }, 10); }), 5000, 'echo');
  assert.deepEqual(got, [['hi', false], [[1, 2, 3], true]]);
  c.close();
  assert.equal(await stopExample(echo.child), 0);

  const bc = await spawnExample('echo_server.js', ['--broadcast']);
  const clients = await Promise.all([0, 1, 2].map(() => new Promise((resolve) => {
    const w = new WebSocket(`ws://127.0.0.1:${bc.port}/`);
    w.on('open', () => resolve(w));
  })));
  const seen = clients.map((w) => new Promise((r) => w.once('message', (d) => r(d.toString()))));
  clients[0].send('fan out');
  assert.deepEqual(await withTimeout(Promise.all(seen), 5000, 'broadcast'), ['fan out', 'fan out', 'fan out']);
  for (const w of clients) w.close();
  assert.equal(await stopExample(bc.child), 0);

  // --inline (host-driven, loopThread false): the binding's thread-pool polls run the engine;
  // it echoes in order and stops cleanly too.
  const inline = await spawnExample('echo_server.js', ['--inline']);
  const ic = new WebSocket(`ws://127.0.0.1:${inline.port}/`);
  await new Promise((r) => ic.on('open', r));
  const echoed = [];
  ic.on('message', (d) => echoed.push(d.toString()));
  for (let i = 0; i < 50; i++) ic.send(`m${i}`);
  await withTimeout(new Promise((r) => { const t = setInterval(() => { if (echoed.length === 50) { clearInterval(t); r(); } }, 10); }), 5000, 'inline echo');
  assert.deepEqual(echoed, Array.from({ length: 50 }, (_, i) => `m${i}`));
  ic.close();
  assert.equal(await stopExample(inline.child), 0);

  // Same port option and usage errors as the C program.
  const fixed = await spawnExample('echo_server.js', ['--port', String(bc.port)]);
  assert.equal(fixed.port, bc.port);
  assert.equal(await stopExample(fixed.child), 0);
  const bad = await runNode(['examples/echo_server.js', '--bogus']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /usage/);
});

test('examples/chat_server.js serves the chat page and relays text messages to everyone', async () => {
  const chat = await spawnExample('chat_server.js', ['--port', '0']);
  try {
    const res = await fetch(`http://127.0.0.1:${chat.port}/`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /<title>wsembed chat<\/title>/);
    const open = () => new Promise((resolve) => {
      const w = new WebSocket(`ws://127.0.0.1:${chat.port}/ws`);
      w.on('open', () => resolve(w));
    });
    const [a, b] = [await open(), await open()];
    const both = [a, b].map((w) => new Promise((r) => w.once('message', (d, isBinary) => r([d.toString(), isBinary]))));
    const msg = JSON.stringify({ name: 'ann', text: '<i>hi</i>' });
    a.send(msg);
    assert.deepEqual(await withTimeout(Promise.all(both), 5000, 'chat relay'), [[msg, false], [msg, false]]);
    const closed = new Promise((r) => b.on('close', (code, reason) => r([code, reason.toString()])));
    b.send(Buffer.from([1]));
    assert.deepEqual(await withTimeout(closed, 5000, 'close'), [1003, 'text only']);
    a.close();
  } finally {
    assert.equal(await stopExample(chat.child), 0);
  }
});
