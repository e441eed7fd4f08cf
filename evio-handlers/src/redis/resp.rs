//! Reading requests: RESP multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline
//! commands (`GET k\r\n`), with Redis 7's rules and error texts.
//!
//! The rules follow Redis's `processMultibulkBuffer` and `processInlineBuffer`, byte
//! for byte where it matters to a client:
//!
//! - A request starting with `*` is multibulk, anything else is inline.
//! - A header line (`*N`, `$N`) ends at its first `\r` and needs one more byte after it,
//!   which is skipped whatever it is; a bulk's payload is followed by two bytes that are
//!   skipped unchecked. (Redis does the same: it never looks at them.)
//! - Numbers follow Redis's `string2ll`: an optional `-`, no `+`, no leading zero, no
//!   space, at most 20 characters, within `i64`.
//! - `*N` with N ≤ 0 is an empty request (skipped); N above `i32::MAX` is an invalid
//!   multibulk length. `$N` with N < 0 or above the bulk limit is an invalid bulk length.
//! - An inline line ends at `\n`; one `\r` before it is dropped; its arguments are split
//!   as Redis's `sdssplitargs` does (quotes, `\xHH` and `\n`-style escapes inside double
//!   quotes, `\'` inside single quotes; a closing quote must be followed by a space or
//!   the end). A line with no arguments is skipped.
//!
//! One difference, on purpose: Redis scans header and inline lines with C string
//! functions, which stop at a NUL byte, so a NUL in such a line makes Redis wait (until
//! its 64 KiB inline limit). Here a NUL is an ordinary byte in a header line (which is
//! then invalid), and ends the arguments of an inline line, as it ends Redis's split.

use core::fmt;

use memchr::memchr;

/// Each argument of a request counts this many bytes besides its length towards
/// [`Limits::max_request_len`](super::Limits::max_request_len): what keeping it costs.
pub const ARG_OVERHEAD: usize = 16;

/// A request that breaks the protocol. The connection is answered with
/// `-ERR Protocol error: …` (Redis's text, [`fmt::Display`] here) and closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProtocolError {
    /// `*N` where N is not a number, or is above `i32::MAX`.
    InvalidMultibulkLength,
    /// A multibulk argument that does not start with `$`: the byte it starts with.
    ExpectedDollar(u8),
    /// `$N` where N is not a number, is negative, or is above the bulk limit.
    InvalidBulkLength,
    /// An inline line whose quotes do not close (or a closing quote not followed by a
    /// space).
    UnbalancedQuotes,
    /// An inline line longer than the input buffer.
    TooBigInline,
    /// A `*N` line longer than the input buffer.
    TooBigMultibulkCount,
    /// A `$N` line longer than the input buffer.
    TooBigBulkCount,
}

impl ProtocolError {
    /// The error's text as Redis sends it, after `-ERR ` and before `\r\n`.
    ///
    /// Redis formats the unexpected byte with `%c` and then turns `\r` and `\n` into
    /// spaces; a NUL ends its C string there.
    pub(crate) fn write_text(self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"Protocol error: ");
        out.extend_from_slice(match self {
            ProtocolError::InvalidMultibulkLength => b"invalid multibulk length",
            ProtocolError::ExpectedDollar(byte) => {
                out.extend_from_slice(b"expected '$', got '");
                match byte {
                    0 => {}
                    b'\r' | b'\n' => out.extend_from_slice(b" '"),
                    b => out.extend_from_slice(&[b, b'\'']),
                }
                return;
            }
            ProtocolError::InvalidBulkLength => b"invalid bulk length",
            ProtocolError::UnbalancedQuotes => b"unbalanced quotes in request",
            ProtocolError::TooBigInline => b"too big inline request",
            ProtocolError::TooBigMultibulkCount => b"too big mbulk count string",
            ProtocolError::TooBigBulkCount => b"too big bulk count string",
        });
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Vec::new();
        self.write_text(&mut text);
        f.write_str(&String::from_utf8_lossy(&text))
    }
}

impl std::error::Error for ProtocolError {}

