/*
 * game_server_test: runs a game_server (path in argv[1]: examples/cpp/build/.../game_server, or
 * the C one) on a free port and checks the game loop: players in a room get snapshots of that
 * room (tick, time, players), inputs move their player, a bad ?room= is closed with 1008, and
 * SIGTERM stops it with the "total ticks" line and exit status 0.
 *
 *   game_server_test PATH/TO/game_server [TEST]
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

static const char *game_binary;

static pid_t spawn(uint16_t *port, FILE **out) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(game_binary, game_binary, "--port", "0", "--rooms", "2", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    *out = fdopen(fds[0], "r");
    char line[256];
    unsigned p = 0;
    int got = 0;
    while (!got && fgets(line, sizeof line, *out)) got = sscanf(line, "listening on ws://127.0.0.1:%u", &p) == 1;
    CHECK(got);
    *port = (uint16_t)p;
    return got ? pid : -1;
}

typedef struct {
    uint32_t tick, count;
    uint64_t time_us;
    uint32_t ids[8];
    float xs[8];
} snapshot;

/* Reads binary frames until a snapshot arrives; 0 on success. */
static int read_snapshot(ws_client *c, snapshot *s) {
    ws_frame f = {0};
    if (ws_read_message(c, &f, T) != 0) return -1;
    int ok = f.opcode == WS_BINARY && f.len >= 16;
    if (ok) {
        memcpy(&s->tick, f.payload, 4);
        memcpy(&s->time_us, f.payload + 4, 8);
        memcpy(&s->count, f.payload + 12, 4);
        ok = f.len == 16 + 12 * (size_t)s->count && s->count <= 8;
        for (uint32_t i = 0; ok && i < s->count; i++) {
            memcpy(&s->ids[i], f.payload + 16 + 12 * i, 4);
            memcpy(&s->xs[i], f.payload + 16 + 12 * i + 4, 4);
        }
    }
    ws_frame_free(&f);
    return ok ? 0 : -1;
}

static void test_game(void) {
    uint16_t port = 0;
    FILE *out = NULL;
    ws_client a = {.fd = -1}, b = {.fd = -1}, other = {.fd = -1}, bad = {.fd = -1};
    pid_t pid = spawn(&port, &out);
    REQUIRE(pid > 0);
    REQUIRE(ws_connect(&a, port, "/?room=1", NULL, NULL, 0) == 0);
    REQUIRE(ws_connect(&b, port, "/?room=1", NULL, NULL, 0) == 0);
    REQUIRE(ws_connect(&other, port, "/", NULL, NULL, 0) == 0); /* room 0 */

    /* room 1 holds two players, room 0 one; ticks advance */
    snapshot s = {0}, s2 = {0};
    for (int i = 0; i < 60 && s.count != 2; i++) REQUIRE(read_snapshot(&a, &s) == 0);
    CHECK(s.count == 2);
    REQUIRE(read_snapshot(&a, &s2) == 0);
    CHECK(s2.tick > s.tick);
    CHECK(s2.time_us > 1600000000ull * 1000000ull);
    snapshot o = {0};
    REQUIRE(read_snapshot(&other, &o) == 0);
    CHECK(o.count == 1);

    /* input: velocity (60, 0) per second moves a's player along x, b stays at 0 */
    float v[2] = {60.0f, 0.0f};
    REQUIRE(ws_send_frame(&a, WS_BINARY, v, sizeof v) == 0);
    int moved = 0;
    for (int i = 0; i < 120 && !moved; i++) {
        REQUIRE(read_snapshot(&b, &s) == 0);
        int nonzero = 0;
        for (uint32_t k = 0; k < s.count; k++) nonzero += s.xs[k] > 0.5f;
        moved = nonzero == 1;
    }
    CHECK(moved);

    /* a room that does not exist: closed with 1008 */
    REQUIRE(ws_connect(&bad, port, "/?room=7", NULL, NULL, 0) == 0);
    CHECK(expect_close(&bad, 1008, "no such room", T));

    /* SIGTERM: exit 0 after the summary line */
    kill(pid, SIGTERM);
    char line[256];
    int total = 0;
    while (fgets(line, sizeof line, out)) total |= strncmp(line, "total ticks ", 12) == 0;
    CHECK(total);
    int status = 0;
    waitpid(pid, &status, 0);
    pid = -1;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
out:
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    if (out) fclose(out);
    ws_close(&a);
    ws_close(&b);
    ws_close(&other);
    ws_close(&bad);
}

int main(int argc, char **argv) {
    alarm(120);
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/TO/game_server [TEST]\n", argv[0]);
        return 2;
    }
    game_binary = argv[1];
    static const test_case tests[] = {{"game_loop_rooms_input_sigterm", test_game}};
    return run_tests("game_server_test", tests, 1, argc - 1, argv + 1);
}
