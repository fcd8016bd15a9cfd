/*
 * wsembed.hpp: a header-only C++17 wrapper over the wsembed C API (wsembed.h).
 *
 * It adds ownership and types, nothing else: every call is the C function of the same name
 * (see its documentation in wsembed.h), with
 *   - RAII: wsembed::Config frees its wsembed_config; wsembed::Server stops (1 s grace, as
 *     wsembed_server_free does) when it is destroyed, and the C server is freed when the last
 *     owner (the Server or any Handle copied from it) goes away;
 *   - errors as exceptions: a failing call throws wsembed::Error, which carries the
 *     wsembed_result code and wsembed_last_error_message(). Every call that can fail in normal
 *     operation (send/broadcast/publish: WOULD_BLOCK, NO_SUCH_CONNECTION, STOPPED; poll: STOPPED;
 *     ...) also has a noexcept overload taking a std::error_code& (category wsembed::category(),
 *     value the wsembed_result), which returns true on success;
 *   - strings: names, topics, reasons are NUL-terminated (const char* or std::string, never a
 *     std::string_view, which need not be NUL-terminated); text payloads are std::string_view,
 *     binary payloads anything contiguous of bytes (wsembed::Bytes). All are copied by the
 *     library before the call returns.
 *
 * Threads: a Server is used (polled) by one thread at a time; Handle objects, copied from
 * Server::handle(), may be used from any thread and keep the C server alive (not running:
 * after the Server is destroyed, calls through a Handle fail with WSEMBED_ERR_STOPPED).
 * Copying one Handle object from several threads at once is safe; assigning to one is not.
 *
 * Lifetime of events: the Events batch returned by Server::poll, each Event in it and every
 * std::string_view an Event hands out point into memory owned by the server. They stay valid
 * until the next poll on that Server (or its destruction), whichever comes first; copy what
 * you need to keep (std::string(ev.data())).
 *
 *   wsembed::Config config;
 *   config.set("port", 9001).set("host", "0.0.0.0");
 *   wsembed::Server server(config);
 *   for (;;)
 *       for (const wsembed::Event &ev : server.poll())
 *           if (ev.kind() == wsembed::EventKind::Text) server.send_text(ev.conn(), ev.data());
 *
 * Functions newer than this header: Server::call / Handle::call run any wsembed_server_*
 * function that takes the server first and returns a wsembed_result, throwing on failure
 * (try_call(ec, f, args...) reports it in a std::error_code instead).
 */
#ifndef WSEMBED_HPP
#define WSEMBED_HPP

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "wsembed.h"

namespace wsembed {

using ConnId = std::uint64_t;
using Result = wsembed_result;
using Stats = wsembed_stats;

enum class EventKind : std::uint32_t {
    Open = WSEMBED_EVENT_OPEN,
    Text = WSEMBED_EVENT_TEXT,
    Binary = WSEMBED_EVENT_BINARY,
    Close = WSEMBED_EVENT_CLOSE,
    Drain = WSEMBED_EVENT_DRAIN,
    Handshake = WSEMBED_EVENT_HANDSHAKE,
    Ping = WSEMBED_EVENT_PING,
    Pong = WSEMBED_EVENT_PONG,
    BridgeUp = WSEMBED_EVENT_BRIDGE_UP,
    BridgeDown = WSEMBED_EVENT_BRIDGE_DOWN,
    Reconnecting = WSEMBED_EVENT_RECONNECTING,
    Failed = WSEMBED_EVENT_FAILED,
};

enum class MessageKind : std::uint32_t {
    Text = WSEMBED_TEXT,
    Binary = WSEMBED_BINARY,
};

// ---- library-wide functions ---------------------------------------------------------------------

/// wsembed_version(), e.g. "0.1.0".
inline std::string_view version() noexcept { return wsembed_version(); }

/// One server option as the library describes it (wsembed_config_option_info).
struct OptionInfo {
    std::string_view name, kind, default_value, doc;
};

/// How many server options there are (wsembed_config_option_count).
inline std::size_t option_count() noexcept { return wsembed_config_option_count(); }
/// wsembed_result_text(code).
inline std::string_view result_text(Result code) noexcept { return wsembed_result_text(code); }
/// A copy of wsembed_last_error_message() (the C string lives only until the next failure).
inline std::string last_error_message() { return wsembed_last_error_message(); }

// ---- errors ----------------------------------------------------------------------------------------

/// The std::error_category of wsembed results: value() is the wsembed_result, message() its text.
inline const std::error_category &category() noexcept {
    struct Category final : std::error_category {
        const char *name() const noexcept override { return "wsembed"; }
        std::string message(int code) const override { return wsembed_result_text(static_cast<std::uint32_t>(code)); }
    };
    static const Category instance;
    return instance;
}

inline std::error_code make_error_code(Result code) noexcept {
    return code == WSEMBED_OK ? std::error_code() : std::error_code(static_cast<int>(code), category());
}

/// A failed wsembed call: the result code and the library's message for it.
class Error : public std::runtime_error {
public:
    /// Reads wsembed_last_error_message() of this thread, so construct it right after the call.
    explicit Error(Result code) : Error(code, wsembed_last_error_message()) {}
    Error(Result code, const std::string &detail)
        : std::runtime_error(detail.empty() ? std::string(wsembed_result_text(code))
                                            : std::string(wsembed_result_text(code)) + ": " + detail),
          code_(code), detail_(detail) {}

