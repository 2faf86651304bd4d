//! The result log: idempotent storage, history pages, rollups and pruning ([`ResultLog`](crate::ResultLog), [`HistoryReader`](crate::HistoryReader)).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use upwatch_core::rollup::{rollup_keys, Cutoffs, Resolution, Rollup, RollupRun};
use upwatch_core::{CheckResult, CheckStatus, Monitor};
use uuid::Uuid;

use crate::{HistoryEntry, HistoryQuery, IncidentQuery, Pruned, Store};

use super::*;

/// Storing results is idempotent on their id, within a batch and across batches.
pub async fn results_are_idempotent(store: &dyn Store) {
    let m = monitor("http://127.0.0.1:50/");
    store.insert_monitor(&m).await.unwrap();
    let r: Vec<CheckResult> = (1..=5).map(|i| result(&m, i, i % 2 == 0)).collect();

    assert_eq!(store.insert_results(&[]).await.unwrap(), 0);
    assert_eq!(store.insert_results(&r[..3]).await.unwrap(), 3);
    assert_eq!(
        store
            .insert_results(&[r[1].clone(), r[3].clone(), r[0].clone()])
            .await
            .unwrap(),
        1,
        "only the new result counts"
    );
    assert_eq!(
        store
            .insert_results(&[r[4].clone(), r[4].clone()])
            .await
            .unwrap(),
        1
    );
    let history = store.history(m.id, &query(100)).await.unwrap();
    let expected: Vec<HistoryEntry> = r.iter().rev().map(entry).collect();
    assert_eq!(history, expected);
}

/// History is newest first by (checked_at, id); `since` is inclusive, `until` exclusive, the
/// cursor continues strictly after the entry it names, and `limit` bounds a page.
pub async fn history_pages_newest_first(store: &dyn Store) {
    let m = monitor("http://127.0.0.1:60/");
    let other = monitor("http://127.0.0.1:61/");
    store.insert_monitor(&m).await.unwrap();
    store.insert_monitor(&other).await.unwrap();
    // Two results share t(30), checked by two regions, so that the id decides their order.
    let results = vec![
        result(&m, 10, true),
        result(&m, 20, false),
        result(&m, 30, true),
        result(&m, 30, false).with_region("eu"),
        result(&m, 40, true),
        result(&m, 50, false),
    ];
    assert_eq!(store.insert_results(&results).await.unwrap(), 6);
    store
        .insert_results(&[result(&other, 35, true)])
        .await
        .unwrap();
    let mut newest_first: Vec<HistoryEntry> = results.iter().map(entry).collect();
    newest_first.sort_by_key(|e| std::cmp::Reverse((e.checked_at, e.id)));

    assert_eq!(
        store.history(m.id, &query(100)).await.unwrap(),
        newest_first
    );
    assert!(store
        .history(Uuid::now_v7(), &query(100))
        .await
        .unwrap()
        .is_empty());

    // Pages of three split the two results of t(30).
    let page1 = store.history(m.id, &query(3)).await.unwrap();
    assert_eq!(page1, newest_first[..3]);
    let next = HistoryQuery {
        after: Some(cursor(&page1[2])),
        ..query(3)
    };
    let page2 = store.history(m.id, &next).await.unwrap();
    assert_eq!(page2, newest_first[3..]);
    let end = HistoryQuery {
        after: Some(cursor(&page2[2])),
        ..query(3)
    };
    assert!(store.history(m.id, &end).await.unwrap().is_empty());

    let since = HistoryQuery {
        region: None,
        since: Some(t(20)),
        ..query(100)
    };
    assert_eq!(
        store.history(m.id, &since).await.unwrap(),
        newest_first[..5],
        "since is inclusive"
    );
    let until = HistoryQuery {
        region: None,
        until: Some(t(40)),
        ..query(100)
    };
    assert_eq!(
        store.history(m.id, &until).await.unwrap(),
        newest_first[2..],
        "until is exclusive"
    );

    let window = HistoryQuery {
        region: None,
        since: Some(t(20)),
        until: Some(t(40)),
        ..query(2)
    };
    let first = store.history(m.id, &window).await.unwrap();
    assert_eq!(first, newest_first[2..4]);
    let rest = HistoryQuery {
        after: Some(cursor(&first[1])),
        ..window
    };
    assert_eq!(
        store.history(m.id, &rest).await.unwrap(),
        newest_first[4..5]
    );
}

