//! An option's declaration: the one place that says what an option is called, what
//! JavaScript hands over for it, its default and range, whether it is a secret, which
//! environment variables set it, and its documentation.
//!
//! Why a `macro_rules!` table (`declare_options!`) and not serde attributes alone or
//! generated code: serde can carry the name and the default of a field, but not its
//! range, its redaction or its variable, and generated code would need a second
//! language to read. The macro writes, from one line per option, the struct of the
//! values as given (deserialized with serde straight from the JavaScript object, so the
//! binding copies nothing), its redacted `Debug`, and a static of `Declaration`s by
//! field, which validation reads (`OPTIONS.max_retries.integer(..)`) and which the
//! binding hands to JavaScript: the wrapper's type checks, `fromEnv`'s variables and
//! `index.d.ts`'s option interfaces are derived from it there.

use std::ops::RangeInclusive;

use url::Url;

use crate::ground::error::ConfigError;

/// The TypeScript type of a `clientAuthMethod` (the service's and `authorizationServer`'s).
pub const CLIENT_AUTH_METHODS: &str =
    "'client_secret_post' | 'client_secret_basic' | 'private_key_jwt'";
/// The TypeScript type of a `clientAssertionAlg`.
pub const ASSERTION_ALGS: &str =
    "'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384'";

/// What JavaScript hands over for an option: how the wrapper type-checks it, how
/// `fromEnv` reads a variable's text for it, and its TypeScript type unless the
/// declaration names one.
#[derive(Clone, Copy)]
pub enum Kind {
    /// A string.
    Text,
    /// A whole number in `min..=max`; `default` unless it depends on other options.
    Integer {
        default: Option<u64>,
        min: u64,
        max: u64,
    },
    /// A boolean.
    Flag,
    /// An array of strings (a variable's text is split at commas and spaces).
    Texts,
    /// A number or a boolean (`refreshAhead`).
    Fraction,
    /// An object of options declared in their own table.
    Block(fn() -> Vec<&'static Declaration>),
    /// A function or LibreChat's logger object, which the wrapper keeps.
    Logger,
}

/// One option, as `declare_options!` fills it in.
#[derive(Clone, Copy)]
pub struct Declaration {
    /// The name messages print after `options.` (`sharedCache.opTimeoutMs`).
    pub path: &'static str,
    /// The property of its object (`opTimeoutMs`).
    pub key: &'static str,
    pub kind: Kind,
    /// The TypeScript type in `index.d.ts`, when the kind's is not precise enough.
    pub ts_type: Option<&'static str>,
    /// The doc comment, one line per entry, for Rust and for `index.d.ts`.
    pub doc: &'static [&'static str],
    /// Not optional in `index.d.ts`; `fromEnv` requires the variable of a top-level one.
    pub required: bool,
    /// Printed as `[redacted]` by `Debug`.
    pub secret: bool,
    /// The variables `fromEnv` reads, the last one set winning.
    pub env: &'static [&'static str],
    /// The variable names a file whose text is the value (a PEM).
    pub file: bool,
}

const fn kind(kind: Kind) -> Declaration {
    Declaration {
        path: "",
        key: "",
        kind,
        ts_type: None,
        doc: &[],
        required: false,
        secret: false,
        env: &[],
        file: false,
    }
}

/// A string option.
pub const fn text() -> Declaration {
    kind(Kind::Text)
}

/// A whole number in `range`, `default` when unset.
pub const fn integer(default: u64, range: RangeInclusive<u64>) -> Declaration {
    kind(Kind::Integer {
        default: Some(default),
        min: *range.start(),
        max: *range.end(),
    })
}

/// A whole number in `range` whose default depends on other options (see `integer_or`).
pub const fn integer_in(range: RangeInclusive<u64>) -> Declaration {
    kind(Kind::Integer {
        default: None,
        min: *range.start(),
        max: *range.end(),
    })
}

/// A boolean option.
pub const fn flag() -> Declaration {
    kind(Kind::Flag)
}

