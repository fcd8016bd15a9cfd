//! Sans-IO(ish) static file responder for non-upgrade HTTP requests.
//!
//! "Sans-IO" here means: no sockets. The function takes the already-parsed request line pieces and
//! returns complete response bytes (head + body). It *does* touch the filesystem (metadata, canonicalize,
//! read), synchronously; callers running it on the event-loop thread should keep `max_file_bytes` modest.
//!
//! Security model:
//! * The target is split on raw `/` *before* percent-decoding, so an encoded `%2F` can never introduce a
//!   separator; a decoded segment containing `/`, `\`, NUL, or that is `.`/`..`/a dotfile is refused.
//! * Every decoded segment must be a single `std::path::Component::Normal` (rejects Windows prefixes
//!   such as `C:` and roots).
//! * The final path (and the `index.html` inside a directory) is canonicalized and must start with `root`,
//!   which defeats symlinks pointing out of the root. `root` must itself be canonical (the caller does this
//!   at server start), otherwise every request would be refused.
//! * Only regular files are opened (never FIFOs/devices, which could block the event loop).

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// A prepared HTTP response: full head bytes + body bytes (body empty for HEAD).
pub struct StaticResponse {
    pub status: u16,
    pub head: Vec<u8>,
    pub body: Vec<u8>,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

fn build(status: u16, content_type: &str, content_length: u64, extra: &[(&str, &str)], body: Vec<u8>) -> StaticResponse {
    let mut head = format!("HTTP/1.1 {} {}\r\n", status, reason(status));
    head.push_str(&format!("Content-Type: {}\r\n", content_type));
    head.push_str(&format!("Content-Length: {}\r\n", content_length));
    for (k, v) in extra {
        head.push_str(&format!("{}: {}\r\n", k, v));
    }
    head.push_str("X-Content-Type-Options: nosniff\r\n");
    head.push_str("Connection: close\r\n\r\n");
    StaticResponse { status, head: head.into_bytes(), body }
}

/// A plain error response (400, 403, 404, 405, 431, 503, ...) with a short text/plain body and Connection: close.
pub fn error_response(status: u16, body: &str) -> StaticResponse {
    build(status, "text/plain; charset=utf-8", body.len() as u64, &[], body.as_bytes().to_vec())
}

/// Response for a request that is neither a WebSocket upgrade nor served from a static directory:
/// 426 Upgrade Required with `Sec-WebSocket-Version: 13`, `Upgrade: websocket`, `Connection: close`
/// headers, small text body.
pub fn upgrade_required() -> StaticResponse {
    let body = "This endpoint requires a WebSocket upgrade.\n";
    build(
        426,
        "text/plain; charset=utf-8",
        body.len() as u64,
        &[("Sec-WebSocket-Version", "13"), ("Upgrade", "websocket")],
        body.as_bytes().to_vec(),
    )
}

fn content_type_for(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "wasm" => "application/wasm",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decode one path segment. `None` on malformed escapes.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() {
                return None;
            }
            let hi = hex_val(b[i + 1])?;
            let lo = hex_val(b[i + 2])?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

enum Resolve {
    Ok(PathBuf),
    Status(u16, &'static str),
}

/// Turn the raw target into a relative path under root, or an error status.
fn resolve_target(target: &str) -> Resolve {
    if !target.starts_with('/') {
        return Resolve::Status(400, "Bad Request: target must start with '/'\n");
    }
    if target.bytes().any(|c| c == 0) {
        return Resolve::Status(400, "Bad Request\n");
    }
    let path = target.split(['?', '#']).next().unwrap_or("");
    let mut rel = PathBuf::new();
    for raw in path.split('/') {
        let seg = match percent_decode(raw) {
            Some(s) => s,
            None => return Resolve::Status(400, "Bad Request: bad percent-encoding\n"),
        };
        if seg.contains(&0) {
            return Resolve::Status(400, "Bad Request\n");
        }
        let seg = match String::from_utf8(seg) {
            Ok(s) => s,
            Err(_) => return Resolve::Status(400, "Bad Request: path is not UTF-8\n"),
        };
        if seg.is_empty() || seg == "." {
            continue;
        }
        // `..` (raw or encoded), encoded separators, backslashes, and dotfiles (.git, .env, ...) are refused.
        if seg.starts_with('.') || seg.contains('/') || seg.contains('\\') {
            return Resolve::Status(403, "Forbidden\n");
        }
        let mut comps = Path::new(&seg).components();
        match (comps.next(), comps.next()) {
            (Some(Component::Normal(_)), None) => {}
            _ => return Resolve::Status(403, "Forbidden\n"),
        }
        rel.push(&seg);
    }
    Resolve::Ok(rel)
}

/// Canonicalize `p` and make sure it is inside `root`.
fn confine(root: &Path, p: &Path) -> Result<PathBuf, (u16, &'static str)> {
    match p.canonicalize() {
        Ok(c) if c.starts_with(root) => Ok(c),
        Ok(_) => Err((403, "Forbidden\n")),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err((403, "Forbidden\n")),
        Err(_) => Err((404, "Not Found\n")),
    }
}

/// `root` is the configured directory (already canonicalized by the caller at server start).
/// `method` is the request method, `target` the raw request target (path + optional ?query).
pub fn respond(root: &Path, method: &str, target: &str, max_file_bytes: u64) -> StaticResponse {
    let head_only = method == "HEAD";
    let mut resp = respond_inner(root, method, target, max_file_bytes);
    if head_only {
        resp.body.clear(); // errors too: HEAD never carries a body (Content-Length still describes GET)
    }
    resp
}

fn respond_inner(root: &Path, method: &str, target: &str, max_file_bytes: u64) -> StaticResponse {
    if method != "GET" && method != "HEAD" {
        let body = "Method Not Allowed\n";
        return build(405, "text/plain; charset=utf-8", body.len() as u64, &[("Allow", "GET, HEAD")], body.as_bytes().to_vec());
    }
    let rel = match resolve_target(target) {
        Resolve::Ok(r) => r,
        Resolve::Status(s, b) => return error_response(s, b),
    };
    let mut path = match confine(root, &root.join(&rel)) {
        Ok(p) => p,
        Err((s, b)) => return error_response(s, b),
    };
    let mut meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(_) => return error_response(404, "Not Found\n"),
    };
    if meta.is_dir() {
        path = match confine(root, &path.join("index.html")) {
            Ok(p) => p,
            Err((s, b)) => return error_response(s, b),
        };
        meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(_) => return error_response(404, "Not Found\n"),
        };
    }
    // Only regular files: FIFOs/devices could block the event loop forever.
    if !meta.is_file() {
        return error_response(404, "Not Found\n");
    }
    // Oversized files are refused with 403 rather than 413: 413 means "your *request* body is too large",
    // which is wrong here; the server is simply configured not to serve this resource.
    if meta.len() > max_file_bytes {
        return error_response(403, "Forbidden: file too large\n");
    }
    let ctype = content_type_for(&path);
    let body = if method == "HEAD" {
        Vec::new()
    } else {
        let mut buf = Vec::with_capacity(meta.len() as usize);
        let res = File::open(&path).and_then(|f| f.take(max_file_bytes.saturating_add(1)).read_to_end(&mut buf));
        match res {
            Ok(_) if buf.len() as u64 > max_file_bytes => return error_response(403, "Forbidden: file too large\n"),
            Ok(_) => buf,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return error_response(403, "Forbidden\n"),
            Err(_) => return error_response(404, "Not Found\n"),
        }
    };
    let len = if method == "HEAD" { meta.len() } else { body.len() as u64 };
    build(200, ctype, len, &[], body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct TempDir(PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    static N: AtomicUsize = AtomicUsize::new(0);

    /// Layout: <base>/root/{index.html, app.js, style.CSS, data.bin, sub/index.html, nodir/a.txt, .secret}
    ///         <base>/outside.txt
    fn setup() -> (TempDir, PathBuf) {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let base = std::env::temp_dir().join(format!("wsembed-sf-test-{}-{}", std::process::id(), n));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("root/sub")).unwrap();
        fs::create_dir_all(base.join("root/nodir")).unwrap();
        fs::write(base.join("root/index.html"), "<h1>hi</h1>").unwrap();
        fs::write(base.join("root/app.js"), "console.log(1)").unwrap();
        fs::write(base.join("root/style.CSS"), "body{}").unwrap();
        fs::write(base.join("root/data.bin"), [0u8, 1, 2]).unwrap();
        fs::write(base.join("root/sub/index.html"), "sub").unwrap();
        fs::write(base.join("root/nodir/a.txt"), "a").unwrap();
        fs::write(base.join("root/.secret"), "s").unwrap();
        fs::write(base.join("outside.txt"), "SECRET").unwrap();
        let root = base.join("root").canonicalize().unwrap();
        (TempDir(base), root)
    }

    fn head_str(r: &StaticResponse) -> String {
        String::from_utf8(r.head.clone()).unwrap()
    }

    fn get(root: &Path, t: &str) -> StaticResponse {
        respond(root, "GET", t, 1 << 20)
    }

    #[test]
    fn index_for_root() {
        let (_t, root) = setup();
        let r = get(&root, "/");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"<h1>hi</h1>");
        let h = head_str(&r);
        assert!(h.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(h.contains("Content-Type: text/html; charset=utf-8\r\n"));
        assert!(h.contains("Content-Length: 11\r\n"));
        assert!(h.contains("Connection: close\r\n"));
        assert!(h.contains("X-Content-Type-Options: nosniff\r\n"));
        assert!(h.ends_with("\r\n\r\n"));
        // directories serve their index.html, with or without trailing slash
        assert_eq!(get(&root, "/sub").body, b"sub");
        assert_eq!(get(&root, "/sub/").body, b"sub");
        // directory without index.html
        assert_eq!(get(&root, "/nodir/").status, 404);
    }

    #[test]
    fn content_types() {
        let (_t, root) = setup();
        assert!(head_str(&get(&root, "/app.js")).contains("Content-Type: text/javascript; charset=utf-8\r\n"));
        assert!(head_str(&get(&root, "/style.CSS")).contains("Content-Type: text/css; charset=utf-8\r\n"));
        assert!(head_str(&get(&root, "/data.bin")).contains("Content-Type: application/octet-stream\r\n"));
        assert!(head_str(&get(&root, "/nodir/a.txt")).contains("Content-Type: text/plain; charset=utf-8\r\n"));
        assert_eq!(content_type_for(Path::new("x.woff2")), "font/woff2");
        assert_eq!(content_type_for(Path::new("x.svg")), "image/svg+xml");
        assert_eq!(content_type_for(Path::new("x.mjs")), "text/javascript; charset=utf-8");
    }

    #[test]
    fn not_found_and_query() {
        let (_t, root) = setup();
        assert_eq!(get(&root, "/nope.html").status, 404);
        assert_eq!(get(&root, "/index.html/x").status, 404);
        let r = get(&root, "/app.js?v=1&x=/../../outside.txt");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"console.log(1)");
        assert_eq!(get(&root, "/?x=1").status, 200);
        // percent-encoded normal chars decode
        assert_eq!(get(&root, "/%61pp.js").status, 200);
    }

    #[test]
    fn traversal_refused() {
        let (_t, root) = setup();
        for t in [
            "/../outside.txt",
            "/sub/../../outside.txt",
            "/%2e%2e/outside.txt",
            "/%2E%2E/outside.txt",
            "/.%2e/outside.txt",
            "/..%2Foutside.txt",
            "/sub%2F..%2F..%2Foutside.txt",
            "/..\\outside.txt",
            "/..%5Coutside.txt",
            "/.secret",
        ] {
            let r = get(&root, t);
            assert!(r.status == 403 || r.status == 404, "{} -> {}", t, r.status);
            assert!(!r.body.windows(6).any(|w| w == b"SECRET"), "{} leaked", t);
        }
    }

    #[test]
    fn malformed_targets() {
        let (_t, root) = setup();
        assert_eq!(get(&root, "index.html").status, 400);
        assert_eq!(get(&root, "http://x/index.html").status, 400);
        assert_eq!(get(&root, "*").status, 400);
        assert_eq!(get(&root, "").status, 400);
        assert_eq!(get(&root, "/%zz").status, 400);
        assert_eq!(get(&root, "/abc%2").status, 400);
        assert_eq!(get(&root, "/abc%").status, 400);
        assert_eq!(get(&root, "/a%00b").status, 400);
        assert_eq!(get(&root, "/a\0b").status, 400);
        assert_eq!(get(&root, "/%ff%fe").status, 400);
    }

    #[cfg(unix)]
    #[test]
    fn symlink_escape_refused() {
        let (t, root) = setup();
        std::os::unix::fs::symlink(t.0.join("outside.txt"), root.join("link.txt")).unwrap();
        std::os::unix::fs::symlink(&t.0, root.join("linkdir")).unwrap();
        std::os::unix::fs::symlink(root.join("app.js"), root.join("inside.js")).unwrap();
        let r = get(&root, "/link.txt");
        assert_eq!(r.status, 403);
        assert!(r.body != b"SECRET");
        assert_eq!(get(&root, "/linkdir/outside.txt").status, 403);
        assert_eq!(get(&root, "/linkdir/").status, 403);
        // symlinks that stay inside root are fine
        assert_eq!(get(&root, "/inside.js").status, 200);
    }

    #[test]
    fn head_has_no_body() {
        let (_t, root) = setup();
        let g = get(&root, "/index.html");
        let h = respond(&root, "HEAD", "/index.html", 1 << 20);
        assert_eq!(h.status, 200);
        assert!(h.body.is_empty());
        assert_eq!(h.head, g.head);
        let e = respond(&root, "HEAD", "/missing", 1 << 20);
        assert_eq!(e.status, 404);
        assert!(e.body.is_empty());
    }

    #[test]
    fn methods_and_limits() {
        let (_t, root) = setup();
        let r = respond(&root, "POST", "/", 1 << 20);
        assert_eq!(r.status, 405);
        assert!(head_str(&r).contains("Allow: GET, HEAD\r\n"));
        assert_eq!(respond(&root, "get", "/", 1 << 20).status, 405);
        assert_eq!(respond(&root, "GET", "/index.html", 5).status, 403);
        assert_eq!(respond(&root, "GET", "/index.html", 11).status, 200);
    }

    #[test]
    fn canned_responses() {
        let u = upgrade_required();
        assert_eq!(u.status, 426);
        let h = head_str(&u);
        assert!(h.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(h.contains("Sec-WebSocket-Version: 13\r\n"));
        assert!(h.contains("Upgrade: websocket\r\n"));
        assert!(h.contains("Connection: close\r\n"));
        assert!(h.contains(&format!("Content-Length: {}\r\n", u.body.len())));
        let e = error_response(431, "too big");
        assert_eq!(e.status, 431);
        assert!(head_str(&e).starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head_str(&e).contains("Content-Length: 7\r\n"));
        assert_eq!(e.body, b"too big");
    }
}