    Result code() const noexcept { return code_; }
    std::error_code error_code() const noexcept { return make_error_code(code_); }
    /// wsembed_last_error_message() at the time of the failure ("" if none).
    const std::string &detail() const noexcept { return detail_; }

private:
    Result code_;
    std::string detail_;
};

namespace detail {

inline void check(Result rc) {
    if (rc != WSEMBED_OK) throw Error(rc);
}

inline bool check(Result rc, std::error_code &ec) noexcept {
    ec = make_error_code(rc);
    return rc == WSEMBED_OK;
}

} // namespace detail

// ---- arguments ------------------------------------------------------------------------------------

/// A NUL-terminated string argument: a const char* (nullptr where the C function allows NULL)
/// or a std::string (which must outlive the call, as any argument does).
class CStr {
public:
    CStr(const char *s) noexcept : s_(s) {}
    CStr(std::nullptr_t) noexcept : s_(nullptr) {}
    CStr(const std::string &s) noexcept : s_(s.c_str()) {}
    const char *get() const noexcept { return s_; }

private:
    const char *s_;
};

/// A byte-buffer argument: {pointer, size}, a std::string_view, a NUL-terminated string
/// (without its NUL), or any contiguous container of bytes (std::string, std::vector<std::uint8_t>,
/// std::array<char, N>, std::uint8_t[N], ...; char arrays are taken as strings).
class Bytes {
public:
    Bytes(const void *data, std::size_t size) noexcept : data_(static_cast<const std::uint8_t *>(data)), size_(size) {}
    Bytes(std::string_view s) noexcept : Bytes(s.data(), s.size()) {}
    Bytes(const char *s) noexcept : Bytes(std::string_view(s)) {}
    template <class C, class T = std::remove_cv_t<std::remove_pointer_t<decltype(std::data(std::declval<const C &>()))>>,
              std::enable_if_t<sizeof(T) == 1 && std::is_trivially_copyable_v<T> &&
                                   !(std::is_array_v<C> && std::is_same_v<T, char>),
                               int> = 0>
    Bytes(const C &c) noexcept : Bytes(std::data(c), std::size(c)) {}
    const std::uint8_t *data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }

private:
    const std::uint8_t *data_;
    std::size_t size_;
};

// ---- events ---------------------------------------------------------------------------------------

