//! `auditsync sync` and `auditsync status` against the simulated tenant: the stored ids must equal the
//! simulator's ground truth, no more and no fewer.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};

use crate::common::{Run, TestEnv, json, stored_ids, time, truth};

const LAUNCH: &[&str] = &["LaunchPowerApp"];

fn summary(run: &Run) -> serde_json::Value {
    run.assert_code(0);
    json(run)
}

/// A tenant with small pages, so every segment needs several.
fn paged() -> TestEnv {
    let env = TestEnv::with(|s| s.page_size = 2);
    env.write_config("");
    env.run(&["subscribe", "start"]).assert_code(0);
    env
}

#[test]
fn a_sync_stores_exactly_the_ground_truth_and_the_next_fetches_nothing() {
    let env = paged();
    let first = summary(&env.run(&["sync", "--json"]));
    let want = truth(&env, &first);
    assert!(want.len() > 100, "the tenant has launches: {}", want.len());
    assert_eq!(stored_ids(&env), want);
    assert_eq!(first["outcome"], "complete");
    assert_eq!(first["segments"], 24);
    assert!(
        first["pages"].as_u64().unwrap() > 24,
        "paging followed: {first}"
    );

    let stats = env.sim.stats();
    assert_eq!(stats.requests_without_publisher_identifier, 0);
    assert!(
        stats.blob_fetches_by_content_id.values().all(|n| *n == 1),
        "each blob fetched once"
    );
    assert_eq!(
        stats.blob_fetches_by_content_id.len() as u64,
        first["blobs_fetched"].as_u64().unwrap()
    );
    assert_eq!(first["blobs_listed"], first["blobs_fetched"]);

    // Both schemas arrived, and duplicates across blobs were stored once.
    let db = rusqlite::Connection::open(env.path("auditsync.db")).unwrap();
    let types: Vec<i64> = db
        .prepare("SELECT DISTINCT record_type FROM audit_events ORDER BY 1")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(types, [45, 256]);
    assert!(
        first["events_kept"].as_u64().unwrap() > first["events_new"].as_u64().unwrap(),
        "the tenant repeats some events in later blobs: {first}"
    );
    // Every row has its record; the only rows without an app are launches whose record has none
    // (legacy records without AppName): sessions all the same, kept.
    let odd: i64 = db
        .query_row(
            "SELECT count(*) FROM audit_events WHERE raw = '' OR (app_id IS NULL AND \
             (record_type <> 45 OR raw LIKE '%\"AppName\"%'))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(odd, 0);

    // The hourly cron case: listing only, nothing fetched again.
    let blobs_before = env.sim.stats().api_requests.blob;
    let second = summary(&env.run(&["sync", "--json"]));
    assert_eq!(second["blobs_fetched"], 0);
    assert_eq!(second["blobs_already_stored"], second["blobs_listed"]);
    assert_eq!(env.sim.stats().api_requests.blob, blobs_before);
    assert_eq!(
        stored_ids(&env),
        truth(&env, &second).union(&want).cloned().collect()
    );
}

#[test]
fn a_late_blob_inside_a_synced_window_is_caught_by_the_look_back() {
    let env = paged();
    summary(&env.run(&["sync", "--json"]));
    let late = env.sim.publish_blob(Utc::now() - TimeDelta::hours(5));
    let blobs_before = env.sim.stats().api_requests.blob;
    let s = summary(&env.run(&["sync", "--json"]));
    assert_eq!(s["blobs_fetched"], 1);
    assert_eq!(env.sim.stats().api_requests.blob, blobs_before + 1);
    assert_eq!(env.sim.stats().blob_fetches_by_content_id[&late], 1);
    assert!(truth(&env, &s).is_subset(&stored_ids(&env)));
}

#[test]
fn a_backfill_stores_its_range_and_a_missed_run_leaves_no_gap() {
    let env = TestEnv::with(|s| s.hours = 72);
    env.write_config(
        "[sync]\nstart_time_interval = 2\nstart_time_unit = \"hour\"\nsegment_count_limit = 100\n",
    );
    env.run(&["subscribe", "start"]).assert_code(0);

    // Backfill 70 to 60 hours ago: exactly that range.
    let now = Utc::now();
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M").to_string();
    let (from, to) = (
        fmt(now - TimeDelta::hours(70)),
        fmt(now - TimeDelta::hours(60)),
    );
    let back = summary(&env.run(&["sync", "--from", &from, "--to", &to, "--json"]));
    assert_eq!(back["segments"], 10);
    let want = truth(&env, &back);
    assert_eq!(stored_ids(&env), want);
    assert_eq!(back["watermark"], back["window_end"]);

    // Then cron, whose window is 2 hours, comes back 60 hours later: the window reaches back to the
    // watermark, so the whole gap is filled.
    let run = env.run(&["sync", "--json"]);
    run.assert_stderr("reaches back");
    let s = summary(&run);
    assert_eq!(s["window_start"], back["window_end"]);
    let all: BTreeSet<String> = want.union(&truth(&env, &s)).cloned().collect();
    assert_eq!(stored_ids(&env), all);
    let whole = env.sim.ground_truth(
        "Audit.General",
        time(&back["window_start"]),
        time(&s["window_end"]),
        LAUNCH,
    );
    assert_eq!(all, whole);
}

#[test]
fn refusals_come_before_any_request() {
    let env = TestEnv::new();
    env.write_config("");
    let old = (Utc::now() - TimeDelta::days(8))
        .format("%Y-%m-%d")
        .to_string();
    env.run(&["sync", "--from", &old])
        .assert_code(2)
        .assert_stderr("7 days")
        .assert_stderr("auditsync import");
    env.run(&[
        "sync",
        "--from",
        "2026-11-21T10:00",
        "--to",
        "2026-11-21T09:00",
    ])
    .assert_code(2)
    .assert_stderr("is not before");
    env.run(&["sync", "--from", "last tuesday"])
        .assert_code(2)
        .assert_stderr("2026-11-21T08:00");
    env.run_with(
        &["sync"],
        &[
            ("AUDITSYNC_SYNC_TIME_INTERVAL", "5"),
            ("AUDITSYNC_SYNC_TIME_INTERVAL_UNIT", "minute"),
        ],
    )
    .assert_code(2)
    .assert_stderr("288 segments")
    .assert_stderr("segment_count_limit");
    let stats = env.sim.stats();
    assert_eq!((stats.token_requests, stats.api_requests.content), (0, 0));
}

#[test]
fn without_a_subscription_sync_says_what_to_run() {
    let env = TestEnv::new();
    env.write_config("");
    env.run(&["sync"])
        .assert_code(1)
        .assert_stderr("auditsync subscribe start");
    // A 4xx that cannot heal is not retried.
    assert_eq!(env.sim.stats().api_requests.content, 1);
}

#[test]
fn status_shows_the_watermark_the_last_run_and_the_counts() {
    let env = paged();
    env.run(&["status"])
        .assert_code(2)
        .assert_stderr("run `auditsync sync` first");
    let s = summary(&env.run(&["sync", "--json"]));
    let status: serde_json::Value =
        serde_json::from_str(&env.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(status["watermark"], s["window_end"]);
    assert_eq!(status["last_run"]["outcome"], "complete");
    assert_eq!(status["ledger_blobs"], s["blobs_fetched"]);
    assert_eq!(status["pending_blobs"], 0);
    assert_eq!(status["events"][0]["operation"], "LaunchPowerApp");
    assert_eq!(
        status["events"][0]["events"].as_u64().unwrap() as usize,
        stored_ids(&env).len()
    );
    env.run(&["status"])
        .assert_code(0)
        .assert_stdout("watermark:");
}

#[test]
fn other_operations_when_configured() {
    let env = TestEnv::new();
    env.write_config(
        "[sync]\noperations = [\"LaunchPowerApp\", \"DeletePowerApp\", \"CreateFlow\"]\n",
    );
    env.run(&["subscribe", "start"]).assert_code(0);
    let s = summary(&env.run(&["sync", "--json"]));
    let ops = ["LaunchPowerApp", "DeletePowerApp", "CreateFlow"];
    let want = env.sim.ground_truth(
        "Audit.General",
        time(&s["window_start"]),
        time(&s["window_end"]),
        &ops,
    );
    assert_eq!(stored_ids(&env), want);
}

#[test]
fn the_demo_runs_end_to_end() {
    let env = TestEnv::new();
    env.run(&["demo"])
        .assert_code(0)
        .assert_stdout("subscription started")
        .assert_stdout("0 fetched")
        .assert_stdout("$ auditsync report apps")
        .assert_stdout("PRODUCTION")
        .assert_stdout("usage.html");
}

#[test]
fn a_malformed_blob_makes_the_run_incomplete_and_is_tried_again() {
    let env = paged();
    let created = Utc::now() - TimeDelta::hours(3);
    let bad = [
        env.sim
            .publish_blob_with_body(created, "[{\"Id\": \"x\", \"Operation\": "),
        env.sim
            .publish_blob_with_body(created, "{\"not\": \"an array\"}"),
        // Not JSON text at all (a record without an Id is a quarantined record, not this: see
        // records.rs).
        env.sim
            .publish_blob_with_body(created, &b"\xff\xfe[\x00{"[..]),
    ];
    let run = env.run(&["sync", "--json"]);
    run.assert_code(1);
    let s: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(s["outcome"], "incomplete");
    assert_eq!(s["blobs_failed"], 3);
    for id in &bad {
        run.assert_stderr(id);
    }
    run.assert_stderr("not valid JSON")
        .assert_stderr("not a JSON array");
    // Everything else was stored; the watermark stops before the bad blobs' segment.
    assert_eq!(stored_ids(&env), truth(&env, &s));
    let watermark = time(&s["watermark"]);
    assert!(
        watermark <= created && watermark > created - TimeDelta::hours(1),
        "{watermark}"
    );

    let again = env.run(&["sync", "--json"]);
    again.assert_code(1);
    let fetches = env.sim.stats().blob_fetches_by_content_id;
    assert!(
        bad.iter().all(|id| fetches[id] == 2),
        "each bad blob tried again on the next run"
    );
    let status: serde_json::Value =
        serde_json::from_str(&env.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(status["pending_blobs"], 3);
    assert_eq!(status["last_run"]["outcome"], "incomplete");
}

#[test]
fn several_content_types_are_listed_and_all_must_be_complete() {
    let env = TestEnv::new();
    env.write_config(
        "[sync]\ncontent_types = [\"Audit.General\", \"Audit.SharePoint\", \"Audit.Exchange\"]\n",
    );
    env.run(&["subscribe", "start"]).assert_code(0);
    let s = summary(&env.run(&["sync", "--json"]));
    assert_eq!(s["outcome"], "complete");
    let listed: usize = ["Audit.General", "Audit.SharePoint", "Audit.Exchange"]
        .iter()
        .map(|ct| {
            env.sim
                .blobs(ct)
                .iter()
                .filter(|b| {
                    b.created >= time(&s["window_start"]) && b.created < time(&s["window_end"])
                })
                .count()
        })
        .sum();
    assert_eq!(s["blobs_listed"].as_u64().unwrap() as usize, listed);
    assert_eq!(stored_ids(&env), truth(&env, &s));

    // One content type stopped: its listings are refused, the run fails and says what to do.
    env.run(&["subscribe", "stop", "--content-type", "Audit.Exchange"])
        .assert_code(0);
    let run = env.run(&["sync", "--json"]);
    run.assert_code(1)
        .assert_stderr("subscription for Audit.Exchange is disabled")
        .assert_stderr("auditsync subscribe start");
    let failed: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(failed["outcome"], "failed");
    assert_eq!(
        failed["watermark"], s["watermark"],
        "the watermark does not move"
    );
}

#[test]
fn throttling_and_server_errors_are_retried_to_the_same_result() {
    let env = paged();
    env.sim.set_faults(auditsync_simulator::Faults {
        throttle: 0.15,
        throttle_as_429: 0.3,
        retry_after: Some(0),
        server_error: 0.05,
        ..Default::default()
    });
    let s = summary(&env.run(&["sync", "--json"]));
    assert_eq!(s["outcome"], "complete");
    assert_eq!(stored_ids(&env), truth(&env, &s));
    let stats = env.sim.stats();
    assert!(stats.throttled > 0 && stats.server_errors > 0, "{stats:?}");
}

#[test]
fn a_segment_that_cannot_be_listed_is_named_and_exits_1() {
    let env = TestEnv::new();
    env.write_config("[sync]\nstart_time_interval = 1\nstart_time_unit = \"hour\"\n");
    env.run(&["subscribe", "start"]).assert_code(0);
    env.sim.set_faults(auditsync_simulator::Faults {
        server_error: 1.0,
        ..Default::default()
    });
    let run = env.run(&["sync", "--json"]);
    run.assert_code(1)
        .assert_stderr("not listed to the end: Audit.General from");
    let s: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(s["outcome"], "incomplete");
    assert_eq!(s["unlisted_segments"].as_array().unwrap().len(), 1);
    assert_eq!(s["watermark"], serde_json::Value::Null);
}

#[test]
fn gzip_is_accepted_when_the_service_offers_it() {
    let env = TestEnv::with(|s| s.gzip = true);
    env.write_config("");
    env.run(&["subscribe", "start"]).assert_code(0);
    let s = summary(&env.run(&["sync", "--json"]));
    assert_eq!(stored_ids(&env), truth(&env, &s));
    assert_eq!(
        u64::from(env.sim.stats().gzipped),
        s["blobs_fetched"].as_u64().unwrap(),
        "every blob came compressed"
    );
}

/// `--from`/`--to` take a zone on every form (a date, a minute, a second; `Z`, `±HH:MM`, `±HHMM`,
/// `±HH`; `T`, `t` or a space), in `sync` and `report` alike; a `--from` at or after now is refused
/// naming now, never a `--to` that was not given; `prune --older-than` reads spellings of an age and
/// explains a time given instead.
#[test]
fn from_and_to_take_a_zone_on_every_form_and_a_late_from_names_now() {
    use chrono::{DurationRound, FixedOffset};
    let env = TestEnv::with(|s| s.hours = 6);
    env.write_config("");
    env.run(&["subscribe", "start"]).assert_code(0);
    let hour = Utc::now().duration_trunc(TimeDelta::hours(1)).unwrap();
    // `t` in the zone `minutes` east of UTC, written with `format`, then `zone` appended.
    let local = |t: DateTime<Utc>, minutes: i32, format: &str, zone: &str| {
        let offset = FixedOffset::east_opt(minutes * 60).unwrap();
        format!("{}{zone}", t.with_timezone(&offset).format(format))
    };
    // (hours back, --from, --to): each range one hour long, its ends in two different zones.
    let cases = [
        (
            5,
            local(hour - TimeDelta::hours(5), 60, "%Y-%m-%dT%H:%M", "+01:00"),
            local(hour - TimeDelta::hours(4), 330, "%Y-%m-%dT%H:%M", "+0530"),
        ),
        (
            4,
            local(hour - TimeDelta::hours(4), 300, "%Y-%m-%d %H:%M", "+05"),
            local(
                hour - TimeDelta::hours(3),
                -330,
                "%Y-%m-%dt%H:%M:%S",
                "-05:30",
            ),
        ),
        (
            3,
            local(hour - TimeDelta::hours(3), 0, "%Y-%m-%dt%H:%M", "z"),
            local(
                hour - TimeDelta::hours(2),
                -60,
                "%Y-%m-%dT%H:%M:%S.0000000",
                "-0100",
            ),
        ),
    ];
    for (back, from, to) in &cases {
        let s = summary(&env.run(&["sync", "--json", "--from", from, "--to", to]));
        assert_eq!(s["outcome"], "complete", "{from} {to}");
        let start = hour - TimeDelta::hours(*back);
        assert_eq!(time(&s["window_start"]), start, "{from}");
        assert_eq!(time(&s["window_end"]), start + TimeDelta::hours(1), "{to}");
    }
    // `report` reads the same forms: an offset and its UTC twin give the same rows.
    let day = hour - TimeDelta::hours(5);
    let utc = report_stdout(&env, &day.format("%Y-%m-%dT%H:%MZ").to_string());
    for form in [
        local(day, 60, "%Y-%m-%dT%H:%M", "+01:00"),
        local(day, 330, "%Y-%m-%d %H:%M:%S", "+0530"),
        local(day, -300, "%Y-%m-%dT%H:%M:%S.000", "-05"),
    ] {
        assert_eq!(report_stdout(&env, &form), utc, "{form}");
    }

    // A --from in the future, with no --to: "in the future", naming now.
    let soon = (Utc::now() + TimeDelta::seconds(5)).to_rfc3339();
    let run = env.run(&["sync", "--from", &soon]);
    run.assert_code(2)
        .assert_stderr("is in the future (now is ");
    assert!(!run.stderr.contains("--to"), "{}", run.all());
    // One 0.2 s ago, inside the current second: "not before now", naming now. Started early in a
    // second, so the run reads its clock in the same second; should the machine be slow enough for
    // the second to turn first, the window is one second long and the run goes through: try again.
    let mut refused = 0;
    for _ in 0..3 {
        while !(250..500).contains(&Utc::now().timestamp_subsec_millis()) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let from = (Utc::now() - TimeDelta::milliseconds(200)).to_rfc3339();
        let run = env.run(&["sync", "--from", &from]);
        if run.code == 0 {
            continue;
        }
        run.assert_code(2)
            .assert_stderr("is not before now (")
            .assert_stderr("earlier --from");
        assert!(!run.stderr.contains("--to"), "{}", run.all());
        refused += 1;
    }
    assert!(refused > 0, "a --from 0.2 s ago was never refused");

    // `prune --older-than` takes an age as an admin spells it, and answers a time with its age.
    env.run(&["prune", "--older-than", "400 Days", "--dry-run"])
        .assert_code(0);
    let yesterday = (Utc::now() - TimeDelta::hours(25)).to_rfc3339();
    env.run(&["prune", "--older-than", &yesterday])
        .assert_code(2)
        .assert_stderr("a time, not an age")
        .assert_stderr("--older-than 2d deletes what was created before");
}

/// `report apps --format json --from <from>`'s stdout.
fn report_stdout(env: &TestEnv, from: &str) -> String {
    let run = env.run(&["report", "apps", "--format", "json", "--from", from]);
    run.assert_code(0);
    run.stdout.clone()
}

/// A misspelt operation stores nothing but fills the ledger; once corrected, the blobs stored under
/// the old name are fetched again (the ledger knows which operations they were kept for), the alert
/// says so under `-q` too, and a backfill from the API's earliest start gets the launches of the
/// whole window. The same for an operation added later.
#[test]
fn an_operation_corrected_or_added_later_fetches_the_blobs_stored_without_it() {
    let env = TestEnv::new();
    env.write_config("[sync]\noperations = [\"LaunchApp\"]\n");
    env.run(&["subscribe", "start"]).assert_code(0);
    let typo = summary(&env.run(&["sync", "--json"]));
    assert_eq!(typo["events_kept"], 0, "{typo}");
    assert!(typo["blobs_fetched"].as_u64().unwrap() > 0);
    assert!(stored_ids(&env).is_empty());

    env.write_config("[sync]\noperations = [\"LaunchPowerApp\"]\n");
    let fixed = env.run(&["-q", "sync"]);
    fixed
        .assert_stderr("operations now include LaunchPowerApp")
        .assert_stderr("auditsync sync --from");
    let want = env.sim.ground_truth(
        "Audit.General",
        time(&typo["window_start"]),
        time(&typo["window_end"]),
        &["LaunchPowerApp"],
    );
    assert!(!want.is_empty());
    let stored = stored_ids(&env);
    assert!(
        want.is_subset(&stored),
        "the typo's window is fetched again: {} of {} launches",
        want.intersection(&stored).count(),
        want.len()
    );
    // The next run knows the ledger is kept for LaunchPowerApp: nothing is fetched again.
    let again = summary(&env.run(&["sync", "--json"]));
    assert_eq!(again["blobs_fetched"], 0, "{again}");
    assert!(again["alerts"].as_array().unwrap().is_empty(), "{again}");

    // An operation added later: the blobs are fetched again for it, launches stay stored once.
    env.write_config("[sync]\noperations = [\"LaunchPowerApp\", \"DeletePowerApp\"]\n");
    let added = summary(&env.run(&["sync", "--json"]));
    assert!(added["blobs_fetched"].as_u64().unwrap() > 0, "{added}");
    let ops = ["LaunchPowerApp", "DeletePowerApp"];
    let want = env.sim.ground_truth(
        "Audit.General",
        time(&added["window_start"]),
        time(&added["window_end"]),
        &ops,
    );
    assert!(want.is_subset(&stored_ids(&env)));
    assert_eq!(added["events_new"].as_u64().unwrap() as usize, {
        let launches = env.sim.ground_truth(
            "Audit.General",
            time(&added["window_start"]),
            time(&added["window_end"]),
            &["LaunchPowerApp"],
        );
        want.len() - launches.len()
    });
}

/// A blob a backfill listed but could not store (an interrupted or failing `sync --from`) lies
/// before the watermark the hourly runs keep: the next plain run still reaches back to it, while the
/// API serves it (fresh-clone trial: the interrupted backfill's blobs sat pending until they expired).
#[test]
fn a_blob_a_backfill_left_pending_is_fetched_by_the_next_plain_run() {
    let env = paged();
    env.run(&["sync"]).assert_code(0);
    let created = Utc::now() - TimeDelta::hours(40);
    let bad = env
        .sim
        .publish_blob_with_body(created, "{\"not\": \"an array\"}");
    let from = (Utc::now() - TimeDelta::hours(48))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    env.run(&["sync", "--from", &from]).assert_code(1);
    assert_eq!(env.sim.stats().blob_fetches_by_content_id[&bad], 1);

    let next = env.run(&["sync", "--json"]);
    next.assert_code(1).assert_stderr("not stored yet");
    assert_eq!(
        env.sim.stats().blob_fetches_by_content_id[&bad],
        2,
        "the plain run reached back to the pending blob"
    );
    let s = json(&next);
    assert!(time(&s["window_start"]) <= created, "{s}");
}
