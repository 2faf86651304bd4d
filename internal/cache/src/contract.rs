//! The behaviour every [`StatusCache`] must show; each implementation's tests call these
//! functions with a fresh, empty cache (a fresh key prefix for a server).

use chrono::{DateTime, Utc};
use upwatch_core::{MonitorState, MonitorStatus};
use uuid::Uuid;

use crate::{LiveStatus, StaleMark, StatusCache};

fn entry(id: Uuid, status: MonitorStatus, checked: Option<i64>) -> LiveStatus {
    let mut state = MonitorState::new(id);
    state.status = status;
    state.last_checked =
        checked.map(|s| DateTime::<Utc>::from_timestamp(1_700_000_000 + s, 0).unwrap());
    state.response_time_ms = Some(12);
    LiveStatus {
        name: format!("site {id}"),
        url: "http://127.0.0.1:1/".into(),
        state,
        stale_since: None,
    }
}

/// Entries come back as written, listed in id order, and go when removed.
pub async fn entries_round_trip(cache: &dyn StatusCache) {
    cache.ping().await.unwrap();
    let mut ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    ids.sort();
    assert_eq!(cache.get(ids[0]).await.unwrap(), None);
    for id in ids.iter().rev() {
        assert!(cache
            .put(&entry(*id, MonitorStatus::Up, Some(1)))
            .await
            .unwrap());
    }
    assert_eq!(
        cache.get(ids[1]).await.unwrap(),
        Some(entry(ids[1], MonitorStatus::Up, Some(1)))
    );
    let listed: Vec<Uuid> = cache
        .list()
        .await
        .unwrap()
        .iter()
        .map(LiveStatus::id)
        .collect();
    assert_eq!(listed, ids);
    // Pages: in id order, after a cursor, at most a limit.
    let page = |after: Option<Uuid>, limit: usize| async move {
        cache
            .page(after, limit)
            .await
            .unwrap()
            .iter()
            .map(LiveStatus::id)
            .collect::<Vec<_>>()
    };
    assert_eq!(page(None, 2).await, ids[..2]);
    assert_eq!(page(Some(ids[0]), 10).await, ids[1..]);
    assert_eq!(page(Some(ids[2]), 10).await, Vec::<Uuid>::new());
    assert_eq!(page(None, 0).await, Vec::<Uuid>::new());
    // "Every entry", as the unlimited status listing asks.
    assert_eq!(page(None, usize::MAX).await, ids);
    cache.remove(ids[1]).await.unwrap();
    assert_eq!(cache.get(ids[1]).await.unwrap(), None);
    assert_eq!(cache.list().await.unwrap().len(), 2);
}

/// A redelivered older status never replaces a newer one; same-age writes (a pause) do.
pub async fn older_never_overwrites_newer(cache: &dyn StatusCache) {
    let id = Uuid::now_v7();
    assert!(cache
        .put(&entry(id, MonitorStatus::Pending, None))
        .await
        .unwrap());
    assert!(cache
        .put(&entry(id, MonitorStatus::Down, Some(10)))
        .await
        .unwrap());
    assert!(!cache
        .put(&entry(id, MonitorStatus::Up, Some(5)))
        .await
        .unwrap());
    assert!(!cache
        .put(&entry(id, MonitorStatus::Pending, None))
        .await
        .unwrap());
    assert_eq!(
        cache.get(id).await.unwrap().unwrap().state.status,
        MonitorStatus::Down
    );
    assert!(cache
        .put(&entry(id, MonitorStatus::Paused, Some(10)))
        .await
        .unwrap());
    assert_eq!(
        cache.get(id).await.unwrap().unwrap().state.status,
        MonitorStatus::Paused
    );
}

