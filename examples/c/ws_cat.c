/*
 * ws_cat: a small websocat/wscat on wsembed's client connections. Each line of stdin is sent
 * as a text message; each message received is printed as one line on stdout (flushed);
 * connection changes (open, reconnecting, closed with the code, failed with the reason) go
 * to stderr. At the end of stdin the connection is closed with 1000.
 *
 *   ws_cat URL [--reconnect] [--ca FILE] [--header 'Name: value']... [--protocol P]...
 *
 * Exits 0 after a close, 1 after a final failure (refused, TLS verification, HTTP 4xx, or
 * reconnect attempts exhausted), 2 for bad arguments.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wsembed.h"

typedef struct input {
    wsembed_server *engine;
    uint64_t conn;
} input;

static void pause_ms(long ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Sends stdin line by line (held until open by `queue_while_connecting`), then closes. */
static void *read_stdin(void *arg) {
    input *in = arg;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        wsembed_result rc;
        /* A full queue pushes back on stdin instead of dropping lines. */
        while ((rc = wsembed_server_send(in->engine, in->conn, WSEMBED_TEXT, (const uint8_t *)line, (size_t)len)) ==
                   WSEMBED_ERR_WOULD_BLOCK ||
               rc == WSEMBED_ERR_NOT_OPEN)
            pause_ms(10);
        if (rc == WSEMBED_ERR_NO_SUCH_CONNECTION || rc == WSEMBED_ERR_STOPPED) break;
        if (rc != WSEMBED_OK)
            fprintf(stderr, "ws_cat: send: %s (%s)\n", wsembed_result_text(rc), wsembed_last_error_message());
    }
    free(line);
    /* End of input: a clean close once what was sent is out (NO_SUCH_CONNECTION if it ended). */
    while (wsembed_server_close(in->engine, in->conn, 1000, NULL) == WSEMBED_ERR_NOT_OPEN) pause_ms(10);
    return NULL;
}

static int usage(const char *argv0) {
    fprintf(stderr, "usage: %s URL [--reconnect] [--ca FILE] [--header 'Name: value'] [--protocol P]\n", argv0);
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') return usage(argv[0]);
    const char *url = argv[1];
    wsembed_client_options *options = NULL;
    wsembed_result rc = wsembed_client_options_new(&options);
    char protocols[1024] = "";
    int reconnect = 0;
    /* Lines typed before the connection opens wait for it. */
    if (rc == WSEMBED_OK) rc = wsembed_client_options_set(options, "queue_while_connecting", "1048576");
    for (int i = 2; i < argc && rc == WSEMBED_OK; i++) {
        if (strcmp(argv[i], "--reconnect") == 0) {
            reconnect = 1;
            rc = wsembed_client_options_set(options, "reconnect", "1");
        } else if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc) {
            rc = wsembed_client_options_set(options, "ca_file", argv[++i]);
        } else if (strcmp(argv[i], "--header") == 0 && i + 1 < argc) {
            rc = wsembed_client_options_set(options, "header", argv[++i]);
        } else if (strcmp(argv[i], "--protocol") == 0 && i + 1 < argc) {
            size_t used = strlen(protocols);
            snprintf(protocols + used, sizeof protocols - used, "%s%s", used ? "," : "", argv[++i]);
            rc = wsembed_client_options_set(options, "protocols", protocols);
        } else {
            wsembed_client_options_free(options);
            return usage(argv[0]);
        }
    }
    if (rc != WSEMBED_OK) {
        fprintf(stderr, "ws_cat: %s\n", wsembed_last_error_message());
        wsembed_client_options_free(options);
        return 2;
    }

    wsembed_config *config = NULL;
    wsembed_server *engine = NULL;
    rc = wsembed_config_new(&config);
    if (rc == WSEMBED_OK) rc = wsembed_config_set(config, "listen", "false");
    if (rc == WSEMBED_OK) rc = wsembed_server_start(config, &engine);
    wsembed_config_free(config);
    input in = {.engine = engine};
    if (rc == WSEMBED_OK) rc = wsembed_server_connect(engine, url, options, &in.conn);
    wsembed_client_options_free(options);
    if (rc != WSEMBED_OK) {
        fprintf(stderr, "ws_cat: %s: %s\n", url, wsembed_last_error_message());
        wsembed_server_free(engine);
        return 2;
    }
    pthread_t reader;
    pthread_create(&reader, NULL, read_stdin, &in);
    pthread_detach(reader); /* it may sit in getline when the connection ends */

    int status = -1;
    wsembed_event events[64];
    while (status < 0) {
        size_t n = 0;
        if (wsembed_server_poll(engine, events, 64, -1, &n) != WSEMBED_OK) break;
        for (size_t i = 0; i < n && status < 0; i++) {
            const wsembed_event *ev = &events[i];
            switch (ev->kind) {
            case WSEMBED_EVENT_OPEN:
                fprintf(stderr, "ws_cat: open%s%s\n", ev->protocol ? ", protocol " : "", ev->protocol ? ev->protocol : "");
                break;
            case WSEMBED_EVENT_TEXT:
            case WSEMBED_EVENT_BINARY:
                fwrite(ev->data, 1, ev->len, stdout);
                fputc('\n', stdout);
                fflush(stdout);
                break;
            case WSEMBED_EVENT_RECONNECTING:
                fprintf(stderr, "ws_cat: reconnecting in %u ms (attempt %u): %.*s\n", ev->delay_ms, ev->attempt,
                        (int)ev->len, (const char *)ev->data);
                break;
            case WSEMBED_EVENT_CLOSE:
                fprintf(stderr, "ws_cat: closed %u%s%.*s\n", ev->close_code, ev->len ? " " : "", (int)ev->len,
                        (const char *)ev->data);
                /* Without --reconnect the close is the end; with it, RECONNECTING or FAILED follows. */
                if (!reconnect) status = 0;
                break;
            case WSEMBED_EVENT_FAILED:
                fprintf(stderr, "ws_cat: failed: %.*s\n", (int)ev->len, (const char *)ev->data);
                status = ev->failure == WSEMBED_FAILURE_CLOSED_BY_HOST || ev->failure == WSEMBED_FAILURE_CLOSED ? 0 : 1;
                break;
            default: break;
            }
        }
    }
    wsembed_server_stop(engine, 1000);
    wsembed_server_free(engine);
    return status < 0 ? 0 : status;
}
