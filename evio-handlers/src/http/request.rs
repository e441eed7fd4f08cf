//! Reading a request head: what the front of a connection's input holds, and how the
//! request's body (if any) is framed.
//!
//! [`httparse`] parses heads of HTTP/1.0 and HTTP/1.1. It refuses every other version
//! outright, so a request line it refuses for its version is read here instead: a
//! version this server does not speak (`HTTP/2.0` to `HTTP/9.9`) is answered 505
//! rather than 400, and HTTP/1.2 to 1.9 (a later minor version of the protocol it
//! speaks) is served as HTTP/1.1, as RFC 9110 §2.5 asks and nginx does. A version of
//! more than one digit each side is malformed (RFC 9112 §2.3), 400.
//!
//! Every answer depends on the bytes alone, and on how many have arrived only through
//! whether the head is whole (or the window full), so a request gets the same answer
//! however its bytes were split across reads.

use httparse::{Header, Status};

use super::body::Incoming;
use super::responses::Reply;

/// What the front of the input holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Head {
    /// Not a whole head yet.
    Partial,
    /// A request refused with this reply (which closes the connection).
    Refused(Reply),
    /// A whole head of `len` bytes, to be answered with `reply` once its body (if
    /// `body` is `Some`) has been read.
    Request {
        len: usize,
        reply: Reply,
        body: Option<Incoming>,
        /// The client waits for `100 Continue` before it sends the body.
        expect_continue: bool,
    },
}

/// Reads the head at the front of `buf` (which starts where a request starts): within
/// its first `max_head` bytes, bodies up to `max_body` bytes.
#[inline]
pub(crate) fn read_head<'b>(
    buf: &'b [u8],
    headers: &mut [Header<'b>],
    max_head: usize,
    max_body: u64,
) -> Head {
    let window = &buf[..buf.len().min(max_head)];
    let full = buf.len() >= max_head;
    let mut request = httparse::Request::new(headers);
    match request.parse(window) {
        Ok(Status::Complete(len)) => {
            // httparse says all three are there once the head is whole.
            let (Some(method), Some(target), Some(minor)) =
                (request.method, request.path, request.version)
            else {
                return Head::Refused(Reply::BadRequest);
            };
            if let Err(reply) = check_line(method.as_bytes(), target.as_bytes()) {
                return Head::Refused(reply);
            }
            let line = Line {
                head: method == "HEAD",
                http11: minor == 1,
            };
            fields(line, len, request.headers, max_body)
        }
        // The head does not end within the limit (or the buffer is full of it).
        Ok(Status::Partial) if full => Head::Refused(Reply::HeaderFieldsTooLarge),
        Ok(Status::Partial) => Head::Partial,
        Err(httparse::Error::TooManyHeaders) => Head::Refused(Reply::HeaderFieldsTooLarge),
        Err(httparse::Error::Version) => other_version(window, full, request.headers, max_body),
        Err(_) => Head::Refused(Reply::BadRequest),
    }
}

/// What the request line says that matters here.
#[derive(Clone, Copy)]
struct Line {
    /// The method is `HEAD`: the response has no body.
    head: bool,
    /// HTTP/1.1 (or a later 1.x): persistent by default, `Host` required, transfer
    /// codings allowed.
    http11: bool,
}

/// Refuses with 400 what this server does not serve whatever the version: `CONNECT`
/// (it is no proxy; nginx answers 400), the asterisk-form `*` (nginx answers 400 even
/// to `OPTIONS *`), and any target neither origin-form (`/path`) nor absolute-form
/// (`scheme://...`), such as the authority-form `host:443` that only `CONNECT` uses.
fn check_line(method: &[u8], target: &[u8]) -> Result<(), Reply> {
    if method == b"CONNECT" {
        return Err(Reply::BadRequest);
    }
    match target.first() {
        Some(b'/') => Ok(()),
        _ if is_absolute(target) => Ok(()),
        _ => Err(Reply::BadRequest),
    }
}

/// `scheme "://" ...` with a scheme of a letter then letters, digits, `+`, `-` or `.`
/// (RFC 3986 §3.1).
fn is_absolute(target: &[u8]) -> bool {
    let Some(colon) = target.iter().position(|&b| b == b':') else {
        return false;
    };
    let (scheme, rest) = target.split_at(colon);
    scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        && rest.starts_with(b"://")
}

/// A head whose version httparse refused: its request line read here (`method SP
/// target SP HTTP/major.minor`, ended by CRLF or a bare LF, as httparse ends lines),
/// then 400 for a malformed line or target, 505 for a major version other than 1, and
/// for HTTP/1.x the header fields parsed by httparse and the request served as
/// HTTP/1.1.
fn other_version<'b>(
    window: &'b [u8],
    full: bool,
    headers: &mut [Header<'b>],
    max_body: u64,
) -> Head {
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return if full {
            Head::Refused(Reply::HeaderFieldsTooLarge)
        } else {
            Head::Partial
        };
    };
    let line = window[..lf].strip_suffix(b"\r").unwrap_or(&window[..lf]);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Head::Refused(Reply::BadRequest);
    };
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    let visible = |b: &u8| b.is_ascii_graphic();
    if method.is_empty()
        || !method.iter().all(token)
        || target.is_empty()
        || !target.iter().all(visible)
    {
        return Head::Refused(Reply::BadRequest);
    }
    if let Err(reply) = check_line(method, target) {
        return Head::Refused(reply);
    }
    let Some((major, _minor)) = parse_version(version) else {
        return Head::Refused(Reply::BadRequest);
    };
    if major != 1 {
        return Head::Refused(Reply::VersionNotSupported);
    }
    // HTTP/1.0 and 1.1 are httparse's: this is 1.2 or later, served as 1.1.
    let rest = &window[lf + 1..];
    match httparse::parse_headers(rest, headers) {
        Ok(Status::Complete((len, fields_read))) => {
            let line = Line {
                head: method == b"HEAD",
                http11: true,
            };
            fields(line, lf + 1 + len, fields_read, max_body)
        }
        Ok(Status::Partial) if full => Head::Refused(Reply::HeaderFieldsTooLarge),
        Ok(Status::Partial) => Head::Partial,
        Err(httparse::Error::TooManyHeaders) => Head::Refused(Reply::HeaderFieldsTooLarge),
        Err(_) => Head::Refused(Reply::BadRequest),
    }
}