namespace detail {

inline std::string_view view(const char *s) noexcept { return s ? std::string_view(s) : std::string_view(); }

/// A read-only range over a C array of Raw, handing out Value(raw) wrappers.
template <class Raw, class Value> class View {
public:
    class iterator {
    public:
        using iterator_category = std::input_iterator_tag;
        using value_type = Value;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = Value;
        iterator() noexcept = default;
        explicit iterator(const Raw *p) noexcept : p_(p) {}
        Value operator*() const noexcept { return Value(*p_); }
        iterator &operator++() noexcept { ++p_; return *this; }
        iterator operator++(int) noexcept { iterator old = *this; ++p_; return old; }
        bool operator==(const iterator &o) const noexcept { return p_ == o.p_; }
        bool operator!=(const iterator &o) const noexcept { return p_ != o.p_; }

    private:
        const Raw *p_ = nullptr;
    };

    View() noexcept = default;
    View(const Raw *p, std::size_t n) noexcept : p_(p), n_(n) {}
    iterator begin() const noexcept { return iterator(p_); }
    iterator end() const noexcept { return iterator(p_ + n_); }
    std::size_t size() const noexcept { return n_; }
    bool empty() const noexcept { return n_ == 0; }
    Value operator[](std::size_t i) const noexcept { return Value(p_[i]); }
    const Raw *data() const noexcept { return p_; }

private:
    const Raw *p_ = nullptr;
    std::size_t n_ = 0;
};

} // namespace detail

/// One request header of an OPEN or HANDSHAKE event.
struct Header {
    explicit Header(const wsembed_header &h) noexcept : name(detail::view(h.name)), value(detail::view(h.value)) {}
    std::string_view name;
    std::string_view value;
};

/// Request headers in the order received (valid as long as their event).
using Headers = detail::View<wsembed_header, Header>;

/// A list of strings of an event, e.g. the offered subprotocols (valid as long as their event).
using Strings = detail::View<const char *, std::string_view>;

/// One event (a view of a wsembed_event; valid until the next poll). Fields that the event's
/// kind does not use are empty strings / empty ranges.
class Event {
public:
    explicit Event(const wsembed_event &e) noexcept : e_(&e) {}
    EventKind kind() const noexcept { return static_cast<EventKind>(e_->kind); }
    ConnId conn() const noexcept { return e_->conn; }
    /// TEXT/BINARY: the message; CLOSE: the reason.
    std::string_view data() const noexcept {
        return e_->data ? std::string_view(reinterpret_cast<const char *>(e_->data), e_->len) : std::string_view();
    }
    const std::uint8_t *bytes() const noexcept { return e_->data; }
    std::size_t size() const noexcept { return e_->len; }
    /// CLOSE: the close code (1005 none sent, 1006 TCP dropped) and whether the handshake completed.
    std::uint16_t close_code() const noexcept { return e_->close_code; }
    bool clean() const noexcept { return e_->clean; }
    /// OPEN/HANDSHAKE: request target (with query), peer "ip:port", headers.
    std::string_view path() const noexcept { return detail::view(e_->path); }
    std::string_view peer() const noexcept { return detail::view(e_->peer); }
    Headers headers() const noexcept { return Headers(e_->headers, e_->headers ? e_->header_count : 0); }
    /// OPEN: the chosen subprotocol (has_protocol() is false when none was chosen).
    std::string_view protocol() const noexcept { return detail::view(e_->protocol); }
    bool has_protocol() const noexcept { return e_->protocol != nullptr; }
    /// HANDSHAKE: the offered subprotocols, in the client's order.
    Strings protocols() const noexcept { return Strings(e_->protocols, e_->protocols ? e_->protocol_count : 0); }
    /// OPEN: the negotiated extension (e.g. permessage-deflate), "" for none.
    std::string_view extensions() const noexcept { return detail::view(e_->extensions); }
    /// What wsembed_server_set_user_data attached to the connection (nullptr if nothing).
    void *user_data() const noexcept { return e_->user_data; }
    /// RECONNECTING: retry number and the delay before it.
    std::uint32_t attempt() const noexcept { return e_->attempt; }
    std::uint32_t delay_ms() const noexcept { return e_->delay_ms; }
    /// RECONNECTING/FAILED: a WSEMBED_FAILURE_* number, and the HTTP status or close code.
    std::uint32_t failure() const noexcept { return e_->failure; }
    std::uint16_t http_status() const noexcept { return e_->http_status; }
    const wsembed_event &raw() const noexcept { return *e_; }

private:
    const wsembed_event *e_;
};

/// The events of one poll, in order (valid until the next poll on the same Server).
using Events = detail::View<wsembed_event, Event>;

