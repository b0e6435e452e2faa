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

/// Refuses an assertion that is not a JWS or whose `exp` is at or before `now_secs`.
pub fn precheck(assertion: &str, now_secs: i64) -> Result<(), AssertionProblem> {
    let mut parts = assertion.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AssertionProblem::NotJws);
    };
    let header = json_object(header).ok_or(AssertionProblem::NotJws)?;
    let alg = header.get("alg").and_then(Value::as_str);
    if signature.is_empty() || alg.is_none_or(|alg| alg.eq_ignore_ascii_case("none")) {
        return Err(AssertionProblem::NotJws);
    }
    let payload = json_object(payload).ok_or(AssertionProblem::NotJws)?;
    match payload.get("exp").and_then(Value::as_f64) {
        Some(exp) if exp <= now_secs as f64 => Err(AssertionProblem::Expired { exp: exp as i64 }),
        _ => Ok(()),
    }
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
        assert_eq!(precheck(&format!("{HEADER}.{LIVE}.c2ln"), NOW), Ok(()));
        assert_eq!(precheck(&format!("{HEADER}.{LIVE}=.c2ln"), NOW), Ok(()));
    }

    #[test]
    fn an_expired_jwt_is_refused() {
        assert_eq!(
            precheck(&format!("{HEADER}.{EXPIRED}.c2ln"), NOW),
            Err(AssertionProblem::Expired { exp: 1000 })
        );
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
            assert_eq!(precheck(bad, NOW), Err(AssertionProblem::NotJws), "{bad}");
        }
    }
}
