#define _DEFAULT_SOURCE
/*
 * overload_test: what peers and hosts can do to a C host that keeps every default, SIGPIPE's
 * included. A library must never let a peer kill, hang or bloat its host.
 */
#include <poll.h>
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

/* AddressSanitizer keeps freed memory in a quarantine (256 MB by default): RSS bounds allow it. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZER_SLACK_KIB (512L * 1024)
#else
#define SANITIZER_SLACK_KIB 0L
#endif

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

/* The process's resident set size in KiB (the server runs in this process). */
static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    fclose(f);
    return kib;
}

typedef struct echo_host {
    wsembed_server *server;
    atomic_int stop;
    int broadcast; /* echo as a broadcast to everyone instead of back to the sender */
    atomic_long messages, refused;
} echo_host;

/* The echo server's host side: every message goes back (or to everyone); refusals dropped. */
static void *echo_host_thread(void *arg) {
    echo_host *h = arg;
    wsembed_event evs[256];
    while (!atomic_load(&h->stop)) {
        size_t n = 0;
        if (wsembed_server_poll(h->server, evs, 256, 20, &n) != WSEMBED_OK) break;
        for (size_t i = 0; i < n; i++) {
            const wsembed_event *e = &evs[i];
            if (e->kind != WSEMBED_EVENT_TEXT && e->kind != WSEMBED_EVENT_BINARY) continue;
            uint32_t kind = e->kind == WSEMBED_EVENT_TEXT ? WSEMBED_TEXT : WSEMBED_BINARY;
            wsembed_result rc = h->broadcast ? wsembed_server_broadcast(h->server, kind, e->data, e->len, 0)
                                             : wsembed_server_send(h->server, e->conn, kind, e->data, e->len);
            atomic_fetch_add(rc == WSEMBED_OK ? &h->messages : &h->refused, 1);
        }
    }
    return NULL;
}

/* One client floods empty text messages and never reads: the queue is bounded by what the
 * frames really cost, not by their 2 payload bytes (before: 2.9 GB at a 64 MiB cap). */
static void test_tiny_message_flood_is_bounded_in_memory(void) {
    uint16_t port = 0;
    /* A small cap, so the flood reaches it whatever the kernel's socket buffers absorb. */
    const char *opts[] = {"max_buffered_bytes", "1048576", NULL};
    echo_host h = {0};
    pthread_t th;
    int started = 0;
    ws_client c = {.fd = -1};
    h.server = start_server(opts, &port);
    REQUIRE(h.server != NULL);
    REQUIRE(pthread_create(&th, NULL, echo_host_thread, &h) == 0);
    started = 1;
    REQUIRE(ws_connect(&c, port, "/", NULL, NULL, 0) == 0);
    {
        int small = 4096; /* the client never reads: keep what its kernel holds small */
        setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    }
    long before = rss_kib(), peak = before;
    /* 6-byte masked empty frames, 64 KiB at a time, for 2 s or until the server pushes back. */
    uint8_t burst[6 * 10922];
    for (size_t i = 0; i < sizeof burst; i += 6) {
        burst[i] = 0x81; burst[i + 1] = 0x80;
        burst[i + 2] = burst[i + 3] = burst[i + 4] = burst[i + 5] = 0;
    }
    int64_t end = ws_now_ms() + 2000;
    long sent = 0;
    while (ws_now_ms() < end) {
        struct pollfd p = {.fd = c.fd, .events = POLLOUT};
        if (poll(&p, 1, 50) == 1 && ws_send_raw(&c, burst, sizeof burst) == 0) sent += sizeof burst / 6;
        long now = rss_kib();
        if (now > peak) peak = now;
    }
    printf("#     %ld empty messages sent, %ld echoed, %ld refused; RSS %ld -> peak %ld KiB\n", sent,
           atomic_load(&h.messages), atomic_load(&h.refused), before, peak);
    CHECK(atomic_load(&h.refused) > 0); /* the cap was reached */
    /* 1 MiB of queue, 64 MiB of events at most, the client's data in kernel buffers: bounded. */
    CHECK(peak - before < 160 * 1024 + SANITIZER_SLACK_KIB);
    wsembed_stats st;
    CHECK_RC(wsembed_server_stats(h.server, &st), WSEMBED_OK);
    CHECK(st.queued_bytes <= 1048576 + 64 * 1024);
out:
    ws_close(&c);
    if (started) {
        atomic_store(&h.stop, 1);
        pthread_join(th, NULL);
    }
    stop_server(h.server);
}

typedef struct flood {
    wsembed_server *server;
    atomic_int stop;
    atomic_long ok, refused;
} flood;

