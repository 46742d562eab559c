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
            .await?;
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
