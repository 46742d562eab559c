//! `auditsync sync [--from T [--to T]] [--json]`.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use super::{load_settings, stdout_error};
use crate::cli::{GlobalArgs, SyncArgs};
use crate::error::{Error, Outcome};
use auditsync_core::api::ApiClient;
use auditsync_core::store;
use auditsync_core::sync::{self, Options, plan::Range};

pub async fn run(args: SyncArgs, global: &GlobalArgs) -> Result<Outcome, Error> {
    let settings = load_settings(global)?;
    let opts = Options {
        range: args.from.map(|from| Range { from, to: args.to }),
        progress: !global.quiet && std::io::stderr().is_terminal(),
    };
    // The order is that of the refusals: nothing is written until the configuration, the window and
    // the secret are known to be good.
    sync::plan(&settings, None, &opts)?;
    let secret = settings.client_secret().await?;
    // The lock comes before the database is opened, so a newer auditsync never migrates the schema
    // under an older one that is still running.
    let store = store::lock_and_open(&settings.database, Duration::from_secs(args.wait)).await?;
    let plan = sync::plan(&settings, Some(&*store), &opts)?;
    let api = Arc::new(ApiClient::new(&settings, secret)?);
    let finished = sync::run(&settings, api, store, plan, &opts).await?;
    let summary = finished.summary;
    let mut out = std::io::stdout().lock();
    if args.json {
        let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
        writeln!(out, "{text}").map_err(stdout_error)?;
    } else if !(global.quiet && summary.complete()) {
        // Under -q a complete run prints nothing (cron mails only when something is wrong).
        writeln!(out, "{}", summary.line()).map_err(stdout_error)?;
    }
    // Losses are never retried: said at error level, so -q shows them, whatever else happened.
    for loss in &summary.losses {
        // Quarantined records are kept aside (their text is in the database), the rest is gone.
        let label = if loss.kind == "quarantined" {
            "quarantined"
        } else {
            "lost"
        };
        tracing::error!("{label}: {}", loss.detail);
    }
    if let Some(fatal) = finished.fatal {
        return Err(fatal.into());
    }
    if summary.complete() {
        Ok(Outcome::Done)
    } else {
        // One line per cause (an outage fails every blob alike); each blob and segment at -v and in
        // --json.
        for line in summary.causes() {
            tracing::error!("{line}");
        }
        for f in &summary.failed_blobs {
            tracing::debug!(
                "not stored: blob {} ({}, created {}): {}",
                f.content_id,
                f.content_type,
                f.content_created,
                f.error
            );
        }
        for s in &summary.unlisted_segments {
            tracing::debug!(
                "not listed to the end: {} from {} to {}: {}",
                s.content_type,
                s.start,
                s.end,
                s.error
            );
        }
        if summary.blobs_failed > 0 || summary.segments_complete < summary.segments {
            tracing::error!("the sync is incomplete; the next run tries the missing parts again");
        }
        Ok(Outcome::Incomplete)
    }
}
