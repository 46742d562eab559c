//! `auditsync prune --older-than AGE`: retention.

use std::io::Write;
use std::time::Duration;

use chrono::Utc;

use super::{load_settings, stdout_error};
use crate::cli::{GlobalArgs, PruneArgs};
use crate::error::{Error, Outcome};
use auditsync_core::store::{self, StoreError};
use auditsync_core::time::ts;

pub async fn run(args: PruneArgs, global: &GlobalArgs) -> Result<Outcome, Error> {
    let settings = load_settings(global)?;
    store::check_path(&settings.database)?;
    // Pruning never creates a database.
    if !settings.database.exists() {
        return Err(StoreError::Missing(settings.database.clone()).into());
    }
    let mut store = store::lock_and_open(&settings.database, Duration::from_secs(60)).await?;
    let cutoff = Utc::now() - args.older_than;
    let pruned = tokio::task::spawn_blocking(move || store.prune(cutoff))
        .await
        .map_err(|e| Error::Io {
            what: "the prune stopped unexpectedly".into(),
            source: std::io::Error::other(e.to_string()),
        })??;
    if global.quiet {
        return Ok(Outcome::Done);
    }
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
