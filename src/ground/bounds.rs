//! Bounds on what is read from outside: how long a URL, a name or a list from a server's
//! document may be, and what a token must look like before the package keeps it or
//! hands it out. A server that sends more is refused with a code at the place it is
//! read, rather than failing later in a way that names nothing (a 100,000-character
//! `token_endpoint` made the HTTP client fail with "builder error").

use std::borrow::Cow;

use crate::ground::clip::clip;
use crate::ground::error::AnswerProblem;

/// The largest token accepted: real tokens are a few KiB at most, and the cache is
/// bounded by entry count, so the size of each entry must be bounded too.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// The longest URL read from a document (endpoints, issuers).
pub const MAX_URL_CHARS: usize = 4096;
/// The longest name read from a document or an answer (a grant type, a token type).
pub const MAX_NAME_CHARS: usize = 512;
/// The most entries read from a list in a document (grant types, authorization servers).
pub const MAX_LIST_ITEMS: usize = 64;
/// The largest JSON document read from a server (discovery, metadata, a JWKS): real
/// ones are a few KiB; reading stops past this.
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// How much of an outside value a message quotes.
pub const MAX_QUOTED_CHARS: usize = 200;

/// RFC 6750 §2.1's `b64token`, which every bearer token must be to go into an
/// `Authorization` header: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
/// JWTs, Entra's opaque tokens and Okta's or Auth0's reference tokens all are. Anything
/// else (a line break that would inject a header, a space, a NUL, non-ASCII) is
/// refused, and so is a token over `MAX_TOKEN_BYTES`. The error says where, never what.
pub fn bearer_token(token: &str) -> Result<(), AnswerProblem> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AnswerProblem::TokenTooLarge {
            bytes: token.len(),
            limit: MAX_TOKEN_BYTES,
        });
    }
    let padding_from = token.trim_end_matches('=').len();
    if padding_from == 0 {
        return Err(AnswerProblem::TokenMalformed {
            at: 0,
            found: "only '=' padding".into(),
        });
    }
    match token
        .bytes()
        .take(padding_from)
        .position(|b| !is_b64token(b))
    {
        Some(at) => Err(AnswerProblem::TokenMalformed {
            at,
            found: describe(token.as_bytes()[at]),
        }),
        None => Ok(()),
    }
}

fn is_b64token(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~+/".contains(&byte)
}

/// A refused byte, named without revealing the token around it.
fn describe(byte: u8) -> String {
    match byte {
        b' ' => "a space".into(),
        b'=' => "'=' before the end".into(),
        b if b.is_ascii_control() => "a control character".into(),
        b if !b.is_ascii() => "a non-ASCII character".into(),
        b => format!("'{}', which b64token does not allow", b as char),
    }
}

/// The longest label of a host name (RFC 1035 §2.3.4, RFC 5890's A-labels alike).
const MAX_LABEL_BYTES: usize = 63;

/// The longest host name (RFC 1035 §2.3.4), with the longest port after it.
const MAX_HOST_BYTES: usize = 253 + ":65535".len();

/// `Url::parse`, except that a host that IDNA would process (an `xn--` label, or non-ASCII
/// characters, percent-encoded or not) is refused first when one of its labels is over 63
/// bytes or the whole host is longer than a host name can be: Punycode takes time quadratic
/// in the label (the fuzzer found a 1,900-character issuer that took 45 ms), and no such
/// host names a real server. The whole-host bound holds however the parser splits labels.
pub fn parse_url(text: &str) -> Result<url::Url, url::ParseError> {
    if slow_for_idna(text) {
        return Err(url::ParseError::IdnaError);
    }
    url::Url::parse(text)
}

/// Whether `text` has a host that IDNA would read and that is too long to be a real one.
fn slow_for_idna(text: &str) -> bool {
    // The parser drops every tab and line break before it reads anything; so does this.
    let read: String = text
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let host = percent_decoded(host_region(&read).as_bytes());
    let too_long = host.len() > MAX_HOST_BYTES && idna_anywhere(&host);
    too_long || host_labels(&read).any(|label| label.len() > MAX_LABEL_BYTES && needs_idna(&label))
}

/// The host of `text` with its port, read as the URL parser reads it: after the scheme and
/// any slashes or backslashes, up to the path, query or fragment; after the userinfo.
fn host_region(text: &str) -> &str {
    let after_scheme = text.split_once(':').map_or("", |(_, rest)| rest);
    let authority = after_scheme.trim_start_matches(['/', '\\']);
    let authority = authority
        .split(['/', '\\', '?', '#'])
        .next()
        .unwrap_or_default();
    authority.rsplit('@').next().unwrap_or_default()
}

