//! The one place where errors become what the admin reads and the exit code cron sees:
//! 0 success, 1 failed or incomplete, 2 bad usage or configuration.

use std::process::ExitCode;

use auditsync_core::api::ApiError;
use auditsync_core::auth::AuthError;
use auditsync_core::config::ConfigError;
use auditsync_core::store::StoreError;
use auditsync_core::sync::SyncError;

/// Any error a command can end with. Each module's own enum keeps its detail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Import(#[from] auditsync_core::import::ImportError),
    #[error("{0}")]
    Usage(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(e) => e.exit_code(),
            Error::Api(e) => e.exit_code(),
            Error::Store(e) => e.exit_code(),
            Error::Sync(e) => e.exit_code(),
            Error::Import(e) => e.exit_code(),
            Error::Usage(_) => 2,
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
                eprintln!("error: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}
