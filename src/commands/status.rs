//! `auditsync status [--json]`: what the database holds and how the last run went.

use std::io::Write;

use chrono::Utc;
use serde::Serialize;

use super::{load_settings, stdout_error};
use crate::cli::{GlobalArgs, StatusArgs};
use crate::error::{Error, Outcome};
use auditsync_core::redact::redact;
use auditsync_core::store::{self, OperationCount, QuarantinedRecord, StoreError};
use auditsync_core::time::ts;

#[derive(Serialize)]
struct Status {
    database: String,
    /// The sync, import or prune holding the database now ("pid 123, since …"), if one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    running: Option<String>,
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
    /// The Graph query ledger of `backfill`.
    graph: GraphStatus,
}

/// What the query ledger says of `backfill`.
#[derive(Serialize, Default)]
struct GraphStatus {
    /// Windows loaded (read to the end and committed), truncated ones included.
    windows_loaded: usize,
    /// The oldest and newest instant a loaded window covers.
    loaded_from: Option<String>,
    loaded_to: Option<String>,
    /// Queries submitted and not read yet: the next `backfill` reads them without submitting.
    queries_pending: usize,
    /// Windows over the record cap even at the smallest window.
    windows_truncated: usize,
    /// Queries of any purpose submitted in the last 24 hours (against `[graph] daily_submissions`).
    submissions_last_24h: u64,
}

/// The query ledger's summary.
fn graph_status(store: &dyn store::Reader) -> Result<GraphStatus, Error> {
    use auditsync_core::store::{QueryPurpose, QueryState};
    let rows = store.graph_queries(QueryPurpose::Backfill)?;
    let loaded: Vec<_> = rows
        .iter()
        .filter(|r| matches!(r.state, QueryState::Loaded | QueryState::Truncated))
        .collect();
    Ok(GraphStatus {
        windows_loaded: loaded.len(),
        loaded_from: loaded.iter().map(|r| r.window.0).min().map(ts),
        loaded_to: loaded.iter().map(|r| r.window.1).max().map(ts),
        queries_pending: rows
            .iter()
            .filter(|r| matches!(r.state, QueryState::Submitting | QueryState::Submitted))
            .count(),
        windows_truncated: rows
            .iter()
            .filter(|r| r.state == QueryState::Truncated)
            .count(),
        submissions_last_24h: store
            .graph_submissions_since(Utc::now() - chrono::TimeDelta::hours(24))?,
    })
}

/// The query ledger's lines of the text output; none when no backfill ever ran.
fn graph_lines(g: &GraphStatus) -> Vec<String> {
    if g.windows_loaded == 0 && g.queries_pending == 0 && g.submissions_last_24h == 0 {
        return Vec::new();
    }
    let mut line = format!(
        "backfill:   {} windows loaded through Graph",
        g.windows_loaded
    );
    if let (Some(from), Some(to)) = (&g.loaded_from, &g.loaded_to) {
        line.push_str(&format!(" ({from} to {to})"));
    }
    if g.queries_pending > 0 {
        line.push_str(&format!(
            "; {} queries submitted and not read yet (run `auditsync backfill` again)",
            g.queries_pending
        ));
    }
    if g.windows_truncated > 0 {
        line.push_str(&format!(
            "; {} windows over the record cap (records lost)",
            g.windows_truncated
        ));
    }
    line.push_str(&format!(
        "; {} queries submitted in the last 24 hours",
        g.submissions_last_24h
    ));
    vec![line]
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
    /// Why it failed or was interrupted, on one line and at most [`ERROR_CHARS`] characters (the
    /// whole text is in `summary.error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    summary: Option<serde_json::Value>,
}

/// The longest error `status` prints; a service's answer can be long.
const ERROR_CHARS: usize = 300;

/// An error on one line, cut at [`ERROR_CHARS`] characters.
fn shorten(error: &str) -> String {
    let line = error.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(ERROR_CHARS) {
        Some((at, _)) => format!(
            "{}… (see `auditsync status --json` for all of it)",
            &line[..at]
        ),
        None => line,
    }
}

