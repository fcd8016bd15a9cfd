'use strict';
// The npm `ws` client against a wsembed server hosted in this Node process.
const test = require('node:test');
const assert = require('node:assert/strict');
const { once } = require('events');
const net = require('net');
const WebSocketModule = require('..');
const { WebSocketServer, WebSocket } = WebSocketModule;
const { startServer, connect, nextMessage, withTimeout, waitFor, url } = require('./helpers');

function closeServer(wss) {
  return new Promise((resolve) => wss.close(() => resolve()));
}

test('exports look like ws', () => {
  assert.equal(typeof WebSocketServer, 'function');
  assert.equal(WebSocketModule.Server, WebSocketServer);
  assert.equal(WebSocketModule.WebSocketServer, WebSocketServer);
  assert.equal(WebSocketModule, WebSocket);
  assert.deepEqual([WebSocket.CONNECTING, WebSocket.OPEN, WebSocket.CLOSING, WebSocket.CLOSED], [0, 1, 2, 3]);
  assert.match(WebSocketModule.version(), /^\d+\.\d+\.\d+/);
  assert.throws(() => new WebSocket('http://127.0.0.1:1/'), /ws:/);
  assert.throws(() => new WebSocketServer({}), /port/);
  assert.throws(() => new WebSocketServer({ noServer: true }), /not supported/);
});

test('listening callback, address(), echo of text and binary', async () => {
  let listened = false;
  const wss = new WebSocketServer({ port: 0 }, () => { listened = true; });
  await once(wss, 'listening');
  assert.ok(listened);
  const addr = wss.address();
  assert.equal(addr.address, '127.0.0.1');
  assert.equal(addr.family, 'IPv4');
  assert.ok(addr.port > 0);

  wss.on('connection', (socket) => {
    socket.on('message', (data, isBinary) => socket.send(isBinary ? data : data.toString()));
  });
  const c = await connect(wss);
  c.send('héllo ✓');
  assert.deepEqual(await nextMessage(c), { data: 'héllo ✓', isBinary: false });
  c.send(Buffer.from([0, 1, 2, 255]));
  const bin = await nextMessage(c);
  assert.equal(bin.isBinary, true);
  assert.deepEqual([...bin.data], [0, 1, 2, 255]);
  c.send(Buffer.alloc(0));
  const empty = await nextMessage(c);
  assert.equal(empty.isBinary, true);
  assert.equal(empty.data.length, 0);
  const big = Buffer.alloc(1 << 20, 7);
  c.send(big);
  const bigBack = await nextMessage(c);
  assert.ok(big.equals(bigBack.data));
  c.close();
  await c.closed;
  await closeServer(wss);
  assert.equal(wss.address(), null);
});

test('send(): strings are text, Buffer/TypedArray/ArrayBuffer are binary, options.binary overrides', async () => {
  const wss = await startServer();
  const [socket] = await Promise.all([once(wss, 'connection').then(([s]) => s), (async () => { wss.c = await connect(wss); })()]);
  const c = wss.c;
  socket.send('text');
  socket.send(new Uint16Array([1, 2]));
  socket.send(new Uint8Array([9, 8, 7]).buffer);
  socket.send(Buffer.from('as text'), { binary: false });
  let cbErr = 'not called';
  socket.send('with cb', (err) => { cbErr = err; });
  await waitFor(() => c.received.length === 5, 5000, '5 messages');
  assert.deepEqual(c.received.map((m) => m.isBinary), [false, true, true, false, false]);
  assert.equal(c.received[0].data.toString(), 'text');
  assert.deepEqual([...c.received[1].data], [1, 0, 2, 0]);
  assert.deepEqual([...c.received[2].data], [9, 8, 7]);
  assert.equal(c.received[3].data.toString(), 'as text');
  assert.equal(cbErr, undefined);
  c.close();
  await c.closed;
  await closeServer(wss);
});

test('binary sends of every size class arrive byte for byte (views with offsets, empty, staged and not)', async () => {
  const wss = await startServer();
  const [socket] = await Promise.all([once(wss, 'connection').then(([s]) => s), (async () => { wss.c = await connect(wss); })()]);
  const c = wss.c;
  const backing = Buffer.alloc(70000);
  for (let i = 0; i < backing.length; i++) backing[i] = (i * 7 + 3) & 0xff;
  const sizes = [0, 1, 64, 16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1, 65536];
  const sent = sizes.map((n, i) => backing.subarray(i + 1, i + 1 + n));
  for (const b of sent) assert.equal(socket.send(b), true);
  // A TypedArray view over part of an ArrayBuffer, and a Buffer changed right after send().
  socket.send(new Uint8Array(backing.buffer, backing.byteOffset + 5, 300));
  const reused = Buffer.from('first');
  socket.send(reused);
  reused.write('again');
  await waitFor(() => c.received.length === sizes.length + 2, 5000, 'all messages');
  sent.forEach((b, i) => assert.ok(c.received[i].data.equals(b), `message of ${sizes[i]} bytes`));
  assert.ok(c.received[sizes.length].data.equals(backing.subarray(5, 305)));
  assert.equal(c.received[sizes.length + 1].data.toString(), 'first');
  assert.ok(c.received.every((m) => m.isBinary));
  c.close();
  await c.closed;
  await closeServer(wss);
});

