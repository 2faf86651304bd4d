//! The pages, as maud templates. Everything is rendered on the server, so every page reads
//! without JavaScript; `app.js` adds live updates, filtering and the chart.
//!
//! Colours never carry meaning alone: each status has an icon and a word, and each bar an
//! accessible name that says in words what it draws.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, TimeDelta, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use upwatch_core::monitor::{DEFAULT_PACKETS, DEFAULT_PUSH_GRACE_SECONDS, PUSH_PATH};
use upwatch_core::observation::CheckType;
use upwatch_core::state::RegionStatus;
use upwatch_core::{Monitor, MonitorState, MonitorStatus};

use crate::assets;
use crate::data::{
    DashboardView, Day, MaintenanceItem, MaintenanceList, Point, PublicRow, Reach, RegionRow, Row,
    SiteView, StatusView, Uptime, Window, LATER_COUNTED, UPCOMING_DAYS,
};
use crate::live::{Tick, RECENT};

/// The heading of monitors without a group when other monitors have one.
pub const DEFAULT_GROUP: &str = "Other";
/// Days before a certificate's expiry from which the pages warn of it, whatever the monitor's
/// alert thresholds (a larger smallest threshold of the monitor's own widens the warning).
pub const CERT_WARN_DAYS: u32 = 14;
/// What pages show instead of a push monitor's URL.
pub const PUSH_TARGET: &str = "push monitor";
/// The status page's headline when nothing is down and some monitors are in maintenance.
pub const MAINTENANCE_HEADLINE: &str = "Maintenance in progress";
/// Monitors named for one maintenance window before the rest are only counted.
const NAMED: usize = 10;

/// Which page a layout wraps, for the navigation and the script's behaviour.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Dashboard,
    Site,
    Status,
}

impl Page {
    fn as_str(self) -> &'static str {
        match self {
            Page::Dashboard => "dashboard",
            Page::Site => "site",
            Page::Status => "status",
        }
    }
}

/// What every page's `head` starts with: encoding, viewport, colour schemes, title and the
/// stylesheet.
pub fn head_start(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        meta name="color-scheme" content="light dark";
        title { (title) }
        link rel="stylesheet" href=(assets::url("app.css"));
    }
}

/// The frame of every page. `since` is the live view's batch id at render time, from which
/// the page's event stream continues.
pub fn layout(
    title: &str,
    page: Page,
    since: u64,
    head: Markup,
    dashboard_nav: bool,
    body: Markup,
) -> Markup {
    let events = match page {
        Page::Status => "/status/events",
        _ => "/events",
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                (head_start(&format!("{title} · upwatch")))
                (head)
                script src=(assets::url("app.js")) defer {}
            }
            body data-page=(page.as_str()) data-events=(events) data-since=(since) {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    @if dashboard_nav {
                        nav aria-label="Main" {
                            a href="/" aria-current=[(page == Page::Dashboard).then_some("page")] { "Dashboard" }
                            a href="/status" { "Status page" }
                            a href="/api/docs" { "API" }
                        }
                    } @else {
                        span.brand { "upwatch" }
                    }
                    span #live-state .muted role="status" { "" }
                }
                main #main { (body) }
                div #announcer .sr-only aria-live="polite" aria-atomic="true" {}
            }
        }
    }
}

/// A small page with a heading and a sentence (not found, dashboard switched off).
pub fn message(title: &str, text: &str, dashboard_nav: bool) -> Markup {
    layout(
        title,
        Page::Status,
        0,
        html! {},
        dashboard_nav,
        html! {
            h1 { (title) }
            p { (text) }
            p { a href="/status" { "Go to the status page" } }
        },
    )
}

/// `/`: every monitor, grouped, after the maintenance under way and coming.
pub fn dashboard(view: &DashboardView, since: u64) -> Markup {
    let rows = &view.rows;
    let counts = count(rows.iter().map(|r| r.state.status));
    let groups = grouped(rows, |r| r.monitor.group.as_deref());
    let body = html! {
        h1 { "Monitors" }
        p #summary { (summary(&counts, rows.len())) }
        // Always there, so that the script can swap it when the list is read again.
        div #maintenance { (maintenance_section(&view.maintenance, "all monitors", Utc::now())) }
        @if rows.is_empty() {
            p { "No monitors yet. Add one through the API: "
                code { "POST /api/v1/sites" } " (see the README)." }
        } @else {
            div.filter {
                label for="filter" { "Filter monitors" }
                input #filter type="search" placeholder="Name, URL, type or group" autocomplete="off";
                span #filter-count .muted aria-live="polite" {}
            }
            div #monitors { @for (name, rows) in &groups {
                details.group open data-group=(name) {
                    summary { h2 { (name) " " span.muted { "(" (rows.len()) ")" } } }
                    table.monitors {
                        thead { tr {
                            th scope="col" { "Monitor" }
                            th scope="col" { "Status" }
                            th scope="col" .num { "Latency" }
                            th scope="col" .num { "Uptime 24 h" }
                            th scope="col" .num { "Uptime 30 d" }
                            th scope="col" { "Last " (RECENT) " checks" }
                        } }
                        tbody {
                            @for row in rows { (dashboard_row(row)) }
                        }
                    }
                }
            } }
        }
    };
    layout("Dashboard", Page::Dashboard, since, html! {}, true, body)
}

fn dashboard_row(row: &Row) -> Markup {
    let m = &row.monitor;
    // HTTP is the usual type: its rows carry no label, which keeps a long list short.
    let kind = (m.check_type != CheckType::Http).then(|| type_label(m.check_type));
    let expiry = Expiry::of(m, &row.state, Utc::now()).filter(|e| e.soon);
    html! {
        tr id=(m.id) data-status=(row.state.status.as_str()) {
            th scope="row" {
                a href={ "/sites/" (m.id) } { (m.name) }
                @if let Some(kind) = kind { " " span.kind { (kind) } }
                span.url { (target(m)) }
                @if let Some(expiry) = expiry {
                    span class=(expiry.class()) {
                        span.icon aria-hidden="true" { "⚠" } (expiry.summary())
                    }
                }
            }
            td.st { (status_badge(row.state.status)) }
            td.num.lat { (latency(&row.state)) }
            td.num { (percent(row.uptime.day)) }
            td.num { (percent(row.uptime.month)) }
            td { (recent_bar(&row.recent)) }
        }
    }
}

