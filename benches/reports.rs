//! The reports over a year of a large tenant (issue 11). Run with `cargo bench --bench reports`
//! (`-- --quick` for 200,000 launches; `AUDITSYNC_BENCH_10M=1` adds the 10,000,000-launch store);
//! BENCHMARKS.md, "Reports over a year", explains the method and records results.
//!
//! 1. Builds a store through the project's own store code (`store::open_write`, `Writer::commit` of
//!    units of 500 launches, each with its blob's ledger entry, 16 units a transaction as sync's writer
//!    commits them): 2,000,000 `LaunchPowerApp` records over the 365 days ending now, 2,000 apps of
//!    long-tailed (Zipf) popularity in 50 environments, 40,000 users, raw records shaped like the real
//!    service's (RecordType 256 with its `PropertyCollection`, and legacy RecordType 45), each turned
//!    into its `Event` by `extract`, as sync does. Deterministic: one seed.
//! 2. Prints the build time, the bytes on disk a launch (file and write-ahead log after a checkpoint,
//!    indexes included) and what each table and index takes.
//! 3. Each report (apps, users, daily, monthly, monthly by app, environments, inactive) over the whole
//!    year and over the last 30 days: in this process through `store::Reader` (first run with the
//!    file evicted from the page cache, then the median of 3 after a warm-up), and as the release
//!    `auditsync report … --format json` process (wall time from start to exit, median of 3 after a
//!    warm-up, and peak RSS from `wait4`); `status` likewise.
//! 4. `prune` of the oldest 90 days: time, and the bytes given back.
//! 5. With `AUDITSYNC_BENCH_10M=1`: the same for 10,000,000 launches, and each report's time against
//!    the 2,000,000 store's (target: at most 5x).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "bench code: a panic is the failure report, and the results are printed"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use auditsync_core::extract::Filter;
use auditsync_core::model::{BlobRef, Event, LedgerEntry, Unit};
use auditsync_core::store::{self, PruneScope, ReportFilter, RunLock};
use chrono::{DateTime, TimeDelta, Utc};

const SEED: u64 = 0x4155_4453_2026_1129;
const APPS: usize = 2_000;
const USERS: usize = 40_000;
const ENVIRONMENTS: usize = 50;
const DAYS: i64 = 365;
/// Launches a unit (a blob) holds, and units a transaction (sync's writer batch).
const UNIT: usize = 500;
const BATCH: usize = 16;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--child") => return child(&args[2..]),
        Some("--run") => return runner(&args[2..]),
        _ => {}
    }
    let quick = args.iter().any(|a| a == "--quick");
    let base = if quick { 200_000 } else { 2_000_000 };
    // AUDITSYNC_BENCH_STORE=DIR: build the stores in DIR and keep them (no prune), or measure the ones
    // already there: to profile, or to measure a change of the readers without building again.
    let kept = std::env::var_os("AUDITSYNC_BENCH_STORE").map(PathBuf::from);
    let temp = tempfile::Builder::new()
        .prefix("reports-bench")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let root = kept.clone().unwrap_or_else(|| temp.path().to_owned());
    let now = Utc::now();
    let tenant = Tenant::new(SEED);
    println!("## Reports over a year (issue 11)\n");
    compression_choices(&tenant, now);
    let small = Bench::build(&root, &tenant, base, now);
    let figures = small.measure(now);
    small.split(&figures, now);
    if kept.is_none() {
        small.prune(now);
        small.delete();
    }
    if std::env::var_os("AUDITSYNC_BENCH_10M").is_some_and(|v| v == "1") {
        let big = Bench::build(&root, &tenant, base * 5, now);
        let big_figures = big.measure(now);
        if kept.is_none() {
            big.delete();
        }
        scaling(&figures, &big_figures, base);
    }
}

