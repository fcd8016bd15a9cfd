/*
 * echo.c: built against an *installed* wsembed with pkg-config only (see run.sh): starts a
 * server on a free port, echoes what one client (tests/c/ws_client.c, copied next to it) sends,
 * and prints "echo ok: <message>" on success (exit 0).
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <wsembed.h>

#include "ws_client.h"

static void *echo_loop(void *arg) {
    wsembed_server *server = arg;
    wsembed_event events[16];
    size_t n = 0;
    while (wsembed_server_poll(server, events, 16, -1, &n) == WSEMBED_OK)
        for (size_t i = 0; i < n; i++)
            if (events[i].kind == WSEMBED_EVENT_TEXT)
                wsembed_server_send(server, events[i].conn, WSEMBED_TEXT, events[i].data, events[i].len);
    return NULL; /* WSEMBED_ERR_STOPPED: stopped and drained */
}

int main(void) {
    const char message[] = "hello through the installed C library";
    wsembed_config *config = NULL;
    wsembed_server *server = NULL;
    if (wsembed_config_new(&config) != WSEMBED_OK || wsembed_config_set_int(config, "port", 0) != WSEMBED_OK ||
        wsembed_server_start(config, &server) != WSEMBED_OK) {
        fprintf(stderr, "echo: %s\n", wsembed_last_error_message());
        return 1;
    }
    wsembed_config_free(config);
    uint16_t port = 0;
    wsembed_server_port(server, &port);
    pthread_t thread;
    pthread_create(&thread, NULL, echo_loop, server);

    int ok = 0;
    ws_client client = {.fd = -1};
    ws_frame frame = {0};
    if (ws_connect(&client, port, "/", NULL, NULL, 0) == 0 &&
        ws_send_frame(&client, WS_TEXT, message, strlen(message)) == 0 &&
        ws_read_message(&client, &frame, 5000) == 0)
        ok = frame.opcode == WS_TEXT && frame.len == strlen(message) && memcmp(frame.payload, message, frame.len) == 0;
    if (ok) printf("echo ok: %s (wsembed %s)\n", (const char *)frame.payload, wsembed_version());
    else fprintf(stderr, "echo: no echo from the server on port %u\n", (unsigned)port);
    ws_frame_free(&frame);
    ws_close(&client);

    wsembed_server_stop(server, 1000);
    pthread_join(thread, NULL);
    wsembed_server_free(server);
    return ok ? 0 : 1;
}
