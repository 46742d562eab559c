//! `auditsync subscribe start|stop|list` against the simulated service.

use crate::common::TestEnv;

#[test]
fn start_start_list_stop_list() {
    let env = TestEnv::new();
    env.write_config("");

    env.run(&["subscribe", "start"])
        .assert_code(0)
        .assert_stdout("Audit.General: subscription started");
    // Starting an enabled subscription answers 400 AF20024: that is success.
    env.run(&["subscribe", "start"])
        .assert_code(0)
        .assert_stdout("Audit.General: subscription was already enabled");
    assert_eq!(
        env.sim.subscriptions(),
        vec![("Audit.General".to_owned(), "enabled".to_owned())]
    );

    let list = env.run(&["subscribe", "list"]);
    list.assert_code(0).assert_stdout("CONTENT TYPE");
    let line = list
        .stdout
        .lines()
        .find(|l| l.starts_with("Audit.General"))
        .expect("a row for Audit.General");
    assert!(line.contains("enabled"), "{line}");

    env.run(&["subscribe", "stop"])
        .assert_code(0)
        .assert_stdout("Audit.General: subscription stopped");
    let json = env.run(&["subscribe", "list", "--json"]);
    json.assert_code(0);
    let rows: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON on stdout");
    assert_eq!(
        rows,
        serde_json::json!([{"content_type": "Audit.General", "status": "disabled", "webhook": null}])
    );

    // Started again after a stop: enabled again.
    env.run(&["subscribe", "start"])
        .assert_code(0)
        .assert_stdout("subscription started");

    let stats = env.sim.stats();
    assert_eq!(stats.requests_without_publisher_identifier, 0);
    assert_eq!(stats.token_requests, 6, "one token per invocation");
}

#[test]
fn content_types_from_the_command_line_or_the_config() {
    let env = TestEnv::new();
    env.write_config("[sync]\ncontent_types = [\"Audit.General\", \"Audit.SharePoint\"]\n");
    env.run(&["subscribe", "start"])
        .assert_code(0)
        .assert_stdout("Audit.SharePoint: subscription started");
    env.run(&["subscribe", "stop", "--content-type", "audit.sharepoint"])
        .assert_code(0);
    let mut subs = env.sim.subscriptions();
    subs.sort();
    assert_eq!(
        subs,
        vec![
            ("Audit.General".to_owned(), "enabled".to_owned()),
            ("Audit.SharePoint".to_owned(), "disabled".to_owned())
        ]
    );
    // A list filtered to one type shows only it; a type never started shows as such.
    let only = env.run(&[
        "subscribe",
        "list",
        "--content-type",
        "Audit.Exchange",
        "--json",
    ]);
    let rows: serde_json::Value = serde_json::from_str(&only.stdout).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([{"content_type": "Audit.Exchange", "status": "not started", "webhook": null}])
    );
    env.run(&["subscribe", "start", "--content-type", "Audit.Nope"])
        .assert_code(2)
        .assert_stderr("Audit.General");
}

#[test]
fn stopping_what_was_never_started_is_not_an_error() {
    let env = TestEnv::new();
    env.write_config("");
    env.run(&["subscribe", "stop"])
        .assert_code(0)
        .assert_stdout("no subscription to stop");
}

#[test]
fn unified_audit_log_off_is_explained() {
    let env = TestEnv::with(|s| s.audit_log_enabled = false);
    env.write_config("");
    env.run(&["subscribe", "start"])
        .assert_code(1)
        .assert_stderr("unified audit log is not turned on")
        .assert_stderr("Purview");
}

#[test]
fn missing_permission_is_explained() {
    let env = TestEnv::with(|s| s.roles = vec!["ServiceHealth.Read".to_owned()]);
    env.write_config("");
    env.run(&["subscribe", "list"])
        .assert_code(1)
        .assert_stderr("ActivityFeed.Read")
        .assert_stderr("admin consent")
        .assert_stderr("[AF10001]");
}