/// Many entries read and written at once behave as one by one: absent ids are left out,
/// and each write is judged against its own stored entry.
pub async fn many_at_once(cache: &dyn StatusCache) {
    let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    assert!(cache.get_many(&[]).await.unwrap().is_empty());
    assert!(cache.put_many(&[]).await.unwrap().is_empty());
    let first = [
        entry(ids[0], MonitorStatus::Up, Some(10)),
        entry(ids[1], MonitorStatus::Up, Some(10)),
    ];
    assert_eq!(cache.put_many(&first).await.unwrap(), vec![true, true]);
    let found = cache.get_many(&ids).await.unwrap();
    assert_eq!(found.len(), 2, "the absent id is left out");
    assert_eq!(found[&ids[0]], first[0]);
    assert_eq!(found[&ids[1]], first[1]);
    // Newer, older and new entries in one write.
    let second = [
        entry(ids[0], MonitorStatus::Down, Some(20)),
        entry(ids[1], MonitorStatus::Down, Some(5)),
        entry(ids[2], MonitorStatus::Pending, None),
    ];
    assert_eq!(
        cache.put_many(&second).await.unwrap(),
        vec![true, false, true]
    );
    let found = cache.get_many(&ids).await.unwrap();
    assert_eq!(found[&ids[0]], second[0]);
    assert_eq!(found[&ids[1]], first[1], "an older write never lands");
    assert_eq!(found[&ids[2]], second[2]);
    assert_eq!(cache.get(ids[2]).await.unwrap(), Some(second[2].clone()));
    assert_eq!(cache.list().await.unwrap().len(), 3);
}

/// Version `v` of one monitor's entry: checked `v` seconds after a fixed instant and named
/// after `v`, so a reader can tell whether its fields were written together.
fn version(id: Uuid, v: i64) -> LiveStatus {
    let mut entry = entry(id, MonitorStatus::Up, Some(v));
    entry.name = format!("v{v}");
    entry
}

/// The version an entry written by [`version`] claims to be, checking that its name and
/// `last_checked` agree.
fn version_of(entry: &LiveStatus) -> i64 {
    let checked = entry.state.last_checked.expect("versions are checked");
    let v = checked.timestamp() - 1_700_000_000;
    assert_eq!(
        entry.name,
        format!("v{v}"),
        "name and last_checked of one write"
    );
    v
}

/// Two writers (two cache updaters, possibly two handles on one cache) race newer and
/// redelivered older versions of one entry: the newest always wins, a reader never sees the
/// entry go back in time, and every write of the newest version is accepted.
pub async fn concurrent_writers_keep_newest(first: &dyn StatusCache, second: &dyn StatusCache) {
    const ROUNDS: usize = 5;
    const NEWEST: i64 = 120;
    for _ in 0..ROUNDS {
        let id = Uuid::now_v7();
        // The first writer goes up through the even versions; the second through the odd
        // ones, each followed by a redelivery of a version ten older.
        let evens = async {
            let mut newest_accepted = false;
            for v in (2..=NEWEST).step_by(2) {
                let written = first.put(&version(id, v)).await.unwrap();
                if v == NEWEST {
                    newest_accepted = written;
                }
            }
            newest_accepted
        };
        let odds = async {
            for v in (1..NEWEST).step_by(2) {
                second.put(&version(id, v)).await.unwrap();
                if v > 10 {
                    second.put(&version(id, v - 10)).await.unwrap();
                }
            }
        };
        let reader = async {
            let mut seen = i64::MIN;
            let mut reads = 0;
            while seen < NEWEST {
                if let Some(entry) = first.get(id).await.unwrap() {
                    let v = version_of(&entry);
                    assert!(v >= seen, "read version {v} after version {seen}");
                    seen = v;
                }
                reads += 1;
                assert!(reads < 100_000, "the newest version never showed up");
                tokio::task::yield_now().await;
            }
        };
        let (newest_accepted, (), ()) = tokio::join!(evens, odds, reader);
        assert!(newest_accepted, "a write of the newest version was refused");
        for cache in [first, second] {
            let stored = cache.get(id).await.unwrap().expect("entry written");
            assert_eq!(version_of(&stored), NEWEST);
        }
        // A late redelivery of the newest version is still accepted (same age), an older one not.
        assert!(second.put(&version(id, NEWEST)).await.unwrap());
        assert!(!second.put(&version(id, NEWEST - 1)).await.unwrap());
    }
}

fn at(s: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_700_000_000 + s, 0).unwrap()
}

