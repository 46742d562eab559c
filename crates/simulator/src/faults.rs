//! Fault injection: the [`Faults`] settings, and how they turn an activity-feed request into a
//! throttle (403/429 AF429), a server error (500 AF50000 or a bare 503), a fixed answer of a gateway
//! (a plain-text 500 or 403 for every request), a dropped connection, a body cut short or one that
//! trickles, and a token answer that trickles. Decisions come from the simulator's seeded random
//! stream.

use std::io;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, stream};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, StatusCode};
use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::api::{Refusal, Route, af_error};
use super::control::State;
use super::json_response;

/// Misbehaviour to inject. `Default` is none. Probabilities are in [0, 1]; values outside simply
/// mean never (≤ 0) or always (≥ 1). Serializable so it can be set with `PUT /_sim/faults`; every
/// field may be omitted there.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Probability an API request that passed authorization is refused as throttled: 403 AF429
    /// `Too many requests. Method=<op>, PublisherId=<PublisherIdentifier or zeros>`, `<op>` one of
    /// `StartSubscription`, `StopSubscription`, `ListSubscriptions`, `ListContent`, `GetBlob`
    /// (management-api.md §2.4).
    pub throttle: f64,
    /// Of the throttled requests, the share answered with HTTP 429 instead of 403 (same body): the
    /// undocumented status a client should treat alike (management-api.md §2.4).
    pub throttle_as_429: f64,
    /// If set, `throttle` refusals carry `Retry-After: <seconds>`, except every second one (by the
    /// running count of AF429 answers, `rate_limit` ones included): the header is undocumented, so a
    /// client must cope with and without it (management-api.md §2.4).
    pub retry_after: Option<u64>,
    /// Probability an API request that passed authorization and was not throttled gets a 500 AF50000
    /// (with the documented message, or the observed one with a double space) or a 503 with an empty
    /// or an IIS HTML body, a quarter each (management-api.md §3; §2.4 for 503).
    pub server_error: f64,
    /// Probability a content listing or blob GET (past authorization, throttling and server errors)
    /// gets its connection closed with no response.
    pub drop_connection: f64,
    /// Probability a 200 content listing or blob is sent with its full `Content-Length` but only
    /// half its bytes before the connection aborts.
    pub cut_body: f64,
    /// Latency added before answering each blob GET that gets as far as reading the blob (found, not
    /// expired, not in `broken_blobs`).
    pub blob_delay: Duration,
    /// `(C, W)`: at most C authorized API requests admitted in any sliding window of W (as the
    /// service's per-tenant requests a minute, management-api.md §2.4); beyond, 403 AF429 without
    /// `Retry-After`. Requests it refuses do not count against the window.
    pub rate_limit: Option<(u32, Duration)>,
    /// Probability a token request gets a 503 or 500 (even odds) `temporarily_unavailable`
    /// AADSTS90033 in Entra's error shape, before its credentials are checked.
    pub token_error_rate: f64,
    /// Content ids whose blob GET always answers 500 AF50000 (a blob that keeps failing), once the
    /// blob is found and not expired. Not counted in [`Stats::server_errors`](crate::Stats::server_errors).
    pub broken_blobs: std::collections::BTreeSet<String>,
    /// The raw bytes sent as `NextPageUri` instead of the real link, on every listing page that has a
    /// next page: not text (`[0xff]`), empty, or not a URL, as a broken proxy or service may send.
    /// Bytes a header cannot hold at all (control characters but tab) make the page a bare 500.
    pub bad_next_page: Option<Vec<u8>>,
    /// `(status, text)`: every activity-feed request that passed authorization (and `rate_limit`) is
    /// answered with this status and this `text/plain` body instead, as a gateway in front of a
    /// failing service answers: `(500, "upstream timeout")`, `(403, "Forbidden")`. Every
    /// `{authorization}` in the text is replaced by the request's `Authorization` header, as a
    /// gateway that echoes the request in every error does.
    pub fixed_answer: Option<(u16, String)>,
    /// If set, a 200 content listing or blob is sent one byte every this long (its headers at once):
    /// a service that trickles and holds every request open.
    pub trickle: Option<Duration>,
    /// The same for the token endpoints' answers.
    pub trickle_tokens: Option<Duration>,
    /// If set, the `expires_in` every token answer carries instead of the token's lifetime, verbatim
    /// (any JSON: a huge number, zero, a negative number, a string, `null`); the token itself still
    /// expires after [`SimSpec::token_lifetime`](crate::SimSpec::token_lifetime). A token endpoint
    /// sending a lifetime the client must not trust blindly.
    pub token_expires_in: Option<serde_json::Value>,
    /// Probability a token request (past `token_error_rate`) is refused with 400 `invalid_request`
    /// AADSTS900144 whose `error_description` quotes the whole form body (`client_secret` included), as
    /// a misconfigured proxy or a debugging gateway in front of the token endpoint might.
    pub token_echo: f64,
    /// Probability an API request (past authorization, before the other faults) is answered with an
    /// error that quotes its `Authorization` header (the bearer token): half 400 AF20099 whose message
    /// quotes it, half a plain-text 500 `Request failed. Headers: Authorization: Bearer …` (which a
    /// client retries and then reports).
    pub echo_authorization: f64,
    /// Content ids whose blob GET (once the blob is found and not expired) answers 200 with a huge
    /// body instead of the blob: see [`HugeBody`].
    pub huge_blobs: std::collections::BTreeMap<String, HugeBody>,
    /// If set, every content listing that passes its checks answers 200 with this huge body (a JSON
    /// array of whitespace, no `NextPageUri`).
    pub huge_listing: Option<HugeBody>,
    /// If set, every token request (past `token_error_rate`) answers 200 with this huge body (a JSON
    /// object of whitespace).
    pub huge_token: Option<HugeBody>,
    /// The next this many Graph queries created (201 as usual) end `failed` instead of
    /// `succeeded`; each create takes one. Failed queries serve no records.
    pub graph_fail_queries: u32,
    /// The next this many record pages that end a query's read (the page without `@odata.nextLink`)
    /// are served with an empty `value`: the read ends below `approximateReturnedRecordCount`, as a
    /// third-party report says paging the same completed query twice can (graph-audit-api.md,
    /// "Completeness"). Each such page takes one.
    pub graph_short_reads: u32,
    /// The next this many Graph query creates create the query (it runs, counts as a submission and
    /// is in the list) and then close the connection with no answer: a client that sends the POST
    /// again has two queries for one window.
    pub graph_lose_create_answers: u32,
    /// Probability a Graph request that passed its token checks gets a 503 `serviceNotAvailable`
    /// or a 500 `generalException` (even odds) in Graph's error shape. Counted in
    /// [`Stats::server_errors`](crate::Stats::server_errors).
    pub graph_server_error: f64,
    /// Probability a Graph request that passed its token checks (and `graph_server_error`) gets its
    /// connection closed with no response. Counted in [`Stats::dropped`](crate::Stats::dropped).
    pub graph_drop_connection: f64,
    /// Every token request that would succeed (any resource) answers 400 `invalid_client`
    /// AADSTS7000229 "The client application … is missing service principal in the tenant …": the
    /// app was never consented to in this tenant (graph-audit-api.md, Permissions).
    pub no_service_principal: bool,
}

