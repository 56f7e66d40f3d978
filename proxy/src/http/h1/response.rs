//! Reading a response head from an upstream HTTP/1 connection and deciding
//! how its body is framed (RFC 9112 §6.3).

use super::H1Error;
use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use std::mem::MaybeUninit;

/// Most header fields a response head may carry (hyper's default too).
pub const MAX_HEADERS: usize = 100;

/// Largest response head accepted.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How the response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (HEAD, 204, 304, or a zero length).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the server closes the connection.
    Close,
}

/// A final response head.
#[derive(Debug)]
pub struct Head {
    /// Status code.
    pub status: StatusCode,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// The header fields, as sent.
    pub headers: HeaderMap,
    /// How the body is delimited.
    pub framing: BodyFraming,
    /// Whether the connection may carry another request afterwards.
    pub keep_alive: bool,
    /// The reason phrase, when not the status code's canonical one.
    pub reason: Option<hyper::ext::ReasonPhrase>,
}

/// What the bytes read so far hold.
#[derive(Debug)]
pub enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// An interim (1xx) response, consumed from the buffer; the final one
    /// follows.
    Interim,
    /// The final head, consumed from the buffer.
    Final(Head),
}

/// Parses the head at the start of `buf` (a response to `method`); a whole
/// head is split off `buf`, which then starts with the body.
pub fn parse(buf: &mut BytesMut, method: &Method) -> Result<Parsed, H1Error> {
    // Header positions, so that values can share the head's buffer instead
    // of being copied one by one.
    let mut spans = [(0u32, 0u32, 0u32, 0u32); MAX_HEADERS];
    let (len, code, minor, count, reason) = {
        // Uninitialized: filling 100 empty headers per response costs more
        // than parsing a typical one.
        let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut rsp = httparse::Response::new(&mut []);
        let config = httparse::ParserConfig::default();
        let len = match config.parse_response_with_uninit_headers(&mut rsp, buf, &mut fields) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => {
                if buf.len() > MAX_HEAD_BYTES {
                    return Err(H1Error::HeadTooLarge(MAX_HEAD_BYTES));
                }
                return Ok(Parsed::Partial);
            }
            Err(e) => return Err(e.into()),
        };
        if len > MAX_HEAD_BYTES {
            return Err(H1Error::HeadTooLarge(MAX_HEAD_BYTES));
        }
        let base = buf.as_ptr() as usize;
        for (span, field) in spans.iter_mut().zip(rsp.headers.iter()) {
            let name = field.name.as_ptr() as usize - base;
            let value = field.value.as_ptr() as usize - base;
            *span = (
                name as u32,
                (name + field.name.len()) as u32,
                value as u32,
                (value + field.value.len()) as u32,
            );
        }
        let code = rsp.code.expect("complete head has a code");
        // A reason phrase of the server's own is passed on, as hyper does;
        // the canonical one costs nothing.
        let reason = rsp.reason.filter(|r| {
            StatusCode::from_u16(code)
                .ok()
                .and_then(|s| s.canonical_reason())
                != Some(*r)
        });
        let reason = reason.and_then(|r| hyper::ext::ReasonPhrase::try_from(r.as_bytes()).ok());
        (
            len,
            code,
            rsp.version.expect("complete head has a version"),
            rsp.headers.len(),
            reason,
        )
    };
    let head = buf.split_to(len).freeze();
    if (100..200).contains(&code) {
        // 101 answers only an upgrade, which never takes this path.
        return if code == 101 {
            Err(H1Error::UnexpectedSwitch)
        } else {
            Ok(Parsed::Interim)
        };
    }
    let status = StatusCode::from_u16(code).map_err(|_| H1Error::Parse(httparse::Error::Status))?;
    let mut headers = HeaderMap::with_capacity(count);
    // Checked only where it frames the body (hyper's rule too): HEAD, 204
    // and 304 answers pass theirs on as is, and Transfer-Encoding
    // overrides it.
    let mut length: Option<Result<u64, H1Error>> = None;
    let mut chunked_last = false;
    let mut te_seen = false;
    let mut close = false;
    let mut keep_alive_token = false;
    for &(ns, ne, vs, ve) in &spans[..count] {
        let name = HeaderName::from_bytes(&head[ns as usize..ne as usize])
            .map_err(|_| H1Error::InvalidHeader)?;
        let raw = head.slice(vs as usize..ve as usize);
        if name == header::CONTENT_LENGTH {
            length = Some(match (length, parse_length(&raw)) {
                (None, n) => n,
                (Some(Ok(l)), Ok(n)) if l == n => Ok(n),
                _ => Err(H1Error::InvalidContentLength),
            });
        } else if name == header::TRANSFER_ENCODING {
            te_seen = true;
            // Only the last coding of the last field counts.
            chunked_last = last_token(&raw).eq_ignore_ascii_case(b"chunked");
        } else if name == header::CONNECTION {
            for token in raw.split(|b| *b == b',') {
                let token = trim(token);
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        let value = HeaderValue::from_maybe_shared(raw).map_err(|_| H1Error::InvalidHeader)?;
        headers.append(name, value);
    }
    let version = if minor == 1 {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    // Transfer-Encoding overrides Content-Length, which then must not reach
    // the client (hyper's client keeps it; passed on, it frames the
    // re-encoded body wrongly).
    if te_seen {
        headers.remove(header::CONTENT_LENGTH);
    }
    let length_seen = length.is_some();
    let framing = if *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        BodyFraming::Empty
    } else if te_seen {
        // HTTP/1.0 has no transfer codings: its framing is faulty
        // (RFC 9112 §6.1), refused as hyper does.
        if version == Version::HTTP_10 {
            return Err(H1Error::InvalidFraming);
        }
        // Without chunked last the body runs to the connection's end.
        if chunked_last {
            BodyFraming::Chunked
        } else {
            BodyFraming::Close
        }
    } else {
        match length.transpose()? {
            Some(0) => BodyFraming::Empty,
            Some(n) => BodyFraming::Length(n),
            None => BodyFraming::Close,
        }
    };
    let persistent = if version == Version::HTTP_11 {
        !close
    } else {
        keep_alive_token && !close
    };
    // Both framings present is a smuggling signature: never reuse.
    let keep_alive = persistent && framing != BodyFraming::Close && !(te_seen && length_seen);
    Ok(Parsed::Final(Head {
        status,
        version,
        headers,
        framing,
        keep_alive,
        reason,
    }))
}

/// A `Content-Length` value: digits only, or a list of equal ones
/// (RFC 9110 §8.6).
fn parse_length(raw: &Bytes) -> Result<u64, H1Error> {
    let mut value = None;
    for part in raw.split(|b| *b == b',') {
        let part = trim(part);
        if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
            return Err(H1Error::InvalidContentLength);
        }
        let n = part.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        if value.is_some_and(|v| v != n) {
            return Err(H1Error::InvalidContentLength);
        }
        value = Some(n);
    }
    value.ok_or(H1Error::InvalidContentLength)
}

