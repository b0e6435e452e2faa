//! The one GET of a JSON document from a server: OpenID discovery, RFC 8414 and RFC 9728
//! metadata, and the JWKS. One rule says what its failures mean: whether the document
//! is absent (so another well-known URL may hold it), whether the failure may pass (so
//! the caller may try again later), or whether the document is there and wrong.
//!
//! What may pass is what `retry` tries again for a token request
//! (`ExchangeError::is_retryable`): one of `TRANSIENT_STATUSES`, or a transport failure
//! of a retryable kind, also when the body broke off after the head (a cut-short answer).
//! The client is the caller's: a URL an MCP server named goes out on the client the SSRF
//! guard admitted it with (`ssrf::Guard::admit`), so every connection is screened.

use reqwest::Client;
use serde::de::DeserializeOwned;
use url::Url;

use super::http::{read_body, transport_cause, BodyError};
use crate::ground::bounds::MAX_DOCUMENT_BYTES;
use crate::ground::error::{error_chain, Cause, TransportKind, TRANSIENT_STATUSES};

/// Why a document could not be had.
#[derive(Debug, Clone)]
pub enum DocumentError {
    /// The server answered that there is no document here: a 4xx other than 429.
    Absent { status: u16 },
    /// The server answered with another status that is not a success: a 5xx, a 429, or
    /// a redirect (the client follows none).
    Status { status: u16 },
    /// No whole answer arrived: the request failed below HTTP, or, with the `status` of
    /// the head that did arrive, the body broke off. `cause` is the failure, kept as a
    /// chain for the caller's error to keep; sentences spell it out on one line.
    Transport {
        kind: TransportKind,
        status: Option<u16>,
        cause: Cause,
    },
    /// The body grew past `MAX_DOCUMENT_BYTES`; reading stopped there.
    TooLarge,
    /// The body is not JSON of the expected shape; the parser's reason.
    Unreadable(String),
}

impl DocumentError {
    /// Whether trying again later may succeed: the rule `ExchangeError::is_retryable`
    /// applies to a token request's status and transport failures.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Status { status } => TRANSIENT_STATUSES.contains(status),
            Self::Transport { kind, .. } => kind.is_retryable(),
            Self::Absent { .. } | Self::TooLarge | Self::Unreadable(_) => false,
        }
    }

    /// What failed below HTTP, for the caller's error to keep as its `source`: only a
    /// transport failure has one (a status or a bad document is the whole story).
    pub fn cause(&self) -> Option<Cause> {
        match self {
            Self::Transport { cause, .. } => Some(cause.clone()),
            Self::Absent { .. } | Self::Status { .. } | Self::TooLarge | Self::Unreadable(_) => {
                None
            }
        }
    }

    /// The failure as a sentence about `subject`, the document's kind with its article as
    /// the sentence starts with it ("The metadata", "the JWKS"): the caller's error adds
    /// where the document was and what it was for.
    pub fn describe(&self, subject: &str) -> String {
        match self {
            Self::Absent { status } | Self::Status { status } => {
                format!("{subject} request failed (HTTP {status})")
            }
            Self::Transport {
                kind,
                status: None,
                cause,
            } => format!(
                "{subject} request {}: {}",
                kind.describe("the server"),
                error_chain(cause)
            ),
            Self::Transport {
                kind,
                status: Some(status),
                cause,
            } => format!(
                "{subject} request {} after it answered HTTP {status}, before the whole document arrived: {}",
                kind.describe("the server"),
                error_chain(cause)
            ),
            Self::TooLarge => format!("{subject} document is too large"),
            Self::Unreadable(reason) => format!("{subject} document cannot be read: {reason}"),
        }
    }
}

/// Fetches `url` (no redirects: the client follows none) and reads its body, at most
/// `MAX_DOCUMENT_BYTES`, as `T`.
pub async fn fetch_json<T: DeserializeOwned>(http: &Client, url: &Url) -> Result<T, DocumentError> {
    let response = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|error| transport(error, None))?;
    let status = response.status().as_u16();
    if response.status().is_client_error() && status != 429 {
        return Err(DocumentError::Absent { status });
    }
    if !response.status().is_success() {
        return Err(DocumentError::Status { status });
    }
    let body = read_body(response, MAX_DOCUMENT_BYTES)
        .await
        .map_err(|error| match error {
            BodyError::TooLarge => DocumentError::TooLarge,
            BodyError::Transport(error) => transport(error, Some(status)),
        })?;
    serde_json::from_slice(&body).map_err(|e| DocumentError::Unreadable(e.to_string()))
}

