// Type definitions for wsembed (Node.js bindings). The API follows the server side of `ws`.
/// <reference types="node" />

import { EventEmitter } from 'events';

type Data = string | Buffer | ArrayBuffer | ArrayBufferView | Buffer[];

/**
 * One connection: the server side (instances come from the server's 'connection' event), or a
 * client made with `new WebSocket(url, protocols?, options?)` (dialed by a process-wide,
 * client-only wsembed engine that stops itself when no client connection is left).
 */
declare class WebSocket extends EventEmitter {
  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSING: 2;
  static readonly CLOSED: 3;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;

  /** Dials `address` (ws:// or wss://). 'open' follows, or 'error' then 'close' (1006). */
  constructor(address: string | URL, protocols?: string | string[], options?: WebSocket.ClientOptions);
  constructor(address: string | URL, options?: WebSocket.ClientOptions);

  /** Client: the response headers of the latest handshake (lowercase names). */
  responseHeaders?: Record<string, string>;

  /** 1 OPEN, 2 CLOSING after close(), 3 CLOSED after the 'close' event. */
  readonly readyState: 0 | 1 | 2 | 3;
  /** Bytes queued for this socket in the engine and not yet written to the network. */
  readonly bufferedAmount: number;
  /** Sends refused with WOULD_BLOCK (past maxBufferedBytes). */
  readonly droppedMessages: number;
  /** The engine's connection id. */
  readonly id: number | bigint;
  /** Chosen subprotocol, or "". */
  protocol: string;
  /** The negotiated extension (e.g. "permessage-deflate; ..."), or "". */
  extensions: string;
  /** Server side: request target of the upgrade request. Client: the URL dialed. */
  url: string;
  binaryType: 'nodebuffer' | 'arraybuffer' | 'fragments';
  /** Topics this socket is subscribed to (a copy). */
  readonly topics: Set<string>;

  /** Strings go as text, Buffers/TypedArrays/ArrayBuffers as binary (unless options.binary says otherwise). */
  /**
   * Queues the message in the engine; true if queued. Past maxBufferedBytes the engine refuses it
   * (WOULD_BLOCK): false, cb gets an Error with code 'WSEMBED_ERR_WOULD_BLOCK', droppedMessages
   * counts it and 'drain' follows. Nothing is kept on the JS side.
   */
  send(data: Data | number, cb?: (err?: Error) => void): boolean;
  send(data: Data | number, options: WebSocket.SendOptions, cb?: (err?: Error) => void): boolean;
  /** Starts the closing handshake (code 1000-1003, 1007-1014, 3000-4999; reason <= 123 bytes; the engine checks, a TypeError tells). */
  close(code?: number, reason?: string | Buffer): void;
  /** Drops the TCP connection at once (no closing handshake); 'close' follows with 1006. */
  terminate(): void;
  /** Sends a ping (payload <= 125 bytes); the peer's pong comes as a 'pong' event (option pingEvents, default true). */
  ping(data?: any, mask?: boolean, cb?: (err?: Error) => void): void;
  /** The engine answers pings itself: only calls cb. */
  pong(data?: any, mask?: boolean, cb?: (err?: Error) => void): void;
  subscribe(topic: string): boolean;
  unsubscribe(topic: string): boolean;
  isSubscribed(topic: string): boolean;
  addEventListener(type: string, listener: (...args: any[]) => void): void;
  removeEventListener(type: string, listener: (...args: any[]) => void): void;

