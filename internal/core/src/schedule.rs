//! Fixed-rate scheduling of many monitors.
//!
//! Time is milliseconds since the Unix epoch, passed in by the caller, so the queue is pure.
//!
//! Each monitor is checked on the slots `phase + k * interval`, where the phase is derived from
//! its id. This gives three properties at once:
//! - no drift: the next slot is computed from the previous slot, not from when a check ended;
//! - spreading: monitors with one interval start on phases spread evenly over it, so ten
//!   thousand 60 s monitors are not all fired in the same second;
//! - stable across restarts and failovers: a new scheduler computes the same slots, so taking
//!   over does not cause a burst of checks.
//!
//! When the caller falls behind by more than an interval, the missed slots are skipped (and
//! counted), never replayed in a burst.
//!
//! A monitor that was just created, resumed or pointed elsewhere should not wait up to a whole
//! interval for its first result: [`Schedule::upsert_soon`] gives it one extra slot at a time
//! of the caller's choosing, after which it falls onto its grid, the next slot at least half
//! an interval later (so the extra check and the first grid check never come in a pair).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use uuid::Uuid;

/// A monitor's check that has come due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub monitor_id: Uuid,
    /// The slot this check belongs to.
    pub due_ms: i64,
    /// Slots skipped because the caller came too late for them.
    pub missed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Slot {
    due_ms: i64,
    generation: u64,
    id: Uuid,
    /// An extra slot off the grid ([`Schedule::upsert_soon`]).
    soon: bool,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    interval_ms: i64,
    generation: u64,
}

/// The queue of every scheduled monitor's next slot.
#[derive(Debug, Default)]
pub struct Schedule {
    heap: BinaryHeap<Reverse<Slot>>,
    entries: HashMap<Uuid, Entry>,
    next_generation: u64,
}

/// The phase of `id` within `interval_ms`: a well-mixed hash of the id, so ids made in a burst
/// (UUIDv7 shares its leading bits) still spread out.
pub fn phase_ms(id: Uuid, interval_ms: i64) -> i64 {
    let (hi, lo) = id.as_u64_pair();
    let mut x = hi ^ lo.rotate_left(32);
    // splitmix64 finalizer.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x % interval_ms.max(1) as u64) as i64
}

/// The first slot of `id` at or after `now_ms`.
pub fn first_slot(id: Uuid, interval_ms: i64, now_ms: i64) -> i64 {
    let interval = interval_ms.max(1);
    let phase = phase_ms(id, interval);
    let base = now_ms - now_ms.rem_euclid(interval) + phase;
    if base >= now_ms {
        base
    } else {
        base + interval
    }
}

impl Schedule {
    pub fn new() -> Self {
        Schedule::default()
    }

    /// Number of scheduled monitors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `id` is scheduled.
    pub fn contains(&self, id: Uuid) -> bool {
        self.entries.contains_key(&id)
    }

    /// Schedules `id` every `interval_ms`, from its first slot at or after `now_ms`.
    ///
    /// Scheduling a monitor again with the same interval keeps its slots; a new interval
    /// moves it to the first slot of the new interval.
    pub fn upsert(&mut self, id: Uuid, interval_ms: i64, now_ms: i64) {
        let interval_ms = interval_ms.max(1);
        if self
            .entries
            .get(&id)
            .is_some_and(|e| e.interval_ms == interval_ms)
        {
            return;
        }
        self.replace(id, interval_ms, first_slot(id, interval_ms, now_ms), false);
    }

    /// Schedules `id` every `interval_ms` with one extra check at `soon_ms`, then on its grid
    /// from the first slot at least half an interval after `soon_ms`. Unlike
    /// [`Schedule::upsert`], this replaces the monitor's slots even when the interval is the
    /// same: it is for monitors whose next result is wanted now.
    pub fn upsert_soon(&mut self, id: Uuid, interval_ms: i64, soon_ms: i64) {
        self.replace(id, interval_ms.max(1), soon_ms, true);
    }