/// A body no real answer has, to try a client's memory bounds. Its text is whitespace between the
/// brackets of a JSON array (an object for tokens): valid JSON, so only its size is wrong. Generated
/// as it is sent, in 64 KiB pieces, so the simulator never holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HugeBody {
    /// `Content-Encoding: gzip` (whatever the request accepts), chunked: a body of `inflated` bytes
    /// that compresses about 800-fold (2 GiB in under 3 MB).
    GzipBomb {
        /// Bytes after decompression.
        inflated: u64,
    },
    /// Like `GzipBomb`, but the array is `[0,0,0,…,0]`: about `inflated / 2` elements, none of them a
    /// record (a 256 MiB blob holds 128 M), to try what a client holds and writes per unreadable
    /// element. `inflated` is rounded up to an odd number (at least 3) so the array closes after a `0`.
    GzipZeros {
        /// Bytes after decompression (before rounding).
        inflated: u64,
    },
    /// `bytes` bytes, uncompressed, with their `Content-Length`.
    Oversized {
        /// Bytes of the body.
        bytes: u64,
    },
    /// Chunked, uncompressed, and endless: the opening bracket, then whitespace until the client
    /// stops reading.
    Endless,
}

/// The 200 answer carrying `huge`'s body between `open` and `close` (`[`/`]`, `{`/`}`).
pub(super) fn huge_body(huge: &HugeBody, open: u8, close: u8) -> Response {
    let (total, gzip) = match *huge {
        HugeBody::GzipBomb { inflated } => (Some(inflated.max(2)), true),
        HugeBody::GzipZeros { inflated } => (Some(inflated.max(3) | 1), true),
        HugeBody::Oversized { bytes } => (Some(bytes.max(2)), false),
        HugeBody::Endless => (None, false),
    };
    let generator = Whitespace {
        zeros: matches!(huge, HugeBody::GzipZeros { .. }),
        sent: 0,
        total,
        open,
        close,
        encoder: gzip
            .then(|| flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default())),
        done: false,
    };
    let pieces = stream::unfold(generator, |mut g| async move {
        g.next_piece().map(|b| (Ok::<_, io::Error>(b), g))
    });
    let mut response = Response::new(Body::from_stream(pieces));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(super::JSON));
    if gzip {
        headers.insert(
            http::header::CONTENT_ENCODING,
            HeaderValue::from_static("gzip"),
        );
    } else if let Some(n) = total {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
    }
    response
}

