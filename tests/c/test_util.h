/*
 * test_util: a minimal test harness for the wsembed C API tests (TAP output plus a closing
 * "N passed, M failed" line), and helpers that copy events out of the server.
 */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wsembed.h"
#include "ws_client.h"

/* Set when a check in the current test failed. */
extern int test_failed;
extern long test_checks;

int check_impl(int ok, const char *expr, const char *file, int line);
int check_rc_impl(wsembed_result got, wsembed_result want, const char *expr, const char *file, int line);

/* CHECK records a failure and continues; REQUIRE jumps to the test's `out:` label. */
#define CHECK(cond) check_impl((cond) ? 1 : 0, #cond, __FILE__, __LINE__)
#define CHECK_RC(call, want) check_rc_impl((call), (want), #call, __FILE__, __LINE__)
#define REQUIRE(cond)                                                                                       \
    do {                                                                                                    \
        if (!CHECK(cond)) goto out;                                                                         \
    } while (0)
#define REQUIRE_RC(call, want)                                                                              \
    do {                                                                                                    \
        if (!CHECK_RC(call, want)) goto out;                                                                \
    } while (0)

/* A deep copy of a wsembed_event (the server's pointers die at the next poll). */
typedef struct ev_copy {
    uint32_t kind;
    uint64_t conn;
    uint16_t close_code;
    bool clean;
    uint8_t *data; /* NUL-terminated copy, or NULL when the event had NULL */
    size_t len;
    char *path, *peer, *protocol;
    size_t header_count;
    char **header_names, **header_values;
} ev_copy;

void ev_copy_from(ev_copy *dst, const wsembed_event *src);
void ev_copy_free(ev_copy *e);
/* Value of header `name` (case-insensitive) in an OPEN copy, or NULL. */
const char *ev_header(const ev_copy *e, const char *name);

/* Polls (capacity 1) until an event of `kind` for `conn` (0 = any conn) arrives, discarding
 * others, or until timeout_ms passes. Returns 0 and fills *out, or -1. */
int wait_event(const wsembed_server *s, uint32_t kind, uint64_t conn, int timeout_ms, ev_copy *out);

/* Starts a server with `opts` (NULL-terminated name/value pairs, may be NULL) on port 0. */
wsembed_server *start_server(const char *const *opts, uint16_t *port);
void stop_server(wsembed_server *s);

/* Connects a client to `path` and waits for its OPEN event; returns its connection id or 0. */
uint64_t open_client(const wsembed_server *s, uint16_t port, const char *path, ws_client *c);

/* Reads the next message from the client; checks opcode and payload. 1 if it matches. */
int expect_message(ws_client *c, int opcode, const void *data, size_t len, int timeout_ms);
/* Reads the next frame; expects a close frame with `code` (and `reason` if not NULL). */
int expect_close(ws_client *c, uint16_t code, const char *reason, int timeout_ms);



/* A test case and the runner shared by the test programs. */
typedef struct test_case {
    const char *name;
    void (*fn)(void);
} test_case;

/* Runs the tests (all, or those whose names contain argv[1]); prints TAP and a closing
 * "N passed, M failed" line; returns the process exit status. */
int run_tests(const char *program, const test_case *tests, size_t count, int argc, char **argv);
#endif
