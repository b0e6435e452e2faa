//! How the middle-tier client proves itself at the token endpoint.
//!
//! `client_secret_post` is the default because it is what LibreChat (openid-client)
//! sends; `client_secret_basic` is RFC 6749 §2.3.1, which Entra also accepts.

use std::fmt;

use reqwest::RequestBuilder;
use url::form_urlencoded::byte_serialize;

use crate::config::ConfigError;

/// The supported client authentication methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    ClientSecretPost,
    ClientSecretBasic,
}

impl Method {
    fn parse(name: Option<&str>) -> Result<Self, ConfigError> {
        match name.map(str::trim) {
            None | Some("client_secret_post") => Ok(Self::ClientSecretPost),
            Some("client_secret_basic") => Ok(Self::ClientSecretBasic),
            Some(other) => Err(ConfigError {
                option: "clientAuthMethod",
                problem: format!(
                    "must be 'client_secret_post' or 'client_secret_basic', got '{other}'"
                ),
            }),
        }
    }

    /// The method's registered name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ClientSecretPost => "client_secret_post",
            Self::ClientSecretBasic => "client_secret_basic",
        }
    }
}

/// A client identity and its credential. `Debug` never shows the secret.
#[derive(Clone)]
pub struct ClientAuth {
    method: Method,
    client_id: String,
    secret: String,
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAuth")
            .field("method", &self.method)
            .field("client_id", &self.client_id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl ClientAuth {
    /// Builds the credential; a secret is required for both secret methods.
    pub fn new(
        method: Option<&str>,
        client_id: String,
        secret: Option<String>,
    ) -> Result<Self, ConfigError> {
        let method = Method::parse(method)?;
        let secret = secret
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ConfigError {
                option: "clientSecret",
                problem: format!("is required for {}", method.name()),
            })?;
        Ok(Self {
            method,
            client_id,
            secret,
        })
    }

    /// Values that must never leave this process in a message.
    pub fn sensitive(&self) -> &str {
        &self.secret
    }

    /// Adds the credential to a token request: form fields for `client_secret_post`,
    /// an `Authorization: Basic` header (with form-urlencoded parts, as RFC 6749
    /// requires) for `client_secret_basic`.
    pub fn apply<'a>(
        &'a self,
        request: RequestBuilder,
        form: &mut Vec<(&'static str, &'a str)>,
    ) -> RequestBuilder {
        match self.method {
            Method::ClientSecretPost => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", &self.secret));
                request
            }
            Method::ClientSecretBasic => {
                let id: String = byte_serialize(self.client_id.as_bytes()).collect();
                let secret: String = byte_serialize(self.secret.as_bytes()).collect();
                request.basic_auth(id, Some(secret))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret() {
        let auth = ClientAuth::new(None, "id".into(), Some("top-secret".into())).unwrap();
        assert!(!format!("{auth:?}").contains("top-secret"));
        assert_eq!(auth.method, Method::ClientSecretPost);
    }

    #[test]
    fn basic_auth_urlencodes_before_base64() {
        let auth = ClientAuth::new(
            Some("client_secret_basic"),
            "a:b".into(),
            Some("p w&".into()),
        )
        .unwrap();
        let mut form = Vec::new();
        let request = auth
            .apply(reqwest::Client::new().post("http://127.0.0.1/"), &mut form)
            .build()
            .unwrap();
        assert!(form.is_empty());
        let header = request.headers()["authorization"].to_str().unwrap();
        // base64("a%3Ab:p+w%26")
        assert_eq!(header, "Basic YSUzQWI6cCt3JTI2");
    }

    #[test]
    fn unknown_method_is_named() {
        let err = ClientAuth::new(Some("private_key_jwt"), "id".into(), None).unwrap_err();
        assert_eq!(err.option, "clientAuthMethod");
    }
}
