//! Framing the backends' replies (RESP2) as they stream in: where each reply ends,
//! whatever the chunks the socket hands over.
//!
//! The proxy never needs a reply's contents to forward it, only its end, so the framer
//! is a byte-level state machine that consumes every byte it is given: a reply split
//! over any number of reads (a 1 MB bulk string, a header line cut after its `$`) is
//! framed without waiting for it to arrive whole, and without a limit on its size.
//! Nesting is bounded ([`MAX_DEPTH`]), as a reply from a key-value command never nests
//! deeply.

use memchr::memchr;

/// The deepest array nesting a reply may have.
pub const MAX_DEPTH: usize = 32;

/// A reply that breaks RESP2 (a backend that is not Redis, or a bug): the connection
/// to that backend cannot be trusted any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the type byte of a value.
    Type,
    /// Inside a `+`, `-` or `:` line: up to its `\n`.
    Line,
    /// Inside the number of a `$` or `*` header.
    Number,
    /// After the `\r` of a header: its `\n`.
    NumberEnd,
    /// Inside a bulk string's payload and its `\r\n`: this many bytes left.
    Payload(usize),
}

/// Where replies end in a stream of RESP2 bytes.
#[derive(Clone, Copy, Debug)]
pub struct Framer {
    state: State,
    /// Whether the header being read is an array's (`*`) or a bulk string's (`$`).
    array: bool,
    negative: bool,
    digits: u8,
    number: i64,
    /// Elements still to come in each open array, innermost last.
    left: [u32; MAX_DEPTH],
    depth: usize,
}

impl Default for Framer {
    fn default() -> Self {
        Framer {
            state: State::Type,
            array: false,
            negative: false,
            digits: 0,
            number: 0,
            left: [0; MAX_DEPTH],
            depth: 0,
        }
    }
}

impl Framer {
    /// Whether the framer is between replies (nothing of a reply has been fed).
    #[cfg(test)]
    pub fn at_boundary(&self) -> bool {
        self.state == State::Type && self.depth == 0
    }

    /// Feeds `input`: `(n, true)` if a reply ends after `input[..n]`, `(input.len(),
    /// false)` if all of it belongs to a reply that goes on.
    ///
    /// # Errors
    ///
    /// [`Malformed`] if the bytes are not RESP2 (the framer is then unusable).
    pub fn feed(&mut self, input: &[u8]) -> Result<(usize, bool), Malformed> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Type => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'+' | b'-' | b':' => self.state = State::Line,
                        b'$' | b'*' => {
                            self.array = b == b'*';
                            self.negative = false;
                            self.digits = 0;
                            self.number = 0;
                            self.state = State::Number;
                        }
                        _ => return Err(Malformed),
                    }
                }
                State::Line => match memchr(b'\n', &input[i..]) {
                    Some(at) => {
                        i += at + 1;
                        if self.value_done() {
                            return Ok((i, true));
                        }
                    }
                    None => i = input.len(),
                },
                State::Number => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'-' if self.digits == 0 && !self.negative => self.negative = true,
                        b'0'..=b'9' if self.digits < 18 => {
                            self.number = self.number * 10 + i64::from(b - b'0');
                            self.digits += 1;
                        }
                        b'\r' if self.digits > 0 => self.state = State::NumberEnd,
                        _ => return Err(Malformed),
                    }
                }
                State::NumberEnd => {
                    if input[i] != b'\n' {
                        return Err(Malformed);
                    }
                    i += 1;
                    let n = if self.negative {
                        -self.number
                    } else {
                        self.number
                    };
                    let done = match (self.array, n) {
                        // A nil (`$-1`, `*-1`) or an empty array is a whole value.
                        (_, -1) | (true, 0) => true,
                        (_, n) if n < 0 => return Err(Malformed),
                        (false, n) => {
                            self.state = State::Payload(n as usize + 2);
                            false
                        }
                        (true, n) => {
                            if self.depth == MAX_DEPTH || n > i64::from(u32::MAX) {
                                return Err(Malformed);
                            }
                            self.left[self.depth] = n as u32;
                            self.depth += 1;
                            self.state = State::Type;
                            false
                        }
                    };
                    if done && self.value_done() {
                        return Ok((i, true));
                    }
                }
                State::Payload(left) => {
                    let take = left.min(input.len() - i);
                    i += take;
                    if take == left {
                        if self.value_done() {
                            return Ok((i, true));
                        }
                    } else {
                        self.state = State::Payload(left - take);
                    }
                }
            }
        }
        Ok((input.len(), false))
    }

    /// A value ended: counts it in its array, closing the arrays it completes; whether
    /// that ended the whole reply.
    fn value_done(&mut self) -> bool {
        self.state = State::Type;
        while self.depth > 0 {
            let left = &mut self.left[self.depth - 1];
            *left -= 1;
            if *left > 0 {
                return false;
            }
            self.depth -= 1;
        }
        true
    }
}

