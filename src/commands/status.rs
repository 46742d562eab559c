//! `auditsync status [--json]`: what the database holds and how the last run went.

use std::io::Write;

use chrono::Utc;
use serde::Serialize;

use super::{load_settings, stdout_error};
use crate::cli::{GlobalArgs, StatusArgs};
use crate::error::{Error, Outcome};
use auditsync_core::redact::redact;
use auditsync_core::store::{self, OperationCount, QuarantinedRecord};
use auditsync_core::time::ts;

#[derive(Serialize)]
struct Status {
    database: String,
    watermark: Option<String>,
    last_run: Option<LastRun>,
    events: Vec<OperationCount>,
    ledger_blobs: i64,
    pending_blobs: usize,
    pending_first_expiration: Option<String>,
    lost_blobs: i64,
    /// Records that could not be read, kept in the `quarantine` table (their blobs' other records
    /// are stored).
    quarantined_records: i64,
    /// The newest of them, newest first.
    quarantine_newest: Vec<QuarantinedRecord>,
}

/// How many of the newest quarantined records `status` shows.
const QUARANTINE_SHOWN: usize = 5;

#[derive(Serialize)]
struct LastRun {
    started_at: String,
    finished_at: Option<String>,
    /// "complete", "incomplete", "failed"; "interrupted" when it never finished, unless it is running.
    outcome: String,
    /// The sync holding the lock ("pid 123, since …") when the last run is still going.
    #[serde(skip_serializing_if = "Option::is_none")]
    running: Option<String>,
    summary: Option<serde_json::Value>,
}

pub async fn run(args: StatusArgs, global: &GlobalArgs) -> Result<Outcome, Error> {
    let settings = load_settings(global)?;
    let store = store::open_read(&settings.database)?;
    let pending = store.pending()?;
    let quarantine = store.quarantine(QUARANTINE_SHOWN)?;
    let status = Status {
        database: settings.database.display().to_string(),
        watermark: store.watermark()?.map(ts),
        last_run: store.last_run()?.map(|r| {
            // A run that has not finished is still going while a writer holds the lock.
            let running = store
                .writer()
                .filter(|_| r.outcome.is_none())
                .map(str::to_owned);
            LastRun {
                started_at: r.started_at.map_or_else(|| "unknown".to_owned(), ts),
                finished_at: r.finished_at.map(ts),
                outcome: match (r.outcome, &running) {
                    (Some(o), _) => o,
                    (None, Some(_)) => "running".into(),
                    (None, None) => "interrupted".into(),
                },
                running,
                summary: r.summary.and_then(|s| serde_json::from_str(&s).ok()),
            }
        }),
        events: store.events_by_operation()?,
        ledger_blobs: store.ledger_size()?,
        pending_blobs: pending.len(),
        pending_first_expiration: pending.iter().filter_map(|p| p.expiration).min().map(ts),
        lost_blobs: store.lost_count()?,
        quarantined_records: quarantine.0,
        quarantine_newest: quarantine.1,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let text = serde_json::to_string_pretty(&status).unwrap_or_default();
        // The stored texts were redacted when written; a database from before that was not.
        writeln!(out, "{}", redact(&text)).map_err(stdout_error)?;
        return Ok(Outcome::Done);
    }
    let mut lines = vec![format!("database:   {}", status.database)];
    lines.push(format!(
        "watermark:  {}",
        status
            .watermark
            .as_deref()
            .unwrap_or("none yet (no run has completed a segment)")
    ));
    lines.push(match &status.last_run {
        None => "last run:   none".to_owned(),
        Some(r) => {
            let detail = r
                .summary
                .as_ref()
                .map(|s| {
                    let why = s["error"]
                        .as_str()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default();
                    format!(
                        ", {} blobs fetched, {} events kept{why}",
                        s["blobs_fetched"], s["events_kept"]
                    )
                })
                .unwrap_or_default();
            match &r.running {
                Some(holder) => format!("last run:   {} running now ({holder})", r.started_at),
                None => format!("last run:   {} {}{detail}", r.started_at, r.outcome),
            }
        }
    });
    if status.events.is_empty() {
        lines.push("events:     none".to_owned());
    }
    for e in &status.events {
        lines.push(format!(
            "events:     {} {} ({} to {})",
            e.events, e.operation, e.first, e.last
        ));
    }
    lines.push(format!("ledger:     {} blobs stored", status.ledger_blobs));
    lines.push(match pending.iter().filter_map(|p| p.expiration).min() {
        None if pending.is_empty() => "pending:    none".to_owned(),
        None => format!("pending:    {} blobs not yet fetched", pending.len()),
        Some(first) if first <= Utc::now() => format!(
            "pending:    {} blobs not yet fetched; the first expired at {} (the next sync reports it lost)",
            pending.len(),
            ts(first)
        ),
        Some(first) => format!(
            "pending:    {} blobs not yet fetched; the first expires {} (in {} hours)",
            pending.len(),
            ts(first),
            (first - Utc::now()).num_hours()
        ),
    });
    if status.lost_blobs > 0 {
        lines.push(format!(
            "lost:       {} blobs expired before they could be fetched (see the runs that reported them)",
            status.lost_blobs
        ));
    }
    lines.extend(quarantine_lines(&status));
    for l in lines {
        writeln!(out, "{}", redact(&l)).map_err(stdout_error)?;
    }
    Ok(Outcome::Done)
}

/// The quarantine's lines of the text output: how many records, and the newest few; none when empty.
fn quarantine_lines(status: &Status) -> Vec<String> {
    if status.quarantined_records == 0 {
        return Vec::new();
    }
    let mut lines = vec![format!(
        "quarantine: {} records could not be read and are kept aside (table quarantine, with their \
         text); their blobs' other records are stored. Newest:",
        status.quarantined_records
    )];
    for q in &status.quarantine_newest {
        lines.push(format!(
            "            {} blob {} ({}) record {}: {}",
            q.quarantined_at,
            q.origin,
            q.content_type.as_deref().unwrap_or("?"),
            q.position,
            q.reason
        ));
    }
    lines
}
