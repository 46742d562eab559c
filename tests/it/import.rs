//! `auditsync import`: the three Purview export shapes, broken rows, re-import, and size.

use std::collections::BTreeSet;

use crate::common::{TestEnv, stored_events};

/// A current-schema launch (RecordType 256) as AuditData; the user agent holds commas and quotes.
fn launch_256(id: &str, app: &str, user: &str, time: &str) -> String {
    serde_json::json!({
        "Id": id, "RecordType": 256, "CreationTime": time, "Operation": "LaunchPowerApp",
        "Workload": "PowerPlatform", "UserId": user, "ResultStatus": "Succeeded",
        "PropertyCollection": [
            {"Name": "powerplatform.analytics.resource.power_app.id", "Value": app},
            {"Name": "powerplatform.analytics.resource.power_app.display_name", "Value": "Expenses, \"v2\""},
            {"Name": "powerplatform.analytics.resource.environment.id", "Value": "env-1"},
            {"Name": "user_agent.original", "Value": "Mozilla/5.0 (Windows NT 10.0; Win64; x64), \"quoted\""}
        ]
    })
    .to_string()
}

/// A legacy launch (RecordType 45, app in AppName).
fn launch_45(id: &str, app: &str, user: &str, time: &str) -> String {
    serde_json::json!({
        "Id": id, "RecordType": 45, "CreationTime": time, "Operation": "LaunchPowerApp",
        "Workload": "PowerApps", "UserId": user, "AppName": app,
        "AdditionalInfo": "{\"environmentName\":\"Default-x\"}"
    })
    .to_string()
}

/// Another workload's record that mentions the operation but is not a launch.
fn noise(id: &str, time: &str) -> String {
    serde_json::json!({
        "Id": id, "RecordType": 6, "CreationTime": time, "Operation": "FileAccessed",
        "Workload": "SharePoint", "ObjectId": "https://contoso/LaunchPowerApp, notes.docx"
    })
    .to_string()
}

fn write_csv(
    env: &TestEnv,
    name: &str,
    bom: bool,
    quote_all: bool,
    header: &[&str],
    rows: &[Vec<String>],
) {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(if quote_all {
            csv::QuoteStyle::Always
        } else {
            csv::QuoteStyle::Necessary
        })
        .from_writer(Vec::new());
    w.write_record(header).unwrap();
    for r in rows {
        w.write_record(r).unwrap();
    }
    let mut bytes = if bom {
        b"\xEF\xBB\xBF".to_vec()
    } else {
        Vec::new()
    };
    bytes.extend(w.into_inner().unwrap());
    std::fs::write(env.path(name), bytes).unwrap();
}

/// id, creation_time, app_id, user_id, record_type
type Row = (String, String, Option<String>, Option<String>, i64);

