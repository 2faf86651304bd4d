//! No notifier secret ever appears in a response, a log line or an error message: the real
//! `upwatch serve`, logging at debug level, delivers alerts and test messages to channels of
//! several kinds (successes, a 429, a 5xx, a permanent refusal), and the whole of its output
//! is searched for every secret the test used.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use upwatch_testkit::receiver::{Answer, HttpReceiver};

const API_TOKEN: &str = "api-token-0123456789-secret";
const DISCORD_TOKEN: &str = "discord-token-secret-0123";
const SLACK_PATH: &str = "T0SECRET/B0SECRET/slacksecret0123";
const BOT_TOKEN: &str = "555555:telegram-bot-token-secret";
const HMAC_KEY: &str = "hmac-signing-key-secret";
const HEADER_VALUE: &str = "Bearer header-value-secret";
const ROUTING_KEY: &str = "pagerdutyroutingkeysecret0123456";

fn upwatch() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_upwatch"));
    for (key, _) in std::env::vars() {
        if key.starts_with("UPWATCH_")
            || ["DATABASE_URL", "DISCORD_WEBHOOK_URL", "SITES_TO_MONITOR"].contains(&key.as_str())
        {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Waits until `condition` holds, every 100 ms, for at most 60 s.
async fn until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + Duration::from_secs(60);
    while !condition().await {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_response_or_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let discord = HttpReceiver::start(Answer::status(204)).await;
    let slack = HttpReceiver::start(Answer::text(200, "ok")).await;
    let telegram = HttpReceiver::start(Answer::json(200, json!({"ok": true, "result": {}}))).await;
    let hook = HttpReceiver::start(Answer::status(200)).await;
    let pagerduty = HttpReceiver::start(Answer::json(
        202,
        json!({"status": "success", "message": "Event processed"}),
    ))
    .await;
    // Telegram first asks to wait, then refuses the token for good.
    telegram.push(Answer::json(
        429,
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1",
               "parameters": {"retry_after": 1}}),
    ));
    telegram.push(Answer::json(
        401,
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
    ));
    // The generic webhook fails once with a 5xx.
    hook.push(Answer::text(503, "busy"));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let discord_url = format!("{}/api/webhooks/1/{DISCORD_TOKEN}", discord.url());
    let mut child = upwatch()
        .arg("serve")
        .env("UPWATCH_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("upwatch.db").display()),
        )
        .env("UPWATCH_LOG", "debug")
        .env("UPWATCH_API_TOKEN", API_TOKEN)
        .env("DISCORD_WEBHOOK_URL", &discord_url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read both streams as they come, so that a full pipe never blocks the server.
    let drain = |mut stream: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stream.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let api = |method: reqwest::Method, path: &str| {
        client
            .request(method, format!("{base}/api/v1{path}"))
            .bearer_auth(API_TOKEN)
    };
    until("the server answers", || async {
        client.get(format!("{base}/healthz")).send().await.is_ok()
    })
    .await;
    let mut responses = String::new();

    let notifiers = [
        json!({"name": "slack", "kind": "slack", "default": true,
               "settings": {"webhook_url": format!("{}/services/{SLACK_PATH}", slack.url())}}),
        json!({"name": "telegram", "kind": "telegram", "default": true,
               "settings": {"bot_token": BOT_TOKEN, "chat_id": "42", "api_url": telegram.url()}}),
        json!({"name": "hook", "kind": "webhook", "default": true,
               "settings": {"url": format!("{}/in", hook.url()), "secret": HMAC_KEY,
                            "headers": {"Authorization": HEADER_VALUE}}}),
        json!({"name": "pd", "kind": "pagerduty", "default": true,
               "settings": {"routing_key": ROUTING_KEY, "api_url": pagerduty.url()}}),
    ];
    let mut ids = Vec::new();
    for body in &notifiers {
        let response = api(reqwest::Method::POST, "/notifiers")
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let text = response.text().await.unwrap();
        ids.push(serde_json::from_str::<Value>(&text).unwrap()["id"].clone());
        responses.push_str(&text);
    }
    // A site on a closed port: down at its first check, alerting every channel.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let site = api(reqwest::Method::POST, "/sites")
        .json(
            &json!({"name": "shop", "url": format!("http://127.0.0.1:{closed}/"),
                      "interval_seconds": 10, "timeout_seconds": 2}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(site.status(), 201);

    until("every channel had its delivery", || async {
        !slack.accepted().is_empty()
            && !discord.accepted().is_empty()
            && telegram.requests().len() >= 2
            && !hook.accepted().is_empty()
            && !pagerduty.accepted().is_empty()
    })
    .await;
    let telegram_id = ids[1].as_str().unwrap();
    until("telegram is disabled", || async {
        let view: Value = api(reqwest::Method::GET, &format!("/notifiers/{telegram_id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        view["enabled"] == false
    })
    .await;
    // Test messages, one failing (the receiver refuses), and every view.
    slack.push(Answer::text(403, "invalid_token"));
    for id in &ids {
        let id = id.as_str().unwrap();
        let outcome = api(reqwest::Method::POST, &format!("/notifiers/{id}/test"))
            .send()
            .await
            .unwrap();
        responses.push_str(&outcome.text().await.unwrap());
        let view = api(reqwest::Method::GET, &format!("/notifiers/{id}"))
            .send()
            .await
            .unwrap();
        responses.push_str(&view.text().await.unwrap());
    }
    for path in ["/notifiers", "/webhooks", "/incidents"] {
        let r = api(reqwest::Method::GET, path).send().await.unwrap();
        responses.push_str(&r.text().await.unwrap());
    }

    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let end = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < end, "upwatch did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let logs = stdout.join().unwrap() + &stderr.join().unwrap();
    assert!(
        logs.contains("alert delivered") && logs.contains("refused for good"),
        "the logs cover deliveries and refusals: {logs}"
    );
    for secret in [
        API_TOKEN,
        DISCORD_TOKEN,
        SLACK_PATH,
        "slacksecret0123",
        BOT_TOKEN,
        "telegram-bot-token-secret",
        HMAC_KEY,
        "header-value-secret",
        ROUTING_KEY,
    ] {
        assert!(!logs.contains(secret), "a log line holds `{secret}`");
        assert!(!responses.contains(secret), "a response holds `{secret}`");
    }
}
