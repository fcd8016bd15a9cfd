// game_server: a fixed 60 Hz game loop on wsembed, through include/wsembed.hpp. The same
// program as examples/c/game_server.c.
//
//   game_server [--port N] [--rooms R] [--ticks T]
//
// Clients connect to ws://HOST:PORT/?room=K (K in 0..R-1, default 0) and send binary input
// messages of 8 bytes: two little-endian float32 velocity components. Every tick the server
//   1. drains input with a zero-timeout poll (never blocks the tick),
//   2. moves every player,
//   3. publishes one binary snapshot per room (rooms are wsembed topics) to the room's players:
//        u32 tick | u64 server time (CLOCK_REALTIME, microseconds) | u32 player count |
//        count * (u32 player id, f32 x, f32 y)            (all little-endian)
// Every 300 ticks (5 s) it prints the tick-duration percentiles of those ticks, and at exit the
// same over the whole run prefixed with "total", e.g.
//   ticks 300 p50_us 41 p99_us 160 max_us 400 players 1000
//   total ticks 1800 p50_us 40 p99_us 170 max_us 3400 players 1000
// A bad ?room= closes the connection with 1008.
// Prints "listening on ws://127.0.0.1:PORT" once ready. Stops on SIGINT/SIGTERM or after T ticks.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "wsembed.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto tick_length = std::chrono::nanoseconds(1000000000L / 60);
constexpr long max_rooms = 64;

volatile std::sig_atomic_t stop_requested = 0;
void on_signal(int) { stop_requested = 1; }

struct Player {
    std::uint32_t id;
    std::uint32_t room;
    float x, y, vx, vy;
};

// The value of the "room" query parameter (0 when absent), -1 when malformed.
long room_of(std::string_view path) {
    auto q = path.find('?');
    while (q != std::string_view::npos) {
        std::string_view rest = path.substr(q + 1);
        if (rest.substr(0, 5) == "room=") {
            std::string digits(rest.substr(5, rest.find('&') - 5)); // up to '&' or the end
            char *end = nullptr;
            long room = std::strtol(digits.c_str(), &end, 10);
            return (!digits.empty() && *end == '\0') ? room : -1;
        }
        q = path.find('&', q + 1);
    }
    return 0;
}

// little-endian hosts
template <class T> void put(std::vector<std::uint8_t> &buf, std::size_t at, T v) { std::memcpy(buf.data() + at, &v, sizeof v); }
template <class T> void append(std::vector<std::uint8_t> &buf, T v) {
    buf.resize(buf.size() + sizeof v);
    put(buf, buf.size() - sizeof v, v);
}

void report(std::vector<std::uint32_t> durations, std::size_t players) {
    if (durations.empty()) return;
    std::sort(durations.begin(), durations.end());
    const std::size_t n = durations.size();
    std::printf("ticks %zu p50_us %u p99_us %u max_us %u players %zu\n", n, durations[n / 2], durations[(n * 99) / 100],
                durations[n - 1], players);
    std::fflush(stdout);
}

std::uint64_t realtime_us() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

int run(int argc, char **argv) {
    long port = 0, rooms = 10, max_ticks = -1;
    for (int i = 1; i < argc; i++) {
        std::string_view arg = argv[i];
        if (arg == "--port" && i + 1 < argc) port = std::strtol(argv[++i], nullptr, 10);
        else if (arg == "--rooms" && i + 1 < argc) rooms = std::strtol(argv[++i], nullptr, 10);
        else if (arg == "--ticks" && i + 1 < argc) max_ticks = std::strtol(argv[++i], nullptr, 10);
        else {
            std::cerr << "usage: " << argv[0] << " [--port N] [--rooms R] [--ticks T]\n";
            return 2;
        }
    }
    if (port < 0 || port > 65535 || rooms < 1 || rooms > max_rooms) {
        std::cerr << "game_server: bad --port or --rooms (1.." << max_rooms << ")\n";
        return 2;
    }

    wsembed::Config config;
    config.set("port", port).set("max_message_size", 1024);
    wsembed::Server server(config, 512);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::printf("listening on ws://127.0.0.1:%u\n", static_cast<unsigned>(server.port()));
    std::fflush(stdout);

    std::vector<std::string> topics;
    for (long r = 0; r < rooms; r++) topics.push_back("room-" + std::to_string(r));
    std::unordered_map<wsembed::ConnId, Player> players;
    std::vector<std::vector<std::uint8_t>> snapshots(static_cast<std::size_t>(rooms));
    std::vector<std::uint32_t> durations, all_durations;
    std::uint32_t next_id = 1, tick = 0;
    auto next_tick = Clock::now();
    std::error_code ec;

    while (!stop_requested && (max_ticks < 0 || tick < static_cast<std::uint32_t>(max_ticks))) {
        const auto start = Clock::now();
        // 1. input
        wsembed::Events batch;
        do {
            batch = server.poll(0, ec);
            if (ec) goto done;
            for (const wsembed::Event &e : batch) {
                if (e.kind() == wsembed::EventKind::Open) {
                    long room = room_of(e.path());
                    if (room < 0 || room >= rooms) {
                        server.close(e.conn(), 1008, "no such room", ec);
                        continue;
                    }
                    players[e.conn()] = Player{next_id++, static_cast<std::uint32_t>(room), 0, 0, 0, 0};
                    server.subscribe(e.conn(), topics[static_cast<std::size_t>(room)], ec);
                } else if (e.kind() == wsembed::EventKind::Binary && e.size() == 8) {
                    auto p = players.find(e.conn());
                    if (p != players.end()) {
                        std::memcpy(&p->second.vx, e.bytes(), 4);
                        std::memcpy(&p->second.vy, e.bytes() + 4, 4);
                    }
                } else if (e.kind() == wsembed::EventKind::Close) {
                    players.erase(e.conn());
                }
            }
        } while (batch.size() == server.batch_capacity());
        // 2. simulate and lay every player into its room's snapshot (one pass over the players)
        const std::uint64_t server_us = realtime_us();
        for (auto &snapshot : snapshots) snapshot.assign(16, 0);
        for (auto &[conn, p] : players) {
            (void)conn;
            p.x += p.vx / 60.0f;
            p.y += p.vy / 60.0f;
            auto &snapshot = snapshots[p.room];
            append(snapshot, p.id);
            append(snapshot, p.x);
            append(snapshot, p.y);
        }
        // 3. one snapshot per room, published to the room's topic (encoded once, shared)
        for (std::size_t r = 0; r < snapshots.size(); r++) {
            auto &snapshot = snapshots[r];
            if (snapshot.size() == 16) continue;
            put(snapshot, 0, tick);
            put(snapshot, 4, server_us);
            put(snapshot, 12, static_cast<std::uint32_t>((snapshot.size() - 16) / 12));
            server.publish(topics[r], wsembed::MessageKind::Binary, snapshot, ec);
        }
        tick++;
        const auto took = static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
        durations.push_back(took);
        all_durations.push_back(took);
        if (durations.size() == 300) {
            report(durations, players.size());
            durations.clear();
        }
        // 4. sleep to the next tick boundary (skip ahead if we fell behind)
        next_tick += tick_length;
        const auto now = Clock::now();
        if (next_tick > now) std::this_thread::sleep_until(next_tick);
        else next_tick = now;
    }
done:
    std::printf("total ");
    report(all_durations, players.size());
    server.stop(1000, ec);
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    try {
        return run(argc, argv);
    } catch (const wsembed::Error &e) {
        std::cerr << "game_server: " << e.what() << "\n";
        return 1;
    }
}
