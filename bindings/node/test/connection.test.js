'use strict';
// ping/pong events, terminate(), the socket as per-connection data (released after close),
// engine-side argument checks.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { once } = require('events');
const WebSocket = require('ws');
const { startServer, connect, waitFor, withTimeout, runNode } = require('./helpers');

function closeServer(wss) {
  return new Promise((resolve) => wss.close(() => resolve()));
}

test("ws.ping(data) -> the client's pong is a 'pong' event; client pings are 'ping' events (answered by the engine)", async () => {
  const wss = await startServer();
  const got = once(wss, 'connection');
  const c = await connect(wss);
  const [s] = await got;
  const pong = once(s, 'pong');
  let pinged;
  s.ping(Buffer.from('t=1'), false, (err) => { pinged = err === undefined ? 'ok' : err; });
  const [data] = await withTimeout(pong, 5000, 'pong');
  assert.equal(data.toString(), 't=1');
  assert.equal(pinged, 'ok');
  // String payloads, and the client's own pings.
  const clientPong = once(c, 'pong');
  const ping = once(s, 'ping');
  c.ping('are you there');
  assert.equal((await withTimeout(ping, 5000, 'ping event'))[0].toString(), 'are you there');
  assert.equal((await withTimeout(clientPong, 5000, 'client pong'))[0].toString(), 'are you there');
  // The engine checks the payload size.
  assert.throws(() => s.ping(Buffer.alloc(126)), (e) => e instanceof TypeError && e.code === 'WSEMBED_ERR_INVALID_ARGUMENT');
  c.close();
  await c.closed;
  let late;
  s.ping('late', undefined, (err) => { late = err; });
  await waitFor(() => late !== undefined, 1000, 'ping callback');
  assert.match(late.message, /not open/);
  await closeServer(wss);
});

test('pingEvents: false: no ping/pong events (pings are still answered)', async () => {
  const wss = await startServer({ pingEvents: false });
  const got = once(wss, 'connection');
  const c = await connect(wss);
  const [s] = await got;
  let events = 0;
  s.on('ping', () => { events++; });
  s.on('pong', () => { events++; });
  const clientPong = once(c, 'pong');
  c.ping('x');
  await withTimeout(clientPong, 5000, 'client pong');
  s.ping('y');
  c.send('marker');
  await once(s, 'message');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(events, 0);
  c.close();
  await closeServer(wss);
});

test('terminate() drops the connection at once: close 1006 on both sides, no close frame', async () => {
  const wss = await startServer();
  const got = once(wss, 'connection');
  const c = await connect(wss);
  const [s] = await got;
  const closed = once(s, 'close');
  s.terminate();
  assert.equal(s.readyState, 2);
  const [code] = await withTimeout(closed, 5000, 'server close');
  assert.equal(code, 1006);
  assert.equal((await withTimeout(c.closed, 5000, 'client close')).code, 1006);
  s.terminate(); // harmless once closed
  // terminate() after close() does not wait for the closing handshake.
  const got2 = once(wss, 'connection');
  const raw = require('net').connect(wss.address().port, '127.0.0.1');
  raw.write(`GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  const [s2] = await got2;
  const closed2 = once(s2, 'close');
  s2.close(1000); // the raw client never answers
  s2.terminate();
  assert.equal((await withTimeout(closed2, 2000, 'close after terminate'))[0], 1006);
  raw.destroy();
  await closeServer(wss);
});

test('close() and reject(): the engine checks codes, reasons and statuses', async () => {
  const wss = await startServer({ approveHandshakes: true });
  wss.on('handshake', (hs) => {
    assert.throws(() => hs.reject(200), (e) => e instanceof TypeError && /200/.test(e.message));
    hs.accept();
  });
  const got = once(wss, 'connection');
  const c = await connect(wss);
  const [s] = await got;
  for (const bad of [999, 1004, 1005, 1006, 1015, 2999, 5000]) {
    assert.throws(() => s.close(bad), (e) => e instanceof TypeError && e.code === 'WSEMBED_ERR_INVALID_ARGUMENT', String(bad));
  }
  assert.equal(s.readyState, 1);
  s.close(4000, 'ok');
  assert.equal((await c.closed).code, 4000);
  await closeServer(wss);
});

test('the socket is the per-connection data, and nothing holds it after its close', async () => {
  const script = `
    const { WebSocketServer } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
    const WebSocket = require(${JSON.stringify(require.resolve('ws'))});
    const refs = [];
    const wss = new WebSocketServer({ port: 0, maxBufferedBytes: 1 << 16 }, async () => {
      const url = 'ws://127.0.0.1:' + wss.address().port + '/';
      for (let i = 0; i < 20; i++) {
        const c = new WebSocket(url);
        await new Promise((r) => c.on('open', r));
        await new Promise((r) => c.on('message', r));
        c.close();
        await new Promise((r) => c.on('close', r));
      }
      await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setImmediate(r));
      global.gc(); global.gc();
      await new Promise((r) => setTimeout(r, 20));
      global.gc();
      const alive = refs.filter((r) => r.deref() !== undefined).length;
      console.log(JSON.stringify({ alive, sockets: wss._sockets.size, requests: wss._requests.size, clients: wss.clients.size }));
      wss.close();
    });
    wss.on('connection', (socket) => {
      socket.user = { name: 'user', blob: Buffer.alloc(1 << 20) };   // the user data
      for (let i = 0; i < 8; i++) socket.send(Buffer.alloc(1 << 16));  // some queued in JS
      socket.send('hello');
      refs.push(new WeakRef(socket));
    });
  `;
  const r = await runNode(['--expose-gc', '-e', script], { timeoutMs: 30000 });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()), { alive: 0, sockets: 0, requests: 0, clients: 0 });
});
