//! One Graph audit query's life, shared by `backfill` and `verify`: submitted once (a ledger row
//! written before the POST, so a killed run finds it again), polled until it ends, split when the
//! service says it hit its record cap, read to its last `@odata.nextLink`, and its records committed
//! with its ledger row in one transaction. And the scheduler that keeps at most `in_flight` queries
//! going within the run's share of the tenant's daily submissions.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::windows::{Window, halves};
use crate::api::graph::{GraphClient, GraphError, GraphRecord, NewQuery, QueryInfo, QueryStatus};
use crate::extract::{Filter, RecordError};
use crate::model::Event;
use crate::stop::Stop;
use crate::store::{QueryPurpose, QueryRow, QueryState, StoreError, Writer};
use crate::time::ts;

/// How far below `approximateReturnedRecordCount` a read may end before it is called short: the count
/// is approximate (graph-audit-api.md, "Completeness"), so a read of at least 99 % of it passes.
const SHORT_READ_SHARE: f64 = 0.99;

/// The record cap the reference documents as the least a query returns (graph-audit-api.md,
/// "Completeness"), for a service that does not say its `recordCountLimit`.
const DOCUMENTED_RECORD_CAP: u64 = 1_000_000;

/// New events after which a run commits the pages it has staged once, before any window is whole.
const EARLY_COMMIT: u64 = 1_000;

/// How many times one run submits a window again after its query failed or vanished.
const RESUBMITS: u32 = 1;

/// The store, shared by the queries of a run (one writer; each call holds it briefly).
pub(crate) type SharedStore = Arc<Mutex<Box<dyn Writer>>>;

/// Why a query could not be done in this run, when it stops the whole run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The service refused in a way every other query would meet too (permissions, auditing off,
    /// the wrong cloud or audience, no token).
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A query's task died (a panic).
    #[error("a Graph query's task stopped unexpectedly: {0}")]
    Died(String),
}

/// What the records of one query's pages go to: `backfill` stores them, `verify` compares them with
/// the store (and stores the missing ones with `--repair`). Called with the store held.
pub(crate) trait Sink: Send + 'static {
    /// Takes one page's kept events (the raw record being `auditData`'s exact text); returns how many
    /// were new to the store.
    ///
    /// # Errors
    /// The store's.
    fn page(
        &mut self,
        store: &mut dyn Writer,
        events: Vec<Event>,
        source: &str,
    ) -> Result<u64, StoreError>;
}

/// How one window ended in this run.
#[derive(Debug)]
pub(crate) enum Ended {
    /// Read to the end and committed with its ledger row (`Loaded`, or `Truncated` at the smallest
    /// window, what was read being all there is).
    Read {
        /// The ledger row as committed.
        row: QueryRow,
        /// `(read, approximate)` when the read ended far below the service's count, still after a
        /// second read.
        short: Option<(u64, u64)>,
        /// Records whose `auditData` could not be read (their wrapper `id`, or `?`).
        unreadable: Vec<String>,
    },
    /// The service hit its record cap: the window was replaced by its halves.
    Split(Window, Window),
    /// Not submitted in this run: the allowance is used up, or the service's queue is full.
    Deferred(Window),
    /// Submitted, but not finished within `query_timeout` or before a stop: the next run reads it.
    Waiting(QueryRow),
    /// The service ended the query `failed` or `cancelled` (or it vanished), and it was not submitted
    /// again (the message says why).
    Failed(Window, String),
    /// The submission got no usable answer twice (or a stop came), and the query is not in the
    /// tenant's list: the row stays `submitting`, counted against the allowance, and the next run
    /// looks for the query again before it submits the window.
    Unsubmitted(QueryRow, String),
    /// The query is usable but could not be polled or read to its end in this run (the service or
    /// the network kept failing, still after the retries): the next run reads it.
    Broken(QueryRow, String),
}

