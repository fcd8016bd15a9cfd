/*
 * autobahn_client: the standard Autobahn|Testsuite client driver on wsembed's client
 * connections. Reads the case count from BASE/getCaseCount, echoes every message of each
 * BASE/runCase?case=i&agent=AGENT (text as text, binary as binary) until the connection
 * ends, then asks for BASE/updateReports?agent=AGENT.
 *
 *   autobahn_client BASE_URL AGENT        e.g. autobahn_client ws://127.0.0.1:9001 wsembed
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsembed.h"

static int fail(const char *what, wsembed_result rc) {
    fprintf(stderr, "autobahn_client: %s: %s (%s)\n", what, wsembed_result_text(rc), wsembed_last_error_message());
    return 1;
}

/* Runs one connection to `url` until it ends. Echoes messages when `echo`; copies the first
 * text message into `first` (cap bytes) when not NULL. Returns 0 when it opened and ended. */
static int run(wsembed_server *engine, const char *url, int echo, char *first, size_t cap) {
    uint64_t conn = 0;
    wsembed_client_options *options = NULL;
    wsembed_result rc = wsembed_client_options_new(&options);
    /* Offer permessage-deflate (cases 12.* and 13.* need it; the others ignore it). */
    if (rc == WSEMBED_OK) rc = wsembed_client_options_set(options, "compression", "1");
    if (rc == WSEMBED_OK) rc = wsembed_server_connect(engine, url, options, &conn);
    wsembed_client_options_free(options);
    if (rc != WSEMBED_OK) return fail(url, rc);
    wsembed_event events[64];
    int opened = 0;
    for (;;) {
        size_t n = 0;
        rc = wsembed_server_poll(engine, events, 64, 30000, &n);
        if (rc != WSEMBED_OK) return fail("poll", rc);
        if (n == 0) {
            fprintf(stderr, "autobahn_client: %s: no event for 30 s\n", url);
            wsembed_server_terminate(engine, conn);
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            const wsembed_event *ev = &events[i];
            if (ev->conn != conn) continue;
            switch (ev->kind) {
            case WSEMBED_EVENT_OPEN: opened = 1; break;
            case WSEMBED_EVENT_TEXT:
            case WSEMBED_EVENT_BINARY:
                if (first && ev->kind == WSEMBED_EVENT_TEXT && first[0] == '\0') {
                    size_t len = ev->len < cap - 1 ? ev->len : cap - 1;
                    memcpy(first, ev->data, len);
                    first[len] = '\0';
                }
                if (echo) {
                    /* The connection may have closed meanwhile: then the echo is moot. */
                    wsembed_server_send(engine, conn, ev->kind == WSEMBED_EVENT_TEXT ? WSEMBED_TEXT : WSEMBED_BINARY,
                                        ev->data, ev->len);
                }
                break;
            case WSEMBED_EVENT_CLOSE: return opened ? 0 : 1;
            case WSEMBED_EVENT_FAILED:
                fprintf(stderr, "autobahn_client: %s: failed: %.*s\n", url, (int)ev->len, (const char *)ev->data);
                return 1;
            default: break;
            }
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s BASE_URL AGENT\n", argv[0]);
        return 2;
    }
    const char *base = argv[1], *agent = argv[2];
    wsembed_config *config = NULL;
    wsembed_result rc = wsembed_config_new(&config);
    if (rc == WSEMBED_OK) rc = wsembed_config_set(config, "listen", "false");
    /* Cases 9.* send messages of up to 16 MiB. */
    if (rc == WSEMBED_OK) rc = wsembed_config_set_int(config, "max_message_size", 64 << 20);
    if (rc == WSEMBED_OK) rc = wsembed_config_set_int(config, "max_frame_size", 64 << 20);
    wsembed_server *engine = NULL;
    if (rc == WSEMBED_OK) rc = wsembed_server_start(config, &engine);
    wsembed_config_free(config);
    if (rc != WSEMBED_OK) return fail("start", rc);

    char url[2048], count_text[64] = "";
    snprintf(url, sizeof url, "%s/getCaseCount", base);
    run(engine, url, 0, count_text, sizeof count_text);
    int count = atoi(count_text);
    if (count <= 0) {
        fprintf(stderr, "autobahn_client: no case count from %s\n", url);
        wsembed_server_free(engine);
        return 1;
    }
    for (int i = 1; i <= count; i++) {
        snprintf(url, sizeof url, "%s/runCase?case=%d&agent=%s", base, i, agent);
        run(engine, url, 1, NULL, 0);
    }
    snprintf(url, sizeof url, "%s/updateReports?agent=%s", base, agent);
    int rc_reports = run(engine, url, 0, NULL, 0);
    wsembed_server_stop(engine, 1000);
    wsembed_server_free(engine);
    printf("autobahn_client: ran %d cases\n", count);
    return rc_reports;
}
