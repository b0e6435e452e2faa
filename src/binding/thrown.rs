//! Errors thrown to JS at once (a refused argument or option) as `Error`s that carry
//! their fields: this package's `code` (never napi's status name), the `argument` or
//! `option` at fault, and a `cause` chain, so that JS reads fields instead of parsing
//! the message. (An exchange's failure crosses by value instead: see `outcome`.)

use napi::bindgen_prelude::*;

use crate::ground::error::{BuildError, RequestError, INVALID_ARG, INVALID_OPTION};

/// How many causes cross to JS at most; a chain is a few links in practice.
pub const MAX_CAUSES: usize = 8;

/// `argument`, refused with `message`.
pub fn invalid_arg(env: &Env, argument: &str, message: impl Into<String>) -> Error {
    thrown(
        env,
        message.into(),
        INVALID_ARG,
        ("argument", argument),
        None,
    )
}

/// A call refused before any exchange, naming its argument.
pub fn refused(env: &Env, error: RequestError) -> Error {
    invalid_arg(env, error.argument(), error.to_string())
}

/// A service that cannot be built: `option` names the option at fault, and the HTTP
/// client's refusal, if that was it, is the `cause`.
pub fn invalid_option(env: &Env, error: &BuildError) -> Error {
    let cause = std::error::Error::source(error);
    let field = ("option", error.option());
    thrown(env, error.to_string(), INVALID_OPTION, field, cause)
}

/// An `Error` with `message`, `code`, `field` and the causes of `cause` (itself
/// included); napi's plain error with the same message when the object cannot be made
/// (the environment is shutting down).
fn thrown(
    env: &Env,
    message: String,
    code: &str,
    field: (&str, &str),
    cause: Option<&(dyn std::error::Error + 'static)>,
) -> Error {
    let made = || -> Result<Error> {
        let mut error = env.create_error(Error::new(Status::InvalidArg, message.clone()))?;
        error.set_named_property("code", code)?;
        error.set_named_property(field.0, field.1)?;
        if let Some(cause) = chain(env, cause, MAX_CAUSES)? {
            error.set_named_property("cause", cause)?;
        }
        Ok(Error::from(error.to_unknown()))
    };
    made().unwrap_or_else(|_| Error::new(Status::InvalidArg, message))
}

/// `error` and its sources as nested JS `Error`s linked by `cause`, at most `limit` deep.
fn chain<'env>(
    env: &'env Env,
    error: Option<&(dyn std::error::Error + 'static)>,
    limit: usize,
) -> Result<Option<Object<'env>>> {
    let Some(error) = error.filter(|_| limit > 0) else {
        return Ok(None);
    };
    let mut object = env.create_error(Error::new(Status::GenericFailure, error.to_string()))?;
    object.delete_named_property("code")?;
    if let Some(cause) = chain(env, error.source(), limit - 1)? {
        object.set_named_property("cause", cause)?;
    }
    Ok(Some(object))
}
