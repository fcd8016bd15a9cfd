//! The HTTP upgrade parser: any bytes, fed whole and cut at every point the input names,
//! must give a verdict (never a panic), and an accepted upgrade must produce a response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsembed::protocol::handshake::{accept_response, choose_protocol, parse_request, RequestHead};

fuzz_target!(|data: &[u8]| {
    let limit = 1 + data.first().copied().unwrap_or(0) as usize * 64;
    for end in [data.len(), data.len() / 2] {
        match parse_request(&data[..end], limit) {
            RequestHead::Upgrade { request, consumed } => {
                assert!(consumed <= end && consumed <= limit);
                let server = vec!["chat".to_owned(), "json".to_owned()];
                let protocol = choose_protocol(&server, &request.protocols);
                let response = accept_response(&request.key, protocol);
                assert!(response.starts_with(b"HTTP/1.1 101 "));
            }
            RequestHead::Refuse { status, .. } => assert!((400..=431).contains(&status)),
            RequestHead::Http { .. } | RequestHead::Partial => {}
        }
    }
});
