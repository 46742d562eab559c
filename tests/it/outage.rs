//! What the network and a failing service do to a sync: malformed paging signals, a service that
//! answers every request with the same failure, one that trickles, and the run's deadline. Each run
//! must end incomplete (exit 1), say what the service answered, and say it in a few lines.

use auditsync_simulator::Faults;

use crate::common::{TestEnv, json};

/// A subscribed tenant with small pages, so every segment of the default day needs several.
fn paged(extra: &str) -> TestEnv {
    let env = TestEnv::with(|s| s.page_size = 2);
    env.write_config(extra);
    env.run(&["subscribe", "start"]).assert_code(0);
    env
}

#[test]
fn a_next_page_link_that_cannot_be_followed_leaves_the_segment_incomplete() {
    let env = paged("");
    for bad in [
        vec![0xff, 0xfe],
        b"https://localhost/\xe9".to_vec(),
        Vec::new(),
        b"not a url".to_vec(),
        b"nextPage=20261128".to_vec(),
    ] {
        env.sim.set_faults(Faults {
            bad_next_page: Some(bad.clone()),
            ..Default::default()
        });
        let run = env.run(&["sync", "--json"]);
        run.assert_code(1).assert_stderr("NextPageUri");
        let s = json(&run);
        assert_eq!(s["outcome"], "incomplete", "{bad:?}\n{}", run.all());
        assert_eq!(s["segments_complete"], 0, "{bad:?}");
        assert!(
            !s["unlisted_segments"].as_array().unwrap().is_empty(),
            "{bad:?}"
        );
        assert_eq!(s["watermark"], serde_json::Value::Null, "{bad:?}");
    }
}

/// The lines a run printed on stderr.
fn stderr_lines(run: &crate::common::Run) -> usize {
    run.stderr.lines().filter(|l| !l.trim().is_empty()).count()
}

fn listing_requests(env: &TestEnv) -> u32 {
    env.sim.stats().api_requests.content
}

#[test]
fn an_outage_with_a_plain_text_500_stops_early_and_is_told_in_a_few_lines() {
    // The default day: 24 segments, each of which used to be tried six times, with a line per blob.
    let env = paged("");
    let before = listing_requests(&env);
    env.sim.set_faults(Faults {
        fixed_answer: Some((500, "upstream timeout\r\n\tat Gateway.Forward()".to_owned())),
        ..Default::default()
    });
    let run = env.run(&["sync", "--json"]);
    run.assert_code(1)
        .assert_stderr("HTTP 500 Internal Server Error \"upstream timeout at Gateway.Forward()\"")
        .assert_stderr("24 segments not listed to the end: HTTP 500");
    let s = json(&run);
    assert_eq!(s["outcome"], "incomplete");
    assert_eq!(s["unlisted_segments"].as_array().unwrap().len(), 24);
    assert!(
        s["stopped"]
            .as_str()
            .unwrap()
            .contains("the last 10 requests failed the same way"),
        "{}",
        run.all()
    );
    let sent = listing_requests(&env) - before;
    assert!(sent <= 12, "{sent} listing requests");
    assert!(stderr_lines(&run) <= 6, "{}", run.stderr);

    // Without --json the one summary line says why it stopped.
    let run = env.run_with(&["sync"], &[("AUDITSYNC_SAME_FAILURE_LIMIT", "3")]);
    run.assert_code(1)
        .assert_stdout("the run stopped sending requests");
    assert!(stderr_lines(&run) <= 6, "{}", run.stderr);
}

#[test]
fn refusals_without_an_api_error_stop_after_the_limit_and_show_the_answer() {
    let env = paged("[sync]\nsame_failure_limit = 5\n");
    let before = listing_requests(&env);
    env.sim.set_faults(Faults {
        fixed_answer: Some((403, "Forbidden: blocked by policy".to_owned())),
        ..Default::default()
    });
    let run = env.run(&["sync", "--json"]);
    run.assert_code(1)
        .assert_stderr("HTTP 403 Forbidden \"Forbidden: blocked by policy\"");
    assert_eq!(listing_requests(&env) - before, 5, "a 403 is not retried");
    assert!(stderr_lines(&run) <= 6, "{}", run.stderr);
    assert!(json(&run)["stopped"].is_string());
}

