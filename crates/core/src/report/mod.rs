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

/// The header and cells of the text table (printed by [`write_table`]): the column names in
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

/// CSV with a header row (also when there are no rows); absent values are empty, production is
/// true/false. Every cell is kept whole; one a spreadsheet would run as a formula is neutralised
/// (see [`csv_field`]: `=1+1` is written `"'=1+1"`).
///
/// # Errors
/// The error of writing to `out`.
pub fn csv(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    let mut w = io::BufWriter::new(out);
    let mut record = |cells: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
        let line: Vec<Cow<'_, str>> = cells.map(csv_field).collect();
        writeln!(w, "{}", line.join(","))
    };
    record(&mut report.columns().iter().copied())?;
    for row in report.cells(["", "", "", ""], ["true", "false"]) {
        record(&mut row.iter().map(String::as_str))?;
    }
    w.flush()
}

/// A JSON array of objects keyed by the column names; absent values are `null`.
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
