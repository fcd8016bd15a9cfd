/*
 * game_bots: N bots playing against examples/c/game_server, all of them client connections of
 * one wsembed engine (no listening socket). Each bot joins room i % ROOMS, sends an 8-byte
 * input (two little-endian float32 velocities) at 20 Hz, and counts the snapshots it gets.
 *
 *   game_bots URL [--bots N] [--rooms R] [--seconds S]     e.g. game_bots ws://127.0.0.1:9001
 *
 * Prints "bots N open M snapshots K (per bot per second X)" at the end; exits 1 if a bot failed.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wsembed.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: %s URL [--bots N] [--rooms R] [--seconds S]\n", argv[0]);
        return 2;
    }
    const char *base = argv[1];
    long bots = 100, rooms = 10;
    double seconds = 5;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--bots") == 0) bots = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--rooms") == 0) rooms = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--seconds") == 0) seconds = strtod(argv[i + 1], NULL);
    }
    if (bots < 1 || rooms < 1) return 2;

    wsembed_config *config = NULL;
    wsembed_server *engine = NULL;
    wsembed_result rc = wsembed_config_new(&config);
    if (rc == WSEMBED_OK) rc = wsembed_config_set(config, "listen", "false");
    if (rc == WSEMBED_OK) rc = wsembed_server_start(config, &engine);
    wsembed_config_free(config);
    if (rc != WSEMBED_OK) {
        fprintf(stderr, "game_bots: %s\n", wsembed_last_error_message());
        return 1;
    }
    uint64_t *ids = calloc((size_t)bots, sizeof *ids);
    int *open = calloc((size_t)bots, sizeof *open);
    for (long i = 0; i < bots; i++) {
        char url[512];
        snprintf(url, sizeof url, "%s/?room=%ld", base, i % rooms);
        if (wsembed_server_connect(engine, url, NULL, &ids[i]) != WSEMBED_OK) {
            fprintf(stderr, "game_bots: %s: %s\n", url, wsembed_last_error_message());
            return 1;
        }
    }
    long opened = 0, snapshots = 0, failed = 0;
    double start = now_s(), next_input = start;
    wsembed_event events[256];
    while (now_s() - start < seconds) {
        size_t n = 0;
        if (wsembed_server_poll(engine, events, 256, 10, &n) != WSEMBED_OK) break;
        for (size_t k = 0; k < n; k++) {
            const wsembed_event *ev = &events[k];
            /* Ids are opaque: find the bot by id (N is small). */
            long bot = -1;
            for (long i = 0; i < bots && bot < 0; i++) if (ids[i] == ev->conn) bot = i;
            if (bot < 0) continue;
            if (ev->kind == WSEMBED_EVENT_OPEN) { open[bot] = 1; opened++; }
            else if (ev->kind == WSEMBED_EVENT_BINARY) snapshots++;
            else if (ev->kind == WSEMBED_EVENT_CLOSE || ev->kind == WSEMBED_EVENT_FAILED) {
                if (open[bot]) opened--;
                open[bot] = 0;
                failed++;
                fprintf(stderr, "game_bots: bot %ld ended: %.*s\n", bot, (int)ev->len, (const char *)ev->data);
            }
        }
        if (now_s() >= next_input) {
            next_input += 0.05;  /* 20 Hz */
            for (long i = 0; i < bots; i++) {
                if (!open[i]) continue;
                float v[2] = {(float)cos((double)i + now_s()), (float)sin((double)i + now_s())};
                wsembed_server_send(engine, ids[i], WSEMBED_BINARY, (const uint8_t *)v, sizeof v);
            }
        }
    }
    double elapsed = now_s() - start;
    printf("bots %ld open %ld snapshots %ld (per bot per second %.1f)\n", bots, opened, snapshots,
           (double)snapshots / (double)bots / elapsed);
    wsembed_server_stop(engine, 1000);
    wsembed_server_free(engine);
    free(ids);
    free(open);
    return failed ? 1 : 0;
}
