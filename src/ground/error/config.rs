//! Errors of building a service: an option with a wrong value, or an HTTP client
//! that cannot be built from valid options.

/// The code of every refused option (`ConfigError` and `BuildError`); the error's
/// `option` field names the option.
pub const INVALID_OPTION: &str = "ERR_INVALID_OPTION";

/// An option with a missing or wrong value; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("options.{option} {problem}")]
pub struct ConfigError {
    pub option: &'static str,
    pub problem: String,
}

impl ConfigError {
    pub fn new(option: &'static str, problem: impl Into<String>) -> Self {
        Self {
            option,
            problem: problem.into(),
        }
    }
}

/// Why a service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// reqwest refused the client (a proxy URL it cannot use, say); the cause is kept.
    #[error("options.{option} cannot be used by the HTTP client: {source}")]
    HttpClient {
        option: &'static str,
        #[source]
        source: reqwest::Error,
    },
}

impl BuildError {
    /// The option at fault, as `options.<option>` names it in the message.
    pub fn option(&self) -> &'static str {
        match self {
            Self::Config(error) => error.option,
            Self::HttpClient { option, .. } => option,
        }
    }
}
