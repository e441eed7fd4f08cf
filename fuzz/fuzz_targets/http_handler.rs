//! Clients' byte streams, cut at arbitrary points, to the http handler under the
//! simulator with its exact model: `evio_handlers::sim::fuzz::http_streams`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(failure) = evio_handlers::sim::fuzz::http_streams(data) {
        panic!("{failure}");
    }
});
