//! The roles' clock: wall-clock milliseconds mapped onto tokio's clock.

use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

/// Maps wall-clock milliseconds onto tokio's clock, so that paused-time tests drive the
/// scheduler and the watchdog exactly and production timing is as precise as the timer wheel.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall_ms: i64,
    instant: Instant,
}

impl Clock {
    /// A clock that reads the wall clock now and follows tokio's clock from here.
    pub fn new() -> Self {
        Clock {
            wall_ms: Utc::now().timestamp_millis(),
            instant: Instant::now(),
        }
    }

    /// Unix milliseconds now.
    pub fn now_ms(&self) -> i64 {
        self.wall_ms + self.instant.elapsed().as_millis() as i64
    }

    /// The tokio instant of unix milliseconds `ms` (now, for a time past).
    pub fn instant_at(&self, ms: i64) -> Instant {
        self.instant + Duration::from_millis((ms - self.wall_ms).max(0) as u64)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}
