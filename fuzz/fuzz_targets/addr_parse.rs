//! The listen-address parser on arbitrary text: a typed error, or an address that
//! prints back to text that parses to the same address: `evio_os::fuzz::addr_round_trip`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(failure) = evio_os::fuzz::addr_round_trip(data) {
        panic!("{failure}");
    }
});
