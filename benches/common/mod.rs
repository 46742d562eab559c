//! What the end-to-end benchmarks share (`mod common;` in `benches/sync.rs` and
//! `benches/backfill.rs`): the simulated service in its own process ([`Sim`]), and a child process
//! measured by `wait4` ([`measure`]: wall time, user and system CPU, peak RSS, bytes written).

#![allow(
    dead_code,
    reason = "each bench uses its own part of what is shared here"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use auditsync_simulator::Stats;

/// A child process's wall time, CPU, peak RSS and bytes written to the file system.
#[derive(Clone, Copy)]
pub(crate) struct Cost {
    pub(crate) seconds: f64,
    pub(crate) user: f64,
    pub(crate) sys: f64,
    pub(crate) max_rss_kb: i64,
    /// `write_bytes` of `/proc/self/io` across the child's life: a reaped child's I/O is added to its
    /// parent's, and the benchmark writes nothing meanwhile.
    pub(crate) written: u64,
}

/// This process's `write_bytes` so far (its reaped children's included).
pub(crate) fn write_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Runs `cmd` to its end, measuring it; returns its stdout.
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which also reports the peak RSS
pub(crate) fn measure(mut cmd: Command) -> (Cost, String) {
    // The previous run's dirty pages are written out first, so that no run is slowed by the kernel
    // flushing (or throttling it for) an earlier one's writes.
    let _ = Command::new("sync").status();
    let written = write_bytes();
    let started = Instant::now();
    let child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut text).unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value, and wait4 only writes into it.
    #[allow(unsafe_code)]
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child, not yet reaped; the pointers are valid for the call.
    #[allow(unsafe_code)]
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid);
    // An incomplete sync exits 1 and still prints its summary; the floor must succeed.
    assert!(
        status == 0 || cmd.get_program() != std::env::current_exe().unwrap().as_os_str(),
        "the floor failed"
    );
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cost = Cost {
        seconds: started.elapsed().as_secs_f64(),
        user: secs(usage.ru_utime),
        sys: secs(usage.ru_stime),
        max_rss_kb: usage.ru_maxrss,
        written: write_bytes() - written,
    };
    (cost, text)
}

/// A simulator process and the folder with its configuration.
pub(crate) struct Sim {
    child: Child,
    pub(crate) dir: PathBuf,
    pub(crate) base: String,
}

impl Sim {
    /// Removes a database and its lock, so that old databases do not fill the page cache (the next
    /// run would pay for reclaiming it).
    pub(crate) fn remove(&self, database: &str) {
        for suffix in ["", "-wal", "-shm", ".lock"] {
            let _ = std::fs::remove_file(self.dir.join(format!("{database}{suffix}")));
        }
    }

    pub(crate) fn start(root: &Path, name: &str, args: &[&str]) -> Sim {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("auditsync.toml");
        let mut child = Command::new(env!("CARGO_BIN_EXE_auditsync"))
            .arg("simulator")
            .args(args)
            .arg("--write-config")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the simulator");
        let mut base = String::new();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines {
            let line = line.unwrap();
            if let Some(url) =
                line.strip_prefix("simulated Management Activity API and Entra ID at ")
            {
                base = url.trim_end_matches('/').to_owned();
            }
            if line.starts_with("press Ctrl-C") {
                break;
            }
        }
        // The simulated service has no quota but the one a scenario sets; let the client go.
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str("[sync]\nrequests_per_minute = 60000\n");
        std::fs::write(&config, text).unwrap();
        Sim { child, dir, base }
    }

    pub(crate) fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_auditsync"))
            .args([
                "--config",
                self.dir.join("auditsync.toml").to_str().unwrap(),
            ])
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap()
    }

    pub(crate) fn subscribe(&self) {
        assert!(self.run(&["-q", "subscribe", "start"]).status.success());
    }

    /// The simulator process's CPU time so far, user plus system, in seconds (`/proc/PID/stat`,
    /// in clock ticks of `USER_HZ`, 100 a second on Linux).
    pub(crate) fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // The fields after the command's name (which is in parentheses and may hold spaces).
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks = |i: usize| fields[i].parse::<u64>().unwrap();
        // utime and stime are the 14th and 15th fields; the state (3rd) is fields[0].
        (ticks(11) + ticks(12)) as f64 / 100.0
    }

    pub(crate) fn stats(&self) -> Stats {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            reqwest::get(format!("{}/_sim/stats", self.base))
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
