//! `auditsync verify`: per day (or hour), the launches the Graph audit log query API finds against those
//! the store holds, the `Id`s the store misses, and with `--repair` those records loaded. This answers
//! "our counts differ from Purview": every window is queried afresh (records Purview published late
//! included), so a verify costs one submission per `[graph] window` of the range.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::engine::{self, Ended, Sink};
use super::windows::{Window, grid};
use super::{BackfillError, WindowNote, engine as make_engine};
use crate::api::RequestCounts;
use crate::api::graph::GraphClient;
use crate::config::Settings;
use crate::model::Event;
use crate::stop::Stop;
use crate::store::{QueryPurpose, Reader, StoreError, Writer};
use crate::time::{TimeOrAge, ts};

/// How the comparison is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum By {
    /// UTC days.
    Day,
    /// UTC hours.
    Hour,
}

impl By {
    fn seconds(self) -> i64 {
        match self {
            By::Day => 86_400,
            By::Hour => 3_600,
        }
    }
}

/// How to verify.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--from`.
    pub from: TimeOrAge,
    /// `--to` (default: now).
    pub to: Option<TimeOrAge>,
    /// `--by`.
    pub by: By,
    /// `--repair`: store the missing records.
    pub repair: bool,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Ctrl-C or SIGTERM.
    pub stop: Stop,
}

/// One day's (or hour's) comparison.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Bucket {
    /// The day or hour, RFC 3339.
    pub start: String,
    /// Distinct launch `Id`s the Graph API returned.
    pub graph: u64,
    /// Launches the store holds.
    pub stored: u64,
    /// Of the Graph API's, those the store did not hold.
    pub missing: u64,
    /// Of them, stored by `--repair`.
    pub repaired: u64,
    /// Launches the store holds that the Graph API did not return (past the audit log's retention,
    /// or not searchable yet).
    pub only_stored: u64,
}

/// A launch the store misses.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Missing {
    /// `auditData.Id`.
    pub id: String,
    /// `CreationTime`, RFC 3339.
    pub creation_time: String,
    /// Whether `--repair` stored it.
    pub repaired: bool,
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `complete` (every window compared, nothing missing, or all of it repaired) or `incomplete`.
    pub outcome: &'static str,
    /// The range, RFC 3339.
    pub from: String,
    /// The end of the range, RFC 3339.
    pub to: String,
    /// `day` or `hour`.
    pub by: By,
    /// One row per day or hour of the compared windows.
    pub buckets: Vec<Bucket>,
    /// The missing launches, oldest first.
    pub missing: Vec<Missing>,
    /// Windows that could not be compared in this run (not submitted, failed, still running).
    pub not_verified: Vec<WindowNote>,
    /// Windows over the record cap even at `[graph] min_window`: their comparison is partial.
    pub truncated: Vec<WindowNote>,
    /// Windows whose Graph read may lack records (read below the service's count, or records whose
    /// `auditData` could not be read): their comparison is partial.
    pub partial: Vec<WindowNote>,
    /// Backfill windows whose ledger note (read short, records skipped) this verify cleared: it
    /// compared them whole and nothing is missing from the store there.
    pub backfill_windows_cleared: u64,
    /// Queries submitted.
    pub submitted: u64,
    /// Submissions left of `[graph] daily_submissions` over the last 24 hours.
    pub submissions_left: u64,
    /// The service's answer that stopped submissions (HTTP 429), if any.
    pub throttled: Option<String>,
    /// Graph API requests.
    pub requests: RequestCounts,
}

impl Report {
    /// Missing launches not repaired.
    pub fn unrepaired(&self) -> usize {
        self.missing.iter().filter(|m| !m.repaired).count()
    }

    /// The one line.
    pub fn line(&self) -> String {
        let graph: u64 = self.buckets.iter().map(|b| b.graph).sum();
        let stored: u64 = self.buckets.iter().map(|b| b.stored).sum();
        let repaired = self.missing.len() - self.unrepaired();
        let mut line = format!(
            "verify {} to {}: in the windows compared, the Graph API found {graph} launches, the store holds \
             {stored}; {} missing from the store",
            self.from,
            self.to,
            self.missing.len()
        );
        if repaired > 0 {
            line.push_str(&format!(", {repaired} repaired"));
        }
        if !self.partial.is_empty() || !self.truncated.is_empty() {
            line.push_str(&format!(
                "; {} windows compared in part",
                self.partial.len() + self.truncated.len()
            ));
        }
        line.push_str(&format!(
            "; {} queries submitted ({} of the daily submissions left)",
            self.submitted, self.submissions_left
        ));
        if !self.not_verified.is_empty() {
            line.push_str(&format!(
                "; {} windows not compared: run again",
                self.not_verified.len()
            ));
        }
        line
    }
}

