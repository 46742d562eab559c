//! `auditsync subscribe start|stop|list`.

use std::io::Write;

use serde::Serialize;

use super::{load_settings, print, stdout_error, write_table};
use crate::cli::{GlobalArgs, SubscribeCommand};
use crate::error::{Error, Outcome};
use auditsync_core::api::{ApiClient, StartOutcome, StopOutcome, Subscription, Webhook};

pub async fn run(cmd: SubscribeCommand, global: &GlobalArgs) -> Result<Outcome, Error> {
    let settings = load_settings(global)?;
    let pick = |asked: &[String]| {
        if asked.is_empty() {
            settings.sync.content_types.clone()
        } else {
            asked.to_vec()
        }
    };
    let secret = settings.client_secret().await?;
    let api = ApiClient::new(&settings, secret)?;
    let mut stdout = std::io::stdout().lock();
    // -q: starting and stopping say nothing when they succeed (a list is what was asked for).
    let mut sink = std::io::sink();
    let confirm: &mut dyn Write = if global.quiet { &mut sink } else { &mut stdout };
    match cmd {
        SubscribeCommand::Start(a) => start(&api, &pick(&a.content_types), confirm).await,
        SubscribeCommand::Stop(a) => stop(&api, &pick(&a.content_types), confirm).await,
        SubscribeCommand::List(a) => {
            let filter = (!a.content_types.content_types.is_empty())
                .then(|| a.content_types.content_types.clone());
            let wanted = filter
                .clone()
                .unwrap_or(settings.sync.content_types.clone());
            list(&api, &wanted, filter.is_some(), a.json, &mut stdout).await
        }
    }
}

/// Starts each content type's subscription, saying for each whether it was started or already on.
pub async fn start(
    api: &ApiClient,
    content_types: &[String],
    out: &mut dyn Write,
) -> Result<Outcome, Error> {
    for ct in content_types {
        let line = match api.start_subscription(ct).await? {
            StartOutcome::Started => format!("{ct}: subscription started"),
            StartOutcome::AlreadyEnabled => format!("{ct}: subscription was already enabled"),
        };
        tracing::debug!("{line}");
        print(out, &line)?;
    }
    Ok(Outcome::Done)
}

async fn stop(
    api: &ApiClient,
    content_types: &[String],
    out: &mut dyn Write,
) -> Result<Outcome, Error> {
    for ct in content_types {
        let line = match api.stop_subscription(ct).await? {
            StopOutcome::Stopped => format!(
                "{ct}: subscription stopped (content published until the next `auditsync subscribe start` \
                 cannot be fetched)"
            ),
            StopOutcome::NotSubscribed => format!("{ct}: there was no subscription to stop"),
        };
        tracing::debug!("{line}");
        print(out, &line)?;
    }
    Ok(Outcome::Done)
}

/// One line of `subscribe list`, as printed in JSON.
#[derive(Serialize)]
struct Row {
    content_type: String,
    status: String,
    webhook: Option<Webhook>,
}

/// Lists the tenant's subscriptions. Content types in `wanted` that the tenant has never started are
/// shown as "not started"; with `only`, nothing else is shown.
pub async fn list(
    api: &ApiClient,
    wanted: &[String],
    only: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<Outcome, Error> {
    let subs = api.list_subscriptions().await?;
    let rows = rows(subs, wanted, only);
    if json {
        let text = serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".into());
        // What the service sent (a webhook's address, its authId) passes the redaction filter.
        print(out, &text)?;
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let webhook = match &r.webhook {
                    None => "none".to_owned(),
                    Some(w) => format!(
                        "{} ({})",
                        w.address.as_deref().unwrap_or("?"),
                        w.status.as_deref().unwrap_or("unknown")
                    ),
                };
                // Each cell hidden before the columns are measured, so that they stay aligned.
                [&r.content_type, &r.status, &webhook]
                    .map(|cell| auditsync_core::redact::redact(cell).into_owned())
                    .to_vec()
            })
            .collect();
        let mut rendered = Vec::new();
        write_table(
            &mut rendered,
            &["CONTENT TYPE", "STATUS", "WEBHOOK"],
            &table,
        )
        .map_err(stdout_error)?;
        // And the whole table through the filter, as every result printed.
        let rendered = String::from_utf8_lossy(&rendered);
        print(out, rendered.trim_end_matches('\n'))?;
        let off: Vec<String> = rows
            .iter()
            .filter(|r| r.status != "enabled" && wanted.contains(&r.content_type))
            .map(|r| format!(" --content-type {}", r.content_type))
            .collect();
        if !off.is_empty() {
            tracing::info!(
                "run `auditsync subscribe start{}` to enable them",
                off.concat()
            );
        }
    }
    Ok(Outcome::Done)
}

fn rows(subs: Vec<Subscription>, wanted: &[String], only: bool) -> Vec<Row> {
    let mut rows: Vec<Row> = subs
        .into_iter()
        .filter(|s| {
            !only
                || wanted
                    .iter()
                    .any(|w| w.eq_ignore_ascii_case(&s.content_type))
        })
        .map(|s| Row {
            content_type: s.content_type,
            status: s.status.unwrap_or_else(|| "unknown".into()),
            webhook: s.webhook,
        })
        .collect();
    for w in wanted {
        if !rows.iter().any(|r| r.content_type.eq_ignore_ascii_case(w)) {
            rows.push(Row {
                content_type: w.clone(),
                status: "not started".into(),
                webhook: None,
            });
        }
    }
    rows
}