// ---- configuration ----------------------------------------------------------------------------------

/// Server options (wsembed_config): every default until set. Options by name, see
/// wsembed_config_set in wsembed.h. Move-only.
class Config {
public:
    Config() {
        wsembed_config *c = nullptr;
        detail::check(wsembed_config_new(&c));
        cfg_.reset(c);
    }

    /// Text value (wsembed_config_set).
    Config &set(CStr name, CStr value) {
        detail::check(wsembed_config_set(get(), name.get(), value.get()));
        return *this;
    }
    /// Integer value (wsembed_config_set_int; negative values are rejected).
    template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
    Config &set(CStr name, T value) {
        detail::check(wsembed_config_set_int(get(), name.get(), static_cast<std::int64_t>(value)));
        return *this;
    }
    /// Boolean value ("true"/"false"). A template so that string literals never pick it.
    template <class T, std::enable_if_t<std::is_same_v<T, bool>, int> = 0>
    Config &set(CStr name, T value) { return set(name, value ? "true" : "false"); }

    bool set(CStr name, CStr value, std::error_code &ec) noexcept {
        return detail::check(wsembed_config_set(get(), name.get(), value.get()), ec);
    }
    template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
    bool set(CStr name, T value, std::error_code &ec) noexcept {
        return detail::check(wsembed_config_set_int(get(), name.get(), static_cast<std::int64_t>(value)), ec);
    }

    wsembed_config *get() const noexcept { return cfg_.get(); }

private:
    struct Free {
        void operator()(wsembed_config *c) const noexcept { wsembed_config_free(c); }
    };
    std::unique_ptr<wsembed_config, Free> cfg_;
};

/// Describes server option i (wsembed_config_option_info); throws Error past the end.
inline OptionInfo option_info(std::size_t i) {
    wsembed_option_info info{};
    detail::check(wsembed_config_option_info(i, &info));
    return OptionInfo{info.name, info.kind, info.default_value, info.doc};
}

/// Options of one client connection (wsembed_client_options), by name; move-only.
class ClientOptions {
public:
    ClientOptions() {
        wsembed_client_options *o = nullptr;
        detail::check(wsembed_client_options_new(&o));
        opts_.reset(o);
    }
    ClientOptions &set(CStr name, CStr value) {
        detail::check(wsembed_client_options_set(get(), name.get(), value.get()));
        return *this;
    }
    wsembed_client_options *get() const noexcept { return opts_.get(); }

private:
    struct Free {
        void operator()(wsembed_client_options *o) const noexcept { wsembed_client_options_free(o); }
    };
    std::unique_ptr<wsembed_client_options, Free> opts_;
};

// ---- server operations (shared by Server and Handle) -------------------------------------------------