/// A window's comparison, filled page by page.
struct Compare {
    window: Window,
    by: i64,
    repair: bool,
    operations: Vec<String>,
    /// The store's launches of the window with their times (read at the first page).
    stored: Option<HashMap<String, DateTime<Utc>>>,
    stored_by_bucket: BTreeMap<i64, u64>,
    seen: HashSet<String>,
    graph_by_bucket: BTreeMap<i64, u64>,
    missing: Vec<(String, DateTime<Utc>, bool)>,
    only_stored_by_bucket: BTreeMap<i64, u64>,
}

impl Compare {
    fn new(window: Window, by: By, repair: bool, operations: Vec<String>) -> Compare {
        Compare {
            window,
            by: by.seconds(),
            repair,
            operations,
            stored: None,
            stored_by_bucket: BTreeMap::new(),
            seen: HashSet::new(),
            graph_by_bucket: BTreeMap::new(),
            missing: Vec::new(),
            only_stored_by_bucket: BTreeMap::new(),
        }
    }

    fn bucket(&self, t: DateTime<Utc>) -> i64 {
        t.timestamp().div_euclid(self.by) * self.by
    }

    fn load_stored(&mut self, store: &dyn Reader) -> Result<(), StoreError> {
        if self.stored.is_some() {
            return Ok(());
        }
        let ids = store.launch_ids(self.window.0, self.window.1, &self.operations)?;
        for (_, at) in &ids {
            *self.stored_by_bucket.entry(self.bucket(*at)).or_default() += 1;
        }
        self.stored = Some(ids.into_iter().collect());
        Ok(())
    }

    /// After the last page: the store's launches the Graph API did not return.
    fn finish(&mut self) {
        let Some(stored) = &self.stored else { return };
        for (id, at) in stored {
            if !self.seen.contains(id) {
                *self
                    .only_stored_by_bucket
                    .entry(at.timestamp().div_euclid(self.by) * self.by)
                    .or_default() += 1;
            }
        }
    }
}

impl Sink for Compare {
    fn page(
        &mut self,
        store: &mut dyn Writer,
        events: Vec<Event>,
        source: &str,
    ) -> Result<u64, StoreError> {
        self.load_stored(&*store)?;
        let mut absent = Vec::new();
        for event in events {
            // One count per Id: a second read of the query, or a record served twice, counts once.
            if !self.seen.insert(event.id.clone()) {
                continue;
            }
            let Some(at) = crate::time::parse_stored(&event.creation_time) else {
                continue;
            };
            *self.graph_by_bucket.entry(self.bucket(at)).or_default() += 1;
            let stored = self
                .stored
                .as_ref()
                .is_some_and(|s| s.contains_key(&event.id));
            if !stored {
                self.missing.push((event.id.clone(), at, self.repair));
                if self.repair {
                    absent.push(event);
                }
            }
        }
        if absent.is_empty() {
            return Ok(0);
        }
        Ok(store.stage_events(&absent, source)? as u64)
    }
}

/// The range of a verify: whole seconds outwards, refused when empty, inverted or in the future.
fn range(opts: &Options, now: DateTime<Utc>, by: By) -> Result<Window, BackfillError> {
    let to = opts.to.map_or(now, |t| t.at(now));
    let from = opts.from.at(now);
    // An age is rounded down to the start of its day (or hour with --by hour): `--from 3d` compares
    // whole days, as Purview's daily counts do; a time is taken to the second.
    let step = by.seconds();
    let from = match opts.from {
        TimeOrAge::Ago(_) => from.timestamp().div_euclid(step) * step,
        _ => from.timestamp(),
    };
    let from = DateTime::from_timestamp(from, 0).unwrap_or(now);
    let to = DateTime::from_timestamp(
        to.timestamp() + i64::from(to.timestamp_subsec_nanos() > 0),
        0,
    )
    .unwrap_or(to);
    if to > now + TimeDelta::minutes(5) {
        return Err(BackfillError::Range(format!(
            "--to {} is in the future; leave it out (now) or give an earlier time",
            ts(to)
        )));
    }
    if from >= to {
        return Err(BackfillError::Range(format!(
            "--from {} is not before --to {}; give --from earlier than --to",
            ts(from),
            ts(to)
        )));
    }
    Ok((from, to))
}

/// Checks the range and the configuration before any request.
///
/// # Errors
/// [`BackfillError::Range`], [`BackfillError::Config`] (exit 2).
pub fn check(settings: &Settings, opts: &Options) -> Result<(), BackfillError> {
    settings.graph_endpoint()?;
    range(opts, Utc::now(), opts.by).map(|_| ())
}