/// The watchdog's marks: check times are read back; a mark shows on every read (as the
/// `stale` status), is set only while the check time is the one judged, is cleared by the
/// monitor's next result and by the watchdog, and goes with the entry.
pub async fn stale_marks(cache: &dyn StatusCache) {
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    cache
        .put(&entry(a, MonitorStatus::Up, Some(10)))
        .await
        .unwrap();
    cache
        .put(&entry(b, MonitorStatus::Down, Some(20)))
        .await
        .unwrap();
    cache
        .put(&entry(c, MonitorStatus::Pending, None))
        .await
        .unwrap();
    let times = cache.check_times().await.unwrap();
    assert_eq!(times.get(&a), Some(&Some(at(10))));
    assert_eq!(times.get(&b), Some(&Some(at(20))));
    assert_eq!(times.get(&c), Some(&None));

    let mark = |id, seen: Option<i64>| StaleMark {
        monitor_id: id,
        seen: seen.map(at),
        since: at(100),
    };
    // b was judged on an older check time than it has now: not marked.
    cache
        .set_stale(&[mark(a, Some(10)), mark(b, Some(19)), mark(c, None)], &[])
        .await
        .unwrap();
    let got = cache.get(a).await.unwrap().unwrap();
    assert_eq!(got.stale_since, Some(at(100)));
    assert_eq!(got.shown_state().status, MonitorStatus::Stale);
    assert_eq!(
        got.state.status,
        MonitorStatus::Up,
        "the machine's state is kept"
    );
    assert_eq!(cache.get(b).await.unwrap().unwrap().stale_since, None);
    assert_eq!(
        cache.get(c).await.unwrap().unwrap().stale_since,
        Some(at(100))
    );
    let stale_in = |entries: Vec<LiveStatus>| {
        let mut ids: Vec<Uuid> = entries
            .into_iter()
            .filter(|e| e.stale_since.is_some())
            .map(|e| e.id())
            .collect();
        ids.sort();
        ids
    };
    let mut want = vec![a, c];
    want.sort();
    assert_eq!(stale_in(cache.list().await.unwrap()), want);
    assert_eq!(stale_in(cache.page(None, 10).await.unwrap()), want);
    // A writer passing the mark back (read, changed, written) does not set it; the same
    // check time again (a pause) keeps it; the next result clears it.
    let mut same = cache.get(a).await.unwrap().unwrap();
    same.name = "renamed".into();
    assert!(cache.put(&same).await.unwrap());
    assert_eq!(
        cache.get(a).await.unwrap().unwrap().stale_since,
        Some(at(100))
    );
    let mut newer = entry(a, MonitorStatus::Up, Some(11));
    newer.stale_since = Some(at(100));
    assert!(cache.put(&newer).await.unwrap());
    assert_eq!(cache.get(a).await.unwrap().unwrap().stale_since, None);
    // The first result of a never-checked monitor clears it too.
    assert!(cache
        .put(&entry(c, MonitorStatus::Up, Some(30)))
        .await
        .unwrap());
    assert_eq!(cache.get(c).await.unwrap().unwrap().stale_since, None);
    // The watchdog clears marks; a removed monitor loses its mark.
    cache.set_stale(&[mark(b, Some(20))], &[]).await.unwrap();
    assert!(cache.get(b).await.unwrap().unwrap().stale_since.is_some());
    cache.set_stale(&[], &[b]).await.unwrap();
    assert_eq!(cache.get(b).await.unwrap().unwrap().stale_since, None);
    cache.set_stale(&[mark(b, Some(20))], &[]).await.unwrap();
    cache.remove(b).await.unwrap();
    cache
        .put(&entry(b, MonitorStatus::Up, Some(20)))
        .await
        .unwrap();
    assert_eq!(cache.get(b).await.unwrap().unwrap().stale_since, None);
    // A paused monitor shows paused, marked or not.
    let mut paused = entry(a, MonitorStatus::Paused, Some(11));
    paused.stale_since = Some(at(100));
    assert_eq!(paused.shown_state().status, MonitorStatus::Paused);
}
