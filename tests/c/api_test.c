/*
 * api_test: valid use of the wsembed C API, driven by the tiny C WebSocket client.
 *
 *   api_test [NAME-SUBSTRING]
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_util.h"

#define T 5000 /* default deadline for one wait, ms */

/* 1 if fd becomes readable within timeout_ms. */
static int fd_readable(int fd, int timeout_ms) {
    int64_t deadline = ws_now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - ws_now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, left > 0 ? (int)left : 0);
        if (r > 0) return (p.revents & POLLIN) != 0;
        if (r == 0 || left <= 0) return 0;
    }
}

static void test_version_and_result_text(void) {
    const char *v = wsembed_version();
    CHECK(v != NULL && v[0] != '\0');
    CHECK(v != NULL && strchr(v, '.') != NULL);
    const char *unknown = wsembed_result_text(WSEMBED_ERR_NOT_OPEN + 1);
    CHECK(unknown != NULL && strcmp(unknown, "unknown result code") == 0);
    CHECK(strcmp(wsembed_result_text(1000), "unknown result code") == 0);
    CHECK(strcmp(wsembed_result_text(UINT32_MAX), "unknown result code") == 0);
    const char *texts[WSEMBED_ERR_NOT_OPEN + 1];
    for (uint32_t code = 0; code <= WSEMBED_ERR_NOT_OPEN; code++) {
        texts[code] = wsembed_result_text(code);
        CHECK(texts[code] != NULL && texts[code][0] != '\0');
        CHECK(texts[code] != NULL && strcmp(texts[code], "unknown result code") != 0);
        for (uint32_t j = 0; j < code; j++) CHECK(strcmp(texts[j], texts[code]) != 0);
    }
    CHECK(strcmp(wsembed_result_text(WSEMBED_OK), "ok") == 0);
    /* Static: the same pointer every time. */
    CHECK(wsembed_result_text(WSEMBED_ERR_IO) == wsembed_result_text(WSEMBED_ERR_IO));
}

static void *fresh_thread_error(void *arg) {
    (void)arg;
    const char *m = wsembed_last_error_message();
    return (void *)(m != NULL && m[0] == '\0' ? (intptr_t)1 : (intptr_t)0);
}

static void *failing_thread(void *arg) {
    (void)arg;
    wsembed_config *cfg = NULL;
    wsembed_config_new(&cfg);
    wsembed_result rc = wsembed_config_set(cfg, "no_such_option_in_thread", "1");
    const char *m = wsembed_last_error_message();
    int ok = rc == WSEMBED_ERR_INVALID_ARGUMENT && strstr(m, "no_such_option_in_thread") != NULL;
    wsembed_config_free(cfg);
    return (void *)(intptr_t)ok;
}

static void test_last_error_is_per_thread(void) {
    pthread_t t;
    void *res = NULL;
    REQUIRE(pthread_create(&t, NULL, fresh_thread_error, NULL) == 0);
    pthread_join(t, &res);
    CHECK((intptr_t)res == 1); /* "" before any failure */

    wsembed_config *cfg = NULL;
    REQUIRE_RC(wsembed_config_new(&cfg), WSEMBED_OK);
    CHECK_RC(wsembed_config_set(cfg, "main_thread_option", "1"), WSEMBED_ERR_INVALID_ARGUMENT);
    REQUIRE(pthread_create(&t, NULL, failing_thread, NULL) == 0);
    pthread_join(t, &res);
    CHECK((intptr_t)res == 1);
    /* The other thread's failure did not replace ours. */
    CHECK(strstr(wsembed_last_error_message(), "main_thread_option") != NULL);
    /* A success does not clear it either (documented: valid until the next failing call). */
    CHECK_RC(wsembed_config_set(cfg, "port", "1"), WSEMBED_OK);
    CHECK(strstr(wsembed_last_error_message(), "main_thread_option") != NULL);
    wsembed_config_free(cfg);
out:;
}

