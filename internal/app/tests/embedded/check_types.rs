//! One monitor of every check type in one `upwatch serve`: each against its own loopback
//! server, with the certificate alert of a TLS monitor and the heartbeats of a push monitor.

use std::time::Duration;

use serde_json::{json, Value};
use upwatch_testkit::discord::DiscordReceiver;
use upwatch_testkit::every_type::EveryType;

use crate::helpers::{eventually, spawn_app_in, TestApp};

async fn status(app: &TestApp, id: &str) -> Value {
    app.get_json(&format!("/api/v1/sites/{id}/status")).await
}

async fn wait_status(app: &TestApp, id: &str, want: &str) -> Value {
    eventually(&format!("{id} to be {want}"), || async {
        let s = status(app, id).await;
        (s["status"] == want).then_some(s)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_type_runs_in_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let servers = EveryType::start(dir.path()).await;
    let (target, tcp, tls, dns) = (&servers.http, &servers.tcp, &servers.tls, &servers.dns);
    let discord = DiscordReceiver::start().await;
    let app = spawn_app_in(
        dir.path(),
        &[
            ("DISCORD_WEBHOOK_URL", &discord.url()),
            ("UPWATCH_CHECK_CA_FILE", servers.ca_path()),
        ],
    )
    .await;

    let http = app
        .create_site(json!({
            "name": "web", "url": target.url("/echo"), "interval_seconds": 1,
            "conditions": ["[STATUS] == 200", "[BODY].method == GET", "[RESPONSE_TIME] < 5000"]
        }))
        .await;
    let tcp_id = app
        .create_site(json!({"name": "db port", "url": tcp.url(), "interval_seconds": 1}))
        .await;
    let tls_id = app
        .create_site(json!({"name": "mail tls", "url": tls.url(), "interval_seconds": 1}))
        .await;
    let icmp = app
        .create_site(json!({"name": "gateway", "url": "icmp://127.0.0.1", "interval_seconds": 2, "packets": 2}))
        .await;
    let dns_id = app
        .create_site(json!({
            "name": "dns", "url": dns.url(), "interval_seconds": 1,
            "dns": {"query_name": upwatch_testkit::every_type::DNS_NAME, "query_type": "A"},
            "conditions": [format!("[BODY] == {}", upwatch_testkit::every_type::DNS_ADDRESS)]
        }))
        .await;
    let push = app
        .post(
            "/api/v1/sites",
            json!({"name": "nightly job", "type": "push", "interval_seconds": 2, "push_grace_seconds": 0}),
        )
        .await;
    assert_eq!(push.status(), 201);
    let push: Value = push.json().await.unwrap();
    let push_id = push["id"].as_str().unwrap().to_string();
    let push_url = push["push_url"].as_str().unwrap().to_string();

    for id in [&http, &tcp_id, &dns_id] {
        wait_status(&app, id, "up").await;
    }
    assert!(tcp.accepted() > 0, "the TCP check connected");
    assert!(dns.queries() > 0, "the DNS check asked the resolver");

    // TLS: up, with the certificate's expiry shown and one alert about it.
    let tls_status = wait_status(&app, &tls_id, "up").await;
    let expires: chrono::DateTime<chrono::Utc> = tls_status["certificate_expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let left = expires - chrono::Utc::now();
    assert!(
        left <= chrono::Duration::days(5) && left > chrono::Duration::days(4),
        "{left}"
    );
    let alerts = discord.wait_for_messages(1, Duration::from_secs(30)).await;
    let content = alerts[0]["content"].as_str().unwrap();
    assert!(
        content.starts_with("🟠 Certificate Expiry Alert\nSite: mail tls (tls://127.0.0.1:"),
        "{content}"
    );
    assert!(
        content.contains("Certificate: expires in 4 days"),
        "{content}"
    );

    // ICMP: up where this process may open ICMP sockets, else down saying why.
    let icmp_status = eventually("an icmp result", || async {
        let s = status(&app, &icmp).await;
        (s["status"] != "pending").then_some(s)
    })
    .await;
    if icmp_status["status"] == "down" {
        assert_eq!(
            icmp_status["error"]["kind"], "icmp_unavailable",
            "{icmp_status}"
        );
    } else {
        assert_eq!(icmp_status["status"], "up", "{icmp_status}");
    }

    // Push: a push makes it up; silence past the interval is a missed heartbeat, which
    // alerts as a down; the next push recovers it.
    let pushed = app.client.get(app.url(&push_url)).send().await.unwrap();
    assert_eq!(pushed.status(), 200);
    wait_status(&app, &push_id, "up").await;
    let down = wait_status(&app, &push_id, "down").await;
    assert_eq!(down["error"]["kind"], "missed_heartbeat", "{down}");
    let messages = discord.wait_for_messages(2, Duration::from_secs(30)).await;
    let missed = messages[1]["content"].as_str().unwrap();
    assert!(
        missed.starts_with("🔴 Website Down Alert\nSite: nightly job (push monitor)"),
        "{missed}"
    );
    assert!(
        missed.contains("missed_heartbeat: no push within 2s"),
        "{missed}"
    );
    assert!(
        !missed.contains(push_url.rsplit('/').next().unwrap()),
        "the token stays out of alerts"
    );
    let pushed = app.client.post(app.url(&push_url)).send().await.unwrap();
    assert_eq!(pushed.status(), 200);
    let messages = discord.wait_for_messages(3, Duration::from_secs(30)).await;
    assert!(
        messages[2]["content"]
            .as_str()
            .unwrap()
            .starts_with("🟢 Website Recovery Alert\nSite: nightly job"),
        "{}",
        messages[2]["content"]
    );

    // The certificate alert went once, not at every check.
    let certificate_alerts = discord
        .messages()
        .iter()
        .filter(|m| {
            m["content"]
                .as_str()
                .unwrap_or_default()
                .contains("Certificate Expiry")
        })
        .count();
    assert_eq!(certificate_alerts, 1);
    // Every type shows its type.
    for (id, kind) in [
        (&http, "http"),
        (&tcp_id, "tcp"),
        (&tls_id, "tls"),
        (&icmp, "icmp"),
        (&dns_id, "dns"),
        (&push_id, "push"),
    ] {
        assert_eq!(
            app.get_json(&format!("/api/v1/sites/{id}")).await["type"],
            kind
        );
    }
    app.stop().await.unwrap();
}
