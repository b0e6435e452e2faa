//! Discovery and the grant choice: auto, advertised grants, a failed discovery tried
//! again, a failing JWKS that fails only validation.

use super::*;
#[tokio::test]
async fn auto_picks_token_exchange_sends_rfc_8693_and_keeps_the_issued_type() {
    let server = TestServer::start_with(|url| {
        vec![
            json(200, &discovery_document(url, Some(&format!(r#"["authorization_code","{}","{}"]"#, grant::JWT_BEARER, grant::TOKEN_EXCHANGE)))),
            json(200, r#"{"access_token":"te-at","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":300}"#),
        ]
    })
    .await;
    let svc = service(&server, |o| {
        o.token_endpoint = None;
        o.grant_type = Some("auto".into());
    });
    let request = svc
        .prepare(Call {
            target: Target {
                audience: Some("mcp-files"),
                resource: Some("https://mcp.example/"),
            },
            ..call("alice", ASSERTION)
        })
        .unwrap();
    let token = svc.exchange(request).await.unwrap();
    assert_eq!(
        token.issued_token_type.as_deref(),
        Some(grant::ACCESS_TOKEN_TYPE)
    );
    let sent = server.received();
    let form = form_of(&sent[1]);
    let expected = [
        ("grant_type", grant::TOKEN_EXCHANGE),
        ("subject_token", ASSERTION),
        ("subject_token_type", grant::ACCESS_TOKEN_TYPE),
        ("scope", "api://mcp/.default"),
        ("audience", "mcp-files"),
        ("resource", "https://mcp.example/"),
        ("client_id", "middle-tier"),
        ("client_secret", "middle-secret"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(form, expected);
    assert!(hit(&svc, "alice").is_none(), "a target is part of the key");
}

#[tokio::test]
async fn a_named_grant_the_idp_does_not_advertise_fails_before_any_token_request() {
    let server = TestServer::start_with(|url| {
        let grants = format!(r#"["{}"]"#, grant::JWT_BEARER);
        vec![json(200, &discovery_document(url, Some(&grants)))]
    })
    .await;
    let svc = service(&server, |o| {
        o.token_endpoint = None;
        o.grant_type = Some("token_exchange".into());
    });
    let error = svc
        .exchange(request(&svc, "alice", true))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("ERR_GRANT_NOT_ADVERTISED"), "{error}");
    assert!(!error.is_retryable());
    assert!(
        error
            .to_string()
            .contains(&format!("grant_types_supported [{}]", grant::JWT_BEARER)),
        "{error}"
    );
    assert_eq!(server.received().len(), 1, "discovery only");
}

#[tokio::test]
async fn auto_sends_on_behalf_of_when_token_exchange_is_not_advertised_and_says_so_once() {
    for (grants, why) in [
        (
            Some(r#"["authorization_code","urn:example:unknown"]"#),
            "does not list token exchange",
        ),
        (None, "advertises no grant_types_supported"),
    ] {
        let server = TestServer::start_with(|url| {
            vec![json(200, &discovery_document(url, grants)), json(200, OK)]
        })
        .await;
        let mut options = options(&server);
        options.token_endpoint = None;
        options.grant_type = Some("auto".into());
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let logger: Logger = Arc::new(move |level, line| sink.lock().unwrap().push((level, line)));
        let svc = OboService::new(Config::from_options(options).unwrap(), Some(logger)).unwrap();
        svc.exchange(request(&svc, "alice", true)).await.unwrap();
        svc.exchange(request(&svc, "bob", true)).await.unwrap();
        let sent = server.received();
        assert_eq!(sent.len(), 3, "discovery, then one token request each");
        assert_eq!(
            form_of(&sent[1])[0],
            ("grant_type".into(), grant::JWT_BEARER.into())
        );
        let told: Vec<String> = lines
            .lock()
            .unwrap()
            .iter()
            .filter(|(level, line)| *level == Level::Debug && line.contains("grantType 'auto'"))
            .map(|(_, line)| line.clone())
            .collect();
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(
            told[0].contains(&format!(
                "grantType 'auto' sends jwt_bearer to {}/token: auto: ",
                server.url
            )),
            "{told:?}"
        );
        assert!(told[0].contains(why), "{told:?}");
    }
}

#[tokio::test]
async fn the_default_grant_ignores_advertised_types_and_refuses_a_target() {
    let server = TestServer::start_with(|url| {
        vec![
            json(
                200,
                &discovery_document(url, Some(r#"["authorization_code"]"#)),
            ),
            json(200, OK),
        ]
    })
    .await;
    let svc = service(&server, |o| o.token_endpoint = None);
    svc.exchange(request(&svc, "alice", true)).await.unwrap();
    let with_target = svc
        .prepare(Call {
            target: Target {
                audience: Some("x"),
                resource: None,
            },
            ..call("alice", ASSERTION)
        })
        .unwrap();
    let error = svc.exchange(with_target).await.unwrap_err();
    assert_eq!(error.code(), Some("ERR_TARGET_NEEDS_TOKEN_EXCHANGE"));
    assert_eq!(
        server.received().len(),
        2,
        "discovery and one token request"
    );
}

#[tokio::test]
async fn a_failed_discovery_is_retried_on_the_next_call() {
    let server = TestServer::start_with(|url| {
        let document = format!(
            r#"{{"issuer":"{url}","authorization_endpoint":"{url}/auth",
            "token_endpoint":"{url}/token","jwks_uri":"{url}/jwks",
            "response_types_supported":["code"],"subject_types_supported":["public"],
            "id_token_signing_alg_values_supported":["RS256"]}}"#
        );
        vec![json(503, "{}"), json(200, &document), json(200, OK)]
    })
    .await;
    let svc = service(&server, |o| {
        o.token_endpoint = None;
        o.max_retries = Some(0.0);
    });
    let first = svc
        .exchange(request(&svc, "alice", true))
        .await
        .unwrap_err();
    assert!(
        matches!(
            first,
            ExchangeError::Discovery {
                retryable: true,
                ..
            }
        ),
        "{first}"
    );
    svc.exchange(request(&svc, "alice", true)).await.unwrap();
    svc.exchange(request(&svc, "bob", true)).await.unwrap();
    let paths: Vec<String> = server
        .received()
        .iter()
        .map(|r| r.head.split(' ').nth(1).unwrap_or_default().to_owned())
        .collect();
    let expected = [
        "/.well-known/openid-configuration",
        "/.well-known/openid-configuration",
        "/token",
        "/token",
    ];
    assert_eq!(paths, expected);
}

#[tokio::test]
async fn a_failing_jwks_fails_only_validation_and_as_retryable() {
    let server = TestServer::start_with(|url| {
        let document = discovery_document(url, None);
        vec![
            json(200, &document),
            json(503, "{}"),
            json(200, &document),
            json(200, OK),
        ]
    })
    .await;
    let validating = service(&server, |o| {
        o.token_endpoint = None;
        o.max_retries = Some(0.0);
        o.validate_assertion = Some(crate::config::ValidateAssertion {
            audiences: vec!["middle-tier".into()],
            ..Default::default()
        });
    });
    let error = validating
        .exchange(request(&validating, "alice", true))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ExchangeError::Jwks { uri, .. } if uri.ends_with("/jwks")),
        "{error}"
    );
    assert!(error.is_retryable());
    assert_eq!(error.code(), Some("ERR_JWKS_UNAVAILABLE"));
    assert_eq!(
        server.paths(),
        ["/.well-known/openid-configuration", "/jwks"],
        "nothing reaches the token endpoint"
    );
    let plain = service(&server, |o| o.token_endpoint = None);
    plain
        .exchange(request(&plain, "alice", true))
        .await
        .unwrap();
    assert_eq!(
        server.paths()[2..],
        ["/.well-known/openid-configuration", "/token"],
        "an exchange without validateAssertion never asks for the JWKS"
    );
}

/// `resourceIndicator`: the call's `resource` leaves On-Behalf-Of requests by default
/// (Entra v2 refuses it beside the scopes) and goes with `send`; token exchange sends it
/// by default and not with `omit`.
#[tokio::test]
async fn the_resource_indicator_is_sent_by_grant_unless_told() {
    for (grant, indicator, sent) in [
        ("jwt_bearer", None, false),
        ("jwt_bearer", Some("send"), true),
        ("token_exchange", None, true),
        ("token_exchange", Some("omit"), false),
    ] {
        let server = TestServer::start(vec![json(200, OK)]).await;
        let svc = service(&server, |o| {
            o.grant_type = Some(grant.into());
            o.resource_indicator = indicator.map(Into::into);
        });
        let request = svc
            .prepare(Call {
                target: Target {
                    audience: None,
                    resource: Some("https://mcp.example/mcp"),
                },
                ..call("alice", ASSERTION)
            })
            .unwrap();
        svc.exchange(request).await.unwrap();
        let form = form_of(&server.received()[0]);
        let resource = form.iter().find(|(name, _)| name == "resource");
        assert_eq!(
            resource.map(|(_, value)| value.as_str()),
            sent.then_some("https://mcp.example/mcp"),
            "{grant} with {indicator:?}"
        );
    }
}