static void *broadcast_flood(void *arg) {
    flood *f = arg;
    uint8_t msg[64];
    memset(msg, 'f', sizeof msg);
    while (!atomic_load(&f->stop))
        atomic_fetch_add(wsembed_server_broadcast(f->server, WSEMBED_TEXT, msg, sizeof msg, 0) == WSEMBED_OK ? &f->ok
                                                                                                         : &f->refused,
                         1);
    return NULL;
}

/* Two host threads broadcast as fast as they can to 4 readers: the readers get data in every
 * 100 ms window (the loop is never starved) and memory stays bounded (before: nothing for
 * 2.3 s, 1 GB). */
static void test_host_broadcast_flood_keeps_io_going(void) {
    uint16_t port = 0;
    const char *opts[] = {"max_queued_command_bytes", "8388608", NULL};
    flood f = {0};
    pthread_t t[2];
    int threads = 0;
    enum { READERS = 4 };
    ws_client c[READERS];
    for (int i = 0; i < READERS; i++) c[i].fd = -1;
    f.server = start_server(opts, &port);
    REQUIRE(f.server != NULL);
    for (int i = 0; i < READERS; i++) REQUIRE(open_client(f.server, port, "/", &c[i]) != 0);
    long before = rss_kib(), peak = before;
    for (; threads < 2; threads++) REQUIRE(pthread_create(&t[threads], NULL, broadcast_flood, &f) == 0);
    int windows = 0, starved = 0;
    uint8_t buf[65536];
    for (int64_t end = ws_now_ms() + 2000; ws_now_ms() < end; windows++) {
        int64_t window_end = ws_now_ms() + 100;
        int got[READERS] = {0};
        while (ws_now_ms() < window_end) {
            struct pollfd p[READERS];
            for (int i = 0; i < READERS; i++) p[i] = (struct pollfd){.fd = c[i].fd, .events = POLLIN};
            if (poll(p, READERS, 10) <= 0) continue;
            for (int i = 0; i < READERS; i++)
                if (p[i].revents & POLLIN && recv(c[i].fd, buf, sizeof buf, MSG_DONTWAIT) > 0) got[i] = 1;
        }
        for (int i = 0; i < READERS; i++) starved += !got[i];
        long now = rss_kib();
        if (now > peak) peak = now;
    }
    atomic_store(&f.stop, 1);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    threads = 0;
    printf("#     %ld broadcasts taken, %ld refused (WOULD_BLOCK); %d of %d reader-windows empty; RSS %ld -> peak %ld KiB\n",
           atomic_load(&f.ok), atomic_load(&f.refused), starved, windows * READERS, before, peak);
    CHECK(starved == 0);
    CHECK(atomic_load(&f.refused) > 0); /* the host outran the loop and was told so */
    CHECK(peak - before < 200 * 1024 + SANITIZER_SLACK_KIB);
    wsembed_stats st;
    CHECK_RC(wsembed_server_stats(f.server, &st), WSEMBED_OK);
    CHECK(st.dropped_commands == (uint64_t)atomic_load(&f.refused));
out:
    atomic_store(&f.stop, 1);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < READERS; i++) ws_close(&c[i]);
    stop_server(f.server);
}

typedef struct readers {
    int *fds;
    int count;
    atomic_int stop;
} readers;

