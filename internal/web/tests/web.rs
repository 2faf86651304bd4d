//! The pages and event streams over a real SQLite store and memory cache, served on loopback
//! and read with a real HTTP client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use upwatch_cache::{LiveStatus, MemoryCache, StaleMark, StatusCache};
use upwatch_core::maintenance::{Maintenance, MaintenanceInput};
use upwatch_core::observation::{CheckType, DnsQuery, DnsQueryType};
use upwatch_core::state::CertificateWatch;
use upwatch_core::{CheckError, CheckResult, ErrorKind, Monitor, MonitorInput, MonitorState};
use upwatch_store::Store;
use upwatch_store_sql::SqliteStore;
use upwatch_testkit::wait::until;
use upwatch_web::{router, WebConfig, WebState};
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(10);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(20);

struct Server {
    base: String,
    store: Arc<dyn Store>,
    cache: Arc<dyn StatusCache>,
    stop: CancellationToken,
    live: Arc<upwatch_web::live::Live>,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn serve(dashboard: bool) -> Server {
    serve_in(dashboard, Vec::new()).await
}

/// A server whose regions are `regions` (the default one when empty).
async fn serve_in(dashboard: bool, regions: Vec<String>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("web.db").display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&url).await.unwrap());
    let cache: Arc<dyn StatusCache> = Arc::new(MemoryCache::new());
    let stop = CancellationToken::new();
    let state = WebState::start(WebConfig {
        store: store.clone(),
        maintenances: store.clone(),
        cache: cache.clone(),
        stats: Arc::new(upwatch_service::Stats::new(
            store.clone(),
            Default::default(),
        )),
        api_document: Arc::new(serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "upwatch", "description": "The REST API."},
            "tags": [{"name": "sites", "description": "Monitors."}],
            "paths": {"/api/v1/sites": {"get": {
                "tags": ["sites"], "operationId": "list_sites",
                "responses": {"200": {"description": "A page of monitors.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Monitor"}}}}}
            }}},
            "components": {"schemas": {"Monitor": {"type": "object",
                "properties": {"id": {"type": "string", "format": "uuid", "description": "Stable identifier."}},
                "required": ["id"]}}}
        })),
        dashboard,
        stop: stop.clone(),
    })
    .with_regions(regions);
    let live = state.live().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, router(state))
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .unwrap();
    });
    Server {
        base,
        store,
        cache,
        stop,
        live,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Server {
    /// Waits until the live view's poller has seen each of `monitors` (so that what happens
    /// next is a change to them).
    async fn seen_live(&self, monitors: &[&Monitor]) {
        until(
            "the live view to see the monitors",
            DEADLINE,
            POLL,
            || async {
                let seen = self.live.since(0);
                let ids: Vec<Uuid> = seen[0].changes.iter().map(|c| c.id).collect();
                monitors.iter().all(|m| ids.contains(&m.id)).then_some(())
            },
        )
        .await;
    }

    /// Waits until the live view published a batch after `after`.
    async fn published_after(&self, after: u64) {
        until(
            "the live view to publish a change",
            DEADLINE,
            POLL,
            || async { (self.live.last_id() > after).then_some(()) },
        )
        .await;
    }

    /// Adds a monitor to the store and the cache, in `status`.
    async fn monitor(&self, name: &str, public: bool, group: Option<&str>) -> Monitor {
        let monitor = Monitor::create(
            MonitorInput {
                name: Some(name.into()),
                public: Some(public),
                group: group.map(str::to_string),
                ..MonitorInput::for_url(format!(
                    "https://{}.example.test/secret-path",
                    name.to_lowercase().replace(' ', "-")
                ))
            },
            Utc::now(),
        )
        .unwrap();
        self.store.insert_monitor(&monitor).await.unwrap();
        self.cache
            .put(&LiveStatus::new(&monitor, MonitorState::new(monitor.id)))
            .await
            .unwrap();
        monitor
    }

    /// Adds a monitor made from `input` to the store, and to the cache in `state` (its
    /// initial state when `None`).
    async fn add(&self, input: MonitorInput, state: Option<MonitorState>) -> Monitor {
        let monitor = Monitor::create(input, Utc::now()).unwrap();
        self.store.insert_monitor(&monitor).await.unwrap();
        let state = state.unwrap_or_else(|| MonitorState::new(monitor.id));
        self.cache
            .put(&LiveStatus::new(&monitor, state))
            .await
            .unwrap();
        monitor
    }

    /// Records a push monitor's heartbeat in the store and the cache, as the pipeline would.
    async fn heartbeat(&self, monitor: &Monitor, outcome: Result<(), CheckError>) {
        let result = CheckResult::heartbeat(
            monitor.id,
            &monitor.name,
            &monitor.url,
            monitor.rules(),
            Utc::now(),
            outcome,
        );
        self.store
            .insert_results(std::slice::from_ref(&result))
            .await
            .unwrap();
        self.store.apply_result(&result).await.unwrap();
        let mut entry = self.cache.get(monitor.id).await.unwrap().unwrap();
        entry.state.apply(&result);
        self.cache.put(&entry).await.unwrap();
    }

    /// Records a check of `monitor` in the store and the cache, as the pipeline would.
    async fn check(&self, monitor: &Monitor, up: bool) {
        self.record(monitor, up, false).await;
    }

    /// [`Server::check`], for a check that came during a maintenance window or not.
    async fn record(&self, monitor: &Monitor, up: bool, maintenance: bool) {
        let mut result = CheckResult::simulated(monitor, Utc::now(), up, 42);
        result.maintenance = maintenance;
        self.store
            .insert_results(std::slice::from_ref(&result))
            .await
            .unwrap();
        self.store.apply_result(&result).await.unwrap();
        let mut entry = self.cache.get(monitor.id).await.unwrap().unwrap();
        entry.state.apply(&result);
        self.cache.put(&entry).await.unwrap();
    }

    /// Stores a maintenance window made from `input`, as the API would.
    async fn maintenance(&self, input: serde_json::Value) -> Maintenance {
        let input: MaintenanceInput = serde_json::from_value(input).unwrap();
        let window = Maintenance::create(input, Utc::now()).unwrap();
        self.store.insert_maintenance(&window).await.unwrap();
        window
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    async fn text(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[tokio::test]
async fn the_status_page_shows_public_monitors_only_and_never_their_urls() {
    let server = serve(true).await;
    let shop = server.monitor("Checkout", true, Some("Shop")).await;
    let blog = server.monitor("Blog", true, None).await;
    let admin = server.monitor("Admin panel", false, None).await;
    server.check(&shop, true).await;
    server.check(&blog, false).await;
    server.check(&admin, false).await;

    let html = server.text("/status").await;
    assert!(
        html.contains("Blog is down"),
        "the headline names what is down"
    );
    assert!(html.contains("Checkout"));
    assert!(html.contains(">Shop</h2>"));
    assert!(
        html.contains(">Other</h2>"),
        "ungrouped monitors are under the default group"
    );
    assert!(!html.contains("Admin panel"), "a private monitor is listed");
    assert!(!html.contains(&admin.id.to_string()));
    assert!(!html.contains("example.test"), "a URL is shown");
    assert!(!html.contains("secret-path"));
    // Not "503" alone: ids and asset hashes may hold those digits by chance.
    assert!(
        !html.contains("HTTP 503") && !html.contains("status_mismatch"),
        "a check's details are shown"
    );
    // Works without JavaScript: statuses are in the HTML, in words.
    assert!(html.contains(">Up</span>") && html.contains(">Down</span>"));
    assert!(html.contains("Open incidents"));
    assert!(html.contains("aria-label=\"90 days: "));

    server.check(&blog, true).await;
    let html = server.text("/status").await;
    assert!(html.contains("All systems operational"), "{html}");
}

#[tokio::test]
async fn the_dashboard_lists_every_monitor_in_words() {
    let server = serve(true).await;
    let up = server.monitor("Alpha", false, Some("Core")).await;
    let down = server.monitor("Beta", true, Some("Core")).await;
    let _pending = server.monitor("Gamma", false, None).await;
    server.check(&up, true).await;
    server.check(&down, false).await;

    let html = server.text("/").await;
    for name in ["Alpha", "Beta", "Gamma"] {
        assert!(html.contains(name), "{name} is missing");
    }
    assert!(html.contains("3 monitors: 1 up, 1 down, 1 pending, 0 paused."));
    assert!(html.contains(&format!(r#"<tr id="{}" data-status="down">"#, down.id)));
    assert!(html.contains("Last 1 checks: 0 up, 1 down; the newest failed"));
    assert!(html.contains(r#"aria-live="polite""#));

    let page = server.text(&format!("/sites/{}", down.id)).await;
    assert!(
        page.contains("status_mismatch: got HTTP 503, expected 2xx"),
        "the incident's first error"
    );
    assert!(page.contains("ongoing"));
    assert!(page.contains("id=\"chart-data\""));
    let missing = server.get(&format!("/sites/{}", Uuid::now_v7())).await;
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.unwrap().contains("No such monitor"));
}

#[tokio::test]
async fn a_monitor_the_watchdog_marked_shows_stale_everywhere_until_its_next_result() {
    let server = serve(true).await;
    let api = server.monitor("Api", true, None).await;
    let web = server.monitor("Web", true, None).await;
    server.check(&api, true).await;
    server.check(&web, true).await;
    // The live view polls while someone looks.
    server.get("/").await;
    server.seen_live(&[&api, &web]).await;
    let last = server.live.last_id();
    let seen = server
        .cache
        .get(api.id)
        .await
        .unwrap()
        .unwrap()
        .state
        .last_checked;
    server
        .cache
        .set_stale(
            &[StaleMark {
                monitor_id: api.id,
                seen,
                since: Utc::now(),
            }],
            &[],
        )
        .await
        .unwrap();
    // The live view carries the change to open pages.
    server.published_after(last).await;
    let changes: Vec<_> = server
        .live
        .since(last)
        .into_iter()
        .flat_map(|b| b.changes.iter().cloned().collect::<Vec<_>>())
        .filter(|c| c.id == api.id)
        .collect();
    assert_eq!(changes.last().map(|c| c.status.as_str()), Some("stale"));

    let html = server.text("/").await;
    assert!(
        html.contains(
            "2 monitors: 1 up, 0 down, 0 pending, 0 paused, 1 stale (not checked lately)."
        ),
        "{html}"
    );
    assert!(html.contains(&format!(r#"<tr id="{}" data-status="stale">"#, api.id)));
    assert!(html.contains(">Stale</span>"));
    let page = server.text(&format!("/sites/{}", api.id)).await;
    assert!(page.contains(">Stale</span>"));
    let status = server.text("/status").await;
    assert!(
        status.contains("Api has not been checked lately"),
        "{status}"
    );
    assert!(!status.contains("All systems operational"));

    // Its next result clears it.
    server.check(&api, true).await;
    let status = server.text("/status").await;
    assert!(status.contains("All systems operational"), "{status}");
    assert!(!server.text("/").await.contains("stale"));
}

#[tokio::test]
async fn without_the_dashboard_only_the_status_page_is_served() {
    let server = serve(false).await;
    let m = server.monitor("Alpha", true, None).await;
    for path in [
        "/".to_string(),
        format!("/sites/{}", m.id),
        "/events".into(),
        "/updates?since=0".into(),
    ] {
        assert_eq!(server.get(&path).await.status(), 403, "{path}");
    }
    assert_eq!(server.get("/status").await.status(), 200);
}

#[tokio::test]
async fn pages_are_compressed_and_assets_cached_by_hash() {
    let server = serve(true).await;
    let html = server.text("/status").await;
    let js = html
        .split('"')
        .find(|s| s.starts_with("/assets/app.js?v="))
        .expect("the page links its script by hash")
        .to_string();
    let response = server.get(&js).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let etag = response.headers()["etag"].clone();
    let again = server
        .client
        .get(format!("{}{js}", server.base))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    let raw = server
        .client
        .get(format!("{}/status", server.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.headers()["content-encoding"], "gzip");
    assert!(raw.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'self'"));
}

/// Reads server-sent events until `want` accepts one, within the deadline.
async fn next_event(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buffer: &mut String,
    mut want: impl FnMut(&str, &serde_json::Value) -> bool,
) -> (String, serde_json::Value) {
    let end = Instant::now() + DEADLINE;
    loop {
        while let Some(at) = buffer.find("\n\n") {
            let event: String = buffer.drain(..at + 2).collect();
            let id = event
                .lines()
                .find_map(|l| l.strip_prefix("id: "))
                .map(str::to_string);
            let data = event.lines().find_map(|l| l.strip_prefix("data: "));
            if let (Some(id), Some(data)) = (id, data) {
                let value: serde_json::Value = serde_json::from_str(data).unwrap();
                if want(&id, &value) {
                    return (id, value);
                }
            }
        }
        let left = end.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, stream.next())
            .await
            .expect("an event within the deadline")
            .expect("the stream stays open")
            .unwrap();
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

fn has_status(value: &serde_json::Value, id: Uuid, status: &str) -> bool {
    value["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == id.to_string() && c["status"] == status)
}

#[tokio::test]
async fn events_stream_changes_and_resume_from_the_last_event_id() {
    let server = serve(true).await;
    let m = server.monitor("Alpha", false, None).await;
    // Let the live view see the monitor once, so that what follows is a change.
    server.get("/").await;
    server.seen_live(&[&m]).await;

    let response = server.get("/events").await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    server.check(&m, false).await;
    let (first, value) =
        next_event(&mut stream, &mut buffer, |_, v| has_status(v, m.id, "down")).await;
    let change = &value["changes"][0];
    assert_eq!(change["name"], "Alpha");
    assert_eq!(change["tick"]["up"], false);
    assert_eq!(
        change["error"],
        "status_mismatch: got HTTP 503, expected 2xx"
    );
    drop(stream);

    // A change while disconnected arrives on reconnecting with the last id seen.
    server.check(&m, true).await;
    server.published_after(first.parse().unwrap()).await;
    let response = server
        .client
        .get(format!("{}/events", server.base))
        .header("last-event-id", &first)
        .send()
        .await
        .unwrap();
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let (second, value) = next_event(&mut stream, &mut buffer, |_, _| true).await;
    assert!(second.parse::<u64>().unwrap() > first.parse::<u64>().unwrap());
    assert!(has_status(&value, m.id, "up"), "{value}");
    assert_eq!(value["reset"], false);

    // An id this process never issued gets every monitor at once.
    let polled: serde_json::Value = server.get("/updates?since=1").await.json().await.unwrap();
    let batch = &polled["batches"][0];
    assert_eq!(batch["reset"], true);
    assert!(has_status(batch, m.id, "up"));
}

#[tokio::test]
async fn the_public_stream_carries_public_monitors_and_statuses_only() {
    let server = serve(true).await;
    let public = server.monitor("Shop", true, None).await;
    let private = server.monitor("Admin", false, None).await;
    server.get("/status").await;
    server.seen_live(&[&public, &private]).await;

    let mut stream = server.get("/status/events").await.bytes_stream();
    let mut buffer = String::new();
    server.check(&private, false).await;
    server.check(&public, false).await;
    let (_, value) = next_event(&mut stream, &mut buffer, |_, v| {
        has_status(v, public.id, "down")
    })
    .await;
    let text = value.to_string();
    assert!(!text.contains(&private.id.to_string()), "{text}");
    // The changes only: the batch id is a time in milliseconds, which may hold any digits.
    let changes = value["changes"].to_string();
    assert!(
        !changes.contains("example.test") && !changes.contains("503"),
        "{text}"
    );
    assert_eq!(
        value["changes"][0].as_object().unwrap().len(),
        3,
        "id, name and status only"
    );
}

#[tokio::test]
/// Every row renders, and the status page lists the public half. What a render costs is
/// measured by `cargo bench -p upwatch-bench --bench web`, not here.
async fn a_thousand_monitors_all_render() {
    let server = serve(true).await;
    let start = Utc::now() - TimeDelta::minutes(60);
    let mut results = Vec::new();
    for i in 0..1000 {
        let m = server
            .monitor(
                &format!("Site {i:04}"),
                i % 2 == 0,
                Some(&format!("Team {}", i % 10)),
            )
            .await;
        for k in 0..60 {
            let at = start + TimeDelta::minutes(k);
            results.push(CheckResult::simulated(
                &m,
                at,
                !(i + k as u32).is_multiple_of(97),
                20 + (k as u32 * 7 + i) % 180,
            ));
        }
    }
    for chunk in results.chunks(5000) {
        server.store.insert_results(chunk).await.unwrap();
    }
    // The first render reads every monitor's recent checks and uptime; a later one reuses them.
    for _ in 0..2 {
        let page = server.text("/").await;
        assert_eq!(page.matches("<tr id=").count(), 1000);
        assert!(page.contains("Last 60 checks: "));
    }
    let status = server.text("/status").await;
    assert_eq!(status.matches("<li id=").count(), 500);
    assert!(!status.contains("Site 0001"), "odd sites are private");
}

#[tokio::test]
async fn streams_say_when_the_monitors_a_page_lists_changed() {
    let server = serve(true).await;
    let first = server.monitor("First", true, None).await;
    server.get("/").await;
    server.seen_live(&[&first]).await;
    let mut dashboard = server.get("/events").await.bytes_stream();
    let mut public = server.get("/status/events").await.bytes_stream();
    let (mut d_buf, mut p_buf) = (String::new(), String::new());

    // A private monitor: the dashboard reads its list again, the status page hears nothing.
    let private = server.monitor("Private", false, None).await;
    let (_, value) = next_event(&mut dashboard, &mut d_buf, |_, _| true).await;
    assert_eq!(value["monitors_changed"], true, "{value}");

    let shown = server.monitor("Shown", true, None).await;
    let (_, value) = next_event(&mut dashboard, &mut d_buf, |_, v| {
        v["changes"].to_string().contains(&shown.id.to_string())
    })
    .await;
    assert_eq!(value["monitors_changed"], true, "{value}");
    // The list's change and the new monitor's first status may come in one event or in two
    // (the store is written before the cache): every event up to the status says the list
    // changed, and none names the private monitor.
    let mut heard = Vec::new();
    let (_, value) = next_event(&mut public, &mut p_buf, |_, v| {
        heard.push(v.clone());
        has_status(v, shown.id, "pending")
    })
    .await;
    assert!(
        heard.iter().any(|v| v["monitors_changed"] == true),
        "{heard:?}"
    );
    for v in &heard {
        assert!(!v.to_string().contains(&private.id.to_string()), "{v}");
    }
    assert!(has_status(&value, shown.id, "pending"), "{value}");

    // A check changes a status, not the list.
    server.check(&first, false).await;
    let (_, value) = next_event(&mut dashboard, &mut d_buf, |_, v| {
        has_status(v, first.id, "down")
    })
    .await;
    assert_eq!(value["monitors_changed"], false, "{value}");
    server.stop.cancel();
}

#[tokio::test]
async fn the_api_reference_renders_the_document_with_no_script() {
    let server = serve(false).await;
    let response = server.get("/api/docs").await;
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    let page = response.text().await.unwrap();
    assert!(page.contains("<code>GET /api/v1/sites</code>"), "{page}");
    assert!(page.contains("A page of monitors."), "{page}");
    assert!(page.contains("id=\"schema-Monitor\""), "{page}");
    assert!(page.contains("Stable identifier."), "{page}");
    assert!(page.contains("href=\"/api/v1/openapi.json\""), "{page}");
    assert!(
        !page.contains("<script"),
        "the reference needs no script: {page}"
    );
}

/// A monitor of each kind the pages tell apart: TCP with conditions, push, DNS, and HTTPS with
/// a certificate that expires in 5 days.
struct Kinds {
    tcp: Monitor,
    push: Monitor,
    dns: Monitor,
    https: Monitor,
    /// The push monitor's token: the secret that must never leave its own page.
    token: String,
    expires_at: chrono::DateTime<Utc>,
}

async fn kinds(server: &Server) -> Kinds {
    let tcp = server
        .add(
            MonitorInput {
                name: Some("Database".into()),
                conditions: Some(vec![
                    "[CONNECTED] == true".into(),
                    "[RESPONSE_TIME] < 500".into(),
                ]),
                ..MonitorInput::for_url("tcp://db.example.test:5432")
            },
            None,
        )
        .await;
    let push = server
        .add(
            MonitorInput {
                name: Some("Nightly backup".into()),
                check_type: Some(CheckType::Push),
                public: Some(true),
                push_grace_seconds: Some(120),
                ..MonitorInput::default()
            },
            None,
        )
        .await;
    let dns = server
        .add(
            MonitorInput {
                name: Some("Resolver".into()),
                dns: Some(DnsQuery {
                    query_name: "example.com".into(),
                    query_type: DnsQueryType::A,
                }),
                ..MonitorInput::for_url("dns://1.1.1.1:53")
            },
            None,
        )
        .await;
    // An hour more than 5 days, so that the whole days left are 5 until the test ends.
    let expires_at = Utc::now() + TimeDelta::days(5) + TimeDelta::hours(1);
    let https = {
        let monitor = Monitor::create(
            MonitorInput {
                name: Some("Shop".into()),
                public: Some(true),
                ..MonitorInput::for_url("https://shop.example.test/")
            },
            Utc::now(),
        )
        .unwrap();
        let mut state = MonitorState::new(monitor.id);
        state.certificate = Some(CertificateWatch {
            fingerprint: "ab".repeat(32),
            expires_at,
            alerted_days: Some(7),
        });
        server.store.insert_monitor(&monitor).await.unwrap();
        server
            .cache
            .put(&LiveStatus::new(&monitor, state))
            .await
            .unwrap();
        monitor
    };
    let token = push
        .push_token()
        .expect("a push monitor has a token")
        .to_string();
    assert!(push.url.contains(&token));
    Kinds {
        tcp,
        push,
        dns,
        https,
        token,
        expires_at,
    }
}

#[tokio::test]
async fn the_dashboard_shows_each_monitors_type_and_certificates_that_expire_soon() {
    let server = serve(true).await;
    let k = kinds(&server).await;
    let _web = server.monitor("Plain", false, None).await;

    let html = server.text("/").await;
    for label in ["TCP", "PUSH", "DNS"] {
        assert!(
            html.contains(&format!(r#"<span class="kind">{label}</span>"#)),
            "{label}: {html}"
        );
    }
    assert!(
        !html.contains(r#"<span class="kind">HTTP</span>"#),
        "HTTP rows carry no label"
    );
    assert!(html.contains("tcp://db.example.test:5432"));
    assert!(html.contains("dns://1.1.1.1:53"));
    assert!(
        html.contains(r#"<span class="url">push monitor</span>"#),
        "{html}"
    );
    let row = |m: &Monitor| {
        let start = html.find(&format!(r#"<tr id="{}""#, m.id)).unwrap();
        let end = start + html[start..].find("</tr>").unwrap();
        html[start..end].to_string()
    };
    let shop = row(&k.https);
    assert!(
        shop.contains(r#"<span class="cert soon">"#)
            && shop.contains("Certificate expires in 5 days"),
        "{shop}"
    );
    assert!(!row(&k.tcp).contains("Certificate"));
    assert!(
        !html.contains(&k.token),
        "the push token is on the dashboard"
    );
    assert!(!html.contains("push://"));

    let page = server.text(&format!("/sites/{}", k.https.id)).await;
    let date = k.expires_at.format("%Y-%m-%d").to_string();
    assert!(
        page.contains(&format!(">{date}</time> (in 5 days).")),
        "{page}"
    );
    assert!(page.contains(r#"<p class="cert soon">"#), "{page}");
    assert!(page.contains("<dd>HTTP</dd>"));
    assert!(page.contains("Verifies the certificate"));

    let page = server.text(&format!("/sites/{}", k.dns.id)).await;
    assert!(page.contains("<dd>DNS</dd>"));
    assert!(
        page.contains(r#"<dd class="dns-query">A example.com</dd>"#),
        "{page}"
    );
    assert!(
        !page.contains("Certificate"),
        "a DNS check has no certificate"
    );
    assert!(!page.contains("Keyword"), "a DNS check has no keyword");

    let page = server.text(&format!("/sites/{}", k.tcp.id)).await;
    assert!(page.contains("<dd>TCP</dd>"));
    assert!(page.contains("<code>[CONNECTED] == true</code>"), "{page}");
    assert!(
        page.contains("<code>[RESPONSE_TIME] &lt; 500</code>"),
        "conditions are escaped: {page}"
    );
    assert!(!page.contains("Method"), "a TCP check has no method");
}

#[tokio::test]
async fn a_push_token_shows_on_its_monitors_page_only() {
    let server = serve(true).await;
    let k = kinds(&server).await;
    server.heartbeat(&k.push, Ok(())).await;

    let page = server.text(&format!("/sites/{}", k.push.id)).await;
    let path = format!("/api/v1/push/{}", k.token);
    assert_eq!(k.push.push_url.as_deref(), Some(path.as_str()));
    assert!(page.contains("<dd>PUSH</dd>"), "{page}");
    assert!(
        page.contains(&format!(
            r#"<code>curl -fsS <span data-origin></span>{path}</code>"#
        )),
        "{page}"
    );
    assert!(page.contains("?status=down&amp;msg=..."), "{page}");
    assert!(page.contains("<dd>120 s after the interval</dd>"), "{page}");
    assert!(
        !page.contains(&format!(r#"href="{path}"#)),
        "a link would record a push when followed"
    );
    assert!(!page.contains("push://"), "{page}");

    for path in ["/", "/status"] {
        let html = server.text(path).await;
        assert!(html.contains("Nightly backup"), "{path}");
        assert!(!html.contains(&k.token), "the push token is on {path}");
        assert!(!html.contains("push://"), "{path}");
    }
    let status = server.text("/status").await;
    assert!(!status.contains("push monitor") && !status.contains("shop.example.test"));

    // The live updates: a snapshot, a new check in a batch, and the event stream.
    server.seen_live(&[&k.push, &k.tcp, &k.dns, &k.https]).await;
    let last = server.live.last_id();
    let mut dashboard = server.get("/events").await.bytes_stream();
    let mut public = server.get("/status/events").await.bytes_stream();
    let (mut d_buf, mut p_buf) = (String::new(), String::new());
    server
        .heartbeat(
            &k.push,
            Err(CheckError::new(ErrorKind::ReportedDown, "disk full")),
        )
        .await;
    server.published_after(last).await;
    let (_, event) = next_event(&mut dashboard, &mut d_buf, |_, v| {
        has_status(v, k.push.id, "down")
    })
    .await;
    assert!(
        event.to_string().contains("reported_down: disk full"),
        "{event}"
    );
    let (_, public_event) = next_event(&mut public, &mut p_buf, |_, v| {
        has_status(v, k.push.id, "down")
    })
    .await;
    let mut payloads = vec![event.to_string(), public_event.to_string()];
    for path in [
        format!("/updates?since={last}"),
        "/updates?since=1".into(),
        format!("/status/updates?since={last}"),
        "/status/updates?since=1".into(),
    ] {
        let text = server.text(&path).await;
        assert!(text.contains(&k.push.id.to_string()), "{path}: {text}");
        payloads.push(text);
    }
    for text in payloads {
        assert!(!text.contains(&k.token), "the push token is live: {text}");
        assert!(!text.contains("push://"), "{text}");
    }
}

/// The element of `html` that starts with `start`, up to the first `end` after it.
fn element<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {html}"));
    let to = from + html[from..].find(end).unwrap() + end.len();
    &html[from..to]
}

#[tokio::test]
async fn the_status_page_lists_the_maintenance_of_public_monitors_only() {
    let server = serve(true).await;
    let shop = server.monitor("Checkout", true, Some("Shop")).await;
    let blog = server.monitor("Blog", true, None).await;
    let admin = server.monitor("Admin panel", false, None).await;
    for m in [&shop, &blog, &admin] {
        server.check(m, true).await;
    }
    let now = Utc::now();
    let (h, d, min) = (TimeDelta::hours, TimeDelta::days, TimeDelta::minutes);
    let ongoing = server
        .maintenance(serde_json::json!({
            "title": "Database <upgrade>",
            "description": "Replicas first & then the primary.",
            "monitor_ids": [shop.id],
            "start": now - h(1), "end": now + h(2),
        }))
        .await;
    let upcoming = server
        .maintenance(serde_json::json!({
            "title": "Network work", "description": "New switches.", "groups": ["Shop"],
            "start": now + d(2) + min(5), "end": now + d(2) + min(65),
        }))
        .await;
    server
        .maintenance(serde_json::json!({
            "title": "Data centre move", "all": true,
            "start": now + d(3), "end": now + d(3) + h(4),
        }))
        .await;
    server
        .maintenance(serde_json::json!({
            "title": "Admin rebuild", "description": "Internal only.",
            "monitor_ids": [admin.id], "start": now - h(1), "end": now + h(1),
        }))
        .await;
    server
        .maintenance(serde_json::json!({
            "title": "Next month", "all": true, "start": now + d(20), "end": now + d(21),
        }))
        .await;

    let html = server.text("/status").await;
    let section = element(&html, r#"<section class="maintenance""#, "</section>");
    // The window under way: title and description, escaped, and until when.
    let on = element(
        section,
        &format!(r#"<li class="window ongoing" data-id="{}">"#, ongoing.id),
        "</li>",
    );
    assert!(on.contains("Database &lt;upgrade&gt;"), "{on}");
    assert!(
        on.contains("Replicas first &amp; then the primary."),
        "{on}"
    );
    let until = ongoing_end(&ongoing)
        .format("%Y-%m-%d %H:%M UTC")
        .to_string();
    assert!(
        on.contains(" until <time datetime=") && on.contains(&until),
        "{on}"
    );
    assert!(on.contains("Affects Checkout."), "{on}");
    assert!(!html.contains("<upgrade>"), "a title is not escaped");
    // The one coming: its times in UTC and how soon.
    assert!(section.contains("Upcoming (next 7 days)"), "{section}");
    let next = element(
        section,
        &format!(r#"<li class="window upcoming" data-id="{}">"#, upcoming.id),
        "</li>",
    );
    assert!(
        next.contains("Network work") && next.contains("New switches."),
        "{next}"
    );
    assert!(next.contains(" UTC (in 2 d 0 h)"), "{next}");
    assert!(next.contains("Affects Checkout."), "{next}");
    assert!(
        section.contains("Data centre move") && section.contains("Affects all services."),
        "{section}"
    );
    // Nothing of a window of private monitors only, nor of one beyond the week.
    for hidden in [
        "Admin rebuild",
        "Internal only.",
        "Admin panel",
        "Next month",
    ] {
        assert!(
            !html.contains(hidden),
            "{hidden} is on the status page: {html}"
        );
    }
    // The bars: today had maintenance of Checkout, not of Blog.
    let checkout = element(&html, &format!(r#"<li id="{}""#, shop.id), "</li>");
    assert!(checkout.contains(r#"<path class="m" d="#), "{checkout}");
    assert!(
        checkout.contains("<title>maintenance</title>"),
        "{checkout}"
    );
    assert!(checkout.contains(" with maintenance\""), "{checkout}");
    let blog_item = element(&html, &format!(r#"<li id="{}""#, blog.id), "</li>");
    assert!(!blog_item.contains("class=\"m\""), "{blog_item}");
    assert!(html.contains(r#"<span class="key m">maintenance</span>"#));
    assert!(
        html.contains("All systems operational"),
        "no result came during the window yet"
    );

    // A check during the window: the monitor shows maintenance, and so does the headline.
    server.record(&shop, true, true).await;
    let html = server.text("/status").await;
    assert!(
        html.contains(r#"data-state="maintenance">Maintenance in progress</p>"#),
        "{html}"
    );
    let checkout = element(&html, &format!(r#"<li id="{}""#, shop.id), "</li>");
    assert!(
        checkout.contains(r#"data-status="maintenance""#)
            && checkout.contains(">Maintenance</span>"),
        "{checkout}"
    );
    // Something down still comes first.
    server.check(&blog, false).await;
    assert!(server.text("/status").await.contains("Blog is down"));

    // The dashboard lists every window, naming any monitor.
    let dashboard = server.text("/").await;
    let section = element(&dashboard, r#"<div id="maintenance">"#, "</section>");
    for shown in [
        "Admin rebuild",
        "Affects Admin panel.",
        "Database &lt;upgrade&gt;",
        "Affects all monitors.",
    ] {
        assert!(section.contains(shown), "{shown}: {section}");
    }
    assert!(!section.contains("Next month"));
    assert!(
        dashboard.contains("3 monitors: 1 up, 1 down, 0 pending, 0 paused, 1 in maintenance."),
        "{dashboard}"
    );
}

fn ongoing_end(window: &Maintenance) -> chrono::DateTime<Utc> {
    window
        .active_at(Utc::now())
        .expect("the window is under way")
        .end
}

#[tokio::test]
async fn a_monitors_page_lists_the_windows_that_cover_it_and_marks_its_days() {
    let server = serve(true).await;
    let api = server.monitor("Api", false, Some("Backend")).await;
    let web = server.monitor("Web", false, None).await;
    let now = Utc::now();
    let (h, d, min) = (TimeDelta::hours, TimeDelta::days, TimeDelta::minutes);
    server
        .maintenance(serde_json::json!({
            "title": "Old migration", "groups": ["Backend"],
            "start": now - d(3), "end": now - d(3) + h(1),
        }))
        .await;
    server
        .maintenance(serde_json::json!({
            "title": "Kernel patch", "description": "Rolling restarts.", "groups": ["Backend"],
            "start": now - min(10), "end": now + min(50),
        }))
        .await;
    server
        .maintenance(serde_json::json!({
            "title": "Certificate rotation", "monitor_ids": [api.id],
            "start": now + d(1), "end": now + d(1) + min(30),
        }))
        .await;
    server
        .maintenance(serde_json::json!({
            "title": "Web only", "monitor_ids": [web.id],
            "start": now + h(5), "end": now + h(6),
        }))
        .await;

    let page = server.text(&format!("/sites/{}", api.id)).await;
    let section = element(&page, r#"<section class="maintenance""#, "</section>");
    assert!(
        section.contains("In progress") && section.contains("Kernel patch"),
        "{section}"
    );
    assert!(section.contains("Rolling restarts."), "{section}");
    assert!(
        section.contains("Certificate rotation") && section.contains("(in 23 h "),
        "{section}"
    );
    assert!(
        !section.contains("Web only") && !section.contains("Old migration"),
        "{section}"
    );
    assert!(
        !section.contains("Affects"),
        "the page is about this monitor: {section}"
    );
    let bar = element(&page, r#"<svg class="bar days""#, "</svg>");
    assert!(
        bar.contains(r#"<path class="m" d="#) && bar.contains("<title>maintenance</title>"),
        "{bar}"
    );
    assert!(bar.contains(" with maintenance\""), "{bar}");

    let page = server.text(&format!("/sites/{}", web.id)).await;
    let section = element(&page, r#"<section class="maintenance""#, "</section>");
    assert!(
        section.contains("Web only") && !section.contains("Kernel patch"),
        "{section}"
    );
    assert!(!section.contains("In progress"), "{section}");
    let bar = element(&page, r#"<svg class="bar days""#, "</svg>");
    assert!(!bar.contains("class=\"m\""), "{bar}");
    assert!(!page.contains(r#"<span class="key m">"#));
}

#[tokio::test]
async fn a_check_during_maintenance_flips_the_live_status_both_ways() {
    let server = serve(true).await;
    let m = server.monitor("Shop", true, None).await;
    server.check(&m, true).await;
    server.get("/status").await;
    server.seen_live(&[&m]).await;

    let mut public = server.get("/status/events").await.bytes_stream();
    let mut dashboard = server.get("/events").await.bytes_stream();
    let (mut p_buf, mut d_buf) = (String::new(), String::new());
    server.record(&m, false, true).await;
    next_event(&mut public, &mut p_buf, |_, v| {
        has_status(v, m.id, "maintenance")
    })
    .await;
    next_event(&mut dashboard, &mut d_buf, |_, v| {
        has_status(v, m.id, "maintenance")
    })
    .await;
    let polled = server.text("/status/updates?since=1").await;
    assert!(polled.contains(r#""status":"maintenance""#), "{polled}");

    server.check(&m, true).await;
    next_event(&mut public, &mut p_buf, |_, v| has_status(v, m.id, "up")).await;
    next_event(&mut dashboard, &mut d_buf, |_, v| has_status(v, m.id, "up")).await;
}

#[tokio::test]
async fn a_monitor_checked_from_several_regions_shows_a_row_and_a_line_per_region() {
    use upwatch_core::state::{RegionState, RegionStatus};
    let server = serve_in(true, vec!["a".into(), "b".into(), "c".into()]).await;
    let now = Utc::now();
    let input = MonitorInput {
        name: Some("Shop".into()),
        public: Some(true),
        regions: Some(vec!["b".into(), "a".into()]),
        quorum: Some(2),
        proxy: Some("http://user:s3cret@proxy.internal:3128".into()),
        ..MonitorInput::for_url("https://shop.example.test/")
    };
    let monitor = Monitor::create(input, now).unwrap();
    let mut state = MonitorState::new(monitor.id);
    state.regions.insert(
        "b".into(),
        RegionState {
            status: RegionStatus::Down,
            last_checked: now - TimeDelta::seconds(5),
            consecutive_failures: 3,
            consecutive_successes: 0,
            response_time_ms: Some(812),
            status_code: None,
            error: Some(CheckError::new(ErrorKind::Timeout, "no answer within 10 s")),
            settled: None,
        },
    );
    server.store.insert_monitor(&monitor).await.unwrap();
    server
        .cache
        .put(&LiveStatus::new(&monitor, state))
        .await
        .unwrap();
    let shop = monitor;
    // Results of both regions, for the chart's lines.
    let mut results = Vec::new();
    for (i, region) in ["a", "b", "a", "b"].into_iter().enumerate() {
        let mut result = CheckResult::simulated(
            &shop,
            now - TimeDelta::minutes(30 + i as i64),
            true,
            if region == "a" { 40 } else { 900 },
        );
        result.region = region.to_string();
        results.push(result);
    }
    server.store.insert_results(&results).await.unwrap();

    let html = server.text(&format!("/sites/{}", shop.id)).await;
    assert!(html.contains(">Regions</h2>"), "{html}");
    let row = |region: &str| -> String {
        let start = html
            .find(&format!("data-region=\"{region}\""))
            .unwrap_or_else(|| panic!("no row of region {region}"));
        let end = start + html[start..].find("</tr>").unwrap();
        html[start..end].to_string()
    };
    // Each status is an icon and a word, never a colour alone.
    let b = row("b");
    assert!(b.contains("✕</span>Down"), "{b}");
    assert!(
        b.contains("812 ms") && b.contains("timeout: no answer within 10 s"),
        "{b}"
    );
    let a = row("a");
    assert!(a.contains("…</span>Pending") && a.contains("never"), "{a}");
    assert!(
        html.find("data-region=\"b\"") < html.find("data-region=\"a\""),
        "the monitor's order of its regions"
    );
    assert!(!html.contains("data-region=\"c\""), "c does not check it");
    // One line per region in the chart, named in the legend with its dash pattern.
    assert!(html.contains("\"regions\":[{\"name\":\"b\""), "{html}");
    assert!(html.contains("b p50 (solid line)") && html.contains("a p50 (dashed line)"));
    assert!(html.contains("Response times per region as a table"));
    assert!(html.contains("2 of its regions see it down"));
    // The proxy is never shown, not even redacted.
    assert!(!html.contains("proxy.internal") && !html.contains("s3cret"));

    // The status page shows the overall status only.
    let status = server.text("/status").await;
    assert!(status.contains("Shop"));
    assert!(!status.contains("data-region") && !status.contains(">Regions</h2>"));
    assert!(!status.contains("proxy.internal"));
}

#[tokio::test]
async fn a_monitor_checked_from_one_region_shows_no_region_rows() {
    let server = serve_in(true, vec!["a".into(), "b".into()]).await;
    let input = MonitorInput {
        regions: Some(vec!["a".into()]),
        ..MonitorInput::for_url("https://one.example.test/")
    };
    let one = server.add(input, None).await;
    let html = server.text(&format!("/sites/{}", one.id)).await;
    assert!(!html.contains(">Regions</h2>") && !html.contains("data-region"));
    assert!(!html.contains("\"regions\":"));
    let single = serve(true).await;
    let plain = single.monitor("Default", false, None).await;
    let html = single.text(&format!("/sites/{}", plain.id)).await;
    assert!(
        !html.contains(">Regions</h2>"),
        "the one default region shows no rows"
    );
}
