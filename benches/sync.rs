//! End-to-end benchmark of `auditsync sync` against the simulated service running in its own process
//! on 127.0.0.1, with the figures issue 5 asks for. Run with `cargo bench --bench sync` (add
//! `-- --quick` for a smaller tenant); BENCHMARKS.md explains the method and records results.
//!
//! Scenarios:
//! 1. a day of a large tenant: 2,000 blobs × 500 records (about 1 million records, 1.5 GB of JSON),
//!    created over the last 23 hours, synced into a fresh database: time, records a second, peak RSS,
//!    HTTP requests by route, blobs fetched more than once;
//! 2. the same window again (the hourly cron case): time and blob fetches;
//! 3. the lower bound: a minimal pipeline in this file that only lists and fetches the same blobs,
//!    parses the fields sync needs and inserts the launches into SQLite; and the ratio;
//! 4. 4,000 blobs: peak RSS must not grow with the window;
//! 5. a slow, rate-limited service: each blob answered after 100 ms, at most C = 100 API requests in any
//!    W = 10 s; a backfill of 3C blobs; time against the fastest schedule the cap allows, and the share
//!    of requests refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "test code: a panic is the failure report, and the results are printed"
)]

use std::borrow::Cow;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use auditsync_simulator::Stats;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::value::RawValue;

fn main() {
    // reqwest is built without a default TLS provider (see auditsync-core's `net`).
    auditsync_core::net::install_tls_provider();
    let quick = std::env::args().any(|a| a == "--quick");
    let dir = tempfile::tempdir().expect("temp dir");
    let (blobs_per_hour, records) = if quick { (20, 200) } else { (87, 500) };

    println!("## auditsync sync, end to end (simulator in its own process on 127.0.0.1)\n");
    let big = Sim::start(
        dir.path(),
        "big",
        &[
            "--hours",
            "23",
            "--blobs-per-hour",
            &blobs_per_hour.to_string(),
            "--records-per-blob",
            &records.to_string(),
            "--prerender",
        ],
    );
    big.subscribe();
    let first = big.sync("first.db");
    let stats = big.stats();
    let again = big.sync("first.db");
    let stats_again = big.stats();
    let bound = lower_bound(&big, &dir.path().join("lower.db"));

    let records_seen = first.summary.records_seen as f64;
    println!("| run | blobs | records | seconds | records/s | peak RSS | requests |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| sync, fresh database | {} | {} | {:.2} | {:.0} | {} MB | {} |",
        first.summary.blobs_fetched,
        first.summary.records_seen,
        first.seconds,
        records_seen / first.seconds,
        first.max_rss_kb / 1024,
        first.summary.requests.sent
    );
    println!(
        "| lower bound (fetch, parse, insert) | {} | {} | {:.2} | {:.0} | | {} |",
        bound.blobs,
        bound.records,
        bound.seconds,
        bound.records as f64 / bound.seconds,
        bound.requests
    );
    println!(
        "| sync again, same window | {} | 0 | {:.2} | | {} MB | {} |",
        again.summary.blobs_fetched,
        again.seconds,
        again.max_rss_kb / 1024,
        again.summary.requests.sent
    );
    println!(
        "\nratio sync / lower bound: {:.2}",
        first.seconds / bound.seconds
    );
    let twice = stats
        .blob_fetches_by_content_id
        .values()
        .filter(|n| **n > 1)
        .count();
    println!(
        "first run requests by route: {} token, {} listing, {} blob ({} blobs fetched more than once)",
        stats.token_requests, stats.api_requests.content, stats.api_requests.blob, twice
    );
    println!(
        "second run: {} listing requests, {} blob fetches",
        stats_again.api_requests.content - stats.api_requests.content,
        stats_again.api_requests.blob - stats.api_requests.blob
    );
    drop(big);

    let double = if quick { 40 } else { 174 };
    let large = Sim::start(
        dir.path(),
        "large",
        &[
            "--hours",
            "23",
            "--blobs-per-hour",
            &double.to_string(),
            "--records-per-blob",
            &records.to_string(),
            "--prerender",
        ],
    );
    large.subscribe();
    let run = large.sync("large.db");
    println!(
        "\nflat memory: {} blobs, {} records in {:.2} s, peak RSS {} MB (against {} MB for {} blobs)",
        run.summary.blobs_fetched,
        run.summary.records_seen,
        run.seconds,
        run.max_rss_kb / 1024,
        first.max_rss_kb / 1024,
        first.summary.blobs_fetched
    );
    drop(large);

    // 3C = 300 blobs over 20 hours (15 an hour), each answered after 100 ms; C = 100 in any W = 10 s.
    let (capacity, window) = (100u32, 10.0f64);
    let slow = Sim::start(
        dir.path(),
        "slow",
        &[
            "--hours",
            "20",
            "--blobs-per-hour",
            "15",
            "--records-per-blob",
            "50",
            "--blob-delay-ms",
            "100",
            "--rate-limit",
            &format!("{capacity}/{window}"),
        ],
    );
    slow.subscribe();
    let before = slow.stats();
    let run = slow.sync("slow.db");
    let after = slow.stats();
    let requests = run.summary.requests.sent as f64;
    let refused = (after.throttled - before.throttled) as f64;
    // The fastest schedule the cap allows: C requests per W, the first C at once.
    let fastest = ((requests - refused) / capacity as f64).ceil().max(1.0) * window - window
        + capacity.min(8) as f64 * 0.1;
    println!(
        "\nrate-limited backfill: {} blobs, {} requests ({} refused, {:.0}%), {:.1} s; fastest schedule ≈ {:.1} s; ratio {:.2}",
        run.summary.blobs_fetched,
        requests,
        refused,
        100.0 * refused / requests,
        run.seconds,
        fastest,
        run.seconds / fastest
    );
}