    /// Replaces the monitor's slots with one at `due_ms` (a new generation, so that the old
    /// slot is dropped when it comes up).
    fn replace(&mut self, id: Uuid, interval_ms: i64, due_ms: i64, soon: bool) {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.entries.insert(
            id,
            Entry {
                interval_ms,
                generation,
            },
        );
        self.heap.push(Reverse(Slot {
            due_ms,
            generation,
            id,
            soon,
        }));
    }

    /// Stops scheduling `id`. Its stale slot is dropped lazily.
    pub fn remove(&mut self, id: Uuid) -> bool {
        self.entries.remove(&id).is_some()
    }

    /// The time of the earliest slot, if any.
    pub fn next_due_ms(&mut self) -> Option<i64> {
        self.discard_stale();
        self.heap.peek().map(|Reverse(s)| s.due_ms)
    }

    /// Takes the earliest slot if it is due at `now_ms`, and queues the monitor's next slot.
    pub fn pop_due(&mut self, now_ms: i64) -> Option<Due> {
        self.discard_stale();
        let Reverse(slot) = *self.heap.peek()?;
        if slot.due_ms > now_ms {
            return None;
        }
        self.heap.pop();
        let entry = self.entries[&slot.id];
        if slot.soon {
            let after = (slot.due_ms + entry.interval_ms / 2).max(now_ms);
            self.heap.push(Reverse(Slot {
                due_ms: first_slot(slot.id, entry.interval_ms, after),
                soon: false,
                ..slot
            }));
            return Some(Due {
                monitor_id: slot.id,
                due_ms: slot.due_ms,
                missed: 0,
            });
        }
        let behind = now_ms - slot.due_ms;
        let missed = (behind / entry.interval_ms) as u64;
        let next = slot.due_ms + (missed as i64 + 1) * entry.interval_ms;
        self.heap.push(Reverse(Slot {
            due_ms: next,
            ..slot
        }));
        // The slot handed out is the latest one that has passed, so a late caller checks now
        // rather than replaying every slot it missed.
        Some(Due {
            monitor_id: slot.id,
            due_ms: slot.due_ms + missed as i64 * entry.interval_ms,
            missed,
        })
    }

