//! `auditsync doctor`: the checks the CoE troubleshooting list makes admins do by hand, each a PASS or
//! FAIL line with the fix. Exit 0 only when all pass.

use std::io::Write;

use chrono::{TimeDelta, Utc};

use super::{load_settings, stdout_error, until_stopped};
use crate::cli::GlobalArgs;
use crate::error::{Error, Outcome};
use auditsync_core::api::ApiClient;
use auditsync_core::api::graph::{GraphClient, NewQuery, QueryStatus};
use auditsync_core::config::{Origin, Settings};
use auditsync_core::net::{http_client, server_date};
use auditsync_core::store::{self, SCHEMA_VERSION};
use auditsync_core::time::ts;

/// Clock difference from which the API's 7-day and 24-hour rules start refusing windows.
const SKEW: TimeDelta = TimeDelta::minutes(2);

struct Report<'a> {
    out: std::io::StdoutLock<'a>,
    failed: usize,
    /// `-q`: only the failures are printed.
    quiet: bool,
}

impl Report<'_> {
    fn pass(&mut self, check: &str, detail: &str) -> Result<(), Error> {
        self.pass_as("PASS", check, detail)
    }

    fn fail(&mut self, check: &str, problem: &str) -> Result<(), Error> {
        self.failed += 1;
        // The problem may quote a service's answer, which may echo a credential.
        let problem = auditsync_core::redact::redact(problem);
        writeln!(self.out, "FAIL  {check}: {problem}").map_err(stdout_error)
    }

    /// Something worth knowing that is not a failure of this setup (not counted, not shown under -q).
    fn note(&mut self, check: &str, detail: &str) -> Result<(), Error> {
        self.pass_as("NOTE", check, detail)
    }

    fn pass_as(&mut self, label: &str, check: &str, detail: &str) -> Result<(), Error> {
        if self.quiet {
            return Ok(());
        }
        let detail = auditsync_core::redact::redact(detail);
        writeln!(self.out, "{label}  {check}: {detail}").map_err(stdout_error)
    }

    fn check(&mut self, check: &str, result: Result<String, String>) -> Result<bool, Error> {
        match result {
            Ok(detail) => self.pass(check, &detail).map(|_| true),
            Err(problem) => self.fail(check, &problem).map(|_| false),
        }
    }
}

pub async fn run(global: &GlobalArgs) -> Result<Outcome, Error> {
    // Ctrl-C or SIGTERM ends the checks where they are.
    until_stopped(
        checks(global),
        "the doctor changes nothing; the checks after the one running were not made, run it again to \
         see them all",
    )
    .await
}

/// Every check, in order, each printed as it ends.
async fn checks(global: &GlobalArgs) -> Result<Outcome, Error> {
    let mut report = Report {
        out: std::io::stdout().lock(),
        quiet: global.quiet,
        failed: 0,
    };
    let settings = match load_settings(global) {
        Ok(s) => s,
        Err(e) => {
            report.fail("configuration", &e.to_string())?;
            return Err(Error::Usage(
                "the configuration is not valid; the other checks need it (see the FAIL line above)".into(),
            ));
        }
    };
    let file = settings
        .file
        .as_ref()
        .map_or("the environment".to_owned(), |p| p.display().to_string());
    report.pass(
        "configuration",
        &format!(
            "{file} is valid (cloud {}, tenant {})",
            settings.tenant.cloud.name(),
            settings.tenant.tenant_id
        ),
    )?;
    let mismatches: Vec<&String> = settings
        .warnings
        .iter()
        .filter(|w| w.contains("belongs to the"))
        .collect();
    report.check(
        "cloud hosts",
        if mismatches.is_empty() {
            Ok(format!(
                "login at {}, API at {}",
                settings.tenant.authority, settings.tenant.audience
            ))
        } else {
            Err(mismatches
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("; "))
        },
    )?;
    report.check("clock", clock(&settings).await)?;

    let secret = match settings.client_secret().await {
        Ok(secret) => Some(secret),
        Err(e) => {
            report.fail("token", &e.to_string())?;
            None
        }
    };
    if let Some(secret) = &secret {
        let api = ApiClient::new(&settings, secret.clone())?;
        online_checks(&mut report, &settings, &api).await?;
        match settings.graph_endpoint() {
            Ok(_) => {
                let graph = GraphClient::new(&settings, secret.clone())?;
                graph_checks(&mut report, &settings, &graph).await?;
            }
            // Asked for (`enabled = true`) where it cannot work: a failure; else only a note.
            Err(e)
                if !matches!(settings.graph.enabled_from, Origin::Default)
                    && settings.graph.enabled =>
            {
                report.fail("graph", &e.to_string())?;
            }
            Err(e) => report.note("graph", &format!("not checked: {e}"))?,
        }
    }
    database(&mut report, &settings)?;

    if report.failed == 0 {
        Ok(Outcome::Done)
    } else {
        writeln!(report.out, "{} checks failed", report.failed).map_err(stdout_error)?;
        Ok(Outcome::Incomplete)
    }
}

