//! The simulated tenant's data: the pools of environments, apps and users, the catalogue of content
//! blobs, deterministic record generation, and the ground truth computed from the very records served.
//!
//! Everything derives from `SimSpec::seed` through [`seeded`], which gives an independent random stream
//! for each purpose and each (blob, record slot). A record can therefore be regenerated on its own, which
//! is how duplicates work: a duplicate slot names a slot of an earlier blob and renders that record again,
//! byte for byte. Blob bodies are rendered on first request and cached.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::body::Bytes;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::SimSpec;

mod audit_log;
pub(super) use audit_log::{AuditQuery, AuditRecord, Position};

/// How long content stays retrievable after `contentCreated` (REF: expiration = created + 7 days).
pub(super) const RETENTION: Duration = Duration::days(7);

/// The most hours of data a tenant is laid out with: a day beyond retention, so expired blobs exist.
pub(super) const MAX_HOURS: u32 = 7 * 24 + 24;

/// Share of record slots that copy a record of an earlier blob (the API does not dedupe).
const DUPLICATE_SHARE: f64 = 0.03;
/// A duplicate copies from one of this many preceding blobs of its content type.
const DUPLICATE_REACH: usize = 48;
/// Share of blobs whose events are hours older than the blob.
const LATE_SHARE: f64 = 0.05;

/// Independent random streams derived from the seed.
#[derive(Clone, Copy)]
pub(super) enum Stream {
    /// Tenant id, client id and secret ([`SimSpec::new`]); the signer's key id and principal.
    Identity = 1,
    /// The environments, apps, users and region of [`Tenant::new`].
    Pools,
    /// The blobs' creation instants and which are late.
    Catalogue,
    /// One record slot of one blob, keyed by (blob index, slot).
    Record,
    /// Fault decisions, token signatures and Entra trace ids, all from one running stream.
    Faults,
    /// One record slot's quirks (how it names its user, whether it is served unreadable), keyed like
    /// [`Stream::Record`]; a stream of its own so the records themselves stay as they were.
    Quirks,
    /// The blobs of one hour of history older than the laid-out catalogue (the audit log's past that
    /// only the Graph API serves), keyed by the hour's distance from the catalogue's origin.
    History,
    /// One audit-log record's Graph side: its wrapper `id` and whether it is late, keyed like
    /// [`Stream::Record`].
    AuditLog,
}

/// A random generator for `stream`, keyed by two indices (e.g. blob and record slot).
pub(super) fn seeded(seed: u64, stream: Stream, a: u64, b: u64) -> StdRng {
    let mut key = [0u8; 32];
    for (chunk, word) in key.chunks_exact_mut(8).zip([seed, stream as u64, a, b]) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    StdRng::from_seed(key)
}

/// A random lowercase hyphenated GUID.
pub(super) fn guid(rng: &mut impl Rng) -> String {
    uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string()
}

/// `contentCreated` / `contentExpiration` form: `2026-11-21T17:35:00.000Z`.
pub(super) fn content_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The content types that hold data in the simulated tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Audit.General: Power Apps launches (both schemas) and decoys, flows, Power BI, Teams, Forms
    /// and Dynamics events.
    General,
    /// Audit.SharePoint: file events only.
    SharePoint,
    /// Audit.Exchange: mailbox events only.
    Exchange,
}

impl Kind {
    /// The content type name the API uses (management-api.md §1.1).
    pub(super) fn content_type(self) -> &'static str {
        match self {
            Kind::General => "Audit.General",
            Kind::SharePoint => "Audit.SharePoint",
            Kind::Exchange => "Audit.Exchange",
        }
    }
}

/// One content blob's metadata.
#[derive(Clone, Debug)]
pub(super) struct Blob {
    /// Position in the catalogue: the key of its records' random streams.
    pub(super) index: usize,
    /// Its content type.
    pub(super) kind: Kind,
    /// `contentId`, in BEATS' style (see [`BlobInfo::content_id`](crate::BlobInfo::content_id)).
    pub(super) content_id: String,
    /// `contentCreated`, to the millisecond.
    pub(super) created: DateTime<Utc>,
    /// Its events are hours older than `created`.
    pub(super) late: bool,
    /// When it expires, if not the usual 7 days after `created`.
    expires: Option<DateTime<Utc>>,
    /// Position among the blobs of its kind, for picking duplicate sources.
    ordinal: usize,
}

/// What a blob's fresh records derive from: its creation instant, content type and lateness.
#[derive(Clone, Copy, Debug)]
pub(super) struct Origin {
    pub(super) created: DateTime<Utc>,
    pub(super) kind: Kind,
    pub(super) late: bool,
}

impl Blob {
    /// Its [`Origin`].
    pub(super) fn origin(&self) -> Origin {
        Origin {
            created: self.created,
            kind: self.kind,
            late: self.late,
        }
    }

    /// `contentExpiration`: `created` + 7 days unless set otherwise (management-api.md §2.2).
    pub(super) fn expiration(&self) -> DateTime<Utc> {
        self.expires.unwrap_or(self.created + RETENTION)
    }
}

#[derive(Default)]
struct Catalogue {
    blobs: Vec<Blob>,
    by_id: HashMap<String, usize>,
    by_kind: [Vec<usize>; 3],
}

