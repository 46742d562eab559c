//! `auditsync verify --from T [--to T] [--by day|hour] [--repair] [--json]`.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use super::backfill::warn_gcc;
use super::{before_writing, load_settings, print, stdout_error, stop_on_signals, write_table};
use crate::cli::{GlobalArgs, VerifyArgs, VerifyBy};
use crate::error::{Error, Outcome};
use auditsync_core::api::graph::GraphClient;
use auditsync_core::backfill::verify::{self, By, Options, Report};
use auditsync_core::store;

pub async fn run(args: VerifyArgs, global: &GlobalArgs) -> Result<Outcome, Error> {
    let stop = stop_on_signals();
    let settings = load_settings(global)?;
    let opts = Options {
        from: args.from,
        to: args.to,
        by: match args.by {
            VerifyBy::Day => By::Day,
            VerifyBy::Hour => By::Hour,
        },
        repair: args.repair,
        progress: !global.quiet && std::io::stderr().is_terminal(),
        stop: stop.clone(),
    };
    verify::check(&settings, &opts)?;
    // Nothing stored yet: every launch would be "missing". `sync` and `backfill` come first.
    if store::inspect(&settings.database)?.is_none() {
        return Err(store::StoreError::Missing(settings.database.clone()).into());
    }
    warn_gcc(&settings)?;
    let secret = before_writing(&stop, async { Ok(settings.client_secret().await?) }).await?;
    // The write lock even without --repair: each query is a row of the query ledger, which counts the
    // tenant's daily submissions.
    let store = before_writing(&stop, async {
        Ok(store::lock_and_open(&settings.database, Duration::from_secs(args.wait)).await?)
    })
    .await?;
    let client = Arc::new(GraphClient::new(&settings, secret)?);
    let report = verify::run(&settings, client, store, &opts).await?;
    let unrepaired = report.unrepaired();
    if unrepaired > 0 {
        tracing::error!(
            "the store misses {unrepaired} launches the Graph API found; `auditsync verify --from {} --to {} --repair` loads them",
            report.from,
            report.to
        );
    }
    for w in &report.not_verified {
        tracing::error!("not compared: {} to {}: {}", w.start, w.end, w.note);
    }
    for w in &report.partial {
        tracing::error!("compared in part: {} to {}: {}", w.start, w.end, w.note);
    }
    if report.backfill_windows_cleared > 0 {
        tracing::info!(
            "{} backfill windows noted as possibly incomplete were found whole",
            report.backfill_windows_cleared
        );
    }
    for w in &report.truncated {
        tracing::error!("compared in part: {} to {}: {}", w.start, w.end, w.note);
    }
    if let Some(t) = &report.throttled {
        tracing::error!(
            "the service refused more query submissions ({t}); run again later for the rest"
        );
    }
    let outcome = if report.outcome == "complete" {
        Outcome::Done
    } else {
        Outcome::Incomplete
    };
    let mut out = std::io::stdout().lock();
    let printed = if args.json {
        print(
            &mut out,
            &serde_json::to_string_pretty(&report).unwrap_or_default(),
        )
    } else if !(global.quiet && report.outcome == "complete") {
        render(&mut out, &report)
            .map_err(stdout_error)
            .and_then(|()| print(&mut out, &report.line()))
    } else {
        Ok(())
    };
    // A closed stdout (`| head -c0`) must not turn missing launches into exit 0.
    match printed {
        Err(e) if outcome == Outcome::Done => Err(e),
        Err(e) => {
            tracing::error!("{e}");
            Ok(outcome)
        }
        Ok(()) => Ok(outcome),
    }
}

/// How many missing Ids the table lists; `--json` has them all.
const MISSING_SHOWN: usize = 100;

/// The per-day (or hour) table, then the missing Ids (the first [`MISSING_SHOWN`]).
fn render(out: &mut dyn Write, report: &Report) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = report
        .buckets
        .iter()
        .map(|b| {
            vec![
                match report.by {
                    By::Day => b.start.get(..10).unwrap_or(&b.start).to_owned(),
                    By::Hour => b
                        .start
                        .get(..16)
                        .map_or_else(|| b.start.clone(), |h| format!("{h}Z")),
                },
                b.graph.to_string(),
                b.stored.to_string(),
                b.missing.to_string(),
                b.repaired.to_string(),
                b.only_stored.to_string(),
            ]
        })
        .collect();
    let first = match report.by {
        By::Day => "DAY",
        By::Hour => "HOUR",
    };
    write_table(
        out,
        &[
            first,
            "GRAPH",
            "STORED",
            "MISSING",
            "REPAIRED",
            "ONLY STORED",
        ],
        &rows,
    )?;
    if !report.missing.is_empty() {
        writeln!(out)?;
        let rows: Vec<Vec<String>> = report
            .missing
            .iter()
            .take(MISSING_SHOWN)
            .map(|m| {
                vec![
                    m.id.clone(),
                    m.creation_time.clone(),
                    if m.repaired { "repaired" } else { "missing" }.to_owned(),
                ]
            })
            .collect();
        write_table(out, &["MISSING ID", "CREATION TIME", "NOW"], &rows)?;
        if report.missing.len() > MISSING_SHOWN {
            writeln!(
                out,
                "… and {} more (every one in `auditsync verify --json`)",
                report.missing.len() - MISSING_SHOWN
            )?;
        }
    }
    Ok(())
}
