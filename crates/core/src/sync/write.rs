//! The write stage: one thread owns the store; every other stage sends it messages. Units are
//! committed in batches, each unit's events with its ledger row in the same transaction (design.md
//! invariant 1). A batch commits when it is full ([`Batching::units`] units or [`Batching::events`]
//! events) or when its first unit has waited [`Batching::wait`], whichever comes first: a fast run
//! writes few, large transactions (each index page rewritten once per transaction, not once per
//! blob), and a slow one still stores each unit within `wait` of its arrival.

use std::collections::HashSet;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::SyncError;
use crate::model::{BlobRef, Unit};
use crate::store::{StoreError, Writer};

/// When a batch of units is committed: at `units` units, at `events` events, or `wait` after its
/// first unit arrived, whichever comes first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batching {
    /// Units in one transaction at most (a unit without events still costs its ledger row).
    pub(crate) units: usize,
    /// Events in one transaction: the batch commits once it holds this many.
    pub(crate) events: usize,
    /// How long the first unit of a batch waits for others at most. A crash loses at most this much
    /// fetched work, and the next run fetches it again (its ledger row was never committed).
    pub(crate) wait: Duration,
}

/// The batching `sync` uses. Units are staged in the store's open transaction as they arrive, so a
/// batch holds no unit in memory; its size trades bytes written (each page the random `Id`s touch is
/// written once per transaction) against what a crash makes the next run fetch again (at most
/// `wait` of fetched work). Measured on the 1M-record benchmark: BENCHMARKS.md, "Write path (issue 11)".
pub(crate) const BATCHING: Batching = Batching {
    units: 2_048,
    events: 32_768,
    wait: Duration::from_millis(1_000),
};

/// Messages the queue to the writer holds at most: the fetchers wait when the writer is behind, so
/// memory stays flat whatever the window. Room for most of what the fetchers bring while a full batch
/// commits, so that fetching goes on meanwhile (measured: BENCHMARKS.md, "Write path").
const QUEUE: usize = 64;

/// A message to the writer thread.
pub(crate) enum ToWriter {
    /// Blobs just listed and not in the ledger: remember them as pending.
    Listed(Vec<BlobRef>),
    /// A unit fetched and parsed: commit it.
    Stored(Unit),
    /// A unit that could not be fetched or read: note the failure on its pending row.
    Failed {
        /// The unit's ledger key (a blob's `contentId`).
        key: String,
        /// Why, for `status` and the next run.
        error: String,
    },
}

/// What the writer did.
#[derive(Default)]
pub(crate) struct WriterReport {
    /// Ledger keys committed by this run.
    pub(crate) stored: HashSet<String>,
    /// Events in the committed units.
    pub(crate) events_kept: usize,
    /// Of those, events not stored before.
    pub(crate) events_new: usize,
    /// Records in the committed units, kept or not.
    pub(crate) records_seen: usize,
    /// Records of the committed units that could not be read, new to the quarantine table (those a
    /// row stands for included).
    pub(crate) quarantined: usize,
    /// The store's failure that stopped the writer, if one did.
    pub(crate) error: Option<StoreError>,
}

/// The writer thread, to be joined when every sender is gone.
pub(crate) struct WriterThread {
    handle: JoinHandle<(Box<dyn Writer>, WriterReport)>,
}

/// Starts the writer thread on `store`, batching as [`BATCHING`] says. Must be called on the tokio
/// runtime (the thread waits on its timer).
pub(crate) fn spawn(
    store: Box<dyn Writer>,
) -> Result<(mpsc::Sender<ToWriter>, WriterThread), SyncError> {
    spawn_with(store, BATCHING)
}

/// Starts the writer thread on `store` with the given batching.
pub(crate) fn spawn_with(
    store: Box<dyn Writer>,
    batching: Batching,
) -> Result<(mpsc::Sender<ToWriter>, WriterThread), SyncError> {
    let (tx, rx) = mpsc::channel::<ToWriter>(QUEUE);
    let span = tracing::Span::current();
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|e| SyncError::Internal(format!("the database writer needs the runtime: {e}")))?;
    let handle = std::thread::Builder::new()
        .name("auditsync-writer".into())
        .spawn(move || {
            span.in_scope(|| {
                let queue = Queue { rx, runtime };
                writer(store, queue, batching)
            })
        })
        .map_err(|e| SyncError::Internal(format!("cannot start the database writer: {e}")))?;
    Ok((tx, WriterThread { handle }))
}

impl WriterThread {
    /// Waits for the thread (which ends when every sender is dropped) and takes the store back.
    pub(crate) async fn join(self) -> Result<(Box<dyn Writer>, WriterReport), SyncError> {
        tokio::task::spawn_blocking(move || self.handle.join())
            .await
            .map_err(|e| SyncError::Internal(e.to_string()))?
            .map_err(|_| SyncError::Internal("the database writer stopped unexpectedly".into()))
    }
}

