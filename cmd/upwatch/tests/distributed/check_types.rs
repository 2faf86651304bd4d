//! One monitor of every check type across a fleet of processes: workers probe TCP, TLS, ICMP
//! and DNS servers on loopback, the API publishes a push monitor's pushes onto Kafka, the
//! scheduler's watchdog records its missed heartbeats, and the alerter sends the certificate
//! alert of the TLS monitor.

use std::time::Duration;

use serde_json::{json, Value};
use upwatch_testkit::discord::DiscordReceiver;
use upwatch_testkit::every_type::{EveryType, DNS_NAME};
use uuid::Uuid;

use crate::fleet::{eventually, Api, Fleet};

async fn wait_status(api: &Api, id: Uuid, want: &str) -> Value {
    eventually(&format!("{id} to be {want}"), || async {
        let s = api.status(id).await;
        (s["status"] == want).then_some(s)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_type_runs_across_the_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let servers = EveryType::start(dir.path()).await;
    let (target, tcp, tls, dns) = (&servers.http, &servers.tcp, &servers.tls, &servers.dns);
    let discord = DiscordReceiver::start().await;
    let mut fleet = Fleet::new(Some(&discord.url())).await;
    let ca = servers.ca_path();
    let mut procs = fleet.spawn_every_role(&[("UPWATCH_CHECK_CA_FILE", ca)]);
    let api = Api::of(procs.last().unwrap()).await;

    let http = api
        .create_site(json!({"url": target.url("/ok"), "interval_seconds": 1,
            "conditions": ["[STATUS] < 300", "[BODY] == pat(*upwatch*)"]}))
        .await;
    let tcp_id = api
        .create_site(json!({"url": tcp.url(), "interval_seconds": 1}))
        .await;
    let tls_id = api
        .create_site(json!({"name": "mail tls", "url": tls.url(), "interval_seconds": 1}))
        .await;
    let icmp = api
        .create_site(json!({"url": "icmp://127.0.0.1", "interval_seconds": 2, "packets": 2}))
        .await;
    let dns_id = api
        .create_site(json!({"url": dns.url(), "interval_seconds": 1,
            "dns": {"query_name": DNS_NAME, "query_type": "A"}}))
        .await;

    for id in [http, tcp_id, dns_id] {
        wait_status(&api, id, "up").await;
    }
    let tls_status = wait_status(&api, tls_id, "up").await;
    assert!(
        tls_status["certificate_expires_at"].is_string(),
        "{tls_status}"
    );
    let icmp_status = eventually("an icmp result", || async {
        let s = api.status(icmp).await;
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
    let certificate = discord.wait_for_messages(1, Duration::from_secs(60)).await;
    assert!(
        certificate[0]["content"]
            .as_str()
            .unwrap()
            .starts_with("🟠 Certificate Expiry Alert\nSite: mail tls"),
        "{}",
        certificate[0]
    );

    // Made only now: a push monitor that hears nothing for its interval plus grace (3 s)
    // alerts, and that alert must not come before the certificate's.
    let push = api
        .client
        .post(format!("{}/api/v1/sites", api.base))
        .json(&json!({"name": "backup", "type": "push", "interval_seconds": 2, "push_grace_seconds": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(push.status(), 201);
    let push: Value = push.json().await.unwrap();
    let push_id: Uuid = push["id"].as_str().unwrap().parse().unwrap();
    let push_url = format!("{}{}", api.base, push["push_url"].as_str().unwrap());
    // The push goes through Kafka to the cache updater; its silence is a missed heartbeat
    // that the scheduler's watchdog publishes, and the alerter sends.
    let pushed = api.client.get(&push_url).send().await.unwrap();
    assert_eq!(pushed.status(), 200);
    wait_status(&api, push_id, "up").await;
    let down = wait_status(&api, push_id, "down").await;
    assert_eq!(down["error"]["kind"], "missed_heartbeat", "{down}");
    let messages = discord.wait_for_messages(2, Duration::from_secs(60)).await;
    assert!(
        messages[1]["content"]
            .as_str()
            .unwrap()
            .starts_with("🔴 Website Down Alert\nSite: backup (push monitor)"),
        "{}",
        messages[1]
    );

    for proc in procs.iter_mut() {
        proc.stop();
    }
    fleet.cleanup().await;
}
