//! `auditsync backfill` and `auditsync verify`: launches older than the Management Activity API's 7 days,
//! from the Microsoft Graph audit log query API (graph-audit-api.md), into the same store.
//!
//! ```text
//! plan (windows.rs: the grid of `[graph] window` cells, minus what the query ledger covers;
//!       refusals before any request)
//!   └► engine.rs: at most `in_flight` queries; each submitted once (ledger row first), polled,
//!        split at the record cap, read to its last @odata.nextLink, committed with its ledger row
//!   └► Summary (the one line, --json), or verify.rs's per-day comparison
//! ```
//!
//! Invariants: a window counts as loaded only when its query succeeded, was read to the last page and
//! its records committed with its `loaded` ledger row in one transaction; a query the ledger knows is
//! never submitted again while it is usable; submissions stay within `[graph] daily_submissions` over
//! any 24 hours, counted from the ledger.

mod engine;
pub mod verify;
pub mod windows;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::api::RequestCounts;
use crate::api::graph::{GraphClient, GraphError};
use crate::config::{ConfigError, Settings};
use crate::extract::Filter;
use crate::stop::{Signal, Stop};
use crate::store::{QueryPurpose, QueryRow, QueryState, Reader, StoreError, Writer};
use crate::time::{TimeOrAge, ts};
use engine::{Budget, Counters, Ended, Engine, EngineError, Sink};
use windows::{Window, grid, halves, uncovered};

/// How long Power Apps records are kept in the audit log by default (Audit Standard; graph-audit-api.md).
pub const RETENTION: TimeDelta = TimeDelta::days(180);

/// How a backfill or a verify fails as a whole (a run that missed windows is not an error but an
/// incomplete outcome, exit 1).
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// The range cannot be done (exit 2).
    #[error("{0}")]
    Range(String),
    /// The configuration refuses the Graph source (gcc-high, dod, `enabled = false`: exit 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The Graph API refused in a way every query would meet (permissions, auditing off, the cloud).
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A query's task died (a panic).
    #[error("the backfill stopped unexpectedly: {0}")]
    Internal(String),
    /// Ctrl-C or SIGTERM: what was committed stays; the ledger lets the next run go on.
    #[error(
        "interrupted by {signal}: {windows} windows read to the end and committed, {events_new} new events \
         stored (those of windows read in part included); queries still running at the service are in \
         the query ledger, and the next run reads them without submitting them again"
    )]
    Interrupted {
        /// The signal.
        signal: Signal,
        /// Windows read to the end in this run.
        windows: u64,
        /// New events stored, those of windows read in part included.
        events_new: u64,
    },
    /// Ctrl-C or SIGTERM stopped a `verify`: the comparison is not finished.
    #[error(
        "interrupted by {signal}: the comparison is not finished, run verify again; {repaired} missing \
         launches stored by --repair are kept"
    )]
    VerifyInterrupted {
        /// The signal.
        signal: Signal,
        /// Launches `--repair` stored before the stop.
        repaired: u64,
    },
}

impl BackfillError {
    /// 2 for a refused range or configuration, the signal's code, 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            BackfillError::Range(_) => 2,
            BackfillError::Config(e) => e.exit_code(),
            BackfillError::Graph(e) => e.exit_code(),
            BackfillError::Store(e) => e.exit_code(),
            BackfillError::Internal(_) => 1,
            BackfillError::Interrupted { signal, .. }
            | BackfillError::VerifyInterrupted { signal, .. } => signal.exit_code(),
        }
    }
}

