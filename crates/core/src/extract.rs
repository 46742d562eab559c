//! The one definition of "an event worth keeping", shared by `sync` (blobs) and `import` (CSV exports).
//!
//! A record is kept when its `Operation` is one of the configured operations; a record that only
//! mentions the operation elsewhere (an ObjectId, a property's value) is not kept. The app is read from
//! either launch schema (management-api.md §5): RecordType 256 with
//! `powerplatform.analytics.resource.power_app.id` (and display name, environment id) in
//! `PropertyCollection`, or legacy RecordType 45 with the app's GUID in `AppName` and its display
//! name as `appName` in `AdditionalInfo` (a JSON object written as a string). A launch whose record
//! carries no app id is still a user's session: it is kept, with no app, and counted.
//!
//! Field names are matched without regard to ASCII case (`CreationTime`, `creationTime`,
//! `CREATIONTIME`), the record's own fields as well as `PropertyCollection`'s `Name`/`Value` and the
//! keys inside `AdditionalInfo`: some export tools write AuditData in camelCase. Should a record carry
//! one field twice in different cases, the first non-empty one counts.
//!
//! The user is read twice over: `UserId` as logged (the UPN, sometimes the user's object id), and the
//! identity reports count people by ([`Event::user_object_id`], [`Event::user_upn`]).
//!
//! # Which faults cost a blob, which cost one record
//! A blob ([`Filter::blob`]) is refused whole, and tried again by the next run, only when its body is
//! not JSON (cut short, not text, text after the array) or is JSON but not an array ([`BlobError`]):
//! nothing in it can be trusted. Inside an array, a record that cannot be read is **quarantined** and
//! the others are kept ([`Extracted::quarantined`]): an element that is not a JSON object, a record
//! with no `Id` (absent, null, empty, an array or an object), or a record that would be kept whose
//! `CreationTime` is missing or not a time ([`time::parse_time`] reads every shape the service and
//! exports write). An element the JSON parser refuses (a raw control character or a byte that is not
//! UTF-8 in one of its strings, a missing quote) is one too: when the array does not parse as a
//! whole, it is split into its elements without parsing them (brackets, braces and strings followed)
//! and each is read alone; only a body that is not an array even so is refused.
//!
//! # Bounds
//! The array is read element by element as serde_json parses it: a blob costs its body, the events
//! it keeps, and at most [`QUARANTINE_KEPT`] + 1 unreadable records with their text, the last of which
//! stands for any further ones ([`crate::model::Quarantined::more`]), however many elements it has.
//! A record that does not even mention a wanted operation is not parsed: it is quarantined only when
//! its text holds no `"Id"` key at all (in any case), and its time is not looked at.
//! Fields of an unexpected JSON type otherwise count as absent rather than failing the record.
//!
//! Parsing borrows from the blob and reads only the fields below; every other field is skipped.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde_json::value::RawValue;

use crate::model::{Event, Quarantined};
use crate::time;

/// The `Operation` of a Power Apps launch, in both schemas (management-api.md §5.2, §5.3).
pub const LAUNCH: &str = "LaunchPowerApp";
const APP_ID: &str = "powerplatform.analytics.resource.power_app.id";
const APP_NAME: &str = "powerplatform.analytics.resource.power_app.display_name";
const ENV_ID: &str = "powerplatform.analytics.resource.environment.id";
/// The user's Entra object id in RecordType 256's `PropertyCollection` (management-api.md §5.2).
const USER_OBJECT_ID: &str = "enduser.id";
/// The user's UPN in RecordType 256's `PropertyCollection`.
const USER_PRINCIPAL: &str = "enduser.principal_name";

/// Why a blob cannot be used at all. The whole blob is skipped (and tried again by the next run):
/// storing part of it would make it look done. Unreadable records inside a JSON array are not blob
/// errors: they are quarantined ([`Extracted::quarantined`]).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BlobError {
    /// The body is not JSON (or is cut short); the parser's message.
    #[error("it is not valid JSON ({0})")]
    NotJson(String),
    /// The body is JSON but not an array (management-api.md §1.2: a blob is an array of records).
    #[error("it is not a JSON array of records")]
    NotArray,
}

/// What one blob held.
#[derive(Debug, Default)]
pub struct Extracted {
    /// The records the filter kept, in the blob's order.
    pub events: Vec<Event>,
    /// Records in the blob, kept or not, quarantined ones included.
    pub seen: usize,
    /// The records that could not be read, in the blob's order: their text and why; at most
    /// [`QUARANTINE_KEPT`] + 1, the last standing for any more ([`Extracted::quarantined_count`]).
    pub quarantined: Vec<Quarantined>,
}

impl Extracted {
    /// Records that could not be read: every entry of [`Extracted::quarantined`] and the records
    /// the last one stands for ([`Quarantined::more`]).
    pub fn quarantined_count(&self) -> usize {
        self.quarantined
            .iter()
            .map(|q| 1 + usize::try_from(q.more).unwrap_or(usize::MAX))
            .fold(0, usize::saturating_add)
    }
}

/// Which operations to keep.
#[derive(Debug, Clone)]
pub struct Filter {
    operations: Vec<String>,
}

impl Filter {
    /// Keeps the records whose `Operation` is one of `operations`, compared exactly (case included).
    pub fn new(operations: &[String]) -> Filter {
        Filter {
            operations: operations.to_vec(),
        }
    }

    fn wants(&self, operation: &str) -> bool {
        self.operations.iter().any(|o| o == operation)
    }

    /// A cheap test on the record's text: a record that does not contain any wanted operation's name
    /// cannot be kept, so it is not parsed at all.
    fn may_want(&self, raw: &str) -> bool {
        self.operations.iter().any(|o| raw.contains(o.as_str()))
    }

