//! A connection's own state: the reply still owed to it, a request still arriving,
//! and how replies are written so that neither is ever lost.

use std::sync::Arc;

use evio_proto::Conn;

use super::resp::{ARG_OVERHEAD, Bulk, Line, ProtocolError, bulk_header, line_number};

/// Buffers a connection keeps between requests are given back to the allocator once
/// larger than this (a 1 MiB request should not pin 1 MiB for the connection's life).
const KEEP_CAPACITY: usize = 64 * 1024;

/// One connection's state, kept by the engine in the connection's slot.
///
/// Empty (one pointer, nothing allocated) while the connection's requests and replies
/// each fit the engine's buffers, which is the common case. It holds more only when:
///
/// - a reply did not fit the output buffer: the rest of it is kept here (a large value
///   is shared with the store, not copied) and sent as the output drains, before any
///   later request is served;
/// - a multibulk request is large (it fills the input buffer, or passes
///   [`SPILL_AT`](super::SPILL_AT) before it is whole): its arguments gather here as
///   they arrive (bounded by [`Limits`](super::Limits)), and it is served once whole;
/// - the connection is to close once its reply is out (`QUIT`, a protocol error).
#[derive(Debug, Default)]
pub struct Client {
    slow: Option<Box<Slow>>,
}

impl Client {
    /// Whether the connection holds anything beyond the engine's buffers: output still
    /// owed, a request still arriving, or a close waiting for its reply.
    pub fn busy(&self) -> bool {
        self.slow.as_ref().is_some_and(|s| s.busy())
    }

    /// Whether output is still owed beyond what the engine holds.
    pub fn owes_output(&self) -> bool {
        self.slow.as_ref().is_some_and(|s| s.owes())
    }

    pub(crate) fn slow_mut(&mut self) -> &mut Slow {
        self.slow.get_or_insert_with(Box::default)
    }

    pub(crate) fn take_slow(&mut self) -> Option<Box<Slow>> {
        self.slow.take()
    }

    pub(crate) fn put_slow(&mut self, slow: Box<Slow>) {
        self.slow = Some(slow);
    }
}

/// What a connection holds beyond the engine's buffers.
#[derive(Debug, Default)]
pub(crate) struct Slow {
    /// Bytes owed, from `owed_at` on; sent before `value`.
    owed: Vec<u8>,
    owed_at: usize,
    /// Then a value shared with the store, from `value_at` on, followed by `\r\n`
    /// (positions past the value's end count into the `\r\n`).
    value: Option<Arc<Vec<u8>>>,
    value_at: usize,
    /// Close once everything owed is out.
    pub close_after: bool,
    /// A large multibulk request is arriving in `spill`.
    pub spilling: bool,
    /// Where a large request gathers (kept between requests, so that it allocates
    /// only when a request is larger than any before it).
    pub spill: Spill,
    /// Output the engine held after the connection's last activity (a request, or
    /// output that drained): if it has not gone down when the idle timeout comes, the
    /// client took none of it (see `Redis::timeout`).
    pub pending_seen: usize,
}

impl Slow {
    fn owes(&self) -> bool {
        self.owed_at < self.owed.len() || self.value.is_some()
    }

    fn busy(&self) -> bool {
        self.owes() || self.close_after || self.spilling
    }
}

/// Writes `bytes` to the connection; what does not fit is kept and sent before anything
/// written later. Returns `false` if some of it had to be kept.
///
/// A write cut short leaves no room, so a later `reply` in the same call writes nothing
/// and keeps all of its bytes too: the order holds.
#[inline]
pub(crate) fn reply(conn: &mut Conn<'_, Client>, bytes: &[u8]) -> bool {
    let n = conn.write_some(bytes);
    if n == bytes.len() {
        return true;
    }
    conn.context()
        .slow_mut()
        .owed
        .extend_from_slice(&bytes[n..]);
    false
}

/// Writes `value` as a bulk reply (`$len\r\n…\r\n`). What does not fit is not copied:
/// the rest is sent from the value itself (shared with the store, which may replace
/// it meanwhile) as the output drains. Returns `false` if some of it had to wait.
#[inline]
pub(crate) fn reply_value(conn: &mut Conn<'_, Client>, value: &Arc<Vec<u8>>) -> bool {
    let mut digits = [0u8; 24];
    let head = bulk_head(&mut digits, value.len());
    if head.len() + value.len() + 2 <= conn.room() {
        conn.write_some(head);
        conn.write_some(value);
        conn.write_some(b"\r\n");
        return true;
    }
    reply_value_cut(conn, head, value)
}

#[cold]
fn reply_value_cut(conn: &mut Conn<'_, Client>, head: &[u8], value: &Arc<Vec<u8>>) -> bool {
    let mut at = 0;
    if reply(conn, head) {
        at = conn.write_some(value);
        if at == value.len() {
            at += conn.write_some(b"\r\n");
        }
    }
    if at == value.len() + 2 {
        return true;
    }
    let slow = conn.context().slow_mut();
    slow.value = Some(value.clone());
    slow.value_at = at;
    false
}

