/* test_util: see test_util.h. */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int test_failed = 0;
long test_checks = 0;

int check_impl(int ok, const char *expr, const char *file, int line) {
    test_checks++;
    if (!ok) {
        test_failed = 1;
        printf("#   FAIL %s:%d: %s\n", file, line, expr);
        fflush(stdout);
    }
    return ok;
}

int check_rc_impl(wsembed_result got, wsembed_result want, const char *expr, const char *file, int line) {
    test_checks++;
    /* Copy the message at once: the next failing call replaces it. */
    const char *msg = wsembed_last_error_message();
    int ok = got == want;
    if (ok && want != WSEMBED_OK && (msg == NULL || msg[0] == '\0')) {
        printf("#   FAIL %s:%d: %s returned %s but wsembed_last_error_message() is empty\n", file, line, expr,
               wsembed_result_text(got));
        ok = 0;
    }
    if (!ok) {
        test_failed = 1;
        if (got != want)
            printf("#   FAIL %s:%d: %s returned %u (%s; \"%s\"), expected %u (%s)\n", file, line, expr,
                   (unsigned)got, wsembed_result_text(got), got == WSEMBED_OK ? "" : (msg ? msg : "(null)"),
                   (unsigned)want, wsembed_result_text(want));
        fflush(stdout);
    }
    return ok;
}

static char *dup_str(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

void ev_copy_from(ev_copy *dst, const wsembed_event *src) {
    memset(dst, 0, sizeof *dst);
    dst->kind = src->kind;
    dst->conn = src->conn;
    dst->close_code = src->close_code;
    dst->clean = src->clean;
    dst->len = src->len;
    if (src->data) {
        dst->data = malloc(src->len + 1);
        if (src->len) memcpy(dst->data, src->data, src->len);
        dst->data[src->len] = 0;
    }
    dst->path = dup_str(src->path);
    dst->peer = dup_str(src->peer);
    dst->protocol = dup_str(src->protocol);
    dst->header_count = src->header_count;
    if (src->header_count) {
        dst->header_names = calloc(src->header_count, sizeof(char *));
        dst->header_values = calloc(src->header_count, sizeof(char *));
        for (size_t i = 0; i < src->header_count; i++) {
            dst->header_names[i] = dup_str(src->headers[i].name);
            dst->header_values[i] = dup_str(src->headers[i].value);
        }
    }
}

void ev_copy_free(ev_copy *e) {
    free(e->data);
    free(e->path);
    free(e->peer);
    free(e->protocol);
    for (size_t i = 0; i < e->header_count; i++) {
        if (e->header_names) free(e->header_names[i]);
        if (e->header_values) free(e->header_values[i]);
    }
    free(e->header_names);
    free(e->header_values);
    memset(e, 0, sizeof *e);
}

const char *ev_header(const ev_copy *e, const char *name) {
    for (size_t i = 0; i < e->header_count; i++)
        if (e->header_names[i] && strcasecmp(e->header_names[i], name) == 0) return e->header_values[i];
    return NULL;
}

int wait_event(const wsembed_server *s, uint32_t kind, uint64_t conn, int timeout_ms, ev_copy *out) {
    int64_t deadline = ws_now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - ws_now_ms();
        if (left < 0) return -1;
        wsembed_event ev;
        size_t n = 0;
        wsembed_result rc = wsembed_server_poll(s, &ev, 1, (int32_t)left, &n);
        if (rc != WSEMBED_OK) return -1;
        if (n == 0) continue;
        if (ev.kind == kind && (conn == 0 || ev.conn == conn)) {
            ev_copy_from(out, &ev);
            return 0;
        }
    }
}

