//! `auditsync demo`: the whole tool against a simulated tenant served inside this process, with no
//! tenant and no configuration: subscribe, sync the last day into a fresh SQLite file, and summarise.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use chrono::Utc;

use super::{kept_files, simulator_config, stdout_error, subscribe, write_table};
use crate::cli::DemoArgs;
use crate::error::{Error, Outcome};
use crate::output::{self, Target};
use auditsync_core::api::ApiClient;
use auditsync_core::config::{Env, Settings};
use auditsync_core::report::{self, Page, Report};
use auditsync_core::store::{self, ReportFilter, RunLock};
use auditsync_core::sync::{self, Options};
use auditsync_simulator::{SimSpec, Simulator};

pub async fn run(args: DemoArgs) -> Result<Outcome, Error> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| Error::Io { what, source }
    };
    let sim = Simulator::start(SimSpec::new(args.seed))
        .await
        .map_err(io("cannot start the simulated service"))?;
    let dir = private_folder().map_err(io(
        "cannot create the demo folder in the temporary folder (set TMPDIR to one that is writable)",
    ))?;
    let database = dir.join("auditsync.db");
    let text = simulator_config(&sim, &database.to_string_lossy());
    let settings = Settings::from_parts(None, Some(&text), &Env::default())?;

    let mut out = std::io::stdout().lock();
    let say = |out: &mut dyn Write, s: &str| writeln!(out, "{s}").map_err(stdout_error);
    say(
        &mut out,
        &format!(
            "A simulated tenant ({}) is serving the Management Activity API and Entra ID at {}.\n",
            settings.tenant.tenant_id,
            sim.base_url()
        ),
    )?;

    say(&mut out, "$ auditsync subscribe start")?;
    let secret = settings.client_secret().await?;
    let api = Arc::new(ApiClient::new(&settings, secret)?);
    subscribe::start(&api, &settings.sync.content_types, &mut out).await?;
    say(&mut out, "\n$ auditsync subscribe list")?;
    subscribe::list(&api, &settings.sync.content_types, false, false, &mut out).await?;

    say(&mut out, "\n$ auditsync sync")?;
    let lock = RunLock::try_acquire(&database)?;
    let store = store::open_write(&database, lock)?;
    let opts = Options {
        range: None,
        progress: std::io::stderr().is_terminal(),
        stop: Default::default(),
    };
    let plan = sync::plan(&settings, Some(&*store), &opts)?;
    let first = sync::run(&settings, api.clone(), store, plan, &opts).await?;
    say(&mut out, &first.summary.line())?;
    if let Some(fatal) = first.fatal {
        return Err(fatal.into());
    }

    say(
        &mut out,
        "\n$ auditsync sync   (the next cron run: only blobs not yet stored are fetched)",
    )?;
    let plan = sync::plan(&settings, Some(&*first.store), &opts)?;
    let again = sync::run(&settings, api, first.store, plan, &opts).await?;
    say(&mut out, &again.summary.line())?;
    if let Some(fatal) = again.fatal {
        return Err(fatal.into());
    }
    let store = again.store;

    say(
        &mut out,
        "\n$ auditsync report apps   (the five most launched)",
    )?;
    let filter = ReportFilter::default();
    let mut apps = store.report_apps(&filter)?;
    let page = dir.join("usage.html");
    let mut html = Vec::new();
    let daily = store.report_daily(&filter)?;
    let monthly = store.report_monthly(&filter)?;
    let environments = store.report_environments(&filter)?;
    let now = Utc::now();
    let inactive = store.report_inactive(90, None, now)?;
    report::html(
        &mut html,
        &Page {
            filter: &filter,
            apps: &apps,
            daily: &daily,
            monthly: &monthly,
            environments: &environments,
            inactive: Some((90, &inactive)),
            generated_at: now,
        },
    )
    .map_err(io("cannot render the demo's report"))?;
    output::write(
        &Target {
            path: &page,
            flag: "--output",
            what: "the demo's report",
            example: "usage.html",
            force: false,
        },
        &kept_files(&settings),
        &html,
    )?;
    apps.truncate(5);
    let (header, rows) = report::table(&Report::Apps(apps));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    write_table(&mut out, &header, &rows).map_err(stdout_error)?;
    say(
        &mut out,
        &format!(
            "\n$ auditsync report apps --format html --output {}\n\nThe events are in {} (table \
             audit_events; remove {} when you are done). Next: register an app in Entra ID and write a \
             configuration (see README.md and config.example.toml).",
            page.display(),
            database.display(),
            dir.display()
        ),
    )?;
    Ok(if first.summary.complete() && again.summary.complete() {
        Outcome::Done
    } else {
        Outcome::Incomplete
    })
}

/// A new folder of the demo's own in the temporary folder (`TMPDIR`): a random name, mode 700, kept
/// afterwards for the admin to look at (never one a previous run, or another user, left there).
fn private_folder() -> std::io::Result<std::path::PathBuf> {
    let mut folder = tempfile::Builder::new();
    folder.prefix("auditsync-demo-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        folder.permissions(std::fs::Permissions::from_mode(0o700));
    }
    Ok(folder.tempdir()?.keep())
}
