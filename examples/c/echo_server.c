/*
 * echo_server: echoes every message to its sender (text as text, binary as binary), or with
 * --broadcast sends each message to every connected client.
 *
 *   echo_server [--port N] [--broadcast]
 *
 * Prints "listening on ws://127.0.0.1:PORT" once it accepts connections. Stops on SIGINT/SIGTERM.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>

#include "wsembed.h"

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static int fail(const char *what, wsembed_result rc) {
    fprintf(stderr, "echo_server: %s: %s (%s)\n", what, wsembed_result_text(rc), wsembed_last_error_message());
    return 1;
}

/* One descriptor per client: allow as many as the hard limit permits (the soft limit is often 1024). */
static void raise_fd_limit(void) {
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
}

int main(int argc, char **argv) {
    long port = 0;
    int broadcast = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            char *end = NULL;
            port = strtol(argv[++i], &end, 10);
            if (*end != '\0' || port < 0 || port > 65535) {
                fprintf(stderr, "echo_server: bad port %s\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--broadcast") == 0) {
            broadcast = 1;
        } else {
            fprintf(stderr, "usage: %s [--port N] [--broadcast]\n", argv[0]);
            return 2;
        }
    }

    raise_fd_limit();
    wsembed_config *config = NULL;
    wsembed_result rc = wsembed_config_new(&config);
    if (rc != WSEMBED_OK) return fail("config", rc);
    rc = wsembed_config_set_int(config, "port", port);
    if (rc == WSEMBED_OK) rc = wsembed_config_set_int(config, "max_message_size", 16 * 1024 * 1024);
    if (rc != WSEMBED_OK) return fail("config", rc);

    wsembed_server *server = NULL;
    rc = wsembed_server_start(config, &server);
    wsembed_config_free(config);
    if (rc != WSEMBED_OK) return fail("start", rc);

    uint16_t bound = 0;
    wsembed_server_port(server, &bound);
    printf("listening on ws://127.0.0.1:%u\n", (unsigned)bound);
    fflush(stdout);

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    wsembed_event events[256];
    while (!stop_requested) {
        size_t count = 0;
        rc = wsembed_server_poll(server, events, 256, 200, &count);
        if (rc != WSEMBED_OK) break;
        for (size_t i = 0; i < count; i++) {
            const wsembed_event *ev = &events[i];
            if (ev->kind != WSEMBED_EVENT_TEXT && ev->kind != WSEMBED_EVENT_BINARY) continue;
            uint32_t kind = ev->kind == WSEMBED_EVENT_TEXT ? WSEMBED_TEXT : WSEMBED_BINARY;
            if (broadcast) {
                rc = wsembed_server_broadcast(server, kind, ev->data, ev->len, 0);
            } else {
                rc = wsembed_server_send(server, ev->conn, kind, ev->data, ev->len);
            }
            /* A peer that closed meanwhile is not an error for an echo server. */
            if (rc != WSEMBED_OK && rc != WSEMBED_ERR_NO_SUCH_CONNECTION && rc != WSEMBED_ERR_WOULD_BLOCK) {
                fail("send", rc);
            }
        }
    }
    wsembed_server_stop(server, 2000);
    wsembed_server_free(server);
    return 0;
}
