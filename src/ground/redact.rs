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
