//! Renders the usage reports that `store` computed: one function per format (table cells, CSV, JSON,
//! and the HTML page in `html.rs`). Nothing here reads the database or decides what counts.
//!
//! Column names are the snake_case JSON keys and CSV header; a launch without an app id (or a user)
//! is `null` in JSON, empty in CSV and "(no app id)" in the table.
//!
//! Names come from the audit records, so anyone who can name an app (or a user) writes into the
//! reports. JSON keeps them as they are; CSV keeps them whole but neutralises a cell a spreadsheet
//! would run as a formula (OWASP's advice: a leading `'`, and quotes); the table escapes control
//! characters (a name could otherwise move the cursor, recolour the terminal or start a new line),
//! aligns by display width (CJK and emoji take two columns) and shortens a cell past
//! [`MAX_CELL_WIDTH`] columns with `…`; HTML escapes markup (`html.rs`).

mod html;

use std::borrow::Cow;
use std::io::{self, Write};

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::store::{
    AppMonthRow, AppRow, DayRow, EnvironmentRow, InactiveReport, MonthRow, UserRow,
};

pub use export::{EXPORT_COLUMNS, export_csv_header, export_csv_row, export_jsonl_row};
pub use html::{Page, html};

mod export;

/// A report's rows, as the store returned them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// `report apps`: one row per app, most launched first.
    Apps(Vec<AppRow>),
    /// `report users`: one row per user, most launches first.
    Users(Vec<UserRow>),
    /// `report daily`: one row per UTC day with launches, oldest first.
    Daily(Vec<DayRow>),
    /// `report monthly`: one row per calendar month (UTC) with launches, oldest first.
    Monthly(Vec<MonthRow>),
    /// `report monthly --by app`: one row per month and app.
    MonthlyByApp(Vec<AppMonthRow>),
    /// `report environments`: one row per environment, most launched first.
    Environments(Vec<EnvironmentRow>),
    /// `report inactive`: the apps, with the cutoff and since when the store holds data (the JSON
    /// object's `cutoff` and `data_since`, two columns repeated on every CSV row, the table's
    /// heading: see [`heading`]).
    Inactive(InactiveReport),
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
const MONTH_COLUMNS: &[&str] = &[
    "month",
    "launches",
    "unique_users",
    "apps",
    "production_apps",
];
const APP_MONTH_COLUMNS: &[&str] = &[
    "month",
    "app_id",
    "app_name",
    "launches",
    "unique_users",
    "production",
];
const ENVIRONMENT_COLUMNS: &[&str] = &[
    "environment_id",
    "apps",
    "launches",
    "unique_users",
    "last_launch",
];
/// The inactive report's columns; CSV adds [`INACTIVE_CSV_EXTRA`] to each row.
const INACTIVE_COLUMNS: &[&str] = &[
    "app_id",
    "app_name",
    "environment_id",
    "last_launch",
    "launches",
];
/// What the inactive report's CSV repeats on every row: the JSON object's two fields beside `apps`,
/// so that a spreadsheet or Power BI reading the file alone still knows what the store can say.
pub const INACTIVE_CSV_EXTRA: &[&str] = &["cutoff", "data_since"];

/// What the table shows for launches whose record named no app.
pub const NO_APP_ID: &str = "(no app id)";
/// What the table shows for launches whose record named no user.
pub const NO_USER: &str = "(no user)";
/// What the table shows for launches whose record named no environment.
pub const NO_ENVIRONMENT: &str = "(no environment)";

