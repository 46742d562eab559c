//! `auditsync export --from --to --format csv|jsonl`: the stored events, streamed from the store to
//! standard output or into `--output` one row at a time (never the whole store in memory), for
//! Power BI or another tool. Ctrl-C or SIGTERM stops it between two rows (exit 130/143).

use std::io::{self, Write};

use chrono::{DateTime, Utc};

use super::{kept_files, load_settings, stdout_error, stop_on_signals};
use crate::cli::{ExportArgs, ExportFormat, GlobalArgs};
use crate::error::{Error, Outcome};
use crate::output::{self, Target};
use auditsync_core::report;
use auditsync_core::stop::{Signal, Stop};
use auditsync_core::store::{self, ExportedEvent, ReportFilter, StoreError};

pub async fn run(args: ExportArgs, global: &GlobalArgs) -> Result<Outcome, Error> {
    let stop = stop_on_signals();
    check(&args)?;
    let settings = load_settings(global)?;
    let keep = kept_files(&settings);
    let target = args.output.as_deref().map(|path| Target {
        path,
        flag: "--output",
        what: "the export",
        example: "events.jsonl",
        force: args.force,
    });
    // Refused before the database is read; checked again when written.
    if let Some(target) = &target {
        output::check(target, &keep)?;
    }
    let store = store::open_read(&settings.database)?;
    let range = store::tally::seconds(&ReportFilter {
        from: args.from,
        to: args.to,
        ..ReportFilter::default()
    });
    let format = args.format;
    // Reading and writing are blocking work: this worker leaves the async tasks (the signal
    // listener) to the others while it runs.
    tokio::task::block_in_place(|| {
        let export = |out: &mut dyn Write| -> Result<u64, StoreError> {
            if format == ExportFormat::Csv {
                report::export_csv_header(out).map_err(StoreError::Output)?;
            }
            let mut visit = |e: &ExportedEvent| -> io::Result<()> {
                if stop.requested().is_some() {
                    return Err(io::Error::new(io::ErrorKind::Interrupted, "stopped"));
                }
                match format {
                    ExportFormat::Csv => report::export_csv_row(out, e),
                    ExportFormat::Jsonl => report::export_jsonl_row(out, e),
                }
            };
            store.export(range, &mut visit)
        };
        match &target {
            Some(target) => {
                let mut written = 0;
                output::write_streamed(target, &keep, |out: &mut dyn Write| {
                    written = export(out).map_err(|e| match e {
                        StoreError::Output(source) => match interruption(&stop) {
                            Some(signal) => interrupted(signal, Some(target)),
                            None => output::io_error(target, source).into(),
                        },
                        other => Error::Store(other),
                    })?;
                    Ok::<(), Error>(())
                })?;
                tracing::info!("{written} events exported to {}", target.path.display());
                Ok(Outcome::Done)
            }
            None => {
                let stdout = io::stdout().lock();
                let mut out = io::BufWriter::with_capacity(64 * 1024, stdout);
                let result = export(&mut out);
                // What was written before an interruption or a failed read reaches the reader.
                let flushed = out.flush();
                match result {
                    Ok(_) => flushed.map_err(stdout_error).map(|()| Outcome::Done),
                    Err(StoreError::Output(source)) => Err(match interruption(&stop) {
                        Some(signal) => interrupted(signal, None),
                        None => stdout_error(source),
                    }),
                    Err(other) => Err(other.into()),
                }
            }
        }
    })
}

/// The signal that stopped the export, if one did (the rows' writer then failed on purpose).
fn interruption(stop: &Stop) -> Option<Signal> {
    stop.requested()
}

/// The interruption, and what it left behind: into a file, nothing (the partial export is removed);
/// on standard output, the rows written so far, an incomplete export.
fn interrupted(signal: Signal, target: Option<&Target<'_>>) -> Error {
    let kept = match target {
        Some(t) => format!(
            "the export was stopped before it was complete and nothing was written to {} (the partial \
             file was removed); run the command again to export the range",
            t.path.display()
        ),
        None => {
            "the export on standard output stopped between two events and is incomplete; run the \
                 command again to export the whole range"
                .to_owned()
        }
    };
    Error::Interrupted { signal, kept }
}

/// "--from is not before --to", with both times as given (fractions included: whole seconds could
/// show two equal times).
pub(super) fn reversed(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    format!(
        "--from {} is not before --to {}; give a --from earlier than --to (--to is exclusive)",
        from.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        to.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    )
}

/// Refuses what cannot work, before the database is opened.
fn check(args: &ExportArgs) -> Result<(), Error> {
    if let (Some(from), Some(to)) = (args.from, args.to)
        && from >= to
    {
        return Err(Error::Usage(reversed(from, to)));
    }
    if args.app.is_some() || args.environment.is_some() {
        return Err(Error::Usage(
            "export writes every stored event of the range (every operation) and takes no --app or \
             --environment: filter the file afterwards (the app_id and environment_id columns), or use \
             `auditsync report apps --app ID` / `--environment ID` for counts"
                .into(),
        ));
    }
    Ok(())
}