test('received messages of every size class, in one batch or not, arrive whole and stay intact', async () => {
  const wss = await startServer({ maxPayload: 1 << 20 });
  const got = [];
  wss.on('connection', (s) => s.on('message', (d, isBinary) => got.push({ d, isBinary })));
  const c = await connect(wss);
  const backing = Buffer.alloc(200000);
  for (let i = 0; i < backing.length; i++) backing[i] = (i * 13 + 1) & 0xff;
  const sizes = [1, 0, 64, 16 * 1024, 16 * 1024 + 1, 5, 100000, 3, 16 * 1024 - 1];
  for (let round = 0; round < 20; round++) sizes.forEach((n, i) => c.send(backing.subarray(i + round, i + round + n)));
  c.send('text too: h\u00e9llo');
  await waitFor(() => got.length === sizes.length * 20 + 1, 10000, 'all messages');
  for (let round = 0; round < 20; round++) {
    sizes.forEach((n, i) => {
      const m = got[round * sizes.length + i];
      assert.ok(m.isBinary && Buffer.isBuffer(m.d), 'binary Buffer');
      assert.ok(m.d.equals(backing.subarray(i + round, i + round + n)), `message of ${n} bytes, round ${round}`);
    });
  }
  const last = got[got.length - 1];
  assert.equal(last.isBinary, false);
  assert.equal(last.d.toString(), 'text too: h\u00e9llo');
  c.close();
  await c.closed;
  await closeServer(wss);
});

test('connection request: url, lowercased headers, remote address', async () => {
  const wss = await startServer();
  const got = once(wss, 'connection');
  const c = await connect(wss, '/chat/room?x=1&y=%20');
  const [socket, req] = await got;
  assert.equal(req.url, '/chat/room?x=1&y=%20');
  assert.equal(req.method, 'GET');
  assert.equal(req.headers.upgrade.toLowerCase(), 'websocket');
  assert.equal(req.headers.host, `127.0.0.1:${wss.address().port}`);
  assert.ok(req.headers['sec-websocket-key']);
  assert.equal(req.socket.remoteAddress, '127.0.0.1');
  assert.equal(req.socket.remotePort, c._socket.localPort);
  assert.equal(socket.readyState, WebSocket.OPEN);
  assert.equal(socket.bufferedAmount, 0);
  c.close();
  await c.closed;
  await closeServer(wss);
});

test('broadcast reaches every client, except the one left out', async () => {
  const wss = await startServer();
  const sockets = [];
  wss.on('connection', (s) => sockets.push(s));
  const clients = [await connect(wss), await connect(wss), await connect(wss)];
  await waitFor(() => sockets.length === 3, 5000, '3 connections');
  assert.equal(wss.clients.size, 3);
  assert.equal(wss.broadcast('to all'), true);
  for (const c of clients) assert.deepEqual(await nextMessage(c), { data: 'to all', isBinary: false });
  wss.broadcast(Buffer.from([1, 2]), { except: sockets[0] });
  for (const c of clients.slice(1)) assert.equal((await nextMessage(c)).isBinary, true);
  // A marker proves the first client got nothing in between.
  wss.broadcast('marker');
  assert.deepEqual(await nextMessage(clients[0]), { data: 'marker', isBinary: false });
  for (const c of clients) c.close();
  await Promise.all(clients.map((c) => c.closed));
  await closeServer(wss);
});

test('topics: subscribe, publish, unsubscribe', async () => {
  const wss = await startServer();
  const sockets = [];
  wss.on('connection', (s) => sockets.push(s));
  const [a, b] = [await connect(wss), await connect(wss)];
  await waitFor(() => sockets.length === 2, 5000, '2 connections');
  assert.equal(sockets[0].subscribe('news'), true);
  sockets[0].subscribe('sport');
  sockets[1].subscribe('sport');
  assert.ok(sockets[0].isSubscribed('news'));
  assert.deepEqual([...sockets[0].topics].sort(), ['news', 'sport']);

  wss.publish('news', 'n1');
  wss.publish('sport', Buffer.from('s1'));
  wss.publish('nobody', 'lost');
  assert.deepEqual(await nextMessage(a), { data: 'n1', isBinary: false });
  assert.equal((await nextMessage(a)).data.toString(), 's1');
  assert.equal((await nextMessage(b)).data.toString(), 's1');

  sockets[0].unsubscribe('sport');
  assert.ok(!sockets[0].isSubscribed('sport'));
  wss.publish('sport', 's2');
  wss.publish('news', 'n2');
  assert.equal((await nextMessage(b)).data, 's2');
  assert.equal((await nextMessage(a)).data, 'n2'); // a got n2 and not s2
  assert.equal(a.received.length, 3);
  a.close(); b.close();
  await Promise.all([a.closed, b.closed]);
  await closeServer(wss);
});

