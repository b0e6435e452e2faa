//! The policy as discovery uses it: refusals come before any connection (the loopback
//! servers here count what reaches them; the non-loopback addresses are never dialled),
//! listed URLs pass as written, the operator's authorization server is trusted, and a
//! screened connection goes only to the addresses that were checked.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::protocol::http::client;
use crate::test_server::{json, TestServer};

fn settings() -> ClientSettings<'static> {
    ClientSettings {
        timeout: Duration::from_secs(5),
        proxy: None,
    }
}

fn plain() -> Client {
    client(&settings()).unwrap()
}

/// No `allowedDomains`, the operator's authorization server `trusted`, the system's DNS.
fn unlisted(trusted: Option<&str>) -> Guard {
    Guard::new(None, trusted.map(str::to_owned), plain(), &settings()).unwrap()
}

/// A resolver answering every name with `answers` in turn (the last one repeats),
/// counting its lookups, and checking with `blocked`.
fn scripted(
    answers: Vec<Vec<IpAddr>>,
    blocked: fn(IpAddr) -> bool,
) -> (PinningResolver, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    let lookup: resolver::Lookup = Arc::new(move |_name| {
        let at = counter.fetch_add(1, Ordering::SeqCst);
        let answer = answers[at.min(answers.len() - 1)].clone();
        Box::pin(async move { Ok(answer) })
    });
    (PinningResolver::new(lookup, blocked), count)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn url(text: &str) -> Url {
    Url::parse(text).unwrap()
}

async fn refusal(guard: &Guard, issuer: Option<&str>, text: &str) -> (UrlRefused, &'static str) {
    match guard.admit(issuer, &url(text), text).await {
        Err(ExchangeError::UrlRefused(refused)) => {
            let code = refused.code();
            (refused, code)
        }
        Err(other) => panic!("{text}: another error: {other}"),
        Ok(_) => panic!("{text} was admitted"),
    }
}

#[tokio::test]
async fn internal_literals_and_names_are_refused_before_any_connection() {
    let guard = unlisted(None);
    for (text, host, address) in [
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254",
            "169.254.169.254",
        ),
        (
            "https://10.1.2.3/.well-known/oauth-protected-resource",
            "10.1.2.3",
            "10.1.2.3",
        ),
        (
            "https://[fd00:ec2::254]/latest",
            "[fd00:ec2::254]",
            "fd00:ec2::254",
        ),
        (
            "https://100.100.100.200/",
            "100.100.100.200",
            "100.100.100.200",
        ),
        ("https://0x7f.1/", "127.0.0.1", "127.0.0.1"),
    ] {
        let (refused, code) = refusal(&guard, None, text).await;
        assert_eq!(code, "ERR_SSRF_BLOCKED");
        assert_eq!(refused.host, host);
        assert_eq!(refused.refusal, UrlRefusal::PrivateAddress(ip(address)));
    }
    for (text, host) in [
        (
            "http://metadata.google.internal/computeMetadata/v1/",
            "metadata.google.internal",
        ),
        ("https://localhost/x", "localhost"),
        ("https://mcp.localhost/x", "mcp.localhost"),
        ("https://redis/", "redis"),
    ] {
        let (refused, code) = refusal(&guard, None, text).await;
        assert_eq!((code, refused.host.as_str()), ("ERR_SSRF_BLOCKED", host));
        assert_eq!(refused.refusal, UrlRefusal::InternalName);
    }
}

