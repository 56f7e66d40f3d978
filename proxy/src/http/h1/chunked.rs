//! Decoding a chunked response body (RFC 9112 §7.1), strictly: CRLF line
//! ends only, at most 16 hex digits of size, bounded size lines and
//! trailers. What it does not accept ends the connection.

use super::H1Error;
use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Longest chunk-size line (with extensions) accepted.
const MAX_SIZE_LINE: usize = 4096;
/// Largest trailer section accepted.
const MAX_TRAILERS: usize = 16 * 1024;
/// Most trailer fields accepted.
const MAX_TRAILER_FIELDS: usize = 32;

/// Where the decoder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk, with this many bytes left.
    Data(u64),
    /// Expecting the CRLF that ends a chunk.
    DataEnd,
    /// After the last chunk: trailers, or the final CRLF.
    Trailers,
    /// The body has ended.
    Done,
}

/// One step of decoding.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// The trailer fields (then the body ends).
    Trailers(HeaderMap),
    /// The body has ended.
    End,
    /// More bytes must be read first.
    NeedMore,
}

/// Decodes what `buf` holds from `state` on, consuming it.
pub fn decode(state: &mut State, buf: &mut BytesMut) -> Result<Decoded, H1Error> {
    loop {
        match *state {
            State::Size => {
                let Some(line_end) = line_end(buf, MAX_SIZE_LINE)? else {
                    return Ok(Decoded::NeedMore);
                };
                let size = parse_size(&buf[..line_end])?;
                buf.advance(line_end + 2);
                *state = if size == 0 {
                    State::Trailers
                } else {
                    State::Data(size)
                };
            }
            State::Data(left) => {
                if buf.is_empty() {
                    return Ok(Decoded::NeedMore);
                }
                let n = (buf.len() as u64).min(left) as usize;
                let data = buf.split_to(n).freeze();
                *state = match left - n as u64 {
                    0 => State::DataEnd,
                    rest => State::Data(rest),
                };
                return Ok(Decoded::Data(data));
            }
            State::DataEnd => {
                if buf.len() < 2 {
                    return Ok(Decoded::NeedMore);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(H1Error::InvalidChunk("chunk data not followed by CRLF"));
                }
                buf.advance(2);
                *state = State::Size;
            }
            State::Trailers => {
                if buf.len() < 2 {
                    return Ok(Decoded::NeedMore);
                }
                if &buf[..2] == b"\r\n" {
                    buf.advance(2);
                    *state = State::Done;
                    return Ok(Decoded::End);
                }
                let mut fields = [httparse::EMPTY_HEADER; MAX_TRAILER_FIELDS];
                match httparse::parse_headers(buf, &mut fields) {
                    Ok(httparse::Status::Complete((len, fields))) => {
                        let mut map = HeaderMap::with_capacity(fields.len());
                        for f in fields.iter() {
                            let name = HeaderName::from_bytes(f.name.as_bytes())
                                .map_err(|_| H1Error::InvalidChunk("invalid trailer name"))?;
                            let value = HeaderValue::from_bytes(f.value)
                                .map_err(|_| H1Error::InvalidChunk("invalid trailer value"))?;
                            map.append(name, value);
                        }
                        buf.advance(len);
                        *state = State::Done;
                        return Ok(Decoded::Trailers(map));
                    }
                    Ok(httparse::Status::Partial) if buf.len() <= MAX_TRAILERS => {
                        return Ok(Decoded::NeedMore)
                    }
                    Ok(httparse::Status::Partial) => {
                        return Err(H1Error::InvalidChunk("trailers too large"))
                    }
                    Err(_) => return Err(H1Error::InvalidChunk("invalid trailers")),
                }
            }
            State::Done => return Ok(Decoded::End),
        }
    }
}

/// The offset of the CRLF ending the first line, if it is there; a bare LF
/// or CR, or a line longer than `max`, is an error.
fn line_end(buf: &[u8], max: usize) -> Result<Option<usize>, H1Error> {
    let window = &buf[..buf.len().min(max + 2)];
    match window.iter().position(|b| *b == b'\n') {
        Some(0) => Err(H1Error::InvalidChunk("bare LF")),
        Some(lf) if window[lf - 1] != b'\r' => Err(H1Error::InvalidChunk("bare LF")),
        Some(lf) if window[..lf - 1].contains(&b'\r') => Err(H1Error::InvalidChunk("bare CR")),
        Some(lf) => Ok(Some(lf - 1)),
        None if buf.len() > max + 1 => Err(H1Error::InvalidChunk("chunk-size line too long")),
        None if window.iter().rev().skip(1).any(|b| *b == b'\r') => {
            Err(H1Error::InvalidChunk("bare CR"))
        }
        None => Ok(None),
    }
}