/// An array of strings.
pub const fn texts() -> Declaration {
    kind(Kind::Texts)
}

/// A number or a boolean.
pub const fn fraction() -> Declaration {
    kind(Kind::Fraction)
}

/// An object of options; `fields` lists its table's declarations.
pub const fn block(fields: fn() -> Vec<&'static Declaration>) -> Declaration {
    kind(Kind::Block(fields))
}

/// The logger, which the wrapper keeps to itself.
pub const fn logger() -> Declaration {
    kind(Kind::Logger)
}

impl Declaration {
    /// Must be given (see `required`).
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Never printed.
    pub const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// Set by these variables, the last one set winning.
    pub const fn env(mut self, variables: &'static [&'static str]) -> Self {
        self.env = variables;
        self
    }

    /// The variable names a file whose text is the value.
    pub const fn file(mut self) -> Self {
        self.file = true;
        self
    }

    /// Its TypeScript type.
    pub const fn ts(mut self, ts_type: &'static str) -> Self {
        self.ts_type = Some(ts_type);
        self
    }

    /// Named and documented (by `declare_options!`).
    pub const fn named(
        mut self,
        path: &'static str,
        key: &'static str,
        doc: &'static [&'static str],
    ) -> Self {
        self.path = path;
        self.key = key;
        self.doc = doc;
        self
    }

    /// An error naming this option.
    pub fn error(&self, problem: impl Into<String>) -> ConfigError {
        ConfigError::new(self.path, problem)
    }

    /// The value trimmed, or `is required` when it is missing or blank.
    pub fn required_text(&self, value: Option<String>) -> Result<String, ConfigError> {
        match value {
            Some(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
            _ => Err(self.error("is required")),
        }
    }

    /// An absolute http(s) URL.
    pub fn http_url(&self, value: String) -> Result<Url, ConfigError> {
        let url = Url::parse(value.trim())
            .map_err(|e| self.error(format!("must be an absolute URL ({e})")))?;
        match url.scheme() {
            "http" | "https" => Ok(url),
            other => Err(self.error(format!("must be an http(s) URL, not {other}:"))),
        }
    }

    /// A whole number in the declared range; the declared default when unset.
    pub fn integer(&self, value: Option<f64>) -> Result<u64, ConfigError> {
        let Kind::Integer { default, .. } = self.kind else {
            panic!("options.{} is not declared an integer", self.path)
        };
        let default = default.expect("an integer without a declared default uses integer_or");
        self.integer_or(value, default)
    }

    /// A whole number in the declared range; `default` when unset.
    pub fn integer_or(&self, value: Option<f64>, default: u64) -> Result<u64, ConfigError> {
        let Kind::Integer { min, max, .. } = self.kind else {
            panic!("options.{} is not declared an integer", self.path)
        };
        let Some(value) = value else {
            return Ok(default);
        };
        let problem = || {
            self.error(format!(
                "must be an integer from {min} to {max}, got {value}"
            ))
        };
        if !value.is_finite() || value.fract() != 0.0 || value < 0.0 {
            return Err(problem());
        }
        let value = value as u64;
        (min..=max)
            .contains(&value)
            .then_some(value)
            .ok_or_else(problem)
    }
}

