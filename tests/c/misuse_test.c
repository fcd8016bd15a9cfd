/*
 * misuse_test: the wsembed C API must reject bad arguments with the documented result codes
 * (never crash), leave out-parameters untouched on failure, and set a non-empty
 * wsembed_last_error_message() for every failure.
 *
 *   misuse_test [NAME-SUBSTRING]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

#define T 5000

static const uint8_t DATA[] = "data";

static void test_copy_payloads_null_arguments(void) {
    wsembed_event ev;
    memset(&ev, 0, sizeof ev);
    ev.data = DATA;
    ev.len = 4;
    uint8_t buf[8];
    size_t used = 7;
    CHECK_RC(wsembed_event_copy_payloads(&ev, 1, 100, buf, sizeof buf, NULL), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_event_copy_payloads(NULL, 1, 100, buf, sizeof buf, &used), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK(strstr(wsembed_last_error_message(), "events") != NULL);
    CHECK_RC(wsembed_event_copy_payloads(&ev, 1, 100, NULL, sizeof buf, &used), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK(strstr(wsembed_last_error_message(), "buf") != NULL);
    CHECK(used == 7 && ev.data == DATA); /* untouched on failure */
    /* No room: nothing copied, the event left as it was. */
    CHECK_RC(wsembed_event_copy_payloads(&ev, 1, 100, NULL, 0, &used), WSEMBED_OK);
    CHECK(used == 0 && ev.data == DATA);
}

