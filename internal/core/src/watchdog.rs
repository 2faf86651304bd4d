//! The watchdog's judgement: which monitors have gone unchecked for too long, and when a burst
//! of them deserves a message.
//!
//! A monitor that is enabled but has produced no result for several intervals is `stale`: its
//! real status is unknown, and whatever the cause (a broker that does not reassign a dead
//! worker's partitions, a stuck worker, a scheduler that lost its lock, a bug), people must
//! see it. This module decides; the watchdog role in `upwatch-pipeline` reads the check times
//! and sends the messages.

use std::collections::{HashMap, VecDeque};

use crate::alert::human_duration;

/// Intervals without a result after which a monitor is stale, unless configured otherwise
/// (`UPWATCH_STALE_AFTER_INTERVALS`).
pub const DEFAULT_STALE_AFTER_INTERVALS: u32 = 3;

/// The least time on top of one interval before a monitor is stale: Kafka's session timeout
/// (10 s), during which a dead worker's partitions are not yet handed to the survivors, and a
/// 5 s margin. A 1 s monitor is stale after 16 s, not after 3 s.
pub const MIN_GRACE_MS: i64 = 15_000;

/// How long a burst of stale monitors is left to gather before its message goes out, so that
/// monitors that went unchecked together are named in one message.
pub const BURST_SETTLE_MS: i64 = 5_000;

/// Names listed in a message at most; the rest are counted.
const NAMES_SHOWN: usize = 10;

/// What the watchdog expects of one enabled monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub name: String,
    pub interval_ms: i64,
    /// Since when results are expected: when the scheduler started, or when the monitor was
    /// created or resumed. Time before it never counts against the monitor.
    pub since_ms: i64,
    /// Set for a push monitor: its pushes are awaited (see [`missed_heartbeat`]) instead of
    /// judging it stale.
    pub push: Option<Heartbeat>,
}

/// What the watchdog needs to record a push monitor's missed heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// Milliseconds past the interval that a push may be late.
    pub grace_ms: i64,
    /// The monitor's `push://` URL, carried into its results.
    pub url: String,
    pub rules: crate::check::StateRules,
    /// The maintenance windows that cover the monitor: a heartbeat missed in one is marked.
    pub windows: Vec<crate::maintenance::Maintenance>,
}

impl Heartbeat {
    /// Whether a deadline at `at` falls in one of the monitor's maintenance windows.
    pub fn in_maintenance(&self, at: chrono::DateTime<chrono::Utc>) -> bool {
        self.windows.iter().any(|w| w.active_at(at).is_some())
    }
}

/// When a push monitor's heartbeat counts as missed, if it does at `now_ms`: the interval plus
/// the grace after its newest result (a push, or the previous missed heartbeat), or after
/// `since_ms` when it has none since then. Each deadline is missed once; the missed result
/// itself starts the next wait.
pub fn missed_heartbeat(
    expected: &Expected,
    heartbeat: &Heartbeat,
    last_result_ms: Option<i64>,
    now_ms: i64,
) -> Option<i64> {
    let from = last_result_ms.map_or(expected.since_ms, |at| at.max(expected.since_ms));
    let deadline = from + expected.interval_ms.max(1) + heartbeat.grace_ms.max(0);
    (now_ms >= deadline).then_some(deadline)
}

/// How long a monitor of `interval_ms` may go without a result before it is stale.
pub fn stale_after_ms(interval_ms: i64, intervals: u32) -> i64 {
    let interval_ms = interval_ms.max(1);
    (interval_ms * i64::from(intervals.max(1))).max(interval_ms + MIN_GRACE_MS)
}

/// Whether a monitor whose newest result started at `last_checked_ms` is stale at `now_ms`.
/// A result older than `since_ms` (before a pause, say) counts from `since_ms` instead.
pub fn is_stale(
    expected: &Expected,
    last_checked_ms: Option<i64>,
    now_ms: i64,
    intervals: u32,
) -> bool {
    let from = last_checked_ms.map_or(expected.since_ms, |at| at.max(expected.since_ms));
    now_ms - from > stale_after_ms(expected.interval_ms, intervals)
}

