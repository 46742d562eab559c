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

/// Writes ./auditsync.toml as `edit` makes it from a working one, and checks that `subscribe list`
/// refuses it with exit 2 before any request, naming the file and each of `needles`.
fn refused(env: &TestEnv, edit: impl Fn(String) -> String, needles: &[&str]) {
    let good = format!(
        "client_secret = \"{}\"\n{}",
        env.secret(),
        env.config_without_secret("")
    );
    let text = edit(good);
    env.write("auditsync.toml", &text);
    let run = env.run(&["subscribe", "list"]);
    run.assert_code(2).assert_stderr("auditsync.toml");
    for needle in needles {
        run.assert_stderr(needle);
    }
    assert!(!run.stderr.contains(&env.secret()), "the secret was quoted");
    assert_eq!(env.sim.stats().token_requests, 0, "{text}");
}

#[test]
fn an_unquoted_guid_is_explained() {
    let env = TestEnv::new();
    let tenant = env.sim.spec().tenant_id.clone();
    let client = env.sim.spec().client_id.clone();
    // tenant_id is on line 2, client_id on line 3.
    refused(
        &env,
        |t| t.replace(&format!("\"{tenant}\""), &tenant),
        &["line 2", "tenant_id", "quotes", "tenant_id = \""],
    );
    refused(
        &env,
        |t| t.replace(&format!("\"{client}\""), &client),
        &["line 3", "client_id", "quotes", "client_id = \""],
    );
    // One that starts with letters, and one that toml reads as a number with a dash.
    for guid in [
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "12345678-1234-1234-1234-123456789012",
    ] {
        refused(
            &env,
            |t| format!("publisher_identifier = {guid}\n{t}"),
            &["line 1", "publisher_identifier", "quotes"],
        );
    }
}

#[test]
fn smart_quotes_are_explained() {
    let env = TestEnv::new();
    let tenant = env.sim.spec().tenant_id.clone();
    for (open, close) in [("“", "”"), ("‘", "’"), ("”", "”")] {
        refused(
            &env,
            |t| t.replace(&format!("\"{tenant}\""), &format!("{open}{tenant}{close}")),
            &["line 2", "tenant_id", "typographic", "tenant_id = \""],
        );
    }
    // Also in a table, on a list.
    refused(
        &env,
        |t| format!("{t}[sync]\ncontent_types = [“Audit.General”]\n"),
        &["line 8", "content_types", "typographic"],
    );
}

/// Point 18, more raw parser messages of the same kind: a key without `=` (a colon, a full-width
/// `＝`), a table or a key given twice, an invisible character in a key, a string left open, a table
/// inside [sync], a file in Windows-1252. Each names the file, the line, the key and the fix.
#[test]
fn more_parser_messages_are_explained() {
    let env = TestEnv::new();
    refused(
        &env,
        |t| format!("{t}cloud: \"gcc\"\n"),
        &["line 7", "cloud has no `=`", "cloud = \"…\""],
    );
    refused(
        &env,
        |t| format!("{t}cloud \u{ff1d} \"gcc\"\n"),
        &["line 7", "cloud has no `=`", "U+FF1D", "cloud = \"…\""],
    );
    refused(
        &env,
        |t| format!("{t}[sync]\nconcurrency = 2\n[sync]\ntime_interval = 1\n"),
        &["line 9", "[sync] appears a second time", "line 7"],
    );
    refused(
        &env,
        |t| format!("{t}cloud = \"gcc\"\ncloud = \"gcc\"\n"),
        &["line 8", "cloud is set twice (first on line 7)"],
    );
    for (key, what) in [
        ("clo\u{a0}ud", "no-break space"),
        ("clo\u{200b}ud", "zero-width space"),
    ] {
        refused(
            &env,
            |t| format!("{t}{key} = \"gcc\"\n"),
            &["line 7", what, "cloud = \"…\""],
        );
    }
    refused(
        &env,
        |t| format!("{t}cloud = \"gcc\n"),
        &[
            "line 7",
            "cloud opens a quote but does not close it",
            "cloud = \"…\"",
        ],
    );
    refused(
        &env,
        |t| format!("{t}[sync.extra]\nconcurrency = 2\n"),
        &["line 7", "[sync.extra]", "[sync] has no tables inside it"],
    );
    // Windows-1252 ("ANSI"): é is the single byte E9.
    let good = format!(
        "client_secret = \"{}\"\n{}# r\u{e9}sum\u{e9}\n",
        env.secret(),
        env.config_without_secret("")
    );
    let bytes: Vec<u8> = good
        .replace('\u{e9}', "\u{1}")
        .bytes()
        .map(|b| if b == 1 { 0xE9 } else { b })
        .collect();
    std::fs::write(env.path("auditsync.toml"), bytes).unwrap();
    let run = env.run(&["subscribe", "list"]);
    run.assert_code(2)
        .assert_stderr("auditsync.toml")
        .assert_stderr("line 7")
        .assert_stderr("Windows-1252")
        .assert_stderr("save it as UTF-8");
}

