//! Workloads: what each client sends, from the user's own generator rather than
//! random bytes.

use crate::Rng;

/// A generator of what clients send: the messages of each client's stream, which the
/// simulator cuts at random points into the script's [`Send`] events.
///
/// Random bytes almost never form a request, so a handler that parses a protocol sees
/// nothing but errors under a seed's own script. A workload says what a client sends
/// instead: valid requests, garbage, or a mix of both, as the workload decides. The
/// simulator keeps one stream per client, asks the workload for that client's next
/// message whenever the stream runs short, and takes each `Send` payload from the
/// front of the stream, with a length drawn as for random payloads (up to the
/// profile's [`max_send`](crate::Profile::max_send)). So a message can arrive in
/// fragments, several messages can arrive in one send, and a send can end in the middle
/// of a message; bytes still in a stream when the script ends are never sent.
///
/// The script stays plain data (a `Vec<ScriptedEvent>`), so shrinking, replay and
/// regression scripts work as for random payloads. Every choice must come from `rng`
/// (and from the workload's own state, which starts afresh for each run), so that a
/// seed makes the same script every time.
///
/// A closure `FnMut(u16, &mut Rng) -> Vec<u8>` is a workload:
///
/// ```
/// use evio_sim::{Profile, Rng, ScriptedEvent, Workload};
///
/// // Every client sends `PING\n`, and one message in ten is a stray byte.
/// let mut pings = |_client: u16, rng: &mut Rng| -> Vec<u8> {
///     if rng.below(10) == 0 { vec![rng.next_u64() as u8] } else { b"PING\n".to_vec() }
/// };
/// let profile = Profile::random(&mut Rng::new(1), 1);
/// let script = profile.script_with(&mut Rng::new(2), 500, &mut pings);
/// let sent: Vec<u8> = script
///     .iter()
///     .filter_map(|ev| match ev {
///         ScriptedEvent::Send { client: 0, bytes } => Some(bytes.clone()),
///         _ => None,
///     })
///     .flatten()
///     .collect();
/// // Client 0's sends, put back together, are its stream of messages.
/// assert!(sent.windows(5).any(|w| w == b"PING\n"));
/// ```
///
/// [`Send`]: crate::ScriptedEvent::Send
pub trait Workload {
    /// The next message client `client` sends (client numbers count `Connect` events
    /// in script order, from 0). An empty message adds nothing to the stream; a
    /// workload that returns only empty messages for a client leaves it silent.
    fn message(&mut self, client: u16, rng: &mut Rng) -> Vec<u8>;
}

impl<F: FnMut(u16, &mut Rng) -> Vec<u8>> Workload for F {
    fn message(&mut self, client: u16, rng: &mut Rng) -> Vec<u8> {
        self(client, rng)
    }
}

/// Empty messages in a row after which a client's stream is taken as ended for the
/// send at hand: a workload that says nothing must not hang script generation.
pub(crate) const EMPTY_MESSAGES_LIMIT: usize = 64;
