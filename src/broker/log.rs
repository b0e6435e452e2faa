//! The broker's log lines, in LibreChat's words and levels. A line never contains a
//! token, an assertion or a secret: only the user's subject, scopes and IdP errors
//! (already scrubbed of echoed secrets).

use std::sync::Arc;

/// Log levels, named as LibreChat's logger methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Warn,
    Error,
}

/// Where log lines go.
pub type Logger = Arc<dyn Fn(Level, String) + Send + Sync>;

/// The service's logger, if it has one; messages are built only when there is one.
pub struct Log(Option<Logger>);

impl Log {
    pub fn new(logger: Option<Logger>) -> Self {
        Self(logger)
    }

    /// Writes `message` with LibreChat's `[OboTokenService]` prefix.
    pub fn write(&self, level: Level, message: impl FnOnce() -> String) {
        if let Some(logger) = &self.0 {
            logger(level, format!("[OboTokenService] {}", message()));
        }
    }
}