impl From<EngineError> for BackfillError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Graph(g) => BackfillError::Graph(g),
            EngineError::Store(s) => BackfillError::Store(s),
            EngineError::Died(why) => BackfillError::Internal(why),
        }
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--from`.
    pub from: TimeOrAge,
    /// `--to`; `None` for now rounded down to a whole `[graph] window` (UTC midnight for day windows).
    pub to: Option<TimeOrAge>,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Ctrl-C or SIGTERM: no more queries are submitted; reading stops between two pages.
    pub stop: Stop,
}

/// What a run will do, decided before any request.
#[derive(Debug)]
pub struct Plan {
    /// The range, whole seconds.
    pub range: Window,
    /// Cells of the grid in the range.
    pub cells: usize,
    /// Windows to submit (parts of cells no ledger row covers), oldest first.
    pub submit: Vec<Window>,
    /// Queries of earlier runs to poll and read (they are usable: never submitted again).
    pub resume: Vec<QueryRow>,
    /// Cells the ledger already covers whole.
    pub loaded_before: usize,
    /// Windows of the range read by earlier runs that may lack records: over the record cap at the
    /// smallest window, read below the service's count, or with records that could not be read.
    /// Every run over them says so (incomplete) until a `verify` finds them whole.
    pub flagged: Vec<QueryRow>,
    /// Submissions this run may make: `daily_submissions` minus those of the last 24 hours.
    pub allowance_left: u64,
    /// When the oldest submission of the last 24 hours ages out (one more is allowed then).
    pub allowance_frees_at: Option<DateTime<Utc>>,
    /// Things to tell the admin (a range past the default retention).
    pub warnings: Vec<String>,
}

/// Checks the range and the configuration; with a store, also what the ledger covers. Refuses before
/// any request.
///
/// # Errors
/// [`BackfillError::Range`] and [`BackfillError::Config`] (exit 2), the store's.
pub fn plan(
    settings: &Settings,
    store: Option<&dyn Reader>,
    opts: &Options,
) -> Result<Plan, BackfillError> {
    settings.graph_endpoint()?;
    let now = Utc::now();
    let range = range(opts.from, opts.to, now, settings.graph.window)?;
    let mut warnings = Vec::new();
    // What was asked, before any rounding to the window grid; an hour's slack, as `--from 180d` is
    // read a moment before this.
    let asked = opts.from.at(now);
    if asked < now - RETENTION - TimeDelta::hours(1) {
        warnings.push(format!(
            "--from {} is more than 180 days ago: Power Apps records are kept 180 days by default (Audit \
             Standard), so older windows come back empty unless a retention policy keeps them longer, and \
             each still costs one of the tenant's daily query submissions (the newest windows go first)",
            ts(asked)
        ));
    }
    let cells = grid(range.0, range.1, settings.graph.window);
    let Some(store) = store else {
        return Ok(Plan {
            range,
            cells: cells.len(),
            submit: cells,
            resume: Vec::new(),
            loaded_before: 0,
            flagged: Vec::new(),
            allowance_left: settings.graph.daily_submissions.into(),
            allowance_frees_at: None,
            warnings,
        });
    };
    // Only the queries made for today's operations count: a window queried before an operation was
    // added to `[sync] operations` is queried again.
    let ops = &settings.sync.operations;
    let rows: Vec<QueryRow> = store
        .graph_queries(QueryPurpose::Backfill)?
        .into_iter()
        .filter(|r| r.display_name == engine::display_name(QueryPurpose::Backfill, r.window, ops))
        .collect();
    let meets = |w: &Window| w.0 < range.1 && w.1 > range.0;
    let resume: Vec<QueryRow> = rows
        .iter()
        .filter(|r| {
            matches!(r.state, QueryState::Submitting | QueryState::Submitted) && meets(&r.window)
        })
        .cloned()
        .collect();
    // A window truncated at a `min_window` larger than today's is queried again, as its halves.
    let truncated_wider = |r: &QueryRow| {
        r.state == QueryState::Truncated && halves(r.window, settings.graph.min_window).is_some()
    };
    let mut covered: Vec<Window> = rows
        .iter()
        .filter(|r| {
            matches!(r.state, QueryState::Loaded | QueryState::Truncated) && !truncated_wider(r)
        })
        .map(|r| r.window)
        .collect();
    let loaded_count = covered.len();
    covered.extend(resume.iter().map(|r| r.window));
    let split: Vec<Window> = rows
        .iter()
        .filter(|r| r.state == QueryState::Split || truncated_wider(r))
        .map(|r| r.window)
        .collect();
    let flagged: Vec<QueryRow> = rows
        .iter()
        .filter(|r| {
            meets(&r.window)
                && !truncated_wider(r)
                && (r.state == QueryState::Truncated
                    || (r.state == QueryState::Loaded && r.error.is_some()))
        })
        .cloned()
        .collect();
    let mut submit = Vec::new();
    let mut loaded_before = 0;
    for cell in &cells {
        let gaps = uncovered(*cell, &covered);
        // Loaded before: covered by read windows alone, not by queries still to be read.
        if uncovered(*cell, &covered[..loaded_count]).is_empty() {
            loaded_before += 1;
        }
        for gap in gaps {
            submit.extend(unsplit(gap, &split, settings.graph.min_window));
        }
    }
    let used = store.graph_submissions_since(now - TimeDelta::hours(24))?;
    Ok(Plan {
        range,
        cells: cells.len(),
        submit,
        resume,
        loaded_before,
        flagged,
        allowance_left: u64::from(settings.graph.daily_submissions).saturating_sub(used),
        allowance_frees_at: allowance_frees_at(store, now)?,
        warnings,
    })
}

/// When the oldest submission (any purpose) of the 24 hours before `now` ages out; `None` when there
/// is none.
pub(crate) fn allowance_frees_at(
    store: &dyn Reader,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let day = TimeDelta::hours(24);
    let mut oldest: Option<DateTime<Utc>> = None;
    for purpose in [QueryPurpose::Backfill, QueryPurpose::Verify] {
        for r in store.graph_queries(purpose)? {
            let counted = r.query_id.is_some() || r.state == QueryState::Submitting;
            if counted && r.submitted_at >= now - day {
                oldest = Some(oldest.map_or(r.submitted_at, |o| o.min(r.submitted_at)));
            }
        }
    }
    Ok(oldest.map(|t| t + day))
}

/// A window an earlier run split (the service said it holds more records than a query returns) is
/// queried as its halves at once, not submitted whole again.
fn unsplit(window: Window, split: &[Window], min: TimeDelta) -> Vec<Window> {
    if split.contains(&window)
        && let Some((a, b)) = halves(window, min)
    {
        let mut out = unsplit(a, split, min);
        out.extend(unsplit(b, split, min));
        return out;
    }
    vec![window]
}

/// `--from`/`--to` as whole seconds (outwards), refused when empty, inverted or in the future. Without
/// `--to`, now rounded down to a whole `window` cell (UTC midnight for day windows): the windows are
/// all whole, so runs on the same day meet the same cells and submit nothing new, and `sync` (which
/// reaches back a day at least) has what is newer.
fn range(
    from: TimeOrAge,
    to: Option<TimeOrAge>,
    now: DateTime<Utc>,
    window: TimeDelta,
) -> Result<Window, BackfillError> {
    let floor = |t: DateTime<Utc>| DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t);
    let ceil = |t: DateTime<Utc>| {
        let s = t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0);
        DateTime::from_timestamp(s, 0).unwrap_or(t)
    };
    let step = window.num_seconds().max(1);
    let grid_floor = |t: DateTime<Utc>| {
        DateTime::from_timestamp(t.timestamp().div_euclid(step) * step, 0).unwrap_or(t)
    };
    let slack = TimeDelta::minutes(5);
    let default_to = to.is_none();
    // Without --to, or with an age, the end is a whole window: reruns meet the same cells.
    let to = match to {
        None => grid_floor(now),
        Some(TimeOrAge::Ago(_)) => grid_floor(to.map_or(now, |t| t.at(now))),
        Some(t) => ceil(t.at(now)),
    };
    // An age for --from is rounded down too: `--from 30d` means the whole day 30 days ago, and
    // `--from 31d` later meets the same cells.
    let from = match from {
        TimeOrAge::Ago(_) => grid_floor(from.at(now)),
        _ => floor(from.at(now)),
    };
    if from > now + slack {
        return Err(BackfillError::Range(format!(
            "--from {} is in the future; give a time or an age before now, e.g. --from 180d",
            ts(from)
        )));
    }
    if to > now + slack {
        return Err(BackfillError::Range(format!(
            "--to {} is in the future; leave it out (the start of the Management API's 7 days) or give --to now",
            ts(to)
        )));
    }
    if from >= to {
        let why = if default_to {
            format!(
                "--from {} is not before {}, the start of the current [graph] window (UTC), where backfill \
                 ends without --to (`auditsync sync` loads what is newer): give an earlier --from, or --to now",
                ts(from),
                ts(to)
            )
        } else {
            format!(
                "--from {} is not before --to {}; give --from earlier than --to",
                ts(from),
                ts(to)
            )
        };
        return Err(BackfillError::Range(why));
    }
    Ok((from, to))
}

/// A window, for the summary.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WindowNote {
    /// `filterStartDateTime`, RFC 3339.
    pub start: String,
    /// `filterEndDateTime`, RFC 3339.
    pub end: String,
    /// What happened to it.
    pub note: String,
}

impl WindowNote {
    fn new(window: Window, note: impl Into<String>) -> WindowNote {
        WindowNote {
            start: ts(window.0),
            end: ts(window.1),
            note: note.into(),
        }
    }
}

/// What a backfill did: the one line, or `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `complete` or `incomplete`.
    pub outcome: &'static str,
    /// The range, RFC 3339.
    pub from: String,
    /// The end of the range, RFC 3339.
    pub to: String,
    /// Cells of `[graph] window` in the range.
    pub windows: usize,
    /// Cells the ledger covered whole before this run.
    pub windows_loaded_before: usize,
    /// Queries read to their end and committed in this run (halves of split windows counted).
    pub queries_read: u64,
    /// Windows split because the service hit its record cap.
    pub windows_split: u64,
    /// Records read from the service.
    pub records_read: u64,
    /// Events new to the store (the rest were stored before, by `sync`, `import` or a backfill).
    pub events_new: u64,
    /// Queries submitted in this run.
    pub submitted: u64,
    /// `[graph] daily_submissions`.
    pub daily_submissions: u32,
    /// Submissions left of it over the last 24 hours, after this run.
    pub submissions_left: u64,
    /// Windows not submitted (allowance used up, or the service's queue full): the next run does them.
    pub deferred: Vec<WindowNote>,
    /// Queries submitted but not finished in this run: the next run reads them without submitting.
    pub waiting: Vec<WindowNote>,
    /// Windows whose query failed, or could not be read to the end, in this run.
    pub failed: Vec<WindowNote>,
    /// Windows at `[graph] min_window` still over the service's record cap: records past the cap lost.
    pub truncated: Vec<WindowNote>,
    /// Windows read far below the service's approximate count, still after a second read.
    pub short: Vec<WindowNote>,
    /// Records whose `auditData` could not be read (wrapper ids; at most 20 kept here).
    pub unreadable: Vec<String>,
    /// How many there were.
    pub unreadable_count: usize,
    /// The service's answer that stopped submissions (HTTP 429), if any.
    pub throttled: Option<String>,
    /// When auditsync's own allowance lets the next submission go (RFC 3339), when it ran out.
    pub submissions_free_from: Option<String>,
    /// Graph API requests.
    pub requests: RequestCounts,
    /// Seconds the run took.
    pub seconds: f64,
}

