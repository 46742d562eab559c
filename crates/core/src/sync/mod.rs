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
pub use summary::{FailedBlob, Loss, Summary, UnlistedSegment};

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
    let now = Utc::now();
    let mut waiting = None;
    let (watermark, trusted) = match store {
        Some(s) => {
            let mut w = s.watermark()?;
            // Blobs listed by an earlier run but not stored (an interrupted or failed backfill) are
            // fetched by the next run: its window reaches back to the oldest the API still serves.
            if opts.range.is_none() {
                let pending = s.pending()?;
                if let Some(oldest) = pending
                    .iter()
                    .map(|p| p.created)
                    .filter(|c| *c >= plan::earliest_start(now))
                    .min()
                    .filter(|c| w.is_none_or(|w| *c < w))
                {
                    w = Some(oldest);
                    waiting = Some((pending.len(), oldest));
                }
            }
            // Only a watermark in the future needs the earlier runs' ends.
            let trusted = match w {
                Some(w) if w > now + plan::FUTURE_SKEW => {
                    s.watermark_not_after(now + plan::FUTURE_SKEW)?
                }
                _ => None,
            };
            (w, trusted)
        }
        None => (None, None),
    };
    let mut plan = plan::window(now, &settings.sync, opts.range, watermark, trusted)?;
    if let Some((count, oldest)) = waiting {
        plan.notes.push(format!(
            "{count} blobs listed by an earlier run are not stored yet (an interrupted or failed sync); \
             the window reaches back to {}, the oldest of them, to fetch them",
            ts(oldest)
        ));
    }
    Ok(plan)
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
    mut store: Box<dyn Writer>,
    mut plan: Plan,
    opts: &Options,
) -> Result<Finished, SyncError> {
    kept_operations(store.as_mut(), &settings.sync.operations, &mut plan)?;
    let source = ActivityFeed {
        api: &api,
        content_types: settings.sync.content_types.clone(),
        concurrency: settings.sync.concurrency,
        filter: Arc::new(Filter::new(&settings.sync.operations)),
    };
    // The deadline counts from here: the plan and the lock are done, the requests begin.
    api.set_deadline(settings.sync.run_deadline);
    let span = tracing::info_span!(
        "sync",
        run = tracing::field::Empty,
        start = %ts(plan.start),
        end = %ts(plan.end)
    );
    drive(&source, store, plan, opts).instrument(span).await
}

