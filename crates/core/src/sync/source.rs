//! The seam between where units of work come from and the writer, ledger and watermark logic they all
//! go through. A [`Source`] turns a plan's segments into units for the writer and says, per segment
//! and stream, what it listed; `sync::run` does the rest (the writer thread, completeness, the
//! watermark, the summary).
//!
//! [`ActivityFeed`] is the Management Activity API: the list stage (content pages, `NextPageUri`) and
//! the fetch stage (blobs, bounded concurrency). The Graph audit log query API is the next source: a
//! query's records become units the same way.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::fetch::fetch;
use super::list::{Listed, Outlets, list};
use super::plan::Segment;
use super::progress::{Counters, Progress};
use super::summary::FailedBlob;
use super::write::ToWriter;
use crate::api::{ApiClient, ApiError, RequestCounts};
use crate::extract::Filter;

/// What a source reports when it is done.
pub(crate) struct Produced {
    /// Per segment and stream: what was listed and whether the listing reached its end.
    pub(crate) listed: Vec<Listed>,
    /// Units listed but not stored (the next run retries them).
    pub(crate) failed: Vec<FailedBlob>,
    /// The error that stopped the source early, if one did (no token, no permission…).
    pub(crate) fatal: Option<ApiError>,
}

/// Where units of work come from.
pub(crate) trait Source {
    /// The streams each segment is produced for (content types); a segment is complete when each of
    /// them listed it to the end and all it listed is stored.
    fn streams(&self) -> &[String];

    /// Requests sent so far by the source's client (sent, throttled, retried).
    fn requests(&self) -> RequestCounts;

    /// Why the source stopped sending requests before it was done, if it did (identical failures in a
    /// row, the run's deadline).
    fn stopped(&self) -> Option<String>;

    /// Produces the units of `segments` into `writer`, skipping those in `known` (the ledger).
    fn produce(
        &self,
        segments: &[Segment],
        known: &HashSet<String>,
        writer: mpsc::Sender<ToWriter>,
        counters: &Counters,
        progress: &Progress,
    ) -> impl Future<Output = Produced>;
}

/// The Management Activity API's activity feed: content listings and their blobs.
pub(crate) struct ActivityFeed<'a> {
    /// The client (token, pacing, retries).
    pub(crate) api: &'a Arc<ApiClient>,
    /// Content types to list.
    pub(crate) content_types: Vec<String>,
    /// Blobs fetched at once.
    pub(crate) concurrency: usize,
    /// Which records are kept.
    pub(crate) filter: Arc<Filter>,
}

/// Blobs listed but not yet being fetched: a page or two of them.
const FETCH_QUEUE: usize = 1024;

impl Source for ActivityFeed<'_> {
    fn streams(&self) -> &[String] {
        &self.content_types
    }

    fn requests(&self) -> RequestCounts {
        self.api.requests()
    }

    fn stopped(&self) -> Option<String> {
        self.api.stopped().map(|s| s.to_string())
    }

    async fn produce(
        &self,
        segments: &[Segment],
        known: &HashSet<String>,
        writer: mpsc::Sender<ToWriter>,
        counters: &Counters,
        progress: &Progress,
    ) -> Produced {
        let (to_fetch, fetch_rx) = mpsc::channel(FETCH_QUEUE);
        let outlets = Outlets {
            writer: &writer,
            fetch: to_fetch,
            known,
            counters,
        };
        let lister = list(self.api, &self.content_types, segments, outlets);
        let fetcher = fetch(
            self.api,
            self.filter.clone(),
            self.concurrency,
            fetch_rx,
            &writer,
            counters,
            progress,
        );
        let ((listed, list_fatal), (failed, fetch_fatal)) = tokio::join!(lister, fetcher);
        Produced {
            listed,
            failed,
            fatal: list_fatal.or(fetch_fatal),
        }
    }
}
