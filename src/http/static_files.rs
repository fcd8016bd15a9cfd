//! Static file responder for non-upgrade HTTP requests.
//!
//! No sockets here: [`serve`] takes the request line (and the conditional headers, see
//! [`StaticRequest`]) and returns the response head plus a [`Body`], which is either bytes or an
//! open file that the caller sends in chunks as the socket drains ([`Body::next_chunk`]). It
//! *does* touch the filesystem (metadata, canonicalize, open, read) synchronously; a chunk read
//! is bounded by the `max` the caller asks for.
//!
//! Responses (`Connection: close` each): `200` with `Content-Type` (from the extension, by
//! `mime_guess`), `Content-Length`, `ETag` (strong, from size and modification time),
//! `Last-Modified`, `Date`, `Cache-Control: no-cache` (store, but revalidate) and
//! `Accept-Ranges: none` (a `Range` header is ignored: the whole file is sent); `304 Not
//! Modified` when `If-None-Match` matches the ETag, or, without `If-None-Match`, when the file
//! is not newer than `If-Modified-Since` (RFC 9110 section 13.2.2); HEAD gets the head of the
//! GET answer and no body; other methods 405.
//!
//! Security model:
//! * The target is split on raw `/` *before* percent-decoding, so an encoded `%2F` can never
//!   introduce a separator; a decoded segment containing `/`, `\`, NUL, or that is `.`/`..`/a
//!   dotfile is refused.
//! * Every decoded segment must be a single `std::path::Component::Normal` (rejects Windows
//!   prefixes such as `C:` and roots).
//! * The final path (and the `index.html` inside a directory) is canonicalized and must start
//!   with `root`, which defeats symlinks pointing out of the root. `root` must itself be
//!   canonical (the caller does this at server start), otherwise every request is refused.
//! * Only regular files are served (never FIFOs/devices, which could block the event loop): the
//!   path is checked with `stat`, opened with `O_NONBLOCK | O_NOFOLLOW`, and the open file is
//!   checked again with `fstat`, so a file swapped after the check is caught too.
//!
//! # Integration with the event loop
//! The loop calls [`serve`], queues `head`, then pulls [`Body::next_chunk`] whenever the
//! connection's queue drains, until it returns `Ok(None)`; an `Err` means the file could not be
//! read to its announced length, so the connection is dropped (the head promised more).

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};

/// A prepared HTTP response: the complete head and the body.
///
/// `B` is the body type: `Vec<u8>` (the default, what the current event loop and the canned
/// refusals use) or [`Body`], whose file variant is read chunk by chunk (see [`serve`]). HEAD and
/// 304 responses have an empty body.
pub struct StaticResponse<B = Vec<u8>> {
    pub status: u16,
    pub head: Vec<u8>,
    pub body: B,
}

/// A response body: bytes already in memory, or an open file with the number of bytes still
/// to send (fixed when the response was prepared, whatever happens to the file afterwards).
pub enum Body {
    Bytes(Bytes),
    File { file: File, remaining: u64 },
}

impl Body {
    /// Bytes still to be sent (tests).
    #[cfg(test)]
    pub fn len(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::File { remaining, .. } => *remaining,
        }
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next piece of the body, at most `max` bytes (`max` 0 is taken as 1), or `None` when
    /// everything was returned. A file is read once per call (one `read(2)` of at most `max`
    /// bytes); a file that ends before its announced length gives `UnexpectedEof`.
    pub fn next_chunk(&mut self, max: usize) -> io::Result<Option<Bytes>> {
        let max = max.max(1);
        match self {
            Body::Bytes(b) if b.is_empty() => Ok(None),
            Body::Bytes(b) => Ok(Some(b.split_to(b.len().min(max)))),
            Body::File { remaining: 0, .. } => Ok(None),
            Body::File { file, remaining } => {
                let want = (*remaining).min(max as u64) as usize;
                let mut buf = BytesMut::zeroed(want);
                let n = loop {
                    match file.read(&mut buf) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                };
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shorter than its Content-Length"));
                }
                buf.truncate(n);
                *remaining -= n as u64;
                Ok(Some(buf.freeze()))
            }
        }
    }

    /// The whole remaining body in memory (tests).
    #[cfg(test)]
    pub fn read_all(mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.len().min(usize::MAX as u64) as usize);
        while let Some(chunk) = self.next_chunk(1 << 20)? {
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Body::Bytes(Bytes::from(v))
    }
}

