//! Integration tests: the real `auditsync` binary against the project's simulated Management Activity
//! API, with the environment cleared and a temporary folder for config and database.

mod auth;
mod common;
mod config;
mod import;
mod maintenance;
mod redaction;
mod reliability;
mod report;
mod subscribe;
mod sync;