/// A small deterministic generator, so that "random" sequences are the same on every run and
/// a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Every rollup a store holds for `m` in `[t(from), t(to))`, by (resolution, start).
async fn rollups_of(
    store: &dyn Store,
    m: Uuid,
    from: i64,
    to: i64,
) -> BTreeMap<(Resolution, DateTime<Utc>), Rollup> {
    let runs: Vec<RollupRun> = Resolution::ALL
        .into_iter()
        .map(|resolution| RollupRun {
            resolution,
            from: resolution.bucket_start(t(from)),
            to: t(to),
        })
        .collect();
    store
        .rollups(&[m], &runs)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            assert_eq!(r.monitor_id, m);
            ((r.resolution, r.start), r.rollup)
        })
        .collect()
}

/// The rollups the raw rows of `m`'s history add up to, computed from history alone.
async fn rollups_from_history(
    store: &dyn Store,
    m: &Monitor,
) -> BTreeMap<(Resolution, DateTime<Utc>), Rollup> {
    let mut expected: BTreeMap<(Resolution, DateTime<Utc>), Rollup> = BTreeMap::new();
    for e in store.history(m.id, &query(100_000)).await.unwrap() {
        let mut r = result(m, 0, e.status == CheckStatus::Up);
        r.checked_at = e.checked_at;
        r.response_time_ms = e.response_time_ms;
        for key in rollup_keys(e.checked_at) {
            expected.entry(key).or_default().add(&r);
        }
    }
    expected
}

/// For random sequences of results (random times over three days, up or down, response
/// times from 0 ms to minutes), written in random batches with redeliveries mixed in, every
/// minute, hour and day rollup equals the aggregate of the raw rows it summarizes.
pub async fn rollups_equal_the_raw_rows_they_summarize(store: &dyn Store) {
    for seed in 1..=12u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let m = monitor(&format!("http://127.0.0.1:{}/", 1000 + seed));
        store.insert_monitor(&m).await.unwrap();
        let count = 1 + rng.below(300) as usize;
        let mut all: Vec<CheckResult> = (0..count)
            .map(|_| {
                let r = result(&m, rng.below(3 * 86_400) as i64, rng.below(4) != 0);
                let at = r.checked_at + Duration::milliseconds(rng.below(1000) as i64);
                let mut r = r.with_checked_at(at);
                r.response_time_ms = match rng.below(10) {
                    0 => rng.below(300_000) as u32,
                    _ => rng.below(2_000) as u32,
                };
                r
            })
            .collect();
        // Redeliveries: some results come again, in a later batch or the same one.
        for _ in 0..rng.below(30) {
            let again = all[rng.below(all.len() as u64) as usize].clone();
            all.push(again);
        }
        let mut stored = 0;
        let mut rest = &all[..];
        while !rest.is_empty() {
            let n = (1 + rng.below(50) as usize).min(rest.len());
            stored += store.insert_results(&rest[..n]).await.unwrap();
            rest = &rest[n..];
        }
        assert_eq!(stored, count as u64, "seed {seed}: each result stored once");
        let expected = rollups_from_history(store, &m).await;
        let actual = rollups_of(store, m.id, -86_400, 5 * 86_400).await;
        assert_eq!(actual.len(), expected.len(), "seed {seed}: rollup keys");
        for (key, rollup) in &expected {
            assert_eq!(actual.get(key), Some(rollup), "seed {seed}: rollup {key:?}");
        }
    }
}

/// Batches written at the same time that add to the same rollups lose no count.
pub async fn concurrent_batches_add_up(store: &dyn Store) {
    let m = monitor("http://127.0.0.1:1100/");
    store.insert_monitor(&m).await.unwrap();
    let batches: Vec<Vec<CheckResult>> = (0..8)
        .map(|b| {
            (0..25)
                .map(|i| result(&m, b * 25 + i, i % 5 != 0))
                .collect()
        })
        .collect();
    let writes = batches.iter().map(|batch| store.insert_results(batch));
    let stored: u64 = futures::future::join_all(writes)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .sum();
    assert_eq!(stored, 200);
    let day = rollups_of(store, m.id, 0, 1)
        .await
        .into_iter()
        .find(|((r, _), _)| *r == Resolution::Day)
        .expect("a day rollup")
        .1;
    assert_eq!((day.checks, day.up, day.down), (200, 160, 40));
    assert_eq!(day.sketch.count(), 200);
}