impl StaticResponse<Body> {
    /// See [`Body::next_chunk`] (tests; the loop reads the body directly).
    #[cfg(test)]
    pub fn next_chunk(&mut self, max: usize) -> io::Result<Option<Bytes>> {
        self.body.next_chunk(max)
    }

    /// Reads a file body whole (tests): a file that cannot be read to its announced length
    /// becomes a 500.
    #[cfg(test)]
    pub fn into_buffered(self) -> StaticResponse {
        let StaticResponse { status, head, body } = self;
        match body.read_all() {
            Ok(body) => StaticResponse { status, head, body },
            Err(_) => error_response(500, "Internal Server Error\n"),
        }
    }
}

impl From<StaticResponse> for StaticResponse<Body> {
    fn from(r: StaticResponse) -> Self {
        StaticResponse { status: r.status, head: r.head, body: Body::from(r.body) }
    }
}

/// The reason phrase of a status code (from the `http` crate), "Unknown" for unregistered ones.
fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Unknown")
}

/// The head: status line, `content` (type and length) when given, `extra` headers, then
/// `X-Content-Type-Options: nosniff` and `Connection: close`.
fn head(status: u16, content: Option<(&str, u64)>, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", status, reason(status));
    if let Some((content_type, content_length)) = content {
        head.push_str(&format!("Content-Type: {content_type}\r\nContent-Length: {content_length}\r\n"));
    }
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("X-Content-Type-Options: nosniff\r\n");
    head.push_str("Connection: close\r\n\r\n");
    head.into_bytes()
}

fn text_response(status: u16, extra: &[(&str, &str)], body: &str) -> StaticResponse {
    StaticResponse {
        status,
        head: head(status, Some(("text/plain; charset=utf-8", body.len() as u64)), extra),
        body: body.as_bytes().to_vec(),
    }
}

/// A plain error response (400, 403, 404, 405, 431, 503, ...) with a short text/plain body and Connection: close.
pub fn error_response(status: u16, body: &str) -> StaticResponse {
    text_response(status, &[], body)
}

/// Response for a request that is neither a WebSocket upgrade nor served from a static directory:
/// 426 Upgrade Required with `Sec-WebSocket-Version: 13`, `Upgrade: websocket`, `Connection: close`
/// headers, small text body.
pub fn upgrade_required() -> StaticResponse {
    text_response(
        426,
        &[("Sec-WebSocket-Version", "13"), ("Upgrade", "websocket")],
        "This endpoint requires a WebSocket upgrade.\n",
    )
}

/// The `Content-Type` for a file: `mime_guess` by extension, `; charset=utf-8` on text types
/// (files are served as they are; UTF-8 is what the web uses), `application/octet-stream` for
/// unknown extensions.
fn content_type_for(path: &Path) -> String {
    let guess = mime_guess::from_path(path).first_or_octet_stream();
    // RFC 9239: JavaScript is text/javascript, whatever the extension (.js, .mjs, .cjs).
    let essence = match guess.essence_str() {
        "application/javascript" | "application/x-javascript" => "text/javascript",
        other => other,
    };
    let textual = essence.starts_with("text/")
        || guess.subtype() == mime_guess::mime::JSON
        || guess.suffix() == Some(mime_guess::mime::JSON);
    if textual {
        format!("{essence}; charset=utf-8")
    } else {
        essence.to_owned()
    }
}

/// A request for [`serve`]: method, raw target, and the headers that matter to it.
#[derive(Clone, Debug, Default)]
pub struct StaticRequest<'a> {
    pub method: &'a str,
    /// The raw request target (path and optional `?query`).
    pub target: &'a str,
    /// `If-None-Match` values (one per header line, in order).
    pub if_none_match: Vec<&'a str>,
    /// The `If-Modified-Since` value; ignored when there are several.
    pub if_modified_since: Vec<&'a str>,
}

impl<'a> StaticRequest<'a> {
    pub fn new(method: &'a str, target: &'a str) -> Self {
        StaticRequest { method, target, ..Default::default() }
    }

