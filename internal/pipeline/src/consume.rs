//! The receive loop shared by the result consumers.

use std::future::Future;

use upwatch_bus::{Message, Subscription};
use upwatch_core::CheckResult;

use crate::retry::Backoff;

/// Receives results until the subscription ends, calling `handle` on each and acknowledging
/// it after `handle` returns (its side effect is durable by then): [`each_batch`] with
/// batches of one.
pub async fn each_result<F, Fut>(role: &'static str, sub: Box<dyn Subscription>, mut handle: F)
where
    F: FnMut(CheckResult) -> Fut,
    Fut: Future<Output = ()>,
{
    let one_at_a_time = Batching {
        size: 1,
        wait: std::time::Duration::ZERO,
    };
    each_batch(role, sub, one_at_a_time, |batch| {
        let handled = batch.into_iter().next().map(&mut handle);
        async move {
            if let Some(handled) = handled {
                handled.await;
            }
        }
    })
    .await;
}

/// How [`each_batch`] groups results.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// A batch is handled when it holds this many results...
    pub size: usize,
    /// ...or when its first result has waited this long.
    pub wait: std::time::Duration,
}

/// Receives results until the subscription ends, calling `handle` on batches of them (bounded
/// by size and time) and acknowledging every message of a batch after `handle` returns (its
/// side effect is durable by then); the last, partial batch is handled when the subscription
/// ends. Receive errors are retried with backoff; undecodable messages are logged, skipped
/// and acknowledged with their batch.
pub async fn each_batch<F, Fut>(
    role: &'static str,
    mut sub: Box<dyn Subscription>,
    batching: Batching,
    mut handle: F,
) where
    F: FnMut(Vec<CheckResult>) -> Fut,
    Fut: Future<Output = ()>,
{
    let size = batching.size.max(1);
    let mut batch: Vec<CheckResult> = Vec::with_capacity(size);
    let mut messages: Vec<Message> = Vec::with_capacity(size);
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut failures = 0u32;
    loop {
        let received = match deadline {
            Some(at) => tokio::select! {
                r = sub.recv() => Some(r),
                _ = tokio::time::sleep_until(at) => None,
            },
            None => Some(sub.recv().await),
        };
        let done = match received {
            // The oldest result of the batch has waited long enough.
            None => true,
            Some(Ok(Some(message))) => {
                failures = 0;
                match message.decode::<CheckResult>() {
                    Ok(result) => batch.push(result),
                    Err(error) => {
                        tracing::error!(role, %error, key = %message.key, "skipping a result that cannot be decoded")
                    }
                }
                messages.push(message);
                deadline.get_or_insert_with(|| tokio::time::Instant::now() + batching.wait);
                messages.len() >= size
            }
            Some(Ok(None)) => {
                flush(role, sub.as_mut(), &mut batch, &mut messages, &mut handle).await;
                return;
            }
            Some(Err(error)) => {
                failures += 1;
                let wait = Backoff::default().delay(failures);
                tracing::warn!(role, %error, retry_in_ms = wait.as_millis() as u64, "cannot receive results; retrying");
                tokio::time::sleep(wait).await;
                false
            }
        };
        if done {
            flush(role, sub.as_mut(), &mut batch, &mut messages, &mut handle).await;
            deadline = None;
        }
    }
}

async fn flush<F, Fut>(
    role: &'static str,
    sub: &mut dyn Subscription,
    batch: &mut Vec<CheckResult>,
    messages: &mut Vec<Message>,
    handle: &mut F,
) where
    F: FnMut(Vec<CheckResult>) -> Fut,
    Fut: Future<Output = ()>,
{
    if !batch.is_empty() {
        handle(std::mem::take(batch)).await;
    }
    // Every message: a bus may track acknowledgements one by one.
    for message in messages.drain(..) {
        if let Err(error) = sub.ack(&message).await {
            tracing::warn!(role, %error, "cannot acknowledge a handled result");
        }
    }
}
