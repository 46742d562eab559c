//! `auditsync import FILE...`: historic events from Purview audit search exports.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{load_settings, stdout_error};
use crate::cli::{GlobalArgs, ImportArgs};
use crate::error::{Error, Outcome};
use auditsync_core::extract::Filter;
use auditsync_core::import::import_file;
use auditsync_core::store;

/// Bad rows printed per file; the rest are counted.
const SHOWN: usize = 20;

pub async fn run(args: ImportArgs, global: &GlobalArgs) -> Result<Outcome, Error> {
    let settings = load_settings(global)?;
    let mut store = store::lock_and_open(&settings.database, Duration::from_secs(60)).await?;
    let filter = Filter::new(&settings.sync.operations);
    let progress = if !global.quiet && std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{msg} {wide_bar} {bytes}/{total_bytes} {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut complete = true;
    let mut out = std::io::stdout().lock();
    for path in &args.files {
        progress.set_message(path.display().to_string());
        // Parsing and SQLite are blocking work: keep them off the async workers.
        let (file, filter_ref, bar) = (path.clone(), filter.clone(), progress.clone());
        let (back, result) = tokio::task::spawn_blocking(move || {
            let result = import_file(&file, &filter_ref, store.as_mut(), &bar);
            (store, result)
        })
        .await
        .map_err(|e| Error::Io {
            what: "the import stopped unexpectedly".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        store = back;
        let report = match result {
            Ok(r) => r,
            Err(e) => {
                // One unreadable file does not stop the others.
                tracing::error!("{e}");
                complete = false;
                continue;
            }
        };
        progress.finish_and_clear();
        complete &= report.bad_row_count == 0;
        if global.quiet && report.bad_row_count == 0 {
            // -q: a file imported whole is not worth a line.
            continue;
        }
        writeln!(
            out,
            "import {} ({}): {} rows, {} events kept ({} new), {} rows could not be read; read as {}",
            report.file,
            report.shape,
            report.rows,
            report.events_kept,
            report.events_new,
            report.bad_row_count,
            report.format
        )
        .map_err(stdout_error)?;
        for bad in report.bad_rows.iter().take(SHOWN) {
            tracing::error!("{} line {}: {}", report.file, bad.line, bad.reason);
        }
        if report.bad_row_count > SHOWN as u64 {
            tracing::error!(
                "{}: and {} more rows that could not be read",
                report.file,
                report.bad_row_count - SHOWN as u64
            );
        }
    }
    Ok(if complete {
        Outcome::Done
    } else {
        Outcome::Incomplete
    })
}