/// A message about upwatch itself, sent to every channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Monitors went unchecked.
    Unchecked {
        /// How many are stale.
        count: usize,
        /// The stale-after setting, in intervals.
        intervals: u32,
        /// Some of their names, sorted.
        names: Vec<String>,
    },
    /// Every monitor of the burst has a result again.
    CheckedAgain {
        /// The most monitors that were stale at once in the burst.
        count: usize,
        /// From the burst's first stale monitor to its end.
        lasted_ms: i64,
    },
    /// A region's worker reached none of its connectivity targets: its results are
    /// inconclusive until it does.
    ConnectivityLost {
        region: String,
        /// How many targets it tried.
        targets: usize,
    },
    /// The region's worker reaches its connectivity targets again.
    ConnectivityBack { region: String, lasted_ms: i64 },
}

impl Notice {
    /// A short headline.
    pub fn title(&self) -> &'static str {
        match self {
            Notice::Unchecked { .. } => "⚠️ upwatch is not checking some monitors",
            Notice::CheckedAgain { .. } => "✅ upwatch checks every monitor again",
            Notice::ConnectivityLost { .. } => "📡 a region of upwatch lost its network",
            Notice::ConnectivityBack { .. } => "📡 a region of upwatch is connected again",
        }
    }

    /// Whether this notice opens a problem (a later one resolves it).
    pub fn opens(&self) -> bool {
        matches!(
            self,
            Notice::Unchecked { .. } | Notice::ConnectivityLost { .. }
        )
    }

    /// What the problem is about, for services that deduplicate: the opening notice and
    /// the one that resolves it share it.
    pub fn topic(&self) -> String {
        match self {
            Notice::Unchecked { .. } | Notice::CheckedAgain { .. } => "watchdog".to_string(),
            Notice::ConnectivityLost { region, .. } | Notice::ConnectivityBack { region, .. } => {
                format!("connectivity-{region}")
            }
        }
    }

    /// The message, one or two sentences.
    pub fn text(&self) -> String {
        match self {
            Notice::Unchecked {
                count,
                intervals,
                names,
            } => {
                let mut shown = names
                    .iter()
                    .take(NAMES_SHOWN)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                if *count > NAMES_SHOWN.min(names.len()) {
                    shown.push_str(&format!(
                        " and {} more",
                        count - NAMES_SHOWN.min(names.len())
                    ));
                }
                format!(
                    "upwatch has not checked {count} {} for {intervals} intervals: {shown}. \
                     Their status is unknown and shown as stale until they are checked again.",
                    plural(*count, "monitor", "monitors")
                )
            }
            Notice::CheckedAgain { count, lasted_ms } => format!(
                "The {count} {} that upwatch had not checked {} results again; the gap lasted {}.",
                plural(*count, "monitor", "monitors"),
                plural(*count, "has", "have"),
                human_duration(chrono::Duration::milliseconds(*lasted_ms))
            ),
            Notice::ConnectivityLost { region, targets } => format!(
                "Region {region} reaches none of its {targets} connectivity {}: its network is \
                 down, not the sites. Its results are recorded as inconclusive, counted neither \
                 up nor down, and alert nothing until it is back.",
                plural(*targets, "target", "targets")
            ),
            Notice::ConnectivityBack { region, lasted_ms } => format!(
                "Region {region} reaches its connectivity targets again, after {}; its checks \
                 count again.",
                human_duration(chrono::Duration::milliseconds(*lasted_ms))
            ),
        }
    }
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// Turns the stale set over time into at most one message when a burst begins and one when
/// it ends.
#[derive(Debug, Default)]
pub struct Bursts {
    /// When the current burst's first monitor was seen stale.
    started_ms: Option<i64>,
    /// Whether the burst's message went out.
    notified: bool,
    /// The most monitors stale at once in this burst.
    peak: usize,
}

impl Bursts {
    pub fn new() -> Self {
        Bursts::default()
    }

