//! One module per verb: each turns its arguments into typed options and calls into `api`, `sync`,
//! `store` or `report`. Nothing here speaks HTTP or SQL.

mod demo;
mod doctor;
mod import;
mod prune;
mod report;
mod simulator;
mod status;
mod subscribe;
mod sync;

use std::io::Write;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::error::{Error, Outcome};
use auditsync_core::config::{Env, Settings};

pub async fn run(cli: Cli) -> Result<Outcome, Error> {
    match cli.command {
        Command::Subscribe(cmd) => subscribe::run(cmd, &cli.global).await,
        Command::Sync(args) => sync::run(args, &cli.global).await,
        Command::Status(args) => status::run(args, &cli.global).await,
        Command::Report(cmd) => report::run(cmd, &cli.global).await,
        Command::Import(args) => import::run(args, &cli.global).await,
        Command::Doctor => doctor::run(&cli.global).await,
        Command::Prune(args) => prune::run(args, &cli.global).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Simulator(args) => simulator::run(args).await,
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

/// Results go to stdout; a closed pipe (`auditsync ... | head`) is not an error worth a message.
fn stdout_error(source: std::io::Error) -> Error {
    Error::Io {
        what: "cannot write to standard output".into(),
        source,
    }
}

/// Writes rows as left-aligned columns under a header, two spaces apart.
fn write_table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}