impl Report {
    /// The snake_case column names: the CSV header and the JSON keys, in order.
    pub fn columns(&self) -> &'static [&'static str] {
        match self {
            Report::Apps(_) => APP_COLUMNS,
            Report::Users(_) => USER_COLUMNS,
            Report::Daily(_) => DAY_COLUMNS,
            Report::Monthly(_) => MONTH_COLUMNS,
            Report::MonthlyByApp(_) => APP_MONTH_COLUMNS,
            Report::Environments(_) => ENVIRONMENT_COLUMNS,
            Report::Inactive(_) => INACTIVE_COLUMNS,
        }
    }

    /// How many rows it has.
    pub fn len(&self) -> usize {
        match self {
            Report::Apps(r) => r.len(),
            Report::Users(r) => r.len(),
            Report::Daily(r) => r.len(),
            Report::Monthly(r) => r.len(),
            Report::MonthlyByApp(r) => r.len(),
            Report::Environments(r) => r.len(),
            Report::Inactive(r) => r.apps.len(),
        }
    }

    /// Whether it has no rows (CSV still gets its header, JSON an empty array).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every row as text cells; `missing` stands for an absent app id, name, environment or user,
    /// `yes_no` for the production flag. An environments report's row without an environment shows
    /// `no_env` too.
    fn cells(&self, missing: [&str; 4], yes_no: [&str; 2]) -> Vec<Vec<String>> {
        let [no_app, no_name, no_env, no_user] = missing;
        if let Some(rows) = self.new_cells(missing, yes_no) {
            return rows;
        }
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
            Report::Monthly(_)
            | Report::MonthlyByApp(_)
            | Report::Environments(_)
            | Report::Inactive(_) => Vec::new(),
        }
    }

    /// [`Report::cells`] of the monthly, environments and inactive reports; `None` for the others.
    fn new_cells(&self, missing: [&str; 4], yes_no: [&str; 2]) -> Option<Vec<Vec<String>>> {
        let [no_app, no_name, no_env, _] = missing;
        let or = |v: &Option<String>, none: &str| v.clone().unwrap_or_else(|| none.to_owned());
        Some(match self {
            Report::Monthly(rows) => rows
                .iter()
                .map(|m| {
                    vec![
                        m.month.clone(),
                        m.launches.to_string(),
                        m.unique_users.to_string(),
                        m.apps.to_string(),
                        m.production_apps.to_string(),
                    ]
                })
                .collect(),
            Report::MonthlyByApp(rows) => rows
                .iter()
                .map(|m| {
                    vec![
                        m.month.clone(),
                        or(&m.app_id, no_app),
                        or(&m.app_name, no_name),
                        m.launches.to_string(),
                        m.unique_users.to_string(),
                        yes_no[usize::from(!m.production)].to_owned(),
                    ]
                })
                .collect(),
            Report::Environments(rows) => rows
                .iter()
                .map(|e| {
                    vec![
                        or(&e.environment_id, no_env),
                        e.apps.to_string(),
                        e.launches.to_string(),
                        e.unique_users.to_string(),
                        e.last_launch.clone(),
                    ]
                })
                .collect(),
            Report::Inactive(report) => report
                .apps
                .iter()
                .map(|a| {
                    vec![
                        a.app_id.clone(),
                        or(&a.app_name, no_name),
                        or(&a.environment_id, no_env),
                        a.last_launch.clone(),
                        a.launches.to_string(),
                    ]
                })
                .collect(),
            Report::Apps(_) | Report::Users(_) | Report::Daily(_) => return None,
        })
    }
}

/// The lines the text table prints before its header: for `report inactive`, the cutoff and since
/// when the store holds launches (an app first launched after that can only look active), then an
/// empty line; nothing for the other reports.
pub fn heading(report: &Report) -> Vec<String> {
    let Report::Inactive(r) = report else {
        return Vec::new();
    };
    let since = match &r.data_since {
        Some(since) => format!(
            "The store holds launches since {since}: an app first launched after that can only look active, \
             and one last launched before it is not in the store."
        ),
        None => "The store holds no launches yet.".to_owned(),
    };
    vec![
        format!(
            "Apps whose last stored launch is before {} (the cutoff).",
            r.cutoff
        ),
        since,
        String::new(),
    ]
}

/// The header and cells of the text table (printed by [`write_table`]): the column names in
/// capitals, "(no app id)" and "-" for what the record did not say, production as yes/no.
pub fn table(report: &Report) -> (Vec<String>, Vec<Vec<String>>) {
    let header = report
        .columns()
        .iter()
        .map(|c| c.replace('_', " ").to_uppercase())
        .collect();
    let no_env = match report {
        Report::Environments(_) => NO_ENVIRONMENT,
        _ => "-",
    };
    (
        header,
        report.cells([NO_APP_ID, "-", no_env, NO_USER], ["yes", "no"]),
    )
}

/// The widest a table cell is shown, in terminal columns; a longer one ends in `…`.
pub const MAX_CELL_WIDTH: usize = 60;

/// Writes rows as left-aligned columns under a header, two spaces apart, for a terminal: every cell
/// with its control characters escaped ([`visible`]), shortened to [`MAX_CELL_WIDTH`] columns, and
/// padded by its display width, so that wide characters (CJK, emoji) keep the columns aligned.
///
/// # Errors
/// The error of writing to `out`.
pub fn write_table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let shown = |cell: &str| shorten(&visible(cell), MAX_CELL_WIDTH);
    let header: Vec<String> = header.iter().map(|h| shown(h)).collect();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| shown(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.width());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                line.extend(std::iter::repeat_n(' ', w.saturating_sub(cell.width()) + 2));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The text with every character a terminal would act on instead of showing written as an escape:
/// `\n`, `\r`, `\t`, `\u{1b}` for other control characters (C0, DEL, C1), and the same for the
/// invisible characters that reorder or hide text (bidirectional overrides and isolates, zero-width
/// characters, line and paragraph separators, the byte order mark).
pub fn visible(s: &str) -> Cow<'_, str> {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}'
                | '\u{061c}' | '\u{feff}')
    };
    if !s.chars().any(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if hidden(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The text cut to at most `max` display columns, ending in `…` when it was cut.
fn shorten(s: &str, max: usize) -> String {
    if s.width() <= max {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > max.saturating_sub(1) {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// Whether a spreadsheet would read the cell as a formula (or a command): it starts with `=`, `+`,
/// `-`, `@` (or their full-width forms), a tab, CR or LF, or with spaces before one of those
/// (OWASP, "CSV Injection").
fn formula_like(cell: &str) -> bool {
    let trigger = |c: char| matches!(c, '=' | '+' | '-' | '@' | '＝' | '＋' | '－' | '＠');
    match cell.chars().next() {
        Some('\t' | '\r' | '\n') => true,
        Some(c) if trigger(c) => true,
        Some(c) if c.is_whitespace() => cell.trim_start().starts_with(trigger),
        _ => false,
    }
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break; a formula-like
/// cell gets a leading `'` and is always quoted, so that a spreadsheet shows it as text.
fn csv_field(cell: &str) -> Cow<'_, str> {
    let quoted = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    if formula_like(cell) {
        Cow::Owned(quoted(&format!("'{cell}")))
    } else if cell.contains([',', '"', '\n', '\r']) {
        Cow::Owned(quoted(cell))
    } else {
        Cow::Borrowed(cell)
    }
}

/// One CSV record (a line) of `cells`, each through [`csv_field`].
fn csv_record(w: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>) -> io::Result<()> {
    let line: Vec<Cow<'_, str>> = cells.map(csv_field).collect();
    writeln!(w, "{}", line.join(","))
}

/// CSV with a header row (also when there are no rows); absent values are empty, production is
/// true/false. Every cell is kept whole; one a spreadsheet would run as a formula is neutralised
/// (see [`csv_field`]: `=1+1` is written `"'=1+1"`). The inactive report adds `cutoff` and
/// `data_since` ([`INACTIVE_CSV_EXTRA`]) to every row (`data_since` empty when the store holds no
/// launch).
///
/// # Errors
/// The error of writing to `out`.
pub fn csv(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    let mut w = io::BufWriter::new(out);
    let extra: Vec<&str> = match report {
        Report::Inactive(r) => vec![r.cutoff.as_str(), r.data_since.as_deref().unwrap_or("")],
        _ => Vec::new(),
    };
    let extra_names: &[&str] = match report {
        Report::Inactive(_) => INACTIVE_CSV_EXTRA,
        _ => &[],
    };
    csv_record(
        &mut w,
        &mut report.columns().iter().chain(extra_names).copied(),
    )?;
    for row in report.cells(["", "", "", ""], ["true", "false"]) {
        csv_record(
            &mut w,
            &mut row.iter().map(String::as_str).chain(extra.iter().copied()),
        )?;
    }
    w.flush()
}

/// A JSON array of objects keyed by the column names; absent values are `null`. The inactive
/// report is an object: `cutoff`, `data_since` (`null` when the store holds no launch) and `apps`,
/// the array.
///
/// # Errors
/// The error of writing to `out`.
pub fn json(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    // Buffered here: standard output flushes at every line, and pretty JSON is a line a field.
    let mut out = io::BufWriter::with_capacity(64 * 1024, out);
    match report {
        Report::Apps(rows) => serde_json::to_writer_pretty(&mut out, rows),
        Report::Users(rows) => serde_json::to_writer_pretty(&mut out, rows),
        Report::Daily(rows) => serde_json::to_writer_pretty(&mut out, rows),
        Report::Monthly(rows) => serde_json::to_writer_pretty(&mut out, rows),
        Report::MonthlyByApp(rows) => serde_json::to_writer_pretty(&mut out, rows),
        Report::Environments(rows) => serde_json::to_writer_pretty(&mut out, rows),
        Report::Inactive(r) => serde_json::to_writer_pretty(&mut out, r),
    }?;
    writeln!(out)?;
    out.flush()
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
            Report::Monthly(vec![MonthRow {
                month: "2026-01".into(),
                launches: 60,
                unique_users: 7,
                apps: 2,
                production_apps: 1,
            }]),
            Report::MonthlyByApp(vec![AppMonthRow {
                month: "2026-01".into(),
                app_id: None,
                app_name: None,
                launches: 1,
                unique_users: 1,
                production: false,
            }]),
            Report::Environments(vec![EnvironmentRow {
                environment_id: None,
                apps: 1,
                launches: 2,
                unique_users: 1,
                last_launch: "2026-01-01T00:00:00Z".into(),
            }]),
            Report::Inactive(InactiveReport {
                cutoff: "2026-04-01T00:00:00Z".into(),
                data_since: Some("2025-12-01T00:00:00Z".into()),
                apps: vec![crate::store::InactiveRow {
                    app_id: "a1".into(),
                    app_name: Some("=cmd".into()),
                    environment_id: None,
                    last_launch: "2026-01-01T00:00:00Z".into(),
                    launches: 4,
                }],
            }),
        ]
    }

    #[test]
    fn json_keys_csv_header_and_cells_agree() {
        for report in samples() {
            let mut out = Vec::new();
            json(&mut out, &report).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            let first = match &report {
                Report::Inactive(_) => &v["apps"][0],
                _ => &v[0],
            };
            let keys: Vec<&str> = first
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
            assert_eq!(rows.len(), 1);
            assert!(rows.iter().all(|r| r.len() == header.len()));
        }
    }

    #[test]
    fn the_inactive_report_carries_its_cutoff_and_data_since_in_every_format() {
        let report = &samples()[6];
        let mut out = Vec::new();
        json(&mut out, report).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["cutoff"], "2026-04-01T00:00:00Z");
        assert_eq!(v["data_since"], "2025-12-01T00:00:00Z");
        let mut out = Vec::new();
        csv(&mut out, report).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "app_id,app_name,environment_id,last_launch,launches,cutoff,data_since\n\
             a1,\"'=cmd\",,2026-01-01T00:00:00Z,4,2026-04-01T00:00:00Z,2025-12-01T00:00:00Z\n"
        );
        let lines = heading(report);
        assert!(
            lines[0].contains("before 2026-04-01T00:00:00Z"),
            "{lines:?}"
        );
        assert!(lines[1].contains("since 2025-12-01T00:00:00Z"), "{lines:?}");
        assert!(heading(&samples()[0]).is_empty());
        let (_, rows) = table(&samples()[5]);
        assert_eq!(rows[0][0], NO_ENVIRONMENT);
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
    fn formula_cells_are_neutralised_and_others_kept() {
        for (cell, want) in [
            ("=1+1", "\"'=1+1\""),
            ("+1", "\"'+1\""),
            ("-1", "\"'-1\""),
            ("@SUM(A1)", "\"'@SUM(A1)\""),
            ("\t=1", "\"'\t=1\""),
            ("\r=1", "\"'\r=1\""),
            ("  =1", "\"'  =1\""),
            ("＝1", "\"'＝1\""),
            ("=HYPERLINK(\"x\")", "\"'=HYPERLINK(\"\"x\"\")\""),
            ("Expenses", "Expenses"),
            ("a, b", "\"a, b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("a-b", "a-b"),
            ("", ""),
        ] {
            assert_eq!(csv_field(cell), want, "{cell:?}");
        }
    }

    #[test]
    fn table_cells_are_visible_and_measured_by_display_width() {
        assert_eq!(
            visible("a\u{1b}[31mb\nc\u{202e}"),
            "a\\u{1b}[31mb\\nc\\u{202e}"
        );
        assert_eq!(visible("経費 🚀"), "経費 🚀");
        let long = "経".repeat(40_000);
        let short = shorten(&long, MAX_CELL_WIDTH);
        assert!(short.width() <= MAX_CELL_WIDTH && short.ends_with('…'));
        let mut out = Vec::new();
        write_table(
            &mut out,
            &["NAME", "N"],
            &[
                vec!["経費".into(), "1".into()],
                vec!["ab".into(), "2".into()],
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NAME  N\n経費  1\nab    2\n"
        );
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
