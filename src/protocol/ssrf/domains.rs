//! `allowedDomains`: LibreChat's `mcpSettings.allowedDomains` patterns and how a URL
//! matches one, as LibreChat's `parseDomainSpec`, `hostnameMatches` and
//! `isOAuthUrlAllowed` (packages/api/src/auth/domain.ts) read them, so that one list
//! means the same in both.
//!
//! A pattern is a host (`example.com`), a wildcard (`*.example.com`, which matches the
//! host itself and every name under it), or either with a scheme (`https://…`, then the
//! URL's scheme must be that one) and a port (`…:8443`, then the URL must write that
//! port). A leading `www.` is ignored on both sides. Ports are compared as written:
//! LibreChat reads them from the text before the URL parser drops a default port.

use url::Url;

/// The schemes LibreChat recognizes in a pattern (`MCP_PROTOCOLS`).
const SCHEMES: [&str; 4] = ["http://", "https://", "ws://", "wss://"];

/// One parsed pattern, or the parts of a URL compared with patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSpec {
    /// Lowercase host without a leading `www.`; for a wildcard it keeps its `*.`.
    host: String,
    /// `https:` and the like, when written.
    scheme: Option<String>,
    /// The port as written, when written.
    port: Option<String>,
    wildcard: bool,
}

impl DomainSpec {
    /// Reads `text` as LibreChat's `parseDomainSpec` does; `None` where it gives null.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().to_lowercase();
        if SCHEMES.contains(&text.as_str()) {
            return None;
        }
        let has_scheme = SCHEMES.iter().any(|scheme| text.starts_with(scheme));
        let port = written_port(&text);
        let url = match has_scheme {
            true => Url::parse(&text),
            false => Url::parse(&format!("https://{text}")),
        }
        .ok()?;
        let host = url.host_str().filter(|host| !host.is_empty())?;
        if SCHEMES
            .iter()
            .any(|scheme| scheme.strip_suffix("://") == Some(host))
        {
            return None;
        }
        Some(Self {
            host: host.strip_prefix("www.").unwrap_or(host).to_owned(),
            scheme: has_scheme.then(|| format!("{}:", url.scheme())),
            port,
            wildcard: text.starts_with("*."),
        })
    }

    /// Whether `url` (a spec of the URL) fits this pattern: host, then scheme and port
    /// when the pattern has them.
    fn admits(&self, url: &DomainSpec) -> bool {
        let host = match self.wildcard {
            true => {
                let base = self.host.strip_prefix("*.").unwrap_or(&self.host);
                url.host == base || url.host.ends_with(&format!(".{base}"))
            }
            false => url.host == self.host,
        };
        let scheme = self.scheme.is_none() || url.scheme == self.scheme;
        let port = self.port.is_none() || url.port == self.port;
        host && scheme && port
    }
}