/// The writer's end of the queue, waited on from its own thread with the runtime's timer.
struct Queue {
    rx: mpsc::Receiver<ToWriter>,
    runtime: tokio::runtime::Handle,
}

/// What waiting on the queue gave.
enum Next {
    Message(ToWriter),
    /// The deadline passed first.
    Timeout,
    /// Every sender is gone.
    Closed,
}

impl Queue {
    /// The next message, waiting at most until `deadline` when there is one.
    fn next(&mut self, deadline: Option<Instant>) -> Next {
        match self.rx.try_recv() {
            Ok(msg) => return Next::Message(msg),
            Err(mpsc::error::TryRecvError::Disconnected) => return Next::Closed,
            Err(mpsc::error::TryRecvError::Empty) => {}
        }
        let rx = &mut self.rx;
        let got = match deadline {
            None => self.runtime.block_on(rx.recv()),
            // The timer is made inside the runtime's context (it registers with its driver).
            Some(at) => match self
                .runtime
                .block_on(async { tokio::time::timeout_at(at, rx.recv()).await })
            {
                Ok(got) => got,
                Err(_) => return Next::Timeout,
            },
        };
        got.map_or(Next::Closed, Next::Message)
    }
}

/// A batch being gathered: its units are staged in the store's open transaction as they arrive (so
/// none is held in memory), and counted here until the commit.
#[derive(Default)]
struct Batch {
    /// The staged units' ledger keys, events and records seen.
    units: Vec<(String, usize, usize)>,
    events: usize,
    /// What was new in them.
    new: crate::store::Committed,
    /// When its first unit arrived.
    since: Option<Instant>,
}

impl Batch {
    fn push(&mut self, store: &mut dyn Writer, unit: &Unit) -> Result<(), StoreError> {
        self.since.get_or_insert_with(Instant::now);
        let new = store.stage(std::slice::from_ref(unit))?;
        self.new.events += new.events;
        self.new.quarantined = self.new.quarantined.saturating_add(new.quarantined);
        self.events += unit.events.len();
        self.units.push((
            unit.ledger.key().to_owned(),
            unit.events.len(),
            unit.records_seen,
        ));
        Ok(())
    }

    fn full(&self, batching: &Batching) -> bool {
        self.units.len() >= batching.units || self.events >= batching.events
    }

    /// Commits the units staged, if any, counts them, and empties the batch.
    fn commit(
        &mut self,
        store: &mut dyn Writer,
        report: &mut WriterReport,
    ) -> Result<(), StoreError> {
        let batch = std::mem::take(self);
        if batch.units.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        store.commit_staged()?;
        tracing::debug!(
            units = batch.units.len(),
            events = batch.events,
            ms = started.elapsed().as_millis() as u64,
            new_events = batch.new.events,
            new_quarantined = batch.new.quarantined,
            "committed"
        );
        for (key, events, records) in batch.units {
            report.stored.insert(key);
            report.events_kept += events;
            report.records_seen += records;
        }
        report.events_new += batch.new.events;
        // Only records new to the quarantine: a blob fetched again (after a prune) reports none again.
        report.quarantined += batch.new.quarantined;
        Ok(())
    }
}

