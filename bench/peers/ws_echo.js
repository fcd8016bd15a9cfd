#!/usr/bin/env node
// ws_echo.js: echo server on the npm `ws` package (default options), peer for the wsembed bench.
//
//   node ws_echo.js [--port N] [--broadcast]
//
// Echoes each message to its sender (text as text, binary as binary), or with --broadcast sends
// each message to every connected client. Prints "listening on ws://127.0.0.1:PORT".
'use strict';
const { WebSocketServer, WebSocket } = require('ws');

let port = 0;
let broadcast = false;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--port' && i + 1 < argv.length) port = Number(argv[++i]);
  else if (argv[i] === '--broadcast') broadcast = true;
  else {
    console.error('usage: ws_echo.js [--port N] [--broadcast]');
    process.exit(2);
  }
}

const wss = new WebSocketServer({ host: '127.0.0.1', port, maxPayload: 16 * 1024 * 1024 });
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  if (broadcast) {
    ws.on('message', (data, isBinary) => {
      for (const client of wss.clients) {
        if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
      }
    });
  } else {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  }
});
wss.on('listening', () => {
  process.stdout.write(`listening on ws://127.0.0.1:${wss.address().port}\n`);
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    wss.close();
    process.exit(0);
  });
}
