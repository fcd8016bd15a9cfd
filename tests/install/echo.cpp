// echo.cpp: the C++ wrapper (wsembed.hpp) against an *installed* wsembed, built with pkg-config
// only (see run.sh): the main thread polls and echoes, a client thread (tests/c/ws_client.c)
// sends one message and reads it back; prints "echo ok: <message>" on success (exit 0).
#include <atomic>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

#include <wsembed.hpp>

extern "C" {
#include "ws_client.h"
}

int main() {
    const std::string message = "hello through the installed C++ wrapper";
    wsembed::Config config;
    config.set("port", 0);
    wsembed::Server server(config);

    std::atomic<bool> done{false};
    std::string echoed;
    std::thread client([&] {
        ws_client c{};
        c.fd = -1;
        ws_frame f{};
        if (ws_connect(&c, server.port(), "/", nullptr, nullptr, 0) == 0 &&
            ws_send_frame(&c, WS_TEXT, message.data(), message.size()) == 0 && ws_read_message(&c, &f, 5000) == 0 &&
            f.opcode == WS_TEXT)
            echoed.assign(reinterpret_cast<const char *>(f.payload), f.len);
        ws_frame_free(&f);
        ws_close(&c);
        done = true;
    });
    while (!done)
        for (const wsembed::Event &ev : server.poll(100))
            if (ev.kind() == wsembed::EventKind::Text) server.send_text(ev.conn(), ev.data());
    client.join();
    if (echoed != message) {
        std::cerr << "echo: got \"" << echoed << "\"\n";
        return 1;
    }
    std::cout << "echo ok: " << echoed << " (wsembed " << wsembed::version() << ")\n";
    return 0;
}