/// `/sites/{id}`.
pub fn site(view: &SiteView, since: u64, chart: bool) -> Markup {
    let m = &view.monitor;
    let head = html! {
        @if chart {
            link rel="stylesheet" href=(assets::url("uPlot.min.css"));
            script src=(assets::url("uPlot.iife.min.js")) defer {}
        }
    };
    let body = html! {
        p { a href="/" { "← All monitors" } }
        div #site data-id=(m.id) data-status=(view.state.status.as_str()) {
            h1 { (m.name) }
            p.url { (target(m)) }
            dl.facts {
                div { dt { "Type" } dd { (type_label(m.check_type)) } }
                div { dt { "Status" } dd.st { (status_badge(view.state.status)) } }
                div { dt { "Latency" } dd.lat { (latency(&view.state)) } }
                div { dt { "Last checked" } dd.checked { (time_or(view.state.last_checked, "never")) } }
                div { dt { "Uptime 24 h" } dd { (percent(view.uptime.day)) } }
                div { dt { "Uptime 30 d" } dd { (percent(view.uptime.month)) } }
            }
            @if let Some(expiry) = Expiry::of(m, &view.state, Utc::now()) {
                p class=(expiry.class()) {
                    @if expiry.soon { span.icon aria-hidden="true" { "⚠" } }
                    (expiry.sentence())
                }
            }
            @if let Some(error) = &view.state.error {
                p.error { "Last error: " (error.kind.as_str()) ": " (error.message) }
            }
        }
        @if !view.regions.is_empty() { (regions_section(&view.regions)) }
        (maintenance_section(&view.maintenance, "this monitor", Utc::now()))
        @if let Some(path) = push_path(m) { (push_section(m, &path)) }
        section aria-labelledby="days-h" {
            h2 #days-h { "Uptime, last " (view.days.len()) " days" }
            (daily_bar(&view.days))
            (day_legend(view.days.iter().any(|d| d.maintenance)))
        }
        section aria-labelledby="rt-h" {
            h2 #rt-h { "Response time" }
            nav.windows aria-label="Chart window" {
                @for w in Window::ALL {
                    a href={ "?window=" (w.as_str()) } aria-current=[(w == view.window).then_some("page")] { (w.as_str()) }
                }
            }
            (chart_block(&view.points, view.bucket, &view.region_points))
            @if !view.region_points.is_empty() {
                @if let Some(kept) = view.raw_kept.filter(|kept| *kept < view.window.span()) {
                    p.muted {
                        "The lines of each region go back " (duration(kept))
                        " at most: they are read from the results of each check, which are kept that long."
                    }
                }
            }
        }
        section aria-labelledby="inc-h" {
            h2 #inc-h { "Incidents" }
            @if view.incidents.is_empty() {
                p { "No incidents recorded." }
            } @else {
                table.incidents {
                    thead { tr {
                        th scope="col" { "Started" }
                        th scope="col" { "Ended" }
                        th scope="col" { "Duration" }
                        th scope="col" { "First error" }
                    } }
                    tbody {
                        @for i in &view.incidents {
                            tr {
                                td { (time(i.started_at)) }
                                td { @if let Some(end) = i.ended_at { (time(end)) } @else { strong { "ongoing" } } }
                                td { (duration(i.duration(Utc::now()))) }
                                td { (i.first_error.as_ref().map(|e| format!("{}: {}", e.kind.as_str(), e.message)).unwrap_or_else(|| "—".into())) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="set-h" {
            h2 #set-h { "Settings" }
            (settings(m))
        }
    };
    layout(&m.name, Page::Site, since, head, true, body)
}

/// What each region that checks a monitor sees of it: a row per region, its status as an
/// icon and a word.
fn regions_section(rows: &[RegionRow]) -> Markup {
    html! {
        section aria-labelledby="reg-h" {
            h2 #reg-h { "Regions" }
            table.regions {
                thead { tr {
                    th scope="col" { "Region" }
                    th scope="col" { "Status" }
                    th scope="col" .num { "Latency" }
                    th scope="col" { "Last checked" }
                    th scope="col" { "Error" }
                } }
                tbody {
                    @for r in rows {
                        tr data-region=(r.region) data-status=(r.status.as_str()) {
                            th scope="row" { (r.region) }
                            td { (region_badge(r.status)) }
                            td.num { (ms(r.response_time_ms)) }
                            td { (time_or(r.last_checked, "never")) }
                            td {
                                @match &r.error {
                                    Some(e) => span.error { (e.kind.as_str()) ": " (e.message) },
                                    None => "—",
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The icon and word of a region's status.
pub fn region_badge(status: RegionStatus) -> Markup {
    let (icon, word) = match status {
        RegionStatus::Up => ("✓", "Up"),
        RegionStatus::Down => ("✕", "Down"),
        RegionStatus::Pending => ("…", "Pending"),
        RegionStatus::Inconclusive => ("~", "Inconclusive"),
        RegionStatus::Unknown => ("?", "Unknown"),
    };
    html! {
        span class={ "status " (status.as_str()) } {
            span.icon aria-hidden="true" { (icon) } (word)
        }
    }
}

/// The dash patterns of the regions' lines, in order (the legend names each): the lines
/// differ in more than colour.
pub const REGION_LINES: [&str; 4] = ["solid", "dashed", "dotted", "dash-dot"];

fn chart_block(points: &[Point], bucket: TimeDelta, regions: &[(String, Vec<Point>)]) -> Markup {
    let with_data: Vec<&Point> = points.iter().filter(|p| p.checks > 0).collect();
    let mut json = String::from("{\"t\":[");
    let mut p50 = String::new();
    let mut p95 = String::new();
    let mut down = String::new();
    for (i, p) in points.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(json, "{sep}{}", p.start.timestamp());
        let num = |v: Option<u32>| v.map_or("null".to_string(), |v| v.to_string());
        let _ = write!(p50, "{sep}{}", num(p.p50));
        let _ = write!(p95, "{sep}{}", num(p.p95));
        let _ = write!(down, "{sep}{}", p.down);
    }
    let _ = write!(
        json,
        "],\"p50\":[{p50}],\"p95\":[{p95}],\"down\":[{down}],\"bucket\":{}",
        bucket.num_seconds()
    );
    if !regions.is_empty() {
        json.push_str(",\"regions\":[");
        for (i, (name, points)) in regions.iter().enumerate() {
            let values: Vec<String> = points
                .iter()
                .map(|p| p.p50.map_or("null".to_string(), |v| v.to_string()))
                .collect();
            let name = serde_json::to_string(name).unwrap_or_default();
            let _ = write!(
                json,
                "{}{{\"name\":{name},\"p50\":[{}]}}",
                if i == 0 { "" } else { "," },
                values.join(",")
            );
        }
        json.push(']');
    }
    json.push('}');
    let downs = points.iter().filter(|p| p.down > 0).count();
    html! {
        @if with_data.is_empty() {
            p { "No checks in this window yet." }
        } @else {
            figure.chart {
                @if regions.is_empty() {
                    div #chart role="img" aria-label={
                        "Response time chart: p50 and p95 per " (duration(bucket)) " bucket, "
                        (downs) " buckets with failed checks. The table below has the same figures."
                    } {}
                    figcaption.legend {
                        span.key.p50 { "p50" } " " span.key.p95 { "p95" } " "
                        span.key.down { "▼ failed checks" }
                    }
                } @else {
                    div #chart role="img" aria-label={
                        "Response time chart: p50 of each of " (regions.len()) " regions per "
                        (duration(bucket)) " bucket, " (downs)
                        " buckets with failed checks. The tables below have the same figures."
                    } {}
                    figcaption.legend {
                        @for (i, (name, _)) in regions.iter().enumerate() {
                            @let line = REGION_LINES[i % REGION_LINES.len()];
                            span class={ "key line r" (i % REGION_LINES.len()) } {
                                (name) " p50 (" (line) " line)"
                            } " "
                        }
                        span.key.down { "▼ failed checks" }
                    }
                }
            }
            script #chart-data type="application/json" { (PreEscaped(json)) }
            @if !regions.is_empty() {
                details {
                    summary { "Response times per region as a table" }
                    table.points.per-region {
                        thead { tr {
                            th scope="col" { "From" }
                            @for (name, _) in regions {
                                th scope="col" .num { (name) " p50" }
                                th scope="col" .num { (name) " checks" }
                            }
                        } }
                        tbody {
                            @for (i, p) in points.iter().enumerate() {
                                @if regions.iter().any(|(_, r)| r.get(i).is_some_and(|q| q.checks > 0)) {
                                    tr {
                                        td { (time(p.start)) }
                                        @for (_, r) in regions {
                                            @let q = r.get(i);
                                            td.num { (ms(q.and_then(|q| q.p50))) }
                                            td.num { (q.map_or(0, |q| q.checks)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            details {
                summary { "Response times as a table" }
                table.points {
                    thead { tr {
                        th scope="col" { "From" }
                        th scope="col" .num { "p50" }
                        th scope="col" .num { "p95" }
                        th scope="col" .num { "Checks" }
                        th scope="col" .num { "Failed" }
                    } }
                    tbody {
                        @for p in &with_data {
                            tr {
                                td { (time(p.start)) }
                                td.num { (ms(p.p50)) }
                                td.num { (ms(p.p95)) }
                                td.num { (p.checks) }
                                td.num { (p.down) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn settings(m: &Monitor) -> Markup {
    let header_names: Vec<&str> = m.headers.keys().map(String::as_str).collect();
    // Only the settings of the monitor's type: a TCP check has no method or keyword.
    let http = m.check_type == CheckType::Http;
    let push = is_push(m);
    let tls = m.check_type.speaks_tls(&m.url);
    html! {
        dl.settings {
            div { dt { @if push { "Target" } @else { "URL" } } dd { (target(m)) } }
            @if http {
                div { dt { "Method" } dd { (m.method) } }
            }
            @if let Some(query) = &m.dns {
                div { dt { "Query" } dd.dns-query { (query.query_type.as_str()) " " (query.query_name) } }
            }
            @if m.check_type == CheckType::Icmp {
                div { dt { "Packets per check" } dd { (m.packets.unwrap_or(DEFAULT_PACKETS)) } }
            }
            div { dt { "Interval" } dd { (m.interval_seconds) " s" } }
            @if push {
                div { dt { "Grace" } dd { (push_grace(m)) " s after the interval" } }
            } @else {
                div { dt { "Timeout" } dd { (m.timeout_seconds) " s" } }
            }
            @if http {
                div { dt { "Expected status" } dd { (m.expected_status_codes.to_string()) } }
                div { dt { "Keyword" } dd { (m.keyword.as_deref().unwrap_or("none")) } }
                div { dt { "Follows redirects" } dd { (yes_no(m.follow_redirects)) } }
            }
            @if let Some(upgrade) = m.starttls {
                div { dt { "Upgrades with" } dd { "STARTTLS (" (upgrade.as_str()) ")" } }
            }
            @if tls {
                div { dt { "Verifies the certificate" } dd {
                    @if m.tls_skip_verify { "no (any certificate is accepted)" } @else { "yes" }
                } }
                div { dt { "Certificate alerts" } dd {
                    @match &m.cert_expiry_alert_days {
                        Some(days) => { (alert_days(days)) },
                        None => "the server's default",
                    }
                } }
            }
            @if !push {
                div { dt { "Regions" } dd {
                    @if m.regions.is_empty() { "all" } @else { (m.regions.join(", ")) }
                } }
                div { dt { "Down when" } dd {
                    @match m.quorum {
                        Some(q) => { (q) " of its regions see it down" },
                        None => "a majority of its regions see it down",
                    }
                } }
            }
            div { dt { "Down after" } dd { (m.failure_threshold) " failed checks" } }
            div { dt { "Up again after" } dd { (m.success_threshold) " good checks" } }
            div { dt { "Enabled" } dd { (yes_no(m.enabled)) } }
            div { dt { "On the status page" } dd { (yes_no(m.public)) } }
            div { dt { "Group" } dd { (m.group.as_deref().unwrap_or("none")) } }
            @if http {
                div { dt { "Headers" } dd {
                    @if header_names.is_empty() { "none" } @else { (header_names.join(", ")) " (values hidden)" }
                } }
                div { dt { "Body" } dd {
                    @match &m.body { Some(b) => { (b.len()) " bytes" }, None => "none" }
                } }
            }
        }
        @if !m.conditions.is_empty() {
            h3 { "Conditions" }
            p.muted { "A check is up only when every one of them holds." }
            ul.conditions {
                @for condition in &m.conditions { li { code { (condition) } } }
            }
        }
    }
}

/// Where a push monitor's job reports in (a path on this server), with how to call it. The
/// path holds the monitor's token, so only the dashboard shows it, never the status page.
/// It is no link: following it would record a push.
fn push_section(m: &Monitor, path: &str) -> Markup {
    html! {
        section aria-labelledby="push-h" {
            h2 #push-h { "Push URL" }
            // The script puts the page's origin in front of the path; without it, the path
            // reads as it is.
            p { code.push-url { span data-origin {} (path) } }
            p {
                "Have the job call it each time it runs: "
                code { "curl -fsS " span data-origin {} (path) }
                "; add " code { "?status=down&msg=..." } " to report a failure."
            }
            p.muted {
                "Down when no push arrives within the interval (" (m.interval_seconds) " s) and a grace of "
                (push_grace(m)) " s. Anyone with this URL can report for the monitor: keep it secret."
            }
        }
    }
}

/// `/status`: monitors marked public, without URLs or settings.
pub fn status_page(view: &StatusView, since: u64, dashboard_nav: bool) -> Markup {
    let counts = count(view.rows.iter().map(|r| r.state.status));
    let groups = grouped(&view.rows, |r| r.group.as_deref());
    let (open, past): (Vec<_>, Vec<_>) = view
        .incidents
        .iter()
        .partition(|(i, _)| i.ended_at.is_none());
    let headline = headline(&view.rows);
    let state = if counts.down > 0 {
        "down"
    } else if headline == MAINTENANCE_HEADLINE {
        "maintenance"
    } else {
        "ok"
    };
    let body = html! {
        h1 { "Service status" }
        p #headline .headline data-state=(state) { (headline) }
        (maintenance_section(&view.maintenance, "all services", Utc::now()))
        @if view.rows.is_empty() {
            p { "No monitors are on this page yet. Mark a monitor public through the API "
                "(" code { "PATCH /api/v1/sites/{id}" } " with " code { "{\"public\": true}" } ")." }
        }
        @if !open.is_empty() {
            section aria-labelledby="open-h" {
                h2 #open-h { "Open incidents" }
                ul.incidents { @for (i, name) in &open { li {
                    strong { (name) } " is down since " (time(i.started_at))
                    " (" (duration(i.duration(Utc::now()))) " so far)."
                } } }
            }
        }
        @for (name, rows) in &groups {
            section.group aria-labelledby={ "g-" (slug(name)) } {
                h2 id={ "g-" (slug(name)) } { (name) }
                ul.public {
                    @for row in rows { (public_row(row)) }
                }
            }
        }
        @if !view.rows.is_empty() {
            (day_legend(view.rows.iter().any(|r| r.days.iter().any(|d| d.maintenance))))
        }
        @if !past.is_empty() {
            section aria-labelledby="past-h" {
                h2 #past-h { "Past incidents (7 days)" }
                ul.incidents { @for (i, name) in &past { li {
                    strong { (name) } " was down from " (time(i.started_at))
                    @if let Some(end) = i.ended_at { " to " (time(end)) }
                    " (" (duration(i.duration(Utc::now()))) ")."
                } } }
            }
        }
        p.muted.foot { "Updated " (time(Utc::now())) ". This page updates itself; reload it if your browser runs no scripts." }
    };
    layout("Status", Page::Status, since, html! {}, dashboard_nav, body)
}

fn public_row(row: &PublicRow) -> Markup {
    html! {
        li id=(row.id) data-status=(row.state.status.as_str()) {
            div.line {
                span.name { (row.name) }
                span.st { (status_badge(row.state.status)) }
            }
            (daily_bar(&row.days))
        }
    }
}

/// "All systems operational", or what is down, or else what upwatch has not checked lately,
/// or else that maintenance is in progress.
pub fn headline(rows: &[PublicRow]) -> String {
    let named = |status: MonitorStatus| -> Vec<&str> {
        rows.iter()
            .filter(|r| r.state.status == status)
            .map(|r| r.name.as_str())
            .collect()
    };
    let down = named(MonitorStatus::Down);
    let stale = named(MonitorStatus::Stale);
    match down.len() {
        0 if rows.is_empty() => "Nothing to report".to_string(),
        0 if stale.len() == 1 => format!("{} has not been checked lately", stale[0]),
        0 if stale.len() > 1 => format!(
            "{} systems have not been checked lately: {}",
            stale.len(),
            stale.join(", ")
        ),
        0 if rows
            .iter()
            .any(|r| r.state.status == MonitorStatus::Maintenance) =>
        {
            MAINTENANCE_HEADLINE.to_string()
        }
        0 => "All systems operational".to_string(),
        1 => format!("{} is down", down[0]),
        n if n == rows.len() => "All systems are down".to_string(),
        _ => format!("{} systems are down: {}", down.len(), down.join(", ")),
    }
}

/// The short label of a check type, as the pages show it (`TCP`, `PUSH`).
pub fn type_label(check_type: CheckType) -> &'static str {
    match check_type {
        CheckType::Http => "HTTP",
        CheckType::Tcp => "TCP",
        CheckType::Tls => "TLS",
        CheckType::Icmp => "ICMP",
        CheckType::Dns => "DNS",
        CheckType::Push => "PUSH",
    }
}

/// Whether `m` is a push monitor, by its type or by its URL's scheme (either alone is enough,
/// so that a token is never shown because one of them disagrees).
fn is_push(m: &Monitor) -> bool {
    m.check_type == CheckType::Push || CheckType::of_url(&m.url) == CheckType::Push
}

/// What a monitor checks, as every page shows it: its URL, except for a push monitor, whose
/// `push://` URL holds the token that lets anyone report for it and is never rendered.
pub fn target(m: &Monitor) -> &str {
    if is_push(m) {
        PUSH_TARGET
    } else {
        &m.url
    }
}

/// The path a push monitor's job calls: the monitor's own, or one made from its token.
fn push_path(m: &Monitor) -> Option<String> {
    if !is_push(m) {
        return None;
    }
    m.push_url.clone().or_else(|| {
        m.url
            .split_once("://")
            .map(|(_, token)| format!("{PUSH_PATH}/{token}"))
    })
}

fn push_grace(m: &Monitor) -> u32 {
    m.push_grace_seconds.unwrap_or(DEFAULT_PUSH_GRACE_SECONDS)
}

/// A monitor's alert thresholds, largest first: `30, 7 and 1 days before expiry`.
fn alert_days(days: &[u32]) -> String {
    let mut days = days.to_vec();
    days.sort_unstable_by(|a, b| b.cmp(a));
    days.dedup();
    let text: Vec<String> = days.iter().map(u32::to_string).collect();
    match text.split_last() {
        None => "none".to_string(),
        Some((last, [])) => format!(
            "{last} {} before expiry",
            if *last == "1" { "day" } else { "days" }
        ),
        Some((last, rest)) => format!("{} and {last} days before expiry", rest.join(", ")),
    }
}

/// The certificate of a TLS-speaking monitor's newest check, and how close its expiry is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expiry {
    pub expires_at: DateTime<Utc>,
    /// Time left; negative once the certificate expired.
    pub left: TimeDelta,
    /// Within [`CERT_WARN_DAYS`], or the monitor's smallest alert threshold when larger, of
    /// its expiry, or past it: the pages highlight it.
    pub soon: bool,
}

impl Expiry {
    /// The certificate `state` follows, when `m` speaks TLS (a state may keep a certificate
    /// from before its URL changed to one that does not).
    pub fn of(m: &Monitor, state: &MonitorState, now: DateTime<Utc>) -> Option<Expiry> {
        if !m.check_type.speaks_tls(&m.url) {
            return None;
        }
        let cert = state.certificate.as_ref()?;
        let warn = m
            .cert_expiry_alert_days
            .as_ref()
            .and_then(|days| days.iter().copied().min())
            .map_or(CERT_WARN_DAYS, |smallest| smallest.max(CERT_WARN_DAYS));
        let left = cert.expires_at - now;
        Some(Expiry {
            expires_at: cert.expires_at,
            left,
            soon: left <= TimeDelta::days(i64::from(warn)),
        })
    }

    pub fn expired(&self) -> bool {
        self.left <= TimeDelta::zero()
    }

    fn class(&self) -> &'static str {
        match (self.expired(), self.soon) {
            (true, _) => "cert expired",
            (false, true) => "cert soon",
            (false, false) => "cert",
        }
    }

    /// Whole days, as the expiry alerts count them: `5 days`, `less than a day`.
    fn days(&self) -> String {
        match self.left.num_days().abs() {
            0 => "less than a day".to_string(),
            n => plural(n as usize, "day"),
        }
    }

    /// For a dashboard row: `Certificate expires in 5 days`.
    fn summary(&self) -> String {
        if self.expired() {
            format!("Certificate expired {} ago", self.days())
        } else {
            format!("Certificate expires in {}", self.days())
        }
    }

    /// For the monitor's page: `Certificate expires 2027-02-01 (in 66 days)`.
    fn sentence(&self) -> Markup {
        let date = html! {
            time datetime=(self.expires_at.to_rfc3339()) { (self.expires_at.format("%Y-%m-%d")) }
        };
        html! {
            @if self.expired() {
                "Certificate expired " (self.days()) " ago, on " (date) "."
            } @else {
                "Certificate expires " (date) " (in " (self.days()) ")."
            }
        }
    }
}

/// The maintenance under way and starting within [`UPCOMING_DAYS`] days; nothing when there is
/// none. `everything` names what a window covering every monitor the page shows affects.
pub fn maintenance_section(list: &MaintenanceList, everything: &str, now: DateTime<Utc>) -> Markup {
    html! {
        @if !list.is_empty() {
            section.maintenance aria-labelledby="maint-h" {
                h2 #maint-h { "Maintenance" }
                @if !list.ongoing.is_empty() {
                    h3 { "In progress" }
                    ul.windows { @for item in &list.ongoing {
                        li.window.ongoing data-id=(item.id) {
                            strong.title { span.icon aria-hidden="true" { "⚒" } (item.title) }
                            " until " (time(item.occurrence.end))
                            " (ends in " (duration(item.occurrence.end - now)) ")"
                            (window_details(item, everything))
                        }
                    } }
                }
                @if !list.upcoming.is_empty() {
                    h3 { "Upcoming (next " (UPCOMING_DAYS) " days)" }
                    ul.windows { @for item in &list.upcoming {
                        li.window.upcoming data-id=(item.id) {
                            strong.title { (item.title) }
                            " " (time_span(item.occurrence.start, item.occurrence.end))
                            " (in " (duration(item.occurrence.start - now)) ")"
                            @if item.later >= LATER_COUNTED {
                                ", then " (LATER_COUNTED) " or more times"
                            } @else if item.later > 0 {
                                ", then " (plural(item.later, "more time"))
                            }
                            (window_details(item, everything))
                        }
                    } }
                }
            }
        }
    }
}

/// What a listed window affects, and its description.
fn window_details(item: &MaintenanceItem, everything: &str) -> Markup {
    html! {
        @match &item.reach {
            Reach::Everything => { span.reach { "Affects " (everything) "." } },
            Reach::Names(names) if names.is_empty() => {
                span.reach { "Affects no monitor at present." }
            },
            Reach::Names(names) => {
                span.reach {
                    "Affects " (names.iter().take(NAMED).cloned().collect::<Vec<_>>().join(", "))
                    @if names.len() > NAMED { " and " (names.len() - NAMED) " more" }
                    "."
                }
            },
            Reach::Unstated => {},
        }
        @if let Some(description) = &item.description {
            p.description { (description) }
        }
    }
}

/// `2026-05-03 02:00–04:00 UTC`, with the end's date when it is another day.
fn time_span(start: DateTime<Utc>, end: DateTime<Utc>) -> Markup {
    let end_format = if start.date_naive() == end.date_naive() {
        "%H:%M"
    } else {
        "%Y-%m-%d %H:%M"
    };
    html! {
        time datetime=(start.to_rfc3339()) { (start.format("%Y-%m-%d %H:%M")) }
        "–"
        time datetime=(end.to_rfc3339()) { (end.format(end_format)) }
        " UTC"
    }
}

/// The icon and word of a status.
pub fn status_badge(status: MonitorStatus) -> Markup {
    let (icon, word) = match status {
        MonitorStatus::Up => ("✓", "Up"),
        MonitorStatus::Down => ("✕", "Down"),
        MonitorStatus::Pending => ("…", "Pending"),
        MonitorStatus::Paused => ("‖", "Paused"),
        MonitorStatus::Stale => ("?", "Stale"),
        MonitorStatus::Maintenance => ("⚒", "Maintenance"),
    };
    html! {
        span class={ "status " (status.as_str()) } {
            span.icon aria-hidden="true" { (icon) } (word)
        }
    }
}

/// The bar of recent checks: one slot per check, oldest left, grey where there was none.
pub fn recent_bar(ticks: &[Tick]) -> Markup {
    let empty = RECENT.saturating_sub(ticks.len());
    let slots: Vec<char> = std::iter::repeat_n('n', empty)
        .chain(ticks.iter().map(|t| if t.up { 'u' } else { 'd' }))
        .collect();
    let up = ticks.iter().filter(|t| t.up).count();
    let down = ticks.len() - up;
    let label = if ticks.is_empty() {
        "No checks yet".to_string()
    } else {
        format!(
            "Last {} checks: {up} up, {down} down{}",
            ticks.len(),
            if ticks.last().is_some_and(|t| !t.up) {
                "; the newest failed"
            } else {
                ""
            }
        )
    };
    bar(&slots, &label, "recent")
}

/// The daily bar: one slot per day, shaded by its share of failed checks, grey without data,
/// with a mark on top of the days a maintenance window occurred on.
pub fn daily_bar(days: &[Day]) -> Markup {
    let slots: Vec<char> = days.iter().map(|d| day_class(d.uptime())).collect();
    let marks: Vec<bool> = days.iter().map(|d| d.maintenance).collect();
    let marked = marks.iter().filter(|&&m| m).count();
    let (mut up, mut down) = (0u64, 0u64);
    for d in days {
        up += u64::from(d.up);
        down += u64::from(d.down);
    }
    let with_down = slots.iter().filter(|&&c| c == 'w' || c == 'd').count();
    let no_data = slots.iter().filter(|&&c| c == 'n').count();
    let mut label = if up + down == 0 {
        format!("{} days: no checks yet", days.len())
    } else {
        format!(
            "{} days: {} uptime; {} with downtime, {} without data",
            days.len(),
            percent_text(up as f64 / (up + down) as f64),
            plural(with_down, "day"),
            no_data
        )
    };
    if marked > 0 {
        let _ = write!(label, "; {} with maintenance", plural(marked, "day"));
    }
    marked_bar(&slots, &marks, &label, "days")
}

/// `u` all up, `w` under 1% failed, `d` more, `n` no checks.
fn day_class(uptime: Option<f64>) -> char {
    match uptime {
        None => 'n',
        Some(u) if u >= 1.0 => 'u',
        Some(u) if u >= 0.99 => 'w',
        Some(_) => 'd',
    }
}

fn day_legend(maintenance: bool) -> Markup {
    html! {
        p.legend.muted {
            span.key.u { "no downtime" } " "
            span.key.w { "under 1% failed checks" } " "
            span.key.d { "1% or more failed" } " "
            span.key.n { "no data" }
            @if maintenance { " " span.key.m { "maintenance" } }
        }
    }
}

/// An SVG strip of slots of 4 units each; one path per class, one subpath per run of equal
/// slots, drawn as a dashed stroke (3 on, 1 off) so that a run of any length costs a few bytes.
/// Every run is a whole number of slots long, so the dashes line up whether the dash pattern
/// restarts at each subpath or not.
fn bar(slots: &[char], label: &str, kind: &str) -> Markup {
    marked_bar(slots, &[], label, kind)
}

/// [`bar`], with a band along the top of each slot whose mark is set (class `m`, titled
/// "maintenance"), drawn over the slots in the same way.
fn marked_bar(slots: &[char], marks: &[bool], label: &str, kind: &str) -> Markup {
    let width = slots.len().max(1) * 4;
    let mut marked = String::new();
    let mut i = 0;
    while i < marks.len() {
        if !marks[i] {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < marks.len() && marks[j] {
            j += 1;
        }
        let _ = write!(marked, "M{} 2h{}", i * 4, (j - i) * 4);
        i = j;
    }
    let mut paths: BTreeMap<char, String> = BTreeMap::new();
    let mut i = 0;
    while i < slots.len() {
        let class = slots[i];
        let mut j = i;
        while j < slots.len() && slots[j] == class {
            j += 1;
        }
        let d = paths.entry(class).or_default();
        let _ = write!(d, "M{} 8h{}", i * 4, (j - i) * 4);
        i = j;
    }
    html! {
        svg class={ "bar " (kind) } viewBox={ "0 0 " (width) " 16" } preserveAspectRatio="none"
            role="img" aria-label=(label) {
            @for (class, d) in &paths {
                path class=(class) d=(d) {}
            }
            @if !marked.is_empty() {
                path class="m" d=(marked) { title { "maintenance" } }
            }
        }
    }
}

fn grouped<T>(rows: &[T], group_of: impl Fn(&T) -> Option<&str>) -> Vec<(String, Vec<&T>)> {
    let mut named: BTreeMap<String, Vec<&T>> = BTreeMap::new();
    let mut other = Vec::new();
    for row in rows {
        match group_of(row) {
            Some(g) => named.entry(g.to_string()).or_default().push(row),
            None => other.push(row),
        }
    }
    let mut out: Vec<(String, Vec<&T>)> = named.into_iter().collect();
    if !other.is_empty() {
        let name = if out.is_empty() {
            "All monitors"
        } else {
            DEFAULT_GROUP
        };
        out.push((name.to_string(), other));
    }
    out
}

#[derive(Default)]
struct Counts {
    up: usize,
    down: usize,
    pending: usize,
    paused: usize,
    stale: usize,
    maintenance: usize,
}

fn count(statuses: impl Iterator<Item = MonitorStatus>) -> Counts {
    let mut c = Counts::default();
    for s in statuses {
        match s {
            MonitorStatus::Up => c.up += 1,
            MonitorStatus::Down => c.down += 1,
            MonitorStatus::Pending => c.pending += 1,
            MonitorStatus::Paused => c.paused += 1,
            MonitorStatus::Stale => c.stale += 1,
            MonitorStatus::Maintenance => c.maintenance += 1,
        }
    }
    c
}

fn summary(c: &Counts, total: usize) -> String {
    // Stale monitors are named only when there are some, so the usual summary stays short.
    let stale = if c.stale > 0 {
        format!(", {} stale (not checked lately)", c.stale)
    } else {
        String::new()
    };
    let maintenance = if c.maintenance > 0 {
        format!(", {} in maintenance", c.maintenance)
    } else {
        String::new()
    };
    format!(
        "{}: {} up, {} down, {} pending, {} paused{stale}{maintenance}.",
        plural(total, "monitor"),
        c.up,
        c.down,
        c.pending,
        c.paused
    )
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn latency(state: &MonitorState) -> String {
    match (state.status, state.response_time_ms) {
        (MonitorStatus::Paused | MonitorStatus::Pending, _) | (_, None) => "—".to_string(),
        (_, Some(ms)) => format!("{ms} ms"),
    }
}

fn ms(v: Option<u32>) -> String {
    v.map_or_else(|| "—".to_string(), |v| format!("{v} ms"))
}

/// An uptime in percent as the service layer gives it (already rounded down to hundredths,
/// so that 100 means that no check failed).
fn percent(value: Option<f64>) -> String {
    value.map_or_else(
        || "—".to_string(),
        |p| {
            if p >= 100.0 {
                "100%".to_string()
            } else {
                format!("{p:.2}%")
            }
        },
    )
}

/// A percentage that never rounds a failure away: 99.996% shows as 99.99%, not 100%.
fn percent_text(ratio: f64) -> String {
    let hundredths = (ratio * 10_000.0).floor() / 100.0;
    if hundredths >= 100.0 {
        "100%".to_string()
    } else {
        format!("{hundredths:.2}%")
    }
}

fn yes_no(v: bool) -> &'static str {
    if v {
        "yes"
    } else {
        "no"
    }
}

fn time(at: DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M UTC")) } }
}

fn time_or(at: Option<DateTime<Utc>>, none: &str) -> Markup {
    match at {
        Some(at) => time(at),
        None => html! { (none) },
    }
}

/// A length of time for people: `2 h 5 min`, `45 s`.
pub fn duration(d: TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, minutes, seconds) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds} s"),
        (0, 0, _) => format!("{minutes} min {seconds} s"),
        (0, _, _) => format!("{hours} h {minutes} min"),
        _ => format!("{days} d {hours} h"),
    }
}

fn slug(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    // Distinct names may share a slug; the length keeps them apart often enough, and the
    // name's bytes always do.
    let _ = write!(
        out,
        "-{:x}",
        name.bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
    );
    out
}

impl Uptime {
    /// Both figures as text, for tests and logs.
    pub fn describe(&self) -> String {
        format!("{} / {}", percent(self.day), percent(self.month))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_never_round_failures_away() {
        assert_eq!(percent_text(1.0), "100%");
        assert_eq!(percent_text(0.99996), "99.99%");
        assert_eq!(percent_text(0.5), "50.00%");
        assert_eq!(percent(None), "—");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(TimeDelta::seconds(45)), "45 s");
        assert_eq!(duration(TimeDelta::seconds(125)), "2 min 5 s");
        assert_eq!(duration(TimeDelta::seconds(7_500)), "2 h 5 min");
        assert_eq!(duration(TimeDelta::seconds(90_000)), "1 d 1 h");
    }

    #[test]
    fn bars_draw_runs_of_whole_slots() {
        let markup = bar(&['n', 'n', 'u', 'u', 'u', 'd', 'u'], "x", "recent").into_string();
        assert!(
            markup.contains(r#"<path class="n" d="M0 8h8">"#),
            "{markup}"
        );
        assert!(
            markup.contains(r#"<path class="u" d="M8 8h12M24 8h4">"#),
            "{markup}"
        );
        assert!(
            markup.contains(r#"<path class="d" d="M20 8h4">"#),
            "{markup}"
        );
        assert!(markup.contains(r#"aria-label="x""#));
    }

    fn monitor(input: upwatch_core::MonitorInput) -> Monitor {
        Monitor::create(input, Utc::now()).unwrap()
    }

    fn with_certificate(m: &Monitor, expires_at: DateTime<Utc>) -> MonitorState {
        let mut state = MonitorState::new(m.id);
        state.certificate = Some(upwatch_core::state::CertificateWatch {
            fingerprint: "00".repeat(32),
            expires_at,
            alerted_days: None,
        });
        state
    }

    #[test]
    fn a_push_monitors_url_is_never_its_target() {
        let push = monitor(upwatch_core::MonitorInput {
            check_type: Some(CheckType::Push),
            ..Default::default()
        });
        assert_eq!(target(&push), PUSH_TARGET);
        let path = push_path(&push).unwrap();
        assert!(path.starts_with("/api/v1/push/") && push.url.ends_with(&path[13..]));
        // Even when the type says otherwise, the scheme alone hides the URL.
        let mut odd = push.clone();
        odd.check_type = CheckType::Http;
        odd.url = odd.url.replacen("push", "PUSH", 1);
        assert_eq!(target(&odd), PUSH_TARGET);
        let tcp = monitor(upwatch_core::MonitorInput::for_url(
            "tcp://db.example.test:5432",
        ));
        assert_eq!(target(&tcp), "tcp://db.example.test:5432");
        assert_eq!(push_path(&tcp), None);
    }

    #[test]
    fn certificate_expiry_reads_in_whole_days() {
        let now = Utc::now();
        let m = monitor(upwatch_core::MonitorInput::for_url("https://example.test/"));
        let at = |left: TimeDelta| Expiry::of(&m, &with_certificate(&m, now + left), now).unwrap();

        let far = at(TimeDelta::days(66) + TimeDelta::hours(3));
        assert!(!far.soon && !far.expired());
        assert_eq!(far.summary(), "Certificate expires in 66 days");
        let date = far.expires_at.format("%Y-%m-%d").to_string();
        assert!(far
            .sentence()
            .into_string()
            .ends_with(&format!(">{date}</time> (in 66 days).")));
        assert_eq!(far.class(), "cert");

        let soon = at(TimeDelta::days(14));
        assert!(soon.soon && soon.class() == "cert soon");
        assert_eq!(
            at(TimeDelta::hours(5)).summary(),
            "Certificate expires in less than a day"
        );
        assert_eq!(
            at(TimeDelta::days(1)).summary(),
            "Certificate expires in 1 day"
        );

        let gone = at(-TimeDelta::days(3) - TimeDelta::hours(2));
        assert!(gone.expired() && gone.class() == "cert expired");
        assert_eq!(gone.summary(), "Certificate expired 3 days ago");
        assert!(gone
            .sentence()
            .into_string()
            .starts_with("Certificate expired 3 days ago, on "));

        // A monitor that alerts earlier than the pages would warn is highlighted as early.
        let early = monitor(upwatch_core::MonitorInput {
            cert_expiry_alert_days: Some(vec![30, 21]),
            ..upwatch_core::MonitorInput::for_url("tls://mail.example.test:465")
        });
        let state = with_certificate(&early, now + TimeDelta::days(20));
        assert!(Expiry::of(&early, &state, now).unwrap().soon);
        let state = with_certificate(&early, now + TimeDelta::days(22));
        assert!(!Expiry::of(&early, &state, now).unwrap().soon);

        // Plain HTTP has no certificate, whatever a state kept from an older URL.
        let plain = monitor(upwatch_core::MonitorInput::for_url("http://example.test/"));
        assert_eq!(
            Expiry::of(&plain, &with_certificate(&plain, now), now),
            None
        );
    }

    #[test]
    fn alert_thresholds_read_as_a_sentence() {
        assert_eq!(alert_days(&[1]), "1 day before expiry");
        assert_eq!(alert_days(&[7, 30, 7]), "30 and 7 days before expiry");
        assert_eq!(alert_days(&[1, 14, 7]), "14, 7 and 1 days before expiry");
    }

    #[test]
    fn days_with_maintenance_carry_a_titled_band() {
        let markup = marked_bar(
            &['u', 'u', 'n', 'd'],
            &[false, true, true, false],
            "x",
            "days",
        )
        .into_string();
        assert!(
            markup
                .ends_with(r#"<path class="m" d="M4 2h8"><title>maintenance</title></path></svg>"#),
            "{markup}"
        );
        assert!(!bar(&['u'], "x", "days")
            .into_string()
            .contains("class=\"m\""));
        let day = |maintenance: bool| Day {
            start: Utc::now(),
            up: 1,
            down: 0,
            maintenance,
        };
        let label = daily_bar(&[day(true), day(false), day(true)]).into_string();
        assert!(
            label.contains("3 days: 100% uptime; 0 days with downtime, 0 without data; 2 days with maintenance"),
            "{label}"
        );
    }

    #[test]
    fn the_headline_puts_down_before_stale_before_maintenance() {
        let row = |name: &str, status: MonitorStatus| {
            let mut state = MonitorState::new(uuid::Uuid::now_v7());
            state.status = status;
            PublicRow {
                id: state.monitor_id,
                name: name.into(),
                group: None,
                state,
                days: Vec::new(),
            }
        };
        let up = row("Web", MonitorStatus::Up);
        let works = row("Db", MonitorStatus::Maintenance);
        assert_eq!(headline(&[up.clone(), works.clone()]), MAINTENANCE_HEADLINE);
        assert_eq!(
            headline(std::slice::from_ref(&up)),
            "All systems operational"
        );
        let stale = row("Api", MonitorStatus::Stale);
        assert_eq!(
            headline(&[up.clone(), works.clone(), stale]),
            "Api has not been checked lately"
        );
        let down = row("Shop", MonitorStatus::Down);
        assert_eq!(headline(&[up, works, down]), "Shop is down");
    }

    #[test]
    fn days_are_shaded_by_their_failures() {
        assert_eq!(day_class(None), 'n');
        assert_eq!(day_class(Some(1.0)), 'u');
        assert_eq!(day_class(Some(0.995)), 'w');
        assert_eq!(day_class(Some(0.5)), 'd');
    }
}
