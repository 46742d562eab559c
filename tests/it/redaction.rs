//! The client secret and the access tokens never appear in anything auditsync prints, at any log level,
//! whether the run succeeds or fails.

use auditsync_simulator::Faults;

use crate::common::{Run, TestEnv};

/// What a redacted value becomes.
const REDACTED: &str = auditsync_core::redact::REDACTED;

#[test]
fn secret_and_tokens_never_printed_even_at_trace_level() {
    let env = TestEnv::with(|s| s.token_lifetime = std::time::Duration::from_secs(2));
    env.write_config("");
    let trace = [("AUDITSYNC_LOG", "trace")];
    let mut runs: Vec<Run> = Vec::new();
    for args in [
        &["-vv", "subscribe", "start"][..],
        &["-vvv", "subscribe", "start"],
        &["subscribe", "list", "--json"],
        &["subscribe", "stop"],
        &["subscribe", "list"],
    ] {
        runs.push(env.run_with(args, &trace));
    }
    // Failures print too: a refused token (wrong audience) and a refused API call (stopped content type).
    let other = env.base().replace("127.0.0.1", "localhost");
    runs.push(env.run_with(
        &["subscribe", "list"],
        &[("AUDITSYNC_LOG", "trace"), ("AUDITSYNC_AUDIENCE", &other)],
    ));
    // The secret given through the environment, with a wrong client: Entra's refusal must not echo it.
    runs.push(env.run_with(
        &["subscribe", "start"],
        &[
            ("AUDITSYNC_LOG", "trace"),
            (
                "AUDITSYNC_CLIENT_ID",
                "0aaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
            ),
        ],
    ));

    // The sync path, and what it leaves on disk.
    runs.push(env.run_with(&["-vv", "sync", "--json"], &trace));
    runs.push(env.run_with(&["subscribe", "start"], &trace));
    runs.push(env.run_with(&["-vvv", "sync"], &trace));
    runs.push(env.run_with(&["status", "--json"], &trace));
    runs.push(env.run_with(&["-vv", "status"], &trace));

    let mut printed: String = runs.iter().map(Run::all).collect();
    for file in ["auditsync.db", "auditsync.db-wal"] {
        if let Ok(bytes) = std::fs::read(env.path(file)) {
            printed.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    assert!(printed.contains("TRACE"), "trace logging was on");
    let secret = env.secret();
    let form_encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    assert!(!printed.contains(&secret), "the client secret was printed");
    assert!(
        !printed.contains(&form_encoded),
        "the client secret was printed (form-encoded)"
    );
    let stats = env.sim.stats();
    assert!(stats.issued_tokens.len() >= 8);
    for token in &stats.issued_tokens {
        // The whole token, and its signature on its own.
        assert!(!printed.contains(token.as_str()), "a token was printed");
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            !printed.contains(signature),
            "a token's signature was printed"
        );
    }
}

/// A token endpoint that quotes the form body in its error and an API that quotes the Authorization
/// header in 4xx and 5xx bodies: the secret and the tokens reach no output and no byte of the database,
/// at trace level, whatever command met them.
#[test]
fn echoed_credentials_are_redacted_everywhere() {
    let env = TestEnv::with(|s| {
        s.hours = 6;
        s.blobs_per_hour = 3;
        s.records_per_blob = 5;
    });
    env.write_config("[sync]\nstart_time_interval = 5\nstart_time_unit = \"hour\"\n");
    let trace = [("AUDITSYNC_LOG", "trace")];
    let mut runs: Vec<Run> = Vec::new();
    let faults = |token_echo: f64, echo_authorization: f64| Faults {
        token_echo,
        echo_authorization,
        ..Faults::default()
    };
    env.sim.set_faults(faults(1.0, 0.0));
    runs.push(env.run_with(&["-vv", "subscribe", "start"], &trace));
    runs.push(env.run_with(&["-vv", "sync", "--json"], &trace));
    runs.push(env.run_with(&["-vv", "doctor"], &trace));
    // The secret from the environment too.
    runs.push(env.run_with(
        &["-vvv", "subscribe", "list"],
        &[
            ("AUDITSYNC_LOG", "trace"),
            ("AUDITSYNC_CLIENT_SECRET", &env.secret()),
        ],
    ));
    assert!(
        runs.iter()
            .all(|r| r.code == 1 && (r.stderr.contains(REDACTED) || r.stdout.contains(REDACTED))),
        "each run failed on the echoing token endpoint:\n{}",
        runs.iter().map(Run::all).collect::<String>()
    );
    env.sim.set_faults(faults(0.0, 1.0));
    runs.push(env.run_with(&["-vv", "subscribe", "start"], &trace));
    runs.push(env.run_with(&["-vvv", "subscribe", "list", "--json"], &trace));
    runs.push(env.run_with(&["-vv", "doctor"], &trace));
    env.sim.set_faults(Faults::default());
    runs.push(env.run_with(&["subscribe", "start"], &trace));
    // Some blobs and listings answered with the echo: their errors are in the summary, the runs
    // table and the pending blobs' last errors.
    env.sim.set_faults(faults(0.0, 0.4));
    runs.push(env.run_with(&["-vv", "sync", "--json"], &trace));
    runs.push(env.run_with(&["-vv", "sync"], &trace));
    runs.push(env.run_with(&["status", "--json"], &trace));
    runs.push(env.run_with(&["status"], &trace));
    let sync = &runs[runs.len() - 4];
    assert!(
        sync.stdout.contains(REDACTED),
        "a failed blob's error quoted the echo:\n{}",
        sync.all()
    );

    let mut printed: String = runs.iter().map(Run::all).collect();
    for file in ["auditsync.db", "auditsync.db-wal"] {
        if let Ok(bytes) = std::fs::read(env.path(file)) {
            printed.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    let db = rusqlite::Connection::open(env.path("auditsync.db")).unwrap();
    let stored: String = db
        .query_row("SELECT group_concat(summary, ' ') FROM runs", [], |r| {
            r.get::<_, Option<String>>(0)
        })
        .unwrap()
        .unwrap_or_default();
    assert!(
        stored.contains(REDACTED),
        "the runs table kept the error, redacted"
    );
    assert!(printed.contains("TRACE"), "trace logging was on");
    let secret = env.secret();
    let form_encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    assert!(
        !printed.contains(&secret),
        "the client secret was printed or stored"
    );
    assert!(
        !printed.contains(&form_encoded),
        "the form-encoded secret was printed or stored"
    );
    let stats = env.sim.stats();
    assert!(stats.issued_tokens.len() >= 4);
    for token in &stats.issued_tokens {
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            !printed.contains(signature),
            "a token was printed or stored"
        );
    }
}

#[test]
fn the_demo_prints_no_secret_or_token() {
    let env = TestEnv::new();
    let run = env.run_with(&["-vv", "demo"], &[("AUDITSYNC_LOG", "trace")]);
    run.assert_code(0);
    // The demo's tenant is the simulator's for its default seed.
    let secret = auditsync_simulator::SimSpec::new(42).client_secret;
    assert!(!run.all().contains(&secret));
    assert!(!run.all().contains("eyJ"), "no JWT-shaped text");
}

/// Point 12, the same kind through the configuration: the client secret pasted into another key (or
/// another variable) is refused without being quoted, whether the secret is set inline, by
/// `AUDITSYNC_CLIENT_SECRET` or in `client_secret_file` (`run` asserts the secret is never printed).
#[test]
fn a_secret_pasted_into_another_key_is_never_quoted_back() {
    let env = TestEnv::new();
    let secret = env.secret();
    let inline = format!("client_secret = \"{secret}\"\n");
    let refused = |run: Run, key: &str| {
        run.assert_code(2)
            .assert_stderr(key)
            .assert_stderr("not shown");
    };
    // In the file, with the secret inline.
    for (key, extra) in [
        ("cloud", format!("cloud = \"{secret}\"\n")),
        ("token_version", format!("token_version = \"{secret}\"\n")),
        (
            "client_secret_command_timeout",
            format!("client_secret_command_timeout = \"{secret}\"\n"),
        ),
        (
            "time_interval_unit",
            format!("[sync]\ntime_interval_unit = \"{secret}\"\n"),
        ),
        (
            "stall_timeout",
            format!("[sync]\nstall_timeout = \"{secret}\"\n"),
        ),
        (
            "content_types",
            format!("[sync]\ncontent_types = [\"{secret}\"]\n"),
        ),
    ] {
        env.write(
            "auditsync.toml",
            &format!("{inline}{}", env.config_without_secret(&extra)),
        );
        refused(env.run(&["subscribe", "list"]), key);
    }
    // Through the environment, the secret inline, in AUDITSYNC_CLIENT_SECRET, or in a file.
    env.write("secret.txt", &format!("{secret}\n"));
    for (how, config, vars) in [
        ("inline", inline.clone(), vec![]),
        (
            "AUDITSYNC_CLIENT_SECRET",
            String::new(),
            vec![("AUDITSYNC_CLIENT_SECRET", secret.as_str())],
        ),
        (
            "client_secret_file",
            "client_secret_file = \"secret.txt\"\n".to_owned(),
            vec![],
        ),
    ] {
        env.write(
            "auditsync.toml",
            &format!("{config}{}", env.config_without_secret("")),
        );
        for var in [
            "AUDITSYNC_CLOUD",
            "AUDITSYNC_AUTHORITY",
            "AUDITSYNC_AUDIENCE",
            "AUDITSYNC_CONCURRENCY",
            "AUDITSYNC_TOKEN_VERSION",
            "AUDITSYNC_STALL_TIMEOUT",
        ] {
            let mut all = vars.clone();
            all.push((var, secret.as_str()));
            let run = env.run_with(&["subscribe", "list"], &all);
            assert_eq!(run.code, 2, "{how}, {var}: {}", run.all());
            run.assert_stderr(var).assert_stderr("not shown");
        }
    }
}

/// Every part of every token the simulator issued, 24 characters at a time: a token cut short (a
/// shortened answer) shows no part of itself either.
fn assert_no_token_part(env: &TestEnv, printed: &str) {
    let stats = env.sim.stats();
    assert!(!stats.issued_tokens.is_empty());
    for token in &stats.issued_tokens {
        let chars: Vec<char> = token.chars().collect();
        for window in chars.windows(24).step_by(4) {
            let part: String = window.iter().collect();
            assert!(
                !printed.contains(&part),
                "a part of a token ({part}) was printed or stored:\n{printed}"
            );
        }
    }
}

/// A gateway that answers every API request with a plain-text 500 quoting the request's
/// `Authorization` header: the same-failure limit stops the run, and the stop (made of that answer)
/// is in the summary line, the JSON, the log and the runs table, each without the token.
#[test]
fn an_outage_that_echoes_the_bearer_token_stops_the_run_without_printing_it() {
    let env = TestEnv::with(|s| s.page_size = 2);
    env.write_config("[sync]\nsame_failure_limit = 3\n");
    env.run(&["subscribe", "start"]).assert_code(0);
    env.sim.set_faults(Faults {
        fixed_answer: Some((
            500,
            "Request failed. Headers: Authorization: {authorization}\r\n".to_owned(),
        )),
        ..Faults::default()
    });
    let trace = [("AUDITSYNC_LOG", "trace")];
    let runs = [
        env.run(&["sync"]),
        env.run_with(&["-vv", "sync", "--json"], &trace),
        env.run(&["-q", "sync"]),
        env.run(&["status"]),
    ];
    for run in &runs[..3] {
        run.assert_code(1)
            .assert_stdout("the run stopped sending requests")
            .assert_stdout(REDACTED);
    }
    assert!(
        crate::common::json(&runs[1])["stopped"]
            .as_str()
            .unwrap()
            .contains(REDACTED),
        "{}",
        runs[1].stdout
    );
    let mut printed: String = runs.iter().map(Run::all).collect();
    for file in ["auditsync.db", "auditsync.db-wal"] {
        if let Ok(bytes) = std::fs::read(env.path(file)) {
            printed.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    assert_no_token_part(&env, &printed);
}
