//! Three regions, `a`, `b` and `c`, each a worker process of its own, checking one loopback
//! site that answers 500 to the probes of region `c` (their User-Agent names the region).
//! With a quorum of 2 the monitor stays up and shows `c` down; when the site fails for all,
//! one down alert names the three; and when region `c` loses its proxy (its connectivity
//! target sits behind the same proxy), its results turn inconclusive and nothing alerts, not
//! even for a monitor whose quorum is 1.

use std::time::Duration;

use serde_json::{json, Value};
use upwatch_testkit::discord::DiscordReceiver;
use upwatch_testkit::proxy::ProxyServer;
use upwatch_testkit::target::TargetServer;
use uuid::Uuid;

use crate::fleet::{eventually, Api, Fleet};

/// The status of `region` in the monitor's live status.
fn region_status(status: &Value, region: &str) -> Option<String> {
    status["regions"]
        .as_array()?
        .iter()
        .find(|r| r["region"] == region)
        .and_then(|r| r["status"].as_str())
        .map(str::to_string)
}

async fn wait_regions(api: &Api, id: Uuid, want: &[(&str, &str)], overall: &str) -> Value {
    eventually(&format!("regions {want:?}, overall {overall}"), || async {
        let status = api.status(id).await;
        let all = want
            .iter()
            .all(|(r, s)| region_status(&status, r).as_deref() == Some(*s));
        (all && status["status"] == overall).then_some(status)
    })
    .await
}

