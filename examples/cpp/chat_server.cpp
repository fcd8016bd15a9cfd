// chat_server: the live chat demo with a C++ host, through include/wsembed.hpp. The same
// program as examples/c/chat_server.c: serves the page examples/chat/index.html over plain HTTP
// on the same port (engine option `static_dir`) and relays every TEXT message (the page sends
// JSON {"name","text"} to ws://HOST:PORT/ws) to every connected client, the sender included.
// Binary messages close their sender with 1003; messages over 64 KiB are closed with 1009 by
// the engine.
//
//   chat_server [--port N] [--host H] [--static DIR] [--tls CERT.pem KEY.pem]
//
// Defaults: port 8080, host 127.0.0.1, DIR = <directory of this executable>/../../chat (the
// binary lives in examples/cpp/build/), else examples/chat relative to the working directory.
// Prints "listening on ws://HOST:PORT" and "open http://HOST:PORT/ in a browser" once it
// accepts connections. Stops cleanly on SIGINT/SIGTERM.
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

#include <poll.h>
#include <signal.h>

#include "wsembed.hpp"

namespace fs = std::filesystem;

namespace {

constexpr int chat_max_message = 64 * 1024;
volatile std::sig_atomic_t stop_requested = 0;

void on_signal(int) { stop_requested = 1; }

bool is_dir(const fs::path &p) {
    std::error_code ec;
    return fs::is_directory(p, ec);
}

std::optional<fs::path> default_static_dir() {
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        fs::path candidate = exe.parent_path() / ".." / ".." / "chat";
        if (is_dir(candidate)) return fs::canonical(candidate, ec);
    }
    if (is_dir("examples/chat")) return fs::canonical("examples/chat", ec);
    return std::nullopt;
}

void usage(const char *argv0) {
    std::cerr << "usage: " << argv0 << " [--port N] [--host H] [--static DIR] [--tls CERT.pem KEY.pem]\n";
}

int run(int argc, char **argv) {
    long port = 8080;
    std::string host = "127.0.0.1";
    std::optional<std::string> static_arg, tls_cert, tls_key;
    for (int i = 1; i < argc; i++) {
        std::string_view arg = argv[i];
        if (arg == "--port" && i + 1 < argc) {
            char *end = nullptr;
            errno = 0;
            port = std::strtol(argv[++i], &end, 10);
            if (errno != 0 || end == argv[i] || *end != '\0' || port < 0 || port > 65535) {
                std::cerr << "chat_server: bad port " << argv[i] << "\n";
                return 2;
            }
        } else if (arg == "--host" && i + 1 < argc) {
            host = argv[++i];
        } else if (arg == "--tls" && i + 2 < argc) {
            tls_cert = argv[++i];
            tls_key = argv[++i];
        } else if (arg == "--static" && i + 1 < argc) {
            static_arg = argv[++i];
        } else if (arg == "--help" || arg == "-h") {
            usage(argv[0]);
            return 0;
        } else {
            usage(argv[0]);
            return 2;
        }
    }

    std::string static_dir;
    if (static_arg) {
        std::error_code ec;
        if (!is_dir(*static_arg) || (static_dir = fs::canonical(*static_arg, ec).string(), ec)) {
            std::cerr << "chat_server: --static " << *static_arg << ": not a directory\n";
            return 2;
        }
    } else if (auto found = default_static_dir()) {
        static_dir = found->string();
    } else {
        std::cerr << "chat_server: warning: examples/chat not found; serving WebSocket only (use --static DIR)\n";
    }

    wsembed::Config config;
    try {
        config.set("host", host).set("port", port).set("max_message_size", chat_max_message).set("static_dir", static_dir);
        if (tls_cert) config.set("tls_cert_file", *tls_cert);
        if (tls_key) config.set("tls_key_file", *tls_key);
    } catch (const wsembed::Error &e) {
        std::cerr << "chat_server: config: " << e.what() << "\n";
        return 2;
    }

    wsembed::Server server(config); // throws wsembed::Error (caught in main) if it cannot start
    const unsigned bound = server.port();

    // A wildcard address is reachable at the loopback address; IPv6 literals need brackets.
    std::string shown = host == "0.0.0.0" ? "127.0.0.1" : host == "::" ? "::1" : host;
    if (shown.find(':') != std::string::npos) shown = "[" + shown + "]";

    struct sigaction sa = {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    const char *secure = tls_cert ? "s" : "";
    std::cout << "listening on ws" << secure << "://" << shown << ":" << bound << "\n";
    if (!static_dir.empty()) std::cout << "open http" << secure << "://" << shown << ":" << bound << "/ in a browser\n";
    std::cout << std::flush;
    if (!static_dir.empty()) std::cerr << "chat_server: serving " << static_dir << "\n";

    // Wait on the event fd with poll(2), which a signal interrupts at once (EINTR); the
    // timeout only bounds the race of a signal arriving just before poll(2) is entered.
    int exit_code = 0;
    const int event_fd = server.event_fd();
    while (!stop_requested) {
        pollfd pfd = {event_fd, POLLIN, 0};
        int ready = ::poll(&pfd, 1, 500);
        if (ready < 0 && errno != EINTR) {
            std::perror("chat_server: poll");
            exit_code = 1;
            break;
        }
        if (ready <= 0) continue;
        std::error_code ec;
        for (const wsembed::Event &ev : server.poll(0)) {
            switch (ev.kind()) {
            case wsembed::EventKind::Open:
                std::cerr << "chat_server: #" << ev.conn() << " joined from " << ev.peer() << " (" << ev.path() << ")\n";
                break;
            case wsembed::EventKind::Text:
                // The engine checked UTF-8; relay as-is to everyone, sender included. A full
                // queue skips that recipient (backpressure "block").
                if (!server.broadcast(wsembed::MessageKind::Text, ev.data(), 0, ec))
                    std::cerr << "chat_server: broadcast: " << ec.message() << " (" << wsembed::last_error_message() << ")\n";
                break;
            case wsembed::EventKind::Binary:
                if (!server.close(ev.conn(), 1003, "binary messages are not supported", ec) &&
                    ec.value() != WSEMBED_ERR_NO_SUCH_CONNECTION)
                    std::cerr << "chat_server: close: " << ec.message() << " (" << wsembed::last_error_message() << ")\n";
                break;
            case wsembed::EventKind::Close:
                std::cerr << "chat_server: #" << ev.conn() << " left (" << ev.close_code() << ")\n";
                break;
            default:
                break;
            }
        }
    }
    std::error_code ec;
    if (!server.stop(2000, ec) && ec.value() != WSEMBED_ERR_STOPPED) {
        std::cerr << "chat_server: stop: " << ec.message() << "\n";
        exit_code = 1;
    }
    if (stop_requested) std::cerr << "chat_server: stopped\n";
    return exit_code;
}

} // namespace

int main(int argc, char **argv) {
    try {
        return run(argc, argv);
    } catch (const wsembed::Error &e) {
        std::cerr << "chat_server: " << e.what() << "\n";
        return 1;
    }
}
