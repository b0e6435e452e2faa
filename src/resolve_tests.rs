use super::*;
use serde_json::json;

const NOW: u64 = 1_700_000_000_000;
const ACCESS: UpstreamField = UpstreamField::Access;

fn tokens(access_token: Option<&str>, expires_in_secs: Option<f64>) -> UpstreamTokens {
    UpstreamTokens {
        access_token: access_token.map(Into::into),
        expires_at_secs: expires_in_secs.map(|s| NOW as f64 / 1000.0 + s),
    }
}

#[test]
fn upstream_token_needs_more_than_the_buffer() {
    assert_eq!(
        upstream_assertion(Some(&tokens(Some("at"), Some(31.0))), ACCESS, NOW),
        Ok("at")
    );
    assert_eq!(
        upstream_assertion(Some(&tokens(Some("at"), None)), ACCESS, NOW),
        Ok("at")
    );
    for left in [30.0, 10.0, -5.0] {
        assert_eq!(
            upstream_assertion(Some(&tokens(Some("at"), Some(left))), ACCESS, NOW),
            Err(Failure::MissingUpstreamToken)
        );
    }
    assert_eq!(
        upstream_assertion(None, ACCESS, NOW),
        Err(Failure::MissingUpstreamToken)
    );
    assert_eq!(
        upstream_assertion(Some(&tokens(None, Some(600.0))), ACCESS, NOW),
        Err(Failure::MissingUpstreamAccessToken)
    );
}

#[test]
fn a_missing_id_jag_subject_is_named_for_what_it_is() {
    let empty = tokens(None, None);
    let missing = |field| upstream_assertion(Some(&empty), field, NOW).unwrap_err();
    let id = missing(UpstreamField::Id);
    assert_eq!(id, Failure::MissingUpstreamIdToken);
    assert_eq!(id.reason(), Reason::MissingUpstreamIdToken);
    assert!(!id.retryable());
    assert_eq!(
        id.user_message(),
        "The upstream OpenID ID token is missing for the ID-JAG exchange."
    );
    let refresh = missing(UpstreamField::Refresh);
    assert_eq!(refresh.reason(), Reason::MissingUpstreamRefreshToken);
    assert!(refresh.user_message().contains("refresh token"));
    assert_eq!(UpstreamField::parse("id_token"), Some(UpstreamField::Id));
    assert_eq!(
        UpstreamField::parse("refresh_token"),
        Some(UpstreamField::Refresh)
    );
    assert_eq!(
        UpstreamField::parse("access_token"),
        Some(UpstreamField::Access)
    );
    assert_eq!(UpstreamField::parse("token"), None);
}

fn answer(expires_in: Option<serde_json::Value>, expires_at_ms: Option<f64>) -> ResolverAnswer {
    ResolverAnswer {
        has_access_token: true,
        expires_in,
        expires_at_ms,
    }
}

#[test]
fn finish_applies_librechats_expiry_rules() {
    let at = |a: ResolverAnswer| finish(a, NOW).map(|t| t.expires_at_ms - NOW as f64);
    assert_eq!(at(answer(Some(json!(300)), None)), Ok(270_000.0));
    assert_eq!(at(answer(Some(json!("300")), None)), Ok(270_000.0));
    assert_eq!(at(answer(Some(json!(10)), None)), Ok(1_000.0));
    assert_eq!(at(answer(None, None)), Ok(3_570_000.0));
    assert_eq!(
        at(answer(Some(json!(0)), None)),
        Err(Failure::AlreadyExpired)
    );
    assert_eq!(
        at(answer(Some(json!(60)), Some(NOW as f64 + 120_000.0))),
        Ok(90_000.0)
    );
    assert_eq!(
        at(answer(Some(json!(3600)), Some(NOW as f64 - 1.0))),
        Err(Failure::AlreadyExpired)
    );
    let empty = ResolverAnswer::default();
    assert_eq!(finish(empty, NOW), Err(Failure::EmptyExchangeResponse));
}

