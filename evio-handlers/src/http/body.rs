//! Request bodies, read as they arrive: a `Content-Length` count, or the chunked
//! coding (RFC 9112 §7.1) decoded byte by byte, so that no body is ever held whole.
//!
//! The decoder is a small `Copy` state machine kept in the connection's context; the
//! data of each chunk is skipped in one step, whatever its length. A body of any size
//! passes through an input buffer of any size, and a chunk split anywhere across reads
//! decodes the same: [`Incoming::feed`] depends on the bytes alone.
//!
//! What it accepts, and why (nginx 1.22 answers the same unless said):
//!
//! - chunk sizes in hex, either case, leading zeros allowed; a size that does not fit
//!   64 bits is 400 (nginx: 400 from 2^59), one that takes the body over the limit is
//!   413 as soon as its last digit is read, before the chunk's data;
//! - chunk extensions (`;name=value`, or after spaces or tabs as nginx allows) are
//!   skipped, at most [`MAX_CHUNK_EXT`] bytes each (400 beyond; nginx has no bound);
//! - lines end with CRLF or a bare LF (nginx accepts LF too); a CR that is not
//!   followed by LF is 400, and so is anything but a line end after a chunk's data;
//! - trailer fields after the last chunk are skipped line by line, at most `max_head`
//!   bytes in all (431 beyond; nginx has no bound); their syntax is not checked, as
//!   nginx does not.

use super::responses::Reply;

/// Longest chunk extension: the bytes after a chunk size, up to its line end.
pub const MAX_CHUNK_EXT: usize = 1024;

/// The body of a request under way: what is left of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Incoming {
    /// This many bytes are still to come (`Content-Length`).
    Length(u64),
    /// A chunked body.
    Chunked(Chunked),
}

/// Where a chunked body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Chunked {
    state: State,
    /// Bytes of chunk data announced so far (checked against the limit).
    total: u64,
    /// Bytes of trailer fields so far.
    trailer: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum State {
    /// Reading a chunk size: its value so far, and whether it has a digit yet.
    Size { size: u64, digits: bool },
    /// Skipping a chunk extension, `len` bytes of it so far.
    Ext { size: u64, len: usize },
    /// A CR ended the size line: LF must follow.
    SizeLf { size: u64 },
    /// Chunk data, `left` bytes of it to come.
    Data { left: u64 },
    /// After a chunk's data: its line end.
    DataCr,
    /// A CR after a chunk's data: LF must follow.
    DataLf,
    /// At the start of a trailer line, or of the empty line that ends the body.
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// A CR at the start of a line: the body ends with the LF that must follow.
    TrailerLf,
}

/// What [`Incoming::feed`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Everything given was body; more is to come.
    More,
    /// The body ends within what was given (its last byte included in the count).
    Done,
    /// The body is refused with this reply (which closes the connection), at the byte
    /// after those counted.
    Refused(Reply),
}

impl Incoming {
    /// A chunked body, at its first chunk size.
    pub(crate) fn chunked() -> Incoming {
        Incoming::Chunked(Chunked {
            state: State::Size {
                size: 0,
                digits: false,
            },
            total: 0,
            trailer: 0,
        })
    }

    /// Reads what `input` holds of the body: how many bytes belong to it and what
    /// comes next. Chunked bodies are checked against `max_body` (a `Content-Length`
    /// was, with the head) and their trailers against `max_trailer`.
    pub(crate) fn feed(
        &mut self,
        input: &[u8],
        max_body: u64,
        max_trailer: usize,
    ) -> (usize, Step) {
        match self {
            Incoming::Length(left) => {
                let n = (*left).min(input.len() as u64);
                *left -= n;
                let step = if *left == 0 { Step::Done } else { Step::More };
                // `n <= input.len()`: it fits a usize.
                (n as usize, step)
            }
            Incoming::Chunked(chunked) => chunked.feed(input, max_body, max_trailer),
        }
    }
}

/// The value of a hex digit.
fn hex(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some(u64::from(b - b'0')),
        b'a'..=b'f' => Some(u64::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u64::from(b - b'A' + 10)),
        _ => None,
    }
}

