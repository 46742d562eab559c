//! The command line, as plain clap-derive data. Values a configuration file can also set are read in
//! `config`; nothing here does any I/O.

use std::path::PathBuf;

use auditsync_core::time::TimeOrAge;
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

/// Collects Power Apps launch events from the Office 365 Management Activity API into SQLite.
#[derive(Debug, Parser)]
#[command(
    name = "auditsync",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The options every command accepts.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The options every command accepts (`global = true`: they may also come after the command's name).
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file [default: $AUDITSYNC_CONFIG, else ./auditsync.toml, else
    /// ~/.config/auditsync/config.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// More detail on stderr (-v debug, -vv trace, -vvv every library too); AUDITSYNC_LOG overrides
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Silent on success: only errors (and anything lost) on stderr, no summary line
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// The commands; each is run by its file in `commands/`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start, stop or list the tenant's Management Activity API subscriptions
    #[command(subcommand)]
    Subscribe(SubscribeCommand),
    /// Collect new events: the configured window back from now (or --from/--to), into the database
    Sync(SyncArgs),
    /// Show the database's state: watermark, last run, events, ledger, blobs still to fetch
    Status(StatusArgs),
    /// Usage reports from the stored events: per app, user, day, month, environment; inactive apps
    #[command(subcommand)]
    Report(ReportCommand),
    /// Write the stored events (CSV, or JSON Lines with each raw record) for Power BI or another tool
    Export(ExportArgs),
    /// Load launches older than the Management API's 7 days (up to 180 days) from the Graph audit log query API
    Backfill(BackfillArgs),
    /// Compare the launches the Graph audit log query API finds with those stored, per day or hour
    Verify(VerifyArgs),
    /// Load historic events from Purview audit search exports (CSV), beyond the API's 7 days
    Import(ImportArgs),
    /// Check configuration, clock, token, permission, subscriptions and database, with the fix for each
    Doctor,
    /// Delete stored events older than a retention period
    Prune(PruneArgs),
    /// Try auditsync end to end against a built-in simulated tenant (no tenant or config needed)
    Demo(DemoArgs),
    /// Serve the simulated Management Activity API, Entra ID and Graph audit log query API on 127.0.0.1
    Simulator(SimulatorArgs),
}

/// `auditsync subscribe start|stop|list`.
#[derive(Debug, Subcommand)]
pub enum SubscribeCommand {
    /// Start the subscriptions (run once per tenant; starting an enabled one is fine)
    Start(ContentTypeArgs),
    /// Stop the subscriptions (content published while stopped is lost)
    Stop(ContentTypeArgs),
    /// Show the tenant's subscriptions
    List(ListArgs),
}

/// The content types a `subscribe` command acts on.
#[derive(Debug, Args)]
pub struct ContentTypeArgs {
    /// Content type to act on; repeat for several [default: the configured content_types]
    #[arg(long = "content-type", value_name = "TYPE", value_parser = parse_content_type)]
    pub content_types: Vec<String>,
}

/// `auditsync subscribe list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// With `--content-type`, only those types are shown; without, every subscription the tenant has
    /// and the configured types it has not started.
    #[command(flatten)]
    pub content_types: ContentTypeArgs,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

/// `auditsync sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Backfill from this time (YYYY-MM-DD, YYYY-MM-DDTHH:MM or RFC 3339, seconds and fraction
    /// optional; UTC unless a zone Z, +01:00, +0100 or +01 is given); before now, at most 7 days ago
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: Option<DateTime<Utc>>,
    /// End of the backfill [default: now]
    #[arg(long, value_name = "TIME", value_parser = parse_time, requires = "from")]
    pub to: Option<DateTime<Utc>>,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
    /// How long to wait for another sync on the same database to finish, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub wait: u64,
}

/// `auditsync backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Load from this time, or this long ago (180d, 26w, 48h); times as `sync --from` takes them
    #[arg(long, value_name = "TIME|AGE", value_parser = parse_time_or_age)]
    pub from: TimeOrAge,
    /// Load up to this time or age (an age is rounded down to a whole [graph] window) [default: the start
    /// of the current window, UTC midnight]; `now` for now
    #[arg(long, value_name = "TIME|AGE", value_parser = parse_time_or_age)]
    pub to: Option<TimeOrAge>,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
    /// How long to wait for another sync on the same database to finish, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub wait: u64,
}

