/*
 * game_server: a fixed 60 Hz game loop on wsembed.
 *
 *   game_server [--port N] [--rooms R] [--ticks T] [--inline]
 *
 * --inline: host-driven mode (option loop_thread = 0): no engine thread; the tick's zero-timeout
 * poll does the engine's I/O on this thread, and the wait until the next tick is spent in
 * wsembed_server_service, so sockets are served between ticks too.
 *
 * Clients connect to ws://HOST:PORT/?room=K (K in 0..R-1, default 0) and send binary input
 * messages of 8 bytes: two little-endian float32 velocity components. Every tick the server
 *   1. drains input with a zero-timeout poll (never blocks the tick),
 *   2. moves every player,
 *   3. publishes one binary snapshot per room (rooms are wsembed topics) to the room's players:
 *        u32 tick | u64 server time (CLOCK_REALTIME, microseconds) | u32 player count |
 *        count * (u32 player id, f32 x, f32 y)            (all little-endian)
 * Every 300 ticks (5 s) it prints the tick-duration percentiles of those ticks, and at exit the
 * same over the whole run prefixed with "total", e.g.
 *   ticks 300 p50_us 41 p99_us 160 max_us 400 players 1000
 *   total ticks 1800 p50_us 40 p99_us 170 max_us 3400 players 1000
 * The tick covers input, simulation and handing the snapshots to wsembed; the writes to the
 * sockets happen on wsembed's loop thread (see the delivery latency in the benchmark).
 * A bad ?room= closes the connection with 1008.
 * Prints "listening on ws://127.0.0.1:PORT" once ready. Stops on SIGINT/SIGTERM or after T ticks.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wsembed.h"

#define TICK_NS (1000000000L / 60)
#define MAX_ROOMS 64
#define BATCH 512

typedef struct {
    uint64_t conn; /* 0: free slot */
    uint32_t id;
    uint32_t room;
    float x, y, vx, vy;
} player;

/* Open-addressing table of players keyed by connection id. */
typedef struct {
    uint8_t *data;
    size_t cap;
} room_buf;

typedef struct {
    player *slots;
    size_t capacity, count;
} player_table;

static volatile sig_atomic_t stop_requested = 0;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

static uint64_t now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static size_t slot_of(const player_table *t, uint64_t conn) {
    uint64_t h = conn * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (t->capacity - 1);
}

static player *find(player_table *t, uint64_t conn) {
    for (size_t i = slot_of(t, conn);; i = (i + 1) & (t->capacity - 1)) {
        if (t->slots[i].conn == conn) return &t->slots[i];
        if (t->slots[i].conn == 0) return NULL;
    }
}

static player *insert(player_table *t, uint64_t conn) {
    if ((t->count + 1) * 2 > t->capacity) {
        player_table bigger = {calloc(t->capacity * 2, sizeof(player)), t->capacity * 2, 0};
        if (!bigger.slots) return NULL;
        for (size_t i = 0; i < t->capacity; i++)
            if (t->slots[i].conn) *insert(&bigger, t->slots[i].conn) = t->slots[i];
        free(t->slots);
        *t = bigger;
    }
    size_t i = slot_of(t, conn);
    while (t->slots[i].conn) i = (i + 1) & (t->capacity - 1);
    t->count++;
    t->slots[i].conn = conn;
    return &t->slots[i];
}

static void erase(player_table *t, uint64_t conn) {
    player *p = find(t, conn);
    if (!p) return;
    size_t i = (size_t)(p - t->slots);
    t->slots[i].conn = 0;
    t->count--;
    /* Re-insert the rest of the cluster so lookups never stop early. */
    for (size_t j = (i + 1) & (t->capacity - 1); t->slots[j].conn; j = (j + 1) & (t->capacity - 1)) {
        player moved = t->slots[j];
        t->slots[j].conn = 0;
        t->count--;
        *insert(t, moved.conn) = moved;
    }
}

