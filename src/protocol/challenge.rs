//! A resource server's `WWW-Authenticate` header, read for its Bearer challenge
//! (RFC 6750 §3, in RFC 9110 §11.6.1's syntax): the error, the scopes it asks for
//! (`insufficient_scope` step-up) and RFC 9728's `resource_metadata`.
//!
//! One header may hold several challenges (`Bearer error="…", Basic realm="…"`): the
//! parameters after a scheme belong to it until the next scheme. Scheme and parameter
//! names are case-insensitive; values are tokens or quoted strings with `\` escapes. A
//! header that does not parse yields no challenge rather than a guess.

/// The longest header read: a challenge is a few hundred bytes; more is refused.
const MAX_HEADER: usize = 8 * 1024;

/// The Bearer challenge's parameters that this package acts on.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BearerChallenge {
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// `scope`, split on spaces (RFC 6749 §3.3).
    pub scopes: Vec<String>,
    pub resource_metadata: Option<String>,
}

/// The Bearer challenge of a `WWW-Authenticate` value, if it has one and it parses.
pub fn bearer_challenge(header: &str) -> Option<BearerChallenge> {
    if header.len() > MAX_HEADER {
        return None;
    }
    let mut parser = Parser {
        rest: header.as_bytes(),
    };
    let mut challenge: Option<BearerChallenge> = None;
    let mut in_bearer = false;
    // Each round reads at least one byte or ends the parse: a bound, not a limit.
    for _ in 0..=header.len() {
        parser.skip(|b| b == b' ' || b == b'\t' || b == b',');
        if parser.rest.is_empty() {
            return challenge;
        }
        let name = parser.token()?;
        parser.skip(|b| b == b' ' || b == b'\t');
        if parser.eat(b'=') {
            parser.skip(|b| b == b' ' || b == b'\t');
            let value = match parser.value() {
                Err(Unterminated) => return None,
                Ok(Some(value)) => value,
                Ok(None) => {
                    // Another scheme's token68 (`Negotiate abc==`): its padding, then on.
                    parser.skip(|b| b == b'=');
                    if parser.rest.first().is_some_and(|b| *b != b',') {
                        return None;
                    }
                    continue;
                }
            };
            if in_bearer {
                let bearer = challenge.get_or_insert_with(BearerChallenge::default);
                bearer.set(&name.to_ascii_lowercase(), value)?;
            }
            // A parameter ends at a comma or the end of the header.
            parser.skip(|b| b == b' ' || b == b'\t');
            if parser.rest.first().is_some_and(|b| *b != b',') {
                return None;
            }
        } else {
            // A new scheme: only one Bearer challenge is read.
            in_bearer = name.eq_ignore_ascii_case("bearer") && challenge.is_none();
            if in_bearer {
                challenge = Some(BearerChallenge::default());
            }
        }
    }
    None
}

impl BearerChallenge {
    /// Sets one parameter; a repeated one (RFC 6750: each at most once) spoils the challenge.
    fn set(&mut self, name: &str, value: String) -> Option<()> {
        let slot = match name {
            "error" => &mut self.error,
            "error_description" => &mut self.error_description,
            "resource_metadata" => &mut self.resource_metadata,
            "scope" => {
                if !self.scopes.is_empty() {
                    return None;
                }
                self.scopes = value
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                return Some(());
            }
            _ => return Some(()),
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(value);
        Some(())
    }
}

struct Parser<'a> {
    rest: &'a [u8],
}

impl Parser<'_> {
    fn skip(&mut self, what: impl Fn(u8) -> bool) {
        let n = self.rest.iter().take_while(|b| what(**b)).count();
        self.rest = &self.rest[n..];
    }

    fn eat(&mut self, byte: u8) -> bool {
        let hit = self.rest.first() == Some(&byte);
        if hit {
            self.rest = &self.rest[1..];
        }
        hit
    }

    /// An RFC 9110 token (tchar+), or `None` when there is none here.
    fn token(&mut self) -> Option<String> {
        let n = self.rest.iter().take_while(|b| is_tchar(**b)).count();
        if n == 0 {
            return None;
        }
        let token = String::from_utf8_lossy(&self.rest[..n]).into_owned();
        self.rest = &self.rest[n..];
        Some(token)
    }

    /// A parameter value: a quoted string (with `\` escapes) or a token (`None` when
    /// there is no token here).
    fn value(&mut self) -> Result<Option<String>, Unterminated> {
        if !self.eat(b'"') {
            return Ok(self.token());
        }
        let mut value = Vec::new();
        while let Some((&byte, rest)) = self.rest.split_first() {
            self.rest = rest;
            match byte {
                b'"' => return String::from_utf8(value).map(Some).map_err(|_| Unterminated),
                b'\\' => {
                    let (&escaped, rest) = self.rest.split_first().ok_or(Unterminated)?;
                    self.rest = rest;
                    value.push(escaped);
                }
                _ => value.push(byte),
            }
        }
        Err(Unterminated)
    }
}

