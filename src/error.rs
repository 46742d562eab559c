//! The one place where errors become what the admin reads and the exit code cron sees:
//! 0 success, 1 failed or incomplete, 2 bad usage or configuration; 130 (Ctrl-C) and 143 (SIGTERM)
//! when a signal stopped `sync`, `import` or `prune`, as a shell reports a process the signal killed
//! (a failure to cron; what was committed is kept and the message says what).

use std::process::ExitCode;

use auditsync_core::api::ApiError;
use auditsync_core::api::graph::GraphError;
use auditsync_core::auth::AuthError;
use auditsync_core::config::ConfigError;
use auditsync_core::store::StoreError;
use auditsync_core::sync::SyncError;

use crate::output::OutputError;

/// Any error a command can end with. Each module's own enum keeps its detail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot be used (exit 2), or `client_secret_command` failed (exit 1).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No token could be had from Entra ID (exit 1).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The Management Activity API failed (exit 1).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The Microsoft Graph audit log query API failed (exit 1), or the configuration or the service
    /// says it cannot be used here (the cloud, `[graph] enabled`, the endpoint: exit 2).
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The database cannot be used (exit 2 when the `database` setting is what is wrong, else 1).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sync failed as a whole (exit 2 for a refused window).
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// A backfill or verify failed as a whole (exit 2 for a refused range or cloud).
    #[error(transparent)]
    Backfill(#[from] auditsync_core::backfill::BackfillError),
    /// A file could not be imported (`import` itself logs each file's failure and goes on).
    #[error(transparent)]
    Import(#[from] auditsync_core::import::ImportError),
    /// An output file (`report --output`, `simulator --write-config`) was refused (exit 2: it is the
    /// database or the configuration, a folder, or there without `--force`) or could not be written
    /// (exit 1).
    #[error(transparent)]
    Output(#[from] OutputError),
    /// Bad usage found after parsing (`--from` not before `--to`, `--format html` where it does not
    /// apply, a malformed `--rate-limit`), or `doctor` without a valid configuration (exit 2); the
    /// message says what to do.
    #[error("{0}")]
    Usage(String),
    /// Ctrl-C or SIGTERM stopped `import` or `prune` between two batches (exit 130 or 143); `kept`
    /// says what was done and what is left.
    #[error("interrupted by {signal}: {kept}")]
    Interrupted {
        /// The signal.
        signal: auditsync_core::stop::Signal,
        /// What was kept, and how to finish.
        kept: String,
    },
    /// Local I/O outside the modules' own errors: standard output, an output file, the simulator's
    /// port, the async runtime, a blocking task that died (exit 1; a broken pipe exits 0).
    #[error("{what}: {source}")]
    Io {
        /// What could not be done, the start of the message: "cannot start the async runtime".
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The exit code: the wrapped module error's own, 2 for [`Error::Usage`], 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(e) => e.exit_code(),
            Error::Api(e) => e.exit_code(),
            Error::Graph(e) => e.exit_code(),
            Error::Store(e) => e.exit_code(),
            Error::Sync(e) => e.exit_code(),
            Error::Import(e) => e.exit_code(),
            Error::Backfill(e) => e.exit_code(),
            Error::Output(e) => e.exit_code(),
            Error::Usage(_) => 2,
            Error::Interrupted { signal, .. } => signal.exit_code(),
            Error::Auth(_) | Error::Io { .. } => 1,
        }
    }
}

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done.
    Done,
    /// The command ran but did not get everything; it has already said what is missing.
    Incomplete,
}

/// Prints the error (if any) on stderr and returns the process exit code.
pub fn exit(result: Result<Outcome, Error>) -> ExitCode {
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Incomplete) => ExitCode::from(1),
        // `auditsync report apps | head`: the reader has what it wanted.
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::debug!(error = ?e, "command failed");
            #[allow(
                clippy::print_stderr,
                reason = "the one place an error reaches the admin"
            )]
            {
                // Whatever the message quotes (a service's answer, a path) passes the redaction filter.
                eprintln!("error: {}", auditsync_core::redact::redact(&e.to_string()));
            }
            ExitCode::from(e.exit_code())
        }
    }
}
