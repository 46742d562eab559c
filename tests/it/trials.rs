//! Adversarial trials of issue 10 (points 1, 5, 12, 18, 22) with other inputs of the same kinds
//! than those the issue quotes. Each test here failed on the branch it was written against.

use crate::common::TestEnv;
use crate::report::{launch, store_with};

const APP: &str = "11111111-1111-1111-1111-111111111111";

/// Point 1: `--force` replaces a file or a link; a FIFO (or, as root, `/dev/null` and the
/// `/dev/stdout` link: tried in a mount namespace, both became 0600 regular files holding the
/// report) is not a report a previous run wrote, and must never be turned into a regular file.
#[cfg(unix)]
#[test]
fn report_output_force_never_replaces_a_fifo_with_a_regular_file() {
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

/// Point 1, the same kind: a character device (`/dev/null`, directly or through a symbolic link),
/// the `/dev/stdout` link and a FIFO are refused with and without `--force`, by `report --output`
/// and `simulator --write-config` alike, with a message naming what is there; the check comes before
/// anything is written, so `/dev/null` is never touched.
#[cfg(unix)]
#[test]
fn outputs_never_replace_a_device_a_pipe_or_a_link_into_dev() {
    use std::os::unix::fs::FileTypeExt;
    let env = store_with(&[launch(
        "2026-01-05T08:00:00Z",
        "alice@contoso.com",
        Some(APP),
        Some("Expenses"),
        Some("env-1"),
        256,
    )]);
    std::os::unix::fs::symlink("/dev/null", env.path("null-link.csv")).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(env.path("pipe"))
            .status()
            .unwrap()
            .success()
    );
    let null_kind = || std::fs::symlink_metadata("/dev/null").unwrap().file_type();
    for (path, what) in [
        ("/dev/null", "character device"),
        ("null-link.csv", "/dev/null"),
        ("/dev/stdout", "/dev/stdout"),
        ("pipe", "named pipe"),
    ] {
        for force in [false, true] {
            let mut args = vec!["report", "apps", "--format", "csv", "--output", path];
            if force {
                args.push("--force");
            }
            let run = env.run(&args);
            run.assert_code(2)
                .assert_stderr(what)
                .assert_stderr("exists");
            if !force && path != "/dev/stdout" {
                run.assert_stderr("not even with --force");
            }
            let (code, _, stderr) = crate::outputs::simulator(
                &env,
                &[
                    "--write-config",
                    path,
                    if force { "--force" } else { "--seed=1" },
                ],
            );
            assert_eq!(code, Some(2), "simulator --write-config {path}: {stderr}");
            assert!(stderr.contains(what), "{stderr}");
        }
        assert!(null_kind().is_char_device());
        assert!(
            std::fs::symlink_metadata(env.path("null-link.csv"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}

/// Point 1 and 22: a folder that does not exist is a usage mistake (exit 2, as the README says),
/// for `report --output` and `simulator --write-config`.
#[test]
fn an_output_in_a_missing_folder_is_a_usage_mistake() {
    let env = store_with(&[launch(
        "2026-01-05T08:00:00Z",
        "alice@contoso.com",
        Some(APP),
        Some("Expenses"),
        Some("env-1"),
        256,
    )]);
    env.run(&[
        "report",
        "apps",
        "--format",
        "csv",
        "--output",
        "nodir/x.csv",
    ])
    .assert_code(2)
    .assert_stderr("nodir");
    let (code, _, stderr) = crate::outputs::simulator(&env, &["--write-config", "nodir/x.toml"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("nodir"), "{stderr}");
}

/// Point 1: `simulator --write-config` writes a configuration naming `auditsync.db` beside it, so
/// that database's companions (`-wal`, `-shm`, `-journal`, `.lock`) are refused as the database is,
/// even when they do not exist yet, and so is a companion of any SQLite database.
#[test]
fn simulator_write_config_never_writes_over_a_database_companion() {
    let env = TestEnv::new();
    let db = env.path("auditsync.db");
    let lock = auditsync_core::store::RunLock::try_acquire(&db).unwrap();
    drop(auditsync_core::store::open_write(&db, lock).unwrap());
    for name in [
        "auditsync.db-wal",
        "auditsync.db-shm",
        "auditsync.db-journal",
        "auditsync.db.lock",
    ] {
        let (code, _, stderr) =
            crate::outputs::simulator(&env, &["--write-config", name, "--force"]);
        assert_eq!(code, Some(2), "--write-config {name}: {stderr}");
        assert!(stderr.contains("not even with --force"), "{stderr}");
    }
    std::fs::copy(&db, env.path("other.db")).unwrap();
    let (code, _, stderr) =
        crate::outputs::simulator(&env, &["--write-config", "other.db-wal", "--force"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("other.db"), "{stderr}");
}

/// Point 18: "An empty secret file is blamed on the config file."
#[test]
fn an_empty_secret_file_is_named_not_the_configuration() {
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
fn a_secret_command_that_is_not_found_is_explained() {
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
fn an_empty_database_file_made_beforehand_ends_up_private() {
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

/// Point 5, the same kind: under `umask 000` (a service manager's default for some) the files a
/// sync creates follow no umask: the database 0600, the run lock 0644 (it holds only a pid and a
/// start time, and readers of another user open it), never 0666.
#[cfg(unix)]
#[test]
fn files_a_sync_creates_do_not_follow_a_permissive_umask() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    env.write_config("");
    env.run(&["subscribe", "start"]).assert_code(0);
    assert!(!env.path("auditsync.db").exists());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" sync")
        .arg(env!("CARGO_BIN_EXE_auditsync"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", env.dir.path())
        .current_dir(env.dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let mode = |name: &str| {
        std::fs::metadata(env.path(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("auditsync.db"), 0o600);
    assert_eq!(mode("auditsync.db.lock"), 0o644);
}

/// Point 18: a configuration saved by Notepad as "Unicode" (UTF-16) gets Rust's raw I/O message
/// ("stream did not contain valid UTF-8"), with no fix.
#[test]
fn a_configuration_saved_as_utf16_is_explained() {
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
fn the_fix_for_a_smart_quoted_key_has_no_smart_quotes() {
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
fn config_values_of_the_wrong_shape_are_explained_truthfully() {
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

/// Point 22: `demo` and `simulator` refuse `--config` (they read no configuration), so their
/// `--help` must not offer it; the refusal still holds before and after the command's name.
#[test]
fn demo_and_simulator_help_do_not_offer_config() {
    let env = TestEnv::new();
    for cmd in ["demo", "simulator"] {
        let run = env.run(&[cmd, "--help"]);
        run.assert_code(0);
        assert!(
            !run.stdout.contains("--config"),
            "{cmd} --help:\n{}",
            run.stdout
        );
        env.run(&[cmd, "--config", "x.toml"])
            .assert_code(2)
            .assert_stderr("reads no configuration");
        env.run(&["--config", "x.toml", cmd])
            .assert_code(2)
            .assert_stderr("reads no configuration");
    }
    let run = env.run(&["sync", "--help"]);
    assert!(run.stdout.contains("--config"), "{}", run.stdout);
}
