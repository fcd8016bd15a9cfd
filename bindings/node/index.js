'use strict';
// wsembed for Node.js: a WebSocket server whose protocol and I/O run in the wsembed engine (Rust,
// on its own thread), with an API close to the `ws` package's server side.
//
// lib/abi.js               the C ABI, generated from include/wsembed.h (bindings/gen_abi.py)
// lib/native.js            finding and loading libwsembed, hot-path call variants, event layout
// lib/errors.js            Errors from result codes (texts from the library)
// lib/options.js           engine options from the library, camelCase <-> snake_case, ws names
// lib/pump.js              the event pump (event fd -> wsembed_server_poll -> dispatch)
// lib/websocket.js         one connection (WebSocket): the server side, and the client side
// lib/websocket-client.js  the client side: new WebSocket(url) on a process-wide client engine
// lib/websocket-server.js  WebSocketServer and Handshake

const native = require('./lib/native');
// Load now, so a missing library is reported by require() with what to run.
native.load();

const { WebSocket } = require('./lib/websocket');
const { WebSocketServer, Handshake } = require('./lib/websocket-server');
const options = require('./lib/options');

/** The library version, e.g. "0.1.0". */
function version() { return native.load().version; }
/** Path of the loaded native library. */
function libraryPath() { return native.load().libraryPath; }

WebSocket.WebSocket = WebSocket;
WebSocket.WebSocketServer = WebSocketServer;
WebSocket.Server = WebSocketServer;
WebSocket.Handshake = Handshake;
WebSocket.version = version;
WebSocket.libraryPath = libraryPath;
WebSocket.RESULT = native.RESULT;
/** The engine's options as the library describes them: [{ name, camel, kind, default, doc }]. */
WebSocket.engineOptions = options.engineOptions;
/** Options of this package that are not engine options: { name: what it does }. */
WebSocket.HOST_OPTIONS = options.HOST_OPTIONS;

module.exports = WebSocket;
