//! `auditsync simulator`: the simulated service in the foreground, for trying auditsync by hand or
//! measuring it from another process.

use std::io::Write;

use super::{simulator_config, stdout_error};
use crate::cli::SimulatorArgs;
use crate::error::{Error, Outcome};
use crate::output::{self, Keep, Target};
use auditsync_simulator::{SimSpec, Simulator};

pub async fn run(args: SimulatorArgs) -> Result<Outcome, Error> {
    let mut spec = SimSpec::new(args.seed);
    spec.hours = args.hours;
    spec.blobs_per_hour = args.blobs_per_hour;
    spec.records_per_blob = args.records_per_blob;
    spec.page_size = args.page_size;
    spec.faults.blob_delay = std::time::Duration::from_millis(args.blob_delay_ms);
    spec.launch_share = args.launch_share;
    spec.history_days = args.history_days;
    spec.graph_query_delay = std::time::Duration::from_millis(args.graph_query_delay_ms);
    spec.graph_record_cap = args.graph_record_cap;
    spec.graph_running_limit = args.graph_running_limit;
    spec.graph_daily_submissions = args.graph_daily_submissions;
    if let Some(limit) = &args.rate_limit {
        let parsed = limit
            .split_once('/')
            .and_then(|(c, w)| Some((c.trim().parse().ok()?, w.trim().parse().ok()?)));
        let Some((capacity, seconds)) = parsed else {
            return Err(Error::Usage(format!(
                "--rate-limit {limit:?} is not C/W, e.g. 100/10 for 100 requests in any 10 seconds"
            )));
        };
        spec.faults.rate_limit = Some((capacity, std::time::Duration::from_secs(seconds)));
    }
    let target = args.write_config.as_deref().map(|path| Target {
        path,
        flag: "--write-config",
        what: "the configuration",
        example: "auditsync.toml",
        force: args.force,
    });
    // The configuration written names `auditsync.db` beside it: never written over that database
    // or its companions (`--write-config auditsync.db-wal`). Refused before anything is served;
    // checked again when written.
    let keep = target
        .as_ref()
        .map(|t| written_database_files(t.path))
        .unwrap_or_default();
    if let Some(target) = &target {
        output::check(target, &keep)?;
    }
    let sim = Simulator::start_on(spec, args.port)
        .await
        .map_err(|source| Error::Io {
            what: format!("cannot serve on 127.0.0.1:{}", args.port),
            source,
        })?;
    if args.prerender {
        let control = sim.control();
        tokio::task::spawn_blocking(move || control.prerender())
            .await
            .map_err(|e| Error::Io {
                what: "cannot render the blobs".into(),
                source: std::io::Error::other(e.to_string()),
            })?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "simulated Management Activity API and Entra ID at {}",
        sim.base_url()
    )
    .map_err(stdout_error)?;
    writeln!(
        out,
        "simulated Microsoft Graph audit log query API at {}",
        sim.graph_url()
    )
    .map_err(stdout_error)?;
    writeln!(
        out,
        "tenant_id = \"{}\"\nclient_id = \"{}\"",
        sim.spec().tenant_id,
        sim.spec().client_id
    )
    .map_err(stdout_error)?;
    match &target {
        Some(target) => {
            let text = format!(
                "{}{}",
                simulator_config(&sim, "auditsync.db"),
                graph_section(&sim)
            );
            output::write(target, &keep, text.as_bytes())?;
            writeln!(
                out,
                "configuration written to {} (try: auditsync --config {} subscribe start)",
                target.path.display(),
                target.path.display()
            )
            .map_err(stdout_error)?;
        }
        None => writeln!(
            out,
            "pass --write-config PATH for a ready configuration with the client secret"
        )
        .map_err(stdout_error)?,
    }
    writeln!(out, "press Ctrl-C to stop").map_err(stdout_error)?;
    drop(out);
    tokio::signal::ctrl_c().await.map_err(|source| Error::Io {
        what: "cannot wait for Ctrl-C".into(),
        source,
    })?;
    Ok(Outcome::Done)
}

/// The `[graph]` section of the written configuration: the simulated Graph root, and polls fast
/// enough for a simulated query (the real service takes minutes; the default polls every 30 s).
fn graph_section(sim: &auditsync_simulator::SimControl) -> String {
    format!(
        "\n[graph]\nenabled = true\nendpoint = \"{}\"\npoll_interval = \"200ms\"\n",
        sim.graph_url().as_str().trim_end_matches('/')
    )
}

/// The database (`auditsync.db` in the configuration's folder) the written configuration names,
/// and its companions: a configuration written over one of them would destroy it.
fn written_database_files(config: &std::path::Path) -> Vec<Keep> {
    let folder = match config.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let db = folder.join("auditsync.db");
    auditsync_core::store::files(&db)
        .into_iter()
        .enumerate()
        .map(|(i, (path, what))| Keep {
            what: match i {
                0 => format!(
                    "{}, the SQLite database the written configuration names",
                    path.display()
                ),
                _ => format!(
                    "{what} {} of the SQLite database the written configuration names",
                    path.display()
                ),
            },
            path,
        })
        .collect()
}
