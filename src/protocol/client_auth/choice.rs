//! Which client authentication method a request to a discovered authorization server
//! uses, from what its metadata lists (RFC 8414 §2 `token_endpoint_auth_methods_supported`).
//!
//! A method the operator configured is kept, but the server must list it (when it
//! lists any): sending credentials in a form the server does not take fails anyway,
//! after the user's assertion has already been spent on leg 1. With only a secret and
//! no method configured, the method is the server's to say: `client_secret_basic`
//! first (RFC 6749 §2.3.1: every server must support it; the form is "NOT
//! RECOMMENDED"), then `client_secret_post`. A server that lists nothing takes
//! RFC 8414's default, `client_secret_basic`.

use super::{ClientAuth, Credential, Method};
use crate::ground::error::GrantProblem;

/// The secret methods, in order of preference.
const SECRET_METHODS: [Method; 2] = [Method::ClientSecretBasic, Method::ClientSecretPost];

/// How the client authenticates at a discovered server: the method configured, or one
/// to be chosen from the server's list.
#[derive(Debug, Clone)]
pub struct ServerClientAuth {
    auth: ClientAuth,
    configured: bool,
}

impl ServerClientAuth {
    /// `configured`: whether the operator named the method of `auth` (else `auth` holds
    /// a secret whose method is chosen per server).
    pub fn new(auth: ClientAuth, configured: bool) -> Self {
        Self { auth, configured }
    }

    /// The credential for a server whose metadata lists `listed` (`None`: no list).
    pub fn for_server(&self, listed: Option<&[String]>) -> Result<ClientAuth, GrantProblem> {
        let method = choose(self.auth.method(), self.configured, listed)?;
        Ok(self.auth.with_method(method))
    }
}

/// The method to use: `current` when `configured` and listed (or nothing is listed),
/// else the first secret method listed, else RFC 8414's default when nothing is.
fn choose(
    current: Method,
    configured: bool,
    listed: Option<&[String]>,
) -> Result<Method, GrantProblem> {
    let lists =
        |method: Method| listed.is_none_or(|names| names.iter().any(|n| n == method.name()));
    let chosen = if configured {
        Some(current).filter(|method| lists(*method))
    } else if listed.is_none() {
        Some(Method::ClientSecretBasic)
    } else {
        SECRET_METHODS.into_iter().find(|method| lists(*method))
    };
    chosen.ok_or_else(|| GrantProblem::IdJagAuthMethod {
        configured: configured.then_some(current.name()),
        listed: listed.unwrap_or_default().to_vec(),
    })
}

impl ClientAuth {
    /// The same credential presented with `method`: only a secret can change between
    /// the two secret methods; a key stays `private_key_jwt`.
    fn with_method(&self, method: Method) -> Self {
        let credential = match (&self.credential, method) {
            (Credential::SecretPost(s) | Credential::SecretBasic(s), Method::ClientSecretBasic) => {
                Credential::SecretBasic(s.clone())
            }
            (Credential::SecretPost(s) | Credential::SecretBasic(s), Method::ClientSecretPost) => {
                Credential::SecretPost(s.clone())
            }
            (credential, _) => credential.clone(),
        };
        Self {
            client_id: self.client_id.clone(),
            credential,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::client_auth::CredentialOptions;

    fn listed(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn secret(method: Option<&str>) -> ServerClientAuth {
        let options = CredentialOptions {
            method,
            client_secret: Some("s3cret".into()),
            ..CredentialOptions::default()
        };
        let auth = ClientAuth::new("client".into(), "https://as.example", options).unwrap();
        ServerClientAuth::new(auth, method.is_some())
    }

    fn method_for(auth: &ServerClientAuth, names: Option<&[&str]>) -> Result<Method, GrantProblem> {
        let names = names.map(listed);
        auth.for_server(names.as_deref()).map(|auth| auth.method())
    }

    #[test]
    fn an_unconfigured_secret_follows_the_server() {
        let auth = secret(None);
        assert_eq!(method_for(&auth, None), Ok(Method::ClientSecretBasic));
        let basic_and_post = ["client_secret_post", "client_secret_basic"];
        assert_eq!(
            method_for(&auth, Some(&basic_and_post)),
            Ok(Method::ClientSecretBasic)
        );
        assert_eq!(
            method_for(&auth, Some(&["private_key_jwt", "client_secret_post"])),
            Ok(Method::ClientSecretPost)
        );
        let chosen = auth
            .for_server(Some(&listed(&["client_secret_post"])))
            .unwrap();
        assert_eq!(chosen.method(), Method::ClientSecretPost);
        let err = method_for(&auth, Some(&["private_key_jwt", "none"])).unwrap_err();
        assert_eq!(
            err,
            GrantProblem::IdJagAuthMethod {
                configured: None,
                listed: listed(&["private_key_jwt", "none"])
            }
        );
        assert_eq!(err.code(), "ERR_ID_JAG_AUTH_METHOD");
        assert!(err
            .to_string()
            .contains("authorizationServer.clientAuthMethod"));
        assert!(err.to_string().contains("[private_key_jwt, none]"));
        assert_eq!(
            method_for(&auth, Some(&[])).unwrap_err(),
            GrantProblem::IdJagAuthMethod {
                configured: None,
                listed: vec![]
            }
        );
    }

    #[test]
    fn a_configured_method_must_be_listed() {
        let post = secret(Some("client_secret_post"));
        assert_eq!(method_for(&post, None), Ok(Method::ClientSecretPost));
        assert_eq!(
            method_for(&post, Some(&["client_secret_basic", "client_secret_post"])),
            Ok(Method::ClientSecretPost)
        );
        let err = method_for(&post, Some(&["client_secret_basic"])).unwrap_err();
        assert_eq!(
            err,
            GrantProblem::IdJagAuthMethod {
                configured: Some("client_secret_post"),
                listed: listed(&["client_secret_basic"])
            }
        );
        assert!(err
            .to_string()
            .contains("authorizationServer.clientAuthMethod 'client_secret_post'"));
        let basic = secret(Some("client_secret_basic"));
        assert_eq!(
            method_for(&basic, Some(&["client_secret_basic"])),
            Ok(Method::ClientSecretBasic)
        );
        assert!(method_for(&basic, Some(&["client_secret_post"])).is_err());
    }

    #[test]
    fn a_configured_key_must_be_listed_and_stays_a_key() {
        let (pem, _) = crate::protocol::client_auth::tests::p256_key();
        let options = CredentialOptions {
            method: Some("private_key_jwt"),
            client_assertion_key: Some(&pem),
            client_assertion_key_id: Some("key-1".into()),
            ..CredentialOptions::default()
        };
        let auth = ClientAuth::new("client".into(), "https://as.example", options).unwrap();
        let key = ServerClientAuth::new(auth, true);
        assert_eq!(method_for(&key, None), Ok(Method::PrivateKeyJwt));
        assert_eq!(
            method_for(&key, Some(&["client_secret_basic", "private_key_jwt"])),
            Ok(Method::PrivateKeyJwt)
        );
        assert_eq!(
            method_for(&key, Some(&["client_secret_basic"])).unwrap_err(),
            GrantProblem::IdJagAuthMethod {
                configured: Some("private_key_jwt"),
                listed: listed(&["client_secret_basic"])
            }
        );
    }
}