/// What parsing the request at some offset of the input found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A whole request, ending at `end`; its arguments are in the spans.
    Request { end: usize },
    /// A request with no arguments (`*0`, `*-1`, a blank inline line), ending at `end`.
    Empty { end: usize },
    /// The request is not all there yet.
    Incomplete,
    /// The request breaks the protocol; Redis sees it at `end` (the bytes to consume).
    Error { error: ProtocolError, end: usize },
    /// The request's arguments pass the request limit; `end` is after the header line
    /// that made them pass it.
    TooLarge { end: usize },
}

/// A header line's number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// The number, and where the line ends (after `\r` and the byte after it).
    Number(i64, usize),
    /// The line has no `\r`, or nothing after its `\r`, yet.
    Incomplete,
    /// The line is whole but not a number; it ends at the offset given.
    Invalid(usize),
}

/// The number on the header line starting at `input[i]` (just after `*` or `$`).
#[inline(always)]
pub(crate) fn line_number(input: &[u8], i: usize) -> Line {
    // The common case in one pass: 1 to 18 digits, no leading zero, then `\r` and one
    // more byte. Anything else (a sign, a long or invalid number, a line not all there)
    // takes the general path, which is Redis's rule.
    let mut value: i64 = 0;
    let mut j = i;
    while j < input.len() && j - i < 18 {
        let digit = input[j].wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        value = value * 10 + i64::from(digit);
        j += 1;
    }
    if j > i && j + 1 < input.len() && input[j] == b'\r' && (input[i] != b'0' || j == i + 1) {
        return Line::Number(value, j + 2);
    }
    line_number_slow(input, i)
}

#[cold]
fn line_number_slow(input: &[u8], i: usize) -> Line {
    match line_end(input, i) {
        None => Line::Incomplete,
        Some(end) => match string2ll(&input[i..end - 2]) {
            Some(n) => Line::Number(n, end),
            None => Line::Invalid(end),
        },
    }
}

/// Where the line starting at `input[i]` ends: after its first `\r` and the byte after
/// it. `None` until both are there.
#[inline]
pub(crate) fn line_end(input: &[u8], i: usize) -> Option<usize> {
    let r = i + memchr(b'\r', input.get(i..)?)?;
    (r + 1 < input.len()).then_some(r + 2)
}

/// Redis's `string2ll`: a decimal `i64` with an optional `-`, no `+`, no leading zeros
/// (`0` alone is fine, `-0` is not), no spaces, at most 20 characters.
pub(crate) fn string2ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if negative {
        // Down to i64::MIN, whose magnitude is one more than i64::MAX.
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Parses the multibulk request whose `*` is at `input[start]`, pushing each argument's
/// `(offset, length)` to `spans` (cleared first).
#[inline]
pub(crate) fn multibulk(
    input: &[u8],
    start: usize,
    max_bulk_len: usize,
    max_request_len: usize,
    spans: &mut Vec<(usize, usize)>,
) -> Parsed {
    spans.clear();
    let (count, mut p) = match line_number(input, start + 1) {
        Line::Number(n, end) if n <= i64::from(i32::MAX) => (n, end),
        Line::Number(_, end) | Line::Invalid(end) => {
            return Parsed::Error {
                error: ProtocolError::InvalidMultibulkLength,
                end,
            };
        }
        Line::Incomplete => return Parsed::Incomplete,
    };
    if count <= 0 {
        return Parsed::Empty { end: p };
    }
    let mut accounted = 0usize;
    for _ in 0..count {
        match bulk_header(input, p, max_bulk_len) {
            Bulk::Len(len, q) => {
                accounted = accounted.saturating_add(len.saturating_add(ARG_OVERHEAD));
                if accounted > max_request_len {
                    return Parsed::TooLarge { end: q };
                }
                if input.len() - q < len.saturating_add(2) {
                    return Parsed::Incomplete;
                }
                spans.push((q, len));
                p = q + len + 2;
            }
            Bulk::Incomplete => return Parsed::Incomplete,
            Bulk::Error(error, end) => return Parsed::Error { error, end },
        }
    }
    Parsed::Request { end: p }
}

/// A bulk header line (`$N\r\n`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bulk {
    /// The payload's length, and where the header line ends.
    Len(usize, usize),
    /// Not all there yet.
    Incomplete,
    /// Not a valid header; the line ends at the offset given.
    Error(ProtocolError, usize),
}

