//! The data that flows between the stages (a leaf: it imports no other module of the crate): a blob as
//! a listing names it, an event worth keeping, and the unit of work a source hands to the writer.
//!
//! `api` produces [`BlobRef`]s, `extract` produces [`Event`]s, `sync` bundles them into [`Unit`]s, and
//! `store` commits them; none of those needs to know the others to speak of these.

use chrono::{DateTime, Utc};

/// A blob as listed by `subscriptions/content` (management-api.md §1.2): the fields auditsync keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    /// The content type it was listed under, e.g. `Audit.General`.
    pub content_type: String,
    /// `contentId`: the blob's key in the ledger.
    pub content_id: String,
    /// `contentUri`: where to fetch it (the service's URL, used as given after the transport check).
    pub content_uri: String,
    /// `contentCreated`, parsed at the edge.
    pub created: DateTime<Utc>,
    /// `contentExpiration` (creation + 7 days), when the listing gave one it could parse.
    pub expiration: Option<DateTime<Utc>>,
}

/// A kept record, ready for the `audit_events` table (see `extract` for what is kept).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The record's `Id`: the table's key, so the same event from any source is one row.
    pub id: String,
    /// `CreationTime` in the stored form: RFC 3339 UTC, whole seconds (`2026-05-19T13:17:34Z`).
    pub creation_time: String,
    /// `Operation`, e.g. `LaunchPowerApp`.
    pub operation: String,
    /// `Workload`: `PowerPlatform` (RecordType 256) or `PowerApps` (45) for launches.
    pub workload: Option<String>,
    /// `RecordType`.
    pub record_type: Option<i64>,
    /// `UserId` as logged: the user's UPN, or in some records the user's object id.
    pub user_id: Option<String>,
    /// The user's Entra object id, a lower-case GUID: `enduser.id` (RecordType 256), else `UserKey`,
    /// else `UserId`, whichever is a GUID first. Users are counted by it where records carry it.
    pub user_object_id: Option<String>,
    /// The user's UPN, lower-cased: `UserId` when it is one (it holds an `@`), else
    /// `enduser.principal_name`. Users are counted by it where no record names their object id.
    pub user_upn: Option<String>,
    /// The app's GUID, lower-cased; `None` when the record names no app.
    pub app_id: Option<String>,
    /// The app's display name: `power_app.display_name` (RecordType 256), or `appName` in the
    /// legacy record's `AdditionalInfo` (RecordType 45).
    pub app_name: Option<String>,
    /// The app's environment id, when the record says it.
    pub environment_id: Option<String>,
    /// The record exactly as received (`AuditData`).
    pub raw: String,
}

/// One unit of work a source hands to the writer: the events it kept and the ledger entry that marks
/// them stored. The writer commits both in one transaction (design.md invariant 1), so a unit is
/// stored exactly when its ledger row exists.
#[derive(Debug)]
pub struct Unit {
    /// What the ledger row records.
    pub ledger: LedgerEntry,
    /// The kept events (possibly none: the unit still counts as stored).
    pub events: Vec<Event>,
    /// Records the unit held, kept or not, quarantined ones included.
    pub records_seen: usize,
    /// The records that could not be read; stored in the quarantine table with the unit's ledger
    /// row, in the same transaction.
    pub quarantined: Vec<Quarantined>,
}

/// A record that could not be read (see `extract` for which faults are a record's), kept with its
/// text so that nothing is silently dropped: the store's quarantine table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// Where it was in its source: the record's index in its blob's array (from 0), or the line of an
    /// imported file (from 1).
    pub position: u64,
    /// The record's text exactly as received.
    pub raw: String,
    /// Why it cannot be read, for the admin.
    pub reason: String,
    /// Unreadable records after this one in the same source that it stands for, their text not
    /// kept: 0 but for the last entry of a blob with more than `extract::QUARANTINE_KEPT` (its
    /// `reason` says how many). They count as quarantined all the same.
    pub more: u64,
}

/// What a unit's ledger row says was stored: a blob of the Management Activity API (row in
/// `blob_ledger`). A Graph audit query's records will be the second kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerEntry {
    /// A blob fetched at its `contentUri`.
    Blob(BlobRef),
}

impl LedgerEntry {
    /// The entry's key in its ledger (a blob's `contentId`).
    pub fn key(&self) -> &str {
        match self {
            LedgerEntry::Blob(b) => &b.content_id,
        }
    }
}