    /// Reads one blob (a JSON array of records) and keeps what the filter wants; the records that
    /// cannot be read are quarantined, the others kept (see the module's notes). The array is read
    /// element by element as it is parsed (nothing per element is held but what is kept), and at most
    /// [`QUARANTINE_KEPT`] + 1 quarantined records are held with their text.
    ///
    /// # Errors
    /// A [`BlobError`] when the body is not JSON or not an array; the caller skips the blob whole.
    pub fn blob(&self, body: &[u8]) -> Result<Extracted, BlobError> {
        let mut collector = Collector::new(self);
        let mut de = serde_json::Deserializer::from_slice(body);
        let parsed = de
            .deserialize_seq(Elements(&mut collector))
            .and_then(|()| de.end());
        match parsed {
            Ok(()) => Ok(collector.finish()),
            Err(e) if e.classify() == serde_json::error::Category::Data => {
                // Not an array; is it JSON at all?
                match serde_json::from_slice::<IgnoredAny>(body) {
                    Ok(_) => Err(BlobError::NotArray),
                    Err(e) => Err(BlobError::NotJson(e.to_string())),
                }
            }
            Err(e) => {
                // One element the parser refuses (a raw control character, a byte that is not
                // UTF-8) must not cost the others: split the array without parsing, read each alone.
                drop(collector);
                let mut collector = Collector::new(self);
                match split_array(body, |element| collector.unparsed(element)) {
                    Ok(()) => Ok(collector.finish()),
                    Err(_) => Err(BlobError::NotJson(e.to_string())),
                }
            }
        }
    }

    /// What one element of a blob is: an event the filter keeps, nothing (a record not wanted), or
    /// why it cannot be read.
    fn element(&self, text: &str) -> Result<Option<Event>, Cow<'static, str>> {
        if !text.starts_with('{') {
            Err(Cow::Borrowed(not_an_object(text)))
        } else if !self.may_want(text) {
            // Not parsed: only its Id matters, and a record with none anywhere has none.
            if has_id_key(text) {
                Ok(None)
            } else {
                Err(Cow::Borrowed(NO_ID))
            }
        } else {
            self.record(text).map_err(|e| Cow::Owned(e.to_string()))
        }
    }

    /// Reads one record (a JSON object) and returns it as an event if the filter keeps it.
    ///
    /// # Errors
    /// [`RecordError::NoId`] when the record has no `Id`, whatever its operation;
    /// [`RecordError::Bad`] when it is not a JSON object, or when a kept record's `CreationTime` is
    /// missing or not a time.
    pub fn record(&self, raw: &str) -> Result<Option<Event>, RecordError> {
        let r: Record<'_> = serde_json::from_str(raw).map_err(|e| RecordError::Bad {
            id: "?".into(),
            reason: e.to_string(),
        })?;
        let id =
            r.id.filter(|id| !id.trim().is_empty())
                .ok_or(RecordError::NoId)?
                .into_owned();
        let Some(operation) = r.operation.filter(|o| self.wants(o)) else {
            return Ok(None);
        };
        let property = |name: &str| -> Option<String> {
            r.properties
                .iter()
                .find(|p| {
                    p.name
                        .as_deref()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
                .and_then(|p| p.value.as_deref())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let top_app_id = r.app_id.as_deref().map(last_segment);
        let (app_id, app_name, environment_id) = match r.record_type {
            Some(256) => (
                property(APP_ID).map(|v| last_segment(&v)).or(top_app_id),
                property(APP_NAME),
                property(ENV_ID).or_else(|| r.environment_id.as_deref().map(str::to_owned)),
            ),
            _ => {
                let info = r.additional_info.and_then(additional_info);
                (
                    r.app_name.as_deref().map(last_segment).or(top_app_id),
                    info_field(info.as_ref(), &["appName", "appDisplayName"]),
                    info_field(info.as_ref(), &["environmentId", "environmentName"]),
                )
            }
        };
        let creation_time = r
            .creation_time
            .as_deref()
            .and_then(time::parse_time)
            .ok_or_else(|| RecordError::Bad {
                id: id.clone(),
                reason: match r.creation_time.as_deref() {
                    Some(t) => format!("its CreationTime {t:?} is not a time"),
                    None => "it has no CreationTime".to_owned(),
                },
            })
            .map(time::ts)?;
        let user_id = r.user_id.map(Cow::into_owned);
        let user_object_id = property(USER_OBJECT_ID)
            .as_deref()
            .and_then(guid)
            .or_else(|| r.user_key.as_deref().and_then(guid))
            .or_else(|| user_id.as_deref().and_then(guid));
        let user_upn = user_id
            .as_deref()
            .filter(|u| u.contains('@'))
            .map(str::to_owned)
            .or_else(|| property(USER_PRINCIPAL).filter(|u| u.contains('@')))
            .map(|u| u.trim().to_lowercase());
        Ok(Some(Event {
            id,
            creation_time,
            operation: operation.into_owned(),
            workload: r.workload.map(Cow::into_owned),
            record_type: r.record_type,
            user_id,
            user_object_id,
            user_upn,
            app_id,
            app_name,
            environment_id,
            raw: raw.to_owned(),
        }))
    }
}

/// Why a single record cannot be read.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum RecordError {
    /// No `Id`: absent, `null`, empty, or an array or object (a number or a bool counts as its text).
    #[error("it has no Id")]
    NoId,
    /// The record cannot be read.
    #[error("{reason}")]
    Bad {
        /// The record's `Id`, or `?` when the record could not be parsed at all.
        id: String,
        /// What is wrong with it: the JSON parser's message, or the `CreationTime` that is not a time.
        reason: String,
    },
}

/// Why a JSON value that is not an object cannot be a record (a quarantine reason).
fn not_an_object(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'[') => "it is not a JSON object but an array",
        Some(b'"') => "it is not a JSON object but a string",
        Some(b'n') => "it is not a JSON object but null",
        Some(b't' | b'f') => "it is not a JSON object but a boolean",
        _ => "it is not a JSON object but a number",
    }
}

/// The reason of a record without an `Id` ([`RecordError::NoId`]'s text).
const NO_ID: &str = "it has no Id";

/// Unreadable records of one blob kept with their text in [`Extracted::quarantined`]. The next
/// one is kept too and stands for every later one ([`Quarantined::more`]): a blob of countless
/// unreadable elements (a 256 MiB `[0,0,…]` holds 128 M) costs neither memory nor rows per element,
/// and is still counted whole.
pub const QUARANTINE_KEPT: usize = 100;

