//! End-to-end benchmark of `auditsync sync` against the simulated service running in its own process
//! on 127.0.0.1, with the figures issues 5 and 11 ask for. Run with `cargo bench --bench sync` (add
//! `-- --quick` for a smaller tenant, `-- --write-path` for the floor comparison alone);
//! BENCHMARKS.md explains the method and records results.
//!
//! Scenarios:
//! 1. the floor (issue 11): [`floor_child`], the fewest steps that store the same rows as sync, run as
//!    a child process with 4, 8, 16 and 32 blobs in flight; the fastest is kept;
//! 2. a day of a large tenant: 2,000 blobs × 500 records (about 1 million records, 1.5 GB of JSON),
//!    created over the last 23 hours, synced into a fresh database, the floor and sync in turn three
//!    times: the median of each (wall time, user and system CPU, peak RSS, bytes written to the file
//!    system) and the ratios; of the last sync, records a second and the HTTP requests by route;
//! 3. the same window again (the hourly cron case): time and blob fetches;
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

mod common;

use std::borrow::Cow;
use std::path::Path;
use std::process::Command;

use common::{Cost, Sim, measure};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::value::RawValue;

fn main() {
    // reqwest is built without a default TLS provider (see auditsync-core's `net`).
    auditsync_core::net::install_tls_provider();
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--floor") {
        let a = &args[i + 1..];
        floor_child(
            Path::new(&a[0]),
            &a[1],
            Path::new(&a[2]),
            a[3].parse().unwrap(),
            a[4].parse().unwrap(),
        );
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let write_path_only = args.iter().any(|a| a == "--write-path");
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

    // The floor's settings: each concurrency in one transaction, then smaller transactions at the
    // fastest concurrency; the fastest kept.
    let mut tried: Vec<(Floor, Cost)> = Vec::new();
    let fastest = |tried: &[(Floor, Cost)]| {
        tried
            .iter()
            .min_by(|a, b| a.1.seconds.total_cmp(&b.1.seconds))
            .unwrap()
            .0
    };
    // Each setting is run twice and its faster run kept: one run of a shared machine can be 30%
    // slow, and a floor picked from noise is no floor.
    let best_of_two = |setting: Floor, tried: &mut Vec<(Floor, Cost)>| {
        let runs: Vec<Cost> = (0..2)
            .map(|i| big.floor(&format!("tune{}-{i}.db", tried.len()), setting))
            .collect();
        let best = runs
            .into_iter()
            .min_by(|a, b| a.seconds.total_cmp(&b.seconds))
            .unwrap();
        tried.push((setting, best));
    };
    for c in FLOOR_CONCURRENCY {
        best_of_two((c, usize::MAX), &mut tried);
    }
    let one_transaction = tried.clone();
    for per in FLOOR_PER_TRANSACTION {
        best_of_two((fastest(&one_transaction).0, per), &mut tried);
    }
    let setting = fastest(&tried);
    let shown = |(c, per): Floor| {
        let per = if per == usize::MAX {
            "one transaction".to_owned()
        } else {
            format!("{per} blobs a transaction")
        };
        format!("{c} in flight, {per}")
    };
    println!("floor tuning, the faster of two runs each:\n");
    for (s, cost) in &tried {
        println!(
            "- {}: {:.2} s, {:.0} MB written",
            shown(*s),
            cost.seconds,
            cost.written as f64 / 1e6
        );
    }
    println!("\nkept: {}\n", shown(setting));
    // The floor and sync in turn, three times each, each into a fresh database.
    let (mut floors, mut syncs) = (Vec::new(), Vec::new());
    let mut around = Vec::new();
    for i in 0..3 {
        floors.push(big.floor(&format!("floor{i}.db"), setting));
        around.push(big.stats());
        syncs.push(big.sync(&format!("sync{i}.db")));
        if i < 2 {
            big.remove(&format!("sync{i}.db"));
        }
    }
    let floor = median(&floors);
    let sync = median(&syncs.iter().map(|m| m.cost).collect::<Vec<_>>());
    // The hardest reference: the fastest the floor ever ran in this bench, tuning included.
    let floor_best = floors
        .iter()
        .chain(tried.iter().map(|(_, c)| c))
        .map(|c| c.seconds)
        .fold(f64::INFINITY, f64::min);
    println!("| median of 3, in turn | seconds | user s | sys s | peak RSS | written |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "{}",
        cost_row(&format!("floor ({})", shown(setting)), &floor)
    );
    println!("{}", cost_row("`sync`", &sync));
    println!(
        "\nsync / floor: {:.2}x the time, {:.2}x the bytes written (each run: sync {}; floor {})\n",
        sync.seconds / floor.seconds,
        sync.written as f64 / floor.written as f64,
        syncs
            .iter()
            .map(|m| format!("{:.2} s", m.seconds))
            .collect::<Vec<_>>()
            .join(", "),
        floors
            .iter()
            .map(|c| format!("{:.2} s", c.seconds))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "sync / the floor's fastest run in this bench (tuning included, {:.2} s): {:.2}x the time\n",
        floor_best,
        sync.seconds / floor_best
    );
    if write_path_only {
        return;
    }
    // The last sync's requests, from the simulator's counters around it.
    let before = around.pop().unwrap();
    let first = syncs.pop().unwrap();
    let stats = big.stats();
    let again = big.sync("sync2.db");
    let stats_again = big.stats();

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
        "| sync again, same window | {} | 0 | {:.2} | | {} MB | {} |",
        again.summary.blobs_fetched,
        again.seconds,
        again.max_rss_kb / 1024,
        again.summary.requests.sent
    );
    let twice = stats
        .blob_fetches_by_content_id
        .iter()
        .filter(|(id, n)| **n - before.blob_fetches_by_content_id.get(*id).unwrap_or(&0) > 1)
        .count();
    println!(
        "first run requests by route: {} token, {} listing, {} blob ({} blobs fetched more than once)",
        stats.token_requests - before.token_requests,
        stats.api_requests.content - before.api_requests.content,
        stats.api_requests.blob - before.api_requests.blob,
        twice
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
    cost: Cost,
    summary: Summary,
}