/// How the raw records are kept, measured on 20,000 of the tenant's records: bytes a record and
/// microseconds to compress one, plain and with zstd at two levels, without a dictionary and with
/// one of 16 or 64 KiB trained on 1,000 other records (what `store/sqlite/raw.rs` does: 64 KiB,
/// level 3). Printed before the store is built.
fn compression_choices(tenant: &Tenant, now: DateTime<Utc>) {
    let mut rng = Rng(SEED ^ 0xC0);
    let mut draw = |n: usize| -> Vec<String> {
        (0..n)
            .map(|i| tenant.record(&mut rng, now, i as f64 / n as f64))
            .collect()
    };
    let training = draw(1_000);
    let records = draw(20_000);
    let plain: usize = records.iter().map(String::len).sum();
    println!(
        "raw records, {} of them, bytes a record (and µs to compress one):\n",
        records.len()
    );
    println!("| how | bytes a record | µs a record |");
    println!("| --- | ---: | ---: |");
    println!("| as text | {} | |", plain / records.len());
    let samples: Vec<&[u8]> = training.iter().map(String::as_bytes).collect();
    for (label, dictionary) in [
        ("zstd, no dictionary", None),
        ("zstd, 16 KiB dictionary", Some(16 * 1024)),
        ("zstd, 64 KiB dictionary", Some(64 * 1024)),
    ] {
        let dict = dictionary.map(|size| zstd::dict::from_samples(&samples, size).unwrap());
        for level in [3, 9] {
            let mut c = match &dict {
                Some(d) => zstd::bulk::Compressor::with_dictionary(level, d).unwrap(),
                None => zstd::bulk::Compressor::new(level).unwrap(),
            };
            let started = std::time::Instant::now();
            let bytes: usize = records
                .iter()
                .map(|r| c.compress(r.as_bytes()).unwrap().len())
                .sum();
            let micros = started.elapsed().as_secs_f64() * 1e6 / records.len() as f64;
            println!(
                "| {label}, level {level} | {} | {micros:.1} |",
                bytes / records.len()
            );
        }
    }
    println!();
}

// ---------------------------------------------------------------------------------------------
// The tenant: deterministic pools and a long-tailed popularity.

/// SplitMix64: small, fast and deterministic, enough to draw a tenant.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn guid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        let b = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
        let a = (a & 0xFFFF_FFFF_FFFF_0FFF) | 0x4000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xFFFF,
            a & 0xFFFF,
            b >> 48,
            b & 0xFFFF_FFFF_FFFF
        )
    }
    fn hex(&mut self, digits: usize) -> String {
        (0..digits)
            .map(|_| char::from(b"0123456789ABCDEF"[self.below(16)]))
            .collect()
    }
}

/// Zipf weights over `n` items (item 0 the most popular), as a cumulative table to draw from.
struct Zipf(Vec<f64>);

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut total = 0.0;
        let cdf = (1..=n)
            .map(|k| {
                total += 1.0 / (k as f64).powf(s);
                total
            })
            .collect::<Vec<_>>();
        Zipf(cdf.into_iter().map(|c| c / total).collect())
    }
    fn draw(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.0.partition_point(|c| *c < u).min(self.0.len() - 1)
    }
}

struct Environment {
    id: String,
    name: String,
}

struct App {
    id: String,
    name: String,
    environment: usize,
    /// When it is launched at all, as shares of the year: a quarter of the apps are made during
    /// it, a quarter retired (launched no more), so `report inactive` has apps to find.
    lifetime: (f64, f64),
}

struct User {
    object_id: String,
    /// As the service logs it, with capitals.
    upn: String,
}

struct Tenant {
    id: String,
    environments: Vec<Environment>,
    apps: Vec<App>,
    users: Vec<User>,
    app_popularity: Zipf,
    user_popularity: Zipf,
}

const APP_WORDS: &[&str] = &[
    "Expense",
    "Site Inspection",
    "Leave Request",
    "Asset",
    "Timesheet",
    "Onboarding",
    "Incident",
    "Visitor",
    "Purchase Order",
    "Field Service",
    "Room Booking",
    "Safety Audit",
];
const APP_SUFFIXES: &[&str] = &[
    "Tracker", "App", "Portal", "Manager", "Hub", "(Canvas)", "v2",
];
const NAMES: &[&str] = &[
    "Amber", "Bruno", "Chen", "Dana", "Emil", "Fatima", "Grace", "Hiro", "Ines", "Jonas", "Kofi",
    "Lena", "Mateo", "Nora", "Omar", "Priya",
];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 PowerApps/3.25",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Safari/537.36 Edg/148.0.0.0",
    "Mozilla/5.0 (Linux; Android 15; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/147.0.0.0 Mobile Safari/537.36 PowerApps/3.25",
    "Microsoft PowerApps/3.25021.12 (Windows 10.0.26100; x64)",
];

