/*
 * chat_server: the live chat demo with a C host. Serves the page examples/chat/index.html over
 * plain HTTP on the same port (engine option `static_dir`) and relays every TEXT message it
 * receives (the page sends JSON {"name","text"} to ws://HOST:PORT/ws) to every connected
 * client, the sender included. Binary messages are not part of the chat protocol: their sender
 * is closed with 1003 (unsupported data). Messages over 64 KiB are closed with 1009 by the
 * engine.
 *
 *   chat_server [--port N] [--host H] [--static DIR] [--tls CERT.pem KEY.pem] [--redis URL]
 *
 * With --redis, chat servers sharing that Redis share the room.
 *
 * With --tls the page and the socket are served over https:// and wss:// (the page then
 * connects with wss:// by itself).
 *
 * Defaults: port 8080, host 127.0.0.1, DIR = <directory of this executable>/../../chat (the
 * binary lives in examples/c/build/), else examples/chat relative to the working directory.
 * Prints "listening on ws://HOST:PORT" and "open http://HOST:PORT/ in a browser" once it
 * accepts connections. Stops cleanly on SIGINT/SIGTERM.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wsembed.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

#define CHAT_MAX_MESSAGE (64 * 1024)

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static int fail(const char *what, wsembed_result rc) {
    fprintf(stderr, "chat_server: %s: %s (%s)\n", what, wsembed_result_text(rc), wsembed_last_error_message());
    return 1;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Finds the default static directory; writes it to out (PATH_MAX bytes). 0 if found. */
static int default_static_dir(char *out) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            char candidate[PATH_MAX + 16];
            *slash = '\0';
            snprintf(candidate, sizeof candidate, "%s/../../chat", exe);
            if (is_dir(candidate) && realpath(candidate, out)) return 0;
        }
    }
    if (is_dir("examples/chat") && realpath("examples/chat", out)) return 0;
    return -1;
}

static void usage(const char *argv0) {
    fprintf(stderr, "usage: %s [--port N] [--host H] [--static DIR] [--tls CERT.pem KEY.pem] [--redis URL]\n", argv0);
}

