//! Which maintenance window covers a monitor at a time, asked for every job the scheduler
//! emits. Each window's current or next occurrence is remembered until time passes it, so an
//! answer costs a comparison per window, not a walk through its recurrence rule.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::maintenance::{Maintenance, Occurrence};

/// The windows in force, with each one's current or next occurrence.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    window: Maintenance,
    /// The occurrence covering `computed_for`, else the next one after it; `None` when the
    /// window has no occurrence left after `computed_for`.
    span: Option<Occurrence>,
    /// When `span` was found; `None` before the first question.
    computed_for: Option<DateTime<Utc>>,
}

impl Entry {
    /// The occurrence covering `at`, finding it again only when time left the remembered one.
    fn active(&mut self, at: DateTime<Utc>) -> Option<Occurrence> {
        let fresh = match (self.computed_for, self.span) {
            // Asked about an earlier time than the answer was found for: find it again.
            (Some(computed), _) if at < computed => false,
            (Some(_), Some(span)) => at < span.end,
            // No occurrence left after a time before this one: none now either.
            (Some(_), None) => true,
            (None, _) => false,
        };
        if !fresh {
            self.span = self
                .window
                .active_at(at)
                .or_else(|| self.window.next_after(at));
            self.computed_for = Some(at);
        }
        self.span.filter(|span| span.contains(at))
    }
}

impl Calendar {
    pub fn new(windows: Vec<Maintenance>) -> Calendar {
        Calendar {
            entries: windows
                .into_iter()
                .map(|window| Entry {
                    window,
                    span: None,
                    computed_for: None,
                })
                .collect(),
        }
    }

    /// The windows, as given.
    pub fn windows(&self) -> impl Iterator<Item = &Maintenance> {
        self.entries.iter().map(|e| &e.window)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first window that covers the monitor (by id or group) at `at`, with the occurrence.
    pub fn covering(
        &mut self,
        monitor_id: Uuid,
        group: Option<&str>,
        at: DateTime<Utc>,
    ) -> Option<(&Maintenance, Occurrence)> {
        self.entries
            .iter_mut()
            .filter(|e| e.window.covers(monitor_id, group))
            .find_map(|e| e.active(at).map(|o| (&e.window, o)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maintenance::MaintenanceInput;
    use serde_json::json;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn window(value: serde_json::Value) -> Maintenance {
        let input: MaintenanceInput = serde_json::from_value(value).unwrap();
        Maintenance::create(input, t(0)).unwrap()
    }

    #[test]
    fn one_off_and_recurring_windows_cover_their_monitors_at_their_times() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        let once = window(json!({
            "title": "a's upgrade", "monitor_ids": [a],
            "start": t(100).to_rfc3339(), "end": t(200).to_rfc3339()
        }));
        let hourly = window(json!({
            "title": "API deploys", "groups": ["API"],
            "rrule": "FREQ=HOURLY;BYMINUTE=30", "duration": "10m", "timezone": "UTC"
        }));
        let mut calendar = Calendar::new(vec![once.clone(), hourly.clone()]);
        assert!(calendar.covering(a, None, t(99)).is_none());
        assert_eq!(calendar.covering(a, None, t(100)).unwrap().0.id, once.id);
        assert_eq!(calendar.covering(a, None, t(199)).unwrap().0.id, once.id);
        assert!(
            calendar.covering(a, None, t(200)).is_none(),
            "the end is exclusive"
        );
        assert!(
            calendar.covering(b, None, t(150)).is_none(),
            "b is not covered"
        );
        // The recurring one, asked at every minute of two hours, agrees with the window's own
        // answer, whichever order the questions come in.
        let mut times: Vec<i64> = (0..240).map(|m| m * 60).collect();
        times.extend((0..240).rev().map(|m| m * 60 + 7));
        for s in times {
            let at = t(s);
            let expected = hourly.active_at(at);
            let got = calendar.covering(b, Some("API"), at).map(|(_, o)| o);
            assert_eq!(got, expected, "at {at}");
        }
        assert!(calendar.covering(b, Some("Web"), t(1800)).is_none());
    }

    #[test]
    fn a_window_that_is_over_answers_none_for_ever() {
        let over = window(json!({
            "title": "done", "all": true,
            "start": t(10).to_rfc3339(), "end": t(20).to_rfc3339()
        }));
        let mut calendar = Calendar::new(vec![over]);
        assert!(calendar.covering(Uuid::nil(), None, t(15)).is_some());
        assert!(calendar.covering(Uuid::nil(), None, t(25)).is_none());
        assert!(calendar.covering(Uuid::nil(), None, t(10_000)).is_none());
        assert!(Calendar::default().is_empty());
    }
}