/// A failure below HTTP, kept whole without its URL (as `http::transport_error` keeps a
/// token request's): the document's URL is in the caller's error already.
fn transport(error: reqwest::Error, status: Option<u16>) -> DocumentError {
    let (kind, cause) = transport_cause(error);
    DocumentError::Transport {
        kind,
        status,
        cause,
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    use crate::test_server::{http_client, json, Reply, TestServer};

    #[derive(Debug, serde::Deserialize)]
    struct Doc {
        #[allow(dead_code)]
        issuer: String,
    }

    async fn fetch(reply: Reply) -> Result<Doc, DocumentError> {
        let server = TestServer::start(vec![reply]).await;
        let http = http_client();
        let url = Url::parse(&format!("{}/doc", server.url)).unwrap();
        fetch_json(&http, &url).await
    }

    /// A head with `status` that promises 100 bytes, and a body that stops after 13.
    fn cut_short(status: u16) -> Reply {
        Reply::Raw(format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"issuer\":\"x\""
        ))
    }

    #[tokio::test]
    async fn the_transient_statuses_are_the_token_requests_and_others_are_not() {
        for status in TRANSIENT_STATUSES {
            let error = fetch(json(status, "{}")).await.unwrap_err();
            assert!(matches!(error, DocumentError::Status { status: s } if s == status));
            assert!(error.is_transient(), "{status}");
            assert!(error.cause().is_none(), "a status has no cause below it");
        }
        for status in [501, 505, 302] {
            let error = fetch(json(status, "{}")).await.unwrap_err();
            assert!(matches!(error, DocumentError::Status { status: s } if s == status));
            assert!(!error.is_transient(), "{status}");
        }
        for status in [400, 401, 403, 404, 410] {
            let error = fetch(json(status, "{}")).await.unwrap_err();
            assert!(matches!(error, DocumentError::Absent { status: s } if s == status));
            assert!(!error.is_transient(), "{status}");
            assert!(error.cause().is_none());
        }
    }

    #[tokio::test]
    async fn a_body_that_is_not_the_document_is_invalid() {
        let garbage = fetch(json(200, "<html>")).await.unwrap_err();
        assert!(
            matches!(&garbage, DocumentError::Unreadable(reason) if reason.contains("expected value")),
            "{garbage:?}"
        );
        assert!(!garbage.is_transient());
        assert!(garbage.cause().is_none());
        let wrong_shape = fetch(json(200, "[1]")).await.unwrap_err();
        assert!(matches!(wrong_shape, DocumentError::Unreadable(_)));
        let huge = format!(r#"{{"issuer":"{}"}}"#, "x".repeat(MAX_DOCUMENT_BYTES));
        let error = fetch(json(200, &huge)).await.unwrap_err();
        assert!(matches!(error, DocumentError::TooLarge), "{error:?}");
        assert!(!error.is_transient());
        assert!(error.cause().is_none());
        let at_bound = format!(
            r#"{{"issuer":"{}"}}"#,
            "x".repeat(MAX_DOCUMENT_BYTES - r#"{"issuer":""}"#.len())
        );
        fetch(json(200, &at_bound)).await.unwrap();
        fetch(json(200, r#"{"issuer":"https://idp.example"}"#))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_refused_connection_and_a_body_cut_short_are_transient() {
        let http = Client::new();
        let url = Url::parse("http://127.0.0.1:9/doc").unwrap();
        let refused = fetch_json::<Doc>(&http, &url).await.unwrap_err();
        assert!(
            matches!(
                refused,
                DocumentError::Transport {
                    kind: TransportKind::Connect,
                    status: None,
                    ..
                }
            ),
            "{refused:?}"
        );
        assert!(refused.is_transient());
        let cut = fetch(cut_short(200)).await.unwrap_err();
        assert!(
            matches!(
                cut,
                DocumentError::Transport {
                    kind: TransportKind::Reset,
                    status: Some(200),
                    ..
                }
            ),
            "{cut:?}"
        );
        assert!(cut.is_transient());
        let failing = fetch(cut_short(503)).await.unwrap_err();
        assert!(
            matches!(failing, DocumentError::Status { status: 503 }),
            "no body read: {failing:?}"
        );
        let dropped = fetch(Reply::Drop).await.unwrap_err();
        assert!(dropped.is_transient(), "{dropped:?}");
    }

    /// The cause is the HTTP client's error with its own chain, the one the sentence
    /// spells out, and without the URL.
    fn assert_kept_cause(error: &DocumentError) {
        assert!(
            matches!(error, DocumentError::Transport { .. }),
            "{error:?}"
        );
        let kept = error.cause().expect("a transport failure has a cause");
        let detail = error_chain(&kept);
        assert!(
            error.describe("The document").ends_with(&detail),
            "{detail}"
        );
        assert!(std::error::Error::source(&kept).is_some(), "{detail}");
        assert!(!detail.contains("127.0.0.1"), "{detail}");
    }

    #[tokio::test]
    async fn a_transport_failure_keeps_the_http_clients_error_as_its_cause() {
        let url = Url::parse("http://127.0.0.1:9/doc").unwrap();
        let refused = fetch_json::<Doc>(&Client::new(), &url).await.unwrap_err();
        assert_kept_cause(&refused);
        assert_kept_cause(&fetch(cut_short(200)).await.unwrap_err());
    }

    #[test]
    fn an_unretryable_transport_failure_is_not_transient() {
        let other = DocumentError::Transport {
            kind: TransportKind::Other,
            status: None,
            cause: Cause::new(std::io::Error::other("invalid certificate")),
        };
        assert!(!other.is_transient());
    }

    #[test]
    fn each_failure_reads_as_a_sentence_about_its_document() {
        let transport = |status| DocumentError::Transport {
            kind: TransportKind::Reset,
            status,
            cause: Cause::new(std::io::Error::other("early end")),
        };
        let cases = [
            (DocumentError::Absent { status: 404 }, "The metadata request failed (HTTP 404)"),
            (DocumentError::Status { status: 503 }, "The metadata request failed (HTTP 503)"),
            (
                transport(None),
                "The metadata request lost its connection to the server: early end",
            ),
            (
                transport(Some(200)),
                "The metadata request lost its connection to the server after it answered HTTP 200, before the whole document arrived: early end",
            ),
            (DocumentError::TooLarge, "The metadata document is too large"),
            (
                DocumentError::Unreadable("EOF".into()),
                "The metadata document cannot be read: EOF",
            ),
        ];
        for (error, sentence) in cases {
            assert_eq!(error.describe("The metadata"), sentence);
        }
    }
}