int main(int argc, char **argv) {
    long port = 8080;
    const char *host = "127.0.0.1";
    const char *static_arg = NULL;
    const char *tls_cert = NULL, *tls_key = NULL, *redis = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            char *end = NULL;
            errno = 0;
            port = strtol(argv[++i], &end, 10);
            if (errno != 0 || end == argv[i] || *end != '\0' || port < 0 || port > 65535) {
                fprintf(stderr, "chat_server: bad port %s\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else if (strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {
            tls_cert = argv[++i];
            tls_key = argv[++i];
        } else if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc) {
            redis = argv[++i];
        } else if (strcmp(argv[i], "--static") == 0 && i + 1 < argc) {
            static_arg = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(argv[0]);
            return 0;
        } else {
            usage(argv[0]);
            return 2;
        }
    }

    char static_dir[PATH_MAX];
    if (static_arg) {
        if (!is_dir(static_arg) || !realpath(static_arg, static_dir)) {
            fprintf(stderr, "chat_server: --static %s: not a directory\n", static_arg);
            return 2;
        }
    } else if (default_static_dir(static_dir) != 0) {
        fprintf(stderr, "chat_server: warning: examples/chat not found; serving WebSocket only (use --static DIR)\n");
        static_dir[0] = '\0';
    }

    wsembed_config *config = NULL;
    wsembed_result rc = wsembed_config_new(&config);
    if (rc != WSEMBED_OK) return fail("config", rc);
    rc = wsembed_config_set(config, "host", host);
    if (rc == WSEMBED_OK) rc = wsembed_config_set_int(config, "port", port);
    if (rc == WSEMBED_OK) rc = wsembed_config_set_int(config, "max_message_size", CHAT_MAX_MESSAGE);
    if (rc == WSEMBED_OK) rc = wsembed_config_set(config, "static_dir", static_dir);
    if (rc == WSEMBED_OK && tls_cert) rc = wsembed_config_set(config, "tls_cert_file", tls_cert);
    if (rc == WSEMBED_OK && tls_key) rc = wsembed_config_set(config, "tls_key_file", tls_key);
    if (rc == WSEMBED_OK && redis) rc = wsembed_config_set(config, "redis_url", redis);
    /* Every browser offers permessage-deflate; shared contexts cost an idle tab nothing. */
    if (rc == WSEMBED_OK) rc = wsembed_config_set(config, "compression", "shared");
    if (rc != WSEMBED_OK) {
        fail("config", rc);
        wsembed_config_free(config);
        return 2;
    }

    wsembed_server *server = NULL;
    rc = wsembed_server_start(config, &server);
    wsembed_config_free(config);
    if (rc != WSEMBED_OK) return fail("start", rc);

    uint16_t bound = 0;
    rc = wsembed_server_port(server, &bound);
    if (rc != WSEMBED_OK) {
        fail("port", rc);
        wsembed_server_free(server);
        return 1;
    }

    /* A wildcard address is reachable at the loopback address; IPv6 literals need brackets. */
    const char *shown = host;
    if (strcmp(host, "0.0.0.0") == 0) shown = "127.0.0.1";
    if (strcmp(host, "::") == 0) shown = "::1";
    const char *lb = strchr(shown, ':') ? "[" : "", *rb = strchr(shown, ':') ? "]" : "";

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    const char *secure = tls_cert ? "s" : "";
    printf("listening on ws%s://%s%s%s:%u\n", secure, lb, shown, rb, (unsigned)bound);
    if (static_dir[0]) printf("open http%s://%s%s%s:%u/ in a browser\n", secure, lb, shown, rb, (unsigned)bound);
    fflush(stdout);
    if (static_dir[0]) fprintf(stderr, "chat_server: serving %s\n", static_dir);

    enum { CAPACITY = 256 };
    static wsembed_event events[CAPACITY];
    int exit_code = 0;
    /* Wait on the event fd with poll(2), which a signal interrupts at once (EINTR); the
     * timeout only bounds the race of a signal arriving just before poll(2) is entered. */
    int event_fd = -1;
    rc = wsembed_server_event_fd(server, &event_fd);
    if (rc != WSEMBED_OK) {
        fail("event_fd", rc);
        stop_requested = 1;
        exit_code = 1;
    }
    while (!stop_requested) {
        struct pollfd pfd = {.fd = event_fd, .events = POLLIN};
        int ready = poll(&pfd, 1, 500);
        if (ready < 0 && errno != EINTR) {
            perror("chat_server: poll");
            exit_code = 1;
            break;
        }
        if (ready <= 0) continue;
        size_t count = 0;
        rc = wsembed_server_poll(server, events, CAPACITY, 0, &count);
        if (rc != WSEMBED_OK) {
            fail("poll", rc);
            exit_code = 1;
            break;
        }
        for (size_t i = 0; i < count; i++) {
            const wsembed_event *ev = &events[i];
            switch (ev->kind) {
            case WSEMBED_EVENT_OPEN:
                fprintf(stderr, "chat_server: #%llu joined from %s (%s)\n", (unsigned long long)ev->conn,
                        ev->peer ? ev->peer : "?", ev->path ? ev->path : "?");
                break;
            case WSEMBED_EVENT_TEXT:
                /* The engine checked UTF-8; relay as-is to everyone, sender included. A full
                 * queue skips that recipient (backpressure "block"). */
                rc = wsembed_server_broadcast(server, WSEMBED_TEXT, ev->data, ev->len, 0);
                if (rc != WSEMBED_OK) fail("broadcast", rc);
                break;
            case WSEMBED_EVENT_BINARY:
                rc = wsembed_server_close(server, ev->conn, 1003, "binary messages are not supported");
                if (rc != WSEMBED_OK && rc != WSEMBED_ERR_NO_SUCH_CONNECTION) fail("close", rc);
                break;
            case WSEMBED_EVENT_CLOSE:
                fprintf(stderr, "chat_server: #%llu left (%u)\n", (unsigned long long)ev->conn,
                        (unsigned)ev->close_code);
                break;
            default:
                break;
            }
        }
    }
    rc = wsembed_server_stop(server, 2000);
    if (rc != WSEMBED_OK && rc != WSEMBED_ERR_STOPPED) {
        fail("stop", rc);
        exit_code = 1;
    }
    wsembed_server_free(server);
    if (stop_requested) fprintf(stderr, "chat_server: stopped\n");
    return exit_code;
}
