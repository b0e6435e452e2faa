//! The exchange on the wire: one POST to the token endpoint and its answer.
//!
//! Entra's On-Behalf-Of request is RFC 7523's jwt-bearer grant with
//! `requested_token_use=on_behalf_of`, exactly the parameters LibreChat sends.

use std::time::SystemTime;

use reqwest::{Client, Response};
use serde_json::{Map, Value};
use url::Url;

use crate::client_auth::ClientAuth;
use crate::error::{error_chain, ExchangeError, IdpErrorBody, TransportKind};
use crate::redact::redacted_debug;
use crate::retry::parse_retry_after;

/// RFC 7523 grant type used by Entra's On-Behalf-Of flow.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// A token response larger than this is not a token response.
const MAX_BODY_BYTES: usize = 1 << 20;

/// A successful token response, as far as the broker needs it.
pub struct GrantResponse {
    pub access_token: String,
    /// Kept raw: it may be a number or a numeric string (see `expiry`).
    pub expires_in: Option<Value>,
}

/// What one On-Behalf-Of request asks for.
pub struct OboGrant<'a> {
    /// The user's upstream access token.
    pub assertion: &'a str,
    pub scopes: &'a str,
    /// A claims challenge the client is answering (Conditional Access), passed on as is.
    pub claims: Option<&'a str>,
}

redacted_debug!(GrantResponse {
    shown: [expires_in],
    hidden: [access_token]
});

/// Sends one On-Behalf-Of request.
pub async fn request_on_behalf_of(
    http: &Client,
    endpoint: &Url,
    auth: &ClientAuth,
    grant: &OboGrant<'_>,
) -> Result<GrantResponse, ExchangeError> {
    let mut form: Vec<(&'static str, &str)> = vec![
        ("grant_type", JWT_BEARER),
        ("assertion", grant.assertion),
        ("scope", grant.scopes),
        ("requested_token_use", "on_behalf_of"),
    ];
    if let Some(claims) = grant.claims {
        form.push(("claims", claims));
    }
    let request = auth.apply(http.post(endpoint.clone()), &mut form);
    let response = request
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .map_err(transport_error)?;
    read_response(response, &[grant.assertion, auth.sensitive()]).await
}

/// Turns the HTTP answer into a grant or an error; `sensitive` values are scrubbed
/// from any error text the IdP sends back.
async fn read_response(
    response: Response,
    sensitive: &[&str],
) -> Result<GrantResponse, ExchangeError> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let body = read_body(response).await?;
    if !status.is_success() {
        let mut body = IdpErrorBody::parse(&body);
        body.redact(sensitive);
        return Err(ExchangeError::Idp {
            status: status.as_u16(),
            body: Box::new(body),
            retry_after,
        });
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        return Err(ExchangeError::MalformedResponse {
            status: status.as_u16(),
        });
    };
    parse_success(fields)
}

fn parse_success(mut fields: Map<String, Value>) -> Result<GrantResponse, ExchangeError> {
    match fields.remove("access_token") {
        Some(Value::String(access_token)) if !access_token.is_empty() => Ok(GrantResponse {
            access_token,
            expires_in: fields.remove("expires_in"),
        }),
        _ => Err(ExchangeError::EmptyResponse),
    }
}

async fn read_body(mut response: Response) -> Result<Vec<u8>, ExchangeError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ExchangeError::MalformedResponse {
                status: response.status().as_u16(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Classifies a reqwest failure; the URL is left out of the text (it is the token
/// endpoint, known to the operator) and the underlying causes are kept.
fn transport_error(error: reqwest::Error) -> ExchangeError {
    let kind = if error.is_timeout() {
        TransportKind::Timeout
    } else if error.is_connect() {
        TransportKind::Connect
    } else if error.is_request() || error.is_body() {
        TransportKind::Reset
    } else {
        TransportKind::Other
    };
    let detail = error_chain(&error.without_url());
    ExchangeError::Transport { kind, detail }
}
