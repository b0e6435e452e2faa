use super::*;
use crate::ground::redact::Sensitive;

const ENTRA_MFA: &str = r#"{"error":"interaction_required",
    "error_description":"AADSTS50076: Due to a configuration change you must use MFA.\r\nTrace ID: t\r\nCorrelation ID: c",
    "error_codes":[50076],"suberror":"basic_action","trace_id":"t","correlation_id":"c",
    "claims":"{\"access_token\":{\"capolids\":{\"essential\":true,\"values\":[\"p1\"]}}}"}"#;

fn idp(status: u16, body: &str) -> ExchangeError {
    ExchangeError::Idp {
        status,
        body: Box::new(IdpErrorBody::parse(body.as_bytes(), &Sensitive::default())),
        retry_after: None,
    }
}

#[test]
fn entra_body_is_read_field_by_field() {
    let body = IdpErrorBody::parse(ENTRA_MFA.as_bytes(), &Sensitive::default());
    assert_eq!(body.error.as_deref(), Some("interaction_required"));
    assert_eq!(body.error_codes, Some(vec![50076]));
    assert_eq!(body.suberror.as_deref(), Some("basic_action"));
    assert!(body.claims.unwrap().contains("capolids"));
    assert_eq!(body.trace_id.as_deref(), Some("t"));
}

#[test]
fn odd_bodies_do_not_fail_parsing() {
    assert_eq!(
        IdpErrorBody::parse(b"<html>502</html>", &Sensitive::default()),
        IdpErrorBody::default()
    );
    let body = IdpErrorBody::parse(
        br#"{"error":7,"error_codes":"x","suberror":"s"}"#,
        &Sensitive::default(),
    );
    assert_eq!(body.error, None);
    assert_eq!(body.error_codes, None);
    assert_eq!(body.suberror.as_deref(), Some("s"));
}

#[test]
fn message_keeps_the_first_line_of_the_description() {
    let message = idp(400, ENTRA_MFA).to_string();
    assert_eq!(
        message,
        "The identity provider rejected the OBO exchange (HTTP 400, interaction_required): \
         AADSTS50076: Due to a configuration change you must use MFA."
    );
}

