//! Every response the handler sends, prepared once: the bytes of each, with the `Date`
//! value patched in place once per second. Answering a request is then one copy of a
//! ready slice into the connection's output, whatever the response.

use super::Body;
use super::date::DATE_LEN;

/// A response the handler sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Reply {
    /// 200 with the body; the connection stays open (HTTP/1.1).
    Ok,
    /// 200 with the body and `Connection: keep-alive` (an HTTP/1.0 client that asked
    /// to keep the connection, which it must be told).
    OkKeepAlive,
    /// 200 with the body and `Connection: close`; the connection closes after it.
    OkClose,
    /// 200 to a HEAD request: the same head, no body.
    HeadOk,
    /// 200 to an HTTP/1.0 keep-alive HEAD request.
    HeadOkKeepAlive,
    /// 200 to a HEAD request that closes.
    HeadOkClose,
    /// 400: the request is malformed.
    BadRequest,
    /// 408: the request did not arrive whole in time.
    RequestTimeout,
    /// 413: the body is larger than the limit.
    ContentTooLarge,
    /// 431: the head (or a chunked body's trailer) is larger than the limit.
    HeaderFieldsTooLarge,
    /// 501: a transfer coding other than `chunked`.
    NotImplemented,
    /// 505: an HTTP version other than 1.x.
    VersionNotSupported,
}

impl Reply {
    const ALL: [Reply; 12] = [
        Reply::Ok,
        Reply::OkKeepAlive,
        Reply::OkClose,
        Reply::HeadOk,
        Reply::HeadOkKeepAlive,
        Reply::HeadOkClose,
        Reply::BadRequest,
        Reply::RequestTimeout,
        Reply::ContentTooLarge,
        Reply::HeaderFieldsTooLarge,
        Reply::NotImplemented,
        Reply::VersionNotSupported,
    ];

    /// Whether the connection closes after this response.
    pub(crate) fn closes(self) -> bool {
        !matches!(
            self,
            Reply::Ok | Reply::OkKeepAlive | Reply::HeadOk | Reply::HeadOkKeepAlive
        )
    }

    /// The same response saying `Connection: close` (for the last request a connection
    /// may carry).
    pub(crate) fn closing(self) -> Reply {
        match self {
            Reply::Ok | Reply::OkKeepAlive => Reply::OkClose,
            Reply::HeadOk | Reply::HeadOkKeepAlive => Reply::HeadOkClose,
            other => other,
        }
    }

    /// The status line's code and reason phrase.
    fn status(self) -> &'static str {
        match self {
            Reply::Ok
            | Reply::OkKeepAlive
            | Reply::OkClose
            | Reply::HeadOk
            | Reply::HeadOkKeepAlive
            | Reply::HeadOkClose => "200 OK",
            Reply::BadRequest => "400 Bad Request",
            Reply::RequestTimeout => "408 Request Timeout",
            Reply::ContentTooLarge => "413 Content Too Large",
            Reply::HeaderFieldsTooLarge => "431 Request Header Fields Too Large",
            Reply::NotImplemented => "501 Not Implemented",
            Reply::VersionNotSupported => "505 HTTP Version Not Supported",
        }
    }

    /// The `Connection` header line, if the response has one.
    fn connection(self) -> &'static str {
        match self {
            Reply::Ok | Reply::HeadOk => "",
            Reply::OkKeepAlive | Reply::HeadOkKeepAlive => "Connection: keep-alive\r\n",
            _ => "Connection: close\r\n",
        }
    }
}

/// The interim response to a request that asked for it (`Expect: 100-continue`) before
/// its body: no header fields, so no date to keep current.
pub(crate) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The prepared responses.
#[derive(Debug)]
pub(crate) struct Responses {
    /// Every response, one after the other.
    bytes: Box<[u8]>,
    /// Where each response of [`Reply::ALL`] starts in `bytes`, its length, and where
    /// its `Date` value starts.
    spans: [Span; Reply::ALL.len()],
}

#[derive(Clone, Copy, Debug, Default)]
struct Span {
    start: usize,
    len: usize,
    date: usize,
}

