// The one table of server options: name, kind, default (as text), doc, parser.
//
// Everything that lists options comes from here: `ServerConfig::set` (the parser column), the
// C ABI's `wsembed_config_option_count`/`wsembed_config_option_info` (and through them the
// Python keyword arguments and the Node camelCase options with their docs), the option list
// in `include/wsembed.h` and the table in README.md (both rendered by build.rs, which
// includes this file with its own `options_table!` that ignores the parser column).
//
// Kinds: "bool", "integer", "bytes", "milliseconds", "count", "text", "list" (comma-separated),
// "choice" (one of the words in the doc), "path", "pem".
options_table! {
    "host", "text", "127.0.0.1",
        "Interface to listen on (\"0.0.0.0\" for all).",
        |c, v| { c.host = nonempty(v)?.to_owned(); Ok(()) };
    "port", "integer", "0",
        "TCP port; 0 picks any free port (read it back after start).",
        |c, v| { c.port = u16::try_from(number(v)?).map_err(|_| bad("a port 0-65535"))?; Ok(()) };
    "threads", "count", "1",
        "Event loops, each on its own thread, serving one port (SO_REUSEPORT); connection ids name their loop, broadcasts reach every loop.",
        |c, v| { c.threads = match number(v)? { n @ 1..=255 => n as usize, _ => return Err(bad("1-255")) }; Ok(()) };
    "loop_thread", "bool", "true",
        "Run the engine on a background thread; false is host-driven mode: poll (or service) runs it on the calling thread, as lws_service and mg_mgr_poll do, for game loops and the lowest latency.",
        |c, v| { c.loop_thread = boolean(v)?; Ok(()) };
    "listen", "bool", "true",
        "Listen on host:port; false makes a client-only engine (connections dialed with wsembed_server_connect).",
        |c, v| { c.listen = boolean(v)?; Ok(()) };
    "max_message_size", "bytes", "16777216",
        "Largest reassembled message accepted; a larger one is closed with 1009.",
        |c, v| { c.max_message_size = size(positive(v)?)?; Ok(()) };
    "max_frame_size", "bytes", "16777216",
        "Largest single frame accepted; a larger one is closed with 1009.",
        |c, v| { c.max_frame_size = size(positive(v)?)?; Ok(()) };
    "max_connections", "count", "100000",
        "Simultaneous TCP connections, handshakes included; more are answered 503.",
        |c, v| { c.max_connections = size(positive(v)?)?.min(MAX_CONNECTIONS); Ok(()) };
    "handshake_timeout_ms", "milliseconds", "10000",
        "A client must complete its upgrade request within this time.",
        |c, v| { c.handshake_timeout = ms(positive(v)?); Ok(()) };
    "max_header_bytes", "bytes", "8192",
        "Largest HTTP request head; larger is answered 431.",
        |c, v| { c.max_header_bytes = size(positive(v)?)?; Ok(()) };
    "ping_interval_ms", "milliseconds", "30000",
        "Send a ping after this long without traffic from the peer; 0 never pings.",
        |c, v| { c.ping_interval = ms(number(v)?); Ok(()) };
    "pong_timeout_ms", "milliseconds", "20000",
        "An unanswered ping closes the connection after this, reported as 1006 \"ping timeout\".",
        |c, v| { c.pong_timeout = ms(positive(v)?); Ok(()) };
    "close_timeout_ms", "milliseconds", "5000",
        "Time allowed for a close handshake before TCP is dropped.",
        |c, v| { c.close_timeout = ms(positive(v)?); Ok(()) };
    "ping_events", "bool", "false",
        "Report PING and PONG events with their payload (RTT measurement, time sync); pings are answered either way.",
        |c, v| { c.ping_events = boolean(v)?; Ok(()) };
    "compression", "choice", "off",
        "permessage-deflate: \"off\", \"shared\" (one compressor and inflater per loop, no context takeover: about 0 bytes per idle connection, a broadcast compressed once) or \"dedicated\" (per-connection contexts with context takeover, made when first needed).",
        |c, v| { c.compression = CompressionMode::parse(v).ok_or_else(|| bad("\"off\", \"shared\" or \"dedicated\""))?; Ok(()) };
    "compression_window_bits", "integer", "15",
        "LZ77 window of the server's compressors, 9-15 (a client may ask for less). Dedicated mode memory per connection: see README.",
        |c, v| { c.compression_window_bits = match number(v)? { n @ 9..=15 => n as u8, _ => return Err(bad("9-15")) }; Ok(()) };
    "compression_mem_level", "integer", "8",
        "zlib memLevel of the server's compressors, 1-9 (lower: less memory per dedicated connection, worse ratio).",
        |c, v| { c.compression_mem_level = match number(v)? { n @ 1..=9 => n as u8, _ => return Err(bad("1-9")) }; Ok(()) };
    "compression_threshold", "bytes", "128",
        "Messages shorter than this go uncompressed; a compressed form that is not smaller is never sent.",
        |c, v| { c.compression_threshold = size(number(v)?)?; Ok(()) };
    "max_buffered_bytes", "bytes", "67108864",
        "Cap on what one connection's send queue may cost (payload plus 64 bytes per queued entry).",
        |c, v| { c.max_buffered_bytes = size(positive(v)?)?; Ok(()) };
    "max_total_buffered_bytes", "bytes", "0",
        "Cap on what every send queue together may cost, with the same policy as max_buffered_bytes; 0 = a quarter of physical memory.",
        |c, v| { c.max_total_buffered_bytes = match number(v)? { 0 => default_total_buffered(), n => size(n)? }; Ok(()) };
    "backpressure", "choice", "block",
        "Past max_buffered_bytes: \"block\" (sends fail with WOULD_BLOCK, broadcast skips the peer, DRAIN follows) or \"close\".",
        |c, v| { c.backpressure = match v { "block" => BackpressurePolicy::Block, "close" => BackpressurePolicy::Close, _ => return Err(bad("\"block\" or \"close\"")) }; Ok(()) };
    "backpressure_close_code", "integer", "1008",
        "Close code for backpressure \"close\": 1008 or 1013.",
        |c, v| { c.backpressure_close_code = match number(v)? { 1008 => 1008, 1013 => 1013, _ => return Err(bad("1008 or 1013")) }; Ok(()) };
    "max_pending_event_bytes", "bytes", "67108864",
        "What events waiting for the host may cost (payload plus 64 bytes each); past it the loop stops reading sockets until the host catches up.",
        |c, v| { c.max_pending_event_bytes = size(positive(v)?)?; Ok(()) };
    "max_queued_command_bytes", "bytes", "67108864",
        "What host commands waiting for the loop may cost; past it sends, broadcasts and publishes fail with WOULD_BLOCK (counted in dropped_commands).",
        |c, v| { c.max_queued_command_bytes = size(positive(v)?)?; Ok(()) };
    "static_dir", "path", "",
        "Serve plain HTTP GET/HEAD from this directory; empty answers 426.",
        |c, v| { c.static_dir = (!v.is_empty()).then(|| PathBuf::from(v)); Ok(()) };
    "max_static_file_bytes", "bytes", "67108864",
        "Largest file served from static_dir.",
        |c, v| { c.max_static_file_bytes = number(v)?; Ok(()) };
    "subprotocols", "list", "",
        "Subprotocols the server speaks, most preferred first; the first one the client offers is chosen.",
        |c, v| { c.subprotocols = comma_list(v); Ok(()) };
    "allowed_origins", "list", "",
        "Exact Origin values allowed; others get 403; requests without Origin are allowed; empty allows any.",
        |c, v| { c.allowed_origins = comma_list(v); Ok(()) };
    "max_messages_per_sec", "count", "0",
        "Messages per second one connection may send (one second of burst); 0 = no limit.",
        |c, v| { c.max_messages_per_sec = u32::try_from(number(v)?).map_err(|_| bad("a smaller number"))?; Ok(()) };
    "max_bytes_per_sec", "bytes", "0",
        "Bytes per second one connection may send (one second of burst); 0 = no limit.",
        |c, v| { c.max_bytes_per_sec = number(v)?; Ok(()) };
    "rate_limit_policy", "choice", "close",
        "Over a rate limit: \"close\" (1008) or \"drop\" (counted in rate_limited).",
        |c, v| { c.rate_limit_policy = match v { "close" => RateLimitPolicy::Close, "drop" => RateLimitPolicy::Drop, _ => return Err(bad("\"close\" or \"drop\"")) }; Ok(()) };
    "max_connections_per_ip", "count", "0",
        "Simultaneous connections from one IP address; more get 429; 0 = no limit.",
        |c, v| { c.max_connections_per_ip = u32::try_from(number(v)?).map_err(|_| bad("a smaller number"))?; Ok(()) };
    "max_handshakes_per_ip_per_sec", "count", "0",
        "New connections per second from one IP address (one second of burst); more get 429; 0 = no limit.",
        |c, v| { c.max_handshakes_per_ip_per_sec = u32::try_from(number(v)?).map_err(|_| bad("a smaller number"))?; Ok(()) };
    "approve_handshakes", "bool", "false",
        "Report each valid upgrade request as a HANDSHAKE event and wait for the host to accept or reject it.",
        |c, v| { c.approve_handshakes = boolean(v)?; Ok(()) };
    "approval_timeout_ms", "milliseconds", "10000",
        "A handshake the host has not answered in this time is rejected with 503.",
        |c, v| { c.approval_timeout = ms(positive(v)?); Ok(()) };
    "redis_url", "text", "",
        "Join the servers connected to this Redis (redis://[user:password@]host:port[/db]): publish and broadcast reach their clients too; empty = this server alone.",
        |c, v| { c.redis_url = v.to_owned(); Ok(()) };
    "redis_prefix", "text", "wsembed",
        "Prefix of the Redis channels (servers sharing a prefix share topics): PREFIX:t:TOPIC and PREFIX:b.",
        |c, v| { c.redis_prefix = nonempty(v)?.to_owned(); Ok(()) };
    "tls_cert_file", "path", "",
        "PEM certificate chain for wss:// (read when set; TLS 1.2 and 1.3 only).",
        |c, v| { c.set_tls_part(true, read_pem(v)?); Ok(()) };
    "tls_key_file", "path", "",
        "PEM private key for wss:// (read when set).",
        |c, v| { c.set_tls_part(false, read_pem(v)?); Ok(()) };
    "tls_cert_pem", "pem", "",
        "The certificate chain as PEM text.",
        |c, v| { c.set_tls_part(true, v.as_bytes().to_vec()); Ok(()) };
    "tls_key_pem", "pem", "",
        "The private key as PEM text.",
        |c, v| { c.set_tls_part(false, v.as_bytes().to_vec()); Ok(()) };
}
