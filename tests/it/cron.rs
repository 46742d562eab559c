//! Running as cron does: `env -i PATH=/usr/bin:/bin HOME=… sh -c '… -q sync' </dev/null >out 2>err`,
//! no terminal, the environment cleared, another working directory. A complete run prints nothing at
//! all (so cron mails nothing) and exits 0; anything lost exits 1 and is printed, `-q` or not. Also
//! the window's edges: sub-second `--from/--to`, and a watermark in the future.

use std::fs::File;
use std::process::{Command, Stdio};

use chrono::{DateTime, DurationRound, SecondsFormat, TimeDelta, Utc};

use crate::common::{Run, TestEnv, json, stored_ids, time, truth};

/// Runs `auditsync --config <the test's config> <args>` exactly as the README's cron line does:
/// through `env -i` and `sh -c`, from `/`, stdin `/dev/null`, stdout and stderr into files.
fn cron(env: &TestEnv, args: &str) -> Run {
    let (out, err) = (env.path("cron.out"), env.path("cron.err"));
    let script = format!(
        "cd / && exec '{}' --config '{}' {args}",
        env!("CARGO_BIN_EXE_auditsync"),
        env.path("auditsync.toml").display()
    );
    let home = env.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let status = Command::new("/usr/bin/env")
        .args([
            "-i".to_owned(),
            "PATH=/usr/bin:/bin".to_owned(),
            format!("HOME={}", home.display()),
            "sh".to_owned(),
            "-c".to_owned(),
            script,
        ])
        .stdin(Stdio::null())
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap())
        .status()
        .expect("run env -i sh -c auditsync");
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(&out).unwrap(),
        stderr: std::fs::read_to_string(&err).unwrap(),
    };
    env.assert_nothing_leaked(&run.all());
    run
}

#[track_caller]
fn assert_silent(run: &Run) {
    assert!(
        run.code == 0 && run.stdout.is_empty() && run.stderr.is_empty(),
        "a complete run under -q must print nothing and exit 0 (exit {})\n{}",
        run.code,
        run.all()
    );
}

/// Sets the stored watermark, as a clock set back or a restored copy leaves it.
fn set_watermark(env: &TestEnv, at: DateTime<Utc>) {
    let db = rusqlite::Connection::open(env.path("auditsync.db")).unwrap();
    db.execute(
        "INSERT INTO state (key, value) VALUES ('watermark', ?1) \
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [at.to_rfc3339_opts(SecondsFormat::Secs, true)],
    )
    .unwrap();
}

fn stored_watermark(env: &TestEnv) -> DateTime<Utc> {
    let db = rusqlite::Connection::open(env.path("auditsync.db")).unwrap();
    let w: String = db
        .query_row("SELECT value FROM state WHERE key = 'watermark'", [], |r| {
            r.get(0)
        })
        .unwrap();
    DateTime::parse_from_rfc3339(&w).unwrap().to_utc()
}

#[test]
fn under_cron_a_complete_run_prints_nothing_and_every_quiet_command_is_silent() {
    let env = TestEnv::new();
    env.write_config("");
    assert_silent(&cron(&env, "-q subscribe start"));
    assert_silent(&cron(&env, "-q sync"));
    assert!(!stored_ids(&env).is_empty(), "the run stored events");
    // The next hour's run: nothing new, still nothing printed.
    assert_silent(&cron(&env, "-q sync"));
    assert_silent(&cron(&env, "-q prune --older-than 400d"));
    assert_silent(&cron(&env, "-q doctor"));
    let page = env.path("usage.html");
    assert_silent(&cron(
        &env,
        &format!("-q report apps --format html --output '{}'", page.display()),
    ));
    assert!(page.exists());
    let csv = env.write(
        "export.csv",
        "CreationDate,UserIds,Operations,AuditData\n\
         2026-01-05T10:00:00,a@contoso.com,LaunchPowerApp,\"{\"\"Id\"\":\"\"cron-1\"\",\"\"CreationTime\"\":\"\"2026-01-05T10:00:00\"\",\"\"Operation\"\":\"\"LaunchPowerApp\"\",\"\"RecordType\"\":45,\"\"UserId\"\":\"\"a@contoso.com\"\",\"\"AppName\"\":\"\"0f1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b\"\"}\"\n",
    );
    assert_silent(&cron(&env, &format!("-q import '{}'", csv.display())));
    assert!(stored_ids(&env).contains("cron-1"));
    // What is asked for is still printed: --json, a report.
    let asked = cron(&env, "-q sync --json");
    asked.assert_code(0);
    assert_eq!(json(&asked)["outcome"], "complete");
    assert!(asked.stderr.is_empty(), "{}", asked.all());
    // Without -q the summary line stays.
    cron(&env, "sync").assert_code(0).assert_stdout("segments");
    // Something wrong is printed under -q: doctor's failing check, a sync that cannot list.
    assert_silent(&cron(&env, "-q subscribe stop"));
    let doctor = cron(&env, "-q doctor");
    doctor.assert_code(1).assert_stdout("FAIL");
    assert!(!doctor.stdout.contains("PASS"), "{}", doctor.all());
    cron(&env, "-q sync")
        .assert_code(1)
        .assert_stderr("auditsync subscribe start")
        .assert_stdout("FAILED");
}