impl Summary {
    /// Nothing deferred, waiting, failed, truncated, short or unreadable.
    pub fn complete(&self) -> bool {
        self.deferred.is_empty()
            && self.waiting.is_empty()
            && self.failed.is_empty()
            && self.truncated.is_empty()
            && self.short.is_empty()
            && self.unreadable_count == 0
    }

    /// The one line: what was loaded, and what is left.
    pub fn line(&self) -> String {
        let mut line = format!(
            "backfill {} to {}: {} windows, {} loaded before this run; {} queries read, {} records, {} new \
             events; {} queries submitted ({} of {} daily submissions left); {} requests ({} throttled)",
            self.from,
            self.to,
            self.windows,
            self.windows_loaded_before,
            self.queries_read,
            self.records_read,
            self.events_new,
            self.submitted,
            self.submissions_left,
            self.daily_submissions,
            self.requests.sent,
            self.requests.throttled,
        );
        if self.windows_split > 0 {
            line.push_str(&format!(
                "; {} windows split at the record cap",
                self.windows_split
            ));
        }
        if !self.complete() {
            line.push_str(&format!(
                "; incomplete: {} deferred, {} still running at the service, {} failed, {} truncated, {} short, \
                 {} unreadable records: run again",
                self.deferred.len(),
                self.waiting.len(),
                self.failed.len(),
                self.truncated.len(),
                self.short.len(),
                self.unreadable_count
            ));
        }
        line
    }

