//! `subscriptions/content` (listing, page by page, following `NextPageUri` exactly as given) and blob
//! retrieval at `contentUri` (management-api.md §1.2, §2.3).

use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::Method;
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
    /// is not a time, or the next page's URL is not a URL; otherwise what [`ApiClient::send`] returns
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
        let next = ["NextPageUri", "NextPageUrl"]
            .iter()
            .find_map(|h| answer.headers.get(*h))
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| {
                // Absolute as documented; a relative one is resolved against the page it came with.
                url.join(v).map_err(|e| ApiError::Decode {
                    call: call.clone(),
                    reason: format!("its NextPageUri {v:?} is not a URL ({e})"),
                })
            })
            .transpose()?;
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

    /// Downloads one blob at its `contentUri` (with `PublisherIdentifier`), whole.
    ///
    /// # Errors
    /// [`ApiError::Decode`] when `contentUri` is not a URL, [`ApiError::Insecure`] when it is not on
    /// the API host; otherwise what [`ApiClient::send`] returns (AF20051 once the blob has expired).
    pub async fn fetch_blob(&self, blob: &BlobRef) -> Result<Bytes, ApiError> {
        let url = Url::parse(&blob.content_uri).map_err(|e| ApiError::Decode {
            call: format!("blob {}", blob.content_id),
            reason: format!("its contentUri {:?} is not a URL ({e})", blob.content_uri),
        })?;
        let call = format!("blob {}", blob.content_id);
        let answer = self
            .send(Method::GET, url, &call, Some(&blob.content_type))
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
}