/// Gathers one blob's elements into an [`Extracted`], as they are read.
struct Collector<'f> {
    filter: &'f Filter,
    out: Extracted,
}

impl<'f> Collector<'f> {
    fn new(filter: &'f Filter) -> Self {
        Collector {
            filter,
            out: Extracted::default(),
        }
    }

    /// The next element, as JSON text.
    fn parsed(&mut self, text: &str) {
        match self.filter.element(text) {
            Ok(Some(e)) => {
                self.out.seen += 1;
                self.out.events.push(e);
            }
            Ok(None) => self.out.seen += 1,
            Err(reason) => self.quarantine(text.into(), reason),
        }
    }

    /// The next element as cut out of an array the parser refused as a whole: read alone.
    fn unparsed(&mut self, bytes: &[u8]) {
        match std::str::from_utf8(bytes) {
            Err(e) => self.quarantine(
                String::from_utf8_lossy(bytes),
                Cow::Owned(format!(
                    "it is not UTF-8 text (byte {} of the record is not)",
                    e.valid_up_to()
                )),
            ),
            Ok("") => self.quarantine(
                Cow::Borrowed(""),
                Cow::Borrowed("it is empty (nothing between two commas of the array)"),
            ),
            Ok(text) => match serde_json::from_str::<IgnoredAny>(text) {
                Ok(_) => self.parsed(text),
                Err(e) => self.quarantine(
                    Cow::Borrowed(text),
                    Cow::Owned(format!("it is not valid JSON ({e})")),
                ),
            },
        }
    }

    /// Quarantines the next element: with its text while fewer than [`QUARANTINE_KEPT`] + 1 are
    /// held, else counted in the last one's `more`.
    fn quarantine(&mut self, raw: Cow<'_, str>, reason: Cow<'static, str>) {
        let position = self.out.seen as u64;
        self.out.seen += 1;
        let held = &mut self.out.quarantined;
        if held.len() <= QUARANTINE_KEPT {
            held.push(Quarantined {
                position,
                raw: raw.into_owned(),
                reason: reason.into_owned(),
                more: 0,
            });
        } else if let Some(last) = held.last_mut() {
            last.more += 1;
        }
    }

    /// The blob's records; the entry that stands for more records says how many.
    fn finish(mut self) -> Extracted {
        if let Some(last) = self.out.quarantined.last_mut()
            && last.more > 0
        {
            last.reason = format!(
                "{}; and {} more unreadable records after it in this blob, counted but not kept \
                 (a blob keeps the text of its first {QUARANTINE_KEPT} unreadable records and of this one)",
                last.reason, last.more
            );
        }
        self.out
    }
}

/// Feeds a blob's array to a [`Collector`] one element at a time, as serde_json reads it.
struct Elements<'c, 'f>(&'c mut Collector<'f>);

impl<'de> Visitor<'de> for Elements<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of records")
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        while let Some(raw) = a.next_element::<&'de RawValue>()? {
            self.0.parsed(raw.get());
        }
        Ok(())
    }
}

/// Splits a body that is a JSON array to the eye but that serde_json refuses into its top-level
/// elements (whitespace trimmed), without parsing them: brackets and braces are counted outside
/// strings, strings end at an unescaped quote. `each` gets every element in order, possibly before
/// the body turns out not to be an array.
///
/// # Errors
/// Why the body is not an array even so: it does not open with `[`, it ends before the array does
/// (cut short, a string never closed), or text follows the array.
fn split_array(body: &[u8], mut each: impl FnMut(&[u8])) -> Result<(), &'static str> {
    let trim = |b: &[u8]| -> usize { b.iter().take_while(|c| c.is_ascii_whitespace()).count() };
    let mut i = trim(body);
    if body.get(i) != Some(&b'[') {
        return Err("it does not open with [");
    }
    i += 1;
    let (mut start, mut depth, mut in_string, mut commas) = (i, 0usize, false, false);
    while let Some(&b) = body.get(i) {
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => depth += 1,
                b']' | b'}' if depth > 0 => depth -= 1,
                b',' if depth == 0 => {
                    each(body[start..i].trim_ascii());
                    commas = true;
                    start = i + 1;
                }
                b']' => {
                    let last = body[start..i].trim_ascii();
                    if !last.is_empty() || commas {
                        each(last);
                    }
                    let rest = &body[i + 1..];
                    return if trim(rest) == rest.len() {
                        Ok(())
                    } else {
                        Err("text follows the array")
                    };
                }
                _ => {}
            }
        }
        i += 1;
    }
    Err("it ends before the array does")
}

/// Whether the text holds a key `"Id"` in any case (a cheap test for records that are not parsed).
fn has_id_key(text: &str) -> bool {
    // The service writes `"Id"` first in almost every record: a substring search finds it at once;
    // the byte-by-byte case-insensitive scan is only for the records that spell it otherwise.
    text.contains("\"Id\"")
        || text
            .as_bytes()
            .windows(4)
            .any(|w| w.eq_ignore_ascii_case(b"\"id\""))
}

/// The text as a lower-case hyphenated GUID, if it is one (`{…}` and upper case accepted).
fn guid(v: &str) -> Option<String> {
    uuid::Uuid::try_parse(v.trim().trim_start_matches('{').trim_end_matches('}'))
        .ok()
        .filter(|g| !g.is_nil())
        .map(|g| g.hyphenated().to_string())
}

/// `/providers/Microsoft.PowerApps/apps/<guid>` → `<guid>`; a plain GUID stays as it is.
///
/// A GUID is written in lower case, so that an app logged as `3B9A…` by one schema and `3b9a…` by the
/// other is one app in the reports.
fn last_segment(v: &str) -> String {
    let id = v
        .trim()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(v);
    match uuid::Uuid::try_parse(id) {
        Ok(guid) => guid.hyphenated().to_string(),
        Err(_) => id.to_owned(),
    }
}