/// Reads the bulk header line at `input[p]`.
#[inline(always)]
pub(crate) fn bulk_header(input: &[u8], p: usize, max_bulk_len: usize) -> Bulk {
    match input.get(p) {
        None => Bulk::Incomplete,
        Some(b'$') => match line_number(input, p + 1) {
            Line::Number(n, end) => match usize::try_from(n) {
                Ok(len) if len <= max_bulk_len => Bulk::Len(len, end),
                _ => Bulk::Error(ProtocolError::InvalidBulkLength, end),
            },
            Line::Invalid(end) => Bulk::Error(ProtocolError::InvalidBulkLength, end),
            Line::Incomplete => Bulk::Incomplete,
        },
        // Redis looks at the first byte only once the line is whole.
        Some(&byte) => match line_end(input, p) {
            Some(end) => Bulk::Error(ProtocolError::ExpectedDollar(byte), end),
            None => Bulk::Incomplete,
        },
    }
}

/// Parses the inline request starting at `input[start]`. Its arguments' spans go to
/// `spans` (cleared first): offsets into `input` itself when no argument needed
/// decoding (`decoded` is then `false`), else into `out`, where they were decoded.
pub(crate) fn inline(
    input: &[u8],
    start: usize,
    out: &mut Vec<u8>,
    spans: &mut Vec<(usize, usize)>,
    decoded: &mut bool,
) -> Parsed {
    let Some(newline) = memchr(b'\n', &input[start..]) else {
        return Parsed::Incomplete;
    };
    let end = start + newline + 1;
    let mut line = &input[start..end - 1];
    if let [rest @ .., b'\r'] = line {
        line = rest;
    }
    spans.clear();
    // Without quotes or a NUL, `sdssplitargs` only splits: the arguments are spans of
    // the line itself.
    *decoded = line.iter().any(|&b| matches!(b, b'"' | b'\'' | 0));
    if !*decoded {
        split_plain(line, start, spans);
        return if spans.is_empty() {
            Parsed::Empty { end }
        } else {
            Parsed::Request { end }
        };
    }
    out.clear();
    match split_args(line, out, spans) {
        Ok(()) if spans.is_empty() => Parsed::Empty { end },
        Ok(()) => Parsed::Request { end },
        Err(error) => Parsed::Error { error, end },
    }
}

/// `sdssplitargs` of a line with no quotes and no NUL: arguments are separated by
/// blanks (`isspace` before an argument, only ` `, `\t`, `\r`, `\n` inside one).
/// Spans are offset by `base`.
fn split_plain(line: &[u8], base: usize, spans: &mut Vec<(usize, usize)>) {
    let mut p = 0;
    loop {
        while p < line.len() && is_c_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return;
        }
        let begin = p;
        while p < line.len() && !matches!(line[p], b' ' | b'\t' | b'\r' | b'\n') {
            p += 1;
        }
        spans.push((base + begin, p - begin));
    }
}

