//! The tally's edge cases on a real store (the SQLite one, through `Writer::insert_events`), each
//! expected count worked out by hand: the CoE thresholds one short and exactly met, months split at
//! midnight UTC (a year's end included), launches without an app, user or environment, and the
//! inactive cutoff to the second.

use chrono::{DateTime, Utc};

use crate::model::Event;
use crate::store::{self, InactiveRow, MonthRow, ReportFilter, RunLock, Writer};

/// A launch as the tests write it: time, user, app, environment.
type Hand<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);

/// A launch at `time` by `user` of `app` in `env` (`None`: the record did not say).
fn launch(
    id: usize,
    time: &str,
    user: Option<&str>,
    app: Option<&str>,
    env: Option<&str>,
) -> Event {
    Event {
        id: format!("e{id:05}"),
        creation_time: time.into(),
        operation: "LaunchPowerApp".into(),
        workload: Some("PowerPlatform".into()),
        record_type: Some(256),
        user_id: user.map(str::to_owned),
        user_object_id: None,
        user_upn: user.map(str::to_lowercase),
        app_id: app.map(str::to_owned),
        app_name: app.map(|a| format!("name of {a}")),
        environment_id: env.map(str::to_owned),
        raw: "{}".into(),
    }
}

/// A store holding `events` (ids given in order), in a folder kept alive with it.
fn store(events: &[Hand<'_>]) -> (tempfile::TempDir, Box<dyn Writer>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let mut s = store::open_write(&path, RunLock::try_acquire(&path).unwrap()).unwrap();
    let events: Vec<Event> = events
        .iter()
        .enumerate()
        .map(|(i, (t, u, a, e))| launch(i, t, *u, *a, *e))
        .collect();
    s.insert_events(&events, "test").unwrap();
    (dir, s)
}

fn users(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("u{i}@contoso.com")).collect()
}

fn month(
    month: &str,
    launches: i64,
    unique_users: i64,
    apps: i64,
    production_apps: i64,
) -> MonthRow {
    MonthRow {
        month: month.into(),
        launches,
        unique_users,
        apps,
        production_apps,
    }
}

/// - "fifty": 49 launches by u0 on 2025-12-31 (the last at 23:59:59) and one at 2026-01-01T00:00:00:
///   49 in December, 1 in January: never production. Then 50 on 2026-02-03: production in February.
/// - "five": 4 people in December (the fourth at 23:59:59), a fifth at 2026-01-01T00:00:00: never
///   production; 5 people on 2026-02-04: production in February.
/// - 50 launches by 5 people without an app id on 2026-02-05: counted as launches and people, never
///   an app nor a production app.
#[test]
fn production_needs_the_threshold_within_one_utc_month() {
    let mut rows: Vec<(String, Option<String>, Option<&str>)> = Vec::new();
    for i in 0..48 {
        rows.push((
            format!("2025-12-31T10:{i:02}:00Z"),
            Some("u0@contoso.com".into()),
            Some("fifty"),
        ));
    }
    rows.push((
        "2025-12-31T23:59:59Z".into(),
        Some("u0@contoso.com".into()),
        Some("fifty"),
    ));
    rows.push((
        "2026-01-01T00:00:00Z".into(),
        Some("u0@contoso.com".into()),
        Some("fifty"),
    ));
    for i in 0..50 {
        rows.push((
            format!("2026-02-03T10:{i:02}:00Z"),
            Some("u0@contoso.com".into()),
            Some("fifty"),
        ));
    }
    let people = users(5);
    for (i, u) in people.iter().take(3).enumerate() {
        rows.push((
            format!("2025-12-0{}T10:00:00Z", i + 1),
            Some(u.clone()),
            Some("five"),
        ));
    }
    rows.push((
        "2025-12-31T23:59:59Z".into(),
        Some(people[3].clone()),
        Some("five"),
    ));
    rows.push((
        "2026-01-01T00:00:00Z".into(),
        Some(people[4].clone()),
        Some("five"),
    ));
    for u in &people {
        rows.push(("2026-02-04T10:00:00Z".into(), Some(u.clone()), Some("five")));
    }
    for i in 0..50 {
        rows.push((
            format!("2026-02-05T10:{i:02}:00Z"),
            Some(people[i % 5].clone()),
            None,
        ));
    }
    let events: Vec<Hand<'_>> = rows
        .iter()
        .map(|(t, u, a)| (t.as_str(), u.as_deref(), *a, Some("env")))
        .collect();
    let (_dir, s) = store(&events);
    let all = ReportFilter::default();
    // December: fifty 49 + five 4 = 53 launches; u0..u3 = 4 people; 2 apps; none production.
    // January: fifty 1 + five 1 = 2; u0, u4 = 2; 2 apps; none.
    // February: fifty 50 + five 5 + no app 50 = 105; u0..u4 = 5; 2 apps; fifty and five = 2.
    assert_eq!(
        s.report_monthly(&all).unwrap(),
        [
            month("2025-12", 53, 4, 2, 0),
            month("2026-01", 2, 2, 2, 0),
            month("2026-02", 105, 5, 2, 2),
        ]
    );
    let by_app: Vec<(String, Option<String>, i64, i64, bool)> = s
        .report_monthly_by_app(&all)
        .unwrap()
        .into_iter()
        .map(|r| (r.month, r.app_id, r.launches, r.unique_users, r.production))
        .collect();
    let row = |m: &str, a: Option<&str>, n, u, p| (m.to_owned(), a.map(str::to_owned), n, u, p);
    assert_eq!(
        by_app,
        [
            row("2025-12", Some("fifty"), 49, 1, false),
            row("2025-12", Some("five"), 4, 4, false),
            row("2026-01", Some("fifty"), 1, 1, false),
            row("2026-01", Some("five"), 1, 1, false),
            // A tie on launches (50): the app first, the launches without an app last; those
            // are never a production app.
            row("2026-02", Some("fifty"), 50, 1, true),
            row("2026-02", None, 50, 5, false),
            row("2026-02", Some("five"), 5, 5, true),
        ]
    );
}

