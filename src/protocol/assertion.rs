//! What can be known about the user's assertion before the network: whether it is a
//! JWS at all, and whether its `exp` has passed. Entra would answer either with an
//! error after a round trip (AADSTS50013, AADSTS500133); refusing locally is faster
//! and spares the IdP. Nothing here verifies a signature, so nothing here is trusted
//! beyond refusing.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde_json::{Map, Value};

use crate::ground::error::AssertionProblem;

/// base64url, with or without padding (RFC 7515 omits it; some issuers add it).
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// How much the grant demands of the user's token before it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Demand {
    /// Entra's On-Behalf-Of: the assertion must be a JWS (RFC 7523), so anything else
    /// is refused here rather than with AADSTS50013 after a round trip.
    Jws,
    /// RFC 8693: the subject token may be opaque (a reference token from Okta, Auth0,
    /// Ory or PingFederate) and only the IdP can judge it; a JWS is still refused once
    /// its `exp` has passed.
    AnyToken,
}

/// Refuses an assertion that the grant cannot use (see `Demand`), or a JWS whose
/// `exp` is at or before `now_secs`.
pub fn precheck(assertion: &str, now_secs: i64, demand: Demand) -> Result<(), AssertionProblem> {
    match jws_payload(assertion) {
        Some(payload) => match payload.get("exp").and_then(Value::as_f64) {
            Some(exp) if exp <= now_secs as f64 => {
                Err(AssertionProblem::Expired { exp: exp as i64 })
            }
            _ => Ok(()),
        },
        None if demand == Demand::AnyToken => Ok(()),
        None => Err(AssertionProblem::NotJws),
    }
}

/// The `exp` (epoch seconds) of an assertion that is a signed JWS with one; `None` for
/// an opaque token or a JWS without `exp`. Unverified, so only good for deciding not
/// to send a token.
pub fn expires_at_secs(assertion: &str) -> Option<f64> {
    jws_payload(assertion)?.get("exp").and_then(Value::as_f64)
}

/// The claims of a token that is a signed JWS, unverified: only good for reading what an
/// IdP said about a token it just issued to us, never for trusting a caller.
pub fn unverified_claims(token: &str) -> Option<Map<String, Value>> {
    jws_payload(token)
}

/// The payload of a signed JWS in compact form (three base64url parts, a JSON header
/// with an `alg` other than `none`, a JSON payload, a signature), or `None`.
fn jws_payload(assertion: &str) -> Option<Map<String, Value>> {
    let mut parts = assertion.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let header = json_object(header)?;
    let alg = header.get("alg").and_then(Value::as_str);
    if signature.is_empty() || alg.is_none_or(|alg| alg.eq_ignore_ascii_case("none")) {
        return None;
    }
    json_object(payload)
}

fn json_object(part: &str) -> Option<Map<String, Value>> {
    match serde_json::from_slice(&BASE64URL.decode(part).ok()?).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9"; // {"alg":"RS256","typ":"JWT"}
    const LIVE: &str = "eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0"; // exp 2100-01-01
    const EXPIRED: &str = "eyJzdWIiOiJhbGljZSIsImV4cCI6MTAwMH0"; // exp 1000
    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_signed_live_jwt_passes() {
        assert_eq!(
            precheck(&format!("{HEADER}.{LIVE}.c2ln"), NOW, Demand::Jws),
            Ok(())
        );
        assert_eq!(
            precheck(&format!("{HEADER}.{LIVE}=.c2ln"), NOW, Demand::Jws),
            Ok(())
        );
    }

    #[test]
    fn refusals_say_why_without_the_token() {
        assert!(AssertionProblem::NotJws
            .to_string()
            .contains("is not a signed JWT"));
        assert_eq!(
            AssertionProblem::Expired { exp: 1000 }.to_string(),
            "The access token given for the OBO exchange expired at 1000 (epoch seconds); a fresh one is needed"
        );
    }

    #[test]
    fn exp_is_read_from_a_jws_only() {
        assert_eq!(
            expires_at_secs(&format!("{HEADER}.{LIVE}.c2ln")),
            Some(4102444800.0)
        );
        assert_eq!(expires_at_secs("opaque-token"), None);
        assert_eq!(expires_at_secs(&format!("{HEADER}.e30.c2ln")), None); // {}
    }

    #[test]
    fn an_expired_jwt_is_refused() {
        for demand in [Demand::Jws, Demand::AnyToken] {
            assert_eq!(
                precheck(&format!("{HEADER}.{EXPIRED}.c2ln"), NOW, demand),
                Err(AssertionProblem::Expired { exp: 1000 })
            );
        }
    }

    #[test]
    fn anything_but_a_signed_jws_is_refused() {
        let unsigned = "eyJhbGciOiJub25lIn0"; // {"alg":"none"}
        for bad in [
            "opaque-token",
            "a.b",
            "a.b.c.d",
            &format!("{HEADER}.{LIVE}."),
            &format!("{unsigned}.{LIVE}.c2ln"),
            &format!("bm90IGpzb24.{LIVE}.c2ln"),
            &format!("{HEADER}.WzEsMl0.c2ln"), // payload [1,2]
            "",
        ] {
            assert_eq!(
                precheck(bad, NOW, Demand::Jws),
                Err(AssertionProblem::NotJws),
                "{bad}"
            );
            assert_eq!(precheck(bad, NOW, Demand::AnyToken), Ok(()), "{bad}");
        }
    }
}
