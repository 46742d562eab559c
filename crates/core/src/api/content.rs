//! `subscriptions/content` (listing, page by page, following `NextPageUri` exactly as given) and blob
//! retrieval at `contentUri` (management-api.md §1.2, §2.3).

use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use url::Url;

use super::{ApiClient, ApiError};
use crate::model::BlobRef;
use crate::time::parse_time;

/// One page of a listing.
#[derive(Debug)]
pub struct ContentPage {
    /// The blobs the page lists, in the service's order; a blob listed without `contentType` takes
    /// the one asked for.
    pub blobs: Vec<BlobRef>,
    /// The next page's URL, from the `NextPageUri` header (or `NextPageUrl`, as the troubleshooting
    /// guide spells it), exactly as the service gave it.
    pub next: Option<Url>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    #[serde(default)]
    content_type: Option<String>,
    content_id: String,
    content_uri: String,
    content_created: String,
    #[serde(default)]
    content_expiration: Option<String>,
}

impl ApiClient {
    /// The first page's URL for `[start, end)` of one content type. Times go out in the documented
    /// `YYYY-MM-DDTHH:MM:SS` form, UTC.
    pub fn content_url(&self, content_type: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Url {
        let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
        self.feed_url(
            "subscriptions/content",
            &[
                ("contentType", content_type),
                ("startTime", &fmt(start)),
                ("endTime", &fmt(end)),
            ],
        )
    }

    /// Fetches one page of a listing (`url` is a first-page URL or a `NextPageUri`).
    ///
    /// # Errors
    /// [`ApiError::Decode`] when the body is not a JSON array of content objects, a `contentCreated`
    /// is not a time, or a `NextPageUri` is there but is not a URL (see [`next_page`]); otherwise what [`ApiClient::send`] returns
    /// (AF20022 or AF20023 when the subscription is missing or disabled).
    pub async fn content_page(
        &self,
        url: Url,
        content_type: &str,
    ) -> Result<ContentPage, ApiError> {
        let call = format!("subscriptions/content for {content_type}");
        let answer = self
            .send(Method::GET, url.clone(), &call, Some(content_type))
            .await
            .map_err(|e| with_window(e, &url))?;
        let next = next_page(&answer.headers, &url).map_err(|reason| ApiError::Decode {
            call: call.clone(),
            reason,
        })?;
        let items: Vec<Item> =
            serde_json::from_slice(&answer.body).map_err(|e| ApiError::Decode {
                call: call.clone(),
                reason: e.to_string(),
            })?;
        let blobs = items
            .into_iter()
            .map(|i| {
                let created = parse_time(&i.content_created).ok_or_else(|| ApiError::Decode {
                    call: call.clone(),
                    reason: format!("contentCreated {:?} is not a time", i.content_created),
                })?;
                Ok(BlobRef {
                    content_type: i.content_type.unwrap_or_else(|| content_type.to_owned()),
                    content_id: i.content_id,
                    content_uri: i.content_uri,
                    created,
                    expiration: i.content_expiration.as_deref().and_then(parse_time),
                })
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(ContentPage { blobs, next })
    }

    /// Downloads one blob at its `contentUri` (with `PublisherIdentifier`), whole, and at most
    /// `[sync] blob_size_limit_mib` after decompression.
    ///
    /// # Errors
    /// [`ApiError::Decode`] when `contentUri` is not a URL, [`ApiError::Insecure`] when it is not on
    /// the API host, [`ApiError::TooLarge`] past the limit; otherwise what [`ApiClient::send`] returns
    /// (AF20051 once the blob has expired).
    pub async fn fetch_blob(&self, blob: &BlobRef) -> Result<Bytes, ApiError> {
        let url = Url::parse(&blob.content_uri).map_err(|e| ApiError::Decode {
            call: format!("blob {}", blob.content_id),
            reason: format!("its contentUri {:?} is not a URL ({e})", blob.content_uri),
        })?;
        let call = format!("blob {}", blob.content_id);
        let answer = self
            .send_limited(
                Method::GET,
                url,
                &call,
                Some(&blob.content_type),
                self.blob_limit,
            )
            .await?;
        Ok(answer.body)
    }
}

/// A refusal of a listing with the `startTime` and `endTime` the request carried, so that an AF20055
/// names them.
fn with_window(e: ApiError, url: &Url) -> ApiError {
    match e {
        ApiError::Service(mut s) => {
            let param = |name: &str| {
                url.query_pairs()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.into_owned())
            };
            if let (Some(start), Some(end)) = (param("startTime"), param("endTime")) {
                s.window = Some((start, end));
            }
            ApiError::Service(s)
        }
        other => other,
    }
}

/// The next page's URL from a page's headers: `NextPageUri`, or `NextPageUrl` as the troubleshooting
/// guide spells it; `Ok(None)` only when neither header is there (management-api.md §1.2: "keep
/// fetching until a response has no NextPageUri"). A header that is there but cannot be followed
/// (bytes that are not visible ASCII, an empty value, two different values, a value that is not an
/// absolute URL nor a path on the page's host) is an error: reading it as "no more pages" would count
/// a segment as listed that was not.
///
/// # Errors
/// A sentence saying what the header held, for [`ApiError::Decode`].
pub(super) fn next_page(headers: &HeaderMap, page: &Url) -> Result<Option<Url>, String> {
    let mut found: Option<(&str, Url)> = None;
    for name in ["NextPageUri", "NextPageUrl"] {
        for value in headers.get_all(name) {
            let text = value.to_str().map_err(|_| {
                format!(
                    "its {name} header is not text (bytes {}); the next page cannot be asked for",
                    shown_bytes(value.as_bytes())
                )
            })?;
            let text = text.trim();
            if text.is_empty() {
                return Err(format!(
                    "its {name} header is empty; a last page has no {name} at all"
                ));
            }
            let url = match Url::parse(text) {
                Ok(u) => u,
                // Absolute as documented; a path is taken on the page's host.
                Err(url::ParseError::RelativeUrlWithoutBase) if text.starts_with('/') => {
                    page.join(text).map_err(|e| not_a_url(name, text, &e))?
                }
                Err(e) => return Err(not_a_url(name, text, &e)),
            };
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(format!(
                    "its {name} header {:?} is not an http(s) URL",
                    shorten(text)
                ));
            }
            match &found {
                Some((_, first)) if *first != url => {
                    return Err(format!(
                        "it names two different next pages ({} headers); auditsync cannot tell which to follow",
                        name
                    ));
                }
                _ => found = Some((name, url)),
            }
        }
    }
    Ok(found.map(|(_, u)| u))
}

fn not_a_url(name: &str, text: &str, e: &url::ParseError) -> String {
    format!("its {name} header {:?} is not a URL ({e})", shorten(text))
}

/// At most 200 characters of a header value, for a message.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The first bytes of a value that is not text, in hex, for a message.
fn shown_bytes(bytes: &[u8]) -> String {
    let mut out: Vec<String> = bytes.iter().take(16).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > 16 {
        out.push("…".to_owned());
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ServiceError;

    fn refused(code: &str, start: &str, end: &str) -> String {
        let url = Url::parse(&format!(
            "https://manage.office.com/api/v1.0/t/activity/feed/subscriptions/content?contentType=Audit.General&startTime={start}&endTime={end}"
        ))
        .unwrap();
        let e = ApiError::Service(Box::new(ServiceError {
            status: 400,
            code: code.into(),
            message: "Start time and end time must both be specified (or both omitted) and must be less than or \
                      equal to 24 hours apart, with the start time prior to end time and start time no more than 7 \
                      days in the past."
                .into(),
            call: "subscriptions/content for Audit.General".into(),
            content_type: Some("Audit.General".into()),
            window: None,
            tenant_id: "t".into(),
            client_id: "c".into(),
            cloud: crate::config::Cloud::Commercial,
        }));
        with_window(e, &url).to_string()
    }

    /// An empty or inverted window is named as such, with the bounds the request carried; only a
    /// well-formed one blames the clock.
    #[test]
    fn a_refused_window_names_its_bounds_and_blames_the_clock_only_when_it_may_be_the_cause() {
        for (start, end) in [
            ("2026-11-28T12:00:00", "2026-11-28T12:00:00"),
            ("2026-11-28T12:00:01", "2026-11-28T12:00:00"),
        ] {
            let msg = refused("AF20055", start, end);
            assert!(
                msg.contains(start) && msg.contains(end) && msg.contains("not before the end"),
                "{msg}"
            );
            assert!(!msg.contains("clock"), "{msg}");
        }
        let msg = refused("AF20030", "2026-11-20T00:00:00", "2026-11-21T01:00:00");
        assert!(
            msg.contains("more than 24 hours apart") && !msg.contains("clock"),
            "{msg}"
        );
        let msg = refused("AF20055", "2026-11-20T00:00:00", "2026-11-20T01:00:00");
        assert!(
            msg.contains("2026-11-20T00:00:00") && msg.contains("clock"),
            "{msg}"
        );
    }

    use reqwest::header::HeaderValue;

    fn page() -> Url {
        Url::parse("https://manage.office.com/api/v1.0/t/activity/feed/subscriptions/content?x=1")
            .unwrap()
    }

    fn with(name: &str, value: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.append(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
        h
    }

    #[test]
    fn no_header_is_the_last_page_and_a_good_one_is_followed() {
        assert_eq!(next_page(&HeaderMap::new(), &page()), Ok(None));
        let next =
            "https://manage.office.com/api/v1/t/activity/feed/subscriptions/content?nextPage=2";
        for name in ["NextPageUri", "nextpageuri", "NextPageUrl"] {
            let got = next_page(&with(name, next.as_bytes()), &page()).unwrap();
            assert_eq!(got.unwrap().as_str(), next, "{name}");
        }
        let got = next_page(&with("NextPageUri", b" /api/v1/t/x?nextPage=3 "), &page()).unwrap();
        assert_eq!(
            got.unwrap().as_str(),
            "https://manage.office.com/api/v1/t/x?nextPage=3"
        );
    }

    #[test]
    fn a_header_that_cannot_be_followed_is_an_error_never_the_last_page() {
        for bad in [
            &b"\xff\xfe"[..],
            b"https://manage.office.com/api/v1/\xe9t\xe9",
            b"",
            b"   ",
            b"\t",
            b"not a url",
            b"nextPage=2",
            b"ftp://manage.office.com/x",
            b"https://",
            b"mailto:admin@example.com",
        ] {
            for name in ["NextPageUri", "NextPageUrl"] {
                let got = next_page(&with(name, bad), &page());
                assert!(got.is_err(), "{name}: {bad:?} gave {got:?}");
            }
        }
        let mut two = with("NextPageUri", b"https://manage.office.com/a");
        two.append(
            "NextPageUrl",
            HeaderValue::from_static("https://manage.office.com/b"),
        );
        assert!(next_page(&two, &page()).is_err());
        let err = next_page(&with("NextPageUri", b"\xff\xfe"), &page()).unwrap_err();
        assert!(err.contains("not text (bytes ff fe)"), "{err}");
    }
}