test('close codes and reasons in both directions, readyState', async () => {
  const wss = await startServer();
  let got = once(wss, 'connection');
  const a = await connect(wss);
  let [s] = await got;
  const serverClose = once(s, 'close');
  s.close(4001, 'bye now');
  assert.equal(s.readyState, WebSocket.CLOSING);
  assert.deepEqual(await a.closed, { code: 4001, reason: 'bye now' });
  const [code, reason] = await serverClose;
  assert.equal(code, 4001);
  assert.ok(Buffer.isBuffer(reason));
  assert.equal(s.readyState, WebSocket.CLOSED);
  assert.equal(s.bufferedAmount, 0);
  s.close(1000); // no-op once closed
  let sendErr;
  s.send('late', (err) => { sendErr = err; });
  await waitFor(() => sendErr !== undefined, 1000, 'send callback');
  assert.match(sendErr.message, /not open/);

  got = once(wss, 'connection');
  const b = await connect(wss);
  [s] = await got;
  const closed = once(s, 'close');
  b.close(4321, 'client says bye');
  const [code2, reason2] = await closed;
  assert.equal(code2, 4321);
  assert.equal(reason2.toString(), 'client says bye');
  await b.closed;

  got = once(wss, 'connection');
  const c = await connect(wss);
  [s] = await got;
  // The engine checks code and reason; its refusal is a TypeError with its message.
  assert.throws(() => s.close(1005), (e) => e instanceof TypeError && e.code === 'WSEMBED_ERR_INVALID_ARGUMENT' && /1005/.test(e.message));
  assert.throws(() => s.close(1000, 'x'.repeat(124)), (e) => e instanceof TypeError && /123/.test(e.message));
  assert.throws(() => s.close(70000), TypeError); // does not fit uint16_t
  assert.equal(s.readyState, WebSocket.OPEN); // a refused close changes nothing
  const closed3 = once(s, 'close');
  c.close();
  assert.equal((await closed3)[0], 1005);
  await closeServer(wss);
});

test('maxPayload: a larger message is closed with 1009', async () => {
  const wss = await startServer({ maxPayload: 1000 });
  const c = await connect(wss);
  c.send('x'.repeat(2000));
  assert.equal((await c.closed).code, 1009);
  await closeServer(wss);
});

test('wss.close() sends 1001 to every client, then close events, then the server close event', async () => {
  const wss = await startServer();
  const sockets = [];
  const order = [];
  wss.on('connection', (s) => { sockets.push(s); s.on('close', (code) => order.push(`socket ${code}`)); });
  const clients = [await connect(wss), await connect(wss)];
  await waitFor(() => sockets.length === 2, 5000, 'connections');
  wss.on('close', () => order.push('server'));
  let cbArg = 'none';
  wss.close((err) => { cbArg = err; order.push('cb'); });
  for (const c of clients) assert.equal((await withTimeout(c.closed, 5000, 'client close')).code, 1001);
  await waitFor(() => order.includes('cb'), 5000, 'close callback');
  assert.deepEqual(order, ['socket 1001', 'socket 1001', 'server', 'cb']);
  assert.equal(cbArg, undefined);
  assert.equal(wss.clients.size, 0);
  for (const s of sockets) assert.equal(s.readyState, WebSocket.CLOSED);
  // Closing twice: the callback gets an error, like ws.
  const err = await new Promise((resolve) => wss.close(resolve));
  assert.match(err.message, /not running/);
  assert.equal(wss.broadcast('nobody'), false);
});

test('clients bookkeeping follows connects and disconnects; clientTracking: false', async () => {
  const wss = await startServer();
  const a = await connect(wss);
  const b = await connect(wss);
  await waitFor(() => wss.clients.size === 2, 5000, '2 clients');
  for (const s of wss.clients) assert.equal(s.readyState, WebSocket.OPEN);
  a.close();
  await waitFor(() => wss.clients.size === 1, 5000, '1 client');
  b.terminate();
  await waitFor(() => wss.clients.size === 0, 5000, '0 clients');
  await closeServer(wss);

  const untracked = await startServer({ clientTracking: false });
  assert.equal(untracked.clients, undefined);
  await closeServer(untracked);
});

