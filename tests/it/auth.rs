//! Entra ID: both token endpoint versions, and every refusal explained in one sentence with the fix.

use crate::common::TestEnv;

#[test]
fn v1_and_v2_token_endpoints_both_work() {
    for version in ["v1", "v2"] {
        let env = TestEnv::new();
        env.write_config(&format!("token_version = \"{version}\"\n"));
        env.run(&["subscribe", "start"])
            .assert_code(0)
            .assert_stdout("subscription started");
        assert_eq!(env.sim.stats().token_requests, 1, "{version}");
    }
}

#[test]
fn wrong_secret() {
    let env = TestEnv::new();
    env.write(
        "auditsync.toml",
        &format!(
            "client_secret = \"not-the-secret\"\n{}",
            env.config_without_secret("")
        ),
    );
    env.run(&["subscribe", "list"])
        .assert_code(1)
        .assert_stderr("rejected the client secret")
        .assert_stderr("not its Secret ID")
        .assert_stderr("AADSTS7000215");
}

#[test]
fn expired_secret() {
    let env = TestEnv::with(|s| s.secret_expired = true);
    env.write_config("");
    env.run(&["subscribe", "list"])
        .assert_code(1)
        .assert_stderr("has expired")
        .assert_stderr("Certificates & secrets")
        .assert_stderr("AADSTS7000222");
}

