//! Why an answer from outside was refused before anything used it: a token that cannot
//! be a bearer token, or a field longer than the package reads. Nothing here holds the
//! refused value itself, only where it was and how it was wrong.

/// What in an answer was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerProblem {
    /// The token is not RFC 6750 `b64token`: `found` at byte `at` (never the token).
    TokenMalformed { at: usize, found: String },
    /// The token is longer than `limit` bytes.
    TokenTooLarge { bytes: usize, limit: usize },
    /// A URL, name or list of `source` is longer than the package reads.
    TooLong {
        source: String,
        field: &'static str,
        length: usize,
        limit: usize,
        unit: &'static str,
    },
}

impl AnswerProblem {
    /// The Node-style code callers can branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TokenMalformed { .. } => "ERR_TOKEN_MALFORMED",
            Self::TokenTooLarge { .. } => "ERR_TOKEN_TOO_LARGE",
            Self::TooLong { .. } => "ERR_FIELD_TOO_LONG",
        }
    }
}

impl std::fmt::Display for AnswerProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TokenMalformed { at, found } => write!(
                f,
                "The token endpoint returned an access token that is not an RFC 6750 bearer token ({found} at byte {at}); it was not used"
            ),
            Self::TokenTooLarge { bytes, limit } => write!(
                f,
                "The token endpoint returned an access token of {bytes} bytes; tokens over {limit} bytes are refused"
            ),
            Self::TooLong {
                source,
                field,
                length,
                limit,
                unit,
            } => write!(
                f,
                "{source} has {length} {unit} in {field}; at most {limit} are read"
            ),
        }
    }
}