/// The integer of a whole `:N\r\n` reply.
pub fn integer(reply: &[u8]) -> Option<i64> {
    let line = reply.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    crate::redis::resp::string2ll(line)
}

/// The length in bytes of the RESP2 value at the start of `bytes` (a whole value, as
/// an element of a framed reply), or `None` if it is not whole there.
pub fn value_len(bytes: &[u8]) -> Option<usize> {
    let mut framer = Framer::default();
    match framer.feed(bytes) {
        Ok((n, true)) => Some(n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `stream` in chunks of `chunk` bytes; the ends of the replies found.
    fn ends(stream: &[u8], chunk: usize) -> Result<Vec<usize>, Malformed> {
        let mut framer = Framer::default();
        let mut ends = Vec::new();
        let mut at = 0;
        while at < stream.len() {
            let end = (at + chunk).min(stream.len());
            let mut pos = at;
            while pos < end {
                let (n, whole) = framer.feed(&stream[pos..end])?;
                pos += n;
                if whole {
                    ends.push(pos);
                }
            }
            at = end;
        }
        assert_eq!(framer.at_boundary(), ends.last() == Some(&stream.len()));
        Ok(ends)
    }

    #[test]
    fn replies_are_framed_whatever_the_chunks() {
        let stream = b"+OK\r\n-ERR no\r\n:42\r\n$3\r\nabc\r\n$-1\r\n*-1\r\n*0\r\n\
            *2\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n$0\r\n\r\n";
        let want = vec![5, 14, 19, 28, 33, 38, 42, 66, 72];
        for chunk in 1..=stream.len() {
            assert_eq!(ends(stream, chunk).unwrap(), want, "chunk {chunk}");
        }
    }

    #[test]
    fn a_large_bulk_is_framed_without_holding_it() {
        let mut stream = b"$100000\r\n".to_vec();
        stream.extend(std::iter::repeat_n(b'x', 100_000));
        stream.extend_from_slice(b"\r\n+OK\r\n");
        assert_eq!(
            ends(&stream, 4096).unwrap(),
            vec![100_011, 100_016],
            "the bulk, then the status"
        );
    }

    #[test]
    fn malformed_replies_are_refused_not_panicked_on() {
        for bad in [&b"hello"[..], b"$-2\r\n", b"$12x\r\n", b"*3\rx", b"$\r\n"] {
            assert_eq!(ends(bad, 1), Err(Malformed), "{bad:?}");
        }
        let deep = "*1\r\n".repeat(MAX_DEPTH + 1);
        assert_eq!(ends(deep.as_bytes(), 7), Err(Malformed));
    }

    #[test]
    fn any_bytes_end_in_a_result() {
        // A cheap exhaustive sweep: every 3-byte string over the bytes that matter.
        let alphabet = b"+-:$*0129\r\nx";
        for &a in alphabet {
            for &b in alphabet {
                for &c in alphabet {
                    let _ = ends(&[a, b, c], 1);
                    let _ = ends(&[a, b, c], 3);
                }
            }
        }
    }

    #[test]
    fn integers_and_value_lengths() {
        assert_eq!(integer(b":17\r\n"), Some(17));
        assert_eq!(integer(b":-3\r\n"), Some(-3));
        assert_eq!(integer(b"+OK\r\n"), None);
        assert_eq!(value_len(b"$2\r\nab\r\n$-1\r\n"), Some(8));
        assert_eq!(value_len(b"$-1\r\n"), Some(5));
        assert_eq!(value_len(b"$5\r\nab"), None);
    }
}