wsembed_server *start_server(const char *const *opts, uint16_t *port) {
    wsembed_config *cfg = NULL;
    if (wsembed_config_new(&cfg) != WSEMBED_OK) return NULL;
    wsembed_result rc = wsembed_config_set_int(cfg, "port", 0);
    for (size_t i = 0; opts && opts[i] && rc == WSEMBED_OK; i += 2) rc = wsembed_config_set(cfg, opts[i], opts[i + 1]);
    wsembed_server *s = NULL;
    if (rc == WSEMBED_OK) rc = wsembed_server_start(cfg, &s);
    wsembed_config_free(cfg);
    if (rc != WSEMBED_OK) {
        printf("#   start_server: %s (%s)\n", wsembed_result_text(rc), wsembed_last_error_message());
        return NULL;
    }
    if (wsembed_server_port(s, port) != WSEMBED_OK) {
        wsembed_server_free(s);
        return NULL;
    }
    return s;
}

void stop_server(wsembed_server *s) {
    if (!s) return;
    wsembed_server_stop(s, 1000);
    wsembed_server_free(s);
}

uint64_t open_client(const wsembed_server *s, uint16_t port, const char *path, ws_client *c) {
    if (ws_connect(c, port, path, NULL, NULL, 0) != 0) return 0;
    ev_copy e;
    if (wait_event(s, WSEMBED_EVENT_OPEN, 0, 5000, &e) != 0) return 0;
    uint64_t id = e.conn;
    ev_copy_free(&e);
    return id;
}

int expect_message(ws_client *c, int opcode, const void *data, size_t len, int timeout_ms) {
    ws_frame f;
    if (ws_read_message(c, &f, timeout_ms) != 0) {
        printf("#   expect_message: no frame within %d ms\n", timeout_ms);
        return 0;
    }
    int ok = f.opcode == opcode && f.fin && f.len == len && (len == 0 || memcmp(f.payload, data, len) == 0);
    if (!ok)
        printf("#   expect_message: got opcode %d len %zu \"%.40s\", expected opcode %d len %zu\n", f.opcode, f.len,
               (const char *)f.payload, opcode, len);
    ws_frame_free(&f);
    return ok;
}

int expect_close(ws_client *c, uint16_t code, const char *reason, int timeout_ms) {
    ws_frame f;
    if (ws_read_message(c, &f, timeout_ms) != 0) {
        printf("#   expect_close: no frame within %d ms\n", timeout_ms);
        return 0;
    }
    int ok = f.opcode == WS_CLOSE && f.len >= 2;
    uint16_t got = ok ? (uint16_t)((f.payload[0] << 8) | f.payload[1]) : 0;
    ok = ok && got == code;
    if (ok && reason) ok = f.len - 2 == strlen(reason) && memcmp(f.payload + 2, reason, f.len - 2) == 0;
    if (!ok)
        printf("#   expect_close: got opcode %d code %u reason \"%.*s\", expected close %u \"%s\"\n", f.opcode,
               (unsigned)got, f.len > 2 ? (int)(f.len - 2) : 0, f.len > 2 ? (const char *)f.payload + 2 : "",
               (unsigned)code, reason ? reason : "(any)");
    ws_frame_free(&f);
    return ok;
}

int run_tests(const char *program, const test_case *tests, size_t count, int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : NULL;
    /* A watchdog: every wait has its own deadline, this only catches a hang inside the library. */
    size_t selected = 0;
    for (size_t i = 0; i < count; i++)
        if (!filter || strstr(tests[i].name, filter)) selected++;
    printf("# %s: wsembed %s\n1..%zu\n", program, wsembed_version(), selected);
    fflush(stdout);
    int passed = 0, failed = 0, n = 0;
    for (size_t i = 0; i < count; i++) {
        if (filter && !strstr(tests[i].name, filter)) continue;
        test_failed = 0;
        int64_t t0 = ws_now_ms();
        tests[i].fn();
        n++;
        printf("%s %d - %s (%lld ms)\n", test_failed ? "not ok" : "ok", n, tests[i].name,
               (long long)(ws_now_ms() - t0));
        fflush(stdout);
        if (test_failed) failed++;
        else passed++;
    }
    printf("# %s: %ld checks\n%d passed, %d failed\n", program, test_checks, passed, failed);
    fflush(stdout);
    return failed == 0 && passed > 0 ? 0 : 1;
}
