//! Logs go to stderr through `tracing`; stdout carries results only. `-q` keeps errors (every loss is
//! logged at error level, so `-q` never hides one; the commands then print no summary or confirmation
//! line on success either, so a complete cron run prints nothing), `-v` adds
//! auditsync's debug detail, `-vv` its trace (each line under its spans: the run, the content type and
//! segment, the blob, the request and its attempt), `-vvv` every library's trace too (hyper, rustls…).
//! `AUDITSYNC_LOG` (an `EnvFilter` directive such as `debug` or `auditsync=trace,hyper=info`) overrides
//! them. The targets are `auditsync` (the commands), `auditsync_core` and `auditsync_simulator`; the
//! directive `auditsync` matches all three.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the subscriber: `verbose` is the count of `-v`, `quiet` is `-q`.
pub fn init(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn,auditsync=info",
        (false, 1) => "warn,auditsync=debug",
        (false, 2) => "warn,auditsync=trace",
        (false, _) => "trace",
    };
    let filter =
        EnvFilter::try_from_env("AUDITSYNC_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(verbose > 0)
        .try_init();
}
