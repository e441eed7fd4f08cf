//! A simulator run from arbitrary bytes against the echo or http handler behind TLS
//! (rustls on the simulated provider, both sides), every invariant checked:
//! `evio_handlers::sim::fuzz::tls_script`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(failure) = evio_handlers::sim::fuzz::tls_script(data) {
        panic!("{failure}");
    }
});
