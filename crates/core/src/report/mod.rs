//! Renders the usage reports that `store` computed: one function per format (table cells, CSV, JSON,
//! and the HTML page in `html.rs`). Nothing here reads the database or decides what counts.
//!
//! Column names are the snake_case JSON keys and CSV header; a launch without an app id (or a user)
//! is `null` in JSON, empty in CSV and "(no app id)" in the table.

mod html;

use std::io::{self, Write};

use crate::store::{AppRow, DayRow, UserRow};

pub use html::{Page, html};

/// A report's rows, as the store returned them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// `report apps`: one row per app, most launched first.
    Apps(Vec<AppRow>),
    /// `report users`: one row per user, most launches first.
    Users(Vec<UserRow>),
    /// `report daily`: one row per UTC day with launches, oldest first.
    Daily(Vec<DayRow>),
}

const APP_COLUMNS: &[&str] = &[
    "app_id",
    "app_name",
    "environment_id",
    "launches",
    "unique_users",
    "first_launch",
    "last_launch",
    "production",
];
const USER_COLUMNS: &[&str] = &["user_id", "launches", "apps", "first_launch", "last_launch"];
const DAY_COLUMNS: &[&str] = &["day", "launches", "unique_users"];

/// What the table shows for launches whose record named no app.
pub const NO_APP_ID: &str = "(no app id)";
/// What the table shows for launches whose record named no user.
pub const NO_USER: &str = "(no user)";

impl Report {
    /// The snake_case column names: the CSV header and the JSON keys, in order.
    pub fn columns(&self) -> &'static [&'static str] {
        match self {
            Report::Apps(_) => APP_COLUMNS,
            Report::Users(_) => USER_COLUMNS,
            Report::Daily(_) => DAY_COLUMNS,
        }
    }

    /// How many rows it has.
    pub fn len(&self) -> usize {
        match self {
            Report::Apps(r) => r.len(),
            Report::Users(r) => r.len(),
            Report::Daily(r) => r.len(),
        }
    }

    /// Whether it has no rows (CSV still gets its header, JSON an empty array).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every row as text cells; `missing` stands for an absent app id, name, environment or user,
    /// `yes_no` for the production flag.
    fn cells(&self, missing: [&str; 4], yes_no: [&str; 2]) -> Vec<Vec<String>> {
        let [no_app, no_name, no_env, no_user] = missing;
        let or = |v: &Option<String>, none: &str| v.clone().unwrap_or_else(|| none.to_owned());
        match self {
            Report::Apps(rows) => rows
                .iter()
                .map(|a| {
                    vec![
                        or(&a.app_id, no_app),
                        or(&a.app_name, no_name),
                        or(&a.environment_id, no_env),
                        a.launches.to_string(),
                        a.unique_users.to_string(),
                        a.first_launch.clone(),
                        a.last_launch.clone(),
                        yes_no[usize::from(!a.production)].to_owned(),
                    ]
                })
                .collect(),
            Report::Users(rows) => rows
                .iter()
                .map(|u| {
                    vec![
                        or(&u.user_id, no_user),
                        u.launches.to_string(),
                        u.apps.to_string(),
                        u.first_launch.clone(),
                        u.last_launch.clone(),
                    ]
                })
                .collect(),
            Report::Daily(rows) => rows
                .iter()
                .map(|d| {
                    vec![
                        d.day.clone(),
                        d.launches.to_string(),
                        d.unique_users.to_string(),
                    ]
                })
                .collect(),
        }
    }
}

/// The header and cells of the text table (printed by `commands::write_table`): the column names in
/// capitals, "(no app id)" and "-" for what the record did not say, production as yes/no.
pub fn table(report: &Report) -> (Vec<String>, Vec<Vec<String>>) {
    let header = report
        .columns()
        .iter()
        .map(|c| c.replace('_', " ").to_uppercase())
        .collect();
    (
        header,
        report.cells([NO_APP_ID, "-", "-", NO_USER], ["yes", "no"]),
    )
}

/// CSV with a header row (also when there are no rows); absent values are empty, production is
/// true/false.
///
/// # Errors
/// The error of writing to `out`.
pub fn csv(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    let mut w = ::csv::Writer::from_writer(out);
    w.write_record(report.columns())?;
    for row in report.cells(["", "", "", ""], ["true", "false"]) {
        w.write_record(&row)?;
    }
    w.flush()
}

/// A JSON array of objects keyed by the column names; absent values are `null`.
///
/// # Errors
/// The error of writing to `out`.
pub fn json(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    match report {
        Report::Apps(rows) => serde_json::to_writer_pretty(&mut *out, rows),
        Report::Users(rows) => serde_json::to_writer_pretty(&mut *out, rows),
        Report::Daily(rows) => serde_json::to_writer_pretty(&mut *out, rows),
    }?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Report> {
        vec![
            Report::Apps(vec![AppRow {
                app_id: None,
                app_name: None,
                environment_id: Some("env".into()),
                launches: 3,
                unique_users: 2,
                first_launch: "2026-01-01T00:00:00Z".into(),
                last_launch: "2026-01-02T00:00:00Z".into(),
                production: true,
            }]),
            Report::Users(vec![UserRow {
                user_id: Some("a@b.c".into()),
                launches: 1,
                apps: 1,
                first_launch: "2026-01-01T00:00:00Z".into(),
                last_launch: "2026-01-01T00:00:00Z".into(),
            }]),
            Report::Daily(vec![DayRow {
                day: "2026-01-01".into(),
                launches: 1,
                unique_users: 1,
            }]),
        ]
    }

    #[test]
    fn json_keys_csv_header_and_cells_agree() {
        for report in samples() {
            let mut out = Vec::new();
            json(&mut out, &report).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let keys: Vec<&str> = v[0]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let mut want = report.columns().to_vec();
            want.sort_unstable();
            let mut keys = keys;
            keys.sort_unstable();
            assert_eq!(keys, want);
            let (header, rows) = table(&report);
            assert_eq!(header.len(), report.columns().len());
            assert!(rows.iter().all(|r| r.len() == header.len()));
        }
    }

    #[test]
    fn absent_values_are_null_empty_or_named() {
        let report = &samples()[0];
        let mut out = Vec::new();
        csv(&mut out, report).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "app_id,app_name,environment_id,launches,unique_users,first_launch,last_launch,production\n\
             ,,env,3,2,2026-01-01T00:00:00Z,2026-01-02T00:00:00Z,true\n"
        );
        let (_, rows) = table(report);
        assert_eq!(rows[0][0], NO_APP_ID);
        assert_eq!(rows[0][7], "yes");
    }

    #[test]
    fn an_empty_report_is_a_header_or_an_empty_array() {
        let empty = Report::Daily(Vec::new());
        let mut out = Vec::new();
        csv(&mut out, &empty).unwrap();
        assert_eq!(out, b"day,launches,unique_users\n");
        let mut out = Vec::new();
        json(&mut out, &empty).unwrap();
        assert_eq!(out, b"[]\n");
    }
}