/// The service's clock, from the `Date` header of any answer of the API host.
async fn clock(settings: &Settings) -> Result<String, String> {
    let http = http_client().map_err(|e| e.to_string())?;
    let date = server_date(&http, &settings.tenant.audience)
        .await
        .map_err(|e| e.to_string())?;
    let skew = Utc::now() - date;
    if skew.abs() > SKEW {
        Err(format!(
            "this machine's clock is {} s off the service's; the API counts its 7 days and 24 hours by its \
             own clock and refuses windows that look wrong: fix the clock (NTP: timedatectl set-ntp true)",
            skew.num_seconds()
        ))
    } else {
        Ok(format!(
            "{:.1} s from the service's clock",
            skew.num_milliseconds() as f64 / 1000.0
        ))
    }
}

async fn online_checks(
    report: &mut Report<'_>,
    settings: &Settings,
    api: &ApiClient,
) -> Result<(), Error> {
    let token = match api.token().await {
        Ok(t) => t,
        Err(e) => {
            report.fail("token", &e.to_string())?;
            return Ok(());
        }
    };
    report.pass(
        "token",
        &format!("Entra ID issued a token for {}", settings.tenant.audience),
    )?;
    let roles = token.roles();
    report.check(
        "permission",
        match &roles {
            Some(r) if r.iter().any(|r| r == "ActivityFeed.Read") => {
                Ok("the token carries ActivityFeed.Read".to_owned())
            }
            Some(r) => Err(format!(
                "the token carries {} but not ActivityFeed.Read: in Entra admin center > App registrations > \
                 API permissions add Office 365 Management APIs > Application permissions > ActivityFeed.Read \
                 and grant admin consent",
                if r.is_empty() { "no roles".to_owned() } else { r.join(", ") }
            )),
            None => Err("the token is not a JWT, so its permissions cannot be read".to_owned()),
        },
    )?;
    let subscriptions = match api.list_subscriptions().await {
        Ok(s) => s,
        Err(e) => {
            report.fail("subscriptions", &e.to_string())?;
            return Ok(());
        }
    };
    for ct in &settings.sync.content_types {
        let status = subscriptions
            .iter()
            .find(|s| s.content_type.eq_ignore_ascii_case(ct))
            .and_then(|s| s.status.clone());
        let ok = report.check(
            &format!("subscription {ct}"),
            match status.as_deref() {
                Some(s) if s.eq_ignore_ascii_case("enabled") => Ok("enabled".to_owned()),
                Some(s) => Err(format!("it is {s}: run `auditsync subscribe start`")),
                None => Err("there is none: run `auditsync subscribe start`".to_owned()),
            },
        )?;
        if ok {
            report.check(&format!("content {ct}"), recent_content(api, ct).await)?;
        }
    }
    Ok(())
}

/// Whether the API lists content for the last 24 hours.
async fn recent_content(api: &ApiClient, ct: &str) -> Result<String, String> {
    let now = Utc::now();
    let url = api.content_url(ct, now - TimeDelta::hours(24), now);
    match api.content_page(url, ct).await {
        Ok(page) if !page.blobs.is_empty() => Ok(format!(
            "{}{} blobs listed for the last 24 hours",
            page.blobs.len(),
            if page.next.is_some() { "+" } else { "" }
        )),
        Ok(_) => Err(
            "no content was listed for the last 24 hours: a new subscription takes up to 12 hours to show \
             content; otherwise check that auditing is on in Microsoft Purview"
                .to_owned(),
        ),
        Err(e) => Err(e.to_string()),
    }
}