/// How a submission went.
enum Submit {
    /// The query has an id (created, or found in the tenant's list).
    Done,
    /// Not submitted: no allowance left, or the service refused more (429).
    Deferred,
    /// No usable answer, and not in the list (the message says why).
    Failed(String),
}

/// How reading a query's pages ended.
enum Pages {
    /// To the last page: records read, events new, records that could not be read.
    Done(u64, u64, Vec<String>),
    /// A stop came between two pages.
    Stopped,
    /// A page could not be had (the message says why).
    Broken(String),
}

/// The run's share of the tenant's daily query submissions, and whether the service said its queue is
/// full.
pub(crate) struct Budget {
    left: AtomicU64,
    /// Why no more queries are submitted in this run (the service's 429), if it said so.
    throttled: Mutex<Option<String>>,
    used: AtomicU64,
}

impl Budget {
    /// A budget of `left` submissions.
    pub(crate) fn new(left: u64) -> Budget {
        Budget {
            left: AtomicU64::new(left),
            throttled: Mutex::new(None),
            used: AtomicU64::new(0),
        }
    }

    /// Takes one submission; false when none is left or the service's queue is full.
    fn take(&self) -> bool {
        if self.throttled().is_some() {
            return false;
        }
        let took = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if took {
            self.used.fetch_add(1, Ordering::SeqCst);
        }
        took
    }

    /// Gives back a submission the service did not accept.
    fn give_back(&self) {
        self.left.fetch_add(1, Ordering::SeqCst);
        self.used.fetch_sub(1, Ordering::SeqCst);
    }

    /// Stops submissions for the rest of the run.
    fn throttle(&self, why: String) {
        let mut t = self
            .throttled
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        t.get_or_insert(why);
    }

    /// Why submissions stopped, if the service throttled them.
    pub(crate) fn throttled(&self) -> Option<String> {
        self.throttled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Submissions made in this run.
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }

    /// Submissions left in this run's share.
    pub(crate) fn left(&self) -> u64 {
        self.left.load(Ordering::SeqCst)
    }
}

/// What the progress bar and the summary count, shared by the queries.
#[derive(Default)]
pub(crate) struct Counters {
    /// Queries submitted or resumed and not ended yet.
    pub(crate) running: AtomicU64,
    /// Windows read to the end.
    pub(crate) read: AtomicU64,
    /// Records read from the service.
    pub(crate) records: AtomicU64,
    /// Of them, events new to the store.
    pub(crate) new: AtomicU64,
    /// Windows split at the service's record cap.
    pub(crate) split: AtomicU64,
}

/// Everything a query needs.
pub(crate) struct Engine {
    pub(crate) client: Arc<GraphClient>,
    pub(crate) store: SharedStore,
    pub(crate) filter: Filter,
    pub(crate) operations: Vec<String>,
    pub(crate) purpose: QueryPurpose,
    pub(crate) poll_interval: Duration,
    pub(crate) query_timeout: Duration,
    pub(crate) min_window: TimeDelta,
    pub(crate) budget: Budget,
    pub(crate) stop: Stop,
    pub(crate) counters: Counters,
    /// Set by the first failed write: see [`Engine::with_store`].
    pub(crate) store_failed: std::sync::atomic::AtomicBool,
}

/// A new ledger row for `window` (not stored yet).
pub(crate) fn new_row(purpose: QueryPurpose, window: Window, operations: &[String]) -> QueryRow {
    let now = Utc::now();
    QueryRow {
        id: None,
        purpose,
        window,
        display_name: display_name(purpose, window, operations),
        query_id: None,
        state: QueryState::Submitting,
        service_status: None,
        records_read: None,
        approximate_count: None,
        limit_exceeded: false,
        events_new: None,
        submitted_at: now,
        updated_at: now,
        loaded_at: None,
        error: None,
    }
}