/// Declares a struct of options as given: each line is a field, its Rust type, the
/// property JavaScript names it by, and its `Declaration`. Writes the struct
/// (serde-deserializable, every field defaulted), a static `$decls` of its
/// declarations by field (with `all()` in the order written), and a `Debug` that
/// prints a secret field as `[redacted]`. `$prefix` is the object's path with a
/// trailing dot (`"sharedCache."`), empty at the top.
macro_rules! declare_options {
    (
        $(#[doc = $struct_doc:literal])*
        pub struct $name:ident, declared in $decls:ident: $decls_type:ident, under $prefix:literal {
            $(
                $(#[doc = $doc:literal])*
                $field:ident: $ty:ty as $key:literal = $declaration:expr,
            )*
        }
    ) => {
        $(#[doc = $struct_doc])*
        #[derive(Default, Clone, serde::Deserialize)]
        #[serde(default)]
        pub struct $name {
            $(
                $(#[doc = $doc])*
                #[serde(rename = $key)]
                pub $field: $ty,
            )*
        }

        #[doc = concat!("The declarations of [`", stringify!($name), "`]'s fields.")]
        pub struct $decls_type {
            $(pub $field: $crate::config::declaration::Declaration,)*
        }

        #[doc = concat!("The declarations of [`", stringify!($name), "`]'s fields.")]
        pub static $decls: $decls_type = $decls_type {
            $($field: $declaration.named(concat!($prefix, $key), $key, &[$($doc),*]),)*
        };

        impl $decls_type {
            /// Every declaration, in the order written.
            pub fn all(&'static self) -> Vec<&'static $crate::config::declaration::Declaration> {
                vec![$(&self.$field),*]
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut out = f.debug_struct(stringify!($name));
                $(
                    if $decls.$field.secret {
                        out.field(stringify!($field), &"[redacted]");
                    } else {
                        out.field(stringify!($field), &self.$field);
                    }
                )*
                out.finish()
            }
        }
    };
}

pub(crate) use declare_options;

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDED: Declaration = integer(30, 1..=10).named("sample.bounded", "bounded", &[]);

    #[test]
    fn an_integer_is_whole_in_range_and_defaults() {
        assert_eq!(BOUNDED.integer(None), Ok(30));
        assert_eq!(BOUNDED.integer_or(None, 4), Ok(4));
        assert_eq!(BOUNDED.integer(Some(1.0)), Ok(1));
        assert_eq!(BOUNDED.integer(Some(10.0)), Ok(10));
        for bad in [0.0, 11.0, 2.5, -1.0, f64::NAN, f64::INFINITY] {
            let err = BOUNDED.integer(Some(bad)).unwrap_err();
            assert_eq!(err.option, "sample.bounded");
            assert_eq!(
                err.problem,
                format!("must be an integer from 1 to 10, got {bad}")
            );
        }
    }

    #[test]
    fn zero_is_a_whole_number_and_a_negative_one_is_not() {
        let from_zero = integer(1, 0..=5).named("sample.fromZero", "fromZero", &[]);
        assert_eq!(from_zero.integer(Some(0.0)), Ok(0));
        for bad in [-1.0, -0.5] {
            let err = from_zero.integer(Some(bad)).unwrap_err();
            assert_eq!(
                err.problem,
                format!("must be an integer from 0 to 5, got {bad}")
            );
        }
    }

    #[test]
    fn a_required_text_is_trimmed_and_a_blank_one_is_missing() {
        let name = text().named("name", "name", &[]);
        assert_eq!(name.required_text(Some(" a ".into())), Ok("a".into()));
        for missing in [None, Some("  ".into())] {
            assert_eq!(
                name.required_text(missing).unwrap_err().to_string(),
                "options.name is required"
            );
        }
    }

    #[test]
    fn a_url_is_absolute_and_http() {
        let url = text().named("url", "url", &[]);
        assert_eq!(
            url.http_url(" https://a.example/x ".into())
                .unwrap()
                .as_str(),
            "https://a.example/x"
        );
        assert!(url.http_url("http://a".into()).is_ok());
        let err = url.http_url("ftp://a".into()).unwrap_err().to_string();
        assert_eq!(err, "options.url must be an http(s) URL, not ftp:");
        let err = url.http_url("relative".into()).unwrap_err().to_string();
        assert!(
            err.starts_with("options.url must be an absolute URL ("),
            "{err}"
        );
    }

    #[test]
    fn builders_set_what_they_say() {
        let d = text().required().secret().file().env(&["A", "B"]).ts("'x'");
        assert!(d.required && d.secret && d.file);
        assert_eq!(d.env, ["A", "B"]);
        assert_eq!(d.ts_type, Some("'x'"));
        let plain = text();
        assert!(!plain.required && !plain.secret && !plain.file && plain.env.is_empty());
    }
}