/* Reads and discards everything on every socket. */
static void *drain_readers(void *arg) {
    readers *r = arg;
    struct pollfd *p = calloc((size_t)r->count, sizeof *p);
    uint8_t buf[65536];
    while (p && !atomic_load(&r->stop)) {
        for (int i = 0; i < r->count; i++) p[i] = (struct pollfd){.fd = r->fds[i], .events = POLLIN};
        if (poll(p, (nfds_t)r->count, 20) <= 0) continue;
        for (int i = 0; i < r->count; i++)
            if (p[i].revents & POLLIN) while (recv(p[i].fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {}
    }
    free(p);
    return NULL;
}

typedef struct flooder {
    ws_client *client;
    atomic_int *stop;
} flooder;

/* Sends 64-byte text messages as fast as the socket takes them. */
static void *flood_messages(void *arg) {
    flooder *f = arg;
    uint8_t frames[70 * 64];
    uint8_t payload[64];
    memset(payload, 'm', sizeof payload);
    for (int i = 0; i < 64; i++) {
        uint8_t *fr = frames + i * 70;
        fr[0] = 0x81; fr[1] = 0x80 | 64; fr[2] = fr[3] = fr[4] = fr[5] = 0;
        memcpy(fr + 6, payload, 64);
    }
    while (!atomic_load(f->stop))
        if (ws_send_raw(f->client, frames, sizeof frames) != 0) break;
    return NULL;
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* Two clients flood messages that the host broadcasts to 200 readers; meanwhile new clients
 * keep connecting: each handshake completes quickly (before: up to 2.8 s). */
static void test_handshakes_complete_under_a_broadcast_flood(void) {
    uint16_t port = 0;
    echo_host h = {.broadcast = 1};
    pthread_t th, tr, tf[2];
    int host_started = 0, readers_started = 0, flooders = 0;
    enum { READERS = 200, SAMPLES = 40 };
    ws_client c[READERS], fl[2] = {{.fd = -1}, {.fd = -1}};
    int fds[READERS];
    atomic_int stop_flood = 0;
    readers r = {.fds = fds, .count = READERS};
    flooder fa[2] = {{&fl[0], &stop_flood}, {&fl[1], &stop_flood}};
    for (int i = 0; i < READERS; i++) c[i].fd = -1;
    h.server = start_server(NULL, &port);
    REQUIRE(h.server != NULL);
    REQUIRE(pthread_create(&th, NULL, echo_host_thread, &h) == 0);
    host_started = 1;
    for (int i = 0; i < READERS; i++) {
        REQUIRE(ws_connect(&c[i], port, "/", NULL, NULL, 0) == 0);
        fds[i] = c[i].fd;
    }
    REQUIRE(pthread_create(&tr, NULL, drain_readers, &r) == 0);
    readers_started = 1;
    for (int i = 0; i < 2; i++) REQUIRE(ws_connect(&fl[i], port, "/", NULL, NULL, 0) == 0);
    for (; flooders < 2; flooders++) REQUIRE(pthread_create(&tf[flooders], NULL, flood_messages, &fa[flooders]) == 0);
    /* Let the flood build up, then time handshakes. */
    {
        int64_t until = ws_now_ms() + 300;
        while (ws_now_ms() < until) usleep(10000);
    }
    long ms[SAMPLES];
    int done = 0;
    for (; done < SAMPLES; done++) {
        ws_client n = {.fd = -1};
        int64_t t0 = ws_now_ms();
        int rc = ws_connect(&n, port, "/", NULL, NULL, 0);
        ms[done] = (long)(ws_now_ms() - t0);
        ws_close(&n);
        if (rc != 0) break;
    }
    CHECK(done == SAMPLES);
    long rss = rss_kib();
    atomic_store(&stop_flood, 1);
    for (int i = 0; i < 2; i++) ws_close(&fl[i]); /* unblocks a flooder stuck in send */
    for (int i = 0; i < flooders; i++) pthread_join(tf[i], NULL);
    flooders = 0;
    if (done > 0) {
        qsort(ms, (size_t)done, sizeof ms[0], cmp_long);
        long p50 = ms[done / 2], p99 = ms[(done * 99) / 100 < done ? (done * 99) / 100 : done - 1];
        printf("#     %d handshakes under the flood: p50 %ld ms, p99 %ld ms, max %ld ms; %ld broadcasts; RSS %ld KiB\n",
               done, p50, p99, ms[done - 1], atomic_load(&h.messages), rss);
        CHECK(atomic_load(&h.messages) > 1000); /* the flood was real */
        /* The target is 100 ms (see the closing note of the overload issue for measured figures);
         * the flooders, readers and host share this process's 2 cores with the loop, so the
         * bound here only catches starvation (before: up to 2.8 s). */
        CHECK(p99 < 600);
    }
out:
    atomic_store(&stop_flood, 1);
    for (int i = 0; i < 2; i++) ws_close(&fl[i]);
    for (int i = 0; i < flooders; i++) pthread_join(tf[i], NULL);
    if (readers_started) {
        atomic_store(&r.stop, 1);
        pthread_join(tr, NULL);
    }
    if (host_started) {
        atomic_store(&h.stop, 1);
        pthread_join(th, NULL);
    }
    for (int i = 0; i < READERS; i++) ws_close(&c[i]);
    stop_server(h.server);
}

int main(int argc, char **argv) {
    alarm(600); /* a watchdog against a hang inside the library; every wait has its own deadline */
    static const test_case tests[] = {
        {"reader_churn_under_broadcast_keeps_host_alive", test_reader_churn_under_broadcast_keeps_host_alive},
        {"tiny_message_flood_is_bounded_in_memory", test_tiny_message_flood_is_bounded_in_memory},
        {"host_broadcast_flood_keeps_io_going", test_host_broadcast_flood_keeps_io_going},
        {"handshakes_complete_under_a_broadcast_flood", test_handshakes_complete_under_a_broadcast_flood},
    };
    return run_tests("overload_test", tests, sizeof tests / sizeof tests[0], argc, argv);
}
