//! `spawn_app()`: the real application on a free port with a fresh database.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use upwatch_app::Application;
use upwatch_config::{Overrides, Settings};
use upwatch_store::Store;

/// How long a test waits for a condition before failing.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Settings for a test: loopback, a database in `dir`, fast batches, plus `extra` variables.
pub fn settings(dir: &std::path::Path, extra: &[(&str, &str)]) -> Settings {
    let mut env: HashMap<String, String> = HashMap::from([
        ("UPWATCH_LISTEN".into(), "127.0.0.1:0".into()),
        (
            "DATABASE_URL".into(),
            format!("sqlite://{}", dir.join("upwatch.db").display()),
        ),
        ("UPWATCH_LOGGER_BATCH_MS".into(), "20".into()),
        ("UPWATCH_ALERTER_BATCH_MS".into(), "20".into()),
        ("UPWATCH_SCHEDULER_RELOAD_MS".into(), "200".into()),
        ("UPWATCH_DRAIN_TIMEOUT_SECONDS".into(), "5".into()),
    ]);
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    Settings::load(&Overrides::default(), &env).expect("test settings are valid")
}

/// Starts the application with [`settings`] in `dir`.
pub async fn spawn_app_in(dir: &std::path::Path, extra: &[(&str, &str)]) -> TestApp {
    upwatch_telemetry::init_tracing(upwatch_telemetry::LogFormat::Text, "warn");
    let app = Application::build(settings(dir, extra))
        .await
        .expect("the app builds");
    let addr = app.local_addr().expect("serve listens");
    let store = app.store().expect("serve has a store");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp {
        addr,
        client: reqwest::Client::new(),
        store,
        shutdown,
        task,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request");
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.expect("json")
    }

    /// The body of a successful `GET path` as text (a page, the metrics).
    pub async fn get_text(&self, path: &str) -> String {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request");
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.text().await.expect("text")
    }

    /// Creates a monitor and returns its id.
    pub async fn create_site(&self, body: Value) -> String {
        let response = self.post("/api/v1/sites", body).await;
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
        let created: Value = response.json().await.unwrap();
        created["id"].as_str().unwrap().to_string()
    }

    /// Creates one monitor per URL (`Site <i>`, checked every second with a 1 s timeout) and
    /// waits until each is up; returns their ids in order.
    pub async fn create_sites_up(&self, urls: &[String]) -> Vec<String> {
        let mut ids = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            ids.push(
                self.create_site(serde_json::json!({
                    "name": format!("Site {i}"),
                    "url": url,
                    "interval_seconds": 1,
                    "timeout_seconds": 1,
                }))
                .await,
            );
        }
        for id in &ids {
            eventually("every monitor up", || async {
                (self.status_of(id).await == "up").then_some(())
            })
            .await;
        }
        ids
    }

    /// `/readyz`: its status code and body.
    pub async fn readyz(&self) -> (u16, String) {
        let response = self.client.get(self.url("/readyz")).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    pub async fn status_of(&self, id: &str) -> String {
        self.get_json(&format!("/api/v1/sites/{id}/status")).await["status"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn history(&self, id: &str) -> Vec<Value> {
        self.get_json(&format!("/api/v1/sites/{id}/history?limit=1000"))
            .await["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Stops the application and waits for it to finish draining.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("stops within the deadline")
            .expect("task")
    }
}

/// Waits until `condition` returns `Some`, polling every 50 ms, failing after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    upwatch_testkit::wait::until(what, DEADLINE, Duration::from_millis(50), condition).await
}