/// The legacy schema's `AdditionalInfo`: a JSON object written as a string (management-api.md
/// §5.3), or, in some exports, the object itself. Its keys are undocumented; the simulator's and
/// the reports' records carry `environmentName` and `appName`. `None` when it is neither.
fn additional_info(raw: &RawValue) -> Option<serde_json::Map<String, serde_json::Value>> {
    let text = raw.get();
    let object = if text.starts_with('"') {
        let inner: String = serde_json::from_str(text).ok()?;
        serde_json::from_str(&inner).ok()?
    } else {
        serde_json::from_str(text).ok()?
    };
    match object {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

/// The first of `keys` (compared without regard to ASCII case) that `AdditionalInfo` holds as
/// non-blank text.
fn info_field(
    info: Option<&serde_json::Map<String, serde_json::Value>>,
    keys: &[&str],
) -> Option<String> {
    let info = info?;
    keys.iter().find_map(|k| {
        info.iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(k))
            .and_then(|(_, v)| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    })
}

/// The fields auditsync reads; every other one is skipped. Names are matched without regard to ASCII
/// case (see [`Field`]).
#[derive(Default)]
struct Record<'a> {
    id: Option<Cow<'a, str>>,
    creation_time: Option<Cow<'a, str>>,
    operation: Option<Cow<'a, str>>,
    workload: Option<Cow<'a, str>>,
    record_type: Option<i64>,
    user_id: Option<Cow<'a, str>>,
    /// The user's key: the Entra object id in Power Apps records.
    user_key: Option<Cow<'a, str>>,
    /// Legacy schema: the app's GUID.
    app_name: Option<Cow<'a, str>>,
    /// A top-level app id some tools write; used only when the schema's own field is absent.
    app_id: Option<Cow<'a, str>>,
    /// Legacy schema: a JSON object as a string.
    additional_info: Option<&'a RawValue>,
    environment_id: Option<Cow<'a, str>>,
    properties: Vec<Property<'a>>,
}

/// A field of a record, by its name in any case.
#[derive(Clone, Copy)]
enum Field {
    Id,
    CreationTime,
    Operation,
    Workload,
    RecordType,
    UserId,
    UserKey,
    AppName,
    AppId,
    AdditionalInfo,
    EnvironmentId,
    PropertyCollection,
    Other,
}

const FIELDS: &[(&str, Field)] = &[
    ("Id", Field::Id),
    ("CreationTime", Field::CreationTime),
    ("Operation", Field::Operation),
    ("Workload", Field::Workload),
    ("RecordType", Field::RecordType),
    ("UserId", Field::UserId),
    ("UserKey", Field::UserKey),
    ("AppName", Field::AppName),
    ("AppId", Field::AppId),
    ("AdditionalInfo", Field::AdditionalInfo),
    ("EnvironmentId", Field::EnvironmentId),
    ("PropertyCollection", Field::PropertyCollection),
];

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Field, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                Ok(FIELDS
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(v))
                    .map_or(Field::Other, |(_, f)| *f))
            }
        }
        d.deserialize_identifier(V)
    }
}

/// A string field read leniently (see [`lenient_str`]).
struct Lenient<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Lenient<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient_str(d).map(Lenient)
    }
}

/// `PropertyCollection` read leniently (see [`lenient_props`]).
struct Props<'a>(Vec<Property<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Props<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient_props(d).map(Props)
    }
}

/// Keeps the first value that is there: a field repeated in another case does not undo it.
fn first<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Record<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Record<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an audit record (a JSON object)")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Record<'de>, A::Error> {
                let mut r = Record::default();
                while let Some(field) = a.next_key::<Field>()? {
                    let s = |a: &mut A| a.next_value::<Lenient<'de>>().map(|l| l.0);
                    match field {
                        Field::Id => first(&mut r.id, s(&mut a)?),
                        Field::CreationTime => first(&mut r.creation_time, s(&mut a)?),
                        Field::Operation => first(&mut r.operation, s(&mut a)?),
                        Field::Workload => first(&mut r.workload, s(&mut a)?),
                        Field::RecordType => first(
                            &mut r.record_type,
                            s(&mut a)?.and_then(|v| v.trim().parse().ok()),
                        ),
                        Field::UserId => first(&mut r.user_id, s(&mut a)?),
                        Field::UserKey => first(&mut r.user_key, s(&mut a)?),
                        Field::AppName => first(&mut r.app_name, s(&mut a)?),
                        Field::AppId => first(&mut r.app_id, s(&mut a)?),
                        Field::EnvironmentId => first(&mut r.environment_id, s(&mut a)?),
                        Field::AdditionalInfo => {
                            let v: &'de RawValue = a.next_value()?;
                            first(&mut r.additional_info, Some(v));
                        }
                        Field::PropertyCollection => {
                            let p = a.next_value::<Props<'de>>()?.0;
                            if r.properties.is_empty() {
                                r.properties = p;
                            }
                        }
                        Field::Other => {
                            a.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(r)
            }
        }
        d.deserialize_map(V)
    }
}

/// One `{Name, Value}` of `PropertyCollection`, its two keys in any case.
struct Property<'a> {
    name: Option<Cow<'a, str>>,
    value: Option<Cow<'a, str>>,
}

impl Property<'_> {
    const NONE: Property<'static> = Property {
        name: None,
        value: None,
    };
}

impl<'de: 'a, 'a> Deserialize<'de> for Property<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Property<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a property")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Property<'de>, A::Error> {
                let (mut name, mut value) = (None, None);
                while let Some(key) = a.next_key::<Lenient<'de>>()? {
                    let key = key.0.unwrap_or_default();
                    if key.eq_ignore_ascii_case("Name") {
                        first(&mut name, a.next_value::<Lenient<'de>>()?.0);
                    } else if key.eq_ignore_ascii_case("Value") {
                        first(&mut value, a.next_value::<Lenient<'de>>()?.0);
                    } else {
                        a.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Property { name, value })
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Property::NONE)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Property::NONE)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Property::NONE)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Property::NONE)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Property::NONE)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Property::NONE)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Property::NONE)
            }
        }
        // Anything but an object is a property with neither name nor value.
        d.deserialize_any(V)
    }
}

