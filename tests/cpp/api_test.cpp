// api_test: the C++ wrapper (include/wsembed.hpp) against the real library, every wrapped C
// function at least once, plus the ownership rules: Handles outliving their Server, moves,
// exceptions and std::error_code overloads. Built with -Wall -Wextra -Werror -pedantic and run
// under AddressSanitizer/UBSan by tests/cpp/Makefile. Prints TAP and "N passed, M failed".
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "wsembed.hpp"

extern "C" {
#include "ws_client.h"
}

namespace {

int failed_checks = 0;
bool test_failed = false;

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            std::printf("#   FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                                            \
            failed_checks++;                                                                                           \
            test_failed = true;                                                                                        \
        }                                                                                                              \
    } while (0)

// Runs f and checks that it throws wsembed::Error with `code`.
template <class F> bool throws(F &&f, wsembed::Result code) {
    try {
        f();
    } catch (const wsembed::Error &e) {
        if (e.code() != code) std::printf("#   threw %s, not %s\n", e.what(), std::string(wsembed::result_text(code)).c_str());
        return e.code() == code && e.error_code().value() == static_cast<int>(code) &&
               &e.error_code().category() == &wsembed::category();
    }
    return false;
}

// An event copied out of its batch (views die at the next poll).
struct Copy {
    wsembed::EventKind kind{};
    wsembed::ConnId conn = 0;
    std::string data, path, peer, protocol, protocols;
    bool has_protocol = false, clean = false;
    std::uint16_t close_code = 0;
    std::vector<std::pair<std::string, std::string>> headers;
};

Copy copy(const wsembed::Event &e) {
    Copy c;
    c.kind = e.kind();
    c.conn = e.conn();
    c.data = std::string(e.data());
    c.path = std::string(e.path());
    c.peer = std::string(e.peer());
    c.protocol = std::string(e.protocol());
    c.has_protocol = e.has_protocol();
    for (std::string_view p : e.protocols()) c.protocols += (c.protocols.empty() ? "" : ", ") + std::string(p);
    c.clean = e.clean();
    c.close_code = e.close_code();
    for (const wsembed::Header &h : e.headers()) c.headers.emplace_back(h.name, h.value);
    return c;
}

// Polls until an event of `kind` (for `conn`, if not 0) arrives; others are dropped.
std::optional<Copy> wait_for(wsembed::Server &s, wsembed::EventKind kind, wsembed::ConnId conn = 0, int timeout_ms = 5000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
        for (const wsembed::Event &e : s.poll(50))
            if (e.kind() == kind && (conn == 0 || e.conn() == conn)) return copy(e);
    }
    return std::nullopt;
}

wsembed::Server start(const std::function<void(wsembed::Config &)> &configure = {}) {
    wsembed::Config config;
    config.set("port", 0);
    if (configure) configure(config);
    return wsembed::Server(config);
}

struct Client {
    ws_client c{};
    Client() { c.fd = -1; }
    ~Client() { ws_close(&c); }
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;
    bool connect(std::uint16_t port, const char *path = "/", const char *headers = nullptr, std::string *response = nullptr) {
        char head[2048] = "";
        bool ok = ws_connect(&c, port, path, headers, head, sizeof head) == 0;
        if (response) *response = head;
        return ok;
    }
    bool send(int opcode, std::string_view data) { return ws_send_frame(&c, opcode, data.data(), data.size()) == 0; }
    // The next message (opcode, payload), or nullopt on timeout.
    std::optional<std::pair<int, std::string>> read(int timeout_ms = 5000) {
        ws_frame f{};
        if (ws_read_message(&c, &f, timeout_ms) != 0) return std::nullopt;
        std::pair<int, std::string> out{f.opcode, std::string(reinterpret_cast<const char *>(f.payload), f.len)};
        ws_frame_free(&f);
        return out;
    }
};

void test_library_functions() {
    CHECK(wsembed::version() == "0.1.0" || !wsembed::version().empty());
    CHECK(wsembed::option_count() > 20);
    CHECK(wsembed::option_info(0).name == "host" && !wsembed::option_info(0).doc.empty());
    bool threw = false;
    try {
        (void)wsembed::option_info(wsembed::option_count());
    } catch (const wsembed::Error &e) {
        threw = e.code() == WSEMBED_ERR_INVALID_ARGUMENT;
    }
    CHECK(threw);
    wsembed::ClientOptions client;
    client.set("protocols", "chat").set("reconnect", "1");
    CHECK(wsembed::result_text(WSEMBED_OK) == std::string_view(wsembed_result_text(WSEMBED_OK)));
    CHECK(std::string(wsembed::category().name()) == "wsembed");
    CHECK(wsembed::category().message(WSEMBED_ERR_WOULD_BLOCK) == wsembed_result_text(WSEMBED_ERR_WOULD_BLOCK));
    CHECK(!wsembed::make_error_code(WSEMBED_OK));
    CHECK(wsembed::make_error_code(WSEMBED_ERR_STOPPED).value() == WSEMBED_ERR_STOPPED);
}

void test_config() {
    wsembed::Config config;
    CHECK(config.get() != nullptr);
    // text, integer, bool, std::string; chained. A string literal never picks the bool overload
    // ("close" would not be a valid "true"/"false" either way, but "backpressure" rejects bools).
    const std::string host = "127.0.0.1";
    config.set("host", host).set("port", 0).set("backpressure", "close").set("approve_handshakes", true);
    config.set("max_message_size", std::uint32_t{1024}).set("ping_interval_ms", 0L);
    // unknown option: Error with the code and the library's message
    try {
        config.set("no_such_option", "1");
        CHECK(!"no exception");
    } catch (const wsembed::Error &e) {
        CHECK(e.code() == WSEMBED_ERR_INVALID_ARGUMENT);
        CHECK(!e.detail().empty());
        CHECK(std::string(e.what()).find(e.detail()) != std::string::npos);
        CHECK(e.error_code() == wsembed::make_error_code(WSEMBED_ERR_INVALID_ARGUMENT));
    }
    CHECK(throws([&] { config.set("port", -1); }, WSEMBED_ERR_INVALID_ARGUMENT));
    CHECK(throws([&] { config.set("backpressure", false); }, WSEMBED_ERR_INVALID_ARGUMENT));
    std::error_code ec;
    CHECK(!config.set("port", "many", ec) && ec.value() == WSEMBED_ERR_INVALID_ARGUMENT);
    CHECK(config.set("port", 0, ec) && !ec);
    CHECK(!wsembed::last_error_message().empty());
    // Config is move-only and frees exactly once (ASan would see a double free)
    wsembed::Config moved = std::move(config);
    CHECK(moved.get() != nullptr);
}

void test_start_errors() {
    wsembed::Server a = start();
    const std::uint16_t port = a.port();
    CHECK(port != 0);
    CHECK(a.event_fd() >= 0);
    CHECK(a.batch_capacity() == wsembed::Server::default_batch_capacity);
    // the same port again: an I/O error from the constructor
    CHECK(throws([&] { start([&](wsembed::Config &c) { c.set("port", port); }); }, WSEMBED_ERR_IO));
    // generic call / try_call for functions newer than the wrapper
    std::uint16_t p = 0;
    a.call(wsembed_server_port, &p);
    CHECK(p == port);
    std::error_code ec;
    CHECK(!a.try_call(ec, wsembed_server_port, static_cast<std::uint16_t *>(nullptr)) && ec.value() == WSEMBED_ERR_NULL_ARGUMENT);
}

void test_echo_and_events() {
    wsembed::Server s = start();
    Client c;
    CHECK(c.connect(s.port(), "/chat?room=1", "X-Test: yes\r\n"));
    auto open = wait_for(s, wsembed::EventKind::Open);
    CHECK(open.has_value());
    if (!open) return;
    CHECK(open->path == "/chat?room=1");
    CHECK(open->peer.rfind("127.0.0.1:", 0) == 0);
    CHECK(!open->has_protocol && open->protocol.empty());
    bool found = false;
    for (auto &[name, value] : open->headers) found |= name == "X-Test" && value == "yes";
    CHECK(found);

    CHECK(c.send(WS_TEXT, "h\xc3\xa9llo"));
    auto text = wait_for(s, wsembed::EventKind::Text, open->conn);
    CHECK(text && text->data == "h\xc3\xa9llo");
    s.send_text(open->conn, "back: " + (text ? text->data : std::string()));
    auto got = c.read();
    CHECK(got && got->first == WS_TEXT && got->second == "back: h\xc3\xa9llo");

    // binary both ways, from a vector and from {pointer, size}
    const std::vector<std::uint8_t> bytes = {0, 1, 2, 255};
    s.send_binary(open->conn, bytes);
    got = c.read();
    CHECK(got && got->first == WS_BINARY && got->second == std::string("\0\1\2\xff", 4));
    const char raw[3] = {'a', '\0', 'b'};
    s.send(open->conn, wsembed::MessageKind::Binary, {raw, sizeof raw});
    got = c.read();
    CHECK(got && got->second == std::string(raw, 3));
    CHECK(c.send(WS_BINARY, std::string_view("\x07\x00", 2)));
    auto bin = wait_for(s, wsembed::EventKind::Binary, open->conn);
    CHECK(bin && bin->data == std::string("\x07\x00", 2));

    CHECK(s.buffered_amount(open->conn) < 1024);
    wsembed::Stats st = s.stats();
    CHECK(st.open_connections == 1 && st.messages_in == 2 && st.messages_out == 3);

    // close with code and reason: the client sees it, then a CLOSE event
    s.close(open->conn, 4000, "bye");
    got = c.read();
    CHECK(got && got->first == WS_CLOSE && got->second.size() == 5 && got->second.substr(2) == "bye");
    ws_send_close(&c.c, 4000, "bye");
    auto closed = wait_for(s, wsembed::EventKind::Close, open->conn);
    CHECK(closed && closed->close_code == 4000 && closed->clean);
}

void test_errors_throw_and_error_code() {
    wsembed::Server s = start();
    CHECK(throws([&] { s.send_text(12345, "x"); }, WSEMBED_ERR_NO_SUCH_CONNECTION));
    CHECK(throws([&] { s.close(12345); }, WSEMBED_ERR_NO_SUCH_CONNECTION));
    CHECK(throws([&] { s.buffered_amount(12345); }, WSEMBED_ERR_NO_SUCH_CONNECTION));
    std::error_code ec;
    CHECK(!s.send_text(12345, "x", ec) && ec.value() == WSEMBED_ERR_NO_SUCH_CONNECTION);
    CHECK(ec.message() == wsembed_result_text(WSEMBED_ERR_NO_SUCH_CONNECTION));
    CHECK(!s.close(12345, 1000, nullptr, ec) && ec);
    CHECK(s.broadcast(wsembed::MessageKind::Text, "nobody listens", 0, ec) && !ec);
    CHECK(!s.close(12345, 1000, "x", ec) && ec.value() == WSEMBED_ERR_NO_SUCH_CONNECTION);
    // invalid UTF-8 as text
    CHECK(throws([&] { s.broadcast(wsembed::MessageKind::Text, std::string_view("\xff", 1)); }, WSEMBED_ERR_INVALID_UTF8));
    // stop, then: sends fail with STOPPED, poll drains and then reports STOPPED
    s.stop(1000);
    CHECK(throws([&] { s.stop(); }, WSEMBED_ERR_STOPPED));
    CHECK(!s.stop(0, ec) && ec.value() == WSEMBED_ERR_STOPPED);
    CHECK(throws([&] { s.broadcast(wsembed::MessageKind::Text, "x"); }, WSEMBED_ERR_STOPPED));
    CHECK(throws([&] { s.poll(0); }, WSEMBED_ERR_STOPPED));
    wsembed::Events none = s.poll(0, ec);
    CHECK(none.empty() && ec.value() == WSEMBED_ERR_STOPPED);
    // a default Handle refers to nothing
    wsembed::Handle empty;
    CHECK(!empty);
    CHECK(throws([&] { empty.send_text(1, "x"); }, WSEMBED_ERR_NULL_ARGUMENT));
}

void test_topics_and_broadcast() {
    wsembed::Server s = start();
    Client a, b;
    CHECK(a.connect(s.port()));
    auto oa = wait_for(s, wsembed::EventKind::Open);
    CHECK(b.connect(s.port()));
    auto ob = wait_for(s, wsembed::EventKind::Open);
    CHECK(oa && ob);
    if (!oa || !ob) return;
    s.subscribe(oa->conn, "news");
    s.subscribe(ob->conn, std::string("news"));
    s.unsubscribe(ob->conn, "news");
    s.publish("news", wsembed::MessageKind::Text, "headline");
    s.broadcast(wsembed::MessageKind::Text, "all but a", oa->conn);
    s.broadcast(wsembed::MessageKind::Binary, std::string("everyone"));
    auto m = a.read();
    CHECK(m && m->second == "headline");
    m = a.read();
    CHECK(m && m->first == WS_BINARY && m->second == "everyone");
    m = b.read();
    CHECK(m && m->second == "all but a"); // b never got the headline
    m = b.read();
    CHECK(m && m->second == "everyone");
    std::error_code ec;
    CHECK(s.subscribe(oa->conn, "x", ec) && s.unsubscribe(oa->conn, "x", ec) && s.publish("x", wsembed::MessageKind::Text, "", ec));
}

void test_handshake_approval() {
    wsembed::Server s = start([](wsembed::Config &c) { c.set("approve_handshakes", true).set("subprotocols", "json"); });
    Client a;
    std::thread accept_side([&] {
        auto hs = wait_for(s, wsembed::EventKind::Handshake);
        CHECK(hs && hs->path == "/in" && hs->protocols == "chat, json");
        if (hs) s.accept(hs->conn, "chat");
        auto open = wait_for(s, wsembed::EventKind::Open);
        CHECK(open && open->has_protocol && open->protocol == "chat");
    });
    std::string response;
    CHECK(a.connect(s.port(), "/in", "Sec-WebSocket-Protocol: chat, json\r\n", &response));
    accept_side.join();
    CHECK(response.find("Sec-WebSocket-Protocol: chat") != std::string::npos);

    Client b;
    std::thread reject_side([&] {
        auto hs = wait_for(s, wsembed::EventKind::Handshake);
        CHECK(hs.has_value());
        if (hs) s.reject(hs->conn, 403, "not you");
        std::error_code ec;
        if (hs) CHECK(!s.accept(hs->conn, nullptr, ec) && ec.value() == WSEMBED_ERR_NO_SUCH_CONNECTION);
        if (hs) CHECK(!s.reject(hs->conn, 403, nullptr, ec) && ec);
    });
    CHECK(!b.connect(s.port(), "/in", nullptr, &response));
    reject_side.join();
    CHECK(response.rfind("HTTP/1.1 403", 0) == 0);
}

void test_handles_across_threads_and_lifetime() {
    std::optional<wsembed::Server> s(start());
    Client c;
    CHECK(c.connect(s->port()));
    auto open = wait_for(*s, wsembed::EventKind::Open);
    CHECK(open.has_value());
    if (!open) return;
    wsembed::Handle h = s->handle();
    CHECK(bool(h) && h.get() == s->get() && h.port() == s->port());
    // many threads, each with its own copy, send at once
    std::vector<std::thread> senders;
    std::atomic<int> sent{0};
    for (int t = 0; t < 4; t++)
        senders.emplace_back([h, &sent, conn = open->conn] {
            for (int i = 0; i < 25; i++) {
                std::error_code ec;
                if (h.send_text(conn, "from a thread", ec)) sent++;
            }
        });
    for (auto &t : senders) t.join();
    CHECK(sent == 100);
    int received = 0;
    while (received < 100) {
        auto m = c.read();
        if (!m) break;
        received += m->second == "from a thread";
    }
    CHECK(received == 100);

    // the Server goes away first: the handle still works as an object, calls report STOPPED,
    // and the C server is freed when the last handle goes (ASan: no leak, no use after free)
    wsembed::Handle later = h;
    s.reset();
    CHECK(throws([&] { later.send_text(open->conn, "x"); }, WSEMBED_ERR_STOPPED));
    std::error_code ec;
    CHECK(!h.broadcast(wsembed::MessageKind::Text, "x", 0, ec) && ec.value() == WSEMBED_ERR_STOPPED);
    CHECK(h.stats().open_connections == 0);
    std::thread last([moved = std::move(later)] { CHECK(moved.port() != 0); });
    last.join();
}

void test_moves() {
    wsembed::Server a = start();
    const std::uint16_t port = a.port();
    wsembed::Server b = std::move(a);
    CHECK(!a && bool(b) && b.port() == port); // NOLINT(bugprone-use-after-move): documented state
    CHECK(throws([&] { a.port(); }, WSEMBED_ERR_NULL_ARGUMENT));
    wsembed::Handle h = b.handle();
    // move-assigning over a running server stops it (its handle sees STOPPED)
    b = start();
    CHECK(b.port() != 0);
    std::error_code ec;
    CHECK(!h.broadcast(wsembed::MessageKind::Text, "x", 0, ec) && ec.value() == WSEMBED_ERR_STOPPED);
    // a batch of events spans the server's buffer; range-for and indexing agree
    Client c;
    CHECK(c.connect(b.port()));
    c.send(WS_TEXT, "one");
    c.send(WS_TEXT, "two");
    std::vector<std::string> texts;
    for (int i = 0; i < 100 && texts.size() < 2; i++) {
        wsembed::Events batch = b.poll(50);
        for (std::size_t j = 0; j < batch.size(); j++)
            if (batch[j].kind() == wsembed::EventKind::Text) texts.emplace_back(batch[j].data());
    }
    CHECK((texts == std::vector<std::string>{"one", "two"}));
}

struct Test {
    const char *name;
    void (*fn)();
};

} // namespace

int main(int argc, char **argv) {
    const Test tests[] = {
        {"library_functions", test_library_functions},
        {"config", test_config},
        {"start_errors", test_start_errors},
        {"echo_and_events", test_echo_and_events},
        {"errors_throw_and_error_code", test_errors_throw_and_error_code},
        {"topics_and_broadcast", test_topics_and_broadcast},
        {"handshake_approval", test_handshake_approval},
        {"handles_across_threads_and_lifetime", test_handles_across_threads_and_lifetime},
        {"moves", test_moves},
    };
    int passed = 0, failed = 0, n = 0;
    for (const Test &t : tests) {
        if (argc > 1 && !std::strstr(t.name, argv[1])) continue;
        test_failed = false;
        try {
            t.fn();
        } catch (const std::exception &e) {
            std::printf("#   unexpected exception: %s\n", e.what());
            test_failed = true;
        }
        std::printf("%s %d - %s\n", test_failed ? "not ok" : "ok", ++n, t.name);
        (test_failed ? failed : passed)++;
    }
    std::printf("1..%d\napi_test (C++): %d passed, %d failed\n", n, passed, failed);
    return failed ? 1 : 0;
}