/// Writes `bytes` as a bulk reply; what does not fit is kept (copied). Returns `false`
/// if some of it had to be kept.
pub(crate) fn reply_bulk(conn: &mut Conn<'_, Client>, bytes: &[u8]) -> bool {
    let mut digits = [0u8; 24];
    let head = bulk_head(&mut digits, bytes.len());
    // Each part in turn, whether or not the one before fitted: a cut part leaves no
    // room, so the parts after it are kept whole, in order.
    let head_fits = reply(conn, head);
    let body_fits = reply(conn, bytes);
    let end_fits = reply(conn, b"\r\n");
    head_fits && body_fits && end_fits
}

/// `$len\r\n` in `buf`.
pub(crate) fn bulk_head(buf: &mut [u8; 24], len: usize) -> &[u8] {
    prefixed(buf, b'$', len as u64)
}

/// `prefix`, `n` in decimal, `\r\n`, in `buf`: formatted without allocation.
pub(crate) fn prefixed(buf: &mut [u8; 24], prefix: u8, n: u64) -> &[u8] {
    let i = 22 - digits_before(buf, 22, n) - 1;
    buf[22] = b'\r';
    buf[23] = b'\n';
    buf[i] = prefix;
    &buf[i..]
}

/// `n` in decimal, in `buf`: formatted without allocation.
pub(crate) fn decimal(buf: &mut [u8; 24], n: u64) -> &[u8] {
    let len = digits_before(buf, 24, n);
    &buf[24 - len..]
}

/// Writes `n`'s decimal digits to end at `buf[end]`; returns how many.
fn digits_before(buf: &mut [u8; 24], end: usize, mut n: u64) -> usize {
    let mut i = end;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return end - i;
        }
    }
}

/// Sends what the connection is owed, as far as the output takes it. Returns `true`
/// once all of it is out (also when nothing was owed).
pub(crate) fn flush(conn: &mut Conn<'_, Client>) -> bool {
    let Some(mut slow) = conn.context().take_slow() else {
        return true;
    };
    let done = flush_slow(conn, &mut slow);
    conn.context().put_slow(slow);
    done
}

fn flush_slow(conn: &mut Conn<'_, Client>, slow: &mut Slow) -> bool {
    if slow.owed_at < slow.owed.len() {
        slow.owed_at += conn.write_some(&slow.owed[slow.owed_at..]);
        if slow.owed_at < slow.owed.len() {
            return false;
        }
        slow.owed.clear();
        slow.owed_at = 0;
        if slow.owed.capacity() > KEEP_CAPACITY {
            slow.owed = Vec::new();
        }
    }
    if let Some(value) = &slow.value {
        if slow.value_at < value.len() {
            slow.value_at += conn.write_some(&value[slow.value_at..]);
        }
        if slow.value_at >= value.len() {
            slow.value_at += conn.write_some(&b"\r\n"[slow.value_at - value.len()..]);
        }
        if slow.value_at < value.len() + 2 {
            return false;
        }
        slow.value = None;
        slow.value_at = 0;
    }
    true
}

/// A large multibulk request, gathered as it arrives: its arguments so far, and where
/// in its grammar the next input byte falls.
#[derive(Debug, Default)]
pub(crate) struct Spill {
    /// The arguments' bytes, one after the other.
    pub bytes: Vec<u8>,
    /// Each argument's `(offset, length)` in `bytes`.
    pub spans: Vec<(usize, usize)>,
    /// Arguments still to come, the current one included (`None`: the `*N` line is).
    args_left: Option<usize>,
    /// Bytes of the current argument still to come, then bytes to skip after it.
    payload_left: usize,
    skip_left: usize,
    in_bulk: bool,
    /// What the arguments so far count towards the request limit.
    accounted: usize,
}

/// What feeding input to a [`Spill`] came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fed {
    /// The request is whole; it ended at `end`.
    Done { end: usize },
    /// It was a request with no arguments (`*0`), ending at `end`.
    Empty { end: usize },
    /// All of the input up to `end` is in; the rest (a header line not all there)
    /// waits for more.
    NeedMore { end: usize },
    /// A protocol error, seen at `end`.
    Error { error: ProtocolError, end: usize },
    /// The arguments pass the request limit at the header line ending at `end`.
    TooLarge { end: usize },
}

impl Spill {
    /// Ready for the next request; buffers grown large are given back.
    pub(crate) fn reset(&mut self) {
        self.bytes.clear();
        self.spans.clear();
        if self.bytes.capacity() > KEEP_CAPACITY {
            self.bytes = Vec::new();
        }
        if self.spans.capacity() > KEEP_CAPACITY / 16 {
            self.spans = Vec::new();
        }
        self.args_left = None;
        self.payload_left = 0;
        self.skip_left = 0;
        self.in_bulk = false;
        self.accounted = 0;
    }

