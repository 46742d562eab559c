//! `auditsync report apps|users|daily`: arguments → a `store` query → a `report` renderer, on standard
//! output or into `--output`.

use std::io::Write;

use chrono::Utc;

use super::{kept_files, load_settings, stdout_error, write_table};
use crate::cli::{GlobalArgs, ReportArgs, ReportCommand, ReportFormat};
use crate::error::{Error, Outcome};
use crate::output::{self, Target};
use auditsync_core::report::{self, Page, Report};
use auditsync_core::store::{self, ReportFilter};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Apps,
    Users,
    Daily,
}

pub async fn run(cmd: ReportCommand, global: &GlobalArgs) -> Result<Outcome, Error> {
    let (kind, args, format) = match cmd {
        ReportCommand::Apps(a) => (Kind::Apps, a.common, a.format),
        ReportCommand::Users(a) => (Kind::Users, a.common, a.format.into()),
        ReportCommand::Daily(a) => (Kind::Daily, a.common, a.format.into()),
    };
    check(kind, &args, format)?;
    let settings = load_settings(global)?;
    let keep = kept_files(&settings);
    let target = args.output.as_deref().map(|path| Target {
        path,
        flag: "--output",
        what: "the report",
        example: "usage.html",
        force: args.force,
    });
    // Refused before the database is read; checked again when written.
    if let Some(target) = &target {
        output::check(target, &keep)?;
    }
    let store = store::open_read(&settings.database)?;
    let filter = ReportFilter {
        from: args.from,
        to: args.to,
        app: args.app,
        environment: args.environment,
    };
    let report = match kind {
        Kind::Apps => Report::Apps(store.report_apps(&filter)?),
        Kind::Users => Report::Users(store.report_users(&filter)?),
        Kind::Daily => Report::Daily(store.report_daily(&filter)?),
    };
    let daily = match (&report, format) {
        (Report::Apps(_), ReportFormat::Html) => store.report_daily(&filter)?,
        _ => Vec::new(),
    };
    // Everything is read: the database (and its shared lock, which keeps writers out) is let go
    // before a byte is written, so a pager left open or a full pipe never holds up a sync.
    drop(store);

    let render = |out: &mut dyn Write| match (format, &report) {
        (ReportFormat::Table, _) => {
            let (header, rows) = report::table(&report);
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            write_table(out, &header, &rows)
        }
        (ReportFormat::Csv, _) => report::csv(out, &report),
        (ReportFormat::Json, _) => report::json(out, &report),
        (ReportFormat::Html, Report::Apps(apps)) => report::html(
            out,
            &Page {
                filter: &filter,
                apps,
                daily: &daily,
                generated_at: Utc::now(),
            },
        ),
        (ReportFormat::Html, _) => unreachable!("refused by check()"),
    };
    match &target {
        Some(target) => {
            // Rendered into memory first, so that a failed render leaves no file.
            let mut buf = Vec::new();
            render(&mut buf).map_err(|source| Error::Io {
                what: "cannot render the report".into(),
                source,
            })?;
            output::write(target, &keep, &buf)?;
            tracing::info!(
                "report written to {} ({} rows)",
                target.path.display(),
                report.len()
            );
        }
        None => {
            let mut out = std::io::stdout().lock();
            render(&mut out).map_err(stdout_error)?;
            out.flush().map_err(stdout_error)?;
        }
    }
    Ok(Outcome::Done)
}

/// Refuses option combinations that cannot work, before the database is opened.
fn check(kind: Kind, args: &ReportArgs, format: ReportFormat) -> Result<(), Error> {
    if let (Some(from), Some(to)) = (args.from, args.to)
        && from >= to
    {
        return Err(Error::Usage(format!(
            "--from {} is not before --to {}; give a --from earlier than --to (--to is exclusive)",
            // As given, fractions included: whole seconds could show two equal times.
            from.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            to.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        )));
    }
    if format == ReportFormat::Html {
        if kind != Kind::Apps {
            return Err(Error::Usage(
                "--format html is only for `auditsync report apps`; use table, csv or json here"
                    .into(),
            ));
        }
        if args.output.is_none() {
            return Err(Error::Usage(
                "--format html writes a page, not text for the terminal: add --output usage.html"
                    .into(),
            ));
        }
    }
    Ok(())
}
