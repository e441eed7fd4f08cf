//! The property the `addr_parse` fuzz target checks (feature `fuzz`), in the crate so
//! that the ordinary test suite replays the fuzzer's seeds and findings through the
//! very same code: `fuzz/fuzz_targets/addr_parse.rs` is one call to
//! [`addr_round_trip`].

use crate::addr::{Address, is_net_scheme};

/// Checks [`Address`]'s parse and print on any bytes, read as UTF-8 text (lossily):
/// the text either fails to parse with an [`AddrError`](crate::AddrError), or parses to
/// an address whose [`Display`](core::fmt::Display) form parses back to the same
/// address and prints the same again; and the backend choice made from the raw text
/// (the `-net` suffix, before any parse) agrees with [`Address::portable`].
///
/// ```
/// evio_os::fuzz::addr_round_trip(b"tcp6-net://[::1]:80?reuseport").unwrap();
/// evio_os::fuzz::addr_round_trip(b"not an address").unwrap(); // an error is fine
/// ```
///
/// # Errors
///
/// What broke, with the text.
pub fn addr_round_trip(data: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(data);
    let Ok(address) = Address::parse(&text) else {
        // A typed error is the other allowed outcome (and parsing did not panic).
        return Ok(());
    };
    let printed = address.to_string();
    match Address::parse(&printed) {
        Ok(again) if again == address => {}
        Ok(again) => {
            return Err(format!(
                "{text:?} parsed to {address:?}, printed as {printed:?}, which parses to \
                 {again:?}"
            ));
        }
        Err(e) => {
            return Err(format!(
                "{text:?} parsed to {address:?}, printed as {printed:?}, which does not \
                 parse: {e}"
            ));
        }
    }
    if Address::parse(&printed).map(|a| a.to_string()) != Ok(printed.clone()) {
        return Err(format!("{text:?}: printing {printed:?} is not stable"));
    }
    if is_net_scheme(&text) != address.portable() {
        return Err(format!(
            "{text:?}: the backend choice from the text (-net) disagrees with the parse \
             ({address:?})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_property_holds_on_edge_cases() {
        for text in [
            "tcp://[::ffff:1.2.3.4]:1",
            "unix://é",
            "x",
            "\u{0}",
            "tcp://a:1?",
            "tcp-net-net://a:1",
            "-net://a:1",
        ] {
            addr_round_trip(text.as_bytes()).unwrap();
        }
        // Invalid UTF-8 is read lossily (U+FFFD is no host name).
        addr_round_trip(b"tcp://\xff:1").unwrap();
        addr_round_trip(b"unix://\xff").unwrap();
    }
}