test('the path option closes connections for other paths', async () => {
  const wss = await startServer({ path: '/ws' });
  let connections = 0;
  wss.on('connection', () => { connections++; });
  const ok = await connect(wss, '/ws?room=1');
  const bad = await connect(wss, '/other');
  assert.equal((await bad.closed).code, 1008);
  assert.equal(connections, 1);
  ok.close();
  await ok.closed;
  await closeServer(wss);
});

test('subprotocols option: the chosen protocol is socket.protocol', async () => {
  const wss = await startServer({ subprotocols: ['chat.v2', 'chat.v1'] });
  const got = once(wss, 'connection');
  const c = await connect(wss, '/', ['chat.v1', 'chat.v2']);
  const [s, req] = await got;
  assert.equal(c.protocol, 'chat.v2');
  assert.equal(s.protocol, 'chat.v2');
  assert.match(req.headers['sec-websocket-protocol'], /^chat.v1, ?chat.v2$/);
  c.close();
  await c.closed;
  await closeServer(wss);
});

test('a port in use is reported as an error event', async () => {
  const blocker = net.createServer();
  await new Promise((r) => blocker.listen(0, '127.0.0.1', r));
  const { port } = blocker.address();
  const wss = new WebSocketServer({ port });
  const [err] = await once(wss, 'error');
  assert.equal(err.code, 'EADDRINUSE');
  assert.equal(wss.address(), null);
  blocker.close();
});

test('bad engine options throw with the engine\'s message', () => {
  assert.throws(() => new WebSocketServer({ port: 0, backpressure: 'sometimes' }), /backpressure/);
  assert.throws(() => new WebSocketServer({ port: 0, max_connections: -1 }), /max_connections/);
});

test('many messages in both directions keep their order', async () => {
  const wss = await startServer();
  wss.on('connection', (s) => s.on('message', (d, isBinary) => s.send(d, { binary: isBinary })));
  const c = await connect(wss);
  const N = 5000;
  for (let i = 0; i < N; i++) c.send(String(i));
  await waitFor(() => c.received.length === N, 10000, `${N} echoes`);
  c.received.forEach((m, i) => assert.equal(m.data.toString(), String(i)));
  c.close();
  await c.closed;
  await closeServer(wss);
});

test('small backpressure limit: sends past maxBufferedBytes fail at once (nothing queued in JS); drain-paced sends all arrive', async () => {
  const limit = 64 * 1024;
  const wss = await startServer({ maxBufferedBytes: limit });
  const got = once(wss, 'connection');
  const c = await connect(wss);
  const [s] = await got;
  c.pause(); // stop reading so the server's queue fills
  const chunk = Buffer.alloc(32 * 1024, 1);
  const N = 200; // 6.4 MiB total, far over the limit
  const results = new Array(N).fill(undefined);
  const returned = [];
  let maxBuffered = 0;
  for (let i = 0; i < N; i++) {
    chunk[0] = i & 0xff;
    returned.push(s.send(chunk, (err) => { results[i] = err || 'ok'; })); // the engine copies: reuse is fine
    maxBuffered = Math.max(maxBuffered, s.bufferedAmount);
  }
  await waitFor(() => results.every((r) => r !== undefined), 5000, 'send callbacks');
  const refused = results.filter((r) => r !== 'ok');
  assert.ok(refused.length > 0, 'some sends must be refused');
  for (const err of refused) assert.equal(err.code, 'WSEMBED_ERR_WOULD_BLOCK');
  assert.deepEqual(returned, results.map((r) => r === 'ok'));
  assert.equal(s.droppedMessages, refused.length);
  assert.equal(wss.droppedSends, refused.length);
  // The engine's queue holds the limit and one message at most; nothing waits in JS.
  assert.ok(maxBuffered <= limit + chunk.length + 1024, `bufferedAmount reached ${maxBuffered}`);
  c.resume();
  const accepted = results.map((r, i) => (r === 'ok' ? i & 0xff : -1)).filter((i) => i >= 0);
  await waitFor(() => c.received.length === accepted.length, 20000, 'every accepted chunk');
  assert.deepEqual(c.received.map((m) => m.data[0]), accepted);

  // A sender that stops at a false return and resends on 'drain' loses nothing.
  c.received.length = 0;
  c.pause();
  let sent = 0;
  const pump = () => {
    while (sent < N) {
      chunk[0] = sent & 0xff;
      if (!s.send(chunk)) return; // refused: 'drain' follows
      sent++;
    }
  };
  s.on('drain', pump);
  pump();
  assert.ok(sent < N, 'the paced sender was held back');
  c.resume();
  await waitFor(() => c.received.length === N, 20000, 'every paced chunk');
  c.received.forEach((m, i) => assert.equal(m.data[0], i & 0xff));
  c.close();
  await c.closed;
  await closeServer(wss);
});