/// The labels of the host of `text` (`host_region`): before the port (a colon after a `[`
/// is not one, as the parser reads it); percent-decoded; split at dots only (IDNA takes
/// everything between two dots as one label, brackets and control characters included). A
/// host that starts with `[` is an IPv6 address, which IDNA never sees.
fn host_labels(text: &str) -> impl Iterator<Item = Vec<u8>> + '_ {
    let host = host_region(text);
    let host = if host.starts_with('[') {
        ""
    } else if host.contains('[') {
        host
    } else {
        host.split(':').next().unwrap_or_default()
    };
    percent_decoded(host.as_bytes())
        .split(|b| *b == b'.')
        .map(<[u8]>::to_vec)
        .collect::<Vec<_>>()
        .into_iter()
}

/// Whether IDNA would process some part of `host`: non-ASCII, or an `xn--` anywhere.
fn idna_anywhere(host: &[u8]) -> bool {
    !host.is_ascii() || host.windows(4).any(|w| w.eq_ignore_ascii_case(b"xn--"))
}

fn needs_idna(label: &[u8]) -> bool {
    !label.is_ascii()
        || label
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"xn--"))
}

/// `bytes` percent-decoded by the decoder the URL parser uses on a host, so that a `%`
/// the parser keeps (say `%+1`, which is no escape) counts as the three bytes it stays.
fn percent_decoded(bytes: &[u8]) -> Vec<u8> {
    percent_encoding::percent_decode(bytes).collect()
}

/// A URL of `source` (say, "the discovery document of <issuer>") at most `MAX_URL_CHARS`.
pub fn url(source: &str, field: &'static str, value: &str) -> Result<(), AnswerProblem> {
    length(source, field, value, MAX_URL_CHARS)
}

/// A name of `source` at most `MAX_NAME_CHARS`.
pub fn name(source: &str, field: &'static str, value: &str) -> Result<(), AnswerProblem> {
    length(source, field, value, MAX_NAME_CHARS)
}

/// A list of names (`MAX_NAME_CHARS` each) of at most `MAX_LIST_ITEMS` entries.
pub fn names(source: &str, field: &'static str, values: &[String]) -> Result<(), AnswerProblem> {
    list(source, field, values, MAX_NAME_CHARS)
}

/// A list of URLs (`MAX_URL_CHARS` each) of at most `MAX_LIST_ITEMS` entries.
pub fn urls(source: &str, field: &'static str, values: &[String]) -> Result<(), AnswerProblem> {
    list(source, field, values, MAX_URL_CHARS)
}

fn list(
    source: &str,
    field: &'static str,
    values: &[String],
    limit: usize,
) -> Result<(), AnswerProblem> {
    if values.len() > MAX_LIST_ITEMS {
        return Err(too_long(
            source,
            field,
            values.len(),
            MAX_LIST_ITEMS,
            "entries",
        ));
    }
    values
        .iter()
        .try_for_each(|value| length(source, field, value, limit))
}

fn length(
    source: &str,
    field: &'static str,
    value: &str,
    limit: usize,
) -> Result<(), AnswerProblem> {
    let chars = value.chars().count();
    if chars > limit {
        return Err(too_long(source, field, chars, limit, "characters"));
    }
    Ok(())
}

fn too_long(
    source: &str,
    field: &'static str,
    length: usize,
    limit: usize,
    unit: &'static str,
) -> AnswerProblem {
    AnswerProblem::TooLong {
        source: source.to_owned(),
        field,
        length,
        limit,
        unit,
    }
}

