//! History kept by the running application: incidents follow the state machine across a
//! restart, and rollups count every stored result.

use serde_json::json;
use upwatch_core::rollup::{Resolution, RollupRun};
use upwatch_store::{IncidentQuery, Store};
use upwatch_testkit::target::TargetServer;
use uuid::Uuid;

use crate::helpers::{eventually, spawn_app_in};

async fn incidents_of(store: &dyn Store, id: Uuid) -> Vec<upwatch_store::Incident> {
    store
        .incidents(&IncidentQuery {
            monitor_id: Some(id),
            limit: 10,
            ..IncidentQuery::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn an_incident_opened_before_a_restart_is_closed_by_the_recovery_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let target = TargetServer::start().await;
    let app = spawn_app_in(dir.path(), &[]).await;
    let id: Uuid = app
        .create_site(json!({"url": target.url("/switch"), "interval_seconds": 1}))
        .await
        .parse()
        .unwrap();
    eventually("the site to be up", || async {
        (app.status_of(&id.to_string()).await == "up").then_some(())
    })
    .await;
    assert!(incidents_of(app.store.as_ref(), id).await.is_empty());

    target.set_status(503);
    let opened = eventually("an incident to open", || async {
        incidents_of(app.store.as_ref(), id)
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(opened.ended_at, None);
    assert_eq!(opened.status_code, Some(503));
    assert!(opened.first_error.is_some());
    app.stop().await.expect("a clean exit");

    let app = spawn_app_in(dir.path(), &[]).await;
    assert_eq!(
        incidents_of(app.store.as_ref(), id).await,
        vec![opened.clone()],
        "the open incident survives the restart"
    );
    target.set_status(200);
    let closed = eventually("the incident to close", || async {
        incidents_of(app.store.as_ref(), id)
            .await
            .into_iter()
            .find(|i| i.ended_at.is_some())
    })
    .await;
    assert_eq!(closed.id, opened.id, "the same incident, not a new one");
    assert!(closed.ended_at.unwrap() > closed.started_at);
    assert_eq!(incidents_of(app.store.as_ref(), id).await.len(), 1);

    // Every stored result is counted once in its day's rollup.
    let store = app.store.clone();
    app.stop().await.expect("a clean exit");
    let history = store
        .history(
            id,
            &upwatch_store::HistoryQuery {
                limit: 10_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let first = history.last().unwrap().checked_at;
    let last = history.first().unwrap().checked_at;
    let days = store
        .rollups(
            &[id],
            &[RollupRun {
                resolution: Resolution::Day,
                from: Resolution::Day.bucket_start(first),
                to: last + Resolution::Day.duration(),
            }],
        )
        .await
        .unwrap();
    let (checks, down): (u32, u32) = days
        .iter()
        .fold((0, 0), |(c, d), r| (c + r.rollup.checks, d + r.rollup.down));
    assert_eq!(checks as usize, history.len());
    let down_in_history = history
        .iter()
        .filter(|e| e.status == upwatch_core::CheckStatus::Down)
        .count();
    assert_eq!(down as usize, down_in_history);
    assert!(down >= 1);
}

/// The API's `uptime_24h` and the dashboard's and the monitor page's 24-hour uptime are one
/// figure (one definition, one memo in the service layer), for the same monitor at the same
/// moment. The failures sit just inside the last 24 hours, early in an hour that a window of
/// whole hours ("this hour and the 23 before it", what the pages once used) would mostly
/// leave out.
#[tokio::test]
async fn the_api_and_the_pages_show_the_same_24_hour_uptime() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(dir.path(), &[]).await;
    // Paused: nothing checks it, so the results written below are all it has.
    let id: Uuid = app
        .create_site(json!({"url": "http://127.0.0.1:9/", "enabled": false}))
        .await
        .parse()
        .unwrap();
    let monitor = app.store.get_monitor(id).await.unwrap().expect("created");
    let now = chrono::Utc::now();
    let mut results = Vec::new();
    for i in 0..10 {
        let at = now - chrono::TimeDelta::hours(24) + chrono::TimeDelta::minutes(2 + i);
        results.push(upwatch_core::CheckResult::simulated(
            &monitor, at, false, 100,
        ));
    }
    for i in 0..30 {
        let at = now - chrono::TimeDelta::minutes(1 + i);
        results.push(upwatch_core::CheckResult::simulated(&monitor, at, true, 50));
    }
    assert_eq!(app.store.insert_results(&results).await.unwrap(), 40);

    let status = app.get_json(&format!("/api/v1/sites/{id}/status")).await;
    let api = status["uptime_24h"]
        .as_f64()
        .expect("an uptime over 24 hours");
    assert_eq!(api, 75.0, "{status}");
    let shown = format!("{api:.2}%");

    let dashboard = app.get_text("/").await;
    let row_start = dashboard
        .find(&format!("<tr id=\"{id}\""))
        .unwrap_or_else(|| panic!("the dashboard lists {id}: {dashboard}"));
    let row = &dashboard[row_start..];
    let row = &row[..row.find("</tr>").expect("the row ends")];
    let cells: Vec<&str> = row
        .split("<td class=\"num\">")
        .skip(1)
        .map(|cell| &cell[..cell.find("</td>").expect("the cell ends")])
        .collect();
    assert_eq!(cells.first(), Some(&shown.as_str()), "dashboard row: {row}");

    let page = app.get_text(&format!("/sites/{id}")).await;
    assert!(
        page.contains(&format!("<dt>Uptime 24 h</dt><dd>{shown}</dd>")),
        "the monitor page shows {shown}: {page}"
    );
    app.stop().await.expect("a clean exit");
}
