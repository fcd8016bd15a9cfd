#!/usr/bin/env node
// The live chat demo on wsembed: serves examples/chat/index.html and the WebSocket (/ws) on one
// port and broadcasts every text message to every connected browser.
//
//     node examples/chat_server.js [--port N] [--host H]
//
// Then open the printed URL in two browser tabs. Written as a `ws` server would be: only the
// require line and the staticDir option differ.
'use strict';
const path = require('path');
const { WebSocketServer } = require('..'); // from a `ws` app: require('ws') -> require('wsembed')

function parseArgs(argv) {
  const opts = { port: 8080, host: '127.0.0.1' };
  for (let i = 0; i < argv.length; i += 2) {
    const [arg, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${arg} needs a value`);
    if (arg === '--port') opts.port = Number(value);
    else if (arg === '--host') opts.host = value;
    else throw new Error(`usage: chat_server.js [--port N] [--host H] (got ${arg})`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error('bad port');
  return opts;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(`chat_server: ${e.message}`);
  process.exit(2);
}

const wss = new WebSocketServer({
  port: opts.port,
  host: opts.host,
  maxPayload: 64 * 1024,
  // permessage-deflate with one shared compressor per loop (no per-connection contexts); the
  // page shows the negotiated extension.
  compression: 'shared',
  staticDir: path.resolve(__dirname, '..', '..', '..', 'examples', 'chat'),
});

wss.on('listening', () => {
  const { port } = wss.address();
  console.log(`listening on ws://127.0.0.1:${port}`);
  console.log(`open http://127.0.0.1:${port}/ in a browser`);
});

wss.on('error', (err) => {
  console.error(`chat_server: ${err.message}`);
  process.exitCode = 1;
});

wss.on('connection', (socket, request) => {
  const who = `${request.socket.remoteAddress}:${request.socket.remotePort}`;
  console.error(`${who} joined (${request.url})`);
  socket.on('message', (data, isBinary) => {
    if (isBinary) {
      socket.close(1003, 'text only');
      return;
    }
    // Every text message goes to every client, the sender included.
    wss.broadcast(data, { binary: false });
  });
  socket.on('close', (code) => console.error(`${who} left (${code})`));
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => wss.close());
}
