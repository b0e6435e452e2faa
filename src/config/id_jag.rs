//! `grantType: 'id_jag'` and its `authorizationServer`: the client's registration at the
//! MCP server's authorization server, and what the ID-JAG request's subject is.

use super::declaration::{declare_options, text, ASSERTION_ALGS, CLIENT_AUTH_METHODS};
use crate::ground::error::ConfigError;
use crate::protocol::client_auth::{ClientAuth, CredentialOptions, ServerClientAuth};
use crate::protocol::grant::{
    GrantKind, GrantMode, ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, REFRESH_TOKEN_TYPE,
};
use crate::protocol::metadata::secure;
use crate::protocol::ssrf::AllowedDomains;

declare_options! {
    /// `authorizationServer`: the client at the MCP authorization server (ID-JAG's second leg).
    pub struct AuthorizationServerOptions, declared in AUTHORIZATION_SERVER: AuthorizationServerDeclarations, under "authorizationServer." {
        /// The authorization server's issuer, which the MCP server's metadata must list; unset, the
        /// first one it lists. Credentials are sent only to the server discovery checked.
        issuer: Option<String> as "issuer" = text(),
        client_id: Option<String> as "clientId" = text().required(),
        client_secret: Option<String> as "clientSecret" = text().secret(),
        client_auth_method: Option<String> as "clientAuthMethod" = text().ts(CLIENT_AUTH_METHODS),
        /// `private_key_jwt`: PEM key; the assertion's `aud` is the token endpoint.
        client_assertion_key: Option<String> as "clientAssertionKey" = text().secret(),
        client_assertion_key_id: Option<String> as "clientAssertionKeyId" = text(),
        /// `private_key_jwt`: the key's PEM certificate (`x5t#S256`), when the server knows the key by it.
        client_assertion_certificate: Option<String> as "clientAssertionCertificate" = text(),
        client_assertion_alg: Option<String> as "clientAssertionAlg" = text().ts(ASSERTION_ALGS),
    }
}

/// The validated ID-JAG settings of a service.
#[derive(Debug, Clone)]
pub struct IdJagConfig {
    /// The credential; its method, when not configured, is chosen per server.
    pub client_auth: ServerClientAuth,
    pub issuer: Option<String>,
}

/// What the ID-JAG options of a service come to: `None` for the other grants (which
/// must not carry an `authorizationServer`). `subject_token_type` is the one configured,
/// if any; the returned type is what leg 1 sends.
pub fn id_jag_config(
    grant: GrantMode,
    options: Option<AuthorizationServerOptions>,
    subject_token_type: Option<String>,
    validates_assertions: bool,
) -> Result<(Option<IdJagConfig>, String), ConfigError> {
    if grant != GrantMode::Named(GrantKind::IdJag) {
        if options.is_some() {
            return Err(ConfigError::new(
                "authorizationServer",
                "applies only to grantType 'id_jag'",
            ));
        }
        let subject = subject_token_type.unwrap_or_else(|| ACCESS_TOKEN_TYPE.to_owned());
        return Ok((None, subject));
    }
    let options = options.ok_or_else(|| {
        ConfigError::new(
            "authorizationServer",
            "is required for grantType 'id_jag': the client's registration at the MCP server's authorization server",
        )
    })?;
    if validates_assertions {
        return Err(ConfigError::new(
            "validateAssertion",
            "checks access tokens; with grantType 'id_jag' the enterprise IdP checks the ID token it issued",
        ));
    }
    let subject = subject_token_type.unwrap_or_else(|| ID_TOKEN_TYPE.to_owned());
    if subject != ID_TOKEN_TYPE && subject != REFRESH_TOKEN_TYPE {
        return Err(ConfigError::new(
            "subjectTokenType",
            format!("with grantType 'id_jag' must be {ID_TOKEN_TYPE} or {REFRESH_TOKEN_TYPE}, got '{subject}'"),
        ));
    }
    Ok((Some(authorization_server(options)?), subject))
}