impl Responses {
    /// Prepares every response for `body`, dated `date`.
    pub(crate) fn new(body: Body, date: &[u8; DATE_LEN]) -> Self {
        let mut bytes = Vec::new();
        let mut spans = [Span::default(); Reply::ALL.len()];
        for (i, reply) in Reply::ALL.into_iter().enumerate() {
            let start = bytes.len();
            let (content, send_body): (&[u8], bool) = match reply {
                Reply::Ok | Reply::OkKeepAlive | Reply::OkClose => (body.bytes(), true),
                Reply::HeadOk | Reply::HeadOkKeepAlive | Reply::HeadOkClose => {
                    (body.bytes(), false)
                }
                // Errors say what went wrong, in a line a person can read (curl shows it).
                _ => (&reply.status().as_bytes()[4..], true),
            };
            let error_line_end: &[u8] = if matches!(reply.status().as_bytes()[0], b'2') {
                b""
            } else {
                b"\r\n"
            };
            let length = content.len() + error_line_end.len();
            bytes.extend_from_slice(
                format!("HTTP/1.1 {}\r\nServer: evio\r\nDate: ", reply.status()).as_bytes(),
            );
            let date_at = bytes.len();
            bytes.extend_from_slice(date);
            bytes.extend_from_slice(
                format!(
                    "\r\nContent-Type: text/plain\r\nContent-Length: {length}\r\n{}\r\n",
                    reply.connection()
                )
                .as_bytes(),
            );
            if send_body {
                bytes.extend_from_slice(content);
                bytes.extend_from_slice(error_line_end);
            }
            spans[i] = Span {
                start,
                len: bytes.len() - start,
                date: date_at,
            };
        }
        Responses {
            bytes: bytes.into_boxed_slice(),
            spans,
        }
    }

    /// The bytes of `reply`.
    #[inline]
    pub(crate) fn get(&self, reply: Reply) -> &[u8] {
        let span = self.spans[reply as usize];
        &self.bytes[span.start..span.start + span.len]
    }

    /// The longest response.
    pub(crate) fn longest(&self) -> usize {
        self.spans.iter().map(|s| s.len).max().unwrap_or(0)
    }

    /// Puts `date` in every response.
    pub(crate) fn set_date(&mut self, date: &[u8; DATE_LEN]) {
        for span in &self.spans {
            self.bytes[span.date..span.date + DATE_LEN].copy_from_slice(date);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8; DATE_LEN] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    #[test]
    fn the_responses_are_exactly_these_bytes() {
        let r = Responses::new(Body::Hello, DATE);
        let head = "HTTP/1.1 200 OK\r\nServer: evio\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
                    Content-Type: text/plain\r\nContent-Length: 14\r\n";
        assert_eq!(
            r.get(Reply::Ok),
            format!("{head}\r\nHello World!\r\n").as_bytes()
        );
        assert_eq!(
            r.get(Reply::OkClose),
            format!("{head}Connection: close\r\n\r\nHello World!\r\n").as_bytes()
        );
        assert_eq!(
            r.get(Reply::OkKeepAlive),
            format!("{head}Connection: keep-alive\r\n\r\nHello World!\r\n").as_bytes()
        );
        assert_eq!(r.get(Reply::HeadOk), format!("{head}\r\n").as_bytes());
        assert_eq!(
            r.get(Reply::HeadOkClose),
            format!("{head}Connection: close\r\n\r\n").as_bytes()
        );
        assert_eq!(
            r.get(Reply::HeaderFieldsTooLarge),
            "HTTP/1.1 431 Request Header Fields Too Large\r\nServer: evio\r\n\
             Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Type: text/plain\r\n\
             Content-Length: 33\r\nConnection: close\r\n\r\n\
             Request Header Fields Too Large\r\n"
                .as_bytes()
        );
    }

    #[test]
    fn the_date_changes_in_every_response_and_nothing_else_does() {
        let mut r = Responses::new(Body::Aaaa, DATE);
        let before: Vec<Vec<u8>> = Reply::ALL.iter().map(|&x| r.get(x).to_vec()).collect();
        let later = b"Mon, 07 Nov 1994 08:49:37 GMT";
        r.set_date(later);
        for (i, &reply) in Reply::ALL.iter().enumerate() {
            let expected = String::from_utf8(before[i].clone())
                .unwrap()
                .replace("Sun, 06 Nov", "Mon, 07 Nov");
            assert_eq!(r.get(reply), expected.as_bytes(), "{reply:?}");
        }
        let ok = String::from_utf8(r.get(Reply::Ok).to_vec()).unwrap();
        assert!(ok.contains("Content-Length: 1024\r\n\r\n"));
        assert!(ok.ends_with(&"a".repeat(1024)));
        assert_eq!(r.longest(), r.get(Reply::OkKeepAlive).len());
    }
}
