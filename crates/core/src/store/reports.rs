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

/// One calendar month (UTC) with launches: `report monthly`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthRow {
    /// `YYYY-MM`.
    pub month: String,
    /// `LaunchPowerApp` events that month (within the range).
    pub launches: i64,
    /// Distinct people among them (monthly active users), counted as [`AppRow::unique_users`] is.
    pub unique_users: i64,
    /// Distinct app ids launched (a launch that named no app adds none).
    pub apps: i64,
    /// Apps that were production apps that month: 50 launches, or launches by 5 distinct users
    /// ([`PRODUCTION_MONTHLY_LAUNCHES`], [`PRODUCTION_MONTHLY_USERS`]).
    pub production_apps: i64,
}

/// One app in one calendar month (UTC): `report monthly --by app`. Months oldest first; within a
/// month, most launched first, then by app id, the launches without an app id last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppMonthRow {
    /// `YYYY-MM`.
    pub month: String,
    /// As [`AppRow::app_id`].
    pub app_id: Option<String>,
    /// As [`AppRow::app_name`] (the latest name in the whole store).
    pub app_name: Option<String>,
    /// `LaunchPowerApp` events of the app that month (within the range).
    pub launches: i64,
    /// Distinct people among them.
    pub unique_users: i64,
    /// The app was a production app that month (the CoE's definition, see [`MonthRow`]).
    pub production: bool,
}

/// One environment: `report environments`. Most launched first, then by environment id, the
/// launches whose record named no environment last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvironmentRow {
    /// The environment id as stored; `None` groups the launches that named none.
    pub environment_id: Option<String>,
    /// Distinct app ids launched in it.
    pub apps: i64,
    /// `LaunchPowerApp` events in it (within the range).
    pub launches: i64,
    /// Distinct people among them.
    pub unique_users: i64,
    /// The latest launch in the range, in the [`ts`](crate::time::ts) form.
    pub last_launch: String,
}

/// An app nobody launched for a while: `report inactive`. Longest inactive first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InactiveRow {
    /// The app id as stored (launches that named no app are no app, and never listed).
    pub app_id: String,
    /// As [`AppRow::app_name`].
    pub app_name: Option<String>,
    /// As [`AppRow::environment_id`].
    pub environment_id: Option<String>,
    /// Its latest stored launch, in the [`ts`](crate::time::ts) form.
    pub last_launch: String,
    /// Its launches in the whole store.
    pub launches: i64,
}

/// `report inactive`: the apps, and what the store can say about them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InactiveReport {
    /// Apps whose latest stored launch is before this time (now − N days), in the
    /// [`ts`](crate::time::ts) form.
    pub cutoff: String,
    /// The oldest launch the store holds (`None` when it holds none): an app first launched after it
    /// can only look active, and an app last launched before it is not in the store at all.
    pub data_since: Option<String>,
    /// The apps, longest inactive first (oldest last launch, then by app id).
    pub apps: Vec<InactiveRow>,
}
