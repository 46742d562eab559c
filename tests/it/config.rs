//! Where the configuration comes from, what it may say, and how it is refused.

use crate::common::{TestEnv, set_mode};

#[test]
fn config_file_precedence() {
    let env = TestEnv::new();
    // ./auditsync.toml with a wrong tenant, the XDG file with a wrong client: whichever is read shows in
    // the error, so each step of the order is visible.
    let good = format!(
        "client_secret = \"{}\"\n{}",
        env.secret(),
        env.config_without_secret("")
    );
    let bad_tenant = good.replace(
        &env.sim.spec().tenant_id,
        "01111111-2222-3333-4444-555555555555",
    );
    let bad_client = good.replace(
        &env.sim.spec().client_id,
        "0aaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
    );

    // Only the XDG file: it is used.
    env.write(".config/auditsync/config.toml", &bad_client);
    env.run(&["subscribe", "list"])
        .assert_code(1)
        .assert_stderr("AADSTS700016");
    // ./auditsync.toml beats it.
    env.write("auditsync.toml", &bad_tenant);
    env.run(&["subscribe", "list"])
        .assert_code(1)
        .assert_stderr("AADSTS90002");
    // AUDITSYNC_CONFIG beats both.
    let good_path = env.write("elsewhere/good.toml", &good);
    let good_str = good_path.to_str().unwrap();
    env.run_with(&["subscribe", "list"], &[("AUDITSYNC_CONFIG", good_str)])
        .assert_code(0);
    // --config beats AUDITSYNC_CONFIG.
    let client_path = env.path(".config/auditsync/config.toml");
    env.run_with(
        &[
            "--config",
            client_path.to_str().unwrap(),
            "subscribe",
            "list",
        ],
        &[("AUDITSYNC_CONFIG", good_str)],
    )
    .assert_code(1)
    .assert_stderr("AADSTS700016");
    // And AUDITSYNC_<KEY> beats the file it read.
    env.run_with(
        &["subscribe", "list"],
        &[("AUDITSYNC_TENANT_ID", &env.sim.spec().tenant_id)],
    )
    .assert_code(0);
    // A named file that does not exist is an error, not a fallback.
    env.run(&["--config", "missing.toml", "subscribe", "list"])
        .assert_code(2)
        .assert_stderr("missing.toml");
}

#[test]
fn no_configuration_at_all() {
    let env = TestEnv::new();
    env.run(&["subscribe", "list"])
        .assert_code(2)
        .assert_stderr("no configuration file found")
        .assert_stderr("config.example.toml");
}

#[test]
fn unknown_keys_are_refused_by_name_with_the_path() {
    let env = TestEnv::new();
    let path = env.write_config("[sync]\nconcurency = 4\n");
    env.run(&["subscribe", "list"])
        .assert_code(2)
        .assert_stderr("concurency")
        .assert_stderr(path.file_name().unwrap().to_str().unwrap());
    assert_eq!(
        env.sim.stats().token_requests,
        0,
        "refused before any request"
    );
}

#[test]
fn bad_values_exit_2_before_any_request() {
    let env = TestEnv::new();
    env.write_config("");
    let cases: [(&str, &str, &str); 5] = [
        ("AUDITSYNC_CLOUD", "azure-china", "gcc-high"),
        (
            "AUDITSYNC_TENANT_ID",
            "contoso.onmicrosoft.com",
            "not a GUID",
        ),
        (
            "AUDITSYNC_AUDIENCE",
            "http://manage.office.com",
            "plain http",
        ),
        (
            "AUDITSYNC_AUTHORITY",
            "ftp://login.microsoftonline.com",
            "https://",
        ),
        (
            "AUDITSYNC_SYNC_TIME_INTERVAL_UNIT",
            "week",
            "minute, hour, day",
        ),
    ];
    for (var, value, needle) in cases {
        env.run_with(&["subscribe", "list"], &[(var, value)])
            .assert_code(2)
            .assert_stderr(var)
            .assert_stderr(needle);
    }
    assert_eq!(env.sim.stats().token_requests, 0);
}

