//! The redis request parser alone on one connection's input: a request parses the same
//! from any prefix that holds it, and as incomplete from any shorter one:
//! `evio_handlers::sim::fuzz::redis_requests_split`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(failure) = evio_handlers::sim::fuzz::redis_requests_split(data) {
        panic!("{failure}");
    }
});
