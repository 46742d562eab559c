//! auditsync collects Power Apps launch events from the Office 365 Management Activity API into a local
//! SQLite database. See ARCHITECTURE.md for the map; in short, data flows downhill:
//!
//! ```text
//! main.rs ─► cli (clap) ─► commands/<verb> ─► api (subscriptions, content) ─► auth (token cache) ─► HTTP
//!                                   └──────► config (file + environment → Settings)
//! simulator: the simulated service (Entra ID tokens, subscriptions, content, blobs, faults)
//! error: the one place errors become messages and exit codes
//! ```

pub mod api;
pub mod auth;
pub mod cli;
mod commands;
pub mod config;
pub mod error;
pub mod extract;
pub mod import;
pub mod logging;
pub mod report;
pub mod retry;
pub mod simulator;
pub mod store;
pub mod sync;

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