fn authorization_server(options: AuthorizationServerOptions) -> Result<IdJagConfig, ConfigError> {
    let issuer = options
        .issuer
        .map(|issuer| {
            let url = AUTHORIZATION_SERVER.issuer.http_url(issuer.clone())?;
            if !secure(&url) {
                return Err(AUTHORIZATION_SERVER.issuer.error(
                    "must be https (plain http only on a loopback host): the client's credentials go to it",
                ));
            }
            Ok(issuer.trim().to_owned())
        })
        .transpose()?;
    let client_id = AUTHORIZATION_SERVER
        .client_id
        .required_text(options.client_id)?;
    let configured = options.client_auth_method.is_some();
    let client_auth = ClientAuth::new(
        client_id,
        issuer.as_deref().unwrap_or_default(),
        CredentialOptions {
            method: options.client_auth_method.as_deref(),
            client_secret: options.client_secret,
            client_assertion_key: options.client_assertion_key.as_deref(),
            client_assertion_key_id: options.client_assertion_key_id,
            client_assertion_certificate: options.client_assertion_certificate.as_deref(),
            assertion_alg: options.client_assertion_alg.as_deref(),
            assertion_audience: None,
        },
    )
    .map_err(nested)?;
    Ok(IdJagConfig {
        client_auth: ServerClientAuth::new(client_auth, configured),
        issuer,
    })
}

/// `allowedDomains`: LibreChat's patterns, each one checked; an empty list is no list.
pub fn allowed_domains(entries: Option<&[String]>) -> Result<Option<AllowedDomains>, ConfigError> {
    AllowedDomains::parse(entries.unwrap_or_default()).map_err(|(at, entry)| {
        ConfigError::new(
            "allowedDomains",
            format!("entry {at} ('{entry}') is not a domain pattern: write a host (example.com) or a wildcard (*.example.com), optionally with a scheme (https://) and a port (:8443)"),
        )
    })
}

