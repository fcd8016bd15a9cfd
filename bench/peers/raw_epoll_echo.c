/*
 * raw_epoll_echo: the physical baseline. A single-threaded, level-triggered epoll TCP server
 * that writes back every byte it reads, unchanged. No WebSocket at all: the load generator
 * talks to it in `raw` mode (it sends masked WebSocket frames and expects the same bytes back).
 *
 *   raw_epoll_echo [--port N] [--broadcast]
 *
 * --broadcast is accepted for CLI compatibility and ignored (raw TCP has no message framing to
 * broadcast). Prints "listening on ws://127.0.0.1:PORT" once listening. Stops on SIGINT/SIGTERM.
 *
 * Build: cc -O2 -o raw_epoll_echo raw_epoll_echo.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (64 * 1024)
#define MAX_EVENTS 1024

/* Bytes read but not yet written back, per fd. While a backlog exists the fd is not read. */
struct pending {
    char *data;
    size_t len, off;
};

static volatile sig_atomic_t stop_requested = 0;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

static struct pending *pend;
static int pend_cap;

static struct pending *pending_for(int fd) {
    if (fd >= pend_cap) {
        int ncap = pend_cap ? pend_cap : 1024;
        while (ncap <= fd) ncap *= 2;
        pend = realloc(pend, sizeof *pend * (size_t)ncap);
        if (!pend) { perror("realloc"); exit(1); }
        memset(pend + pend_cap, 0, sizeof *pend * (size_t)(ncap - pend_cap));
        pend_cap = ncap;
    }
    return &pend[fd];
}

static void close_fd(int ep, int fd) {
    struct pending *p = pending_for(fd);
    free(p->data);
    memset(p, 0, sizeof *p);
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
}

/* Write as much of buf as the socket takes; keep the rest in the fd's backlog. 0 ok, -1 dead. */
static int send_or_keep(int ep, int fd, const char *buf, size_t len) {
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, buf + off, len - off);
        if (n > 0) { off += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        return -1;
    }
    if (off < len) {
        struct pending *p = pending_for(fd);
        size_t rest = len - off;
        p->data = malloc(rest);
        if (!p->data) return -1;
        memcpy(p->data, buf + off, rest);
        p->len = rest;
        p->off = 0;
        struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0) return -1;
    }
    return 0;
}

static int flush_pending(int ep, int fd) {
    struct pending *p = pending_for(fd);
    while (p->off < p->len) {
        ssize_t n = write(fd, p->data + p->off, p->len - p->off);
        if (n > 0) { p->off += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        return -1;
    }
    free(p->data);
    memset(p, 0, sizeof *p);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
    return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

int main(int argc, char **argv) {
    long port = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            char *end = NULL;
            port = strtol(argv[++i], &end, 10);
            if (*end != '\0' || port < 0 || port > 65535) {
                fprintf(stderr, "raw_epoll_echo: bad port %s\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--broadcast") == 0) {
            fprintf(stderr, "raw_epoll_echo: --broadcast ignored (raw TCP echo only)\n");
        } else {
            fprintf(stderr, "usage: %s [--port N] [--broadcast]\n", argv[0]);
            return 2;
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) { perror("socket"); return 1; }
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("bind"); return 1; }
    if (listen(lfd, SOMAXCONN) < 0) { perror("listen"); return 1; }
    socklen_t alen = sizeof addr;
    getsockname(lfd, (struct sockaddr *)&addr, &alen);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);

    printf("listening on ws://127.0.0.1:%d\n", ntohs(addr.sin_port));
    fflush(stdout);

    static char buf[BUF_SIZE];
    struct epoll_event events[MAX_EVENTS];
    while (!stop_requested) {
        int n = epoll_wait(ep, events, MAX_EVENTS, 500);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            uint32_t e = events[i].events;
            if (fd == lfd) {
                for (;;) {
                    int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0) break;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = c};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) < 0) close(c);
                }
                continue;
            }
            if (e & EPOLLOUT) {
                if (flush_pending(ep, fd) < 0) { close_fd(ep, fd); continue; }
                continue;
            }
            if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                ssize_t r = read(fd, buf, sizeof buf);
                if (r > 0) {
                    if (send_or_keep(ep, fd, buf, (size_t)r) < 0) close_fd(ep, fd);
                } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                    close_fd(ep, fd);
                }
            }
        }
    }
    close(ep);
    close(lfd);
    return 0;
}
