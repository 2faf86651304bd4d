//! The receive loop shared by the result consumers.

use std::future::Future;

use upwatch_bus::{Message, Subscription};
use upwatch_core::CheckResult;

use crate::retry::Backoff;

/// Receives results until the subscription ends, calling `handle` on each and acknowledging
/// it after `handle` returns (its side effect is durable by then). Receive errors are retried
/// with backoff; undecodable messages are logged and skipped.
pub async fn each_result<F, Fut>(role: &'static str, mut sub: Box<dyn Subscription>, mut handle: F)
where
    F: FnMut(CheckResult) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut failures = 0u32;
    loop {
        let message: Message = match sub.recv().await {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(error) => {
                failures += 1;
                let wait = Backoff::default().delay(failures);
                tracing::warn!(role, %error, retry_in_ms = wait.as_millis() as u64, "cannot receive results; retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        failures = 0;
        match message.decode::<CheckResult>() {
            Ok(result) => handle(result).await,
            Err(error) => {
                tracing::error!(role, %error, key = %message.key, "skipping a result that cannot be decoded")
            }
        }
        if let Err(error) = sub.ack(&message).await {
            tracing::warn!(role, %error, "cannot acknowledge a result");
        }
    }
}
