//! The one definition of "an event worth keeping", shared by `sync` (blobs) and `import` (CSV exports).
//!
//! A record is kept when its `Operation` is one of the configured operations; a record that only
//! mentions the operation elsewhere (an ObjectId, a property's value) is not kept. The app is read from
//! either launch schema (management-api.md §5): RecordType 256 with
//! `powerplatform.analytics.resource.power_app.id` (and display name, environment id) in
//! `PropertyCollection`, or legacy RecordType 45 with the app's GUID in `AppName`. A launch whose record
//! carries no app id is still a user's session: it is kept, with no app, and counted.
//!
//! Parsing borrows from the blob and reads only the fields below; every other field is skipped. A
//! field of an unexpected JSON type counts as absent rather than failing the record.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde_json::value::RawValue;

use crate::model::Event;
use crate::time;

/// The `Operation` of a Power Apps launch, in both schemas (management-api.md §5.2, §5.3).
pub const LAUNCH: &str = "LaunchPowerApp";
const APP_ID: &str = "powerplatform.analytics.resource.power_app.id";
const APP_NAME: &str = "powerplatform.analytics.resource.power_app.display_name";
const ENV_ID: &str = "powerplatform.analytics.resource.environment.id";

/// Why a blob cannot be used. The whole blob is skipped: storing part of it would make it look done.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BlobError {
    /// The body is not JSON (or is cut short); the parser's message.
    #[error("it is not valid JSON ({0})")]
    NotJson(String),
    /// The body is JSON but not an array (management-api.md §1.2: a blob is an array of records).
    #[error("it is not a JSON array of records")]
    NotArray,
    /// The record at this index (from 0) has no `Id`. Every record needs one, kept or not: it is the
    /// key events are deduplicated on (management-api.md §2.2).
    #[error("record {0} has no Id")]
    NoId(usize),
    /// A record that is not a JSON object, or a wanted one that cannot be read.
    #[error("record {index} ({id}) cannot be read: {reason}")]
    BadRecord {
        /// The record's index in the blob, from 0.
        index: usize,
        /// The record's `Id`, or `?` when it could not be read.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// What one blob held.
#[derive(Debug, Default)]
pub struct Extracted {
    /// The records the filter kept, in the blob's order.
    pub events: Vec<Event>,
    /// Records in the blob, kept or not.
    pub seen: usize,
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

    /// Reads one blob (a JSON array of records) and keeps what the filter wants.
    ///
    /// # Errors
    /// A [`BlobError`] for the body or for the first record that cannot be used; the caller skips the
    /// blob whole.
    pub fn blob(&self, body: &[u8]) -> Result<Extracted, BlobError> {
        let records: Vec<&RawValue> = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) if e.classify() == serde_json::error::Category::Data => {
                return Err(BlobError::NotArray);
            }
            Err(e) => return Err(BlobError::NotJson(e.to_string())),
        };
        let mut out = Extracted {
            events: Vec::new(),
            seen: records.len(),
        };
        for (index, raw) in records.iter().enumerate() {
            let text = raw.get();
            if !text.starts_with('{') {
                return Err(BlobError::BadRecord {
                    index,
                    id: "?".into(),
                    reason: "it is not a JSON object".into(),
                });
            }
            if !self.may_want(text) {
                if !text.contains("\"Id\"") {
                    return Err(BlobError::NoId(index));
                }
                continue;
            }
            match self.record(text) {
                Ok(Some(e)) => out.events.push(e),
                Ok(None) => {}
                Err(RecordError::NoId) => return Err(BlobError::NoId(index)),
                Err(RecordError::Bad { id, reason }) => {
                    return Err(BlobError::BadRecord { index, id, reason });
                }
            }
        }
        Ok(out)
    }

    /// Reads one record (a JSON object) and returns it as an event if the filter keeps it.
    ///
    /// # Errors
    /// [`RecordError::NoId`] when the record has no `Id`, whatever its operation;
    /// [`RecordError::Bad`] when it is not JSON of a record's shape, or when a kept record's
    /// `CreationTime` is not a time.
    pub fn record(&self, raw: &str) -> Result<Option<Event>, RecordError> {
        let r: Record<'_> = serde_json::from_str(raw).map_err(|e| RecordError::Bad {
            id: "?".into(),
            reason: e.to_string(),
        })?;
        let id = r.id.ok_or(RecordError::NoId)?.into_owned();
        let Some(operation) = r.operation.filter(|o| self.wants(o)) else {
            return Ok(None);
        };
        let from_properties = |name: &str| -> Option<String> {
            r.properties
                .iter()
                .find(|p| p.name.as_deref() == Some(name))
                .and_then(|p| p.value.as_deref())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let (app_id, app_name, environment_id) = match r.record_type {
            Some(256) => (
                from_properties(APP_ID).map(|v| last_segment(&v)),
                from_properties(APP_NAME),
                from_properties(ENV_ID).or_else(|| r.environment_id.as_deref().map(str::to_owned)),
            ),
            _ => (
                r.app_name.as_deref().map(last_segment),
                None,
                r.additional_info.as_deref().and_then(environment_from_info),
            ),
        };
        let creation_time = r
            .creation_time
            .as_deref()
            .and_then(time::parse_time)
            .ok_or_else(|| RecordError::Bad {
                id: id.clone(),
                reason: format!(
                    "its CreationTime {:?} is not a time",
                    r.creation_time.as_deref().unwrap_or("(missing)")
                ),
            })
            .map(time::ts)?;
        Ok(Some(Event {
            id,
            creation_time,
            operation: operation.into_owned(),
            workload: r.workload.map(Cow::into_owned),
            record_type: r.record_type,
            user_id: r.user_id.map(Cow::into_owned),
            app_id,
            app_name,
            environment_id,
            raw: raw.to_owned(),
        }))
    }
}