/// `HTTP/major.minor`, one digit each (RFC 9112 §2.3), the major not `0` (so
/// `HTTP/0.9` is malformed, as nginx has it).
fn parse_version(version: &[u8]) -> Option<(u8, u8)> {
    match *version {
        [
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            major @ b'1'..=b'9',
            b'.',
            minor @ b'0'..=b'9',
        ] => Some((major - b'0', minor - b'0')),
        _ => None,
    }
}

/// Reads the header fields of a whole head of `len` bytes and decides: refused, or
/// served with which reply and body framing.
///
/// The checks, in order: exactly one `Host` in HTTP/1.1 (at most one in 1.0), each
/// `Content-Length` plain digits and all of them equal (400); a `Transfer-Encoding`
/// in HTTP/1.0, twice, or together with `Content-Length` (request smuggling, RFC 9112
/// §6.1) is 400, and one other than `chunked` is 501 (nginx's answers); a
/// `Content-Length` over `max_body` is 413, at once, before the body is read.
#[inline]
fn fields(line: Line, len: usize, fields: &[Header<'_>], max_body: u64) -> Head {
    let mut content_length: Option<u64> = None;
    let (mut hosts, mut close, mut keep_alive) = (0, false, false);
    let (mut codings, mut chunked, mut expect) = (0, false, false);
    for header in fields {
        let name = header.name.as_bytes();
        // Dispatch on length first: most fields are none of these.
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => hosts += 1,
            6 if name.eq_ignore_ascii_case(b"expect") => {
                expect |= header
                    .value
                    .trim_ascii()
                    .eq_ignore_ascii_case(b"100-continue");
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for token in header.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                let Some(n) = parse_length(header.value) else {
                    return Head::Refused(Reply::BadRequest);
                };
                // Several fields are allowed only if they agree (RFC 9112 §6.3).
                if content_length.is_some_and(|m| m != n) {
                    return Head::Refused(Reply::BadRequest);
                }
                content_length = Some(n);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                codings += 1;
                chunked = header.value.trim_ascii().eq_ignore_ascii_case(b"chunked");
            }
            _ => {}
        }
    }
    if hosts > 1 || (line.http11 && hosts == 0) {
        return Head::Refused(Reply::BadRequest);
    }
    let body = if codings > 0 {
        if !line.http11 || codings > 1 || content_length.is_some() {
            return Head::Refused(Reply::BadRequest);
        }
        if !chunked {
            // `gzip, chunked`, `identity`, anything but `chunked` alone.
            return Head::Refused(Reply::NotImplemented);
        }
        Some(Incoming::chunked())
    } else {
        match content_length {
            Some(n) if n > max_body => return Head::Refused(Reply::ContentTooLarge),
            Some(n) if n > 0 => Some(Incoming::Length(n)),
            _ => None,
        }
    };
    let closes = close || (!line.http11 && !keep_alive);
    let reply = match (line.head, closes, line.http11) {
        (false, true, _) => Reply::OkClose,
        (false, false, true) => Reply::Ok,
        (false, false, false) => Reply::OkKeepAlive,
        (true, true, _) => Reply::HeadOkClose,
        (true, false, true) => Reply::HeadOk,
        (true, false, false) => Reply::HeadOkKeepAlive,
    };
    Head::Request {
        len,
        reply,
        // An HTTP/1.0 client cannot expect 100 (RFC 9110 §10.1.1); no body, no wait.
        expect_continue: expect && line.http11 && body.is_some(),
        body,
    }
}

/// A `Content-Length` value: decimal digits only (no sign, no list), at most 18 of
/// them so it cannot overflow.
fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 18 {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version(b"HTTP/1.2"), Some((1, 2)));
        assert_eq!(parse_version(b"HTTP/2.0"), Some((2, 0)));
        assert_eq!(parse_version(b"HTTP/9.9"), Some((9, 9)));
        for bad in [
            &b"HTTP/0.9"[..],
            b"HTTP/01.1",
            b"HTTP/1.",
            b"HTTP/2",
            b"HTTP/1.10",
            b"HTTP/10.0",
            b"http/1.1",
            b"HTTP/1.x",
            b"",
        ] {
            assert_eq!(parse_version(bad), None, "{}", bad.escape_ascii());
        }
    }

    #[test]
    fn targets() {
        for ok in [&b"/"[..], b"/a?b", b"http://x/", b"ftp://x", b"a+b-c.d://e"] {
            assert_eq!(check_line(b"GET", ok), Ok(()), "{}", ok.escape_ascii());
        }
        for bad in [
            &b"*"[..],
            b"host:443",
            b"x",
            b"http:/x",
            b"1http://x",
            b"://x",
        ] {
            assert_eq!(
                check_line(b"GET", bad),
                Err(Reply::BadRequest),
                "{}",
                bad.escape_ascii()
            );
        }
        assert_eq!(check_line(b"CONNECT", b"/"), Err(Reply::BadRequest));
        assert_eq!(check_line(b"OPTIONS", b"*"), Err(Reply::BadRequest));
    }
}