static void test_config_options(void) {
    wsembed_config *cfg = NULL;
    REQUIRE_RC(wsembed_config_new(&cfg), WSEMBED_OK);
    REQUIRE(cfg != NULL);
    static const char *const good[][2] = {
        {"host", "127.0.0.1"},        {"host", "0.0.0.0"},           {"port", "0"},
        {"port", "65535"},            {"port", " 8080 "},            {"max_message_size", "1024"},
        {"max_frame_size", "1024"},   {"max_connections", "10"},     {"handshake_timeout_ms", "500"},
        {"max_header_bytes", "4096"}, {"ping_interval_ms", "0"},     {"ping_interval_ms", "1000"},
        {"pong_timeout_ms", "1000"},  {"close_timeout_ms", "1000"},  {"max_buffered_bytes", "65536"},
        {"backpressure", "block"},    {"backpressure", "close"},     {"static_dir", ""},
        {"static_dir", "/tmp"},       {"max_static_file_bytes", "0"}, {"subprotocols", "chat, json"},
        {"subprotocols", ""},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (!CHECK_RC(wsembed_config_set(cfg, good[i][0], good[i][1]), WSEMBED_OK))
            printf("#     option %s = \"%s\"\n", good[i][0], good[i][1]);
    }
    static const char *const bad[][2] = {
        {"nope", "1"},
        {"", "1"},
        {"PORT", "80"},
        {"port", "70000"},
        {"port", "-1"},
        {"port", "abc"},
        {"port", ""},
        {"port", "12x"},
        {"max_message_size", "0"},
        {"max_message_size", "-5"},
        {"max_frame_size", "0"},
        {"max_connections", "0"},
        {"handshake_timeout_ms", "0"},
        {"pong_timeout_ms", "0"},
        {"close_timeout_ms", "0"},
        {"max_buffered_bytes", "0"},
        {"max_message_size", "99999999999999999999999"},
        {"backpressure", "maybe"},
        {"backpressure", ""},
        {"host", ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (!CHECK_RC(wsembed_config_set(cfg, bad[i][0], bad[i][1]), WSEMBED_ERR_INVALID_ARGUMENT))
            printf("#     option %s = \"%s\"\n", bad[i][0], bad[i][1]);
    }
    /* Names and values must be UTF-8. */
    CHECK_RC(wsembed_config_set(cfg, "po\xffrt", "1"), WSEMBED_ERR_INVALID_ARGUMENT);
    CHECK_RC(wsembed_config_set(cfg, "host", "\xc0\xaf"), WSEMBED_ERR_INVALID_ARGUMENT);

    CHECK_RC(wsembed_config_set_int(cfg, "port", 9000), WSEMBED_OK);
    CHECK_RC(wsembed_config_set_int(cfg, "max_message_size", 1 << 20), WSEMBED_OK);
    CHECK_RC(wsembed_config_set_int(cfg, "ping_interval_ms", 0), WSEMBED_OK);
    CHECK_RC(wsembed_config_set_int(cfg, "port", -1), WSEMBED_ERR_INVALID_ARGUMENT);
    CHECK_RC(wsembed_config_set_int(cfg, "port", 65536), WSEMBED_ERR_INVALID_ARGUMENT);
    CHECK_RC(wsembed_config_set_int(cfg, "max_message_size", -1), WSEMBED_ERR_INVALID_ARGUMENT);
    CHECK_RC(wsembed_config_set_int(cfg, "max_message_size", INT64_MIN), WSEMBED_ERR_INVALID_ARGUMENT);
    CHECK_RC(wsembed_config_set_int(cfg, "max_message_size", 0), WSEMBED_ERR_INVALID_ARGUMENT);
    CHECK_RC(wsembed_config_set_int(cfg, "unknown_thing", 1), WSEMBED_ERR_INVALID_ARGUMENT);
    CHECK(strstr(wsembed_last_error_message(), "unknown_thing") != NULL);
    /* A numeric option given a string option's name is rejected (backpressure expects words). */
    CHECK_RC(wsembed_config_set_int(cfg, "backpressure", 1), WSEMBED_ERR_INVALID_ARGUMENT);
    wsembed_config_free(cfg);
out:;
}

static void test_start_and_port(void) {
    wsembed_server *a = NULL, *b = NULL, *c = NULL;
    wsembed_config *cfg = NULL;
    uint16_t pa = 0, pc = 0;
    /* NULL config: every default, any free port. */
    REQUIRE_RC(wsembed_server_start(NULL, &a), WSEMBED_OK);
    REQUIRE(a != NULL);
    REQUIRE_RC(wsembed_server_port(a, &pa), WSEMBED_OK);
    CHECK(pa != 0);

    /* The config may be freed right after start (it is copied). */
    REQUIRE_RC(wsembed_config_new(&cfg), WSEMBED_OK);
    REQUIRE_RC(wsembed_config_set_int(cfg, "port", 0), WSEMBED_OK);
    REQUIRE_RC(wsembed_server_start(cfg, &c), WSEMBED_OK);
    wsembed_config_free(cfg);
    cfg = NULL;
    REQUIRE_RC(wsembed_server_port(c, &pc), WSEMBED_OK);
    CHECK(pc != 0 && pc != pa);

    /* The port in use: IO error, *out untouched. */
    REQUIRE_RC(wsembed_config_new(&cfg), WSEMBED_OK);
    REQUIRE_RC(wsembed_config_set_int(cfg, "port", pa), WSEMBED_OK);
    static char sentinel;
    b = (wsembed_server *)(void *)&sentinel;
    CHECK_RC(wsembed_server_start(cfg, &b), WSEMBED_ERR_IO);
    CHECK(b == (wsembed_server *)(void *)&sentinel);
    b = NULL;

    /* A static_dir that does not exist is rejected at start. */
    REQUIRE_RC(wsembed_config_set_int(cfg, "port", 0), WSEMBED_OK);
    REQUIRE_RC(wsembed_config_set(cfg, "static_dir", "/nonexistent/wsembed/dir"), WSEMBED_OK);
    CHECK_RC(wsembed_server_start(cfg, &b), WSEMBED_ERR_INVALID_ARGUMENT);
    CHECK(b == NULL);
    REQUIRE_RC(wsembed_config_set(cfg, "static_dir", ""), WSEMBED_OK);
    /* An unresolvable host. */
    REQUIRE_RC(wsembed_config_set(cfg, "host", "no such host.invalid"), WSEMBED_OK);
    wsembed_result rc = wsembed_server_start(cfg, &b);
    CHECK(rc == WSEMBED_ERR_INVALID_ARGUMENT || rc == WSEMBED_ERR_IO);
    CHECK(b == NULL);
out:
    wsembed_config_free(cfg);
    stop_server(a);
    stop_server(c);
}

static void test_event_fd_and_open_event(void) {
    uint16_t port = 0;
    const char *opts[] = {"subprotocols", "chat, json", NULL};
    wsembed_server *s = start_server(opts, &port);
    ws_client c = {.fd = -1}, d = {.fd = -1};
    ev_copy e = {0};
    REQUIRE(s != NULL);
    int fd = -1;
    REQUIRE_RC(wsembed_server_event_fd(s, &fd), WSEMBED_OK);
    CHECK(fd >= 0);
    int fd2 = -2;
    CHECK_RC(wsembed_server_event_fd(s, &fd2), WSEMBED_OK);
    CHECK(fd2 == fd);
    /* No event yet: not readable. */
    CHECK(!fd_readable(fd, 0));

    char resp[2048];
    REQUIRE(ws_connect(&c, port, "/chat/room%201?x=1&y=two", "X-Test: yes\r\nSec-WebSocket-Protocol: json, xml\r\n",
                       resp, sizeof resp) == 0);
    CHECK(strstr(resp, "Sec-WebSocket-Protocol: json") != NULL || strstr(resp, "sec-websocket-protocol: json") != NULL);
    CHECK(fd_readable(fd, T));

    wsembed_event evs[4];
    size_t n = 99;
    REQUIRE_RC(wsembed_server_poll(s, evs, 4, 0, &n), WSEMBED_OK);
    REQUIRE(n == 1);
    ev_copy_from(&e, &evs[0]);
    CHECK(e.kind == WSEMBED_EVENT_OPEN);
    CHECK(e.conn != 0);
    CHECK(e.data == NULL && e.len == 0);
    CHECK(e.path != NULL && strcmp(e.path, "/chat/room%201?x=1&y=two") == 0);
    /* peer is "127.0.0.1:<the client's port>" */
    struct sockaddr_in local;
    socklen_t ll = sizeof local;
    REQUIRE(getsockname(c.fd, (struct sockaddr *)&local, &ll) == 0);
    char want_peer[64];
    snprintf(want_peer, sizeof want_peer, "127.0.0.1:%u", (unsigned)ntohs(local.sin_port));
    CHECK(e.peer != NULL && strcmp(e.peer, want_peer) == 0);
    if (e.peer && strcmp(e.peer, want_peer) != 0) printf("#     peer %s, expected %s\n", e.peer, want_peer);
    CHECK(e.protocol != NULL && strcmp(e.protocol, "json") == 0);
    char want_host[64];
    snprintf(want_host, sizeof want_host, "127.0.0.1:%u", (unsigned)port);
    CHECK(e.header_count >= 6);
    CHECK(ev_header(&e, "Host") != NULL && strcmp(ev_header(&e, "Host"), want_host) == 0);
    CHECK(ev_header(&e, "X-Test") != NULL && strcmp(ev_header(&e, "X-Test"), "yes") == 0);
    CHECK(ev_header(&e, "Sec-WebSocket-Key") != NULL);
    /* Headers in the order received: Host was sent first. */
    CHECK(e.header_count > 0 && strcasecmp(e.header_names[0], "Host") == 0);
    /* Drained: no longer readable. */
    CHECK(!fd_readable(fd, 0));
    ev_copy_free(&e);

    /* A second client offering no subprotocol: protocol is NULL. */
    REQUIRE(ws_connect(&d, port, "/", NULL, resp, sizeof resp) == 0);
    CHECK(strstr(resp, "Sec-WebSocket-Protocol") == NULL && strstr(resp, "sec-websocket-protocol") == NULL);
    REQUIRE(wait_event(s, WSEMBED_EVENT_OPEN, 0, T, &e) == 0);
    CHECK(e.protocol == NULL);
    CHECK(e.path != NULL && strcmp(e.path, "/") == 0);
    CHECK(e.conn != evs[0].conn);
    ev_copy_free(&e);

    /* Poll timeout: OK with count 0 after about the timeout. */
    int64_t t0 = ws_now_ms();
    n = 99;
    CHECK_RC(wsembed_server_poll(s, evs, 4, 100, &n), WSEMBED_OK);
    CHECK(n == 0);
    CHECK(ws_now_ms() - t0 >= 90);
    n = 99;
    CHECK_RC(wsembed_server_poll(s, evs, 4, 0, &n), WSEMBED_OK);
    CHECK(n == 0);
out:
    ev_copy_free(&e);
    ws_close(&c);
    ws_close(&d);
    stop_server(s);
}

static void test_echo_text_and_binary(void) {
    uint16_t port = 0;
    wsembed_server *s = start_server(NULL, &port);
    ws_client c = {.fd = -1};
    ev_copy e = {0};
    uint8_t *big = NULL;
    REQUIRE(s != NULL);
    uint64_t id = open_client(s, port, "/echo", &c);
    REQUIRE(id != 0);

    const char *text = "h\xc3\xa9llo, w\xc3\xb6rld \xf0\x9f\x98\x80";
    REQUIRE(ws_send_frame(&c, WS_TEXT, text, strlen(text)) == 0);
    REQUIRE(wait_event(s, WSEMBED_EVENT_TEXT, id, T, &e) == 0);
    CHECK(e.len == strlen(text) && memcmp(e.data, text, e.len) == 0);
    CHECK(e.path == NULL && e.peer == NULL && e.header_count == 0 && e.protocol == NULL);
    CHECK_RC(wsembed_server_send(s, id, WSEMBED_TEXT, e.data, e.len), WSEMBED_OK);
    CHECK(expect_message(&c, WS_TEXT, text, strlen(text), T));
    ev_copy_free(&e);

    const uint8_t bin[] = {0, 1, 2, 0xff, 0xfe, 0x80, 0, 'x'};
    REQUIRE(ws_send_frame(&c, WS_BINARY, bin, sizeof bin) == 0);
    REQUIRE(wait_event(s, WSEMBED_EVENT_BINARY, id, T, &e) == 0);
    CHECK(e.len == sizeof bin && memcmp(e.data, bin, sizeof bin) == 0);
    CHECK_RC(wsembed_server_send(s, id, WSEMBED_BINARY, e.data, e.len), WSEMBED_OK);
    CHECK(expect_message(&c, WS_BINARY, bin, sizeof bin, T));
    ev_copy_free(&e);

    /* Empty messages, NULL data with len 0. */
    REQUIRE(ws_send_frame(&c, WS_TEXT, "", 0) == 0);
    REQUIRE(wait_event(s, WSEMBED_EVENT_TEXT, id, T, &e) == 0);
    CHECK(e.len == 0);
    ev_copy_free(&e);
    CHECK_RC(wsembed_server_send(s, id, WSEMBED_TEXT, NULL, 0), WSEMBED_OK);
    CHECK(expect_message(&c, WS_TEXT, "", 0, T));
    CHECK_RC(wsembed_server_send(s, id, WSEMBED_BINARY, NULL, 0), WSEMBED_OK);
    CHECK(expect_message(&c, WS_BINARY, "", 0, T));

    /* Large: 16-bit and 64-bit length forms both ways. */
    size_t sizes[] = {125, 126, 65535, 65536, 300000};
    big = malloc(300000);
    REQUIRE(big != NULL);
    for (size_t i = 0; i < 300000; i++) big[i] = (uint8_t)(i * 7 + 3);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        REQUIRE(ws_send_frame(&c, WS_BINARY, big, sizes[k]) == 0);
        REQUIRE(wait_event(s, WSEMBED_EVENT_BINARY, id, T, &e) == 0);
        CHECK(e.len == sizes[k] && memcmp(e.data, big, sizes[k]) == 0);
        CHECK_RC(wsembed_server_send(s, id, WSEMBED_BINARY, e.data, e.len), WSEMBED_OK);
        CHECK(expect_message(&c, WS_BINARY, big, sizes[k], T));
        ev_copy_free(&e);
    }

    /* A fragmented text message arrives whole. */
    const uint8_t frag1[] = {0x01, 0x83, 0, 0, 0, 0, 'a', 'b', 'c'};
    const uint8_t frag2[] = {0x80, 0x82, 0, 0, 0, 0, 'd', 'e'};
    REQUIRE(ws_send_raw(&c, frag1, sizeof frag1) == 0);
    REQUIRE(ws_send_raw(&c, frag2, sizeof frag2) == 0);
    REQUIRE(wait_event(s, WSEMBED_EVENT_TEXT, id, T, &e) == 0);
    CHECK(e.len == 5 && memcmp(e.data, "abcde", 5) == 0);
    ev_copy_free(&e);

    size_t amount = 12345;
    CHECK_RC(wsembed_server_buffered_amount(s, id, &amount), WSEMBED_OK);
    CHECK(amount < 12345);
out:
    free(big);
    ev_copy_free(&e);
    ws_close(&c);
    stop_server(s);
}