/// `last run:   <started> <outcome>, <blobs> blobs fetched, <events> events kept: <why>`, or the run
/// going on now.
fn last_run_line(run: Option<&LastRun>) -> String {
    match run {
        None => "last run:   none".to_owned(),
        Some(r) => {
            let counts = r
                .summary
                .as_ref()
                .and_then(|s| Some((s["blobs_fetched"].as_u64()?, s["events_kept"].as_u64()?)))
                .map(|(blobs, events)| format!(", {blobs} blobs fetched, {events} events kept"))
                .unwrap_or_default();
            let why = r
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            let detail = format!("{counts}{why}");
            match &r.running {
                Some(holder) => format!("last run:   {} running ({holder})", r.started_at),
                None => format!("last run:   {} {}{detail}", r.started_at, r.outcome),
            }
        }
    }
}

/// What `status` can say while a sync writes the database through another name of the file (a hard
/// link): who runs; the rest cannot be read safely through this name until it is done.
fn written_elsewhere(
    database: &std::path::Path,
    owner: &str,
    json: bool,
) -> Result<Outcome, Error> {
    let mut out = std::io::stdout().lock();
    let text = if json {
        serde_json::json!({ "database": database.display().to_string(), "running": owner })
            .to_string()
    } else {
        format!(
            "database:   {}\nnow:        running ({owner})\n            the rest shows once it is done (SQLite \
             cannot read the database through this name while it is written through another)",
            database.display()
        )
    };
    writeln!(out, "{text}").map_err(stdout_error)?;
    Ok(Outcome::Done)
}

pub async fn run(args: StatusArgs, global: &GlobalArgs) -> Result<Outcome, Error> {
    let settings = load_settings(global)?;
    let store = match store::open_read(&settings.database) {
        Err(StoreError::WrittenElsewhere { owner, .. }) => {
            return written_elsewhere(&settings.database, &owner, args.json);
        }
        other => other?,
    };
    let pending = store.pending()?;
    let quarantine = store.quarantine(QUARANTINE_SHOWN)?;
    let status = Status {
        database: settings.database.display().to_string(),
        running: store.writer().map(str::to_owned),
        watermark: store.watermark()?.map(ts),
        last_run: store.last_run()?.map(|r| {
            // A run that has not finished is still going while a writer holds the lock.
            let running = store
                .writer()
                .filter(|_| r.outcome.is_none())
                .map(str::to_owned);
            let summary: Option<serde_json::Value> =
                r.summary.and_then(|s| serde_json::from_str(&s).ok());
            LastRun {
                started_at: r.started_at.map_or_else(|| "unknown".to_owned(), ts),
                finished_at: r.finished_at.map(ts),
                outcome: match (r.outcome, &running) {
                    (Some(o), _) => o,
                    (None, Some(_)) => "running".into(),
                    (None, None) => "interrupted".into(),
                },
                running,
                error: summary
                    .as_ref()
                    .and_then(|s| s["error"].as_str())
                    .map(shorten),
                summary,
            }
        }),
        events: store.events_by_operation()?,
        ledger_blobs: store.ledger_size()?,
        pending_blobs: pending.len(),
        pending_first_expiration: pending.iter().filter_map(|p| p.expiration).min().map(ts),
        lost_blobs: store.lost_count()?,
        quarantined_records: quarantine.0,
        quarantine_newest: quarantine.1,
        graph: graph_status(store.as_ref())?,
    };
    // Everything is read: the database (and its shared lock, which keeps writers out) is let go
    // before a byte is written, so a pager left open or a full pipe never holds up a sync.
    drop(store);
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
    lines.push(last_run_line(status.last_run.as_ref()));
    // A writer that has not recorded its run yet, or an import or prune (they record none).
    if let Some(holder) = status
        .running
        .as_ref()
        .filter(|_| status.last_run.as_ref().is_none_or(|r| r.running.is_none()))
    {
        lines.push(format!("now:        running ({holder})"));
    }
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
    lines.extend(graph_lines(&status.graph));
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