    /// Takes note of a request header if it matters here (name case-insensitive); any other
    /// header, and a value that is not UTF-8, is ignored. For `httparse` headers:
    /// `req = req.header(h.name, h.value)`.
    pub fn header(mut self, name: &str, value: &'a [u8]) -> Self {
        let Ok(value) = std::str::from_utf8(value) else { return self };
        if name.eq_ignore_ascii_case("if-none-match") {
            self.if_none_match.push(value);
        } else if name.eq_ignore_ascii_case("if-modified-since") {
            self.if_modified_since.push(value);
        }
        self
    }
}

/// Percent-decodes one path segment; `None` when a `%` is not followed by two hex digits
/// (`percent_decode` would pass such a `%` through unchanged; a bad escape is a 400 here).
fn percent_decode(segment: &str) -> Option<Vec<u8>> {
    let b = segment.as_bytes();
    let well_formed = b
        .iter()
        .enumerate()
        .filter(|&(_, &c)| c == b'%')
        .all(|(i, _)| b.len() > i + 2 && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit());
    well_formed.then(|| percent_encoding::percent_decode(b).collect())
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

type Refusal = (u16, &'static str);

fn io_refusal(e: &io::Error) -> Refusal {
    match e.kind() {
        io::ErrorKind::PermissionDenied => (403, "Forbidden\n"),
        // ELOOP: the last component became a symlink after canonicalize (O_NOFOLLOW).
        _ if e.raw_os_error() == Some(libc::ELOOP) => (403, "Forbidden\n"),
        _ => (404, "Not Found\n"),
    }
}

/// Canonicalize `p` and make sure it is inside `root`.
fn confine(root: &Path, p: &Path) -> Result<PathBuf, Refusal> {
    match p.canonicalize() {
        Ok(c) if c.starts_with(root) => Ok(c),
        Ok(_) => Err((403, "Forbidden\n")),
        Err(e) => Err(io_refusal(&e)),
    }
}

/// Opens a regular file without following a final symlink and without blocking on a FIFO,
/// and checks the open file (fstat) is still a regular file.
fn open_regular(path: &Path) -> Result<(File, Metadata), Refusal> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    }
    let file = options.open(path).map_err(|e| io_refusal(&e))?;
    let meta = file.metadata().map_err(|e| io_refusal(&e))?;
    if !meta.is_file() {
        return Err((404, "Not Found\n"));
    }
    Ok((file, meta))
}

/// The file to serve for `rel`: itself, or the `index.html` of a directory.
fn locate(root: &Path, rel: &Path) -> Result<PathBuf, Refusal> {
    let path = confine(root, &root.join(rel))?;
    let meta = std::fs::metadata(&path).map_err(|e| io_refusal(&e))?;
    let path = if meta.is_dir() { confine(root, &path.join("index.html"))? } else { path };
    // Only regular files: FIFOs/devices could block the event loop forever (checked again on
    // the open file).
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(path),
        Ok(_) => Err((404, "Not Found\n")),
        Err(e) => Err(io_refusal(&e)),
    }
}

/// A strong validator from the file's size and modification time (nanoseconds), like nginx's.
fn etag_for(meta: &Metadata) -> String {
    let mtime = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).unwrap_or_default();
    format!("\"{:x}-{:x}\"", mtime.as_nanos(), meta.len())
}

/// Does an `If-None-Match` field value (a list of entity tags, or `*`) match `etag`? Weak
/// comparison (RFC 9110 section 8.8.3.2): `W/` prefixes are ignored. A malformed member
/// matches nothing.
fn none_match_hits(values: &[&str], etag: &str) -> bool {
    values.iter().flat_map(|v| v.split(',')).map(str::trim).any(|tag| {
        tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag
    })
}

/// RFC 9110 section 13.2.2 for GET/HEAD: If-None-Match decides when present; otherwise a
/// single valid If-Modified-Since date not older than the file's (whole-second) mtime.
fn not_modified(req: &StaticRequest, etag: &str, modified: Option<SystemTime>) -> bool {
    if !req.if_none_match.is_empty() {
        return none_match_hits(&req.if_none_match, etag);
    }
    let ([since], Some(modified)) = (req.if_modified_since.as_slice(), modified) else { return false };
    let Ok(since) = httpdate::parse_http_date(since.trim()) else { return false };
    // HTTP dates have whole seconds: compare the mtime truncated the same way.
    httpdate::HttpDate::from(modified) <= httpdate::HttpDate::from(since)
}

