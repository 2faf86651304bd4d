//! Waiting on a condition with a deadline, instead of sleeping and hoping.

use std::future::Future;
use std::time::Duration;

/// Calls `condition` every `every` until it returns `Some`, and returns that value; panics
/// naming `what` when `deadline` passes first.
pub async fn until<T, F, Fut>(
    what: &str,
    deadline: Duration,
    every: Duration,
    mut condition: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = condition().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(every).await;
    }
}
