//! HTTP answers that refuse an upgrade: 400/431 (bad request head), 403 (origin), 426 (not an
//! upgrade), 429 (per-IP limits), 503 (server full, stopping, or no approval in time) and the
//! host's own rejections. Every one closes the connection.

pub use super::static_files::StaticResponse as HttpResponse;

/// A refusal with a short text/plain body.
pub fn response(status: u16, body: &str) -> HttpResponse {
    super::static_files::error_response(status, body)
}

/// 426 with `Sec-WebSocket-Version: 13`, for requests that are not a WebSocket upgrade.
pub fn upgrade_required() -> HttpResponse {
    super::static_files::upgrade_required()
}
