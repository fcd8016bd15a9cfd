/*
 * chat_server_test: runs examples/c/build/chat_server (path in argv[1]) on a free port with a
 * temporary static directory and checks what the demo promises: the banner lines, the page
 * served over HTTP, text relayed to every client, binary closed with 1003, clean stop on
 * SIGTERM (clients get 1001, exit status 0).
 *
 *   chat_server_test PATH/TO/chat_server
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

#define T 5000

static const char *chat_binary;
static char static_dir[] = "/tmp/wsembed-chat-XXXXXX";
static char index_path[sizeof static_dir + 16];

/* Starts the server; returns its pid and the port from the banner, or -1. */
static pid_t spawn(uint16_t *port, FILE **out) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(chat_binary, chat_binary, "--port", "0", "--static", static_dir, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    *out = fdopen(fds[0], "r");
    char line[256];
    unsigned p = 0;
    int got_listen = 0, got_open = 0;
    while ((!got_listen || !got_open) && fgets(line, sizeof line, *out)) {
        if (sscanf(line, "listening on ws://127.0.0.1:%u", &p) == 1) got_listen = 1;
        else if (strncmp(line, "open http://127.0.0.1:", 22) == 0 && strstr(line, "/ in a browser")) got_open = 1;
    }
    CHECK(got_listen);
    CHECK(got_open);
    *port = (uint16_t)p;
    return got_listen ? pid : -1;
}

/* Waits up to timeout_ms for the child to exit; returns its status or -1. */
static int wait_exit(pid_t pid, int timeout_ms) {
    int64_t deadline = ws_now_ms() + timeout_ms;
    int status;
    struct timespec ts = {0, 10 * 1000 * 1000};
    while (ws_now_ms() < deadline) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) return status;
        nanosleep(&ts, NULL); /* polling the exit, bounded by the deadline */
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static void test_chat(void) {
    uint16_t port = 0;
    FILE *out = NULL;
    ws_client a = {.fd = -1}, b = {.fd = -1};
    pid_t pid = spawn(&port, &out);
    REQUIRE(pid > 0);

    static char resp[8192];
    CHECK(http_get(port, "/", resp, sizeof resp, T) > 0);
    CHECK(strncmp(resp, "HTTP/1.1 200", 12) == 0 && strstr(resp, "chat page") != NULL);

    REQUIRE(ws_connect(&a, port, "/ws", NULL, NULL, 0) == 0);
    REQUIRE(ws_connect(&b, port, "/ws", NULL, NULL, 0) == 0);
    const char *msg = "{\"name\":\"ann\",\"text\":\"h\xc3\xa9llo\"}";
    REQUIRE(ws_send_frame(&a, WS_TEXT, msg, strlen(msg)) == 0);
    CHECK(expect_message(&a, WS_TEXT, msg, strlen(msg), T)); /* the sender too */
    CHECK(expect_message(&b, WS_TEXT, msg, strlen(msg), T));

    /* Binary: its sender is closed with 1003; the other client is unaffected. */
    REQUIRE(ws_send_frame(&b, WS_BINARY, "\x01\x02", 2) == 0);
    CHECK(expect_close(&b, 1003, NULL, T));
    ws_close(&b);
    const char *msg2 = "{\"name\":\"ann\",\"text\":\"still here\"}";
    REQUIRE(ws_send_frame(&a, WS_TEXT, msg2, strlen(msg2)) == 0);
    CHECK(expect_message(&a, WS_TEXT, msg2, strlen(msg2), T));

    /* SIGTERM: the client gets 1001, the process exits 0. */
    kill(pid, SIGTERM);
    CHECK(expect_close(&a, 1001, NULL, T));
    ws_send_close(&a, 1001, "");
    CHECK(ws_wait_eof(&a, T) == 0);
    ws_close(&a); /* the server waits for our FIN before it exits */
    int status = wait_exit(pid, T);
    pid = -1;
    CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
out:
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    if (out) fclose(out);
    ws_close(&a);
    ws_close(&b);
}

static void test_sigint(void) {
    uint16_t port = 0;
    FILE *out = NULL;
    pid_t pid = spawn(&port, &out);
    REQUIRE(pid > 0);
    kill(pid, SIGINT);
    int status = wait_exit(pid, T);
    CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
out:
    if (out) fclose(out);
}

int main(int argc, char **argv) {
    alarm(120);
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/TO/chat_server [TEST]\n", argv[0]);
        return 2;
    }
    chat_binary = argv[1];
    if (!mkdtemp(static_dir)) return 2;
    snprintf(index_path, sizeof index_path, "%s/index.html", static_dir);
    FILE *f = fopen(index_path, "w");
    if (!f) return 2;
    fputs("<!doctype html><title>chat page</title>\n", f);
    fclose(f);
    static const test_case tests[] = {
        {"chat_relay_binary_sigterm", test_chat},
        {"chat_sigint", test_sigint},
    };
    int rc = run_tests("chat_server_test", tests, 2, argc - 1, argv + 1);
    unlink(index_path);
    rmdir(static_dir);
    return rc;
}
