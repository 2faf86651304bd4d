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
//!
//! A live read also asks the store for a monitor's regions and 24-hour uptime. While the store
//! is unreachable each such call would wait for the pool's timeout (seconds), so the first
//! failure puts the store to rest: for [`STORE_REST`] live reads leave those out, then one read
//! tries the store again while the others keep leaving them out, until one succeeds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use uuid::Uuid;

/// The most answers kept at once.
pub const CAPACITY: usize = 10_000;

/// The default of `max_age`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_millis(250);

/// How long live reads leave the store out after it failed, before one tries it again.
pub const STORE_REST: Duration = Duration::from_secs(1);

/// Serialized live-status answers by monitor, each with when it was built.
#[derive(Debug)]
pub struct LiveAnswers {
    max_age: Duration,
    capacity: usize,
    answers: RwLock<HashMap<Uuid, (Instant, Bytes)>>,
    /// When a live read's store call last failed; `None` while the store answers.
    store_failed: Mutex<Option<Instant>>,
    /// Whether a live read is trying a failed store again.
    store_trial: AtomicBool,
}

/// Leave to call the store from a live read, from [`LiveAnswers::store_call`].
#[derive(Debug)]
pub struct StoreCall<'a> {
    answers: &'a LiveAnswers,
    trial: bool,
}

impl StoreCall<'_> {
    /// Says how the call went: a failure rests the store, a success ends the rest.
    pub fn done(self, ok: bool, now: Instant) {
        let mut failed = self
            .answers
            .store_failed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *failed = if ok { None } else { Some(now) };
        drop(failed);
        if self.trial {
            self.answers.store_trial.store(false, Ordering::Release);
        }
    }
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
            store_failed: Mutex::new(None),
            store_trial: AtomicBool::new(false),
        }
    }

    /// Whether a live read may call the store now: always while it answers; after a failure,
    /// not for [`STORE_REST`], then for one read at a time until one succeeds. The caller
    /// says how it went with [`StoreCall::done`].
    pub fn store_call(&self, now: Instant) -> Option<StoreCall<'_>> {
        let failed = *self.store_failed.lock().unwrap_or_else(|e| e.into_inner());
        match failed {
            None => Some(StoreCall {
                answers: self,
                trial: false,
            }),
            Some(at) if now.saturating_duration_since(at) < STORE_REST => None,
            Some(_) => self
                .store_trial
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
                .then_some(StoreCall {
                    answers: self,
                    trial: true,
                }),
        }
    }

    /// Runs `read` against the store unless it rests ([`LiveAnswers::store_call`]), and tells
    /// the rest how it went. `None` when the store rests and `read` was not run.
    pub async fn read_store<T, E>(
        &self,
        read: impl std::future::Future<Output = Result<T, E>>,
    ) -> Option<Result<T, E>> {
        let call = self.store_call(Instant::now())?;
        let result = read.await;
        call.done(result.is_ok(), Instant::now());
        Some(result)
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
    fn a_failing_store_rests_then_one_read_tries_it_again() {
        let answers = LiveAnswers::new(Duration::ZERO);
        let t0 = Instant::now();
        let (first, second) = (answers.store_call(t0), answers.store_call(t0));
        assert!(
            first.is_some() && second.is_some(),
            "a healthy store is called by all"
        );
        first.unwrap().done(false, t0);
        second.unwrap().done(true, t0);
        answers.store_call(t0).unwrap().done(false, t0);
        assert!(answers
            .store_call(t0 + Duration::from_millis(999))
            .is_none());
        let later = t0 + STORE_REST;
        let trial = answers.store_call(later).expect("one read tries again");
        assert!(answers.store_call(later).is_none(), "one at a time");
        trial.done(false, later);
        assert!(
            answers.store_call(later).is_none(),
            "failed again: rests again"
        );
        let trial = answers.store_call(later + STORE_REST).unwrap();
        trial.done(true, later + STORE_REST);
        assert!(answers.store_call(later + STORE_REST).is_some());
        assert!(answers.store_call(later + STORE_REST).is_some());
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
