//! Adversarial trials of issue 10 (points 1, 5, 16, 18) with other inputs of the same kinds than
//! those the issue quotes. Each test here failed on the branch it was written against.

use crate::common::TestEnv;
use crate::report::{launch, store_with};

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

/// One classic export row (`CreationDate,UserIds,Operations,AuditData`), CRLF-terminated.
fn classic_row(audit: &str) -> String {
    let mut w = csv::WriterBuilder::new()
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

const CLASSIC_HEADER: &str = "CreationDate,UserIds,Operations,AuditData\r\n";

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

/// Point 1: `--force` replaces a file or a link; a FIFO (or, as root, `/dev/null` and the
/// `/dev/stdout` link: tried in a mount namespace, both became 0600 regular files holding the
/// report) is not a report a previous run wrote, and must never be turned into a regular file.
#[cfg(unix)]
#[test]
fn break1_report_output_force_never_replaces_a_fifo_with_a_regular_file() {
    use std::os::unix::fs::FileTypeExt;
    let env = store_with(&[launch(
        "2026-01-05T08:00:00Z",
        "alice@contoso.com",
        Some(APP),
        Some("Expenses"),
        Some("env-1"),
        256,
    )]);
    let fifo = env.path("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let run = env.run(&[
        "report", "apps", "--format", "csv", "--output", "pipe", "--force",
    ]);
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(
        kind.is_fifo(),
        "--output onto a FIFO with --force replaced it with a regular file (exit {})\n{}",
        run.code,
        run.all()
    );
}

/// Secret leak: `import` of the configuration file (e.g. `auditsync import /etc/auditsync/*`)
/// quotes its first line as the "header", which is `client_secret = "…"`.
#[test]
fn break1_import_of_the_configuration_file_does_not_print_the_secret() {
    let env = TestEnv::new();
    env.write_config("");
    // run() itself asserts that the secret was not printed.
    let run = env.run(&["import", "auditsync.toml"]);
    assert_ne!(run.code, 0, "{}", run.all());
}

/// Point 18: "An empty secret file is blamed on the config file."
#[test]
fn break1_an_empty_secret_file_is_named_not_the_configuration() {
    let env = TestEnv::new();
    env.write(
        "auditsync.toml",
        &env.config_without_secret("client_secret_file = \"secret.txt\"\n"),
    );
    env.write("secret.txt", "\n");
    env.run(&["subscribe", "list"])
        .assert_code(2)
        .assert_stderr("secret.txt");
}

/// Point 18: "exit 127 from the secret command is not explained (cron's short PATH: use an
/// absolute path)".
#[test]
fn break1_a_secret_command_that_is_not_found_is_explained() {
    let env = TestEnv::new();
    env.write(
        "auditsync.toml",
        &env.config_without_secret(
            "client_secret_command = \"az-not-installed-here keyvault secret show\"\n",
        ),
    );
    let run = env.run(&["subscribe", "list"]);
    run.assert_code(1).assert_stderr("127");
    assert!(
        run.stderr.contains("absolute path") || run.stderr.contains("PATH"),
        "exit 127 (command not found) is not explained:\n{}",
        run.all()
    );
}

/// Point 5: a database file that exists but is empty ("no database yet", README) is filled with
/// UPNs and IP addresses and keeps the 0644 it was made with (`touch`, a configuration tool).
#[cfg(unix)]
#[test]
fn break1_an_empty_database_file_made_beforehand_ends_up_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    env.write_config("");
    env.run(&["subscribe", "start"]).assert_code(0);
    let db = env.path("auditsync.db");
    std::fs::write(&db, b"").unwrap();
    crate::common::set_mode(&db, 0o644);
    env.run(&["sync"]).assert_code(0);
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the database holding UPNs is mode {mode:o}");
}