/// The response to a static-file request. `root` is the configured directory (already
/// canonicalized by the caller at server start); files larger than `max_file_bytes` get 403.
/// A 200 to GET carries the open file as its body (see [`Body::next_chunk`]).
pub fn serve(root: &Path, req: &StaticRequest, max_file_bytes: u64) -> StaticResponse<Body> {
    let resp = serve_inner(root, req, max_file_bytes);
    if req.method == "HEAD" {
        // errors too: HEAD never carries a body (Content-Length still describes GET)
        return StaticResponse { body: Body::Bytes(Bytes::new()), ..resp };
    }
    resp
}

fn serve_inner(root: &Path, req: &StaticRequest, max_file_bytes: u64) -> StaticResponse<Body> {
    let refuse = |(status, body): Refusal| error_response(status, body).into();
    if req.method != "GET" && req.method != "HEAD" {
        return text_response(405, &[("Allow", "GET, HEAD")], "Method Not Allowed\n").into();
    }
    let rel = match resolve_target(req.target) {
        Resolve::Ok(r) => r,
        Resolve::Status(s, b) => return refuse((s, b)),
    };
    let (file, meta, path) = match locate(root, &rel).and_then(|p| open_regular(&p).map(|(f, m)| (f, m, p))) {
        Ok(found) => found,
        Err(refusal) => return refuse(refusal),
    };
    // Oversized files are refused with 403 rather than 413: 413 means "your *request* body is too large",
    // which is wrong here; the server is simply configured not to serve this resource.
    if meta.len() > max_file_bytes {
        return refuse((403, "Forbidden: file too large\n"));
    }
    let etag = etag_for(&meta);
    let modified = meta.modified().ok();
    let last_modified = modified.map(httpdate::fmt_http_date);
    let date = httpdate::fmt_http_date(SystemTime::now());
    let mut validators: Vec<(&str, &str)> = vec![("ETag", &etag)];
    if let Some(lm) = &last_modified {
        validators.push(("Last-Modified", lm));
    }
    validators.extend([("Date", date.as_str()), ("Cache-Control", "no-cache")]);
    if not_modified(req, &etag, modified) {
        return StaticResponse { status: 304, head: head(304, None, &validators), body: Body::Bytes(Bytes::new()) };
    }
    validators.push(("Accept-Ranges", "none"));
    let head = head(200, Some((&content_type_for(&path), meta.len())), &validators);
    StaticResponse { status: 200, head, body: Body::File { file, remaining: meta.len() } }
}

