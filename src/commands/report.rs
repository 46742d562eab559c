//! `auditsync report apps|users|daily|monthly|environments|inactive`: arguments → a `store` query →
//! a `report` renderer, on standard output or into `--output`.

use std::io::Write;

use chrono::Utc;

use super::{kept_files, load_settings, stdout_error, write_table};
use crate::cli::{GlobalArgs, InactiveArgs, MonthlyBy, ReportArgs, ReportCommand, ReportFormat};
use crate::error::{Error, Outcome};
use crate::output::{self, Target};
use auditsync_core::report::{self, Page, Report};
use auditsync_core::store::{self, Reader, ReportFilter};

/// How many days without a launch make an app inactive on the HTML page (`report inactive`'s
/// default `--days`).
const PAGE_INACTIVE_DAYS: u32 = 90;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Apps,
    Users,
    Daily,
    Monthly,
    MonthlyByApp,
    Environments,
    Inactive { days: u32 },
}

pub async fn run(cmd: ReportCommand, global: &GlobalArgs) -> Result<Outcome, Error> {
    let (kind, args, format) = match cmd {
        ReportCommand::Apps(a) => (Kind::Apps, a.common, a.format),
        ReportCommand::Users(a) => (Kind::Users, a.common, a.format.into()),
        ReportCommand::Daily(a) => (Kind::Daily, a.common, a.format.into()),
        ReportCommand::Monthly(a) => match a.by {
            Some(MonthlyBy::App) => (Kind::MonthlyByApp, a.common, a.format.into()),
            None => (Kind::Monthly, a.common, a.format.into()),
        },
        ReportCommand::Environments(a) => (Kind::Environments, a.common, a.format.into()),
        ReportCommand::Inactive(a) => inactive_args(a)?,
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
    let report = query(store.as_ref(), kind, &filter)?;
    let extra = match (&report, format) {
        (Report::Apps(_), ReportFormat::Html) => Some(PageExtra::read(store.as_ref(), &filter)?),
        _ => None,
    };
    // Everything is read: the database (and its shared lock, which keeps writers out) is let go
    // before a byte is written, so a pager left open or a full pipe never holds up a sync.
    drop(store);

    let render = |out: &mut dyn Write| match (format, &report, &extra) {
        (ReportFormat::Table, _, _) => {
            for line in report::heading(&report) {
                writeln!(out, "{line}")?;
            }
            let (header, rows) = report::table(&report);
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            write_table(out, &header, &rows)
        }
        (ReportFormat::Csv, _, _) => report::csv(out, &report),
        (ReportFormat::Json, _, _) => report::json(out, &report),
        (ReportFormat::Html, Report::Apps(apps), Some(extra)) => report::html(
            out,
            &Page {
                filter: &filter,
                apps,
                daily: &extra.daily,
                monthly: &extra.monthly,
                environments: &extra.environments,
                inactive: Some((PAGE_INACTIVE_DAYS, &extra.inactive)),
                generated_at: extra.generated_at,
            },
        ),
        (ReportFormat::Html, _, _) => unreachable!("refused by check()"),
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

/// The report `kind` asks for.
fn query(store: &dyn Reader, kind: Kind, filter: &ReportFilter) -> Result<Report, Error> {
    Ok(match kind {
        Kind::Apps => Report::Apps(store.report_apps(filter)?),
        Kind::Users => Report::Users(store.report_users(filter)?),
        Kind::Daily => Report::Daily(store.report_daily(filter)?),
        Kind::Monthly => Report::Monthly(store.report_monthly(filter)?),
        Kind::MonthlyByApp => Report::MonthlyByApp(store.report_monthly_by_app(filter)?),
        Kind::Environments => Report::Environments(store.report_environments(filter)?),
        Kind::Inactive { days } => Report::Inactive(store.report_inactive(
            days,
            filter.environment.as_deref(),
            Utc::now(),
        )?),
    })
}

/// What the HTML page shows besides the apps report, read while the database is open.
struct PageExtra {
    daily: Vec<store::DayRow>,
    monthly: Vec<store::MonthRow>,
    environments: Vec<store::EnvironmentRow>,
    inactive: store::InactiveReport,
    generated_at: chrono::DateTime<Utc>,
}

impl PageExtra {
    /// The daily, monthly and environments reports for the page's filter, and the apps inactive for
    /// [`PAGE_INACTIVE_DAYS`] (over the whole store, in the filter's environment; only the filter's
    /// app when it names one).
    fn read(store: &dyn Reader, filter: &ReportFilter) -> Result<PageExtra, Error> {
        let generated_at = Utc::now();
        let mut inactive = store.report_inactive(
            PAGE_INACTIVE_DAYS,
            filter.environment.as_deref(),
            generated_at,
        )?;
        if let Some(app) = &filter.app {
            let app = app.to_lowercase();
            inactive.apps.retain(|a| a.app_id.to_lowercase() == app);
        }
        Ok(PageExtra {
            daily: store.report_daily(filter)?,
            monthly: store.report_monthly(filter)?,
            environments: store.report_environments(filter)?,
            inactive,
            generated_at,
        })
    }
}

/// `report inactive`'s options as the other reports' (no time range, no app), or a refusal of
/// the ones that cannot apply, naming what to use instead.
fn inactive_args(a: InactiveArgs) -> Result<(Kind, ReportArgs, ReportFormat), Error> {
    if a.from.is_some() || a.to.is_some() {
        return Err(Error::Usage(
            "`report inactive` looks at each app's last launch in the whole store, so it takes no --from or \
             --to: use --days N for apps not launched in the last N days (or `report apps --from --to` for \
             the launches of a range)"
                .into(),
        ));
    }
    if let Some(app) = a.app {
        return Err(Error::Usage(format!(
            "`report inactive` lists every inactive app and takes no --app: run `auditsync report apps --app \
             {app}` to see that app's last launch"
        )));
    }
    let common = ReportArgs {
        from: None,
        to: None,
        app: None,
        environment: a.environment,
        output: a.output,
        force: a.force,
    };
    Ok((Kind::Inactive { days: a.days }, common, a.format.into()))
}

/// Refuses option combinations that cannot work, before the database is opened.
fn check(kind: Kind, args: &ReportArgs, format: ReportFormat) -> Result<(), Error> {
    if let (Some(from), Some(to)) = (args.from, args.to)
        && from >= to
    {
        return Err(Error::Usage(
            // As given, fractions included: whole seconds could show two equal times.
            super::export::reversed(from, to),
        ));
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