namespace detail {

/// Every wsembed_server_* call except poll and free. Self::get() gives the C server.
///
/// A new C function is one line here, plus one for its std::error_code overload; e.g. for a
/// `wsembed_result wsembed_server_terminate(const wsembed_server *, uint64_t conn)`:
///   void terminate(ConnId c) const { call(wsembed_server_terminate, c); }
///   bool terminate(ConnId c, std::error_code &ec) const noexcept { return try_call(ec, wsembed_server_terminate, c); }
/// Out-parameters as in port(); functions without a server (option info, ...) next to version();
/// a new C object (a client) gets a class shaped like Server/Handle.
template <class Self> class ServerOps {
public:
    /// Calls f(server, args...) and throws Error unless it returns WSEMBED_OK.
    template <class F, class... A> void call(F f, A... args) const { check(f(server(), args...)); }
    /// The same, reporting the failure in ec; true on success.
    template <class F, class... A> bool try_call(std::error_code &ec, F f, A... args) const noexcept {
        return check(f(server(), args...), ec);
    }

    std::uint16_t port() const { std::uint16_t p = 0; call(wsembed_server_port, &p); return p; }
    int event_fd() const { int fd = -1; call(wsembed_server_event_fd, &fd); return fd; }
    Stats stats() const { Stats s{}; call(wsembed_server_stats, &s); return s; }
    std::size_t buffered_amount(ConnId c) const { std::size_t n = 0; call(wsembed_server_buffered_amount, c, &n); return n; }

    void send(ConnId c, MessageKind k, Bytes b) const { call(wsembed_server_send, c, u32(k), b.data(), b.size()); }
    void send_text(ConnId c, std::string_view text) const { send(c, MessageKind::Text, text); }
    void send_binary(ConnId c, Bytes b) const { send(c, MessageKind::Binary, b); }
    void broadcast(MessageKind k, Bytes b, ConnId except = 0) const { call(wsembed_server_broadcast, u32(k), b.data(), b.size(), except); }
    void publish(CStr topic, MessageKind k, Bytes b) const { call(wsembed_server_publish, topic.get(), u32(k), b.data(), b.size()); }
    void subscribe(ConnId c, CStr topic) const { call(wsembed_server_subscribe, c, topic.get()); }
    void unsubscribe(ConnId c, CStr topic) const { call(wsembed_server_unsubscribe, c, topic.get()); }
    void close(ConnId c, std::uint16_t code = 1000, CStr reason = nullptr) const { call(wsembed_server_close, c, code, reason.get()); }
    void accept(ConnId c, CStr protocol = nullptr) const { call(wsembed_server_accept, c, protocol.get()); }
    void reject(ConnId c, std::uint16_t status, CStr body = nullptr) const { call(wsembed_server_reject, c, status, body.get()); }
    void stop(std::uint32_t timeout_ms = 1000) const { call(wsembed_server_stop, timeout_ms); }
    void terminate(ConnId c) const { call(wsembed_server_terminate, c); }
    void ping(ConnId c, Bytes payload = {}) const { call(wsembed_server_ping, c, payload.data(), payload.size()); }
    void set_user_data(ConnId c, void *data) const { call(wsembed_server_set_user_data, c, data); }
    /// Host-driven mode: does the engine's I/O for up to timeout_ms (wsembed_server_service).
    void service(int timeout_ms) const { call(wsembed_server_service, timeout_ms); }
    /// Dials url from this engine (wsembed_server_connect); options may be nullptr.
    ConnId connect(CStr url, const wsembed_client_options *options = nullptr) const {
        ConnId c = 0;
        call(wsembed_server_connect, url.get(), options, &c);
        return c;
    }

    bool send(ConnId c, MessageKind k, Bytes b, std::error_code &ec) const noexcept { return try_call(ec, wsembed_server_send, c, u32(k), b.data(), b.size()); }
    bool send_text(ConnId c, std::string_view text, std::error_code &ec) const noexcept { return send(c, MessageKind::Text, text, ec); }
    bool send_binary(ConnId c, Bytes b, std::error_code &ec) const noexcept { return send(c, MessageKind::Binary, b, ec); }
    bool broadcast(MessageKind k, Bytes b, ConnId except, std::error_code &ec) const noexcept { return try_call(ec, wsembed_server_broadcast, u32(k), b.data(), b.size(), except); }
    bool publish(CStr topic, MessageKind k, Bytes b, std::error_code &ec) const noexcept { return try_call(ec, wsembed_server_publish, topic.get(), u32(k), b.data(), b.size()); }
    bool subscribe(ConnId c, CStr topic, std::error_code &ec) const noexcept { return try_call(ec, wsembed_server_subscribe, c, topic.get()); }
    bool unsubscribe(ConnId c, CStr topic, std::error_code &ec) const noexcept { return try_call(ec, wsembed_server_unsubscribe, c, topic.get()); }
    bool close(ConnId c, std::uint16_t code, CStr reason, std::error_code &ec) const noexcept { return try_call(ec, wsembed_server_close, c, code, reason.get()); }
    bool accept(ConnId c, CStr protocol, std::error_code &ec) const noexcept { return try_call(ec, wsembed_server_accept, c, protocol.get()); }
    bool reject(ConnId c, std::uint16_t status, CStr body, std::error_code &ec) const noexcept { return try_call(ec, wsembed_server_reject, c, status, body.get()); }
    bool stop(std::uint32_t timeout_ms, std::error_code &ec) const noexcept { return try_call(ec, wsembed_server_stop, timeout_ms); }
    bool terminate(ConnId c, std::error_code &ec) const noexcept { return try_call(ec, wsembed_server_terminate, c); }
    bool ping(ConnId c, Bytes payload, std::error_code &ec) const noexcept { return try_call(ec, wsembed_server_ping, c, payload.data(), payload.size()); }

private:
    wsembed_server *server() const noexcept { return static_cast<const Self *>(this)->get(); }
    static std::uint32_t u32(MessageKind k) noexcept { return static_cast<std::uint32_t>(k); }
};

} // namespace detail