#[tokio::test]
async fn loopback_in_any_spelling_gets_no_request() {
    let server = TestServer::start(vec![json(200, "{}")]).await;
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let guard = unlisted(None);
    for text in [
        format!("http://[::ffff:127.0.0.1]:{port}/meta"),
        format!("http://127.0.0.1:{port}/meta"),
        format!("http://localhost:{port}/meta"),
        format!("http://[::1]:{port}/meta"),
    ] {
        let (_, code) = refusal(&guard, None, &text).await;
        assert_eq!(code, "ERR_SSRF_BLOCKED", "{text}");
    }
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_name_that_resolves_to_a_blocked_address_is_refused() {
    let (resolver, lookups) = scripted(
        vec![vec![ip("203.0.113.7"), ip("127.0.0.1")]],
        addresses::blocked_ip,
    );
    let guard = Guard::with_resolver(None, None, plain(), &settings(), resolver).unwrap();
    let (refused, code) = refusal(&guard, None, "https://as.example.com/token").await;
    assert_eq!(code, "ERR_SSRF_BLOCKED");
    assert_eq!(refused.host, "as.example.com");
    assert_eq!(refused.refusal, UrlRefusal::PrivateAddress(ip("127.0.0.1")));
    assert_eq!(lookups.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_system_resolver_refuses_what_localhost_resolves_to() {
    let refused = PinningResolver::system().addresses("localhost").await;
    assert!(
        matches!(refused, Err(Unresolved::Blocked(ip)) if ip.is_loopback()),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_failed_lookup_is_left_to_the_request() {
    let lookup: resolver::Lookup = Arc::new(|_| {
        Box::pin(async { Err(std::io::Error::new(std::io::ErrorKind::NotFound, "nx")) })
    });
    let resolver = PinningResolver::new(lookup, addresses::blocked_ip);
    let guard = Guard::with_resolver(None, None, plain(), &settings(), resolver).unwrap();
    assert!(guard
        .admit(None, &url("https://nx.example/"), "https://nx.example/")
        .await
        .is_ok());
    let (resolver, _) = scripted(vec![vec![]], addresses::blocked_ip);
    let empty = resolver.addresses("none.example").await;
    assert!(
        matches!(empty, Err(Unresolved::Lookup(e)) if e.kind() == std::io::ErrorKind::NotFound)
    );
}

/// Stands in for "public": only 127.0.0.1 passes, so a loopback server can play the
/// checked address and 127.0.0.2 the one a rebinding DNS server swaps in.
fn only_127_0_0_1(ip: IpAddr) -> bool {
    ip != IpAddr::from([127, 0, 0, 1])
}

#[tokio::test]
async fn the_connection_goes_to_the_checked_address_and_a_rebound_one_is_refused() {
    let server = TestServer::start(vec![json(200, "{}")]).await;
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let (resolver, lookups) = scripted(
        vec![vec![ip("127.0.0.1")], vec![ip("127.0.0.2")]],
        only_127_0_0_1,
    );
    let guard = Guard::with_resolver(None, None, plain(), &settings(), resolver).unwrap();
    let pinned = format!("http://mcp-as.test:{port}/.well-known/oauth-authorization-server");
    let http = guard.admit(None, &url(&pinned), &pinned).await.unwrap();
    let answer = http.get(&pinned).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(
        lookups.load(Ordering::SeqCst),
        1,
        "the connection used the pinned answer"
    );
    assert_eq!(server.paths(), ["/.well-known/oauth-authorization-server"]);
    // Another name, not pinned: the connection's own lookup gets the swapped address.
    let rebound = format!("http://rebound.test:{port}/token");
    let failed = http.get(&rebound).send().await.unwrap_err();
    assert!(failed.is_connect(), "{failed:?}");
    assert!(
        format!("{failed:?}").contains("rebound.test resolves to the blocked address 127.0.0.2")
    );
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn listed_urls_are_admitted_as_written_and_others_refused() {
    let listed = Guard::listing(
        &[
            "169.254.169.254",
            "10.1.2.3",
            "[::ffff:127.0.0.1]",
            "*.localhost",
            "https://as.example.com:8443",
        ],
        plain(),
    );
    for text in [
        "http://169.254.169.254/latest/meta-data/",
        "https://10.1.2.3/.well-known/oauth-protected-resource",
        "http://[::ffff:127.0.0.1]:3000/meta",
        "http://localhost:3000/meta",
        "http://mcp.localhost/meta",
        "https://as.example.com:8443/token",
    ] {
        assert!(listed.admit(None, &url(text), text).await.is_ok(), "{text}");
    }
    for (text, host) in [
        ("https://as.example.com/token", "as.example.com"),
        ("http://as.example.com:8443/token", "as.example.com"),
        ("https://10.1.2.4/", "10.1.2.4"),
        ("https://public.example.org/", "public.example.org"),
    ] {
        let (refused, code) = refusal(&listed, None, text).await;
        assert_eq!((code, refused.host.as_str()), ("ERR_URL_NOT_ALLOWED", host));
        assert_eq!(refused.refusal, UrlRefusal::NotListed);
    }
    // The list is compared with the URL as the server wrote it.
    let written = "https://as.example.com:8443/token";
    let parsed = url("https://as.example.com:8443/token");
    assert!(listed.admit(None, &parsed, written).await.is_ok());
    assert!(listed
        .admit(None, &parsed, "https://other.example/")
        .await
        .is_err());
}

#[tokio::test]
async fn the_operator_s_authorization_server_is_trusted_and_no_other() {
    let trusted = "https://as.internal";
    let guard = unlisted(Some(trusted));
    let endpoint = url("https://as.internal/token");
    assert!(guard
        .admit(Some(trusted), &endpoint, "https://as.internal/token")
        .await
        .is_ok());
    assert!(guard.token_client(trusted, &endpoint).await.is_ok());
    let (_, code) = refusal(
        &guard,
        Some("https://as.internal/other"),
        "https://as.internal/token",
    )
    .await;
    assert_eq!(code, "ERR_SSRF_BLOCKED");
    let (_, code) = refusal(&guard, None, "https://as.internal/token").await;
    assert_eq!(code, "ERR_SSRF_BLOCKED");
    let other = guard
        .token_client("https://as.internal/other", &endpoint)
        .await;
    assert!(matches!(other, Err(ExchangeError::UrlRefused(_))));
    let none = unlisted(None);
    assert!(none
        .admit(None, &endpoint, "https://as.internal/token")
        .await
        .is_err());
    assert!(!none.trusts(None));
}

#[tokio::test]
async fn token_requests_are_screened_again_unless_listed() {
    let (resolver, lookups) = scripted(
        vec![vec![ip("203.0.113.9")], vec![ip("10.0.0.1")]],
        addresses::blocked_ip,
    );
    let guard = Guard::with_resolver(None, None, plain(), &settings(), resolver).unwrap();
    let endpoint = url("https://as.example.com/token");
    assert!(guard
        .token_client("https://as.example.com", &endpoint)
        .await
        .is_ok());
    let blocked = url("https://10.9.9.9/token");
    let refused = guard.token_client("https://as.example.com", &blocked).await;
    assert!(matches!(refused, Err(ExchangeError::UrlRefused(_))));
    assert_eq!(lookups.load(Ordering::SeqCst), 1);
    let listed = Guard::listing(&["as.example.com"], plain());
    assert!(listed
        .token_client("https://as.example.com", &blocked)
        .await
        .is_ok());
}

#[tokio::test]
async fn pinned_addresses_are_served_without_a_new_lookup() {
    let (resolver, lookups) = scripted(
        vec![vec![ip("203.0.113.1"), ip("2001:db8::1")]],
        addresses::blocked_ip,
    );
    let first = resolver.addresses("a.example").await.unwrap();
    let again = resolver.addresses("a.example").await.unwrap();
    assert_eq!(&*first, &[ip("203.0.113.1"), ip("2001:db8::1")]);
    assert_eq!(first, again);
    assert_eq!(lookups.load(Ordering::SeqCst), 1);
    let name: reqwest::dns::Name = "a.example".parse().unwrap();
    let resolved: Vec<_> = reqwest::dns::Resolve::resolve(&resolver, name)
        .await
        .unwrap()
        .collect();
    assert_eq!(
        resolved,
        [
            "203.0.113.1:0".parse().unwrap(),
            "[2001:db8::1]:0".parse().unwrap()
        ]
    );
    assert_eq!(lookups.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_screened_client_follows_no_redirect() {
    let server = TestServer::start(vec![
        json(302, "{}").header("location", "http://169.254.169.254/latest/meta-data/")
    ])
    .await;
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let (resolver, _) = scripted(vec![vec![ip("127.0.0.1")]], only_127_0_0_1);
    let guard = Guard::with_resolver(None, None, plain(), &settings(), resolver).unwrap();
    let start = format!("http://as.test:{port}/.well-known/oauth-authorization-server");
    let http = guard.admit(None, &url(&start), &start).await.unwrap();
    let answer = http.get(&start).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 302);
    assert_eq!(server.received().len(), 1);
}
