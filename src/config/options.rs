//! The service's options, declared once (see `declaration`): each line below is the
//! source of an option's name, type, default and range, redaction, variables and the
//! documentation `index.d.ts` carries. Adding an option is a line here, its use, and
//! its test.

use serde::Deserialize;

use super::declaration::{
    block, declare_options, fraction, integer, logger, text, texts, Declaration, ASSERTION_ALGS,
    CLIENT_AUTH_METHODS,
};
use super::id_jag::{AuthorizationServerOptions, AUTHORIZATION_SERVER};
use super::shared::{SharedCacheOptions, SHARED_CACHE};

declare_options! {
    /// Options as given, before validation. Numbers are `f64` because that is what
    /// JavaScript hands over; ranges and integrality are checked by `Config::from_options`.
    pub struct Options, declared in OPTIONS: OptionDeclarations, under "" {
        /// OpenID issuer; discovery reads `${issuer}/.well-known/openid-configuration` on first use.
        issuer: Option<String> as "issuer" = text().required().env(&["OPENID_ISSUER"]),
        /// The middle tier's (LibreChat's) client id.
        client_id: Option<String> as "clientId" = text().required().env(&["OPENID_CLIENT_ID"]),
        client_secret: Option<String> as "clientSecret" = text().secret().env(&["OPENID_CLIENT_SECRET"]),
        /// Default `client_secret_post`, as LibreChat (openid-client) sends.
        client_auth_method: Option<String> as "clientAuthMethod" = text()
            .ts(CLIENT_AUTH_METHODS)
            .env(&["OPENID_TOKEN_ENDPOINT_AUTH_METHOD", "LIBRECHAT_OBO_CLIENT_AUTH_METHOD"]),
        /// `private_key_jwt`: the client's private key, PEM (PKCS#8 RSA or EC P-256/P-384, or
        /// PKCS#1 RSA). A fresh client assertion (new `jti`, 5 minutes) is signed per request.
        client_assertion_key: Option<String> as "clientAssertionKey" = text()
            .secret()
            .file()
            .env(&["LIBRECHAT_OBO_CLIENT_ASSERTION_KEY_FILE"]),
        /// `private_key_jwt`: the `kid` the IdP knows the key by.
        client_assertion_key_id: Option<String> as "clientAssertionKeyId" = text()
            .env(&["LIBRECHAT_OBO_CLIENT_ASSERTION_KEY_ID"]),
        /// `private_key_jwt`: the key's PEM certificate; adds `x5t#S256` and `x5t` (Entra certificate credentials).
        client_assertion_certificate: Option<String> as "clientAssertionCertificate" = text()
            .file()
            .env(&["LIBRECHAT_OBO_CLIENT_ASSERTION_CERTIFICATE_FILE"]),
        /// `private_key_jwt`: RS256 for RSA keys and ES256/ES384 by curve unless set (RS*, PS*, ES256, ES384).
        client_assertion_alg: Option<String> as "clientAssertionAlg" = text()
            .ts(ASSERTION_ALGS)
            .env(&["LIBRECHAT_OBO_CLIENT_ASSERTION_ALG"]),
        /// `private_key_jwt`: the assertion's `aud`, the token endpoint (default, Entra) or the issuer.
        client_assertion_audience: Option<String> as "clientAssertionAudience" = text()
            .ts("'token_endpoint' | 'issuer'")
            .env(&["LIBRECHAT_OBO_CLIENT_ASSERTION_AUDIENCE"]),
        /// Unset: Entra's On-Behalf-Of grant, as LibreChat sends it. `jwt_bearer` (On-Behalf-Of) / `token_exchange`
        /// (RFC 8693): that grant, refused before any request if the IdP's discovery document lists
        /// `grant_types_supported` without it. `auto`: token exchange if `grant_types_supported` lists
        /// it, else On-Behalf-Of (also when the document lists no grant types); never refused.
        /// `id_jag`: the MCP spec's Enterprise-Managed Authorization (Cross App Access): the user's ID
        /// token (or refresh token) is exchanged at this IdP for an ID-JAG addressed to the MCP server's
        /// own authorization server (found from the call's `resource` through RFC 9728 and RFC 8414
        /// metadata, which must advertise the ID-JAG grant profile), which trades it for the access
        /// token; needs `authorizationServer`, and `profile: 'id-jag'` in the `obo` block.
        grant_type: Option<String> as "grantType" = text()
            .ts("'jwt_bearer' | 'token_exchange' | 'auto' | 'id_jag'")
            .env(&["LIBRECHAT_OBO_GRANT_TYPE"]),
        /// `grantType: 'id_jag'`: this client's registration at the MCP server's authorization server.
        authorization_server: Option<AuthorizationServerOptions> as "authorizationServer" =
            block(|| AUTHORIZATION_SERVER.all()).ts("OboAuthorizationServerOptions"),
        /// LibreChat's `mcpSettings.allowedDomains` (`grantType: 'id_jag'`): the URLs an MCP server names
        /// (a 401's `resource_metadata`, the authorization servers its metadata lists, their metadata and
        /// token endpoint) must match one of these patterns: `example.com`, `*.example.com` (the host and
        /// every name under it), optionally with a scheme (`https://…`) and a port (`…:8443`). Unset or
        /// empty: such a URL must not lead to an internal name or a private, loopback, link-local,
        /// shared, multicast or reserved address (checked after DNS, and the connection goes to the
        /// checked address). A refused URL fails with `ERR_URL_NOT_ALLOWED` / `ERR_SSRF_BLOCKED`.
        allowed_domains: Option<Vec<String>> as "allowedDomains" = texts(),
        /// Whether a call's RFC 8707 `resource` (`obo.resource`) is sent. `auto` (default): with token
        /// exchange, not with On-Behalf-Of, since Entra v2 names the resource in the scopes and refuses
        /// `resource` beside them (AADSTS9010010 / AADSTS901002). `send`: always (a jwt-bearer server
        /// that wants it, as the MCP spec asks). `omit`: never (a token exchange server that refuses it).
        resource_indicator: Option<String> as "resourceIndicator" = text()
            .ts("'auto' | 'send' | 'omit'")
            .env(&["LIBRECHAT_OBO_RESOURCE_INDICATOR"]),
        /// RFC 8693 `subject_token_type`, default `urn:ietf:params:oauth:token-type:access_token`; with
        /// `grantType: 'id_jag'`, `urn:ietf:params:oauth:token-type:id_token` (default) or
        /// `urn:ietf:params:oauth:token-type:refresh_token`, which also picks the token `resolveOboToken` sends.
        subject_token_type: Option<String> as "subjectTokenType" = text()
            .env(&["LIBRECHAT_OBO_SUBJECT_TOKEN_TYPE"]),
        /// RFC 8693 `requested_token_type`, not sent unless set.
        requested_token_type: Option<String> as "requestedTokenType" = text()
            .env(&["LIBRECHAT_OBO_REQUESTED_TOKEN_TYPE"]),
        /// Verify the user's token before exchanging it: signature against the issuer's JWKS
        /// (found by discovery; re-fetched for an unknown `kid` at most once a minute), `iss`,
        /// `aud`, `exp`, `nbf`; RS256/RS384/RS512/PS256/ES256/ES384 only. Refusals are
        /// `ERR_ASSERTION_INVALID` and reach no token endpoint.
        validate_assertion: Option<ValidateAssertion> as "validateAssertion" =
            block(|| VALIDATE_ASSERTION.all()).ts("OboValidateAssertionOptions"),
        /// The shared Redis tier, for several instances behind one Redis (LibreChat's `USE_REDIS`):
        /// tokens exchanged by one instance are served by the others, N instances make one IdP
        /// request per cold key, and `invalidate`, `clear` and forced exchanges reach every
        /// instance. `fromEnv` sets it from LibreChat's own variables. Redis failing never fails
        /// an exchange.
        shared_cache: Option<SharedCacheOptions> as "sharedCache" =
            block(|| SHARED_CACHE.all()).ts("OboSharedCacheOptions"),
        /// Skips discovery when given.
        token_endpoint: Option<String> as "tokenEndpoint" = text().env(&["LIBRECHAT_OBO_TOKEN_ENDPOINT"]),
        /// Per request, default 30000.
        request_timeout_ms: Option<f64> as "requestTimeoutMs" = integer(30_000, 1..=600_000)
            .env(&["LIBRECHAT_OBO_REQUEST_TIMEOUT_MS"]),
        /// A cached token is served only while more than this remains, default 30 (LibreChat's).
        expiry_buffer_seconds: Option<f64> as "expiryBufferSeconds" = integer(30, 0..=86_400)
            .env(&["LIBRECHAT_OBO_EXPIRY_BUFFER_SECONDS"]),
        /// Default 100000.
        max_cache_entries: Option<f64> as "maxCacheEntries" = integer(100_000, 1..=100_000_000)
            .env(&["LIBRECHAT_OBO_MAX_CACHE_ENTRIES"]),
        /// Extra tries after a transient failure, default 1 (LibreChat's).
        max_retries: Option<f64> as "maxRetries" = integer(1, 0..=10).env(&["LIBRECHAT_OBO_MAX_RETRIES"]),
        /// Wait before a retry, default 300 (LibreChat's); a longer Retry-After wins, capped at 10 s.
        retry_delay_ms: Option<f64> as "retryDelayMs" = integer(300, 0..=10_000)
            .env(&["LIBRECHAT_OBO_RETRY_DELAY_MS"]),
        /// HTTP(S) proxy URL (LibreChat's `PROXY`); without it, no proxy is used.
        proxy: Option<String> as "proxy" = text().env(&["PROXY"]),
        /// Refresh-ahead: from this share of a token's usable lifetime (lifetime minus
        /// `expiryBufferSeconds`, a few percent of jitter added) on, a hit is answered at once and may
        /// start one background exchange with that caller's user token, which replaces the cached token
        /// when it succeeds: at once for a key with pauses in its traffic, and only when the time left
        /// nears 1.5 × the longest silence between its hits for a steady one (one exchange per
        /// lifetime, not 1 / share). The IdP's `refresh_in` wins when it sends one. Above 0 and below 1; default 0.8;
        /// `false` turns it off (`true` is the default). A failed refresh keeps the cached token until it
        /// expires and never reaches a caller.
        refresh_ahead: Option<RefreshAhead> as "refreshAhead" = fraction()
            .env(&["LIBRECHAT_OBO_REFRESH_AHEAD"]),
    }
}

