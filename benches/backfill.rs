//! End-to-end benchmark of `auditsync backfill` through the Graph audit log query API (issue 12),
//! against the simulated service in its own process on 127.0.0.1. Run with `cargo bench --bench
//! backfill` (add `-- --quick` for 30 days instead of 180); BENCHMARKS.md explains the method and
//! records results.
//!
//! The tenant: 20,000 launches a day (32 Audit.General blobs an hour × 26 records, every record a
//! launch: 19,968 a day), with 181 days of audit log. Every Graph query succeeds no sooner than
//! `D` = 3 s after its creation (the real service takes minutes; a benchmark cannot wait minutes 180
//! times, and the floor below scales with `D`). The client's configuration is the one
//! `auditsync simulator --write-config` writes (`[graph] poll_interval = "200ms"`), with `[graph]
//! in_flight` set to 5 (the default) or 10 (the service's typical running limit) and
//! `daily_submissions = 190` (the default, enough for the 180 one-day windows), and `[sync]
//! requests_per_minute = 60000` as in `benches/sync.rs` (the simulated service sets no quota).
//!
//! Scenarios, each against a fresh simulator (so each has the tenant's whole daily allowance):
//! 1. `backfill --from 180d` into a fresh database with 5 queries in flight, then the same command
//!    again (everything loaded: it must submit nothing);
//! 2. the same backfill with 10 in flight.
//!
//! Measured: wall time, user and system CPU and peak RSS of the auditsync process (`wait4`), the
//! summary's requests, windows, records read and events new, and the simulator's Graph requests by
//! route (`/_sim/stats`). The reference is the fewest rounds the concurrency allows: each query
//! cannot be read before `D` has passed, so `ceil(windows / in_flight)` rounds take at least that
//! many times `D`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "test code: a panic is the failure report, and the results are printed"
)]

mod common;

use std::process::Command;

use auditsync_simulator::Stats;
use common::{Cost, Sim, measure};
use serde::Deserialize;

/// Audit.General blobs an hour and records a blob: 32 × 26 × 24 = 19,968 launches a day.
const BLOBS_PER_HOUR: u32 = 32;
/// Records a blob (every one a launch: `--launch-share 1.0`).
const RECORDS_PER_BLOB: u32 = 26;
/// How long a Graph query takes to succeed in the simulator, in milliseconds.
const QUERY_DELAY_MS: u64 = 3_000;
/// `[graph] daily_submissions` (the default): at least the 180 windows of a 180-day backfill.
const DAILY_SUBMISSIONS: u32 = 190;

