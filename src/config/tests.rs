use super::*;

fn minimal() -> Options {
    Options {
        issuer: Some("https://login.example.com/tenant/v2.0".into()),
        client_id: Some("middle-tier".into()),
        client_secret: Some("s3cret".into()),
        ..Options::default()
    }
}

#[test]
fn defaults_are_librechats() {
    let config = Config::from_options(minimal()).unwrap();
    assert_eq!(config.expiry_buffer, Duration::from_secs(30));
    assert_eq!(config.max_retries, 1);
    assert_eq!(config.retry_delay, Duration::from_millis(300));
    assert_eq!(config.request_timeout, Duration::from_secs(30));
    assert!(config.token_endpoint.is_none());
    assert_eq!(config.refresh_ahead, Some(DEFAULT_REFRESH_AHEAD));
}

#[test]
fn assertion_issuers_default_to_the_discovered_one() {
    let rules = |issuers: Option<&[&str]>| {
        let issuers = issuers.map(|list| list.iter().map(|i| i.to_string()).collect());
        let audiences = vec!["api".into()];
        let given = ValidateAssertion {
            audiences,
            issuers,
            leeway_seconds: None,
        };
        verify_rules(given).unwrap().issuers
    };
    assert_eq!(rules(None), None);
    assert_eq!(rules(Some(&[" ", ""])), None);
    assert_eq!(
        rules(Some(&[" https://sts.example/ "])),
        Some(vec!["https://sts.example/".into()])
    );
}

#[test]
fn refresh_ahead_is_a_fraction_or_a_switch() {
    let with = |value| {
        Config::from_options(Options {
            refresh_ahead: Some(value),
            ..minimal()
        })
    };
    assert_eq!(
        with(RefreshAhead::Switch(false)).unwrap().refresh_ahead,
        None
    );
    assert_eq!(
        with(RefreshAhead::Switch(true)).unwrap().refresh_ahead,
        Some(0.8)
    );
    assert_eq!(
        with(RefreshAhead::Fraction(0.5)).unwrap().refresh_ahead,
        Some(0.5)
    );
    for bad in [0.0, 1.0, 1.5, -0.2, f64::NAN] {
        let err = with(RefreshAhead::Fraction(bad)).unwrap_err().to_string();
        assert!(
            err.starts_with("options.refreshAhead must be a fraction"),
            "{err}"
        );
    }
}

