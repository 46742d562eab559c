//! The client secret and the access tokens never appear in anything auditsync prints, at any log level,
//! whether the run succeeds or fails.

use crate::common::{Run, TestEnv};

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