#[test]
fn closed_connections_stop_early_too() {
    let env = paged("[sync]\nsame_failure_limit = 4\n");
    let before = listing_requests(&env);
    env.sim.set_faults(Faults {
        drop_connection: 1.0,
        ..Default::default()
    });
    let run = env.run(&["sync", "--json"]);
    run.assert_code(1);
    assert_eq!(listing_requests(&env) - before, 4);
    let s = json(&run);
    assert_eq!(s["outcome"], "incomplete");
    assert_eq!(s["unlisted_segments"].as_array().unwrap().len(), 24);
    assert!(stderr_lines(&run) <= 6, "{}", run.stderr);
}

#[test]
fn blobs_that_fail_alike_are_counted_in_one_line() {
    // The listing works; every blob answers 500 AF50000.
    let env = paged("");
    let victims: Vec<String> = env
        .sim
        .blobs("Audit.General")
        .iter()
        .map(|b| b.content_id.clone())
        .collect();
    env.sim.set_faults(Faults {
        broken_blobs: victims.iter().cloned().collect(),
        ..Default::default()
    });
    let run = env.run(&["sync", "--json"]);
    run.assert_code(1);
    let s = json(&run);
    let failed = s["failed_blobs"].as_array().unwrap().len();
    assert!(failed >= 30, "{failed}");
    run.assert_stderr(&format!(
        "{failed} blobs not stored: HTTP 500 Internal Server Error, AF50000"
    ));
    assert_eq!(run.stderr.matches("blobs not stored").count(), 1);
    assert!(stderr_lines(&run) <= 6, "{}", run.stderr);
    let fetches = env.sim.stats().api_requests.blob;
    assert!(
        (fetches as usize) < failed,
        "{fetches} blob requests for {failed} blobs: the rest were not tried"
    );
    // Each blob is still named at -v.
    let verbose = env.run(&["-v", "sync"]);
    for v in victims.iter().take(30) {
        verbose.assert_stderr(v);
    }
}

#[test]
fn a_service_that_trickles_is_given_up_after_the_stall_timeout() {
    let env = paged("[sync]\nstall_timeout = \"1s\"\nsame_failure_limit = 2\n");
    let before = listing_requests(&env);
    env.sim.set_faults(Faults {
        trickle: Some(std::time::Duration::from_millis(300)),
        ..Default::default()
    });
    let run = env.run(&["sync", "--json"]);
    run.assert_code(1)
        .assert_stderr("the answer came too slowly");
    assert_eq!(listing_requests(&env) - before, 2);
    assert_eq!(json(&run)["outcome"], "incomplete");
}

#[test]
fn the_run_deadline_cuts_requests_in_flight_and_says_what_was_not_done() {
    let env = paged("[sync]\nrun_deadline = \"2s\"\n");
    env.sim.set_faults(Faults {
        blob_delay: std::time::Duration::from_secs(60),
        ..Default::default()
    });
    let run = env.run(&["sync", "--json"]);
    run.assert_code(1).assert_stderr("deadline reached");
    let s = json(&run);
    assert_eq!(s["outcome"], "incomplete");
    assert!(
        s["stopped"]
            .as_str()
            .unwrap()
            .starts_with("deadline reached")
    );
    assert_eq!(s["blobs_fetched"], 0);
    assert!(!s["failed_blobs"].as_array().unwrap().is_empty());
    assert!(s["seconds"].as_f64().unwrap() < 30.0);
    let line = env.run(&["sync"]);
    line.assert_code(1).assert_stdout("deadline reached");
}

#[test]
fn a_token_answer_that_trickles_is_bounded_too() {
    let env = paged("[sync]\nstall_timeout = \"1s\"\nrun_deadline = \"4s\"\n");
    env.sim.set_faults(Faults {
        trickle_tokens: Some(std::time::Duration::from_millis(300)),
        ..Default::default()
    });
    let run = env.run(&["sync", "--json"]);
    run.assert_code(1)
        .assert_stderr("the answer came too slowly")
        .assert_stderr("deadline reached");
    let s = json(&run);
    assert_eq!(s["outcome"], "incomplete");
}
