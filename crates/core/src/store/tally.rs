//! The reports, counted from one pass over the launches a [`Reader`] streams ([`Reader::scan_launches`])
//! in the order its index keeps them, whatever the database: each launch is a time and three small
//! integer codes (app, person, environment) that [`LaunchNames`] resolves, so a year of launches is a
//! few tens of megabytes of integers, sorted in memory, never a table of text.
//!
//! Distinct counts ("unique users", "apps") sort the codes and count the runs; the CoE's production
//! test (a month with [`PRODUCTION_MONTHLY_LAUNCHES`] launches or [`PRODUCTION_MONTHLY_USERS`] people)
//! is evaluated once per app and month. Memory: the launches in the range, 24 bytes each, and nothing
//! else of their size: each report sorts them in place by what it counts (the store streams them in
//! time order, so the daily and monthly ones only sort each day or month).

use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc};

use super::{
    AppMonthRow, AppRow, DayRow, EnvironmentRow, InactiveReport, InactiveRow, MonthRow,
    PRODUCTION_MONTHLY_LAUNCHES, PRODUCTION_MONTHLY_USERS, Reader, ReportFilter, StoreError,
    UserRow,
};
use crate::time::ts;

/// "None": the code of a launch whose record named no app, no user or no environment.
pub const NONE: u32 = 0;

/// One stored `LaunchPowerApp` event, as the reports read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launch {
    /// Its `CreationTime`, in seconds since the Unix epoch (stored times have whole seconds).
    pub at: i64,
    /// Its app's code in [`LaunchNames::apps`], or [`NONE`].
    pub app: u32,
    /// Its person's code in [`LaunchNames::people`], or [`NONE`].
    pub person: u32,
    /// Its environment's code in [`LaunchNames::environments`], or [`NONE`].
    pub environment: u32,
}

/// An app code's id and the latest name and environment any stored launch of it carried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppName {
    /// The app id, as stored.
    pub app_id: String,
    /// The display name of its latest stored launch that carried one.
    pub name: Option<String>,
    /// The environment id of its latest stored launch that carried one.
    pub environment: Option<String>,
}

/// A person code: whom it counts as, and how a report names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    /// The code this one is counted as: itself, or the object id a UPN was linked to after launches
    /// were stored under the UPN (see `events::user_key`).
    pub counted_as: u32,
    /// The name a report shows: the UPN last seen with the object id, else the key itself.
    pub shown: String,
}

/// What the codes of [`Launch`] stand for; index = code, and index 0 ([`NONE`]) is a placeholder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaunchNames {
    /// App codes.
    pub apps: Vec<AppName>,
    /// Person codes.
    pub people: Vec<Person>,
    /// Environment codes: the environment ids as stored.
    pub environments: Vec<String>,
}

/// A filter's time range in whole stored seconds: from (inclusive), to (exclusive). Stored times have
/// whole seconds, so a bound with a fraction rounds up: a launch at 10:00:00 is before --from
/// 10:00:00.5 and before --to 10:00:00.5.
pub fn seconds(filter: &ReportFilter) -> (Option<i64>, Option<i64>) {
    (filter.from.map(seconds_up), filter.to.map(seconds_up))
}

/// A time in whole seconds since the epoch, a fraction rounded up.
fn seconds_up(t: DateTime<Utc>) -> i64 {
    t.timestamp() + i64::from(t.nanosecond() > 0)
}

/// The launches of a filter, with their codes resolved to counting codes.
struct Scope {
    launches: Vec<Launch>,
    names: LaunchNames,
}

/// Streams the filter's launches into memory (their codes only), people
/// mapped to whom they count as; the app and environment filters are matched as SQL's `lower()` would,
/// for any alphabet.
fn scope<R: Reader + ?Sized>(store: &R, filter: &ReportFilter) -> Result<Scope, StoreError> {
    let mut launches = Vec::new();
    let names = store.scan_launches(seconds(filter), &mut |l: Launch| launches.push(l))?;
    let matching = |wanted: &Option<String>, ids: &mut dyn Iterator<Item = &str>| {
        wanted.as_ref().map(|w| {
            let w = w.to_lowercase();
            ids.map(|id| id.to_lowercase() == w).collect::<Vec<bool>>()
        })
    };
    let apps = matching(
        &filter.app,
        &mut names.apps.iter().map(|a| a.app_id.as_str()),
    );
    let envs = matching(
        &filter.environment,
        &mut names.environments.iter().map(String::as_str),
    );
    let allowed = |set: &Option<Vec<bool>>, code: u32| {
        set.as_ref()
            .is_none_or(|s| code != NONE && s.get(code as usize).copied().unwrap_or(false))
    };
    let counted: Vec<u32> = names.people.iter().map(|p| p.counted_as).collect();
    launches.retain(|l| allowed(&apps, l.app) && allowed(&envs, l.environment));
    for l in &mut launches {
        l.person = counted.get(l.person as usize).copied().unwrap_or(l.person);
    }
    Ok(Scope { launches, names })
}