impl Sim {
    /// Runs `sync --json` into `database`, measuring it (see [`measure`]).
    fn sync(&self, database: &str) -> Measured {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_auditsync"));
        cmd.args([
            "--config",
            self.dir.join("auditsync.toml").to_str().unwrap(),
            "-q",
            "sync",
            "--json",
        ])
        .env("AUDITSYNC_DATABASE", self.dir.join(database));
        let (cost, text) = measure(cmd);
        let summary: Summary =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        Measured {
            seconds: cost.seconds,
            max_rss_kb: cost.max_rss_kb,
            cost,
            summary,
        }
    }
}

/// Blobs in flight the floor tries (in one transaction); it keeps the fastest (printed).
const FLOOR_CONCURRENCY: [usize; 4] = [4, 8, 16, 32];
/// Blobs a transaction the floor then tries at its fastest concurrency, against one transaction for
/// the run: fewer bytes are written in one, but its WAL grows to the whole run's pages, which costs
/// more where memory is short.
const FLOOR_PER_TRANSACTION: [usize; 3] = [1_000, 500, 100];

/// The floor's settings: blobs in flight, blobs a transaction.
type Floor = (usize, usize);

#[derive(Deserialize)]
struct Config {
    tenant_id: String,
    client_id: String,
    client_secret: String,
}

/// A listed blob: what its ledger row needs.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    content_id: String,
    content_uri: String,
    content_created: String,
    #[serde(default)]
    content_expiration: Option<String>,
}

/// The fields of a record the store's columns need, borrowed from the blob (a field with escapes is
/// copied by serde; the service writes none in these).
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
    workload: Option<Cow<'a, str>>,
    #[serde(default)]
    record_type: Option<i64>,
    #[serde(borrow, default)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user_key: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    app_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    additional_info: Option<Cow<'a, str>>,
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

/// A legacy launch's `AdditionalInfo` (a JSON object in a string).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Info<'a> {
    #[serde(borrow, default)]
    app_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    environment_name: Option<Cow<'a, str>>,
}