/* Expects that client `c` received nothing before `marker`, which the server sends now. */
static int nothing_before_marker(const wsembed_server *s, uint64_t id, ws_client *c) {
    static const char marker[] = "marker";
    if (wsembed_server_send(s, id, WSEMBED_TEXT, (const uint8_t *)marker, 6) != WSEMBED_OK) return 0;
    return expect_message(c, WS_TEXT, marker, 6, T);
}

static void test_broadcast_three_clients(void) {
    uint16_t port = 0;
    wsembed_server *s = start_server(NULL, &port);
    ws_client c[3] = {{.fd = -1}, {.fd = -1}, {.fd = -1}};
    uint64_t id[3] = {0};
    REQUIRE(s != NULL);
    for (int i = 0; i < 3; i++) REQUIRE(ws_connect(&c[i], port, "/b", NULL, NULL, 0) == 0);
    /* Collect the three OPEN events with a larger capacity. */
    int opens = 0;
    int64_t deadline = ws_now_ms() + T;
    while (opens < 3 && ws_now_ms() < deadline) {
        wsembed_event evs[8];
        size_t n = 0;
        REQUIRE_RC(wsembed_server_poll(s, evs, 8, 200, &n), WSEMBED_OK);
        REQUIRE(n <= 8);
        for (size_t i = 0; i < n; i++)
            if (evs[i].kind == WSEMBED_EVENT_OPEN && opens < 3) id[opens++] = evs[i].conn;
    }
    REQUIRE(opens == 3);
    CHECK(id[0] != id[1] && id[1] != id[2] && id[0] != id[2]);

    const char *msg = "to everyone";
    CHECK_RC(wsembed_server_broadcast(s, WSEMBED_TEXT, (const uint8_t *)msg, strlen(msg), 0), WSEMBED_OK);
    for (int i = 0; i < 3; i++) CHECK(expect_message(&c[i], WS_TEXT, msg, strlen(msg), T));
    const uint8_t bin[] = {9, 8, 7};
    CHECK_RC(wsembed_server_broadcast(s, WSEMBED_BINARY, bin, 3, 0), WSEMBED_OK);
    for (int i = 0; i < 3; i++) CHECK(expect_message(&c[i], WS_BINARY, bin, 3, T));

    /* except_conn skips exactly one. The connection id of c[1] is not known to be id[1] (the
     * OPEN order may differ from the connect order), so learn it by echo. */
    REQUIRE(ws_send_frame(&c[1], WS_TEXT, "who", 3) == 0);
    ev_copy e;
    REQUIRE(wait_event(s, WSEMBED_EVENT_TEXT, 0, T, &e) == 0);
    uint64_t id1 = e.conn;
    ev_copy_free(&e);
    const char *msg2 = "not you";
    CHECK_RC(wsembed_server_broadcast(s, WSEMBED_TEXT, (const uint8_t *)msg2, strlen(msg2), id1), WSEMBED_OK);
    CHECK(expect_message(&c[0], WS_TEXT, msg2, strlen(msg2), T));
    CHECK(expect_message(&c[2], WS_TEXT, msg2, strlen(msg2), T));
    CHECK(nothing_before_marker(s, id1, &c[1]));
    /* except_conn that does not exist: everyone gets it. */
    CHECK_RC(wsembed_server_broadcast(s, WSEMBED_TEXT, (const uint8_t *)"x", 1, 987654), WSEMBED_OK);
    for (int i = 0; i < 3; i++) CHECK(expect_message(&c[i], WS_TEXT, "x", 1, T));
out:
    for (int i = 0; i < 3; i++) ws_close(&c[i]);
    stop_server(s);
}