fn stamp(at: i64) -> String {
    DateTime::from_timestamp(at, 0).map(ts).unwrap_or_default()
}

/// Days since the epoch → `YYYY-MM-DD`; months as `year * 12 + month0` → `YYYY-MM`.
fn day_text(day: i64) -> String {
    stamp(day * 86_400)[..10].to_owned()
}
fn month_of(at: i64) -> u32 {
    let d = DateTime::from_timestamp(at, 0).unwrap_or_default();
    u32::try_from(d.year()).unwrap_or(0) * 12 + d.month0()
}
fn month_text(month: u32) -> String {
    format!("{:04}-{:02}", month / 12, month % 12 + 1)
}

/// Runs of equal keys in a sorted slice: (key, run length).
fn runs<T, K: PartialEq + Copy>(
    sorted: &[T],
    key: impl Fn(&T) -> K + Copy,
) -> impl Iterator<Item = (K, &[T])> {
    sorted
        .chunk_by(move |a, b| key(a) == key(b))
        .map(move |run| (key(&run[0]), run))
}

/// Distinct values of `of` among a run sorted by it, `NONE` not counted.
fn distinct<T>(run: &[T], of: impl Fn(&T) -> u32) -> i64 {
    let mut n = 0;
    let mut last = None;
    for v in run.iter().map(of) {
        if v != NONE && last != Some(v) {
            n += 1;
        }
        last = Some(v);
    }
    n
}

fn production(launches: usize, users: i64) -> bool {
    launches as i64 >= PRODUCTION_MONTHLY_LAUNCHES || users >= PRODUCTION_MONTHLY_USERS
}

/// Orders rows by launches (most first), then by an optional name (present first, then as text).
fn by_launches_then_name(a: (i64, Option<&str>), b: (i64, Option<&str>)) -> std::cmp::Ordering {
    b.0.cmp(&a.0)
        .then(a.1.is_none().cmp(&b.1.is_none()))
        .then(a.1.cmp(&b.1))
}

/// How many codes `of` takes in `launches` (the largest + 1), at least 1.
fn span(launches: &[Launch], of: impl Fn(&Launch) -> u32) -> usize {
    launches
        .iter()
        .map(|l| of(l) as usize + 1)
        .max()
        .unwrap_or(1)
}

/// Distinct `(group, member)` pairs per group (`member` [`NONE`] not counted), for groups below
/// `groups` and members below `members`: in one pass through a bitmap of `groups × members` bits when
/// that takes at most 32 MiB (2,000 apps × 40,000 people take 10 MB), else by sorting the pairs
/// (8 bytes each).
fn distinct_per_group(
    pairs: impl Iterator<Item = (u32, u32)>,
    groups: usize,
    members: usize,
) -> Vec<i64> {
    let mut counts = vec![0i64; groups];
    let bits = groups.saturating_mul(members);
    if bits <= 1 << 28 {
        let mut bitmap = vec![0u64; bits.div_ceil(64)];
        for (g, m) in pairs.filter(|(_, m)| *m != NONE) {
            let i = g as usize * members + m as usize;
            let (word, bit) = (i / 64, 1u64 << (i % 64));
            if bitmap[word] & bit == 0 {
                bitmap[word] |= bit;
                counts[g as usize] += 1;
            }
        }
    } else {
        let mut v: Vec<u64> = pairs
            .filter(|(_, m)| *m != NONE)
            .map(|(g, m)| (u64::from(g) << 32) | u64::from(m))
            .collect();
        v.sort_unstable();
        v.dedup();
        for x in v {
            counts[(x >> 32) as usize] += 1;
        }
    }
    counts
}

