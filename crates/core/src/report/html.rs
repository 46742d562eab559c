//! `report apps --format html`: one self-contained page (inline CSS, an inline SVG bar chart of daily
//! launches drawn here, the apps table, then monthly use, the environments and the inactive apps). No script, font, image or stylesheet is fetched from anywhere,
//! and every string that came from the data or the command line is escaped.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use super::{NO_APP_ID, NO_ENVIRONMENT};
use crate::store::{
    AppRow, DayRow, EnvironmentRow, InactiveReport, MonthRow, PRODUCTION_MONTHLY_LAUNCHES,
    PRODUCTION_MONTHLY_USERS, ReportFilter,
};
use crate::time::ts;

/// Beyond this many days, the chart spans the days with data rather than an open-ended range.
const MAX_CHART_DAYS: i64 = 3660;

/// What the page shows.
pub struct Page<'a> {
    /// The filter both reports were made with; the heading states its range, app and environment (an
    /// open end as the first or last launch among `apps`).
    pub filter: &'a ReportFilter,
    /// The apps report: the table, in this order, and the totals of launches, apps and production
    /// apps.
    pub apps: &'a [AppRow],
    /// The daily report for the same filter: the busiest day and the chart, one slot per day of the
    /// range (days without launches left empty).
    pub daily: &'a [DayRow],
    /// The monthly report for the same filter: one table row per month.
    pub monthly: &'a [MonthRow],
    /// The environments report for the same filter.
    pub environments: &'a [EnvironmentRow],
    /// The inactive apps (over the whole store, whatever the range) and the days they were asked
    /// for; `None` leaves the section out.
    pub inactive: Option<(u32, &'a InactiveReport)>,
    /// When the page was made, shown in its footer.
    pub generated_at: DateTime<Utc>,
}

/// Writes the page.
///
/// # Errors
/// The error of writing to `out`.
pub fn html(out: &mut dyn Write, page: &Page) -> io::Result<()> {
    out.write_all(render(page).as_bytes())
}

