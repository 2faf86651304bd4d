//! Recent answers of `GET /api/v1/sites/{id}/status`, kept in memory for a fraction of a
//! second so that a monitor read many times a second is read from the cache and serialized
//! once per window, not once per request.
//!
//! An answer is served for at most `max_age` (`UPWATCH_API_STATUS_MAX_AGE_MS`, default
//! 250 ms, at most a second) after it was built, so what is read is never older than the cache
//! by more than that; changing or deleting the monitor through this process forgets its answer
//! at once. At most [`CAPACITY`] answers are kept: when full, expired ones are dropped, and
//! while it is still full a new answer is served without being kept. Only answers of monitors
//! that exist are kept (a 404 is not).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use uuid::Uuid;

/// The most answers kept at once.
pub const CAPACITY: usize = 10_000;

/// The default of `max_age`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_millis(250);

/// Serialized live-status answers by monitor, each with when it was built.
#[derive(Debug)]
pub struct LiveAnswers {
    max_age: Duration,
    capacity: usize,
    answers: RwLock<HashMap<Uuid, (Instant, Bytes)>>,
}

impl LiveAnswers {
    /// Answers kept for `max_age` each; `Duration::ZERO` keeps none.
    pub fn new(max_age: Duration) -> Self {
        Self::with_capacity(max_age, CAPACITY)
    }

    /// As [`new`](LiveAnswers::new), keeping at most `capacity` answers.
    pub fn with_capacity(max_age: Duration, capacity: usize) -> Self {
        LiveAnswers {
            max_age,
            capacity,
            answers: RwLock::new(HashMap::new()),
        }
    }

    /// Whether answers are kept at all.
    pub fn enabled(&self) -> bool {
        !self.max_age.is_zero() && self.capacity > 0
    }

    /// `id`'s answer when it was built at most `max_age` before `now`.
    pub fn get(&self, id: Uuid, now: Instant) -> Option<Bytes> {
        if !self.enabled() {
            return None;
        }
        let answers = self.answers.read().unwrap_or_else(|e| e.into_inner());
        let (built, body) = answers.get(&id)?;
        (now.saturating_duration_since(*built) <= self.max_age).then(|| body.clone())
    }

    /// Keeps `body` as `id`'s answer, built at `built`.
    pub fn put(&self, id: Uuid, body: Bytes, built: Instant) {
        if !self.enabled() {
            return;
        }
        let mut answers = self.answers.write().unwrap_or_else(|e| e.into_inner());
        if answers.len() >= self.capacity && !answers.contains_key(&id) {
            let max_age = self.max_age;
            answers.retain(|_, (at, _)| built.saturating_duration_since(*at) <= max_age);
            if answers.len() >= self.capacity {
                return;
            }
        }
        answers.insert(id, (built, body));
    }

    /// Forgets `id`'s answer (its monitor changed or is gone).
    pub fn forget(&self, id: Uuid) {
        if !self.enabled() {
            return;
        }
        self.answers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// How many answers are kept now, expired ones included.
    pub fn len(&self) -> usize {
        self.answers.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no answer is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    #[test]
    fn an_answer_is_served_until_it_is_max_age_old() {
        let answers = LiveAnswers::new(Duration::from_millis(250));
        let id = Uuid::new_v4();
        let t0 = Instant::now();
        assert_eq!(answers.get(id, t0), None);
        answers.put(id, body("up"), t0);
        assert_eq!(answers.get(id, t0), Some(body("up")));
        assert_eq!(
            answers.get(id, t0 + Duration::from_millis(250)),
            Some(body("up"))
        );
        assert_eq!(answers.get(id, t0 + Duration::from_millis(251)), None);
        assert_eq!(answers.get(Uuid::new_v4(), t0), None);
        answers.put(id, body("down"), t0 + Duration::from_millis(300));
        assert_eq!(
            answers.get(id, t0 + Duration::from_millis(400)),
            Some(body("down"))
        );
    }

    #[test]
    fn a_forgotten_answer_is_built_again() {
        let answers = LiveAnswers::new(Duration::from_secs(1));
        let id = Uuid::new_v4();
        let t0 = Instant::now();
        answers.put(id, body("up"), t0);
        answers.forget(id);
        assert_eq!(answers.get(id, t0), None);
        assert!(answers.is_empty());
    }

    #[test]
    fn a_zero_max_age_keeps_nothing() {
        let answers = LiveAnswers::new(Duration::ZERO);
        let id = Uuid::new_v4();
        let t0 = Instant::now();
        answers.put(id, body("up"), t0);
        assert_eq!(answers.get(id, t0), None);
        assert!(answers.is_empty());
    }

    #[test]
    fn memory_is_bounded_and_expired_answers_make_room() {
        let answers = LiveAnswers::with_capacity(Duration::from_millis(250), 2);
        let t0 = Instant::now();
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        answers.put(a, body("a"), t0);
        answers.put(b, body("b"), t0 + Duration::from_millis(100));
        // Full, nothing expired: c is served but not kept.
        answers.put(c, body("c"), t0 + Duration::from_millis(200));
        assert_eq!(answers.len(), 2);
        assert_eq!(answers.get(c, t0 + Duration::from_millis(200)), None);
        // An answer already kept is replaced, full or not.
        answers.put(a, body("a2"), t0 + Duration::from_millis(200));
        assert_eq!(
            answers.get(a, t0 + Duration::from_millis(200)),
            Some(body("a2"))
        );
        // Later, b has expired and makes room for c.
        answers.put(c, body("c"), t0 + Duration::from_millis(400));
        assert_eq!(answers.len(), 2);
        assert_eq!(
            answers.get(c, t0 + Duration::from_millis(400)),
            Some(body("c"))
        );
        assert_eq!(answers.get(b, t0 + Duration::from_millis(400)), None);
    }
}