fn stored(env: &TestEnv) -> Vec<Row> {
    let db = rusqlite::Connection::open(env.path("auditsync.db")).unwrap();
    let mut stmt = db
        .prepare(
            "SELECT id, creation_time, app_id, user_id, record_type FROM audit_events ORDER BY id",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn the_three_export_shapes_are_read_and_reimporting_changes_nothing() {
    let env = TestEnv::new();
    env.write_config("");
    // Classic: CreationDate,UserIds,Operations,AuditData.
    write_csv(
        &env,
        "classic.csv",
        false,
        false,
        &["CreationDate", "UserIds", "Operations", "AuditData"],
        &[
            vec![
                "2025-03-01T10:00:00".into(),
                "a@contoso.com".into(),
                "LaunchPowerApp".into(),
                launch_256("id-1", "app-1", "a@contoso.com", "2025-03-01T10:00:00"),
            ],
            vec![
                "2025-03-01T11:00:00".into(),
                "b@contoso.com".into(),
                "FileAccessed".into(),
                noise("id-2", "2025-03-01T11:00:00"),
            ],
            vec![
                "2025-03-02T09:30:00".into(),
                "b@contoso.com".into(),
                "LaunchPowerApp".into(),
                launch_45(
                    "id-3",
                    "app-2",
                    "B@Contoso.com",
                    "2025-03-02T09:30:00.1234567Z",
                ),
            ],
        ],
    );
    // The newer export: BOM, RecordId first, a locale date, trailing empty columns.
    write_csv(
        &env,
        "new.csv",
        true,
        false,
        &[
            "RecordId",
            "CreationDate",
            "RecordType",
            "Operation",
            "UserId",
            "AuditData",
            "AssociatedAdminUnits",
            "AssociatedAdminUnitsNames",
        ],
        &[
            vec![
                "id-4".into(),
                "3/5/2025 2:34:32 PM".into(),
                "256".into(),
                "LaunchPowerApp".into(),
                "c@contoso.com".into(),
                launch_256("id-4", "app-1", "c@contoso.com", "2025-03-05T14:34:32"),
                String::new(),
                String::new(),
            ],
            vec![
                "id-1".into(),
                "3/1/2025 10:00:00 AM".into(),
                "256".into(),
                "LaunchPowerApp".into(),
                "a@contoso.com".into(),
                launch_256("id-1", "app-1", "a@contoso.com", "2025-03-01T10:00:00"),
                String::new(),
                String::new(),
            ],
        ],
    );
    // Search-UnifiedAuditLog | Export-Csv: every field quoted, RecordType by name.
    write_csv(
        &env,
        "powershell.csv",
        false,
        true,
        &[
            "RecordType",
            "CreationDate",
            "UserIds",
            "Operations",
            "AuditData",
            "ResultIndex",
            "ResultCount",
            "Identity",
            "IsValid",
            "ObjectState",
        ],
        &[vec![
            "PowerAppsApp".into(),
            "3/6/2025 8:00:00 AM".into(),
            "d@contoso.com".into(),
            "LaunchPowerApp".into(),
            launch_45("id-5", "app-3", "d@contoso.com", "2025-03-06T08:00:00"),
            "1".into(),
            "1".into(),
            "id-5".into(),
            "True".into(),
            "Unchanged".into(),
        ]],
    );

    let run = env.run(&["import", "classic.csv", "new.csv", "powershell.csv"]);
    run.assert_code(0)
        .assert_stdout("classic.csv (classic Purview audit export): 3 rows, 2 events kept (2 new)")
        .assert_stdout("new.csv (Purview audit search export): 2 rows, 2 events kept (1 new)")
        .assert_stdout(
            "powershell.csv (Search-UnifiedAuditLog export): 1 rows, 1 events kept (1 new)",
        );
    let rows = stored(&env);
    assert_eq!(
        rows,
        vec![
            (
                "id-1".into(),
                "2025-03-01T10:00:00Z".into(),
                Some("app-1".into()),
                Some("a@contoso.com".into()),
                256
            ),
            (
                "id-3".into(),
                "2025-03-02T09:30:00Z".into(),
                Some("app-2".into()),
                Some("B@Contoso.com".into()),
                45
            ),
            (
                "id-4".into(),
                "2025-03-05T14:34:32Z".into(),
                Some("app-1".into()),
                Some("c@contoso.com".into()),
                256
            ),
            (
                "id-5".into(),
                "2025-03-06T08:00:00Z".into(),
                Some("app-3".into()),
                Some("d@contoso.com".into()),
                45
            ),
        ]
    );
    // The record is kept as it was in AuditData, quotes and commas included.
    let raw = stored_events(&env)
        .into_iter()
        .find(|e| e.id == "id-1")
        .unwrap()
        .raw;
    assert_eq!(
        raw,
        launch_256("id-1", "app-1", "a@contoso.com", "2025-03-01T10:00:00")
    );

    let before = std::fs::read(env.path("auditsync.db")).unwrap().len();
    env.run(&["import", "classic.csv", "new.csv", "powershell.csv"])
        .assert_code(0)
        .assert_stdout("2 events kept (0 new)");
    assert_eq!(
        stored(&env),
        rows,
        "importing the same files twice changes nothing"
    );
    assert!(std::fs::read(env.path("auditsync.db")).unwrap().len() >= before);
}

#[test]
fn a_broken_row_is_reported_by_line_and_the_rows_around_it_still_land() {
    let env = TestEnv::new();
    env.write_config("");
    let mut text = String::from("CreationDate,UserIds,Operations,AuditData\r\n");
    let mut line = |audit: &str| {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        w.write_record([
            "2025-03-01T10:00:00",
            "a@contoso.com",
            "LaunchPowerApp",
            audit,
        ])
        .unwrap();
        text.push_str(&String::from_utf8(w.into_inner().unwrap()).unwrap());
    };
    line(&launch_256(
        "ok-1",
        "app-1",
        "a@contoso.com",
        "2025-03-01T10:00:00",
    ));
    line("{\"Id\": \"broken\", \"Operation\": ");
    line(&launch_45(
        "ok-2",
        "app-2",
        "a@contoso.com",
        "2025-03-01T10:05:00",
    ));
    line("{\"Operation\": \"LaunchPowerApp\", \"RecordType\": 45}");
    line(&launch_45(
        "ok-3",
        "app-2",
        "a@contoso.com",
        "2025-03-01T10:06:00",
    ));
    std::fs::write(env.path("broken.csv"), text).unwrap();
    let run = env.run(&["import", "broken.csv"]);
    run.assert_code(1)
        .assert_stderr("broken.csv line 3")
        .assert_stderr("broken.csv line 5: its AuditData has no Id")
        .assert_stdout("5 rows, 3 events kept (3 new), 2 rows could not be read");
    let ids: Vec<String> = stored(&env).into_iter().map(|r| r.0).collect();
    assert_eq!(ids, ["ok-1", "ok-2", "ok-3"]);

    std::fs::write(env.path("not-an-export.csv"), "name,value\r\na,1\r\n").unwrap();
    env.run(&["import", "not-an-export.csv"])
        .assert_code(1)
        .assert_stderr("has no AuditData column");
    // A file the command line names that is not there: bad usage (exit 2), checked before anything.
    env.run(&["import", "missing.csv"])
        .assert_code(2)
        .assert_stderr("missing.csv");
}

#[test]
fn an_export_over_the_coe_row_limit_streams_through() {
    let env = TestEnv::new();
    env.write_config("");
    // 60,000 rows: beyond the 50,000 a Purview export (and the CoE flow) stops at.
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record(["CreationDate", "UserIds", "Operations", "AuditData"])
        .unwrap();
    let mut want = BTreeSet::new();
    for i in 0..60_000 {
        let id = format!("row-{i:05}");
        let audit = if i % 10 == 0 {
            want.insert(id.clone());
            launch_45(&id, "app-9", "e@contoso.com", "2025-02-01T00:00:00")
        } else {
            noise(&id, "2025-02-01T00:00:00")
        };
        w.write_record(["2025-02-01T00:00:00", "e@contoso.com", "x", &audit])
            .unwrap();
    }
    std::fs::write(env.path("big.csv"), w.into_inner().unwrap()).unwrap();
    env.run(&["import", "big.csv"])
        .assert_code(0)
        .assert_stdout("60000 rows, 6000 events kept (6000 new)");
    let ids: BTreeSet<String> = stored(&env).into_iter().map(|r| r.0).collect();
    assert_eq!(ids, want);
}

#[test]
fn odd_but_real_files_lf_bom_type_line_spaced_header_multiline_fields_and_other_operations() {
    let env = TestEnv::new();
    env.write_config("[sync]\noperations = [\"LaunchPowerApp\", \"DeletePowerApp\"]\n");
    let delete = launch_256("del-1", "app-1", "a@contoso.com", "2025-03-03T10:00:00")
        .replace("\"LaunchPowerApp\"", "\"DeletePowerApp\"");
    // AuditData pretty-printed over several lines, LF line ends, a #TYPE line, a BOM, "Audit Data".
    let pretty = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(&launch_45(
            "multi-1",
            "app-2",
            "a@contoso.com",
            "2025-03-04T10:00:00",
        ))
        .unwrap(),
    )
    .unwrap();
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(["CreationDate", "UserIds", "Operations", "Audit Data"])
        .unwrap();
    w.write_record(["x", "a", "LaunchPowerApp", &pretty])
        .unwrap();
    w.write_record(["x", "a", "DeletePowerApp", &delete])
        .unwrap();
    w.write_record(["x", "a", "LaunchPowerApp", "not json"])
        .unwrap();
    let mut bytes = b"\xEF\xBB\xBF#TYPE Deserialized.Microsoft.Exchange.Management\n".to_vec();
    bytes.extend(w.into_inner().unwrap());
    std::fs::write(env.path("odd.csv"), bytes).unwrap();
    // Line 1 is #TYPE, 2 the header; multi-1 starts on line 3 and spans its JSON's lines; then the
    // delete, then the broken row.
    let broken = 3 + pretty.lines().count() + 1;
    env.run(&["import", "odd.csv"])
        .assert_code(1)
        .assert_stdout("3 rows, 2 events kept (2 new), 1 rows could not be read")
        .assert_stderr(&format!("odd.csv line {broken}:"));
    let ids: Vec<String> = stored(&env).into_iter().map(|r| r.0).collect();
    assert_eq!(ids, ["del-1", "multi-1"]);
}

#[test]
fn an_unclosed_quote_is_named_with_the_lines_it_swallowed() {
    let env = TestEnv::new();
    env.write_config("");
    let good = |id: &str| {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        w.write_record([
            "x",
            "a",
            "LaunchPowerApp",
            &launch_45(id, "app-2", "a@contoso.com", "2025-03-04T10:00:00"),
        ])
        .unwrap();
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    };
    let text = format!(
        "CreationDate,UserIds,Operations,AuditData\r\n{}x,a,LaunchPowerApp,\"{{\"\"Id\"\": \"\"open\r\n{}{}",
        good("g-1"),
        good("g-2"),
        good("g-3")
    );
    std::fs::write(env.path("open.csv"), text).unwrap();
    env.run(&["import", "open.csv"])
        .assert_code(1)
        .assert_stderr("open.csv line 3")
        .assert_stderr("a quote is probably not closed");
}

/// One row of the classic export (`x,a,LaunchPowerApp,<audit>`), CSV-quoted with `sep` between
/// fields and CRLF at its end.
fn classic_row(sep: u8, audit: &str) -> String {
    let mut w = csv::WriterBuilder::new()
        .delimiter(sep)
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record([
        "2025-03-04T10:00:00",
        "a@contoso.com",
        "LaunchPowerApp",
        audit,
    ])
    .unwrap();
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

/// A good classic row holding a legacy launch with this id.
fn good_row(id: &str) -> String {
    classic_row(
        b',',
        &launch_45(id, "app-2", "a@contoso.com", "2025-03-04T10:00:00"),
    )
}

const CLASSIC_HEADER: &str = "CreationDate,UserIds,Operations,AuditData\r\n";

/// What a refused file printed must be a message, not the file (the old reader echoed a header of
/// megabytes of NUL bytes).
#[track_caller]
fn short_refusal(run: &crate::common::Run, file: &str, needle: &str) {
    run.assert_code(1).assert_stderr(file).assert_stderr(needle);
    assert!(
        run.stderr.len() < 2_000 && !run.stderr.contains('\0'),
        "the message is not short: {} bytes",
        run.stderr.len()
    );
}

#[test]
fn hostile_files_are_bounded_named_by_line_and_the_good_rows_around_them_kept() {
    let env = TestEnv::new();
    env.write_config("");
    let huge = 17 << 20; // over the 16 MiB a record may take

    // One endless line (no quote in it) between two good rows: the reader skips to its line end.
    let mut long =
        format!("{CLASSIC_HEADER}{}x,a,LaunchPowerApp,", good_row("long-1")).into_bytes();
    long.resize(long.len() + huge, b'A');
    long.extend(b"\r\n");
    long.extend(good_row("long-2").as_bytes());
    std::fs::write(env.path("long.csv"), long).unwrap();
    env.run(&["import", "long.csv"])
        .assert_code(1)
        .assert_stderr("long.csv line 3:")
        .assert_stderr("longer than 16 MiB")
        .assert_stdout("3 rows, 2 events kept (2 new), 1 rows could not be read");
    let ids: Vec<String> = stored(&env).into_iter().map(|r| r.0).collect();
    assert_eq!(ids, ["long-1", "long-2"]);

    // A quote never closed: everything after it is one field, to the end of the file.
    let mut open = format!(
        "{CLASSIC_HEADER}{}x,a,LaunchPowerApp,\"{{\"\"Id\"\": \"\"open\r\n",
        good_row("open-1")
    );
    while open.len() < huge {
        open.push_str("2025-03-04T10:00:00,a@contoso.com,LaunchPowerApp,lost\r\n");
    }
    std::fs::write(env.path("open.csv"), &open).unwrap();
    let run = env.run(&["import", "open.csv"]);
    run.assert_code(1)
        .assert_stderr("open.csv line 3:")
        .assert_stderr("never closed")
        .assert_stderr("rest of the file")
        .assert_stdout("2 rows, 1 events kept (1 new), 1 rows could not be read");
    assert!(stored(&env).iter().any(|r| r.0 == "open-1"));

    // A file cut short by a crash: good rows, then megabytes of NUL bytes.
    let mut cut = format!("{CLASSIC_HEADER}{}", good_row("cut-1")).into_bytes();
    cut.resize(cut.len() + (2 << 20), 0);
    std::fs::write(env.path("cut.csv"), cut).unwrap();
    let run = env.run(&["import", "cut.csv"]);
    run.assert_code(1)
        .assert_stderr("cut.csv line 3:")
        .assert_stderr("NUL bytes")
        .assert_stdout("1 events kept (1 new)");
    assert!(!run.stderr.contains('\0'));
    assert!(stored(&env).iter().any(|r| r.0 == "cut-1"));

    // Whole files that are not text at all, and an empty one: one clear line each, exit 1.
    std::fs::write(env.path("zeros.csv"), vec![0u8; 3 << 20]).unwrap();
    short_refusal(&env.run(&["import", "zeros.csv"]), "zeros.csv", "NUL bytes");
    // One endless line and nothing else: no header can be that long.
    std::fs::write(env.path("endless.csv"), vec![b'A'; 3 << 20]).unwrap();
    short_refusal(
        &env.run(&["import", "endless.csv"]),
        "endless.csv",
        "runs over 1 MiB",
    );
    std::fs::write(env.path("empty.csv"), b"").unwrap();
    short_refusal(
        &env.run(&["import", "empty.csv"]),
        "empty.csv",
        "empty (0 bytes)",
    );
    let mut zip = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00".to_vec();
    zip.extend((0..4096u32).map(|i| (i * 7919 % 251) as u8));
    std::fs::write(env.path("audit.xlsx"), zip).unwrap();
    short_refusal(
        &env.run(&["import", "audit.xlsx"]),
        "audit.xlsx",
        "ZIP archive",
    );
    let mut elf = b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00".to_vec();
    elf.extend((0..8192u32).map(|i| (i * 31 % 256) as u8));
    std::fs::write(env.path("auditsync"), elf).unwrap();
    short_refusal(
        &env.run(&["import", "auditsync"]),
        "auditsync",
        "binary file",
    );

    // A refused file does not stop the next one, and the good rows still land.
    let run = env.run(&["import", "zeros.csv", "long.csv"]);
    run.assert_code(1).assert_stdout("long.csv");
}

/// An export as text: `header` and `rows` joined by `sep`, CRLF line ends, quoted where needed (or
/// everywhere, as PowerShell's Export-Csv does).
fn export_text(sep: u8, quote_all: bool, header: &[&str], rows: &[Vec<String>]) -> String {
    let mut w = csv::WriterBuilder::new()
        .delimiter(sep)
        .terminator(csv::Terminator::CRLF)
        .quote_style(if quote_all {
            csv::QuoteStyle::Always
        } else {
            csv::QuoteStyle::Necessary
        })
        .from_writer(Vec::new());
    w.write_record(header).unwrap();
    for r in rows {
        w.write_record(r).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for unit in bom.then_some(0xFEFF).into_iter().chain(text.encode_utf16()) {
        out.extend(if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        });
    }
    out
}

fn windows_1252(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(text);
    assert!(!unmappable);
    bytes.into_owned()
}

/// The stdout line that reports `file`.
#[track_caller]
fn line_for<'a>(run: &'a crate::common::Run, file: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| l.starts_with(&format!("import {file} ")))
        .unwrap_or_else(|| panic!("no line for {file}\n{}", run.all()))
}