/// The ledger knows which operations its blobs were kept for. When the configured `operations` name
/// one that earlier runs did not keep (a misspelt name corrected, an operation added), the blobs
/// those runs stored no longer count as stored (`store::Reader::stored_since`): a run that lists
/// them fetches them again, and the alert says how to do so for the API's whole 7 days at once.
/// A first run (or a database from before this was recorded) takes the ledger as kept for the
/// configured operations; fewer operations than before need nothing fetched again.
fn kept_operations(
    store: &mut dyn Writer,
    configured: &[String],
    plan: &mut Plan,
) -> Result<(), SyncError> {
    let mut now: Vec<String> = configured.to_vec();
    now.sort();
    now.dedup();
    let Some((before, since)) = store.ledger_operations()? else {
        store.set_ledger_operations(&now, None)?;
        return Ok(());
    };
    let added: Vec<&str> = now
        .iter()
        .filter(|o| !before.contains(o))
        .map(String::as_str)
        .collect();
    if added.is_empty() {
        if before != now {
            store.set_ledger_operations(&now, since)?;
        }
        return Ok(());
    }
    let at = Utc::now();
    store.set_ledger_operations(&now, Some(at))?;
    plan.alerts.push(format!(
        "operations now include {} that earlier runs did not keep (they kept {}): the blobs they stored \
         will be fetched again when listed; to collect these operations for the whole of the API's 7 days \
         now, run `auditsync sync --from {}` once (later, a --from it refuses as too old names the \
         earliest it accepts; with 1-hour segments the 7 days need `segment_count_limit = 168` or \
         `time_interval = 6` in [sync]); launches older than that only come from a Purview export \
         (`auditsync import`)",
        added.join(", "),
        if before.is_empty() {
            "none".to_owned()
        } else {
            before.join(", ")
        },
        crate::time::ts(plan::earliest_start(at))
    ));
    Ok(())
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
    for alert in &plan.alerts {
        tracing::error!("{alert}");
    }
    let mut lost = summary::lost_blobs(store.as_ref(), Utc::now(), &[])?;
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
        mut failed,
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

    // A unit that failed past its expiry (or expired while the run went on) is lost now: reported by
    // this run, not retried by the next.
    let late = summary::lost_blobs(store.as_ref(), Utc::now(), &lost)?;
    failed.retain(|f| !late.iter().any(|l| l.content_id == f.content_id));
    lost.extend(late);
    let losses = summary::losses(&plan, &lost, report.quarantined);
    // A lost unit is settled (reported, never to be fetched): the watermark may move past it.
    let settled: std::collections::HashSet<String> = report
        .stored
        .iter()
        .cloned()
        .chain(lost.iter().map(|l| l.content_id.clone()))
        .collect();
    let found = summary::assess(&plan, &listed, source.streams().len(), &known, &settled);
    let watermark = advance(store.as_mut(), &plan, watermark_before, &found.complete)?;
    let summary = Summary {
        outcome: found.outcome(fatal.is_some(), failed.is_empty() && losses.is_empty()),
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
        quarantined: report.quarantined,
        seconds: started.elapsed().as_secs_f64(),
        requests: source.requests().since(requests_before),
        watermark: watermark.map(ts),
        notes: plan.notes.clone(),
        alerts: plan.alerts.clone(),
        losses,
        failed_blobs: failed,
        unlisted_segments: found.unlisted,
        lost_blobs: lost,
        error: fatal
            .as_ref()
            .map(|e| crate::redact::redact(&e.to_string()).into_owned()),
        // Made of the service's answer (which may quote the request): hidden like `error`.
        stopped: source
            .stopped()
            .map(|s| crate::redact::redact(&s).into_owned()),
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
/// [`plan::advance_watermark`]) from the plan's: the stored one, or the window's start when it had to
/// reach back as far as the API serves (a gap behind it was reported; or the stored watermark was in
/// the future, so it may move back).
fn advance(
    store: &mut dyn Writer,
    plan: &Plan,
    before: Option<chrono::DateTime<Utc>>,
    complete: &[bool],
) -> Result<Option<chrono::DateTime<Utc>>, StoreError> {
    let watermark = plan::advance_watermark(plan.watermark, &plan.segments, complete);
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use chrono::TimeDelta;
    use tokio::sync::mpsc;

    use super::list::Listed;
    use super::plan::Segment;
    use super::progress::{Counters, Progress};
    use super::source::{Produced, Source};
    use super::write::ToWriter;
    use super::*;
    use crate::api::RequestCounts;
    use crate::model::BlobRef;
    use crate::store::RunLock;

    /// A source that lists one blob in the first segment and fails to fetch it, its
    /// `contentExpiration` already past (it expired while the run went on).
    struct FailsPastExpiry {
        streams: Vec<String>,
        blob: BlobRef,
    }

    impl Source for FailsPastExpiry {
        fn streams(&self) -> &[String] {
            &self.streams
        }

        fn requests(&self) -> RequestCounts {
            RequestCounts::default()
        }

        fn stopped(&self) -> Option<String> {
            None
        }

        async fn produce(
            &self,
            segments: &[Segment],
            _known: &HashSet<String>,
            writer: mpsc::Sender<ToWriter>,
            _counters: &Counters,
            _progress: &Progress,
        ) -> Produced {
            let error = "the content expired (AF20051)".to_owned();
            writer
                .send(ToWriter::Listed(vec![self.blob.clone()]))
                .await
                .unwrap();
            writer
                .send(ToWriter::Failed {
                    key: self.blob.content_id.clone(),
                    error: error.clone(),
                })
                .await
                .unwrap();
            Produced {
                listed: (0..segments.len())
                    .map(|i| Listed {
                        stream: self.streams[0].clone(),
                        segment: i,
                        error: None,
                        cause: None,
                        keys: if i == 0 {
                            vec![self.blob.content_id.clone()]
                        } else {
                            Vec::new()
                        },
                    })
                    .collect(),
                failed: vec![FailedBlob::new(&self.blob, &error, &error)],
                fatal: None,
            }
        }
    }

    #[tokio::test]
    async fn a_blob_that_fails_past_its_expiry_is_lost_in_that_run_and_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let open =
            || crate::store::open_write(&path, RunLock::try_acquire(&path).unwrap()).unwrap();
        let now = Utc::now();
        let plan = plan::window(
            now,
            &crate::config::SyncSettings::default(),
            None,
            None,
            None,
        )
        .unwrap();
        let source = FailsPastExpiry {
            streams: vec!["Audit.General".into()],
            blob: BlobRef {
                content_type: "Audit.General".into(),
                content_id: "expired-while-failing".into(),
                content_uri: "https://x/expired-while-failing".into(),
                created: plan.start + TimeDelta::minutes(1),
                expiration: Some(now - TimeDelta::seconds(1)),
            },
        };
        let done = drive(&source, open(), plan.clone(), &Options::default())
            .await
            .unwrap();
        let s = done.summary;
        assert_eq!(s.outcome, "incomplete", "a loss is not complete");
        assert!(
            s.failed_blobs.is_empty(),
            "not retried: {:?}",
            s.failed_blobs
        );
        assert_eq!(s.lost_blobs.len(), 1);
        assert_eq!(s.losses[0].kind, "lost_blobs");
        assert_eq!(s.losses[0].count, 1);
        assert!(s.line().contains("LOST: 1 blobs expired"), "{}", s.line());
        assert_eq!(
            s.watermark.as_deref(),
            Some(crate::time::ts(plan.end).as_str()),
            "settled: the watermark moves on"
        );
        drop(done.store);
        // The next run does not report it again.
        let plan = plan::window(
            Utc::now(),
            &crate::config::SyncSettings::default(),
            None,
            None,
            None,
        )
        .unwrap();
        let again = drive(&source, open(), plan, &Options::default())
            .await
            .unwrap();
        assert!(
            again.summary.losses.is_empty(),
            "{:?}",
            again.summary.losses
        );
    }
}