impl Tenant {
    fn new(seed: u64) -> Tenant {
        let mut rng = Rng(seed);
        let id = rng.guid();
        let mut environments = vec![Environment {
            id: format!("Default-{id}"),
            name: "Contoso (default)".into(),
        }];
        for i in 1..ENVIRONMENTS {
            environments.push(Environment {
                id: rng.guid(),
                name: format!("{} {i:02}", ["Sales", "HR", "Ops", "Finance", "Dev"][i % 5]),
            });
        }
        // A third of the apps live in the default environment; the rest, long-tailed, elsewhere.
        let env_popularity = Zipf::new(ENVIRONMENTS - 1, 1.0);
        let apps = (0..APPS)
            .map(|i| App {
                id: rng.guid(),
                name: format!(
                    "{} {} {i}",
                    APP_WORDS[rng.below(APP_WORDS.len())],
                    APP_SUFFIXES[rng.below(APP_SUFFIXES.len())]
                ),
                environment: if rng.chance(0.33) {
                    0
                } else {
                    1 + env_popularity.draw(&mut rng)
                },
                lifetime: {
                    let born = if rng.chance(0.25) {
                        rng.unit() * 0.9
                    } else {
                        0.0
                    };
                    let retired = if rng.chance(0.25) {
                        born + 0.05 + rng.unit() * (0.95 - born)
                    } else {
                        1.0
                    };
                    (born, retired)
                },
            })
            .collect();
        let users = (0..USERS)
            .map(|i| {
                let first = NAMES[rng.below(NAMES.len())];
                let last = NAMES[rng.below(NAMES.len())];
                User {
                    object_id: rng.guid(),
                    upn: format!("{first}.{last}{i}@CONTOSO.OnMicrosoft.com"),
                }
            })
            .collect();
        Tenant {
            id,
            environments,
            apps,
            users,
            app_popularity: Zipf::new(APPS, 1.1),
            user_popularity: Zipf::new(USERS, 0.8),
        }
    }

