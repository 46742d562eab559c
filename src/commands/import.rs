//! `auditsync import FILE...`: historic events from Purview audit search exports.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{before_writing, kept_files, load_settings, stdout_error, stop_on_signals};
use crate::cli::{GlobalArgs, ImportArgs};
use crate::error::{Error, Outcome};
use crate::output::Keep;
use auditsync_core::extract::Filter;
use auditsync_core::import::{ImportError, import_file};
use auditsync_core::store::{self, Reader, StoreError};

/// Bad rows printed per file; the rest are counted.
const SHOWN: usize = 20;

pub async fn run(args: ImportArgs, global: &GlobalArgs) -> Result<Outcome, Error> {
    let stop = stop_on_signals();
    let settings = load_settings(global)?;
    // Every input is checked before the database (or its lock) is created or opened; the
    // configuration and the secret file (`import /etc/auditsync/*`) are refused before being read.
    let keep = kept_files(&settings);
    for path in &args.files {
        check_input(path, &keep)?;
    }
    let mut store = before_writing(&stop, async {
        Ok(store::lock_and_open(&settings.database, Duration::from_secs(60)).await?)
    })
    .await?;
    store.set_stop(stop.clone());
    let events_before = total_events(store.as_ref())?;
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
    for (done, path) in args.files.iter().enumerate() {
        if let Some(signal) = stop.requested() {
            return Err(interrupted(
                signal,
                store.as_ref(),
                events_before,
                &args.files[done..],
                None,
            ));
        }
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
            Err(ImportError::Store(StoreError::Interrupted(signal))) => {
                progress.finish_and_clear();
                let rest = &args.files[done + 1..];
                return Err(interrupted(
                    signal,
                    store.as_ref(),
                    events_before,
                    rest,
                    Some(path),
                ));
            }
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

/// Refuses an input that cannot be imported before anything is created: missing, unreadable, not a
/// regular file (a named pipe would block, a folder has no rows), or one of the files in `keep` (the
/// configuration, the secret file, the database's files), told by device and inode so that a link
/// or another spelling of the path is caught, and refused before a byte of it is read. Exit 2: the
/// command line names it.
fn check_input(path: &std::path::Path, keep: &[Keep]) -> Result<(), Error> {
    let refuse = |why: String| {
        Error::Usage(format!(
            "cannot import {}: {why}; nothing was imported (every file is checked before the database is \
             opened)",
            path.display()
        ))
    };
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => refuse("there is no such file; check the path".into()),
        _ => refuse(e.to_string()),
    })?;
    if !meta.is_file() {
        return Err(refuse(if meta.is_dir() {
            "it is a folder; name the export files in it".into()
        } else {
            "it is not a regular file (a named pipe, a socket or a device)".into()
        }));
    }
    if let Some(k) = keep
        .iter()
        .find(|k| crate::output::same_file(path, &k.path))
    {
        return Err(refuse(format!(
            "it is {}, not an audit log export; name only the export files",
            k.what
        )));
    }
    std::fs::File::open(path).map_err(|e| refuse(format!("{e}; check its permissions")))?;
    Ok(())
}

/// Every event in the database, for what an interrupted import kept.
fn total_events(store: &dyn Reader) -> Result<i64, Error> {
    Ok(store.events_by_operation()?.iter().map(|o| o.events).sum())
}

/// What an import stopped by `signal` kept: the files before `current` in full, `current` up to its
/// last committed batch; `rest` was not started.
fn interrupted(
    signal: auditsync_core::stop::Signal,
    store: &dyn Reader,
    events_before: i64,
    rest: &[std::path::PathBuf],
    current: Option<&std::path::Path>,
) -> Error {
    let new =
        total_events(store).map_or_else(|_| "some".to_owned(), |n| (n - events_before).to_string());
    let mut kept = format!("{new} new events are stored and kept");
    if let Some(file) = current {
        kept.push_str(&format!(
            "; {} was stopped partway (importing it again adds only what is missing: events are keyed on \
             their Id)",
            file.display()
        ));
    }
    if !rest.is_empty() {
        let names: Vec<String> = rest.iter().map(|p| p.display().to_string()).collect();
        kept.push_str(&format!("; not imported: {}", names.join(", ")));
    }
    Error::Interrupted { signal, kept }
}