/// A quoted string that does not end (or is not UTF-8): the header is not read at all.
struct Unterminated;

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&byte)
}

#[cfg(test)]
mod tests {
    use proptest::strategy::Strategy;

    use super::*;

    fn scopes(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn an_insufficient_scope_challenge_names_its_scopes_and_metadata() {
        let header = r#"Bearer error="insufficient_scope", scope="files.read  files.write", resource_metadata="https://mcp.example/.well-known/oauth-protected-resource", error_description="needs \"write\"""#;
        assert_eq!(
            bearer_challenge(header),
            Some(BearerChallenge {
                error: Some("insufficient_scope".into()),
                error_description: Some(r#"needs "write""#.into()),
                scopes: scopes(&["files.read", "files.write"]),
                resource_metadata: Some(
                    "https://mcp.example/.well-known/oauth-protected-resource".into()
                ),
            })
        );
    }

    #[test]
    fn the_bearer_challenge_is_found_among_others_and_names_are_case_insensitive() {
        let header = r#"Basic realm="x", error="not-bearer", BEARER Error=invalid_token, Scope="a", DPoP algs="ES256""#;
        let challenge = bearer_challenge(header).unwrap();
        assert_eq!(challenge.error.as_deref(), Some("invalid_token"));
        assert_eq!(challenge.scopes, scopes(&["a"]));
        assert_eq!(bearer_challenge("Bearer"), Some(BearerChallenge::default()));
    }

    #[test]
    fn no_bearer_challenge_or_a_broken_one_is_none() {
        assert_eq!(bearer_challenge(r#"Basic realm="x""#), None);
        assert_eq!(bearer_challenge(""), None);
        assert_eq!(bearer_challenge(r#"Bearer scope="unterminated"#), None);
        assert_eq!(
            bearer_challenge(r#"Bearer scope="a", scope="b""#),
            None,
            "repeated"
        );
        assert_eq!(
            bearer_challenge(r#"Bearer error="a", error="b""#),
            None,
            "repeated"
        );
        assert_eq!(bearer_challenge("Bearer =x"), None);
        assert_eq!(
            bearer_challenge(&format!("Bearer scope=\"{}\"", "a".repeat(MAX_HEADER))),
            None
        );
        assert_eq!(
            bearer_challenge("Bearer error=\"\\"),
            None,
            "an escape at the end"
        );
        assert_eq!(
            bearer_challenge("Bearer realm=a b"),
            None,
            "a stray token after a value"
        );
    }

    #[test]
    fn whitespace_around_equals_signs_and_commas_is_allowed() {
        let header = "Bearer error =\t\"insufficient_scope\" ,\tscope= a";
        let challenge = bearer_challenge(header).unwrap();
        assert_eq!(challenge.error.as_deref(), Some("insufficient_scope"));
        assert_eq!(challenge.scopes, scopes(&["a"]));
    }

    #[test]
    fn a_header_of_up_to_8_kib_is_read() {
        let sized = |len: usize| {
            let head = "Bearer scope=\"";
            format!("{head}{}\"", "a".repeat(len - head.len() - 1))
        };
        assert_eq!(sized(MAX_HEADER).len(), 8192);
        assert_eq!(
            bearer_challenge(&sized(MAX_HEADER)).unwrap().scopes.len(),
            1
        );
        assert_eq!(bearer_challenge(&sized(MAX_HEADER + 1)), None);
    }

    #[test]
    fn another_schemes_token68_is_stepped_over() {
        let header = r#"Negotiate YII==, Bearer error="insufficient_scope", scope="a""#;
        let challenge = bearer_challenge(header).unwrap();
        assert_eq!(challenge.error.as_deref(), Some("insufficient_scope"));
    }

    #[test]
    fn only_the_first_bearer_challenge_counts() {
        let header = r#"Bearer error="insufficient_scope", scope="a", Bearer error="invalid_token", scope="b""#;
        let challenge = bearer_challenge(header).unwrap();
        assert_eq!(
            (challenge.error.as_deref(), challenge.scopes),
            (Some("insufficient_scope"), scopes(&["a"]))
        );
    }

    /// Challenge-shaped text: schemes, parameters, quotes, escapes and separators in any
    /// order, so that the parser's every branch meets every other.
    fn challenge_text() -> impl proptest::strategy::Strategy<Value = String> {
        let piece = proptest::sample::select(vec![
            "Bearer",
            "Basic",
            "error",
            "scope",
            "resource_metadata",
            "realm",
            "=",
            "==",
            "\"",
            "\\",
            ",",
            " ",
            "\t",
            "a",
            "\"a b\"",
            "é",
            "\u{1f}",
        ]);
        proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// No header makes the parse panic, and a challenge it reads holds only scopes.
        #[test]
        fn no_challenge_parse_panics(header in proptest::prop_oneof![challenge_text(), ".{0,200}"]) {
            if let Some(challenge) = bearer_challenge(&header) {
                proptest::prop_assert!(challenge.scopes.iter().all(|s| !s.is_empty() && !s.contains(' ')));
            }
        }
    }
}