/// `auditsync verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Compare from this time, or this long ago (30d, 48h)
    #[arg(long, value_name = "TIME|AGE", value_parser = parse_time_or_age)]
    pub from: TimeOrAge,
    /// Compare up to this time or age [default: now]
    #[arg(long, value_name = "TIME|AGE", value_parser = parse_time_or_age)]
    pub to: Option<TimeOrAge>,
    /// One row per UTC day or per UTC hour
    #[arg(
        long,
        value_name = "UNIT",
        value_enum,
        default_value = "day",
        ignore_case = true
    )]
    pub by: VerifyBy,
    /// Store the launches the store misses
    #[arg(long)]
    pub repair: bool,
    /// Print the comparison as JSON
    #[arg(long)]
    pub json: bool,
    /// How long to wait for another sync on the same database to finish, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub wait: u64,
}

/// `verify --by`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum VerifyBy {
    /// UTC days
    Day,
    /// UTC hours
    Hour,
}

/// `auditsync status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// `auditsync report apps|users|daily|monthly|environments|inactive`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Per app: launches, unique users, first and last launch, environment, production app
    Apps(AppsReportArgs),
    /// Per user: launches and apps used
    Users(TextReportArgs),
    /// Per day: launches and unique users
    Daily(TextReportArgs),
    /// Per calendar month (UTC): launches, monthly active users, apps launched, production apps
    Monthly(MonthlyArgs),
    /// Per environment: apps, launches, unique users, last launch
    Environments(TextReportArgs),
    /// Apps nobody launched in the last N days: last launch, launches in the whole store, environment
    Inactive(InactiveArgs),
}

/// `auditsync report monthly`.
#[derive(Debug, Args)]
pub struct MonthlyArgs {
    /// The options of every report.
    #[command(flatten)]
    pub common: ReportArgs,
    /// One row per month and app instead of one per month
    #[arg(long, value_enum, ignore_case = true, value_name = "WHAT")]
    pub by: Option<MonthlyBy>,
    /// Output format
    #[arg(long, value_enum, ignore_case = true, default_value_t = TextFormat::Table)]
    pub(crate) format: TextFormat,
}

/// `report monthly --by`: what each month is split by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MonthlyBy {
    /// One row per app launched that month.
    App,
}

/// `auditsync report inactive`. It looks at the whole store (an app's last launch is the latest one
/// stored), so the time and app filters of the other reports do not apply: they are accepted here
/// only to be refused with what to use instead.
#[derive(Debug, Args)]
pub struct InactiveArgs {
    /// List the apps whose last stored launch is more than this many days before now
    #[arg(long, value_name = "N", default_value_t = 90, allow_negative_numbers = true,
          value_parser = parse_days)]
    pub days: u32,
    /// Only this environment (its id): apps with no launch in it for N days
    #[arg(long, value_name = "ENVIRONMENT_ID")]
    pub environment: Option<String>,
    /// Output format
    #[arg(long, value_enum, ignore_case = true, default_value_t = TextFormat::Table)]
    pub(crate) format: TextFormat,
    /// Write to this file instead of standard output (mode 600; never the database or the
    /// configuration)
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Replace the --output file if it exists
    #[arg(long, requires = "output")]
    pub force: bool,
    /// Refused: the report reads the whole store (see `--days`).
    #[arg(long, hide = true, value_name = "TIME")]
    pub from: Option<String>,
    /// Refused, as `--from`.
    #[arg(long, hide = true, value_name = "TIME")]
    pub to: Option<String>,
    /// Refused: `report apps --app ID` shows one app's last launch.
    #[arg(long, hide = true, value_name = "APP_ID")]
    pub app: Option<String>,
}

