/*
 * ws_client: a tiny blocking WebSocket client (RFC 6455) for the wsembed C tests.
 * POSIX sockets only; every read has a deadline so a test never hangs.
 */
#ifndef WS_CLIENT_H
#define WS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

/* Opcodes. */
enum { WS_CONT = 0x0, WS_TEXT = 0x1, WS_BINARY = 0x2, WS_CLOSE = 0x8, WS_PING = 0x9, WS_PONG = 0xA };

typedef struct ws_client {
    int fd;
    /* Bytes read from the socket and not consumed yet (after the handshake). */
    uint8_t *buf;
    size_t buf_len, buf_cap;
} ws_client;

/* One received frame; payload is malloc'ed (NUL-terminated for convenience), free with ws_frame_free. */
typedef struct ws_frame {
    int opcode;
    int fin;
    uint8_t *payload;
    size_t len;
} ws_frame;

/* Monotonic milliseconds. */
int64_t ws_now_ms(void);

/* Opens a TCP connection to 127.0.0.1:port and performs the handshake for `path` (e.g.
 * "/chat?room=1"), with optional extra header lines (each ending in "\r\n", or NULL).
 * Returns 0 on success (101 received and Sec-WebSocket-Accept matches the fixed key
 * "dGhlIHNhbXBsZSBub25jZQ==" of RFC 6455 section 1.3), -1 on failure.
 * If `response` is not NULL, the response head (NUL-terminated) is copied there (cap bytes). */
int ws_connect(ws_client *c, uint16_t port, const char *path, const char *extra_headers,
               char *response, size_t response_cap);

/* Sends one masked frame with FIN set. Returns 0 or -1. */
int ws_send_frame(ws_client *c, int opcode, const void *data, size_t len);
/* Sends raw bytes on the socket (for malformed input). */
int ws_send_raw(ws_client *c, const void *data, size_t len);
/* Sends a close frame with `code` and `reason` (code 0: empty close payload). */
int ws_send_close(ws_client *c, uint16_t code, const char *reason);

/* Reads one frame, waiting at most timeout_ms. Returns 0 on success, -1 on timeout, EOF or
 * a protocol error (frames from the server must be unmasked). */
int ws_read_frame(ws_client *c, ws_frame *f, int timeout_ms);
/* Reads frames until one that is not a ping/pong (answers pings). */
int ws_read_message(ws_client *c, ws_frame *f, int timeout_ms);
void ws_frame_free(ws_frame *f);

/* Waits up to timeout_ms for the server to close the TCP connection. 0 on EOF, -1 otherwise. */
int ws_wait_eof(ws_client *c, int timeout_ms);

/* Closes the socket and frees the buffer. Safe to call twice. */
void ws_close(ws_client *c);

/* Plain HTTP GET (no upgrade); response head+body copied into out (NUL-terminated).
 * Returns the number of bytes received, or -1. Reads until EOF or timeout. */
long http_get(uint16_t port, const char *path, char *out, size_t cap, int timeout_ms);

#endif
