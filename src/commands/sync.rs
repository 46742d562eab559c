//! `auditsync sync [--from T [--to T]] [--json]`.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use super::{before_writing, load_settings, print, stop_on_signals};
use crate::cli::{GlobalArgs, SyncArgs};
use crate::error::{Error, Outcome};
use auditsync_core::api::{ApiClient, ApiError};
use auditsync_core::store;
use auditsync_core::sync::{self, Options, Summary, plan::Range};

pub async fn run(args: SyncArgs, global: &GlobalArgs) -> Result<Outcome, Error> {
    let stop = stop_on_signals();
    let settings = load_settings(global)?;
    let opts = Options {
        range: args.from.map(|from| Range { from, to: args.to }),
        progress: !global.quiet && std::io::stderr().is_terminal(),
        stop: stop.clone(),
    };
    // The order is that of the refusals: nothing is written until the configuration, the window and
    // the secret are known to be good.
    sync::plan(&settings, None, &opts)?;
    let secret = before_writing(&stop, async { Ok(settings.client_secret().await?) }).await?;
    // The lock comes before the database is opened, so a newer auditsync never migrates the schema
    // under an older one that is still running.
    let store = before_writing(&stop, async {
        Ok(store::lock_and_open(&settings.database, Duration::from_secs(args.wait)).await?)
    })
    .await?;
    let plan = sync::plan(&settings, Some(&*store), &opts)?;
    let api = Arc::new(ApiClient::new(&settings, secret)?);
    let finished = sync::run(&settings, api, store, plan, &opts).await?;
    let summary = finished.summary;
    // Standard error first, then standard output: a closed stdout (`auditsync sync | head -c0`) must
    // not keep a loss or a cause from being told, nor turn the run's outcome into exit 0.
    let outcome = tell(&summary, finished.fatal);
    let text = if args.json {
        Some(serde_json::to_string_pretty(&summary).unwrap_or_default())
    } else if !(global.quiet && summary.complete()) {
        // Under -q a complete run prints nothing (cron mails only when something is wrong).
        Some(summary.line())
    } else {
        None
    };
    if let Some(text) = text
        && let Err(e) = print(&mut std::io::stdout().lock(), &text)
    {
        return match outcome {
            Ok(Outcome::Done) => Err(e),
            // The run's outcome wins; the summary it could not print is in the runs table.
            other => {
                tracing::error!("{e}; the summary is in `auditsync status`");
                other
            }
        };
    }
    outcome
}

/// Logs (stderr) what the admin must know whatever happens to stdout: every loss (at error level, so
/// -q shows them), and for an incomplete run one line per cause; returns the run's outcome.
fn tell(summary: &Summary, fatal: Option<ApiError>) -> Result<Outcome, Error> {
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
    if let Some(fatal) = fatal {
        return Err(fatal.into());
    }
    if summary.complete() {
        return Ok(Outcome::Done);
    }
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