/// `1*HEXDIG [ BWS ";" chunk-ext ]`.
fn parse_size(line: &[u8]) -> Result<u64, H1Error> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(H1Error::InvalidChunk("missing chunk size"));
    }
    if digits > 16 {
        return Err(H1Error::InvalidChunk("chunk size too large"));
    }
    let rest = &line[digits..];
    let ext = rest.iter().position(|b| !matches!(b, b' ' | b'\t'));
    if let Some(i) = ext {
        if rest[i] != b';' {
            return Err(H1Error::InvalidChunk("invalid chunk size"));
        }
    }
    let size = line[..digits].iter().fold(0u64, |n, d| {
        let v = (*d as char).to_digit(16).expect("hex digit") as u64;
        (n << 4) | v
    });
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `step` bytes: the body and trailers.
    fn decode_all(input: &[u8], step: usize) -> Result<(Vec<u8>, Option<HeaderMap>), H1Error> {
        let mut state = State::Size;
        let mut buf = BytesMut::new();
        let mut fed = 0;
        let mut body = Vec::new();
        let mut trailers = None;
        loop {
            match decode(&mut state, &mut buf)? {
                Decoded::Data(d) => body.extend_from_slice(&d),
                Decoded::Trailers(t) => trailers = Some(t),
                Decoded::End => return Ok((body, trailers)),
                Decoded::NeedMore => {
                    if fed == input.len() {
                        return Err(H1Error::IncompleteBody);
                    }
                    let n = step.min(input.len() - fed);
                    buf.extend_from_slice(&input[fed..fed + n]);
                    fed += n;
                }
            }
        }
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers_in_any_split() {
        let input =
            b"5\r\nhello\r\n1a;name=v\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-sum: 7\r\n\r\n";
        for step in [1, 2, 3, 7, 64] {
            let (body, trailers) = decode_all(input, step).unwrap();
            assert_eq!(body, b"helloabcdefghijklmnopqrstuvwxyz");
            assert_eq!(trailers.unwrap()["x-sum"], "7");
        }
        let (body, trailers) = decode_all(b"A\r\n0123456789\r\n0\r\n\r\n", 4).unwrap();
        assert_eq!(body, b"0123456789");
        assert!(trailers.is_none());
    }

    #[test]
    fn leaves_what_follows_the_body_in_the_buffer() {
        let mut state = State::Size;
        let mut buf = BytesMut::from(&b"0\r\n\r\nHTTP/1.1"[..]);
        assert_eq!(decode(&mut state, &mut buf).unwrap(), Decoded::End);
        assert_eq!(&buf[..], b"HTTP/1.1");
    }

    #[test]
    fn refuses_what_could_be_read_two_ways() {
        for bad in [
            &b"5\nhello\r\n0\r\n\r\n"[..], // bare LF after the size
            b"5\r\nhello\n0\r\n\r\n",      // bare LF after the data
            b"5\r\nhelloX\r\n0\r\n\r\n",   // data longer than its size
            b"5\rX\r\nhello\r\n0\r\n\r\n", // bare CR
            b"-5\r\nhello\r\n0\r\n\r\n",   // not hex
            b"0x5\r\nhello\r\n0\r\n\r\n",  // prefix
            b"5 x\r\nhello\r\n0\r\n\r\n",  // junk after the size
            b"\r\nhello\r\n0\r\n\r\n",     // empty size
            b"11111111111111111\r\n",      // 17 hex digits
            b"0\r\nbad field\r\n\r\n",     // broken trailer
        ] {
            assert!(
                decode_all(bad, 64).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(bad)
            );
            assert!(
                decode_all(bad, 1).is_err(),
                "accepted byte by byte {:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn bounds_size_lines_and_trailers() {
        let mut long = b"5;".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_SIZE_LINE + 10));
        assert!(decode_all(&long, 512).is_err());
        let mut trailers = b"0\r\n".to_vec();
        while trailers.len() < MAX_TRAILERS + 100 {
            trailers.extend_from_slice(
                b"x-a: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n",
            );
        }
        assert!(decode_all(&trailers, 1024).is_err());
    }
}