    /// Takes the names of the monitors stale at `now_ms` (empty when none is) and says what
    /// to send, if anything: the burst's message once it has settled for
    /// [`BURST_SETTLE_MS`], and the all-clear when the set empties after a message went out.
    /// A burst that clears before it settled sends nothing.
    pub fn step(&mut self, now_ms: i64, stale: &[String], intervals: u32) -> Option<Notice> {
        if stale.is_empty() {
            let started = self.started_ms.take()?;
            let notice = self.notified.then(|| Notice::CheckedAgain {
                count: self.peak,
                lasted_ms: now_ms - started,
            });
            self.notified = false;
            self.peak = 0;
            return notice;
        }
        let started = *self.started_ms.get_or_insert(now_ms);
        self.peak = self.peak.max(stale.len());
        if self.notified || now_ms - started < BURST_SETTLE_MS {
            return None;
        }
        self.notified = true;
        let mut names = stale.to_vec();
        names.sort();
        names.truncate(NAMES_SHOWN);
        Some(Notice::Unchecked {
            count: stale.len(),
            intervals,
            names,
        })
    }
}

/// Samples of consumer lag in a row that must each be larger than the one before for a
/// partition to count as falling behind for good.
pub const LAG_GROWING_SAMPLES: usize = 6;

/// The consumer lag of each partition over time: says which keeps growing, the sign of a
/// partition that no member consumes (or one too slow for its share).
#[derive(Debug, Default)]
pub struct LagTrend {
    samples: HashMap<i32, VecDeque<i64>>,
}

impl LagTrend {
    pub fn new() -> Self {
        LagTrend::default()
    }

    /// Records one sample of `(partition, lag)` pairs and returns the partitions whose lag
    /// grew at each of the last [`LAG_GROWING_SAMPLES`] samples, sorted.
    pub fn record(&mut self, lags: &[(i32, i64)]) -> Vec<i32> {
        self.samples
            .retain(|partition, _| lags.iter().any(|(p, _)| p == partition));
        let mut growing = Vec::new();
        for &(partition, lag) in lags {
            let samples = self.samples.entry(partition).or_default();
            samples.push_back(lag);
            while samples.len() > LAG_GROWING_SAMPLES {
                samples.pop_front();
            }
            let rising = samples.len() == LAG_GROWING_SAMPLES
                && samples
                    .iter()
                    .zip(samples.iter().skip(1))
                    .all(|(a, b)| b > a);
            if rising {
                growing.push(partition);
            }
        }
        growing.sort_unstable();
        growing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected(interval_ms: i64, since_ms: i64) -> Expected {
        Expected {
            name: "a".into(),
            interval_ms,
            since_ms,
            push: None,
        }
    }

    #[test]
    fn a_heartbeat_is_missed_once_per_deadline_after_the_newest_result() {
        let e = expected(60_000, 1_000);
        let hb = Heartbeat {
            grace_ms: 30_000,
            url: "push://x".into(),
            rules: Default::default(),
            windows: Vec::new(),
        };
        // No push yet: counted from `since`.
        assert_eq!(missed_heartbeat(&e, &hb, None, 90_999), None);
        assert_eq!(missed_heartbeat(&e, &hb, None, 91_000), Some(91_000));
        // A push resets the wait.
        assert_eq!(missed_heartbeat(&e, &hb, Some(50_000), 139_999), None);
        assert_eq!(
            missed_heartbeat(&e, &hb, Some(50_000), 140_000),
            Some(140_000)
        );
        // A result from before a pause counts from the resume.
        assert_eq!(missed_heartbeat(&e, &hb, Some(0), 90_000), None);
        // The missed heartbeat is a result too: the next deadline follows it.
        assert_eq!(missed_heartbeat(&e, &hb, Some(140_000), 200_000), None);
        assert_eq!(
            missed_heartbeat(&e, &hb, Some(140_000), 230_000),
            Some(230_000)
        );
        // No grace: exactly one interval.
        let none = Heartbeat { grace_ms: 0, ..hb };
        assert_eq!(
            missed_heartbeat(&e, &none, Some(50_000), 110_000),
            Some(110_000)
        );
    }

    #[test]
    fn stale_after_is_some_intervals_but_never_less_than_the_grace() {
        for (interval, intervals, want) in [
            (60_000, 3, 180_000),
            (300_000, 3, 900_000),
            (1_000, 3, 16_000),
            (10_000, 3, 30_000),
            (5_000, 3, 20_000),
            (60_000, 1, 75_000),
            (60_000, 0, 75_000),
        ] {
            assert_eq!(
                stale_after_ms(interval, intervals),
                want,
                "{interval} x {intervals}"
            );
        }
    }

    #[test]
    fn stale_counts_from_the_newest_of_the_last_result_and_since() {
        let e = expected(10_000, 100_000);
        // Never checked: counted from since.
        assert!(!is_stale(&e, None, 130_000, 3));
        assert!(is_stale(&e, None, 130_001, 3));
        // A result before since (a pause, a restart) counts from since.
        assert!(!is_stale(&e, Some(1_000), 130_000, 3));
        // A later result counts from itself.
        assert!(!is_stale(&e, Some(120_000), 150_000, 3));
        assert!(is_stale(&e, Some(120_000), 150_001, 3));
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("site-{i:02}")).collect()
    }