    /// One launch's `AuditData` at `at` (`share` of the year): RecordType 256 (85%; 9% of them name the user by UPN
    /// only, 3% by object id only) or legacy 45 (3% of those without `AppName`).
    fn record(&self, rng: &mut Rng, at: DateTime<Utc>, share: f64) -> String {
        let mut app = &self.apps[self.app_popularity.draw(rng)];
        for _ in 0..100 {
            if (app.lifetime.0..=app.lifetime.1).contains(&share) {
                break;
            }
            app = &self.apps[self.app_popularity.draw(rng)];
        }
        let user = &self.users[self.user_popularity.draw(rng)];
        let env = &self.environments[app.environment];
        let id = rng.guid();
        let time = at.format("%Y-%m-%dT%H:%M:%S");
        let ip = format!(
            "{}.{}.{}.{}",
            20 + rng.below(200),
            rng.below(256),
            rng.below(256),
            1 + rng.below(254)
        );
        let tenant = &self.id;
        let admin = rng.chance(0.02);
        if rng.chance(0.15) {
            let app_name = if rng.chance(0.03) {
                String::new()
            } else {
                format!(",\"AppName\":\"{}\"", app.id)
            };
            return format!(
                "{{\"CreationTime\":\"{time}\",\"Id\":\"{id}\",\"Operation\":\"LaunchPowerApp\",\
                 \"OrganizationId\":\"{tenant}\",\"RecordType\":45,\"ResultStatus\":\"Success\",\
                 \"UserKey\":\"{oid}\",\"UserType\":{ut},\"Version\":1,\"Workload\":\"PowerApps\",\
                 \"ClientIP\":\"::ffff:{ip}\",\"ObjectId\":\"{oid}\",\"UserId\":\"{upn}\",\
                 \"AdditionalInfo\":\"{{\\\"environmentName\\\":\\\"{legacy}\\\",\\\"appName\\\":\\\"{name}\\\"}}\"{app_name}}}",
                oid = user.object_id,
                ut = if admin { 2 } else { 0 },
                upn = user.upn,
                name = app.name,
                legacy = env.id,
            );
        }
        let draw = rng.unit();
        let (by_upn_only, by_oid_only) = (draw < 0.09, (0.09..0.12).contains(&draw));
        let user_key = if by_upn_only {
            format!("10032000{}", rng.hex(8))
        } else {
            user.object_id.clone()
        };
        let user_id = if by_oid_only {
            &user.object_id
        } else {
            &user.upn
        };
        let mut properties = vec![
            (
                "powerplatform.analytics.resource.power_app.display_name",
                app.name.clone(),
            ),
            (
                "powerplatform.analytics.resource.power_app.id",
                app.id.clone(),
            ),
            (
                "powerplatform.analytics.resource.environment.name",
                env.name.clone(),
            ),
            (
                "powerplatform.analytics.operation.is_successful",
                "True".into(),
            ),
            ("powerplatform.analytics.correlation.id", rng.guid()),
            ("enduser.ip_address", ip.clone()),
            (
                "user_agent.original",
                USER_AGENTS[rng.below(USER_AGENTS.len())].into(),
            ),
            ("powerplatform.analytics.resource.type", "PowerApp".into()),
            ("version", "1.0".into()),
            ("type", "PowerPlatformAdministratorActivityRecord".into()),
            (
                "powerplatform.analytics.activity.name",
                "LaunchPowerApp".into(),
            ),
            ("powerplatform.analytics.activity.id", id.clone()),
            (
                "powerplatform.analytics.resource.environment.id",
                env.id.clone(),
            ),
        ];
        if !by_upn_only {
            properties.push(("enduser.id", user.object_id.clone()));
        }
        properties.push(("powerplatform.analytics.resource.tenant.id", tenant.clone()));
        if !by_oid_only {
            properties.push(("enduser.principal_name", user.upn.clone()));
        }
        properties.push(("enduser.role", if admin { "Admin" } else { "User" }.into()));
        let properties = properties
            .iter()
            .map(|(n, v)| format!("{{\"Name\":\"{n}\",\"Value\":\"{v}\"}}"))
            .collect::<Vec<_>>()
            .join(",");
        format!(
            "{{\"PropertyCollection\":[{properties}],\"EnvironmentId\":\"{env_id}\",\"UserId\":\"{user_id}\",\
             \"ClientIP\":\"{ip}\",\"Id\":\"{id}\",\"RecordType\":256,\"CreationTime\":\"{time}\",\
             \"Operation\":\"LaunchPowerApp\",\"OrganizationId\":\"{tenant}\",\"UserType\":{ut},\
             \"UserKey\":\"{user_key}\",\"Workload\":\"PowerPlatform\",\"ResultStatus\":\"Succeeded\",\
             \"Version\":1,\"RequiresCustomerKeyEncryption\":false}}",
            env_id = env.id,
            ut = if admin { 2 } else { 0 },
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The store, built through the project's own store code.

/// One store under measurement.
struct Bench {
    dir: PathBuf,
    db: PathBuf,
    config: PathBuf,
    launches: usize,
}

/// The reports, as the CLI names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Apps,
    Users,
    Daily,
    Monthly,
    MonthlyByApp,
    Environments,
    Inactive,
}

const KINDS: [Kind; 7] = [
    Kind::Apps,
    Kind::Users,
    Kind::Daily,
    Kind::Monthly,
    Kind::MonthlyByApp,
    Kind::Environments,
    Kind::Inactive,
];

impl Kind {
    fn args(self) -> &'static [&'static str] {
        match self {
            Kind::Apps => &["apps"],
            Kind::Users => &["users"],
            Kind::Daily => &["daily"],
            Kind::Monthly => &["monthly"],
            Kind::MonthlyByApp => &["monthly", "--by", "app"],
            Kind::Environments => &["environments"],
            Kind::Inactive => &["inactive"],
        }
    }
    fn parse(name: &str) -> Kind {
        *KINDS
            .iter()
            .find(|k| k.args().join(" ") == name)
            .unwrap_or_else(|| panic!("no report {name}"))
    }
}

/// Which launches: the whole store, or the last 30 days (for `inactive`: `--days 90` and `--days 30`,
/// both over the whole store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Range {
    Year,
    Month,
}

impl Range {
    fn label(self, kind: Kind) -> &'static str {
        match (kind, self) {
            (Kind::Inactive, Range::Year) => "--days 90",
            (Kind::Inactive, Range::Month) => "--days 30",
            (_, Range::Year) => "year",
            (_, Range::Month) => "30 days",
        }
    }
    fn from(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        (self == Range::Month).then(|| now - TimeDelta::days(30))
    }
    fn days(self) -> u32 {
        if self == Range::Month { 30 } else { 90 }
    }
}

