//! What every request passes before its handler: a cap on requests in
//! flight per service (503/4029), a per-request timeout (5004), the body
//! read under a timeout and at most 64 KiB, the signature and time window
//! (4010/4011), and the caller's kind (4013). Scopes and the rate limit
//! follow once the body is parsed (`requests.rs`). `/livez`, `/readyz`,
//! `/health`, `/metrics`, `/openapi.json` and `/docs` are exempt (every path
//! that is not a service or admin).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body as AxumBody;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::fields::MAX_BODY;
use super::ApiError;
use crate::domain::app::Service;
use crate::protocol::{Envelope, ErrCode};
use crate::service::gate::{AuditEntry, Caller, Gate, SignatureHeaders};
use crate::service::ServiceError;
use crate::signing;

/// Who called, as the handlers and the audit see it.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub app_id: String,
    /// `X-Akm-Terminal-Id`.
    pub terminal_id: String,
    /// `X-Akm-Operator`.
    pub operator: String,
}

/// The edge of one node.
#[derive(Debug)]
pub struct Edge {
    pub gate: Arc<Gate>,
    pub request_timeout: Duration,
    pub body_timeout: Duration,
    inflight: HashMap<&'static str, Arc<Semaphore>>,
    /// Requests, latency and refusals (`/metrics`).
    pub metrics: crate::metrics::Metrics,
}

impl Edge {
    pub fn new(
        gate: Arc<Gate>,
        request_timeout: Duration,
        body_timeout: Duration,
        max_inflight: usize,
        metrics: crate::metrics::Metrics,
    ) -> Self {
        let inflight = [
            Service::Decode,
            Service::Transcode,
            Service::Callback,
            Service::ConfigQuery,
            Service::Admin,
        ]
        .into_iter()
        .map(|s| (s.as_str(), Arc::new(Semaphore::new(max_inflight))))
        .collect();
        Edge {
            gate,
            request_timeout,
            body_timeout,
            inflight,
            metrics,
        }
    }
}

/// The service a path belongs to; `None` for exempt and unknown paths.
fn service_of(path: &str) -> Option<Service> {
    match path {
        "/api/v1/decode" => Some(Service::Decode),
        "/api/v1/transcode" => Some(Service::Transcode),
        "/api/v1/callback" => Some(Service::Callback),
        "/api/v1/transcode-config" => Some(Service::ConfigQuery),
        p if p.starts_with("/admin/") => Some(Service::Admin),
        _ => None,
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The edge middleware: counts what it answers (`akm_requests_total`,
/// `akm_request_duration_seconds`, `akm_refusals_total`).
pub async fn edge(State(edge): State<Arc<Edge>>, req: Request, next: Next) -> Response {
    let Some(service) = service_of(req.uri().path()) else {
        return next.run(req).await;
    };
    let started = std::time::Instant::now();
    let app_id = header(req.headers(), signing::H_APP_ID)
        .unwrap_or_default()
        .to_string();
    // the caller's trace goes on (W3C traceparent), or one starts here
    let parent = header(req.headers(), crate::trace::HEADER)
        .and_then(crate::trace::TraceParent::parse)
        .unwrap_or_else(crate::trace::TraceParent::root);
    let trace_id = parent.trace_id().to_string();
    let span = tracing::info_span!("request", service = service.as_str(), trace_id = %trace_id);
    crate::trace::link(&span, &parent);
    let response = crate::trace::within(trace_id, guarded(&edge, service, req, next))
        .instrument(span)
        .await;
    // every envelope names its code (`protocol`); a response without one
    // is an axum rejection before any handler, counted by its status
    let code = response.extensions().get::<ErrCode>().map_or_else(
        || response.status().as_u16().to_string(),
        |c| c.code().to_string(),
    );
    edge.metrics
        .request(service.as_str(), &code, started.elapsed());
    if ["4010", "4011", "4029"].contains(&code.as_str()) {
        edge.metrics.refusal(edge.gate.app_label(&app_id), &code);
    }
    response
}

/// The in-flight cap and the request timeout around [`checked`].
async fn guarded(edge: &Edge, service: Service, req: Request, next: Next) -> Response {
    let Some(permit) = edge
        .inflight
        .get(service.as_str())
        .and_then(|s| s.clone().try_acquire_owned().ok())
    else {
        let body = Envelope::<()>::error(
            ErrCode::RateLimited,
            format!("{}请求过多，请稍后重试", service.as_str()),
        );
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        response.extensions_mut().insert(ErrCode::RateLimited);
        return response;
    };
    let answer =
        tokio::time::timeout(edge.request_timeout, checked(edge, service, req, next)).await;
    drop(permit);
    match answer {
        Ok(r) => r,
        Err(_) => ApiError::from(ServiceError::Deadline("请求处理超时")).into_response(),
    }
}

async fn checked(edge: &Edge, service: Service, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes =
        match tokio::time::timeout(edge.body_timeout, axum::body::to_bytes(body, MAX_BODY)).await {
            Ok(Ok(b)) => b,
            Ok(Err(_)) => {
                return ApiError::Body(format!("请求体超过{}KB上限或读取失败", MAX_BODY / 1024))
                    .into_response()
            }
            Err(_) => return ApiError::Body("请求体未在时限内发送完".into()).into_response(),
        };
    let h = &parts.headers;
    let meta = Meta {
        app_id: header(h, signing::H_APP_ID)
            .unwrap_or_default()
            .chars()
            .take(64)
            .collect(),
        terminal_id: header(h, "X-Akm-Terminal-Id")
            .unwrap_or_default()
            .to_string(),
        operator: header(h, "X-Akm-Operator").unwrap_or_default().to_string(),
    };
    let gate = &edge.gate;
    let caller = if gate.enforce {
        let sig = SignatureHeaders {
            app_id: header(h, signing::H_APP_ID),
            timestamp: header(h, signing::H_TIMESTAMP),
            nonce: header(h, signing::H_NONCE),
            sign_method: header(h, signing::H_SIGN_METHOD),
            signature: header(h, signing::H_SIGNATURE),
        };
        let query = parts.uri.query().unwrap_or("");
        match gate.verify(&sig, parts.method.as_str(), parts.uri.path(), query, &bytes) {
            Ok(c) => c,
            Err(e) => return refuse(gate, &meta, service, e),
        }
    } else {
        Caller::anyone()
    };
    if let Err(e) = gate.check_kind(&caller, service) {
        return refuse(gate, &meta, service, e);
    }
    if service == Service::Admin {
        if let Err(e) = gate.rate(&caller) {
            return ApiError::from(e).into_response();
        }
    }
    let mut req = Request::from_parts(parts, AxumBody::from(bytes));
    req.extensions_mut().insert(caller);
    req.extensions_mut().insert(meta);
    req.extensions_mut().insert(edge.gate.clone());
    next.run(req).await
}

/// Answer a refusal, with its audit record (4010, 4011, 4013).
pub fn refuse(gate: &Gate, meta: &Meta, service: Service, e: ServiceError) -> Response {
    let code = e.code();
    if matches!(
        code,
        ErrCode::Unauthorized | ErrCode::Replayed | ErrCode::Forbidden
    ) {
        tracing::warn!(app_id = %meta.app_id, service = service.as_str(), code = code.code(), reason = %e, "request refused");
        gate.audit(AuditEntry {
            app_id: &meta.app_id,
            service,
            city: None,
            target: None,
            scene: None,
            terminal_id: &meta.terminal_id,
            operator: &meta.operator,
            subject_id: "",
            err_code: code.code(),
        });
    }
    ApiError::from(e).into_response()
}
