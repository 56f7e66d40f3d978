//! Fuzzes what the proxy reads from an upstream HTTP/1 server: the
//! response head parser and the chunked body decoder, fed in pieces.
//! Never a panic; decoded data never exceeds what was read; a head or a
//! body that ends leaves exactly the bytes after it.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use meshlet_proxy::http::h1::chunked::{self, Decoded};
use meshlet_proxy::http::h1::response::{self, BodyFraming, Parsed};

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, input)) = data.split_first() else {
        return;
    };
    let method = if knobs & 1 == 0 { http::Method::GET } else { http::Method::HEAD };
    let step = 1 + (knobs >> 1) as usize;
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut feed = |buf: &mut BytesMut| -> bool {
        if fed == input.len() {
            return false;
        }
        let n = step.min(input.len() - fed);
        buf.extend_from_slice(&input[fed..fed + n]);
        fed += n;
        true
    };
    let head = loop {
        match response::parse(&mut buf, &method) {
            Ok(Parsed::Final(head)) => break head,
            Ok(Parsed::Interim) => {}
            Ok(Parsed::Partial) => {
                if !feed(&mut buf) {
                    return;
                }
            }
            Err(_) => return,
        }
    };
    if head.framing != BodyFraming::Chunked {
        return;
    }
    let mut state = chunked::State::Size;
    let mut decoded = 0usize;
    loop {
        let before = buf.len();
        match chunked::decode(&mut state, &mut buf) {
            Ok(Decoded::Data(d)) => {
                assert!(!d.is_empty());
                decoded += d.len();
                assert!(decoded <= input.len());
                // The size line may go in the same step.
                assert!(before - buf.len() >= d.len());
            }
            Ok(Decoded::Trailers(_)) => {}
            Ok(Decoded::End) => {
                assert_eq!(chunked::decode(&mut state, &mut buf).ok(), Some(Decoded::End));
                return;
            }
            Ok(Decoded::NeedMore) => {
                if !feed(&mut buf) {
                    return;
                }
            }
            Err(_) => return,
        }
    }
});
