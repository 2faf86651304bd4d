//! A maintenance window created through the API process silences the alerter process: the
//! site goes down inside the window with no alert, shows `maintenance`, and alerts once when
//! the window ends with the site still down.

use std::time::Duration;

use serde_json::json;
use upwatch_testkit::discord::DiscordReceiver;
use upwatch_testkit::target::TargetServer;

use crate::fleet::{eventually, Api, Fleet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_made_through_the_api_silences_the_alerter() {
    let target = TargetServer::start().await;
    let discord = DiscordReceiver::start().await;
    let mut fleet = Fleet::new(Some(&discord.url())).await;
    let mut procs = fleet.spawn_every_role(&[]);
    let api = Api::of(procs.last().unwrap()).await;
    let id = api
        .create_site(json!({"name": "Shop", "url": target.url("/switch"), "interval_seconds": 1}))
        .await;
    eventually("the shop to be up", || async {
        (api.status(id).await["status"] == "up").then_some(())
    })
    .await;

    // A window from now for 8 s; the site fails inside it.
    let end = chrono::Utc::now() + chrono::Duration::seconds(8);
    let created = api
        .client
        .post(format!("{}/api/v1/maintenances", api.base))
        .json(&json!({
            "title": "shop upgrade", "monitor_ids": [id],
            "start": chrono::Utc::now().to_rfc3339(), "end": end.to_rfc3339()
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{:?}", created.text().await);
    // Within the scheduler's reload period (200 ms here) the checks are marked.
    eventually("the shop in maintenance", || async {
        (api.status(id).await["status"] == "maintenance").then_some(())
    })
    .await;
    target.set_status(500);
    // Results of the failing site inside the window: stored, shown as maintenance, silent.
    eventually("failed checks inside the window", || async {
        let s = api.status(id).await;
        (s["status"] == "maintenance" && s["status_code"] == 500).then_some(())
    })
    .await;
    assert!(
        discord.messages().is_empty(),
        "nothing alerts inside the window: {:?}",
        discord.messages()
    );

    // The window ends with the site still down: one down alert.
    let alerts = discord.wait_for_messages(1, Duration::from_secs(60)).await;
    assert!(
        alerts[0]["content"]
            .as_str()
            .unwrap()
            .starts_with("🔴 Website Down Alert\nSite: Shop"),
        "{}",
        alerts[0]
    );
    assert!(chrono::Utc::now() >= end, "the alert came after the window");
    eventually("the shop down", || async {
        (api.status(id).await["status"] == "down").then_some(())
    })
    .await;
    assert_eq!(discord.messages().len(), 1, "exactly one alert");

    for proc in procs.iter_mut() {
        proc.stop();
    }
    fleet.cleanup().await;
}
