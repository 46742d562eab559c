//! `auditsync prune --older-than AGE`: retention.

use std::io::Write;
use std::time::Duration;

use chrono::Utc;

use super::{existing_database, load_settings, stdout_error};
use crate::cli::{GlobalArgs, PruneArgs};
use crate::error::{Error, Outcome};
use auditsync_core::store::{RunLock, Store};
use auditsync_core::time::ts;

pub async fn run(args: PruneArgs, global: &GlobalArgs) -> Result<Outcome, Error> {
    let settings = load_settings(global)?;
    existing_database(&settings)?;
    Store::check_path(&settings.database)?;
    let _lock = RunLock::acquire(&settings.database, Duration::from_secs(60)).await?;
    let mut store = Store::open(&settings.database)?;
    let cutoff = Utc::now() - args.older_than;
    let pruned = tokio::task::spawn_blocking(move || store.prune(cutoff))
        .await
        .map_err(|e| Error::Io {
            what: "the prune stopped unexpectedly".into(),
            source: std::io::Error::other(e.to_string()),
        })??;
    writeln!(
        std::io::stdout().lock(),
        "prune: deleted {} events created before {}, {} ledger rows and {} lost-blob records",
        pruned.events,
        ts(cutoff),
        pruned.ledger_rows,
        pruned.lost_blob_rows
    )
    .map_err(stdout_error)?;
    Ok(Outcome::Done)
}