  on(event: 'message', listener: (data: WebSocket.RawData, isBinary: boolean) => void): this;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  on(event: 'drain', listener: () => void): this;
  on(event: 'ping' | 'pong', listener: (data: Buffer) => void): this;
  on(event: 'open', listener: () => void): this;
  on(event: 'error', listener: (err: WebSocket.ClientError) => void): this;
  /** Client with `reconnect` (wsembed only; ws has no such event): dialing again in delayMs. */
  on(event: 'reconnecting', listener: (info: WebSocket.ReconnectInfo) => void): this;
  on(event: 'upgrade', listener: (response: { statusCode: number; headers: Record<string, string> }) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'message', listener: (data: WebSocket.RawData, isBinary: boolean) => void): this;
  once(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

declare const WebSocketClass: typeof WebSocket;
type WebSocketClass = WebSocket;

declare namespace WebSocket {
  interface ClientOptions {
    /** Extra request headers. */
    headers?: Record<string, string | string[]>;
    origin?: string;
    /** CA(s) to trust for wss://: PEM text (string/Buffer, or an array of them) or a file path. */
    ca?: string | Buffer | Array<string | Buffer>;
    /** Fail when the server picks none of the offered subprotocols. */
    requireProtocol?: boolean;
    /** ms for TCP+TLS connect (default 10000). */
    connectTimeout?: number;
    /** ms for the 101 response (default 10000; ws's handshakeTimeout). */
    handshakeTimeout?: number;
    /** Dial again after failures and drops (full-jitter backoff); 'reconnecting' events tell. */
    reconnect?: boolean | { minDelayMs?: number; maxDelayMs?: number; maxAttempts?: number; resetAfterMs?: number };
    /** Bytes of sends kept while not open (default 0: send() throws while CONNECTING, as ws). */
    queueWhileConnecting?: number;
    /** Offer permessage-deflate (default false, unlike ws). */
    perMessageDeflate?: boolean;
  }
  interface ReconnectInfo {
    attempt: number;
    delayMs: number;
    /** A WSEMBED_FAILURE_* number; failureName its short name, e.g. 'CONNECTION_REFUSED'. */
    failure: number;
    failureName: string;
    /** HTTP status of a refusal, or the close code when an open connection ended; else 0. */
    httpStatus: number;
    reason: string;
  }
  interface ClientError extends Error {
    /** 'WSEMBED_FAILURE_CONNECTION_REFUSED', 'WSEMBED_FAILURE_HTTP_STATUS', ... */
    code: string;
    failure?: number;
    httpStatus?: number;
    reason?: string;
  }
  type RawData = Buffer | ArrayBuffer | Buffer[];

  interface SendOptions {
    /** Send as binary (true) or text (false) whatever the type of `data`. */
    binary?: boolean;
    /** Accepted for ws compatibility; ignored (the engine does not compress). */
    compress?: boolean;
    fin?: boolean;
    mask?: boolean;
  }

  interface BroadcastOptions extends SendOptions {
    /** A socket (or its id) that does not get the message. */
    except?: WebSocket | number | bigint | WebSocket[];
  }

  /**
   * Options of `new WebSocketServer()`. Every engine option (the library's list, see
   * `engineOptions()`) is accepted by its camelCase name as declared here and by its snake_case
   * name; test/abi.test.js checks that this list and the library's agree. Values are converted by
   * the option's kind and checked by the engine (a bad one throws a TypeError with its message).
   */
  interface ServerOptions {
    // ---- engine options (wsembed_config_option_info) ----
    /** TCP port; 0 picks a free one (see `address().port`). Required. */
    port: number;
    /** Interface to listen on. Default "127.0.0.1" (ws listens on every interface by default); "localhost" means 127.0.0.1. */
    host?: string;
    /** Largest reassembled message in bytes; larger ones are closed with 1009 (default 16 MiB). ws's name: maxPayload. */
    maxMessageSize?: number;
    /** Largest single frame in bytes; larger is closed with 1009. */
    maxFrameSize?: number;
    /** Simultaneous TCP connections, handshakes included; more are answered 503. */
    maxConnections?: number;
    handshakeTimeoutMs?: number;
    /** Largest HTTP request head; larger is answered 431. */
    maxHeaderBytes?: number;
    /** Ping after this long without traffic from the peer; 0 never pings. */
    pingIntervalMs?: number;
    /** An unanswered ping closes the connection after this (1006 "ping timeout"). */
    pongTimeoutMs?: number;
    closeTimeoutMs?: number;
    /** Emit 'ping' and 'pong' socket events with their payload. Default true here (the engine's default is false). */
    pingEvents?: boolean;
    /** Cap on one connection's send queue; past it sends return false (WOULD_BLOCK) until 'drain'. Nothing is queued in JS. */
    maxBufferedBytes?: number;
    /** Cap on every send queue together; 0 = a quarter of physical memory. */
    maxTotalBufferedBytes?: number;
    /** Past maxBufferedBytes: 'block' (sends fail with WOULD_BLOCK until 'drain'; broadcast skips) or 'close'. */
    backpressure?: 'block' | 'close';
    /** Close code of backpressure 'close': 1008 (default) or 1013. */
    backpressureCloseCode?: 1008 | 1013;
    /** What events waiting for JS may cost; past it the engine stops reading sockets. */
    maxPendingEventBytes?: number;
    /** What host commands waiting for the engine's loop may cost; past it sends fail with WOULD_BLOCK. */
    maxQueuedCommandBytes?: number;
    /** permessage-deflate: 'off' (default), 'shared' or 'dedicated' (see the README). */
    compression?: 'off' | 'shared' | 'dedicated';
    /** Window of the server's compressors, 9-15 (default 15). */
    compressionWindowBits?: number;
    /** zlib memLevel of the server's compressors, 1-9 (default 8). */
    compressionMemLevel?: number;
    /** Messages shorter than this go uncompressed (default 128). */
    compressionThreshold?: number;
    /** Event loops (threads) serving the port (default 1). */
    threads?: number;
    /** Run the engine on its own thread (default true); false is host-driven mode (not useful from Node). */
    loopThread?: boolean;
    /** Listen on host:port (default true). */
    listen?: boolean;
    /** Join the servers on this Redis: publish and broadcast reach their clients too. */
    redisUrl?: string;
    /** Prefix of the Redis channels (default 'wsembed'). */
    redisPrefix?: string;
    /** Serve plain HTTP GET/HEAD requests from this directory. */
    staticDir?: string;
    maxStaticFileBytes?: number;
    /** Subprotocols the server accepts, most preferred first. */
    subprotocols?: string | string[];
    /** Browser origins allowed (exact `Origin` match); others get 403. Requests without Origin pass. */
    allowedOrigins?: string | string[];
    /** Messages per second per connection (burst of one second); 0 = no limit. */
    maxMessagesPerSec?: number;
    /** Bytes per second per connection (burst of one second); 0 = no limit. */
    maxBytesPerSec?: number;
    /** Over the rate limits: 'close' with 1008 (default) or 'drop' the message (counted in stats().rateLimited). */
    rateLimitPolicy?: 'close' | 'drop';
    /** Simultaneous connections per IP address; more get 429. 0 = no limit. */
    maxConnectionsPerIp?: number;
    /** New connections per second per IP address; more get 429. 0 = no limit. */
    maxHandshakesPerIpPerSec?: number;
    /**
     * Ask JS about every upgrade request first (implied by verifyClient / handleProtocols): answer in
     * the 'handshake' event; without a listener, requests are accepted.
     */
    approveHandshakes?: boolean;
    /** An upgrade request not answered in this time gets 503 (default 10000). */
    approvalTimeoutMs?: number;
    /** PEM files / PEM text for wss:// (or use `tls`). */
    tlsCertFile?: string;
    tlsKeyFile?: string;
    tlsCertPem?: string | Buffer;
    tlsKeyPem?: string | Buffer;

    // ---- ws names of engine options ----
    /** ws's name of maxMessageSize. */
    maxPayload?: number;

    // ---- host options (HOST_OPTIONS) ----
    /** Track sockets in `wss.clients` (default true). */
    clientTracking?: boolean;
    /** Only accept WebSocket requests for this path. */
    path?: string;
    /** Serve wss://: PEM certificate chain and key (strings or Buffers), or the paths of PEM files. */
    tls?: { cert: string | Buffer; key: string | Buffer } | { certFile: string; keyFile: string };
    /**
     * Like ws: decides on each upgrade request. Sync form returns a boolean (false -> 401); async
     * form calls cb(true) or cb(false, status = 401, body).
     */
    verifyClient?: ((info: VerifyClientInfo) => boolean)
      | ((info: VerifyClientInfo, cb: (result: boolean, code?: number, message?: string) => void) => void);
    /** Like ws: picks one of the offered subprotocols, or false (then the subprotocols option decides). */
    handleProtocols?: (protocols: Set<string>, request: UpgradeRequest) => string | false;
    /** How long `close()` waits for clients' closing handshakes, in ms (default 2000). */
    stopTimeoutMs?: number;
    /** Accepted for ws compatibility; permessage-deflate is not negotiated. */
    perMessageDeflate?: boolean | object;
    /** Accepted for ws compatibility; ignored. */
    backlog?: number;
    /** Accepted for ws compatibility; ignored (the engine always validates text). */
    skipUTF8Validation?: boolean;
    /** Accepted for ws compatibility; ignored (the engine always answers pings). */
    autoPong?: boolean;
    /** Accepted for ws compatibility; ignored. */
    allowSynchronousEvents?: boolean;
    /** Not supported (the engine owns its listening socket): throws. */
    server?: never;
    /** Not supported: throws. */
    noServer?: never;
    /** Engine option names in snake_case are accepted too. */
    [engineOption: string]: unknown;
  }

  interface VerifyClientInfo {
    /** The Origin header, if any. */
    origin: string | undefined;
    /** True with the tls option (wss://). */
    secure: boolean;
    /** The upgrade request; the same object is passed to 'connection'. */
    req: UpgradeRequest;
  }

  /** An upgrade request awaiting an answer (option approveHandshakes, event 'handshake'). */
  class Handshake {
    private constructor();
    readonly request: UpgradeRequest;
    /** Subprotocols the client offered, in its order. */
    readonly protocols: Set<string>;
    readonly answered: boolean;
    /** Completes the upgrade with `protocol` (one offered) or lets the subprotocols option decide. False if too late. */
    accept(protocol?: string): boolean;
    /** Refuses with HTTP `status` (400-599, default 401) and a short text body (<= 1024 bytes). False if too late. */
    reject(status?: number, body?: string): boolean;
  }

  /** wss.stats(): the engine's counters since start (Numbers; BigInt past 2^53). */
  interface Stats {
    openConnections: number | bigint;
    handshakesAccepted: number | bigint;
    /** Bad requests, 403 origin, 429 per-IP limits, 503 (full or unanswered approval), rejects, timeouts. */
    handshakesRejected: number | bigint;
    messagesIn: number | bigint;
    /** Messages queued for sending (a broadcast counts once per recipient). */
    messagesOut: number | bigint;
    bytesIn: number | bigint;
    bytesOut: number | bigint;
    /** Broadcast/publish deliveries skipped because the recipient's queue was full. */
    droppedDeliveries: number | bigint;
    /** Messages dropped by rateLimitPolicy 'drop'. */
    rateLimited: number | bigint;
    closesClean: number | bigint;
    closesProtocolError: number | bigint;
    closesTimeout: number | bigint;
    closesDropped: number | bigint;
    /** Rate-limit and backpressure closes (1008/1013). */
    closesPolicy: number | bigint;
    /** Sends/broadcasts/publishes refused because the engine's command queue was over maxQueuedCommandBytes. */
    droppedCommands: number | bigint;
    /** Gauge: what every send queue costs now. */
    queuedBytes: number | bigint;
    /** Gauge: what the commands waiting for the engine's loop cost now. */
    queuedCommandBytes: number | bigint;
    /** Further counters of newer libraries (one key per field of struct wsembed_stats). */
    [counter: string]: number | bigint;
  }

  /** A request-like view of the upgrade request (not an http.IncomingMessage). */
  interface UpgradeRequest {
    method: 'GET';
    /** Request target with query string, e.g. "/ws?room=1". */
    url: string;
    /** Header names lowercased; repeated headers joined with ", " ("; " for cookie). */
    headers: Record<string, string | string[]>;
    rawHeaders: string[];
    httpVersion: string;
    httpVersionMajor: number;
    httpVersionMinor: number;
    socket: SocketInfo;
    connection: SocketInfo;
  }

  interface SocketInfo {
    remoteAddress?: string;
    remotePort?: number;
    remoteFamily?: 'IPv4' | 'IPv6';
    /** true with the tls option. */
    encrypted?: boolean;
    localAddress: string;
    localPort: number;
  }

  interface AddressInfo {
    address: string;
    family: 'IPv4' | 'IPv6';
    port: number;
  }

  class WebSocketServer extends EventEmitter {
    constructor(options: ServerOptions, callback?: () => void);
    readonly options: ServerOptions;
    /** Open sockets (undefined with clientTracking: false). */
    clients: Set<WebSocket>;
    /** The bound port. */
    readonly port: number;
    /** Sends refused with WOULD_BLOCK, over every socket (sum of their droppedMessages). */
    readonly droppedSends: number;
    address(): AddressInfo | null;
    /** Stops the server: every client gets 1001, then 'close' fires and `cb` is called. */
    close(cb?: (err?: Error) => void): void;
    /** Sends to every open connection (except `options.except`). False once the server is closed. */
    broadcast(data: Data, options?: BroadcastOptions): boolean;
    /** Sends to every socket subscribed to `topic`. False once the server is closed. */
    publish(topic: string, data: Data, options?: SendOptions): boolean;
    shouldHandle(request: UpgradeRequest): boolean;
    /** The engine's counters; after close, the last snapshot (null if the server never started). */
    stats(): Stats | null;

    on(event: 'connection', listener: (socket: WebSocket, request: UpgradeRequest) => void): this;
    on(event: 'listening', listener: () => void): this;
    /** With approveHandshakes (and no verifyClient): answer with handshake.accept() or .reject(). */
    on(event: 'handshake', listener: (handshake: Handshake, request: UpgradeRequest) => void): this;
    on(event: 'error', listener: (error: Error & { code?: string; result?: number }) => void): this;
    on(event: 'close', listener: () => void): this;
    on(event: string | symbol, listener: (...args: any[]) => void): this;
    once(event: 'connection', listener: (socket: WebSocket, request: UpgradeRequest) => void): this;
    once(event: 'listening' | 'close', listener: () => void): this;
    once(event: 'error', listener: (error: Error) => void): this;
    once(event: string | symbol, listener: (...args: any[]) => void): this;
  }

  const Server: typeof WebSocketServer;
  type WebSocketAlias = WebSocket;
  /** Same as the module itself: `const { WebSocket } = require('wsembed')`. */
  const WebSocket: typeof WebSocketClass;
  type WebSocket = WebSocketClass;
  type Server = WebSocketServer;

  /** Version of the native library, e.g. "0.1.0". */
  function version(): string;
  /** Path of the loaded native library. */
  function libraryPath(): string;

  /** Result codes by name without the WSEMBED_ERR_ prefix, from the header (e.g. RESULT.WOULD_BLOCK). */
  const RESULT: { readonly OK: number; readonly WOULD_BLOCK: number; readonly [name: string]: number };

  interface EngineOption {
    /** snake_case name (wsembed_config_set). */
    readonly name: string;
    /** camelCase name accepted by WebSocketServer. */
    readonly camel: string;
    readonly kind: 'bool' | 'integer' | 'bytes' | 'milliseconds' | 'count' | 'text' | 'list' | 'choice' | 'path' | 'pem' | string;
    /** The default as text ("" for none). */
    readonly default: string;
    readonly doc: string;
  }
  /** The engine's options as the library describes them (wsembed_config_option_info). */
  function engineOptions(): readonly EngineOption[];
  /** Options of this package that are not engine options, with what they do. */
  const HOST_OPTIONS: { readonly [name: string]: string };
}

export = WebSocket;