static void test_subscribe_publish_unsubscribe(void) {
    uint16_t port = 0;
    wsembed_server *s = start_server(NULL, &port);
    ws_client c[3] = {{.fd = -1}, {.fd = -1}, {.fd = -1}};
    uint64_t id[3] = {0};
    REQUIRE(s != NULL);
    for (int i = 0; i < 3; i++) REQUIRE((id[i] = open_client(s, port, "/ps", &c[i])) != 0);

    CHECK_RC(wsembed_server_subscribe(s, id[0], "news"), WSEMBED_OK);
    CHECK_RC(wsembed_server_subscribe(s, id[1], "news"), WSEMBED_OK);
    CHECK_RC(wsembed_server_subscribe(s, id[1], "news"), WSEMBED_OK); /* twice: harmless */
    CHECK_RC(wsembed_server_subscribe(s, id[2], "sport"), WSEMBED_OK);
    CHECK_RC(wsembed_server_subscribe(s, id[2], "n\xc3\xa9ws"), WSEMBED_OK); /* UTF-8 topic, distinct */

    const char *m1 = "headline";
    CHECK_RC(wsembed_server_publish(s, "news", WSEMBED_TEXT, (const uint8_t *)m1, strlen(m1)), WSEMBED_OK);
    CHECK(expect_message(&c[0], WS_TEXT, m1, strlen(m1), T));
    CHECK(expect_message(&c[1], WS_TEXT, m1, strlen(m1), T));
    CHECK(nothing_before_marker(s, id[1], &c[1])); /* subscribed twice, delivered once */
    CHECK(nothing_before_marker(s, id[2], &c[2]));

    const uint8_t score[] = {3, 0, 1};
    CHECK_RC(wsembed_server_publish(s, "sport", WSEMBED_BINARY, score, 3), WSEMBED_OK);
    CHECK(expect_message(&c[2], WS_BINARY, score, 3, T));
    CHECK(nothing_before_marker(s, id[0], &c[0]));

    CHECK_RC(wsembed_server_unsubscribe(s, id[0], "news"), WSEMBED_OK);
    CHECK_RC(wsembed_server_unsubscribe(s, id[0], "news"), WSEMBED_OK); /* not subscribed any more */
    CHECK_RC(wsembed_server_unsubscribe(s, id[0], "never-subscribed"), WSEMBED_OK);
    const char *m2 = "second";
    CHECK_RC(wsembed_server_publish(s, "news", WSEMBED_TEXT, (const uint8_t *)m2, strlen(m2)), WSEMBED_OK);
    CHECK(expect_message(&c[1], WS_TEXT, m2, strlen(m2), T));
    CHECK(nothing_before_marker(s, id[0], &c[0]));

    /* A topic nobody subscribed to, and the empty topic. */
    CHECK_RC(wsembed_server_publish(s, "nobody", WSEMBED_TEXT, (const uint8_t *)"z", 1), WSEMBED_OK);
    CHECK_RC(wsembed_server_publish(s, "", WSEMBED_TEXT, (const uint8_t *)"z", 1), WSEMBED_OK);

    /* A closed connection leaves its topics; the others still get the messages. */
    ws_close(&c[1]);
    ev_copy e;
    REQUIRE(wait_event(s, WSEMBED_EVENT_CLOSE, id[1], T, &e) == 0);
    ev_copy_free(&e);
    CHECK_RC(wsembed_server_subscribe(s, id[0], "news"), WSEMBED_OK);
    CHECK_RC(wsembed_server_publish(s, "news", WSEMBED_TEXT, (const uint8_t *)m2, strlen(m2)), WSEMBED_OK);
    CHECK(expect_message(&c[0], WS_TEXT, m2, strlen(m2), T));
out:
    for (int i = 0; i < 3; i++) ws_close(&c[i]);
    stop_server(s);
}

static void test_server_close_with_code_and_reason(void) {
    uint16_t port = 0;
    wsembed_server *s = start_server(NULL, &port);
    ws_client c = {.fd = -1};
    ev_copy e = {0};
    REQUIRE(s != NULL);
    uint64_t id = open_client(s, port, "/", &c);
    REQUIRE(id != 0);
    /* Something queued before the close still arrives before the close frame. */
    CHECK_RC(wsembed_server_send(s, id, WSEMBED_TEXT, (const uint8_t *)"last", 4), WSEMBED_OK);
    CHECK_RC(wsembed_server_close(s, id, 4001, "bye now"), WSEMBED_OK);
    /* Sends fail from now on. */
    CHECK_RC(wsembed_server_send(s, id, WSEMBED_TEXT, (const uint8_t *)"late", 4), WSEMBED_ERR_NO_SUCH_CONNECTION);
    CHECK_RC(wsembed_server_close(s, id, 1000, NULL), WSEMBED_ERR_NO_SUCH_CONNECTION);
    CHECK(expect_message(&c, WS_TEXT, "last", 4, T));
    CHECK(expect_close(&c, 4001, "bye now", T));
    /* Complete the handshake; the server then closes TCP. */
    CHECK(ws_send_close(&c, 4001, "bye now") == 0);
    CHECK(ws_wait_eof(&c, T) == 0);
    REQUIRE(wait_event(s, WSEMBED_EVENT_CLOSE, id, T, &e) == 0);
    CHECK(e.close_code == 4001);
    CHECK(e.clean);
    CHECK(e.len == 7 && e.data != NULL && memcmp(e.data, "bye now", 7) == 0);
    CHECK(e.path == NULL && e.peer == NULL && e.protocol == NULL && e.header_count == 0);
    ev_copy_free(&e);
    /* The closed id is gone. */
    CHECK_RC(wsembed_server_send(s, id, WSEMBED_TEXT, (const uint8_t *)"x", 1), WSEMBED_ERR_NO_SUCH_CONNECTION);
    size_t amount = 777;
    CHECK_RC(wsembed_server_buffered_amount(s, id, &amount), WSEMBED_ERR_NO_SUCH_CONNECTION);
    CHECK(amount == 777);

    /* A reason of exactly 123 bytes (multi-byte UTF-8) and close without reason. */
    char reason[124];
    memset(reason, 'r', 123);
    memcpy(reason, "\xc3\xa9", 2);
    reason[123] = '\0';
    ws_close(&c);
    uint64_t id2 = open_client(s, port, "/", &c);
    REQUIRE(id2 != 0);
    CHECK(id2 != id); /* ids are not reused at once */
    CHECK_RC(wsembed_server_close(s, id2, 1000, reason), WSEMBED_OK);
    CHECK(expect_close(&c, 1000, reason, T));
    ws_close(&c);
    REQUIRE(wait_event(s, WSEMBED_EVENT_CLOSE, id2, T, &e) == 0);
    ev_copy_free(&e);

    uint64_t id3 = open_client(s, port, "/", &c);
    REQUIRE(id3 != 0);
    CHECK_RC(wsembed_server_close(s, id3, 3000, NULL), WSEMBED_OK);
    CHECK(expect_close(&c, 3000, "", T));
    ws_close(&c);
    REQUIRE(wait_event(s, WSEMBED_EVENT_CLOSE, id3, T, &e) == 0);
    ev_copy_free(&e);
out:
    ev_copy_free(&e);
    ws_close(&c);
    stop_server(s);
}