/// The first `:digits` followed by `/`, `?` or the end, as LibreChat's
/// `/:(\d+)(\/|$|\?)/` finds it (a port that the URL parser would drop as the default
/// is still "written").
fn written_port(text: &str) -> Option<String> {
    text.match_indices(':').find_map(|(at, _)| {
        let rest = &text[at + 1..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let after = rest[digits..].chars().next();
        let ends = matches!(after, None | Some('/') | Some('?'));
        (digits > 0 && ends).then(|| rest[..digits].to_owned())
    })
}

/// `allowedDomains`, every entry a valid pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedDomains(Vec<DomainSpec>);

impl AllowedDomains {
    /// The list, `None` when it is empty (as LibreChat, an empty list is no list), or
    /// the index and text of the first entry that is not a pattern.
    pub fn parse(entries: &[String]) -> Result<Option<Self>, (usize, String)> {
        let specs = entries
            .iter()
            .enumerate()
            .map(|(at, entry)| DomainSpec::parse(entry).ok_or_else(|| (at, entry.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((!specs.is_empty()).then_some(Self(specs)))
    }

    /// Whether the URL, as written, fits one of the patterns (`isOAuthUrlAllowed`).
    pub fn admits(&self, url: &str) -> bool {
        DomainSpec::parse(url).is_some_and(|url| self.0.iter().any(|spec| spec.admits(&url)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowedDomains {
        let entries: Vec<String> = entries.iter().map(|e| (*e).to_owned()).collect();
        AllowedDomains::parse(&entries).unwrap().unwrap()
    }

    fn admits(entries: &[&str], url: &str) -> bool {
        list(entries).admits(url)
    }

    #[test]
    fn hosts_match_exactly_ignoring_case_and_www() {
        assert!(admits(&["example.com"], "https://example.com/token"));
        assert!(admits(&["Example.COM "], "https://EXAMPLE.com/token"));
        assert!(admits(&["www.example.com"], "https://example.com/"));
        assert!(admits(&["example.com"], "https://www.example.com/"));
        assert!(!admits(&["example.com"], "https://other.com/token"));
        assert!(!admits(&["example.com"], "https://api.example.com/token"));
        assert!(!admits(&["example.com"], "https://notexample.com/"));
        assert!(!admits(&["example.com"], "not a url"));
    }

    #[test]
    fn a_wildcard_matches_the_host_itself_and_every_name_under_it() {
        assert!(admits(&["*.example.com"], "https://api.example.com/token"));
        assert!(admits(
            &["*.example.com"],
            "https://deep.nested.example.com/"
        ));
        assert!(admits(&["*.example.com"], "https://example.com/token"));
        assert!(!admits(&["*.example.com"], "https://badexample.com/"));
        assert!(!admits(&["*.example.com"], "https://example.com.evil.net/"));
        assert!(!admits(&["*.example.com"], "https://other.com/"));
        // Only a leading `*.` makes a wildcard.
        assert!(!admits(&["a*.example.com"], "https://ab.example.com/"));
    }

    #[test]
    fn a_scheme_in_the_pattern_must_be_the_urls() {
        assert!(admits(&["https://example.com"], "https://example.com/x"));
        assert!(!admits(&["https://example.com"], "http://example.com/x"));
        assert!(admits(&["http://example.com"], "http://example.com/x"));
        assert!(admits(&["example.com"], "http://example.com/x"));
        // A URL without a recognized scheme has none, so it fits no scheme-bound pattern.
        assert!(!admits(&["https://example.com"], "example.com"));
        assert!(admits(&["example.com"], "example.com"));
    }

    #[test]
    fn a_port_in_the_pattern_must_be_written_in_the_url() {
        assert!(admits(
            &["example.com:8443"],
            "https://example.com:8443/token"
        ));
        assert!(!admits(
            &["example.com:8443"],
            "https://example.com:9443/token"
        ));
        assert!(!admits(&["example.com:8443"], "https://example.com/token"));
        assert!(admits(&["example.com"], "https://example.com:8443/token"));
        assert!(admits(
            &["https://example.com:443"],
            "https://example.com:443/t"
        ));
        assert!(!admits(
            &["https://example.com:443"],
            "https://example.com/t"
        ));
        assert!(admits(&["127.0.0.1:3000"], "http://127.0.0.1:3000?x=1"));
        assert!(admits(&["[::1]:3000"], "http://[::1]:3000/"));
        assert!(!admits(&["[::1]:3000"], "http://[::1]/"));
    }

    #[test]
    fn ports_are_read_as_libre_chat_reads_them() {
        assert_eq!(written_port("https://a.b:8443/x"), Some("8443".into()));
        assert_eq!(written_port("https://a.b:8443?q"), Some("8443".into()));
        assert_eq!(written_port("https://a.b:8443"), Some("8443".into()));
        assert_eq!(written_port("https://a.b/x"), None);
        assert_eq!(written_port("https://a.b:80a/x"), None);
        assert_eq!(written_port("https://a.b:/x"), None);
        assert_eq!(written_port("http://[::1]/x"), None);
        assert_eq!(written_port("http://[::1]:9/x"), Some("9".into()));
        // The first one that fits, even in a path, as LibreChat's expression finds it.
        assert_eq!(written_port("https://a.b/p:12/q"), Some("12".into()));
    }

    #[test]
    fn addresses_are_patterns_too() {
        assert!(admits(
            &["169.254.169.254"],
            "http://169.254.169.254/latest"
        ));
        assert!(admits(&["10.1.2.3"], "https://10.1.2.3/x"));
        assert!(admits(
            &["[::ffff:127.0.0.1]"],
            "http://[::ffff:127.0.0.1]:8080/x"
        ));
        assert!(admits(&["[::ffff:7f00:1]"], "http://[::ffff:127.0.0.1]/x"));
        assert!(!admits(&["10.1.2.3"], "https://10.1.2.4/x"));
    }

    #[test]
    fn entries_that_are_no_pattern_are_named_and_an_empty_list_is_none() {
        let parse = |entries: &[&str]| {
            AllowedDomains::parse(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>())
        };
        assert_eq!(parse(&[]), Ok(None));
        assert_eq!(parse(&["ok.com", "https://"]), Err((1, "https://".into())));
        assert_eq!(parse(&["", "ok.com"]), Err((0, String::new())));
        assert_eq!(parse(&["http://http"]), Err((0, "http://http".into())));
        assert_eq!(parse(&["wss://"]), Err((0, "wss://".into())));
        assert_eq!(parse(&["exa mple.com"]), Err((0, "exa mple.com".into())));
        assert!(parse(&["ws://x.com", "wss://x.com:1"]).unwrap().is_some());
    }

    #[test]
    fn specs_keep_what_libre_chat_keeps() {
        let spec = DomainSpec::parse(" HTTPS://WWW.Example.com:8443/x ").unwrap();
        assert_eq!(
            spec,
            DomainSpec {
                host: "example.com".into(),
                scheme: Some("https:".into()),
                port: Some("8443".into()),
                wildcard: false,
            }
        );
        let spec = DomainSpec::parse("*.example.com").unwrap();
        assert_eq!((spec.host.as_str(), spec.wildcard), ("*.example.com", true));
        assert_eq!((spec.scheme, spec.port), (None, None));
    }
}
