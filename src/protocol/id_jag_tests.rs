use super::*;
use crate::protocol::client_auth::CredentialOptions;
use crate::protocol::grant::{ID_TOKEN_TYPE, JWT_BEARER, TOKEN_EXCHANGE};
use crate::protocol::metadata::ID_JAG_PROFILE;
use crate::test_server::{http_client, json, Reply, TestServer};

const ID_JAG: &str = "eyJ0eXAiOiJvYXV0aC1pZC1qYWcrand0In0.e30.c2ln";
const SUBJECT: &str = "id.token.jwt";

fn auth(client_id: &str, secret: &str) -> ClientAuth {
    let options = CredentialOptions {
        client_secret: Some(secret.into()),
        ..Default::default()
    };
    ClientAuth::new(client_id.into(), "", options).unwrap()
}

fn leg1_answer(issued: &str) -> Reply {
    json(
        200,
        &format!(
            r#"{{"access_token":"{ID_JAG}","issued_token_type":"{issued}","token_type":"N_A","expires_in":300}}"#
        ),
    )
}

/// The MCP server, its authorization server (metadata, then `token_replies`) and the
/// IdP (`idp_replies`).
struct Setup {
    idp: TestServer,
    authorization: TestServer,
    mcp: TestServer,
    resource: String,
}

