//! One module per verb: each turns its arguments into typed options and calls into `api`, `sync`,
//! `store` or `report`. Nothing here speaks HTTP or SQL.

mod backfill;
mod demo;
mod doctor;
mod export;
mod import;
mod prune;
mod report;
mod simulator;
mod status;
mod subscribe;
mod sync;
mod verify;

use std::io::Write;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::error::{Error, Outcome};
use crate::output::Keep;
use auditsync_core::config::{Env, SecretSource, Settings};
use auditsync_core::stop::{Signal, Stop};
use auditsync_core::store;

/// Refuses `--config` for a command that would ignore it (exit 2), rather than run as if it were read.
fn no_config(
    global: &GlobalArgs,
    local: Option<&std::path::Path>,
    what: &str,
    instead: &str,
) -> Result<(), Error> {
    match global.config.as_deref().or(local) {
        Some(path) => Err(Error::Usage(format!(
            "--config {} was given, but {what}: drop --config ({instead})",
            path.display()
        ))),
        None => Ok(()),
    }
}

/// The files an output (`report --output`) must never be: the database and its companions, the
/// configuration file, the client secret's file.
fn kept_files(settings: &Settings) -> Vec<Keep> {
    let db = settings.database.display();
    let mut keep: Vec<Keep> = store::files(&settings.database)
        .into_iter()
        .enumerate()
        .map(|(i, (path, what))| Keep {
            what: match i {
                0 => format!("{what} {db}"),
                _ => format!("{what} of the database {db}"),
            },
            path,
        })
        .collect();
    if let Some(file) = &settings.file {
        keep.push(Keep {
            path: file.clone(),
            what: format!("the configuration file {}", file.display()),
        });
    }
    if let Some(SecretSource::File(path, _)) = &settings.tenant.secret {
        keep.push(Keep {
            path: path.clone(),
            what: format!("the client secret file {}", path.display()),
        });
    }
    keep
}

pub async fn run(cli: Cli) -> Result<Outcome, Error> {
    match cli.command {
        Command::Subscribe(cmd) => {
            until_stopped(
                subscribe::run(cmd, &cli.global),
                "a subscription started or stopped before the signal stays so; run `auditsync subscribe \
                 list` to see where each stands",
            )
            .await
        }
        Command::Sync(args) => sync::run(args, &cli.global).await,
        Command::Status(args) => status::run(args, &cli.global).await,
        Command::Report(cmd) => report::run(cmd, &cli.global).await,
        Command::Export(args) => export::run(args, &cli.global).await,
        Command::Backfill(args) => backfill::run(args, &cli.global).await,
        Command::Verify(args) => verify::run(args, &cli.global).await,
        Command::Import(args) => import::run(args, &cli.global).await,
        Command::Doctor => doctor::run(&cli.global).await,
        Command::Prune(args) => prune::run(args, &cli.global).await,
        Command::Demo(args) => {
            no_config(
                &cli.global,
                args.config.as_deref(),
                "demo runs against its own simulated tenant and reads no configuration",
                "to try your own tenant, run e.g. `auditsync --config PATH doctor`",
            )?;
            demo::run(args).await
        }
        Command::Simulator(args) => {
            no_config(
                &cli.global,
                args.config.as_deref(),
                "simulator serves a simulated tenant and reads no configuration",
                "to write a configuration for it, pass --write-config PATH",
            )?;
            simulator::run(args).await
        }
    }
}

/// Reads and validates the configuration, logging its warnings.
fn load_settings(global: &GlobalArgs) -> Result<Settings, Error> {
    let settings = Settings::load(global.config.as_deref(), &Env::from_process())?;
    for w in &settings.warnings {
        tracing::warn!("{w}");
    }
    if let Some(p) = &settings.file {
        tracing::debug!(file = %p.display(), "configuration read");
    }
    Ok(settings)
}

/// Runs `work` until it ends or Ctrl-C/SIGTERM comes: then `work` is dropped where it is, and with it a
/// secret command still running (its whole process group is killed) and any request in flight, and
/// the command ends with exit 130/143 saying `kept`. For the commands that write nothing in steps
/// (`subscribe`, `doctor`); those that do stop between steps instead ([`stop_on_signals`]).
async fn until_stopped(
    work: impl std::future::Future<Output = Result<Outcome, Error>>,
    kept: &str,
) -> Result<Outcome, Error> {
    let stop = stop_on_signals();
    tokio::select! {
        biased;
        signal = stop.wait() => Err(Error::Interrupted {
            signal,
            kept: kept.to_owned(),
        }),
        result = work => result,
    }
}

/// For the commands that write (`sync`, `import`, `prune`): the first Ctrl-C or SIGTERM raises the
/// returned [`Stop`], so the command stops between two units of work and says what it kept; a second
/// one exits at once (SQLite keeps what was committed, as after a kill).
fn stop_on_signals() -> Stop {
    let stop = Stop::new();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::debug!("cannot listen for SIGINT and SIGTERM; they stop auditsync at once");
            return stop;
        };
        let flag = stop.clone();
        tokio::spawn(async move {
            loop {
                let signal = tokio::select! {
                    _ = interrupt.recv() => Signal::Interrupt,
                    _ = terminate.recv() => Signal::Terminate,
                };
                if flag.requested().is_some() {
                    tracing::error!("{signal} again: stopping at once");
                    std::process::exit(signal.exit_code().into());
                }
                tracing::warn!(
                    "{signal}: stopping once what is in hand is committed (send it again to stop at once)"
                );
                flag.request(signal);
            }
        });
    }
    #[cfg(not(unix))]
    {
        let flag = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.request(Signal::Interrupt);
            }
        });
    }
    stop
}

/// Runs `work` unless `stop` is raised first; then the command ends with [`Error::Interrupted`]
/// saying that nothing was written yet (for the waits before a command writes: the run lock, the
/// secret command).
async fn before_writing<T>(
    stop: &Stop,
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::select! {
        biased;
        signal = stop.wait() => Err(Error::Interrupted {
            signal,
            kept: "nothing was written to the database yet".into(),
        }),
        result = work => result,
    }
}

/// A configuration for a simulated tenant (its secret included: it is a simulated one).
fn simulator_config(sim: &auditsync_simulator::SimControl, database: &str) -> String {
    let spec = sim.spec();
    let base = sim.base_url();
    let base = base.as_str().trim_end_matches('/');
    format!(
        "tenant_id = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\nauthority = \"{base}\"\naudience = \"{base}\"\n\
         database = {:?}\n",
        spec.tenant_id, spec.client_id, spec.client_secret, database
    )
}

/// Writes `text` and a newline to `out` (standard output, or a sink under -q) through the redaction
/// filter: the one way a command's results reach standard output, so that nothing a service answered
/// (an error quoting the request's `Authorization` header, a webhook's `authId`) can print a secret or
/// a token, whatever path brought it into the text.
fn print(out: &mut dyn Write, text: &str) -> Result<(), Error> {
    writeln!(out, "{}", auditsync_core::redact::redact(text)).map_err(stdout_error)
}

/// Results go to stdout; a closed pipe (`auditsync ... | head`) is not an error worth a message.
fn stdout_error(source: std::io::Error) -> Error {
    Error::Io {
        what: "cannot write to standard output".into(),
        source,
    }
}

/// Writes rows as aligned columns under a header ([`auditsync_core::report::write_table`]: control
/// characters escaped, wide characters measured, long cells shortened).
fn write_table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    auditsync_core::report::write_table(out, header, rows)
}