/// Queries every window of the range afresh and compares.
///
/// # Errors
/// As [`super::run`].
pub async fn run(
    settings: &Settings,
    client: Arc<GraphClient>,
    store: Box<dyn Writer>,
    opts: &Options,
) -> Result<Report, BackfillError> {
    settings.graph_endpoint()?;
    let now = Utc::now();
    let range = range(opts, now, opts.by)?;
    let used = store.graph_submissions_since(now - TimeDelta::hours(24))?;
    let left = u64::from(settings.graph.daily_submissions).saturating_sub(used);
    let requests_before = client.requests();
    let engine = make_engine(
        settings,
        Arc::clone(&client),
        store,
        QueryPurpose::Verify,
        left,
        opts.stop.clone(),
    );
    // The newest first: when the allowance runs out, what is left uncompared is the oldest.
    let rows = grid(range.0, range.1, settings.graph.window)
        .into_iter()
        .rev()
        .map(|w| engine::new_row(QueryPurpose::Verify, w, &settings.sync.operations))
        .collect();
    let (by, repair, ops) = (opts.by, opts.repair, settings.sync.operations.clone());
    let bar = super::progress::Bar::new(opts.progress);
    let ended = engine::drive(
        Arc::clone(&engine),
        rows,
        settings.graph.in_flight as usize,
        move |row| Compare::new(row.window, by, repair, ops.clone()),
        |e, queued| bar.update(e, queued),
    )
    .await;
    bar.finish();
    let committed = engine.commit_pages();
    let ended = ended?;
    committed?;
    if let Some(signal) = opts.stop.requested() {
        return Err(BackfillError::VerifyInterrupted {
            signal,
            repaired: engine.counters.new.load(Ordering::Relaxed),
        });
    }
    let mut report = Report {
        outcome: "complete",
        from: ts(range.0),
        to: ts(range.1),
        by: opts.by,
        buckets: Vec::new(),
        missing: Vec::new(),
        not_verified: Vec::new(),
        truncated: Vec::new(),
        partial: Vec::new(),
        backfill_windows_cleared: 0,
        submitted: engine.budget.used(),
        submissions_left: engine.budget.left(),
        throttled: engine.budget.throttled(),
        requests: client.requests().since(requests_before),
    };
    let whole = compare(&mut report, ended, opts.by);
    // Say why a window was not submitted: the service refused, or the allowance is used up.
    let why_not = match engine.budget.throttled() {
        Some(t) => Some(format!(
            "not submitted: the service refused more submissions ({t})"
        )),
        None if engine.budget.left() == 0 => {
            let frees = super::allowance_frees_at(
                &**engine
                    .store
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                now,
            )?
            .unwrap_or_else(|| now + TimeDelta::hours(24));
            Some(format!(
                "not submitted: [graph] daily_submissions ({}) are used up for the last 24 hours; a run can \
                 submit again from {}",
                settings.graph.daily_submissions,
                ts(frees)
            ))
        }
        None => None,
    };
    if let Some(why) = why_not {
        for w in report
            .not_verified
            .iter_mut()
            .filter(|w| w.note == "not submitted")
        {
            w.note.clone_from(&why);
        }
    }
    report
        .missing
        .sort_by(|a, b| (&a.creation_time, &a.id).cmp(&(&b.creation_time, &b.id)));
    report.not_verified.sort_by(|a, b| a.start.cmp(&b.start));
    report.backfill_windows_cleared = clear_backfill_notes(&engine, &whole)?;
    if report.unrepaired() > 0
        || !report.not_verified.is_empty()
        || !report.truncated.is_empty()
        || !report.partial.is_empty()
    {
        report.outcome = "incomplete";
    }
    Ok(report)
}

