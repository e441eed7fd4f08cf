//! Link-time proof that `evio-proto` is `no_std` and allocation-free.
//!
//! Built by `tests/nostd.rs` with `--profile nostd` (panic = abort): this crate is then
//! `#![no_std]` with its own panic handler, so if anything in evio-proto's dependency
//! graph links `std` the build fails with "duplicate lang item `panic_impl`", and if
//! anything needs `alloc` it fails with "no global memory allocator found". Under the
//! normal profiles it is an ordinary empty library, so workspace builds keep working.

#![cfg_attr(panic = "abort", no_std)]

// A dependency that is never referenced is never loaded: name it, and use it.
extern crate evio_proto;

use evio_proto::{Action, Config, Conn, Engine, Events, Instant, Slot};

struct Echo;

impl Events for Echo {
    type Context = u8;
    fn data(&mut self, conn: &mut Conn<'_, u8>, input: &[u8]) -> Action {
        let n = conn.write_some(input);
        conn.consume(n);
        Action::None
    }
}

/// Builds and starts a tiny engine, so the engine's code is linked in for real.
#[unsafe(no_mangle)]
pub extern "C" fn evio_nostd_check() -> usize {
    let config = Config {
        max_connections: 2,
        input_capacity: 16,
        output_capacity: 16,
        ..Config::new()
    };
    let slots: [Slot<u8>; 2] = [Slot::new(), Slot::new()];
    let bytes = [0u8; 96];
    match Engine::new(Echo, config, slots, bytes, None) {
        Ok(mut engine) => {
            engine.handle_time(Instant::ZERO);
            let _ = engine.handle_start(&[]);
            while engine.poll_output().is_some() {}
            engine.free_slots()
        }
        Err(_) => 0,
    }
}

#[cfg(panic = "abort")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