/// What one report took.
struct Figure {
    kind: Kind,
    range: Range,
    rows: usize,
    /// In this process: first run with the file out of the page cache; median of 3 warm runs.
    cold: f64,
    warm: f64,
    /// The `auditsync report` process: median wall time of 3, peak RSS (KiB), and whether the
    /// CLI had the command (else this bench's own child process ran it through the same library).
    cli: f64,
    rss_kb: i64,
    by_cli: bool,
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

fn on_disk(db: &Path) -> u64 {
    let size = |p: PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    size(db.to_owned()) + size(PathBuf::from(wal))
}

impl Bench {
    fn build(root: &Path, tenant: &Tenant, launches: usize, now: DateTime<Utc>) -> Bench {
        let dir = root.join(format!("store-{launches}"));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("auditsync.db");
        let config = dir.join("auditsync.toml");
        if db.exists() {
            println!(
                "### {launches} launches\n\n(the store kept in {}, built before)\n",
                dir.display()
            );
            print_layout(&db, launches);
            return Bench {
                dir,
                db,
                config,
                launches,
            };
        }
        std::fs::write(
            &config,
            format!(
                "tenant_id = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"not used by reports\"\n\
                 database = {:?}\n",
                tenant.id,
                tenant.id,
                db.display().to_string()
            ),
        )
        .unwrap();
        set_private(&config);
        let lock = RunLock::try_acquire(&db).unwrap();
        let mut store = store::open_write(&db, lock).unwrap();
        let filter = Filter::new(&["LaunchPowerApp".to_owned()]);
        let mut rng = Rng(SEED ^ launches as u64);
        let start = now.timestamp() - DAYS * 86_400;
        let span = DAYS * 86_400;
        let (mut made, mut raw_bytes, mut blob, mut committing) = (0, 0u64, 0usize, 0.0);
        let started = Instant::now();
        let mut next_note = launches / 10;
        while made < launches {
            let mut units = Vec::with_capacity(BATCH);
            while units.len() < BATCH && made < launches {
                let n = UNIT.min(launches - made);
                let events: Vec<Event> = (made..made + n)
                    .map(|i| {
                        let slot = (i as i128 * i128::from(span) / launches as i128) as i64;
                        let width = (span / launches as i64).max(1) as usize;
                        let at = start + slot + rng.below(width) as i64;
                        let raw = tenant.record(
                            &mut rng,
                            DateTime::from_timestamp(at, 0).unwrap(),
                            i as f64 / launches as f64,
                        );
                        raw_bytes += raw.len() as u64;
                        filter.record(&raw).unwrap().expect("a launch is kept")
                    })
                    .collect();
                units.push(unit(tenant, blob, events, now));
                made += n;
                blob += 1;
            }
            let t = Instant::now();
            store.commit(&units).unwrap();
            committing += t.elapsed().as_secs_f64();
            if made >= next_note {
                eprintln!(
                    "  {made} launches stored, {:.0} s",
                    started.elapsed().as_secs_f64()
                );
                next_note += launches / 10;
            }
        }
        drop(store);
        let seconds = started.elapsed().as_secs_f64();
        let bytes = on_disk(&db);
        println!(
            "### {launches} launches\n\nbuilt in {seconds:.0} s ({committing:.0} s of it in \
             `Writer::commit`, {blob} units of {UNIT} launches, {BATCH} a transaction); raw records \
             {:.0} bytes on average ({:.0} MB of JSON)\n",
            raw_bytes as f64 / launches as f64,
            mb(raw_bytes)
        );
        println!(
            "on disk: {:.0} MB (file + wal, after the writer closed), **{:.0} bytes a launch**\n",
            mb(bytes),
            bytes as f64 / launches as f64
        );
        print_layout(&db, launches);
        Bench {
            dir,
            db,
            config,
            launches,
        }
    }

    fn delete(self) {
        std::fs::remove_dir_all(&self.dir).unwrap();
    }
}

/// A blob's unit: its launches and its ledger entry, as sync hands them to the writer.
fn unit(tenant: &Tenant, blob: usize, events: Vec<Event>, now: DateTime<Utc>) -> Unit {
    let first = DateTime::parse_from_rfc3339(&events[0].creation_time).unwrap();
    let last = DateTime::parse_from_rfc3339(&events[events.len() - 1].creation_time).unwrap();
    let created = (last.to_utc() + TimeDelta::minutes(7)).min(now);
    let content_id = format!(
        "{}{blob:09}${}{blob:09}$audit_general$Audit_General$emea0001",
        first.format("%Y%m%d%H%M%S"),
        created.format("%Y%m%d%H%M%S")
    );
    Unit {
        ledger: LedgerEntry::Blob(BlobRef {
            content_type: "Audit.General".into(),
            content_uri: format!(
                "https://manage.office.com/api/v1.0/{}/activity/feed/audit/{content_id}",
                tenant.id
            ),
            content_id,
            created,
            expiration: Some(created + TimeDelta::days(7)),
        }),
        records_seen: events.len(),
        events,
        quarantined: Vec::new(),
    }
}

#[cfg(unix)]
fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// What each table and index takes (SQLite's `dbstat`), read through an immutable connection so
/// that no `-wal` or `-shm` is left beside the file.
fn print_layout(db: &Path, launches: usize) {
    let uri = format!("file:{}?immutable=1", db.display());
    let conn = rusqlite::Connection::open_with_flags(
        uri,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap();
    let rows: rusqlite::Result<Vec<(String, i64)>> = conn
        .prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 8")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()
        });
    match rows {
        Ok(rows) => {
            println!("| table or index | MB | bytes a launch |\n| --- | ---: | ---: |");
            for (name, bytes) in rows {
                println!(
                    "| {name} | {:.1} | {:.0} |",
                    mb(bytes as u64),
                    bytes as f64 / launches as f64
                );
            }
            println!();
        }
        Err(e) => println!("(no dbstat: {e})\n"),
    }
}

