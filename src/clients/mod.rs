//! Outbound HTTP: the province (from a city), card systems and the push
//! gateway. One shared `reqwest::Client` per node; every call has a timeout;
//! answers are classified as done, retry-later or rejected for good.

pub mod card;
pub mod province;
pub mod push;

use std::time::Duration;

use reqwest::StatusCode;

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted (2xx with success).
    Done,
    /// Transient: connect error, timeout, 5xx, 429. Retry, after `after` if the peer said.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Permanent: the peer refused this content (4xx other than 429).
    Reject { reason: String },
}

/// Build the node's shared HTTP client.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Classify a response status (and Retry-After) for at-least-once delivery.
pub fn classify(status: StatusCode, retry_after: Option<Duration>, body: &str) -> Delivery {
    let snippet: String = body.chars().take(200).collect();
    if status.is_success() {
        Delivery::Done
    } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Delivery::Retry {
            reason: format!("HTTP {status}: {snippet}"),
            after: retry_after,
        }
    } else {
        Delivery::Reject {
            reason: format!("HTTP {status}: {snippet}"),
        }
    }
}

/// The Retry-After header in seconds, capped at an hour.
pub fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    h.get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(3600)))
}

/// Classify a transport error (never a permanent failure).
pub fn transport(e: &reqwest::Error) -> Delivery {
    Delivery::Retry {
        reason: if e.is_timeout() {
            "timeout".to_string()
        } else if e.is_connect() {
            "connect error".to_string()
        } else {
            format!("transport: {e}")
        },
        after: None,
    }
}

/// POST a JSON body and classify the outcome.
pub async fn deliver<T: serde::Serialize + ?Sized>(
    http: &reqwest::Client,
    url: &str,
    body: &T,
    timeout: Duration,
) -> Delivery {
    match http.post(url).json(body).timeout(timeout).send().await {
        Ok(resp) => {
            let status = resp.status();
            let after = retry_after(resp.headers());
            let text = resp.text().await.unwrap_or_default();
            classify(status, after, &text)
        }
        Err(e) => transport(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify(StatusCode::OK, None, ""), Delivery::Done);
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, None, ""),
            Delivery::Retry { .. }
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, None, ""),
            Delivery::Retry { .. }
        ));
        assert!(matches!(
            classify(StatusCode::CONFLICT, None, ""),
            Delivery::Reject { .. }
        ));
    }
}