    /// One line per cause of an incomplete run, for stderr.
    pub fn causes(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(t) = &self.throttled {
            out.push(format!(
                "the service refused more query submissions ({t}); {} windows were deferred to the next run",
                self.deferred.len()
            ));
        } else if !self.deferred.is_empty() {
            let when = self.submissions_free_from.as_deref().map_or_else(
                || "when submissions of the last 24 hours age out".to_owned(),
                |t| format!("from {t}, when the oldest of the last 24 hours ages out"),
            );
            out.push(format!(
                "{} windows were deferred: [graph] daily_submissions ({}) are used up for the last 24 hours; \
                 a run can submit again {when}",
                self.deferred.len(),
                self.daily_submissions
            ));
        }
        if !self.waiting.is_empty() {
            out.push(format!(
                "{} queries are still running at the service (past [graph] query_timeout or stopped); the next \
                 run reads them without submitting them again",
                self.waiting.len()
            ));
        }
        for f in &self.failed {
            out.push(format!("window {} to {}: {}", f.start, f.end, f.note));
        }
        for t in &self.truncated {
            out.push(format!(
                "lost: window {} to {} holds more records than one query returns even at [graph] min_window ({}); \
                 records past the cap are not stored: lower min_window or load this window from a Purview export",
                t.start, t.end, t.note
            ));
        }
        for s in &self.short {
            out.push(format!(
                "window {} to {}: {}; run `auditsync verify --from {} --to {}` to see which are missing",
                s.start, s.end, s.note, s.start, s.end
            ));
        }
        if self.unreadable_count > 0 {
            out.push(format!(
                "{} records could not be read (ids: {}); they are not stored",
                self.unreadable_count,
                self.unreadable.join(", ")
            ));
        }
        out
    }
}

