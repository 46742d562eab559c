//! The usage reports' queries over `audit_events`: per app, per user, per day. Only `LaunchPowerApp`
//! rows count; every filter is a bound parameter.
//!
//! A person is counted by `user_key`, filled when the row was written (`events::user_key`): their
//! Entra object id where a record carries it, or where another record of the same UPN did; the
//! lower-cased UPN otherwise. No JSON is parsed here, so the reports stay fast over millions of rows.
//! A row without a `user_key` (written by another tool) counts by its lower-cased `user_id`.

use chrono::{DateTime, Timelike, Utc};
use rusqlite::{Row, params};

use super::SqliteStore;
use crate::store::{
    AppRow, DayRow, PRODUCTION_MONTHLY_LAUNCHES, PRODUCTION_MONTHLY_USERS, ReportFilter,
    StoreError, UserRow,
};
use crate::time::ts;

/// The launches a filter selects, as a common table `l`. Parameters: ?1 from (inclusive), ?2 to
/// (exclusive), ?3 app id or NULL, ?4 environment id or NULL. Times are compared as the stored
/// RFC 3339 UTC text (`2026-11-21T13:17:34Z`), which sorts as time does.
const LAUNCHES: &str = "WITH l AS (
    SELECT app_id, environment_id, coalesce(user_key, fold_case(user_id)) AS u, creation_time AS t
    FROM audit_events
    WHERE operation = 'LaunchPowerApp' AND creation_time >= ?1 AND creation_time < ?2
      AND (?3 IS NULL OR fold_case(app_id) = fold_case(?3))
      AND (?4 IS NULL OR fold_case(environment_id) = fold_case(?4))
)";

/// Bounds as stored text. Stored times have whole seconds, so a bound with a fraction rounds up: a
/// launch at 10:00:00 is before --from 10:00:00.5 and before --to 10:00:00.5.
fn bound(t: Option<DateTime<Utc>>, unbounded: &str) -> String {
    match t {
        None => unbounded.to_owned(),
        Some(t) if t.nanosecond() == 0 => ts(t),
        Some(t) => ts(t.with_nanosecond(0).unwrap_or(t) + chrono::TimeDelta::seconds(1)),
    }
}

impl SqliteStore {
    /// Per app: launches, unique users, first and last launch, environment, production app. Most
    /// launched first, then by app id; the launches without an app id last among equals.
    pub(super) fn query_apps(&self, filter: &ReportFilter) -> Result<Vec<AppRow>, StoreError> {
        let sql = format!(
            "{LAUNCHES},
            months AS (
                SELECT app_id, count(*) AS n, count(DISTINCT u) AS users FROM l
                WHERE app_id IS NOT NULL GROUP BY app_id, substr(t, 1, 7)
            )
            SELECT a.app_id,
                (SELECT e.app_name FROM audit_events e
                 WHERE a.app_id IS NOT NULL AND e.app_id = a.app_id AND e.operation = 'LaunchPowerApp'
                   AND e.app_name IS NOT NULL ORDER BY e.creation_time DESC LIMIT 1),
                (SELECT e.environment_id FROM audit_events e
                 WHERE a.app_id IS NOT NULL AND e.app_id = a.app_id AND e.operation = 'LaunchPowerApp'
                   AND e.environment_id IS NOT NULL ORDER BY e.creation_time DESC LIMIT 1),
                count(*) AS launches, count(DISTINCT a.u), min(a.t), max(a.t),
                EXISTS (SELECT 1 FROM months m WHERE m.app_id = a.app_id AND (m.n >= ?5 OR m.users >= ?6))
            FROM l a GROUP BY a.app_id
            ORDER BY launches DESC, a.app_id IS NULL, a.app_id"
        );
        self.report_rows(
            &sql,
            filter,
            params![PRODUCTION_MONTHLY_LAUNCHES, PRODUCTION_MONTHLY_USERS],
            |r| {
                Ok(AppRow {
                    app_id: r.get(0)?,
                    app_name: r.get(1)?,
                    environment_id: r.get(2)?,
                    launches: r.get(3)?,
                    unique_users: r.get(4)?,
                    first_launch: r.get(5)?,
                    last_launch: r.get(6)?,
                    production: r.get(7)?,
                })
            },
        )
    }

    /// Per person (`user_key`): launches, distinct apps, first and last launch. Most launches first.
    /// A person is shown by the UPN last seen with their object id, else by the key itself (a UPN, or
    /// an object id no record linked to a UPN).
    pub(super) fn query_users(&self, filter: &ReportFilter) -> Result<Vec<UserRow>, StoreError> {
        let sql = format!(
            "{LAUNCHES},
            people AS (
                SELECT u, count(*) AS launches, count(DISTINCT app_id) AS apps, min(t) AS first,
                    max(t) AS last
                FROM l GROUP BY u
            )
            SELECT coalesce((SELECT i.upn FROM user_identities i WHERE i.object_id = p.u
                             ORDER BY i.last_seen DESC, i.upn LIMIT 1), p.u) AS shown,
                launches, apps, first, last
            FROM people p ORDER BY launches DESC, shown IS NULL, shown"
        );
        self.report_rows(&sql, filter, params![], |r| {
            Ok(UserRow {
                user_id: r.get(0)?,
                launches: r.get(1)?,
                apps: r.get(2)?,
                first_launch: r.get(3)?,
                last_launch: r.get(4)?,
            })
        })
    }

    /// Per UTC day with launches: launches and unique users, oldest first.
    pub(super) fn query_daily(&self, filter: &ReportFilter) -> Result<Vec<DayRow>, StoreError> {
        let sql = format!(
            "{LAUNCHES}
            SELECT substr(t, 1, 10) AS day, count(*), count(DISTINCT u) FROM l GROUP BY day ORDER BY day"
        );
        self.report_rows(&sql, filter, params![], |r| {
            Ok(DayRow {
                day: r.get(0)?,
                launches: r.get(1)?,
                unique_users: r.get(2)?,
            })
        })
    }

    /// Runs a report query: ?1 to ?4 are the filter's (see [`LAUNCHES`]), `extra` are ?5 on.
    fn report_rows<T>(
        &self,
        sql: &str,
        filter: &ReportFilter,
        extra: &[&dyn rusqlite::ToSql],
        row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let (from, to) = (bound(filter.from, ""), bound(filter.to, "~"));
        let mut params: Vec<&dyn rusqlite::ToSql> =
            vec![&from, &to, &filter.app, &filter.environment];
        params.extend_from_slice(extra);
        let mut stmt = self
            .conn
            .prepare_cached(sql)
            .map_err(|e| self.read_err(e))?;
        let rows = stmt
            .query_map(params.as_slice(), row)
            .map_err(|e| self.read_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.read_err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_round_a_fraction_up_to_the_next_stored_second() {
        let at = |s: &str| Some(DateTime::parse_from_rfc3339(s).unwrap().to_utc());
        assert_eq!(bound(None, ""), "");
        assert_eq!(
            bound(at("2026-01-02T03:04:05Z"), ""),
            "2026-01-02T03:04:05Z"
        );
        assert_eq!(
            bound(at("2026-01-02T03:04:05.25+01:00"), ""),
            "2026-01-02T02:04:06Z"
        );
    }
}