/// The generator of a [`HugeBody`]: `total` bytes (`None`: endless), gzip-compressed on the way when
/// it has an encoder.
struct Whitespace {
    /// `0,0,…,0` between the brackets instead of spaces (an odd `total`: `0` at odd offsets).
    zeros: bool,
    sent: u64,
    total: Option<u64>,
    open: u8,
    close: u8,
    encoder: Option<flate2::write::GzEncoder<Vec<u8>>>,
    done: bool,
}

impl Whitespace {
    const PIECE: u64 = 64 * 1024;

    /// The next piece of the body as it is before compression.
    fn next_plain(&mut self) -> Option<Vec<u8>> {
        let len = match self.total {
            Some(t) => t.saturating_sub(self.sent).min(Self::PIECE),
            None => Self::PIECE,
        };
        if len == 0 {
            return None;
        }
        let mut piece = vec![b' '; usize::try_from(len).unwrap_or(usize::MAX)];
        if self.zeros {
            // PIECE is even: every piece starts at an even offset, `,` there and `0` after.
            for (i, b) in piece.iter_mut().enumerate() {
                *b = if i % 2 == 1 { b'0' } else { b',' };
            }
        }
        if self.sent == 0 {
            piece[0] = self.open;
        }
        self.sent += len;
        if self.total == Some(self.sent)
            && let Some(last) = piece.last_mut()
        {
            *last = self.close;
        }
        Some(piece)
    }

    /// The next piece as sent (compressed if it is a gzip bomb); `None` at the end.
    fn next_piece(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        match self.next_plain() {
            Some(plain) => match &mut self.encoder {
                None => Some(plain.into()),
                Some(encoder) => {
                    // Flushed piece by piece, so the client inflates as it goes (about 1000:1 still).
                    std::io::Write::write_all(encoder, &plain).ok()?;
                    std::io::Write::flush(encoder).ok()?;
                    Some(std::mem::take(encoder.get_mut()).into())
                }
            },
            None => {
                self.done = true;
                self.encoder
                    .take()
                    .and_then(|e| e.finish().ok())
                    .map(Into::into)
            }
        }
    }
}

/// Marks a response the connection layer must replace by closing the connection.
#[derive(Clone, Copy)]
pub(super) struct DropConnection;

/// Draws an event of probability `p`; never panics, whatever `p` is.
pub(super) fn chance(rng: &mut StdRng, p: f64) -> bool {
    rng.random::<f64>() < p
}

/// Faults decided before the handler runs, for an API request that passed authorization.
/// `Err` is the response that replaces the real one.
pub(super) fn inject(
    state: &mut State,
    route: Route,
    publisher: &str,
    authorization: &str,
) -> Result<(), Refusal> {
    let faults = state.faults.clone();
    if chance(&mut state.rng, faults.echo_authorization) {
        return Err(echo(&mut state.rng, route, authorization).into());
    }
    if let Some((capacity, window)) = faults.rate_limit {
        let now = Instant::now();
        while state
            .admitted
            .front()
            .is_some_and(|&t| now.duration_since(t) >= window)
        {
            state.admitted.pop_front();
        }
        if state.admitted.len() >= capacity as usize {
            return Err(throttled(state, route, publisher, StatusCode::FORBIDDEN, None).into());
        }
        state.admitted.push_back(now);
    }
    if let Some((status, text)) = faults.fixed_answer {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let plain = [(CONTENT_TYPE, "text/plain; charset=utf-8")];
        let text = text.replace("{authorization}", authorization);
        return Err((status, plain, text).into_response().into());
    }
    if chance(&mut state.rng, faults.throttle) {
        let status = if chance(&mut state.rng, faults.throttle_as_429) {
            StatusCode::TOO_MANY_REQUESTS
        } else {
            StatusCode::FORBIDDEN
        };
        let retry_after = faults
            .retry_after
            .filter(|_| state.stats.throttled.is_multiple_of(2));
        return Err(throttled(state, route, publisher, status, retry_after).into());
    }
    if chance(&mut state.rng, faults.server_error) {
        state.stats.server_errors += 1;
        return Err(server_error(&mut state.rng).into());
    }
    if route.carries_data() && chance(&mut state.rng, faults.drop_connection) {
        state.stats.dropped += 1;
        let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        response.extensions_mut().insert(DropConnection);
        return Err(response.into());
    }
    Ok(())
}

