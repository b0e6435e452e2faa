//! The service options as the wrapper passes them (already type-checked): the values
//! are deserialized with serde straight into `config::Options`, whose declarations name
//! them (nothing is copied field by field here), and the wrapper's functions are taken
//! out as `Hooks`. The declarations go to JavaScript too (`optionDeclarations`), which
//! derives its type checks, `fromEnv`'s variables and `index.d.ts`'s option interfaces
//! from them. The enum-like options stay strings so that a wrong value gets the
//! message naming the option (`options.grantType must be …`), not a generic one.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use super::events::NativeEventFn;
use super::outcome::NativeSettleFn;
use crate::broker::{Level, Logger};
use crate::config::{declarations, Declaration, Kind, Options};

/// A log level as the JS logger receives it (LibreChat's logger method names).
#[napi(string_enum = "lowercase")]
pub enum NativeLogLevel {
    Debug,
    Warn,
    Error,
}

impl From<Level> for NativeLogLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::Debug => Self::Debug,
            Level::Warn => Self::Warn,
            Level::Error => Self::Error,
        }
    }
}

/// A JS logger called as `(level, message)`; weak, so it never keeps Node alive.
pub type NativeLogFn = ThreadsafeFunction<
    FnArgs<(NativeLogLevel, String)>,
    (),
    FnArgs<(NativeLogLevel, String)>,
    Status,
    false,
    true,
>;

/// The wrapper's functions among the options.
pub struct Hooks {
    pub logger: Option<Logger>,
    pub events: Option<NativeEventFn>,
    pub settle: NativeSettleFn,
}

/// The options object as the wrapper passes it: the values (`NativeServiceValues`'s
/// fields are `config::Options`'s, see `index.d.ts`) and the hooks below.
pub type NativeServiceOptions<'env> = Object<'env>;

/// Splits the wrapper's options into the core's values and the wrapper's functions.
pub fn into_parts(env: &Env, options: NativeServiceOptions) -> Result<(Options, Hooks)> {
    let values: Options = env.from_js_value(options)?;
    let logger = options
        .get::<Option<NativeLogFn>>("logger")?
        .flatten()
        .map(|tsfn| {
            let tsfn = Arc::new(tsfn);
            Arc::new(move |level: Level, message: String| {
                tsfn.call(
                    (NativeLogLevel::from(level), message).into(),
                    ThreadsafeFunctionCallMode::NonBlocking,
                );
            }) as Logger
        });
    let settle = options
        .get::<NativeSettleFn>("settle")?
        .ok_or_else(|| Error::new(Status::InvalidArg, "options.settle is required"))?;
    let hooks = Hooks {
        logger,
        events: options.get::<Option<NativeEventFn>>("events")?.flatten(),
        settle,
    };
    Ok((values, hooks))
}

/// One option as the wrapper reads it (see `config::Declaration`).
#[napi(object, object_from_js = false)]
pub struct NativeDeclaration {
    /// The property (`opTimeoutMs`).
    pub key: String,
    /// As messages name it after `options.` (`sharedCache.opTimeoutMs`).
    pub path: String,
    #[napi(ts_type = "'text' | 'integer' | 'flag' | 'texts' | 'fraction' | 'block' | 'logger'")]
    pub kind: String,
    /// The TypeScript type in `index.d.ts`.
    pub ts_type: String,
    /// The doc comment's lines.
    pub doc: Vec<String>,
    pub required: bool,
    /// The variables `fromEnv` reads, the last one set winning.
    pub env: Vec<String>,
    /// The variable names a file whose text is the value.
    pub file: bool,
    /// An integer's default (when it has a fixed one).
    pub default: Option<f64>,
    /// A block's options.
    pub fields: Option<Vec<NativeDeclaration>>,
}

impl From<&Declaration> for NativeDeclaration {
    fn from(d: &Declaration) -> Self {
        let (kind, ts_type, default, fields) = match d.kind {
            Kind::Text => ("text", "string", None, None),
            Kind::Integer { default, .. } => {
                ("integer", "number", default.map(|value| value as f64), None)
            }
            Kind::Flag => ("flag", "boolean", None, None),
            Kind::Texts => ("texts", "string[]", None, None),
            Kind::Fraction => ("fraction", "number | boolean", None, None),
            Kind::Block(fields) => (
                "block",
                "object",
                None,
                Some(fields().into_iter().map(Self::from).collect()),
            ),
            Kind::Logger => ("logger", "Function", None, None),
        };
        Self {
            key: d.key.to_owned(),
            path: d.path.to_owned(),
            kind: kind.to_owned(),
            ts_type: d.ts_type.unwrap_or(ts_type).to_owned(),
            doc: d.doc.iter().map(|line| (*line).to_owned()).collect(),
            required: d.required,
            env: d
                .env
                .iter()
                .map(|variable| (*variable).to_owned())
                .collect(),
            file: d.file,
            default,
            fields,
        }
    }
}

/// The service's option declarations, in the order written: the wrapper's type checks,
/// `fromEnv`'s variables and the check of `index.d.ts` read them.
#[napi]
pub fn option_declarations() -> Vec<NativeDeclaration> {
    declarations().into_iter().map(Into::into).collect()
}