/// Why a single record cannot be read.
#[derive(Debug, PartialEq)]
pub enum RecordError {
    /// No `Id`: absent, `null`, or an array or object (a number or a bool counts as its text).
    NoId,
    /// The record cannot be read.
    Bad {
        /// The record's `Id`, or `?` when the record could not be parsed at all.
        id: String,
        /// What is wrong with it: the JSON parser's message, or the `CreationTime` that is not a time.
        reason: String,
    },
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

/// The legacy schema's `AdditionalInfo` is a JSON string whose keys are undocumented; take an
/// environment id or name if one is there.
fn environment_from_info(info: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(info).ok()?;
    let obj = v.as_object()?;
    [
        "environmentId",
        "EnvironmentId",
        "environmentName",
        "EnvironmentName",
    ]
    .iter()
    .find_map(|k| obj.get(*k)?.as_str().map(str::to_owned))
}

/// The fields auditsync reads; serde skips every other one.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Record<'a> {
    #[serde(borrow, default, deserialize_with = "lenient_str")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient_str")]
    creation_time: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient_str")]
    operation: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient_str")]
    workload: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "lenient_int")]
    record_type: Option<i64>,
    #[serde(borrow, default, deserialize_with = "lenient_str")]
    user_id: Option<Cow<'a, str>>,
    /// Legacy schema: the app's GUID.
    #[serde(borrow, default, deserialize_with = "lenient_str")]
    app_name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient_str")]
    additional_info: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient_str")]
    environment_id: Option<Cow<'a, str>>,
    #[serde(
        rename = "PropertyCollection",
        borrow,
        default,
        deserialize_with = "lenient_props"
    )]
    properties: Vec<Property<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Property<'a> {
    #[serde(borrow, default, deserialize_with = "lenient_str")]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "lenient_str")]
    value: Option<Cow<'a, str>>,
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

/// An integer field that may arrive as a number or as numeric text.
fn lenient_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(lenient_str(d)?.and_then(|s| s.trim().parse().ok()))
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
            while let Some(p) = a.next_element::<Option<Property<'de>>>()? {
                out.extend(p);
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
        assert_eq!(
            f.blob(br#"[{"Operation":"MailItemsAccessed"}]"#)
                .unwrap_err(),
            BlobError::NoId(0)
        );
        let no_id = NEW.replace(r#""Id":"e2a84675-8952-4d91-a2ea-4d89f310f1a7","#, "");
        assert_eq!(
            f.blob(format!("[{no_id}]").as_bytes()).unwrap_err(),
            BlobError::NoId(0)
        );
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
