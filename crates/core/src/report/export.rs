//! `auditsync export`: the stored events one at a time, as the store streams them, for Power BI or
//! another tool. CSV has the columns of `audit_events` without the raw record (through the reports'
//! RFC 4180 writer, formulas neutralised); JSON Lines has one object per line, the columns and
//! `raw`, the record.

use std::io::{self, Write};

use crate::store::ExportedEvent;

/// The columns of an exported event, in order: the CSV header and the JSON Lines keys before `raw`.
pub const EXPORT_COLUMNS: &[&str] = &[
    "id",
    "creation_time",
    "operation",
    "workload",
    "record_type",
    "user_id",
    "user_key",
    "app_id",
    "app_name",
    "environment_id",
    "content_type",
    "content_id",
];

/// Writes the CSV header ([`EXPORT_COLUMNS`]).
///
/// # Errors
/// The error of writing to `out`.
pub fn export_csv_header(out: &mut dyn Write) -> io::Result<()> {
    super::csv_record(out, &mut EXPORT_COLUMNS.iter().copied())
}

/// Writes one event as a CSV record: absent values empty, every cell kept whole, one a spreadsheet
/// would run as a formula neutralised as in the reports (`=1+1` is written `"'=1+1"`). No raw record.
///
/// # Errors
/// The error of writing to `out`.
pub fn export_csv_row(out: &mut dyn Write, e: &ExportedEvent) -> io::Result<()> {
    let record_type = e.record_type.map(|n| n.to_string());
    let or = |v: &Option<String>| v.as_deref().unwrap_or("").to_owned();
    let cells = [
        e.id.clone(),
        e.creation_time.clone(),
        e.operation.clone(),
        or(&e.workload),
        record_type.unwrap_or_default(),
        or(&e.user_id),
        or(&e.user_key),
        or(&e.app_id),
        or(&e.app_name),
        or(&e.environment_id),
        or(&e.content_type),
        or(&e.content_id),
    ];
    super::csv_record(out, &mut cells.iter().map(String::as_str))
}

/// Whether the stored record can go into a JSON Lines object as it is: valid JSON, and on one line
/// (JSON allows line breaks between tokens, which would split the line).
fn verbatim(raw: &str) -> bool {
    !raw.contains(['\n', '\r']) && serde_json::from_str::<serde::de::IgnoredAny>(raw).is_ok()
}

/// Writes one event as a line of JSON: the columns (absent values `null`), then `"raw"`, the record
/// exactly as stored, inserted as it is (a consumer that slices the value gets the stored bytes)
/// when it is valid JSON on one line; otherwise (a row another program put in `audit_events`, a
/// pretty-printed record) a JSON string holding it, which decodes to the same text.
///
/// # Errors
/// The error of writing to `out`.
pub fn export_jsonl_row(out: &mut dyn Write, e: &ExportedEvent) -> io::Result<()> {
    let columns = serde_json::to_string(e)?;
    // A struct with fields is always an object with members: `{...}`; the raw record goes last.
    let head = columns.strip_suffix('}').unwrap_or(&columns);
    out.write_all(head.as_bytes())?;
    out.write_all(b",\"raw\":")?;
    if verbatim(&e.raw) {
        out.write_all(e.raw.as_bytes())?;
    } else {
        serde_json::to_writer(&mut *out, &e.raw)?;
    }
    out.write_all(b"}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(raw: &str) -> ExportedEvent {
        ExportedEvent {
            id: "e1".into(),
            creation_time: "2026-01-01T00:00:00Z".into(),
            operation: "LaunchPowerApp".into(),
            app_name: Some("=HYPERLINK(\"x\")".into()),
            record_type: Some(256),
            raw: raw.into(),
            ..ExportedEvent::default()
        }
    }

    fn line(raw: &str) -> String {
        let mut out = Vec::new();
        export_jsonl_row(&mut out, &event(raw)).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn valid_json_goes_in_verbatim_and_anything_else_as_a_string() {
        let raw = " { \"Id\" :\"e1\",\t\"N\":\"\\u00e9 é \\\"q\\\"\" } ";
        let l = line(raw);
        assert!(l.ends_with(&format!(",\"raw\":{raw}}}\n")), "{l}");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["raw"]["N"], "é é \"q\"");
        assert_eq!(v["record_type"], 256);
        assert_eq!(v["workload"], serde_json::Value::Null);
        for odd in ["not json", "", "{\"a\":\n1}", "{\"a\":1} trailing", "[1,"] {
            let l = line(odd);
            assert_eq!(l.lines().count(), 1, "{l}");
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            assert_eq!(v["raw"], odd, "{l}");
        }
    }

    #[test]
    fn csv_rows_have_every_column_and_neutralise_formulas() {
        let mut out = Vec::new();
        export_csv_header(&mut out).unwrap();
        export_csv_row(&mut out, &event("{}")).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id,creation_time,operation,workload,record_type,user_id,user_key,app_id,app_name,\
             environment_id,content_type,content_id\n\
             e1,2026-01-01T00:00:00Z,LaunchPowerApp,,256,,,,\"'=HYPERLINK(\"\"x\"\")\",,,\n"
        );
    }
}