/// `auditsync export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only events from this time on (YYYY-MM-DD, YYYY-MM-DDTHH:MM or RFC 3339, seconds and fraction
    /// optional; UTC unless a zone is given) [default: the oldest stored]
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: Option<DateTime<Utc>>,
    /// Only events before this time [default: no limit]
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to: Option<DateTime<Utc>>,
    /// csv: the columns, no raw record; jsonl: one JSON object per line, the columns and `raw`
    #[arg(long, value_enum, ignore_case = true)]
    pub(crate) format: ExportFormat,
    /// Write to this file instead of standard output (mode 600; never the database or the
    /// configuration); it appears only once the export is whole
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Replace the --output file if it exists
    #[arg(long, requires = "output")]
    pub force: bool,
    /// Refused: the export writes every stored event in the range; filter the file afterwards.
    #[arg(long, hide = true, value_name = "APP_ID")]
    pub app: Option<String>,
    /// Refused, as `--app`.
    #[arg(long, hide = true, value_name = "ENVIRONMENT_ID")]
    pub environment: Option<String>,
}

/// `export --format`: `csv` (a header row, the columns of `audit_events` without the raw record) or
/// `jsonl` (JSON Lines: one object per event, the columns and `raw`). No doc comments on the
/// variants, as [`ReportFormat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExportFormat {
    Csv,
    Jsonl,
}

/// `auditsync report apps`: the options of every report, and its formats (html included).
#[derive(Debug, Args)]
pub struct AppsReportArgs {
    /// The options of every report.
    #[command(flatten)]
    pub common: ReportArgs,
    /// Output format (html: one self-contained page with a chart, written with --output)
    #[arg(long, value_enum, ignore_case = true, default_value_t = ReportFormat::Table)]
    pub(crate) format: ReportFormat,
}

/// `auditsync report users|daily`: the options of every report, and its formats (no html).
#[derive(Debug, Args)]
pub struct TextReportArgs {
    /// The options of every report.
    #[command(flatten)]
    pub common: ReportArgs,
    /// Output format
    #[arg(long, value_enum, ignore_case = true, default_value_t = TextFormat::Table)]
    pub(crate) format: TextFormat,
}

/// The options of every `report` command.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Only events from this time on (YYYY-MM-DD, YYYY-MM-DDTHH:MM or RFC 3339, seconds and fraction
    /// optional; UTC unless a zone Z, +01:00, +0100 or +01 is given)
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: Option<DateTime<Utc>>,
    /// Only events before this time
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to: Option<DateTime<Utc>>,
    /// Only this app (its GUID)
    #[arg(long, value_name = "APP_ID")]
    pub app: Option<String>,
    /// Only this environment (its id)
    #[arg(long, value_name = "ENVIRONMENT_ID")]
    pub environment: Option<String>,
    /// Write to this file instead of standard output (mode 600; never the database or the
    /// configuration)
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Replace the --output file if it exists
    #[arg(long, requires = "output")]
    pub force: bool,
}

/// `report apps --format`: `table` (aligned columns for the terminal), `csv` (with a header row),
/// `json` (an array of objects), `html` (one self-contained page with a chart; only with `--output`).
/// The variants carry no doc comments on purpose: clap would turn them into per-value help and change
/// the layout of `report --help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ReportFormat {
    Table,
    Csv,
    Json,
    Html,
}

/// `report users|daily --format`: the formats of [`ReportFormat`] but `html` (the page is the apps
/// report's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TextFormat {
    Table,
    Csv,
    Json,
}

impl From<TextFormat> for ReportFormat {
    fn from(f: TextFormat) -> ReportFormat {
        match f {
            TextFormat::Table => ReportFormat::Table,
            TextFormat::Csv => ReportFormat::Csv,
            TextFormat::Json => ReportFormat::Json,
        }
    }
}

