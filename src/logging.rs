//! Logs go to stderr through `tracing`; stdout carries results only. `-q` keeps errors, `-v` adds
//! auditsync's debug detail, `-vv` its trace (each line under its spans: the run, the content type and
//! segment, the blob, the request and its attempt), `-vvv` every library's trace too (hyper, rustls…).
//! `AUDITSYNC_LOG` (a list of `[target=]level` directives such as `debug` or
//! `auditsync=trace,hyper=info`, read by `tracing_subscriber`'s `Targets`) overrides them. The targets are `auditsync` (the commands), `auditsync_core` and `auditsync_simulator`; the
//! directive `auditsync` matches all three.

use std::io::IsTerminal;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the subscriber: `verbose` is the count of `-v`, `quiet` is `-q`.
pub fn init(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn,auditsync=info",
        (false, 1) => "warn,auditsync=debug",
        (false, 2) => "warn,auditsync=trace",
        (false, _) => "trace",
    };
    let filter: Targets = std::env::var("AUDITSYNC_LOG")
        .ok()
        .and_then(|directives| directives.parse().ok())
        .or_else(|| default.parse().ok())
        .unwrap_or_default();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(verbose > 0);
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(filter)
        .try_init();
}
