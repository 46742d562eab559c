//! Network policy and the one HTTP client, shared by `config`, `auth` and `api` (a leaf: it imports no
//! other module of the crate).
//!
//! The rule: https everywhere, plain http only to a loopback host (the simulator); redirects are never
//! followed (the Management API sends none, and a redirect must not carry a token elsewhere); every
//! request has bounded timeouts.

use std::time::Duration;

use url::{Host, Url};

/// Why a URL or the HTTP client cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// `http://` to a host that is not loopback.
    #[error(
        "{0} uses plain http, which auditsync allows only to loopback addresses (127.0.0.1, ::1, localhost); \
         use https://"
    )]
    PlainHttp(String),
    /// A scheme other than http or https.
    #[error("{url} uses the scheme {scheme:?}; use https://")]
    Scheme {
        /// The URL as written.
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// The TLS stack could not be set up (no usable root certificates, for example).
    #[error("cannot set up HTTPS: {0}")]
    Client(String),
    /// A host did not answer.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// Why, from [`net_reason`].
        reason: String,
    },
    /// A host answered without a `Date` header.
    #[error("{0} sent no Date header to compare with")]
    NoDate(String),
}

/// Connecting may take this long before the attempt is given up (and retried by the caller).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// A request that sends nothing for this long is given up.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// A request that trickles is given up whole after this, and retried.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The transport rule, for configured endpoints and for every URL the service hands back: https, or
/// plain http to a loopback host only.
///
/// # Errors
/// [`NetError::PlainHttp`] or [`NetError::Scheme`], whose message says to use https.
pub fn check_transport(url: &Url) -> Result<(), NetError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(NetError::PlainHttp(url.to_string())),
        other => Err(NetError::Scheme {
            url: url.to_string(),
            scheme: other.to_owned(),
        }),
    }
}

/// Whether the URL's host is this machine: `127.0.0.0/8`, `::1` or `localhost` (any case).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Whether two URLs name the same host and port; the loopback names count as one host (a local
/// service may hand back `127.0.0.1` for `localhost`).
pub fn same_origin(a: &Url, b: &Url) -> bool {
    let same_host = a.host_str() == b.host_str() || (is_loopback(a) && is_loopback(b));
    same_host && a.port_or_known_default() == b.port_or_known_default()
}

/// The HTTP client every request goes through: no redirects, the timeouts above, a user agent naming
/// auditsync and its version.
///
/// # Errors
/// [`NetError::Client`] when the TLS stack cannot be set up.
pub fn http_client() -> Result<reqwest::Client, NetError> {
    install_tls_provider();
    reqwest::Client::builder()
        .user_agent(concat!("auditsync/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| NetError::Client(chain(&e)))
}

/// Makes *ring* the process's rustls crypto provider, once; a no-op when one is installed already.
///
/// reqwest is built with `rustls-no-provider`: *ring* builds in seconds where aws-lc-rs (reqwest's
/// default) compiles a C library for minutes, and offers the same TLS 1.2/1.3 suites Microsoft's
/// endpoints use (see BENCHMARKS.md, "Cold build and binary"). Every reqwest client in the process,
/// including those the tests and the benchmark build, needs a provider before it is built.
pub fn install_tls_provider() {
    // `Err` only means another provider is installed already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The clock of the host at `url`: the `Date` header (RFC 2822, whole seconds) of its answer to a GET,
/// whatever the status. Used by `doctor` to compare clocks: the API counts its 7 days by its own.
///
/// # Errors
/// [`NetError::Unreachable`] when there is no answer, [`NetError::NoDate`] when it has no readable date.
pub async fn server_date(
    http: &reqwest::Client,
    url: &Url,
) -> Result<chrono::DateTime<chrono::Utc>, NetError> {
    let answer = http
        .get(url.clone())
        .send()
        .await
        .map_err(|e| NetError::Unreachable {
            url: url.to_string(),
            reason: net_reason(&e),
        })?;
    answer
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .map(|d| d.to_utc())
        .ok_or_else(|| NetError::NoDate(url.to_string()))
}

/// A URL for messages, without its query (which only repeats what the message already says, and may
/// carry a signature).
pub fn redact_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

/// An error and its causes on one line ("a: b: c"), for errors whose top message is too terse
/// (reqwest's "error sending request" hides "connection refused" in its source).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Why a request got no answer, in a few words: "it timed out", "cannot connect: connection refused",
/// "the answer was cut off: …", without the URL, which the caller already names.
pub fn net_reason(e: &reqwest::Error) -> String {
    let mut innermost: &dyn std::error::Error = e;
    while let Some(s) = innermost.source() {
        innermost = s;
    }
    let detail = innermost.to_string();
    if e.is_timeout() {
        "it timed out".to_owned()
    } else if e.is_connect() {
        format!("cannot connect: {detail}")
    } else if e.is_body() || e.is_decode() {
        format!("the answer was cut off: {detail}")
    } else if e.is_redirect() {
        "it answered with a redirect, which auditsync does not follow".to_owned()
    } else {
        detail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn https_anywhere_http_only_to_loopback() {
        for ok in [
            "https://manage.office.com/x",
            "http://127.0.0.1:8080/",
            "http://127.1.2.3/",
            "http://[::1]:9/",
            "http://LocalHost:1/",
        ] {
            assert_eq!(check_transport(&url(ok)), Ok(()), "{ok}");
        }
        for bad in [
            "http://manage.office.com/",
            "http://10.0.0.1/",
            "http://localhost.evil.com/",
        ] {
            assert!(
                matches!(check_transport(&url(bad)), Err(NetError::PlainHttp(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            check_transport(&url("ftp://manage.office.com/")),
            Err(NetError::Scheme { .. })
        ));
    }

    #[test]
    fn same_origin_treats_loopback_names_as_one_host() {
        assert!(same_origin(
            &url("http://localhost:8080/a"),
            &url("http://127.0.0.1:8080/b")
        ));
        assert!(!same_origin(
            &url("http://localhost:8080/"),
            &url("http://127.0.0.1:8081/")
        ));
        assert!(same_origin(
            &url("https://manage.office.com/"),
            &url("https://manage.office.com:443/x")
        ));
        assert!(!same_origin(
            &url("https://manage.office.com/"),
            &url("https://manage.office.com.evil.net/")
        ));
    }
}