/// A backfill's sink: every page's events are staged in the open transaction.
struct Store;

impl Sink for Store {
    fn page(
        &mut self,
        store: &mut dyn Writer,
        events: Vec<crate::model::Event>,
        source: &str,
    ) -> Result<u64, StoreError> {
        Ok(store.stage_events(&events, source)? as u64)
    }
}

/// The engine for a run of `purpose`.
pub(crate) fn engine(
    settings: &Settings,
    client: Arc<GraphClient>,
    store: Box<dyn Writer>,
    purpose: QueryPurpose,
    allowance_left: u64,
    stop: Stop,
) -> Arc<Engine> {
    Arc::new(Engine {
        client,
        store: Arc::new(Mutex::new(store)),
        filter: Filter::new(&settings.sync.operations),
        operations: settings.sync.operations.clone(),
        purpose,
        poll_interval: settings.graph.poll_interval,
        query_timeout: settings.graph.query_timeout,
        min_window: settings.graph.min_window,
        budget: Budget::new(allowance_left),
        stop,
        counters: Counters::default(),
        store_failed: std::sync::atomic::AtomicBool::new(false),
    })
}

/// Runs the plan: resumed queries first, then the windows to submit.
///
/// # Errors
/// [`BackfillError::Graph`] when the service refuses every query alike, [`BackfillError::Store`],
/// [`BackfillError::Interrupted`].
pub async fn run(
    settings: &Settings,
    client: Arc<GraphClient>,
    store: Box<dyn Writer>,
    plan: Plan,
    opts: &Options,
) -> Result<Summary, BackfillError> {
    let started = std::time::Instant::now();
    let requests_before = client.requests();
    let engine = engine(
        settings,
        Arc::clone(&client),
        store,
        QueryPurpose::Backfill,
        plan.allowance_left,
        opts.stop.clone(),
    );
    // Queries of earlier runs first (they cost no submission), then the newest windows: when the
    // allowance runs out, what is left for the next run is the oldest history.
    let rows: Vec<QueryRow> =
        plan.resume
            .iter()
            .cloned()
            .chain(
                plan.submit.iter().rev().map(|w| {
                    engine::new_row(QueryPurpose::Backfill, *w, &settings.sync.operations)
                }),
            )
            .collect();
    let bar = progress::Bar::new(opts.progress);
    let ended = engine::drive(
        Arc::clone(&engine),
        rows,
        settings.graph.in_flight as usize,
        |_| Store,
        |e, queued| bar.update(e, queued),
    )
    .await;
    bar.finish();
    let committed = engine.commit_pages();
    let ended = ended?;
    committed?;
    let mut summary = Summary {
        outcome: "complete",
        from: ts(plan.range.0),
        to: ts(plan.range.1),
        windows: plan.cells,
        windows_loaded_before: plan.loaded_before,
        queries_read: 0,
        windows_split: 0,
        records_read: engine.counters.records.load(Ordering::Relaxed),
        events_new: engine.counters.new.load(Ordering::Relaxed),
        submitted: engine.budget.used(),
        daily_submissions: settings.graph.daily_submissions,
        submissions_left: engine.budget.left(),
        deferred: Vec::new(),
        waiting: Vec::new(),
        failed: Vec::new(),
        truncated: Vec::new(),
        short: Vec::new(),
        unreadable: Vec::new(),
        unreadable_count: 0,
        throttled: engine.budget.throttled(),
        submissions_free_from: None,
        requests: client.requests().since(requests_before),
        seconds: started.elapsed().as_secs_f64(),
    };
    tell(&mut summary, ended.into_iter().map(|(end, _)| end));
    // What earlier runs read but may lack is said by every run over it.
    for row in &plan.flagged {
        let note = row
            .error
            .clone()
            .unwrap_or_else(|| "over the record cap".into());
        let note = format!("{note} (an earlier run)");
        if row.state == QueryState::Truncated {
            summary.truncated.push(WindowNote::new(row.window, note));
        } else {
            summary.short.push(WindowNote::new(row.window, note));
        }
    }
    summary.windows_split = engine.counters.split.load(Ordering::Relaxed);
    if engine.budget.left() == 0 && !summary.deferred.is_empty() {
        // The submissions of this run count too: the oldest of the last 24 hours decides.
        let frees = plan
            .allowance_frees_at
            .unwrap_or_else(|| Utc::now() + TimeDelta::hours(24));
        summary.submissions_free_from = Some(ts(frees));
    }
    summary.deferred.sort_by(|a, b| a.start.cmp(&b.start));
    summary.failed.sort_by(|a, b| a.start.cmp(&b.start));
    summary.waiting.sort_by(|a, b| a.start.cmp(&b.start));
    if let Some(signal) = opts.stop.requested() {
        return Err(BackfillError::Interrupted {
            signal,
            windows: summary.queries_read,
            events_new: summary.events_new,
        });
    }
    if !summary.complete() {
        summary.outcome = "incomplete";
    }
    Ok(summary)
}