    /// Takes in `input` (a `data` call's input, from its start), as far as the request
    /// goes. `full`: the input fills the input buffer, so a header line starting at its
    /// front and not ended can never be read whole (Redis: "too big … count string";
    /// its bytes but the last are consumed, so the close lingers over the last).
    pub(crate) fn feed(
        &mut self,
        input: &[u8],
        full: bool,
        max_bulk_len: usize,
        max_request_len: usize,
    ) -> Fed {
        let mut p = 0;
        loop {
            if self.in_bulk {
                let take = self.payload_left.min(input.len() - p);
                self.bytes.extend_from_slice(&input[p..p + take]);
                p += take;
                self.payload_left -= take;
                let skip = self.skip_left.min(input.len() - p);
                p += skip;
                self.skip_left -= skip;
                if self.payload_left > 0 || self.skip_left > 0 {
                    return Fed::NeedMore { end: p };
                }
                self.in_bulk = false;
                let left = self.args_left.as_mut().expect("arguments are counted");
                *left -= 1;
                if *left == 0 {
                    return Fed::Done { end: p };
                }
            }
            let too_big = |error| Fed::Error {
                error,
                end: input.len() - 1,
            };
            match self.args_left {
                None => {
                    // The spill starts at a request's `*`, at the front of the input.
                    match line_number(input, p + 1) {
                        Line::Number(n, end) if n <= i64::from(i32::MAX) => {
                            if n <= 0 {
                                return Fed::Empty { end };
                            }
                            self.args_left = Some(n as usize);
                            p = end;
                        }
                        Line::Number(_, end) | Line::Invalid(end) => {
                            return Fed::Error {
                                error: ProtocolError::InvalidMultibulkLength,
                                end,
                            };
                        }
                        Line::Incomplete if p == 0 && full => {
                            return too_big(ProtocolError::TooBigMultibulkCount);
                        }
                        Line::Incomplete => return Fed::NeedMore { end: p },
                    }
                }
                Some(_) => match bulk_header(input, p, max_bulk_len) {
                    Bulk::Len(len, end) => {
                        self.accounted = self
                            .accounted
                            .saturating_add(len.saturating_add(ARG_OVERHEAD));
                        if self.accounted > max_request_len {
                            return Fed::TooLarge { end };
                        }
                        self.spans.push((self.bytes.len(), len));
                        self.payload_left = len;
                        self.skip_left = 2;
                        self.in_bulk = true;
                        p = end;
                    }
                    Bulk::Incomplete if p == 0 && full => {
                        return too_big(ProtocolError::TooBigBulkCount);
                    }
                    Bulk::Incomplete => return Fed::NeedMore { end: p },
                    Bulk::Error(error, end) => return Fed::Error { error, end },
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed_in_pieces(request: &[u8], piece: usize) -> (Vec<Vec<u8>>, usize) {
        let mut spill = Spill::default();
        let mut pending: Vec<u8> = Vec::new();
        let mut consumed = 0;
        for chunk in request.chunks(piece) {
            pending.extend_from_slice(chunk);
            match spill.feed(&pending, false, 1 << 20, 1 << 20) {
                Fed::NeedMore { end } => {
                    consumed += end;
                    pending.drain(..end);
                }
                Fed::Done { end } => {
                    consumed += end;
                    let args = spill
                        .spans
                        .iter()
                        .map(|&(at, len)| spill.bytes[at..at + len].to_vec())
                        .collect();
                    return (args, consumed);
                }
                other => panic!("{other:?}"),
            }
        }
        panic!("never done");
    }

    #[test]
    fn a_request_fed_in_pieces_of_any_size_is_gathered_whole() {
        let request = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$10\r\n0123456789\r\n";
        for piece in 1..=request.len() {
            let (args, consumed) = fed_in_pieces(request, piece);
            assert_eq!(consumed, request.len(), "piece {piece}");
            assert_eq!(
                args,
                [b"SET".to_vec(), b"key".to_vec(), b"0123456789".to_vec()]
            );
        }
    }

    #[test]
    fn a_header_line_at_the_front_of_a_full_buffer_is_too_big() {
        let mut spill = Spill::default();
        assert_eq!(
            spill.feed(b"*1234567", true, 100, 100),
            Fed::Error {
                error: ProtocolError::TooBigMultibulkCount,
                end: 7
            }
        );
        let mut spill = Spill::default();
        assert_eq!(
            spill.feed(b"*2\r\n$1\r\nx\r\n$12", false, 100, 100),
            Fed::NeedMore { end: 11 }
        );
        assert_eq!(
            spill.feed(b"$12345678", true, 100, 100),
            Fed::Error {
                error: ProtocolError::TooBigBulkCount,
                end: 8
            }
        );
    }

    #[test]
    fn numbers_format_without_allocation() {
        let mut buf = [0u8; 24];
        assert_eq!(prefixed(&mut buf, b':', 0), b":0\r\n");
        assert_eq!(bulk_head(&mut buf, 1048576), b"$1048576\r\n");
        assert_eq!(decimal(&mut buf, 0), b"0");
        assert_eq!(decimal(&mut buf, u64::MAX), u64::MAX.to_string().as_bytes());
        assert_eq!(
            prefixed(&mut buf, b':', u64::MAX),
            b":18446744073709551615\r\n"
        );
    }
}
