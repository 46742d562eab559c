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
/// A request is given up whole after this, however it is going, and retried.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// The least progress an answer must make within each stall timeout ([`Http::new`]): its headers,
/// then this many bytes of body (or its end). 1 KiB: a trickle of a byte every few seconds fails,
/// any working link passes.
pub const MIN_PROGRESS: usize = 1024;

/// The most memory reserved for a body before it arrives, whatever its `Content-Length` claims
/// (a longer body still grows to its limit as it is read).
const RESERVE_MAX: u64 = 64 << 20;

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

/// The HTTP client with the slowest answer it accepts: each request's headers must arrive, and then
/// each further [`MIN_PROGRESS`] bytes of its body (or its end), within `stall`. A service that
/// trickles is so given up after `stall`, not after [`REQUEST_TIMEOUT`].
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    stall: Duration,
}

/// One answer read whole: status, headers, body (reqwest has undone any gzip).
pub type Exchanged = (
    reqwest::StatusCode,
    reqwest::header::HeaderMap,
    bytes::Bytes,
);

impl Http {
    /// [`http_client`] with the stall timeout `stall`.
    ///
    /// # Errors
    /// [`NetError::Client`] when the TLS stack cannot be set up.
    pub fn new(stall: Duration) -> Result<Http, NetError> {
        Ok(Http {
            client: http_client()?,
            stall,
        })
    }