#[test]
fn a_key_under_the_wrong_table_is_explained() {
    let env = TestEnv::new();
    // A [sync] key at the top level.
    refused(
        &env,
        |t| format!("concurrency = 4\n{t}"),
        &["line 1", "concurrency", "[sync]"],
    );
    refused(
        &env,
        |t| format!("{t}time_interval = 1\n"),
        &["line 7", "time_interval", "[sync]"],
    );
    // A top-level key after [sync].
    let tenant = env.sim.spec().tenant_id.clone();
    refused(
        &env,
        |t| {
            let without: String = t
                .lines()
                .filter(|l| !l.starts_with("tenant_id"))
                .map(|l| format!("{l}\n"))
                .collect();
            format!("{without}[sync]\nconcurrency = 4\ntenant_id = \"{tenant}\"\n")
        },
        &["line 8", "tenant_id", "[sync]", "top"],
    );
}

#[test]
fn a_typo_in_a_key_names_the_nearest_known_one() {
    let env = TestEnv::new();
    for (extra, typo, want) in [
        ("tennant_id = \"x\"\n", "tennant_id", "tenant_id"),
        (
            "clientsecret_file = \"x\"\n",
            "clientsecret_file",
            "client_secret_file",
        ),
        ("[sync]\nconcurency = 4\n", "concurency", "concurrency"),
        (
            "[sync]\nContent_Types = []\n",
            "Content_Types",
            "content_types",
        ),
        ("[synk]\nconcurrency = 4\n", "synk", "[sync]"),
        ("datbase = \"a.db\"\n", "datbase", "database"),
    ] {
        refused(
            &env,
            |t| format!("{t}{extra}"),
            &[typo, &format!("did you mean {want}")],
        );
    }
}

#[test]
fn an_authority_with_the_tenant_appended_is_explained() {
    let env = TestEnv::new();
    let tenant = env.sim.spec().tenant_id.clone();
    let base = env.base();
    for tail in [
        tenant.clone(),
        format!("{tenant}/"),
        "contoso.onmicrosoft.com".to_owned(),
        "common".to_owned(),
        format!("{tenant}/oauth2/token"),
        format!("{tenant}/oauth2/v2.0/token"),
    ] {
        refused(
            &env,
            |t| {
                t.replace(
                    &format!("authority = \"{base}\""),
                    &format!("authority = \"{base}/{tail}\""),
                )
            },
            &[
                "authority",
                "line 4",
                &format!("authority = \"{base}\""),
                "tenant",
            ],
        );
    }
    // The commercial login host the same way.
    refused(
        &env,
        |t| {
            t.replace(
                &format!("authority = \"{base}\""),
                &format!("authority = \"https://login.microsoftonline.com/{tenant}\""),
            )
        },
        &["authority = \"https://login.microsoftonline.com\""],
    );
    // And an audience with the API's path.
    refused(
        &env,
        |t| {
            t.replace(
                &format!("audience = \"{base}\""),
                &format!("audience = \"{base}/api/v1.0/{tenant}/activity/feed\""),
            )
        },
        &["audience", "line 5", &format!("audience = \"{base}\"")],
    );
}

