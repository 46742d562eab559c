//! The test context: a simulated tenant, a temporary folder, and the binary run with a clean environment.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use auditsync_simulator::{SimHandle, SimSpec, Simulator};

pub struct TestEnv {
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
}

/// A finished run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Everything the run printed, for leak checks and messages.
    pub fn all(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "unexpected exit code\n{}", self.all());
        self
    }

    #[track_caller]
    pub fn assert_stderr(&self, needle: &str) -> &Run {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{}",
            self.all()
        );
        self
    }

    #[track_caller]
    pub fn assert_stdout(&self, needle: &str) -> &Run {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{}",
            self.all()
        );
        self
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv::with(|_| {})
    }

    /// A simulated tenant whose spec `tweak` may change first.
    pub fn with(tweak: impl FnOnce(&mut SimSpec)) -> TestEnv {
        let mut spec = SimSpec::new(7);
        tweak(&mut spec);
        let sim = Simulator::start_background(spec).expect("start the simulator");
        TestEnv {
            sim,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn base(&self) -> String {
        self.sim
            .base_url()
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }

    pub fn secret(&self) -> String {
        self.sim.spec().client_secret.clone()
    }

    /// A configuration for the simulated tenant, without any secret source; `extra` is appended.
    pub fn config_without_secret(&self, extra: &str) -> String {
        let spec = self.sim.spec();
        format!(
            "tenant_id = \"{}\"\nclient_id = \"{}\"\nauthority = \"{}\"\naudience = \"{}\"\ndatabase = \"auditsync.db\"\n{extra}",
            spec.tenant_id,
            spec.client_id,
            self.base(),
            self.base()
        )
    }

    /// The same with the secret inline, written to ./auditsync.toml in the test folder (mode 600).
    pub fn write_config(&self, extra: &str) -> PathBuf {
        let text = format!(
            "client_secret = \"{}\"\n{}",
            self.secret(),
            self.config_without_secret(extra)
        );
        self.write("auditsync.toml", &text)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        set_mode(&path, 0o600);
        path
    }

    /// The binary, run in the test folder with nothing from the caller's environment but PATH.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_auditsync"));
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .current_dir(self.dir.path());
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.cmd();
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let run = Run::from(c.output().expect("run auditsync"));
        self.assert_nothing_leaked(&run.all());
        run
    }

    /// Every run of every test goes through this: neither the client secret nor any token the
    /// simulator issued may appear in what auditsync printed.
    #[track_caller]
    pub fn assert_nothing_leaked(&self, printed: &str) {
        let secret = self.secret();
        assert!(
            !printed.contains(&secret),
            "the client secret was printed:\n{printed}"
        );
        for token in self.sim.stats().issued_tokens {
            let signature = token.rsplit('.').next().unwrap_or(&token).to_owned();
            assert!(
                !printed.contains(&signature),
                "an access token was printed:\n{printed}"
            );
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

#[cfg(unix)]
pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(not(unix))]
pub fn set_mode(_path: &Path, _mode: u32) {}

/// The JSON a run printed on stdout (a sync's `--json` summary, a report...).
pub fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("JSON on stdout: {e}\n{}", run.all()))
}

/// A time in a JSON summary.
pub fn time(v: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .to_utc()
}

/// The ids in the test folder's `auditsync.db`.
pub fn stored_ids(env: &TestEnv) -> BTreeSet<String> {
    let db = rusqlite::Connection::open(env.path("auditsync.db")).unwrap();
    let mut stmt = db.prepare("SELECT id FROM audit_events").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Every event in the test folder's `auditsync.db` with its raw record read back (through the store's
/// own export: the raw records are compressed in the table).
pub fn stored_events(env: &TestEnv) -> Vec<auditsync_core::store::ExportedEvent> {
    let store = auditsync_core::store::open_read(&env.path("auditsync.db")).unwrap();
    let mut events = Vec::new();
    store
        .export((None, None), &mut |e| {
            events.push(e.clone());
            Ok(())
        })
        .unwrap();
    events
}

/// The launches a correct sync stores for the window its summary names.
pub fn truth(env: &TestEnv, summary: &serde_json::Value) -> BTreeSet<String> {
    env.sim.ground_truth(
        "Audit.General",
        time(&summary["window_start"]),
        time(&summary["window_end"]),
        &["LaunchPowerApp"],
    )
}
