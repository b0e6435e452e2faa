//! `grantType: 'id_jag'` through the broker: the call's resource starts discovery, both
//! legs run, and the final token is cached, counted and refused like any other.

use super::*;
use crate::config::AuthorizationServerOptions;
use crate::ground::error::IdJagStep;
use crate::protocol::grant::ID_JAG_TYPE;

const LEG1: &str = r#"{"access_token":"the.id.jag","issued_token_type":"urn:ietf:params:oauth:token-type:id-jag","token_type":"N_A"}"#;

/// The IdP (`idp`), the MCP server's authorization server (metadata, then `token`), and the
/// MCP server's metadata; `resource` is the MCP server's URL.
struct Chain {
    idp: TestServer,
    authorization: TestServer,
    resource: String,
}

async fn chain(token: Reply) -> Chain {
    let authorization = TestServer::start_with(|issuer| {
        let document = format!(
            r#"{{"issuer":"{issuer}","token_endpoint":"{issuer}/token",
            "authorization_grant_profiles_supported":["urn:ietf:params:oauth:grant-profile:id-jag"]}}"#
        );
        vec![json(200, &document), token]
    })
    .await;
    let issuer = authorization.url.clone();
    let mcp = TestServer::start_with(|url| {
        let document =
            format!(r#"{{"resource":"{url}/mcp","authorization_servers":["{issuer}"]}}"#);
        vec![json(200, &document)]
    })
    .await;
    Chain {
        idp: TestServer::start(vec![json(200, LEG1)]).await,
        authorization,
        resource: format!("{}/mcp", mcp.url),
    }
}

/// The chain runs on loopback, which the SSRF policy refuses unless `allowedDomains`
/// lists it.
fn id_jag_service(chain: &Chain) -> OboService {
    id_jag_service_listing(chain, Some(vec!["127.0.0.1".into()]))
}

fn id_jag_service_listing(chain: &Chain, allowed: Option<Vec<String>>) -> OboService {
    service(&chain.idp, |o| {
        o.grant_type = Some("id_jag".into());
        o.allowed_domains = allowed;
        o.authorization_server = Some(AuthorizationServerOptions {
            client_id: Some("librechat-files".into()),
            client_secret: Some("as-secret".into()),
            ..Default::default()
        });
    })
}

fn id_jag_request(svc: &OboService, resource: &str) -> Request {
    svc.prepare(Call {
        target: Target {
            audience: None,
            resource: Some(resource),
        },
        ..call("alice", ASSERTION)
    })
    .unwrap()
}

#[tokio::test]
async fn an_id_jag_exchange_runs_both_legs_and_its_token_is_cached_for_the_resource() {
    let chain = chain(json(200, OK)).await;
    let svc = id_jag_service(&chain);
    let token = svc
        .exchange(id_jag_request(&svc, &chain.resource))
        .await
        .unwrap();
    assert_eq!(token.access_token, "downstream-at");
    let again = svc
        .exchange(id_jag_request(&svc, &chain.resource))
        .await
        .unwrap();
    assert_eq!(again, token);
    let leg1 = form_of(&chain.idp.received()[0]);
    assert!(leg1.contains(&("requested_token_type".into(), ID_JAG_TYPE.into())));
    assert!(leg1.contains(&("subject_token".into(), ASSERTION.into())));
    assert_eq!(
        chain.authorization.paths(),
        ["/.well-known/oauth-authorization-server", "/token"]
    );
    let stats = svc.stats();
    assert_eq!((stats.exchanges, stats.hits, stats.entries), (1, 1, 1));
    let chained = svc
        .id_jag_chain(&chain.resource, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(chained.issuer, chain.authorization.url);
}

#[tokio::test]
async fn an_authorization_server_on_an_internal_address_gets_nothing_unless_listed() {
    for allowed in [None, Some(vec![]), Some(vec!["as.example.com".into()])] {
        let chain = chain(json(200, OK)).await;
        let svc = id_jag_service_listing(&chain, allowed.clone());
        let error = svc
            .exchange(id_jag_request(&svc, &chain.resource))
            .await
            .unwrap_err();
        assert_eq!(error.id_jag_step(), Some(IdJagStep::Discovery));
        let code = if allowed.is_some_and(|list| !list.is_empty()) {
            "ERR_URL_NOT_ALLOWED"
        } else {
            "ERR_SSRF_BLOCKED"
        };
        assert_eq!(error.code(), Some(code));
        assert!(error.to_string().contains("127.0.0.1"), "{error}");
        assert!(chain.authorization.received().is_empty());
        assert!(chain.idp.received().is_empty());
    }
}

#[tokio::test]
async fn a_refused_second_leg_caches_nothing_and_says_its_step() {
    let chain = chain(json(400, r#"{"error":"invalid_grant"}"#)).await;
    let svc = id_jag_service(&chain);
    let error = svc
        .exchange(id_jag_request(&svc, &chain.resource))
        .await
        .unwrap_err();
    assert_eq!(error.id_jag_step(), Some(IdJagStep::AccessToken));
    let stats = svc.stats();
    assert_eq!((stats.failures, stats.entries), (1, 0));
}

#[tokio::test]
async fn other_grants_neither_chain_nor_send_an_id_jag() {
    let chain = chain(json(200, OK)).await;
    let plain = service(&chain.idp, |_| {});
    assert_eq!(plain.subject_field(), "access_token");
    assert_eq!(id_jag_service(&chain).subject_field(), "id_token");
    let by_refresh = service(&chain.idp, |o| {
        o.grant_type = Some("id_jag".into());
        o.subject_token_type = Some(grant::REFRESH_TOKEN_TYPE.into());
        o.authorization_server = Some(AuthorizationServerOptions {
            client_id: Some("c".into()),
            client_secret: Some("s".into()),
            ..Default::default()
        });
    });
    assert_eq!(by_refresh.subject_field(), "refresh_token");
    let exchange_by_refresh = service(&chain.idp, |o| {
        o.grant_type = Some("token_exchange".into());
        o.subject_token_type = Some(grant::REFRESH_TOKEN_TYPE.into());
    });
    assert_eq!(
        exchange_by_refresh.subject_field(),
        "access_token",
        "only id_jag reads another field"
    );
    assert!(plain.id_jag_chain(&chain.resource, None).await.is_none());
    let svc = id_jag_service(&chain);
    let other = format!("{}/other", chain.authorization.url);
    let refused = svc.id_jag_chain(&other, None).await.unwrap().unwrap_err();
    assert!(refused.to_string().contains("metadata"), "{refused}");
    assert!(chain.idp.received().is_empty());
}
