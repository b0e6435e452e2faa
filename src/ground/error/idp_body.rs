//! An OAuth 2.0 error body from a token endpoint, kept field by field (Entra's
//! `error_codes`, `suberror` and `claims` included) because callers branch on them.

use serde_json::Value;

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
    /// an empty body (a gateway's HTML 502 page, say).
    pub fn parse(bytes: &[u8]) -> Self {
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(bytes) else {
            return Self::default();
        };
        let text = |name: &str| map.get(name).and_then(Value::as_str).map(str::to_owned);
        Self {
            error: text("error"),
            error_description: text("error_description"),
            error_codes: map
                .get("error_codes")
                .and_then(Value::as_array)
                .map(|codes| codes.iter().filter_map(Value::as_i64).collect()),
            suberror: text("suberror"),
            claims: text("claims"),
            trace_id: text("trace_id"),
            correlation_id: text("correlation_id"),
        }
    }

    /// Replaces every occurrence of a sensitive value in the text fields, in case an
    /// IdP echoes the assertion or the client secret back in its answer.
    pub fn redact(&mut self, sensitive: &[&str]) {
        let fields = [
            &mut self.error,
            &mut self.error_description,
            &mut self.suberror,
            &mut self.claims,
            &mut self.trace_id,
            &mut self.correlation_id,
        ];
        for text in fields.into_iter().flatten() {
            for value in sensitive.iter().filter(|v| v.len() >= 8) {
                if text.contains(*value) {
                    *text = text.replace(*value, "[redacted]");
                }
            }
        }
    }
}