fn main() {
    // reqwest is built without a default TLS provider (see auditsync-core's `net`).
    auditsync_core::net::install_tls_provider();
    let quick = std::env::args().any(|a| a == "--quick");
    let days: u32 = if quick { 30 } else { 180 };
    let dir = tempfile::tempdir().expect("temp dir");
    let per_day = 24 * BLOBS_PER_HOUR * RECORDS_PER_BLOB;
    println!(
        "## auditsync backfill --from {days}d through the Graph API (simulator in its own process on 127.0.0.1)\n"
    );
    println!(
        "tenant: {BLOBS_PER_HOUR} blobs an hour × {RECORDS_PER_BLOB} records, every record a launch: {per_day} launches a day; \
         each query succeeds {QUERY_DELAY_MS} ms after its creation; load average before: {}\n",
        load_average()
    );
    println!(
        "| run | in flight | windows | rounds | floor s | wall s | wall / floor | wall − floor s | user s | sys s | peak RSS | records read | events new | records/s | records/s beyond the floor | requests (summary) | create | get | list | records |"
    );
    println!(
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let mut notes = Vec::new();
    for in_flight in [5usize, 10] {
        let sim = start(dir.path(), in_flight, days);
        let first = sim.backfill("backfill.db", days);
        println!("{}", first.row("fresh database", in_flight));
        first.check(days, &mut notes);
        if in_flight == 5 {
            let again = sim.backfill("backfill.db", days);
            println!("{}", again.row("again, everything loaded", in_flight));
            if again.summary.submitted != 0 || again.summary.outcome != "complete" {
                notes.push(format!(
                    "the rerun submitted {} queries (outcome {})",
                    again.summary.submitted, again.summary.outcome
                ));
            }
        }
        sim.remove("backfill.db");
    }
    println!("\nload average after: {}", load_average());
    for n in &notes {
        println!("NOTE: {n}");
    }
}

/// A simulator with `days` + 1 days of audit log, and its configuration with `in_flight` queries.
fn start(root: &std::path::Path, in_flight: usize, days: u32) -> Sim {
    let sim = Sim::start(
        root,
        &format!("in-flight-{in_flight}"),
        &[
            "--history-days",
            &(days + 1).to_string(),
            "--hours",
            "24",
            "--blobs-per-hour",
            &BLOBS_PER_HOUR.to_string(),
            "--records-per-blob",
            &RECORDS_PER_BLOB.to_string(),
            "--launch-share",
            "1.0",
            "--graph-query-delay-ms",
            &QUERY_DELAY_MS.to_string(),
        ],
    );
    let config = sim.dir.join("auditsync.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("\n[graph]\n"), "{text}");
    let text = text.replacen(
        "\n[graph]\n",
        &format!("\n[graph]\nin_flight = {in_flight}\ndaily_submissions = {DAILY_SUBMISSIONS}\n"),
        1,
    );
    std::fs::write(&config, text).unwrap();
    sim
}

#[derive(Deserialize)]
struct Requests {
    sent: u64,
}

/// The fields of `backfill --json`'s summary the benchmark reads.
#[derive(Deserialize)]
struct Summary {
    outcome: String,
    windows: u64,
    windows_loaded_before: u64,
    queries_read: u64,
    windows_split: u64,
    records_read: u64,
    events_new: u64,
    submitted: u64,
    submissions_left: u64,
    requests: Requests,
    seconds: f64,
}

/// One measured backfill.
struct Run {
    cost: Cost,
    summary: Summary,
    /// The simulator's counters before and after it.
    before: Stats,
    after: Stats,
    /// The simulator's CPU time (user + system) during it, in seconds.
    sim_cpu: f64,
}

impl Sim {
    /// Runs `backfill --from {days}d --json` into `database`, measuring it (see [`measure`]).
    fn backfill(&self, database: &str, days: u32) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_auditsync"));
        cmd.args([
            "--config",
            self.dir.join("auditsync.toml").to_str().unwrap(),
            "-q",
            "backfill",
            "--from",
            &format!("{days}d"),
            "--json",
        ])
        .env("AUDITSYNC_DATABASE", self.dir.join(database));
        let before = self.stats();
        let cpu = self.cpu_seconds();
        let (cost, text) = measure(cmd);
        let sim_cpu = self.cpu_seconds() - cpu;
        let after = self.stats();
        let summary: Summary =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        Run {
            cost,
            summary,
            before,
            after,
            sim_cpu,
        }
    }
}

impl Run {
    /// The table's row: the floor is `ceil(windows queried / in_flight)` rounds of the query delay.
    fn row(&self, name: &str, in_flight: usize) -> String {
        let s = &self.summary;
        let (b, a) = (&self.before.graph_requests, &self.after.graph_requests);
        let queried = s.windows - s.windows_loaded_before;
        let rounds = queried.div_ceil(in_flight as u64);
        let floor = rounds as f64 * QUERY_DELAY_MS as f64 / 1000.0;
        let wall = self.cost.seconds;
        let (ratio, beyond, beyond_rate) = if floor > 0.0 {
            (
                format!("{:.2}", wall / floor),
                format!("{:.1}", wall - floor),
                format!("{:.0}", s.records_read as f64 / (wall - floor)),
            )
        } else {
            (String::new(), String::new(), String::new())
        };
        format!(
            "| {name} | {in_flight} | {} ({} loaded before) | {rounds} | {floor:.1} | {wall:.1} | {ratio} | {beyond} | {:.1} | {:.1} | {} MB | {} | {} | {:.0} | {beyond_rate} | {} | {} | {} | {} | {} |",
            s.windows,
            s.windows_loaded_before,
            self.cost.user,
            self.cost.sys,
            self.cost.max_rss_kb / 1024,
            s.records_read,
            s.events_new,
            s.records_read as f64 / wall,
            s.requests.sent,
            a.create - b.create,
            a.get - b.get,
            a.list - b.list,
            a.records - b.records,
        )
    }

    /// What a fresh backfill must show: complete, every window submitted once, every record new.
    fn check(&self, days: u32, notes: &mut Vec<String>) {
        let s = &self.summary;
        let creates =
            u64::from(self.after.graph_requests.create - self.before.graph_requests.create);
        if s.outcome != "complete" {
            notes.push(format!("{days}-day backfill: outcome {}", s.outcome));
        }
        if s.submitted != s.windows || creates != s.windows || s.queries_read != s.windows {
            notes.push(format!(
                "{} windows, {} submitted, {} creates seen by the simulator, {} queries read, {} split",
                s.windows, s.submitted, creates, s.queries_read, s.windows_split
            ));
        }
        if s.events_new != s.records_read {
            notes.push(format!(
                "{} records read but {} events new on a fresh database",
                s.records_read, s.events_new
            ));
        }
        let client_cpu = self.cost.user + self.cost.sys;
        println!(
            "  (summary: {:.1} s by its own clock, {} submissions left of {DAILY_SUBMISSIONS}; {} token requests; \
             CPU: auditsync {client_cpu:.1} s ({:.1} µs a record), simulator {:.1} s ({:.1} µs a record), \
             together {:.2} of the 2 cores over the wall time)",
            s.seconds,
            s.submissions_left,
            self.after.token_requests - self.before.token_requests,
            client_cpu * 1e6 / s.records_read.max(1) as f64,
            self.sim_cpu,
            self.sim_cpu * 1e6 / s.records_read.max(1) as f64,
            (client_cpu + self.sim_cpu) / self.cost.seconds
        );
    }
}

/// The 1-minute load average, to show how busy the shared machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().next().unwrap_or("?").to_owned())
        .unwrap_or_else(|_| "?".into())
}