#[test]
fn the_secret_and_the_key_never_print() {
    let options = Options {
        client_id: Some("client".into()),
        client_secret: Some("s3cret-value".into()),
        client_assertion_key: Some("-----BEGIN PRIVATE KEY-----key-body".into()),
        ..Options::default()
    };
    let text = format!("{options:?}");
    assert!(
        text.contains(r#"client_id: Some("client")"#)
            && text.contains(r#"client_secret: "[redacted]""#)
    );
    assert!(!text.contains("s3cret-value") && !text.contains("key-body"));
}

#[test]
fn token_types_must_be_uris_and_are_kept() {
    let exchange = |subject: Option<&str>| {
        Config::from_options(Options {
            grant_type: Some("token_exchange".into()),
            subject_token_type: subject.map(Into::into),
            ..minimal()
        })
    };
    let jwt = "urn:ietf:params:oauth:token-type:jwt";
    assert_eq!(
        exchange(Some(jwt))
            .unwrap()
            .token_exchange
            .subject_token_type,
        jwt
    );
    assert_eq!(
        exchange(None).unwrap().token_exchange.subject_token_type,
        ACCESS_TOKEN_TYPE
    );
    assert!(exchange(Some("not a uri"))
        .unwrap_err()
        .to_string()
        .starts_with("options.subjectTokenType must be a token type URI"));
}

#[test]
fn a_blank_required_option_is_missing() {
    let err = Config::from_options(Options {
        client_id: Some("   ".into()),
        ..minimal()
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "options.clientId is required");
}

#[test]
fn errors_name_the_option() {
    let err = |options: Options| Config::from_options(options).unwrap_err().to_string();
    assert_eq!(
        err(Options {
            issuer: None,
            ..minimal()
        }),
        "options.issuer is required"
    );
    assert!(err(Options {
        issuer: Some("not a url".into()),
        ..minimal()
    })
    .starts_with("options.issuer must be an absolute URL"));
    assert_eq!(
        err(Options {
            max_retries: Some(1.5),
            ..minimal()
        }),
        "options.maxRetries must be an integer from 0 to 10, got 1.5"
    );
    assert!(err(Options {
        proxy: Some("ftp://proxy".into()),
        ..minimal()
    })
    .starts_with("options.proxy must be an http(s) URL"));
    assert_eq!(
        err(Options {
            client_secret: None,
            ..minimal()
        }),
        "options.clientSecret is required for client_secret_post"
    );
}

#[test]
fn the_wrapper_s_object_deserializes_by_the_declared_names() {
    let options: Options = serde_json::from_value(serde_json::json!({
        "issuer": "https://idp.example",
        "clientId": "middle-tier",
        "maxRetries": 2,
        "refreshAhead": false,
        "validateAssertion": { "audiences": ["api"], "leewaySeconds": 5 },
        "sharedCache": { "url": "redis://127.0.0.1", "opTimeoutMs": 70 },
        "authorizationServer": { "clientId": "files" },
        "logger": null,
        "settle": {},
    }))
    .unwrap();
    assert_eq!(options.issuer.as_deref(), Some("https://idp.example"));
    assert_eq!(options.client_id.as_deref(), Some("middle-tier"));
    assert_eq!(options.max_retries, Some(2.0));
    assert_eq!(options.refresh_ahead, Some(RefreshAhead::Switch(false)));
    let validate = options.validate_assertion.unwrap();
    assert_eq!(
        (validate.audiences, validate.leeway_seconds),
        (vec!["api".to_owned()], Some(5.0))
    );
    let shared = options.shared_cache.unwrap();
    assert_eq!(shared.op_timeout_ms, Some(70.0));
    assert!(
        shared.encryption_keys.is_empty(),
        "a missing key list is empty, refused by name"
    );
    let server = options.authorization_server.unwrap();
    assert_eq!(server.client_id.as_deref(), Some("files"));
}

#[test]
fn every_declaration_is_named_by_its_path_and_the_nested_ones_by_their_block() {
    let paths: Vec<_> = declarations().iter().map(|d| d.path).collect();
    assert_eq!(paths.first(), Some(&"issuer"));
    assert_eq!(paths.last(), Some(&"logger"));
    assert!(paths.contains(&"maxRetries"));
    let Kind::Block(fields) = OPTIONS.shared_cache.kind else {
        panic!("sharedCache is a block")
    };
    assert!(fields()
        .iter()
        .all(|field| field.path == format!("sharedCache.{}", field.key)));
    assert!(OPTIONS.client_secret.secret && !OPTIONS.client_id.secret);
    assert_eq!(OPTIONS.issuer.env, ["OPENID_ISSUER"]);
}

#[test]
fn token_types_are_refused_with_on_behalf_of_named_or_unset() {
    let urn = "urn:ietf:params:oauth:token-type:jwt";
    for grant in [None, Some("jwt_bearer")] {
        let err = |subject: Option<&str>, requested: Option<&str>| {
            Config::from_options(Options {
                grant_type: grant.map(Into::into),
                subject_token_type: subject.map(Into::into),
                requested_token_type: requested.map(Into::into),
                ..minimal()
            })
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            err(Some(urn), None),
            "options.subjectTokenType applies only to grantType 'token_exchange' or 'auto'"
        );
        assert_eq!(
            err(None, Some(urn)),
            "options.requestedTokenType applies only to grantType 'token_exchange' or 'auto'"
        );
    }
}

/// Every value an option's TypeScript union names (`index.d.ts` is made from it) is one its
/// parser takes, so a value added to a union without its parser fails here. (A value outside
/// the union is refused only where the option is used: `clientAssertionAlg` is read only
/// for `private_key_jwt`.)
#[test]
fn each_value_a_declared_union_names_is_accepted() {
    let unions = OPTIONS
        .all()
        .into_iter()
        .filter(|d| d.ts_type.is_some_and(|ts| ts.starts_with('\'')));
    let mut checked = 0;
    for d in unions {
        let with = |value: &str| {
            let options: Options = serde_json::from_value(serde_json::json!({
                "issuer": "https://login.example.com/tenant/v2.0",
                "clientId": "middle-tier",
                "clientSecret": "s3cret",
                (d.key): value,
            }))
            .unwrap();
            Config::from_options(options).err().map(|e| e.option)
        };
        for value in d.ts_type.unwrap().split(" | ") {
            let value = value.trim_matches('\'');
            assert_ne!(with(value), Some(d.path), "{}: '{value}'", d.path);
            checked += 1;
        }
    }
    assert!(checked >= 15, "{checked} values checked");
}