/// Puts each window's end into the summary.
fn tell(summary: &mut Summary, ended: impl Iterator<Item = Ended>) {
    for end in ended {
        match end {
            Ended::Read {
                row,
                short,
                unreadable,
            } => {
                summary.queries_read += 1;
                if row.state == QueryState::Truncated {
                    let note = format!(
                        "about {} records, {} read",
                        row.approximate_count.unwrap_or_default(),
                        row.records_read.unwrap_or_default()
                    );
                    summary.truncated.push(WindowNote::new(row.window, note));
                }
                if let Some((read, about)) = short {
                    let note = format!("read {read} records of about {about} the service counted");
                    summary.short.push(WindowNote::new(row.window, note));
                }
                summary.unreadable_count += unreadable.len();
                let room = 20usize.saturating_sub(summary.unreadable.len());
                summary.unreadable.extend(unreadable.into_iter().take(room));
            }
            Ended::Split(..) => {}
            Ended::Deferred(window) => summary
                .deferred
                .push(WindowNote::new(window, "not submitted")),
            Ended::Waiting(row) => {
                let status = row.service_status.unwrap_or_else(|| "unknown".into());
                summary
                    .waiting
                    .push(WindowNote::new(row.window, format!("status {status}")));
            }
            Ended::Failed(window, why) => summary.failed.push(WindowNote::new(window, why)),
            Ended::Unsubmitted(row, why) => summary.failed.push(WindowNote::new(
                row.window,
                format!(
                    "could not be submitted ({why}); the next run looks for the query in the tenant's \
                     list before it submits the window again"
                ),
            )),
            Ended::Broken(row, why) => summary.failed.push(WindowNote::new(
                row.window,
                format!("{why} (the next run reads the query again)"),
            )),
        }
    }
}

