//! The usage reports' shapes, whatever the database: which launches ([`ReportFilter`]) and one row per
//! app, user or day. The queries are the implementation's (`sqlite/reports.rs`).

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The CoE Starter Kit's "production app" (coe-flows.md §5): in some calendar month (UTC), this many
/// launches...
pub const PRODUCTION_MONTHLY_LAUNCHES: i64 = 50;
/// ...or launches by this many distinct users.
pub const PRODUCTION_MONTHLY_USERS: i64 = 5;

/// Which launches a report covers. `None` means no limit on that side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFilter {
    /// Launches at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Launches before this time.
    pub to: Option<DateTime<Utc>>,
    /// Only this app id.
    pub app: Option<String>,
    /// Only this environment id.
    pub environment: Option<String>,
}

/// One app's launches in the filtered range. `app_id` is `None` for the launches whose record named no
/// app (RecordType 256 without `power_app.id`, legacy records without `AppName`), grouped together.
///
/// Times are stored `CreationTime`s in the [`ts`](crate::time::ts) form (`2026-11-21T13:17:34Z`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppRow {
    /// The app id as stored: its GUID in lower case (see [`Event::app_id`](crate::model::Event::app_id)).
    pub app_id: Option<String>,
    /// The latest display name any stored launch of the app carried.
    pub app_name: Option<String>,
    /// The latest environment id any stored launch of the app carried.
    pub environment_id: Option<String>,
    /// `LaunchPowerApp` events in the range.
    pub launches: i64,
    /// Distinct people among them: by Entra object id where the records carry it (or another record
    /// of the same UPN did), by UPN (lower-cased) otherwise; a launch that named no user adds none.
    pub unique_users: i64,
    /// The earliest launch in the range.
    pub first_launch: String,
    /// The latest launch in the range.
    pub last_launch: String,
    /// Some calendar month in the range had 50 launches, or launches by 5 distinct users.
    pub production: bool,
}

/// One person's launches: the records that name them by UPN and those that name them by object id
/// are one row (see [`AppRow::unique_users`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRow {
    /// The person: their UPN, lower-cased, when any record named it (the one seen last with their
    /// object id); else their object id. `None` groups the launches that named no user.
    pub user_id: Option<String>,
    /// `LaunchPowerApp` events in the range.
    pub launches: i64,
    /// Distinct app ids launched (a launch that named no app adds none).
    pub apps: i64,
    /// The earliest launch in the range, in the [`ts`](crate::time::ts) form.
    pub first_launch: String,
    /// The latest launch in the range, likewise.
    pub last_launch: String,
}

/// One UTC day with launches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayRow {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// `LaunchPowerApp` events that day (within the range).
    pub launches: i64,
    /// Distinct people among them, counted as [`AppRow::unique_users`] is.
    pub unique_users: i64,
}
