/*
 * echo_server: echoes every message to its sender (text as text, binary as binary), or with
 * --broadcast sends each message to every connected client.
 *
 *   echo_server [--port N] [--broadcast] [--deflate shared|dedicated] [--redis URL]
 *               [--inline] [--threads N]
 *
 * --deflate: permessage-deflate (option `compression`); --redis: broadcasts reach the clients
 * of every echo_server on that Redis (option `redis_url`); --inline: no loop thread, the
 * polling thread runs the engine (option `loop_thread` = 0); --threads: loops on N cores.
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

/* Command-line flags that take a value and the option each one sets. */
static const struct {
    const char *flag, *option;
} VALUE_FLAGS[] = {
    {"--port", "port"}, {"--deflate", "compression"}, {"--redis", "redis_url"}, {"--threads", "threads"},
};

int main(int argc, char **argv) {
    int broadcast = 0;
    raise_fd_limit();
    wsembed_config *config = NULL;
    wsembed_result rc = wsembed_config_new(&config);
    if (rc != WSEMBED_OK) return fail("config", rc);
    rc = wsembed_config_set_int(config, "max_message_size", 16 * 1024 * 1024);
    for (int i = 1; i < argc && rc == WSEMBED_OK; i++) {
        size_t f = 0;
        while (f < sizeof VALUE_FLAGS / sizeof VALUE_FLAGS[0] && strcmp(argv[i], VALUE_FLAGS[f].flag) != 0) f++;
        if (f < sizeof VALUE_FLAGS / sizeof VALUE_FLAGS[0] && i + 1 < argc) {
            /* The engine validates the value (a bad port, mode or URL is reported below). */
            rc = wsembed_config_set(config, VALUE_FLAGS[f].option, argv[++i]);
        } else if (strcmp(argv[i], "--broadcast") == 0) {
            broadcast = 1;
        } else if (strcmp(argv[i], "--inline") == 0) {
            rc = wsembed_config_set(config, "loop_thread", "0");
        } else {
            fprintf(stderr,
                    "usage: %s [--port N] [--broadcast] [--deflate shared|dedicated] [--redis URL] [--inline] "
                    "[--threads N]\n",
                    argv[0]);
            wsembed_config_free(config);
            return 2;
        }
    }
    if (rc != WSEMBED_OK) {
        fail("options", rc);
        wsembed_config_free(config);
        return 2;
    }

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