/// `auditsync backfill 2026-06-01T00:00:00Z/2026-06-02T00:00:00Z LaunchPowerApp`: the purpose, the
/// window and the operations filtered on (sorted), so that a resumed run recognises its query in the
/// service's list, and a window queried for other operations is not taken for this one's.
pub(crate) fn display_name(purpose: QueryPurpose, window: Window, operations: &[String]) -> String {
    let mut ops = operations.to_vec();
    ops.sort();
    ops.dedup();
    format!(
        "{} {}",
        NewQuery::display_name(purpose.as_str(), window.0, window.1),
        ops.join(",")
    )
}

/// What a query's task gives back: how the window ended, with its sink.
type Finished<S> = Result<(Ended, S), EngineError>;

/// A job of the scheduler: a ledger row (new or resumed) and how often this run submitted its window.
struct Job {
    row: QueryRow,
    resubmitted: u32,
}

/// Runs every row through [`Engine::run_one`], at most `in_flight` at a time, halves of a split window
/// first; `sink` makes each query's sink. Returns each window's end with its sink, in the order they
/// ended.
///
/// # Errors
/// The first [`EngineError`] that stops the run (then the other queries are dropped where they are:
/// their ledger rows let the next run go on).
pub(crate) async fn drive<S: Sink>(
    engine: Arc<Engine>,
    rows: Vec<QueryRow>,
    in_flight: usize,
    sink: impl Fn(&QueryRow) -> S,
    mut tick: impl FnMut(&Engine, usize),
) -> Result<Vec<(Ended, S)>, EngineError> {
    let mut queue: VecDeque<Job> = rows
        .into_iter()
        .map(|row| Job {
            row,
            resubmitted: 0,
        })
        .collect();
    let mut tasks: JoinSet<(u32, Finished<S>)> = JoinSet::new();
    let mut ended = Vec::new();
    loop {
        while tasks.len() < in_flight.max(1) && engine.stop.requested().is_none() {
            let Some(job) = queue.pop_front() else { break };
            let s = sink(&job.row);
            let e = Arc::clone(&engine);
            tasks.spawn(async move {
                let mut s = s;
                let r = e.run_one(job.row, &mut s).await.map(|end| (end, s));
                (job.resubmitted, r)
            });
        }
        tick(&engine, queue.len());
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let (resubmitted, result) =
            joined.unwrap_or_else(|e| (0, Err(EngineError::Died(e.to_string()))));
        let (end, s) = result?;
        match end {
            Ended::Split(a, b) => {
                engine.counters.split.fetch_add(1, Ordering::Relaxed);
                queue.push_front(Job {
                    row: new_row(engine.purpose, b, &engine.operations),
                    resubmitted: 0,
                });
                queue.push_front(Job {
                    row: new_row(engine.purpose, a, &engine.operations),
                    resubmitted: 0,
                });
            }
            Ended::Failed(window, why)
                if resubmitted < RESUBMITS && engine.stop.requested().is_none() =>
            {
                tracing::warn!(
                    "the query for {} to {} failed ({why}); submitting it again",
                    ts(window.0),
                    ts(window.1)
                );
                queue.push_back(Job {
                    row: new_row(engine.purpose, window, &engine.operations),
                    resubmitted: resubmitted + 1,
                });
            }
            other => ended.push((other, s)),
        }
    }
    // What was never started (a stop) waits for the next run.
    for job in queue {
        let s = sink(&job.row);
        let end = match job.row.query_id {
            Some(_) => Ended::Waiting(job.row),
            None => Ended::Deferred(job.row.window),
        };
        ended.push((end, s));
    }
    Ok(ended)
}