/// The Graph audit log query API (`backfill`, `verify`): the second token's `roles`, then a one-hour
/// test query (one of the tenant's daily submissions). They are checks (a FAIL counts) when `[graph]
/// enabled` is set; otherwise `sync` alone is in use, and what backfill would need is a NOTE, with no
/// test query.
async fn graph_checks(
    report: &mut Report<'_>,
    settings: &Settings,
    client: &GraphClient,
) -> Result<(), Error> {
    let in_use = !matches!(settings.graph.enabled_from, Origin::Default);
    let check = |report: &mut Report<'_>, name: &str, result: Result<String, String>| match result {
        Ok(detail) => report.pass(name, &detail).map(|()| true),
        Err(problem) if in_use => report.fail(name, &problem).map(|()| false),
        Err(problem) => report
            .note(
                name,
                &format!("{problem} (needed by `backfill` and `verify` only)"),
            )
            .map(|()| false),
    };
    let token = match client.token().await {
        Ok(t) => t,
        Err(e) => return check(report, "graph token", Err(e.to_string())).map(|_| ()),
    };
    report.pass(
        "graph token",
        &format!("Entra ID issued a token for {}", client.endpoint()),
    )?;
    let roles_ok = check(report, "graph permission", graph_roles(token.roles()))?;
    if !in_use {
        return report.note(
            "graph test query",
            "not made: set `[graph] enabled = true` to check `backfill`'s access with a one-hour query (it \
             uses one of the tenant's daily query submissions)",
        );
    }
    if roles_ok {
        report.check("graph test query", test_query(settings, client).await)?;
    }
    Ok(())
}

/// Whether the Graph token's `roles` hold `AuditLogsQuery.Read.All` (graph-audit-api.md, "Permissions").
fn graph_roles(roles: Option<Vec<String>>) -> Result<String, String> {
    const ROLE: &str = "AuditLogsQuery.Read.All";
    const ADD: &str = "in Entra admin center > App registrations > API permissions add Microsoft Graph > \
                       Application permissions > AuditLogsQuery.Read.All and grant admin consent";
    match roles {
        Some(r) if r.iter().any(|r| r == ROLE) => Ok(format!("the Graph token carries {ROLE}")),
        Some(r) if r.iter().any(|r| r == "AuditLog.Read.All") => Err(format!(
            "the Graph token carries AuditLog.Read.All but not {ROLE}: since April 2026 that permission no \
             longer covers audit log queries, which then succeed and return zero records; {ADD}"
        )),
        Some(r) => Err(format!(
            "the Graph token carries {} but not {ROLE}: {ADD}",
            if r.is_empty() {
                "no roles".to_owned()
            } else {
                r.join(", ")
            }
        )),
        None => Err("the Graph token is not a JWT, so its permissions cannot be read".to_owned()),
    }
}

/// How long the doctor waits for its test query.
const TEST_QUERY_WAIT: std::time::Duration = std::time::Duration::from_secs(180);

/// Submits a query for the hour that ended an hour ago, waits for it (at most [`TEST_QUERY_WAIT`]) and
/// reads its first page.
async fn test_query(settings: &Settings, client: &GraphClient) -> Result<String, String> {
    let end = Utc::now() - TimeDelta::hours(1);
    let query = NewQuery {
        display_name: format!("auditsync doctor {}", ts(end)),
        start: end - TimeDelta::hours(1),
        end,
        operations: settings.sync.operations.clone(),
    };
    let created = client.create(&query).await.map_err(|e| e.to_string())?;
    let give_up = tokio::time::Instant::now() + TEST_QUERY_WAIT;
    loop {
        let info = client.get(&created.id).await.map_err(|e| e.to_string())?;
        match info.status {
            QueryStatus::Succeeded => break,
            QueryStatus::Failed | QueryStatus::Cancelled => {
                return Err(format!(
                    "the test query ended {}: the service could not search the audit log; try again later",
                    info.status.as_str()
                ));
            }
            _ => {}
        }
        if tokio::time::Instant::now() >= give_up {
            return Ok(format!(
                "the test query was accepted but still {} after {} s (queries often take minutes; backfill \
                 waits up to [graph] query_timeout)",
                info.status.as_str(),
                TEST_QUERY_WAIT.as_secs()
            ));
        }
        tokio::time::sleep(settings.graph.poll_interval).await;
    }
    let page = client
        .records_page(None, &created.id)
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "a one-hour query ({} to {}) succeeded: {}{} records (it used one of the tenant's daily query submissions)",
        ts(query.start),
        ts(query.end),
        page.records.len(),
        if page.next.is_some() { "+" } else { "" }
    ))
}

