//! The fetch stage: blobs the ledger does not hold yet (the list stage filtered them), `concurrency` at
//! a time, each a task on the runtime's workers that downloads it at its `contentUri` and parses it
//! there; a unit or a failure goes to the writer for each, in the order they finish.

use std::sync::Arc;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::is_fatal;
use super::progress::{Counters, Progress};
use super::summary::FailedBlob;
use super::write::ToWriter;
use crate::api::{ApiClient, ApiError};
use crate::extract::{Extracted, Filter};
use crate::model::{BlobRef, LedgerEntry, Unit};

/// How one blob's fetch ended.
enum Fetched {
    Parsed(Extracted),
    /// The blob is not JSON, or not a JSON array (unreadable records inside an array are
    /// quarantined, not this).
    Malformed(String),
    Api(ApiError),
    /// The blob's task died (a panic): reported, not hidden.
    Internal(String),
}

/// Fetches and parses every blob that arrives on `rx`, until it closes or an error nothing can get
/// past stops the stage (returned; dropping `rx` then stops the list stage too).
pub(crate) async fn fetch(
    api: &Arc<ApiClient>,
    filter: Arc<Filter>,
    concurrency: usize,
    rx: mpsc::Receiver<BlobRef>,
    to_writer: &mpsc::Sender<ToWriter>,
    counters: &Counters,
    progress: &Progress,
) -> (Vec<FailedBlob>, Option<ApiError>) {
    let mut failed = Vec::new();
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
    let results = stream
        .map(|blob| {
            let span = tracing::debug_span!("blob", content_id = %blob.content_id);
            let task = fetch_one(api.clone(), filter.clone(), blob.clone()).instrument(span);
            let task = Aborting(tokio::spawn(task));
            async move {
                let outcome = task.await;
                (blob, outcome)
            }
        })
        .buffer_unordered(concurrency);
    let mut results = std::pin::pin!(results);
    while let Some((blob, outcome)) = results.next().await {
        let error = match outcome {
            Fetched::Parsed(x) => {
                Counters::add(&counters.fetched, 1);
                Counters::add(&counters.kept, x.events.len());
                progress.update(counters);
                warn_quarantined(&blob, &x);
                let unit = Unit {
                    ledger: LedgerEntry::Blob(blob),
                    events: x.events,
                    records_seen: x.seen,
                    quarantined: x.quarantined,
                };
                if to_writer.send(ToWriter::Stored(unit)).await.is_err() {
                    break;
                }
                continue;
            }
            Fetched::Api(e) if is_fatal(&e) => {
                // Nothing else can succeed: stop; dropping the queue stops the list stage too.
                failed.push(FailedBlob::new(&blob, &e.to_string(), &e.cause()));
                return (failed, Some(e));
            }
            Fetched::Api(e) => (e.to_string(), e.cause()),
            Fetched::Malformed(e) => {
                let error = format!("the blob is malformed: {e}");
                (error.clone(), error)
            }
            Fetched::Internal(e) => {
                let error = format!("parsing stopped unexpectedly: {e}");
                (error.clone(), error)
            }
        };
        let (error, cause) = error;
        // At -v: the command prints the blobs not stored grouped by cause.
        tracing::debug!(
            "blob {} ({}) not stored: {error}",
            blob.content_id,
            blob.content_type
        );
        failed.push(FailedBlob::new(&blob, &error, &cause));
        progress.update(counters);
        let msg = ToWriter::Failed {
            key: blob.content_id,
            error,
        };
        if to_writer.send(msg).await.is_err() {
            break;
        }
    }
    (failed, None)
}

/// A task that is aborted when its handle is dropped (a stopped run drops the fetch stage, and with it
/// the downloads in flight).
struct Aborting(tokio::task::JoinHandle<Fetched>);

impl Drop for Aborting {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::future::Future for Aborting {
    type Output = Fetched;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Fetched> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|done| done.unwrap_or_else(|e| Fetched::Internal(e.to_string())))
    }
}

/// Bodies up to this size are parsed on the runtime worker that downloaded them (a blob of the
/// usual size, under a few MB, in a few milliseconds; a hop to the blocking pool cost more: threads
/// woken, the body freed on another thread). A larger one, which could hold a worker for seconds
/// while other downloads wait on it, goes to the blocking pool.
const PARSE_INLINE: usize = 8 << 20;

/// Downloads one blob and parses it.
async fn fetch_one(api: Arc<ApiClient>, filter: Arc<Filter>, blob: BlobRef) -> Fetched {
    let body = match api.fetch_blob(&blob).await {
        Ok(body) => body,
        Err(e) => return Fetched::Api(e),
    };
    let parsed = if body.len() <= PARSE_INLINE {
        filter.blob(&body)
    } else {
        match tokio::task::spawn_blocking(move || filter.blob(&body)).await {
            Ok(parsed) => parsed,
            Err(e) => return Fetched::Internal(e.to_string()),
        }
    };
    match parsed {
        Ok(x) => {
            tracing::debug!(
                records = x.seen,
                kept = x.events.len(),
                quarantined = x.quarantined_count(),
                "parsed"
            );
            Fetched::Parsed(x)
        }
        Err(bad) => Fetched::Malformed(bad.to_string()),
    }
}

/// One WARN line for a blob with unreadable records, however many (a blob may hold millions): how
/// many, and the first one's position and reason; each record's own at debug level.
fn warn_quarantined(blob: &BlobRef, x: &Extracted) {
    let Some(first) = x.quarantined.first() else {
        return;
    };
    for q in &x.quarantined {
        tracing::debug!(
            "blob {}: record {} quarantined: {}",
            blob.content_id,
            q.position,
            q.reason
        );
    }
    let count = x.quarantined_count();
    let records = if count == 1 { "record" } else { "records" };
    tracing::warn!(
        "blob {} ({}): {count} {records} could not be read and are quarantined, the others kept; \
         the first, record {}: {}",
        blob.content_id,
        blob.content_type,
        first.position,
        first.reason
    );
}
