//! The write stage: one thread owns the store; every other stage sends it messages. Units are
//! committed in batches of up to [`BATCH`], each unit's events with its ledger row in the same
//! transaction (design.md invariant 1).

use std::collections::HashSet;
use std::thread::JoinHandle;

use tokio::sync::mpsc;

use super::SyncError;
use crate::model::{BlobRef, Unit};
use crate::store::{StoreError, Writer};

/// Units committed in one transaction at most.
pub(crate) const BATCH: usize = 16;

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

/// Starts the writer thread on `store`. The queue is bounded, so memory stays flat whatever the window:
/// a few parsed units wait at most.
pub(crate) fn spawn(
    store: Box<dyn Writer>,
) -> Result<(mpsc::Sender<ToWriter>, WriterThread), SyncError> {
    let (tx, rx) = mpsc::channel::<ToWriter>(2 * BATCH);
    let span = tracing::Span::current();
    let handle = std::thread::Builder::new()
        .name("auditsync-writer".into())
        .spawn(move || span.in_scope(|| writer(store, rx)))
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

fn writer(
    mut store: Box<dyn Writer>,
    mut rx: mpsc::Receiver<ToWriter>,
) -> (Box<dyn Writer>, WriterReport) {
    let mut report = WriterReport::default();
    let mut next = rx.blocking_recv();
    while let Some(msg) = next.take() {
        let result = match msg {
            ToWriter::Listed(blobs) => store.add_pending(&blobs),
            ToWriter::Failed { key, error } => store.note_failure(&key, &error),
            ToWriter::Stored(first) => {
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(ToWriter::Stored(u)) => batch.push(u),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                commit(store.as_mut(), &batch, &mut report)
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

/// Commits a batch and counts it.
fn commit(
    store: &mut dyn Writer,
    batch: &[Unit],
    report: &mut WriterReport,
) -> Result<(), StoreError> {
    let new = store.commit(batch)?;
    tracing::debug!(
        units = batch.len(),
        new_events = new.events,
        new_quarantined = new.quarantined,
        "committed"
    );
    for u in batch {
        report.stored.insert(u.ledger.key().to_owned());
        report.events_kept += u.events.len();
        report.records_seen += u.records_seen;
    }
    report.events_new += new.events;
    // Only records new to the quarantine: a blob fetched again (after a prune) reports none again.
    report.quarantined += new.quarantined;
    Ok(())
}