/// Whether a file can be created in the database's folder (by creating and removing one).
fn folder_writable(database: &std::path::Path) -> bool {
    let folder = match database.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    let probe = folder.join(format!(".auditsync-doctor-{}", std::process::id()));
    let ok = std::fs::File::create(&probe).is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

fn database(report: &mut Report<'_>, settings: &Settings) -> Result<(), Error> {
    let path = &settings.database;
    let inspected = store::inspect(path);
    report.check(
        "database",
        match &inspected {
            Ok(None) if folder_writable(path) => Ok(format!(
                "no database yet; the first `auditsync sync` creates {}",
                path.display()
            )),
            Ok(None) => Err(format!(
                "there is no database at {} and its folder cannot be written: create the folder or point \
                 `database` elsewhere",
                path.display()
            )),
            Ok(Some((_, writable))) if !writable || !folder_writable(path) => Err(format!(
                "{} or its folder cannot be written by this user (SQLite keeps its journal beside it): check \
                 their owner and permissions",
                path.display()
            )),
            Ok(Some((v, true))) if *v > SCHEMA_VERSION => Err(format!(
                "{} has schema {v}, newer than this auditsync ({SCHEMA_VERSION}): upgrade auditsync",
                path.display()
            )),
            Ok(Some((v, true))) if *v < SCHEMA_VERSION => Ok(format!(
                "{} is writable; schema {v} will be brought to {SCHEMA_VERSION} by the next sync",
                path.display()
            )),
            Ok(Some(_)) => Ok(format!("{} is writable, schema {SCHEMA_VERSION} (current)", path.display())),
            Err(e) => Err(e.to_string()),
        },
    )?;
    // Opened only at the current schema, so that the doctor never migrates anything.
    if let Ok(Some((SCHEMA_VERSION, _))) = inspected {
        // Everything is read first: the database (and its shared lock, which keeps writers out) is let
        // go before a line is printed, so a pager left open never holds up a sync.
        let store = store::open_read(path)?;
        let last = store.last_run()?;
        let running = store.writer().map(str::to_owned);
        let watermark = watermark(store.as_ref())?;
        drop(store);
        report.check(
            "last sync",
            match last {
                None => Ok("no sync has run yet: run `auditsync sync` and schedule it hourly".to_owned()),
                Some(r) => {
                    let started = r.started_at.map_or_else(|| "(unknown time)".to_owned(), ts);
                    let age = r.started_at.map_or(TimeDelta::MAX, |t| Utc::now() - t);
                    let running = running.filter(|_| r.outcome.is_none());
                    let outcome = r.outcome.unwrap_or_else(|| "interrupted".into());
                    if let Some(holder) = running {
                        Ok(format!("a sync is running now ({holder}), started {started}"))
                    } else if outcome == "complete" && age < TimeDelta::hours(2) {
                        Ok(format!("{started} complete ({} minutes ago)", age.num_minutes()))
                    } else if age >= TimeDelta::hours(2) {
                        Err(format!(
                            "the last sync started {started} ({} hours ago): check that cron runs `auditsync sync` hourly",
                            age.num_hours()
                        ))
                    } else {
                        Err(format!(
                            "the last sync ({started}) ended {outcome}: see `auditsync status` and its log"
                        ))
                    }
                }
            },
        )?;
        if let Some(watermark) = watermark {
            report.check("watermark", watermark)?;
        }
    }
    Ok(())
}

/// A watermark later than now (a clock set back, a database copied from a machine whose clock was
/// ahead) is not trusted by `sync` (`sync::plan::window`); the doctor says so before it runs.
/// `None` when there is no watermark yet, else the check's result.
fn watermark(store: &dyn store::Reader) -> Result<Option<Result<String, String>>, Error> {
    let Some(w) = store.watermark()? else {
        return Ok(None);
    };
    let now = Utc::now();
    let result = if w > now + auditsync_core::sync::plan::FUTURE_SKEW {
        Err(format!(
            "the watermark {} is later than now ({}): this machine's clock was set back, or the database is a \
             copy from a machine whose clock was ahead; check the clock (NTP). The next `auditsync sync` does \
             not trust it: it reaches back as far as the API serves (7 days), fetches whatever is missing and \
             sets the watermark back",
            ts(w),
            ts(now)
        ))
    } else {
        Ok(format!("{} (where the last complete sync ended)", ts(w)))
    };
    Ok(Some(result))
}
