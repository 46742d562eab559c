//! Logs go to stderr through `tracing`; stdout carries results only. `-q` keeps errors (every loss is
//! logged at error level, so `-q` never hides one; the commands then print no summary or confirmation
//! line on success either, so a complete cron run prints nothing), `-v` adds
//! auditsync's debug detail, `-vv` its trace (each line under its spans: the run, the content type and
//! segment, the blob, the request and its attempt), `-vvv` every library's trace too (hyper, rustls…).
//! `AUDITSYNC_LOG` (a list of `[target=]level` directives such as `debug` or
//! `auditsync=trace,hyper=info`, read by `tracing_subscriber`'s `Targets`) overrides them. The
//! targets are `auditsync` (the commands), `auditsync_core` and `auditsync_simulator`; the directive
//! `auditsync` matches all three.
//!
//! Every line passes [`auditsync_core::redact::redact`] on its way to stderr, whatever wrote it (a
//! library's trace of a request, a service's answer quoted in a warning).

use std::io::{IsTerminal, Write};

use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
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
        .with_writer(RedactingStderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(verbose > 0);
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(filter)
        .try_init();
    // A panic's message passes the same filter (the default hook would print it as it is).
    std::panic::set_hook(Box::new(|info| {
        let text = auditsync_core::redact::redact(&info.to_string()).into_owned();
        let _ = writeln!(
            std::io::stderr(),
            "auditsync stopped on an internal error (a bug; please report it): {text}"
        );
    }));
}

/// Standard error through the redaction filter. The fmt layer hands each event over whole, in one
/// `write_all`, so a secret is never split between two writes.
#[derive(Clone, Copy)]
struct RedactingStderr;

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingStderr;
    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let clean = auditsync_core::redact::redact(&text);
        std::io::stderr().lock().write_all(clean.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
