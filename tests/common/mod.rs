//! Helpers shared by the integration tests: start a server, connect tungstenite clients,
//! and wait for events with deadlines (never sleep-and-hope).

#![allow(dead_code)]

pub mod redis;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use tungstenite::stream::MaybeTlsStream;
use tungstenite::WebSocket;
use wsembed::{ConnId, Event, Server, ServerConfig};

pub const DEADLINE: Duration = Duration::from_secs(10);

pub type Client = WebSocket<MaybeTlsStream<TcpStream>>;

pub fn start(configure: impl FnOnce(&mut ServerConfig)) -> Server {
    let mut config = ServerConfig::default();
    configure(&mut config);
    Server::start(config).expect("server starts")
}

pub fn url(server: &Server, path: &str) -> String {
    format!("ws://{}{}", server.local_addr(), path)
}

pub fn connect(server: &Server) -> Client {
    connect_path(server, "/")
}

pub fn connect_path(server: &Server, path: &str) -> Client {
    let (ws, _) = tungstenite::connect(url(server, path)).expect("client connects");
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(DEADLINE)).unwrap();
    }
    ws
}

thread_local! {
    /// Events polled but not yet picked, per server (tests run on their own threads).
    static PENDING: std::cell::RefCell<std::collections::HashMap<std::net::SocketAddr, std::collections::VecDeque<Event>>> =
        Default::default();
}

/// Waits until `pick` accepts an event, keeping the ones it passes over for later waits;
/// panics at the deadline.
pub fn wait_for<T>(server: &Server, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    let key = server.local_addr();
    loop {
        let found = PENDING.with(|p| {
            let mut p = p.borrow_mut();
            let queue = p.entry(key).or_default();
            let hit = queue.iter().enumerate().find_map(|(i, e)| pick(e).map(|t| (i, t)));
            hit.map(|(i, t)| {
                queue.remove(i);
                t
            })
        });
        if let Some(found) = found {
            return found;
        }
        let left = deadline.checked_duration_since(Instant::now()).expect("event did not arrive before the deadline");
        let batch = server.poll(Some(left.min(Duration::from_millis(200)))).expect("poll");
        PENDING.with(|p| p.borrow_mut().entry(key).or_default().extend(batch));
    }
}

pub fn wait_open(server: &Server) -> ConnId {
    wait_for(server, |e| match e {
        Event::Open { conn, .. } => Some(*conn),
        _ => None,
    })
}

/// Waits for the Close event of `conn`: (code, reason, clean).
pub fn wait_close(server: &Server, conn: ConnId) -> (u16, String, bool) {
    wait_for(server, |e| match e {
        Event::Close { conn: c, code, reason, clean } if *c == conn => Some((*code, reason.clone(), *clean)),
        _ => None,
    })
}

pub fn wait_message(server: &Server) -> (ConnId, Vec<u8>, bool) {
    wait_for(server, |e| match e {
        Event::Message { conn, data, is_text } => Some((*conn, data.clone(), *is_text)),
        _ => None,
    })
}

/// A hand-driven client for cases a well-behaved library will not produce.
pub struct Raw {
    pub stream: TcpStream,
}

/// A plain upgrade request.
pub const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

impl Raw {
    /// Connects and completes the upgrade.
    pub fn connect(server: &Server) -> Raw {
        let mut raw = Raw::tcp(server);
        raw.write(UPGRADE);
        let head = raw.read_http_head();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        raw
    }

    /// Connects and waits for the `Open` event before reading the answer, so that it works in
    /// host-driven mode too (the polls run the handshake).
    pub fn connect_polling(server: &Server) -> (Raw, ConnId) {
        let mut raw = Raw::tcp(server);
        raw.write(UPGRADE);
        let conn = wait_open(server);
        let head = raw.read_http_head();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        (raw, conn)
    }

    /// A plain TCP connection (no handshake).
    pub fn tcp(server: &Server) -> Raw {
        let stream = TcpStream::connect(server.local_addr()).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.set_nodelay(true).unwrap();
        Raw { stream }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads up to the end of an HTTP response head.
    pub fn read_http_head(&mut self) -> String {
        use std::io::Read;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match self.stream.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
        String::from_utf8_lossy(&head).into_owned()
    }

    /// Reads until EOF (or the deadline), returning everything.
    pub fn read_to_end(&mut self) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        let _ = self.stream.read_to_end(&mut out);
        out
    }

    /// Sends one masked frame; `first` is the first header byte (FIN/RSV/opcode).
    pub fn frame(&mut self, first: u8, payload: &[u8]) {
        self.write(&masked_frame(first, payload));
    }

    /// Reads one server frame: (first header byte, payload).
    pub fn read_frame(&mut self) -> (u8, Vec<u8>) {
        use std::io::Read;
        let mut head = [0u8; 2];
        self.stream.read_exact(&mut head).expect("frame header");
        assert_eq!(head[1] & 0x80, 0, "server frames are unmasked");
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                self.stream.read_exact(&mut b).unwrap();
                u16::from_be_bytes(b) as usize
            }
            127 => {
                let mut b = [0u8; 8];
                self.stream.read_exact(&mut b).unwrap();
                u64::from_be_bytes(b) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload).unwrap();
        (head[0], payload)
    }

    /// Reads frames until a close frame; returns its code (None when empty).
    pub fn read_close_code(&mut self) -> Option<u16> {
        loop {
            let (first, payload) = self.read_frame();
            if first & 0x0f == 0x8 {
                return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
            }
        }
    }
}

pub fn masked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    wsembed::protocol::encoder::client_frame(first, payload, [0x12, 0x34, 0x56, 0x78])
}

/// After a hostile case: a well-behaved client still gets served promptly.
pub fn assert_still_serves(server: &Server) {
    use tungstenite::Message;
    let mut client = connect(server);
    let conn = wait_open(server);
    client.send(Message::text("still there?")).unwrap();
    let (from, data, _) = wait_message(server);
    assert_eq!((from, data.as_slice()), (conn, &b"still there?"[..]));
}