/// Pruning deletes the given monitors' raw results checked before the cutoff and the rollups
/// whose bucket ended before their cutoff, and nothing newer, nor other monitors' history.
pub async fn retention_prunes_exactly_what_is_older(store: &dyn Store) {
    let pruned_monitor = monitor("http://127.0.0.1:1200/");
    let other = monitor("http://127.0.0.1:1201/");
    for m in [&pruned_monitor, &other] {
        store.insert_monitor(m).await.unwrap();
        // One result every 10 minutes over two days.
        let results: Vec<CheckResult> = (0..288).map(|i| result(m, i * 600, true)).collect();
        assert_eq!(store.insert_results(&results).await.unwrap(), 288);
    }
    let before_raw = t(86_400); // raw results before day 1 go
    let before_minute = t(86_400 + 3_600 + 30); // minute buckets ended before this go
    let before_hour = t(2 * 3_600); // hour buckets ended before this go
    let cutoffs = Cutoffs {
        raw: Some(before_raw),
        rollups: [
            (Resolution::Minute, Some(before_minute)),
            (Resolution::Hour, Some(before_hour)),
            (Resolution::Day, None),
        ],
    };
    let before = rollups_of(store, pruned_monitor.id, -86_400, 3 * 86_400).await;
    let pruned = store.prune(&[pruned_monitor.id], &cutoffs).await.unwrap();

    let history = store
        .history(pruned_monitor.id, &query(1000))
        .await
        .unwrap();
    assert_eq!(history.len(), 144, "the second day's results stay");
    assert!(history.iter().all(|e| e.checked_at >= before_raw));
    assert_eq!(pruned.raw, 144);

    let after = rollups_of(store, pruned_monitor.id, -86_400, 3 * 86_400).await;
    let mut gone = 0;
    for (resolution, start) in before.keys() {
        // A bucket goes when it ended before its resolution's cutoff.
        let should_go = match resolution {
            Resolution::Minute => *start + resolution.duration() < before_minute,
            Resolution::Hour => *start + resolution.duration() < before_hour,
            Resolution::Day => false,
        };
        let went = !after.contains_key(&(*resolution, *start));
        assert_eq!(went, should_go, "{resolution:?} bucket at {start}");
        gone += u64::from(went);
    }
    assert_eq!(pruned.rollups, gone);
    assert_eq!(
        after.len() as u64,
        before.len() as u64 - gone,
        "nothing added"
    );
    // At the edges: the minute of the result at 89,400 s ended before the cutoff (90,030 s);
    // the minute of the one at 90,000 s ends after it, and stays.
    let minute = |s: i64| (Resolution::Minute, Resolution::Minute.bucket_start(t(s)));
    let hour = |s: i64| (Resolution::Hour, Resolution::Hour.bucket_start(t(s)));
    assert!(!after.contains_key(&minute(89_400)));
    assert!(after.contains_key(&minute(90_000)));
    assert!(!after.contains_key(&hour(0)));
    assert!(after.contains_key(&hour(7_200)));

    // The other monitor keeps everything; pruning again finds nothing more.
    assert_eq!(
        store.history(other.id, &query(1000)).await.unwrap().len(),
        288
    );
    assert_eq!(
        store.prune(&[pruned_monitor.id], &cutoffs).await.unwrap(),
        Pruned::default()
    );
    assert_eq!(store.prune(&[], &cutoffs).await.unwrap(), Pruned::default());
}

/// Deleting a monitor deletes its rollups and incidents, and no other monitor's.
pub async fn delete_removes_rollups_and_incidents(store: &dyn Store) {
    let gone = monitor("http://127.0.0.1:1400/");
    let kept = monitor("http://127.0.0.1:1401/");
    for m in [&gone, &kept] {
        store.insert_monitor(m).await.unwrap();
        let results = [result(m, 1, true), result(m, 2, false)];
        store.insert_results(&results).await.unwrap();
        for r in &results {
            store.apply_result(r).await.unwrap();
        }
    }
    let all = IncidentQuery {
        limit: 10,
        ..IncidentQuery::default()
    };
    assert_eq!(store.incidents(&all).await.unwrap().len(), 2);
    assert!(store.delete_monitor(gone.id).await.unwrap());
    assert!(rollups_of(store, gone.id, 0, 86_400).await.is_empty());
    assert_eq!(rollups_of(store, kept.id, 0, 86_400).await.len(), 3);
    let left = store.incidents(&all).await.unwrap();
    assert_eq!(
        left.iter().map(|i| i.monitor_id).collect::<Vec<_>>(),
        vec![kept.id]
    );
}

