//! One GET of a JSON metadata document (OpenID discovery, RFC 8414), and one rule for
//! what its failures mean: whether the document is absent (so another well-known URL
//! may hold it), whether the failure may pass (so the caller may try again later), or
//! whether the document is there and wrong.

use reqwest::Client;
use serde::de::DeserializeOwned;
use url::Url;

use super::http::{read_body, transport_error, BodyError};

/// A metadata document larger than this is not a metadata document.
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// Why a document could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentError {
    /// The server answered that there is no document here: a 4xx other than 429.
    Absent { status: u16 },
    /// The network failed, or the server is throttled or failing (5xx, 429): the same
    /// request may succeed later.
    Transient(String),
    /// The server answered with something that is not the document (too large, not
    /// JSON, not of the expected shape, or a status that is neither success nor error).
    Invalid(String),
}

impl DocumentError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

impl std::fmt::Display for DocumentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Absent { status } => write!(f, "HTTP {status}"),
            Self::Transient(detail) | Self::Invalid(detail) => f.write_str(detail),
        }
    }
}

/// Fetches `url` (no redirects: the client follows none) and reads its body as `T`.
pub async fn fetch_json<T: DeserializeOwned>(http: &Client, url: &Url) -> Result<T, DocumentError> {
    let response = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| DocumentError::Transient(transport_error(e).to_string()))?;
    let status = response.status();
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(DocumentError::Transient(format!(
            "HTTP {}",
            status.as_u16()
        )));
    }
    if status.is_client_error() {
        return Err(DocumentError::Absent {
            status: status.as_u16(),
        });
    }
    if !status.is_success() {
        return Err(DocumentError::Invalid(format!("HTTP {}", status.as_u16())));
    }
    let body = read_body(response, MAX_DOCUMENT_BYTES)
        .await
        .map_err(|error| match error {
            BodyError::TooLarge => DocumentError::Invalid("the document is too large".into()),
            BodyError::Transport(error) => DocumentError::Transient(error.to_string()),
        })?;
    serde_json::from_slice(&body)
        .map_err(|e| DocumentError::Invalid(format!("the document cannot be read: {e}")))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::protocol::http::{client, ClientSettings};
    use crate::test_server::{json, TestServer};

    #[derive(Debug, serde::Deserialize)]
    struct Doc {
        #[allow(dead_code)]
        issuer: String,
    }

    async fn fetch(reply: crate::test_server::Reply) -> Result<Doc, DocumentError> {
        let server = TestServer::start(vec![reply]).await;
        let http = client(&ClientSettings {
            timeout: Duration::from_secs(5),
            proxy: None,
        })
        .unwrap();
        let url = Url::parse(&format!("{}/doc", server.url)).unwrap();
        fetch_json(&http, &url).await
    }

    #[tokio::test]
    async fn each_answer_is_absent_transient_or_invalid() {
        for (status, transient) in [(429, true), (500, true), (503, true)] {
            let error = fetch(json(status, "{}")).await.unwrap_err();
            assert_eq!(error.is_transient(), transient, "{status}");
            assert_eq!(error.to_string(), format!("HTTP {status}"));
        }
        for status in [400, 401, 403, 404, 410] {
            assert_eq!(
                fetch(json(status, "{}")).await.unwrap_err(),
                DocumentError::Absent { status }
            );
        }
        let redirect = fetch(json(302, "{}")).await.unwrap_err();
        assert_eq!(redirect, DocumentError::Invalid("HTTP 302".into()));
        assert!(!redirect.is_transient());
        let garbage = fetch(json(200, "<html>")).await.unwrap_err();
        assert!(
            matches!(&garbage, DocumentError::Invalid(d) if d.starts_with("the document cannot be read")),
            "{garbage:?}"
        );
        let huge = format!(r#"{{"issuer":"{}"}}"#, "x".repeat(MAX_DOCUMENT_BYTES));
        assert_eq!(
            fetch(json(200, &huge)).await.unwrap_err(),
            DocumentError::Invalid("the document is too large".into())
        );
        fetch(json(200, r#"{"issuer":"https://idp.example"}"#))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_refused_connection_is_transient() {
        let http = Client::new();
        let url = Url::parse("http://127.0.0.1:9/doc").unwrap();
        let error = fetch_json::<Doc>(&http, &url).await.unwrap_err();
        assert!(error.is_transient(), "{error:?}");
    }
}
