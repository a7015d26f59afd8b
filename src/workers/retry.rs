//! Delivery with retries: exponential backoff with ±20% jitter, capped
//! (`retry_max_ms`), Retry-After honoured, no limit of time. Ends only on
//! success, on a permanent refusal, or on shutdown.

use std::future::Future;
use std::time::Duration;

use backoff::backoff::Backoff;
use backoff::ExponentialBackoff;
use tokio_util::sync::CancellationToken;

use crate::clients::Delivery;

/// How a delivery with retries ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Delivered,
    Rejected(String),
    Cancelled,
}

/// The retry schedule.
pub fn schedule(max: Duration) -> ExponentialBackoff {
    ExponentialBackoff {
        initial_interval: Duration::from_millis(200),
        randomization_factor: 0.2,
        multiplier: 2.0,
        max_interval: max,
        max_elapsed_time: None,
        ..ExponentialBackoff::default()
    }
}

/// Call `attempt` until it is done or refused for good.
pub async fn deliver<F, Fut>(
    cancel: &CancellationToken,
    max: Duration,
    what: &str,
    mut attempt: F,
) -> Ended
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Delivery>,
{
    let mut policy = schedule(max);
    let mut tries = 0u32;
    loop {
        tries += 1;
        match attempt().await {
            Delivery::Done => return Ended::Delivered,
            Delivery::Reject { reason } => return Ended::Rejected(reason),
            Delivery::Retry { reason, after } => {
                let wait = after
                    .map(|a| a.min(Duration::from_secs(3600)))
                    .or_else(|| policy.next_backoff())
                    .unwrap_or(max);
                tracing::warn!(what, tries, %reason, wait_ms = wait.as_millis() as u64, "delivery failed; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return Ended::Cancelled,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retries_transient_failures_then_stops_on_success_or_refusal() {
        let cancel = CancellationToken::new();
        let mut n = 0;
        let ended = deliver(&cancel, Duration::from_millis(5), "t", || {
            n += 1;
            let r = if n < 3 {
                Delivery::Retry {
                    reason: "503".into(),
                    after: Some(Duration::from_millis(1)),
                }
            } else {
                Delivery::Done
            };
            async move { r }
        })
        .await;
        assert_eq!((ended, n), (Ended::Delivered, 3));
        let ended = deliver(&cancel, Duration::from_millis(5), "t", || async {
            Delivery::Reject {
                reason: "409".into(),
            }
        })
        .await;
        assert_eq!(ended, Ended::Rejected("409".into()));
        cancel.cancel();
        let ended = deliver(&cancel, Duration::from_millis(5), "t", || async {
            Delivery::Retry {
                reason: "down".into(),
                after: None,
            }
        })
        .await;
        assert_eq!(ended, Ended::Cancelled);
    }
}
