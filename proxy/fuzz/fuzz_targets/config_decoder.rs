//! Fuzzes the config stream decoder and the config compiler: any line is
//! either rejected with an error or compiled, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshlet_proxy::config::decode_message;
use meshlet_proxy::ConfigStore;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else { return };
    if let Ok(msg) = decode_message(line) {
        let store = ConfigStore::default();
        let _ = store.apply(msg.generation, msg.config);
    }
});