/// Runs the binary, killing it (and failing) if it is still running after `limit`: a guard so that a
/// hang fails the test instead of holding it forever. Not a measure of speed.
fn run_guarded(env: &TestEnv, args: &[&str], limit: std::time::Duration) -> crate::common::Run {
    let mut cmd = env.cmd();
    cmd.args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            // Leave no stray process behind the failure (the secret command writes its child's pid).
            if let Ok(pid) = std::fs::read_to_string(env.path("child.pid")) {
                let _ = std::process::Command::new("kill").arg(pid.trim()).status();
            }
            panic!("auditsync {args:?} still ran after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let run = crate::common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    env.assert_nothing_leaked(&run.all());
    run
}

/// Whether a process runs (a zombie waiting for its parent does not count).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_secret_command_that_hangs_is_stopped_with_its_children() {
    let env = TestEnv::new();
    // A shell that starts a child and waits on it, as a vault CLI waiting for the network would.
    env.write(
        "auditsync.toml",
        &env.config_without_secret(
            "client_secret_command = \"sleep 100001 & echo $! > child.pid; wait\"\n\
             client_secret_command_timeout = 1\n",
        ),
    );
    for args in [&["sync"][..], &["subscribe", "list"], &["doctor"]] {
        let run = run_guarded(&env, args, std::time::Duration::from_secs(60));
        assert!(run.code == 1, "{args:?}: exit 1\n{}", run.all());
        // `doctor` reports on stdout, the others on stderr.
        for needle in [
            "client_secret_command",
            "did not finish within 1 s",
            "stopped",
        ] {
            assert!(
                run.all().contains(needle),
                "{args:?}: {needle}\n{}",
                run.all()
            );
        }
        let pid: u32 = std::fs::read_to_string(env.path("child.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The kill is sent before auditsync exits; the child's end is reaped by init soon after.
        let mut gone = false;
        for _ in 0..100 {
            if !running(pid) {
                gone = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(gone, "{args:?}: the command's child {pid} still runs");
    }
    // One that prints without end is stopped once it is past any secret's length.
    env.write(
        "auditsync.toml",
        &env.config_without_secret(
            "client_secret_command = \"yes\"\nclient_secret_command_timeout = 3600\n",
        ),
    );
    let run = run_guarded(
        &env,
        &["subscribe", "list"],
        std::time::Duration::from_secs(60),
    );
    run.assert_code(1).assert_stderr("printed more than 64 KiB");
    assert_eq!(env.sim.stats().token_requests, 0);
}

#[test]
fn the_secret_command_timeout_is_validated() {
    let env = TestEnv::new();
    for bad in ["0", "3601", "\"soon\"", "-1"] {
        env.write(
            "auditsync.toml",
            &env.config_without_secret(&format!(
                "client_secret_command = \"true\"\nclient_secret_command_timeout = {bad}\n"
            )),
        );
        env.run(&["subscribe", "list"])
            .assert_code(2)
            .assert_stderr("client_secret_command_timeout");
    }
    env.write(
        "auditsync.toml",
        &env.config_without_secret("client_secret_command = \"true\"\n"),
    );
    env.run_with(
        &["subscribe", "list"],
        &[("AUDITSYNC_CLIENT_SECRET_COMMAND_TIMEOUT", "forever")],
    )
    .assert_code(2)
    .assert_stderr("AUDITSYNC_CLIENT_SECRET_COMMAND_TIMEOUT")
    .assert_stderr("from 1 to 3600");
}

#[test]
fn secret_source_failures_name_the_source_and_the_fix() {
    let env = TestEnv::new();
    // An empty secret file: the file is named, not the configuration.
    env.write("secret.txt", "\n  \n");
    env.write(
        "auditsync.toml",
        &env.config_without_secret("client_secret_file = \"secret.txt\"\n"),
    );
    let run = env.run(&["subscribe", "list"]);
    run.assert_code(2)
        .assert_stderr("client secret file")
        .assert_stderr("secret.txt")
        .assert_stderr("is empty");
    // A command that prints nothing.
    env.write(
        "auditsync.toml",
        &env.config_without_secret("client_secret_command = \"true\"\n"),
    );
    env.run(&["subscribe", "list"])
        .assert_code(2)
        .assert_stderr("client_secret_command")
        .assert_stderr("printed nothing");
    // Not found on PATH (cron's PATH is /usr/bin:/bin): exit 127, explained.
    env.write(
        "auditsync.toml",
        &env.config_without_secret(
            "client_secret_command = \"az-not-installed-here keyvault secret show\"\n",
        ),
    );
    env.run(&["subscribe", "list"])
        .assert_code(1)
        .assert_stderr("127")
        .assert_stderr("command not found")
        .assert_stderr("PATH=/usr/bin:/bin")
        .assert_stderr("absolute path");
    // Found but not executable: exit 126, explained.
    env.write("get-secret.sh", "#!/bin/sh\necho x\n");
    set_mode(&env.path("get-secret.sh"), 0o600);
    env.write(
        "auditsync.toml",
        &env.config_without_secret("client_secret_command = \"./get-secret.sh\"\n"),
    );
    env.run(&["subscribe", "list"])
        .assert_code(1)
        .assert_stderr("126")
        .assert_stderr("chmod +x");
    assert_eq!(env.sim.stats().token_requests, 0);
}

#[cfg(target_os = "linux")]
#[test]
fn a_secret_command_stopped_by_sigterm_leaves_no_child_running() {
    let env = TestEnv::new();
    env.write(
        "auditsync.toml",
        &env.config_without_secret(
            "client_secret_command = \"sleep 100002 & echo $! > child.pid; wait\"\n\
             client_secret_command_timeout = 3600\n",
        ),
    );
    for command in [
        &["sync"][..],
        &["doctor"],
        &["subscribe", "list"],
        &["subscribe", "start"],
    ] {
        let _ = std::fs::remove_file(env.path("child.pid"));
        sigterm_while_the_secret_command_runs(&env, command);
    }
}

#[cfg(target_os = "linux")]
fn sigterm_while_the_secret_command_runs(env: &TestEnv, args: &[&str]) {
    let command = args.join(" ");
    let mut child = env
        .cmd()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let pid: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(env.path("child.pid"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the command never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    #[allow(unsafe_code, reason = "kill(2) on our own child")]
    let sent = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(sent, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            panic!("{command} did not stop on SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{command}: {out:?}");
    let mut gone = false;
    for _ in 0..100 {
        if !running(pid) {
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if !gone {
        #[allow(unsafe_code, reason = "kill(2) on the leftover the test started")]
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL)
        };
    }
    assert!(
        gone,
        "{command}: the secret command's child {pid} still runs"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_secret_file_that_is_a_pipe_a_device_or_huge_is_refused_without_blocking() {
    let env = TestEnv::new();
    let fifo = env.path("secret.fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    env.write("big.txt", &"x".repeat(1 << 20));
    for (file, says) in [
        (
            fifo.to_str().unwrap(),
            "is a named pipe, not a regular file",
        ),
        ("/dev/zero", "is a character device, not a regular file"),
        (
            "big.txt",
            "is 1048576 bytes; a client secret is under 100 characters",
        ),
    ] {
        env.write(
            "auditsync.toml",
            &env.config_without_secret(&format!("client_secret_file = {file:?}\n")),
        );
        for args in [&["sync"][..], &["subscribe", "list"]] {
            let run = run_guarded(&env, args, std::time::Duration::from_secs(30));
            run.assert_code(2)
                .assert_stderr("cannot read the client secret file")
                .assert_stderr(file)
                .assert_stderr(says);
        }
    }
    assert_eq!(env.sim.stats().token_requests, 0);
    assert!(!env.path("auditsync.db").exists());
}

/// A secret file saved by Notepad or PowerShell 5: a UTF-8 byte-order mark and CRLF, or "Unicode"
/// (UTF-16 with its mark), is read as the secret it holds (fresh-clone trial: the mark made Entra
/// refuse the secret, and UTF-16 was "not UTF-8 text").
#[test]
fn a_secret_file_saved_by_windows_tools_is_read() {
    let env = TestEnv::new();
    let secret = env.secret();
    let utf16 = |big: bool| -> Vec<u8> {
        let mut bytes = if big {
            vec![0xFE, 0xFF]
        } else {
            vec![0xFF, 0xFE]
        };
        for unit in format!("{secret}\r\n").encode_utf16() {
            let pair = if big {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            };
            bytes.extend_from_slice(&pair);
        }
        bytes
    };
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(format!("{secret}\r\n").as_bytes());
    for (name, bytes) in [
        ("bom.txt", bom),
        ("utf16le.txt", utf16(false)),
        ("utf16be.txt", utf16(true)),
    ] {
        std::fs::write(env.path(name), bytes).unwrap();
        crate::common::set_mode(&env.path(name), 0o600);
        env.write(
            "auditsync.toml",
            &env.config_without_secret(&format!("client_secret_file = \"{name}\"\n")),
        );
        let run = env.run(&["subscribe", "list"]);
        run.assert_code(0);
        assert!(!run.all().contains(&secret), "{name}");
    }
}
