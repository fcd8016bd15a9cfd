//! wss:// echo throughput as a ratio of plain ws://, measured side by side in one run.
//!
//!     cargo bench --bench tls_ratio [-- --conns 8 --seconds 4 --size 64]
//!
//! Starts one in-process wsembed echo server per scheme (the host echoes on its own thread,
//! as a C host would), drives each with the same closed-loop load (N blocking tungstenite
//! clients, one message in flight each; TLS clients use rustls), and prints messages/s for
//! both and the ratio. Rounds alternate ws, wss to spread machine noise.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::{Connector, Message};
use wsembed::{Event, MessageKind, Server, ServerConfig, TlsPem};

struct Options {
    conns: usize,
    seconds: f64,
    size: usize,
}

fn options() -> Options {
    let mut o = Options { conns: 8, seconds: 4.0, size: 64 };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--conns" => o.conns = value.parse().expect("--conns N"),
            "--seconds" => o.seconds = value.parse().expect("--seconds S"),
            "--size" => o.size = value.parse().expect("--size BYTES"),
            _ => {
                i += 1; // e.g. the --bench flag cargo passes
                continue;
            }
        }
        i += 2;
    }
    o
}

/// An echo server whose host loop runs on its own thread until the returned flag is set.
fn echo_server(tls: Option<TlsPem>) -> (Arc<Server>, Arc<AtomicBool>) {
    let server = Arc::new(Server::start(ServerConfig { tls, ..Default::default() }).expect("server starts"));
    let stop = Arc::new(AtomicBool::new(false));
    let (host, done) = (server.clone(), stop.clone());
    std::thread::spawn(move || {
        let handle = host.handle();
        while !done.load(Ordering::Relaxed) {
            let Ok(events) = host.poll(Some(Duration::from_millis(50))) else { return };
            for event in events {
                if let Event::Message { conn, data, is_text } = event {
                    let kind = if is_text { MessageKind::Text } else { MessageKind::Binary };
                    let _ = handle.send(conn, kind, &data);
                }
            }
        }
    });
    (server, stop)
}

type Client = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

fn connect(port: u16, tls: Option<&Arc<rustls::ClientConfig>>) -> Client {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_nodelay(true).unwrap();
    let (url, connector) = match tls {
        Some(config) => (format!("wss://localhost:{port}/"), Some(Connector::Rustls(config.clone()))),
        None => (format!("ws://localhost:{port}/"), Some(Connector::Plain)),
    };
    tungstenite::client_tls_with_config(url, tcp, None, connector).expect("handshake").0
}

/// Messages per second over `o.seconds` with `o.conns` closed-loop clients.
fn measure(port: u16, tls: Option<&Arc<rustls::ClientConfig>>, o: &Options) -> f64 {
    let total = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(o.seconds);
    let clients: Vec<_> = (0..o.conns).map(|_| connect(port, tls)).collect();
    let started = Instant::now();
    let threads: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            let (total, payload) = (total.clone(), vec![7u8; o.size]);
            std::thread::spawn(move || {
                let mut n = 0;
                while Instant::now() < deadline {
                    ws.send(Message::binary(payload.clone())).unwrap();
                    match ws.read().unwrap() {
                        Message::Binary(b) => assert_eq!(b.len(), payload.len()),
                        other => panic!("unexpected {other:?}"),
                    }
                    n += 1;
                }
                total.fetch_add(n, Ordering::Relaxed);
                let _ = ws.close(None);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    total.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let o = options();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let pem = TlsPem { cert_chain: cert.cert.pem().into_bytes(), private_key: cert.key_pair.serialize_pem().into_bytes() };
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let client_config = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let (plain, stop_plain) = echo_server(None);
    let (secure, stop_secure) = echo_server(Some(pem));
    let (mut ws, mut wss) = (0.0f64, 0.0f64);
    for _round in 0..2 {
        ws = ws.max(measure(plain.local_addr().port(), None, &o));
        wss = wss.max(measure(secure.local_addr().port(), Some(&client_config), &o));
    }
    stop_plain.store(true, Ordering::Relaxed);
    stop_secure.store(true, Ordering::Relaxed);
    println!("echo, {} connections x 1 in flight x {} B, best of 2 rounds of {} s:", o.conns, o.size, o.seconds);
    println!("  ws://   {ws:>10.0} msgs/s");
    println!("  wss://  {wss:>10.0} msgs/s");
    println!("  wss/ws  {:>10.2}", wss / ws);
}