/// Per code of `of`: launches, first and last time (`i64::MAX`, `i64::MIN` for none).
fn counts_by(
    launches: &[Launch],
    size: usize,
    of: impl Fn(&Launch) -> u32,
) -> Vec<(i64, i64, i64)> {
    let mut per = vec![(0i64, i64::MAX, i64::MIN); size];
    for l in launches {
        let e = &mut per[of(l) as usize];
        e.0 += 1;
        e.1 = e.1.min(l.at);
        e.2 = e.2.max(l.at);
    }
    per
}

/// The apps that were production apps in some calendar month, in one pass over the launches in
/// time order (sorted by time first when they are not): per app, the current month's launches and
/// up to [`PRODUCTION_MONTHLY_USERS`] distinct people, which is all the CoE's test needs.
fn production_apps(launches: &mut [Launch], apps: usize) -> Vec<bool> {
    if !launches.is_sorted_by_key(|l| l.at) {
        launches.sort_unstable_by_key(|l| l.at);
    }
    const PEOPLE: usize = PRODUCTION_MONTHLY_USERS as usize;
    // Per app: its current month, that month's launches, and the first distinct people.
    let mut state = vec![(u32::MAX, 0i64, [NONE; PEOPLE], 0usize); apps];
    let mut found = vec![false; apps];
    let mut day_month: Option<(i64, u32)> = None;
    for l in launches.iter().filter(|l| l.app != NONE) {
        let day = l.at.div_euclid(86_400);
        let month = match day_month {
            Some((d, m)) if d == day => m,
            _ => month_of(l.at),
        };
        day_month = Some((day, month));
        let (current, n, people, k) = &mut state[l.app as usize];
        if *current != month {
            (*current, *n, *k) = (month, 0, 0);
        }
        *n += 1;
        if l.person != NONE && *k < PEOPLE && !people[..*k].contains(&l.person) {
            people[*k] = l.person;
            *k += 1;
        }
        if production(usize::try_from(*n).unwrap_or(usize::MAX), *k as i64) {
            found[l.app as usize] = true;
        }
    }
    found
}

