// echo.js: run from an app folder where the wsembed npm package was installed (see run.sh):
// starts a wsembed echo server on a free port, connects one raw client (node:net, no other
// package), sends a text message and checks it comes back. Prints "echo ok: <message>".
'use strict';
const crypto = require('crypto');
const net = require('net');
const { WebSocketServer } = require('wsembed');

const MESSAGE = 'hello through the installed npm package';

function fail(why) {
  console.error(`echo.js: ${why}`);
  process.exit(1);
}
setTimeout(() => fail('timed out'), 10000).unref();

const wss = new WebSocketServer({ port: 0 }, () => {
  const { port } = wss.address();
  const socket = net.connect(port, '127.0.0.1');
  const key = crypto.randomBytes(16).toString('base64');
  socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  let buf = Buffer.alloc(0);
  let upgraded = false;
  socket.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    if (!upgraded) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString();
      if (!head.startsWith('HTTP/1.1 101')) fail(`no upgrade: ${head}`);
      upgraded = true;
      buf = buf.subarray(end + 4);
      // one masked text frame (payload < 126 bytes)
      const payload = Buffer.from(MESSAGE);
      const mask = crypto.randomBytes(4);
      const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
      socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
    }
    if (buf.length >= 2 && buf.length >= 2 + (buf[1] & 0x7f)) {
      if (buf[0] !== 0x81) fail(`unexpected frame 0x${buf[0].toString(16)}`);
      const text = buf.subarray(2, 2 + (buf[1] & 0x7f)).toString();
      if (text !== MESSAGE) fail(`got "${text}"`);
      console.log(`echo ok: ${text} (library ${require('wsembed/lib/native').load().libraryPath})`);
      socket.destroy();
      wss.close(() => process.exit(0));
    }
  });
  socket.on('error', (e) => fail(e.message));
});
wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
wss.on('error', (e) => fail(e.message));