/// The 200 answer carrying `body`, unless the `cut_body` fault fires.
pub(super) fn deliver(state: &mut State, route: Route, body: Bytes) -> Response {
    if let Some(every) = state.faults.trickle.filter(|_| route.carries_data()) {
        let mut response = Response::new(trickled(body, every));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(super::JSON));
        return response;
    }
    if !(route.carries_data() && chance(&mut state.rng, state.faults.cut_body)) {
        return json_response(StatusCode::OK, body);
    }
    state.stats.cut += 1;
    let length = body.len();
    let abort = async {
        // Pausing first lets hyper flush the headers and the first half before the connection aborts.
        tokio::time::sleep(Duration::from_millis(10)).await;
        Err::<Bytes, _>(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "body cut short by fault injection",
        ))
    };
    let chunks = stream::iter([Ok(body.slice(..length / 2))]).chain(stream::once(abort));
    let mut response = Response::new(Body::from_stream(chunks));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(super::JSON));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    response
}

/// `body` as a stream of one byte every `every`.
pub(super) fn trickled(body: Bytes, every: Duration) -> Body {
    let bytes = stream::iter((0..body.len()).map(move |i| body.slice(i..=i)));
    Body::from_stream(bytes.then(move |b| async move {
        tokio::time::sleep(every).await;
        Ok::<Bytes, io::Error>(b)
    }))
}

/// A token answer, its body trickled when [`Faults::trickle_tokens`] is set.
pub(super) async fn token_answer(response: Response, trickle: Option<Duration>) -> Response {
    let Some(every) = trickle else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, trickled(body, every))
}

fn throttled(
    state: &mut State,
    route: Route,
    publisher: &str,
    status: StatusCode,
    retry_after: Option<u64>,
) -> Response {
    state.stats.throttled += 1;
    let message = format!(
        "Too many requests. Method={}, PublisherId={publisher}",
        route.operation()
    );
    let mut response = af_error(status, "AF429", message);
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// An error quoting the request's `Authorization` header (the `echo_authorization` fault).
fn echo(rng: &mut StdRng, route: Route, authorization: &str) -> Response {
    if rng.random_bool(0.5) {
        let message = format!(
            "The request to {} was rejected. Request headers: Authorization: {authorization}; token {}",
            route.operation(),
            authorization
                .split_once(' ')
                .map_or(authorization, |(_, t)| t)
        );
        af_error(StatusCode::BAD_REQUEST, "AF20099", message)
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(CONTENT_TYPE, "text/plain")],
            format!("Request failed. Headers: Authorization: {authorization}\r\n"),
        )
            .into_response()
    }
}

fn server_error(rng: &mut StdRng) -> Response {
    match rng.random_range(0..4) {
        0 => af_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "AF50000",
            "An internal error occurred. Retry the request.",
        ),
        1 => af_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "AF50000",
            "An internal error occurred.  Retry the request.",
        ),
        2 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(CONTENT_TYPE, "text/html; charset=us-ascii")],
            SERVICE_UNAVAILABLE_HTML,
        )
            .into_response(),
    }
}

/// The page HTTP.sys serves when the application pool is down.
const SERVICE_UNAVAILABLE_HTML: &str = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\"\"http://www.w3.org/TR/html4/strict.dtd\">\r\n\
<HTML><HEAD><TITLE>Service Unavailable</TITLE>\r\n\
<META HTTP-EQUIV=\"Content-Type\" Content=\"text/html; charset=us-ascii\"></HEAD>\r\n\
<BODY><h2>Service Unavailable</h2>\r\n<hr><p>HTTP Error 503. The service is unavailable.</p>\r\n</BODY></HTML>\r\n";
