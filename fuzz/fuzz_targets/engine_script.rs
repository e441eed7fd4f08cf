//! A simulator run from arbitrary bytes (seed, configuration, fault plan, script)
//! against the echo or chat handler, every invariant checked:
//! `evio_handlers::sim::fuzz::engine_script`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(failure) = evio_handlers::sim::fuzz::engine_script(data) {
        panic!("{failure}");
    }
});
