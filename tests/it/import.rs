//! `auditsync import`: the three Purview export shapes, broken rows, re-import, and size.

use std::collections::BTreeSet;

use crate::common::TestEnv;

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
    let db = rusqlite::Connection::open(env.path("auditsync.db")).unwrap();
    let raw: String = db
        .query_row("SELECT raw FROM audit_events WHERE id = 'id-1'", [], |r| {
            r.get(0)
        })
        .unwrap();
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