static void test_client_close_events(void) {
    uint16_t port = 0;
    const char *opts[] = {"max_message_size", "1000", NULL};
    wsembed_server *s = start_server(opts, &port);
    ws_client c = {.fd = -1};
    ev_copy e = {0};
    REQUIRE(s != NULL);

    /* Client closes with a code and reason: the server echoes the code, clean close. */
    uint64_t id = open_client(s, port, "/", &c);
    REQUIRE(id != 0);
    REQUIRE(ws_send_close(&c, 1000, "done") == 0);
    CHECK(expect_close(&c, 1000, NULL, T));
    CHECK(ws_wait_eof(&c, T) == 0);
    REQUIRE(wait_event(s, WSEMBED_EVENT_CLOSE, id, T, &e) == 0);
    CHECK(e.close_code == 1000 && e.clean);
    CHECK(e.len == 4 && e.data && memcmp(e.data, "done", 4) == 0);
    ev_copy_free(&e);
    ws_close(&c);

    /* An empty close frame is reported as 1005. */
    id = open_client(s, port, "/", &c);
    REQUIRE(id != 0);
    REQUIRE(ws_send_close(&c, 0, NULL) == 0);
    ws_frame f;
    if (CHECK(ws_read_message(&c, &f, T) == 0)) {
        CHECK(f.opcode == WS_CLOSE);
        ws_frame_free(&f);
    }
    REQUIRE(wait_event(s, WSEMBED_EVENT_CLOSE, id, T, &e) == 0);
    CHECK(e.close_code == 1005 && e.clean);
    CHECK(e.len == 0);
    ev_copy_free(&e);
    ws_close(&c);

    /* TCP dropped without a close frame: 1006, not clean. */
    id = open_client(s, port, "/", &c);
    REQUIRE(id != 0);
    ws_close(&c);
    REQUIRE(wait_event(s, WSEMBED_EVENT_CLOSE, id, T, &e) == 0);
    CHECK(e.close_code == 1006 && !e.clean);
    ev_copy_free(&e);

    /* Too large a message: closed with 1009; invalid UTF-8 text: 1007. */
    id = open_client(s, port, "/", &c);
    REQUIRE(id != 0);
    char big[2000];
    memset(big, 'a', sizeof big);
    REQUIRE(ws_send_frame(&c, WS_TEXT, big, sizeof big) == 0);
    CHECK(expect_close(&c, 1009, NULL, T));
    REQUIRE(wait_event(s, WSEMBED_EVENT_CLOSE, id, T, &e) == 0);
    CHECK(e.close_code == 1009);
    ev_copy_free(&e);
    ws_close(&c);

    id = open_client(s, port, "/", &c);
    REQUIRE(id != 0);
    REQUIRE(ws_send_frame(&c, WS_TEXT, "\xff\xfe", 2) == 0);
    CHECK(expect_close(&c, 1007, NULL, T));
    REQUIRE(wait_event(s, WSEMBED_EVENT_CLOSE, id, T, &e) == 0);
    CHECK(e.close_code == 1007);
    ev_copy_free(&e);
    ws_close(&c);

    /* A client close with 1014 (a valid code, RFC 6455 registry) is echoed and reported. */
    id = open_client(s, port, "/", &c);
    REQUIRE(id != 0);
    REQUIRE(ws_send_close(&c, 1014, "bad gateway") == 0);
    CHECK(expect_close(&c, 1014, NULL, T));
    REQUIRE(wait_event(s, WSEMBED_EVENT_CLOSE, id, T, &e) == 0);
    CHECK(e.close_code == 1014 && e.clean);
    ev_copy_free(&e);
    ws_close(&c);

    /* An invalid close code from the client (1005 must not be sent) is a protocol error: 1002. */
    id = open_client(s, port, "/", &c);
    REQUIRE(id != 0);
    REQUIRE(ws_send_close(&c, 1005, "") == 0);
    CHECK(expect_close(&c, 1002, NULL, T));
    REQUIRE(wait_event(s, WSEMBED_EVENT_CLOSE, id, T, &e) == 0);
    CHECK(e.close_code == 1002 && !e.clean);
    ev_copy_free(&e);
    ws_close(&c);

    /* An unmasked client frame is a protocol error: 1002. */
    id = open_client(s, port, "/", &c);
    REQUIRE(id != 0);
    const uint8_t unmasked[] = {0x81, 0x02, 'h', 'i'};
    REQUIRE(ws_send_raw(&c, unmasked, sizeof unmasked) == 0);
    CHECK(expect_close(&c, 1002, NULL, T));
    REQUIRE(wait_event(s, WSEMBED_EVENT_CLOSE, id, T, &e) == 0);
    CHECK(e.close_code == 1002);
    ev_copy_free(&e);
out:
    ev_copy_free(&e);
    ws_close(&c);
    stop_server(s);
}

/* The client side of a stop: read the 1001, answer it, wait for EOF. */
struct stop_client {
    ws_client *c;
    int got_1001, got_eof;
};

static void *stop_client_thread(void *arg) {
    struct stop_client *sc = arg;
    sc->got_1001 = expect_close(sc->c, 1001, NULL, T);
    if (sc->got_1001) ws_send_close(sc->c, 1001, "");
    sc->got_eof = ws_wait_eof(sc->c, T) == 0;
    ws_close(sc->c); /* the server waits for our FIN before it forgets the connection */
    return NULL;
}

static void test_stop_and_after_stop(void) {
    uint16_t port = 0;
    wsembed_server *s = start_server(NULL, &port);
    ws_client c = {.fd = -1};
    REQUIRE(s != NULL);
    REQUIRE(ws_connect(&c, port, "/", NULL, NULL, 0) == 0);
    int fd = -1;
    REQUIRE_RC(wsembed_server_event_fd(s, &fd), WSEMBED_OK);
    REQUIRE(fd_readable(fd, T)); /* the OPEN is queued; do not take it yet */

    struct stop_client sc = {.c = &c};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, stop_client_thread, &sc) == 0);
    int64_t t0 = ws_now_ms();
    CHECK_RC(wsembed_server_stop(s, 3000), WSEMBED_OK);
    int64_t took = ws_now_ms() - t0;
    pthread_join(t, NULL);
    CHECK(sc.got_1001);
    CHECK(sc.got_eof);
    CHECK(took < 2500); /* the handshake completed; stop did not wait for the timeout */

    /* Everything is STOPPED now, except the port and the event fd. */
    const uint8_t d[] = "x";
    CHECK_RC(wsembed_server_stop(s, 0), WSEMBED_ERR_STOPPED);
    CHECK_RC(wsembed_server_send(s, 1, WSEMBED_TEXT, d, 1), WSEMBED_ERR_STOPPED);
    CHECK_RC(wsembed_server_broadcast(s, WSEMBED_TEXT, d, 1, 0), WSEMBED_ERR_STOPPED);
    CHECK_RC(wsembed_server_publish(s, "t", WSEMBED_TEXT, d, 1), WSEMBED_ERR_STOPPED);
    CHECK_RC(wsembed_server_subscribe(s, 1, "t"), WSEMBED_ERR_STOPPED);
    CHECK_RC(wsembed_server_unsubscribe(s, 1, "t"), WSEMBED_ERR_STOPPED);
    CHECK_RC(wsembed_server_close(s, 1, 1000, NULL), WSEMBED_ERR_STOPPED);
    size_t amount = 5;
    CHECK_RC(wsembed_server_buffered_amount(s, 1, &amount), WSEMBED_ERR_STOPPED);
    CHECK(amount == 5);
    uint16_t p = 0;
    CHECK_RC(wsembed_server_port(s, &p), WSEMBED_OK);
    CHECK(p == port);
    int fd2 = -1;
    CHECK_RC(wsembed_server_event_fd(s, &fd2), WSEMBED_OK);
    CHECK(fd2 == fd);

    /* Poll drains OPEN then CLOSE (1001), then STOPPED; the fd stays readable. */
    wsembed_event evs[1];
    size_t n = 0;
    ev_copy e;
    CHECK_RC(wsembed_server_poll(s, evs, 1, 1000, &n), WSEMBED_OK);
    CHECK(n == 1 && evs[0].kind == WSEMBED_EVENT_OPEN);
    n = 0;
    CHECK_RC(wsembed_server_poll(s, evs, 1, 1000, &n), WSEMBED_OK);
    if (CHECK(n == 1 && evs[0].kind == WSEMBED_EVENT_CLOSE)) {
        ev_copy_from(&e, &evs[0]);
        CHECK(e.close_code == 1001);
        CHECK(e.clean);
        ev_copy_free(&e);
    }
    CHECK(fd_readable(fd, 0));
    n = 42;
    t0 = ws_now_ms();
    CHECK_RC(wsembed_server_poll(s, evs, 1, -1, &n), WSEMBED_ERR_STOPPED); /* must not block */
    CHECK(n == 42);
    CHECK(ws_now_ms() - t0 < 1000);
    CHECK_RC(wsembed_server_poll(s, evs, 1, 0, &n), WSEMBED_ERR_STOPPED);
    CHECK(fd_readable(fd, 0));
    /* New connections are refused. */
    ws_client late = {.fd = -1};
    CHECK(ws_connect(&late, port, "/", NULL, NULL, 0) != 0);
    ws_close(&late);
out:
    ws_close(&c);
    wsembed_server_free(s);
}

