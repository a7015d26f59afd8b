//! The four services of SPEC §7 and `/health`: each handler receives its
//! parsed request and calls one service.

use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::Extension;

use super::edge::Meta;
use super::{ApiError, Body};
use crate::domain::app::Service;
use crate::domain::resident::{Identity, TargetCode, TranscodeConfig};
use crate::protocol::Envelope;
use crate::service::decode::CodeQuery;
use crate::service::gate::AuditEntry;
use crate::service::sources::ConfigQuery;
use crate::service::trade::{Outcome, TradeReport};
use crate::service::transcode::TranscodeInput;
use crate::service::ServiceError;

use super::state::NodeApi;

fn audit(api: &NodeApi, meta: &Meta, service: Service, q: &CodeQuery, subject: &str, code: &str) {
    api.gate.audit(AuditEntry {
        app_id: &meta.app_id,
        service,
        city: Some(&q.city),
        target: Some(&q.target),
        scene: q.scene,
        terminal_id: &meta.terminal_id,
        operator: &meta.operator,
        subject_id: subject,
        err_code: code,
    });
}

/// `POST /api/v1/decode` (7.2); audited whatever the outcome.
pub async fn decode(
    State(api): State<Arc<NodeApi>>,
    Extension(meta): Extension<Meta>,
    Body(q): Body<CodeQuery>,
) -> Result<Envelope<Identity>, ApiError> {
    api.restore.check()?;
    let answer = api.decoder.decode(&q).await;
    let (subject, code) = match &answer {
        Ok(who) => (api.gate.subject(&who.idcard_no), "200"),
        Err(e) => (String::new(), e.code().code()),
    };
    audit(&api, &meta, Service::Decode, &q, &subject, code);
    Ok(Envelope::ok(answer?, "识读成功"))
}

/// `POST /api/v1/transcode` (7.3): request-reply over the bus; audited
/// whatever the outcome.
pub async fn transcode(
    State(api): State<Arc<NodeApi>>,
    Extension(meta): Extension<Meta>,
    Body(input): Body<TranscodeInput>,
) -> Result<Envelope<Vec<TargetCode>>, ApiError> {
    api.restore.check()?;
    let q = input.query.clone();
    let (answer, subject) = api.transcode.transcode(input).await;
    let code = answer.as_ref().map_or_else(|e| e.code().code(), |_| "200");
    audit(&api, &meta, Service::Transcode, &q, &subject, code);
    api.outcomes
        .answered(&q, code, crate::trace::current_or_new());
    let (codes, msg) = answer?;
    Ok(Envelope::ok(codes, msg))
}

/// `POST /api/v1/callback` (7.4): 200 only once the report is durable.
pub async fn callback(
    State(api): State<Arc<NodeApi>>,
    Body(t): Body<TradeReport>,
) -> Result<Envelope<()>, ApiError> {
    api.restore.check()?;
    let trace = crate::trace::current_or_new();
    Ok(match api.callbacks.accept(&t, &trace).await? {
        Outcome::New => Envelope::done("消息回传成功"),
        Outcome::Duplicate => Envelope::done("重复的消息回传（该tradeNo已接收），已忽略"),
    })
}

/// `POST /api/v1/transcode-config` (7.5): city -> prefecture -> province
/// (and, on a city node, the province's configs).
pub async fn config_query(
    State(api): State<Arc<NodeApi>>,
    Body(q): Body<ConfigQuery>,
) -> Result<Envelope<TranscodeConfig>, ApiError> {
    api.restore.check()?;
    let config = api
        .configs
        .check_target(&q.city, &q.target, None, true, api.decoder.timeout)
        .await?
        .ok_or(ServiceError::NoConfig {
            city: q.city,
            target: q.target,
        })?;
    Ok(Envelope::ok(config, "查询成功"))
}

/// `GET /livez`: the process answers, and 503 when only a restart helps
/// (the database refuses writes after an I/O error; sled keeps that error
/// until it is reopened), so an orchestrator restarts it.
pub async fn livez(State(api): State<Arc<NodeApi>>) -> impl IntoResponse {
    if api.admin.store.failed() {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(
                serde_json::json!({"live": false, "reason": "the store refuses writes after an I/O error: restart the process"}),
            ),
        )
    } else {
        (
            axum::http::StatusCode::OK,
            axum::Json(serde_json::json!({"live": true})),
        )
    }
}

/// `GET /metrics`: the node's metrics in the OpenMetrics text format, its
/// levels read now (pending transcodes, the outbox, consumer lag: each
/// held partition's end offset less the next offset its member has not
/// done). Like the probes it carries no personal data and no credentials.
pub async fn metrics(State(api): State<Arc<NodeApi>>) -> impl IntoResponse {
    let bus = &api.callbacks.bus;
    let store = &api.admin.store;
    let lag = lag(&api).await;
    let m = bus.metrics();
    m.set_levels(&crate::metrics::Levels {
        pending_transcodes: api.transcode.pending.len() as i64,
        outbox_depth: store.outbox_len() as i64,
        outbox_oldest: store.outbox_head_age(),
        lag,
    });
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        m.encode(),
    )
}

/// `GET /readyz` (and `/health`): 200 when the node can take work, 503 when
/// its storage cannot (a failing flush, free space below the watermark) or
/// a supervised task is down; with what is wrong and the alerts an operator
/// must act on (a province refusing this city's credentials, say). O(1).
pub async fn readyz(State(api): State<Arc<NodeApi>>) -> impl IntoResponse {
    let (ready, body) = readiness(&api);
    let status = if ready {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body))
}

/// (group, topic, partition, lag) of each partition this node's members
/// hold: its end offset less the next offset the member has not done.
pub async fn lag(api: &NodeApi) -> Vec<(String, String, u32, i64)> {
    let bus = &api.callbacks.bus;
    let held = bus.owned().positions();
    let ends = futures::future::join_all(
        held.iter()
            .map(|(topic, _, partition, _)| bus.end_offset(topic, *partition)),
    )
    .await;
    held.into_iter()
        .zip(ends)
        .filter_map(|((topic, group, partition, next), end)| {
            // a partition whose end cannot be read now is left out
            let end = end.ok()?;
            Some((group, topic, partition, end.saturating_sub(next) as i64))
        })
        .collect()
}

/// Whether the node is ready, and what `/readyz` says.
pub fn readiness(api: &NodeApi) -> (bool, serde_json::Value) {
    let store = &api.admin.store;
    let down = api.tasks.down();
    // first: its probe write may find the store failed
    let writable = store.writable();
    let storage = if !store.space_ok() {
        "free space below AKM_MIN_FREE_MB"
    } else if store.failed() {
        "the store refuses writes after an I/O error: restart the process"
    } else if !writable {
        "flushes are failing"
    } else {
        "ok"
    };
    let restoring = !api.restore.is_done();
    let ready = storage == "ok" && down.is_empty() && !restoring;
    (
        ready,
        serde_json::json!({
            "ready": ready,
            "role": api.role,
            "storage": storage,
            // reference data and callback state still coming from the bus
            "restoring": restoring,
            "tasksDown": down,
            "alerts": api.alerts.list(),
            "pending": api.transcode.pending.len(),
            "outbox": store.outbox_len(),
            // how far this instance has applied akm.reference, by partition
            "referenceApplied": api.admin.reference.applied.progress(),
            // how far this instance has applied akm.callback.state, by partition
            "stateApplied": api.state.applied.progress(),
            // the partitions this instance's group members hold, by topic and group
            "partitions": api.admin.reference.bus.as_ref().map(|b| b.owned().snapshot()).unwrap_or_default(),
        }),
    )
}