/// One launch with the columns `audit_events` stores; the raw record stays in the blob's body
/// (`raw` is its byte range), so it is never copied before SQLite does.
struct FloorRow {
    id: String,
    creation_time: String,
    operation: String,
    workload: Option<String>,
    record_type: Option<i64>,
    user_id: Option<String>,
    app_id: Option<String>,
    app_name: Option<String>,
    environment_id: Option<String>,
    object_id: Option<String>,
    upn: Option<String>,
    raw: std::ops::Range<usize>,
}

/// One fetched blob: its body, its launches and what its ledger row records.
struct FloorBlob {
    item: Item,
    body: bytes::Bytes,
    records_seen: usize,
    rows: Vec<FloorRow>,
}

/// The floor's parse: the array split into raw records, a record that cannot be a launch (its text
/// does not hold the operation's name) skipped unparsed, a launch parsed into the fields stored.
fn floor_parse(item: Item, body: bytes::Bytes) -> FloorBlob {
    let raws: Vec<&RawValue> = serde_json::from_slice(&body).unwrap();
    let base = body.as_ptr() as usize;
    let mut rows = Vec::new();
    for raw in &raws {
        let text = raw.get();
        if !text.contains("LaunchPowerApp") {
            continue;
        }
        let r: Record = serde_json::from_str(text).unwrap();
        if r.operation != "LaunchPowerApp" {
            continue;
        }
        let prop = |name: &str| {
            r.property_collection
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.value.to_string())
        };
        let (app_id, app_name, environment_id) = if r.record_type == Some(256) {
            (
                prop("powerplatform.analytics.resource.power_app.id"),
                prop("powerplatform.analytics.resource.power_app.display_name"),
                prop("powerplatform.analytics.resource.environment.id"),
            )
        } else {
            let info: Option<Info> = r
                .additional_info
                .as_deref()
                .and_then(|i| serde_json::from_str(i).ok());
            (
                r.app_name.as_deref().map(str::to_owned),
                info.as_ref()
                    .and_then(|i| i.app_name.as_deref().map(str::to_owned)),
                info.as_ref()
                    .and_then(|i| i.environment_name.as_deref().map(str::to_owned)),
            )
        };
        let guid = |v: &str| {
            uuid::Uuid::try_parse(v)
                .ok()
                .map(|g| g.hyphenated().to_string())
        };
        let object_id = prop("enduser.id")
            .as_deref()
            .and_then(guid)
            .or_else(|| r.user_key.as_deref().and_then(guid))
            .or_else(|| r.user_id.as_deref().and_then(guid));
        let upn = r
            .user_id
            .as_deref()
            .filter(|u| u.contains('@'))
            .map(str::to_lowercase)
            .or_else(|| prop("enduser.principal_name").map(|u| u.to_lowercase()));
        let start = text.as_ptr() as usize - base;
        rows.push(FloorRow {
            id: r.id.into_owned(),
            creation_time: format!("{}Z", r.creation_time.trim_end_matches('Z')),
            operation: r.operation.into_owned(),
            workload: r.workload.map(Cow::into_owned),
            record_type: r.record_type,
            user_id: r.user_id.map(Cow::into_owned),
            app_id,
            app_name,
            environment_id,
            object_id,
            upn,
            raw: start..start + text.len(),
        });
    }
    let records_seen = raws.len();
    drop(raws);
    FloorBlob {
        item,
        body,
        records_seen,
        rows,
    }
}