#[derive(Deserialize)]
struct Requests {
    sent: u64,
}

#[derive(Deserialize)]
struct Summary {
    blobs_fetched: u64,
    records_seen: u64,
    requests: Requests,
}

struct Measured {
    seconds: f64,
    max_rss_kb: i64,
    summary: Summary,
}

/// A simulator process and the folder with its configuration.
struct Sim {
    child: Child,
    dir: PathBuf,
    base: String,
}

impl Sim {
    fn start(root: &Path, name: &str, args: &[&str]) -> Sim {
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

    fn run(&self, args: &[&str]) -> std::process::Output {
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

    fn subscribe(&self) {
        assert!(self.run(&["-q", "subscribe", "start"]).status.success());
    }

    /// Runs `sync --json` into `database`, measuring wall time and peak RSS.
    #[allow(clippy::zombie_processes)] // reaped by wait4 below, which also reports the peak RSS
    fn sync(&self, database: &str) -> Measured {
        let started = Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_auditsync"))
            .args([
                "--config",
                self.dir.join("auditsync.toml").to_str().unwrap(),
                "-q",
                "sync",
                "--json",
            ])
            .env("AUDITSYNC_DATABASE", self.dir.join(database))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
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
        let seconds = started.elapsed().as_secs_f64();
        let summary: Summary =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        Measured {
            seconds,
            max_rss_kb: usage.ru_maxrss,
            summary,
        }
    }

    fn stats(&self) -> Stats {
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

struct Bound {
    blobs: u64,
    records: u64,
    requests: u64,
    seconds: f64,
}

#[derive(Deserialize)]
struct Config {
    tenant_id: String,
    client_id: String,
    client_secret: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    content_uri: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Record<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    creation_time: Cow<'a, str>,
    #[serde(borrow)]
    operation: Cow<'a, str>,
    #[serde(borrow, default)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    app_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    property_collection: Vec<Property<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Property<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    value: Cow<'a, str>,
}

type Row = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
);

/// The minimal pipeline: token, listing pages in order, 8 blobs at a time, a typed parse of every
/// record, launches inserted in one transaction. No ledger, no retries, no pacing, no watermark.
fn lower_bound(sim: &Sim, database: &Path) -> Bound {
    let config: Config =
        toml::from_str(&std::fs::read_to_string(sim.dir.join("auditsync.toml")).unwrap()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let started = Instant::now();
    let (blobs, records, requests) = rt.block_on(async {
        let http = reqwest::Client::new();
        let token: serde_json::Value = http
            .post(format!("{}/{}/oauth2/v2.0/token", sim.base, config.tenant_id))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "client_credentials")
                    .append_pair("client_id", &config.client_id)
                    .append_pair("client_secret", &config.client_secret)
                    .append_pair("scope", &format!("{}/.default", sim.base))
                    .finish(),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
        let now = chrono::Utc::now();
        let mut uris = Vec::new();
        let mut requests = 0u64;
        let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
        for hour in 0..24 {
            let start = now - chrono::TimeDelta::hours(24 - hour);
            let mut url = Some(format!(
                "{}/api/v1.0/{}/activity/feed/subscriptions/content?contentType=Audit.General&startTime={}&endTime={}&PublisherIdentifier={}",
                sim.base, config.tenant_id, fmt(start), fmt(start + chrono::TimeDelta::hours(1)), config.tenant_id
            ));
            while let Some(u) = url.take() {
                let resp = http.get(&u).header("Authorization", &bearer).send().await.unwrap();
                requests += 1;
                url = resp.headers().get("NextPageUri").map(|v| format!("{}&PublisherIdentifier={}", v.to_str().unwrap(), config.tenant_id));
                let items: Vec<Item> = resp.json().await.unwrap();
                uris.extend(items.into_iter().map(|i| i.content_uri));
            }
        }
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Row>>(16);
        let db_path = database.to_owned();
        let writer = std::thread::spawn(move || {
            let mut db = rusqlite::Connection::open(db_path).unwrap();
            db.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE audit_events (id TEXT PRIMARY KEY, creation_time TEXT NOT NULL, operation TEXT NOT NULL, user_id TEXT, app_id TEXT, raw TEXT NOT NULL)").unwrap();
            let txn = db.transaction().unwrap();
            {
                let mut insert = txn.prepare("INSERT OR IGNORE INTO audit_events VALUES (?1, ?2, ?3, ?4, ?5, ?6)").unwrap();
                for rows in rx {
                    for r in rows {
                        insert.execute(rusqlite::params![r.0, r.1, r.2, r.3, r.4, r.5]).unwrap();
                    }
                }
            }
            txn.commit().unwrap();
        });
        let blobs = uris.len() as u64;
        let records: u64 = futures_util::stream::iter(uris)
            .map(|uri| {
                let http = http.clone();
                let bearer = bearer.clone();
                let tx = tx.clone();
                let tenant = config.tenant_id.clone();
                async move {
                    let body = http
                        .get(format!("{uri}?PublisherIdentifier={tenant}"))
                        .header("Authorization", bearer)
                        .send()
                        .await
                        .unwrap()
                        .bytes()
                        .await
                        .unwrap();
                    tokio::task::spawn_blocking(move || {
                        let raws: Vec<&RawValue> = serde_json::from_slice(&body).unwrap();
                        let count = raws.len() as u64;
                        let rows: Vec<Row> = raws
                            .iter()
                            .filter_map(|raw| {
                                let r: Record = serde_json::from_str(raw.get()).unwrap();
                                if r.operation != "LaunchPowerApp" {
                                    return None;
                                }
                                let app = r
                                    .property_collection
                                    .iter()
                                    .find(|p| p.name == "powerplatform.analytics.resource.power_app.id")
                                    .map(|p| p.value.to_string())
                                    .or(r.app_name.map(Cow::into_owned));
                                Some((
                                    r.id.into_owned(),
                                    r.creation_time.into_owned(),
                                    r.operation.into_owned(),
                                    r.user_id.map(Cow::into_owned),
                                    app,
                                    raw.get().to_owned(),
                                ))
                            })
                            .collect();
                        tx.send(rows).unwrap();
                        count
                    })
                    .await
                    .unwrap()
                }
            })
            .buffer_unordered(8)
            .fold(0, |acc, n| async move { acc + n })
            .await;
        drop(tx);
        writer.join().unwrap();
        (blobs, records, requests + blobs + 1)
    });
    Bound {
        blobs,
        records,
        requests,
        seconds: started.elapsed().as_secs_f64(),
    }
}
