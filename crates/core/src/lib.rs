//! auditsync's client library: everything but the command line and the simulated service (which this
//! crate cannot name). ARCHITECTURE.md has the map and the module graph, which a test checks.
//!
//! ```text
//! leaves:   net (https-or-loopback, the HTTP client)   time (edge parsing, the stored form)
//!           model (BlobRef, Event, Unit)                retry (back-off)
//!           redact (secrets and tokens out of every text printed, logged or stored)
//!           stop (Ctrl-C / SIGTERM: stop between units of work)
//!           files (what a path is: a regular file, a folder, a pipe, a device)
//! config    file + AUDITSYNC_* → validated Settings (per tenant: config::tenant) → files net redact
//! auth      Entra ID tokens (cache, renew, AADSTS explained)              → config net retry
//! api       Management Activity API: send, subscriptions, content        → auth config model net retry time
//! extract   the one definition of a launch event (both schemas)         → model time
//! store     Reader / Writer traits; sqlite/ the one implementation      → model stop time
//! sync      plan → source (list → fetch) → write → summary               → api config extract model stop store time
//! backfill  the Graph audit log query API: windows → queries (ledger) → store; verify  → api config extract model redact stop store time
//! import    Purview exports → extract → store                             → extract model store
//! report    table, CSV, JSON, HTML of the store's report rows            → store time
//! ```

pub mod api;
pub mod auth;
pub mod backfill;
pub mod config;
pub mod extract;
pub mod files;
pub mod import;
pub mod model;
pub mod net;
pub mod redact;
pub mod report;
pub mod retry;
pub mod stop;
pub mod store;
pub mod sync;
pub mod time;