#[test]
fn failures_carry_librechats_reasons_and_messages() {
    let expired = Failure::AlreadyExpired;
    assert_eq!(
        (expired.reason(), expired.retryable()),
        (Reason::ExchangeFailed, true)
    );
    let refresh = session_failure(&ErrorFacts {
        status: Some(503.0),
        ..ErrorFacts::default()
    });
    assert_eq!(
        refresh.user_message(),
        "Temporary sign-in session refresh failure."
    );
    assert!(refresh.retryable());
    assert!(Failure::Exchange { retryable: true }.retryable());
    assert!(!Failure::Exchange { retryable: false }.retryable());
    let rejected = exchange_failure(&ErrorFacts {
        retryable: Some(false),
        status: Some(503.0),
        ..ErrorFacts::default()
    });
    assert_eq!(
        rejected.user_message(),
        "The identity provider rejected the OBO token exchange."
    );
    let empty = exchange_failure(&ErrorFacts {
        obo_failure_reason: Some("empty_exchange_response".into()),
        ..ErrorFacts::default()
    });
    assert_eq!(empty, Failure::EmptyExchangeResponse);
}

#[test]
fn a_scheduled_grant_is_handed_on_with_the_skew() {
    let grant = |token: Option<&str>, secs: Option<f64>| UpstreamTokens {
        access_token: token.map(Into::into),
        expires_at_secs: secs,
    };
    let now_secs = NOW as f64 / 1000.0;
    let stamp = scheduled_grant(&grant(Some("dt"), Some(now_secs + 3600.0)), NOW);
    assert_eq!(
        stamp,
        Ok(Stamp {
            obtained_at_ms: NOW,
            expires_at_ms: NOW as f64 + 3_570_000.0
        })
    );
    // Inside the buffer but alive: one second, as an exchanged token gets.
    let short = scheduled_grant(&grant(Some("dt"), Some(now_secs + 20.0)), NOW);
    assert_eq!(short.map(|s| s.expires_at_ms), Ok(NOW as f64 + 1000.0));
    for unusable in [
        grant(None, Some(now_secs + 3600.0)),
        grant(Some(""), Some(now_secs + 3600.0)),
        grant(Some("dt"), None),
        grant(Some("dt"), Some(now_secs)),
        grant(Some("dt"), Some(now_secs - 60.0)),
        grant(Some("dt"), Some(f64::NAN)),
        grant(Some("dt"), Some(f64::INFINITY)),
    ] {
        assert_eq!(
            scheduled_grant(&unusable, NOW),
            Err(Failure::ScheduledGrantUnusable)
        );
    }
    let failure = Failure::ScheduledGrantUnusable;
    assert_eq!(
        (
            failure.reason(),
            failure.retryable(),
            failure.user_message()
        ),
        (
            Reason::SessionRefreshFailed,
            true,
            "The scheduled OBO grant did not provide a usable downstream token."
        )
    );
}

#[test]
fn a_missing_provider_is_its_own_reason() {
    let failure = Failure::MissingUpstreamProvider;
    assert_eq!(
        (
            failure.reason(),
            failure.retryable(),
            failure.user_message()
        ),
        (
            Reason::MissingUpstreamProvider,
            false,
            "No upstream credential provider is configured for this OBO MCP connection."
        )
    );
}

#[test]
fn transient_classification() {
    let facts = |f: fn(&mut ErrorFacts)| {
        let mut facts = ErrorFacts::default();
        f(&mut facts);
        looks_transient(&facts)
    };
    assert!(facts(|f| f.code = Some("econnreset".into())));
    assert!(facts(|f| f.message = Some("Request Timed Out".into())));
    assert!(facts(|f| f.status = Some(429.0)));
    assert!(!facts(|f| f.status = Some(400.0)));
    assert!(!facts(|f| f.message = Some("invalid_grant".into())));
    assert!(facts(|f| f.retryable = Some(true)));
    // This package's errors carry the tag, so their messages are never read.
    assert!(!facts(|f| {
        f.retryable = Some(false);
        f.message = Some("The OBO token request timed out".into());
    }));
}