#[test]
fn under_cron_content_past_the_apis_7_days_exits_1_and_is_printed_despite_q() {
    let env = TestEnv::with(|s| {
        s.hours = 8 * 24;
        s.blobs_per_hour = 1;
        s.records_per_blob = 5;
    });
    env.write_config("");
    assert_silent(&cron(&env, "-q subscribe start"));
    assert_silent(&cron(&env, "-q sync"));
    // 14 days without a sync.
    let last = Utc::now() - TimeDelta::days(14);
    set_watermark(&env, last);
    let lossy = cron(&env, "-q sync");
    lossy
        .assert_code(1)
        .assert_stderr("lost:")
        .assert_stderr("can no longer be fetched")
        .assert_stderr(&last.to_rfc3339_opts(SecondsFormat::Secs, true))
        .assert_stderr("auditsync import")
        .assert_stdout("LOST");
    // Everything the API still serves was caught up, and the loss is reported once.
    assert!(stored_watermark(&env) > Utc::now() - TimeDelta::hours(1));
    assert_silent(&cron(&env, "-q sync"));

    // The same with --json: the JSON names the loss, stderr too.
    set_watermark(&env, last);
    let run = cron(&env, "-q sync --json");
    run.assert_code(1).assert_stderr("can no longer be fetched");
    let s = json(&run);
    assert_eq!(s["losses"][0]["kind"], "expired_content");
    assert_eq!(s["outcome"], "incomplete");
    assert_eq!(stored_ids(&env), truth(&env, &s));
}

