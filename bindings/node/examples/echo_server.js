#!/usr/bin/env node
// echo_server: echoes every message to its sender (text as text, binary as binary), or with
// --broadcast sends each message to every connected client. Same behaviour as examples/c/echo_server.
//
//     node examples/echo_server.js [--port N] [--broadcast] [--deflate shared|dedicated] [--redis URL] [--inline] [--threads N]
//
// Prints "listening on ws://127.0.0.1:PORT" once it accepts connections. Stops on SIGINT/SIGTERM.
'use strict';
const { WebSocketServer } = require('..');

let port = 0;
let broadcast = false;
const engine = {};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--port' && i + 1 < argv.length) {
    const value = argv[++i];
    port = Number(value);
    if (!/^\d+$/.test(value) || port > 65535) {
      console.error(`echo_server: bad port ${value}`);
      process.exit(2);
    }
  } else if (argv[i] === '--broadcast') {
    broadcast = true;
  } else if (argv[i] === '--deflate' && i + 1 < argv.length) {
    engine.compression = argv[++i];
  } else if (argv[i] === '--redis' && i + 1 < argv.length) {
    engine.redisUrl = argv[++i];
  } else if (argv[i] === '--threads' && i + 1 < argv.length) {
    engine.threads = Number(argv[++i]);
  } else if (argv[i] === '--inline') {
    engine.loopThread = false; // host-driven: the binding's polls run the engine (libuv's thread pool)
  } else {
    console.error('usage: echo_server.js [--port N] [--broadcast] [--deflate shared|dedicated] [--redis URL] [--inline] [--threads N]');
    process.exit(2);
  }
}

const wss = new WebSocketServer({ port, maxPayload: 16 * 1024 * 1024, clientTracking: false, ...engine });

wss.on('error', (err) => {
  console.error(`echo_server: start: ${err.message}`);
  process.exit(1);
});

wss.on('listening', () => {
  console.log(`listening on ws://127.0.0.1:${wss.address().port}`);
});

wss.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => {
    if (broadcast) wss.broadcast(data, { binary: isBinary });
    else socket.send(data, { binary: isBinary });
  });
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => wss.close());
}
