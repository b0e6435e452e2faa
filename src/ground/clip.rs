//! Outside text cut to a length before it goes into a message or an error field, so
//! that a server cannot make the package carry (or log) megabytes of its text.

use std::borrow::Cow;

/// `text`'s first `limit` characters, with `…` when something was cut.
pub fn clip(text: &str, limit: usize) -> Cow<'_, str> {
    match text.char_indices().nth(limit) {
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
        None => Cow::Borrowed(text),
    }
}