/// `auditsync -q sync | head -c0`: standard output closed before the summary is written. The losses
/// are still told on stderr, and the run still exits 1: a broken pipe does not make a lossy run look
/// complete.
#[test]
fn a_lossy_run_with_stdout_closed_still_tells_the_loss_and_exits_1() {
    let env = TestEnv::with(|s| {
        s.hours = 8 * 24;
        s.blobs_per_hour = 1;
        s.records_per_blob = 2;
    });
    env.write_config("");
    assert_silent(&cron(&env, "-q subscribe start"));
    assert_silent(&cron(&env, "-q sync"));
    for args in [&["-q", "sync"][..], &["sync", "--json"]] {
        set_watermark(&env, Utc::now() - TimeDelta::days(14));
        let mut child = env
            .cmd()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run auditsync");
        // The reader goes away before anything was written.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait for auditsync");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        env.assert_nothing_leaked(&stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("lost:"), "{args:?}: {stderr}");
        assert!(
            stderr.contains("can no longer be fetched"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn under_cron_a_lost_blob_exits_1_and_is_printed_despite_q() {
    let env = TestEnv::with(|s| s.hours = 4);
    env.write_config("[sync]\nstart_time_interval = 3\nstart_time_unit = \"hour\"\n");
    assert_silent(&cron(&env, "-q subscribe start"));
    let bad = env
        .sim
        .publish_blob_with_body(Utc::now() - TimeDelta::hours(2), "[{\"Id\": ");
    let expires = Utc::now() + TimeDelta::seconds(10);
    env.sim.set_expiration(&bad, expires);
    cron(&env, "-q sync").assert_code(1).assert_stderr(&bad);
    std::thread::sleep(
        (expires - Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_secs(1),
    );
    cron(&env, "-q sync")
        .assert_code(1)
        .assert_stderr("lost: blob")
        .assert_stderr(&bad)
        .assert_stdout("LOST: 1 blobs expired");
    assert_silent(&cron(&env, "-q sync"));
}

/// PowerShell's `Get-Date -Format o` writes seven fraction digits and an offset; any fraction of
/// `--from`/`--to` is covered whole, without an empty last segment (AF20055).
#[test]
fn sub_second_from_and_to_cover_the_range_without_an_empty_segment() {
    let env = TestEnv::with(|s| s.hours = 6);
    env.write_config("");
    env.run(&["subscribe", "start"]).assert_code(0);
    let hour = Utc::now().duration_trunc(TimeDelta::hours(1)).unwrap();
    let iso = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let cases = [
        (
            format!("{}Z", iso(hour - TimeDelta::hours(4))),
            format!("{}.5Z", iso(hour - TimeDelta::hours(2))),
        ),
        (
            format!("{}.1234567+02:00", iso(hour - TimeDelta::hours(3))),
            format!("{}.9999999+02:00", iso(hour)),
        ),
        (
            format!("{}.25", iso(hour - TimeDelta::hours(5))),
            format!(
                "{}.0000001-05:30",
                iso(hour - TimeDelta::minutes(150) - TimeDelta::minutes(330))
            ),
        ),
    ];
    for (from, to) in &cases {
        let run = env.run(&["sync", "--json", "--from", from, "--to", to]);
        run.assert_code(0);
        assert!(!run.stderr.contains("AF20055"), "{}", run.all());
        let s = json(&run);
        assert_eq!(s["outcome"], "complete", "{from} {to}");
        let (start, end) = (time(&s["window_start"]), time(&s["window_end"]));
        let (f, t) = (parse(from), parse(to));
        assert!(
            start <= f && end >= t && end - t < TimeDelta::seconds(1),
            "{s}"
        );
    }
    assert_eq!(env.sim.stats().requests_without_publisher_identifier, 0);
}

fn parse(s: &str) -> DateTime<Utc> {
    let s = if s.ends_with('Z') || s[19..].contains(['+', '-']) {
        s.to_owned()
    } else {
        format!("{s}Z")
    };
    DateTime::parse_from_rfc3339(&s).unwrap().to_utc()
}

/// A watermark three days ahead (a clock set back, a restored copy): not trusted; the run catches up
/// from where the last run not in the future left it, says so even under -q, and puts the
/// watermark back to now.
#[test]
fn a_watermark_in_the_future_is_said_and_the_missed_days_are_caught_up() {
    let env = TestEnv::with(|s| {
        s.hours = 4 * 24;
        s.blobs_per_hour = 2;
        s.records_per_blob = 20;
    });
    env.write_config("");
    env.run(&["subscribe", "start"]).assert_code(0);
    // The last run with a right clock: up to three days ago.
    let three_days = Utc::now().duration_trunc(TimeDelta::hours(1)).unwrap() - TimeDelta::days(3);
    let iso = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    env.run(&[
        "sync",
        "--from",
        &iso(three_days - TimeDelta::hours(2)),
        "--to",
        &iso(three_days),
    ])
    .assert_code(0);
    assert_eq!(stored_watermark(&env), three_days);
    // Then a clock three days ahead left the watermark there, and a run under it recorded a
    // watermark that has since fallen into the past although nothing after three days ago was
    // fetched (it listed the future and found it empty).
    let ahead = Utc::now() + TimeDelta::days(3);
    set_watermark(&env, ahead);
    let bogus = iso(Utc::now() - TimeDelta::hours(1));
    rusqlite::Connection::open(env.path("auditsync.db"))
        .unwrap()
        .execute(
            "INSERT INTO runs (started_at, finished_at, window_start, window_end, outcome, summary) \
             VALUES (?1, ?1, ?1, ?1, 'complete', ?2)",
            [bogus.clone(), format!("{{\"watermark\":\"{bogus}\"}}")],
        )
        .unwrap();
    let doctor = env.run(&["doctor"]);
    doctor
        .assert_code(1)
        .assert_stdout("FAIL  watermark")
        .assert_stdout("later than now");

    let run = cron(&env, "-q sync --json");
    run.assert_code(0)
        .assert_stderr("later than now")
        .assert_stderr(&iso(ahead));
    let s = json(&run);
    // As far back as the API serves: whatever the wrong clock skipped is fetched.
    assert!(time(&s["window_start"]) < three_days - TimeDelta::days(3));
    assert!(s["losses"].as_array().unwrap().is_empty(), "{s}");
    let want = env.sim.ground_truth(
        "Audit.General",
        three_days - TimeDelta::hours(2),
        time(&s["window_end"]),
        &["LaunchPowerApp"],
    );
    let stored = stored_ids(&env);
    assert!(want.is_subset(&stored), "all three days, not one");
    assert_eq!(stored, truth(&env, &s));
    let w = stored_watermark(&env);
    assert!(
        w <= Utc::now() && w >= time(&s["window_end"]),
        "the watermark is back to now: {w}"
    );
    assert_silent(&cron(&env, "-q sync"));
    env.run(&["doctor"]).assert_stdout("PASS  watermark");
}