#[test]
fn real_export_encodings_separators_and_preambles_are_read_and_named() {
    let env = TestEnv::new();
    env.write_config("");
    let classic = ["CreationDate", "UserIds", "Operations", "AuditData"];
    let classic_rows = |id: &str, user: &str| {
        vec![vec![
            "2025-03-04T10:00:00".to_owned(),
            user.to_owned(),
            "LaunchPowerApp".to_owned(),
            launch_45(id, "app-2", user, "2025-03-04T10:00:00"),
        ]]
    };
    let new_header = [
        "RecordId",
        "CreationDate",
        "RecordType",
        "Operation",
        "UserId",
        "AuditData",
        "AssociatedAdminUnits",
        "AssociatedAdminUnitsNames",
    ];
    let new_rows = |id: &str, user: &str| {
        vec![vec![
            id.to_owned(),
            "04.03.2025 10:00:00".to_owned(),
            "256".to_owned(),
            "LaunchPowerApp".to_owned(),
            user.to_owned(),
            launch_256(id, "app-1", user, "2025-03-04T10:00:00"),
            String::new(),
            String::new(),
        ]]
    };
    let ps_header = [
        "RecordType",
        "CreationDate",
        "UserIds",
        "Operations",
        "AuditData",
        "ResultIndex",
        "ResultCount",
        "Identity",
        "IsValid",
        "ObjectState",
    ];
    let user = |id: &str| {
        vec![
            "PowerAppsApp".to_owned(),
            "04.03.2025 10:00:00".to_owned(),
            "zoë@contoso.com".to_owned(),
            "LaunchPowerApp".to_owned(),
            launch_45(id, "app-3", "zoë@contoso.com", "2025-03-04T10:00:00"),
            "1".to_owned(),
            "1".to_owned(),
            id.to_owned(),
            "True".to_owned(),
            "Unchanged".to_owned(),
        ]
    };

    // Windows PowerShell 5.1: Export-Csv -Encoding Unicode (UTF-16 LE, BOM) with its #TYPE line.
    let ps = format!(
        "#TYPE System.Management.Automation.PSCustomObject\r\n{}",
        export_text(b',', true, &ps_header, &[user("ps-1")])
    );
    std::fs::write(env.path("ps51.csv"), utf16(&ps, false, true)).unwrap();
    // UTF-16 BE with BOM; UTF-16 LE without one.
    let be = export_text(
        b',',
        false,
        &classic,
        &classic_rows("be-1", "jürgen@contoso.com"),
    );
    std::fs::write(env.path("be.csv"), utf16(&be, true, true)).unwrap();
    let nobom = export_text(
        b',',
        false,
        &classic,
        &classic_rows("nb-1", "åsa@contoso.com"),
    );
    std::fs::write(env.path("nobom16.csv"), utf16(&nobom, false, false)).unwrap();
    // Export-Csv -Encoding UTF32 (little-endian, BOM), tab-separated for good measure.
    let wide = export_text(
        b'\t',
        false,
        &classic,
        &classic_rows("u32-1", "łukasz@contoso.com"),
    );
    let wide: Vec<u8> = std::iter::once('\u{FEFF}')
        .chain(wide.chars())
        .flat_map(|c| u32::from(c).to_le_bytes())
        .collect();
    std::fs::write(env.path("utf32.tsv"), wide).unwrap();
    // Excel in a decimal-comma locale: UTF-8 with BOM, a sep=; line, ';' between fields.
    let de = format!(
        "\u{FEFF}sep=;\r\n{}",
        export_text(
            b';',
            false,
            &new_header,
            &new_rows("de-1", "müller@contoso.com")
        )
    );
    std::fs::write(env.path("excel-de.csv"), de).unwrap();
    // ';' with no sep= line (told from the header), tab, and sep=, before a comma file.
    let semi = export_text(b';', false, &new_header, &new_rows("sc-1", "a@contoso.com"));
    std::fs::write(env.path("semicolon.csv"), semi).unwrap();
    let tab = export_text(
        b'\t',
        false,
        &classic,
        &classic_rows("tab-1", "b@contoso.com"),
    );
    std::fs::write(env.path("tab.tsv"), tab).unwrap();
    let sepc = format!(
        "sep=,\r\n{}",
        export_text(
            b',',
            false,
            &classic,
            &classic_rows("sepc-1", "c@contoso.com")
        )
    );
    std::fs::write(env.path("sepcomma.csv"), sepc).unwrap();
    // ANSI (Windows-1252) from the first line on, and a UTF-8 file whose first non-UTF-8 row comes
    // after 100 KiB of plain rows.
    let ansi = export_text(
        b',',
        false,
        &classic,
        &classic_rows("ansi-1", "rené.€@contoso.com"),
    );
    std::fs::write(env.path("ansi.csv"), windows_1252(&ansi)).unwrap();
    let mut late = CLASSIC_HEADER.to_owned();
    let mut lines = 1;
    let mut late_ids = Vec::new();
    while late.len() < 100 << 10 {
        let id = format!("late-{lines}");
        late.push_str(&good_row(&id));
        late_ids.push(id);
        lines += 1;
    }
    let late_line = lines + 1;
    late.push_str(
        &export_text(
            b',',
            false,
            &classic,
            &classic_rows("late-x", "josé@contoso.com"),
        )[CLASSIC_HEADER.len()..],
    );
    std::fs::write(env.path("late-ansi.csv"), windows_1252(&late)).unwrap();

    let files = [
        "ps51.csv",
        "be.csv",
        "nobom16.csv",
        "utf32.tsv",
        "excel-de.csv",
        "semicolon.csv",
        "tab.tsv",
        "sepcomma.csv",
        "ansi.csv",
        "late-ansi.csv",
    ];
    let mut args = vec!["import"];
    args.extend(files);
    let run = env.run(&args);
    run.assert_code(0)
        .assert_stderr("ansi.csv")
        .assert_stderr("Windows-1252")
        .assert_stderr(&format!("late-ansi.csv: line {late_line} is not UTF-8"));
    let expect = [
        (
            "ps51.csv",
            "(Search-UnifiedAuditLog export): 1 rows, 1 events kept (1 new), 0 rows",
            &[
                "UTF-16 LE with byte-order mark",
                "','-separated",
                "#TYPE line",
            ][..],
        ),
        (
            "be.csv",
            "(classic Purview audit export): 1 rows, 1 events kept (1 new), 0 rows",
            &["UTF-16 BE with byte-order mark", "','-separated"][..],
        ),
        (
            "nobom16.csv",
            "(classic Purview audit export): 1 rows, 1 events kept (1 new), 0 rows",
            &["UTF-16 LE without byte-order mark"][..],
        ),
        (
            "utf32.tsv",
            "(classic Purview audit export): 1 rows, 1 events kept (1 new), 0 rows",
            &["UTF-32 LE with byte-order mark, tab-separated"][..],
        ),
        (
            "excel-de.csv",
            "(Purview audit search export): 1 rows, 1 events kept (1 new), 0 rows",
            &[
                "UTF-8 with byte-order mark",
                "';'-separated (its sep=; line)",
            ][..],
        ),
        (
            "semicolon.csv",
            "(Purview audit search export): 1 rows, 1 events kept (1 new), 0 rows",
            &["UTF-8,", "';'-separated"][..],
        ),
        (
            "tab.tsv",
            "(classic Purview audit export): 1 rows, 1 events kept (1 new), 0 rows",
            &["tab-separated"][..],
        ),
        (
            "sepcomma.csv",
            "(classic Purview audit export): 1 rows, 1 events kept (1 new), 0 rows",
            &["','-separated (its sep=, line)"][..],
        ),
        (
            "ansi.csv",
            "(classic Purview audit export): 1 rows, 1 events kept (1 new), 0 rows",
            &["Windows-1252"][..],
        ),
        (
            "late-ansi.csv",
            "0 rows could not be read",
            &["Windows-1252 from line"][..],
        ),
    ];
    for (file, counts, parts) in expect {
        let line = line_for(&run, file);
        assert!(line.contains(counts), "{file}: {line}");
        for part in parts {
            assert!(line.contains(part), "{file} lacks {part:?}: {line}");
        }
    }
    assert!(line_for(&run, "ps51.csv").contains("columns RecordType,CreationDate,UserIds"));

    let users: std::collections::BTreeMap<String, Option<String>> =
        stored(&env).into_iter().map(|r| (r.0, r.3)).collect();
    for (id, user) in [
        ("ps-1", "zoë@contoso.com"),
        ("be-1", "jürgen@contoso.com"),
        ("nb-1", "åsa@contoso.com"),
        ("u32-1", "łukasz@contoso.com"),
        ("de-1", "müller@contoso.com"),
        ("sc-1", "a@contoso.com"),
        ("tab-1", "b@contoso.com"),
        ("sepc-1", "c@contoso.com"),
        ("ansi-1", "rené.€@contoso.com"),
        ("late-x", "josé@contoso.com"),
    ] {
        assert_eq!(users.get(id), Some(&Some(user.to_owned())), "{id}");
    }
    for id in &late_ids {
        assert!(users.contains_key(id), "{id}");
    }
}

