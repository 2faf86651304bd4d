//! Retrying an operation against a dependency that may be away, with capped exponential
//! backoff and a log line per failure.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

/// Backoff bounds.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The wait after `attempt` failures (1-based): doubling from `first`, capped at `max`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// Runs `op` until it succeeds, waiting [`Backoff::delay`] between attempts and logging each
/// failure with `what` (a short lower-case description such as "store results").
pub async fn until_ok<T, E, F, Fut>(what: &str, backoff: Backoff, mut op: F) -> T
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 0u32;
    loop {
        match op().await {
            Ok(value) => {
                if attempt > 0 {
                    tracing::info!(what, attempts = attempt + 1, "recovered");
                }
                return value;
            }
            Err(error) => {
                attempt += 1;
                let wait = backoff.delay(attempt);
                tracing::warn!(what, attempt, error = %error, retry_in_ms = wait.as_millis() as u64, "failed; retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_cap() {
        let b = Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let got: Vec<u64> = (1..=6).map(|a| b.delay(a).as_millis() as u64).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_the_operation_succeeds() {
        let mut calls = 0;
        let start = tokio::time::Instant::now();
        let value = until_ok("test op", Backoff::default(), || {
            calls += 1;
            let result = if calls < 4 { Err("away") } else { Ok(calls) };
            async move { result }
        })
        .await;
        assert_eq!(value, 4);
        // 100 + 200 + 400 ms of backoff, exactly, under paused time.
        assert_eq!(start.elapsed(), Duration::from_millis(700));
    }
}