/// Point 16: one stray Windows-1252 line near the top of a UTF-8 export turns every UTF-8 name
/// of the file into mojibake ("Zoë" stored as "ZoÃ«"), and the warning names no line; the same
/// line past the first few KiB is handled ("then Windows-1252 from line N").
#[test]
fn break1_a_stray_ansi_line_near_the_top_does_not_garble_the_utf8_rows() {
    let env = TestEnv::new();
    env.write_config("");
    let mut bytes = CLASSIC_HEADER.as_bytes().to_vec();
    bytes.extend(classic_row(&launch_named("id-1", "Zoë")).as_bytes());
    bytes.extend(classic_row(&launch_named("id-2", "Zoë")).as_bytes());
    // "Crème" in Windows-1252: è (UTF-8 C3 A8) is the single byte E8.
    let ansi = replace_all(
        classic_row(&launch_named("id-3", "Crème")).as_bytes(),
        &[0xC3, 0xA8],
        &[0xE8],
    );
    bytes.extend(ansi);
    std::fs::write(env.path("mixed.csv"), bytes).unwrap();
    let run = env.run(&["import", "mixed.csv"]);
    let stored = names(&env);
    assert_eq!(stored.len(), 3, "{}", run.all());
    assert_eq!(stored[0].1.as_deref(), Some("Zoë"), "{}", run.all());
    assert_eq!(stored[1].1.as_deref(), Some("Zoë"), "{}", run.all());
    assert!(
        run.stderr.contains("line 4"),
        "the warning names no line:\n{}",
        run.all()
    );
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

/// Point 16: "AuditData whose field names are camelCase (some export tools) … read AuditData field
/// names case-insensitively". Today every such row is refused: "its AuditData has no Id".
#[test]
fn break1_camel_case_audit_data_is_read() {
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
        format!("{CLASSIC_HEADER}{}", classic_row(&audit)),
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
fn break1_nul_bytes_near_the_top_keep_the_good_rows() {
    let env = TestEnv::new();
    env.write_config("");
    let mut bytes = CLASSIC_HEADER.as_bytes().to_vec();
    bytes.extend(classic_row(&launch_named("nul-1", "A")).as_bytes());
    bytes.extend(vec![0u8; 4096]);
    bytes.extend(b"\r\n");
    bytes.extend(classic_row(&launch_named("nul-2", "B")).as_bytes());
    std::fs::write(env.path("zeros.csv"), bytes).unwrap();
    let run = env.run(&["import", "zeros.csv"]);
    run.assert_code(1).assert_stderr("line 3");
    assert_eq!(names(&env).len(), 2, "{}", run.all());
}

/// Point 18: a configuration saved by Notepad as "Unicode" (UTF-16) gets Rust's raw I/O message
/// ("stream did not contain valid UTF-8"), with no fix.
#[test]
fn break1_a_configuration_saved_as_utf16_is_explained() {
    let env = TestEnv::new();
    let text = format!(
        "client_secret = \"{}\"\n{}",
        env.secret(),
        env.config_without_secret("")
    );
    let mut bytes = vec![0xFF, 0xFE];
    for unit in text.encode_utf16() {
        bytes.extend(unit.to_le_bytes());
    }
    std::fs::write(env.path("auditsync.toml"), bytes).unwrap();
    let run = env.run(&["subscribe", "list"]);
    run.assert_code(2).assert_stderr("auditsync.toml");
    assert!(
        !run.stderr.contains("stream did not contain valid UTF-8") && run.stderr.contains("UTF-16"),
        "raw parser message:\n{}",
        run.all()
    );
}

/// Point 18: a key in typographic quotes is explained, but the fix offered keeps the typographic
/// quotes (`“cloud” = "…"`), so following it fails again.
#[test]
fn break1_the_fix_for_a_smart_quoted_key_has_no_smart_quotes() {
    let env = TestEnv::new();
    let text = format!(
        "client_secret = \"{}\"\n{}\u{201c}cloud\u{201d} = \"commercial\"\n",
        env.secret(),
        env.config_without_secret("")
    );
    env.write("auditsync.toml", &text);
    let run = env.run(&["subscribe", "list"]);
    run.assert_code(2).assert_stderr("typographic");
    assert!(
        run.stderr.contains("cloud = \""),
        "the suggested fix keeps the typographic quotes:\n{}",
        run.all()
    );
}

/// Point 18 (raw parser messages, wrong explanations): `[[sync]]` (an array of tables) gets serde's
/// "invalid type: map, expected u32"; a negative, fractional or out-of-range number is told it is
/// "written without quotes", which it is.
#[test]
fn break1_config_values_of_the_wrong_shape_are_explained_truthfully() {
    let env = TestEnv::new();
    let good = format!(
        "client_secret = \"{}\"\n{}",
        env.secret(),
        env.config_without_secret("")
    );
    env.write(
        "auditsync.toml",
        &format!("{good}[[sync]]\ntime_interval = 1\n"),
    );
    let run = env.run(&["subscribe", "list"]);
    run.assert_code(2).assert_stderr("auditsync.toml");
    assert!(
        !run.stderr.contains("invalid type"),
        "raw parser message for [[sync]]:\n{}",
        run.all()
    );
    for value in ["-1", "1.5", "99999999999999999999"] {
        env.write(
            "auditsync.toml",
            &format!("{good}[sync]\nconcurrency = {value}\n"),
        );
        let run = env.run(&["subscribe", "list"]);
        run.assert_code(2).assert_stderr("concurrency");
        assert!(
            !run.stderr.contains("without quotes"),
            "concurrency = {value} is unquoted, yet the message says to remove the quotes:\n{}",
            run.all()
        );
    }
}