/// `logger`: declared beside the values for the wrapper, which keeps it (see `declarations`).
pub static LOGGER: Declaration = logger().ts("OboLogger").named(
    "logger",
    "logger",
    &[" Receives debug/warn/error lines; never a token, an assertion or a secret."],
);

/// Every option of the service, for the wrapper: the values' declarations, then the
/// logger, which the wrapper keeps (it reaches Rust as a hook, not as a value).
pub fn declarations() -> Vec<&'static Declaration> {
    let mut all = OPTIONS.all();
    all.push(&LOGGER);
    all
}

/// `refreshAhead` as given: `true`, `false` or a number.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum RefreshAhead {
    Switch(bool),
    Fraction(f64),
}

declare_options! {
    /// `validateAssertion` as given.
    pub struct ValidateAssertion, declared in VALIDATE_ASSERTION: ValidateAssertionDeclarations, under "validateAssertion." {
        /// Accepted `aud` values: the app's client id and/or application ID URI.
        audiences: Vec<String> as "audiences" = texts().required().env(&["LIBRECHAT_OBO_VALIDATE_AUDIENCES"]),
        /// Accepted `iss` values; default the issuer discovery accepted (for Entra's multi-tenant
        /// `{tenantid}` template, the template with the token's own `tid`).
        issuers: Option<Vec<String>> as "issuers" = texts(),
        /// Clock skew allowed on `exp`/`nbf`, 0-300, default 60.
        leeway_seconds: Option<f64> as "leewaySeconds" = integer(60, 0..=300),
    }
}