/// Results keep the region of the worker that made them; history filters by region, and the
/// default region is that of the results stored without one (pushes, one-region installs).
pub async fn results_keep_their_region(store: &dyn Store) {
    let m = monitor("http://127.0.0.1:1500/");
    let other = monitor("http://127.0.0.1:1501/");
    store.insert_monitor(&m).await.unwrap();
    store.insert_monitor(&other).await.unwrap();
    let in_region =
        |m: &Monitor, at: i64, up: bool, region: &str| result(m, at, up).with_region(region);
    let results = vec![
        result(&m, 10, true),
        in_region(&m, 20, true, "a"),
        in_region(&m, 30, false, "b"),
        in_region(&m, 40, true, "a"),
        in_region(&m, 50, true, "b"),
        result(&m, 60, false),
    ];
    assert_eq!(results[0].region, upwatch_core::check::DEFAULT_REGION);
    assert_eq!(store.insert_results(&results).await.unwrap(), 6);
    store
        .insert_results(&[in_region(&other, 55, true, "b")])
        .await
        .unwrap();
    let newest_first = |region: Option<&str>| -> Vec<HistoryEntry> {
        results
            .iter()
            .rev()
            .filter(|r| region.is_none_or(|name| r.region == name))
            .map(entry)
            .collect()
    };
    let in_history = |region: Option<&str>, limit: u32| HistoryQuery {
        region: region.map(str::to_string),
        ..query(limit)
    };

    let all = store.history(m.id, &query(100)).await.unwrap();
    assert_eq!(all, newest_first(None), "every region, each named");
    assert_eq!(
        all.iter().map(|e| e.region.as_str()).collect::<Vec<_>>(),
        vec!["default", "b", "a", "b", "a", "default"]
    );
    let b = store
        .history(m.id, &in_history(Some("b"), 100))
        .await
        .unwrap();
    assert_eq!(
        b,
        newest_first(Some("b")),
        "only b's, not the other monitor's"
    );
    assert_eq!(b.len(), 2);
    assert_eq!(
        store
            .history(m.id, &in_history(Some("default"), 100))
            .await
            .unwrap(),
        newest_first(Some("default")),
        "the default region is the results stored without one"
    );
    assert!(store
        .history(m.id, &in_history(Some("nowhere"), 100))
        .await
        .unwrap()
        .is_empty());

    // The filter holds across pages and with bounds.
    let page1 = store
        .history(m.id, &in_history(Some("a"), 1))
        .await
        .unwrap();
    assert_eq!(page1, newest_first(Some("a"))[..1]);
    let page2 = HistoryQuery {
        after: Some(cursor(&page1[0])),
        ..in_history(Some("a"), 1)
    };
    assert_eq!(
        store.history(m.id, &page2).await.unwrap(),
        newest_first(Some("a"))[1..]
    );
    let bounded = HistoryQuery {
        since: Some(t(20)),
        until: Some(t(50)),
        ..in_history(Some("b"), 100)
    };
    assert_eq!(
        store.history(m.id, &bounded).await.unwrap(),
        vec![entry(&results[2])]
    );
}

/// A result whose worker had lost its own network is stored and shown as inconclusive, with
/// its kind `local_network`, and counts in no rollup: neither up nor down, nor as a check.
pub async fn inconclusive_results_count_in_no_rollup(store: &dyn Store) {
    let m = monitor("http://127.0.0.1:1600/");
    store.insert_monitor(&m).await.unwrap();
    let lost = |at: i64, up: bool| {
        result(&m, at, up)
            .into_inconclusive("no connectivity target answered")
            .with_region("b")
    };
    // t(10) up and t(20), t(30) inconclusive share a minute; t(130) has a minute of its own,
    // which only an inconclusive result fell in.
    let results = vec![
        result(&m, 10, true),
        lost(20, false),
        lost(30, true),
        lost(130, false),
    ];
    assert_eq!(results[1].status, CheckStatus::Inconclusive);
    assert_eq!(store.insert_results(&results).await.unwrap(), 4);

    let history = store.history(m.id, &query(10)).await.unwrap();
    let expected: Vec<HistoryEntry> = results.iter().rev().map(entry).collect();
    assert_eq!(history, expected, "stored and read back as they were");
    let error = history[0]
        .error
        .as_ref()
        .expect("an inconclusive result has an error");
    assert_eq!(error.kind, upwatch_core::ErrorKind::LocalNetwork);
    assert_eq!(error.kind.as_str(), "local_network");
    assert!(error.message.contains("no connectivity target answered"));
    assert_eq!(
        history.iter().map(|e| e.status).collect::<Vec<_>>(),
        vec![
            CheckStatus::Inconclusive,
            CheckStatus::Inconclusive,
            CheckStatus::Inconclusive,
            CheckStatus::Up
        ]
    );

    let rollups = rollups_of(store, m.id, 0, 3600).await;
    for resolution in Resolution::ALL {
        let counted: Vec<&Rollup> = rollups
            .iter()
            .filter(|((r, _), _)| *r == resolution)
            .map(|(_, rollup)| rollup)
            .collect();
        assert_eq!(
            counted.len(),
            1,
            "{resolution:?}: only the up result's bucket"
        );
        let rollup = counted[0];
        assert_eq!(
            (rollup.checks, rollup.up, rollup.down),
            (1, 1, 0),
            "{resolution:?}: inconclusive counts neither up nor down"
        );
        assert_eq!(
            rollup.sketch.count(),
            1,
            "{resolution:?}: nor its response time"
        );
    }
    let minute = (Resolution::Minute, Resolution::Minute.bucket_start(t(130)));
    assert!(!rollups.contains_key(&minute), "no empty rollup");
}