static void test_stop_without_clients_and_free_without_stop(void) {
    uint16_t port = 0;
    wsembed_server *s = start_server(NULL, &port);
    ws_client c = {.fd = -1};
    REQUIRE(s != NULL);
    int64_t t0 = ws_now_ms();
    CHECK_RC(wsembed_server_stop(s, 5000), WSEMBED_OK);
    CHECK(ws_now_ms() - t0 < 1000);
    wsembed_event ev;
    size_t n = 0;
    CHECK_RC(wsembed_server_poll(s, &ev, 1, 0, &n), WSEMBED_ERR_STOPPED);
    wsembed_server_free(s);

    /* Free without stop, with a connected client and unpolled events: the client gets 1001. */
    s = start_server(NULL, &port);
    REQUIRE(s != NULL);
    REQUIRE(ws_connect(&c, port, "/", NULL, NULL, 0) == 0);
    int fd = -1;
    REQUIRE_RC(wsembed_server_event_fd(s, &fd), WSEMBED_OK);
    REQUIRE(fd_readable(fd, T));
    /* Keep a pointer from an event alive across free: free releases it (no leak, no crash). */
    REQUIRE_RC(wsembed_server_poll(s, &ev, 1, 0, &n), WSEMBED_OK);
    CHECK(n == 1 && ev.kind == WSEMBED_EVENT_OPEN && ev.path != NULL);
    t0 = ws_now_ms();
    wsembed_server_free(s);
    s = NULL;
    CHECK(ws_now_ms() - t0 < 3000); /* 1 s grace */
    CHECK(expect_close(&c, 1001, NULL, T));
out:
    ws_close(&c);
    stop_server(s);
}

static void test_several_servers(void) {
    enum { N = 3 };
    wsembed_server *s[N] = {0};
    uint16_t port[N] = {0};
    ws_client c[N] = {{.fd = -1}, {.fd = -1}, {.fd = -1}};
    uint64_t id[N] = {0};
    for (int i = 0; i < N; i++) REQUIRE((s[i] = start_server(NULL, &port[i])) != NULL);
    CHECK(port[0] != port[1] && port[1] != port[2] && port[0] != port[2]);
    for (int i = 0; i < N; i++) REQUIRE((id[i] = open_client(s[i], port[i], "/", &c[i])) != 0);
    /* Broadcast on server 0 reaches only its client. */
    CHECK_RC(wsembed_server_broadcast(s[0], WSEMBED_TEXT, (const uint8_t *)"s0", 2, 0), WSEMBED_OK);
    CHECK(expect_message(&c[0], WS_TEXT, "s0", 2, T));
    for (int i = 1; i < N; i++) CHECK(nothing_before_marker(s[i], id[i], &c[i]));
    /* Each echoes independently; events go to the right server. */
    for (int i = 0; i < N; i++) {
        char m[16];
        int len = snprintf(m, sizeof m, "srv%d", i);
        REQUIRE(ws_send_frame(&c[i], WS_TEXT, m, (size_t)len) == 0);
    }
    for (int i = 0; i < N; i++) {
        ev_copy e;
        char m[16];
        int len = snprintf(m, sizeof m, "srv%d", i);
        REQUIRE(wait_event(s[i], WSEMBED_EVENT_TEXT, 0, T, &e) == 0);
        CHECK(e.conn == id[i] && e.len == (size_t)len && memcmp(e.data, m, (size_t)len) == 0);
        CHECK_RC(wsembed_server_send(s[i], e.conn, WSEMBED_TEXT, e.data, e.len), WSEMBED_OK);
        CHECK(expect_message(&c[i], WS_TEXT, m, (size_t)len, T));
        ev_copy_free(&e);
    }
    /* Stopping one leaves the others running. */
    CHECK_RC(wsembed_server_stop(s[1], 500), WSEMBED_OK);
    CHECK(expect_close(&c[1], 1001, NULL, T));
    for (int i = 0; i < N; i += 2) {
        CHECK_RC(wsembed_server_send(s[i], id[i], WSEMBED_TEXT, (const uint8_t *)"alive", 5), WSEMBED_OK);
        CHECK(expect_message(&c[i], WS_TEXT, "alive", 5, T));
    }
    CHECK_RC(wsembed_server_send(s[1], id[1], WSEMBED_TEXT, (const uint8_t *)"dead", 4), WSEMBED_ERR_STOPPED);
out:
    for (int i = 0; i < N; i++) {
        ws_close(&c[i]);
        stop_server(s[i]);
    }
}

enum { SEND_THREADS = 8, SENDS_PER_THREAD = 250 };

struct sender {
    const wsembed_server *s;
    uint64_t conn;
    int index;
    int failures;
};

static void *sender_thread(void *arg) {
    struct sender *snd = arg;
    for (int i = 0; i < SENDS_PER_THREAD; i++) {
        char m[32];
        int len = snprintf(m, sizeof m, "%d:%d", snd->index, i);
        uint32_t kind = (i & 1) ? WSEMBED_BINARY : WSEMBED_TEXT;
        if (wsembed_server_send(snd->s, snd->conn, kind, (const uint8_t *)m, (size_t)len) != WSEMBED_OK)
            snd->failures++;
    }
    return NULL;
}

static void test_concurrent_sends_from_8_threads(void) {
    uint16_t port = 0;
    wsembed_server *s = start_server(NULL, &port);
    ws_client c = {.fd = -1};
    REQUIRE(s != NULL);
    uint64_t id = open_client(s, port, "/", &c);
    REQUIRE(id != 0);
    struct sender snd[SEND_THREADS];
    pthread_t t[SEND_THREADS];
    int started = 0;
    for (int i = 0; i < SEND_THREADS; i++) {
        snd[i] = (struct sender){.s = s, .conn = id, .index = i};
        if (pthread_create(&t[i], NULL, sender_thread, &snd[i]) == 0) started++;
    }
    CHECK(started == SEND_THREADS);
    /* Read while the senders run. */
    int next[SEND_THREADS] = {0};
    int received = 0, out_of_order = 0, bad = 0;
    int64_t deadline = ws_now_ms() + 20000;
    while (received < started * SENDS_PER_THREAD && ws_now_ms() < deadline) {
        ws_frame f;
        if (ws_read_message(&c, &f, (int)(deadline - ws_now_ms())) != 0) break;
        int th = -1, seq = -1;
        if ((f.opcode == WS_TEXT || f.opcode == WS_BINARY) && sscanf((const char *)f.payload, "%d:%d", &th, &seq) == 2 &&
            th >= 0 && th < SEND_THREADS && f.opcode == ((seq & 1) ? WS_BINARY : WS_TEXT)) {
            if (seq != next[th]) out_of_order++;
            next[th] = seq + 1;
            received++;
        } else {
            bad++;
        }
        ws_frame_free(&f);
    }
    for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
    int failures = 0;
    for (int i = 0; i < started; i++) failures += snd[i].failures;
    printf("#     received %d of %d messages\n", received, SEND_THREADS * SENDS_PER_THREAD);
    CHECK(failures == 0);
    CHECK(received == SEND_THREADS * SENDS_PER_THREAD);
    CHECK(out_of_order == 0); /* each thread's messages arrive in its order */
    CHECK(bad == 0);
    CHECK(nothing_before_marker(s, id, &c));
out:
    ws_close(&c);
    stop_server(s);
}

struct poller {
    const wsembed_server *s;
    int texts;
};

static void *poller_thread(void *arg) {
    struct poller *p = arg;
    int64_t deadline = ws_now_ms() + 3000;
    while (ws_now_ms() < deadline && p->texts < 50) {
        wsembed_event evs[4];
        size_t n = 0;
        if (wsembed_server_poll(p->s, evs, 4, 50, &n) != WSEMBED_OK) break;
        for (size_t i = 0; i < n; i++)
            if (evs[i].kind == WSEMBED_EVENT_TEXT) p->texts++;
    }
    return NULL;
}

static void test_poll_from_another_thread(void) {
    uint16_t port = 0;
    wsembed_server *s = start_server(NULL, &port);
    ws_client c = {.fd = -1};
    REQUIRE(s != NULL);
    REQUIRE(open_client(s, port, "/", &c) != 0);
    struct poller p = {.s = s};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, poller_thread, &p) == 0);
    for (int i = 0; i < 50; i++) ws_send_frame(&c, WS_TEXT, "m", 1);
    pthread_join(t, NULL);
    CHECK(p.texts == 50);
