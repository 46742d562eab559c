//! `auditsync sync`: plan the window → list each segment page by page → fetch new blobs concurrently →
//! extract the wanted events → store them through one writer thread.
//!
//! Invariants (design.md): a blob counts as stored exactly when its ledger row exists, and that row
//! commits with its events; the watermark moves only past segments that were listed to the last page
//! and whose blobs are all stored; listing may repeat, fetching consults the ledger first.

pub mod window;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::api::{ApiClient, ApiError};
use crate::config::Settings;
use crate::extract::{BlobError, Filter};
use crate::store::{BlobRef, Store, StoreError, StoredBlob};
use crate::time::ts;
use window::{Plan, Range, WindowError};

/// How a sync can fail as a whole (as opposed to missing some blobs, which is an incomplete run).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Window(#[from] WindowError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("the sync stopped unexpectedly: {0}")]
    Internal(String),
}

impl SyncError {
    pub fn exit_code(&self) -> u8 {
        match self {
            SyncError::Window(_) => 2,
            SyncError::Store(e) => e.exit_code(),
            SyncError::Api(e) => e.exit_code(),
            SyncError::Internal(_) => 1,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--from`/`--to`; `None` for the default window.
    pub range: Option<Range>,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// A blob that was listed but could not be stored this run; the next run tries again.
#[derive(Debug, Clone, Serialize)]
pub struct FailedBlob {
    pub content_id: String,
    pub content_type: String,
    pub content_created: String,
    pub error: String,
}

/// A segment whose listing did not reach its last page.
#[derive(Debug, Clone, Serialize)]
pub struct UnlistedSegment {
    pub content_type: String,
    pub start: String,
    pub end: String,
    pub error: String,
}

/// What a run did, printed as one line or as JSON (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// "complete", "incomplete" (something is missing; the next run retries it) or "failed" (see `error`).
    pub outcome: &'static str,
    pub window_start: String,
    pub window_end: String,
    pub content_types: Vec<String>,
    pub segments: usize,
    pub segments_complete: usize,
    pub pages: usize,
    pub blobs_listed: usize,
    pub blobs_fetched: usize,
    pub blobs_already_stored: usize,
    pub blobs_failed: usize,
    pub records_seen: usize,
    pub events_kept: usize,
    pub events_new: usize,
    pub seconds: f64,
    /// API requests of the run: sent, refused as throttled, sent again.
    pub requests: crate::api::RequestCounts,
    pub watermark: Option<String>,
    pub notes: Vec<String>,
    pub failed_blobs: Vec<FailedBlob>,
    pub unlisted_segments: Vec<UnlistedSegment>,
    /// Blobs listed by an earlier run that expired before they could be stored: reported once.
    pub lost_blobs: Vec<FailedBlob>,
    /// Why the run stopped early, when it did ("failed").
    pub error: Option<String>,
}

impl Summary {
    pub fn complete(&self) -> bool {
        self.outcome == "complete"
    }

    /// The one-line summary.
    pub fn line(&self) -> String {
        let mut s = format!(
            "sync {} to {}: {} segments, {} pages, {} blobs listed ({} fetched, {} already stored), {} events \
             kept ({} new), {} requests ({} throttled), {:.1} s",
            self.window_start,
            self.window_end,
            self.segments,
            self.pages,
            self.blobs_listed,
            self.blobs_fetched,
            self.blobs_already_stored,
            self.events_kept,
            self.events_new,
            self.requests.sent,
            self.requests.throttled,
            self.seconds
        );
        if let Some(e) = &self.error {
            s.push_str(&format!("; FAILED: {e}"));
        } else if !self.complete() {
            s.push_str(&format!(
                "; INCOMPLETE: {} blobs not stored, {} segments not listed to the end (the next run retries \
                 them)",
                self.blobs_failed,
                self.unlisted_segments.len()
            ));
            if !self.lost_blobs.is_empty() {
                s.push_str(&format!(
                    ", {} blobs lost (expired before they could be fetched)",
                    self.lost_blobs.len()
                ));
            }
        }
        s
    }
}

/// Messages to the writer thread, which owns the database connection.
enum ToWriter {
    Listed(Vec<BlobRef>),
    Stored(StoredBlob),
    Failed { content_id: String, error: String },
}

#[derive(Default)]
struct WriterReport {
    stored: HashSet<String>,
    events_kept: usize,
    events_new: usize,
    records_seen: usize,
    error: Option<StoreError>,
}

/// Blobs committed in one transaction at most.
const BATCH: usize = 16;

fn writer(mut store: Store, mut rx: mpsc::Receiver<ToWriter>) -> (Store, WriterReport) {
    let mut report = WriterReport::default();
    let mut next = rx.blocking_recv();
    while let Some(msg) = next.take() {
        let result = match msg {
            ToWriter::Listed(blobs) => store.add_pending(&blobs),
            ToWriter::Failed { content_id, error } => store.note_failure(&content_id, &error),
            ToWriter::Stored(first) => {
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(ToWriter::Stored(b)) => batch.push(b),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                store.store_blobs(&batch).map(|inserted| {
                    for b in &batch {
                        report.stored.insert(b.blob.content_id.clone());
                        report.events_kept += b.events.len();
                        report.records_seen += b.records_seen;
                    }
                    report.events_new += inserted;
                })
            }
        };
        if let Err(e) = result {
            report.error = Some(e);
            break;
        }
        if next.is_none() {
            next = rx.blocking_recv();
        }
    }
    (store, report)
}

/// Counters shared by the stages, shown on the progress bar.
#[derive(Default)]
struct Counters {
    segments_listed: AtomicUsize,
    pages: AtomicUsize,
    listed: AtomicUsize,
    fetched: AtomicUsize,
    kept: AtomicUsize,
}

struct Progress {
    bar: ProgressBar,
    segments: usize,
}

impl Progress {
    fn new(show: bool, segments: usize) -> Progress {
        let bar = if show {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        } else {
            ProgressBar::hidden()
        };
        Progress { bar, segments }
    }

    fn update(&self, c: &Counters) {
        if self.bar.is_hidden() {
            return;
        }
        self.bar.set_message(format!(
            "segments {}/{} · blobs {} fetched of {} listed · events {}",
            c.segments_listed.load(Ordering::Relaxed),
            self.segments,
            c.fetched.load(Ordering::Relaxed),
            c.listed.load(Ordering::Relaxed),
            c.kept.load(Ordering::Relaxed),
        ));
    }
}

/// A segment of one content type, as the listing left it.
struct Listed {
    content_type: String,
    segment: usize,
    error: Option<String>,
    blobs: Vec<String>,
}

/// Plans the window; refuses it before any request if it cannot be done.
///
/// Without a store it only checks the window (its refusals do not depend on the watermark), so a
/// refused run leaves no database behind.
pub fn plan(settings: &Settings, store: Option<&Store>, opts: &Options) -> Result<Plan, SyncError> {
    let watermark = match store {
        Some(s) => s.watermark()?,
        None => None,
    };
    Ok(window::plan(
        Utc::now(),
        &settings.sync,
        opts.range,
        watermark,
    )?)
}

/// A run that went through: the store back (for the caller's reports), the summary, and the error
/// that stopped it early, if one did (no token, no permission, no subscription...).
pub struct Finished {
    pub store: Store,
    pub summary: Summary,
    pub fatal: Option<ApiError>,
}

/// Most pages one segment may take; a service that keeps sending `NextPageUri` is stopped there.
const MAX_PAGES: usize = 10_000;

/// Runs one sync over `plan`. An `Err` means the database failed; everything the service does wrong is
/// in the [`Finished`] summary.
pub async fn run(
    settings: &Settings,
    api: Arc<ApiClient>,
    mut store: Store,
    plan: Plan,
    opts: &Options,
) -> Result<Finished, SyncError> {
    let started = Instant::now();
    let requests_before = api.requests();
    for note in &plan.notes {
        tracing::warn!("{note}");
    }
    let lost: Vec<FailedBlob> = store
        .lost(Utc::now())?
        .into_iter()
        .map(|p| {
            let error = format!(
                "it expired at {} before it could be stored (last error: {}); its events are missing: load \
                 them from a Purview audit export with `auditsync import`",
                p.expiration.map(ts).unwrap_or_default(),
                p.last_error.as_deref().unwrap_or("none")
            );
            tracing::error!("lost: blob {} ({}, created {}): {error}", p.content_id, p.content_type, ts(p.created));
            FailedBlob {
                content_id: p.content_id,
                content_type: p.content_type,
                content_created: ts(p.created),
                error,
            }
        })
        .collect();
    let watermark_before = store.watermark()?;
    // Blobs listed for the window were created in it; an hour's margin covers a service that is
    // loose about the window's edges.
    let known = store.stored_since(plan.start - chrono::TimeDelta::hours(1))?;
    let run_id = store.begin_run((plan.start, plan.end))?;
    let counters = Arc::new(Counters::default());
    let content_types = settings.sync.content_types.clone();
    let progress = Progress::new(opts.progress, plan.segments.len() * content_types.len());

    // Bounded queues keep memory flat whatever the window: a few blobs in flight, a few parsed ones
    // waiting for the writer.
    let (to_writer, writer_rx) = mpsc::channel::<ToWriter>(2 * BATCH);
    let writer = std::thread::Builder::new()
        .name("auditsync-writer".into())
        .spawn(move || writer(store, writer_rx))
        .map_err(|e| SyncError::Internal(format!("cannot start the database writer: {e}")))?;
    let (to_fetch, fetch_rx) = mpsc::channel::<BlobRef>(1024);

    // Listing: content types × segments, each to its last page.
    let lister = {
        let api = api.clone();
        let to_writer = to_writer.clone();
        let counters = counters.clone();
        let segments = plan.segments.clone();
        let known = known.clone();
        async move {
            let mut listed: Vec<Listed> = Vec::new();
            let mut fatal: Option<ApiError> = None;
            let mut dispatched: HashSet<String> = HashSet::new();
            'types: for ct in &content_types {
                for (i, seg) in segments.iter().enumerate() {
                    let mut entry = Listed {
                        content_type: ct.clone(),
                        segment: i,
                        error: None,
                        blobs: Vec::new(),
                    };
                    let mut url = Some(api.content_url(ct, seg.start, seg.end));
                    let mut seen: HashSet<url::Url> = HashSet::new();
                    while let Some(u) = url.take() {
                        if !seen.insert(u.clone()) || seen.len() > MAX_PAGES {
                            entry.error = Some(format!(
                                "the service kept sending NextPageUri ({} pages, or the same page twice); \
                                 the listing was stopped there",
                                seen.len()
                            ));
                            break;
                        }
                        match api.content_page(u, ct).await {
                            Ok(page) => {
                                counters.pages.fetch_add(1, Ordering::Relaxed);
                                counters
                                    .listed
                                    .fetch_add(page.blobs.len(), Ordering::Relaxed);
                                url = page.next;
                                entry
                                    .blobs
                                    .extend(page.blobs.iter().map(|b| b.content_id.clone()));
                                let new: Vec<BlobRef> = page
                                    .blobs
                                    .into_iter()
                                    .filter(|b| !known.contains(&b.content_id))
                                    .collect();
                                if !new.is_empty() {
                                    if to_writer.send(ToWriter::Listed(new.clone())).await.is_err()
                                    {
                                        break 'types;
                                    }
                                    for b in new {
                                        if dispatched.insert(b.content_id.clone())
                                            && to_fetch.send(b).await.is_err()
                                        {
                                            break 'types;
                                        }
                                    }
                                }
                            }
                            Err(e) if is_fatal(&e) => {
                                entry.error = Some(e.to_string());
                                listed.push(entry);
                                fatal = Some(e);
                                break 'types;
                            }
                            Err(e) => {
                                tracing::warn!(
                                    "listing {ct} from {} to {} failed: {e}",
                                    ts(seg.start),
                                    ts(seg.end)
                                );
                                entry.error = Some(e.to_string());
                            }
                        }
                    }
                    counters.segments_listed.fetch_add(1, Ordering::Relaxed);
                    listed.push(entry);
                }
            }
            drop(to_fetch);
            (listed, fatal)
        }
    };

    // Fetching: `concurrency` blobs at a time; parsing off the async workers.
    let filter = Arc::new(Filter::new(&settings.sync.operations));
    let fetcher = {
        let api = api.clone();
        let to_writer = to_writer.clone();
        let counters = counters.clone();
        let progress_bar = &progress;
        let stream = futures_util::stream::unfold(fetch_rx, |mut rx| async move {
            rx.recv().await.map(|b| (b, rx))
        });
        async move {
            let mut failed: Vec<FailedBlob> = Vec::new();
            let mut fatal: Option<ApiError> = None;
            let results = stream
                .map(|blob| {
                    let api = api.clone();
                    let filter = filter.clone();
                    async move {
                        let outcome = match api.fetch_blob(&blob).await {
                            Ok(body) => {
                                let parsed =
                                    tokio::task::spawn_blocking(move || filter.blob(&body)).await;
                                match parsed {
                                    Ok(r) => Ok(r),
                                    Err(e) => Err(Fetch::Internal(e.to_string())),
                                }
                            }
                            Err(e) => Err(Fetch::Api(e)),
                        };
                        (blob, outcome)
                    }
                })
                .buffer_unordered(settings.sync.concurrency);
            let mut results = std::pin::pin!(results);
            while let Some((blob, outcome)) = results.next().await {
                let result = match outcome {
                    Ok(Ok(x)) => Ok(x),
                    Ok(Err(bad)) => Err(malformed(&bad)),
                    Err(Fetch::Api(e)) if is_fatal(&e) => {
                        // Nothing else can succeed: stop; dropping the queue stops the lister too.
                        failed.push(failure(&blob, &e.to_string()));
                        fatal = Some(e);
                        break;
                    }
                    Err(e) => Err(e.to_string()),
                };
                let msg = match result {
                    Ok(x) => {
                        counters.fetched.fetch_add(1, Ordering::Relaxed);
                        counters.kept.fetch_add(x.events.len(), Ordering::Relaxed);
                        ToWriter::Stored(StoredBlob {
                            records_seen: x.seen,
                            events: x.events,
                            blob,
                        })
                    }
                    Err(error) => {
                        tracing::warn!(
                            "blob {} ({}) not stored: {error}",
                            blob.content_id,
                            blob.content_type
                        );
                        failed.push(failure(&blob, &error));
                        ToWriter::Failed {
                            content_id: blob.content_id,
                            error,
                        }
                    }
                };
                progress_bar.update(&counters);
                if to_writer.send(msg).await.is_err() {
                    break;
                }
            }
            (failed, fatal)
        }
    };

    let ((listed, list_fatal), (failed, fetch_fatal)) = tokio::join!(lister, fetcher);
    drop(to_writer);
    progress.bar.finish_and_clear();
    let (mut store, report) = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|e| SyncError::Internal(e.to_string()))?
        .map_err(|_| SyncError::Internal("the database writer stopped unexpectedly".into()))?;
    if let Some(e) = report.error {
        // Best effort: the database is what failed.
        let _ = store.finish_run(run_id, "failed", "{}", &[]);
        return Err(e.into());
    }

    // A blob counts as stored if it was in the ledger before or was committed now.
    let stored = |id: &String| known.contains(id) || report.stored.contains(id);
    let mut per_segment: HashMap<usize, bool> = HashMap::new();
    let mut unlisted = Vec::new();
    let mut all_ids: HashSet<&String> = HashSet::new();
    for l in &listed {
        let ok = l.error.is_none() && l.blobs.iter().all(stored);
        let seg = plan.segments[l.segment];
        if let Some(err) = &l.error {
            unlisted.push(UnlistedSegment {
                content_type: l.content_type.clone(),
                start: ts(seg.start),
                end: ts(seg.end),
                error: err.clone(),
            });
        }
        all_ids.extend(l.blobs.iter());
        *per_segment.entry(l.segment).or_insert(true) &= ok;
    }
    let complete: Vec<bool> = (0..plan.segments.len())
        .map(|i| {
            listed.iter().filter(|l| l.segment == i).count() == settings.sync.content_types.len()
                && per_segment.get(&i).copied().unwrap_or(false)
        })
        .collect();
    let current = if plan.clamped {
        Some(plan.start)
    } else {
        watermark_before
    };
    let watermark = window::advance_watermark(current, &plan.segments, &complete);
    if let Some(w) = watermark.filter(|w| Some(*w) != watermark_before) {
        store.set_watermark(w)?;
    }

    let fatal = list_fatal.or(fetch_fatal);
    let blobs_listed = all_ids.len();
    let outcome = if fatal.is_some() {
        "failed"
    } else if failed.is_empty()
        && unlisted.is_empty()
        && lost.is_empty()
        && complete.iter().all(|c| *c)
    {
        "complete"
    } else {
        "incomplete"
    };
    let summary = Summary {
        outcome,
        window_start: ts(plan.start),
        window_end: ts(plan.end),
        content_types: settings.sync.content_types.clone(),
        segments: plan.segments.len(),
        segments_complete: complete.iter().filter(|c| **c).count(),
        pages: counters.pages.load(Ordering::Relaxed),
        blobs_listed,
        blobs_fetched: report.stored.len(),
        blobs_already_stored: all_ids.iter().filter(|id| known.contains(**id)).count(),
        blobs_failed: failed.len(),
        records_seen: report.records_seen,
        events_kept: report.events_kept,
        events_new: report.events_new,
        seconds: started.elapsed().as_secs_f64(),
        requests: api.requests().since(requests_before),
        watermark: watermark.map(ts),
        notes: plan.notes.clone(),
        failed_blobs: failed,
        unlisted_segments: unlisted,
        lost_blobs: lost,
        error: fatal.as_ref().map(ToString::to_string),
    };
    let reported: Vec<String> = summary
        .lost_blobs
        .iter()
        .map(|b| b.content_id.clone())
        .collect();
    store.finish_run(
        run_id,
        summary.outcome,
        &serde_json::to_string(&summary).unwrap_or_default(),
        &reported,
    )?;
    Ok(Finished {
        store,
        summary,
        fatal,
    })
}

/// Errors after which nothing else in the run can succeed: no token, no permission, no subscription,
/// auditing off, or a URL auditsync refuses to follow.
fn is_fatal(e: &ApiError) -> bool {
    match e {
        ApiError::Auth(_) | ApiError::Unauthorized { .. } | ApiError::Insecure(_) => true,
        ApiError::Service(s) => {
            s.audit_log_off()
                || matches!(
                    s.code.as_str(),
                    "AF10001" | "AF20010" | "AF20011" | "AF20012" | "AF20022" | "AF20023"
                )
        }
        _ => false,
    }
}

enum Fetch {
    Api(ApiError),
    Internal(String),
}

impl std::fmt::Display for Fetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fetch::Api(e) => e.fmt(f),
            Fetch::Internal(e) => write!(f, "parsing stopped unexpectedly: {e}"),
        }
    }
}

fn malformed(e: &BlobError) -> String {
    format!("the blob is malformed: {e}")
}

fn failure(blob: &BlobRef, error: &str) -> FailedBlob {
    FailedBlob {
        content_id: blob.content_id.clone(),
        content_type: blob.content_type.clone(),
        content_created: ts(blob.created),
        error: error.to_owned(),
    }
}
