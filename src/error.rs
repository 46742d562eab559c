//! The one place where errors become what the admin reads and the exit code cron sees:
//! 0 success, 1 failed or incomplete, 2 bad usage or configuration.

use std::process::ExitCode;

use crate::api::ApiError;
use crate::auth::AuthError;
use crate::config::ConfigError;
use crate::store::StoreError;
use crate::sync::SyncError;

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
    Import(#[from] crate::import::ImportError),
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
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// An error and its causes on one line ("a: b: c"), for errors whose top message is too terse
/// (reqwest's "error sending request" hides "connection refused" in its source).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Why a request got no answer, in a few words: "connection refused", "timed out", "the connection was
/// closed before the answer was complete"... without the URL, which the caller already names.
pub fn net_reason(e: &reqwest::Error) -> String {
    let mut innermost: &dyn std::error::Error = e;
    while let Some(s) = innermost.source() {
        innermost = s;
    }
    let detail = innermost.to_string();
    if e.is_timeout() {
        "it timed out".to_owned()
    } else if e.is_connect() {
        format!("cannot connect: {detail}")
    } else if e.is_body() || e.is_decode() {
        format!("the answer was cut off: {detail}")
    } else if e.is_redirect() {
        "it answered with a redirect, which auditsync does not follow".to_owned()
    } else {
        detail
    }
}