    /// The underlying client, to build requests with.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends `req` and reads its answer: a 2xx body whole, up to `limit` bytes after decoding (reqwest
    /// undoes gzip as it goes, so neither a body that inflates a thousandfold nor one that never ends
    /// takes more than `limit` bytes of memory; a `Content-Length` over it is refused before a byte is
    /// read); any other status's body only up to its first `error_start` bytes (the start says what went
    /// wrong), the rest left unread. Each `MIN_PROGRESS` bytes must come within the stall timeout.
    ///
    /// # Errors
    /// [`BodyError::TooLarge`] past `limit`; [`BodyError::Net`] with the reason in a few words, as
    /// [`net_reason`] writes it ("it timed out", "cannot connect: …"), or "the answer came too slowly:
    /// …".
    pub async fn exchange(
        &self,
        req: reqwest::Request,
        limit: u64,
        error_start: usize,
    ) -> Result<Exchanged, BodyError> {
        let stall = self.stall;
        let too_slow = |what: &str| {
            BodyError::Net(format!(
                "the answer came too slowly: {what} within {} s (stall_timeout)",
                stall.as_secs_f64()
            ))
        };
        let mut resp = tokio::time::timeout(stall, self.client.execute(req))
            .await
            .map_err(|_| too_slow("no headers"))?
            .map_err(|e| BodyError::Net(net_reason(&e)))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let whole = status.is_success();
        if whole && resp.content_length().is_some_and(|n| n > limit) {
            return Err(BodyError::TooLarge);
        }
        // The whole body at once when its length is announced (up to the limit, and no more than
        // RESERVE_MAX: a length is only a claim), so it is not copied again as it grows.
        let expected = if whole {
            resp.content_length().unwrap_or(0).min(limit)
        } else {
            error_start as u64
        };
        let mut body =
            bytes::BytesMut::with_capacity(usize::try_from(expected.min(RESERVE_MAX)).unwrap_or(0));
        // The stall deadline moves on with every MIN_PROGRESS bytes; the timer is only set again
        // when it fires before that deadline (once per `stall` at most, not once per chunk).
        let mut deadline = tokio::time::Instant::now() + stall;
        let mut since = 0usize;
        let timer = tokio::time::sleep_until(deadline);
        tokio::pin!(timer);
        loop {
            let chunk = tokio::select! {
                biased;
                chunk = resp.chunk() => chunk,
                () = &mut timer => {
                    if tokio::time::Instant::now() < deadline {
                        timer.as_mut().reset(deadline);
                        continue;
                    }
                    return Err(too_slow(&format!(
                        "fewer than {MIN_PROGRESS} bytes of the body"
                    )));
                }
            };
            let chunk = match chunk {
                Err(e) => return Err(BodyError::Net(net_reason(&e))),
                Ok(None) => break,
                Ok(Some(chunk)) => chunk,
            };
            if whole {
                if (body.len() + chunk.len()) as u64 > limit {
                    return Err(BodyError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            } else {
                let room = error_start.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= error_start {
                    break;
                }
            }
            since += chunk.len();
            if since >= MIN_PROGRESS {
                deadline = tokio::time::Instant::now() + stall;
                since = 0;
            }
        }
        Ok((status, headers, body.freeze()))
    }
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

/// Why a body was not read whole ([`Http::exchange`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The body, as decoded (after any gzip), is longer than the limit; reading stopped there.
    TooLarge,
    /// The answer was cut off or timed out, in a few words ([`net_reason`]).
    Net(String),
}

/// A size in bytes for messages: "256 MiB", "64 KiB", "900 bytes".
pub fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
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

    /// A server on loopback that answers every connection with `head` and then `body`, a chunk of
    /// `step` bytes every `every`.
    async fn trickler(head: &'static str, body: Vec<u8>, step: usize, every: Duration) -> Url {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    let _ = sock.write_all(head.as_bytes()).await;
                    for chunk in body.chunks(step) {
                        tokio::time::sleep(every).await;
                        if sock.write_all(chunk).await.is_err() {
                            return;
                        }
                    }
                    // Holds the connection open: the answer is neither ended nor cut.
                    tokio::time::sleep(Duration::from_secs(5)).await;
                });
            }
        });
        url(&format!("http://{addr}/"))
    }

    #[tokio::test]
    async fn an_answer_that_trickles_is_given_up_after_the_stall_timeout() {
        let http = Http::new(Duration::from_millis(300)).unwrap();
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n";
        let slow = trickler(head, vec![b'x'; 100], 1, Duration::from_millis(50)).await;
        let req = http.client().get(slow).build().unwrap();
        let err = net_error(http.exchange(req, 1 << 20, 1 << 10).await);
        assert!(err.contains("too slowly") && err.contains("body"), "{err}");

        // Headers that never come.
        let silent = trickler("HTTP/1.1 200 OK\r\n", Vec::new(), 1, Duration::ZERO).await;
        let err = net_error(
            http.exchange(http.client().get(silent).build().unwrap(), 1 << 20, 1 << 10)
                .await,
        );
        assert!(err.contains("no headers"), "{err}");

        // The same pace of whole kilobytes keeps going, and a short answer is read whole.
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 4096\r\n\r\n";
        let steady = trickler(head, vec![b'y'; 4096], 1024, Duration::from_millis(50)).await;
        let (status, _, body) = http
            .exchange(http.client().get(steady).build().unwrap(), 1 << 20, 1 << 10)
            .await
            .unwrap();
        assert_eq!((status.as_u16(), body.len()), (200, 4096));
    }

    fn net_error(r: Result<Exchanged, BodyError>) -> String {
        match r {
            Err(BodyError::Net(reason)) => reason,
            other => panic!("not a network failure: {other:?}"),
        }
    }

    /// A 2xx body past the limit is refused (by its Content-Length before a byte is read, or as it
    /// streams); an error answer keeps only its start.
    #[tokio::test]
    async fn a_body_is_read_up_to_its_limit_and_an_error_body_only_its_start() {
        let http = Http::new(Duration::from_secs(5)).unwrap();
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 4096\r\n\r\n";
        let big = trickler(head, vec![b'x'; 4096], 4096, Duration::ZERO).await;
        let got = http
            .exchange(http.client().get(big).build().unwrap(), 4095, 1 << 10)
            .await;
        assert!(matches!(got, Err(BodyError::TooLarge)), "{got:?}");
        let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        let mut chunked = Vec::new();
        for _ in 0..4 {
            chunked.extend_from_slice(b"400\r\n");
            chunked.extend_from_slice(&[b'y'; 1024]);
            chunked.extend_from_slice(b"\r\n");
        }
        let endless = trickler(head, chunked, 1024, Duration::ZERO).await;
        let got = http
            .exchange(http.client().get(endless).build().unwrap(), 3000, 1 << 10)
            .await;
        assert!(matches!(got, Err(BodyError::TooLarge)), "{got:?}");
        let head = "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4096\r\n\r\n";
        let failing = trickler(head, vec![b'z'; 4096], 4096, Duration::ZERO).await;
        let (status, _, body) = http
            .exchange(http.client().get(failing).build().unwrap(), 1 << 20, 100)
            .await
            .unwrap();
        assert_eq!((status.as_u16(), body.len()), (500, 100));
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