    fn discard_stale(&mut self) {
        while let Some(Reverse(top)) = self.heap.peek() {
            match self.entries.get(&top.id) {
                Some(e) if e.generation == top.generation => return,
                _ => {
                    self.heap.pop();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn drain(s: &mut Schedule, now: i64) -> Vec<Due> {
        std::iter::from_fn(|| s.pop_due(now)).collect()
    }

    #[test]
    fn checks_at_a_fixed_rate_without_drift() {
        let mut s = Schedule::new();
        let id = Uuid::now_v7();
        s.upsert(id, 60_000, 0);
        let first = s.next_due_ms().unwrap();
        assert!((0..60_000).contains(&first));
        // Whatever the caller's own delays (here 0..=50 ms late each time), slots stay on the grid.
        for k in 0..100 {
            let slot = first + k * 60_000;
            let now = slot + (k * 7) % 51;
            let due = s.pop_due(now).expect("due");
            assert_eq!(due.due_ms, slot);
            assert_eq!(due.missed, 0);
            assert_eq!(s.pop_due(now), None, "one check per slot");
        }
    }

    #[test]
    fn nothing_is_due_before_its_slot() {
        let mut s = Schedule::new();
        let id = Uuid::now_v7();
        s.upsert(id, 10_000, 1_000_000);
        let due = s.next_due_ms().unwrap();
        assert!(due >= 1_000_000);
        assert_eq!(s.pop_due(due - 1), None);
        assert!(s.pop_due(due).is_some());
    }

    #[test]
    fn late_callers_skip_missed_slots_instead_of_bursting() {
        let mut s = Schedule::new();
        let id = Uuid::now_v7();
        s.upsert(id, 1_000, 0);
        let first = s.next_due_ms().unwrap();
        let due = drain(&mut s, first + 3_500);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].missed, 3);
        assert_eq!(due[0].due_ms, first + 3_000);
        assert_eq!(s.next_due_ms(), Some(first + 4_000));
    }

    #[test]
    fn first_checks_are_spread_over_the_interval() {
        let mut s = Schedule::new();
        for _ in 0..6_000 {
            s.upsert(Uuid::now_v7(), 60_000, 0);
        }
        // Count first checks per second of the minute: a uniform spread gives about 100 each.
        let mut per_second = vec![0u32; 60];
        for due in drain(&mut s, 59_999) {
            per_second[(due.due_ms / 1000) as usize] += 1;
        }
        assert_eq!(per_second.iter().sum::<u32>(), 6_000);
        let max = *per_second.iter().max().unwrap();
        let min = *per_second.iter().min().unwrap();
        assert!(max < 160 && min > 50, "uneven spread: min {min}, max {max}");
    }

    #[test]
    fn slots_are_the_same_after_a_restart() {
        let id = Uuid::now_v7();
        let mut a = Schedule::new();
        a.upsert(id, 30_000, 0);
        let mut b = Schedule::new();
        b.upsert(id, 30_000, 12_345);
        let first_a = a.next_due_ms().unwrap();
        let first_b = b.next_due_ms().unwrap();
        assert_eq!((first_b - first_a).rem_euclid(30_000), 0);
    }

    #[test]
    fn removing_and_changing_take_effect_at_once() {
        let mut s = Schedule::new();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        s.upsert(a, 1_000, 0);
        s.upsert(b, 1_000, 0);
        assert!(s.remove(a));
        assert!(!s.remove(a));
        let due: Vec<_> = drain(&mut s, 999)
            .into_iter()
            .map(|d| d.monitor_id)
            .collect();
        assert_eq!(due, vec![b]);
        // Same interval: slots kept. New interval: moved onto the new grid.
        let before = s.next_due_ms().unwrap();
        s.upsert(b, 1_000, 500);
        assert_eq!(s.next_due_ms(), Some(before));
        s.upsert(b, 5_000, 1_000);
        let after = s.next_due_ms().unwrap();
        assert_eq!(after, first_slot(b, 5_000, 1_000));
        assert_eq!(s.len(), 1);
        assert_eq!(drain(&mut s, after).len(), 1, "the old slot is gone");
    }

    #[test]
    fn a_soon_slot_comes_first_then_the_grid() {
        let mut s = Schedule::new();
        let id = Uuid::now_v7();
        s.upsert(id, 300_000, 0);
        let grid = s.next_due_ms().unwrap();
        // Asked again with the same interval: upsert keeps the slots, upsert_soon does not.
        s.upsert_soon(id, 300_000, 1_000);
        assert_eq!(s.next_due_ms(), Some(1_000));
        let due = s.pop_due(1_200).unwrap();
        assert_eq!((due.due_ms, due.missed), (1_000, 0));
        assert_eq!(s.pop_due(1_200), None, "one extra check, not a burst");
        let next = s.next_due_ms().unwrap();
        assert!(
            next >= 1_000 + 150_000,
            "at least half an interval later: {next}"
        );
        assert!(next < 1_000 + 450_000);
        assert_eq!(
            next.rem_euclid(300_000),
            grid.rem_euclid(300_000),
            "on the grid"
        );
        assert_eq!(s.len(), 1);
    }

    proptest! {
        #[test]
        fn first_slot_is_on_the_grid_and_not_in_the_past(now in 0i64..10_000_000_000, interval in 1i64..86_400_000) {
            let id = Uuid::now_v7();
            let slot = first_slot(id, interval, now);
            prop_assert!(slot >= now && slot < now + interval);
            prop_assert_eq!(slot.rem_euclid(interval), phase_ms(id, interval));
        }
    }
}
