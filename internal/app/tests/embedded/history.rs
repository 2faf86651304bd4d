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