/// Text for HTML content and attribute values: markup escaped, and control and invisible characters
/// shown as escapes ([`super::visible`]), as in the table.
fn esc(s: &str) -> String {
    let s = super::visible(s);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// 1234567 → "1,234,567".
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

const STYLE: &str = "
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif;
  color: #1f2328; background: #fff; margin: 2rem auto; max-width: 1280px; padding: 0 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 .35rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .6rem; }
p { margin: .25rem 0; }
.meta, .note, footer { color: #57606a; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.totals { display: flex; flex-wrap: wrap; gap: 1rem 3rem; margin: 1.5rem 0 0; padding: 0; list-style: none; }
.totals b { display: block; font-size: 1.6rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.chart { width: 100%; height: auto; display: block; }
.chart text { font-size: 12px; fill: #57606a; }
.chart .title { font-size: 13px; fill: #1f2328; }
.bar { fill: #2f6fba; }
.bar:hover { fill: #174a85; }
.grid { stroke: #e1e5ea; stroke-width: 1; }
.axis { stroke: #8c959f; stroke-width: 1; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid #d8dee4; vertical-align: baseline; }
th { background: #f6f8fa; font-weight: 600; vertical-align: bottom; }
tbody tr:hover { background: #f6f8fa; }
.n { text-align: right; font-variant-numeric: tabular-nums; }
td.n { white-space: nowrap; }
.time { white-space: nowrap; font-variant-numeric: tabular-nums; }
.name { font-weight: 500; overflow-wrap: anywhere; }
.id { display: block; font: 11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: #57606a;
  white-space: nowrap; }
.none { color: #8c959f; font-style: italic; }
.yes { color: #1a7f37; font-weight: 600; }
.note { font-size: 13px; margin-top: .75rem; }
footer { font-size: 13px; margin-top: 2.5rem; border-top: 1px solid #d8dee4; padding-top: .75rem; }
";

fn render(page: &Page) -> String {
    let first = page.apps.iter().map(|a| a.first_launch.as_str()).min();
    let last = page.apps.iter().map(|a| a.last_launch.as_str()).max();
    let from = match (page.filter.from, first) {
        (Some(t), _) => ts(t),
        (None, Some(f)) => format!("{f} (the first stored launch)"),
        (None, None) => "the first stored launch".to_owned(),
    };
    let to = match (page.filter.to, last) {
        (Some(t), _) => format!("{} (exclusive)", ts(t)),
        (None, Some(l)) => format!("{l} (the last stored launch)"),
        (None, None) => "the last stored launch".to_owned(),
    };
    let launches: i64 = page.apps.iter().map(|a| a.launches).sum();
    let apps = page.apps.iter().filter(|a| a.app_id.is_some()).count();
    let production = page.apps.iter().filter(|a| a.production).count();
    let busiest = page
        .daily
        .iter()
        .max_by_key(|d| (d.launches, std::cmp::Reverse(&d.day)));

    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"auditsync {version}\">\n\
         <title>Power Apps usage: {from_short} to {to_short}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>Power Apps usage</h1>\n\
         <p class=\"meta\">Launches from {from} to {to}. All times are UTC.</p>\n",
        version = env!("CARGO_PKG_VERSION"),
        from_short = esc(&short(&from)),
        to_short = esc(&short(&to)),
        from = esc(&from),
        to = esc(&to),
    );
    if let Some(app) = &page.filter.app {
        let _ = writeln!(
            h,
            "<p class=\"meta\">Only the app <code>{}</code>.</p>",
            esc(app)
        );
    }
    if let Some(env) = &page.filter.environment {
        let _ = writeln!(
            h,
            "<p class=\"meta\">Only the environment <code>{}</code>.</p>",
            esc(env)
        );
    }
    let _ = write!(
        h,
        "<ul class=\"totals\">\n<li><b>{}</b>launches</li>\n<li><b>{}</b>apps</li>\n\
         <li><b>{}</b>production apps</li>\n<li><b>{}</b>busiest day{}</li>\n</ul>\n",
        thousands(launches),
        thousands(apps as i64),
        thousands(production as i64),
        busiest.map_or_else(|| "-".to_owned(), |d| thousands(d.launches)),
        busiest.map_or_else(String::new, |d| format!(" ({})", esc(&d.day))),
    );

    h.push_str("<h2>Launches per day</h2>\n");
    match chart_days(page) {
        Some(days) => h.push_str(&chart(&days)),
        None => h.push_str("<p class=\"none\">No launches in this range.</p>\n"),
    }

    h.push_str("<h2>Apps</h2>\n");
    if page.apps.is_empty() {
        h.push_str("<p class=\"none\">No launches in this range.</p>\n");
    } else {
        h.push_str(&apps_table(page.apps));
    }
    h.push_str(&monthly_section(page.monthly));
    h.push_str(&environments_section(page.environments));
    if let Some((days, inactive)) = page.inactive {
        h.push_str(&inactive_section(days, inactive));
    }
    let _ = write!(
        h,
        "<p class=\"note\">Unique users compare user names (UPNs) case-insensitively. A production app had, in \
         some calendar month (UTC) of this range, at least {PRODUCTION_MONTHLY_LAUNCHES} launches or launches \
         by at least {PRODUCTION_MONTHLY_USERS} different users (the CoE Starter Kit's definition).</p>\n\
         <footer>Generated {} by auditsync {} from the <code>audit_events</code> table.</footer>\n\
         </body>\n</html>\n",
        esc(&ts(page.generated_at)),
        env!("CARGO_PKG_VERSION"),
    );
    h
}

/// The date part of a range end, for the page title.
fn short(s: &str) -> String {
    s.get(..10)
        .filter(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok())
        .unwrap_or(s)
        .to_owned()
}

/// Every day of the range with its launches and users (zero for days without), or `None` when there
/// is nothing to draw. Open ends take the first or last day with launches.
fn chart_days(page: &Page) -> Option<Vec<(NaiveDate, i64, i64)>> {
    let parse = |d: &DayRow| NaiveDate::parse_from_str(&d.day, "%Y-%m-%d").ok();
    let data_first = page.daily.iter().filter_map(parse).min();
    let data_last = page.daily.iter().filter_map(parse).max();
    let mut start = page.filter.from.map(|t| t.date_naive()).or(data_first)?;
    let mut end = page
        .filter
        .to
        .map(|t| (t - TimeDelta::seconds(1)).date_naive())
        .or(data_last)?;
    if (end - start).num_days() > MAX_CHART_DAYS {
        start = data_first?;
        end = data_last?;
    }
    if end < start {
        return None;
    }
    let counts: HashMap<NaiveDate, (i64, i64)> = page
        .daily
        .iter()
        .filter_map(|d| Some((parse(d)?, (d.launches, d.unique_users))))
        .collect();
    Some(
        start
            .iter_days()
            .take_while(|d| *d <= end)
            .map(|d| {
                let (n, u) = counts.get(&d).copied().unwrap_or_default();
                (d, n, u)
            })
            .collect(),
    )
}

/// A round step for about five gridlines up to `max`: 1, 2 or 5 times a power of ten.
fn tick_step(max: i64) -> i64 {
    let raw = ((max + 4) / 5).max(1);
    let mut magnitude = 1;
    while magnitude * 10 <= raw {
        magnitude *= 10;
    }
    [1, 2, 5, 10]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10 * magnitude)
}

/// The bar chart of launches per day, as inline SVG.
fn chart(days: &[(NaiveDate, i64, i64)]) -> String {
    const W: f64 = 1000.0;
    const H: f64 = 320.0;
    const LEFT: f64 = 64.0;
    const RIGHT: f64 = 16.0;
    const TOP: f64 = 12.0;
    const BOTTOM: f64 = 58.0;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let base = TOP + plot_h;
    let max = days.iter().map(|d| d.1).max().unwrap_or(0);
    let step = tick_step(max);
    let top = (max.max(1) + step - 1) / step * step;
    let y = |v: i64| base - v as f64 / top as f64 * plot_h;

    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" \
         aria-labelledby=\"chart-title\">\n<title id=\"chart-title\">Launches per day, {} to {}</title>\n",
        days[0].0,
        days[days.len() - 1].0
    );
    // Gridlines and the y axis's labels.
    let mut v = 0;
    while v <= top {
        let _ = writeln!(
            s,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 8.0,
            y(v) + 4.0,
            thousands(v),
            y = y(v),
        );
        v += step;
    }
    // Bars, each with a tooltip.
    let slot = plot_w / days.len() as f64;
    let bar_w = (slot * 0.8).min(48.0);
    for (i, (day, launches, users)) in days.iter().enumerate() {
        if *launches == 0 {
            continue;
        }
        let x = LEFT + i as f64 * slot + (slot - bar_w) / 2.0;
        let _ = writeln!(
            s,
            "<rect class=\"bar\" x=\"{x:.2}\" y=\"{:.2}\" width=\"{bar_w:.2}\" height=\"{:.2}\">\
             <title>{day}: {} launches, {} users</title></rect>",
            y(*launches),
            base - y(*launches),
            thousands(*launches),
            thousands(*users),
        );
    }
    // The x axis, about ten day labels, and the axis titles.
    let _ = writeln!(
        s,
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{base:.1}\" y2=\"{base:.1}\"/>",
        W - RIGHT
    );
    let every = days.len().div_ceil(10);
    for (i, (day, _, _)) in days.iter().enumerate().step_by(every) {
        let x = LEFT + (i as f64 + 0.5) * slot;
        let _ = writeln!(
            s,
            "<line class=\"axis\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{base:.1}\" y2=\"{:.1}\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{day}</text>",
            base + 4.0,
            base + 18.0,
        );
    }
    let _ = write!(
        s,
        "<text class=\"title\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">day (UTC)</text>\n\
         <text class=\"title\" transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\">launches</text>\n\
         </svg>\n",
        LEFT + plot_w / 2.0,
        H - 10.0,
        TOP + plot_h / 2.0,
    );
    s
}

/// A stored time shown to the minute ("2026-01-05 08:00"), the full value in the markup.
fn time(stored: &str) -> String {
    let shown = match (stored.get(..10), stored.get(11..16)) {
        (Some(day), Some(minute)) => format!("{day} {minute}"),
        _ => stored.to_owned(),
    };
    format!(
        "<time datetime=\"{}\" title=\"{}\">{}</time>",
        esc(stored),
        esc(stored),
        esc(&shown)
    )
}

/// The apps table: name with its id beneath, environment, counts, times, production.
fn apps_table(apps: &[AppRow]) -> String {
    let mut s = String::from(
        "<div class=\"scroll\"><table>\n<thead><tr><th>App</th><th>Environment</th><th class=\"n\">Launches</th>\
         <th class=\"n\">Unique users</th><th>First launch</th><th>Last launch</th><th>Production</th></tr></thead>\n\
         <tbody>\n",
    );
    for a in apps {
        let app = match (&a.app_id, &a.app_name) {
            (None, _) => format!("<span class=\"none\">{}</span>", esc(NO_APP_ID)),
            (Some(id), Some(name)) => {
                format!(
                    "<span class=\"name\">{}</span><span class=\"id\">{}</span>",
                    esc(name),
                    esc(id)
                )
            }
            (Some(id), None) => format!(
                "<span class=\"none\">(no name recorded)</span><span class=\"id\">{}</span>",
                esc(id)
            ),
        };
        let env = a.environment_id.as_deref().map_or_else(
            || "<span class=\"none\">-</span>".to_owned(),
            |e| format!("<span class=\"id\">{}</span>", esc(e)),
        );
        let production = if a.production {
            "<span class=\"yes\">yes</span>"
        } else {
            "no"
        };
        let _ = writeln!(
            s,
            "<tr><td>{app}</td><td>{env}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"time\">{}</td><td class=\"time\">{}</td><td>{production}</td></tr>",
            thousands(a.launches),
            thousands(a.unique_users),
            time(&a.first_launch),
            time(&a.last_launch),
        );
    }
    s.push_str("</tbody>\n</table></div>\n");
    s
}

/// "Monthly use": one row per calendar month (UTC) of the range.
fn monthly_section(months: &[MonthRow]) -> String {
    let mut s = String::from("<h2>Monthly use</h2>\n");
    if months.is_empty() {
        s.push_str("<p class=\"none\">No launches in this range.</p>\n");
        return s;
    }
    s.push_str(
        "<div class=\"scroll\"><table>\n<thead><tr><th>Month (UTC)</th><th class=\"n\">Launches</th>\
         <th class=\"n\">Monthly active users</th><th class=\"n\">Apps launched</th>\
         <th class=\"n\">Production apps</th></tr></thead>\n<tbody>\n",
    );
    for m in months {
        let _ = writeln!(
            s,
            "<tr><td class=\"time\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&m.month),
            thousands(m.launches),
            thousands(m.unique_users),
            thousands(m.apps),
            thousands(m.production_apps),
        );
    }
    s.push_str(
        "</tbody>\n</table></div>\n<p class=\"note\">A month at the edge of the range counts only the \
         launches inside it.</p>\n",
    );
    s
}

/// "Environments": apps, launches, users and last launch per environment.
fn environments_section(environments: &[EnvironmentRow]) -> String {
    let mut s = String::from("<h2>Environments</h2>\n");
    if environments.is_empty() {
        s.push_str("<p class=\"none\">No launches in this range.</p>\n");
        return s;
    }
    s.push_str(
        "<div class=\"scroll\"><table>\n<thead><tr><th>Environment</th><th class=\"n\">Apps</th>\
         <th class=\"n\">Launches</th><th class=\"n\">Unique users</th><th>Last launch</th></tr></thead>\n\
         <tbody>\n",
    );
    for e in environments {
        let env = e.environment_id.as_deref().map_or_else(
            || format!("<span class=\"none\">{}</span>", esc(NO_ENVIRONMENT)),
            |id| format!("<span class=\"name\">{}</span>", esc(id)),
        );
        let _ = writeln!(
            s,
            "<tr><td>{env}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"time\">{}</td></tr>",
            thousands(e.apps),
            thousands(e.launches),
            thousands(e.unique_users),
            time(&e.last_launch),
        );
    }
    s.push_str("</tbody>\n</table></div>\n");
    s
}

/// "Inactive apps": the apps whose last stored launch is before the cutoff, with since when the
/// store holds launches.
fn inactive_section(days: u32, r: &InactiveReport) -> String {
    let mut s = String::from("<h2>Inactive apps</h2>\n");
    let since = match &r.data_since {
        Some(since) => format!(
            "The store holds launches since {}: an app first launched after that can only look active, \
             and one last launched before it is not in the store.",
            time(since)
        ),
        None => "The store holds no launches yet.".to_owned(),
    };
    let _ = writeln!(
        s,
        "<p class=\"meta\">Apps with no stored launch in the {days} days before the page was made (last launch \
         before {}), over the whole store whatever the range above. {since}</p>",
        time(&r.cutoff),
    );
    if r.apps.is_empty() {
        let _ = writeln!(
            s,
            "<p class=\"none\">No app has gone {days} days without a launch.</p>"
        );
        return s;
    }
    s.push_str(
        "<div class=\"scroll\"><table>\n<thead><tr><th>App</th><th>Environment</th><th>Last launch</th>\
         <th class=\"n\">Launches (whole store)</th></tr></thead>\n<tbody>\n",
    );
    for a in &r.apps {
        let app = match &a.app_name {
            Some(name) => format!(
                "<span class=\"name\">{}</span><span class=\"id\">{}</span>",
                esc(name),
                esc(&a.app_id)
            ),
            None => format!(
                "<span class=\"none\">(no name recorded)</span><span class=\"id\">{}</span>",
                esc(&a.app_id)
            ),
        };
        let env = a.environment_id.as_deref().map_or_else(
            || "<span class=\"none\">-</span>".to_owned(),
            |e| format!("<span class=\"id\">{}</span>", esc(e)),
        );
        let _ = writeln!(
            s,
            "<tr><td>{app}</td><td>{env}</td><td class=\"time\">{}</td><td class=\"n\">{}</td></tr>",
            time(&a.last_launch),
            thousands(a.launches),
        );
    }
    s.push_str("</tbody>\n</table></div>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert(1)</script> & "Co" 'x'"#),
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot; &#39;x&#39;"
        );
    }

    #[test]
    fn ticks_are_round_and_few() {
        for (max, step) in [
            (0, 1),
            (1, 1),
            (5, 1),
            (6, 2),
            (12, 5),
            (50, 10),
            (51, 20),
            (999, 200),
            (1234, 500),
        ] {
            assert_eq!(tick_step(max), step, "max {max}");
        }
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn the_chart_spans_the_range_with_empty_days() {
        let filter = ReportFilter {
            from: Some("2026-01-01T00:00:00Z".parse().unwrap()),
            to: Some("2026-01-05T00:00:00Z".parse().unwrap()),
            ..ReportFilter::default()
        };
        let daily = [DayRow {
            day: "2026-01-03".into(),
            launches: 7,
            unique_users: 2,
        }];
        let page = Page {
            filter: &filter,
            apps: &[],
            daily: &daily,
            monthly: &[],
            environments: &[],
            inactive: None,
            generated_at: Utc::now(),
        };
        let days = chart_days(&page).unwrap();
        assert_eq!(days.len(), 4);
        assert_eq!(days[2].1, 7);
        assert_eq!(days[3].0.to_string(), "2026-01-04");
        let svg = chart(&days);
        assert_eq!(svg.matches("<rect").count(), 1);
        assert!(svg.contains("2026-01-03: 7 launches, 2 users"));
    }
}
