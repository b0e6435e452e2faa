//! How the middle-tier client proves itself at the token endpoint.
//!
//! `client_secret_post` is the default because it is what LibreChat (openid-client)
//! sends; `client_secret_basic` is RFC 6749 §2.3.1, which Entra also accepts.
//! `private_key_jwt` (RFC 7523 §2.2, Entra's certificate credentials) signs a short-lived
//! JWT with the client's key for every request: a fresh `jti` each time, so an IdP that
//! remembers `jti`s never sees one twice, and no assertion outlives five minutes.

mod choice;
mod signing_key;
#[cfg(test)]
mod tests;

use std::fmt;

use reqwest::RequestBuilder;
use url::form_urlencoded::byte_serialize;
use url::Url;

use crate::ground::error::{ConfigError, ExchangeError};
use crate::ground::redact::Sensitive;
pub use choice::ServerClientAuth;
use signing_key::{KeyOptions, SigningKey};

/// RFC 7523 §2.2 `client_assertion_type`.
const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The supported client authentication methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    ClientSecretPost,
    ClientSecretBasic,
    PrivateKeyJwt,
}

impl Method {
    fn parse(name: Option<&str>) -> Result<Self, ConfigError> {
        match name.map(str::trim) {
            None | Some("client_secret_post") => Ok(Self::ClientSecretPost),
            Some("client_secret_basic") => Ok(Self::ClientSecretBasic),
            Some("private_key_jwt") => Ok(Self::PrivateKeyJwt),
            Some(other) => Err(ConfigError::new(
                "clientAuthMethod",
                format!("must be 'client_secret_post', 'client_secret_basic' or 'private_key_jwt', got '{other}'"),
            )),
        }
    }

    /// The method's registered name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ClientSecretPost => "client_secret_post",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// Credential options as configured (see `config::Options`).
#[derive(Default)]
pub struct CredentialOptions<'a> {
    pub method: Option<&'a str>,
    pub client_secret: Option<String>,
    /// PEM: PKCS#8 (RSA or EC P-256/P-384) or PKCS#1 RSA.
    pub client_assertion_key: Option<&'a str>,
    pub client_assertion_key_id: Option<String>,
    /// PEM certificate of the key: its thumbprints go into the header (Entra).
    pub client_assertion_certificate: Option<&'a str>,
    pub assertion_alg: Option<&'a str>,
    /// `token_endpoint` (default, what Entra wants) or `issuer` (RFC 7523bis servers).
    pub assertion_audience: Option<&'a str>,
}

/// A client identity and its credential. `Debug` never shows the secret or the key.
#[derive(Clone)]
pub struct ClientAuth {
    client_id: String,
    credential: Credential,
}

#[derive(Clone)]
enum Credential {
    SecretPost(String),
    SecretBasic(String),
    Key(Box<SigningKey>),
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAuth")
            .field("method", &self.method())
            .field("client_id", &self.client_id)
            .field("credential", &"[redacted]")
            .finish()
    }
}

impl ClientAuth {
    /// Builds the credential: a secret for the secret methods, a key for
    /// `private_key_jwt` (`parse_key` signs with it once, so a bad key fails at start-up
    /// rather than at the first exchange).
    pub fn new(
        client_id: String,
        issuer: &str,
        options: CredentialOptions,
    ) -> Result<Self, ConfigError> {
        let method = Method::parse(options.method)?;
        let secret = || {
            options
                .client_secret
                .clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    ConfigError::new("clientSecret", format!("is required for {}", method.name()))
                })
        };
        let credential = match method {
            Method::ClientSecretPost => Credential::SecretPost(secret()?),
            Method::ClientSecretBasic => Credential::SecretBasic(secret()?),
            Method::PrivateKeyJwt => Credential::Key(Box::new(SigningKey::new(
                issuer,
                &KeyOptions {
                    pem: options.client_assertion_key,
                    key_id: options.client_assertion_key_id.as_deref(),
                    certificate: options.client_assertion_certificate,
                    alg: options.assertion_alg,
                    audience: options.assertion_audience,
                },
            )?)),
        };
        Ok(Self {
            client_id,
            credential,
        })
    }

    pub fn method(&self) -> Method {
        match self.credential {
            Credential::SecretPost(_) => Method::ClientSecretPost,
            Credential::SecretBasic(_) => Method::ClientSecretBasic,
            Credential::Key(_) => Method::PrivateKeyJwt,
        }
    }

    /// Adds the secret, in every form `apply` sends it, to what must never leave this
    /// process in a message (a client assertion is added by whoever signed it).
    pub fn add_sensitive(&self, sensitive: &mut Sensitive) {
        match &self.credential {
            Credential::SecretPost(secret) => sensitive.value(secret),
            Credential::SecretBasic(secret) => sensitive.basic(&self.client_id, secret),
            Credential::Key(_) => {}
        }
    }

    /// A freshly signed client assertion for a request to `endpoint`
    /// (`private_key_jwt` only).
    pub fn client_assertion(&self, endpoint: &Url) -> Result<Option<String>, ExchangeError> {
        match &self.credential {
            Credential::Key(key) => key
                .sign(&self.client_id, endpoint.as_str())
                .map(Some)
                .map_err(|e| ExchangeError::ClientAssertion(e.to_string())),
            _ => Ok(None),
        }
    }

    /// Adds the credential to a token request: form fields for `client_secret_post`
    /// and `private_key_jwt` (with `client_assertion` from `client_assertion`), an
    /// `Authorization: Basic` header (with form-urlencoded parts, as RFC 6749
    /// requires) for `client_secret_basic`.
    pub fn apply<'a>(
        &'a self,
        request: RequestBuilder,
        form: &mut Vec<(&'static str, &'a str)>,
        client_assertion: Option<&'a str>,
    ) -> RequestBuilder {
        match &self.credential {
            Credential::SecretPost(secret) => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", secret));
                request
            }
            Credential::SecretBasic(secret) => {
                let id: String = byte_serialize(self.client_id.as_bytes()).collect();
                let secret: String = byte_serialize(secret.as_bytes()).collect();
                request.basic_auth(id, Some(secret))
            }
            Credential::Key(_) => {
                form.push(("client_id", &self.client_id));
                form.push(("client_assertion_type", JWT_BEARER_ASSERTION));
                form.extend(client_assertion.map(|jwt| ("client_assertion", jwt)));
                request
            }
        }
    }
}