const APP: &str = "11111111-1111-1111-1111-111111111111";

/// A current-schema launch whose display name is `name`.
fn launch_named(id: &str, name: &str) -> String {
    serde_json::json!({
        "Id": id, "RecordType": 256, "CreationTime": "2025-03-04T10:00:00", "Operation": "LaunchPowerApp",
        "Workload": "PowerPlatform", "UserId": "a@contoso.com",
        "PropertyCollection": [
            {"Name": "powerplatform.analytics.resource.power_app.id", "Value": APP},
            {"Name": "powerplatform.analytics.resource.power_app.display_name", "Value": name},
            {"Name": "powerplatform.analytics.resource.environment.id", "Value": "env-1"}
        ]
    })
    .to_string()
}

/// (id, app name) of every stored event.
fn names(env: &TestEnv) -> Vec<(String, Option<String>)> {
    let db = rusqlite::Connection::open(env.path("auditsync.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT id, app_name FROM audit_events ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn replace_all(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// Secret leak: `import` of the configuration file (e.g. `auditsync import /etc/auditsync/*`)
/// quotes its first line as the "header", which is `client_secret = "…"`. The same for the secret
/// file, and for any other file whose first line holds the secret (a copy of the configuration).
#[test]
fn import_of_the_configuration_file_does_not_print_the_secret() {
    let env = TestEnv::new();
    env.write_config("");
    // run() itself asserts that the secret was not printed.
    let run = env.run(&["import", "auditsync.toml"]);
    assert_ne!(run.code, 0, "{}", run.all());
    run.assert_stderr("is the configuration file");
    // Through another spelling of its path (a link), it is still the configuration.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(env.path("auditsync.toml"), env.path("link.toml")).unwrap();
        let run = env.run(&["import", "link.toml"]);
        assert_ne!(run.code, 0, "{}", run.all());
        run.assert_stderr("is the configuration file");
    }
    // A copy of the configuration, not the configuration itself: refused as no export, secret unshown.
    let copy = std::fs::read_to_string(env.path("auditsync.toml")).unwrap();
    env.write("backup.toml", &copy);
    env.write(
        "inline.txt",
        &format!("client_secret={},more\r\nrow\r\n", env.secret()),
    );
    let run = env.run(&["import", "backup.toml", "inline.txt"]);
    run.assert_code(1)
        .assert_stderr("backup.toml")
        .assert_stderr("inline.txt");

    // The secret file of a configuration that names one.
    let env = TestEnv::new();
    env.write(
        "auditsync.toml",
        &env.config_without_secret("client_secret_file = \"secret.txt\"\n"),
    );
    env.write("secret.txt", &format!("{}\n", env.secret()));
    let run = env.run(&["import", "secret.txt"]);
    assert_ne!(run.code, 0, "{}", run.all());
    run.assert_stderr("is the client secret file");
    // A copy of it (a backup, another tenant's key): refused as no export, its line unquoted.
    env.write("secret.bak", &format!("{}\n", env.secret()));
    let run = env.run(&["import", "secret.bak"]);
    run.assert_code(1).assert_stderr("secret.bak");
}

/// Point 16: one stray Windows-1252 line near the top of a UTF-8 export turns every UTF-8 name
/// of the file into mojibake ("Zoë" stored as "ZoÃ«"), and the warning names no line; the same
/// line past the first few KiB is handled ("then Windows-1252 from line N").
#[test]
fn a_stray_ansi_line_near_the_top_does_not_garble_the_utf8_rows() {
    let env = TestEnv::new();
    env.write_config("");
    let mut bytes = CLASSIC_HEADER.as_bytes().to_vec();
    bytes.extend(classic_row(b',', &launch_named("id-1", "Zoë")).as_bytes());
    bytes.extend(classic_row(b',', &launch_named("id-2", "Zoë")).as_bytes());
    // "Crème" in Windows-1252: è (UTF-8 C3 A8) is the single byte E8.
    let ansi = replace_all(
        classic_row(b',', &launch_named("id-3", "Crème")).as_bytes(),
        &[0xC3, 0xA8],
        &[0xE8],
    );
    bytes.extend(ansi);
    // UTF-8 again after the ANSI row: still UTF-8.
    bytes.extend(classic_row(b',', &launch_named("id-4", "Zoë")).as_bytes());
    std::fs::write(env.path("mixed.csv"), bytes).unwrap();
    let run = env.run(&["import", "mixed.csv"]);
    let stored = names(&env);
    assert_eq!(stored.len(), 4, "{}", run.all());
    assert_eq!(stored[0].1.as_deref(), Some("Zoë"), "{}", run.all());
    assert_eq!(stored[1].1.as_deref(), Some("Zoë"), "{}", run.all());
    assert_eq!(stored[2].1.as_deref(), Some("Crème"), "{}", run.all());
    assert_eq!(stored[3].1.as_deref(), Some("Zoë"), "{}", run.all());
    assert!(
        run.stderr.contains("line 4"),
        "the warning names no line:\n{}",
        run.all()
    );

    // Many ANSI rows among UTF-8 ones: the first few named, all counted, none garbled.
    let mut bytes = CLASSIC_HEADER.as_bytes().to_vec();
    for i in 0..20 {
        let row = classic_row(b',', &launch_named(&format!("many-{i:02}"), "Crème"));
        if i % 2 == 1 {
            bytes.extend(replace_all(row.as_bytes(), &[0xC3, 0xA8], &[0xE8]));
        } else {
            bytes.extend(row.as_bytes());
        }
    }
    std::fs::write(env.path("many.csv"), bytes).unwrap();
    let run = env.run(&["import", "many.csv"]);
    run.assert_code(0)
        .assert_stderr("many.csv: line 3 is not UTF-8")
        .assert_stderr("10 lines in all were not UTF-8")
        .assert_stdout("Windows-1252 from line 3 on 10 lines");
    let many: Vec<_> = names(&env)
        .into_iter()
        .filter(|(id, _)| id.starts_with("many-"))
        .collect();
    assert_eq!(many.len(), 20, "{}", run.all());
    assert!(
        many.iter().all(|(_, n)| n.as_deref() == Some("Crème")),
        "{many:?}"
    );
}

/// Point 16: "AuditData whose field names are camelCase (some export tools) … read AuditData field
/// names case-insensitively". Today every such row is refused: "its AuditData has no Id".
#[test]
fn camel_case_audit_data_is_read() {
    let env = TestEnv::new();
    env.write_config("");
    let audit = serde_json::json!({
        "id": "camel-1", "recordType": 256, "creationTime": "2025-03-04T10:00:00",
        "operation": "LaunchPowerApp", "workload": "PowerPlatform", "userId": "a@contoso.com",
        "propertyCollection": [
            {"name": "powerplatform.analytics.resource.power_app.id", "value": APP}
        ]
    })
    .to_string();
    std::fs::write(
        env.path("camel.csv"),
        format!("{CLASSIC_HEADER}{}", classic_row(b',', &audit)),
    )
    .unwrap();
    let run = env.run(&["import", "camel.csv"]);
    run.assert_code(0);
    assert_eq!(names(&env).len(), 1, "{}", run.all());
}

/// Point 7: NUL bytes in a row are reported by line and the rows around them kept, but only when
/// they come after the first 64 KiB; the same damage near the top refuses the whole file as
/// "a binary file" and keeps nothing.
#[test]
fn nul_bytes_near_the_top_keep_the_good_rows() {
    let env = TestEnv::new();
    env.write_config("");
    let mut bytes = CLASSIC_HEADER.as_bytes().to_vec();
    bytes.extend(classic_row(b',', &launch_named("nul-1", "A")).as_bytes());
    bytes.extend(vec![0u8; 4096]);
    bytes.extend(b"\r\n");
    bytes.extend(classic_row(b',', &launch_named("nul-2", "B")).as_bytes());
    std::fs::write(env.path("zeros.csv"), bytes).unwrap();
    let run = env.run(&["import", "zeros.csv"]);
    run.assert_code(1).assert_stderr("line 3");
    assert_eq!(names(&env).len(), 2, "{}", run.all());
    // A NUL-filled region at the end of the first 64 KiB, then more rows: the same.
    let mut bytes = CLASSIC_HEADER.as_bytes().to_vec();
    let mut line = 2;
    while bytes.len() < 60 << 10 {
        bytes.extend(classic_row(b',', &launch_named(&format!("many-{line}"), "A")).as_bytes());
        line += 1;
    }
    bytes.extend(vec![0u8; 16 << 10]);
    bytes.extend(b"\n");
    bytes.extend(classic_row(b',', &launch_named("many-last", "B")).as_bytes());
    std::fs::write(env.path("zeros2.csv"), bytes).unwrap();
    let run = env.run(&["import", "zeros2.csv"]);
    run.assert_code(1)
        .assert_stderr(&format!("zeros2.csv line {line}"));
    assert_eq!(names(&env).len(), 2 + line - 2 + 1, "{}", run.all());
}

/// Point 16 (other inputs of the kind): a `sep=;` line over a `,`-separated header (a file
/// re-saved by another tool) is read by the header's own separator, with a warning naming both,
/// instead of "no AuditData column"; a header line of megabytes that does end is not said to run
/// "without a line end".
#[test]
fn a_sep_line_that_contradicts_the_header_and_a_huge_header_are_told_truthfully() {
    let env = TestEnv::new();
    env.write_config("");
    let mut text = format!("sep=;\r\n{CLASSIC_HEADER}");
    text.push_str(&classic_row(b',', &launch_named("sep-1", "A")));
    env.write("sepmix.csv", &text);
    let run = env.run(&["import", "sepmix.csv"]);
    run.assert_code(0)
        .assert_stderr("sep=;")
        .assert_stderr("','");
    assert_eq!(names(&env).len(), 1, "{}", run.all());
    assert!(!run.stderr.contains("no AuditData column"), "{}", run.all());
    // No AuditData either way: the refusal comes with what the sep= line and the header disagree on.
    env.write(
        "sepother.csv",
        "sep=;\r\nName,Email,Department\r\nx,y,z\r\n",
    );
    env.run(&["import", "sepother.csv"])
        .assert_code(1)
        .assert_stderr("no AuditData column")
        .assert_stderr("sep=; names ';' as the separator, but its header is ','-separated");

    let mut huge = "CreationDate,".to_owned();
    huge.push_str(&"A".repeat(2_400_000));
    huge.push_str(",AuditData\r\n");
    huge.push_str(&classic_row(b',', &launch_named("huge-1", "A")));
    env.write("hugeheader.csv", &huge);
    let run = env.run(&["import", "hugeheader.csv"]);
    run.assert_code(1)
        .assert_stderr("hugeheader.csv")
        .assert_stderr("longer than 1 MiB");
    assert!(!run.stderr.contains("without a line end"), "{}", run.all());
}
