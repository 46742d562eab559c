//! `auditsync backfill --from T [--to T] [--json]`.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use super::{before_writing, load_settings, print, stop_on_signals};
use crate::cli::{BackfillArgs, GlobalArgs};
use crate::error::{Error, Outcome};
use auditsync_core::api::graph::GraphClient;
use auditsync_core::backfill::{self, Options};
use auditsync_core::config::{Cloud, GRAPH_GCC_WARNING, Settings};
use auditsync_core::store;

pub async fn run(args: BackfillArgs, global: &GlobalArgs) -> Result<Outcome, Error> {
    let stop = stop_on_signals();
    let settings = load_settings(global)?;
    let opts = Options {
        from: args.from,
        to: args.to,
        progress: !global.quiet && std::io::stderr().is_terminal(),
        stop: stop.clone(),
    };
    // Refusals first (the cloud, `enabled`, the range): nothing is read, written or sent before them.
    backfill::plan(&settings, None, &opts)?;
    warn_gcc(&settings)?;
    let secret = before_writing(&stop, async { Ok(settings.client_secret().await?) }).await?;
    let store = before_writing(&stop, async {
        Ok(store::lock_and_open(&settings.database, Duration::from_secs(args.wait)).await?)
    })
    .await?;
    let plan = backfill::plan(&settings, Some(&*store), &opts)?;
    for w in &plan.warnings {
        tracing::warn!("{w}");
    }
    let client = Arc::new(GraphClient::new(&settings, secret)?);
    let summary = backfill::run(&settings, client, store, plan, &opts).await?;
    // Standard error first: a closed stdout must not hide what is missing.
    let outcome = if summary.complete() {
        Outcome::Done
    } else {
        for cause in summary.causes() {
            tracing::error!("{cause}");
        }
        tracing::error!(
            "the backfill is incomplete (the lines above say why and what to do); windows read to the end \
             are not queried again"
        );
        Outcome::Incomplete
    };
    let text = if args.json {
        Some(serde_json::to_string_pretty(&summary).unwrap_or_default())
    } else if !(global.quiet && summary.complete()) {
        Some(summary.line())
    } else {
        None
    };
    if let Some(text) = text
        && let Err(e) = print(&mut std::io::stdout().lock(), &text)
    {
        // A closed stdout (`| head -c0`) must not turn an incomplete run into exit 0.
        if outcome == Outcome::Done {
            return Err(e);
        }
        tracing::error!("{e}");
    }
    Ok(outcome)
}

/// Refuses the Graph source where it cannot be used (gcc-high, dod, `enabled = false`), and warns in
/// gcc, where Microsoft does not confirm the API answers.
pub(super) fn warn_gcc(settings: &Settings) -> Result<(), Error> {
    settings.graph_endpoint()?;
    if settings.tenant.cloud == Cloud::Gcc {
        tracing::warn!("{GRAPH_GCC_WARNING}");
    }
    Ok(())
}
