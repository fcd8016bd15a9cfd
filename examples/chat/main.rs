//! The live chat demo, Rust host: serves `examples/chat/index.html` and the WebSocket on one
//! port and broadcasts every text message to every connected browser.
//!
//!     cargo run --release --example chat -- [--port N] [--host H] [--tls CERT.pem KEY.pem] [--redis URL]
//!
//! Then open the printed URL in two browser tabs. With `--tls` the page and the socket are
//! served over https:// and wss://. With `--redis`, chat servers on other ports (or machines)
//! sharing that Redis share the room.

use std::time::Duration;

use wsembed::{Event, MessageKind, Server, ServerConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = ServerConfig { port: 8080, ..Default::default() };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--port" => config.set("port", &value)?,
            "--host" => config.set("host", &value)?,
            "--redis" => config.set("redis_url", &value)?,
            "--tls" => {
                let key = args.next().ok_or("--tls needs CERT.pem KEY.pem")?;
                config.set("tls_cert_file", &value)?;
                config.set("tls_key_file", &key)?;
            }
            _ => return Err(format!("usage: chat [--port N] [--host H] [--tls CERT.pem KEY.pem] [--redis URL] (got {arg})").into()),
        }
    }
    config.static_dir = Some(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/chat").into());
    config.max_message_size = 64 * 1024;
    // Every browser offers permessage-deflate; shared contexts cost an idle tab nothing.
    config.compression = wsembed::config::CompressionMode::Shared;
    let tls = config.tls.is_some();
    let server = Server::start(config)?;
    let port = server.local_addr().port();
    let secure = if tls { "s" } else { "" };
    println!("listening on ws{secure}://127.0.0.1:{port}");
    println!("open http{secure}://127.0.0.1:{port}/ in a browser");

    let handle = server.handle();
    loop {
        for event in server.poll(Some(Duration::from_secs(1)))? {
            match event {
                Event::Open { conn, peer, .. } => eprintln!("{conn:#x} joined from {peer}"),
                // A full queue (WouldBlock) drops this line for the slow clients only.
                Event::Message { data, is_text: true, .. } => {
                    let _ = handle.broadcast(MessageKind::Text, &data, None);
                }
                Event::Message { conn, is_text: false, .. } => {
                    let _ = handle.close(conn, 1003, "text only");
                }
                Event::Close { conn, code, .. } => eprintln!("{conn:#x} left ({code})"),
                Event::BridgeUp => eprintln!("redis: connected, the room spans every server on it"),
                Event::BridgeDown { reason } => eprintln!("redis: down ({reason}); this server's clients still chat"),
                _ => {}
            }
        }
    }
}
