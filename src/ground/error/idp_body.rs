//! An OAuth 2.0 error body from a token endpoint, kept field by field (Entra's
//! `error_codes`, `suberror` and `claims` included) because callers branch on them.

use serde_json::Value;

use crate::ground::clip::clip;
use crate::ground::redact::Sensitive;

/// The longest text field kept from an error body; the rest is cut. A `claims`
/// challenge that long is dropped instead, since a cut one could not be answered.
const MAX_FIELD_CHARS: usize = 4096;

/// An OAuth 2.0 error body, read leniently: a field of an unexpected type is dropped,
/// not a reason to lose the others.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdpErrorBody {
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub error_codes: Option<Vec<i64>>,
    pub suberror: Option<String>,
    pub claims: Option<String>,
    pub trace_id: Option<String>,
    pub correlation_id: Option<String>,
}

impl IdpErrorBody {
    /// Parses a token-endpoint error body; anything that is not a JSON object yields
    /// an empty body (a gateway's HTML 502 page, say). Every form of a `sensitive` value
    /// is replaced in the text fields, in case the IdP echoes what it received, before
    /// they are cut to `MAX_FIELD_CHARS` (a cut could otherwise leave half a secret).
    pub fn parse(bytes: &[u8], sensitive: &Sensitive) -> Self {
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(bytes) else {
            return Self::default();
        };
        let redacted = |name: &str| {
            let mut text = map.get(name).and_then(Value::as_str)?.to_owned();
            sensitive.redact(&mut text);
            Some(text)
        };
        let text = |name: &str| redacted(name).map(|t| clip(&t, MAX_FIELD_CHARS).into_owned());
        Self {
            error: text("error"),
            error_description: text("error_description"),
            error_codes: map
                .get("error_codes")
                .and_then(Value::as_array)
                .map(|codes| codes.iter().filter_map(Value::as_i64).collect()),
            suberror: text("suberror"),
            claims: redacted("claims").filter(|c| c.chars().count() <= MAX_FIELD_CHARS),
            trace_id: text("trace_id"),
            correlation_id: text("correlation_id"),
        }
    }
}