out:
    ws_close(&c);
    stop_server(s);
}

/* A blocking ws_connect on its own thread, while the test thread answers the handshake. */
struct connector {
    uint16_t port;
    const char *headers;
    ws_client c;
    int rc;
    char response[1024];
};

static void *connect_thread(void *arg) {
    struct connector *k = arg;
    k->rc = ws_connect(&k->c, k->port, "/lobby?t=1", k->headers, k->response, sizeof k->response);
    return NULL;
}

static void test_handshake_approval(void) {
    const char *opts[] = {"approve_handshakes", "1", NULL};
    uint16_t port = 0;
    wsembed_server *s = start_server(opts, &port);
    struct connector a = {.port = port, .headers = "Cookie: session=42\r\nSec-WebSocket-Protocol: chat, json\r\n", .c = {.fd = -1}};
    struct connector b = {.port = port, .headers = NULL, .c = {.fd = -1}};
    ev_copy e = {0}, opened = {0};
    pthread_t t;
    REQUIRE(s != NULL);
    REQUIRE(pthread_create(&t, NULL, connect_thread, &a) == 0);
    if (CHECK(wait_event(s, WSEMBED_EVENT_HANDSHAKE, 0, T, &e) == 0)) {
        CHECK(e.path && strcmp(e.path, "/lobby?t=1") == 0);
        CHECK(ev_header(&e, "cookie") && strcmp(ev_header(&e, "cookie"), "session=42") == 0);
        /* Not open yet: sends fail; the answer picks one offered subprotocol. */
        CHECK_RC(wsembed_server_send(s, e.conn, WSEMBED_TEXT, (const uint8_t *)"x", 1), WSEMBED_ERR_NO_SUCH_CONNECTION);
        CHECK_RC(wsembed_server_accept(s, e.conn, "json"), WSEMBED_OK);
        CHECK_RC(wsembed_server_accept(s, e.conn, NULL), WSEMBED_ERR_NO_SUCH_CONNECTION);
    }
    pthread_join(t, NULL);
    CHECK(a.rc == 0);
    CHECK(strstr(a.response, "Sec-WebSocket-Protocol: json\r\n") != NULL);
    if (CHECK(wait_event(s, WSEMBED_EVENT_OPEN, e.conn, T, &opened) == 0)) {
        CHECK(opened.protocol && strcmp(opened.protocol, "json") == 0);
        CHECK_RC(wsembed_server_send(s, e.conn, WSEMBED_TEXT, (const uint8_t *)"hi", 2), WSEMBED_OK);
        CHECK(expect_message(&a.c, WS_TEXT, "hi", 2, T));
    }
    ev_copy_free(&e);
    REQUIRE(pthread_create(&t, NULL, connect_thread, &b) == 0);
    if (CHECK(wait_event(s, WSEMBED_EVENT_HANDSHAKE, 0, T, &e) == 0)) {
        CHECK_RC(wsembed_server_reject(s, e.conn, 401, "bad token"), WSEMBED_OK);
    }
    pthread_join(t, NULL);
    CHECK(b.rc != 0);
    CHECK(strncmp(b.response, "HTTP/1.1 401", 12) == 0);
    wsembed_stats stats;
    if (CHECK_RC(wsembed_server_stats(s, &stats), WSEMBED_OK)) {
        CHECK(stats.handshakes_accepted == 1 && stats.handshakes_rejected == 1 && stats.open_connections == 1);
    }
out:
    ev_copy_free(&e);
    ev_copy_free(&opened);
    ws_close(&a.c);
    ws_close(&b.c);
    stop_server(s);
}

static void test_static_dir(void) {
    char dir[] = "/tmp/wsembed-static-XXXXXX";
    char file[sizeof dir + 32];
    wsembed_server *s = NULL;
    int made = mkdtemp(dir) != NULL;
    REQUIRE(made);
    snprintf(file, sizeof file, "%s/index.html", dir);
    FILE *f = fopen(file, "w");
    REQUIRE(f != NULL);
    fputs("<h1>hello</h1>\n", f);
    fclose(f);
    const char *opts[] = {"static_dir", dir, NULL};
    uint16_t port = 0;
    s = start_server(opts, &port);
    REQUIRE(s != NULL);
    static char resp[8192];
    CHECK(http_get(port, "/index.html", resp, sizeof resp, T) > 0);
    CHECK(strncmp(resp, "HTTP/1.1 200", 12) == 0);
    CHECK(strstr(resp, "<h1>hello</h1>") != NULL);
    CHECK(http_get(port, "/", resp, sizeof resp, T) > 0);
    CHECK(strncmp(resp, "HTTP/1.1 200", 12) == 0 && strstr(resp, "<h1>hello</h1>") != NULL);
    CHECK(http_get(port, "/missing.html", resp, sizeof resp, T) > 0);
    CHECK(strncmp(resp, "HTTP/1.1 404", 12) == 0);
    CHECK(http_get(port, "/../../../../etc/passwd", resp, sizeof resp, T) > 0);
    CHECK(strstr(resp, "root:") == NULL && strncmp(resp, "HTTP/1.1 200", 12) != 0);
    /* WebSocket still works on the same port. */
    ws_client c = {.fd = -1};
    CHECK(open_client(s, port, "/ws", &c) != 0);
    ws_close(&c);
    stop_server(s);
    s = NULL;

    /* Without static_dir, plain HTTP gets 426. */
    s = start_server(NULL, &port);
    REQUIRE(s != NULL);
    CHECK(http_get(port, "/index.html", resp, sizeof resp, T) > 0);
    CHECK(strncmp(resp, "HTTP/1.1 426", 12) == 0);
out:
    stop_server(s);
    if (made) {
        unlink(file);
        rmdir(dir);
    }
}

static void test_option_info(void) {
    size_t count = wsembed_config_option_count();
    CHECK(count > 20);
    wsembed_config *cfg = NULL;
    REQUIRE_RC(wsembed_config_new(&cfg), WSEMBED_OK);
    int saw_port = 0;
    for (size_t i = 0; i < count; i++) {
        wsembed_option_info info;
        REQUIRE_RC(wsembed_config_option_info(i, &info), WSEMBED_OK);
        CHECK(info.name && info.kind && info.default_value && info.doc && strlen(info.doc) > 10);
        /* Every default is accepted by the parser. */
        CHECK_RC(wsembed_config_set(cfg, info.name, info.default_value), WSEMBED_OK);
        if (strcmp(info.name, "port") == 0) saw_port = strcmp(info.kind, "integer") == 0 && strcmp(info.default_value, "0") == 0;
    }
    CHECK(saw_port);
    wsembed_option_info past;
    CHECK_RC(wsembed_config_option_info(count, &past), WSEMBED_ERR_INVALID_ARGUMENT);
    CHECK(WSEMBED_VERSION_MAJOR == 0 && WSEMBED_VERSION_MINOR >= 1);
out:
    wsembed_config_free(cfg);
}