/// [`serve`] without conditional headers, the file read whole into memory (tests).
#[cfg(test)]
pub fn respond(root: &Path, method: &str, target: &str, max_file_bytes: u64) -> StaticResponse {
    serve(root, &StaticRequest::new(method, target), max_file_bytes).into_buffered()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

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

    fn head_str<B>(r: &StaticResponse<B>) -> String {
        String::from_utf8(r.head.clone()).unwrap()
    }

    /// The value of header `name` in a response head.
    fn header<B>(r: &StaticResponse<B>, name: &str) -> Option<String> {
        head_str(r).split("\r\n").find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
    }

    /// The head without its Date line (two calls may straddle a second).
    fn head_without_date<B>(r: &StaticResponse<B>) -> String {
        head_str(r).split("\r\n").filter(|l| !l.starts_with("Date: ")).collect::<Vec<_>>().join("\r\n")
    }

    fn get(root: &Path, t: &str) -> StaticResponse {
        respond(root, "GET", t, 1 << 20)
    }

    fn conditional(root: &Path, method: &str, t: &str, headers: &[(&str, &str)]) -> StaticResponse {
        let req = headers.iter().fold(StaticRequest::new(method, t), |r, (n, v)| r.header(n, v.as_bytes()));
        serve(root, &req, 1 << 20).into_buffered()
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
        assert_eq!(content_type_for(Path::new("x.json")), "application/json; charset=utf-8");
        assert_eq!(content_type_for(Path::new("x.wasm")), "application/wasm");
        assert_eq!(content_type_for(Path::new("x.PNG")), "image/png");
        assert_eq!(content_type_for(Path::new("x.unknown-ext")), "application/octet-stream");
        assert_eq!(content_type_for(Path::new("Makefile")), "application/octet-stream");
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
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b").unwrap(), b"a b");
        assert_eq!(percent_decode("%E2%9C%93").unwrap(), "\u{2713}".as_bytes());
        assert_eq!(percent_decode("%2e%2E").unwrap(), b"..");
        assert_eq!(percent_decode("plain+text").unwrap(), b"plain+text"); // '+' is not a space in paths
        for bad in ["%", "%2", "%zz", "a%g0", "%%41"] {
            assert!(percent_decode(bad).is_none(), "{bad}");
        }
        let (t, root) = setup();
        fs::write(t.0.join("root/with space.txt"), "spaced").unwrap();
        fs::write(t.0.join("root/caf\u{e9}.txt"), "utf8").unwrap();
        assert_eq!(get(&root, "/with%20space.txt").body, b"spaced");
        assert_eq!(get(&root, "/caf%C3%A9.txt").body, b"utf8");
        // an encoded slash never becomes a separator
        assert_eq!(get(&root, "/sub%2Findex.html").status, 403);
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
            "/%2esecret",
            "/sub/%2e%2e/%2e%2e/outside.txt",
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

    #[cfg(unix)]
    #[test]
    fn fifo_not_opened() {
        let (_t, root) = setup();
        let fifo = std::ffi::CString::new(root.join("pipe.txt").into_os_string().into_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        // would block forever if opened for reading without O_NONBLOCK
        assert_eq!(get(&root, "/pipe.txt").status, 404);
        assert_eq!(open_regular(&root.join("pipe.txt")).err().map(|r| r.0), Some(404));
    }

    #[test]
    fn head_has_no_body() {
        let (_t, root) = setup();
        let g = get(&root, "/index.html");
        let h = respond(&root, "HEAD", "/index.html", 1 << 20);
        assert_eq!(h.status, 200);
        assert!(h.body.is_empty());
        assert_eq!(head_without_date(&h), head_without_date(&g));
        assert!(head_str(&h).contains("Content-Length: 11\r\n"));
        let e = respond(&root, "HEAD", "/missing", 1 << 20);
        assert_eq!(e.status, 404);
        assert!(e.body.is_empty());
        // HEAD on the streaming path keeps no file open
        let s = serve(&root, &StaticRequest::new("HEAD", "/index.html"), 1 << 20);
        assert!(matches!(s.body, Body::Bytes(ref b) if b.is_empty()));
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
    fn validators_and_not_modified() {
        let (t, root) = setup();
        let r = get(&root, "/index.html");
        let etag = header(&r, "ETag").expect("ETag");
        assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2, "{etag}");
        let last_modified = header(&r, "Last-Modified").expect("Last-Modified");
        assert!(last_modified.ends_with(" GMT"), "{last_modified}");
        assert!(httpdate::parse_http_date(&header(&r, "Date").unwrap()).is_ok());
        assert_eq!(header(&r, "Cache-Control").as_deref(), Some("no-cache"));

        // If-None-Match: exact, in a list, weak form, "*" -> 304 with no body and no Content-Length
        for inm in [etag.clone(), format!("\"nope\", {etag}"), format!("W/{etag}"), "*".to_owned()] {
            let c = conditional(&root, "GET", "/index.html", &[("If-None-Match", &inm)]);
            assert_eq!(c.status, 304, "{inm}");
            assert!(c.body.is_empty());
            assert!(head_str(&c).starts_with("HTTP/1.1 304 Not Modified\r\n"));
            assert_eq!(header(&c, "ETag").as_deref(), Some(etag.as_str()));
            assert!(header(&c, "Content-Length").is_none());
            let h = conditional(&root, "HEAD", "/index.html", &[("if-none-match", &inm)]);
            assert_eq!(h.status, 304);
        }
        // a different tag -> 200; If-None-Match wins over a matching If-Modified-Since
        let c = conditional(&root, "GET", "/index.html", &[("If-None-Match", "\"other\""), ("If-Modified-Since", &last_modified)]);
        assert_eq!((c.status, c.body.as_slice()), (200, &b"<h1>hi</h1>"[..]));

        // If-Modified-Since: same date or later -> 304; earlier, malformed or repeated -> 200
        assert_eq!(conditional(&root, "GET", "/index.html", &[("If-Modified-Since", &last_modified)]).status, 304);
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
        assert_eq!(conditional(&root, "GET", "/index.html", &[("If-Modified-Since", &later)]).status, 304);
        let earlier = httpdate::fmt_http_date(httpdate::parse_http_date(&last_modified).unwrap() - Duration::from_secs(1));
        assert_eq!(conditional(&root, "GET", "/index.html", &[("If-Modified-Since", &earlier)]).status, 200);
        assert_eq!(conditional(&root, "GET", "/index.html", &[("If-Modified-Since", "yesterday")]).status, 200);
        let twice = [("If-Modified-Since", last_modified.as_str()), ("If-Modified-Since", last_modified.as_str())];
        assert_eq!(conditional(&root, "GET", "/index.html", &twice).status, 200);
        // the other date formats of RFC 9110 parse too (RFC 850 and asctime)
        assert_eq!(
            conditional(&root, "GET", "/index.html", &[("If-Modified-Since", "Sunday, 06-Nov-44 08:49:37 GMT")]).status,
            304
        );
        assert_eq!(conditional(&root, "GET", "/index.html", &[("If-Modified-Since", "Sun Nov  6 08:49:37 2044")]).status, 304);

        // changing the file changes the ETag; the old one no longer matches
        fs::write(t.0.join("root/index.html"), "<h1>changed</h1>").unwrap();
        let c = conditional(&root, "GET", "/index.html", &[("If-None-Match", &etag)]);
        assert_eq!(c.status, 200);
        assert_ne!(header(&c, "ETag").unwrap(), etag);
        assert_eq!(c.body, b"<h1>changed</h1>");
        // errors are not conditional
        assert_eq!(conditional(&root, "GET", "/missing", &[("If-None-Match", "*")]).status, 404);
    }

    #[test]
    fn ranges_not_supported() {
        let (_t, root) = setup();
        let r = conditional(&root, "GET", "/app.js", &[("Range", "bytes=0-3")]);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"console.log(1)");
        assert_eq!(header(&r, "Accept-Ranges").as_deref(), Some("none"));
        assert!(header(&r, "Content-Range").is_none());
    }

    #[test]
    fn file_body_in_chunks() {
        let (t, root) = setup();
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(t.0.join("root/big.bin"), &big).unwrap();
        let mut r = serve(&root, &StaticRequest::new("GET", "/big.bin"), 1 << 20);
        assert_eq!(r.status, 200);
        assert!(head_str(&r).contains("Content-Length: 100000\r\n"));
        assert!(matches!(r.body, Body::File { remaining: 100_000, .. }));
        let mut got = Vec::new();
        let mut chunks = 0;
        while let Some(chunk) = r.next_chunk(16 * 1024).unwrap() {
            assert!(!chunk.is_empty() && chunk.len() <= 16 * 1024);
            got.extend_from_slice(&chunk);
            chunks += 1;
        }
        assert_eq!(got, big);
        assert!(chunks >= 7, "{chunks}");
        assert!(r.body.is_empty());
        assert!(r.next_chunk(16).unwrap().is_none());

        // a file that shrinks after the head was made: an error, not a short body
        let mut r = serve(&root, &StaticRequest::new("GET", "/big.bin"), 1 << 20);
        fs::write(t.0.join("root/big.bin"), b"tiny").unwrap();
        assert_eq!(r.next_chunk(1 << 20).unwrap().unwrap().as_ref(), b"tiny");
        assert_eq!(r.next_chunk(1 << 20).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        // ... which the buffering compatibility path turns into a 500
        fs::write(t.0.join("root/big.bin"), &big).unwrap();
        let r = serve(&root, &StaticRequest::new("GET", "/big.bin"), 1 << 20);
        fs::write(t.0.join("root/big.bin"), b"tiny").unwrap();
        assert_eq!(r.into_buffered().status, 500);
        // a file that grows: only the announced length is sent
        let r = serve(&root, &StaticRequest::new("GET", "/nodir/a.txt"), 1 << 20);
        fs::write(t.0.join("root/nodir/a.txt"), "abcdef").unwrap();
        assert_eq!(r.body.read_all().unwrap(), b"a");

        // in-memory bodies chunk the same way
        let mut b = Body::from(b"hello".to_vec());
        assert_eq!(b.next_chunk(2).unwrap().unwrap().as_ref(), b"he");
        assert_eq!(b.len(), 3);
        assert_eq!(b.next_chunk(0).unwrap().unwrap().as_ref(), b"l");
        assert_eq!(b.read_all().unwrap(), b"lo");
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
        assert!(head_str(&error_response(503, "x")).starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(head_str(&error_response(599, "x")).starts_with("HTTP/1.1 599 Unknown\r\n"));
    }
}
