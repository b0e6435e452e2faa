//! Redaction, in the two places a secret could show: `Debug` for types that hold a
//! token, an assertion or a secret (the sensitive fields print as `[redacted]`, so a stray
//! `{:?}` can never reveal them), and the text of a server's answer, which may echo what
//! it received in any form the package sent it in.

use base64::prelude::{Engine, BASE64_STANDARD};
use url::form_urlencoded::byte_serialize;

/// Implements `Debug` for `$type`, printing `$shown` fields and `[redacted]` for `$hidden`.
macro_rules! redacted_debug {
    ($type:ident $(<$lt:lifetime>)? { shown: [$($shown:ident),* $(,)?], hidden: [$($hidden:ident),* $(,)?] $(,)? }) => {
        impl $(<$lt>)? std::fmt::Debug for $type $(<$lt>)? {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($type))
                    $(.field(stringify!($shown), &self.$shown))*
                    $(.field(stringify!($hidden), &"[redacted]"))*
                    .finish()
            }
        }
    };
}

pub(crate) use redacted_debug;

/// What replaces a secret in a server's text.
pub const REDACTED: &str = "[redacted]";
/// Shorter forms are not redacted: they could be common words of the text.
const MIN_FORM_CHARS: usize = 8;

/// Every form in which a request carried its secrets (the client secret, the user's
/// assertion or subject token, an ID-JAG, a client assertion), to take out of whatever
/// the server answers: an IdP that echoes its input would otherwise hand them to the
/// error's message and fields. Entra secrets hold `~`, and base64 values `+ / =`, so the
/// form-encoded value differs from the raw one; `client_secret_basic` sends neither, only
/// the base64 of both parts.
#[derive(Default)]
pub struct Sensitive {
    forms: Vec<String>,
}

impl Sensitive {
    /// A value sent as a form field: raw (as a server that decodes the form echoes it),
    /// form-encoded as sent (`application/x-www-form-urlencoded`, space as `+`), and
    /// percent-encoded with `%20` for a space.
    pub fn value(&mut self, value: &str) {
        let encoded: String = byte_serialize(value.as_bytes()).collect();
        let spaced = encoded.replace('+', "%20");
        self.add([value.to_owned(), encoded, spaced]);
    }

    /// A `client_secret_basic` credential: the base64 of `id:secret` with both parts
    /// form-urlencoded first, as RFC 6749 §2.3.1 requires and this package sends, and of
    /// the raw parts, as many clients send; and the secret itself in every form.
    pub fn basic(&mut self, id: &str, secret: &str) {
        let encode = |part: &str| byte_serialize(part.as_bytes()).collect::<String>();
        let sent = BASE64_STANDARD.encode(format!("{}:{}", encode(id), encode(secret)));
        let raw = BASE64_STANDARD.encode(format!("{id}:{secret}"));
        self.add([sent, raw]);
        self.value(secret);
    }

    fn add(&mut self, forms: impl IntoIterator<Item = String>) {
        for form in forms {
            if form.chars().count() >= MIN_FORM_CHARS && !self.forms.contains(&form) {
                self.forms.push(form);
            }
        }
        // Longest first, so that a value inside a longer one cannot leave a piece behind.
        self.forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    }

    /// Replaces every form of every value in `text` with `[redacted]`. A value that
    /// overlaps the marker itself (`ted]ted]`, or `redacted`) can show again across it;
    /// then nothing of the text is kept.
    pub fn redact(&self, text: &mut String) {
        for form in &self.forms {
            if text.contains(form.as_str()) {
                *text = text.replace(form.as_str(), REDACTED);
            }
        }
        if self.forms.iter().any(|form| text.contains(form.as_str())) {
            text.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redacted(sensitive: &Sensitive, text: &str) -> String {
        let mut text = text.to_owned();
        sensitive.redact(&mut text);
        text
    }

    #[test]
    fn a_value_is_redacted_raw_form_encoded_and_percent_encoded() {
        let mut sensitive = Sensitive::default();
        sensitive.value("Hz8Q~a b+c");
        assert_eq!(
            redacted(
                &sensitive,
                "raw Hz8Q~a b+c, form Hz8Q%7Ea+b%2Bc, uri Hz8Q%7Ea%20b%2Bc."
            ),
            "raw [redacted], form [redacted], uri [redacted]."
        );
    }

    #[test]
    fn a_basic_credential_is_redacted_with_encoded_and_raw_parts() {
        let mut sensitive = Sensitive::default();
        sensitive.basic("id:1", "s~cret+x");
        let sent = BASE64_STANDARD.encode("id%3A1:s%7Ecret%2Bx");
        let raw = BASE64_STANDARD.encode("id:1:s~cret+x");
        let text = format!("Basic {sent}; Basic {raw}; s~cret+x; s%7Ecret%2Bx");
        assert_eq!(
            redacted(&sensitive, &text),
            "Basic [redacted]; Basic [redacted]; [redacted]; [redacted]"
        );
    }

    #[test]
    fn short_forms_are_kept_and_a_longer_value_goes_first() {
        let mut sensitive = Sensitive::default();
        sensitive.value("1234567");
        sensitive.value("abcdefgh");
        sensitive.value("abcdefghij");
        assert_eq!(
            redacted(&sensitive, "1234567 abcdefghij abcdefgh"),
            "1234567 [redacted] [redacted]"
        );
    }

    #[test]
    fn a_secret_that_overlaps_the_marker_does_not_reappear_across_it() {
        let mut sensitive = Sensitive::default();
        sensitive.value("ted]ted]");
        let text = redacted(&sensitive, "said ted]ted]ted] and redacted");
        assert!(!text.contains("ted]ted]"), "{text}");
        sensitive.value("redacted");
        assert!(!redacted(&sensitive, "x redacted y").contains("redacted"));
    }

    /// Every form in which `basic(id, secret)` is sent or echoed, worked out here
    /// independently of `Sensitive`.
    fn sent_forms(id: &str, secret: &str) -> Vec<String> {
        let form = |part: &str| byte_serialize(part.as_bytes()).collect::<String>();
        vec![
            secret.to_owned(),
            form(secret),
            form(secret).replace('+', "%20"),
            BASE64_STANDARD.encode(format!("{}:{}", form(id), form(secret))),
            BASE64_STANDARD.encode(format!("{id}:{secret}")),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Whichever form of the secret a server echoes, and whatever surrounds it, the
        /// redacted text holds none of them.
        #[test]
        fn a_redacted_message_never_contains_the_secret(
            id in "[a-z0-9-]{1,12}",
            secret in "[a-zA-Z0-9~+/= %\\[\\]._-]{8,24}",
            before in ".{0,16}",
            after in ".{0,16}",
            which in 0usize..5,
        ) {
            let mut sensitive = Sensitive::default();
            sensitive.basic(&id, &secret);
            let forms = sent_forms(&id, &secret);
            let text = redacted(&sensitive, &format!("{before}{}{after}", forms[which]));
            for form in &forms {
                proptest::prop_assert!(!text.contains(form.as_str()), "{form} in {text}");
            }
        }
    }
}
