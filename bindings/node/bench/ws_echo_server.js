#!/usr/bin/env node
// The same echo server on the npm `ws` package, for comparison with examples/echo_server.js.
'use strict';
const { WebSocketServer } = require('ws');

const i = process.argv.indexOf('--port');
const port = i > 0 ? Number(process.argv[i + 1]) : 0;
const wss = new WebSocketServer({ port, host: '127.0.0.1', maxPayload: 16 * 1024 * 1024, clientTracking: false });
wss.on('listening', () => console.log(`listening on ws://127.0.0.1:${wss.address().port}`));
wss.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
});
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => { wss.close(); process.exit(0); });
