//! `upwatch serve` whose SQLite disk fills up for a while. What users rely on: the process
//! neither exits nor panics; `/readyz` answers 503 naming the database while it refuses
//! writes; the live status is still served from memory; the results are held and retried, not
//! dropped, and what is held stays bounded (the checks pause, held back by the in-process bus,
//! instead of piling results up in memory); once space is back the pipeline resumes by
//! itself, ready again within 30 s, and every check made is stored exactly once, with no
//! alert sent for sites that stayed up.
//!
//! The database lives on a small tmpfs that the test fills with a file until the kernel says
//! ENOSPC (SQLite's `SQLITE_FULL`), then deletes the file. Mounting needs root: the test fails,
//! saying so, when it cannot mount.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use upwatch_store::{HistoryQuery, Store};
use upwatch_testkit::discord::DiscordReceiver;
use upwatch_testkit::target::TargetServer;
use uuid::Uuid;

use crate::helpers::{eventually, spawn_app_in, TestApp};

/// Monitors, each checked every second on a site of its own.
const MONITORS: usize = 20;
/// Messages each consumer group's queue of the in-process bus holds.
const QUEUE: usize = 100;
/// The logger's (and the alerter's) largest batch.
const BATCH: usize = 50;
/// How long the disk stays full, at least.
const FULL_FOR: Duration = Duration::from_secs(12);
/// The size of the tmpfs: room for the database, small enough to fill at once.
const TMPFS_SIZE: &str = "32m";

/// A tmpfs mounted on a fresh temporary directory, unmounted when dropped (lazily when the
/// database is still open, as after a failed assertion).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("a mount point");
        let output = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .expect("run mount(8)");
        assert!(
            output.status.success(),
            "this test mounts a {size} tmpfs to fill the database's disk, which needs root \
             (CAP_SYS_ADMIN): `mount -t tmpfs` on {} failed: {}",
            dir.path().display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (the application was not stopped): detach it now, freed on last close.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Fills the file system of `dir` with a file until writing fails with ENOSPC; returns the
/// file, whose removal gives the space back.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("create the filler");
    // Large writes first, then page by page for the last bytes.
    for chunk in [1 << 20, 4096, 512] {
        let buf = vec![0u8; chunk];
        loop {
            match file.write(&buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("cannot write the filler: {e}"),
            }
        }
    }
    path
}

/// The live status of `id` as the API serves it.
async fn live(app: &TestApp, id: &str) -> Value {
    app.get_json(&format!("/api/v1/sites/{id}/status")).await
}

/// Every check the sites have answered.
fn checks(sites: &[TargetServer]) -> u64 {
    sites.iter().map(|s| s.hits("/ok")).sum()
}

/// The results stored for `id`, read from the store.
async fn stored(store: &Arc<dyn Store>, id: &str) -> Vec<Uuid> {
    let query = HistoryQuery {
        limit: 100_000,
        ..HistoryQuery::default()
    };
    let id = Uuid::parse_str(id).unwrap();
    let entries = store.history(id, &query).await.expect("history reads");
    entries.iter().map(|e| e.id).collect()
}

async fn stored_total(store: &Arc<dyn Store>, ids: &[String]) -> u64 {
    let mut total = 0;
    for id in ids {
        total += stored(store, id).await.len() as u64;
    }
    total
}

