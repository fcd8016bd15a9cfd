pub struct StaticResponse { pub status: u16, pub head: Vec<u8>, pub body: Vec<u8> }
pub fn respond(_root: &std::path::Path, _method: &str, _target: &str, _max: u64) -> StaticResponse { error_response(404, "x") }
pub fn upgrade_required() -> StaticResponse { let mut r = error_response(426, "Upgrade Required"); r.head = b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nUpgrade: websocket\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".to_vec(); r.body.clear(); r }
pub fn error_response(status: u16, body: &str) -> StaticResponse { StaticResponse { status, head: format!("HTTP/1.1 {status} Error\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).into_bytes(), body: body.as_bytes().to_vec() } }
