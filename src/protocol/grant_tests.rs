//! The grant choice and the request forms, without a server.
use super::*;

fn list(grants: &[&str]) -> Vec<String> {
    grants.iter().map(|g| g.to_string()).collect()
}

#[test]
fn choosing_a_grant() {
    let both = list(&[JWT_BEARER, TOKEN_EXCHANGE]);
    let obo_only = list(&["authorization_code", JWT_BEARER]);
    let te_only = list(&[TOKEN_EXCHANGE]);
    let te = GrantMode::Named(GrantKind::TokenExchange);
    let obo = GrantMode::Named(GrantKind::OnBehalfOf);
    assert_eq!(
        GrantMode::Default.choose(Some(&list(&["authorization_code"]))),
        Ok(GrantKind::OnBehalfOf)
    );
    assert_eq!(
        te.choose(None),
        Ok(GrantKind::TokenExchange),
        "nothing advertised: trust the operator"
    );
    assert_eq!(te.choose(Some(&both)), Ok(GrantKind::TokenExchange));
    assert_eq!(obo.choose(Some(&obo_only)), Ok(GrantKind::OnBehalfOf));
    let refused = te.choose(Some(&obo_only)).unwrap_err();
    assert!(refused.to_string().contains(TOKEN_EXCHANGE), "{refused}");
    assert!(
        refused.to_string().contains(JWT_BEARER),
        "lists what is advertised: {refused}"
    );
    assert!(obo.choose(Some(&te_only)).is_err());
}

#[test]
fn auto_sends_token_exchange_where_advertised_and_on_behalf_of_everywhere_else() {
    let auto = |grants: Option<&[&str]>| {
        let grants = grants.map(list);
        let grants = grants.as_deref();
        (
            GrantMode::Auto.choose(grants),
            GrantMode::Auto.reason(grants),
        )
    };
    assert_eq!(
        auto(Some(&[JWT_BEARER, TOKEN_EXCHANGE])),
        (
            Ok(GrantKind::TokenExchange),
            "auto: grant_types_supported lists token exchange"
        )
    );
    assert_eq!(
        auto(Some(&[TOKEN_EXCHANGE])).0,
        Ok(GrantKind::TokenExchange)
    );
    let (kind, why) = auto(Some(&["authorization_code", "urn:example:unknown"]));
    assert_eq!(kind, Ok(GrantKind::OnBehalfOf));
    assert!(why.contains("does not list token exchange"), "{why}");
    assert_eq!(auto(Some(&[JWT_BEARER])).0, Ok(GrantKind::OnBehalfOf));
    let (kind, why) = auto(None);
    assert_eq!(kind, Ok(GrantKind::OnBehalfOf));
    assert!(why.contains("advertises no grant_types_supported"), "{why}");
    assert!(GrantMode::Default.reason(None).contains("unset"));
    let named = GrantMode::Named(GrantKind::TokenExchange);
    assert_eq!(
        named.reason(Some(&list(&[TOKEN_EXCHANGE]))),
        "named by grantType"
    );
    assert!(named
        .reason(None)
        .contains("no grant_types_supported to check it against"));
}

#[test]
fn on_behalf_of_and_an_id_token_subject_demand_a_jws() {
    let demand = |mode: GrantMode, subject| mode.demand(subject);
    assert_eq!(demand(GrantMode::Default, ACCESS_TOKEN_TYPE), Demand::Jws);
    let named = GrantMode::Named;
    assert_eq!(
        demand(named(GrantKind::OnBehalfOf), ACCESS_TOKEN_TYPE),
        Demand::Jws
    );
    assert_eq!(
        demand(named(GrantKind::TokenExchange), ID_TOKEN_TYPE),
        Demand::AnyToken
    );
    assert_eq!(demand(GrantMode::Auto, ACCESS_TOKEN_TYPE), Demand::AnyToken);
    assert_eq!(demand(named(GrantKind::IdJag), ID_TOKEN_TYPE), Demand::Jws);
    assert_eq!(
        demand(named(GrantKind::IdJag), REFRESH_TOKEN_TYPE),
        Demand::AnyToken
    );
}

#[test]
fn id_jag_is_token_exchange_at_the_idp_and_sends_its_resource() {
    assert_eq!(
        GrantMode::parse(Some("id_jag")),
        Ok(GrantMode::Named(GrantKind::IdJag))
    );
    assert_eq!(GrantKind::IdJag.urn(), TOKEN_EXCHANGE);
    assert_eq!(
        GrantMode::Named(GrantKind::IdJag).choose(Some(&list(&[JWT_BEARER]))),
        Err(GrantProblem::NotAdvertised {
            wanted: "id_jag",
            wanted_urn: TOKEN_EXCHANGE,
            advertised: list(&[JWT_BEARER]),
        })
    );
    assert!(ResourceIndicator::ByGrant.sends(GrantKind::IdJag));
    assert!(!ResourceIndicator::Omit.sends(GrantKind::IdJag));
}

#[test]
fn the_second_id_jag_leg_presents_the_assertion_with_jwt_bearer() {
    let grant = GrantRequest {
        assertion: "id.jag.jwt",
        scopes: "files.read",
        claims: Some("{}"),
        audience: Some("https://as.example"),
        resource: Some("https://mcp.example/mcp"),
    };
    assert_eq!(
        assertion_grant_form(&grant),
        [
            ("grant_type", JWT_BEARER),
            ("assertion", "id.jag.jwt"),
            ("scope", "files.read"),
            ("resource", "https://mcp.example/mcp"),
        ]
    );
}

#[test]
fn parsing_the_mode_names_the_option() {
    assert_eq!(GrantMode::parse(Some("auto")), Ok(GrantMode::Auto));
    let err = GrantMode::parse(Some("password")).unwrap_err();
    assert_eq!(err.option, "grantType");
}

#[test]
fn the_resource_indicator_names_its_option_and_decides_by_grant() {
    let by_grant = ResourceIndicator::parse(None).unwrap();
    assert_eq!(ResourceIndicator::parse(Some(" auto ")), Ok(by_grant));
    assert!(by_grant.sends(GrantKind::TokenExchange));
    assert!(!by_grant.sends(GrantKind::OnBehalfOf));
    let send = ResourceIndicator::parse(Some("send")).unwrap();
    assert!(send.sends(GrantKind::OnBehalfOf) && send.sends(GrantKind::TokenExchange));
    let omit = ResourceIndicator::parse(Some("omit")).unwrap();
    assert!(!omit.sends(GrantKind::OnBehalfOf) && !omit.sends(GrantKind::TokenExchange));
    let err = ResourceIndicator::parse(Some("always")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "options.resourceIndicator must be 'auto', 'send' or 'omit', got 'always'"
    );
}

#[test]
fn token_exchange_form_has_only_what_was_given() {
    let settings = TokenExchangeSettings {
        subject_token_type: "urn:ietf:params:oauth:token-type:jwt".into(),
        requested_token_type: Some(ACCESS_TOKEN_TYPE.into()),
    };
    let grant = GrantRequest {
        assertion: "a.b.c",
        scopes: "files",
        claims: Some("{}"),
        audience: None,
        resource: None,
    };
    let form = token_exchange_form(&settings, &grant);
    let names: Vec<&str> = form.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "grant_type",
            "subject_token",
            "subject_token_type",
            "scope",
            "requested_token_type"
        ]
    );
}