// ---------------------------------------------------------------------------------------------
// The measurements.

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Drops the database's pages from the page cache (this file only: the machine is shared), so the
/// next read comes from the disk.
fn evict(db: &Path) {
    use std::os::fd::AsRawFd;
    let Ok(file) = std::fs::File::open(db) else {
        return;
    };
    file.sync_all().unwrap();
    // SAFETY: a valid open descriptor; posix_fadvise only advises the kernel.
    #[allow(unsafe_code)]
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

/// Runs one report through the library, as the CLI does (open read-only, query, close); its rows.
fn run_report(db: &Path, kind: Kind, range: Range, now: DateTime<Utc>) -> (usize, String) {
    let store = store::open_read(db).unwrap();
    let filter = ReportFilter {
        from: range.from(now),
        ..ReportFilter::default()
    };
    let json = |v: &dyn erased::Json| v.json();
    match kind {
        Kind::Apps => json(&store.report_apps(&filter).unwrap()),
        Kind::Users => json(&store.report_users(&filter).unwrap()),
        Kind::Daily => json(&store.report_daily(&filter).unwrap()),
        Kind::Monthly => json(&store.report_monthly(&filter).unwrap()),
        Kind::MonthlyByApp => json(&store.report_monthly_by_app(&filter).unwrap()),
        Kind::Environments => json(&store.report_environments(&filter).unwrap()),
        Kind::Inactive => json(&store.report_inactive(range.days(), None, now).unwrap()),
    }
}

/// Rows and their JSON, for any report's result.
mod erased {
    pub trait Json {
        fn json(&self) -> (usize, String);
    }
    impl<T: serde::Serialize> Json for Vec<T> {
        fn json(&self) -> (usize, String) {
            (self.len(), serde_json::to_string(self).unwrap())
        }
    }
    impl Json for auditsync_core::store::InactiveReport {
        fn json(&self) -> (usize, String) {
            (self.apps.len(), serde_json::to_string(self).unwrap())
        }
    }
}

/// `--child DB KIND… [--from SECS | --days N]`: one report through the library, its JSON on stdout,
/// for the reports the CLI of this tree does not have yet (peak RSS of a process that does the same work).
fn child(args: &[String]) {
    let db = Path::new(&args[0]);
    let now = Utc::now();
    let range = if args.iter().any(|a| a == "--month") {
        Range::Month
    } else {
        Range::Year
    };
    let kind = Kind::parse(
        &args[1..]
            .iter()
            .filter(|a| *a != "--month")
            .cloned()
            .collect::<Vec<_>>()
            .join(" "),
    );
    let (_, json) = run_report(db, kind, range, now);
    println!("{json}");
}

/// Runs a process to its end through a small runner process (this bench's `--run` mode): wall
/// seconds, peak RSS (KiB), stdout bytes. The runner is there because Linux counts in a child's
/// `ru_maxrss` the peak RSS of the address space it was started from (`posix_spawn` shares the
/// parent's until the `exec`): started from this bench, which holds a store's worth of data while it
/// builds, every child would report at least this bench's own peak.
fn measure_process(cmd: Command) -> (f64, i64, usize) {
    let mut runner = Command::new(std::env::current_exe().unwrap());
    runner
        .arg("--run")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        runner.current_dir(dir);
    }
    let out = runner.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut fields = text.split_whitespace();
    let mut next = || fields.next().unwrap();
    (
        next().parse().unwrap(),
        next().parse().unwrap(),
        next().parse().unwrap(),
    )
}