#[test]
fn retryable_classification() {
    for status in [429, 500, 502, 503, 504] {
        assert!(idp(status, "{}").is_retryable(), "{status}");
    }
    for status in [400, 401, 403, 404, 501] {
        assert!(!idp(status, "{}").is_retryable(), "{status}");
    }
    assert!(idp(400, r#"{"error":"temporarily_unavailable"}"#).is_retryable());
    assert!(!idp(400, ENTRA_MFA).is_retryable());
    let transport = |kind| ExchangeError::Transport {
        kind,
        detail: String::new(),
        cause: None,
    };
    assert!(transport(TransportKind::Timeout).is_retryable());
    assert!(transport(TransportKind::Reset).is_retryable());
    assert!(transport(TransportKind::Connect).is_retryable());
    assert!(!transport(TransportKind::Other).is_retryable());
    assert!(!ExchangeError::EmptyResponse.is_retryable());
    assert_eq!(
        ExchangeError::EmptyResponse.failure_reason(),
        FailureReason::EmptyExchangeResponse
    );
}

#[test]
fn interaction_answers_carry_a_claims_challenge() {
    let mfa = idp(400, ENTRA_MFA).www_authenticate().unwrap();
    let encoded = mfa
        .strip_prefix(r#"Bearer error="insufficient_claims", claims=""#)
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap();
    let decoded = BASE64_STANDARD.decode(encoded).unwrap();
    assert!(String::from_utf8(decoded).unwrap().contains("capolids"));
    let consent = idp(
        400,
        r#"{"error":"invalid_grant","suberror":"consent_required"}"#,
    );
    assert_eq!(
        consent.www_authenticate().as_deref(),
        Some(r#"Bearer error="insufficient_claims""#)
    );
    assert_eq!(
        idp(400, r#"{"error":"invalid_grant"}"#).www_authenticate(),
        None
    );
    assert_eq!(ExchangeError::EmptyResponse.www_authenticate(), None);
}

#[test]
fn an_id_jag_step_wraps_once_and_answers_with_its_cause() {
    let cause = idp(429, r#"{"error":"slow_down"}"#);
    let wrapped = cause.clone().in_id_jag(IdJagStep::AccessToken);
    let again = wrapped.clone().in_id_jag(IdJagStep::Assertion);
    assert_eq!(again.id_jag_step(), Some(IdJagStep::AccessToken));
    assert_eq!(cause.id_jag_step(), None);
    assert!(wrapped.is_retryable());
    assert_eq!(wrapped.status(), Some(429));
    assert_eq!(
        wrapped.idp_body().unwrap().error.as_deref(),
        Some("slow_down")
    );
    assert_eq!(
        wrapped.to_string(),
        "ID-JAG leg 2 (jwt-bearer grant at the MCP server's authorization server) failed: \
         The MCP server's authorization server rejected the OBO exchange (HTTP 429, slow_down)"
    );
    assert_eq!(
        cause.to_string(),
        "The identity provider rejected the OBO exchange (HTTP 429, slow_down)"
    );
    let empty = ExchangeError::EmptyResponse.in_id_jag(IdJagStep::AccessToken);
    assert_eq!(empty.failure_reason(), FailureReason::EmptyExchangeResponse);
    let timeout = ExchangeError::Transport {
        kind: TransportKind::Timeout,
        detail: String::new(),
        cause: None,
    };
    assert_eq!(
        timeout.in_id_jag(IdJagStep::Assertion).code(),
        Some("ETIMEDOUT")
    );
    let throttled = ExchangeError::Idp {
        status: 429,
        body: Box::default(),
        retry_after: Some(Duration::from_secs(3)),
    };
    let throttled = throttled.in_id_jag(IdJagStep::Assertion);
    assert_eq!(throttled.retry_after(), Some(Duration::from_secs(3)));
    let mfa = idp(400, ENTRA_MFA).in_id_jag(IdJagStep::Assertion);
    assert!(mfa.www_authenticate().is_some());
    assert_eq!(
        [
            IdJagStep::Discovery,
            IdJagStep::Assertion,
            IdJagStep::AccessToken
        ]
        .map(IdJagStep::name),
        ["discovery", "leg1", "leg2"]
    );
}

#[test]
fn leg_2_failures_name_the_mcp_servers_authorization_server() {
    let leg2 = |inner: ExchangeError| inner.in_id_jag(IdJagStep::AccessToken).to_string();
    let prefix =
        "ID-JAG leg 2 (jwt-bearer grant at the MCP server's authorization server) failed: ";
    let connect = ExchangeError::Transport {
        kind: TransportKind::Connect,
        detail: "refused".into(),
        cause: None,
    };
    assert_eq!(
        leg2(connect.clone()),
        format!("{prefix}The OBO token request could not connect to the MCP server's authorization server: refused")
    );
    assert_eq!(
        connect.to_string(),
        "The OBO token request could not connect to the identity provider: refused"
    );
    let reset = ExchangeError::Transport {
        kind: TransportKind::Reset,
        detail: "eof".into(),
        cause: None,
    };
    assert_eq!(
        leg2(reset),
        format!("{prefix}The OBO token request lost its connection to the MCP server's authorization server: eof")
    );
    assert_eq!(
        leg2(ExchangeError::EmptyResponse),
        format!("{prefix}The MCP server's authorization server returned no access token for the OBO exchange")
    );
    assert_eq!(
        leg2(ExchangeError::MalformedResponse { status: 200 }),
        format!("{prefix}The MCP server's authorization server returned an unreadable token response (HTTP 200)")
    );
    let leg1 = idp(400, r#"{"error":"invalid_grant"}"#).in_id_jag(IdJagStep::Assertion);
    assert_eq!(
        leg1.to_string(),
        "ID-JAG leg 1 (token exchange for an ID-JAG at the enterprise IdP) failed: \
         The enterprise identity provider rejected the OBO exchange (HTTP 400, invalid_grant)"
    );
    let metadata = ExchangeError::Metadata {
        url: "https://as.example/x".into(),
        problem: MetadataProblem::IssuerMismatch,
        detail: "refused".into(),
        retryable: false,
        cause: None,
    };
    assert_eq!(
        metadata.message_from("anyone"),
        "refused (https://as.example/x)"
    );
}

#[test]
fn every_discovery_failure_has_a_code() {
    let idp_discovery = ExchangeError::Discovery {
        issuer: "https://idp.example".into(),
        detail: "HTTP 404".into(),
        retryable: false,
        cause: None,
    };
    assert_eq!(idp_discovery.code(), Some("ERR_IDP_DISCOVERY"));
    let missing = ExchangeError::NoResourceMetadata {
        url: "https://mcp.example/.well-known/oauth-protected-resource".into(),
        detail: "No metadata document was found".into(),
    };
    assert_eq!(missing.code(), Some("ERR_ID_JAG_NO_RESOURCE_METADATA"));
    assert!(!missing.is_retryable());
    assert_eq!(
        missing.to_string(),
        "No metadata document was found (https://mcp.example/.well-known/oauth-protected-resource)"
    );
    let refused = ExchangeError::Metadata {
        url: "u".into(),
        problem: MetadataProblem::NoJwtBearer,
        detail: "d".into(),
        retryable: false,
        cause: None,
    };
    assert_eq!(refused.code(), Some("ERR_ID_JAG_METADATA"));
    assert_eq!(ExchangeError::EmptyResponse.code(), None);
}

#[test]
fn echoed_secrets_are_redacted() {
    let mut sensitive = Sensitive::default();
    sensitive.value("eyJhbGciOi.payload.sig");
    sensitive.value("short");
    let body = IdpErrorBody::parse(
        br#"{"error":"invalid_grant","error_description":"bad assertion eyJhbGciOi.payload.sig"}"#,
        &sensitive,
    );
    assert_eq!(
        body.error_description.as_deref(),
        Some("bad assertion [redacted]")
    );
}

#[test]
fn long_fields_are_cut_after_redaction_and_a_long_claims_is_dropped() {
    let secret = "Hz8Q~secret-value";
    let mut sensitive = Sensitive::default();
    sensitive.value(secret);
    let description = format!("{}{secret}", "d".repeat(4090));
    let body = serde_json::json!({
        "error": "e".repeat(5000), "error_description": description,
        "claims": "c".repeat(4097),
    });
    let body = IdpErrorBody::parse(body.to_string().as_bytes(), &sensitive);
    assert_eq!(body.error, Some(format!("{}…", "e".repeat(4096))));
    assert_eq!(
        body.error_description,
        Some(format!("{}[redac…", "d".repeat(4090)))
    );
    assert_eq!(body.claims, None);
    let fits = serde_json::json!({ "claims": "c".repeat(4096) }).to_string();
    let fits = IdpErrorBody::parse(fits.as_bytes(), &sensitive);
    assert_eq!(fits.claims.map(|c| c.len()), Some(4096));
}
