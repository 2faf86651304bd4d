//! Waiting on a condition with a deadline, instead of sleeping and hoping.

use std::future::Future;
use std::time::Duration;

/// Calls `condition` every `every` until it returns `Some`, and returns that value; panics
/// naming `what` when `deadline` passes first.
pub async fn until<T, F, Fut>(what: &str, deadline: Duration, every: Duration, condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match within(deadline, every, condition).await {
        Some(value) => value,
        None => panic!("timed out after {deadline:?} waiting for {what}"),
    }
}

/// Calls `condition` every `every` until it returns `Some`, and returns that value; `None`
/// when `deadline` passes first (for a caller that says more about the failure).
pub async fn within<T, F, Fut>(deadline: Duration, every: Duration, mut condition: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = condition().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= end {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}