mod progress {
    //! The progress bar on a terminal (stderr): windows queued, running, read; records.

    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

    use super::engine::Engine;

    /// Hidden unless asked for (a terminal on stderr, no `-q`).
    pub(super) struct Bar(ProgressBar);

    impl Bar {
        pub(super) fn new(show: bool) -> Bar {
            if !show {
                return Bar(ProgressBar::hidden());
            }
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            Bar(b)
        }

        pub(super) fn update(&self, e: &Engine, queued: usize) {
            if self.0.is_hidden() {
                return;
            }
            self.0.set_message(format!(
                "windows: {queued} queued, {} running, {} read · records {} ({} new)",
                e.counters.running.load(Ordering::Relaxed),
                e.counters.read.load(Ordering::Relaxed),
                e.counters.records.load(Ordering::Relaxed),
                e.counters.new.load(Ordering::Relaxed),
            ));
        }

        pub(super) fn finish(&self) {
            self.0.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        crate::time::parse_stored(s).unwrap()
    }

    #[test]
    fn the_range_is_refused_before_any_request_when_it_cannot_be_done() {
        let now = t("2026-11-30T12:00:00Z");
        let day = TimeDelta::days(1);
        // Without --to: where sync's 7 days begin, rounded down to a whole day.
        let r = range(TimeOrAge::At(t("2026-06-01T00:00:00Z")), None, now, day).unwrap();
        assert_eq!(r, (t("2026-06-01T00:00:00Z"), t("2026-11-30T00:00:00Z")));
        // An age for --to is a whole window too; equal ages are an empty range, refused.
        let r = range(
            TimeOrAge::Ago(TimeDelta::days(180)),
            Some(TimeOrAge::Ago(TimeDelta::days(7))),
            now,
            day,
        )
        .unwrap();
        assert_eq!(r, (t("2026-06-03T00:00:00Z"), t("2026-11-23T00:00:00Z")));
        let e = range(
            TimeOrAge::Ago(TimeDelta::days(10)),
            Some(TimeOrAge::Ago(TimeDelta::days(10))),
            now,
            day,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not before"), "{e}");
        let r = range(
            TimeOrAge::At(t("2026-06-01T00:00:00Z")),
            None,
            now,
            TimeDelta::hours(7),
        )
        .unwrap();
        // 7-hour cells since the epoch: one starts at 2026-11-30T09:00Z.
        assert_eq!(r.1, t("2026-11-30T09:00:00Z"));
        let e = range(TimeOrAge::At(t("2026-11-30T06:00:00Z")), None, now, day)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sync") && e.contains("--to now"), "{e}");
        let e = range(
            TimeOrAge::At(t("2026-06-02T00:00:00Z")),
            Some(TimeOrAge::At(t("2026-06-01T00:00:00Z"))),
            now,
            day,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not before"), "{e}");
        let e = range(
            TimeOrAge::At(t("2026-06-02T00:00:00Z")),
            Some(TimeOrAge::At(t("2026-12-01T00:00:00Z"))),
            now,
            day,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("future"), "{e}");
        assert_eq!(
            range(
                TimeOrAge::At(t("2026-06-01T00:00:00.5Z")),
                Some(TimeOrAge::At(t("2026-06-02T00:00:00.2Z"))),
                now,
                day
            )
            .unwrap(),
            (t("2026-06-01T00:00:00Z"), t("2026-06-02T00:00:01Z"))
        );
    }

    #[test]
    fn a_window_split_before_is_queried_as_its_halves() {
        let day = (t("2026-06-01T00:00:00Z"), t("2026-06-02T00:00:00Z"));
        let (a, _) = halves(day, TimeDelta::minutes(15)).unwrap();
        let got = unsplit(day, &[day, a], TimeDelta::minutes(15));
        assert_eq!(
            got,
            vec![
                (t("2026-06-01T00:00:00Z"), t("2026-06-01T06:00:00Z")),
                (t("2026-06-01T06:00:00Z"), t("2026-06-01T12:00:00Z")),
                (t("2026-06-01T12:00:00Z"), t("2026-06-02T00:00:00Z")),
            ]
        );
        assert_eq!(unsplit(day, &[], TimeDelta::minutes(15)), vec![day]);
    }
}
