//! Why an exchange on an upstream HTTP/1 connection failed.

/// An upstream HTTP/1 failure. Every one of them ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum H1Error {
    /// Reading or writing the connection failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The server closed the connection before any response.
    #[error("connection closed before a response")]
    ClosedBeforeResponse,
    /// The server closed the connection in the middle of a response head.
    #[error("connection closed in the middle of the response head")]
    IncompleteHead,
    /// The server closed the connection before the response body ended.
    #[error("connection closed before the response body ended")]
    IncompleteBody,
    /// The response head is larger than the proxy accepts.
    #[error("response head larger than {0} bytes")]
    HeadTooLarge(usize),
    /// The response head does not parse.
    #[error("invalid response head: {0}")]
    Parse(#[from] httparse::Error),
    /// A header name or value the HTTP types refuse.
    #[error("invalid response header")]
    InvalidHeader,
    /// `Content-Length` is not one decimal number (or a list of equal ones).
    #[error("invalid content-length in response")]
    InvalidContentLength,
    /// Transfer-Encoding in an HTTP/1.0 response.
    #[error("transfer-encoding in an HTTP/1.0 response")]
    InvalidFraming,
    /// The chunked body encoding is broken.
    #[error("invalid chunked encoding: {0}")]
    InvalidChunk(&'static str),
    /// `101 Switching Protocols` to a request that asked for no upgrade.
    #[error("unexpected 101 Switching Protocols")]
    UnexpectedSwitch,
    /// The request body did not match its declared length, or failed.
    #[error("request body: {0}")]
    RequestBody(String),
}
