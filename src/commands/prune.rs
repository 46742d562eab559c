//! `auditsync prune --older-than AGE [--include-fetchable] [--dry-run]`: retention.

use std::io::Write;
use std::time::Duration;

use chrono::{TimeDelta, Utc};

use super::{before_writing, load_settings, stdout_error, stop_on_signals};
use crate::cli::{GlobalArgs, PruneArgs};
use crate::error::{Error, Outcome};
use auditsync_core::store::{self, FETCHABLE_DAYS, PruneScope, StoreError, size_in_words};
use auditsync_core::time::ts;

pub async fn run(args: PruneArgs, global: &GlobalArgs) -> Result<Outcome, Error> {
    let stop = stop_on_signals();
    let settings = load_settings(global)?;
    let now = Utc::now();
    let cutoff = now - args.older_than;
    let fetchable_from = now - TimeDelta::days(FETCHABLE_DAYS);
    // Refused before the database is looked at: the age alone decides.
    if cutoff > fetchable_from && !args.include_fetchable {
        return Err(Error::Usage(format!(
            "--older-than reaches into the last {FETCHABLE_DAYS} days (events created after {}), whose content \
             the Management Activity API still serves; prune them only if you mean to: add \
             --include-fetchable (their ledger rows are forgotten too, so a later `auditsync sync --from` \
             fetches them again), or use --older-than {FETCHABLE_DAYS}d or more",
            ts(fetchable_from)
        )));
    }
    let scope = PruneScope {
        cutoff,
        include_fetchable: args.include_fetchable,
    };
    store::check_path(&settings.database)?;
    // Pruning never creates a database.
    if !settings.database.exists() {
        return Err(StoreError::Missing(settings.database.clone()).into());
    }
    let mut out = std::io::stdout().lock();
    if args.dry_run {
        // Read-only: no lock for writing, nothing changed.
        let would = store::open_read(&settings.database)?.prune_preview(scope)?;
        writeln!(
            out,
            "prune --dry-run: would delete {} events created before {}, forget {} ledger rows, delete {} \
             pending-blob rows, {} quarantined records and {} runs; nothing was changed",
            would.events,
            ts(cutoff),
            would.ledger_rows,
            would.pending_rows,
            would.quarantine_rows,
            would.runs
        )
        .map_err(stdout_error)?;
        return Ok(Outcome::Done);
    }
    let mut store = before_writing(&stop, async {
        Ok(store::lock_and_open(&settings.database, Duration::from_secs(60)).await?)
    })
    .await?;
    store.set_stop(stop.clone());
    let pruned = tokio::task::spawn_blocking(move || store.prune(scope))
        .await
        .map_err(|e| Error::Io {
            what: "the prune stopped unexpectedly".into(),
            source: std::io::Error::other(e.to_string()),
        })??;
    let forgot = (args.include_fetchable && pruned.ledger_rows > 0).then(|| {
        format!(
            "the ledger forgot {} blobs; those the API still serves (created after {}) are fetched again by \
             `auditsync sync --from` a time before {}",
            pruned.ledger_rows,
            ts(fetchable_from),
            ts(cutoff)
        )
    });
    // A signal is answered first, whatever -q: what was deleted and what is left is said at error
    // level, and the exit status is 130 or 143 (a signal that came after the last batch still ends
    // so, saying the prune had finished).
    if let Some(signal) = pruned.interrupted.or_else(|| stop.requested()) {
        let left = if pruned.interrupted.is_some() {
            "it stopped between two batches; the rest is still there: run the same prune again to finish"
        } else {
            "the prune had finished before it could stop"
        };
        return Err(Error::Interrupted {
            signal,
            kept: format!(
                "{} events created before {} were deleted, {} ledger rows forgotten, {} pending-blob rows, \
                 {} quarantined records and {} runs deleted; {left}{}",
                pruned.events,
                ts(cutoff),
                pruned.ledger_rows,
                pruned.pending_rows,
                pruned.quarantine_rows,
                pruned.runs,
                forgot.map(|f| format!(" ({f})")).unwrap_or_default()
            ),
        });
    }
    if global.quiet {
        return Ok(Outcome::Done);
    }
    writeln!(
        out,
        "prune: deleted {} events created before {}, {} ledger rows, {} pending-blob rows, {} quarantined \
         records and {} runs{}",
        pruned.events,
        ts(cutoff),
        pruned.ledger_rows,
        pruned.pending_rows,
        pruned.quarantine_rows,
        pruned.runs,
        pruned
            .file_bytes
            .map(|(before, after)| format!(
                "; gave {} back to the file system (the database took {}, now {})",
                size_in_words(before.saturating_sub(after)),
                size_in_words(before),
                size_in_words(after)
            ))
            .unwrap_or_default()
    )
    .map_err(stdout_error)?;
    if let Some(forgot) = forgot {
        tracing::warn!("{forgot}");
    }
    Ok(Outcome::Done)
}