/// A string field that may hold anything: a string (borrowed when it has no escapes), a number or a
/// bool as text, and anything else as absent.
fn lenient_str<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(V)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            while a.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

/// `PropertyCollection`: an array of `{Name, Value}`; anything else counts as empty. (A visitor
/// rather than an untagged enum, which would buffer the whole value first.)
fn lenient_props<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Vec<Property<'a>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<Property<'de>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of properties")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(p) = a.next_element::<Property<'de>>()? {
                out.push(p);
            }
            Ok(out)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(Vec::new())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
    }
    d.deserialize_any(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample of management-api.md §5.2, verbatim.
    const NEW: &str = r#"{"PropertyCollection":[
 {"Name":"powerplatform.analytics.resource.power_app.display_name","Value":"TestEmptyApp"},
 {"Name":"powerplatform.analytics.resource.power_app.id","Value":"6c39e97c-6ddd-4a37-afd4-494a605925cf"},
 {"Name":"powerplatform.analytics.resource.environment.name","Value":"dev-na-ba50088f"},
 {"Name":"powerplatform.analytics.resource.type","Value":"PowerApp"},
 {"Name":"powerplatform.analytics.activity.name","Value":"LaunchPowerApp"},
 {"Name":"powerplatform.analytics.resource.environment.id","Value":"aa289efd-09f4-eaeb-bbb8-c08fc9e27d09"},
 {"Name":"enduser.principal_name","Value":"AmberR@CONTOSO.OnMicrosoft.com"}],
 "EnvironmentId":"aa289efd-09f4-eaeb-bbb8-c08fc9e27d09","UserId":"AmberR@CONTOSO.OnMicrosoft.com","ClientIP":"167.220.196.178",
 "Id":"e2a84675-8952-4d91-a2ea-4d89f310f1a7","RecordType":256,"CreationTime":"2026-05-19T13:17:34","Operation":"LaunchPowerApp",
 "OrganizationId":"33333333-3333-3333-3333-333333333333","UserType":2,"UserKey":"7ff1e0f1-e2a4-48a0-874e-34db43893df1",
 "Workload":"PowerPlatform","ResultStatus":"Succeeded","Version":1,"RequiresCustomerKeyEncryption":false}"#;

    const LEGACY: &str = r#"{"CreationTime":"2023-11-16T14:34:32.1234567Z","Id":"a11a1111-a1a1-42bb-998b-20bd9c0ba8fb","Operation":"LaunchPowerApp","OrganizationId":"a11a1111-a1a1-aa11-a1a1-a1a1a1a1a1a1","RecordType":45,"ResultStatus":"Success","UserKey":"k","UserType":0,"Version":1,"Workload":"PowerApps","ClientIP":"::ffff:175.101.18.138","ObjectId":"o","UserId":"Joe@company.onmicrosoft.com","AdditionalInfo":"{\"environmentName\":\"Default-a11a\"}","AppName":"3b9a4f5e-1111-4222-8333-944445555666"}"#;

    fn launches() -> Filter {
        Filter::new(&[LAUNCH.to_owned()])
    }

    #[test]
    fn the_current_schema() {
        let e = launches().record(NEW).unwrap().unwrap();
        assert_eq!(e.id, "e2a84675-8952-4d91-a2ea-4d89f310f1a7");
        assert_eq!(e.creation_time, "2026-05-19T13:17:34Z");
        assert_eq!(e.record_type, Some(256));
        assert_eq!(
            e.app_id.as_deref(),
            Some("6c39e97c-6ddd-4a37-afd4-494a605925cf")
        );
        assert_eq!(e.app_name.as_deref(), Some("TestEmptyApp"));
        assert_eq!(
            e.environment_id.as_deref(),
            Some("aa289efd-09f4-eaeb-bbb8-c08fc9e27d09")
        );
        assert_eq!(e.user_id.as_deref(), Some("AmberR@CONTOSO.OnMicrosoft.com"));
        assert_eq!(e.workload.as_deref(), Some("PowerPlatform"));
        assert_eq!(e.raw, NEW);
    }

    #[test]
    fn the_legacy_schema() {
        let e = launches().record(LEGACY).unwrap().unwrap();
        assert_eq!(e.creation_time, "2023-11-16T14:34:32Z");
        assert_eq!(e.record_type, Some(45));
        assert_eq!(
            e.app_id.as_deref(),
            Some("3b9a4f5e-1111-4222-8333-944445555666")
        );
        assert_eq!(e.environment_id.as_deref(), Some("Default-a11a"));
    }

    #[test]
    fn decoys_are_not_launches() {
        let f = launches();
        // The activity is named LaunchPowerApp in the properties, but the operation is another.
        let other_op = NEW.replace(
            r#""Operation":"LaunchPowerApp""#,
            r#""Operation":"PowerAppPermissionEdited""#,
        );
        assert_eq!(f.record(&other_op).unwrap(), None);
        // A SharePoint record whose ObjectId mentions the operation.
        let sp = r#"{"Id":"x","RecordType":6,"Operation":"FileAccessed","Workload":"SharePoint","ObjectId":"https://c/LaunchPowerApp.docx","CreationTime":"2026-01-01T00:00:00"}"#;
        assert_eq!(f.record(sp).unwrap(), None);
        // A launch whose record lacks the app id is still a session: kept, with no app.
        let no_app = NEW.replace("power_app.id", "power_app.nope");
        assert_eq!(f.record(&no_app).unwrap().unwrap().app_id, None);
    }

    #[test]
    fn other_operations_when_configured() {
        let f = Filter::new(&[LAUNCH.to_owned(), "DeletePowerApp".to_owned()]);
        let del = NEW.replace(
            r#""Operation":"LaunchPowerApp""#,
            r#""Operation":"DeletePowerApp""#,
        );
        let e = f.record(&del).unwrap().unwrap();
        assert_eq!(e.operation, "DeletePowerApp");
        let path = NEW.replace(
            "6c39e97c-6ddd-4a37-afd4-494a605925cf",
            "/providers/Microsoft.PowerApps/apps/6c39e97c-6ddd-4a37-afd4-494a605925cf",
        );
        assert_eq!(
            f.record(&path).unwrap().unwrap().app_id.as_deref(),
            Some("6c39e97c-6ddd-4a37-afd4-494a605925cf")
        );
        let upper = LEGACY.replace(
            "3b9a4f5e-1111-4222-8333-944445555666",
            "3B9A4F5E-1111-4222-8333-944445555666",
        );
        assert_eq!(
            f.record(&upper).unwrap().unwrap().app_id.as_deref(),
            Some("3b9a4f5e-1111-4222-8333-944445555666")
        );
    }

    #[test]
    fn blobs() {
        let f = launches();
        let blob = format!("[{NEW},{LEGACY},{{\"Id\":\"n\",\"Operation\":\"MailItemsAccessed\"}}]");
        let x = f.blob(blob.as_bytes()).unwrap();
        assert_eq!((x.seen, x.events.len()), (3, 2));
        assert_eq!(f.blob(b"[]").unwrap().seen, 0);
        assert!(matches!(f.blob(b"[{\"Id\":"), Err(BlobError::NotJson(_))));
        assert_eq!(f.blob(b"{\"a\":1}").unwrap_err(), BlobError::NotArray);
    }

    /// Only a body that is not JSON, or not an array, costs the whole blob; one unreadable record
    /// of any kind is quarantined with its text and position, and every readable one is kept.
    #[test]
    fn unreadable_records_are_quarantined_and_the_rest_kept() {
        let f = launches();
        let no_id = NEW.replace(r#""Id":"e2a84675-8952-4d91-a2ea-4d89f310f1a7","#, "");
        let id_object = NEW.replace(
            r#""Id":"e2a84675-8952-4d91-a2ea-4d89f310f1a7""#,
            r#""Id":{"v":1}"#,
        );
        let id_empty = LEGACY.replace(
            r#""Id":"a11a1111-a1a1-42bb-998b-20bd9c0ba8fb""#,
            r#""Id":"""#,
        );
        let bad_time = LEGACY.replace("2023-11-16T14:34:32.1234567Z", "16/11/2023 14:34:32");
        let no_time = LEGACY.replace(r#""CreationTime":"2023-11-16T14:34:32.1234567Z","#, "");
        let time_number = LEGACY.replace(r#""2023-11-16T14:34:32.1234567Z""#, "1700145272");
        let other_no_id =
            r#"{"Operation":"MailItemsAccessed","CreationTime":"2026-01-01T00:00:00"}"#;
        // A record of another operation is not parsed: its time is not looked at.
        let other_bad_time = r#"{"Id":"o","Operation":"FileAccessed","CreationTime":"whenever"}"#;
        let good2 = NEW.replace("e2a84675-8952-4d91-a2ea-4d89f310f1a7", "g2");
        let blob = format!(
            "[{NEW},{no_id},\"text\",42,null,true,[1,2],{id_object},{id_empty},{bad_time},{no_time},\
             {time_number},{other_no_id},{other_bad_time},{LEGACY},{good2}]"
        );
        let x = f.blob(blob.as_bytes()).unwrap();
        assert_eq!(x.seen, 16);
        let kept: Vec<&str> = x.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(
            kept,
            [
                "e2a84675-8952-4d91-a2ea-4d89f310f1a7",
                "a11a1111-a1a1-42bb-998b-20bd9c0ba8fb",
                "g2"
            ]
        );
        let positions: Vec<u64> = x.quarantined.iter().map(|q| q.position).collect();
        assert_eq!(positions, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let reason = |i: usize| x.quarantined[i].reason.as_str();
        assert_eq!(reason(0), "it has no Id");
        assert_eq!(reason(1), "it is not a JSON object but a string");
        assert_eq!(reason(2), "it is not a JSON object but a number");
        assert_eq!(reason(3), "it is not a JSON object but null");
        assert_eq!(reason(4), "it is not a JSON object but a boolean");
        assert_eq!(reason(5), "it is not a JSON object but an array");
        assert_eq!(reason(6), "it has no Id");
        assert_eq!(reason(7), "it has no Id");
        assert_eq!(
            reason(8),
            r#"its CreationTime "16/11/2023 14:34:32" is not a time"#
        );
        assert_eq!(reason(9), "it has no CreationTime");
        assert_eq!(reason(10), r#"its CreationTime "1700145272" is not a time"#);
        assert_eq!(reason(11), "it has no Id");
        // The text exactly as received.
        assert_eq!(x.quarantined[0].raw, no_id);
        assert_eq!(x.quarantined[1].raw, "\"text\"");
        assert_eq!(x.quarantined[8].raw, bad_time);
        // A blob of nothing but unreadable records is still a blob: all of them quarantined.
        let x = f.blob(b"[1, {\"Operation\":\"LaunchPowerApp\"}]").unwrap();
        assert_eq!((x.seen, x.events.len(), x.quarantined.len()), (2, 0, 2));
        // The body itself: not JSON, cut short, not an array.
        assert!(matches!(f.blob(b"[{\"Id\":"), Err(BlobError::NotJson(_))));
        assert!(matches!(f.blob(b"\xff\xfe["), Err(BlobError::NotJson(_))));
        assert!(matches!(f.blob(b""), Err(BlobError::NotJson(_))));
        assert_eq!(f.blob(b"{\"a\":1}").unwrap_err(), BlobError::NotArray);
        assert_eq!(f.blob(b"\"[]\"").unwrap_err(), BlobError::NotArray);
        assert_eq!(f.blob(b"null").unwrap_err(), BlobError::NotArray);
    }

    /// A blob of countless unreadable elements (a 256 MiB `[0,0,…]` is 128 M of them) keeps the
    /// first [`QUARANTINE_KEPT`] with their text and counts the rest in one more entry: its memory and
    /// its quarantine rows stay bounded, and every readable record is still kept.
    #[test]
    fn countless_unreadable_elements_are_counted_not_each_kept() {
        let f = launches();
        let good2 = NEW.replace("e2a84675-8952-4d91-a2ea-4d89f310f1a7", "g2");
        let mut blob = format!("[{NEW}");
        for _ in 0..200_000 {
            blob.push_str(",0");
        }
        blob.push_str(&format!(",{good2},\"x\"]"));
        let x = f.blob(blob.as_bytes()).unwrap();
        assert_eq!(x.seen, 200_003);
        assert_eq!(x.events.len(), 2);
        assert!(x.quarantined.len() <= 101, "{}", x.quarantined.len());
        let last = x.quarantined.last().unwrap();
        assert!(last.reason.contains("100"), "{}", last.reason);
        assert!(last.reason.contains("more"), "{}", last.reason);
        assert!(last.reason.contains("not a JSON object"), "{}", last.reason);
        assert_eq!(x.quarantined_count(), 200_001);
        assert_eq!(x.quarantined[100].position, 101);
        assert_eq!(last.more, 200_001 - 101);
    }

    /// A record the JSON parser refuses (a raw control character or a byte that is not UTF-8 inside
    /// one of its strings) costs that record, not the blob: the array is split into its elements,
    /// each read alone. A body that is not an array even then (cut short, trailing text) is refused.
    #[test]
    fn a_record_the_parser_refuses_costs_only_itself() {
        let f = launches();
        let good2 = NEW.replace("e2a84675-8952-4d91-a2ea-4d89f310f1a7", "g2");
        for bad in [
            &b"{\"Id\":\"x\",\"Operation\":\"LaunchPowerApp\",\"bad\":\"a\x01b\"}"[..],
            &b"{\"Id\":\"y\",\"Operation\":\"LaunchPowerApp\",\"UserId\":\"caf\xe9\"}"[..],
            &b"{\"Id\":\"z\", \"Operation\": LaunchPowerApp}"[..],
            &b"{\"Id\":\"w\",\"s\":\"[{\\\"]}\", \"t\":1,}"[..],
        ] {
            let mut blob = b"[ ".to_vec();
            blob.extend_from_slice(NEW.as_bytes());
            blob.extend_from_slice(b" ,\n");
            blob.extend_from_slice(bad);
            blob.extend_from_slice(b", ");
            blob.extend_from_slice(good2.as_bytes());
            blob.extend_from_slice(b",{\"Id\":\"n\",\"s\":\"]}\\\",\"} ]\n");
            let x = f
                .blob(&blob)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bad)));
            let kept: Vec<&str> = x.events.iter().map(|e| e.id.as_str()).collect();
            assert_eq!(kept, ["e2a84675-8952-4d91-a2ea-4d89f310f1a7", "g2"]);
            assert_eq!(x.seen, 4);
            assert_eq!(x.quarantined.len(), 1, "{:?}", x.quarantined);
            assert_eq!(x.quarantined[0].position, 1);
            assert_eq!(x.quarantined[0].raw, String::from_utf8_lossy(bad));
            assert!(!x.quarantined[0].reason.is_empty());
        }
        // An empty element between two commas is one unreadable element too.
        let x = f.blob(format!("[{NEW},,1]").as_bytes()).unwrap();
        assert_eq!((x.seen, x.events.len(), x.quarantined.len()), (3, 1, 2));
        // Still refused whole: cut short (in a record, between records), trailing text, no array.
        for body in [
            &b"[{\"Id\":\"a\x01\"},{\"Id\":"[..],
            b"[{\"Id\":\"a\x01\"},",
            b"[{\"Id\":\"a\x01\"}",
            b"[{\"Id\":\"a\x01\"}] x",
            b"[{\"Id\":\"a\x01]",
            b"{\"Id\":\"a\x01\"}",
            b"\xff[]",
        ] {
            assert!(
                matches!(f.blob(body), Err(BlobError::NotJson(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// The times the service and exports write are read, the issue's space-separated one included.
    #[test]
    fn every_creation_time_shape_is_read() {
        for (time, stored) in [
            ("2026-11-28 13:29:30", "2026-11-28T13:29:30Z"),
            ("2026-11-28T13:29:30.1Z", "2026-11-28T13:29:30Z"),
            ("2026-11-28T13:29:30.123456789", "2026-11-28T13:29:30Z"),
            ("2026-11-28T14:29:30+0100", "2026-11-28T13:29:30Z"),
            ("2026-11-28 14:29:30.55+01:00", "2026-11-28T13:29:30Z"),
        ] {
            let r = LEGACY.replace("2023-11-16T14:34:32.1234567Z", time);
            let e = launches().record(&r).unwrap().unwrap();
            assert_eq!(e.creation_time, stored, "{time}");
        }
    }

    /// Some export tools write AuditData's field names in camelCase (or another case): every field
    /// is read alike, PropertyCollection's Name/Value and AdditionalInfo's keys too.
    #[test]
    fn field_names_in_any_case() {
        let camel_new = NEW
            .replace(r#""PropertyCollection""#, r#""propertyCollection""#)
            .replace(r#""Name""#, r#""name""#)
            .replace(r#""Value""#, r#""value""#)
            .replace(r#""EnvironmentId""#, r#""environmentId""#)
            .replace(r#""UserId""#, r#""userId""#)
            .replace(r#""Id""#, r#""id""#)
            .replace(r#""RecordType""#, r#""recordType""#)
            .replace(r#""CreationTime""#, r#""creationTime""#)
            .replace(r#""Operation""#, r#""operation""#)
            .replace(r#""UserKey""#, r#""userKey""#)
            .replace(r#""Workload""#, r#""workload""#);
        assert!(!camel_new.contains(r#""Id""#) && !camel_new.contains(r#""Operation""#));
        let want = launches().record(NEW).unwrap().unwrap();
        let got = launches().record(&camel_new).unwrap().unwrap();
        assert_eq!(
            Event {
                raw: NEW.into(),
                ..got
            },
            want
        );

        let shout_legacy = LEGACY
            .replace(r#""CreationTime""#, r#""CREATIONTIME""#)
            .replace(r#""Id""#, r#""ID""#)
            .replace(r#""Operation""#, r#""operation""#)
            .replace(r#""RecordType""#, r#""recordtype""#)
            .replace(r#""UserId""#, r#""userID""#)
            .replace(r#""AppName""#, r#""appName""#)
            .replace(r#""AdditionalInfo""#, r#""additionalInfo""#)
            .replace(r#"\"environmentName\""#, r#"\"EnvironmentName\""#);
        let want = launches().record(LEGACY).unwrap().unwrap();
        let got = launches().record(&shout_legacy).unwrap().unwrap();
        assert_eq!(
            Event {
                raw: LEGACY.into(),
                ..got
            },
            want
        );
        // A blob of camelCase records: kept, and a camelCase id is an Id (not quarantined).
        let other = r#"{"id":"o","operation":"FileAccessed"}"#;
        let x = launches()
            .blob(format!("[{camel_new},{other}]").as_bytes())
            .unwrap();
        assert_eq!((x.events.len(), x.quarantined.len()), (1, 0));
        // A top-level AppId (any case) names the app when the schema's own field is absent.
        let app_id = LEGACY.replace(r#""AppName""#, r#""appId""#);
        assert_eq!(
            launches()
                .record(&app_id)
                .unwrap()
                .unwrap()
                .app_id
                .as_deref(),
            Some("3b9a4f5e-1111-4222-8333-944445555666")
        );
    }

    /// RecordType 45 carries the app's display name as `appName` in `AdditionalInfo` (a JSON object
    /// written as a string; some exports write the object itself).
    #[test]
    fn legacy_launches_have_their_app_name() {
        let with_name = LEGACY.replace(
            r#"{\"environmentName\":\"Default-a11a\"}"#,
            r#"{\"environmentName\":\"Default-a11a\",\"appName\":\"Leave Request\"}"#,
        );
        let e = launches().record(&with_name).unwrap().unwrap();
        assert_eq!(e.app_name.as_deref(), Some("Leave Request"));
        assert_eq!(e.environment_id.as_deref(), Some("Default-a11a"));
        let object = with_name.replace(
            r#""AdditionalInfo":"{\"environmentName\":\"Default-a11a\",\"appName\":\"Leave Request\"}""#,
            r#""AdditionalInfo":{"AppName":"Leave Request"}"#,
        );
        assert_ne!(object, with_name);
        let e = launches().record(&object).unwrap().unwrap();
        assert_eq!(e.app_name.as_deref(), Some("Leave Request"));
        // No name, an empty one, or AdditionalInfo that is not an object: no name, still a launch.
        assert_eq!(launches().record(LEGACY).unwrap().unwrap().app_name, None);
        for info in [r#""{\"appName\":\"  \"}""#, r#""not json""#, "[1]", "7"] {
            let r = LEGACY.replace(r#""{\"environmentName\":\"Default-a11a\"}""#, info);
            assert_ne!(r, LEGACY);
            assert_eq!(
                launches().record(&r).unwrap().unwrap().app_name,
                None,
                "{info}"
            );
        }
    }

    /// Who the user is: the Entra object id from `enduser.id`, `UserKey` or a GUID `UserId`; the
    /// UPN from `UserId` or `enduser.principal_name`, lower-cased.
    #[test]
    fn the_user_by_object_id_and_upn() {
        let e = launches().record(NEW).unwrap().unwrap();
        assert_eq!(
            e.user_object_id.as_deref(),
            Some("7ff1e0f1-e2a4-48a0-874e-34db43893df1")
        );
        assert_eq!(
            e.user_upn.as_deref(),
            Some("amberr@contoso.onmicrosoft.com")
        );
        // UserId holds the object id (in capitals): the UPN comes from the properties.
        let by_id = NEW
            .replace(
                r#""UserId":"AmberR@CONTOSO.OnMicrosoft.com""#,
                r#""UserId":"7FF1E0F1-E2A4-48A0-874E-34DB43893DF1""#,
            )
            .replace(r#","UserKey":"7ff1e0f1-e2a4-48a0-874e-34db43893df1""#, "")
            .replace(
                r#"{"Name":"enduser.id","Value":"7ff1e0f1-e2a4-48a0-874e-34db43893df1"},"#,
                "",
            );
        let e = launches().record(&by_id).unwrap().unwrap();
        assert_eq!(
            e.user_object_id.as_deref(),
            Some("7ff1e0f1-e2a4-48a0-874e-34db43893df1")
        );
        assert_eq!(
            e.user_upn.as_deref(),
            Some("amberr@contoso.onmicrosoft.com")
        );
        assert_eq!(
            e.user_id.as_deref(),
            Some("7FF1E0F1-E2A4-48A0-874E-34DB43893DF1")
        );
        // The legacy sample's UserKey is not a GUID ("k"): a UPN only.
        let e = launches().record(LEGACY).unwrap().unwrap();
        assert_eq!(e.user_object_id, None);
        assert_eq!(e.user_upn.as_deref(), Some("joe@company.onmicrosoft.com"));
        let keyed = LEGACY.replace(
            r#""UserKey":"k""#,
            r#""UserKey":"A11A1111-A1A1-4955-9276-3D9B30A67DD2""#,
        );
        assert_eq!(
            launches()
                .record(&keyed)
                .unwrap()
                .unwrap()
                .user_object_id
                .as_deref(),
            Some("a11a1111-a1a1-4955-9276-3d9b30a67dd2")
        );
        // Neither: no user at all.
        let nobody = LEGACY
            .replace(r#""UserId":"Joe@company.onmicrosoft.com","#, "")
            .replace(r#""UserKey":"k","#, "");
        let e = launches().record(&nobody).unwrap().unwrap();
        assert_eq!((e.user_object_id, e.user_upn), (None, None));
    }

    #[test]
    fn odd_types_do_not_fail_a_record() {
        let odd = NEW
            .replace(r#""RecordType":256"#, r#""RecordType":"256""#)
            .replace(
                r#""UserId":"AmberR@CONTOSO.OnMicrosoft.com""#,
                r#""UserId":null"#,
            );
        let e = launches().record(&odd).unwrap().unwrap();
        assert_eq!(e.record_type, Some(256));
        assert_eq!(e.user_id, None);
    }
}
