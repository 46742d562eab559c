//! auditsync's client library: everything but the command line and the simulated service.
//! See ARCHITECTURE.md for the map.

pub mod api;
pub mod auth;
pub mod config;
pub mod extract;
pub mod import;
pub mod model;
pub mod net;
pub mod report;
pub mod retry;
pub mod store;
pub mod sync;
pub mod time;