/// See [`Reader::report_apps`].
pub fn apps<R: Reader + ?Sized>(
    store: &R,
    filter: &ReportFilter,
) -> Result<Vec<AppRow>, StoreError> {
    let Scope {
        mut launches,
        names,
    } = scope(store, filter)?;
    let apps = span(&launches, |l| l.app);
    let per = counts_by(&launches, apps, |l| l.app);
    let users = distinct_per_group(
        launches.iter().map(|l| (l.app, l.person)),
        apps,
        span(&launches, |l| l.person),
    );
    let is_production = production_apps(&mut launches, apps);
    drop(launches);
    let mut rows: Vec<AppRow> = per
        .into_iter()
        .enumerate()
        .filter(|(_, (n, ..))| *n > 0)
        .map(|(app, (n, first, last))| {
            let name = (app != NONE as usize)
                .then(|| names.apps.get(app))
                .flatten();
            AppRow {
                app_id: name.map(|a| a.app_id.clone()),
                app_name: name.and_then(|a| a.name.clone()),
                environment_id: name.and_then(|a| a.environment.clone()),
                launches: n,
                unique_users: users[app],
                first_launch: stamp(first),
                last_launch: stamp(last),
                production: is_production[app],
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        by_launches_then_name(
            (a.launches, a.app_id.as_deref()),
            (b.launches, b.app_id.as_deref()),
        )
    });
    Ok(rows)
}

/// See [`Reader::report_users`].
pub fn users<R: Reader + ?Sized>(
    store: &R,
    filter: &ReportFilter,
) -> Result<Vec<UserRow>, StoreError> {
    let Scope { launches, names } = scope(store, filter)?;
    let people = span(&launches, |l| l.person);
    let per = counts_by(&launches, people, |l| l.person);
    let apps = distinct_per_group(
        launches.iter().map(|l| (l.person, l.app)),
        people,
        span(&launches, |l| l.app),
    );
    drop(launches);
    let mut rows: Vec<(UserRow, usize)> = per
        .into_iter()
        .enumerate()
        .filter(|(_, (n, ..))| *n > 0)
        .map(|(person, (n, first, last))| {
            let shown = (person != NONE as usize)
                .then(|| names.people.get(person).map(|p| p.shown.clone()))
                .flatten();
            let row = UserRow {
                user_id: shown,
                launches: n,
                apps: apps[person],
                first_launch: stamp(first),
                last_launch: stamp(last),
            };
            (row, person)
        })
        .collect();
    rows.sort_by(|(a, pa), (b, pb)| {
        by_launches_then_name(
            (a.launches, a.user_id.as_deref()),
            (b.launches, b.user_id.as_deref()),
        )
        .then(pa.cmp(pb))
    });
    Ok(rows.into_iter().map(|(r, _)| r).collect())
}

/// See [`Reader::report_daily`].
pub fn daily<R: Reader + ?Sized>(
    store: &R,
    filter: &ReportFilter,
) -> Result<Vec<DayRow>, StoreError> {
    let Scope { mut launches, .. } = scope(store, filter)?;
    let day = |l: &Launch| l.at.div_euclid(86_400);
    sort_by_group(&mut launches, day, |l| l.person);
    Ok(runs(&launches, day)
        .map(|(day, run)| DayRow {
            day: day_text(day),
            launches: run.len() as i64,
            unique_users: distinct(run, |l| l.person),
        })
        .collect())
}

/// Replaces each launch's time by its calendar month (`year * 12 + month0`), in place: the reports
/// that count by month need no copy of the launches.
fn to_months(launches: &mut [Launch]) {
    let mut last: Option<(i64, u32)> = None;
    for l in launches {
        let day = l.at.div_euclid(86_400);
        let month = match last {
            Some((d, m)) if d == day => m,
            _ => month_of(l.at),
        };
        last = Some((day, month));
        l.at = i64::from(month);
    }
}

/// Sorts launches by `(group, then)`, where `group` never decreases with the launch time: when they
/// are in time order already (as the store streams them), only each group is sorted.
fn sort_by_group<G: Ord, K: Ord>(
    launches: &mut [Launch],
    group: impl Fn(&Launch) -> G + Copy,
    then: impl Fn(&Launch) -> K + Copy,
) {
    if launches.is_sorted_by_key(group) {
        for run in launches.chunk_by_mut(|a, b| group(a) == group(b)) {
            run.sort_unstable_by_key(then);
        }
    } else {
        launches.sort_unstable_by_key(|l| (group(l), then(l)));
    }
}

/// The month a launch's `at` holds after [`to_months`], as `month_text` takes it.
fn month(l: &Launch) -> u32 {
    u32::try_from(l.at).unwrap_or(0)
}

/// See [`Reader::report_monthly`].
pub fn monthly<R: Reader + ?Sized>(
    store: &R,
    filter: &ReportFilter,
) -> Result<Vec<MonthRow>, StoreError> {
    let Scope { mut launches, .. } = scope(store, filter)?;
    to_months(&mut launches);
    sort_by_group(&mut launches, month, |l| (l.app, l.person));
    let mut rows: Vec<MonthRow> = runs(&launches, month)
        .map(|(month, run)| {
            let mut apps = 0;
            let mut production_apps = 0;
            for (app, r) in runs(run, |l| l.app) {
                if app != NONE {
                    apps += 1;
                    production_apps += i64::from(production(r.len(), distinct(r, |l| l.person)));
                }
            }
            MonthRow {
                month: month_text(month),
                launches: run.len() as i64,
                unique_users: 0,
                apps,
                production_apps,
            }
        })
        .collect();
    sort_by_group(&mut launches, month, |l| l.person);
    for (row, (_, run)) in rows.iter_mut().zip(runs(&launches, month)) {
        row.unique_users = distinct(run, |l| l.person);
    }
    Ok(rows)
}

/// See [`Reader::report_monthly_by_app`].
pub fn monthly_by_app<R: Reader + ?Sized>(
    store: &R,
    filter: &ReportFilter,
) -> Result<Vec<AppMonthRow>, StoreError> {
    let Scope {
        mut launches,
        names,
    } = scope(store, filter)?;
    to_months(&mut launches);
    sort_by_group(&mut launches, month, |l| (l.app, l.person));
    let mut rows = Vec::new();
    for (month, run) in runs(&launches, month) {
        let start = rows.len();
        for (app, r) in runs(run, |l| l.app) {
            let name = (app != NONE)
                .then(|| names.apps.get(app as usize))
                .flatten();
            let users = distinct(r, |l| l.person);
            rows.push(AppMonthRow {
                month: month_text(month),
                app_id: name.map(|a| a.app_id.clone()),
                app_name: name.and_then(|a| a.name.clone()),
                launches: r.len() as i64,
                unique_users: users,
                production: app != NONE && production(r.len(), users),
            });
        }
        rows[start..].sort_by(|a, b| {
            by_launches_then_name(
                (a.launches, a.app_id.as_deref()),
                (b.launches, b.app_id.as_deref()),
            )
        });
    }
    Ok(rows)
}

/// See [`Reader::report_environments`].
pub fn environments<R: Reader + ?Sized>(
    store: &R,
    filter: &ReportFilter,
) -> Result<Vec<EnvironmentRow>, StoreError> {
    let Scope {
        mut launches,
        names,
    } = scope(store, filter)?;
    // One environment whatever the case of its id: the legacy records spell the default one
    // `Default-<tenant>`, RecordType 256 `default-<tenant>`. Shown as first stored.
    let mut first_of: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    let same: Vec<u32> = names
        .environments
        .iter()
        .enumerate()
        .map(|(code, id)| {
            *first_of
                .entry(id.to_lowercase())
                .or_insert(u32::try_from(code).unwrap_or(NONE))
        })
        .collect();
    for l in &mut launches {
        l.environment = same
            .get(l.environment as usize)
            .copied()
            .unwrap_or(l.environment);
    }
    launches.sort_unstable_by_key(|l| (l.environment, l.app));
    let mut rows: Vec<EnvironmentRow> = runs(&launches, |l| l.environment)
        .map(|(env, run)| EnvironmentRow {
            environment_id: (env != NONE)
                .then(|| names.environments.get(env as usize).cloned())
                .flatten(),
            apps: distinct(run, |l| l.app),
            launches: run.len() as i64,
            unique_users: 0,
            last_launch: stamp(run.iter().map(|l| l.at).max().unwrap_or_default()),
        })
        .collect();
    launches.sort_unstable_by_key(|l| (l.environment, l.person));
    for (row, (_, run)) in rows.iter_mut().zip(runs(&launches, |l| l.environment)) {
        row.unique_users = distinct(run, |l| l.person);
    }
    rows.sort_by(|a, b| {
        by_launches_then_name(
            (a.launches, a.environment_id.as_deref()),
            (b.launches, b.environment_id.as_deref()),
        )
    });
    Ok(rows)
}

/// See [`Reader::report_inactive`].
pub fn inactive<R: Reader + ?Sized>(
    store: &R,
    days: u32,
    environment: Option<&str>,
    now: DateTime<Utc>,
) -> Result<InactiveReport, StoreError> {
    // Now − N days, as a whole second rounded up (stored times are whole seconds): a launch is
    // older than N days exactly when it is before this second. Rounding down would keep a launch at
    // 10:00:00 active at a cutoff of 10:00:00.5. A cutoff before chrono's range is its start.
    let exact = now
        .checked_sub_signed(TimeDelta::days(i64::from(days)))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let cutoff = DateTime::from_timestamp(seconds_up(exact), 0).unwrap_or(exact);
    let everything = ReportFilter {
        environment: environment.map(str::to_owned),
        ..ReportFilter::default()
    };
    let Scope { launches, names } = scope(store, &everything)?;
    let data_since = store.oldest_launch()?;
    let mut per: std::collections::HashMap<u32, (i64, i64)> = std::collections::HashMap::new();
    for l in launches.iter().filter(|l| l.app != NONE) {
        let e = per.entry(l.app).or_insert((i64::MIN, 0));
        e.0 = e.0.max(l.at);
        e.1 += 1;
    }
    let mut apps: Vec<InactiveRow> = per
        .into_iter()
        .filter(|(_, (last, _))| *last < cutoff.timestamp())
        .filter_map(|(app, (last, n))| {
            let name = names.apps.get(app as usize)?;
            Some(InactiveRow {
                app_id: name.app_id.clone(),
                app_name: name.name.clone(),
                environment_id: name.environment.clone(),
                last_launch: stamp(last),
                launches: n,
            })
        })
        .collect();
    apps.sort_by(|a, b| (&a.last_launch, &a.app_id).cmp(&(&b.last_launch, &b.app_id)));
    Ok(InactiveReport {
        cutoff: ts(cutoff),
        data_since: data_since.map(stamp),
        apps,
    })
}

#[cfg(test)]
mod tests;