/* The value of the "room" query parameter (0 when absent), -1 when malformed. */
static long room_of(const char *path) {
    const char *q = strchr(path, '?');
    while (q) {
        q++;
        if (strncmp(q, "room=", 5) == 0) {
            char *end = NULL;
            long room = strtol(q + 5, &end, 10);
            return (end != q + 5 && (*end == '\0' || *end == '&')) ? room : -1;
        }
        q = strchr(q, '&');
    }
    return 0;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); } /* little-endian hosts */
static void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static void report(uint32_t *durations, size_t n, size_t players) {
    if (n == 0) return;
    qsort(durations, n, sizeof *durations, cmp_u32);
    printf("ticks %zu p50_us %u p99_us %u max_us %u players %zu\n", n, durations[n / 2],
           durations[(n * 99) / 100], durations[n - 1], players);
    fflush(stdout);
}

int main(int argc, char **argv) {
    long port = 0, rooms = 10, max_ticks = -1;
    int host_driven = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--rooms") == 0 && i + 1 < argc) rooms = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--ticks") == 0 && i + 1 < argc) max_ticks = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--inline") == 0) host_driven = 1;
        else {
            fprintf(stderr, "usage: %s [--port N] [--rooms R] [--ticks T] [--inline]\n", argv[0]);
            return 2;
        }
    }
    if (port < 0 || port > 65535 || rooms < 1 || rooms > MAX_ROOMS) {
        fprintf(stderr, "game_server: bad --port or --rooms (1..%d)\n", MAX_ROOMS);
        return 2;
    }

    wsembed_config *cfg = NULL;
    wsembed_server *server = NULL;
    wsembed_result rc = wsembed_config_new(&cfg);
    if (rc == WSEMBED_OK) rc = wsembed_config_set_int(cfg, "port", port);
    if (rc == WSEMBED_OK) rc = wsembed_config_set_int(cfg, "max_message_size", 1024);
    if (rc == WSEMBED_OK && host_driven) rc = wsembed_config_set(cfg, "loop_thread", "0");
    if (rc == WSEMBED_OK) rc = wsembed_server_start(cfg, &server);
    wsembed_config_free(cfg);
    if (rc != WSEMBED_OK) {
        fprintf(stderr, "game_server: %s\n", wsembed_last_error_message());
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    uint16_t bound = 0;
    wsembed_server_port(server, &bound);
    printf("listening on ws://127.0.0.1:%u\n", (unsigned)bound);
    fflush(stdout);

    char topics[MAX_ROOMS][16];
    for (long r = 0; r < rooms; r++) snprintf(topics[r], sizeof topics[r], "room-%ld", r);
    player_table players = {calloc(1024, sizeof(player)), 1024, 0};
    room_buf room_bufs[MAX_ROOMS] = {{0}};
    size_t room_len[MAX_ROOMS];
    uint32_t *durations = malloc(sizeof(uint32_t) * 300);
    uint32_t *all_durations = NULL; /* every tick, for the summary at exit */
    size_t all_count = 0, all_cap = 0;
    if (!players.slots || !durations) return 1;
    size_t measured = 0;
    uint32_t next_id = 1, tick = 0;
    wsembed_event events[BATCH];
    uint64_t next_tick = now_ns(CLOCK_MONOTONIC);

    while (!stop_requested && (max_ticks < 0 || tick < (uint32_t)max_ticks)) {
        uint64_t start = now_ns(CLOCK_MONOTONIC);
        /* 1. input */
        size_t n = 0;
        do {
            if (wsembed_server_poll(server, events, BATCH, 0, &n) != WSEMBED_OK) goto done;
            for (size_t i = 0; i < n; i++) {
                const wsembed_event *e = &events[i];
                if (e->kind == WSEMBED_EVENT_OPEN) {
                    long room = room_of(e->path);
                    if (room < 0 || room >= rooms) {
                        wsembed_server_close(server, e->conn, 1008, "no such room");
                        continue;
                    }
                    player *p = insert(&players, e->conn);
                    if (!p) continue;
                    *p = (player){e->conn, next_id++, (uint32_t)room, 0, 0, 0, 0};
                    wsembed_server_subscribe(server, e->conn, topics[room]);
                } else if (e->kind == WSEMBED_EVENT_BINARY && e->len == 8) {
                    player *p = find(&players, e->conn);
                    if (p) { memcpy(&p->vx, e->data, 4); memcpy(&p->vy, e->data + 4, 4); }
                } else if (e->kind == WSEMBED_EVENT_CLOSE) {
                    erase(&players, e->conn);
                }
            }
        } while (n == BATCH);
        /* 2. simulate and lay every player into its room's snapshot (one pass over the table) */
        uint64_t server_us = now_ns(CLOCK_REALTIME) / 1000;
        for (long r = 0; r < rooms; r++) room_len[r] = 16;
        for (size_t i = 0; i < players.capacity; i++) {
            player *p = &players.slots[i];
            if (!p->conn) continue;
            p->x += p->vx / 60.0f;
            p->y += p->vy / 60.0f;
            room_buf *b = &room_bufs[p->room];
            if (room_len[p->room] + 12 > b->cap) {
                size_t cap = b->cap ? b->cap * 2 : 16 + 12 * 128;
                uint8_t *grown = realloc(b->data, cap);
                if (!grown) continue;
                b->data = grown;
                b->cap = cap;
            }
            uint8_t *at = b->data + room_len[p->room];
            put_u32(at, p->id);
            memcpy(at + 4, &p->x, 4);
            memcpy(at + 8, &p->y, 4);
            room_len[p->room] += 12;
        }
        /* 3. one snapshot per room, published to the room's topic (encoded once, shared) */
        for (long r = 0; r < rooms; r++) {
            if (room_len[r] == 16) continue;
            uint8_t *snapshot = room_bufs[r].data;
            put_u32(snapshot, tick);
            put_u64(snapshot + 4, server_us);
            put_u32(snapshot + 12, (uint32_t)((room_len[r] - 16) / 12));
            wsembed_server_publish(server, topics[r], WSEMBED_BINARY, snapshot, room_len[r]);
        }
        tick++;
        uint32_t took = (uint32_t)((now_ns(CLOCK_MONOTONIC) - start) / 1000);
        durations[measured++] = took;
        if (all_count == all_cap) {
            all_cap = all_cap ? all_cap * 2 : 1024;
            uint32_t *grown = realloc(all_durations, all_cap * sizeof *grown);
            if (grown) all_durations = grown; else all_cap = all_count;
        }
        if (all_count < all_cap) all_durations[all_count++] = took;
        if (measured == 300) {
            report(durations, measured, players.count);
            measured = 0;
        }
        /* 4. sleep to the next tick boundary (skip ahead if we fell behind) */
        next_tick += TICK_NS;
        uint64_t now = now_ns(CLOCK_MONOTONIC);
        if (next_tick <= now) next_tick = now;
        /* Host-driven: serve the sockets until the tick is due (writes of this tick's
         * snapshots happen here); with the engine's own thread, just sleep. */
        while (host_driven && (now = now_ns(CLOCK_MONOTONIC)) + 200000 < next_tick) {
            if (wsembed_server_service(server, (int)((next_tick - now) / 1000000)) != WSEMBED_OK) goto done;
        }
        now = now_ns(CLOCK_MONOTONIC);
        if (next_tick > now) {
            struct timespec ts = {(time_t)((next_tick - now) / 1000000000ull), (long)((next_tick - now) % 1000000000ull)};
            nanosleep(&ts, NULL);
        }
    }
done:
    printf("total ");
    report(all_durations, all_count, players.count);
    wsembed_server_stop(server, 1000);
    wsembed_server_free(server);
    free(players.slots);
    for (long r = 0; r < rooms; r++) free(room_bufs[r].data);
    free(durations);
    free(all_durations);
    return 0;
}