fn writer(
    mut store: Box<dyn Writer>,
    mut queue: Queue,
    batching: Batching,
) -> (Box<dyn Writer>, WriterReport) {
    let mut report = WriterReport::default();
    let mut batch = Batch::default();
    loop {
        let deadline = batch.since.map(|t| t + batching.wait);
        let result = match queue.next(deadline) {
            Next::Message(ToWriter::Stored(unit)) => {
                batch.push(store.as_mut(), &unit).and_then(|()| {
                    drop(unit);
                    if batch.full(&batching) {
                        batch.commit(store.as_mut(), &mut report)
                    } else {
                        Ok(())
                    }
                })
            }
            // In the order sent: the units before a listing or a failure are committed first.
            Next::Message(ToWriter::Listed(blobs)) => batch
                .commit(store.as_mut(), &mut report)
                .and_then(|()| store.add_pending(&blobs)),
            Next::Message(ToWriter::Failed { key, error }) => batch
                .commit(store.as_mut(), &mut report)
                .and_then(|()| store.note_failure(&key, &error)),
            Next::Timeout => batch.commit(store.as_mut(), &mut report),
            Next::Closed => {
                if let Err(e) = batch.commit(store.as_mut(), &mut report) {
                    report.error = Some(e);
                }
                break;
            }
        };
        if let Err(e) = result {
            report.error = Some(e);
            break;
        }
    }
    (store, report)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a panic is the failure report"
    )]

    use chrono::Utc;

    use super::*;
    use crate::model::{Event, LedgerEntry};
    use crate::store::RunLock;

    fn unit(id: &str, events: usize) -> Unit {
        let event = |n: usize| Event {
            id: format!("{id}-{n}"),
            creation_time: "2026-01-01T00:00:00Z".into(),
            operation: "LaunchPowerApp".into(),
            workload: None,
            record_type: Some(256),
            user_id: None,
            user_object_id: None,
            user_upn: None,
            app_id: None,
            app_name: None,
            environment_id: None,
            raw: "{}".into(),
        };
        Unit {
            ledger: LedgerEntry::Blob(BlobRef {
                content_type: "Audit.General".into(),
                content_id: id.into(),
                content_uri: format!("https://x/{id}"),
                created: Utc::now(),
                expiration: None,
            }),
            events: (0..events).map(event).collect(),
            records_seen: events,
            quarantined: Vec::new(),
        }
    }

    fn keys(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    /// The ledger keys another connection sees committed, polled until there are some. A generous
    /// bound, not a measure: it only stops a test whose writer would never commit.
    async fn first_committed(path: &std::path::Path) -> HashSet<String> {
        let reader = crate::store::open_read(path).unwrap();
        let since = Utc::now() - chrono::TimeDelta::days(1);
        let give_up = Instant::now() + Duration::from_secs(60);
        loop {
            let stored = reader.stored_since(since).unwrap();
            if !stored.is_empty() {
                return stored;
            }
            assert!(
                Instant::now() < give_up,
                "nothing committed while the queue stayed open"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn store(dir: &tempfile::TempDir) -> (std::path::PathBuf, Box<dyn Writer>) {
        let path = dir.path().join("a.db");
        let store = crate::store::open_write(&path, RunLock::try_acquire(&path).unwrap()).unwrap();
        (path, store)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn units_that_arrive_within_the_wait_commit_together_and_no_later_than_it() {
        let dir = tempfile::tempdir().unwrap();
        let (path, store) = store(&dir);
        // Neither count is reached: only the time can commit these.
        let batching = Batching {
            units: 100,
            events: 100_000,
            wait: Duration::from_secs(5),
        };
        let (tx, writer) = spawn_with(store, batching).unwrap();
        tx.send(ToWriter::Stored(unit("a", 3))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Not committed alone: the batch waits for more units (a commit per unit rewrites the same
        // index pages for each).
        let reader = crate::store::open_read(&path).unwrap();
        let since = Utc::now() - chrono::TimeDelta::days(1);
        assert_eq!(reader.stored_since(since).unwrap(), HashSet::new());
        drop(reader);
        tx.send(ToWriter::Stored(unit("b", 0))).await.unwrap();
        // No more units come, and the queue stays open (a slow listing, a slow service): the batch
        // is committed once its first unit has waited, both units in one transaction.
        assert_eq!(first_committed(&path).await, keys(&["a", "b"]));
        drop(tx);
        let (_, report) = writer.join().await.unwrap();
        assert_eq!(report.stored, keys(&["a", "b"]));
        assert_eq!((report.events_kept, report.events_new), (3, 3));
        assert!(report.error.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_batch_commits_at_once_by_units_or_by_events() {
        for (batching, sent, committed) in [
            // Two units fill it.
            (
                Batching {
                    units: 2,
                    events: 100_000,
                    wait: Duration::from_secs(3600),
                },
                vec![unit("a", 1), unit("b", 1)],
                keys(&["a", "b"]),
            ),
            // A unit of five events fills it.
            (
                Batching {
                    units: 100,
                    events: 5,
                    wait: Duration::from_secs(3600),
                },
                vec![unit("a", 5)],
                keys(&["a"]),
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let (path, store) = store(&dir);
            let (tx, writer) = spawn_with(store, batching).unwrap();
            for u in sent {
                tx.send(ToWriter::Stored(u)).await.unwrap();
            }
            // Well before the hour's wait, with the queue open.
            assert_eq!(first_committed(&path).await, committed);
            drop(tx);
            writer.join().await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_units_before_a_listing_commit_before_it_and_a_closed_queue_commits_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let (path, store) = store(&dir);
        let batching = Batching {
            units: 100,
            events: 100_000,
            wait: Duration::from_secs(3600),
        };
        let (tx, writer) = spawn_with(store, batching).unwrap();
        tx.send(ToWriter::Stored(unit("a", 1))).await.unwrap();
        let LedgerEntry::Blob(listed) = unit("c", 0).ledger;
        tx.send(ToWriter::Listed(vec![listed])).await.unwrap();
        tx.send(ToWriter::Stored(unit("b", 1))).await.unwrap();
        // In the order sent: a is committed before the listing is written, b waits for more.
        assert_eq!(first_committed(&path).await, keys(&["a"]));
        // The stop case: the senders are dropped, the writer commits what it holds and ends.
        drop(tx);
        let (store, report) = writer.join().await.unwrap();
        assert_eq!(report.stored, keys(&["a", "b"]));
        let pending: Vec<String> = store
            .pending()
            .unwrap()
            .into_iter()
            .map(|p| p.content_id)
            .collect();
        assert_eq!(pending, vec!["c".to_owned()]);
    }
}