/// Counts the panics of this process (nextest runs each test in a process of its own), still
/// printing them as usual.
fn count_panics() -> Arc<AtomicUsize> {
    let panics = Arc::new(AtomicUsize::new(0));
    let counted = panics.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counted.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
    panics
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_holds_results_and_loses_none() {
    let panics = count_panics();
    let tmpfs = Tmpfs::mount(TMPFS_SIZE);
    let discord = DiscordReceiver::start().await;
    let mut sites = Vec::new();
    for _ in 0..MONITORS {
        sites.push(TargetServer::start().await);
    }
    let queue = QUEUE.to_string();
    let batch = BATCH.to_string();
    let app = spawn_app_in(
        tmpfs.path(),
        &[
            ("DISCORD_WEBHOOK_URL", &discord.url()),
            ("UPWATCH_QUEUE_CAPACITY", &queue),
            ("UPWATCH_LOGGER_BATCH_SIZE", &batch),
            ("UPWATCH_ALERTER_BATCH_SIZE", &batch),
            // The checks pause while the disk is full; the watchdog would rightly report the
            // monitors unchecked after 16 s. This test is about the results, not the watchdog.
            ("UPWATCH_STALE_AFTER_INTERVALS", "60"),
        ],
    )
    .await;
    let store = app.store.clone();
    let urls: Vec<String> = sites.iter().map(|site| site.url("/ok")).collect();
    let ids = app.create_sites_up(&urls).await;
    assert_eq!(app.readyz().await.0, 200, "ready before the disk fills");

    // The disk fills up.
    let filler = fill(tmpfs.path());
    let full_since = Instant::now();
    let body = eventually("/readyz to say the database refuses writes", || async {
        let (code, body) = app.readyz().await;
        (code == 503).then_some(body)
    })
    .await;
    assert!(
        body.contains("database"),
        "/readyz names the database: {body}"
    );
    assert!(!app.task.is_finished(), "the process keeps running");

    // The live status is still served and still moves, from memory.
    let before: Vec<Value> = live_all(&app, &ids).await;
    for (id, then) in ids.iter().zip(&before) {
        eventually(
            "the live status to move on while the disk is full",
            || async {
                let now = live(&app, id).await;
                (now["last_checked"] != then["last_checked"] && now["status"] == "up").then_some(())
            },
        )
        .await;
    }

    // Results are held, not dropped, and what is held is bounded: the logger takes no more
    // while its batch is refused, the bus's queues fill, and the workers wait to publish, so
    // the checks pause instead of piling results up in memory.
    let paused_at = eventually("the checks to pause, held back by the bus", {
        let mut last = (checks(&sites), Instant::now());
        let sites = &sites;
        move || {
            let now = checks(sites);
            if now != last.0 {
                last = (now, Instant::now());
            }
            let paused = last.1.elapsed() >= Duration::from_secs(3);
            async move { paused.then_some(now) }
        }
    })
    .await;
    let stored_while_full = stored_total(&store, &ids).await;
    let held = paused_at - stored_while_full;
    // Per group: one batch being retried and a full queue; plus one check per monitor whose
    // worker waits to publish its result.
    let bound = (BATCH + QUEUE + MONITORS) as u64;
    assert!(
        held >= QUEUE as u64 && held <= bound,
        "{held} results held while the disk is full ({paused_at} checks made, \
         {stored_while_full} stored): at least a queue's worth, at most {bound}"
    );
    // However long the disk stays full, the pause holds: no more checks, nothing more held.
    while full_since.elapsed() < FULL_FOR {
        assert_eq!(
            checks(&sites),
            paused_at,
            "the checks stay paused while full"
        );
        assert!(!app.task.is_finished(), "the process keeps running");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(stored_total(&store, &ids).await, stored_while_full);
    let (code, body) = app.readyz().await;
    assert_eq!(code, 503, "still not ready while full: {body}");
    for id in &ids {
        let status = live(&app, id).await;
        assert_eq!(
            status["status"], "up",
            "the live status is served: {status}"
        );
    }
    assert!(!app.task.is_finished(), "the process keeps running");
    let full_for = full_since.elapsed();

    // Space is back: the pipeline resumes by itself.
    std::fs::remove_file(&filler).expect("remove the filler");
    let back = Instant::now();
    eventually("/readyz to be ready again", || async {
        (app.readyz().await.0 == 200).then_some(())
    })
    .await;
    let ready_after = back.elapsed();
    assert!(
        ready_after < Duration::from_secs(30),
        "ready {ready_after:?} after the space came back"
    );
    eventually("the checks to carry on", || async {
        (checks(&sites) >= paused_at + 2 * MONITORS as u64).then_some(())
    })
    .await;
    let after: Vec<Value> = live_all(&app, &ids).await;
    for (id, then) in ids.iter().zip(&after) {
        eventually("the live status to move on again", || async {
            let now = live(&app, id).await;
            (now["last_checked"] != then["last_checked"] && now["status"] == "up").then_some(())
        })
        .await;
    }

    // Nothing in flight: every check made is stored, exactly once.
    assert!(!app.task.is_finished(), "the process kept running");
    app.stop().await.expect("the application stops cleanly");
    for (i, (id, site)) in ids.iter().zip(&sites).enumerate() {
        let results = stored(&store, id).await;
        let unique: std::collections::HashSet<_> = results.iter().collect();
        assert_eq!(
            unique.len(),
            results.len(),
            "site {i}: no result stored twice"
        );
        assert_eq!(
            results.len() as u64,
            site.hits("/ok"),
            "site {i}: every check made is stored"
        );
    }
    assert!(
        discord.messages().is_empty(),
        "no alert for sites that stayed up: {:?}",
        discord.messages()
    );
    assert_eq!(panics.load(Ordering::SeqCst), 0, "nothing panicked");
    eprintln!(
        "disk full for {full_for:?}: {held} results held while paused, ready {ready_after:?} \
         after the space came back, {} checks made and stored",
        checks(&sites)
    );
    // Close the database before unmounting its disk.
    drop(store);
    drop(tmpfs);
}

/// The live status of every monitor.
async fn live_all(app: &TestApp, ids: &[String]) -> Vec<Value> {
    let mut statuses = Vec::new();
    for id in ids {
        statuses.push(live(app, id).await);
    }
    statuses
}