impl Engine {
    /// Runs one window's query to its end in this run: submits it unless the row has a query (or the
    /// service lists the one a killed run created), polls it, splits it or reads it.
    ///
    /// # Errors
    /// [`EngineError`] when the service refuses in a way every query would meet, or the store fails.
    pub(crate) async fn run_one(
        &self,
        mut row: QueryRow,
        sink: &mut dyn Sink,
    ) -> Result<Ended, EngineError> {
        if row.query_id.is_none() {
            if row.id.is_some() && row.state == QueryState::Submitting {
                self.adopt_listed(&mut row).await?;
            }
            if row.query_id.is_none() {
                match self.submit(&mut row).await? {
                    Submit::Done => {}
                    Submit::Deferred => return Ok(Ended::Deferred(row.window)),
                    Submit::Failed(why) => return Ok(Ended::Unsubmitted(row, why)),
                }
            }
        }
        self.counters.running.fetch_add(1, Ordering::Relaxed);
        let ended = self.poll_and_read(row, sink).await;
        self.counters.running.fetch_sub(1, Ordering::Relaxed);
        ended
    }

    /// After a kill between the POST and the ledger row that names its id: finds the query in the
    /// service's list by its display name and window, newest first.
    async fn adopt_listed(&self, row: &mut QueryRow) -> Result<(), EngineError> {
        let Some(listed) = self.until_stop(self.client.list()).await else {
            return Ok(());
        };
        let listed = match listed {
            Ok(listed) => listed,
            Err(e) if fatal(&e) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(
                    "could not list the tenant's audit queries ({e}); submitting the window again"
                );
                return Ok(());
            }
        };
        let found = listed
            .into_iter()
            .filter(|q| {
                q.display_name.as_deref() == Some(row.display_name.as_str())
                    && q.filter_start.is_none_or(|s| s == row.window.0)
                    && q.filter_end.is_none_or(|e| e == row.window.1)
                    && !matches!(q.status, QueryStatus::Failed | QueryStatus::Cancelled)
            })
            .max_by_key(|q| q.created);
        if let Some(q) = found {
            tracing::info!(query = %q.id, "found the query for {} in the tenant's list", row.display_name);
            row.query_id = Some(q.id);
            row.state = QueryState::Submitted;
            row.service_status = Some(q.status.as_str().to_owned());
            self.save(row).await?;
        }
        Ok(())
    }

    /// Submits the window's query within the budget: the ledger row first (`submitting`), then the
    /// POST, then the row with the query's id. A POST that got no usable answer (the network, a 5xx)
    /// may have created the query all the same: the tenant's list is looked at for it before the one
    /// more POST this run makes.
    async fn submit(&self, row: &mut QueryRow) -> Result<Submit, EngineError> {
        let mut tries = 0;
        loop {
            tries += 1;
            if !self.budget.take() {
                return Ok(Submit::Deferred);
            }
            row.state = QueryState::Submitting;
            row.submitted_at = Utc::now();
            row.error = None;
            self.save(row).await?;
            let query = NewQuery {
                display_name: row.display_name.clone(),
                start: row.window.0,
                end: row.window.1,
                operations: self.operations.clone(),
            };
            let Some(created) = self.until_stop(self.client.create(&query)).await else {
                // Stopped: the POST may have reached the service; the row stays `submitting`.
                return Ok(Submit::Failed("stopped before the service answered".into()));
            };
            match created {
                Ok(info) => {
                    row.query_id = Some(info.id);
                    row.state = QueryState::Submitted;
                    row.service_status = Some(info.status.as_str().to_owned());
                    self.save(row).await?;
                    return Ok(Submit::Done);
                }
                Err(e @ GraphError::Throttled { .. }) => {
                    // Not submitted: the row no longer counts against the allowance.
                    self.budget.give_back();
                    self.budget.throttle(e.to_string());
                    row.state = QueryState::Failed;
                    row.error = Some(format!("not submitted: {e}"));
                    self.save(row).await?;
                    return Ok(Submit::Deferred);
                }
                Err(e) if fatal(&e) => return Err(e.into()),
                Err(e) => {
                    // The row stays `submitting` (it counts against the allowance): found in the
                    // list, it is read; else submitted once more; else the next run looks again.
                    let why = crate::redact::redact(&e.to_string()).into_owned();
                    row.error = Some(why.clone());
                    self.save(row).await?;
                    self.adopt_listed(row).await?;
                    if row.query_id.is_some() {
                        return Ok(Submit::Done);
                    }
                    if tries >= 2 {
                        return Ok(Submit::Failed(why));
                    }
                    tracing::warn!(
                        "submitting {} failed ({why}); submitting it once more",
                        row.display_name
                    );
                }
            }
        }
    }

    /// `call`, unless a stop comes first (`None`): a wait inside the client (a `Retry-After`, a
    /// back-off) does not hold the run up.
    async fn until_stop<T>(&self, call: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            _ = self.stop.wait() => None,
            r = call => Some(r),
        }
    }

    /// Polls until the query ends, then splits or reads it.
    async fn poll_and_read(
        &self,
        mut row: QueryRow,
        sink: &mut dyn Sink,
    ) -> Result<Ended, EngineError> {
        let Some(query_id) = row.query_id.clone() else {
            return Ok(Ended::Deferred(row.window));
        };
        let give_up = Instant::now() + self.query_timeout;
        let info = loop {
            let Some(got) = self.until_stop(self.client.get(&query_id)).await else {
                return Ok(Ended::Waiting(row));
            };
            let info = match got {
                Ok(info) => info,
                Err(GraphError::NotFound { .. }) => {
                    return self
                        .failed(row, "the service no longer knows the query".into())
                        .await;
                }
                Err(e) if fatal(&e) => return Err(e.into()),
                Err(e) => {
                    return Ok(Ended::Broken(
                        row,
                        crate::redact::redact(&e.to_string()).into_owned(),
                    ));
                }
            };
            match info.status {
                QueryStatus::Succeeded => break info,
                QueryStatus::Failed | QueryStatus::Cancelled => {
                    let why = format!(
                        "the service ended the query with status {}",
                        info.status.as_str()
                    );
                    return self.failed(row, why).await;
                }
                _ => {}
            }
            if row.service_status.as_deref() != Some(info.status.as_str()) {
                row.service_status = Some(info.status.as_str().to_owned());
                self.save(&mut row).await?;
            }
            if Instant::now() >= give_up {
                return Ok(Ended::Waiting(row));
            }
            tokio::select! {
                biased;
                _ = self.stop.wait() => return Ok(Ended::Waiting(row)),
                () = tokio::time::sleep(self.poll_interval) => {}
            }
        };
        row.service_status = Some(info.status.as_str().to_owned());
        row.approximate_count = info.approximate_count;
        row.limit_exceeded = info.limit_exceeded;
        if info.limit_exceeded
            && let Some((a, b)) = halves(row.window, self.min_window)
        {
            row.state = QueryState::Split;
            row.updated_at = Utc::now();
            self.save(&mut row).await?;
            tracing::info!(
                "the query for {} to {} reached the service's record cap; querying its halves",
                ts(row.window.0),
                ts(row.window.1)
            );
            return Ok(Ended::Split(a, b));
        }
        self.read(row, &query_id, &info, sink).await
    }

    /// Marks the row failed (the query is not usable any more).
    async fn failed(&self, mut row: QueryRow, why: String) -> Result<Ended, EngineError> {
        row.state = QueryState::Failed;
        row.service_status = None;
        row.error = Some(why.clone());
        row.updated_at = Utc::now();
        self.save(&mut row).await?;
        Ok(Ended::Failed(row.window, why))
    }

    /// Reads every page (twice when the first read ends far below the service's count), then commits
    /// the ledger row with the last page's records.
    async fn read(
        &self,
        mut row: QueryRow,
        query_id: &str,
        info: &QueryInfo,
        sink: &mut dyn Sink,
    ) -> Result<Ended, EngineError> {
        let source = format!("graph:{query_id}");
        let mut attempt = 0;
        let (read, new, unreadable) = loop {
            attempt += 1;
            let (read, new, unreadable) = match self.read_pages(query_id, &source, sink).await? {
                Pages::Done(read, new, unreadable) => (read, new, unreadable),
                Pages::Stopped => return Ok(Ended::Waiting(row)),
                Pages::Broken(why) => return Ok(Ended::Broken(row, why)),
            };
            // A query over the cap returns fewer than it counts: that is known, not a short read.
            let short = !info.limit_exceeded
                && info
                    .approximate_count
                    .is_some_and(|a| (read as f64) < a as f64 * SHORT_READ_SHARE);
            if !short || attempt >= 2 {
                break (read, new, unreadable);
            }
            tracing::warn!(
                "read {read} records of about {} for {} to {}; reading the query again",
                info.approximate_count.unwrap_or_default(),
                ts(row.window.0),
                ts(row.window.1)
            );
        };
        let short = info
            .approximate_count
            .filter(|a| !info.limit_exceeded && (read as f64) < *a as f64 * SHORT_READ_SHARE)
            .map(|a| (read, a));
        // Without the 2026-09 counts (beta, or an older v1.0: no `approximateReturnedRecordCount`,
        // so no `isRecordCountLimitExceeded` either), a read that reached the cap tells the same.
        let capped = info.limit_exceeded
            || (info.approximate_count.is_none()
                && read >= info.record_count_limit.unwrap_or(DOCUMENTED_RECORD_CAP));
        if capped
            && !info.limit_exceeded
            && let Some((a, b)) = halves(row.window, self.min_window)
        {
            row.state = QueryState::Split;
            row.limit_exceeded = true;
            row.records_read = Some(read);
            self.save(&mut row).await?;
            return Ok(Ended::Split(a, b));
        }
        let now = Utc::now();
        row.state = if capped {
            QueryState::Truncated
        } else {
            QueryState::Loaded
        };
        row.limit_exceeded = capped;
        row.records_read = Some(read);
        row.events_new = Some(new);
        row.updated_at = now;
        row.loaded_at = Some(now);
        // What was read is stored, and the window counts as read; what it may lack is said on its
        // row, so that every later run over it says so too, until a `verify` finds it whole.
        let mut flags = Vec::new();
        if let Some((r, a)) = short {
            flags.push(format!("read {r} records of about {a} the service counted"));
        }
        if !unreadable.is_empty() {
            flags.push(format!(
                "skipped {} records whose auditData could not be read ({})",
                unreadable.len(),
                unreadable
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        row.error = (!flags.is_empty()).then(|| flags.join("; "));
        let staged = row.clone();
        self.with_store(move |store| {
            store.stage_query(&staged)?;
            store.commit_staged()
        })?;
        self.counters.read.fetch_add(1, Ordering::Relaxed);
        Ok(Ended::Read {
            row,
            short,
            unreadable,
        })
    }

    /// Reads the query's pages to the last `@odata.nextLink`, each page's events into the sink.
    async fn read_pages(
        &self,
        query_id: &str,
        source: &str,
        sink: &mut dyn Sink,
    ) -> Result<Pages, EngineError> {
        let (mut read, mut new, mut unreadable) = (0u64, 0u64, Vec::new());
        let mut next = None;
        loop {
            if self.stop.requested().is_some() {
                return Ok(Pages::Stopped);
            }
            let Some(page) = self
                .until_stop(self.client.records_page(next.as_ref(), query_id))
                .await
            else {
                return Ok(Pages::Stopped);
            };
            let page = match page {
                Ok(page) => page,
                Err(e) if fatal(&e) => return Err(e.into()),
                Err(GraphError::NotFound { .. }) => {
                    return Ok(Pages::Broken(
                        "the service no longer knows the query".into(),
                    ));
                }
                Err(e) => {
                    return Ok(Pages::Broken(
                        crate::redact::redact(&e.to_string()).into_owned(),
                    ));
                }
            };
            read += page.records.len() as u64;
            self.counters
                .records
                .fetch_add(page.records.len() as u64, Ordering::Relaxed);
            let (events, bad) = events_of(&self.filter, &page.records);
            unreadable.extend(bad);
            let added = self.with_store(|store| sink.page(store, events, source))?;
            new += added;
            let before = self.counters.new.fetch_add(added, Ordering::Relaxed);
            // The store compresses its first records without a dictionary and trains one in the
            // commit that holds 1,000; committing then, rather than when a whole window is read,
            // spares the first windows' rows a second compression (measured: BENCHMARKS.md).
            if before < EARLY_COMMIT && before + added >= EARLY_COMMIT {
                self.with_store(|store| store.commit_staged())?;
            }
            match page.next {
                // A link to the page just read would read it forever.
                Some(url) if next.as_ref() == Some(&url) => {
                    return Ok(Pages::Broken(
                        "the service's @odata.nextLink pointed at the page just read".into(),
                    ));
                }
                Some(url) => next = Some(url),
                None => return Ok(Pages::Done(read, new, unreadable)),
            }
        }
    }

    /// Commits what the pages of unfinished windows staged (their records are whole, and stored
    /// once whatever reads them again), unless a failed write undid it.
    pub(crate) fn commit_pages(&self) -> Result<(), StoreError> {
        if self.store_failed.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.with_store(|store| store.commit_staged())
    }

    /// Saves a row at once (durable before the caller goes on); a new row gets its id.
    async fn save(&self, row: &mut QueryRow) -> Result<(), EngineError> {
        row.updated_at = Utc::now();
        let copy = row.clone();
        let id = self.with_store(move |store| store.save_query(&copy))?;
        row.id = Some(id);
        Ok(())
    }

    /// Runs `f` with the store held, on this worker thread (the runtime moves its other tasks away).
    fn with_store<T>(
        &self,
        f: impl FnOnce(&mut dyn Writer) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        tokio::task::block_in_place(|| {
            let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
            // A failed write rolled back what every window had staged: no window may commit its
            // row after that (it would be `loaded` without its first pages). The run stops.
            if self.store_failed.load(Ordering::SeqCst) {
                return Err(StoreError::Write {
                    path: std::path::PathBuf::new(),
                    reason:
                        "an earlier write of this run failed, which undid what every window had \
                             staged; nothing more is written in this run"
                            .into(),
                });
            }
            let result = f(&mut **store);
            if result.is_err() {
                self.store_failed.store(true, Ordering::SeqCst);
            }
            result
        })
    }
}

/// Whether a failure would meet every other query of the run too, so the run stops at once.
fn fatal(e: &GraphError) -> bool {
    !e.transient()
        && !matches!(
            e,
            GraphError::NotFound { .. }
                | GraphError::Throttled { .. }
                | GraphError::Malformed { .. }
                | GraphError::TooLarge { .. }
        )
}

/// The kept events of a page: `auditData` read as a record, keyed on its `Id` (the wrapper `id` only
/// when `auditData` has none), the raw record being `auditData`'s exact text. Returns the events and
/// the records that could not be read (their wrapper `id`, or `?`).
pub(crate) fn events_of(filter: &Filter, records: &[GraphRecord]) -> (Vec<Event>, Vec<String>) {
    let mut events = Vec::with_capacity(records.len());
    let mut bad = Vec::new();
    let name = |r: &GraphRecord| r.id.clone().unwrap_or_else(|| "?".into());
    for r in records {
        let Some(data) = r.audit_data.as_deref() else {
            bad.push(name(r));
            continue;
        };
        match filter.record(data.get()) {
            Ok(Some(event)) => events.push(event),
            Ok(None) => {}
            Err(RecordError::NoId) => {
                match r.id.as_deref().and_then(|id| with_id(data.get(), id)) {
                    Some(text) => match filter.record(&text) {
                        Ok(Some(mut event)) => {
                            event.raw = data.get().to_owned();
                            events.push(event);
                        }
                        Ok(None) => {}
                        Err(_) => bad.push(name(r)),
                    },
                    None => bad.push(name(r)),
                }
            }
            Err(_) => bad.push(name(r)),
        }
    }
    (events, bad)
}

/// `auditData`'s text with `Id` set to the wrapper's `id`, for reading a record that lacks one.
fn with_id(audit_data: &str, id: &str) -> Option<String> {
    let mut value: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(audit_data).ok()?;
    value.insert("Id".into(), serde_json::Value::String(id.to_owned()));
    serde_json::to_string(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(body: &str) -> Vec<GraphRecord> {
        crate::api::graph::parse_records(body.as_bytes(), "records")
            .unwrap()
            .0
    }

    #[test]
    fn events_are_keyed_on_audit_data_and_keep_its_exact_text() {
        let filter = Filter::new(&["LaunchPowerApp".to_owned()]);
        let audit = r#"{"Id":"11111111-0000-0000-0000-000000000001","CreationTime":"2026-06-01T08:00:00","Operation":"LaunchPowerApp","RecordType":256,"UserId":"a@contoso.com",  "PropertyCollection":[]}"#;
        let no_id = r#"{"CreationTime":"2026-06-01T09:00:00","Operation":"LaunchPowerApp","RecordType":256,"UserId":"b@contoso.com"}"#;
        let body = format!(
            r#"{{"value":[
              {{"id":"wrapper-1","createdDateTime":"2026-06-01T08:00:00Z","operation":"LaunchPowerApp","auditData":{audit}}},
              {{"id":"wrapper-2","operation":"LaunchPowerApp","auditData":{no_id}}},
              {{"id":"wrapper-3","operation":"LaunchPowerApp"}},
              {{"id":"wrapper-4","operation":"LaunchPowerApp","auditData":{{"Id":"x","CreationTime":"28/11/2026 13:29:30","Operation":"LaunchPowerApp"}}}},
              {{"id":"wrapper-5","operation":"FileAccessed","auditData":{{"Id":"y","CreationTime":"2026-06-01T08:00:00","Operation":"FileAccessed"}}}}
            ]}}"#
        );
        let (events, bad) = events_of(&filter, &records(&body));
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0].id, "11111111-0000-0000-0000-000000000001");
        assert_eq!(
            events[0].raw, audit,
            "the audit record byte for byte, not the wrapper"
        );
        // No `auditData.Id`: the wrapper's id keys it, and the raw record is still as served.
        assert_eq!(events[1].id, "wrapper-2");
        assert_eq!(events[1].raw, no_id);
        assert_eq!(bad, ["wrapper-3", "wrapper-4"]);
    }

    #[test]
    fn the_budget_counts_submissions_and_gives_back_refused_ones() {
        let b = Budget::new(2);
        assert!(b.take() && b.take());
        assert!(!b.take(), "no third submission");
        b.give_back();
        assert_eq!((b.used(), b.left()), (1, 1));
        b.throttle("HTTP 429".into());
        assert!(!b.take(), "a full queue stops submissions");
        assert_eq!(b.throttled().as_deref(), Some("HTTP 429"));
    }

    #[test]
    fn display_names_carry_the_purpose_and_the_window() {
        let t = |s| crate::time::parse_stored(s).unwrap();
        let w = (t("2026-06-01T00:00:00Z"), t("2026-06-02T00:00:00Z"));
        assert_eq!(
            display_name(
                QueryPurpose::Backfill,
                w,
                &["LaunchPowerApp".to_owned(), "CreateFlow".to_owned()]
            ),
            "auditsync backfill 2026-06-01T00:00:00Z/2026-06-02T00:00:00Z CreateFlow,LaunchPowerApp"
        );
    }
}