#[test]
fn unknown_app() {
    let env = TestEnv::new();
    env.write_config("");
    env.run_with(
        &["subscribe", "list"],
        &[(
            "AUDITSYNC_CLIENT_ID",
            "0aaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        )],
    )
    .assert_code(1)
    .assert_stderr("no app with client_id 0aaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
    .assert_stderr("AADSTS700016");
}

#[test]
fn unknown_tenant() {
    let env = TestEnv::new();
    env.write_config("");
    env.run_with(
        &["subscribe", "list"],
        &[(
            "AUDITSYNC_TENANT_ID",
            "01111111-2222-3333-4444-555555555555",
        )],
    )
    .assert_code(1)
    .assert_stderr("tenant 01111111-2222-3333-4444-555555555555 was not found")
    .assert_stderr("cloud")
    .assert_stderr("AADSTS90002");
}

#[test]
fn wrong_audience() {
    let env = TestEnv::new();
    env.write_config("");
    // Same server, other name: Entra knows no such resource.
    let other = env.base().replace("127.0.0.1", "localhost");
    for version in ["v1", "v2"] {
        env.run_with(
            &["subscribe", "list"],
            &[
                ("AUDITSYNC_AUDIENCE", &other),
                ("AUDITSYNC_TOKEN_VERSION", version),
            ],
        )
        .assert_code(1)
        .assert_stderr("does not know the resource")
        .assert_stderr("audience")
        .assert_stderr("AADSTS500011");
    }
}

#[test]
fn authority_that_is_not_entra() {
    let env = TestEnv::new();
    env.write_config("");
    // The API host is not a login host: its answer is no Entra ID error.
    let wrong = format!("{}/api", env.base());
    env.run_with(&["subscribe", "list"], &[("AUDITSYNC_AUTHORITY", &wrong)])
        .assert_code(1)
        .assert_stderr("check that `authority`");
}

/// Whatever lifetime the token endpoint states (huge, zero, negative, a string as v1 sends, none), a
/// run works: a huge one is capped (no clock overflow), zero or less means a new token per request.
#[test]
fn any_stated_token_lifetime_works() {
    let cases = [
        (serde_json::json!(u64::MAX), false),
        (serde_json::json!(1e300), false),
        (serde_json::json!("9999999999999999999999"), false),
        (serde_json::json!(i64::MAX), false),
        (serde_json::json!("3599"), false),
        (serde_json::Value::Null, false),
        (serde_json::json!(0), true),
        (serde_json::json!(-3600), true),
        (serde_json::json!("-1"), true),
        (serde_json::json!(0.5), true),
    ];
    for version in ["v1", "v2"] {
        for (expires_in, use_once) in &cases {
            let env = TestEnv::with(|s| {
                s.hours = 3;
                s.blobs_per_hour = 2;
                s.records_per_blob = 5;
            });
            env.write_config(&format!(
                "token_version = \"{version}\"\n[sync]\nstart_time_interval = 2\nstart_time_unit = \"hour\"\n"
            ));
            env.sim.set_faults(auditsync_simulator::Faults {
                token_expires_in: Some(expires_in.clone()),
                ..Default::default()
            });
            let what = format!("{version}, expires_in {expires_in}");
            let run = env.run(&["subscribe", "start"]);
            assert_eq!(run.code, 0, "{what}\n{}", run.all());
            let run = env.run(&["sync"]);
            assert_eq!(run.code, 0, "{what}\n{}", run.all());
            let stats = env.sim.stats();
            let api = stats.api_requests.start
                + stats.api_requests.list
                + stats.api_requests.content
                + stats.api_requests.blob;
            if *use_once {
                // One token per request: never a refused one.
                assert_eq!(stats.token_requests, api, "{what}");
            } else {
                // One per run.
                assert_eq!(stats.token_requests, 2, "{what}");
            }
            assert_eq!(stats.unauthorized, 0, "{what}");
        }
    }
}

/// The token cache, driven through the library: renewed before it runs out, and once after a 401.
mod cache {
    use std::time::Duration;

    use auditsync_core::api::ApiClient;
    use auditsync_core::config::{Env, Settings};
    use auditsync_simulator::{SimSpec, Simulator};
    use secrecy::SecretString;

    async fn client(lifetime: Duration) -> (auditsync_simulator::SimServer, ApiClient) {
        let mut spec = SimSpec::new(11);
        spec.token_lifetime = lifetime;
        let sim = Simulator::start(spec).await.unwrap();
        let base = sim.base_url().as_str().trim_end_matches('/').to_owned();
        let text = format!(
            "tenant_id = \"{}\"\nclient_id = \"{}\"\nauthority = \"{base}\"\naudience = \"{base}\"\n",
            sim.spec().tenant_id,
            sim.spec().client_id
        );
        let settings = Settings::from_parts(None, Some(&text), &Env::default()).unwrap();
        let api = ApiClient::new(
            &settings,
            SecretString::from(sim.spec().client_secret.clone()),
        )
        .unwrap();
        (sim, api)
    }

    #[tokio::test]
    async fn a_token_is_reused_then_renewed_before_it_expires() {
        let (sim, api) = client(Duration::from_secs(3)).await;
        api.list_subscriptions().await.unwrap();
        api.list_subscriptions().await.unwrap();
        assert_eq!(sim.stats().token_requests, 1, "cached");
        // Past 4/5 of its lifetime: renewed before the service would refuse it.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        api.list_subscriptions().await.unwrap();
        let stats = sim.stats();
        assert_eq!(stats.token_requests, 2);
        assert_eq!(stats.unauthorized, 0);
    }

    #[tokio::test]
    async fn a_refused_token_is_renewed_once_and_the_request_repeated() {
        let (sim, api) = client(Duration::from_secs(3599)).await;
        api.list_subscriptions().await.unwrap();
        sim.revoke_tokens();
        api.list_subscriptions().await.unwrap();
        let stats = sim.stats();
        assert_eq!((stats.token_requests, stats.unauthorized), (2, 1));
        assert_eq!(
            stats.api_requests.list, 3,
            "the refused request was sent again"
        );
    }
}

/// A token endpoint that fails every attempt (503 and 500, `temporarily_unavailable`): each distinct
/// cause is warned about once, not once per retry; the repeats are at -v.
#[test]
fn a_failing_token_endpoint_warns_once_per_cause() {
    let env = TestEnv::new();
    env.write_config("");
    env.sim.set_faults(auditsync_simulator::Faults {
        token_error_rate: 1.0,
        ..Default::default()
    });
    let run = env.run(&["subscribe", "list"]);
    run.assert_code(1).assert_stderr("kept answering HTTP");
    let attempts = env.sim.stats().token_requests;
    assert!(attempts >= 6, "{attempts} token requests");
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("token request to"))
        .collect();
    // At most one per status the simulator answers with (503, 500).
    assert!(
        !warnings.is_empty() && warnings.len() <= 2,
        "{} retries, warned:\n{}",
        attempts - 1,
        run.stderr
    );
    assert!(
        warnings.iter().all(|w| w.contains("logged at -v only")),
        "{}",
        run.stderr
    );
}