/// `--run PROGRAM ARGS…`: runs it, reading its stdout, and prints its wall seconds, peak RSS (KiB,
/// from `wait4`) and stdout bytes; fails if it does.
#[allow(clippy::zombie_processes)] // reaped by wait4, which also reports the peak RSS
fn runner(args: &[String]) {
    let started = Instant::now();
    let child = Command::new(&args[0])
        .args(&args[1..])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut child.stdout.unwrap(), &mut out).unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value, and wait4 only writes into it.
    #[allow(unsafe_code)]
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child, not yet reaped; the pointers are valid for the call.
    #[allow(unsafe_code)]
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid);
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{args:?} failed"
    );
    println!("{seconds} {} {}", usage.ru_maxrss, out.len());
}

impl Bench {
    fn auditsync(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_auditsync"));
        c.arg("--config")
            .arg(&self.config)
            .args(args)
            .current_dir(&self.dir);
        c
    }

    /// Whether this tree's CLI has the report (the new ones arrive with issue 11's other points).
    fn cli_has(&self, kind: Kind) -> bool {
        let out = self
            .auditsync(&["report", kind.args()[0], "--help"])
            .output()
            .unwrap();
        out.status.success()
            && (kind != Kind::MonthlyByApp || String::from_utf8_lossy(&out.stdout).contains("--by"))
    }

    fn command(&self, kind: Kind, range: Range, now: DateTime<Utc>, by_cli: bool) -> Command {
        if !by_cli {
            let mut c = Command::new(std::env::current_exe().unwrap());
            c.arg("--child").arg(&self.db).args(kind.args());
            if range == Range::Month {
                c.arg("--month");
            }
            return c;
        }
        let mut args = vec!["-q", "report"];
        args.extend(kind.args());
        args.extend(["--format", "json"]);
        let from = range
            .from(now)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let days = range.days().to_string();
        if kind == Kind::Inactive {
            args.extend(["--days", &days]);
        } else if let Some(from) = &from {
            args.extend(["--from", from]);
        }
        self.auditsync(&args)
    }

    fn figure(&self, kind: Kind, range: Range, now: DateTime<Utc>, by_cli: bool) -> Figure {
        evict(&self.db);
        let t = Instant::now();
        let (rows, _) = run_report(&self.db, kind, range, now);
        let cold = t.elapsed().as_secs_f64();
        run_report(&self.db, kind, range, now);
        let warm = median(
            (0..3)
                .map(|_| {
                    let t = Instant::now();
                    run_report(&self.db, kind, range, now);
                    t.elapsed().as_secs_f64()
                })
                .collect(),
        );
        measure_process(self.command(kind, range, now, by_cli));
        let runs: Vec<(f64, i64, usize)> = (0..3)
            .map(|_| measure_process(self.command(kind, range, now, by_cli)))
            .collect();
        Figure {
            kind,
            range,
            rows,
            cold,
            warm,
            cli: median(runs.iter().map(|r| r.0).collect()),
            rss_kb: runs.iter().map(|r| r.1).max().unwrap_or(0),
            by_cli,
        }
    }