impl Catalogue {
    fn add(&mut self, region: &str, kind: Kind, created: DateTime<Utc>, late: bool) -> String {
        let index = self.blobs.len();
        // BEATS-style id: {created, 7 fraction digits}${+1h}${lower ct}${Ct}${region}. The fraction's last
        // four digits carry the index, so ids stay unique within a millisecond.
        let stamp = |t: DateTime<Utc>| {
            let fraction = t.timestamp_subsec_millis() * 10_000 + (index % 10_000) as u32;
            format!("{}{fraction:07}", t.format("%Y%m%d%H%M%S"))
        };
        let ct = kind.content_type().replace('.', "_");
        let content_id = format!(
            "{}${}${}${ct}${region}",
            stamp(created),
            stamp(created + Duration::hours(1)),
            ct.to_lowercase()
        );
        let siblings = &mut self.by_kind[kind as usize];
        self.blobs.push(Blob {
            index,
            kind,
            content_id: content_id.clone(),
            created,
            late,
            expires: None,
            ordinal: siblings.len(),
        });
        siblings.push(index);
        self.by_id.insert(content_id.clone(), index);
        content_id
    }
}

/// Whether a content id has the service's shape (`<digits>$<digits>$…`); AF20052 otherwise.
pub(super) fn is_well_formed(content_id: &str) -> bool {
    let mut parts = content_id.split('$');
    let mut stamp = || {
        parts
            .next()
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    stamp() && stamp() && parts.count() >= 2
}

/// Whether a correct client stores `record` when collecting `operations`: its `Operation` is one of
/// them. Decoys that name LaunchPowerApp elsewhere (an activity name, an ObjectId) are not kept; a
/// launch without an app id is.
pub(super) fn is_stored(record: &Value, operations: &[&str]) -> bool {
    record["Operation"]
        .as_str()
        .is_some_and(|operation| operations.contains(&operation))
}

struct Environment {
    id: String,
    display_name: String,
    /// The name the legacy PowerApps records use: `Default-<tenant>` or the environment GUID.
    legacy_name: String,
}

struct App {
    id: String,
    name: &'static str,
    environment: usize,
}

struct User {
    upn: String,
    /// The same UPN as some records spell it, e.g. `AmberR@CONTOSO.OnMicrosoft.com`.
    shouted_upn: Option<String>,
    key: String,
    admin: bool,
}

/// What an [`Event`] is made of: the slot stream's draws for it, in order (user, Id bytes,
/// `CreationTime` form and fraction, whether the UPN is the shouted spelling, IP octets).
struct EventDraws {
    when: DateTime<Utc>,
    user: usize,
    id: [u8; 16],
    form: i32,
    fraction: i32,
    shouted: bool,
    ip: (i32, u8, u8, i32),
}

/// The fields every audit record shares (SCH common schema), for one event by one user.
struct Event {
    id: String,
    creation_time: String,
    upn: String,
    user_key: String,
    admin: bool,
    ip: String,
}

impl Event {
    /// A record: the common fields plus `fields` (a JSON object), which win on conflict.
    fn record(
        &self,
        tenant_id: &str,
        record_type: u32,
        operation: &str,
        workload: &str,
        fields: Value,
    ) -> Value {
        let mut record = json!({
            "Id": self.id,
            "RecordType": record_type,
            "CreationTime": self.creation_time,
            "Operation": operation,
            "OrganizationId": tenant_id,
            "UserType": if self.admin { 2 } else { 0 },
            "UserKey": self.user_key,
            "Workload": workload,
            "UserId": self.upn,
            "ClientIP": self.ip,
        });
        if let (Value::Object(record), Value::Object(fields)) = (&mut record, fields) {
            record.extend(fields);
        }
        record
    }
}

/// The simulated tenant: immutable pools plus a catalogue that grows when blobs are published.
pub(super) struct Tenant {
    seed: u64,
    tenant_id: String,
    region: &'static str,
    records_per_blob: u32,
    launch_share: f64,
    identity_mix: f64,
    unreadable_share: f64,
    environments: Vec<Environment>,
    apps: Vec<App>,
    users: Vec<User>,
    catalogue: RwLock<Catalogue>,
    bodies: Mutex<HashMap<usize, Bytes>>,
    /// Blobs whose body was given by [`Tenant::publish_body`] instead of generated.
    given: Mutex<HashSet<usize>>,
    /// Where the laid-out catalogue starts: `now` (to the millisecond) minus its hours.
    origin: DateTime<Utc>,
    /// Hours of history before `origin` that only the audit log (the Graph API) holds.
    history_hours: u32,
    /// Audit.General blobs per hour ([`SimSpec::blobs_per_hour`]), for the history's hours too.
    blobs_per_hour: u32,
}

impl Tenant {
    /// Draws the pools from the seed and lays out the initial blobs for `spec`.
    pub(super) fn new(spec: &SimSpec) -> Self {
        let mut rng = seeded(spec.seed, Stream::Pools, 0, 0);
        let tid = &spec.tenant_id;
        let region = *pick(&mut rng, &["emea0026", "na0036", "can0014", "emea0029"]);
        let mut environments = vec![Environment {
            id: format!("default-{tid}"),
            display_name: "Contoso (default)".into(),
            legacy_name: format!("Default-{tid}"),
        }];
        let dev = format!("dev-na-{}", hex(&mut rng, 8));
        for name in ["Sales Production", "Field Service", dev.as_str()] {
            let id = guid(&mut rng);
            environments.push(Environment {
                display_name: name.into(),
                legacy_name: id.clone(),
                id,
            });
        }
        let apps = APP_NAMES
            .iter()
            .map(|name| App {
                id: guid(&mut rng),
                name,
                environment: rng.random_range(0..environments.len()),
            })
            .collect();
        let users = FIRST_NAMES
            .iter()
            .enumerate()
            .map(|(i, first)| {
                let initial = char::from(b'A' + rng.random_range(0..26u8));
                User {
                    upn: format!(
                        "{}{}@contoso.onmicrosoft.com",
                        first.to_lowercase(),
                        initial.to_ascii_lowercase()
                    ),
                    shouted_upn: (i % 4 == 0)
                        .then(|| format!("{first}{initial}@CONTOSO.OnMicrosoft.com")),
                    key: guid(&mut rng),
                    admin: i % 10 == 0,
                }
            })
            .collect();

        let tenant = Self {
            seed: spec.seed,
            tenant_id: tid.clone(),
            region,
            records_per_blob: spec.records_per_blob,
            launch_share: spec.launch_share,
            identity_mix: spec.identity_mix,
            unreadable_share: spec.unreadable_share,
            environments,
            apps,
            users,
            catalogue: RwLock::default(),
            bodies: Mutex::default(),
            given: Mutex::default(),
            origin: spec.now.trunc_subsecs(3) - Duration::hours(spec.hours.min(MAX_HOURS).into()),
            history_hours: audit_log::history_hours(spec),
            blobs_per_hour: spec.blobs_per_hour,
        };
        tenant.lay_out(spec);
        tenant
    }

    /// The initial blobs: `blobs_per_hour` Audit.General blobs in each hour of [now - hours, now), and one
    /// Audit.SharePoint or Audit.Exchange blob per hour, alternately; catalogue order is time order.
    fn lay_out(&self, spec: &SimSpec) {
        let mut rng = seeded(spec.seed, Stream::Catalogue, 0, 0);
        let hours = spec.hours.min(MAX_HOURS);
        let origin = spec.now.trunc_subsecs(3) - Duration::hours(hours.into());
        let mut plan = Vec::new();
        for hour in 0..hours {
            let slot = origin + Duration::hours(hour.into());
            let mut at = || slot + Duration::milliseconds(rng.random_range(0..3_600_000));
            for _ in 0..spec.blobs_per_hour {
                plan.push((Kind::General, at()));
            }
            let other = if hour % 2 == 0 {
                Kind::SharePoint
            } else {
                Kind::Exchange
            };
            plan.push((other, at()));
        }
        plan.sort_by_key(|&(_, created)| created);
        let mut catalogue = self.write();
        for (kind, created) in plan {
            catalogue.add(self.region, kind, created, rng.random_bool(LATE_SHARE));
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Catalogue> {
        self.catalogue
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Catalogue> {
        self.catalogue
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How many blobs there are, of every content type.
    pub(super) fn len(&self) -> usize {
        self.read().blobs.len()
    }

    /// Records in each generated blob ([`SimSpec::records_per_blob`]).
    pub(super) fn records_per_blob(&self) -> u32 {
        self.records_per_blob
    }

    /// Adds an Audit.General blob created at `created` (to the millisecond); returns its content id.
    pub(super) fn publish(&self, created: DateTime<Utc>) -> String {
        self.write()
            .add(self.region, Kind::General, created.trunc_subsecs(3), false)
    }

    /// Makes blob `content_id` expire at `at` (live logs show other lifetimes than 7 days).
    pub(super) fn set_expiration(&self, content_id: &str, at: DateTime<Utc>) {
        let mut catalogue = self.write();
        if let Some(index) = catalogue.by_id.get(content_id).copied() {
            catalogue.blobs[index].expires = Some(at);
        }
    }

    /// Adds an Audit.General blob whose body is `body` verbatim (malformed content, for tests of how
    /// a client copes); returns its content id.
    pub(super) fn publish_body(&self, created: DateTime<Utc>, body: Bytes) -> String {
        let id = self.publish(created);
        if let Some(index) = self.read().by_id.get(&id).copied() {
            self.given
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(index);
            self.bodies
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(index, body);
        }
        id
    }

    /// Every blob of `content_type`, expired or not, sorted by (contentCreated, index).
    pub(super) fn blobs(&self, content_type: &str) -> Vec<Blob> {
        let mut blobs: Vec<Blob> = self
            .read()
            .blobs
            .iter()
            .filter(|b| b.kind.content_type() == content_type)
            .cloned()
            .collect();
        blobs.sort_by_key(|b| (b.created, b.index));
        blobs
    }

    /// What `/subscriptions/content` selects: `start <= contentCreated < end`, not expired at `now`.
    pub(super) fn listing(
        &self,
        content_type: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<Blob> {
        let mut blobs = self.blobs(content_type);
        blobs.retain(|b| start <= b.created && b.created < end && b.expiration() > now);
        blobs
    }

    /// The blob at catalogue position `index`, if there is one.
    pub(super) fn blob(&self, index: usize) -> Option<Blob> {
        self.read().blobs.get(index).cloned()
    }

    /// The blob whose content id is exactly `content_id`.
    pub(super) fn find(&self, content_id: &str) -> Option<Blob> {
        let catalogue = self.read();
        let index = *catalogue.by_id.get(content_id)?;
        catalogue.blobs.get(index).cloned()
    }

    /// The blob's JSON array, rendered once and cached.
    pub(super) fn body(&self, index: usize) -> Bytes {
        let cache = || self.bodies.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(body) = cache().get(&index) {
            return body.clone();
        }
        let body = Bytes::from(Value::Array(self.records(&self.read(), index)).to_string());
        cache().insert(index, body.clone());
        body
    }

    /// Ids of the records a correct client stores from the blobs listed for the window (see
    /// [`is_stored`]); unreadable records (see [`readable`]) are not among them.
    pub(super) fn ground_truth(
        &self,
        content_type: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        now: DateTime<Utc>,
        operations: &[&str],
    ) -> BTreeSet<String> {
        self.listed_records(content_type, start, end, now)
            .into_iter()
            .filter(|record| is_stored(record, operations) && readable(record, operations))
            .filter_map(|record| record["Id"].as_str().map(str::to_owned))
            .collect()
    }

    /// How many records of the blobs listed for the window a correct client quarantines (see
    /// [`readable`]).
    pub(super) fn unreadable_records(
        &self,
        content_type: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        now: DateTime<Utc>,
        operations: &[&str],
    ) -> usize {
        self.listed_records(content_type, start, end, now)
            .iter()
            .filter(|record| !readable(record, operations))
            .count()
    }

    /// How many people launched apps in the blobs listed for the window, as a correct client can tell
    /// them apart: records naming one by UPN and by object id are one person when any record names
    /// both; a launch naming no user counts no one.
    pub(super) fn unique_users(
        &self,
        content_type: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> usize {
        let mut people = People::default();
        for record in self.listed_records(content_type, start, end, now) {
            if is_stored(&record, &["LaunchPowerApp"]) && readable(&record, &["LaunchPowerApp"]) {
                let (upn, object_id) = identity(&record);
                people.add(upn, object_id);
            }
        }
        people.count()
    }

    /// Every record served by the blobs listed for the window.
    fn listed_records(
        &self,
        content_type: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<Value> {
        let listed = self.listing(content_type, start, end, now);
        let catalogue = self.read();
        listed
            .iter()
            .flat_map(|blob| self.served_records(&catalogue, blob.index))
            .collect()
    }

    /// The records as served: a given body's if it is a JSON array (a client skips any other body
    /// whole), else the generated ones.
    fn served_records(&self, catalogue: &Catalogue, index: usize) -> Vec<Value> {
        if !self
            .given
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&index)
        {
            return self.records(catalogue, index);
        }
        let body = self
            .bodies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&index)
            .cloned();
        body.and_then(|b| serde_json::from_slice::<Vec<Value>>(&b).ok())
            .unwrap_or_default()
    }

    fn records(&self, catalogue: &Catalogue, index: usize) -> Vec<Value> {
        (0..self.records_per_blob)
            .map(|slot| {
                let record = self.record(catalogue, index, slot);
                let mut rng = seeded(self.seed, Stream::Quirks, index as u64, slot.into());
                // The first draw is the identity's (see `fresh`); this one is the slot's own.
                let _ = rng.random::<f64>();
                if record["Operation"] == "LaunchPowerApp"
                    && rng.random::<f64>() < self.unreadable_share
                {
                    spoil(&mut rng, record)
                } else {
                    record
                }
            })
            .collect()
    }

    /// The record in `slot` of blob `index`: either fresh, or (duplicates) the record of an earlier slot.
    fn record(&self, catalogue: &Catalogue, mut index: usize, mut slot: u32) -> Value {
        loop {
            let blob = &catalogue.blobs[index];
            let mut rng = seeded(self.seed, Stream::Record, index as u64, slot.into());
            if blob.ordinal > 0 && rng.random_bool(DUPLICATE_SHARE) {
                let siblings = &catalogue.by_kind[blob.kind as usize];
                let ordinal =
                    rng.random_range(blob.ordinal.saturating_sub(DUPLICATE_REACH)..blob.ordinal);
                index = siblings[ordinal];
                slot = rng.random_range(0..self.records_per_blob);
                continue;
            }
            let event = self.event(&mut rng, blob.origin());
            let record = self.fresh(&mut rng, blob.kind, &event);
            return self.with_quirks(record, index as u64, slot);
        }
    }

    /// `record` with its slot's identity quirk (see [`SimSpec::identity_mix`]), if it draws one.
    fn with_quirks(&self, mut record: Value, key: u64, slot: u32) -> Value {
        let mut quirks = seeded(self.seed, Stream::Quirks, key, slot.into());
        if record["Workload"] == "PowerPlatform" || record["Workload"] == "PowerApps" {
            let draw = quirks.random::<f64>();
            if draw < self.identity_mix {
                one_identity(&mut record, draw < self.identity_mix / 2.0, &mut quirks);
            }
        }
        record
    }

    /// The instant of a fresh record of a blob created at `origin.created`: 5 to 90 minutes before
    /// it (3 to 12 hours for a late blob), the first draws of the slot's stream.
    fn when(rng: &mut StdRng, origin: Origin) -> DateTime<Utc> {
        let minutes = if origin.late {
            rng.random_range(180..=720)
        } else {
            rng.random_range(5..=90)
        };
        origin.created - Duration::minutes(minutes) - Duration::seconds(rng.random_range(0..60))
    }

    /// The common fields of a fresh record of a blob (its instant from [`Tenant::when`]).
    fn event(&self, rng: &mut StdRng, origin: Origin) -> Event {
        let when = Self::when(rng, origin);
        self.event_at(rng, when)
    }

    fn event_at(&self, rng: &mut StdRng, when: DateTime<Utc>) -> Event {
        let draws = self.draw_event(rng, when);
        self.render_event(&draws)
    }

    /// An event's draws, in the stream's order, before any text is made of them (a scan of the
    /// audit log renders only the events it keeps).
    fn draw_event(&self, rng: &mut StdRng, when: DateTime<Utc>) -> EventDraws {
        let user = rng.random_range(0..self.users.len());
        let id: [u8; 16] = rng.random();
        let form: i32 = rng.random_range(0..20);
        let fraction: i32 = if form == 1 {
            rng.random_range(0..10_000_000)
        } else {
            0
        };
        let shouted = self.users[user].shouted_upn.is_some() && rng.random_bool(0.5);
        let ip: (i32, u8, u8, i32) = (
            rng.random_range(20..224),
            rng.random(),
            rng.random(),
            rng.random_range(1..255),
        );
        EventDraws {
            when,
            user,
            id,
            form,
            fraction,
            shouted,
            ip,
        }
    }

    fn render_event(&self, draws: &EventDraws) -> Event {
        let user = &self.users[draws.user];
        let upn = match &user.shouted_upn {
            Some(shouted) if draws.shouted => shouted.clone(),
            _ => user.upn.clone(),
        };
        let (a, b, c, d) = draws.ip;
        Event {
            id: uuid::Builder::from_random_bytes(draws.id)
                .into_uuid()
                .to_string(),
            creation_time: creation_time(draws.when, draws.form, draws.fraction),
            upn,
            user_key: user.key.clone(),
            admin: user.admin,
            ip: format!("{a}.{b}.{c}.{d}"),
        }
    }

    /// The rest of a fresh record of a blob of `kind`, after its [`Tenant::event`].
    fn fresh(&self, rng: &mut StdRng, kind: Kind, event: &Event) -> Value {
        match kind {
            Kind::General => {
                let draw = self.launch_draw(rng);
                self.general(rng, event, draw)
            }
            Kind::SharePoint => self.sharepoint(rng, event),
            Kind::Exchange => self.exchange(rng, event),
        }
    }

    /// An Audit.General record's first draws: its app and whether it is a launch.
    fn launch_draw(&self, rng: &mut StdRng) -> (usize, bool) {
        let app = rng.random_range(0..self.apps.len());
        (app, rng.random::<f64>() < self.launch_share)
    }

    /// Audit.General: launches (both schemas), Power Apps decoys, flows and other workloads' noise.
    fn general(&self, rng: &mut StdRng, event: &Event, (app, launch): (usize, bool)) -> Value {
        let app = &self.apps[app];
        if launch {
            return if rng.random_bool(0.6) {
                self.power_platform(
                    rng,
                    event,
                    app,
                    "LaunchPowerApp",
                    "LaunchPowerApp",
                    app.id.clone(),
                )
            } else {
                let mut record = self.power_apps_legacy(event, app, "LaunchPowerApp");
                // Some legacy launches come without AppName (coe-starter-kit #9934): still launches.
                if rng.random_bool(0.03)
                    && let Some(fields) = record.as_object_mut()
                {
                    fields.remove("AppName");
                }
                record
            };
        }
        let mut record = match rng.random_range(0..100) {
            0..12 => {
                let operation = *pick(
                    rng,
                    &[
                        "CreatePowerApp",
                        "DeletePowerApp",
                        "PublishPowerApp",
                        "PowerAppPermissionEdited",
                    ],
                );
                if rng.random_bool(0.5) {
                    let app_id = if operation == "PowerAppPermissionEdited" {
                        format!("/providers/Microsoft.PowerApps/apps/{}", app.id)
                    } else {
                        app.id.clone()
                    };
                    return self.power_platform(rng, event, app, operation, operation, app_id);
                }
                return self.power_apps_legacy(event, app, operation);
            }
            // The activity name says LaunchPowerApp; the Operation does not.
            12..14 => {
                return self.power_platform(
                    rng,
                    event,
                    app,
                    "UpdatePowerApp",
                    "LaunchPowerApp",
                    app.id.clone(),
                );
            }
            14..18 => self.other_workload(rng, event, true),
            18..26 => self.flow(rng, event, app),
            _ => self.other_workload(rng, event, false),
        };
        pad(rng, &mut record);
        record
    }

    /// RecordType 256, the current schema (§5.2), shaped like the full sample.
    fn power_platform(
        &self,
        rng: &mut StdRng,
        event: &Event,
        app: &App,
        operation: &str,
        activity: &str,
        app_id: String,
    ) -> Value {
        let environment = &self.environments[app.environment];
        let properties = [
            (
                "powerplatform.analytics.resource.power_app.display_name",
                app.name.to_owned(),
            ),
            ("powerplatform.analytics.resource.power_app.id", app_id),
            (
                "powerplatform.analytics.resource.environment.name",
                environment.display_name.clone(),
            ),
            (
                "powerplatform.analytics.operation.is_successful",
                "True".into(),
            ),
            ("powerplatform.analytics.correlation.id", guid(rng)),
            ("enduser.ip_address", event.ip.clone()),
            ("user_agent.original", pick(rng, USER_AGENTS).to_string()),
            ("powerplatform.analytics.resource.type", "PowerApp".into()),
            ("version", "1.0".into()),
            ("type", "PowerPlatformAdministratorActivityRecord".into()),
            ("powerplatform.analytics.activity.name", activity.into()),
            ("powerplatform.analytics.activity.id", event.id.clone()),
            (
                "powerplatform.analytics.resource.environment.id",
                environment.id.clone(),
            ),
            ("enduser.id", event.user_key.clone()),
            (
                "powerplatform.analytics.resource.tenant.id",
                self.tenant_id.clone(),
            ),
            ("enduser.principal_name", event.upn.clone()),
            (
                "enduser.role",
                if event.admin { "Admin" } else { "User" }.into(),
            ),
        ]
        .map(|(name, value)| json!({"Name": name, "Value": value}));
        event.record(
            &self.tenant_id,
            256,
            operation,
            "PowerPlatform",
            json!({
                "PropertyCollection": properties,
                "EnvironmentId": environment.id,
                "ResultStatus": "Succeeded",
                "Version": 1,
                "RequiresCustomerKeyEncryption": false,
            }),
        )
    }

    /// RecordType 45, the legacy schema (§5.3): the app GUID is the top-level `AppName`.
    fn power_apps_legacy(&self, event: &Event, app: &App, operation: &str) -> Value {
        let environment = &self.environments[app.environment];
        let additional = json!({"environmentName": environment.legacy_name, "appName": app.name});
        event.record(
            &self.tenant_id,
            45,
            operation,
            "PowerApps",
            json!({
                "ResultStatus": "Success",
                "Version": 1,
                "ClientIP": format!("::ffff:{}", event.ip),
                "ObjectId": event.user_key,
                "AdditionalInfo": additional.to_string(),
                "AppName": app.id,
            }),
        )
    }

    fn flow(&self, rng: &mut StdRng, event: &Event, app: &App) -> Value {
        let flow = guid(rng);
        let environment = &self.environments[app.environment].legacy_name;
        let operation = *pick(rng, &["CreateFlow", "EditFlow", "DeleteFlow"]);
        event.record(
            &self.tenant_id,
            30,
            operation,
            "MicrosoftFlow",
            json!({
                "ResultStatus": "Succeeded",
                "ObjectId": flow,
                "FlowConnectorNames": *pick(rng, &["Office 365 Outlook, SharePoint", "Microsoft Teams", "Approvals, Office 365 Users"]),
                "FlowDetailsUrl": format!("https://make.powerautomate.com/manage/environments/{environment}/flows/{flow}/details"),
                "LicenseDisplayName": "Microsoft 365 E5",
                "RecipientUPN": "",
                "SharingPermission": 0,
                "UserTypeInitiated": 1,
                "UserUPN": event.upn,
            }),
        )
    }

    /// Power BI, Teams, Forms or Dynamics noise; with `mention`, some string names "LaunchPowerApp".
    fn other_workload(&self, rng: &mut StdRng, event: &Event, mention: bool) -> Value {
        let tid = &self.tenant_id;
        let label = |rng: &mut StdRng, plain: &[&'static str], mentioned: &'static str| {
            if mention {
                mentioned
            } else {
                *pick(rng, plain)
            }
        };
        match rng.random_range(0..4) {
            0 => {
                let report = label(
                    rng,
                    &["Sales pipeline", "Weekly KPIs", "Ticket backlog"],
                    "LaunchPowerApp usage",
                );
                event.record(
                    tid,
                    20,
                    "ViewReport",
                    "PowerBI",
                    json!({
                        "Activity": "ViewReport",
                        "ItemName": report,
                        "ReportName": report,
                        "ObjectId": report,
                        "ReportId": guid(rng),
                        "WorkSpaceName": *pick(rng, &["Finance", "Operations", "My workspace"]),
                        "WorkspaceId": guid(rng),
                        "DistributionMethod": "Workspace",
                        "ConsumptionMethod": "Power BI Web",
                        "UserAgent": *pick(rng, USER_AGENTS),
                        "RequestId": guid(rng),
                        "IsSuccess": true,
                    }),
                )
            }
            1 => {
                let chat = label(
                    rng,
                    &["Project Falcon", "Site visits", "Lunch"],
                    "LaunchPowerApp rollout",
                );
                event.record(tid, 25, "MessageSent", "MicrosoftTeams", json!({
                    "ChatName": chat,
                    "ObjectId": chat,
                    "ChatThreadId": format!("19:{}@thread.v2", hex(rng, 32)),
                    "CommunicationType": "GroupChat",
                    "MessageId": rng.random_range(1_600_000_000_000u64..1_800_000_000_000).to_string(),
                    "ResourceTenantId": tid,
                }))
            }
            2 => {
                let form = label(
                    rng,
                    &["Event registration", "Customer survey", "IT request"],
                    "LaunchPowerApp feedback",
                );
                let form_id = hex(rng, 48);
                event.record(
                    tid,
                    66,
                    "ViewForm",
                    "MicrosoftForms",
                    json!({
                        "FormId": form_id,
                        "FormName": form,
                        "ObjectId": form_id,
                        "SourceApp": "Microsoft Forms",
                        "FormsUserType": "Responder",
                    }),
                )
            }
            _ => {
                let entity = label(rng, &["account", "contact", "incident"], "LaunchPowerApp");
                event.record(tid, 21, "RetrieveMultiple", "CRM", json!({
                    "CrmOrganizationUniqueName": "org8f2a1c3d",
                    "EntityName": entity,
                    "ObjectId": entity,
                    "Message": "RetrieveMultiple",
                    "InstanceUrl": "https://contoso.crm.dynamics.com",
                    "ItemUrl": format!("https://contoso.crm.dynamics.com/main.aspx?etn={entity}&pagetype=entitylist"),
                    "Query": format!("$select=name&$filter=contains(name,'{entity}')"),
                    "UserAgent": *pick(rng, USER_AGENTS),
                }))
            }
        }
    }

    fn sharepoint(&self, rng: &mut StdRng, event: &Event) -> Value {
        let site = *pick(rng, &["ops", "hr", "sales", "it"]);
        let file = if rng.random_bool(0.05) {
            "LaunchPowerApp.msapp"
        } else {
            *pick(
                rng,
                &[
                    "Budget 2026.xlsx",
                    "Minutes.docx",
                    "Roadmap.pptx",
                    "Checklist.pdf",
                ],
            )
        };
        let extension = file.rsplit('.').next().unwrap_or_default();
        let operation = *pick(
            rng,
            &[
                "FileAccessed",
                "FileModified",
                "FileDownloaded",
                "FilePreviewed",
            ],
        );
        let mut record = event.record(&self.tenant_id, 6, operation, "SharePoint", json!({
            "ObjectId": format!("https://contoso.sharepoint.com/sites/{site}/Shared Documents/{file}"),
            "SiteUrl": format!("https://contoso.sharepoint.com/sites/{site}/"),
            "SourceFileName": file,
            "SourceFileExtension": extension,
            "SourceRelativeUrl": "Shared Documents",
            "ItemType": "File",
            "EventSource": "SharePoint",
            "ListId": guid(rng),
            "ListItemUniqueId": guid(rng),
            "Site": guid(rng),
            "WebId": guid(rng),
            "UserAgent": *pick(rng, USER_AGENTS),
        }));
        pad(rng, &mut record);
        record
    }

    fn exchange(&self, rng: &mut StdRng, event: &Event) -> Value {
        let subject = if rng.random_bool(0.05) {
            "LaunchPowerApp failed for 3 users"
        } else {
            *pick(
                rng,
                &[
                    "Quarterly review",
                    "Re: invoice 4471",
                    "Out of office",
                    "Team offsite",
                ],
            )
        };
        let operation = *pick(rng, &["Send", "MoveToDeletedItems", "Update"]);
        let mut record = event.record(&self.tenant_id, 2, operation, "Exchange", json!({
            "MailboxOwnerUPN": event.upn,
            "MailboxGuid": guid(rng),
            "LogonType": 0,
            "ExternalAccess": false,
            "OrganizationName": "contoso.onmicrosoft.com",
            "ClientInfoString": "Client=OWA;Action=ViewAction",
            "Item": {"Id": hex(rng, 40), "Subject": subject, "ParentFolder": {"Name": "Inbox", "Path": "\\Inbox"}},
        }));
        pad(rng, &mut record);
        record
    }
}

/// Makes a Power Apps record name its user one way only: by object id (`UserId` = the object id,
/// no `enduser.principal_name`) or by UPN (`UserKey` a PUID, no `enduser.id`).
fn one_identity(record: &mut Value, by_object_id: bool, rng: &mut StdRng) {
    let Some(fields) = record.as_object_mut() else {
        return;
    };
    let drop_property = if by_object_id {
        if let Some(key) = fields.get("UserKey").cloned() {
            fields.insert("UserId".into(), key);
        }
        "enduser.principal_name"
    } else {
        fields.insert(
            "UserKey".into(),
            format!("10032000{}", hex(rng, 8).to_uppercase()).into(),
        );
        "enduser.id"
    };
    if let Some(Value::Array(properties)) = fields.get_mut("PropertyCollection") {
        properties.retain(|p| p["Name"] != drop_property);
    }
}

/// One launch record made unreadable, in one of the shapes seen in the wild.
fn spoil(rng: &mut StdRng, mut record: Value) -> Value {
    match rng.random_range(0..5) {
        0 => {
            if let Some(fields) = record.as_object_mut() {
                fields.remove("Id");
            }
            record
        }
        1 => {
            let id = record["Id"].clone();
            record["Id"] = json!({ "value": id });
            record
        }
        2 => {
            let day_first = record["CreationTime"]
                .as_str()
                .and_then(|t| t.get(..19))
                .and_then(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S").ok())
                .map(|t| t.format("%d/%m/%Y %H:%M:%S").to_string())
                .unwrap_or_else(|| "28/11/2026 13:29:30".into());
            record["CreationTime"] = day_first.into();
            record
        }
        3 => Value::String(record.to_string()),
        _ => Value::Null,
    }
}

/// Whether a correct client can read `record` when collecting `operations` (it quarantines it
/// otherwise): a JSON object with a non-empty string `Id`, and, if it is one to keep, a
/// `CreationTime` in a form the service or an export writes (`YYYY-MM-DD`, `T` or a space, the time,
/// a fraction, `Z` or an offset). Written here on its own, not shared with the client.
pub(super) fn readable(record: &Value, operations: &[&str]) -> bool {
    let has_id = record["Id"]
        .as_str()
        .is_some_and(|id| !id.trim().is_empty());
    let time_ok = || {
        record["CreationTime"].as_str().is_some_and(|t| {
            let t = t.trim().replacen(' ', "T", 1);
            chrono::DateTime::parse_from_rfc3339(&t).is_ok()
                || chrono::DateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f%z").is_ok()
                || chrono::NaiveDateTime::parse_from_str(
                    t.trim_end_matches('Z'),
                    "%Y-%m-%dT%H:%M:%S%.f",
                )
                .is_ok()
        })
    };
    record.is_object() && has_id && (!is_stored(record, operations) || time_ok())
}

/// The user a stored record names: its UPN (lower-cased) and its Entra object id, each if present,
/// read as the reference describes (management-api.md §5.2, §5.3).
fn identity(record: &Value) -> (Option<String>, Option<String>) {
    let guid = |v: &Value| {
        v.as_str()
            .and_then(|s| uuid::Uuid::try_parse(s).ok())
            .map(|g| g.hyphenated().to_string())
    };
    let property = |name: &str| {
        record["PropertyCollection"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["Name"] == name))
            .map(|p| p["Value"].clone())
            .unwrap_or(Value::Null)
    };
    let upn = [&record["UserId"], &property("enduser.principal_name")]
        .into_iter()
        .find_map(|v| {
            v.as_str()
                .filter(|s| s.contains('@'))
                .map(str::to_lowercase)
        });
    let object_id = guid(&property("enduser.id"))
        .or_else(|| guid(&record["UserKey"]))
        .or_else(|| guid(&record["UserId"]));
    (upn, object_id)
}

/// People told apart by their identifiers: a UPN and an object id named by one record are one person.
#[derive(Default)]
struct People {
    /// Identifier → its parent in the union-find.
    parent: HashMap<String, String>,
}

impl People {
    fn root(&mut self, id: &str) -> String {
        let mut at = id.to_owned();
        while let Some(up) = self.parent.get(&at).filter(|up| **up != at) {
            at = up.clone();
        }
        at
    }

    fn add(&mut self, upn: Option<String>, object_id: Option<String>) {
        let ids: Vec<String> = [upn, object_id].into_iter().flatten().collect();
        for id in &ids {
            self.parent.entry(id.clone()).or_insert_with(|| id.clone());
        }
        if let [a, b] = ids.as_slice() {
            let (ra, rb) = (self.root(a), self.root(b));
            self.parent.insert(ra, rb);
        }
    }

    fn count(&mut self) -> usize {
        let ids: Vec<String> = self.parent.keys().cloned().collect();
        ids.iter()
            .map(|id| self.root(id))
            .collect::<HashSet<_>>()
            .len()
    }
}

/// `CreationTime` mostly in the REF form (no zone, no fraction); about one in ten with `Z` (`form` 0)
/// or 7 digits (`form` 1, `fraction` the digits).
fn creation_time(when: DateTime<Utc>, form: i32, fraction: i32) -> String {
    let seconds = when.format("%Y-%m-%dT%H:%M:%S");
    match form {
        0 => format!("{seconds}Z"),
        1 => format!("{seconds}.{fraction:07}Z"),
        _ => seconds.to_string(),
    }
}

/// Grows a noise record to a random 500–3000 bytes with `ExtendedProperties`, as real records vary.
fn pad(rng: &mut StdRng, record: &mut Value) {
    let target = rng.random_range(500..3000);
    let mut size = record.to_string().len();
    let mut extra = Vec::new();
    while size < target {
        let name = *pick(
            rng,
            &[
                "UserAgent",
                "RequestType",
                "ResultStatusDetail",
                "SessionId",
                "ClientRequestId",
                "DeviceId",
            ],
        );
        let length = rng.random_range(16..120);
        let value = hex(rng, length);
        size += name.len() + value.len() + 24;
        extra.push(json!({"Name": name, "Value": value}));
    }
    if let (Value::Object(record), false) = (record, extra.is_empty()) {
        record.insert("ExtendedProperties".into(), extra.into());
    }
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn hex(rng: &mut StdRng, length: usize) -> String {
    (0..length)
        .map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)]))
        .collect()
}

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 PowerApps/3.25",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Safari/537.36 Edg/148.0.0.0",
];

const APP_NAMES: &[&str] = &[
    "Expense Tracker",
    "Site Inspection",
    "Leave Request",
    "Asset Checkout",
    "Visitor Sign-In",
    "Timesheet",
    "Incident Report",
    "Room Booking",
    "Purchase Request",
    "Onboarding Checklist",
    "Field Survey",
    "Help Desk",
    "Inventory Count",
    "Safety Audit",
    "Travel Request",
    "Contract Review",
    "Fleet Log",
    "Training Tracker",
    "Mileage Claim",
    "Shift Swap",
    "Quality Check",
    "Vendor Portal",
    "Event Planner",
    "Badge Request",
    "Maintenance Log",
    "Customer Visits",
    "Idea Box",
    "Kudos",
    "Lab Samples",
    "Project Intake",
    "Legacy Timesheet (deleted)",
    "Test App",
    "Copy of Help Desk",
];

const FIRST_NAMES: &[&str] = &[
    "Amber", "Ben", "Carla", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemal",
    "Lena", "Marco", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Victor",
    "Wen", "Xavier", "Yara", "Zoe", "Aaron", "Bianca", "Chen", "Dana", "Emil", "Fatima", "Gustav",
    "Hana", "Igor", "Julia", "Kofi", "Lucia", "Mateo", "Nina", "Oscar", "Paula", "Rafael", "Sofia",
    "Tomas", "Ursula", "Vera", "Wade", "Ximena", "Yusuf", "Zara", "Alma", "Bruno", "Cleo", "Diego",
    "Erin", "Felix", "Gita", "Hugo", "Ivy",
];