/// An outside value as a message quotes it: its first `MAX_QUOTED_CHARS` characters.
pub fn quoted(value: &str) -> Cow<'_, str> {
    clip(value, MAX_QUOTED_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flaw(token: &str) -> Option<(usize, String)> {
        match bearer_token(token) {
            Err(AnswerProblem::TokenMalformed { at, found }) => Some((at, found)),
            Err(other) => panic!("{other}"),
            Ok(()) => None,
        }
    }

    #[test]
    fn a_bearer_token_is_b64token_and_a_flaw_is_named_by_place_and_kind() {
        assert_eq!(flaw("aZ09-._~+/=="), None);
        assert_eq!(flaw("abc\r\nX"), Some((3, "a control character".into())));
        assert_eq!(flaw("ab\u{7f}"), Some((2, "a control character".into())));
        assert_eq!(flaw("a b"), Some((1, "a space".into())));
        assert_eq!(flaw("aé"), Some((1, "a non-ASCII character".into())));
        assert_eq!(flaw("a=b="), Some((1, "'=' before the end".into())));
        assert_eq!(
            flaw("a,b"),
            Some((1, "',', which b64token does not allow".into()))
        );
        assert_eq!(flaw("="), Some((0, "only '=' padding".into())));
    }

    #[test]
    fn lengths_are_counted_in_characters_up_to_the_bound() {
        let at_bound = "é".repeat(MAX_NAME_CHARS);
        assert_eq!(name("s", "f", &at_bound), Ok(()));
        let past = AnswerProblem::TooLong {
            source: "s".into(),
            field: "f",
            length: MAX_NAME_CHARS + 1,
            limit: MAX_NAME_CHARS,
            unit: "characters",
        };
        assert_eq!(name("s", "f", &format!("{at_bound}é")), Err(past));
        let list = vec!["n".to_owned(); MAX_LIST_ITEMS];
        assert_eq!(urls("s", "f", &list), Ok(()));
        assert_eq!(url("s", "f", &"u".repeat(MAX_URL_CHARS)), Ok(()));
        assert!(url("s", "f", &"u".repeat(MAX_URL_CHARS + 1)).is_err());
    }

    #[test]
    fn a_quote_is_cut_after_200_characters() {
        let long = "q".repeat(MAX_QUOTED_CHARS + 1);
        assert_eq!(quoted(&long), format!("{}…", &long[..MAX_QUOTED_CHARS]));
        assert_eq!(quoted(&long[1..]), &long[1..]);
    }

    /// A host of `len` bytes with its port, that IDNA reads (its first label is `xn--b`),
    /// in labels of at most 60 bytes.
    fn idna_host(len: usize) -> String {
        let body = len - ":65535".len();
        let mut host = String::from("xn--b");
        while host.len() < body {
            host.push('.');
            host.push_str(&"a".repeat((body - host.len()).min(60)));
        }
        assert_eq!(host.len(), body);
        host + ":65535"
    }

    /// The bounds are a host name's own: a 63-byte label and a host of 253 bytes and a port
    /// pass the guard when IDNA reads them; a byte more does not.
    #[test]
    fn the_idna_bounds_are_a_host_name_s_own() {
        let label = |len: usize| format!("https://xn--{}.example/", "a".repeat(len - 4));
        assert!(!slow_for_idna(&label(63)));
        assert!(slow_for_idna(&label(64)));
        assert!(!slow_for_idna(&format!("https://{}/", idna_host(259))));
        assert!(slow_for_idna(&format!("https://{}/", idna_host(260))));
    }

    /// Found by the discovery_document fuzz target: Url::parse spent 45 ms on this
    /// 1,900-character `XN--` host (Punycode is quadratic in the label).
    #[test]
    fn a_long_idna_label_is_refused_before_parsing() {
        let slow = format!(
            "http:XN--revlseAAAAAAAAAphttpVVV-VVeo-{}2eac",
            "seqrvuestA".repeat(185)
        );
        assert_eq!(parse_url(&slow), Err(url::ParseError::IdnaError));
        // CI's fuzzer then found the label cut short by a bracket and control characters,
        // which IDNA keeps in the label (7-18 ms to parse).
        let bracketed = format!(
            "http:XN--revlseAAAAAAAAAphttpVVV-VVeo-\u{0}\u{1}\u{1d}]-be{}",
            "A".repeat(300)
        );
        assert_eq!(parse_url(&bracketed), Err(url::ParseError::IdnaError));
        let labels: Vec<Vec<u8>> = host_labels("http:XN--ab\u{0}]cd.example:443/x").collect();
        assert_eq!(labels, [b"XN--ab\0]cd".to_vec(), b"example".to_vec()]);
        assert!(host_labels("https://[::1]:8443/").all(|label| label.is_empty()));
        // And then a colon after a bracket, which the parser does not take for the port.
        let labels: Vec<Vec<u8>> = host_labels("http:XN--ab[c:XN--de.example").collect();
        assert_eq!(labels, [b"XN--ab[c:XN--de".to_vec(), b"example".to_vec()]);
        let colon = format!("http:XN--re--0revlse[Ahttp:XN--rev{}", "h".repeat(300));
        assert_eq!(parse_url(&colon), Err(url::ParseError::IdnaError));
        // However the labels fall, a host that IDNA reads is never longer than a host name.
        let dotted = format!("https://a{}.xn--bcher-kva.example/", ".bb".repeat(90));
        assert_eq!(parse_url(&dotted), Err(url::ParseError::IdnaError));
        // Tabs and line breaks, which the parser drops, do not hide an xn-- (24 ms when they did).
        let broken = format!("http:XN\r\r--re{}", "J".repeat(300));
        assert!(slow_for_idna(&broken));
        // A `%` that starts no escape (`%+1`: a sign is no hex digit) stays three bytes, as
        // the parser keeps it, so the label is as long as IDNA will find it.
        assert!(slow_for_idna(&format!(
            "https://xn--{}.example/",
            "%+1".repeat(25)
        )));
        let plain = format!("https://a{}.example/", ".bb".repeat(90));
        assert!(parse_url(&plain).is_ok());
        for hidden in [
            format!("https://x.%78n--{}.example/", "a".repeat(60)),
            format!("https:\\\\user@{}.example", "é".repeat(32)),
            format!("https://{}%2Eexample", "xn--".repeat(16)),
        ] {
            assert_eq!(
                parse_url(&hidden),
                Err(url::ParseError::IdnaError),
                "{hidden}"
            );
        }
        for fine in [
            "https://login.microsoftonline.com/common/v2.0".to_owned(),
            format!("https://{}.example/{}", "a".repeat(200), "xn--".repeat(40)),
            format!("https://xn--bcher-kva.example?q={}", "é".repeat(40)),
            "https://[::1]:8443/token".to_owned(),
        ] {
            assert!(parse_url(&fine).is_ok(), "{fine}");
        }
    }
}
