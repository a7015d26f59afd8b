//! Outbound HTTP: the province (from a city), card systems and the push
//! gateway. One shared `reqwest::Client` per node; every call has a
//! timeout. Calls answer either a typed [`CallError`] that keeps its cause,
//! or, for at-least-once deliveries, a [`Delivery`] classification.

pub mod card;
pub mod province;
pub mod push;
pub mod registry;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;

use crate::protocol::Envelope;

/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// The largest answer body read from a party; more is that party's failure.
pub const MAX_ANSWER: usize = 256 * 1024;

/// Problems an operator must act on, by party (shown by `/readyz`).
#[derive(Debug, Clone, Default)]
pub struct Alerts(Arc<Mutex<BTreeMap<&'static str, String>>>);

impl Alerts {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Raise (or replace) the alert of `party`; logged at error.
    pub fn raise(&self, party: &'static str, what: String) {
        tracing::error!(party, alert = %what, "operator action needed");
        self.map().insert(party, what);
    }

    pub fn clear(&self, party: &'static str) {
        if self.map().remove(party).is_some() {
            tracing::info!(party, "alert cleared");
        }
    }

    /// `"party: what"` lines.
    pub fn list(&self) -> Vec<String> {
        self.map()
            .iter()
            .map(|(p, w)| format!("{p}: {w}"))
            .collect()
    }
}

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
        source: serde_json::Error,
    },
    /// The party answered with an error envelope.
    #[error("refused with {code}: {msg}")]
    Refused { code: String, msg: String },
    /// A success envelope without the data it must carry.
    #[error("success without data")]
    NoData,
    /// The answer body is larger than [`MAX_ANSWER`].
    #[error("answer larger than {MAX_ANSWER} bytes")]
    TooLarge,
}

/// Read an answer body, at most [`MAX_ANSWER`] bytes.
async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, CallError> {
    if resp.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
        return Err(CallError::TooLarge);
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(CallError::transport)? {
        if out.len() + chunk.len() > MAX_ANSWER {
            return Err(CallError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// An outbound request: JSON body, timeout, the current trace
/// (`traceparent`), and signature headers when given.
fn request(
    http: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    timeout: Duration,
    signer: Option<&Signing>,
) -> reqwest::RequestBuilder {
    let mut req = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .timeout(timeout);
    // the trace this call belongs to goes on to the party called
    if let Some(trace) = crate::trace::current() {
        req = req.header(
            crate::trace::HEADER,
            crate::trace::TraceParent::child_of(&trace).header(),
        );
    }
    if let Some(s) = signer {
        for (k, v) in s
            .signer
            .headers_for_url("POST", url, &body, s.clock.now_ms())
        {
            req = req.header(k, v);
        }
    }
    req.body(body)
}

/// How a node signs its calls: the app and the clock of the timestamps.
#[derive(Debug, Clone)]
pub struct Signing {
    pub signer: crate::signing::Signer,
    pub clock: crate::clock::SharedClock,
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
    signer: Option<&Signing>,
) -> Result<(u16, Envelope<T>), CallError> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let resp = request(http, url, bytes, timeout, signer)
        .send()
        .await
        .map_err(CallError::transport)?;
    let status = resp.status().as_u16();
    let answer = read_capped(resp).await?;
    serde_json::from_slice::<Envelope<T>>(&answer)
        .map(|env| (status, env))
        .map_err(|source| CallError::BadAnswer { status, source })
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted (2xx).
    Done,
    /// Transient: connect error, timeout, 408, 429, 5xx. Retry, after
    /// `after` if the peer said.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Permanent: the peer refused this content (a 4xx other than 401,
    /// 403, 404, 408, 429): dead-letter it.
    Reject { reason: String },
    /// 401, 403, 404: a configuration problem (a rotated secret, a wrong
    /// URL), not a bad record: retry, with an error log.
    Misconfigured { reason: String },
}

impl Delivery {
    /// For `akm_outbound_duration_seconds`: ok, refused or failed.
    pub fn outcome(&self) -> &'static str {
        match self {
            Delivery::Done => "ok",
            Delivery::Reject { .. } | Delivery::Misconfigured { .. } => "refused",
            Delivery::Retry { .. } => "failed",
        }
    }
}

/// For `akm_outbound_duration_seconds`: ok, refused (the peer answered
/// with an error) or failed (no usable answer).
pub fn outcome_of<T>(r: &Result<T, CallError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(CallError::Refused { .. }) => "refused",
        Err(_) => "failed",
    }
}

/// Build the node's shared HTTP client: HTTPS with rustls (the webpki
/// roots, plus `ca_pem` when given), redirects never followed, proxies never
/// taken from the environment.
pub fn http_client(ca_pem: Option<&[u8]>) -> Result<reqwest::Client, reqwest::Error> {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(Duration::from_secs(3))
        .pool_idle_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if let Some(pem) = ca_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem)? {
            b = b.add_root_certificate(cert);
        }
    }
    b.build()
}

/// Classify a response status (and Retry-After) for at-least-once delivery.
/// The reason names the status and, when the body is the spec's envelope,
/// its errCode: a peer's text is never logged or stored verbatim.
pub fn classify(status: StatusCode, retry_after: Option<Duration>, body: &str) -> Delivery {
    let code = serde_json::from_str::<Envelope<serde_json::Value>>(body)
        .ok()
        .and_then(|e| e.code())
        .map(|c| format!(" errCode={c}"))
        .unwrap_or_default();
    let snippet = code;
    if status.is_success() {
        Delivery::Done
    } else if matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
    ) {
        Delivery::Misconfigured {
            reason: format!("HTTP {}{snippet}", status.as_u16()),
        }
    } else if matches!(
        status,
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS
    ) || status.is_server_error()
    {
        Delivery::Retry {
            reason: format!("HTTP {}{snippet}", status.as_u16()),
            after: retry_after,
        }
    } else {
        Delivery::Reject {
            reason: format!("HTTP {}{snippet}", status.as_u16()),
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

/// POST a JSON body (signed when a signer is given, with `headers`) and
/// classify the outcome.
pub async fn deliver<T: serde::Serialize + ?Sized>(
    http: &reqwest::Client,
    url: &str,
    body: &T,
    timeout: Duration,
    signer: Option<&Signing>,
    headers: &[(&'static str, &str)],
) -> Delivery {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut req = request(http, url, bytes, timeout, signer);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            let after = retry_after(resp.headers());
            let text = match read_capped(resp).await {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => format!("({e})"),
            };
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
        for s in [
            StatusCode::UNAUTHORIZED,
            StatusCode::FORBIDDEN,
            StatusCode::NOT_FOUND,
        ] {
            assert!(
                matches!(classify(s, None, ""), Delivery::Misconfigured { .. }),
                "{s}"
            );
        }
        assert!(matches!(
            classify(StatusCode::REQUEST_TIMEOUT, None, ""),
            Delivery::Retry { .. }
        ));
        assert!(matches!(
            classify(StatusCode::UNPROCESSABLE_ENTITY, None, ""),
            Delivery::Reject { .. }
        ));
        // a peer's text never becomes the reason, only its status and errCode
        let d = classify(
            StatusCode::BAD_REQUEST,
            None,
            r#"{"flag":"400","errCode":"4001","errMsg":"张三 340102199003073238"}"#,
        );
        assert_eq!(
            d,
            Delivery::Reject {
                reason: "HTTP 400 errCode=4001".into()
            }
        );
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
