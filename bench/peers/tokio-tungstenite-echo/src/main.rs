//! tokio-tungstenite echo server (default `#[tokio::main]` runtime, default WebSocket config),
//! a peer for the wsembed benchmark.
//!
//!   tokio-tungstenite-echo [--port N] [--broadcast]
//!
//! Echoes each message to its sender, or with --broadcast sends each message to every connected
//! client (one unbounded channel + writer task per client). Prints "listening on ws://127.0.0.1:PORT".

use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

type Clients = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Message>>>>;

#[tokio::main]
async fn main() {
    let mut port: u16 = 0;
    let mut broadcast = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).expect("--port N"),
            "--broadcast" => broadcast = true,
            _ => {
                eprintln!("usage: tokio-tungstenite-echo [--port N] [--broadcast]");
                std::process::exit(2);
            }
        }
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    println!("listening on ws://127.0.0.1:{}", listener.local_addr().unwrap().port());
    std::io::stdout().flush().unwrap();

    let clients: Clients = Arc::new(Mutex::new(HashMap::new()));
    let next_id = Arc::new(AtomicU64::new(0));
    let accept = async {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            if broadcast {
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(fanout(stream, id, clients.clone()));
            } else {
                tokio::spawn(echo(stream));
            }
        }
    };
    tokio::select! {
        _ = accept => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = sigterm() => {}
    }
}

async fn sigterm() {
    let mut s = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    s.recv().await;
}

async fn echo(stream: TcpStream) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
    while let Some(Ok(msg)) = ws.next().await {
        if (msg.is_binary() || msg.is_text()) && ws.send(msg).await.is_err() {
            break;
        }
    }
}

async fn fanout(stream: TcpStream, id: u64, clients: Clients) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else { return };
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    clients.lock().unwrap().insert(id, tx);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(msg)) = source.next().await {
        if msg.is_binary() || msg.is_text() {
            for tx in clients.lock().unwrap().values() {
                let _ = tx.send(msg.clone());
            }
        }
    }
    clients.lock().unwrap().remove(&id);
    writer.abort();
}
