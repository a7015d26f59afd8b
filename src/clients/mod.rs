//! Outbound HTTP: the province (from a city), card systems and the push
//! gateway. One shared `reqwest::Client` per node; every call has a
//! timeout. Calls answer either a typed [`CallError`] that keeps its cause,
//! or, for at-least-once deliveries, a [`Delivery`] classification.

pub mod card;
pub mod province;
pub mod push;

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;

use crate::protocol::Envelope;

/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Why a synchronous call to a party failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No answer within the time given.
    #[error("no answer in time")]
    Timeout(#[source] reqwest::Error),
    /// No connection, or the connection broke.
    #[error("unreachable")]
    Unreachable(#[source] reqwest::Error),
    /// The answer is not the spec's envelope.
    #[error("answer is not an envelope (HTTP {status})")]
    BadAnswer {
        status: u16,
        #[source]
        source: reqwest::Error,
    },
    /// The party answered with an error envelope.
    #[error("refused with {code}: {msg}")]
    Refused { code: String, msg: String },
    /// A success envelope without the data it must carry.
    #[error("success without data")]
    NoData,
}

impl CallError {
    fn transport(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            CallError::Timeout(e)
        } else {
            CallError::Unreachable(e)
        }
    }
}

/// POST `body` and read the envelope; transport failures and a body that is
/// not an envelope are errors, an error envelope is returned as it is.
pub(crate) async fn call<B: serde::Serialize + ?Sized, T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    body: &B,
    timeout: Duration,
) -> Result<Envelope<T>, CallError> {
    let resp = http
        .post(url)
        .json(body)
        .timeout(timeout)
        .send()
        .await
        .map_err(CallError::transport)?;
    let status = resp.status().as_u16();
    resp.json::<Envelope<T>>().await.map_err(|source| {
        if source.is_timeout() {
            CallError::Timeout(source)
        } else {
            CallError::BadAnswer { status, source }
        }
    })
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted (2xx).
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

/// A `Retry-After` value (RFC 9110 §10.2.3): delay-seconds or an HTTP-date,
/// as a wait from `now`, at most [`MAX_RETRY_AFTER`]. A date in the past is
/// no wait; anything else unreadable is ignored.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    let wait = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = httpdate::parse_http_date(v).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The Retry-After header of a response.
pub fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    parse_retry_after(
        h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?,
        SystemTime::now(),
    )
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

    #[test]
    fn retry_after_reads_seconds() {
        let now = SystemTime::now();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn retry_after_reads_http_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        // a date in the past means: now
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_is_bounded() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("999999", now), Some(MAX_RETRY_AFTER));
        let far = httpdate::fmt_http_date(now + Duration::from_secs(86_400 * 3));
        assert_eq!(parse_retry_after(&far, now), Some(MAX_RETRY_AFTER));
    }
}
