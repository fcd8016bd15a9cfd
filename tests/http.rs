//! Plain HTTP on the WebSocket port: static files with content types, and nothing outside
//! the configured directory.

mod common;
use common::*;

fn get(server: &wsembed::Server, request: &str) -> String {
    let mut raw = Raw::tcp(server);
    raw.write(request.as_bytes());
    String::from_utf8_lossy(&raw.read_to_end()).into_owned()
}

fn site() -> (std::path::PathBuf, std::path::PathBuf) {
    let base = std::env::temp_dir().join(format!("wsembed-http-{}", std::process::id()));
    let root = base.join("site");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("index.html"), "<h1>home</h1>").unwrap();
    std::fs::write(root.join("app.js"), "console.log(1)").unwrap();
    std::fs::write(root.join("sub/data.json"), "{}").unwrap();
    std::fs::write(base.join("secret.txt"), "top secret").unwrap();
    let _ = std::os::unix::fs::symlink(base.join("secret.txt"), root.join("link.txt"));
    (base, root)
}

#[test]
fn serves_files_and_refuses_escapes() {
    let (base, root) = site();
    let server = start(|c| c.static_dir = Some(root.clone()));
    let index = get(&server, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(index.starts_with("HTTP/1.1 200") && index.contains("text/html") && index.ends_with("<h1>home</h1>"), "{index}");
    let js = get(&server, "GET /app.js?v=2 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(js.starts_with("HTTP/1.1 200") && js.contains("javascript"), "{js}");
    let json = get(&server, "GET /sub/data.json HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(json.contains("application/json"), "{json}");
    let head = get(&server, "HEAD /app.js HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"), "HEAD has no body: {head}");
    assert!(get(&server, "GET /missing.html HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 404"));
    for attack in ["/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt", "/..%5csecret.txt", "/link.txt"] {
        let response = get(&server, &format!("GET {attack} HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!response.contains("top secret"), "{attack} leaked: {response}");
        assert!(response.starts_with("HTTP/1.1 4"), "{attack}: {response}");
    }
    // The WebSocket still works on the same port.
    assert_still_serves(&server);
    let _ = std::fs::remove_dir_all(base);
}