static void test_null_arguments_config(void) {
    CHECK_RC(wsembed_config_new(NULL), WSEMBED_ERR_NULL_ARGUMENT);
    wsembed_config *cfg = NULL;
    REQUIRE_RC(wsembed_config_new(&cfg), WSEMBED_OK);
    CHECK_RC(wsembed_config_set(NULL, "port", "1"), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_config_set(cfg, NULL, "1"), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_config_set(cfg, "port", NULL), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_config_set(NULL, NULL, NULL), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_config_set_int(NULL, "port", 1), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_config_set_int(cfg, NULL, 1), WSEMBED_ERR_NULL_ARGUMENT);
    /* The message names the argument. */
    CHECK_RC(wsembed_config_set(cfg, "port", NULL), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK(strstr(wsembed_last_error_message(), "value") != NULL);
    CHECK_RC(wsembed_server_start(cfg, NULL), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_server_start(NULL, NULL), WSEMBED_ERR_NULL_ARGUMENT);
    wsembed_config_free(cfg);
    wsembed_config_free(NULL);
    wsembed_server_free(NULL);
    CHECK(1); /* reached: freeing NULL is fine */
out:;
}

static void test_null_arguments_server(void) {
    uint16_t port = 0;
    wsembed_server *s = start_server(NULL, &port);
    ws_client c = {.fd = -1};
    REQUIRE(s != NULL);
    uint64_t id = open_client(s, port, "/", &c);
    REQUIRE(id != 0);

    uint16_t p = 7;
    CHECK_RC(wsembed_server_port(NULL, &p), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK(p == 7);
    CHECK_RC(wsembed_server_port(s, NULL), WSEMBED_ERR_NULL_ARGUMENT);

    wsembed_event ev[2];
    size_t n = 77;
    CHECK_RC(wsembed_server_poll(NULL, ev, 2, 0, &n), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK(n == 77);
    CHECK_RC(wsembed_server_poll(s, NULL, 2, 0, &n), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK(n == 77);
    CHECK_RC(wsembed_server_poll(s, ev, 2, 0, NULL), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_server_poll(s, NULL, 0, 0, NULL), WSEMBED_ERR_NULL_ARGUMENT);

    int fd = -5;
    CHECK_RC(wsembed_server_event_fd(NULL, &fd), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK(fd == -5);
    CHECK_RC(wsembed_server_event_fd(s, NULL), WSEMBED_ERR_NULL_ARGUMENT);

    CHECK_RC(wsembed_server_send(NULL, id, WSEMBED_TEXT, DATA, 4), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_server_send(s, id, WSEMBED_TEXT, NULL, 4), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_server_send(s, id, WSEMBED_BINARY, NULL, 1), WSEMBED_ERR_NULL_ARGUMENT);

    CHECK_RC(wsembed_server_broadcast(NULL, WSEMBED_TEXT, DATA, 4, 0), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_server_broadcast(s, WSEMBED_TEXT, NULL, 4, 0), WSEMBED_ERR_NULL_ARGUMENT);

    CHECK_RC(wsembed_server_publish(NULL, "t", WSEMBED_TEXT, DATA, 4), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_server_publish(s, NULL, WSEMBED_TEXT, DATA, 4), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_server_publish(s, "t", WSEMBED_TEXT, NULL, 4), WSEMBED_ERR_NULL_ARGUMENT);

    CHECK_RC(wsembed_server_subscribe(NULL, id, "t"), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_server_subscribe(s, id, NULL), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_server_unsubscribe(NULL, id, "t"), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_server_unsubscribe(s, id, NULL), WSEMBED_ERR_NULL_ARGUMENT);

    CHECK_RC(wsembed_server_close(NULL, id, 1000, "r"), WSEMBED_ERR_NULL_ARGUMENT);

    size_t amount = 99;
    CHECK_RC(wsembed_server_buffered_amount(NULL, id, &amount), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK(amount == 99);
    CHECK_RC(wsembed_server_buffered_amount(s, id, NULL), WSEMBED_ERR_NULL_ARGUMENT);

    CHECK_RC(wsembed_server_stop(NULL, 0), WSEMBED_ERR_NULL_ARGUMENT);

    /* Handshake approval and counters. */
    CHECK_RC(wsembed_server_accept(NULL, id, NULL), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_server_reject(NULL, id, 403, NULL), WSEMBED_ERR_NULL_ARGUMENT);
    /* An open connection is not awaiting approval; a bad status is refused first. */
    CHECK_RC(wsembed_server_accept(s, id, NULL), WSEMBED_ERR_NO_SUCH_CONNECTION);
    CHECK_RC(wsembed_server_reject(s, id, 403, "no"), WSEMBED_ERR_NO_SUCH_CONNECTION);
    CHECK_RC(wsembed_server_reject(s, id, 200, "no"), WSEMBED_ERR_INVALID_ARGUMENT);
    wsembed_stats stats;
    memset(&stats, 0xab, sizeof stats);
    CHECK_RC(wsembed_server_stats(NULL, &stats), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK(stats.open_connections == 0xababababababababull);
    CHECK_RC(wsembed_server_stats(s, NULL), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_server_terminate(NULL, id), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_server_ping(NULL, id, DATA, 4), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_server_ping(s, id, NULL, 4), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_server_set_user_data(NULL, id, NULL), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_config_option_info(0, NULL), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_server_service(NULL, 0), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_client_options_new(NULL), WSEMBED_ERR_NULL_ARGUMENT);
    CHECK_RC(wsembed_client_options_set(NULL, "origin", "x"), WSEMBED_ERR_NULL_ARGUMENT);
    {
        uint64_t conn = 0;
        wsembed_client_options *co = NULL;
        CHECK_RC(wsembed_server_connect(NULL, "ws://127.0.0.1:1/", NULL, &conn), WSEMBED_ERR_NULL_ARGUMENT);
        CHECK_RC(wsembed_server_connect(s, NULL, NULL, &conn), WSEMBED_ERR_NULL_ARGUMENT);
        CHECK_RC(wsembed_server_connect(s, "ws://127.0.0.1:1/", NULL, NULL), WSEMBED_ERR_NULL_ARGUMENT);
        CHECK_RC(wsembed_server_connect(s, "http://x/", NULL, &conn), WSEMBED_ERR_INVALID_ARGUMENT);
        CHECK(conn == 0);
        if (CHECK_RC(wsembed_client_options_new(&co), WSEMBED_OK)) {
            CHECK_RC(wsembed_client_options_set(co, NULL, "x"), WSEMBED_ERR_NULL_ARGUMENT);
            CHECK_RC(wsembed_client_options_set(co, "origin", NULL), WSEMBED_ERR_NULL_ARGUMENT);
            CHECK_RC(wsembed_client_options_set(co, "no_such_option", "1"), WSEMBED_ERR_INVALID_ARGUMENT);
            CHECK_RC(wsembed_client_options_set(co, "header", "no colon"), WSEMBED_ERR_INVALID_ARGUMENT);
            CHECK_RC(wsembed_client_options_set(co, "reconnect", "maybe"), WSEMBED_ERR_INVALID_ARGUMENT);
        }
        wsembed_client_options_free(co);
        wsembed_client_options_free(NULL);
    }
    CHECK_RC(wsembed_server_stats(s, &stats), WSEMBED_OK);
    CHECK(stats.open_connections == 1 && stats.handshakes_accepted == 1);

    /* None of that disturbed the connection: no message was sent, it still works. */
    CHECK_RC(wsembed_server_send(s, id, WSEMBED_TEXT, DATA, 4), WSEMBED_OK);
    CHECK(expect_message(&c, WS_TEXT, DATA, 4, T));
    /* NULL data with length 0 is allowed everywhere. */
    CHECK_RC(wsembed_server_send(s, id, WSEMBED_TEXT, NULL, 0), WSEMBED_OK);
    CHECK(expect_message(&c, WS_TEXT, "", 0, T));
    CHECK_RC(wsembed_server_broadcast(s, WSEMBED_BINARY, NULL, 0, 0), WSEMBED_OK);
    CHECK(expect_message(&c, WS_BINARY, "", 0, T));
    CHECK_RC(wsembed_server_subscribe(s, id, "t"), WSEMBED_OK);
    CHECK_RC(wsembed_server_publish(s, "t", WSEMBED_TEXT, NULL, 0), WSEMBED_OK);
    CHECK(expect_message(&c, WS_TEXT, "", 0, T));
    /* NULL reason is allowed. */
    CHECK_RC(wsembed_server_close(s, id, 1000, NULL), WSEMBED_OK);
    CHECK(expect_close(&c, 1000, "", T));
out:
    ws_close(&c);
    stop_server(s);
}

static void test_invalid_message_kind(void) {
    uint16_t port = 0;
    wsembed_server *s = start_server(NULL, &port);
    ws_client c = {.fd = -1};
    REQUIRE(s != NULL);
    uint64_t id = open_client(s, port, "/", &c);
    REQUIRE(id != 0);
    REQUIRE_RC(wsembed_server_subscribe(s, id, "t"), WSEMBED_OK);
    const uint32_t kinds[] = {0, 3, 8, 0x81, UINT32_MAX};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        CHECK_RC(wsembed_server_send(s, id, kinds[i], DATA, 4), WSEMBED_ERR_INVALID_ARGUMENT);
        CHECK_RC(wsembed_server_broadcast(s, kinds[i], DATA, 4, 0), WSEMBED_ERR_INVALID_ARGUMENT);
        CHECK_RC(wsembed_server_publish(s, "t", kinds[i], DATA, 4), WSEMBED_ERR_INVALID_ARGUMENT);
    }
    /* Nothing was sent. */
    CHECK_RC(wsembed_server_send(s, id, WSEMBED_TEXT, (const uint8_t *)"ok", 2), WSEMBED_OK);
    CHECK(expect_message(&c, WS_TEXT, "ok", 2, T));
out:
    ws_close(&c);
    stop_server(s);
}

static void test_invalid_utf8(void) {
    uint16_t port = 0;
    wsembed_server *s = start_server(NULL, &port);
    ws_client c = {.fd = -1};
    REQUIRE(s != NULL);
    uint64_t id = open_client(s, port, "/", &c);
    REQUIRE(id != 0);
    REQUIRE_RC(wsembed_server_subscribe(s, id, "t"), WSEMBED_OK);
    static const char *const bad[] = {
        "\xff",             /* never valid */
        "\xc0\xaf",         /* overlong '/' */
        "\xed\xa0\x80",     /* UTF-16 surrogate */
        "ok\xe2\x82",       /* truncated at the end */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\x80",             /* lone continuation byte */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const uint8_t *b = (const uint8_t *)bad[i];
        size_t len = strlen(bad[i]);
        CHECK_RC(wsembed_server_send(s, id, WSEMBED_TEXT, b, len), WSEMBED_ERR_INVALID_UTF8);
        CHECK_RC(wsembed_server_broadcast(s, WSEMBED_TEXT, b, len, 0), WSEMBED_ERR_INVALID_UTF8);
        CHECK_RC(wsembed_server_publish(s, "t", WSEMBED_TEXT, b, len), WSEMBED_ERR_INVALID_UTF8);
    }
    /* A NUL inside text is valid UTF-8 (length-delimited). */
    CHECK_RC(wsembed_server_send(s, id, WSEMBED_TEXT, (const uint8_t *)"a\0b", 3), WSEMBED_OK);
    CHECK(expect_message(&c, WS_TEXT, "a\0b", 3, T));
    /* The same bytes as binary are fine. */
    CHECK_RC(wsembed_server_send(s, id, WSEMBED_BINARY, (const uint8_t *)"\xff\xc0", 2), WSEMBED_OK);
    CHECK(expect_message(&c, WS_BINARY, "\xff\xc0", 2, T));
    /* Invalid UTF-8 in a topic or a close reason: INVALID_ARGUMENT. */
    CHECK_RC(wsembed_server_subscribe(s, id, "\xff"), WSEMBED_ERR_INVALID_ARGUMENT);
    CHECK_RC(wsembed_server_unsubscribe(s, id, "\xff"), WSEMBED_ERR_INVALID_ARGUMENT);
    CHECK_RC(wsembed_server_publish(s, "\xff", WSEMBED_TEXT, DATA, 4), WSEMBED_ERR_INVALID_ARGUMENT);
    CHECK_RC(wsembed_server_close(s, id, 1000, "\xc3"), WSEMBED_ERR_INVALID_ARGUMENT);
    /* The connection is still open and got nothing else. */
    CHECK_RC(wsembed_server_send(s, id, WSEMBED_TEXT, (const uint8_t *)"still", 5), WSEMBED_OK);
    CHECK(expect_message(&c, WS_TEXT, "still", 5, T));
out:
    ws_close(&c);
    stop_server(s);
}

static void check_no_such_connection(const wsembed_server *s, uint64_t id) {
    printf("#   connection id %llu\n", (unsigned long long)id);
    CHECK_RC(wsembed_server_send(s, id, WSEMBED_TEXT, DATA, 4), WSEMBED_ERR_NO_SUCH_CONNECTION);
    CHECK_RC(wsembed_server_send(s, id, WSEMBED_BINARY, NULL, 0), WSEMBED_ERR_NO_SUCH_CONNECTION);
    CHECK_RC(wsembed_server_subscribe(s, id, "t"), WSEMBED_ERR_NO_SUCH_CONNECTION);
    CHECK_RC(wsembed_server_unsubscribe(s, id, "t"), WSEMBED_ERR_NO_SUCH_CONNECTION);
    CHECK_RC(wsembed_server_close(s, id, 1000, "x"), WSEMBED_ERR_NO_SUCH_CONNECTION);
    size_t amount = 31;
    CHECK_RC(wsembed_server_buffered_amount(s, id, &amount), WSEMBED_ERR_NO_SUCH_CONNECTION);
    CHECK(amount == 31);
}

static void test_no_such_connection(void) {
    uint16_t port = 0;
    wsembed_server *s = start_server(NULL, &port);
    ws_client c = {.fd = -1};
    ev_copy e = {0};
    REQUIRE(s != NULL);
    check_no_such_connection(s, 0);
    check_no_such_connection(s, 12345);
    check_no_such_connection(s, UINT64_MAX);

    /* A connection the client closed. */
    uint64_t id = open_client(s, port, "/", &c);
    REQUIRE(id != 0);
    ws_close(&c);
    REQUIRE(wait_event(s, WSEMBED_EVENT_CLOSE, id, T, &e) == 0);
    ev_copy_free(&e);
    check_no_such_connection(s, id);

    /* A connection the server is closing (handshake not finished): already gone for the API. */
    id = open_client(s, port, "/", &c);
    REQUIRE(id != 0);
    REQUIRE_RC(wsembed_server_close(s, id, 1000, NULL), WSEMBED_OK);
    check_no_such_connection(s, id);
    ws_close(&c);
    REQUIRE(wait_event(s, WSEMBED_EVENT_CLOSE, id, T, &e) == 0);
    ev_copy_free(&e);
    check_no_such_connection(s, id);

    /* Broadcast excepting a stale id is fine; publish to a topic of a closed connection too. */
    CHECK_RC(wsembed_server_broadcast(s, WSEMBED_TEXT, DATA, 4, id), WSEMBED_OK);
    CHECK_RC(wsembed_server_publish(s, "t", WSEMBED_TEXT, DATA, 4), WSEMBED_OK);
out:
    ev_copy_free(&e);
    ws_close(&c);
    stop_server(s);
}

static void test_bad_close_code_and_reason(void) {
    uint16_t port = 0;
    wsembed_server *s = start_server(NULL, &port);
    ws_client c = {.fd = -1};
    REQUIRE(s != NULL);
    uint64_t id = open_client(s, port, "/", &c);
    REQUIRE(id != 0);
    const uint16_t bad[] = {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (!CHECK_RC(wsembed_server_close(s, id, bad[i], "x"), WSEMBED_ERR_INVALID_ARGUMENT))
            printf("#     close code %u\n", (unsigned)bad[i]);
    }
    char reason[200];
    memset(reason, 'a', sizeof reason);
    reason[124] = '\0'; /* 124 bytes */
    CHECK_RC(wsembed_server_close(s, id, 1000, reason), WSEMBED_ERR_INVALID_ARGUMENT);
    reason[124] = 'a';
    reason[199] = '\0';
    CHECK_RC(wsembed_server_close(s, id, 1000, reason), WSEMBED_ERR_INVALID_ARGUMENT);
    /* 122 ASCII + one 2-byte char = 124 bytes, only 123 characters. */
    memset(reason, 'a', 122);
    memcpy(reason + 122, "\xc3\xa9", 3);
    CHECK_RC(wsembed_server_close(s, id, 1000, reason), WSEMBED_ERR_INVALID_ARGUMENT);
    /* The connection is still open after all the rejected closes. */
    CHECK_RC(wsembed_server_send(s, id, WSEMBED_TEXT, DATA, 4), WSEMBED_OK);
    CHECK(expect_message(&c, WS_TEXT, DATA, 4, T));
    /* Valid edges: 1014 is accepted. */
    if (CHECK_RC(wsembed_server_close(s, id, 1014, NULL), WSEMBED_OK)) CHECK(expect_close(&c, 1014, "", T));
    ws_close(&c);
    id = open_client(s, port, "/", &c);
    REQUIRE(id != 0);
    if (CHECK_RC(wsembed_server_close(s, id, 4999, NULL), WSEMBED_OK)) CHECK(expect_close(&c, 4999, "", T));
out:
    ws_close(&c);
    stop_server(s);
}

static void test_poll_capacity_zero(void) {
    uint16_t port = 0;
    wsembed_server *s = start_server(NULL, &port);
    ws_client c = {.fd = -1};
    REQUIRE(s != NULL);
    wsembed_event ev;
    size_t n = 55;
    CHECK_RC(wsembed_server_poll(s, &ev, 0, 0, &n), WSEMBED_ERR_INVALID_ARGUMENT);
    CHECK(n == 55);
    /* With an event waiting: still rejected, and the event is not lost. */
    REQUIRE(ws_connect(&c, port, "/", NULL, NULL, 0) == 0);
    int fd = -1;
    REQUIRE_RC(wsembed_server_event_fd(s, &fd), WSEMBED_OK);
    CHECK_RC(wsembed_server_poll(s, &ev, 0, 100, &n), WSEMBED_ERR_INVALID_ARGUMENT);
    ev_copy e;
    CHECK(wait_event(s, WSEMBED_EVENT_OPEN, 0, T, &e) == 0);
    ev_copy_free(&e);
    /* Negative timeouts other than -1 mean "no limit" too; do not test them (they would block). */
out:
    ws_close(&c);
    stop_server(s);
}

static void test_after_stop(void) {
    uint16_t port = 0;
    wsembed_server *s = start_server(NULL, &port);
    ws_client c = {.fd = -1};
    REQUIRE(s != NULL);
    uint64_t id = open_client(s, port, "/", &c);
    REQUIRE(id != 0);
    REQUIRE_RC(wsembed_server_stop(s, 200), WSEMBED_OK);
    CHECK_RC(wsembed_server_stop(s, 200), WSEMBED_ERR_STOPPED);
    CHECK_RC(wsembed_server_stop(s, 0), WSEMBED_ERR_STOPPED);
    CHECK_RC(wsembed_server_send(s, id, WSEMBED_TEXT, DATA, 4), WSEMBED_ERR_STOPPED);
    CHECK_RC(wsembed_server_broadcast(s, WSEMBED_TEXT, DATA, 4, 0), WSEMBED_ERR_STOPPED);
    CHECK_RC(wsembed_server_publish(s, "t", WSEMBED_TEXT, DATA, 4), WSEMBED_ERR_STOPPED);
    CHECK_RC(wsembed_server_subscribe(s, id, "t"), WSEMBED_ERR_STOPPED);
    CHECK_RC(wsembed_server_unsubscribe(s, id, "t"), WSEMBED_ERR_STOPPED);
    CHECK_RC(wsembed_server_close(s, id, 1000, NULL), WSEMBED_ERR_STOPPED);
    size_t amount = 3;
    CHECK_RC(wsembed_server_buffered_amount(s, id, &amount), WSEMBED_ERR_STOPPED);
    CHECK(amount == 3);
    /* NULL checks still come first; bad arguments after stop are still reported as such or as
     * STOPPED, but never crash. */
    CHECK_RC(wsembed_server_send(s, id, WSEMBED_TEXT, NULL, 4), WSEMBED_ERR_NULL_ARGUMENT);
    wsembed_result rc = wsembed_server_send(s, id, 99, DATA, 4);
    CHECK(rc == WSEMBED_ERR_INVALID_ARGUMENT || rc == WSEMBED_ERR_STOPPED);
    /* Drain: the CLOSE of the client (1001 sent by stop), then STOPPED. */
    int saw_close = 0;
    wsembed_event evs[8];
    size_t n = 0;
    int64_t deadline = ws_now_ms() + T;
    while (ws_now_ms() < deadline) {
        rc = wsembed_server_poll(s, evs, 8, 100, &n);
        if (rc != WSEMBED_OK) break;
        for (size_t i = 0; i < n; i++)
            if (evs[i].kind == WSEMBED_EVENT_CLOSE && evs[i].conn == id) saw_close = 1;
    }
    CHECK_RC(rc, WSEMBED_ERR_STOPPED);
    CHECK(saw_close);
    CHECK(expect_close(&c, 1001, NULL, T));
out:
    ws_close(&c);
    wsembed_server_free(s);
}

static void test_wrong_handshakes_do_not_open(void) {
    uint16_t port = 0;
    wsembed_server *s = start_server(NULL, &port);
    REQUIRE(s != NULL);
    /* Plain HTTP without static_dir: 426, no OPEN event. */
    static char resp[4096];
    CHECK(http_get(port, "/", resp, sizeof resp, T) > 0);
    CHECK(strncmp(resp, "HTTP/1.1 426", 12) == 0);
    wsembed_event ev;
    size_t n = 9;
    CHECK_RC(wsembed_server_poll(s, &ev, 1, 200, &n), WSEMBED_OK);
    CHECK(n == 0);
out:
    stop_server(s);
}

int main(int argc, char **argv) {
    alarm(600); /* a watchdog against a hang inside the library; every wait has its own deadline */
    static const test_case tests[] = {
        {"null_arguments_config", test_null_arguments_config},
        {"copy_payloads_null_arguments", test_copy_payloads_null_arguments},
        {"null_arguments_server", test_null_arguments_server},
        {"invalid_message_kind", test_invalid_message_kind},
        {"invalid_utf8", test_invalid_utf8},
        {"no_such_connection", test_no_such_connection},
        {"bad_close_code_and_reason", test_bad_close_code_and_reason},
        {"poll_capacity_zero", test_poll_capacity_zero},
        {"after_stop", test_after_stop},
        {"wrong_handshakes_do_not_open", test_wrong_handshakes_do_not_open},
    };
    return run_tests("misuse_test", tests, sizeof tests / sizeof tests[0], argc, argv);
}
