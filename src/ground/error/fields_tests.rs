//! The fields an error crosses to JS with: its causes, its kind, the argument or option
//! at fault.

use super::*;

/// A lower error with a cause of its own, as reqwest's are.
#[derive(Debug, thiserror::Error)]
#[error("error sending request")]
struct Sending(#[source] std::io::Error);

fn transport() -> ExchangeError {
    let lower = Sending(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "Connection refused",
    ));
    ExchangeError::Transport {
        kind: TransportKind::Connect,
        detail: error_chain(&lower),
        cause: Some(Cause::new(lower)),
    }
}

fn link(message: &str, code: Option<&'static str>) -> CauseLink {
    CauseLink {
        message: message.to_owned(),
        code,
    }
}

#[test]
fn a_transport_failure_keeps_its_causes_in_every_clone() {
    let error = transport();
    let expected = [
        link("error sending request", None),
        link("Connection refused", None),
    ];
    assert_eq!(error.causes(8), expected);
    assert!(
        format!("{error:?}").contains("ConnectionRefused"),
        "Debug shows the cause's own Debug: {error:?}"
    );
    let shared = error.clone();
    drop(error);
    assert_eq!(shared.causes(8), expected, "a flight's clone keeps them");
    assert_eq!(shared.causes(1), expected[..1]);
    assert_eq!(
        shared.to_string(),
        "The OBO token request could not connect to the identity provider: \
         error sending request: Connection refused",
        "the message is unchanged"
    );
    let cut = shared.after_head(200, None);
    assert!(matches!(cut, ExchangeError::CutShort { .. }));
    assert_eq!(cut.causes(8), expected, "a cut-short answer keeps them");
}

#[test]
fn an_id_jag_step_s_own_failure_is_its_first_cause_worded_for_its_party() {
    let leg2 = transport().in_id_jag(IdJagStep::AccessToken);
    let causes = leg2.causes(8);
    assert_eq!(
        causes[0],
        link(
            "The OBO token request could not connect to the MCP server's authorization server: \
             error sending request: Connection refused",
            Some("ECONNREFUSED")
        )
    );
    assert_eq!(causes[1..], transport().causes(8));
    let refused = ExchangeError::Grant(GrantProblem::IdJagClaims).in_id_jag(IdJagStep::Assertion);
    assert_eq!(
        refused.causes(8),
        [link(
            &GrantProblem::IdJagClaims.to_string(),
            Some("ERR_ID_JAG_CLAIMS")
        )]
    );
    assert!(ExchangeError::EmptyResponse.causes(8).is_empty());
}

#[test]
fn kind_says_what_failed_where_one_code_covers_several_failures() {
    let metadata = |problem| ExchangeError::Metadata {
        url: "https://as.example".into(),
        problem,
        detail: "d".into(),
        retryable: false,
        cause: None,
    };
    use MetadataProblem::*;
    let problems = [
        (NotFound, "not_found"),
        (Unavailable, "unavailable"),
        (Unreadable, "unreadable"),
        (InsecureUrl, "insecure_url"),
        (ResourceMismatch, "resource_mismatch"),
        (NoAuthorizationServers, "no_authorization_servers"),
        (ServerNotListed, "server_not_listed"),
        (IssuerMismatch, "issuer_mismatch"),
        (NoIdJagProfile, "no_id_jag_profile"),
        (NoJwtBearer, "no_jwt_bearer"),
        (NoTokenEndpoint, "no_token_endpoint"),
    ];
    for (problem, name) in problems {
        assert_eq!(metadata(problem).kind(), Some(name));
        let step = metadata(problem).in_id_jag(IdJagStep::Discovery);
        assert_eq!(step.kind(), Some(name), "through the step");
    }
    let invalid = |claim| {
        ExchangeError::Assertion(AssertionProblem::Invalid {
            reason: "r".into(),
            claim,
        })
    };
    assert_eq!(
        invalid(Some(RefusedClaim::Audience)).kind(),
        Some("audience")
    );
    assert_eq!(invalid(Some(RefusedClaim::Issuer)).kind(), Some("issuer"));
    assert_eq!(invalid(None).kind(), None);
    assert_eq!(invalid(None).code(), Some("ERR_ASSERTION_INVALID"));
    assert_eq!(ExchangeError::EmptyResponse.kind(), None);
    assert_eq!(transport().kind(), None);
}

#[test]
fn a_refused_call_names_its_argument_and_a_refused_option_its_option() {
    for (error, argument) in [
        (RequestError::MissingAccessToken, "accessToken"),
        (RequestError::MissingScopes, "scopes"),
        (RequestError::NotOpenIdUser, "user"),
        (RequestError::SeparatorInValue("audience"), "audience"),
        (RequestError::NotADigest, "digest"),
        (RequestError::IdentityShape, "identity"),
    ] {
        assert_eq!(error.argument(), argument, "{error}");
    }
    let config = ConfigError::new("sharedCache.url", "is required");
    assert_eq!(config.to_string(), "options.sharedCache.url is required");
    assert_eq!(BuildError::from(config).option(), "sharedCache.url");
}
