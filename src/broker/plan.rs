//! What the service would send, without sending it: the token endpoint and the grant
//! (`librechat-obo doctor` reports it instead of restating the choice).

use url::Url;

use super::OboService;
use crate::ground::error::{ExchangeError, GrantProblem};
use crate::protocol::grant::GrantKind;
use crate::protocol::issuer::DocumentIssuer;
use crate::protocol::metadata::AuthorizationServer;

/// The endpoint and grant of the next exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub token_endpoint: Url,
    /// The discovery document's `grant_types_supported`; `None` when it has none, or
    /// when the token endpoint is configured (discovery is then skipped).
    pub grant_types_supported: Option<Vec<String>>,
    /// The grant `grantType` chooses from them, or why none can be sent.
    pub grant: Result<GrantKind, GrantProblem>,
    /// Why that grant, in words (`GrantMode::reason`).
    pub grant_reason: &'static str,
    /// What discovery read, when the service discovers (no configured token
    /// endpoint, or `validateAssertion`).
    pub discovered: Option<Discovered>,
}

/// Where the discovery document came from and the issuer it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub document: Url,
    pub issuer: DocumentIssuer,
}

impl OboService {
    /// Discovers what the service would discover and chooses the grant exactly as an
    /// exchange does. Fails only when discovery fails.
    pub async fn plan(&self) -> Result<Plan, ExchangeError> {
        let inner = &self.inner;
        let endpoint = inner.discovery.endpoint(&inner.http).await?;
        let discovers = inner.config.token_endpoint.is_none() || inner.verifier.is_some();
        let discovered = if discovers {
            let metadata = inner.discovery.metadata(&inner.http).await?;
            Some(Discovered {
                document: metadata.document.clone(),
                issuer: metadata.issuer.clone(),
            })
        } else {
            None
        };
        Ok(Plan {
            token_endpoint: endpoint.url.clone(),
            grant_types_supported: endpoint.grant_types.map(<[String]>::to_vec),
            grant: inner.config.grant.choose(endpoint.grant_types),
            grant_reason: inner.config.grant.reason(endpoint.grant_types),
            discovered,
        })
    }

    /// With `grantType: 'id_jag'`, the MCP authorization server that exchanges for
    /// `resource` would use, discovered and checked exactly as an exchange does; `None`
    /// for the other grants.
    pub async fn id_jag_chain(
        &self,
        resource: &str,
        audience: Option<&str>,
    ) -> Option<Result<AuthorizationServer, ExchangeError>> {
        let inner = &self.inner;
        Some(
            inner
                .id_jag
                .as_ref()?
                .chain(&inner.http, resource, audience, None)
                .await,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Options};
    use crate::protocol::grant::{JWT_BEARER, TOKEN_EXCHANGE};
    use crate::test_server::{json, TestServer};

    async fn plan_with(grant_type: Option<&str>, grants: &str) -> Plan {
        plan_of(grant_type, grants, |_| {}).await
    }

    async fn plan_of(
        grant_type: Option<&str>,
        grants: &str,
        tweak: impl FnOnce(&mut Options),
    ) -> Plan {
        let server = TestServer::start_with(|url| {
            // The JWKS reply is for discovery that fetches keys eagerly.
            vec![
                json(
                    200,
                    &format!(
                        r#"{{"issuer":"{url}","authorization_endpoint":"{url}/auth",
                    "token_endpoint":"{url}/token","jwks_uri":"{url}/jwks",
                    "response_types_supported":["code"],"subject_types_supported":["public"],
                    "id_token_signing_alg_values_supported":["RS256"],
                    "grant_types_supported":{grants}}}"#
                    ),
                ),
                json(200, r#"{"keys":[]}"#),
            ]
        })
        .await;
        let options = Options {
            issuer: Some(server.url.clone()),
            client_id: Some("middle-tier".into()),
            client_secret: Some("middle-secret".into()),
            grant_type: grant_type.map(Into::into),
            ..Options::default()
        };
        let mut options = options;
        tweak(&mut options);
        let configured = options.token_endpoint.is_some();
        let service = OboService::new(Config::from_options(options).unwrap(), None).unwrap();
        let plan = service.plan().await.unwrap();
        if !configured {
            assert_eq!(
                plan.token_endpoint.as_str(),
                format!("{}/token", server.url)
            );
        }
        plan
    }

    #[tokio::test]
    async fn a_configured_endpoint_discovers_only_for_validate_assertion() {
        let configured =
            |o: &mut Options| o.token_endpoint = Some("http://127.0.0.1:9/token".into());
        let plan = plan_of(None, "null", configured).await;
        assert_eq!(
            (plan.token_endpoint.as_str(), plan.discovered),
            ("http://127.0.0.1:9/token", None)
        );
        let verifying = |o: &mut Options| {
            configured(o);
            o.validate_assertion = Some(crate::config::ValidateAssertion {
                audiences: vec!["api".into()],
                ..Default::default()
            });
        };
        let plan = plan_of(None, "null", verifying).await;
        assert!(
            plan.discovered.is_some(),
            "the JWKS is found through discovery"
        );
    }

    #[tokio::test]
    async fn plans_the_grant_an_exchange_would_send() {
        let both = format!(r#"["{JWT_BEARER}","{TOKEN_EXCHANGE}"]"#);
        let plan = plan_with(Some("auto"), &both).await;
        assert_eq!(plan.grant, Ok(GrantKind::TokenExchange));
        assert_eq!(
            plan.grant_reason,
            "auto: grant_types_supported lists token exchange"
        );
        assert_eq!(plan.grant_types_supported.unwrap().len(), 2);
        let discovered = plan.discovered.unwrap();
        assert!(discovered
            .document
            .as_str()
            .ends_with("/.well-known/openid-configuration"));
        assert_eq!(
            discovered.issuer.accepted,
            crate::protocol::issuer::Accepted::Exact
        );
        let plan = plan_with(Some("auto"), "null").await;
        assert_eq!(plan.grant, Ok(GrantKind::OnBehalfOf));
        assert!(
            plan.grant_reason.contains("no grant_types_supported"),
            "{}",
            plan.grant_reason
        );
        assert_eq!(plan.grant_types_supported, None);
        let plan = plan_with(None, r#"["authorization_code"]"#).await;
        assert_eq!(plan.grant, Ok(GrantKind::OnBehalfOf));
        let plan = plan_with(Some("token_exchange"), &format!(r#"["{JWT_BEARER}"]"#)).await;
        assert!(matches!(
            plan.grant,
            Err(GrantProblem::NotAdvertised {
                wanted: "token_exchange",
                ..
            })
        ));
    }
}
