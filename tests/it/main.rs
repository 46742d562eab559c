//! Integration tests: the real `auditsync` binary against the project's simulated Management Activity
//! API, with the environment cleared and a temporary folder for config and database.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "test code: a panic is the failure report, and the results are printed"
)]

mod architecture;
mod auth;
mod backfill;
mod bounds;
mod build;
mod common;
mod config;
mod cron;
mod import;
mod maintenance;
mod outage;
mod outputs;
mod records;
mod redaction;
mod reliability;
mod report;
mod reports_more;
mod state;
mod subscribe;
mod sync;
mod trials;