impl Chunked {
    fn feed(&mut self, input: &[u8], max_body: u64, max_trailer: usize) -> (usize, Step) {
        let refuse = |i: usize, reply: Reply| (i, Step::Refused(reply));
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            self.state = match self.state {
                State::Size { size, digits } => match hex(b) {
                    Some(_) if size > u64::MAX >> 4 => return refuse(i, Reply::BadRequest),
                    Some(d) => State::Size {
                        size: size << 4 | d,
                        digits: true,
                    },
                    None if !digits => return refuse(i, Reply::BadRequest),
                    // The size is whole: over the limit, refused before its data.
                    None if size > max_body - self.total => {
                        return refuse(i, Reply::ContentTooLarge);
                    }
                    None => match b {
                        b';' | b' ' | b'\t' => State::Ext { size, len: 1 },
                        b'\r' => State::SizeLf { size },
                        b'\n' => self.size_line_end(size),
                        _ => return refuse(i, Reply::BadRequest),
                    },
                },
                State::Ext { size, len } => match b {
                    b'\r' => State::SizeLf { size },
                    b'\n' => self.size_line_end(size),
                    _ if len >= MAX_CHUNK_EXT => return refuse(i, Reply::BadRequest),
                    _ => State::Ext { size, len: len + 1 },
                },
                State::SizeLf { size } if b == b'\n' => self.size_line_end(size),
                State::SizeLf { .. } => return refuse(i, Reply::BadRequest),
                State::Data { left } => {
                    // The whole chunk, or all of the input it fills, in one step.
                    let n = left.min((input.len() - i) as u64);
                    i += n as usize;
                    self.state = match left - n {
                        0 => State::DataCr,
                        left => State::Data { left },
                    };
                    continue;
                }
                State::DataCr => match b {
                    b'\r' => State::DataLf,
                    b'\n' => State::Size {
                        size: 0,
                        digits: false,
                    },
                    _ => return refuse(i, Reply::BadRequest),
                },
                State::DataLf if b == b'\n' => State::Size {
                    size: 0,
                    digits: false,
                },
                State::DataLf => return refuse(i, Reply::BadRequest),
                State::TrailerStart => match b {
                    b'\r' => State::TrailerLf,
                    b'\n' => return (i + 1, Step::Done),
                    _ => {
                        self.trailer += 1;
                        State::Trailer
                    }
                },
                State::Trailer => {
                    self.trailer += 1;
                    if b == b'\n' {
                        State::TrailerStart
                    } else {
                        State::Trailer
                    }
                }
                State::TrailerLf if b == b'\n' => return (i + 1, Step::Done),
                State::TrailerLf => return refuse(i, Reply::BadRequest),
            };
            if self.trailer > max_trailer {
                return refuse(i, Reply::HeaderFieldsTooLarge);
            }
            i += 1;
        }
        (i, Step::More)
    }

    /// A size line ended: the chunk's data follows, or the trailer after the last
    /// chunk (size 0).
    fn size_line_end(&mut self, size: u64) -> State {
        if size == 0 {
            return State::TrailerStart;
        }
        // `size <= max_body - total`, checked when its last digit was read.
        self.total += size;
        State::Data { left: size }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u64 = 1 << 20;

    /// Feeds `body` in pieces of `step` bytes, as the handler does: what a piece's
    /// step counts is consumed, the rest comes back with the next piece.
    fn decode(body: &[u8], step: usize, max_body: u64) -> (usize, Step) {
        let mut incoming = Incoming::chunked();
        let mut used = 0;
        let mut end = 0;
        loop {
            end = (end + step).min(body.len());
            let (n, s) = incoming.feed(&body[used..end], max_body, 64);
            used += n;
            match s {
                Step::More if end < body.len() => {}
                s => return (used, s),
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_however_they_are_split() {
        let cases: &[(&[u8], Step)] = &[
            (b"5\r\nhello\r\n0\r\n\r\n", Step::Done),
            (b"5;a=b\r\nhello\r\n0;x\r\n\r\n", Step::Done),
            (b"5\r\nhello\r\n0\r\nX-T: 1\r\nnocolon\r\n\r\n", Step::Done),
            (b"5\nhello\n0\n\n", Step::Done),
            (b"A\r\n0123456789\r\n0\r\n\r\n", Step::Done),
            (b"0005\r\nhello\r\n000\r\n\r\n", Step::Done),
            (b"5 \r\nhello\r\n0\r\n\r\n", Step::Done),
            (b"5\r\nhelloXX", Step::Refused(Reply::BadRequest)),
            (b"zz\r\n", Step::Refused(Reply::BadRequest)),
            (b"\r\nhello", Step::Refused(Reply::BadRequest)),
            (b"5\rhello", Step::Refused(Reply::BadRequest)),
            (b"0x5\r\n", Step::Refused(Reply::BadRequest)),
            (b"-5\r\n", Step::Refused(Reply::BadRequest)),
            (b"5\r\nhello\r\n0\r\n\rx", Step::Refused(Reply::BadRequest)),
            (b"ffffffffffffffffff\r\n", Step::Refused(Reply::BadRequest)),
            (
                b"ffffffffffffffff\r\n",
                Step::Refused(Reply::ContentTooLarge),
            ),
            (b"100001\r\n", Step::Refused(Reply::ContentTooLarge)),
            (b"5\r\nhello\r\n", Step::More),
        ];
        for &(body, expected) in cases {
            let whole = decode(body, body.len(), MAX);
            assert_eq!(whole.1, expected, "{}", body.escape_ascii());
            if expected == Step::Done {
                assert_eq!(whole.0, body.len(), "{}", body.escape_ascii());
            }
            for step in 1..body.len() {
                assert_eq!(
                    decode(body, step, MAX),
                    whole,
                    "{} by {step}",
                    body.escape_ascii()
                );
            }
        }
    }

    #[test]
    fn the_limit_counts_every_chunk() {
        let body = b"4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n";
        assert_eq!(decode(body, 3, 8).1, Step::Done);
        assert_eq!(
            decode(body, 3, 7),
            (10, Step::Refused(Reply::ContentTooLarge))
        );
    }

    #[test]
    fn extensions_and_trailers_are_bounded() {
        let mut ext = b"1;".to_vec();
        ext.resize(1 + MAX_CHUNK_EXT, b'e');
        ext.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        assert_eq!(decode(&ext, 7, MAX).1, Step::Done);
        ext.insert(3, b'e');
        assert_eq!(decode(&ext, 7, MAX).1, Step::Refused(Reply::BadRequest));
        // 64 bytes of trailer lines (line ends included), then one more.
        let mut trailer = b"0\r\n".to_vec();
        trailer.extend_from_slice(&[b't'; 62]);
        trailer.extend_from_slice(b"\r\n\r\n");
        assert_eq!(decode(&trailer, 5, MAX).1, Step::Done);
        trailer.insert(3, b't');
        assert_eq!(
            decode(&trailer, 5, MAX).1,
            Step::Refused(Reply::HeaderFieldsTooLarge)
        );
    }

    #[test]
    fn a_length_counts_down() {
        let mut body = Incoming::Length(5);
        assert_eq!(body.feed(b"abc", MAX, 0), (3, Step::More));
        assert_eq!(body.feed(b"deNEXT", MAX, 0), (2, Step::Done));
    }
}