async fn setup(idp_replies: Vec<Reply>, token_replies: Vec<Reply>) -> Setup {
    let profiles = format!(r#","authorization_grant_profiles_supported":["{ID_JAG_PROFILE}"]"#);
    setup_with(&profiles, idp_replies, token_replies).await
}

/// `setup`, with `extra` members in the authorization server's metadata.
async fn setup_with(extra: &str, idp_replies: Vec<Reply>, token_replies: Vec<Reply>) -> Setup {
    let authorization = TestServer::start_with(|issuer| {
        let document =
            format!(r#"{{"issuer":"{issuer}","token_endpoint":"{issuer}/token"{extra}}}"#);
        let mut replies = vec![json(200, &document)];
        replies.extend(token_replies);
        replies
    })
    .await;
    let issuer = authorization.url.clone();
    let mcp = TestServer::start_with(|url| {
        vec![json(
            200,
            &format!(r#"{{"resource":"{url}/mcp","authorization_servers":["{issuer}"]}}"#),
        )]
    })
    .await;
    let resource = format!("{}/mcp", mcp.url);
    Setup {
        idp: TestServer::start(idp_replies).await,
        authorization,
        mcp,
        resource,
    }
}

impl Setup {
    async fn obtain(
        &self,
        id_jag: &IdJag,
        resource: Option<&str>,
    ) -> Result<GrantResponse, ExchangeError> {
        self.obtain_with(id_jag, resource, |_| {}).await
    }

    async fn obtain_with(
        &self,
        id_jag: &IdJag,
        resource: Option<&str>,
        tweak: impl FnOnce(&mut IdJagRequest<'_>),
    ) -> Result<GrantResponse, ExchangeError> {
        let http = http_client();
        let endpoint = Url::parse(&format!("{}/token", self.idp.url)).unwrap();
        let idp_auth = auth("middle-tier", "idp-secret");
        let mut request = IdJagRequest {
            subject_token: SUBJECT,
            scopes: "files.read",
            resource,
            audience: None,
            claims: None,
            resource_metadata: None,
            send_resource: true,
        };
        tweak(&mut request);
        let idp = Idp {
            endpoint: &endpoint,
            auth: &idp_auth,
        };
        id_jag.obtain(&http, idp, &request).await
    }
}

/// The chain's servers run on loopback, which the SSRF policy refuses unless listed.
fn loopback() -> Guard {
    let http = http_client();
    Guard::listing(&["127.0.0.1"], http)
}

/// A service whose leg-2 secret has no configured method.
fn service() -> IdJag {
    service_with(None)
}

fn service_with(method: Option<&str>) -> IdJag {
    let options = CredentialOptions {
        method,
        client_secret: Some("as-secret".into()),
        ..Default::default()
    };
    let auth = ClientAuth::new("librechat-files".into(), "", options).unwrap();
    IdJag::new(
        ServerClientAuth::new(auth, method.is_some()),
        None,
        ID_TOKEN_TYPE.into(),
        loopback(),
    )
}

/// The `Authorization: Basic` value of client `id` with `secret`.
fn basic(id: &str, secret: &str) -> String {
    use base64::prelude::{Engine, BASE64_STANDARD};
    format!(
        "authorization: Basic {}",
        BASE64_STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn form(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn both_legs_carry_what_the_draft_asks_and_the_access_token_comes_back() {
    let s = setup(
        vec![leg1_answer(ID_JAG_TYPE)],
        vec![json(
            200,
            r#"{"access_token":"mcp-at","token_type":"Bearer","expires_in":3600}"#,
        )],
    )
    .await;
    let granted = s.obtain(&service(), Some(&s.resource)).await.unwrap();
    assert_eq!(granted.access_token, "mcp-at");

    let leg1 = form(&s.idp.received()[0].body);
    assert_eq!(field(&leg1, "grant_type"), Some(TOKEN_EXCHANGE));
    assert_eq!(field(&leg1, "requested_token_type"), Some(ID_JAG_TYPE));
    assert_eq!(field(&leg1, "subject_token"), Some(SUBJECT));
    assert_eq!(field(&leg1, "subject_token_type"), Some(ID_TOKEN_TYPE));
    assert_eq!(field(&leg1, "audience"), Some(s.authorization.url.as_str()));
    assert_eq!(field(&leg1, "resource"), Some(s.resource.as_str()));
    assert_eq!(field(&leg1, "scope"), Some("files.read"));
    assert_eq!(field(&leg1, "client_id"), Some("middle-tier"));

    let received = s.authorization.received();
    assert_eq!(received.len(), 2, "metadata, then the token request");
    assert!(received[1].head.starts_with("POST /token "));
    let leg2 = form(&received[1].body);
    assert_eq!(field(&leg2, "grant_type"), Some(JWT_BEARER));
    assert_eq!(field(&leg2, "assertion"), Some(ID_JAG));
    assert_eq!(field(&leg2, "resource"), Some(s.resource.as_str()));
    assert_eq!(field(&leg2, "client_secret"), None);
    assert!(
        received[1]
            .head
            .to_ascii_lowercase()
            .contains(&basic("librechat-files", "as-secret").to_ascii_lowercase()),
        "no method configured and none listed: RFC 8414's default, client_secret_basic: {}",
        received[1].head
    );
    assert_eq!(
        field(&leg2, "subject_token"),
        None,
        "the ID token stays at the IdP"
    );
}

#[tokio::test]
async fn the_chain_is_discovered_once_for_later_exchanges() {
    let s = setup(
        vec![leg1_answer(ID_JAG_TYPE)],
        vec![json(200, r#"{"access_token":"mcp-at","expires_in":3600}"#)],
    )
    .await;
    let id_jag = service();
    for _ in 0..3 {
        s.obtain(&id_jag, Some(&s.resource)).await.unwrap();
    }
    assert_eq!(s.mcp.received().len(), 1);
    assert_eq!(s.authorization.received().len(), 1 + 3);
    assert_eq!(s.idp.received().len(), 3);
}

#[tokio::test]
async fn an_answer_that_is_no_id_jag_stops_before_the_authorization_server() {
    let s = setup(
        vec![leg1_answer("urn:ietf:params:oauth:token-type:access_token")],
        vec![],
    )
    .await;
    let error = s.obtain(&service(), Some(&s.resource)).await.unwrap_err();
    assert_eq!(error.id_jag_step(), Some(IdJagStep::Assertion));
    assert_eq!(error.code(), Some("ERR_NOT_AN_ID_JAG"));
    assert!(error.to_string().starts_with("ID-JAG leg 1"), "{error}");
    assert_eq!(s.authorization.received().len(), 1, "only its metadata");
}

#[tokio::test]
async fn a_refusal_says_its_leg_keeps_the_server_s_answer_and_never_echoes_the_id_jag() {
    let refusal = format!(
        r#"{{"error":"invalid_grant","error_description":"ID-JAG {ID_JAG} was already used"}}"#
    );
    let s = setup(vec![leg1_answer(ID_JAG_TYPE)], vec![json(400, &refusal)]).await;
    let error = s.obtain(&service(), Some(&s.resource)).await.unwrap_err();
    assert_eq!(error.id_jag_step(), Some(IdJagStep::AccessToken));
    assert_eq!(error.status(), Some(400));
    assert_eq!(
        error.idp_body().unwrap().error.as_deref(),
        Some("invalid_grant")
    );
    assert!(!error.is_retryable());
    let text = error.to_string();
    assert!(text.starts_with("ID-JAG leg 2"), "{text}");
    assert!(!text.contains(ID_JAG), "{text}");

    let s = setup(
        vec![json(503, r#"{"error":"temporarily_unavailable"}"#)],
        vec![],
    )
    .await;
    let error = s.obtain(&service(), Some(&s.resource)).await.unwrap_err();
    assert_eq!(error.id_jag_step(), Some(IdJagStep::Assertion));
    assert!(error.is_retryable(), "an outage at the IdP may pass");
}

#[tokio::test]
async fn discovery_failures_and_a_missing_resource_send_nothing() {
    let s = setup(vec![leg1_answer(ID_JAG_TYPE)], vec![]).await;
    let elsewhere = format!("{}/other", s.mcp.url);
    let error = s.obtain(&service(), Some(&elsewhere)).await.unwrap_err();
    assert_eq!(error.id_jag_step(), Some(IdJagStep::Discovery));
    assert_eq!(error.code(), Some("ERR_ID_JAG_METADATA"));
    let error = s.obtain(&service(), None).await.unwrap_err();
    assert_eq!(error.code(), Some("ERR_ID_JAG_NEEDS_RESOURCE"));
    assert!(s.idp.received().is_empty());
    let named = IdJag::new(
        ServerClientAuth::new(auth("librechat-files", "as-secret"), false),
        Some("http://127.0.0.1:9".into()),
        ID_TOKEN_TYPE.into(),
        loopback(),
    );
    let error = s.obtain(&named, Some(&s.resource)).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("does not list the authorization server http://127.0.0.1:9"),
        "{error}"
    );
    assert!(s.idp.received().is_empty());
}

#[tokio::test]
async fn one_service_serves_one_authorization_server_the_first_found_or_the_named_one() {
    let first = setup(
        vec![leg1_answer(ID_JAG_TYPE)],
        vec![json(200, r#"{"access_token":"at"}"#)],
    )
    .await;
    let second = setup(
        vec![leg1_answer(ID_JAG_TYPE)],
        vec![json(200, r#"{"access_token":"at"}"#)],
    )
    .await;
    let id_jag = service();
    first.obtain(&id_jag, Some(&first.resource)).await.unwrap();
    let error = second
        .obtain(&id_jag, Some(&second.resource))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("ERR_ID_JAG_METADATA"));
    let text = error.to_string();
    let expected = format!(
        "does not list the authorization server {}",
        first.authorization.url
    );
    assert!(
        text.contains(&expected),
        "the pinned server is asked for: {text}"
    );
    assert!(
        second.idp.received().is_empty(),
        "nothing sent for the other server"
    );
    assert!(
        second.authorization.received().is_empty(),
        "the other server is not even read"
    );

    // Two resources discovered at once by a fresh service: one server wins the pin.
    let ok = || json(200, r#"{"access_token":"at"}"#);
    let third = setup(vec![leg1_answer(ID_JAG_TYPE)], vec![ok()]).await;
    let fourth = setup(vec![leg1_answer(ID_JAG_TYPE)], vec![ok()]).await;
    let id_jag = service();
    let (a, b) = tokio::join!(
        third.obtain(&id_jag, Some(&third.resource)),
        fourth.obtain(&id_jag, Some(&fourth.resource))
    );
    let codes = [
        a.err().and_then(|e| e.code()),
        b.err().and_then(|e| e.code()),
    ];
    assert!(
        codes == [None, Some("ERR_ID_JAG_OTHER_SERVER")]
            || codes == [Some("ERR_ID_JAG_OTHER_SERVER"), None],
        "{codes:?}"
    );

    let fifth = setup(vec![leg1_answer(ID_JAG_TYPE)], vec![ok()]).await;
    let named = IdJag::new(
        ServerClientAuth::new(auth("librechat-files", "as-secret"), false),
        Some(fifth.authorization.url.clone()),
        ID_TOKEN_TYPE.into(),
        loopback(),
    );
    let asked = first
        .obtain_with(&named, Some(&fifth.resource), |r| {
            r.audience = Some("https://as.example")
        })
        .await
        .unwrap_err();
    assert_eq!(asked.code(), Some("ERR_ID_JAG_OTHER_SERVER"));
    // A 'static copy: the request's own borrows live only inside `obtain_with`.
    let issuer: &'static str = Box::leak(fifth.authorization.url.clone().into_boxed_str());
    let same = first
        .obtain_with(&named, Some(&fifth.resource), |r| r.audience = Some(issuer))
        .await;
    assert!(same.is_ok(), "{same:?}");
}

#[tokio::test]
async fn a_failed_discovery_answers_the_calls_behind_it_without_asking_again() {
    let mcp = TestServer::start(vec![json(503, "{}")]).await;
    let s = setup(vec![leg1_answer(ID_JAG_TYPE)], vec![]).await;
    let resource = format!("{}/mcp", mcp.url);
    let id_jag = service();
    let calls = (0..5).map(|_| s.obtain(&id_jag, Some(&resource)));
    for outcome in futures_util::future::join_all(calls).await {
        assert!(outcome.unwrap_err().is_retryable());
    }
    assert_eq!(mcp.received().len(), 1, "one request for five calls");
    assert!(s.idp.received().is_empty());
}

#[tokio::test]
async fn a_claims_answer_is_refused_and_leg_two_always_names_the_resource() {
    let s = setup(
        vec![leg1_answer(ID_JAG_TYPE)],
        vec![json(200, r#"{"access_token":"at"}"#)],
    )
    .await;
    let id_jag = service();
    let refused = s
        .obtain_with(&id_jag, Some(&s.resource), |r| r.claims = Some("{}"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("ERR_ID_JAG_CLAIMS"));
    assert!(s.idp.received().is_empty());
    s.obtain_with(&id_jag, Some(&s.resource), |r| r.send_resource = false)
        .await
        .unwrap();
    assert_eq!(
        field(&form(&s.idp.received()[0].body), "resource"),
        None,
        "resourceIndicator omit"
    );
    let leg2 = form(&s.authorization.received()[1].body);
    assert_eq!(field(&leg2, "resource"), Some(s.resource.as_str()));
}

/// Leg 2 authenticates as the server lists: a secret without a configured method takes
/// the first secret method listed; a configured one that is not listed is refused before
/// leg 1, so the user's ID token is not spent.
#[tokio::test]
async fn leg_2_authenticates_as_the_server_lists() {
    let posts =
        r#","token_endpoint_auth_methods_supported":["private_key_jwt","client_secret_post"]"#;
    let s = setup_with(
        posts,
        vec![leg1_answer(ID_JAG_TYPE)],
        vec![json(200, r#"{"access_token":"mcp-at","expires_in":3600}"#)],
    )
    .await;
    s.obtain(&service(), Some(&s.resource)).await.unwrap();
    let leg2 = &s.authorization.received()[1];
    assert!(!leg2
        .head
        .to_ascii_lowercase()
        .contains("authorization: basic"));
    let form = form(&leg2.body);
    assert_eq!(field(&form, "client_id"), Some("librechat-files"));
    assert_eq!(field(&form, "client_secret"), Some("as-secret"));

    let basic_only = r#","token_endpoint_auth_methods_supported":["client_secret_basic"]"#;
    let s = setup_with(basic_only, vec![], vec![]).await;
    let error = s
        .obtain(&service_with(Some("client_secret_post")), Some(&s.resource))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("ERR_ID_JAG_AUTH_METHOD"));
    assert_eq!(error.id_jag_step(), Some(IdJagStep::Discovery));
    let text = error.to_string();
    assert!(
        text.contains("authorizationServer.clientAuthMethod 'client_secret_post'")
            && text.contains("[client_secret_basic]"),
        "{text}"
    );
    assert!(s.idp.received().is_empty(), "nothing reaches the IdP");
    assert_eq!(s.authorization.received().len(), 1, "only its metadata");

    let keys_only = r#","token_endpoint_auth_methods_supported":["private_key_jwt"]"#;
    let s = setup_with(keys_only, vec![], vec![]).await;
    let error = s.obtain(&service(), Some(&s.resource)).await.unwrap_err();
    assert_eq!(error.code(), Some("ERR_ID_JAG_AUTH_METHOD"));
    assert!(s.idp.received().is_empty());
}

#[tokio::test]
async fn a_leg_2_refusal_names_the_mcp_server_s_authorization_server() {
    let s = setup(
        vec![leg1_answer(ID_JAG_TYPE)],
        vec![json(401, r#"{"error":"invalid_client"}"#)],
    )
    .await;
    let error = s.obtain(&service(), Some(&s.resource)).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "ID-JAG leg 2 (jwt-bearer grant at the MCP server's authorization server) failed: \
         The MCP server's authorization server rejected the OBO exchange (HTTP 401, invalid_client)"
    );
}