async fn readyz(client: &reqwest::Client, base: &str) -> Option<(u16, String)> {
    let response = client.get(format!("{base}/readyz")).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regions_vote_and_a_region_without_network_stays_out_of_it() {
    let site = TargetServer::start().await;
    site.fail_for_user_agent("(region c)");
    let beacon = TargetServer::start().await;
    let proxy = ProxyServer::start().await;
    let discord = DiscordReceiver::start().await;
    let mut fleet = Fleet::new(Some(&discord.url())).await;
    fleet.set_env("UPWATCH_REGIONS", "a,b,c");
    let mut procs = vec![
        fleet.spawn("alerter"),
        fleet.spawn("logger"),
        fleet.spawn("cache-updater"),
        fleet.spawn_with("worker", &[("UPWATCH_REGION", "a")]),
        fleet.spawn_with("worker", &[("UPWATCH_REGION", "b")]),
    ];
    let proxy_url = proxy.url();
    let beacon_url = beacon.url("/");
    let mut worker_c = fleet.spawn_listening_with(
        "worker",
        &[
            ("UPWATCH_REGION", "c"),
            ("UPWATCH_CHECK_PROXY", &proxy_url),
            ("UPWATCH_CONNECTIVITY_TARGETS", &beacon_url),
            ("UPWATCH_CONNECTIVITY_INTERVAL", "1s"),
        ],
    );
    procs.push(fleet.spawn("scheduler"));
    procs.push(fleet.spawn("api"));
    let api = Api::of(procs.last().unwrap()).await;
    let worker_c_base = format!("http://{}", worker_c.listen_addr().await);

    let id = api
        .create_site(
            json!({"name": "Shop", "url": site.url("/switch?shop"), "interval_seconds": 1,
                            "timeout_seconds": 1, "quorum": 2}),
        )
        .await;
    // Region c alone checks this one, and one region is enough to call it down.
    let only_c = api
        .create_site(
            json!({"name": "Only C", "url": beacon.url("/ok"), "interval_seconds": 1,
                            "timeout_seconds": 1, "regions": ["c"], "quorum": 1}),
        )
        .await;

    wait_regions(&api, only_c, &[("c", "up")], "up").await;
    let status = wait_regions(&api, id, &[("a", "up"), ("b", "up"), ("c", "down")], "up").await;
    assert_eq!(status["regions"].as_array().unwrap().len(), 3, "{status}");
    let c = status["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["region"] == "c")
        .unwrap();
    assert_eq!(c["error"]["kind"], "status_mismatch", "{status}");
    assert!(
        proxy
            .requests()
            .iter()
            .any(|r| r.target.contains("/switch?shop")),
        "region c checks through its proxy"
    );
    // History can be read per region (once the logger has stored some of c's results).
    let url = format!("{}/api/v1/sites/{id}/history?region=c&limit=50", api.base);
    let history: Value = eventually("region c's results in history", || async {
        let h: Value = api.client.get(&url).send().await.ok()?.json().await.ok()?;
        (!h["items"].as_array()?.is_empty()).then_some(h)
    })
    .await;
    let items = history["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .all(|r| r["region"] == "c" && r["status"] == "down"),
        "{history}"
    );
    assert!(discord.messages().is_empty(), "c alone is below the quorum");

    // The site fails for every region: one alert, naming the three regions. It goes out when
    // the second region sees the site down (c, and a or b), so the third may still be up.
    site.set_status(500);
    let down = discord.wait_for_messages(1, Duration::from_secs(90)).await;
    let text = down[0].to_string();
    assert!(text.contains("Shop"), "{text}");
    assert!(
        [
            "down from a, b, c",
            "down from a, c; up from b",
            "down from b, c; up from a"
        ]
        .iter()
        .any(|words| text.contains(words)),
        "the alert names the three regions: {text}"
    );
    wait_regions(
        &api,
        id,
        &[("a", "down"), ("b", "down"), ("c", "down")],
        "down",
    )
    .await;
    let shop_alerts = |messages: &[Value]| {
        messages
            .iter()
            .filter(|m| m.to_string().contains("Shop"))
            .count()
    };
    assert_eq!(
        shop_alerts(&discord.messages()),
        1,
        "one alert per transition, not per region"
    );

    // Back for everyone, region c included.
    site.set_status(200);
    site.clear_user_agent_failures();
    wait_regions(&api, id, &[("a", "up"), ("b", "up"), ("c", "up")], "up").await;
    let both = discord.wait_for_messages(2, Duration::from_secs(90)).await;
    let recovery = both[1].to_string();
    assert!(
        recovery.contains("Shop") && recovery.contains("Recovery"),
        "{recovery}"
    );
    let settled = discord.messages().len();
    assert_eq!(settled, 2, "one down and one recovery alert, nothing else");

    // Region c loses its proxy: its checks and its connectivity target both fail.
    proxy.stop().await;
    let (code, body) = eventually("worker c's /readyz to say it lost its network", || async {
        let (code, body) = readyz(&api.client, &worker_c_base).await?;
        (code == 503).then_some((code, body))
    })
    .await;
    assert_eq!(code, 503);
    assert!(
        body.contains("Region c") && body.contains("connectivity"),
        "{body}"
    );
    wait_regions(
        &api,
        id,
        &[("a", "up"), ("b", "up"), ("c", "inconclusive")],
        "up",
    )
    .await;
    let status = wait_regions(&api, only_c, &[("c", "inconclusive")], "up").await;
    let c = &status["regions"][0];
    assert_eq!(c["error"]["kind"], "local_network", "{status}");
    // Several more intervals pass: nothing alerts, not even the monitor with quorum 1.
    let history_len = |items: &Value| items["items"].as_array().map_or(0, Vec::len);
    let url = format!(
        "{}/api/v1/sites/{only_c}/history?region=c&limit=200",
        api.base
    );
    eventually("five inconclusive results of Only C", || async {
        let h: Value = api.client.get(&url).send().await.ok()?.json().await.ok()?;
        let n = h["items"]
            .as_array()?
            .iter()
            .filter(|r| r["status"] == "inconclusive")
            .count();
        (n >= 5 && history_len(&h) > 0).then_some(())
    })
    .await;
    assert_eq!(
        discord.messages().len(),
        settled,
        "no alert while region c is blind: {:?}",
        &discord.messages()[settled..]
    );
    assert!(
        worker_c.log().contains("network lost"),
        "the worker says so in its log"
    );

    worker_c.stop();
    for p in procs.iter_mut().rev() {
        p.stop();
    }
    fleet.cleanup().await;
}