/// A credential error of the block, named as the caller wrote it: the block's option of
/// the same name, and any other option its text names.
fn nested(error: ConfigError) -> ConfigError {
    let option = AUTHORIZATION_SERVER
        .all()
        .into_iter()
        .find(|field| field.key == error.option)
        .map_or(error.option, |field| field.path);
    ConfigError {
        option,
        problem: error
            .problem
            .replace("options.", "options.authorizationServer."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> AuthorizationServerOptions {
        AuthorizationServerOptions {
            client_id: Some("librechat-files".into()),
            client_secret: Some("s3cret".into()),
            ..Default::default()
        }
    }
    const TEST_KEY: &str = include_str!("../protocol/client_auth/test-only-rsa-key.pem");
    const ID_JAG: GrantMode = GrantMode::Named(GrantKind::IdJag);

    #[test]
    fn the_block_belongs_to_id_jag_and_id_jag_needs_it() {
        let err = id_jag_config(GrantMode::Default, Some(block()), None, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "options.authorizationServer applies only to grantType 'id_jag'"
        );
        let (none, subject) = id_jag_config(GrantMode::Default, None, None, false).unwrap();
        assert!(none.is_none());
        assert_eq!(subject, ACCESS_TOKEN_TYPE);
        let err = id_jag_config(ID_JAG, None, None, false).unwrap_err();
        assert_eq!(err.option, "authorizationServer");
        let err = id_jag_config(ID_JAG, Some(block()), None, true).unwrap_err();
        assert_eq!(err.option, "validateAssertion");
    }

    #[test]
    fn the_subject_is_an_id_token_unless_a_refresh_token_is_named() {
        let subject = |given: Option<&str>| {
            id_jag_config(ID_JAG, Some(block()), given.map(Into::into), false)
        };
        assert_eq!(subject(None).unwrap().1, ID_TOKEN_TYPE);
        assert_eq!(
            subject(Some(REFRESH_TOKEN_TYPE)).unwrap().1,
            REFRESH_TOKEN_TYPE
        );
        let err = subject(Some(ACCESS_TOKEN_TYPE)).unwrap_err();
        assert_eq!(err.option, "subjectTokenType");
    }

    #[test]
    fn a_service_with_id_jag_demands_a_jws_id_token_and_requests_no_other_type() {
        use crate::config::{Config, Options};
        use crate::protocol::assertion::Demand;
        let options = |subject: Option<&str>, requested: Option<&str>| Options {
            issuer: Some("https://idp.example".into()),
            client_id: Some("middle-tier".into()),
            client_secret: Some("s3cret".into()),
            grant_type: Some("id_jag".into()),
            authorization_server: Some(block()),
            subject_token_type: subject.map(Into::into),
            requested_token_type: requested.map(Into::into),
            ..Options::default()
        };
        let config = Config::from_options(options(None, None)).unwrap();
        assert_eq!(config.demand(), Demand::Jws);
        assert!(config.id_jag.is_some());
        let refresh = Config::from_options(options(Some(REFRESH_TOKEN_TYPE), None)).unwrap();
        assert_eq!(refresh.demand(), Demand::AnyToken);
        let err = Config::from_options(options(None, Some(ACCESS_TOKEN_TYPE))).unwrap_err();
        assert_eq!(err.option, "requestedTokenType");
    }

    #[test]
    fn errors_of_the_block_name_it() {
        let no_secret = AuthorizationServerOptions {
            client_secret: None,
            ..block()
        };
        let err = id_jag_config(ID_JAG, Some(no_secret), None, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "options.authorizationServer.clientSecret is required for client_secret_post"
        );
        let no_id = AuthorizationServerOptions {
            client_id: None,
            ..block()
        };
        let err = id_jag_config(ID_JAG, Some(no_id), None, false).unwrap_err();
        assert_eq!(err.option, "authorizationServer.clientId");
        let keyless = AuthorizationServerOptions {
            client_auth_method: Some("private_key_jwt".into()),
            client_assertion_key: Some("not a pem".into()),
            ..block()
        };
        let err = id_jag_config(ID_JAG, Some(keyless), None, false).unwrap_err();
        assert_eq!(err.option, "authorizationServer.clientAssertionKey");
        let no_kid = AuthorizationServerOptions {
            client_auth_method: Some("private_key_jwt".into()),
            client_assertion_key: Some(TEST_KEY.into()),
            ..block()
        };
        let err = id_jag_config(ID_JAG, Some(no_kid), None, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "options.authorizationServer.clientAssertionKeyId or options.authorizationServer.clientAssertionCertificate \
             is required for private_key_jwt (the IdP picks the key by kid or by x5t#S256)"
        );
        let bad_issuer = AuthorizationServerOptions {
            issuer: Some("ftp://as".into()),
            ..block()
        };
        let err = id_jag_config(ID_JAG, Some(bad_issuer), None, false).unwrap_err();
        assert_eq!(err.option, "authorizationServer.issuer");
        let plain = AuthorizationServerOptions {
            issuer: Some("http://as.example".into()),
            ..block()
        };
        let err = id_jag_config(ID_JAG, Some(plain), None, false).unwrap_err();
        assert!(err.to_string().contains("must be https"), "{err}");
        let named = AuthorizationServerOptions {
            issuer: Some(" https://as.example ".into()),
            ..block()
        };
        let (config, _) = id_jag_config(ID_JAG, Some(named), None, false).unwrap();
        assert_eq!(
            config.unwrap().issuer.as_deref(),
            Some("https://as.example")
        );
    }

    #[test]
    fn allowed_domains_are_patterns_and_an_empty_list_is_none() {
        let list = |entries: &[&str]| entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>();
        assert_eq!(allowed_domains(None), Ok(None));
        assert_eq!(allowed_domains(Some(&[])), Ok(None));
        let some = allowed_domains(Some(&list(&["*.example.com"]))).unwrap();
        assert!(some.unwrap().admits("https://as.example.com/"));
        let err = allowed_domains(Some(&list(&["example.com", "https://"]))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "options.allowedDomains entry 1 ('https://') is not a domain pattern: write a host \
             (example.com) or a wildcard (*.example.com), optionally with a scheme (https://) and a port (:8443)"
        );
    }
}
