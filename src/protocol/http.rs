//! The one HTTP client of a service and what every request to the IdP shares:
//! body reading with a size limit, transport failures classified for retry, and
//! `Retry-After`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::dns::Resolve;
use reqwest::{Client, Response};
use url::Url;

use crate::ground::error::{error_chain, BuildError, Cause, ExchangeError, TransportKind};

/// Settings of the client; a service builds one and shares it (one connection pool).
#[derive(Debug, Clone)]
pub struct ClientSettings<'a> {
    pub timeout: Duration,
    pub proxy: Option<&'a Url>,
}

/// One pooled client: rustls, no redirects (a token endpoint that redirects is
/// misconfigured, and following would resend the credential), no proxy unless
/// configured, as LibreChat ignores HTTP(S)_PROXY and honours only `PROXY`.
pub fn client(settings: &ClientSettings) -> Result<Client, BuildError> {
    let builder = Client::builder()
        .use_rustls_tls()
        .timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("librechat-obo/", env!("CARGO_PKG_VERSION")));
    let builder = match settings.proxy {
        Some(proxy) => builder.proxy(reqwest::Proxy::all(proxy.as_str()).map_err(|source| {
            BuildError::HttpClient {
                option: "proxy",
                source,
            }
        })?),
        None => builder.no_proxy(),
    };
    builder.build().map_err(|source| BuildError::HttpClient {
        option: "requestTimeoutMs",
        source,
    })
}

/// The client for URLs an MCP server named, when no proxy is configured: as `client`,
/// with `resolver` answering for every host, so that each connection goes to an address
/// the SSRF policy checked (`ssrf`).
pub fn screened_client<R: Resolve + 'static>(
    timeout: Duration,
    resolver: R,
) -> Result<Client, BuildError> {
    Client::builder()
        .use_rustls_tls()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("librechat-obo/", env!("CARGO_PKG_VERSION")))
        .no_proxy()
        .dns_resolver(Arc::new(resolver))
        .build()
        .map_err(|source| BuildError::HttpClient {
            option: "requestTimeoutMs",
            source,
        })
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// More than the limit arrived; reading stopped there.
    TooLarge,
    /// The connection failed while the body was arriving (`transport_cause` reads it).
    Transport(reqwest::Error),
}

/// Reads the body, giving up as soon as it grows past `limit` bytes, so a hostile or
/// broken endpoint cannot make the process buffer an unbounded answer.
pub async fn read_body(mut response: Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Classifies a reqwest failure; the URL is left out of the text (it is the IdP's,
/// known to the operator) and the underlying causes are kept. A body that broke off
/// (a reset, an early end, broken chunking) is what reqwest calls a decode error: the
/// connection was lost, as a reset before the answer is.
pub fn transport_error(error: reqwest::Error) -> ExchangeError {
    let (kind, cause) = transport_cause(error);
    ExchangeError::Transport {
        kind,
        detail: error_chain(&cause),
        cause: Some(cause),
    }
}

/// How a request failed below HTTP, and the error itself, without its URL, kept whole
/// (its chain of causes too) for the caller's error to keep as its `source`.
pub fn transport_cause(error: reqwest::Error) -> (TransportKind, Cause) {
    let error = error.without_url();
    let kind = if error.is_timeout() {
        TransportKind::Timeout
    } else if error.is_connect() {
        TransportKind::Connect
    } else if error.is_request() || error.is_body() || error.is_decode() {
        TransportKind::Reset
    } else {
        TransportKind::Other
    };
    (kind, Cause::new(error))
}

/// The answer's `Retry-After`, when it has a readable one.
pub fn retry_after(response: &Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// Reads a `Retry-After` value: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
/// A date in the past means "now"; anything unreadable is ignored.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_server::{http_client, json, TestServer};

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = httpdate::parse_http_date("Sun, 29 Nov 2026 10:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after(" 2 ", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("Sun, 29 Nov 2026 10:00:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after("Sun, 29 Nov 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[tokio::test]
    async fn redirects_are_not_followed_and_slow_answers_time_out() {
        let server = TestServer::start(vec![
            json(302, "{}").header("location", "http://127.0.0.1:9/elsewhere"),
            json(200, "{}").delayed(Duration::from_secs(3)),
        ])
        .await;
        let http = client(&ClientSettings {
            timeout: Duration::from_millis(300),
            proxy: None,
        })
        .unwrap();
        let redirected = http.get(format!("{}/", server.url)).send().await.unwrap();
        assert_eq!(redirected.status().as_u16(), 302);
        let slow = http
            .get(format!("{}/", server.url))
            .send()
            .await
            .unwrap_err();
        let error = transport_error(slow);
        let ExchangeError::Transport {
            kind: TransportKind::Timeout,
            detail,
            ..
        } = &error
        else {
            panic!("not a timeout: {error:?}");
        };
        let causes = error.causes(8);
        assert!(!causes.is_empty(), "reqwest's error is kept as the cause");
        for cause in causes {
            assert!(detail.contains(&cause.message), "{detail} / {cause:?}");
            assert!(!cause.message.contains("127.0.0.1"), "no URL: {cause:?}");
        }
    }

    #[tokio::test]
    async fn a_body_past_the_limit_is_refused_and_one_at_it_is_read() {
        let server = TestServer::start(vec![json(200, "0123456789")]).await;
        let http = http_client();
        let get = || http.get(format!("{}/", server.url)).send();
        assert_eq!(
            read_body(get().await.unwrap(), 10).await.unwrap(),
            b"0123456789"
        );
        assert!(matches!(
            read_body(get().await.unwrap(), 9).await,
            Err(BodyError::TooLarge)
        ));
    }
}
