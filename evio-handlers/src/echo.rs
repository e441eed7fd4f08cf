//! An echo server: every byte received is sent back, in order.

use evio_proto::{Action, Conn, Events};

/// Echoes every byte back to its sender.
///
/// Under backpressure it writes what fits and leaves the rest of the input unconsumed;
/// the engine hands it back once the output has drained, so nothing is lost however
/// slowly the client reads.
#[derive(Clone, Copy, Debug, Default)]
pub struct Echo;

impl Events for Echo {
    type Context = ();

    fn data(&mut self, conn: &mut Conn<'_, ()>, input: &[u8]) -> Action {
        let written = conn.write_some(input);
        conn.consume(written);
        Action::None
    }
}
