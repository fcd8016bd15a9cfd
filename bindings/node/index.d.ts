// Type definitions for wsembed (Node.js bindings). The API follows the server side of `ws`.
/// <reference types="node" />

import { EventEmitter } from 'events';

type Data = string | Buffer | ArrayBuffer | ArrayBufferView | Buffer[];

/** The server side of one connection; instances come from the server's 'connection' event. */
declare class WebSocket extends EventEmitter {
  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSING: 2;
  static readonly CLOSED: 3;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;

  /** Throws: wsembed is a server; use `ws` for clients. */
  private constructor();

  /** 1 OPEN, 2 CLOSING after close(), 3 CLOSED after the 'close' event. */
  readonly readyState: 0 | 1 | 2 | 3;
  /** Bytes queued for this socket and not yet written to the network. */
  readonly bufferedAmount: number;
  /** The engine's connection id. */
  readonly id: number | bigint;
  /** Chosen subprotocol, or "". */
  protocol: string;
  /** Always "" (no extensions are negotiated). */
  extensions: string;
  /** Request target of the upgrade request. */
  url: string;
  binaryType: 'nodebuffer' | 'arraybuffer' | 'fragments';
  /** Topics this socket is subscribed to (a copy). */
  readonly topics: Set<string>;

  /** Strings go as text, Buffers/TypedArrays/ArrayBuffers as binary (unless options.binary says otherwise). */
  send(data: Data | number, cb?: (err?: Error) => void): void;
  send(data: Data | number, options: WebSocket.SendOptions, cb?: (err?: Error) => void): void;
  /** Starts the closing handshake (code 1000-1003, 1007-1014, 3000-4999; reason <= 123 bytes). */
  close(code?: number, reason?: string | Buffer): void;
  /** Closes with 1001 (the engine has no abortive close). */
  terminate(): void;
  /** The engine keeps connections alive itself; ping() emits 'pong' on the next tick for ws-style heartbeats. */
  ping(data?: any, mask?: boolean, cb?: (err?: Error) => void): void;
  pong(data?: any, mask?: boolean, cb?: (err?: Error) => void): void;
  subscribe(topic: string): boolean;
  unsubscribe(topic: string): boolean;
  isSubscribed(topic: string): boolean;
  addEventListener(type: string, listener: (...args: any[]) => void): void;
  removeEventListener(type: string, listener: (...args: any[]) => void): void;

  on(event: 'message', listener: (data: WebSocket.RawData, isBinary: boolean) => void): this;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  on(event: 'drain', listener: () => void): this;
  on(event: 'pong', listener: (data: Buffer) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'message', listener: (data: WebSocket.RawData, isBinary: boolean) => void): this;
  once(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

declare const WebSocketClass: typeof WebSocket;
type WebSocketClass = WebSocket;

declare namespace WebSocket {
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

  interface ServerOptions {
    /** TCP port; 0 picks a free one (see `address().port`). Required. */
    port: number;
    /** Interface to listen on. Default "127.0.0.1" (ws listens on every interface by default). */
    host?: string;
    /** Largest message in bytes; larger ones are closed with 1009 (engine `max_message_size`, default 16 MiB). */
    maxPayload?: number;
    /** Track sockets in `wss.clients` (default true). */
    clientTracking?: boolean;
    /** Only accept WebSocket requests for this path (others are closed with 1008 after the upgrade). */
    path?: string;
    /** Subprotocols the server accepts, most preferred first (engine `subprotocols`). */
    subprotocols?: string | string[];
    /** Serve plain HTTP GET/HEAD requests from this directory (engine `static_dir`). */
    staticDir?: string;
    maxMessageSize?: number;
    maxFrameSize?: number;
    maxConnections?: number;
    handshakeTimeoutMs?: number;
    maxHeaderBytes?: number;
    pingIntervalMs?: number;
    pongTimeoutMs?: number;
    closeTimeoutMs?: number;
    maxBufferedBytes?: number;
    backpressure?: 'block' | 'close';
    maxStaticFileBytes?: number;
    /** How long `close()` waits for clients' closing handshakes, in ms (default 2000). */
    stopTimeoutMs?: number;
    /** Accepted for ws compatibility; permessage-deflate is not negotiated. */
    perMessageDeflate?: boolean | object;
    /** Engine option names (snake_case) are passed through as they are. */
    [engineOption: string]: unknown;
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
    address(): AddressInfo | null;
    /** Stops the server: every client gets 1001, then 'close' fires and `cb` is called. */
    close(cb?: (err?: Error) => void): void;
    /** Sends to every open connection (except `options.except`). False once the server is closed. */
    broadcast(data: Data, options?: BroadcastOptions): boolean;
    /** Sends to every socket subscribed to `topic`. False once the server is closed. */
    publish(topic: string, data: Data, options?: SendOptions): boolean;
    shouldHandle(request: UpgradeRequest): boolean;

    on(event: 'connection', listener: (socket: WebSocket, request: UpgradeRequest) => void): this;
    on(event: 'listening', listener: () => void): this;
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

  const RESULT: {
    readonly OK: 0; readonly NULL_ARGUMENT: 1; readonly INVALID_ARGUMENT: 2; readonly NO_SUCH_CONNECTION: 3;
    readonly STOPPED: 4; readonly WOULD_BLOCK: 5; readonly IO: 6; readonly PANIC: 7; readonly INVALID_UTF8: 8;
  };
}

export = WebSocket;