/// `auditsync import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Purview audit search exports: the classic CreationDate,UserIds,Operations,AuditData export, the
    /// newer RecordId,CreationDate,...,AuditData export, or Search-UnifiedAuditLog | Export-Csv output
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// `auditsync prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Delete events older than this: a whole number of days (400d, 400 days), weeks (52w) or hours
    /// (48h); less than 7 days needs --include-fetchable
    #[arg(long, value_name = "AGE", value_parser = parse_age, allow_hyphen_values = true)]
    pub older_than: chrono::TimeDelta,
    /// Allow an age under 7 days, whose content the API still serves: those events are deleted and the
    /// ledger forgets their blobs, so a later `sync --from` fetches them again
    #[arg(long)]
    pub include_fetchable: bool,
    /// Say what would be deleted (events, ledger rows, pending blobs, runs) and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `auditsync demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// `--config` after the command's name: refused (the command reads no configuration). Declared
    /// here, hidden, so that this command's `--help` does not offer the global `--config` (clap
    /// propagates a global option only to commands that do not declare one of the same id).
    #[arg(long = "config", id = "config", hide = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Seed of the simulated tenant's data
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// `auditsync simulator`.
#[derive(Debug, Args)]
pub struct SimulatorArgs {
    /// `--config` after the command's name: refused (the command reads no configuration). Declared
    /// here, hidden, so that this command's `--help` does not offer the global `--config` (clap
    /// propagates a global option only to commands that do not declare one of the same id).
    #[arg(long = "config", id = "config", hide = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Port on 127.0.0.1 (0 picks a free one)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Seed of the simulated tenant's data
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Hours of content the tenant holds, back from now
    #[arg(long, default_value_t = 24)]
    pub hours: u32,
    /// Audit.General blobs per hour
    #[arg(long, default_value_t = 4)]
    pub blobs_per_hour: u32,
    /// Records per blob
    #[arg(long, default_value_t = 50)]
    pub records_per_blob: u32,
    /// Blobs per listing page
    #[arg(long, default_value_t = 100)]
    pub page_size: usize,
    /// Render every blob before serving, so that serving is memory only (benchmarks)
    #[arg(long)]
    pub prerender: bool,
    /// Admit at most C API requests in any W seconds, refusing the rest with 403 AF429
    #[arg(long, value_name = "C/W")]
    pub rate_limit: Option<String>,
    /// Answer each blob GET after this many milliseconds
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub blob_delay_ms: u64,
    /// Share of Audit.General records that are Power Apps launches, from 0 to 1
    #[arg(long, value_name = "SHARE", default_value_t = 0.1, value_parser = parse_share)]
    pub launch_share: f64,
    /// Days of audit log the Graph API serves back from now, up to 400 (0: the hours above only)
    #[arg(long, value_name = "DAYS", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=400))]
    pub history_days: u32,
    /// A Graph query succeeds no sooner than this many milliseconds after its creation (and after
    /// answering notStarted, then running, to two polls)
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub graph_query_delay_ms: u64,
    /// Most records a Graph query returns (recordCountLimit); more marks it isRecordCountLimitExceeded
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub graph_record_cap: u64,
    /// Graph queries queued or running at once before creates answer 429
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub graph_running_limit: usize,
    /// Graph query submissions in 24 hours before creates answer 429
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub graph_daily_submissions: usize,
    /// Write a configuration file for this simulated tenant here (mode 600)
    #[arg(long, value_name = "PATH")]
    pub write_config: Option<PathBuf>,
    /// Replace the --write-config file if it exists
    #[arg(long, requires = "write_config")]
    pub force: bool,
}

fn parse_content_type(s: &str) -> Result<String, String> {
    auditsync_core::config::content_type(s)
        .map(str::to_owned)
        .ok_or_else(|| {
            format!(
                "{s:?} is not a content type of the API; use one of {}",
                auditsync_core::config::CONTENT_TYPES.join(", ")
            )
        })
}

/// `simulator --launch-share`: a number from 0 to 1.
fn parse_share(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|share| (0.0..=1.0).contains(share))
        .ok_or_else(|| format!("{text:?} is not a share: write a number from 0 to 1, such as 0.1"))
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    auditsync_core::time::parse_cli_time(s)
}

fn parse_time_or_age(s: &str) -> Result<TimeOrAge, String> {
    auditsync_core::time::parse_time_or_age(s)
}

fn parse_age(s: &str) -> Result<chrono::TimeDelta, String> {
    auditsync_core::time::parse_age(s)
}

/// `report inactive --days`: a whole number of days from 0 to 36,500 (a hundred years).
fn parse_days(text: &str) -> Result<u32, String> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|d| *d <= 36_500)
        .ok_or_else(|| {
            format!(
                "{text:?} is not a number of days: write a whole number from 0 to 36500, such as 90"
            )
        })
}
