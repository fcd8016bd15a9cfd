#define _DEFAULT_SOURCE
/*
 * overload_test: what peers and hosts can do to a C host that keeps every default, SIGPIPE's
 * included. A library must never let a peer kill, hang or bloat its host.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_util.h"

#define T 5000

typedef struct pump {
    wsembed_server *server;
    atomic_int stop;
    atomic_long broadcasts;
    atomic_long opens;
} pump;

/* Broadcasts 2 KiB messages as fast as the engine takes them (pausing now and then). */
static void *broadcaster(void *arg) {
    pump *p = arg;
    uint8_t msg[2048];
    memset(msg, 'b', sizeof msg);
    while (!atomic_load(&p->stop)) {
        for (int i = 0; i < 32; i++)
            if (wsembed_server_broadcast(p->server, WSEMBED_BINARY, msg, sizeof msg, 0) == WSEMBED_OK)
                atomic_fetch_add(&p->broadcasts, 1);
        usleep(500);
    }
    return NULL;
}

/* Takes every event so the host never lags. */
static void *poller(void *arg) {
    pump *p = arg;
    wsembed_event evs[64];
    while (!atomic_load(&p->stop)) {
        size_t n = 0;
        if (wsembed_server_poll(p->server, evs, 64, 50, &n) != WSEMBED_OK) break;
        for (size_t i = 0; i < n; i++)
            if (evs[i].kind == WSEMBED_EVENT_OPEN) atomic_fetch_add(&p->opens, 1);
    }
    return NULL;
}

/* FIN, then RST: the server's socket sits in CLOSE_WAIT when the reset arrives, so the
 * kernel records EPIPE and the server's next write to it fails with EPIPE, which raises
 * SIGPIPE unless the write passed MSG_NOSIGNAL. */
static void abort_client(ws_client *c) {
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    shutdown(c->fd, SHUT_WR);
    usleep(200);
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    ws_close(c);
}

/* Readers come and go during a broadcast stream, with the default SIGPIPE disposition. */
static void test_reader_churn_under_broadcast_keeps_host_alive(void) {
    signal(SIGPIPE, SIG_DFL);
    uint16_t port = 0;
    pump p = {0};
    pthread_t tb, tp;
    int started = 0;
    enum { READERS = 40, CHURNS = 300 };
    ws_client c[READERS];
    for (int i = 0; i < READERS; i++) c[i].fd = -1;
    p.server = start_server(NULL, &port);
    REQUIRE(p.server != NULL);
    REQUIRE(pthread_create(&tp, NULL, poller, &p) == 0);
    REQUIRE(pthread_create(&tb, NULL, broadcaster, &p) == 0);
    started = 1;
    for (int i = 0; i < READERS; i++) REQUIRE(ws_connect(&c[i], port, "/", NULL, NULL, 0) == 0);
    int received = 0;
    for (int k = 0; k < CHURNS; k++) {
        int i = k % READERS;
        ws_frame f;
        /* Read one message, so the server is mid-stream to this socket, then vanish. */
        if (ws_read_frame(&c[i], &f, T) == 0) {
            received++;
            ws_frame_free(&f);
        }
        if (k % 4 == 3) ws_close(&c[i]);
        else abort_client(&c[i]);
        REQUIRE(ws_connect(&c[i], port, "/", NULL, NULL, 0) == 0);
    }
    CHECK(received >= CHURNS * 9 / 10);
    /* Still serving: a fresh reader gets the stream. */
    {
        ws_client fresh = {.fd = -1};
        ws_frame f = {0};
        REQUIRE(ws_connect(&fresh, port, "/", NULL, NULL, 0) == 0);
        CHECK(ws_read_frame(&fresh, &f, T) == 0 && f.opcode == WS_BINARY && f.len == 2048);
        if (f.payload) ws_frame_free(&f);
        ws_close(&fresh);
    }
    CHECK(atomic_load(&p.broadcasts) > 0);
out:
    if (started) {
        atomic_store(&p.stop, 1);
        pthread_join(tb, NULL);
        pthread_join(tp, NULL);
    }
    for (int i = 0; i < READERS; i++) ws_close(&c[i]);
    stop_server(p.server);
}

int main(int argc, char **argv) {
    alarm(600); /* a watchdog against a hang inside the library; every wait has its own deadline */
    static const test_case tests[] = {
        {"reader_churn_under_broadcast_keeps_host_alive", test_reader_churn_under_broadcast_keeps_host_alive},
    };
    return run_tests("overload_test", tests, sizeof tests / sizeof tests[0], argc, argv);
}
