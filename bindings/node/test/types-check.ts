import WebSocket = require('..');
import { WebSocketServer } from '..';
const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', maxPayload: 1024, staticDir: '.' }, () => {});
const W2 = WebSocket.WebSocket;
wss.on('connection', (socket, req) => {
  const s: WebSocket = socket;
  const u: string = req.url;
  socket.on('message', (data, isBinary) => { socket.send(data as Buffer, { binary: isBinary }); });
  socket.on('close', (code, reason) => { console.log(code + reason.toString()); });
  if (socket.readyState === WebSocket.OPEN && s.readyState === W2.OPEN) socket.subscribe('t');
  wss.broadcast('x', { except: socket });
  wss.publish('t', Buffer.from('y'));
  for (const c of wss.clients) c.close(1000, 'bye');
  const n: number = socket.bufferedAmount;
});
wss.close((err) => {});
const addr = wss.address();
const hardened = new WebSocketServer({
  port: 0, allowedOrigins: ['https://a.example'], maxMessagesPerSec: 100, rateLimitPolicy: 'drop',
  maxConnectionsPerIp: 10, backpressure: 'close', backpressureCloseCode: 1013, tls: { certFile: 'c.pem', keyFile: 'k.pem' },
  verifyClient: (info, cb) => cb(info.origin !== undefined && info.req.headers.cookie !== undefined, 401, 'no'),
  handleProtocols: (protocols) => (protocols.has('chat') ? 'chat' : false),
});
const approving = new WebSocketServer({ port: 0, approveHandshakes: true, approvalTimeoutMs: 500 });
approving.on('handshake', (hs, req) => { if (req.url === '/') hs.accept(); else hs.reject(403, 'go away'); });
const st = hardened.stats();
if (st !== null) { const n: number | bigint = st.messagesIn; console.log(n, st.closesPolicy); }
// Newer API: ping/pong events, terminate, send's result, derived options and counters.
wss.on('connection', (socket) => {
  socket.on('ping', (data: Buffer) => { socket.ping(data); });
  socket.on('pong', (data: Buffer) => { console.log(data.length); });
  const queued: boolean = socket.send('x', (err) => { if (err) socket.terminate(); });
  if (!queued) socket.once('drain', () => {});
  const dropped: number = socket.droppedMessages;
  console.log(dropped, wss.droppedSends);
});
const pinging = new WebSocketServer({ port: 0, pingEvents: false, maxQueuedCommandBytes: 1 << 20, max_total_buffered_bytes: 0 });
const st2 = pinging.stats();
if (st2 !== null) { const q: number | bigint = st2.queuedBytes; console.log(q, st2.droppedCommands); }
for (const o of WebSocket.engineOptions()) { const n: string = o.camel; console.log(n, o.kind, o.default, o.doc); }
const wouldBlock: number = WebSocket.RESULT.WOULD_BLOCK;
console.log(wouldBlock, Object.keys(WebSocket.HOST_OPTIONS));
// The client side.
const client = new WebSocket.WebSocket('ws://127.0.0.1:1/', ['chat'], {
  headers: { 'X-Token': 't' }, origin: 'http://a', reconnect: { minDelayMs: 100 }, perMessageDeflate: true, ca: 'ca.pem',
});
client.on('open', () => { client.send('hi', (err?: Error) => {}); client.ping(); });
client.on('message', (data, isBinary) => { console.log(isBinary, data); });
client.on('reconnecting', (info) => { const d: number = info.delayMs; const n: string = info.failureName; });
client.on('error', (err) => { const c: string = err.code; });
client.on('close', (code, reason) => { if (client.readyState === WebSocket.CLOSED) console.log(code, reason.toString(), client.extensions, client.protocol, client.url); });
client.terminate();
