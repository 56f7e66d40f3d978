//! Fuzzes the protocol detector: any bytes, never a panic, and a decision
//! once the request-line limit is reached.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshlet_proxy::detect::{classify, Verdict};

fuzz_target!(|data: &[u8]| {
    let verdict = classify(data);
    if data.len() >= 2048 {
        assert!(matches!(verdict, Verdict::Known(_)));
    }
});