/// Puts each window's end into the report: its days (or hours) compared, the missing Ids, the
/// windows not compared or compared in part. Returns the windows compared whole with nothing left
/// missing.
fn compare(report: &mut Report, ended: Vec<(Ended, Compare)>, by: By) -> Vec<Window> {
    let mut buckets: BTreeMap<i64, Bucket> = BTreeMap::new();
    // Windows compared whole with nothing left missing: backfill's notes on them are settled.
    let mut whole: Vec<Window> = Vec::new();
    for (end, mut cmp) in ended {
        match end {
            Ended::Read {
                row,
                short,
                unreadable,
            } => {
                let truncated = row.state == crate::store::QueryState::Truncated;
                if truncated {
                    report.truncated.push(WindowNote::new(
                        row.window,
                        "over the record cap: compared in part",
                    ));
                }
                if let Some((read, about)) = short {
                    report.partial.push(WindowNote::new(
                        row.window,
                        format!("read {read} records of about {about} the service counted: compared in part"),
                    ));
                }
                if !unreadable.is_empty() {
                    report.partial.push(WindowNote::new(
                        row.window,
                        format!(
                            "{} records whose auditData could not be read: compared in part",
                            unreadable.len()
                        ),
                    ));
                }
                if !truncated
                    && short.is_none()
                    && unreadable.is_empty()
                    && cmp.missing.iter().all(|m| m.2)
                {
                    whole.push(row.window);
                }
                cmp.finish();
                // Every day (or hour) of the window has its row, zeros included.
                let by = by.seconds();
                let mut start = row.window.0.timestamp().div_euclid(by) * by;
                while start < row.window.1.timestamp() {
                    bucket(&mut buckets, start);
                    start += by;
                }
                merge(&mut buckets, &cmp);
                report
                    .missing
                    .extend(cmp.missing.iter().map(|(id, at, repaired)| Missing {
                        id: id.clone(),
                        creation_time: ts(*at),
                        repaired: *repaired,
                    }));
            }
            Ended::Split(..) => {}
            Ended::Deferred(w) => report
                .not_verified
                .push(WindowNote::new(w, "not submitted")),
            Ended::Waiting(row) => report
                .not_verified
                .push(WindowNote::new(row.window, "still running at the service")),
            Ended::Failed(w, why) => report.not_verified.push(WindowNote::new(w, why)),
            Ended::Broken(row, why) | Ended::Unsubmitted(row, why) => {
                report.not_verified.push(WindowNote::new(row.window, why));
            }
        }
    }
    report.buckets = buckets.into_values().collect();
    whole
}

/// Clears the notes (read short, records skipped) of backfill windows inside `whole`: this verify read
/// them afresh to the end and the store misses nothing there. Returns how many.
fn clear_backfill_notes(engine: &engine::Engine, whole: &[Window]) -> Result<u64, StoreError> {
    if whole.is_empty() {
        return Ok(0);
    }
    let mut store = engine
        .store
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut cleared = 0;
    for mut row in store.graph_queries(QueryPurpose::Backfill)? {
        let inside = whole
            .iter()
            .any(|w| w.0 <= row.window.0 && row.window.1 <= w.1);
        if inside && row.state == crate::store::QueryState::Loaded && row.error.is_some() {
            row.error = None;
            store.save_query(&row)?;
            cleared += 1;
        }
    }
    Ok(cleared)
}

/// Adds a window's counts to the buckets (a split window's halves meet in the same bucket).
fn merge(buckets: &mut BTreeMap<i64, Bucket>, cmp: &Compare) {
    for (start, n) in &cmp.graph_by_bucket {
        bucket(buckets, *start).graph += n;
    }
    for (start, n) in &cmp.stored_by_bucket {
        bucket(buckets, *start).stored += n;
    }
    for (start, n) in &cmp.only_stored_by_bucket {
        bucket(buckets, *start).only_stored += n;
    }
    for (_, at, repaired) in &cmp.missing {
        let b = bucket(buckets, cmp.bucket(*at));
        b.missing += 1;
        if *repaired {
            b.repaired += 1;
        }
    }
}

/// The bucket starting at `start` (seconds), made empty when new.
fn bucket(buckets: &mut BTreeMap<i64, Bucket>, start: i64) -> &mut Bucket {
    buckets.entry(start).or_insert_with(|| Bucket {
        start: DateTime::from_timestamp(start, 0)
            .map(ts)
            .unwrap_or_default(),
        graph: 0,
        stored: 0,
        missing: 0,
        repaired: 0,
        only_stored: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        crate::time::parse_stored(s).unwrap()
    }

    #[test]
    fn an_age_is_rounded_down_to_a_whole_day_or_hour_and_a_time_is_kept() {
        let now = t("2026-11-30T12:34:56Z");
        let opts = |from: TimeOrAge, to: Option<TimeOrAge>| Options {
            from,
            to,
            by: By::Day,
            repair: false,
            progress: false,
            stop: Stop::new(),
        };
        let days = opts(TimeOrAge::Ago(TimeDelta::days(3)), None);
        assert_eq!(
            range(&days, now, By::Day).unwrap(),
            (t("2026-11-27T00:00:00Z"), now)
        );
        assert_eq!(
            range(&days, now, By::Hour).unwrap().0,
            t("2026-11-27T12:00:00Z")
        );
        let at = opts(TimeOrAge::At(t("2026-11-27T08:15:00Z")), None);
        assert_eq!(
            range(&at, now, By::Day).unwrap().0,
            t("2026-11-27T08:15:00Z")
        );
        let future = opts(
            TimeOrAge::Ago(TimeDelta::days(3)),
            Some(TimeOrAge::At(t("2026-12-30T00:00:00Z"))),
        );
        assert!(
            range(&future, now, By::Day)
                .unwrap_err()
                .to_string()
                .contains("future")
        );
    }
}