/// Launches without an environment are one row (last), without an app add no app, without a user
/// add no person: env-a: x by u0, x by nobody, y by u1 = 3 launches, 2 apps, 1 + 1 = 2 people;
/// none: x by u0, no app by u2, no app by nobody = 3 launches, 1 app, 2 people. A tie on launches:
/// the environment first.
#[test]
fn environments_count_what_the_records_said() {
    let (_dir, s) = store(&[
        (
            "2026-01-01T10:00:00Z",
            Some("u0@c.com"),
            Some("x"),
            Some("env-a"),
        ),
        ("2026-01-02T10:00:00Z", None, Some("x"), Some("env-a")),
        (
            "2026-01-03T10:00:00Z",
            Some("u1@c.com"),
            Some("y"),
            Some("env-a"),
        ),
        ("2026-01-04T10:00:00Z", Some("u0@c.com"), Some("x"), None),
        ("2026-01-05T10:00:00Z", Some("u2@c.com"), None, None),
        ("2026-01-06T10:00:00Z", None, None, None),
    ]);
    let rows: Vec<(Option<String>, i64, i64, i64, String)> = s
        .report_environments(&ReportFilter::default())
        .unwrap()
        .into_iter()
        .map(|e| {
            (
                e.environment_id,
                e.apps,
                e.launches,
                e.unique_users,
                e.last_launch,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (Some("env-a".into()), 2, 3, 2, "2026-01-03T10:00:00Z".into()),
            (None, 1, 3, 2, "2026-01-06T10:00:00Z".into()),
        ]
    );
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// now 2026-05-11T00:00:00.5Z, 10 days: the cutoff is 2026-05-01T00:00:00.5, so a launch at
/// 00:00:00 is older than 10 days (inactive) and one at 00:00:01 is not; the report shows the
/// cutoff as the whole second after it, 00:00:01, "before" which every listed launch is. The store
/// holds data since the oldest launch, whatever the environment asked for; launches without an app
/// are never listed.
#[test]
fn inactive_cuts_off_to_the_second_and_says_since_when() {
    let (_dir, s) = store(&[
        (
            "2026-05-01T00:00:00Z",
            Some("u0@c.com"),
            Some("on-the-second"),
            Some("e1"),
        ),
        (
            "2026-05-01T00:00:01Z",
            Some("u0@c.com"),
            Some("one-later"),
            Some("e1"),
        ),
        (
            "2026-03-01T00:00:00Z",
            Some("u0@c.com"),
            Some("old"),
            Some("e2"),
        ),
        ("2026-02-01T00:00:00Z", Some("u0@c.com"), None, Some("e1")),
    ]);
    let now = at("2026-05-11T00:00:00.5Z");
    let r = s.report_inactive(10, None, now).unwrap();
    assert_eq!(r.cutoff, "2026-05-01T00:00:01Z");
    assert_eq!(r.data_since.as_deref(), Some("2026-02-01T00:00:00Z"));
    let row = |id: &str, env: &str, last: &str| InactiveRow {
        app_id: id.into(),
        app_name: Some(format!("name of {id}")),
        environment_id: Some(env.into()),
        last_launch: last.into(),
        launches: 1,
    };
    assert_eq!(
        r.apps,
        [
            row("old", "e2", "2026-03-01T00:00:00Z"),
            row("on-the-second", "e1", "2026-05-01T00:00:00Z"),
        ]
    );
    // A whole-second now: the launch at the cutoff itself is exactly 10 days old, not older.
    let r = s
        .report_inactive(10, None, at("2026-05-11T00:00:00Z"))
        .unwrap();
    assert_eq!(r.cutoff, "2026-05-01T00:00:00Z");
    assert_eq!(r.apps.len(), 1);
    // In e1: the data still starts 2026-02-01 (the store's, not the environment's).
    let r = s.report_inactive(10, Some("E1"), now).unwrap();
    assert_eq!(r.apps.len(), 1);
    assert_eq!(r.apps[0].app_id, "on-the-second");
    assert_eq!(r.data_since.as_deref(), Some("2026-02-01T00:00:00Z"));
    // Days beyond chrono's range: everything is newer than the start of time, nothing panics.
    let r = s.report_inactive(u32::MAX, None, now).unwrap();
    assert!(r.apps.is_empty());
}

/// A coded launch, as a store streams it.
fn coded(at: i64, app: u32, person: u32) -> super::Launch {
    super::Launch {
        at,
        app,
        person,
        environment: super::NONE,
    }
}

#[test]
fn sort_by_group_sorts_each_group_in_time_order_and_the_whole_otherwise() {
    let day = |l: &super::Launch| l.at.div_euclid(86_400);
    let by_day_then_person = |v: &[super::Launch]| {
        let mut w = v.to_vec();
        w.sort_by_key(|l| (day(l), l.person));
        w.iter().map(|l| (day(l), l.person)).collect::<Vec<_>>()
    };
    let in_time_order = vec![
        coded(10, 1, 3),
        coded(20, 1, 1),
        coded(86_400, 2, 2),
        coded(86_401, 2, 1),
    ];
    let out_of_order = vec![
        coded(86_401, 2, 1),
        coded(10, 1, 3),
        coded(86_400, 2, 2),
        coded(20, 1, 1),
    ];
    for input in [in_time_order, out_of_order] {
        let want = by_day_then_person(&input);
        let mut got = input.clone();
        super::sort_by_group(&mut got, day, |l| l.person);
        assert_eq!(
            got.iter().map(|l| (day(l), l.person)).collect::<Vec<_>>(),
            want
        );
    }
}

#[test]
fn to_months_turns_times_into_calendar_months() {
    // 2026-01-31T23:59:59Z, 2026-02-01T00:00:00Z, the same day again, 2025-12-31T12:00:00Z.
    let mut v = vec![
        coded(1_769_903_999, 1, 1),
        coded(1_769_904_000, 1, 1),
        coded(1_769_904_001, 1, 1),
        coded(1_767_182_400, 1, 1),
    ];
    super::to_months(&mut v);
    let months: Vec<String> = v
        .iter()
        .map(|l| super::month_text(super::month(l)))
        .collect();
    assert_eq!(months, ["2026-01", "2026-02", "2026-02", "2025-12"]);
}

/// The default environment spelt `Default-<tenant>` by legacy records and `default-<tenant>` by
/// RecordType 256 is one environment (shown as first stored), as `--environment` matches it.
#[test]
fn an_environment_spelt_in_two_cases_is_one_row() {
    let (_dir, s) = store(&[
        (
            "2026-01-01T10:00:00Z",
            Some("u0@c.com"),
            Some("x"),
            Some("Default-T1"),
        ),
        (
            "2026-01-02T10:00:00Z",
            Some("u1@c.com"),
            Some("y"),
            Some("default-t1"),
        ),
        (
            "2026-01-03T10:00:00Z",
            Some("u0@c.com"),
            Some("x"),
            Some("default-t1"),
        ),
        (
            "2026-01-04T10:00:00Z",
            Some("u2@c.com"),
            Some("z"),
            Some("env-b"),
        ),
    ]);
    let rows: Vec<(Option<String>, i64, i64, i64)> = s
        .report_environments(&ReportFilter::default())
        .unwrap()
        .into_iter()
        .map(|e| (e.environment_id, e.apps, e.launches, e.unique_users))
        .collect();
    // By hand: Default-T1 3 launches of x, y, x by u0, u1, u0: 2 apps, 2 people; env-b 1.
    assert_eq!(
        rows,
        [
            (Some("Default-T1".to_owned()), 2, 3, 2),
            (Some("env-b".to_owned()), 1, 1, 1)
        ]
    );
}