/// C's `isspace` in the C locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Redis's `sdssplitargs`, step for step: the arguments of `line`, decoded into `out`,
/// their spans in `spans`. The line ends at its first NUL, as a C string does.
fn split_args(
    line: &[u8],
    out: &mut Vec<u8>,
    spans: &mut Vec<(usize, usize)>,
) -> Result<(), ProtocolError> {
    let line = match memchr(0, line) {
        Some(nul) => &line[..nul],
        None => line,
    };
    // The byte at `i`, or the terminating NUL past the end.
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut p = 0;
    loop {
        while p < line.len() && is_c_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Ok(());
        }
        let begin = out.len();
        let (mut in_double, mut in_single, mut done) = (false, false, false);
        while !done {
            let c = at(p);
            if in_double {
                if c == b'\\'
                    && at(p + 1) == b'x'
                    && let (Some(hi), Some(lo)) = (hex_value(at(p + 2)), hex_value(at(p + 3)))
                {
                    out.push(hi * 16 + lo);
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    out.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    // A closing quote must be followed by a space or nothing at all.
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    done = true;
                } else if c == 0 {
                    return Err(ProtocolError::UnbalancedQuotes);
                } else {
                    out.push(c);
                }
            } else if in_single {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    out.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    done = true;
                } else if c == 0 {
                    return Err(ProtocolError::UnbalancedQuotes);
                } else {
                    out.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    _ => out.push(c),
                }
            }
            if at(p) != 0 {
                p += 1;
            }
        }
        spans.push((begin, out.len() - begin));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BULK: usize = 512 << 20;
    const REQUEST: usize = 1 << 30;

    fn args(input: &[u8]) -> (Parsed, Vec<Vec<u8>>) {
        let mut spans = Vec::new();
        let mut out = Vec::new();
        let parsed = if input.first() == Some(&b'*') {
            let p = multibulk(input, 0, BULK, REQUEST, &mut spans);
            out = input.to_vec();
            p
        } else {
            let mut decoded = false;
            let p = inline(input, 0, &mut out, &mut spans, &mut decoded);
            if !decoded {
                out = input.to_vec();
            }
            p
        };
        let args = spans
            .iter()
            .map(|&(at, len)| out[at..at + len].to_vec())
            .collect();
        (parsed, args)
    }

    fn split(line: &str) -> Result<Vec<String>, ProtocolError> {
        let (mut out, mut spans) = (Vec::new(), Vec::new());
        split_args(line.as_bytes(), &mut out, &mut spans)?;
        let general: Vec<String> = spans
            .iter()
            .map(|&(at, len)| String::from_utf8_lossy(&out[at..at + len]).into_owned())
            .collect();
        if !line.contains(['"', '\'', '\0']) {
            // The plain split agrees with the general one.
            spans.clear();
            split_plain(line.as_bytes(), 0, &mut spans);
            let plain: Vec<String> = spans
                .iter()
                .map(|&(at, len)| line[at..at + len].to_string())
                .collect();
            assert_eq!(plain, general, "{line:?}");
        }
        Ok(general)
    }

    #[test]
    fn string2ll_is_redis_s() {
        for (s, v) in [
            ("0", Some(0)),
            ("7", Some(7)),
            ("-7", Some(-7)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("-9223372036854775809", None),
            ("", None),
            ("-", None),
            ("-0", None),
            ("01", None),
            ("+1", None),
            (" 1", None),
            ("1 ", None),
            ("1a", None),
            ("123456789012345678901", None),
        ] {
            assert_eq!(string2ll(s.as_bytes()), v, "{s:?}");
        }
    }

    #[test]
    fn header_lines_fast_and_slow_agree() {
        assert_eq!(line_number(b"12\r\n", 0), Line::Number(12, 4));
        assert_eq!(line_number(b"12\rX", 0), Line::Number(12, 4));
        assert_eq!(line_number(b"12\r", 0), Line::Incomplete);
        assert_eq!(line_number(b"12", 0), Line::Incomplete);
        assert_eq!(line_number(b"0\r\n", 0), Line::Number(0, 3));
        assert_eq!(line_number(b"01\r\n", 0), Line::Invalid(4));
        assert_eq!(line_number(b"-1\r\n", 0), Line::Number(-1, 4));
        assert_eq!(line_number(b"\r\n", 0), Line::Invalid(2));
        assert_eq!(line_number(b"1x\r\n", 0), Line::Invalid(4));
        assert_eq!(
            line_number(b"1234567890123456789\r\n", 0),
            Line::Number(1_234_567_890_123_456_789, 21)
        );
        assert_eq!(
            line_number(b"99999999999999999999\r\n", 0),
            Line::Invalid(22)
        );
    }

    #[test]
    fn multibulk_requests() {
        let (p, a) = args(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
        assert_eq!(p, Parsed::Request { end: 20 });
        assert_eq!(a, [b"GET".to_vec(), b"k".to_vec()]);
        // The two bytes after a header's `\r` and after a payload are not checked.
        let (p, a) = args(b"*1\rx$4\ryPINGXY");
        assert_eq!(p, Parsed::Request { end: 14 });
        assert_eq!(a, [b"PING".to_vec()]);
        assert_eq!(args(b"*0\r\n").0, Parsed::Empty { end: 4 });
        assert_eq!(args(b"*-1\r\n").0, Parsed::Empty { end: 5 });
        for partial in [
            &b"*"[..],
            b"*2",
            b"*2\r",
            b"*2\r\n$3\r\nGE",
            b"*2\r\n$3\r\nGET\r\n$",
        ] {
            assert_eq!(args(partial).0, Parsed::Incomplete, "{partial:?}");
        }
        // Payload bytes are never taken for a header.
        assert_eq!(args(b"*1\r\n$5\r\n\r\n\r\n\r").0, Parsed::Incomplete);
    }

    #[test]
    fn multibulk_errors_are_redis_s() {
        use ProtocolError::*;
        let err = |input: &[u8]| match args(input).0 {
            Parsed::Error { error, end } => (error, end),
            other => panic!("{input:?}: {other:?}"),
        };
        assert_eq!(err(b"*abc\r\n"), (InvalidMultibulkLength, 6));
        assert_eq!(err(b"*01\r\n"), (InvalidMultibulkLength, 5));
        assert_eq!(err(b"*2147483648\r\n"), (InvalidMultibulkLength, 13));
        assert_eq!(err(b"*1\r\n:1\r\n"), (ExpectedDollar(b':'), 8));
        assert_eq!(err(b"*1\r\n\r\n"), (ExpectedDollar(b'\r'), 6));
        assert_eq!(err(b"*1\r\n$-1\r\n"), (InvalidBulkLength, 9));
        assert_eq!(err(b"*1\r\n$ 4\r\n"), (InvalidBulkLength, 9));
        assert_eq!(err(b"*1\r\n$536870913\r\n"), (InvalidBulkLength, 16));
        // The first byte is judged only once the line is whole.
        assert_eq!(args(b"*1\r\n:1").0, Parsed::Incomplete);
        // Arguments over the request limit.
        let mut spans = Vec::new();
        assert_eq!(
            multibulk(b"*2\r\n$3\r\nSET\r\n$100\r\n", 0, 1000, 100, &mut spans),
            Parsed::TooLarge { end: 19 }
        );
        assert_eq!(
            multibulk(b"*1\r\n$101\r\n", 0, 100, 1000, &mut spans),
            Parsed::Error {
                error: InvalidBulkLength,
                end: 10
            }
        );
    }

    #[test]
    fn inline_requests() {
        let (p, a) = args(b"SET k v\r\nGET");
        assert_eq!(p, Parsed::Request { end: 9 });
        assert_eq!(a, [b"SET".to_vec(), b"k".to_vec(), b"v".to_vec()]);
        assert_eq!(args(b"PING\n").0, Parsed::Request { end: 5 });
        assert_eq!(args(b"PING").0, Parsed::Incomplete);
        assert_eq!(args(b"\r\n").0, Parsed::Empty { end: 2 });
        assert_eq!(args(b"   \t\r\n").0, Parsed::Empty { end: 6 });
        assert_eq!(
            args(b"ECHO \"a\r\n").0,
            Parsed::Error {
                error: ProtocolError::UnbalancedQuotes,
                end: 9
            }
        );
    }

    #[test]
    fn inline_arguments_split_as_sdssplitargs_does() {
        assert_eq!(split("  a  b\tc ").unwrap(), ["a", "b", "c"]);
        assert_eq!(split(r#"a "b c" 'd e'"#).unwrap(), ["a", "b c", "d e"]);
        assert_eq!(split(r#""a\x41\n\q""#).unwrap(), ["aA\nq"]);
        assert_eq!(split(r#""a\x4""#).unwrap(), ["ax4"]);
        assert_eq!(split(r"'a\'b'").unwrap(), ["a'b"]);
        assert_eq!(split(r#"a"b c"d"#), Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(split(r#"a"b c" d"#).unwrap(), ["ab c", "d"]);
        assert_eq!(split("'x'y"), Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(split(r#""a\""#), Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(split("\"a\"\x0b").unwrap(), ["a"]);
        assert_eq!(split("\x0bx y\x0bz").unwrap(), ["x", "y\x0bz"]);
        assert_eq!(split("a\0b c").unwrap(), ["a"]);
        assert_eq!(split("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn error_texts_are_redis_s() {
        let text = |e: ProtocolError| e.to_string();
        assert_eq!(
            text(ProtocolError::ExpectedDollar(b':')),
            "Protocol error: expected '$', got ':'"
        );
        assert_eq!(
            text(ProtocolError::ExpectedDollar(b'\n')),
            "Protocol error: expected '$', got ' '"
        );
        // A NUL ends Redis's C string.
        assert_eq!(
            text(ProtocolError::ExpectedDollar(0)),
            "Protocol error: expected '$', got '"
        );
        assert_eq!(
            text(ProtocolError::TooBigInline),
            "Protocol error: too big inline request"
        );
    }
}