    #[test]
    fn one_message_per_burst_and_one_when_it_clears() {
        let mut b = Bursts::new();
        assert_eq!(b.step(0, &[], 3), None);
        assert_eq!(b.step(1_000, &names(2), 3), None, "settling");
        assert_eq!(b.step(3_000, &names(5), 3), None, "settling");
        let Some(Notice::Unchecked {
            count,
            names: shown,
            ..
        }) = b.step(6_000, &names(5), 3)
        else {
            panic!("the burst's message")
        };
        assert_eq!((count, shown.len()), (5, 5));
        // More monitors going stale in the same burst send nothing more.
        assert_eq!(b.step(7_000, &names(30), 3), None);
        assert_eq!(b.step(8_000, &names(1), 3), None);
        assert_eq!(
            b.step(21_000, &[], 3),
            Some(Notice::CheckedAgain {
                count: 30,
                lasted_ms: 20_000
            })
        );
        assert_eq!(b.step(22_000, &[], 3), None);
        // A new burst starts over.
        assert_eq!(b.step(30_000, &names(1), 3), None);
        assert!(matches!(
            b.step(35_000, &names(1), 3),
            Some(Notice::Unchecked { count: 1, .. })
        ));
    }

    #[test]
    fn a_partition_falls_behind_when_its_lag_grows_at_every_sample() {
        let mut t = LagTrend::new();
        for i in 0..LAG_GROWING_SAMPLES as i64 - 1 {
            assert!(t.record(&[(0, 5), (1, 10 + i), (2, 3 * i)]).is_empty());
        }
        let n = LAG_GROWING_SAMPLES as i64;
        assert_eq!(t.record(&[(0, 5), (1, 10 + n), (2, 3 * n)]), vec![1, 2]);
        // One sample that does not grow resets the count; a partition gone is forgotten.
        assert_eq!(t.record(&[(0, 5), (1, 10 + n)]), Vec::<i32>::new());
        assert_eq!(t.samples.len(), 2);
    }

    #[test]
    fn a_burst_that_clears_before_it_settles_sends_nothing() {
        let mut b = Bursts::new();
        assert_eq!(b.step(0, &names(3), 3), None);
        assert_eq!(b.step(4_000, &names(3), 3), None);
        assert_eq!(b.step(4_500, &[], 3), None);
    }

    #[test]
    fn messages_name_some_monitors_and_count_the_rest() {
        let n = Notice::Unchecked {
            count: 12,
            intervals: 3,
            names: names(10),
        };
        let text = n.text();
        assert!(
            text.starts_with(
                "upwatch has not checked 12 monitors for 3 intervals: site-00, site-01"
            ),
            "{text}"
        );
        assert!(text.contains("site-09 and 2 more."), "{text}");
        let one = Notice::Unchecked {
            count: 1,
            intervals: 3,
            names: vec!["shop".into()],
        };
        assert!(one
            .text()
            .starts_with("upwatch has not checked 1 monitor for 3 intervals: shop."));
        let back = Notice::CheckedAgain {
            count: 12,
            lasted_ms: 95_000,
        };
        assert_eq!(
            back.text(),
            "The 12 monitors that upwatch had not checked have results again; the gap lasted 1m 35s."
        );
    }
}
