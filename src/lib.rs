//! auditsync, the application: the command line, one module per verb, logging, the one way files other
//! than the database are written (`output`), and the one place errors become messages and exit codes. The client library is `auditsync_core`; the simulated service
//! is `auditsync_simulator`.

pub mod cli;
mod commands;
pub mod error;
pub mod logging;
pub mod output;

use error::{Error, Outcome};

/// Runs one command line to completion on a fresh tokio runtime.
pub fn run(cli: cli::Cli) -> Result<Outcome, Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            what: "cannot start the async runtime".into(),
            source,
        })?;
    let result = runtime.block_on(commands::run(cli));
    // Do not wait for stray tasks (a request still in flight after an error) at exit.
    runtime.shutdown_background();
    result
}
