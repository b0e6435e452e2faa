//! Errors of building a service: an option with a wrong value, or an HTTP client
//! that cannot be built from valid options.

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
