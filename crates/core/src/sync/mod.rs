//! `auditsync sync`, as named stages, each in its own file:
//!
//! ```text
//! plan (window, segments, watermark)
//!   └► source (source.rs; the Management Activity API's is list.rs → fetch.rs)
//!        list  (pages, NextPageUri)  ─► fetch (ledger first, bounded concurrency, extract)
//!                 │ pending                        │ units, failures
//!                 └───────────────►  write (one thread, batched transactions)
//!   └► summary (completeness per segment, the watermark, the one line)
//! ```
//!
//! Invariants (design.md): a unit counts as stored exactly when its ledger row exists, and that row
//! commits with its events; the watermark moves only past segments that were listed to the last page
//! and whose units are all stored; listing may repeat, fetching consults the ledger first.

mod fetch;
mod list;
pub mod plan;
mod progress;
mod source;
pub mod summary;
mod write;

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tracing::Instrument;

use crate::api::{ApiClient, ApiError};
use crate::config::Settings;
use crate::extract::Filter;
use crate::store::{Reader, StoreError, Writer};
use crate::time::ts;
use plan::{Plan, Range, WindowError};
use progress::{Counters, Progress};
use source::{ActivityFeed, Produced, Source};
pub use summary::{FailedBlob, Summary, UnlistedSegment};

/// How a sync can fail as a whole (as opposed to missing some blobs, which is an incomplete run).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The window cannot be done (exit 2).
    #[error(transparent)]
    Window(#[from] WindowError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The API failed before the run could start.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A stage died (a panic or a thread that could not start).
    #[error("the sync stopped unexpectedly: {0}")]
    Internal(String),
    /// Ctrl-C or SIGTERM stopped the run; the writer committed what it had, and the run is recorded as
    /// interrupted (exit 130 or 143).
    #[error(
        "interrupted by {signal}: {blobs} blobs stored ({events_new} new events) are kept; the next run \
         fetches the rest"
    )]
    Interrupted {
        /// The signal.
        signal: crate::stop::Signal,
        /// Blobs this run stored (each with its ledger row).
        blobs: usize,
        /// New events in them.
        events_new: usize,
    },
}