    fn measure(&self, now: DateTime<Utc>) -> Vec<Figure> {
        let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "load average before (1, 5, 15 min; 2 cores, shared): {}",
            load()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
        println!(
            "| report | range | rows | first run, file not cached | warm (median of 3) | `auditsync report … --format json` (median of 3) | peak RSS |"
        );
        println!("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
        let mut figures = Vec::new();
        for kind in KINDS {
            let by_cli = self.cli_has(kind);
            for range in [Range::Year, Range::Month] {
                let f = self.figure(kind, range, now, by_cli);
                println!(
                    "| {} | {} | {} | {:.3} s | {:.3} s | {:.3} s{} | {:.0} MB |",
                    kind.args().join(" "),
                    range.label(kind),
                    f.rows,
                    f.cold,
                    f.warm,
                    f.cli,
                    if f.by_cli { "" } else { " (*)" },
                    f.rss_kb as f64 / 1024.0
                );
                figures.push(f);
            }
        }
        measure_process(self.auditsync(&["status"]));
        let status: Vec<(f64, i64, usize)> = (0..3)
            .map(|_| measure_process(self.auditsync(&["status"])))
            .collect();
        println!(
            "| `status` | | | | | {:.3} s | {:.0} MB |",
            median(status.iter().map(|r| r.0).collect()),
            status.iter().map(|r| r.1).max().unwrap_or(0) as f64 / 1024.0
        );
        println!(
            "\nload average after: {}",
            load()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
        if figures.iter().any(|f| !f.by_cli) {
            println!(
                "\n(*) this tree's CLI has no such report yet: the process is this bench's own child \
                 (`--child`), which opens the store and runs the same `store::Reader` report into JSON."
            );
        }
        println!();
        figures
    }

    /// Where a year's report spends its time: opening the store and reading the dictionaries (a scan
    /// of no launch), the index scan (`Reader::scan_launches` into a counter), the tally (the report
    /// in this process, less the scan), and the process and its output (the CLI's time less the
    /// report's in this process).
    fn split(&self, figures: &[Figure], now: DateTime<Utc>) {
        let time = |range: (Option<i64>, Option<i64>)| {
            median(
                (0..3)
                    .map(|_| {
                        let t = Instant::now();
                        let store = store::open_read(&self.db).unwrap();
                        let mut n = 0u64;
                        store.scan_launches(range, &mut |_| n += 1).unwrap();
                        t.elapsed().as_secs_f64()
                    })
                    .collect(),
            )
        };
        let future = now.timestamp() + 86_400;
        let names = time((Some(future), None));
        let scan = time((None, None));
        println!(
            "Where the time goes, over the year: opening the store and reading its dictionaries \
             {names:.3} s; the index scan of every launch (SQL step and row decoding, into a counter) \
             {:.3} s more.\n",
            scan - names
        );
        println!("| report | tally (report less scan) | process and output (CLI less report) |");
        println!("| --- | ---: | ---: |");
        for f in figures.iter().filter(|f| f.range == Range::Year) {
            println!(
                "| {} {} | {:.3} s | {:.3} s |",
                f.kind.args().join(" "),
                f.range.label(f.kind),
                f.warm - scan,
                f.cli - f.warm
            );
        }
        println!();
    }

    /// `prune` of the oldest 90 days, through `Writer::prune` as the command calls it.
    fn prune(&self, now: DateTime<Utc>) {
        let before = on_disk(&self.db);
        let started = Instant::now();
        let lock = RunLock::try_acquire(&self.db).unwrap();
        let mut store = store::open_write(&self.db, lock).unwrap();
        let pruned = store
            .prune(PruneScope {
                cutoff: now - TimeDelta::days(DAYS - 90),
                include_fetchable: false,
            })
            .unwrap();
        drop(store);
        let seconds = started.elapsed().as_secs_f64();
        let (b, a) = pruned.file_bytes.unwrap_or_default();
        println!(
            "prune of the oldest 90 days ({} of {} launches, {} ledger rows): {seconds:.1} s; the prune \
             reports {:.0} MB → {:.0} MB on disk, **{:.0} MB given back** ({:.0} MB → {:.0} MB measured \
             here after it closed)\n",
            pruned.events,
            self.launches,
            pruned.ledger_rows,
            mb(b),
            mb(a),
            mb(b.saturating_sub(a)),
            mb(before),
            mb(on_disk(&self.db))
        );
        self.free_pages();
    }

    /// Pages the prune left on the free list, and what stepping `PRAGMA incremental_vacuum` to its
    /// end (it frees one page per step) and a truncating checkpoint give back.
    fn free_pages(&self) {
        let conn = rusqlite::Connection::open(&self.db).unwrap();
        let pragma = |name: &str| -> i64 {
            conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .unwrap()
        };
        let (free, page) = (pragma("freelist_count"), pragma("page_size"));
        let started = Instant::now();
        let mut stmt = conn.prepare("PRAGMA incremental_vacuum").unwrap();
        let mut rows = stmt.query([]).unwrap();
        while rows.next().unwrap().is_some() {}
        drop(rows);
        drop(stmt);
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        drop(conn);
        println!(
            "left on the free list after the prune: {free} pages ({:.0} MB); `PRAGMA incremental_vacuum` \
             stepped to its end and a truncating checkpoint: {:.1} s, {:.0} MB on disk after\n",
            mb((free * page) as u64),
            started.elapsed().as_secs_f64(),
            mb(on_disk(&self.db))
        );
    }
}

/// Each report's time at 10M launches against 2M (target: at most 5x).
fn scaling(small: &[Figure], big: &[Figure], base: usize) {
    println!(
        "### Scaling: {} against {base} launches\n\n| report | range | warm, {base} | warm, {} | ratio | CLI, {base} | CLI, {} | ratio |",
        base * 5,
        base * 5,
        base * 5
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (s, b) in small.iter().zip(big) {
        assert_eq!((s.kind, s.range), (b.kind, b.range));
        println!(
            "| {} | {} | {:.3} s | {:.3} s | {:.1}x | {:.3} s | {:.3} s | {:.1}x |",
            s.kind.args().join(" "),
            s.range.label(s.kind),
            s.warm,
            b.warm,
            b.warm / s.warm,
            s.cli,
            b.cli,
            b.cli / s.cli
        );
    }
    println!();
}