/* set_user_data shows in later events; terminate reports 1006; pings come back as events. */
static void test_user_data_terminate_and_ping_events(void) {
    uint16_t port = 0;
    const char *opts[] = {"ping_events", "1", NULL};
    wsembed_server *s = start_server(opts, &port);
    ws_client c = {.fd = -1};
    int marker = 42;
    REQUIRE(s != NULL);
    uint64_t id = open_client(s, port, "/", &c);
    REQUIRE(id != 0);
    REQUIRE_RC(wsembed_server_set_user_data(s, id, &marker), WSEMBED_OK);
    REQUIRE(ws_send_frame(&c, WS_TEXT, "hi", 2) == 0);
    {
        wsembed_event ev;
        size_t n = 0;
        int64_t deadline = ws_now_ms() + T;
        int seen = 0;
        while (!seen && ws_now_ms() < deadline) {
            REQUIRE_RC(wsembed_server_poll(s, &ev, 1, 200, &n), WSEMBED_OK);
            if (n == 1 && ev.kind == WSEMBED_EVENT_TEXT) seen = ev.user_data == &marker;
        }
        CHECK(seen);
    }
    /* The client pings; the engine answers and reports it. */
    REQUIRE(ws_send_frame(&c, WS_PING, "p1", 2) == 0);
    {
        ws_frame f = {0};
        CHECK(ws_read_frame(&c, &f, T) == 0 && f.opcode == WS_PONG && f.len == 2 && memcmp(f.payload, "p1", 2) == 0);
        ws_frame_free(&f);
        ev_copy e;
        REQUIRE(wait_event(s, WSEMBED_EVENT_PING, id, T, &e) == 0);
        CHECK(e.len == 2 && memcmp(e.data, "p1", 2) == 0);
        ev_copy_free(&e);
    }
    /* The server pings; the client's pong comes back as PONG. */
    CHECK_RC(wsembed_server_ping(s, id, (const uint8_t *)"rtt", 3), WSEMBED_OK);
    {
        ws_frame f = {0};
        REQUIRE(ws_read_frame(&c, &f, T) == 0);
        CHECK(f.opcode == WS_PING && f.len == 3);
        REQUIRE(ws_send_frame(&c, WS_PONG, f.payload, f.len) == 0);
        ws_frame_free(&f);
        ev_copy e;
        REQUIRE(wait_event(s, WSEMBED_EVENT_PONG, id, T, &e) == 0);
        CHECK(e.len == 3 && memcmp(e.data, "rtt", 3) == 0);
        ev_copy_free(&e);
    }
    uint8_t big[126] = {0};
    CHECK_RC(wsembed_server_ping(s, id, big, sizeof big), WSEMBED_ERR_INVALID_ARGUMENT);
    /* Terminate: CLOSE 1006 with the user data, and EOF without a close frame. */
    REQUIRE_RC(wsembed_server_terminate(s, id), WSEMBED_OK);
    {
        wsembed_event ev;
        size_t n = 0;
        int64_t deadline = ws_now_ms() + T;
        int closed = 0;
        while (!closed && ws_now_ms() < deadline) {
            REQUIRE_RC(wsembed_server_poll(s, &ev, 1, 200, &n), WSEMBED_OK);
            if (n == 1 && ev.kind == WSEMBED_EVENT_CLOSE) {
                closed = 1;
                CHECK(ev.close_code == 1006 && !ev.clean);
                CHECK(ev.user_data == &marker);
            }
        }
        CHECK(closed);
    }
    CHECK(ws_wait_eof(&c, T) == 0);
    CHECK_RC(wsembed_server_terminate(s, id), WSEMBED_ERR_NO_SUCH_CONNECTION);
    CHECK_RC(wsembed_server_set_user_data(s, id, NULL), WSEMBED_ERR_NO_SUCH_CONNECTION);
out:
    ws_close(&c);
    stop_server(s);
}

/* wsembed_event_copy_payloads: a batch's small payloads land one after the other in the host's
 * buffer and the events point at the copies; too long ones (max_len) and ones that no longer
 * fit stay in the server's memory, as does every payload of an event without one. */
static void test_copy_payloads(void) {
    uint16_t port = 0;
    wsembed_server *s = start_server(NULL, &port);
    ws_client c = {.fd = -1};
    uint8_t *big = NULL;
    REQUIRE(s != NULL);
    uint64_t id = open_client(s, port, "/", &c);
    REQUIRE(id != 0);
    big = malloc(300);
    REQUIRE(big != NULL);
    for (size_t i = 0; i < 300; i++) big[i] = (uint8_t)(i * 5 + 1);
    const uint8_t bin[] = {0, 1, 2, 0xff, 0xfe, 0x80, 0, 'x'};
    /* In order: copied (3), empty (left), too long for max_len 100 (left), copied (8), no longer fits (left). */
    struct { int text; const void *data; size_t len; int copied; } want[] = {
        {1, "abc", 3, 1}, {1, "", 0, 0}, {0, big, 300, 0}, {0, bin, sizeof bin, 1}, {1, "toolong", 7, 0},
    };
    const size_t n_want = sizeof want / sizeof want[0];
    for (size_t i = 0; i < n_want; i++)
        REQUIRE(ws_send_frame(&c, want[i].text ? WS_TEXT : WS_BINARY, want[i].data, want[i].len) == 0);

    uint8_t buf[12]; /* 3 + 8 fit, the last 7 do not */
    memset(buf, 0xaa, sizeof buf);
    size_t total = 0, seen = 0;
    int64_t deadline = ws_now_ms() + T;
    while (seen < n_want && ws_now_ms() < deadline) {
        wsembed_event evs[8];
        size_t n = 0;
        REQUIRE_RC(wsembed_server_poll(s, evs, 8, 100, &n), WSEMBED_OK);
        size_t used = 99;
        REQUIRE_RC(wsembed_event_copy_payloads(evs, n, 100, buf + total, sizeof buf - total, &used), WSEMBED_OK);
        CHECK(used <= sizeof buf - total);
        size_t at = total;
        for (size_t i = 0; i < n && seen < n_want; i++) {
            if (evs[i].kind != WSEMBED_EVENT_TEXT && evs[i].kind != WSEMBED_EVENT_BINARY) continue;
            CHECK(evs[i].conn == id);
            CHECK(evs[i].len == want[seen].len);
            CHECK(evs[i].len == 0 || memcmp(evs[i].data, want[seen].data, want[seen].len) == 0);
            int in_buf = evs[i].data >= buf && evs[i].data < buf + sizeof buf;
            CHECK(in_buf == want[seen].copied);
            if (want[seen].copied) {
                CHECK(evs[i].data == buf + at); /* one after the other */
                at += evs[i].len;
            }
            seen++;
        }
        CHECK(at == total + used);
        total += used;
    }
    CHECK(seen == n_want);
    CHECK(total == 11);
    CHECK(memcmp(buf, "abc", 3) == 0 && memcmp(buf + 3, bin, sizeof bin) == 0 && buf[11] == 0xaa);

    /* Nothing to copy: OK, 0 bytes; NULL events/buf are fine with count/capacity 0. */
    size_t used = 99;
    CHECK_RC(wsembed_event_copy_payloads(NULL, 0, 100, NULL, 0, &used), WSEMBED_OK);
    CHECK(used == 0);
out:
    free(big);
    ws_close(&c);
    stop_server(s);
}

int main(int argc, char **argv) {
    alarm(600); /* a watchdog against a hang inside the library; every wait has its own deadline */
    static const test_case tests[] = {
        {"version_and_result_text", test_version_and_result_text},
        {"last_error_is_per_thread", test_last_error_is_per_thread},
        {"config_options", test_config_options},
        {"start_and_port", test_start_and_port},
        {"event_fd_and_open_event", test_event_fd_and_open_event},
        {"echo_text_and_binary", test_echo_text_and_binary},
        {"broadcast_three_clients", test_broadcast_three_clients},
        {"subscribe_publish_unsubscribe", test_subscribe_publish_unsubscribe},
        {"server_close_with_code_and_reason", test_server_close_with_code_and_reason},
        {"client_close_events", test_client_close_events},
        {"stop_and_after_stop", test_stop_and_after_stop},
        {"stop_without_clients_and_free_without_stop", test_stop_without_clients_and_free_without_stop},
        {"several_servers", test_several_servers},
        {"concurrent_sends_from_8_threads", test_concurrent_sends_from_8_threads},
        {"poll_from_another_thread", test_poll_from_another_thread},
        {"static_dir", test_static_dir},
        {"handshake_approval", test_handshake_approval},
        {"option_info", test_option_info},
        {"user_data_terminate_and_ping_events", test_user_data_terminate_and_ping_events},
        {"copy_payloads", test_copy_payloads},
    };
    return run_tests("api_test", tests, sizeof tests / sizeof tests[0], argc, argv);
}