impl SyncError {
    /// 2 for a refused window, the store's or the API's code otherwise, 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            SyncError::Window(_) => 2,
            SyncError::Store(e) => e.exit_code(),
            SyncError::Api(e) => e.exit_code(),
            SyncError::Internal(_) => 1,
            SyncError::Interrupted { signal, .. } => signal.exit_code(),
        }
    }
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--from`/`--to`; `None` for the default window.
    pub range: Option<Range>,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Raised by Ctrl-C or SIGTERM: listing and fetching stop, what was fetched is committed.
    pub stop: crate::stop::Stop,
}

/// Plans the window; refuses it before any request if it cannot be done.
///
/// Without a store it only checks the window (its refusals do not depend on the watermark), so a
/// refused run leaves no database behind.
///
/// # Errors
/// [`SyncError::Window`] (exit 2), or the store's error reading the watermark.
pub fn plan(
    settings: &Settings,
    store: Option<&dyn Reader>,
    opts: &Options,
) -> Result<Plan, SyncError> {
    let watermark = match store {
        Some(s) => s.watermark()?,
        None => None,
    };
    Ok(plan::window(
        Utc::now(),
        &settings.sync,
        opts.range,
        watermark,
    )?)
}

/// A run that went through: the store back (for the caller's reports), the summary, and the error
/// that stopped it early, if one did (no token, no permission, no subscription...).
pub struct Finished {
    /// The store, still holding the run lock.
    pub store: Box<dyn Writer>,
    /// What the run did.
    pub summary: Summary,
    /// The error that stopped it early.
    pub fatal: Option<ApiError>,
}

/// Runs one sync over `plan`: the Management Activity API's activity feed into `store`. An `Err` means
/// the database failed; everything the service does wrong is in the [`Finished`] summary.
///
/// # Errors
/// [`SyncError::Store`] when the database fails, [`SyncError::Internal`] when a stage dies.
pub async fn run(
    settings: &Settings,
    api: Arc<ApiClient>,
    store: Box<dyn Writer>,
    plan: Plan,
    opts: &Options,
) -> Result<Finished, SyncError> {
    let source = ActivityFeed {
        api: &api,
        content_types: settings.sync.content_types.clone(),
        concurrency: settings.sync.concurrency,
        filter: Arc::new(Filter::new(&settings.sync.operations)),
    };
    let span = tracing::info_span!(
        "sync",
        run = tracing::field::Empty,
        start = %ts(plan.start),
        end = %ts(plan.end)
    );
    drive(&source, store, plan, opts).instrument(span).await
}

/// Wires the stages for one source: the lost blobs, the run's record, the writer thread, the source,
/// then completeness, the watermark and the summary.
async fn drive(
    source: &impl Source,
    mut store: Box<dyn Writer>,
    plan: Plan,
    opts: &Options,
) -> Result<Finished, SyncError> {
    let started = Instant::now();
    let requests_before = source.requests();
    for note in &plan.notes {
        tracing::warn!("{note}");
    }
    let lost = summary::lost_blobs(store.as_ref(), Utc::now())?;
    let watermark_before = store.watermark()?;
    // Units listed for the window were created in it; an hour's margin covers a service that is
    // loose about the window's edges.
    let known = store.stored_since(plan.start - chrono::TimeDelta::hours(1))?;
    let run_id = store.begin_run((plan.start, plan.end))?;
    tracing::Span::current().record("run", run_id);
    let counters = Counters::default();
    let progress = Progress::new(opts.progress, plan.segments.len() * source.streams().len());

    let (to_writer, writer) = write::spawn(store)?;
    // A stop drops the source (its requests, and its sender to the writer), so the writer commits what
    // it was sent and ends.
    let produced = tokio::select! {
        p = source.produce(&plan.segments, &known, to_writer, &counters, &progress) => Ok(p),
        signal = opts.stop.wait() => Err(signal),
    };
    progress.finish();
    let (mut store, report) = writer.join().await?;
    let Produced {
        listed,
        failed,
        fatal,
    } = match produced {
        Ok(p) => p,
        Err(signal) => return Err(interrupted(store.as_mut(), run_id, signal, &report)),
    };
    if let Some(e) = report.error {
        // Best effort: the database is what failed. `status` shows why.
        let why = serde_json::json!({ "outcome": "failed", "error": e.to_string() });
        let _ = store.finish_run(run_id, "failed", &why.to_string(), &[]);
        return Err(e.into());
    }

    let found = summary::assess(
        &plan,
        &listed,
        source.streams().len(),
        &known,
        &report.stored,
    );
    let watermark = advance(store.as_mut(), &plan, watermark_before, &found.complete)?;
    let summary = Summary {
        outcome: found.outcome(fatal.is_some(), failed.is_empty() && lost.is_empty()),
        window_start: ts(plan.start),
        window_end: ts(plan.end),
        content_types: source.streams().to_vec(),
        segments: plan.segments.len(),
        segments_complete: found.complete.iter().filter(|c| **c).count(),
        pages: Counters::get(&counters.pages),
        blobs_listed: found.listed,
        blobs_fetched: report.stored.len(),
        blobs_already_stored: found.already_stored,
        blobs_failed: failed.len(),
        records_seen: report.records_seen,
        events_kept: report.events_kept,
        events_new: report.events_new,
        seconds: started.elapsed().as_secs_f64(),
        requests: source.requests().since(requests_before),
        watermark: watermark.map(ts),
        notes: plan.notes.clone(),
        failed_blobs: failed,
        unlisted_segments: found.unlisted,
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
    tracing::debug!(outcome = summary.outcome, "run finished");
    Ok(Finished {
        store,
        summary,
        fatal,
    })
}

/// Records a run that Ctrl-C or SIGTERM stopped (outcome `interrupted`, what it stored, why), and
/// the error that says so. The watermark does not move: the listing was cut short.
fn interrupted(
    store: &mut dyn Writer,
    run_id: i64,
    signal: crate::stop::Signal,
    report: &write::WriterReport,
) -> SyncError {
    let summary = serde_json::json!({
        "outcome": "interrupted",
        "blobs_fetched": report.stored.len(),
        "events_kept": report.events_kept,
        "events_new": report.events_new,
        "error": format!("interrupted by {signal}"),
    });
    if let Some(e) = &report.error {
        tracing::error!("{e}");
    }
    if let Err(e) = store.finish_run(run_id, "interrupted", &summary.to_string(), &[]) {
        tracing::error!("the run could not be recorded as interrupted: {e}");
    }
    SyncError::Interrupted {
        signal,
        blobs: report.stored.len(),
        events_new: report.events_new,
    }
}

/// Moves the watermark to the end of the unbroken run of complete segments (see
/// [`plan::advance_watermark`]); a clamped window accepts the gap behind its start, which was reported.
fn advance(
    store: &mut dyn Writer,
    plan: &Plan,
    before: Option<chrono::DateTime<Utc>>,
    complete: &[bool],
) -> Result<Option<chrono::DateTime<Utc>>, StoreError> {
    let current = if plan.clamped {
        Some(plan.start)
    } else {
        before
    };
    let watermark = plan::advance_watermark(current, &plan.segments, complete);
    if let Some(w) = watermark.filter(|w| Some(*w) != before) {
        store.set_watermark(w)?;
    }
    Ok(watermark)
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