#[test]
fn https_is_required_except_for_loopback() {
    let env = TestEnv::new();
    env.write_config("");
    env.run_with(
        &["subscribe", "list"],
        &[("AUDITSYNC_AUTHORITY", "http://login.microsoftonline.com")],
    )
    .assert_code(2)
    .assert_stderr("authority")
    .assert_stderr("loopback");
    // The simulator itself is plain http on 127.0.0.1: allowed.
    env.run(&["subscribe", "list"]).assert_code(0);
}

#[test]
fn secret_from_a_file_an_env_var_or_a_command() {
    let env = TestEnv::new();
    let secret = env.secret();
    env.write("secret.txt", &format!("{secret}\n"));
    env.write(
        "auditsync.toml",
        &env.config_without_secret("client_secret_file = \"secret.txt\"\n"),
    );
    env.run(&["subscribe", "list"]).assert_code(0);

    env.write(
        "auditsync.toml",
        &env.config_without_secret(&format!(
            "client_secret_command = \"printf '%s' {secret}\"\n"
        )),
    );
    env.run(&["subscribe", "list"]).assert_code(0);

    // The environment variable overrides whatever the file says.
    env.write(
        "auditsync.toml",
        &env.config_without_secret("client_secret = \"wrong\"\n"),
    );
    env.run_with(
        &["subscribe", "list"],
        &[("AUDITSYNC_CLIENT_SECRET", &secret)],
    )
    .assert_code(0);
}

#[test]
fn secret_sources_refused_clearly() {
    let env = TestEnv::new();
    // Two sources in the file.
    env.write(
        "auditsync.toml",
        &env.config_without_secret("client_secret = \"a\"\nclient_secret_file = \"b\"\n"),
    );
    env.run(&["subscribe", "list"])
        .assert_code(2)
        .assert_stderr("more than one of client_secret");
    // No source at all.
    env.write("auditsync.toml", &env.config_without_secret(""));
    env.run(&["subscribe", "list"])
        .assert_code(2)
        .assert_stderr("client_secret is not set")
        .assert_stderr("AUDITSYNC_CLIENT_SECRET");
    // An unreadable file.
    env.write(
        "auditsync.toml",
        &env.config_without_secret("client_secret_file = \"nope.txt\"\n"),
    );
    env.run(&["subscribe", "list"])
        .assert_code(2)
        .assert_stderr("nope.txt");
    // A secret "file" that is a folder cannot be read either.
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    env.write(
        "auditsync.toml",
        &env.config_without_secret("client_secret_file = \"secrets\"\n"),
    );
    env.run(&["subscribe", "list"])
        .assert_code(2)
        .assert_stderr("cannot read the client secret file");
    // A failing command: reported without echoing what it printed.
    env.write(
        "auditsync.toml",
        &env.config_without_secret("client_secret_command = \"echo LEAKED-ON-STDOUT; echo LEAKED-ON-STDERR >&2; exit 3\"\n"),
    );
    let run = env.run(&["subscribe", "list"]);
    run.assert_code(1)
        .assert_stderr("client_secret_command")
        .assert_stderr("status 3");
    assert!(!run.all().contains("LEAKED"), "{}", run.all());
    assert_eq!(env.sim.stats().token_requests, 0);
}

#[test]
fn a_secret_others_can_read_gets_a_warning_with_the_fix() {
    let env = TestEnv::new();
    let path = env.write_config("");
    set_mode(&path, 0o644);
    env.run(&["subscribe", "list"])
        .assert_code(0)
        .assert_stderr("chmod 600");
    set_mode(&path, 0o600);
    let quiet = env.run(&["subscribe", "list"]);
    assert!(!quiet.stderr.contains("chmod"), "{}", quiet.all());
}

#[test]
fn bad_usage_exits_2() {
    let env = TestEnv::new();
    env.run(&["subscribe"]).assert_code(2);
    env.run(&["frobnicate"]).assert_code(2);
    env.run(&["--help"])
        .assert_code(0)
        .assert_stdout("subscribe");
}
