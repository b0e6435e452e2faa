//! `Debug` for types that hold a token, an assertion or a secret: the sensitive fields
//! print as `[redacted]`, so a stray `{:?}` (a log line, a panic message, a failed
//! assertion in a test) can never reveal them.

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

#[cfg(test)]
mod tests {
    use crate::cache::OboToken;
    use crate::config::Options;

    #[test]
    fn hidden_fields_never_print() {
        let options = Options {
            client_id: Some("client".into()),
            client_secret: Some("s3cret-value".into()),
            ..Options::default()
        };
        let text = format!("{options:?}");
        assert!(
            text.contains(r#"client_id: Some("client")"#)
                && text.contains(r#"client_secret: "[redacted]""#)
        );
        assert!(!text.contains("s3cret-value"));
        let token = OboToken {
            id: 1,
            access_token: "eyJ-the-token".into(),
            expires_in: 1,
            expires_at: 2,
            scope: "s".into(),
            issued_token_type: None,
        };
        assert!(!format!("{token:?}").contains("eyJ-the-token"));
    }
}
