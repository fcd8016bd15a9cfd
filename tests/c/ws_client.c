/* ws_client: see ws_client.h. */
#define _POSIX_C_SOURCE 200809L
#include "ws_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

int64_t ws_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int connect_tcp(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int write_all(int fd, const void *data, size_t len) {
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Waits until fd is readable or the deadline passes. 1 readable, 0 timeout, -1 error. */
static int wait_readable(int fd, int64_t deadline) {
    for (;;) {
        int64_t left = deadline - ws_now_ms();
        if (left < 0) left = 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) return 0;
        return 1;
    }
}

/* Reads more bytes into the buffer. 1 got some, 0 EOF, -1 timeout/error. */
static int fill(ws_client *c, int64_t deadline) {
    if (c->fd < 0) return -1;
    if (wait_readable(c->fd, deadline) != 1) return -1;
    if (c->buf_cap - c->buf_len < 4096) {
        size_t cap = c->buf_cap ? c->buf_cap * 2 : 8192;
        uint8_t *nb = realloc(c->buf, cap);
        if (!nb) return -1;
        c->buf = nb;
        c->buf_cap = cap;
    }
    ssize_t n;
    do {
        n = recv(c->fd, c->buf + c->buf_len, c->buf_cap - c->buf_len, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -1;
    if (n == 0) return 0;
    c->buf_len += (size_t)n;
    return 1;
}

static void consume(ws_client *c, size_t n) {
    memmove(c->buf, c->buf + n, c->buf_len - n);
    c->buf_len -= n;
}

static const char *find_head_end(const uint8_t *buf, size_t len) {
    for (size_t i = 0; i + 3 < len; i++)
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0) return (const char *)buf + i + 4;
    return NULL;
}

int ws_connect(ws_client *c, uint16_t port, const char *path, const char *extra_headers,
               char *response, size_t response_cap) {
    memset(c, 0, sizeof *c);
    c->fd = connect_tcp(port);
    if (c->fd < 0) return -1;
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: " WS_KEY "\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                     path, (unsigned)port, extra_headers ? extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof req || write_all(c->fd, req, (size_t)n) != 0) goto fail;
    int64_t deadline = ws_now_ms() + 5000;
    const char *end;
    while ((end = find_head_end(c->buf, c->buf_len)) == NULL)
        if (fill(c, deadline) != 1) goto fail;
    size_t head_len = (size_t)(end - (const char *)c->buf);
    char *head = malloc(head_len + 1);
    if (!head) goto fail;
    memcpy(head, c->buf, head_len);
    head[head_len] = '\0';
    consume(c, head_len);
    if (response && response_cap) {
        strncpy(response, head, response_cap - 1);
        response[response_cap - 1] = '\0';
    }
    int ok = strncmp(head, "HTTP/1.1 101", 12) == 0;
    /* Find Sec-WebSocket-Accept, case-insensitively. */
    int accept_ok = 0;
    for (char *line = head; line && *line; ) {
        char *next = strstr(line, "\r\n");
        if (next) *next = '\0';
        if (strncasecmp(line, "Sec-WebSocket-Accept:", 21) == 0) {
            const char *v = line + 21;
            while (*v == ' ') v++;
            accept_ok = strcmp(v, WS_ACCEPT) == 0;
        }
        line = next ? next + 2 : NULL;
    }
    free(head);
    if (ok && accept_ok) return 0;
fail:
    ws_close(c);
    return -1;
}

int ws_send_raw(ws_client *c, const void *data, size_t len) {
    if (c->fd < 0) return -1;
    return write_all(c->fd, data, len);
}

int ws_send_frame(ws_client *c, int opcode, const void *data, size_t len) {
    if (c->fd < 0) return -1;
    uint8_t head[14];
    size_t h = 0;
    head[h++] = (uint8_t)(0x80 | (opcode & 0x0f));
    if (len < 126) {
        head[h++] = (uint8_t)(0x80 | len);
    } else if (len <= 0xffff) {
        head[h++] = 0x80 | 126;
        head[h++] = (uint8_t)(len >> 8);
        head[h++] = (uint8_t)len;
    } else {
        head[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) head[h++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    memcpy(head + h, mask, 4);
    h += 4;
    uint8_t *frame = malloc(h + len + 1);
    if (!frame) return -1;
    memcpy(frame, head, h);
    const uint8_t *src = data;
    for (size_t i = 0; i < len; i++) frame[h + i] = src[i] ^ mask[i & 3];
    int rc = write_all(c->fd, frame, h + len);
    free(frame);
    return rc;
}

int ws_send_close(ws_client *c, uint16_t code, const char *reason) {
    uint8_t payload[125];
    size_t len = 0;
    if (code) {
        payload[0] = (uint8_t)(code >> 8);
        payload[1] = (uint8_t)code;
        len = 2;
        if (reason) {
            size_t r = strlen(reason);
            if (r > 123) r = 123;
            memcpy(payload + 2, reason, r);
            len += r;
        }
    }
    return ws_send_frame(c, WS_CLOSE, payload, len);
}

int ws_read_frame(ws_client *c, ws_frame *f, int timeout_ms) {
    memset(f, 0, sizeof *f);
    int64_t deadline = ws_now_ms() + timeout_ms;
    for (;;) {
        if (c->buf_len >= 2) {
            const uint8_t *b = c->buf;
            if (b[1] & 0x80) return -1; /* server frames must not be masked */
            uint64_t len = b[1] & 0x7f;
            size_t h = 2;
            if (len == 126) {
                if (c->buf_len < 4) goto more;
                len = ((uint64_t)b[2] << 8) | b[3];
                h = 4;
            } else if (len == 127) {
                if (c->buf_len < 10) goto more;
                len = 0;
                for (int i = 0; i < 8; i++) len = (len << 8) | b[2 + i];
                h = 10;
            }
            if (len > (64u << 20)) return -1;
            if (c->buf_len < h + len) goto more;
            f->fin = (b[0] & 0x80) != 0;
            f->opcode = b[0] & 0x0f;
            f->len = (size_t)len;
            f->payload = malloc(f->len + 1);
            if (!f->payload) return -1;
            memcpy(f->payload, b + h, f->len);
            f->payload[f->len] = 0;
            consume(c, h + (size_t)len);
            return 0;
        }
    more:
        if (fill(c, deadline) != 1) return -1;
    }
}

int ws_read_message(ws_client *c, ws_frame *f, int timeout_ms) {
    int64_t deadline = ws_now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - ws_now_ms();
        if (ws_read_frame(c, f, left > 0 ? (int)left : 0) != 0) return -1;
        if (f->opcode == WS_PING) {
            ws_send_frame(c, WS_PONG, f->payload, f->len);
            ws_frame_free(f);
            continue;
        }
        if (f->opcode == WS_PONG) {
            ws_frame_free(f);
            continue;
        }
        return 0;
    }
}

void ws_frame_free(ws_frame *f) {
    free(f->payload);
    f->payload = NULL;
    f->len = 0;
}

int ws_wait_eof(ws_client *c, int timeout_ms) {
    int64_t deadline = ws_now_ms() + timeout_ms;
    for (;;) {
        c->buf_len = 0; /* discard anything else */
        int r = fill(c, deadline);
        if (r == 0) return 0;
        if (r < 0) return errno == ECONNRESET ? 0 : -1;
    }
}

void ws_close(ws_client *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->buf_len = c->buf_cap = 0;
}

long http_get(uint16_t port, const char *path, char *out, size_t cap, int timeout_ms) {
    int fd = connect_tcp(port);
    if (fd < 0) return -1;
    char req[1024];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n\r\n", path,
                     (unsigned)port);
    if (n < 0 || (size_t)n >= sizeof req || write_all(fd, req, (size_t)n) != 0) {
        close(fd);
        return -1;
    }
    int64_t deadline = ws_now_ms() + timeout_ms;
    size_t got = 0;
    for (;;) {
        if (got + 1 >= cap) break;
        if (wait_readable(fd, deadline) != 1) break;
        ssize_t r = recv(fd, out + got, cap - 1 - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    out[got] = '\0';
    close(fd);
    return (long)got;
}
