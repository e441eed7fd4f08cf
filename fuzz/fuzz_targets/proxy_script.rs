//! A simulator run from arbitrary bytes (seed, configuration, fault plan, script)
//! against the tcp proxy in front of simulated echo backends, every invariant checked
//! and every client's bytes coming back whole: `evio_handlers::sim::fuzz::proxy_script`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(failure) = evio_handlers::sim::fuzz::proxy_script(data) {
        panic!("{failure}");
    }
});