// ---- Server and Handle -----------------------------------------------------------------------------

/// A copyable, thread-safe reference to a running server, for sending from other threads.
/// It keeps the C server allocated (so a Handle never dangles), not running: once its Server
/// is destroyed, calls fail with WSEMBED_ERR_STOPPED. A default-constructed Handle refers to
/// nothing (calls fail with WSEMBED_ERR_NULL_ARGUMENT).
class Handle : public detail::ServerOps<Handle> {
public:
    Handle() noexcept = default;
    wsembed_server *get() const noexcept { return srv_.get(); }
    explicit operator bool() const noexcept { return srv_ != nullptr; }

private:
    friend class Server;
    explicit Handle(std::shared_ptr<wsembed_server> srv) noexcept : srv_(std::move(srv)) {}
    std::shared_ptr<wsembed_server> srv_;
};

/// A running server (wsembed_server_start): the one object that polls. Move-only; stopped when
/// destroyed (and freed once no Handle refers to it).
class Server : public detail::ServerOps<Server> {
public:
    static constexpr std::size_t default_batch_capacity = 256;

    /// Starts a server with `config` (copied: it may be destroyed right away). Each poll returns
    /// at most `batch_capacity` events.
    explicit Server(const Config &config, std::size_t batch_capacity = default_batch_capacity)
        : events_(batch_capacity ? batch_capacity : 1) {
        wsembed_server *s = nullptr;
        detail::check(wsembed_server_start(config.get(), &s));
        srv_ = std::shared_ptr<wsembed_server>(s, wsembed_server_free);
    }

    Server(Server &&other) noexcept = default;
    Server &operator=(Server &&other) noexcept {
        if (this != &other) {
            release();
            srv_ = std::move(other.srv_);
            events_ = std::move(other.events_);
        }
        return *this;
    }
    Server(const Server &) = delete;
    Server &operator=(const Server &) = delete;
    ~Server() { release(); }

    /// Waits up to timeout_ms (-1: no limit, 0: not at all) for events and returns them; an
    /// empty batch on timeout. Throws Error(WSEMBED_ERR_STOPPED) once the server stopped and
    /// every event was taken. The batch is valid until the next poll.
    Events poll(std::int32_t timeout_ms = -1) {
        std::size_t n = 0;
        detail::check(wsembed_server_poll(get(), events_.data(), events_.size(), timeout_ms, &n));
        return Events(events_.data(), n);
    }
    /// The same without exceptions: an empty batch and ec set on failure.
    Events poll(std::int32_t timeout_ms, std::error_code &ec) noexcept {
        std::size_t n = 0;
        if (!detail::check(wsembed_server_poll(get(), events_.data(), events_.size(), timeout_ms, &n), ec)) return Events();
        return Events(events_.data(), n);
    }
    std::size_t batch_capacity() const noexcept { return events_.size(); }

    /// A Handle for other threads (shares ownership of the C server).
    Handle handle() const noexcept { return Handle(srv_); }
    wsembed_server *get() const noexcept { return srv_.get(); }
    /// False only for a moved-from Server.
    explicit operator bool() const noexcept { return srv_ != nullptr; }

private:
    void release() noexcept {
        if (!srv_) return;
        (void)wsembed_server_stop(srv_.get(), 1000); // WSEMBED_ERR_STOPPED if already stopped
        srv_.reset();
    }

    std::shared_ptr<wsembed_server> srv_;
    std::vector<wsembed_event> events_;
};

} // namespace wsembed

#endif /* WSEMBED_HPP */