/// **The floor's store** — the one function to change when the store's layout changes: the fewest
/// steps that store the rows sync stores (schema 3), with every lookup in memory. Per launch: its
/// texts coded through in-memory dictionaries (a row inserted the first time a text is seen), its
/// person keyed as sync keys it (the object id; else the object id a record of the same UPN carried;
/// else the UPN; a UPN's launches stored before its first link counted as the object id), its raw
/// record compressed with zstd against a 64 KiB dictionary trained on the run's first 1,000 launches
/// (held until then, so nothing is compressed twice), one `events` row. Per blob: its `sources` row
/// and its ledger row, in the same transaction as its launches. At each commit: the apps' latest
/// names and environments and the UPN links, once each. Not done, as sync does: the pending list,
/// the quarantine (there is nothing to quarantine here).
struct FloorStore {
    codes: std::collections::HashMap<(&'static str, String), i64>,
    links: std::collections::HashMap<String, (String, String)>,
    changed_links: std::collections::HashSet<String>,
    latest: std::collections::HashMap<i64, (String, Option<String>, Option<i64>)>,
    compressor: Option<(i64, zstd::bulk::Compressor<'static>)>,
    held: Vec<FloorBlob>,
    held_launches: usize,
    stored_at: String,
}

impl FloorStore {
    fn new() -> FloorStore {
        FloorStore {
            codes: std::collections::HashMap::new(),
            links: std::collections::HashMap::new(),
            changed_links: std::collections::HashSet::new(),
            latest: std::collections::HashMap::new(),
            compressor: None,
            held: Vec::new(),
            held_launches: 0,
            stored_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }

    /// Stores one blob, or holds it until the dictionary can be trained.
    fn store(&mut self, tx: &rusqlite::Transaction<'_>, blob: FloorBlob) {
        if self.compressor.is_none() {
            self.held_launches += blob.rows.len();
            self.held.push(blob);
            if self.held_launches >= 1_000 {
                self.train(tx);
            }
            return;
        }
        self.write(tx, &blob);
    }

    fn train(&mut self, tx: &rusqlite::Transaction<'_>) {
        let samples: Vec<&[u8]> = self
            .held
            .iter()
            .flat_map(|b| b.rows.iter().map(|r| &b.body[r.raw.clone()]))
            .collect();
        let dictionary = zstd::dict::from_samples(&samples, 64 * 1024).unwrap();
        tx.execute(
            "INSERT INTO raw_dictionaries (dictionary, trained_at, samples) VALUES (?1, ?2, ?3)",
            rusqlite::params![dictionary, self.stored_at, samples.len() as i64],
        )
        .unwrap();
        let id = tx.last_insert_rowid();
        self.compressor = Some((
            id,
            zstd::bulk::Compressor::with_dictionary(3, &dictionary).unwrap(),
        ));
        for blob in std::mem::take(&mut self.held) {
            self.write(tx, &blob);
        }
    }

    fn code(&mut self, tx: &rusqlite::Transaction<'_>, table: &'static str, v: &str) -> i64 {
        if let Some(c) = self.codes.get(&(table, v.to_owned())) {
            return *c;
        }
        let column = match table {
            "operations" => "name",
            "terms" => "value",
            "apps" => "app_id",
            "environments" => "environment_id",
            _ => "key",
        };
        tx.prepare_cached(&format!("INSERT INTO {table} ({column}) VALUES (?1)"))
            .unwrap()
            .execute([v])
            .unwrap();
        let c = tx.last_insert_rowid();
        self.codes.insert((table, v.to_owned()), c);
        c
    }

    fn person(&mut self, tx: &rusqlite::Transaction<'_>, r: &FloorRow) -> Option<i64> {
        let key = match (&r.object_id, &r.upn) {
            (Some(oid), Some(upn)) => {
                let first = !self.links.contains_key(upn);
                if self
                    .links
                    .get(upn)
                    .is_none_or(|(_, seen)| r.creation_time > *seen)
                {
                    self.links
                        .insert(upn.clone(), (oid.clone(), r.creation_time.clone()));
                    self.changed_links.insert(upn.clone());
                }
                if first && let Some(upn_code) = self.codes.get(&("people", upn.clone())).copied() {
                    let oid_code = self.code(tx, "people", oid);
                    tx.prepare_cached("UPDATE people SET counted_as = ?2 WHERE id = ?1")
                        .unwrap()
                        .execute([upn_code, oid_code])
                        .unwrap();
                }
                oid.clone()
            }
            (Some(oid), None) => oid.clone(),
            (None, Some(upn)) => self.links.get(upn).map_or(upn.clone(), |(o, _)| o.clone()),
            (None, None) => r.user_id.as_deref()?.to_lowercase(),
        };
        Some(self.code(tx, "people", &key))
    }

    fn write(&mut self, tx: &rusqlite::Transaction<'_>, blob: &FloorBlob) {
        tx.prepare_cached(
            "INSERT INTO sources (content_id, content_type) VALUES (?1, 'Audit.General')",
        )
        .unwrap()
        .execute([&blob.item.content_id])
        .unwrap();
        let source = tx.last_insert_rowid();
        for r in &blob.rows {
            let operation = self.code(tx, "operations", &r.operation);
            let workload = r.workload.as_deref().map(|v| self.code(tx, "terms", v));
            let user_id = r.user_id.as_deref().map(|v| self.code(tx, "terms", v));
            let app = r.app_id.as_deref().map(|v| self.code(tx, "apps", v));
            let app_name = r.app_name.as_deref().map(|v| self.code(tx, "terms", v));
            let environment = r
                .environment_id
                .as_deref()
                .map(|v| self.code(tx, "environments", v));
            let person = self.person(tx, r);
            let (dictionary, compressor) = self.compressor.as_mut().unwrap();
            let raw = compressor.compress(&blob.body[r.raw.clone()]).unwrap();
            let new = tx
                .prepare_cached(
                    "INSERT INTO events (id, creation_time, operation, workload, record_type, user_id, \
                     app, app_name, environment, person, source, dictionary, raw) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
                     ON CONFLICT(id) DO NOTHING",
                )
                .unwrap()
                .execute(rusqlite::params![
                    r.id,
                    r.creation_time,
                    operation,
                    workload,
                    r.record_type,
                    user_id,
                    app,
                    app_name,
                    environment,
                    person,
                    source,
                    *dictionary,
                    raw
                ])
                .unwrap();
            if let (1, Some(app)) = (new, app) {
                let e = self
                    .latest
                    .entry(app)
                    .or_insert((String::new(), None, None));
                if r.creation_time >= e.0 {
                    *e = (r.creation_time.clone(), r.app_name.clone(), environment);
                }
            }
        }
        tx.prepare_cached(
            "INSERT INTO blob_ledger (content_id, content_type, content_created, content_expiration, \
             stored_at, records_seen, records_kept) VALUES (?1, 'Audit.General', ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT(content_id) DO NOTHING",
        )
        .unwrap()
        .execute(rusqlite::params![
            blob.item.content_id,
            blob.item.content_created,
            blob.item.content_expiration,
            self.stored_at,
            blob.records_seen as i64,
            blob.rows.len() as i64
        ])
        .unwrap();
    }

    /// Before a commit: the apps' latest names and environments, and the UPN links, once each.
    fn finish(&mut self, tx: &rusqlite::Transaction<'_>) {
        if self.compressor.is_none() && !self.held.is_empty() {
            self.train(tx);
        }
        for (app, (seen, name, env)) in self.latest.drain() {
            tx.prepare_cached(
                "UPDATE apps SET name = coalesce(?2, name), name_seen = ?3, \
                 environment = coalesce(?4, environment), environment_seen = ?3 WHERE id = ?1",
            )
            .unwrap()
            .execute(rusqlite::params![app, name, seen, env])
            .unwrap();
        }
        for upn in self.changed_links.drain() {
            let (oid, seen) = &self.links[&upn];
            tx.prepare_cached(
                "INSERT INTO user_identities (upn, object_id, last_seen) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(upn) DO UPDATE SET object_id = excluded.object_id, last_seen = excluded.last_seen",
            )
            .unwrap()
            .execute([&upn, oid, seen])
            .unwrap();
        }
    }
}

/// The floor, run in a child process (`sync --floor CONFIG BASE_URL DATABASE CONCURRENCY
/// PER_TRANSACTION`) so that its time, CPU, peak RSS and bytes written are measured exactly as
/// sync's: the fewest steps that store the same rows. One token; the 24 hourly listing pages in turn;
/// `CONCURRENCY` blobs in flight, each a task on the runtime's workers that downloads the body whole
/// and parses it there (no hop to a blocking pool); a writer thread that stores the blobs (each one's
/// launches and ledger row together) `PER_TRANSACTION` to a transaction (`usize::MAX`: one for the
/// run), in a database created by auditsync's own store code (same tables, indexes and settings: WAL,
/// `synchronous = NORMAL`). No pacing, retries, pending list, progress or summary.
fn floor_child(
    config: &Path,
    base: &str,
    database: &Path,
    concurrency: usize,
    per_transaction: usize,
) {
    let config: Config = toml::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    // The schema, as sync makes it.
    drop(
        auditsync_core::store::open_write(
            database,
            auditsync_core::store::RunLock::try_acquire(database).unwrap(),
        )
        .unwrap(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<FloorBlob>(2 * concurrency);
    let db_path = database.to_owned();
    let writer = std::thread::spawn(move || {
        let mut db = rusqlite::Connection::open(db_path).unwrap();
        // The settings sync's writer uses (store/sqlite/mod.rs, WRITER_PRAGMAS).
        db.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA cache_size = -8192; PRAGMA wal_autocheckpoint = 10000;",
        )
        .unwrap();
        let mut store = FloorStore::new();
        let mut txn = db.transaction().unwrap();
        let mut stored = 0;
        while let Some(blob) = rx.blocking_recv() {
            store.store(&txn, blob);
            stored += 1;
            if stored % per_transaction == 0 {
                store.finish(&txn);
                txn.commit().unwrap();
                txn = db.transaction().unwrap();
            }
        }
        store.finish(&txn);
        txn.commit().unwrap();
    });
    rt.block_on(async {
        let token: serde_json::Value = http
            .post(format!("{base}/{}/oauth2/v2.0/token", config.tenant_id))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "client_credentials")
                    .append_pair("client_id", &config.client_id)
                    .append_pair("client_secret", &config.client_secret)
                    .append_pair("scope", &format!("{base}/.default"))
                    .finish(),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
        let publisher = format!("PublisherIdentifier={}", config.tenant_id);
        let now = chrono::Utc::now();
        let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
        let mut items = Vec::new();
        for hour in 0..24 {
            let start = now - chrono::TimeDelta::hours(24 - hour);
            let mut url = Some(format!(
                "{base}/api/v1.0/{}/activity/feed/subscriptions/content?contentType=Audit.General&startTime={}&endTime={}&{publisher}",
                config.tenant_id,
                fmt(start),
                fmt(start + chrono::TimeDelta::hours(1)),
            ));
            while let Some(u) = url.take() {
                let resp = http.get(&u).header("Authorization", &bearer).send().await.unwrap();
                url = resp
                    .headers()
                    .get("NextPageUri")
                    .map(|v| format!("{}&{publisher}", v.to_str().unwrap()));
                let page: Vec<Item> = resp.json().await.unwrap();
                items.extend(page);
            }
        }
        futures_util::stream::iter(items)
            .map(|item| {
                let (http, bearer, tx) = (http.clone(), bearer.clone(), tx.clone());
                let url = format!("{}?{publisher}", item.content_uri);
                tokio::spawn(async move {
                    let body = http
                        .get(url)
                        .header("Authorization", bearer)
                        .send()
                        .await
                        .unwrap()
                        .bytes()
                        .await
                        .unwrap();
                    tx.send(floor_parse(item, body)).await.ok().unwrap();
                })
            })
            .buffer_unordered(concurrency)
            .for_each(|done| async move { done.unwrap() })
            .await;
    });
    drop(tx);
    writer.join().unwrap();
}

impl Sim {
    /// Runs the floor in a child process into `database` (a fresh file).
    fn floor(&self, database: &str, (concurrency, per_transaction): Floor) -> Cost {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.arg("--floor")
            .arg(self.dir.join("auditsync.toml"))
            .arg(&self.base)
            .arg(self.dir.join(database))
            .arg(concurrency.to_string())
            .arg(per_transaction.to_string());
        let cost = measure(cmd).0;
        self.remove(database);
        cost
    }
}

/// The median of three or more costs, each figure on its own.
fn median(costs: &[Cost]) -> Cost {
    let mid = |f: fn(&Cost) -> f64| {
        let mut v: Vec<f64> = costs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Cost {
        seconds: mid(|c| c.seconds),
        user: mid(|c| c.user),
        sys: mid(|c| c.sys),
        max_rss_kb: mid(|c| c.max_rss_kb as f64) as i64,
        written: mid(|c| c.written as f64) as u64,
    }
}

fn cost_row(name: &str, c: &Cost) -> String {
    format!(
        "| {name} | {:.2} | {:.2} | {:.2} | {} MB | {:.0} MB |",
        c.seconds,
        c.user,
        c.sys,
        c.max_rss_kb / 1024,
        c.written as f64 / 1e6
    )
}