fn last_token(raw: &[u8]) -> &[u8] {
    trim(raw.rsplit(|b| *b == b',').next().unwrap_or(raw))
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn final_head(raw: &str, method: Method) -> (Head, BytesMut) {
        let mut buf = BytesMut::from(raw.as_bytes());
        match parse(&mut buf, &method).unwrap() {
            Parsed::Final(h) => (h, buf),
            other => panic!("expected a final head, got {other:?}"),
        }
    }

    fn framing_of(raw: &str) -> (BodyFraming, bool) {
        let (h, _) = final_head(raw, Method::GET);
        (h.framing, h.keep_alive)
    }

    #[test]
    fn splits_the_head_off_and_keeps_the_body() {
        let (h, rest) = final_head(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
            Method::GET,
        );
        assert_eq!(h.status, 200);
        assert_eq!(h.headers["x-a"], "b");
        assert_eq!(h.framing, BodyFraming::Length(5));
        assert!(h.keep_alive);
        assert_eq!(&rest[..], b"hello");
        assert!(h.reason.is_none(), "canonical");
        let (h, _) = final_head("HTTP/1.1 404 Not Here\r\n\r\n", Method::GET);
        assert_eq!(h.reason.unwrap().as_bytes(), b"Not Here");
    }

    #[test]
    fn partial_heads_wait_for_more() {
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Le"[..]);
        assert!(matches!(parse(&mut buf, &Method::GET), Ok(Parsed::Partial)));
        assert_eq!(buf.len(), 27, "nothing consumed");
    }

    #[test]
    fn interim_responses_are_consumed_and_101_is_refused() {
        let mut buf =
            BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"[..]);
        assert!(matches!(
            parse(&mut buf, &Method::POST),
            Ok(Parsed::Interim)
        ));
        assert!(matches!(
            parse(&mut buf, &Method::POST),
            Ok(Parsed::Final(_))
        ));
        let mut buf = BytesMut::from(&b"HTTP/1.1 101 Switching Protocols\r\n\r\n"[..]);
        assert!(matches!(
            parse(&mut buf, &Method::GET),
            Err(H1Error::UnexpectedSwitch)
        ));
    }

    #[test]
    fn body_framing_follows_rfc9112() {
        use BodyFraming::*;
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            (Chunked, true)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            (Chunked, true)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            (Close, false)
        );
        assert_eq!(framing_of("HTTP/1.1 200 OK\r\n\r\n"), (Close, false));
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            (Empty, true)
        );
        assert_eq!(framing_of("HTTP/1.1 204 No Content\r\n\r\n"), (Empty, true));
        assert_eq!(
            framing_of("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"),
            (Empty, true)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n"),
            (Length(3), true)
        );
        // Both framings: chunked wins and the connection is not reused.
        assert_eq!(
            framing_of(
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            (Chunked, false)
        );
        let (h, _) = final_head(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            Method::GET,
        );
        assert!(!h.headers.contains_key("content-length"), "not passed on");
        // HTTP/1.0: persistent only when asked.
        assert_eq!(
            framing_of("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n"),
            (Length(2), false)
        );
        assert_eq!(
            framing_of("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n"),
            (Length(2), true)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 2\r\n\r\n"),
            (Length(2), false)
        );
        let (h, _) = final_head("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", Method::HEAD);
        assert_eq!(h.framing, Empty);
        assert_eq!(h.headers["content-length"], "9", "kept for the client");
    }

    #[test]
    fn bad_lengths_and_heads_are_errors() {
        for raw in [
            "HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0x3\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            "HTTX/1.1 200 OK\r\n\r\n",
            // HTTP/1.0 has no transfer codings.
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            let mut buf = BytesMut::from(raw.as_bytes());
            assert!(parse(&mut buf, &Method::GET).is_err(), "accepted {raw:?}");
        }
    }

    #[test]
    fn oversized_heads_are_refused() {
        let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
        while raw.len() <= MAX_HEAD_BYTES {
            raw.extend_from_slice(b"x-filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        let mut buf = BytesMut::from(&raw[..]);
        assert!(parse(&mut buf, &Method::GET).is_err());
    }
}
